/*
 * `paraf certs`: the certificates on the tokens present (certificates.list) as a table, with
 * what the agent's policy says of each (type R5, registered owner R1, status R7/R8, days left,
 * allowed usages R6), and the pieces `paraf sign` shares with it: resolving a --cert id or
 * prefix, and decoding an entry's certificate, checking that its SHA-256 is the id the agent
 * gave it.
 */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>

#include <openssl/x509.h>

#include "pf-codec.h"

static const char certs_usage[] =
	"Usage: paraf certs [--long] [--json]\n"
	"\n"
	"Lists the certificates on the tokens present, as the agent's policy sees them: id (the\n"
	"first 16 of its 64 hex digits; 'paraf sign --cert' takes the full id or any unique\n"
	"prefix of at least 8), type (individual, jabatan, system), the registered owner's name,\n"
	"status (valid, expiring, expired, not-yet-valid, revoked, untrusted, unregistered,\n"
	"non-compliant, unknown), days left, the usages it may sign for ('paraf sign --usage'),\n"
	"and the subject's common name. Below the table, why each certificate that is not valid\n"
	"is not.\n"
	"\n"
	"  --long  also the token, the issuer's common name, expiry, key and key usage\n"
	"  --json  print the agent's answer (certificates.list) as JSON, with full ids\n";

