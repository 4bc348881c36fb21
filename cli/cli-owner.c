/*
 * `paraf activate` and `paraf renew`: the owner's own steps (R4: issuance and activation by the
 * applicant personally, never through a proxy), run from the owner's account only, root
 * included. activate turns the operator's one-time activation code into a passphrase only the
 * owner knows (R2), has the key pair generated on the token (R3) and writes a PKCS#10 request
 * signed by that key; renew makes a new key and request on the same token for the renewal
 * application of a certificate (R7), which keeps working until its successor is imported.
 */
#include "cli-admin.h"

#include <getopt.h>
#include <libgen.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <openssl/pem.h>

#include "pf-codec.h"

static const char activate_usage[] =
	"Usage: paraf activate --application ID [--token SERIAL] [-o FILE] [--resume]\n"
	"           [--module PATH]... [--pinentry PATH] [--policy DIR] [--json]\n"
	"\n"
	"The owner's activation, from the owner's own account only (R4). The dialog asks the\n"
	"one-time activation code the security officer gave you, then your new passphrase,\n"
	"twice (R2: long enough, not your NIK, NIP or birth date). Then the key pair is\n"
	"generated on the token (it never leaves it, R3) and a certificate request signed by it\n"
	"is written to <application>.csr (or FILE), for the security officer to send to the CA.\n"
	"\n"
	"  --application ID  the application the security officer registered\n"
	"  --token SERIAL    the token's serial (default: the registered one)\n"
	"  -o, --output FILE the request's file (default ./<application>.csr; never overwritten)\n"
	"  --resume          the passphrase is set already (an earlier run stopped after it): ask\n"
	"                    it once and go on with the key and the request\n";

static const char renew_usage[] =
	"Usage: paraf renew --cert ID [-o FILE] [--module PATH]... [--pinentry PATH]\n"
	"           [--policy DIR] [--json]\n"
	"\n"
	"Renewal before expiry (R7), from the owner's own account only (R4): a new key pair on\n"
	"the same token and a new certificate request, for the renewal application of the\n"
	"certificate ('paraf admin register --renews ID' by the security officer; in a policy\n"
	"directory you may write, paraf registers it itself). Your passphrase is asked once. The\n"
	"old certificate keeps working until the new one is imported.\n";

static int owner_activate(struct cli_ctx *ctx, int argc, char **argv);
static int owner_renew(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_cmd cli_cmd_activate = {
	"activate", "activate your token: passphrase, key, request (R4)", activate_usage,
	owner_activate,
};
const struct cli_cmd cli_cmd_renew = {
	"renew", "a new key and request before expiry (R7)", renew_usage, owner_renew,
};

/* One run of the owner's flow. */
struct owner_run {
	struct cli_prov *pv;
	const struct pol_owner *o; /* the application */
	const char *out;           /* the request's file */
	char *out_alloc;
	char *token_id;
	uint8_t ck_id[TOK_CKA_ID_MAX];
	size_t ck_id_len;
	char *key_hex;
	bool ec;
	struct pf_secret *pass;    /* the owner's passphrase */
	uint8_t *spki;
	size_t spki_len;
	unsigned min_pin, max_pin;
	bool key_exists;
};

static void
owner_run_release(struct owner_run *w)
{
	free(w->out_alloc);
	free(w->token_id);
	free(w->key_hex);
	free(w->spki);
	w->pass = pf_secret_free(w->pass);
}

static int
owner_parse(struct cli_prov *pv, struct cli_ctx *ctx, int argc, char **argv,
	const struct option *opts, const char **app, const char **serial, const char **cert,
	const char **out, bool *resume)
{
	int c, r;

	r = cli_opts_exact(pv->cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			*app = optarg;
			break;
		case 'T':
			*serial = optarg;
			break;
		case 'c':
			*cert = optarg;
			break;
		case 'o':
			if (!*optarg)
				return cli_usage_error(pv->cmd, "%s: '--output' needs a file name",
					pv->cmd->name);
			*out = optarg;
			break;
		case 'R':
			*resume = true;
			break;
		default:
			r = cli_prov_opt(pv, ctx, c, argv);
			if (r != CLI_OPT_CONTINUE)
				return r;
		}
	}
	if (optind < argc)
		return cli_usage_error(pv->cmd, "%s: unexpected argument '%s'", pv->cmd->name,
			argv[optind]);
	return CLI_OPT_CONTINUE;
}

