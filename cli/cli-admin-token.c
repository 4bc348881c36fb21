/*
 * `paraf admin init-token` and `paraf admin import-cert`: the operator's steps at the token.
 * init-token initialises a blank token for a registered application and sets a one-time
 * activation code as its user PIN, printed once for the owner's hands only (the owner turns it
 * into a passphrase of their own, R2, R4). import-cert checks the issued certificate against
 * the registration, the policy and the key the owner generated on the token, and only then
 * stores it there, with the owner typing their own passphrase at the operator's desk.
 */
#include "cli-admin.h"

#include <getopt.h>
#include <sys/stat.h>

#include <openssl/pem.h>

#include "ag.h"
#include "pf-codec.h"

static const char init_token_usage[] =
	"Usage: paraf admin init-token --application ID [--token SERIAL] [--so-pin-file FILE]\n"
	"           [--module PATH]... [--pinentry PATH] [--policy DIR] [--json]\n"
	"\n"
	"Initialises the applicant's blank token (label 'PARAF <name>') and sets a fresh one-time\n"
	"activation code as its user PIN; records the token's serial in the registration and\n"
	"prints the code once, for the owner's hands only. It is never logged or stored. The\n"
	"owner replaces it with their own passphrase: 'paraf activate' (R2, R4).\n"
	"\n"
	"  --application ID   the application 'paraf admin register' printed\n"
	"  --token SERIAL     the blank token's serial (default: the registered one, else the\n"
	"                     first blank token)\n"
	"  --so-pin-file FILE the SO PIN on the first line of FILE, owned by root or you, mode\n"
	"                     0600 or stricter; else $CREDENTIALS_DIRECTORY/paraf-so-pin; else\n"
	"                     the PIN dialog asks for it. Never on the command line.\n"
	"  --module PATH      a PKCS#11 module (repeatable; default: the p11-kit registry)\n"
	"  --pinentry PATH    the dialog program (default: the policy's [pin] pinentry)\n";

static const char import_cert_usage[] =
	"Usage: paraf admin import-cert CERT.pem [CHAIN.pem] --application ID\n"
	"           [--module PATH]... [--pinentry PATH] [--policy DIR] [--json]\n"
	"\n"
	"Checks the issued certificate before anything is written: its public key is the key the\n"
	"owner generated on the registered token; its subject is the registration's (CN = name,\n"
	"serialNumber holding the NIP, the e-mail address); its type (certificatePolicies, per\n"
	"[types]) and usages fit (R5, R6); it chains to the trust anchors (with CHAIN.pem's\n"
	"intermediates) and is not revoked (R8); it is valid for at most max_validity_days (R7).\n"
	"Any mismatch is refused, naming the field. Then the certificate is stored on the token:\n"
	"the OWNER types their own passphrase in the dialog; the operator never sees it. The\n"
	"registration gets 'certificate = <sha256>', a copy goes to certs/<sha256>.pem, and the\n"
	"certificate an application renews is revoked as 'superseded' (R7).\n";

