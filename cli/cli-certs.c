/*
 * `paraf certs`: the certificates on the tokens present (certificates.list) as a table, and the
 * pieces `paraf sign` shares with it: resolving a --cert id or prefix, and decoding an entry's
 * certificate, checking that its SHA-256 is the id the agent gave it.
 */
#include "cli.h"

#include <getopt.h>

#include <openssl/x509.h>

#include "pf-codec.h"

static const char certs_usage[] =
	"Usage: paraf certs [--json]\n"
	"\n"
	"Lists the certificates on the tokens present: id (the first 16 of its 64 hex digits;\n"
	"'paraf sign --cert' takes the full id or any unique prefix of at least 8), token, the\n"
	"subject's and issuer's common names, expiry, key, and key usage.\n"
	"\n"
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

static int
certs_print(json_object *res)
{
	static const char *const headers[] = { "ID", "TOKEN", "SUBJECT", "ISSUER", "NOT AFTER",
		"KEY", "KEY USAGE" };
	_cleanup_(cli_table_freep) struct cli_table *t = NULL;
	json_object *list = cli_json_obj(res, "certificates", json_type_array);
	size_t i, n;

	if (!list) {
		cli_error("the agent's answer to 'certificates.list' has no 'certificates' array");
		return CLI_EXIT_AGENT;
	}
	n = json_object_array_length(list);
	if (n == 0) {
		puts("no certificates on the tokens present");
		return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
	}
	if (cli_table_new(ARRAY_SIZE(headers), headers, &t) < 0)
		return CLI_EXIT_LOCAL;
	for (i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(list, i);
		json_object *key = cli_json_obj(c, "key", json_type_object);
		json_object *ku = cli_json_obj(c, "key_usage", json_type_array);
		_cleanup_free_ char *subject = NULL, *issuer = NULL, *usage = NULL;
		const char *id = cli_json_str(c, "id");
		char idbuf[17], keybuf[64];
		X509 *x = NULL;
		size_t k, len = 0;
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

		keybuf[0] = 0;
		if (key) {
			json_object *size = cli_json_obj(key, "size", json_type_int);
			const char *alg = cli_json_str(key, "algorithm");
			const char *curve = cli_json_str(key, "curve");

			if (curve)
				snprintf(keybuf, sizeof(keybuf), "%s %s", alg ? alg : "?", curve);
			else
				snprintf(keybuf, sizeof(keybuf), "%s %d", alg ? alg : "?",
					size ? json_object_get_int(size) : 0);
		}
		for (k = 0; ku && k < json_object_array_length(ku); k++) {
			json_object *v = json_object_array_get_idx(ku, k);
			const char *s = json_object_is_type(v, json_type_string) ?
						json_object_get_string(v) : "?";
			char *d = realloc(usage, len + strlen(s) + 2);

			if (!d)
				return CLI_EXIT_LOCAL;
			usage = d;
			len += (size_t)sprintf(usage + len, "%s%s", len ? "," : "", s);
		}

		const char *cells[] = {
			idbuf,
			cli_json_str(c, "token"),
			subject ? subject : cli_json_str(c, "subject"),
			issuer ? issuer : cli_json_str(c, "issuer"),
			cli_json_str(c, "not_after"),
			keybuf[0] ? keybuf : NULL,
			usage,
		};
		if (cli_table_add(t, cells) < 0)
			return CLI_EXIT_LOCAL;
	}
	return cli_table_print(t, stdout) < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
}

static int
certs_run(struct cli_ctx *ctx, int argc, char **argv)
{
	_cleanup_(cli_conn_freep) struct cli_conn *conn = NULL;
	_cleanup_(json_object_putp) json_object *res = NULL;
	int r;

	r = cli_opts_none(ctx, &cli_cmd_certs, argc, argv);
	if (r != CLI_OPT_CONTINUE)
		return r;
	r = cli_agent_connect(ctx, &conn);
	if (r != CLI_EXIT_OK)
		return r;
	r = cli_agent_call(conn, "certificates.list", NULL, NULL, &res, NULL);
	if (r != CLI_EXIT_OK)
		return r;
	if (ctx->json)
		return cli_json_print(res) < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
	return certs_print(res);
}

const struct cli_cmd cli_cmd_certs = {
	.name = "certs",
	.summary = "the certificates on the tokens: id, token, subject, issuer, expiry, key, usage",
	.usage = certs_usage,
	.run = certs_run,
};