/* Everything checked before a token or a dialog is touched: the output file and the token. */
static int
owner_prepare(struct owner_run *w, const char *out)
{
	struct cli_prov *pv = w->pv;
	const struct pol_owner *o = w->o;
	struct tok_admin_req req = {};
	struct tok_admin_reply rep = {};
	uint32_t flags = 0;
	char err[512];
	int r;

	if (out)
		w->out = out;
	else if (asprintf(&w->out_alloc, "%s.csr", o->application) < 0)
		return CLI_EXIT_LOCAL;
	else
		w->out = w->out_alloc;
	if (access(w->out, F_OK) == 0) {
		cli_error("%s: '%s' exists: it is never overwritten (give another with -o)",
			pv->cmd->name, w->out);
		return CLI_EXIT_LOCAL;
	}
	{
		_cleanup_free_ char *copy = strdup(w->out);

		if (!copy || access(dirname(copy), W_OK) < 0) {
			cli_error("%s: cannot write '%s' there: %s", pv->cmd->name, w->out,
				copy ? strerror(errno) : "out of memory");
			return CLI_EXIT_LOCAL;
		}
	}
	r = cli_key_id_of(o, w->ck_id, sizeof(w->ck_id), &w->ck_id_len);
	if (r < 0 || !(w->key_hex = pf_hex_encode(w->ck_id, w->ck_id_len)))
		return CLI_EXIT_LOCAL;
	/* R3: the policy's [keys] algorithm; EC P-256 unless RSA 3072 is asked for. */
	w->ec = !pv->policy->pol.key_rsa;

	r = cli_prov_link(pv);
	if (r != CLI_EXIT_OK)
		return r;
	r = cli_prov_token_find(pv, o->token_serial, &w->token_id, &flags);
	if (r == -ENOENT)
		return cli_prov_refuse(pv, o, CLI_EXIT_NO_TOKEN, NULL, "token-not-present",
			"token %s of application %s is not present: insert it", o->token_serial,
			o->application);
	if (r < 0)
		return CLI_EXIT_NO_TOKEN;
	if (flags & TOK_PIN_LOCKED)
		return cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, "R9", "pin-locked",
			"token %s is locked: report it to the security officer (an inaccessible key is "
			"an incident, R9)", o->token_serial);
	/* Is the key there already (an earlier run got that far)? */
	req.type = TOK_MSG_PUBKEY;
	req.token_id = w->token_id;
	req.ck_id.p = w->ck_id;
	req.ck_id.n = w->ck_id_len;
	if (cli_prov_admin_call(pv, &req, CLI_PROV_TIMEOUT_MS, &rep) < 0)
		return CLI_EXIT_NO_TOKEN;
	w->min_pin = rep.min_pin;
	w->max_pin = rep.max_pin;
	if (rep.err == TOK_OK) {
		w->key_exists = true;
		w->spki = rep.spki.p;
		w->spki_len = rep.spki.n;
		rep.spki.p = NULL;
	} else if (rep.err != TOK_ERR_KEY_NOT_FOUND) {
		cli_prov_tok_message(rep.err, rep.pin_flags, rep.detail, err, sizeof(err));
		tok_admin_reply_release(&rep);
		return cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, NULL, "token-refused",
			"cannot read token %s: %s", o->token_serial, err);
	}
	tok_admin_reply_release(&rep);
	return CLI_EXIT_OK;
}

static int
ask_one(struct owner_run *w, const char *what, const char *desc, const char *prompt,
	struct pf_secret **ret)
{
	int r = cli_prov_ask(w->pv, w->pv->cmd == &cli_cmd_renew
			? "paraf: perpanjangan sertifikat (renewal)"
			: "paraf: aktivasi sertifikat (activation)", desc, prompt, NULL, ret);

	return r < 0 ? cli_prov_ask_failed(w->pv, w->o, what, r) : CLI_EXIT_OK;
}

static char *
dialog_head(const struct pol_owner *o, const char *serial)
{
	char *s;

	if (asprintf(&s, "Pemilik (owner): %s, %s\nAplikasi: %s, token %s\n\n", o->name,
		    pol_type_to_string(o->type), o->application, serial) < 0)
		return NULL;
	return s;
}