static int admin_init_token(struct cli_ctx *ctx, int argc, char **argv);
static int admin_import_cert(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_cmd cli_cmd_admin_init_token = {
	"admin init-token", "initialise a token, issue the activation code", init_token_usage,
	admin_init_token,
};
const struct cli_cmd cli_cmd_admin_import_cert = {
	"admin import-cert", "check and store the issued certificate", import_cert_usage,
	admin_import_cert,
};

static int
application_get(struct cli_prov *pv, const char *id, const struct pol_owner **ret)
{
	const struct pol_owner *o;

	if (!id)
		return cli_usage_error(pv->cmd, "%s: missing '--application ID' (see 'paraf admin "
						"list')", pv->cmd->name);
	if (!cli_application_id_valid(id))
		return cli_usage_error(pv->cmd, "%s: '%s' is not an application id", pv->cmd->name,
			id);
	o = cli_prov_application_find(pv, id);
	if (!o) {
		cli_error("%s: no application '%s' in '%s/owners.d' (see 'paraf admin list')",
			pv->cmd->name, id, pv->policy_dir);
		return CLI_EXIT_REFUSED;
	}
	*ret = o;
	return CLI_EXIT_OK;
}

static void
tok_refusal(const struct tok_admin_reply *rep, char *buf, size_t n)
{
	cli_prov_tok_message(rep->err, rep->pin_flags, rep->detail, buf, n);
}

/* --- init-token ------------------------------------------------------------------------- */

static int
init_parse(struct cli_prov *pv, struct cli_ctx *ctx, int argc, char **argv, const char **app,
	const char **serial)
{
	static const struct option opts[] = {
		{ "application", required_argument, NULL, 'a' },
		{ "token", required_argument, NULL, 'T' },
		CLI_PROV_OPT_SO_PIN_FILE,
		CLI_PROV_OPT_MODULE,
		CLI_PROV_OPT_PINENTRY,
		CLI_PROV_OPT_POLICY,
		CLI_COMMON_OPTIONS,
		{},
	};
	int c, r;

	r = cli_opts_exact(pv->cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'a')
			*app = optarg;
		else if (c == 'T')
			*serial = optarg;
		else if ((r = cli_prov_opt(pv, ctx, c, argv)) != CLI_OPT_CONTINUE)
			return r;
	}
	if (optind < argc)
		return cli_usage_error(pv->cmd, "%s: unexpected argument '%s'", pv->cmd->name,
			argv[optind]);
	if (*serial && !cli_text_line_ok(*serial, TOK_SERIAL_MAX))
		return cli_usage_error(pv->cmd, "%s: '--token' must be a serial of 1 to %d "
						"characters", pv->cmd->name, TOK_SERIAL_MAX);
	return CLI_OPT_CONTINUE;
}

static int
print_code(const struct cli_prov *pv, const struct pol_owner *o, const char *serial,
	const char *token_id, const char *code)
{
	char shown[2 * CLI_PROV_CODE_MAX + 2];
	int r;

	cli_activation_code_format(code, shown, sizeof(shown));
	if (pv->json) {
		/* Built in a buffer that is wiped, not in json-c's, which would keep a copy. */
		struct pf_buf b;

		pf_buf_init(&b);
		b.wipe = 1;
#define KV(k, v, last) (pf_buf_put(&b, "  \"" k "\": ", strlen(k) + 6), \
	cli_json_escape(&b, v, strlen(v)), pf_buf_put(&b, (last) ? "\n}\n" : ",\n", (last) ? 3 : 2))
		pf_buf_put(&b, "{\n", 2);
		KV("application", o->application, 0);
		KV("token", serial, 0);
		KV("token_id", token_id, 0);
		KV("activation_code", shown, 1);
#undef KV
		r = pf_buf_status(&b) < 0 || fwrite(b.data, 1, b.len, stdout) != b.len ||
				fflush(stdout) != 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
		pf_buf_release(&b);
	} else {
		printf("Kode aktivasi (activation code) for %s, application %s, token %s:\n\n"
		       "    %s\n\n"
		       "For the owner's hands only (hanya untuk pemilik): give it to %s in person.\n"
		       "It is shown once, stored nowhere and logged nowhere. The owner replaces it with\n"
		       "a passphrase of their own, from their own account (R2, R4):\n"
		       "    paraf activate --application %s\n",
			o->name, o->application, serial, shown, o->name, o->application);
		r = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
	}
	explicit_bzero(shown, sizeof(shown));
	return r;
}

