/*
 * The verify path shared by the cms and pdf targets (see fuzz-verify.h).
 */
#include "fuzz-verify.h"

#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "fuzz-common.h"

static char *dir, *cas[3], *crls[3], *owners;
static FILE *devnull;

void
fuzz_verify_setup(void)
{
	const char *tmp = fuzz_tmpdir();
	uint8_t *content, *ec;
	size_t n, ec_len;
	char *p, *id, *entry;

	if (dir)
		return;
	dir = fuzz_path(tmp, "verify");
	fuzz_mkdir(dir, 0700);
	content = fuzz_data_read("content.txt", &n);
	p = fuzz_path(dir, "doc");
	fuzz_write_file(p, content, n);
	free(p);
	free(content);
	cas[0] = fuzz_data_path("ca.pem");
	cas[1] = fuzz_data_path("demo-ca.pem");
	crls[0] = fuzz_data_path("ca.crl");
	crls[1] = fuzz_data_path("demo-ca.crl");
	/* The registry gives a NIP and a position to the EC test certificate. */
	owners = fuzz_path(tmp, "verify-owners.d");
	fuzz_mkdir(owners, 0755);
	ec = fuzz_data_read("ec.der", &ec_len);
	{
		unsigned char md[32];
		char hex[65];

		EVP_Digest(ec, ec_len, md, NULL, EVP_sha256(), NULL);
		for (int i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		id = strdup(hex);
	}
	FUZZ_CHECK(asprintf(&entry, "[owner]\ncertificate = %s\naccount = budi\ntype = jabatan\n"
		"name = Budi Santoso\nnip = 197803152005011002\nposition = Kepala Bidang\n", id) > 0);
	p = fuzz_path(owners, "budi.conf");
	fuzz_write_file(p, entry, strlen(entry));
	free(p);
	free(entry);
	free(id);
	free(ec);
	devnull = fopen("/dev/null", "we");
	FUZZ_CHECK(devnull);
}

void
fuzz_verify_one(const char *name, const uint8_t *data, size_t size)
{
	struct cli_verify_opts o = {
		.cas = (const char *const *)cas,
		.crls = (const char *const *)crls,
		.owners_dir = owners,
		.now = FUZZ_NOW,
	};
	struct cli_verify_report *rep = NULL;
	char *path = fuzz_path(dir, name), *error = NULL;
	json_object *j = NULL;
	int r;

	fuzz_write_file(path, data, size);
	o.sigfile = path;
	r = cli_verify_run(&o, &rep, &error);
	if (r >= 0) {
		FUZZ_CHECK(rep);
		/* Every signer has a conclusion; VALID needs integrity and trust. */
		for (size_t i = 0; i < rep->n_signers; i++) {
			const struct cli_signer_report *s = &rep->signers[i];

			FUZZ_CHECK(s->conclusion != CLI_VALID || (s->integrity && s->trusted));
		}
		FUZZ_CHECK(cli_verify_report_json(rep, &j) >= 0);
		FUZZ_CHECK(json_object_to_json_string(j));
		json_object_put(j);
		FUZZ_CHECK(cli_verify_report_print(rep, devnull) >= 0);
		cli_verify_report_free(rep);
	} else {
		/* A failure says why, for people. */
		FUZZ_CHECK(error || r == -ENOMEM);
	}
	free(error);
	free(path);
}