/* R2, R4: the activation code, then the owner's own passphrase, twice; then SET_PIN. */
static int
owner_set_passphrase(struct owner_run *w)
{
	struct cli_prov *pv = w->pv;
	const struct pol_owner *o = w->o;
	_cleanup_free_ char *head = dialog_head(o, o->token_serial), *d1 = NULL, *d2 = NULL;
	struct pf_secret *typed = NULL, *code = NULL, *again = NULL;
	struct tok_admin_req req = {};
	struct tok_admin_reply rep = {};
	unsigned min = pv->policy->pol.passphrase_min_length;
	char msg[256], err[512];
	int r;

	if (w->min_pin > min)
		min = w->min_pin;
	if (!head || asprintf(&d1, "%sMasukkan kode aktivasi dari petugas keamanan.\n(Enter the "
				   "activation code the security officer gave you.)", head) < 0 ||
	    asprintf(&d2, "%sPilih passphrase Anda sendiri: minimal %u karakter, bukan NIK, NIP "
			  "atau tanggal lahir. Hanya Anda yang mengetahuinya; petugas pun tidak "
			  "(R2, R4).\n(Choose your own passphrase: at least %u characters, not your "
			  "NIK, NIP or birth date. Only you know it, not even the security officer.)",
		    head, min, min) < 0) {
		d1 = d2 = NULL;
		return CLI_EXIT_LOCAL;
	}
	r = ask_one(w, "the activation code", d1, "Kode aktivasi / activation code:", &typed);
	if (r != CLI_EXIT_OK)
		return r;
	r = cli_activation_code_normalize(typed, &code);
	typed = pf_secret_free(typed);
	if (r < 0) {
		r = cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, "R4", "activation-code-invalid",
			"the activation code is digits only (as the security officer printed it); "
			"nothing was changed");
		goto out;
	}
	r = ask_one(w, "the new passphrase", d2, "Passphrase baru / new passphrase:", &w->pass);
	if (r != CLI_EXIT_OK)
		goto out;
	/* R2, R4: not even the code as the operator saw it printed, in groups. */
	if (cli_passphrase_holds_code(w->pass->data, w->pass->len, code->data)) {
		snprintf(msg, sizeof(msg), "the passphrase must not contain the activation code");
		r = -EINVAL;
	} else
		r = pol_passphrase_check(&pv->policy->pol, o, w->pass->data, w->pass->len, code->data,
			w->min_pin, w->max_pin, msg, sizeof(msg));
	if (r < 0) {
		r = cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, "R2", "weak-passphrase",
			"the passphrase was refused: %s; nothing was changed", msg);
		goto out;
	}
	r = ask_one(w, "the passphrase again", d2, "Ulangi passphrase / repeat it:", &again);
	if (r != CLI_EXIT_OK)
		goto out;
	if (again->len != w->pass->len || memcmp(again->data, w->pass->data, again->len) != 0) {
		r = cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, "R2", "passphrase-mismatch",
			"the two passphrases differ; nothing was changed");
		goto out;
	}
	req.type = TOK_MSG_SET_PIN;
	req.token_id = w->token_id;
	req.pin = code;
	req.new_pin = w->pass;
	if (cli_prov_admin_call(pv, &req, CLI_PROV_TIMEOUT_MS, &rep) < 0) {
		r = CLI_EXIT_NO_TOKEN;
		goto out;
	}
	if (rep.err != TOK_OK) {
		cli_prov_tok_message(rep.err, rep.pin_flags, rep.detail, err, sizeof(err));
		if (rep.err == TOK_ERR_PIN_INCORRECT || rep.err == TOK_ERR_PIN_LOCKED)
			r = cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, "R4",
				rep.err == TOK_ERR_PIN_LOCKED ? "pin-locked" : "pin-incorrect",
				"the activation code is wrong: %s; nothing was changed", err);
		else
			r = cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, "R2", "token-refused",
				"the token refused the new passphrase: %s; nothing was changed", err);
		goto out;
	}
	r = CLI_EXIT_OK;
out:
	tok_admin_reply_release(&rep);
	pf_secret_free(typed);
	pf_secret_free(code);
	pf_secret_free(again);
	return r;
}