static int
admin_init_token(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_prov pv = { .cmd = &cli_cmd_admin_init_token, .method = "admin.init-token",
		.json = ctx->json };
	const char *app = NULL, *serial_arg = NULL;
	const struct pol_owner *o = NULL;
	struct pol_owner upd = {};
	struct pf_secret *so_pin = NULL, *code = NULL;
	struct tok_admin_req req = {};
	struct tok_admin_reply rep = {};
	struct cli_prov_audit au = {};
	_cleanup_free_ char *token_id = NULL, *serial = NULL;
	char label[TOK_TOKEN_LABEL_MAX + 1], buf[CLI_PROV_CODE_MAX + 1], msg[512], err[1024];
	size_t code_len;
	bool resumed = false;
	int r;

	r = init_parse(&pv, ctx, argc, argv, &app, &serial_arg);
	if (r != CLI_OPT_CONTINUE)
		return r;
	r = cli_prov_policy_load(&pv);
	if (r == CLI_EXIT_OK)
		r = cli_prov_operator_check(&pv);
	if (r == CLI_EXIT_OK)
		r = application_get(&pv, app, &o);
	if (r != CLI_EXIT_OK)
		goto out;
	if (o->cert_id[0]) {
		r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, "R4", "has-certificate",
			"application %s has its certificate already (%.16s…): a new token needs a new "
			"registration", o->application, o->cert_id);
		goto out;
	}
	if (serial_arg && o->token_serial && !streq(serial_arg, o->token_serial)) {
		r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, "R4", "token-mismatch",
			"application %s is registered with token %s, not %s", o->application,
			o->token_serial, serial_arg);
		goto out;
	}
	r = cli_prov_so_pin(&pv, o, &so_pin);
	if (r == CLI_EXIT_OK)
		r = cli_prov_link(&pv);
	if (r != CLI_EXIT_OK)
		goto out;

	cli_token_label(o->name, label, sizeof(label));
	req.type = TOK_MSG_INIT_TOKEN;
	req.serial = (char *)(serial_arg ? serial_arg : o->token_serial ? o->token_serial : "");
	req.label = label;
	req.so_pin = so_pin;
	if (cli_prov_admin_call(&pv, &req, CLI_PROV_TIMEOUT_MS, &rep) < 0) {
		r = CLI_EXIT_NO_TOKEN;
		goto out;
	}
	if (rep.err != TOK_OK && rep.exists && o->token_serial && rep.serial &&
	    streq(rep.serial, o->token_serial)) {
		/* This application's own token, initialised by an earlier run that stopped before
		 * the activation code: go on with the code (INIT_PIN checks the SO PIN, and
		 * refuses a token whose PIN is set). */
		resumed = true;
	} else if (rep.err != TOK_OK) {
		tok_refusal(&rep, err, sizeof(err));
		if (rep.exists)
			r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, "R3", "token-initialised",
				"token %s is initialised already: re-initialising it would destroy its "
				"keys; give the serial of a blank token (--token)", rep.serial ? rep.serial
											     : "?");
		else if (rep.err == TOK_ERR_TOKEN_NOT_PRESENT || rep.err == TOK_ERR_MODULE)
			r = cli_prov_refuse(&pv, o, CLI_EXIT_NO_TOKEN, NULL, "token-not-present",
				"no blank token%s%s is present: %s", *req.serial ? " with serial " : "",
				req.serial, err);
		else
			r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, NULL, "token-refused",
				"the token refused to be initialised: %s", err);
		goto out;
	}
	token_id = rep.token_id ? strdup(rep.token_id) : NULL;
	serial = rep.serial ? strdup(rep.serial) : NULL;
	if (!token_id || !serial) {
		r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, NULL, "token-refused",
			"the token helper did not say which token it initialised");
		goto out;
	}
	code_len = cli_activation_code_len(rep.min_pin, rep.max_pin);
	if (!code_len) {
		r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, NULL, "token-pin-limits",
			"token %s accepts PINs of %u to %u characters: no room for an activation code "
			"of 8 to %d digits", serial, rep.min_pin, rep.max_pin, CLI_PROV_CODE_MAX);
		goto out;
	}
	tok_admin_reply_release(&rep);
	memset(&rep, 0, sizeof(rep));

	/* The one-time activation code (R4): from getrandom(), set as the user PIN, shown once. */
	if (cli_activation_code_make(code_len, buf) < 0 ||
	    pf_secret_new(buf, code_len, &code) < 0) {
		explicit_bzero(buf, sizeof(buf));
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.type = TOK_MSG_INIT_PIN;
	req.token_id = token_id;
	req.so_pin = so_pin;
	req.pin = code;
	if (cli_prov_admin_call(&pv, &req, CLI_PROV_TIMEOUT_MS, &rep) < 0) {
		r = CLI_EXIT_NO_TOKEN;
		goto out;
	}
	so_pin = pf_secret_free(so_pin);
	if (rep.err != TOK_OK) {
		tok_refusal(&rep, err, sizeof(err));
		if (rep.exists)
			r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, "R4", "pin-set",
				"token %s has its PIN set already: an operator resetting it would hold a "
				"working PIN for the owner's key (R1, R4); a token that must start again "
				"needs to be emptied with its vendor's tool first", serial);
		else
			r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, NULL, "token-refused",
				"the token refused the activation code: %s", err);
		goto out;
	}

	/* The token's serial into the registration (the code goes nowhere). */
	if (!o->token_serial || !streq(o->token_serial, serial)) {
		r = cli_prov_owner_copy(o, &upd);
		if (r >= 0) {
			free(upd.token_serial);
			upd.token_serial = strdup(serial);
			r = upd.token_serial ? cli_prov_registry_write(o->file, &upd, true, err,
						       sizeof(err))
					     : -ENOMEM;
		}
		if (r < 0) {
			cli_error("%s: token %s is ready, but the registration could not be updated: "
				  "%s", pv.cmd->name, serial, r == -ENOMEM ? "out of memory" : err);
			r = CLI_EXIT_LOCAL;
			goto out;
		}
	}
	snprintf(msg, sizeof(msg), "application %s: token %s (id %s) initialised%s, label '%s'; a "
				   "one-time activation code was issued to the owner", o->application,
		serial, token_id, resumed ? " (earlier)" : "", label);
	au.owner = o;
	au.allow = true;
	au.rule = "R4";
	au.message = msg;
	au.outcome = "token-initialised";
	cli_prov_audit(&pv, &au);
	r = print_code(&pv, o, serial, token_id, code->data);
