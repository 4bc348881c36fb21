/*
 * Fuzz target: the text parsers of the policy directory and of the configuration files. The
 * input is split at NUL bytes into up to seven texts:
 *
 *   0 policy.conf          pol_policy_parse()
 *   1 policy.d drop-in     pol_policy_parse() on top of it
 *   2 owners.d entry       pol_owner_parse(), then pol_registration_check(),
 *   3 owners.d entry       pol_passphrase_check() and a round trip through pol_owner_format()
 *   4 revoked.list         pol_revoked_parse(), every entry then found by pol_revoked_find()
 *   5 parafd.conf          ag_config_load() (agent/ag-config.c, from a file)
 *   6 appearance.conf      pdf_appearance_conf_load() (pdf/pdf-appearance.c, from a file)
 *
 * A registry entry written by pol_owner_format() (what `paraf admin` writes) must read back
 * as the same entry.
 */
#include <errno.h>
#include <string.h>

#include "ag.h"
#include "fuzz-common.h"
#include "pdf-write.h"
#include "pol.h"

#define PARTS 7

static char *conf_path, *appearance_path;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	conf_path = fuzz_path(fuzz_tmpdir(), "parafd.conf");
	appearance_path = fuzz_path(fuzz_tmpdir(), "appearance.conf");
	return 0;
}

static bool
str_same(const char *a, const char *b)
{
	/* format leaves out empty values, so "" reads back as absent */
	if (!a || !*a)
		return !b || !*b;
	return b && strcmp(a, b) == 0;
}

/* What pol_owner_format() writes reads back as the same entry. */
static void
owner_round_trip(const struct pol_owner *o)
{
	struct pol_policy q;
	char err[512] = "", *text = pol_owner_format(o);
	const struct pol_owner *b;
	int r;

	FUZZ_CHECK(text);
	pol_policy_init(&q);
	r = pol_owner_parse(&q, "roundtrip.conf", text, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "pol_owner_format() wrote what pol_owner_parse() refuses: %s\n%s",
			err, text);
		abort();
	}
	FUZZ_CHECK(q.n_owners == 1);
	b = &q.owners[0];
	FUZZ_CHECK(strcmp(o->cert_id, b->cert_id) == 0);
	FUZZ_CHECK(o->type == b->type);
	FUZZ_CHECK(str_same(o->account, b->account));
	FUZZ_CHECK(str_same(o->name, b->name));
	FUZZ_CHECK(str_same(o->nip, b->nip));
	FUZZ_CHECK(str_same(o->nik, b->nik));
	FUZZ_CHECK(str_same(o->email, b->email));
	FUZZ_CHECK(str_same(o->position, b->position));
	FUZZ_CHECK(str_same(o->unit, b->unit));
	FUZZ_CHECK(str_same(o->decree, b->decree));
	FUZZ_CHECK(str_same(o->token_serial, b->token_serial));
	FUZZ_CHECK(str_same(o->application, b->application));
	FUZZ_CHECK(str_same(o->phone, b->phone));
	FUZZ_CHECK(str_same(o->superior, b->superior));
	FUZZ_CHECK(str_same(o->renews, b->renews));
	FUZZ_CHECK(str_same(o->key_id, b->key_id));
	pol_policy_release(&q);
	free(text);
}

static void
policy_texts(char **parts, size_t *lens, size_t n)
{
	struct pol_policy p;
	char err[512];
	int r;

	pol_policy_init(&p);
	r = pol_policy_parse(&p, "policy.conf", parts[0], err, sizeof(err));
	if (r >= 0 && n > 1)
		(void)pol_policy_parse(&p, "policy.d/10-local.conf", parts[1], err, sizeof(err));
	/* The registry and the revocation list are parsed whatever policy.conf said. */
	for (size_t i = 2; i < 4 && i < n; i++) {
		size_t before = p.n_owners;

		r = pol_owner_parse(&p, i == 2 ? "budi.conf" : "siti.conf", parts[i], err,
			sizeof(err));
		FUZZ_CHECK(r < 0 ? p.n_owners == before : p.n_owners == before + 1);
	}
	for (size_t i = 0; i < p.n_owners; i++) {
		const struct pol_owner *o = &p.owners[i];
		const char *field = NULL;
		char msg[256];

		if (o->cert_id[0])
			FUZZ_CHECK(pol_owner_find(&p, o->cert_id) == o);
		if (pol_registration_check(&p, o, &field, msg, sizeof(msg)) < 0)
			FUZZ_CHECK(field);
		/* The passphrase: the first line of the revocation list's text, whatever it is. */
		if (n > 4) {
			size_t pl = strcspn(parts[4], "\n");

			(void)pol_passphrase_check(&p, o, parts[4], pl, "ACT-7391-2046", 4, 64, msg,
				sizeof(msg));
		}
		owner_round_trip(o);
	}
	if (n > 4) {
		r = pol_revoked_parse(&p, "revoked.list", parts[4], err, sizeof(err));
		for (size_t i = 0; r >= 0 && i < p.n_revoked; i++)
			FUZZ_CHECK(pol_revoked_find(&p, p.revoked[i].cert_id) == &p.revoked[i]);
	}
	for (int t = POL_TYPE_NONE; t < _POL_TYPE_MAX; t++)
		FUZZ_CHECK(pol_type_to_string(t));
	pol_policy_release(&p);
}

static void
agent_conf(const char *text, size_t len)
{
	struct ag_config c;
	char err[512] = "";

	fuzz_write_file(conf_path, text, len);
	ag_config_init(&c);
	if (ag_config_load(&c, conf_path, err, sizeof(err)) < 0)
		FUZZ_CHECK(err[0]);
	ag_config_release(&c);
}

static void
appearance_conf(const char *text, size_t len)
{
	struct pdf_appearance_conf *c = NULL;
	char *err = NULL, *s = NULL;

	fuzz_write_file(appearance_path, text, len);
	if (pdf_appearance_conf_load(appearance_path, &c, &err) >= 0) {
		if (pdf_appearance_url(c, "0123456789abcdef", &s) >= 0)
			free(s);
		s = NULL;
		if (pdf_appearance_footer(c, &s) >= 0)
			free(s);
		pdf_appearance_conf_free(c);
	}
	free(err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *parts[PARTS];
	size_t lens[PARTS];
	size_t n = fuzz_split(data, size, 0, PARTS, parts, lens);

	policy_texts(parts, lens, n);
	if (n > 5)
		agent_conf(parts[5], lens[5]);
	if (n > 6)
		appearance_conf(parts[6], lens[6]);
	fuzz_parts_free(parts, n);
	return 0;
}