/* The passphrase set earlier: asked once (renew, --resume, an activation that got further). */
static int
owner_ask_passphrase(struct owner_run *w)
{
	_cleanup_free_ char *head = dialog_head(w->o, w->o->token_serial), *d = NULL;

	if (!head || asprintf(&d, "%sMasukkan passphrase Anda untuk membuat %s permintaan "
				  "sertifikat.\n(Your passphrase, to make the %s certificate request.)",
			     head, w->key_exists ? "ulang" : "kunci baru dan", w->key_exists
				     ? "key's" : "new key and its") < 0) {
		d = NULL;
		return CLI_EXIT_LOCAL;
	}
	return ask_one(w, "the passphrase", d, "Passphrase:", &w->pass);
}

/* R3: the key pair, generated on the token, never leaving it. */
static int
owner_generate(struct owner_run *w)
{
	struct cli_prov *pv = w->pv;
	const struct pol_owner *o = w->o;
	const struct pol_policy *p = &pv->policy->pol;
	struct tok_admin_req req = {};
	struct tok_admin_reply rep = {};
	char label[TOK_CKA_LABEL_MAX + 1], err[512];
	int r;

	if (w->key_exists)
		return CLI_EXIT_OK;
	snprintf(label, sizeof(label), "PARAF %s", o->name);
	req.type = TOK_MSG_GENERATE;
	req.token_id = w->token_id;
	req.pin = w->pass;
	req.key_kind = w->ec ? TOK_KEY_EC_P256 : TOK_KEY_RSA_3072;
	req.ck_id.p = w->ck_id;
	req.ck_id.n = w->ck_id_len;
	req.label = label;
	/* Sign-only unless the type's usages (R6) include document protection or e-mail, which
	 * need the key to decrypt too; the helper takes that for RSA keys only (an EC key would
	 * need key agreement, which paraf does not use). */
	req.decrypt = !w->ec && (p->usage_matrix[o->type] &
				 (POL_USAGE_BIT(POL_USAGE_DOCUMENT_PROTECTION) |
				  POL_USAGE_BIT(POL_USAGE_EMAIL))) != 0;
	if (cli_prov_admin_call(pv, &req, CLI_PROV_GENERATE_TIMEOUT_MS, &rep) < 0)
		return CLI_EXIT_NO_TOKEN;
	if (rep.err != TOK_OK) {
		cli_prov_tok_message(rep.err, rep.pin_flags, rep.detail, err, sizeof(err));
		r = cli_prov_refuse(pv, o, CLI_EXIT_REFUSED,
			rep.err == TOK_ERR_KEY_EXTRACTABLE ? "R3" : NULL,
			rep.err == TOK_ERR_PIN_INCORRECT ? "pin-incorrect" : "token-refused",
			"the key could not be generated on token %s: %s%s", o->token_serial, err,
			pv->cmd == &cli_cmd_activate
				? "; your passphrase is set: try again with 'paraf activate "
				  "--application … --resume'"
				: "");
		tok_admin_reply_release(&rep);
		return r;
	}
	w->spki = rep.spki.p;
	w->spki_len = rep.spki.n;
	rep.spki.p = NULL;
	tok_admin_reply_release(&rep);
	return CLI_EXIT_OK;
}

/* Where the owner may write the registry (test mode; root's own service), the key's CKA_ID
 * is recorded now; otherwise the security officer's import-cert records it. */
static void
owner_record_key(struct owner_run *w)
{
	struct pol_owner upd = {};
	char err[512];

	if (w->o->key_id || !cli_prov_registry_writable(w->o))
		return;
	if (cli_prov_owner_copy(w->o, &upd) < 0)
		return;
	upd.key_id = strdup(w->key_hex);
	if (upd.key_id && cli_prov_registry_write(w->o->file, &upd, true, err, sizeof(err)) < 0)
		cli_warn("%s: the key's id was not recorded in the registration: %s",
			w->pv->cmd->name, err);
	cli_prov_owner_release(&upd);
}

struct sign_ctx {
	struct owner_run *w;
	struct tok_sign_reply rep;
	bool refused;
};

static int
csr_sign(void *data, const uint8_t digest[32], uint8_t **ret_sig, size_t *ret_len)
{
	struct sign_ctx *sc = data;
	struct owner_run *w = sc->w;
	int r;

	r = cli_prov_sign(w->pv, w->token_id, w->ck_id, w->ck_id_len, w->ec, w->pass, digest,
		ret_sig, ret_len, &sc->rep);
	if (r == -EACCES)
		sc->refused = true;
	return r;
}