out:
	explicit_bzero(buf, sizeof(buf));
	pf_secret_free(so_pin);
	pf_secret_free(code);
	tok_admin_reply_release(&rep);
	cli_prov_owner_release(&upd);
	cli_prov_release(&pv);
	return r;
}

/* --- import-cert ------------------------------------------------------------------------ */

/* The certificates of a PEM file (or one DER certificate), at most max. */
static int
certs_read(const char *path, size_t max, STACK_OF(X509) **ret)
{
	_cleanup_free_ uint8_t *data = NULL;
	STACK_OF(X509) *sk = sk_X509_new_null();
	size_t len;
	X509 *x;
	BIO *b;
	int r;

	if (!sk)
		return -ENOMEM;
	r = cli_file_read_all(path, CLI_PROV_CERT_FILE_MAX, &data, &len);
	if (r < 0) {
		sk_X509_free(sk);
		return r;
	}
	b = BIO_new_mem_buf(data, (int)len);
	while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		if ((size_t)sk_X509_num(sk) >= max || !sk_X509_push(sk, x)) {
			X509_free(x);
			BIO_free(b);
			sk_X509_pop_free(sk, X509_free);
			return -E2BIG;
		}
	}
	BIO_free(b);
	if (sk_X509_num(sk) == 0) {
		const unsigned char *p = data;

		x = d2i_X509(NULL, &p, (long)len);
		if (x && !sk_X509_push(sk, x))
			X509_free(x);
	}
	if (sk_X509_num(sk) == 0) {
		sk_X509_free(sk);
		return -EBADMSG;
	}
	*ret = sk;
	return 0;
}

static int
import_parse(struct cli_prov *pv, struct cli_ctx *ctx, int argc, char **argv, const char **app,
	const char **cert, const char **chain)
{
	static const struct option opts[] = {
		{ "application", required_argument, NULL, 'a' },
		CLI_PROV_OPT_MODULE,
		CLI_PROV_OPT_PINENTRY,
		CLI_PROV_OPT_POLICY,
		CLI_COMMON_OPTIONS,
		{},
	};
	int c, r;

	r = cli_opts_exact(pv->cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'a')
			*app = optarg;
		else if ((r = cli_prov_opt(pv, ctx, c, argv)) != CLI_OPT_CONTINUE)
			return r;
	}
	if (optind >= argc)
		return cli_usage_error(pv->cmd, "%s: missing CERT.pem", pv->cmd->name);
	*cert = argv[optind++];
	if (optind < argc)
		*chain = argv[optind++];
	if (optind < argc)
		return cli_usage_error(pv->cmd, "%s: unexpected argument '%s'", pv->cmd->name,
			argv[optind]);
	return CLI_OPT_CONTINUE;
}