int
cli_name_cn(const X509_NAME *name, char **ret)
{
	const X509_NAME_ENTRY *e;
	unsigned char *u = NULL;
	char *s;
	int i, n;

	i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (i < 0)
		return -ENOENT;
	e = X509_NAME_get_entry(name, i);
	if (!e)
		return -ENOENT;
	n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
	if (n < 0)
		return -EBADMSG;
	s = strndup((char *)u, (size_t)n);
	OPENSSL_free(u);
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

int
cli_cert_decode(json_object *cert, X509 **ret)
{
	const char *b64 = cli_json_str(cert, "certificate");
	const char *id = cli_json_str(cert, "id");
	unsigned char md[EVP_MAX_MD_SIZE];
	_cleanup_free_ uint8_t *der = NULL;
	_cleanup_free_ char *hex = NULL;
	const unsigned char *p;
	unsigned mdlen;
	size_t n;
	X509 *x;

	if (!b64 || !id || pf_base64_decode(b64, strlen(b64), &der, &n) < 0 || n > LONG_MAX)
		return -EPROTO;
	if (!EVP_Digest(der, n, md, &mdlen, EVP_sha256(), NULL))
		return -ENOMEM;
	hex = pf_hex_encode(md, mdlen);
	if (!hex)
		return -ENOMEM;
	/* The id names the certificate: one that does not hash to it is not the one listed. */
	if (!streq(hex, id))
		return -EPROTO;
	p = der;
	x = d2i_X509(NULL, &p, (long)n);
	if (!x)
		return -EPROTO;
	if (p != der + n) {
		X509_free(x);
		return -EPROTO;
	}
	*ret = x;
	return 0;
}

int
cli_cert_resolve(json_object *list, const char *arg, json_object **ret_cert)
{
	_cleanup_free_ char *want = NULL;
	json_object *found = NULL;
	const char *found_id = NULL;
	size_t i, n;
	int r;

	r = cli_hex_normalize(arg, &want);
	if (r < 0)
		return r;
	n = strlen(want);
	if (n < CLI_CERT_PREFIX_MIN || n > CLI_CERT_ID_LEN)
		return -EINVAL;
	for (i = 0; i < json_object_array_length(list); i++) {
		json_object *c = json_object_array_get_idx(list, i);
		const char *id = cli_json_str(c, "id");

		if (!id || strncmp(id, want, n) != 0)
			continue;
		/* The same certificate on two tokens is listed twice under one id. */
		if (found_id && !streq(found_id, id))
			return -ENOTUNIQ;
		if (!found) {
			found = c;
			found_id = id;
		}
	}
	if (!found)
		return -ENOENT;
	*ret_cert = found;
	return 0;
}

int
cli_agent_cert(struct cli_conn *conn, const struct cli_cmd *cmd, const char *arg,
	json_object **ret_list, json_object **ret_cert, X509 **ret_x)
{
	json_object *list = NULL, *certs, *cert = NULL;
	X509 *x = NULL;
	int r;

	r = cli_agent_call(conn, "certificates.list", NULL, NULL, &list, NULL);
	if (r != CLI_EXIT_OK)
		return r;
	certs = cli_json_obj(list, "certificates", json_type_array);
	if (!certs) {
		cli_error("the agent's answer to 'certificates.list' has no 'certificates' array");
		json_object_put(list);
		return CLI_EXIT_AGENT;
	}
	r = cli_cert_resolve(certs, arg, &cert);
	if (r == -ENOTUNIQ) {
		json_object_put(list);
		return cli_usage_error(cmd, "%s: '--cert %s' matches several certificates: give "
			"more digits", cmd->name, arg);
	}
	if (r < 0) {
		cli_error("no certificate on the tokens present has an id starting '%s' "
			  "('paraf certs' lists them)", arg);
		json_object_put(list);
		return CLI_EXIT_AGENT;
	}
	r = cli_cert_decode(cert, &x);
	if (r < 0) {
		cli_error("the agent's entry for certificate '%s' is malformed or does not match "
			  "its id", cli_json_str(cert, "id"));
		json_object_put(list);
		return r == -ENOMEM ? CLI_EXIT_LOCAL : CLI_EXIT_AGENT;
	}
	*ret_list = list;
	*ret_cert = cert;
	*ret_x = x;
	return CLI_EXIT_OK;
}

/* The strings of a JSON array joined by ","; "-" for null or absent, "none" for empty. */
static int
strings_join(json_object *a, char **ret)
{
	struct pf_buf b;
	size_t i, n;

	if (!a) {
		*ret = NULL;
		return 0;
	}
	n = json_object_array_length(a);
	pf_buf_init(&b);
	if (n == 0)
		pf_buf_put(&b, "none", 4);
	for (i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(a, i);
		const char *s = json_object_is_type(v, json_type_string) ?
					json_object_get_string(v) : "?";

		if (i)
			pf_buf_put(&b, ",", 1);
		pf_buf_put(&b, s, strlen(s));
	}
	pf_buf_put(&b, "", 1);
	if (pf_buf_status(&b) < 0) {
		pf_buf_release(&b);
		return -ENOMEM;
	}
	*ret = (char *)b.data;
	return 0;
}

static void
key_format(json_object *key, char *buf, size_t n)
{
	json_object *size = cli_json_obj(key, "size", json_type_int);
	const char *alg = cli_json_str(key, "algorithm");
	const char *curve = cli_json_str(key, "curve");

	buf[0] = 0;
	if (!key)
		return;
	if (curve)
		snprintf(buf, n, "%s %s", alg ? alg : "?", curve);
	else
		snprintf(buf, n, "%s %d", alg ? alg : "?", size ? json_object_get_int(size) : 0);
}

/* Why the certificate is not valid, when it is not: one line below the table. */
static void
status_note(json_object *c, const char *idbuf)
{
	const char *status = cli_json_str(c, "status");
	const char *reason = cli_json_str(c, "status_reason");
	_cleanup_free_ char *sstatus = NULL, *sreason = NULL;

	if (!status || streq(status, "valid") || !reason)
		return;
	sstatus = cli_sanitize(status);
	sreason = cli_sanitize(reason);
	if (sstatus && sreason)
		printf("%s: %s: %s\n", idbuf, sstatus, sreason);
}

static int
certs_print(json_object *res, int longer)
{
	static const char *const headers[] = { "ID", "TYPE", "OWNER", "STATUS", "DAYS",
		"USAGES", "SUBJECT", "TOKEN", "ISSUER", "NOT AFTER", "KEY", "KEY USAGE" };
	const size_t ncols = longer ? ARRAY_SIZE(headers) : 7;
	_cleanup_(cli_table_freep) struct cli_table *t = NULL;
	json_object *list = cli_json_obj(res, "certificates", json_type_array);
	size_t i, n, notes = 0;

	if (!list) {
		cli_error("the agent's answer to 'certificates.list' has no 'certificates' array");
		return CLI_EXIT_AGENT;
	}
	n = json_object_array_length(list);
	if (n == 0) {
		puts("no certificates on the tokens present");
		return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
	}
	if (cli_table_new(ncols, headers, &t) < 0)
		return CLI_EXIT_LOCAL;
	for (i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(list, i);
		json_object *owner = cli_json_obj(c, "owner", json_type_object);
		json_object *days = cli_json_obj(c, "days_left", json_type_int);
		_cleanup_free_ char *subject = NULL, *issuer = NULL, *usage = NULL,
				    *allowed = NULL;
		const char *id = cli_json_str(c, "id");
		char idbuf[17], keybuf[64], daybuf[24];
		X509 *x = NULL;
		int r;

		r = cli_cert_decode(c, &x);
		if (r == -ENOMEM)
			return CLI_EXIT_LOCAL;
		if (r < 0) {
			cli_error("the agent's certificate entry %zu is malformed or does not match "
				  "its id",
				i);
			return CLI_EXIT_AGENT;
		}
		if (cli_name_cn(X509_get_subject_name(x), &subject) == -ENOMEM ||
		    cli_name_cn(X509_get_issuer_name(x), &issuer) == -ENOMEM) {
			X509_free(x);
			return CLI_EXIT_LOCAL;
		}
		X509_free(x);
		snprintf(idbuf, sizeof(idbuf), "%.16s", id);
		key_format(cli_json_obj(c, "key", json_type_object), keybuf, sizeof(keybuf));
		if (days)
			snprintf(daybuf, sizeof(daybuf), "%" PRId64, json_object_get_int64(days));
		if (strings_join(cli_json_obj(c, "key_usage", json_type_array), &usage) < 0 ||
		    strings_join(cli_json_obj(c, "allowed_usages", json_type_array), &allowed) < 0)
			return CLI_EXIT_LOCAL;

		const char *cells[] = {
			idbuf,
			cli_json_str(c, "type"),
			cli_json_str(owner, "name"),
			cli_json_str(c, "status"),
			days ? daybuf : NULL,
			allowed,
			subject ? subject : cli_json_str(c, "subject"),
			cli_json_str(c, "token"),
			issuer ? issuer : cli_json_str(c, "issuer"),
			cli_json_str(c, "not_after"),
			keybuf[0] ? keybuf : NULL,
			usage,
		};
		if (cli_table_add(t, cells) < 0)
			return CLI_EXIT_LOCAL;
		if (cli_json_str(c, "status_reason"))
			notes++;
	}
	if (cli_table_print(t, stdout) < 0)
		return CLI_EXIT_LOCAL;
	if (notes)
		putchar('\n');
	for (i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(list, i);
		char idbuf[17];

		snprintf(idbuf, sizeof(idbuf), "%.16s", cli_json_str(c, "id"));
		status_note(c, idbuf);
	}
	return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
}

static int
certs_run(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "long", no_argument, NULL, 'l' },
		CLI_COMMON_OPTIONS,
		{},
	};
	const struct cli_cmd *cmd = &cli_cmd_certs;
	_cleanup_(cli_conn_freep) struct cli_conn *conn = NULL;
	_cleanup_(json_object_putp) json_object *res = NULL;
	int c, r, longer = 0;

	r = cli_opts_exact(cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":hl", opts, NULL)) != -1) {
		if (c == 'l') {
			longer = 1;
			continue;
		}
		r = cli_opt_common(ctx, cmd, c, argv);
		if (r != CLI_OPT_CONTINUE)
			return r;
	}
	if (optind < argc)
		return cli_usage_error(cmd, "certs: unexpected argument '%s'", argv[optind]);
	r = cli_agent_connect(ctx, &conn);
	if (r != CLI_EXIT_OK)
		return r;
	r = cli_agent_call(conn, "certificates.list", NULL, NULL, &res, NULL);
	if (r != CLI_EXIT_OK)
		return r;
	if (ctx->json)
		return cli_json_print(res) < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
	return certs_print(res, longer);
}

const struct cli_cmd cli_cmd_certs = {
	.name = "certs",
	.summary = "the certificates: id, type, owner, status, days left, usages, subject",
	.usage = certs_usage,
	.run = certs_run,
};