/* The PKCS#10 request, signed by the token key, written where asked (R16). */
static int
owner_request(struct owner_run *w)
{
	struct cli_prov *pv = w->pv;
	const struct pol_owner *o = w->o;
	struct cli_csr_subject s = {};
	struct sign_ctx sc = { .w = w };
	_cleanup_free_ char *pem = NULL;
	const char *field = NULL;
	char err[512];
	size_t len = 0;
	int r;

	s.name = o->name;
	s.nip = o->nip;
	s.email = o->email;
	s.position = o->type == POL_TYPE_JABATAN ? o->position : NULL;
	s.unit = o->unit;
	s.country = "ID";
	s.decrypt = !w->ec;
	r = cli_csr_build(&s, w->spki, w->spki_len, csr_sign, &sc, &pem, &len, &field);
	if (sc.refused) {
		cli_prov_tok_message(sc.rep.err, sc.rep.pin_flags, sc.rep.detail, err, sizeof(err));
		r = cli_prov_refuse(pv, o, CLI_EXIT_REFUSED,
			sc.rep.err == TOK_ERR_PIN_INCORRECT ? "R2" : NULL,
			sc.rep.err == TOK_ERR_PIN_INCORRECT ? "pin-incorrect" : "token-refused",
			"the token did not sign the request: %s", err);
		tok_sign_reply_release(&sc.rep);
		return r;
	}
	if (r == -EINVAL)
		return cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, "R17", "subject-too-long",
			"the registration's %s does not fit a certificate subject (at most 64 "
			"characters): the security officer corrects the registration", field);
	if (r == -EBADE)
		return cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, "R3", "signature-invalid",
			"the token's signature on the request does not verify with its key");
	if (r < 0) {
		cli_error("%s: cannot build the request: %s", pv->cmd->name, strerror(-r));
		return r == -EBADMSG ? CLI_EXIT_REFUSED : CLI_EXIT_LOCAL;
	}
	r = cli_file_write_atomic(w->out, pem, len, 0);
	if (r < 0) {
		cli_error("%s: cannot write '%s': %s", pv->cmd->name, w->out, strerror(-r));
		return CLI_EXIT_LOCAL;
	}
	return CLI_EXIT_OK;
}

static int
owner_done(struct owner_run *w, const char *what, const char *outcome)
{
	struct cli_prov *pv = w->pv;
	struct cli_prov_audit au = {};
	char msg[512];
	int r;

	snprintf(msg, sizeof(msg), "application %s: %s; key %s (%s, CKA_ID %s) on token %s; "
				   "request written to %s", w->o->application, what,
		w->key_exists ? "existing" : "generated", w->ec ? "ec-p256" : "rsa-3072", w->key_hex,
		w->o->token_serial, w->out);
	au.owner = w->o;
	au.certificate = w->o->renews; /* renew: the certificate renewed */
	au.allow = true;
	au.rule = "R4";
	au.message = msg;
	au.outcome = outcome;
	cli_prov_audit(pv, &au);
	if (pv->json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "application", json_object_new_string(w->o->application));
		json_object_object_add(j, "token", json_object_new_string(w->o->token_serial));
		json_object_object_add(j, "key", json_object_new_string(w->key_hex));
		json_object_object_add(j, "request", json_object_new_string(w->out));
		r = cli_json_print(j) < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
		json_object_put(j);
		return r;
	}
	printf("wrote %s: the certificate request for application %s\n"
	       "Give it to the security officer, who sends it to the CA and, with you present,\n"
	       "imports the certificate: paraf admin import-cert CERT.pem --application %s\n",
		w->out, w->o->application, w->o->application);
	return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
}