/* R8, and the anchors: the certificate chains now and is not revoked. */
static int
import_trust(struct cli_prov *pv, const struct pol_owner *o, X509 *x, STACK_OF(X509) *chain,
	const char *id)
{
	struct pol_trust t = pv->policy->trust;
	struct pol_cert_facts f = {};
	unsigned char *der = NULL;
	STACK_OF(X509) *inter = sk_X509_dup(pv->policy->trust.intermediates);
	int len, r = CLI_EXIT_OK;

	for (int i = 0; inter && chain && i < sk_X509_num(chain); i++)
		if (!sk_X509_push(inter, sk_X509_value(chain, i))) {
			sk_X509_free(inter);
			inter = NULL;
		}
	len = i2d_X509(x, &der);
	if (!inter || len <= 0 || pol_cert_facts_from_der(der, (size_t)len, &f) < 0) {
		sk_X509_free(inter);
		OPENSSL_free(der);
		return CLI_EXIT_LOCAL;
	}
	OPENSSL_free(der);
	t.intermediates = inter;
	pol_trust_check(&t, x, time(NULL), &f);
	if (!f.trusted)
		r = cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, NULL, "untrusted",
			"issuer: the certificate %.16s… does not chain to the trust anchors in '%s': %s",
			id, pv->policy->pol.trust_anchors, f.trust_error[0] ? f.trust_error : "unknown");
	else if (f.revocation == POL_REV_REVOKED)
		r = cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, "R8", "revoked",
			"revocation: the certificate %.16s… is revoked by its issuer's CRL (R8)", id);
	else if (f.revocation == POL_REV_CRL_MISSING || f.revocation == POL_REV_CRL_STALE)
		cli_warn("%s: no current CRL of the issuer in '%s': parafd will %s until there is one",
			pv->cmd->name, pv->policy->pol.crl_dir,
			pv->policy->pol.revocation == POL_REVOCATION_REQUIRE
				? "refuse to sign with it (revocation = require)"
				: "sign without knowing its revocation status");
	if (r == CLI_EXIT_OK && time(NULL) < f.not_before)
		cli_warn("%s: the certificate is not valid yet", pv->cmd->name);
	pol_cert_facts_release(&f);
	sk_X509_free(inter);
	return r;
}

static int
certs_copy_write(const struct cli_prov *pv, const char *id, X509 *x)
{
	_cleanup_free_ char *dir = NULL, *path = NULL;
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *mem;
	int r;

	if (!b || !PEM_write_bio_X509(b, x) || asprintf(&dir, "%s/certs", pv->policy_dir) < 0 ||
	    asprintf(&path, "%s/%s.pem", dir, id) < 0) {
		BIO_free(b);
		return -ENOMEM;
	}
	if (mkdir(dir, 0755) == 0)
		(void)chmod(dir, 0755);
	BIO_get_mem_ptr(b, &mem);
	r = cli_file_write_atomic(path, mem->data, mem->length, true);
	BIO_free(b);
	return r;
}