static int
owner_activate(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "application", required_argument, NULL, 'a' },
		{ "token", required_argument, NULL, 'T' },
		{ "output", required_argument, NULL, 'o' },
		{ "resume", no_argument, NULL, 'R' },
		CLI_PROV_OPT_MODULE,
		CLI_PROV_OPT_PINENTRY,
		CLI_PROV_OPT_POLICY,
		CLI_COMMON_OPTIONS,
		{},
	};
	struct cli_prov pv = { .cmd = &cli_cmd_activate, .method = "owner.activate",
		.json = ctx->json };
	struct owner_run w = { .pv = &pv };
	const char *app = NULL, *serial = NULL, *cert = NULL, *out = NULL;
	bool resume = false;
	int r;

	r = owner_parse(&pv, ctx, argc, argv, opts, &app, &serial, &cert, &out, &resume);
	if (r != CLI_OPT_CONTINUE)
		return r;
	if (!app)
		return cli_usage_error(pv.cmd, "activate: missing '--application ID' (the security "
						"officer gives it to you)");
	if (!cli_application_id_valid(app))
		return cli_usage_error(pv.cmd, "activate: '%s' is not an application id", app);
	r = cli_prov_policy_load(&pv);
	if (r != CLI_EXIT_OK)
		goto out;
	w.o = cli_prov_application_find(&pv, app);
	if (!w.o) {
		cli_error("activate: no application '%s' is registered (ask the security officer)",
			app);
		r = CLI_EXIT_REFUSED;
		goto out;
	}
	r = cli_prov_owner_check(&pv, w.o);
	if (r != CLI_EXIT_OK)
		goto out;
	if (w.o->cert_id[0]) {
		r = cli_prov_refuse(&pv, w.o, CLI_EXIT_REFUSED, "R7", "has-certificate",
			"application %s has its certificate already: 'paraf renew --cert %.16s' makes a "
			"new key and request", app, w.o->cert_id);
		goto out;
	}
	if (!w.o->token_serial) {
		r = cli_prov_refuse(&pv, w.o, CLI_EXIT_REFUSED, "R4", "not-initialised",
			"the token of application %s is not initialised yet: the security officer runs "
			"'paraf admin init-token' and gives you the activation code", app);
		goto out;
	}
	if (serial && !streq(serial, w.o->token_serial)) {
		r = cli_prov_refuse(&pv, w.o, CLI_EXIT_REFUSED, "R4", "token-mismatch",
			"application %s is registered with token %s, not %s", app,
			w.o->token_serial, serial);
		goto out;
	}
	r = owner_prepare(&w, out);
	if (r != CLI_EXIT_OK)
		goto out;
	if (w.key_exists || resume)
		r = owner_ask_passphrase(&w);
	else
		r = owner_set_passphrase(&w);
	if (r == CLI_EXIT_OK)
		r = owner_generate(&w);
	if (r != CLI_EXIT_OK)
		goto out;
	owner_record_key(&w);
	r = owner_request(&w);
	if (r == CLI_EXIT_OK)
		r = owner_done(&w, w.key_exists ? "request made again" : "passphrase chosen by the owner",
			"activated");
out:
	owner_run_release(&w);
	cli_prov_release(&pv);
	return r;
}

/* The renewal application of old: the security officer's, else (where the caller may write
 * the registry) one registered here, copying old's registration (R7). */
static int
renewal_application(struct cli_prov *pv, const struct pol_owner *old, struct pol_owner *ret_new,
	const struct pol_owner **ret)
{
	const struct pol_policy *p = &pv->policy->pol;
	struct cli_prov_audit au = {};
	_cleanup_free_ char *path = NULL;
	char app[CLI_PROV_APP_ID_MAX + 1], err[1024], msg[512];
	int r = -EEXIST;

	for (size_t i = 0; i < p->n_owners; i++)
		if (!p->owners[i].cert_id[0] && p->owners[i].renews &&
		    streq(p->owners[i].renews, old->cert_id) && p->owners[i].application) {
			*ret = &p->owners[i];
			return CLI_EXIT_OK;
		}
	if (!cli_prov_registry_writable(old))
		return cli_prov_refuse(pv, old, CLI_EXIT_REFUSED, "R13", "no-renewal-application",
			"no renewal application for certificate %.16s…: the security officer registers "
			"it first ('paraf admin register --renews %s'), then run this again",
			old->cert_id, old->cert_id);
	if (cli_prov_owner_copy(old, ret_new) < 0)
		return CLI_EXIT_LOCAL;
	memset(ret_new->cert_id, 0, sizeof(ret_new->cert_id));
	free(ret_new->key_id);
	ret_new->key_id = NULL;
	free(ret_new->renews);
	ret_new->renews = strdup(old->cert_id);
	for (int tries = 0; r == -EEXIST && tries < 8; tries++) {
		uint8_t rnd[2];

		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd) ||
		    cli_application_id(old->account, time(NULL), rnd, app, sizeof(app)) < 0)
			return CLI_EXIT_LOCAL;
		free(path);
		free(ret_new->application);
		free(ret_new->file);
		ret_new->file = NULL;
		ret_new->application = strdup(app);
		if (!ret_new->application ||
		    asprintf(&path, "%s/owners.d/%s.conf", pv->policy_dir, app) < 0) {
			path = NULL;
			return CLI_EXIT_LOCAL;
		}
		r = cli_prov_registry_write(path, ret_new, false, err, sizeof(err));
	}
	if (r < 0) {
		cli_error("%s: cannot register the renewal: %s", pv->cmd->name, err);
		return CLI_EXIT_LOCAL;
	}
	ret_new->file = TAKE_PTR(path);
	snprintf(msg, sizeof(msg), "application %s registered to renew certificate %s", app,
		old->cert_id);
	au.owner = ret_new;
	au.certificate = old->cert_id;
	au.allow = true;
	au.rule = "R7";
	au.message = msg;
	au.outcome = "registered";
	cli_prov_audit(pv, &au);
	*ret = ret_new;
	return CLI_EXIT_OK;
}