static int
admin_import_cert(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_prov pv = { .cmd = &cli_cmd_admin_import_cert, .method = "admin.import-cert",
		.json = ctx->json };
	const char *app = NULL, *cert_path = NULL, *chain_path = NULL, *field = NULL;
	const struct pol_owner *o = NULL;
	STACK_OF(X509) *certs = NULL, *chain = NULL;
	X509 *x;
	struct pol_owner upd = {};
	struct pf_secret *pin = NULL;
	struct tok_admin_req req = {};
	struct tok_admin_reply rep = {};
	struct cli_prov_audit au = {};
	_cleanup_free_ char *id = NULL, *token_id = NULL, *key_hex = NULL, *desc = NULL;
	unsigned char *der = NULL, *spki = NULL;
	uint8_t ck_id[TOK_CKA_ID_MAX];
	size_t ck_id_len = 0;
	uint32_t flags = 0;
	char label[TOK_CKA_LABEL_MAX + 1], msg[1024], err[1024];
	int der_len = 0, spki_len, r;

	r = import_parse(&pv, ctx, argc, argv, &app, &cert_path, &chain_path);
	if (r != CLI_OPT_CONTINUE)
		return r;
	r = cli_prov_policy_load(&pv);
	if (r == CLI_EXIT_OK)
		r = cli_prov_operator_check(&pv);
	if (r == CLI_EXIT_OK)
		r = application_get(&pv, app, &o);
	if (r != CLI_EXIT_OK)
		goto out;
	if (o->cert_id[0]) {
		r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, NULL, "has-certificate",
			"application %s has its certificate already (%.16s…)", o->application,
			o->cert_id);
		goto out;
	}
	if (!o->token_serial) {
		r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, "R4", "not-initialised",
			"application %s has no token yet: 'paraf admin init-token' first, then the "
			"owner's 'paraf activate'", o->application);
		goto out;
	}

	/* The certificate and its chain, read and checked before the token is touched. */
	r = certs_read(cert_path, 1, &certs);
	if (r >= 0 && chain_path)
		r = certs_read(chain_path, CLI_PROV_CHAIN_MAX, &chain);
	if (r < 0) {
		cli_error("%s: cannot read '%s': %s", pv.cmd->name,
			certs ? chain_path : cert_path,
			r == -EBADMSG ? "no certificate in it (PEM or DER)"
			: r == -E2BIG ? "too many certificates in it" : strerror(-r));
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	x = sk_X509_value(certs, 0);
	der_len = i2d_X509(x, &der);
	id = der_len > 0 ? ag_cert_id(der, (size_t)der_len) : NULL;
	if (!id) {
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	pv.audit_cert = id;
	if (pol_revoked_find(&pv.policy->pol, id)) {
		r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, "R8", "revoked",
			"certificate %.16s… is on the local revocation list: revocation is permanent "
			"(R8)", id);
		goto out;
	}
	if (pol_owner_find(&pv.policy->pol, id)) {
		r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, NULL, "registered",
			"certificate %.16s… is registered already (%s)", id,
			pol_owner_find(&pv.policy->pol, id)->file);
		goto out;
	}
	if (cli_cert_match_registration(&pv.policy->pol, o, x, time(NULL), &field, msg,
		    sizeof(msg)) < 0) {
		r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED,
			streq(field, "type") ? "R5" : streq(field, "usage") ? "R6"
			: streq(field, "validity") ? "R7" : streq(field, "position") ? "R18" : "R17",
			"certificate-mismatch",
			"%s: %s; nothing was written", field, msg);
		goto out;
	}
	r = import_trust(&pv, o, x, chain, id);
	if (r != CLI_EXIT_OK)
		goto out;

	/* The key the owner generated (R3, R4): found by its CKA_ID, compared with the
	 * certificate's. */
	r = cli_key_id_of(o, ck_id, sizeof(ck_id), &ck_id_len);
	if (r < 0 || !(key_hex = pf_hex_encode(ck_id, ck_id_len))) {
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	r = cli_prov_link(&pv);
	if (r != CLI_EXIT_OK)
		goto out;
	r = cli_prov_token_find(&pv, o->token_serial, &token_id, &flags);
	if (r == -ENOENT) {
		r = cli_prov_refuse(&pv, o, CLI_EXIT_NO_TOKEN, NULL, "token-not-present",
			"token %s of application %s is not present: insert it", o->token_serial,
			o->application);
		goto out;
	}
	if (r < 0) {
		r = CLI_EXIT_NO_TOKEN;
		goto out;
	}
	req.type = TOK_MSG_PUBKEY;
	req.token_id = token_id;
	req.ck_id.p = ck_id;
	req.ck_id.n = ck_id_len;
	if (cli_prov_admin_call(&pv, &req, CLI_PROV_TIMEOUT_MS, &rep) < 0) {
		r = CLI_EXIT_NO_TOKEN;
		goto out;
	}
	if (rep.err == TOK_ERR_KEY_NOT_FOUND) {
		r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, "R4", "no-key",
			"token %s holds no key of application %s (CKA_ID %s): the owner has not run "
			"'paraf activate' yet", o->token_serial, o->application, key_hex);
		goto out;
	}
	if (rep.err != TOK_OK) {
		tok_refusal(&rep, err, sizeof(err));
		r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, NULL, "token-refused",
			"cannot read the key of application %s: %s", o->application, err);
		goto out;
	}
	spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
	if (spki_len <= 0 || (size_t)spki_len != rep.spki.n ||
	    memcmp(spki, rep.spki.p, rep.spki.n) != 0) {
		r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, "R3", "certificate-mismatch",
			"public key: the certificate's public key is not the key the owner generated on "
			"token %s (CKA_ID %s); nothing was written", o->token_serial, key_hex);
		goto out;
	}
	tok_admin_reply_release(&rep);
	memset(&rep, 0, sizeof(rep));

	/* The owner's passphrase, typed by the owner (R2, R4): the operator never sees it. */
	{
		const ASN1_TIME *na = X509_get0_notAfter(x);
		char iso[32] = "?";

		cli_asn1_time_iso(na, iso, sizeof(iso));
		if (asprintf(&desc,
			    "Pemasangan sertifikat (certificate import)\n\n"
			    "Pemilik (owner): %s, %s\nAplikasi: %s, token %s\n"
			    "Sertifikat: %.16s…, berlaku s.d. %.10s\n\n"
			    "PEMILIK: ketik passphrase Anda sendiri. Petugas tidak melihat dan tidak "
			    "mengetiknya.\n(The owner types their own passphrase; the operator never "
			    "sees it: R2, R4.)",
			    o->name, pol_type_to_string(o->type), o->application, o->token_serial, id,
			    iso) < 0) {
			desc = NULL;
			r = CLI_EXIT_LOCAL;
			goto out;
		}
	}
	r = cli_prov_ask(&pv, "paraf: pemasangan sertifikat (certificate import)", desc,
		"Passphrase pemilik / owner's passphrase:", NULL, &pin);
	if (r < 0) {
		r = cli_prov_ask_failed(&pv, o, "the owner's passphrase", r);
		goto out;
	}
	snprintf(label, sizeof(label), "PARAF %s", o->name);
	req.type = TOK_MSG_WRITE_CERT;
	req.pin = pin;
	req.der.p = der;
	req.der.n = (size_t)der_len;
	req.label = label;
	if (cli_prov_admin_call(&pv, &req, CLI_PROV_TIMEOUT_MS, &rep) < 0) {
		r = CLI_EXIT_NO_TOKEN;
		goto out;
	}
	pin = pf_secret_free(pin);
	if (rep.err != TOK_OK) {
		tok_refusal(&rep, err, sizeof(err));
		r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, rep.err == TOK_ERR_PIN_INCORRECT ? "R2"
			: NULL, rep.exists ? "exists" : rep.err == TOK_ERR_PIN_INCORRECT ? "pin-incorrect"
			: "token-refused", "%s; nothing was written",
			rep.exists ? "the token holds a certificate for this key already" : err);
		goto out;
	}

	/* The registration names its certificate (and the key's CKA_ID) from now on. */
	r = cli_prov_owner_copy(o, &upd);
	if (r >= 0) {
		memcpy(upd.cert_id, id, sizeof(upd.cert_id));
		free(upd.key_id);
		upd.key_id = strdup(key_hex);
		r = upd.key_id ? cli_prov_registry_write(o->file, &upd, true, err, sizeof(err))
			       : -ENOMEM;
	}
	if (r < 0) {
		cli_error("%s: the certificate is on the token, but the registration could not be "
			  "updated: %s", pv.cmd->name, r == -ENOMEM ? "out of memory" : err);
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	r = certs_copy_write(&pv, id, x);
	if (r < 0)
		cli_warn("%s: cannot keep a copy in '%s/certs': %s ('paraf admin list' will not know "
			 "its expiry)", pv.cmd->name, pv.policy_dir, strerror(-r));
	snprintf(msg, sizeof(msg), "application %s: certificate %s stored on token %s with key %s%s%s",
		o->application, id, o->token_serial, key_hex, o->renews ? ", renewing " : "",
		o->renews ? o->renews : "");
	au.owner = &upd;
	au.certificate = id;
	au.allow = true;
	au.rule = o->renews ? "R7" : "R4";
	au.message = msg;
	au.outcome = "imported";
	cli_prov_audit(&pv, &au);
	if (pv.json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "application", json_object_new_string(o->application));
		json_object_object_add(j, "certificate", json_object_new_string(id));
		json_object_object_add(j, "token", json_object_new_string(o->token_serial));
		json_object_object_add(j, "key", json_object_new_string(key_hex));
		json_object_object_add(j, "superseded",
			o->renews ? json_object_new_string(o->renews) : NULL);
		r = cli_json_print(j) < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
		json_object_put(j);
	} else {
		printf("imported certificate %s for application %s on token %s\n", id,
			o->application, o->token_serial);
		r = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
	}
	/* R7: renewal by a new certificate; the one renewed is superseded now. */
	if (o->renews && !pol_revoked_find(&pv.policy->pol, o->renews)) {
		const char *method = pv.method;
		int rr;

		pv.method = "admin.revoke";
		rr = cli_prov_revoke(&pv, o->renews, "superseded", NULL, "R7");
		pv.method = method;
		if (rr != CLI_EXIT_OK)
			r = rr;
	}
out:
	pf_secret_free(pin);
	tok_admin_reply_release(&rep);
	cli_prov_owner_release(&upd);
	OPENSSL_free(der);
	OPENSSL_free(spki);
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(chain, X509_free);
	cli_prov_release(&pv);
	return r;
}