static int
owner_renew(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cert", required_argument, NULL, 'c' },
		{ "output", required_argument, NULL, 'o' },
		CLI_PROV_OPT_MODULE,
		CLI_PROV_OPT_PINENTRY,
		CLI_PROV_OPT_POLICY,
		CLI_COMMON_OPTIONS,
		{},
	};
	struct cli_prov pv = { .cmd = &cli_cmd_renew, .method = "owner.renew", .json = ctx->json };
	struct owner_run w = { .pv = &pv };
	struct pol_owner fresh = {};
	const struct pol_owner *old = NULL;
	const struct pol_revoked *rv;
	const char *app = NULL, *serial = NULL, *cert = NULL, *out = NULL;
	bool resume = false;
	int r;

	r = owner_parse(&pv, ctx, argc, argv, opts, &app, &serial, &cert, &out, &resume);
	if (r != CLI_OPT_CONTINUE)
		return r;
	if (!cert)
		return cli_usage_error(pv.cmd, "renew: missing '--cert ID' (see 'paraf certs')");
	r = cli_prov_policy_load(&pv);
	if (r == CLI_EXIT_OK)
		r = cli_prov_cert_find(&pv, cert, &old);
	if (r == CLI_EXIT_OK)
		r = cli_prov_owner_check(&pv, old);
	if (r != CLI_EXIT_OK)
		goto out;
	rv = pol_revoked_find(&pv.policy->pol, old->cert_id);
	if (rv) {
		r = cli_prov_refuse(&pv, old, CLI_EXIT_REFUSED, "R8", "revoked",
			"certificate %.16s… was revoked on %s (%s): it cannot be renewed; a new "
			"issuance starts with the security officer (R8)", old->cert_id, rv->when,
			rv->reason);
		goto out;
	}
	if (!old->token_serial) {
		r = cli_prov_refuse(&pv, old, CLI_EXIT_REFUSED, NULL, "no-token",
			"certificate %.16s… has no token in its registration", old->cert_id);
		goto out;
	}
	r = renewal_application(&pv, old, &fresh, &w.o);
	if (r != CLI_EXIT_OK)
		goto out;
	if (!w.o->token_serial) {
		r = cli_prov_refuse(&pv, w.o, CLI_EXIT_REFUSED, NULL, "no-token",
			"renewal application %s names no token", w.o->application);
		goto out;
	}
	r = owner_prepare(&w, out);
	if (r == CLI_EXIT_OK)
		r = owner_ask_passphrase(&w);
	if (r == CLI_EXIT_OK)
		r = owner_generate(&w);
	if (r != CLI_EXIT_OK)
		goto out;
	owner_record_key(&w);
	r = owner_request(&w);
	if (r == CLI_EXIT_OK)
		r = owner_done(&w, "renewal (the old certificate stays valid until the new one is "
				   "imported)", "renewed");
out:
	owner_run_release(&w);
	cli_prov_owner_release(&fresh);
	cli_prov_release(&pv);
	return r;
}
