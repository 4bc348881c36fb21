/*
 * `paraf admin revoke`, `incident` and `transfer`: the local revocation list (R8), which only
 * grows. revoke appends one certificate with its ground; incident records a lost, damaged,
 * inaccessible or misused token in incidents.log and revokes every certificate registered with
 * it in one step (R9); transfer revokes a jabatan certificate whose holder left the post (R18).
 */
#include "cli-admin.h"

#include <getopt.h>
#include <pwd.h>

static const char revoke_usage[] =
	"Usage: paraf admin revoke --cert ID --reason REASON [--note TEXT] [--policy DIR] [--json]\n"
	"\n"
	"Revokes a certificate locally and for good (R8): appends '<id> <time> <reason> [note]'\n"
	"to revoked.list, which parafd reads for every signature. A certificate revoked already\n"
	"is refused ('already revoked on …'). Nothing removes a revocation: using the certificate\n"
	"again needs a new issuance.\n"
	"\n"
	"  --cert ID        the certificate: 64 hex digits, or a unique prefix (at least 8) of a\n"
	"                   registered one\n"
	"  --reason REASON  left-post, transferred, retired, deceased, violation, key-lost,\n"
	"                   key-damaged, key-compromise (security incidents, R9) or superseded\n"
	"  --note TEXT      e.g. the decree; one line, at most 200 characters\n";

static const char incident_usage[] =
	"Usage: paraf admin incident --token SERIAL --kind KIND [--note TEXT] [--policy DIR] [--json]\n"
	"\n"
	"Records a security incident (R9) in incidents.log and the audit record, and revokes at\n"
	"once every certificate registered with the token:\n"
	"  lost → key-lost, damaged → key-damaged, inaccessible → key-lost,\n"
	"  suspected-misuse → key-compromise.\n"
	"The owner applies again ('paraf admin register' with a new token).\n";

static const char transfer_usage[] =
	"Usage: paraf admin transfer --cert ID [--note TEXT] [--policy DIR] [--json]\n"
	"\n"
	"The holder of a position (jabatan) certificate left the post: revokes it with the reason\n"
	"'transferred' (R18). Refused for individual and system certificates ('paraf admin\n"
	"revoke --reason left-post' is for people leaving their post).\n";

static int admin_revoke(struct cli_ctx *ctx, int argc, char **argv);
static int admin_incident(struct cli_ctx *ctx, int argc, char **argv);
static int admin_transfer(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_cmd cli_cmd_admin_revoke = {
	"admin revoke", "revoke a certificate for good", revoke_usage, admin_revoke,
};
const struct cli_cmd cli_cmd_admin_incident = {
	"admin incident", "record a token incident, revoke its certificates", incident_usage,
	admin_incident,
};
const struct cli_cmd cli_cmd_admin_transfer = {
	"admin transfer", "revoke a jabatan certificate at a transfer", transfer_usage,
	admin_transfer,
};

struct rev_args {
	const char *cert, *reason, *note, *token, *kind;
};

static int
rev_parse(struct cli_prov *pv, struct cli_ctx *ctx, int argc, char **argv, struct rev_args *a,
	const struct option *opts)
{
	int c, r;

	r = cli_opts_exact(pv->cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a->cert = optarg;
			break;
		case 'r':
			a->reason = optarg;
			break;
		case 'n':
			a->note = optarg;
			break;
		case 'T':
			a->token = optarg;
			break;
		case 'k':
			a->kind = optarg;
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
	if (a->note && !cli_text_line_ok(a->note, CLI_PROV_NOTE_MAX))
		return cli_usage_error(pv->cmd, "%s: '--note' must be one line of at most %d "
						"characters", pv->cmd->name, CLI_PROV_NOTE_MAX);
	return CLI_OPT_CONTINUE;
}

/* The certificate an argument names: a full id (registered or not), or a registered one's
 * unique prefix. */
static int
cert_arg(struct cli_prov *pv, const char *arg, char ret[CLI_CERT_ID_LEN + 1])
{
	_cleanup_free_ char *hex = NULL;
	const struct pol_owner *o;
	int r;

	r = cli_hex_normalize(arg, &hex);
	if (r == -ENOMEM)
		return CLI_EXIT_LOCAL;
	if (r >= 0 && strlen(hex) == CLI_CERT_ID_LEN) {
		memcpy(ret, hex, CLI_CERT_ID_LEN + 1);
		return CLI_EXIT_OK;
	}
	r = cli_prov_cert_find(pv, arg, &o);
	if (r == CLI_EXIT_OK)
		memcpy(ret, o->cert_id, CLI_CERT_ID_LEN + 1);
	return r;
}

static int
revoked_json(const char *id, const char *reason)
{
	json_object *j = json_object_new_object();
	int r;

	json_object_object_add(j, "certificate", json_object_new_string(id));
	json_object_object_add(j, "reason", json_object_new_string(reason));
	r = cli_json_print(j) < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
	json_object_put(j);
	return r;
}

static int
admin_revoke(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cert", required_argument, NULL, 'c' },
		{ "reason", required_argument, NULL, 'r' },
		{ "note", required_argument, NULL, 'n' },
		CLI_PROV_OPT_POLICY,
		CLI_COMMON_OPTIONS,
		{},
	};
	struct cli_prov pv = { .cmd = &cli_cmd_admin_revoke, .method = "admin.revoke",
		.json = ctx->json };
	struct rev_args a = {};
	char id[CLI_CERT_ID_LEN + 1];
	int r;

	r = rev_parse(&pv, ctx, argc, argv, &a, opts);
	if (r != CLI_OPT_CONTINUE)
		return r;
	if (!a.cert)
		return cli_usage_error(pv.cmd, "%s: missing '--cert ID'", pv.cmd->name);
	if (!a.reason || !cli_revoke_reason_valid(a.reason))
		return cli_usage_error(pv.cmd,
			"%s: '--reason' must be left-post, transferred, retired, deceased, violation, "
			"key-lost, key-damaged, key-compromise or superseded (R8)", pv.cmd->name);
	r = cli_prov_policy_load(&pv);
	if (r == CLI_EXIT_OK)
		r = cli_prov_operator_check(&pv);
	if (r == CLI_EXIT_OK)
		r = cert_arg(&pv, a.cert, id);
	if (r == CLI_EXIT_OK)
		r = cli_prov_revoke(&pv, id, a.reason, a.note,
			cli_revoke_reason_is_incident(a.reason) ? "R9" : "R8");
	if (r == CLI_EXIT_OK && pv.json)
		r = revoked_json(id, a.reason);
	cli_prov_release(&pv);
	return r;
}

static int
admin_incident(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "token", required_argument, NULL, 'T' },
		{ "kind", required_argument, NULL, 'k' },
		{ "note", required_argument, NULL, 'n' },
		CLI_PROV_OPT_POLICY,
		CLI_COMMON_OPTIONS,
		{},
	};
	struct cli_prov pv = { .cmd = &cli_cmd_admin_incident, .method = "admin.incident",
		.json = ctx->json };
	struct rev_args a = {};
	struct cli_prov_audit au = {};
	const struct pol_policy *p;
	const char *reason;
	struct passwd *pw;
	json_object *revoked = NULL;
	_cleanup_free_ char *line = NULL, *note = NULL;
	char when[32], msg[512];
	size_t n_certs = 0, n_revoked = 0;
	time_t now = time(NULL);
	struct tm tm;
	int r;

	r = rev_parse(&pv, ctx, argc, argv, &a, opts);
	if (r != CLI_OPT_CONTINUE)
		return r;
	if (!a.token || !cli_text_line_ok(a.token, TOK_SERIAL_MAX))
		return cli_usage_error(pv.cmd, "%s: missing '--token SERIAL' (1 to %d characters)",
			pv.cmd->name, TOK_SERIAL_MAX);
	reason = cli_incident_reason(a.kind);
	if (!reason)
		return cli_usage_error(pv.cmd, "%s: '--kind' must be lost, damaged, inaccessible or "
						"suspected-misuse (R9)", pv.cmd->name);
	r = cli_prov_policy_load(&pv);
	if (r == CLI_EXIT_OK)
		r = cli_prov_operator_check(&pv);
	if (r != CLI_EXIT_OK)
		goto out;
	p = &pv.policy->pol;
	for (size_t i = 0; i < p->n_owners; i++)
		if (p->owners[i].token_serial && streq(p->owners[i].token_serial, a.token) &&
		    p->owners[i].cert_id[0])
			n_certs++;

	/* R9: the incident first, so that it is on record even if a revocation fails. */
	pw = getpwuid(getuid());
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (asprintf(&line, "%s token %s %s by %s (uid %u): %zu certificate(s) registered%s%s\n",
		    when, a.token, a.kind, pw ? pw->pw_name : "?", (unsigned)getuid(), n_certs,
		    a.note ? "; note: " : "", a.note ? a.note : "") < 0) {
		line = NULL;
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	r = cli_prov_incident_append(&pv, line);
	if (r < 0) {
		cli_error("%s: cannot append to '%s/incidents.log': %s", pv.cmd->name, pv.policy_dir,
			strerror(-r));
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	snprintf(msg, sizeof(msg), "security incident: token %s %s; %zu certificate(s) registered "
				   "with it are revoked as %s", a.token, a.kind, n_certs, reason);
	au.allow = true;
	au.rule = "R9";
	au.reason = "incident";
	au.message = msg;
	au.outcome = "recorded";
	cli_prov_audit(&pv, &au);

	if (asprintf(&note, "incident %s%s%s", a.kind, a.note ? ": " : "", a.note ? a.note : "") < 0) {
		note = NULL;
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	if (strlen(note) > CLI_PROV_NOTE_MAX) {
		size_t k = CLI_PROV_NOTE_MAX;

		while (k > 0 && ((unsigned char)note[k] & 0xc0) == 0x80)
			k--; /* never half a UTF-8 character */
		note[k] = 0;
	}
	if (pv.json)
		revoked = json_object_new_array();
	pv.method = "admin.revoke";
	r = CLI_EXIT_OK;
	for (size_t i = 0; i < p->n_owners; i++) {
		const struct pol_owner *o = &p->owners[i];
		const struct pol_revoked *rv;
		int rr;

		if (!o->token_serial || !streq(o->token_serial, a.token))
			continue;
		if (!o->cert_id[0]) {
			cli_warn("%s: application %s (pending) uses token %s: do not continue it; the "
				 "owner applies again with another token", pv.cmd->name,
				o->application ? o->application : "?", a.token);
			continue;
		}
		rv = pol_revoked_find(p, o->cert_id);
		if (rv) {
			fprintf(stderr, "paraf: %s: certificate %.16s… was revoked already on %s (%s)\n",
				pv.cmd->name, o->cert_id, rv->when, rv->reason);
			continue;
		}
		rr = cli_prov_revoke(&pv, o->cert_id, reason, note, "R9");
		if (rr != CLI_EXIT_OK)
			r = rr;
		else {
			n_revoked++;
			if (revoked)
				json_object_array_add(revoked, json_object_new_string(o->cert_id));
		}
	}
	pv.method = "admin.incident";
	if (!n_certs)
		cli_warn("%s: no registered certificate uses token %s; the incident is recorded",
			pv.cmd->name, a.token);
	if (revoked) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "token", json_object_new_string(a.token));
		json_object_object_add(j, "kind", json_object_new_string(a.kind));
		json_object_object_add(j, "reason", json_object_new_string(reason));
		json_object_object_add(j, "revoked", revoked);
		if (cli_json_print(j) < 0)
			r = CLI_EXIT_LOCAL;
		json_object_put(j);
	} else {
		printf("incident recorded: token %s %s; %zu certificate(s) revoked (%s)\n", a.token,
			a.kind, n_revoked, reason);
		if (fflush(stdout) != 0)
			r = CLI_EXIT_LOCAL;
	}
out:
	cli_prov_release(&pv);
	return r;
}

static int
admin_transfer(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cert", required_argument, NULL, 'c' },
		{ "note", required_argument, NULL, 'n' },
		CLI_PROV_OPT_POLICY,
		CLI_COMMON_OPTIONS,
		{},
	};
	struct cli_prov pv = { .cmd = &cli_cmd_admin_transfer, .method = "admin.transfer",
		.json = ctx->json };
	struct rev_args a = {};
	const struct pol_owner *o = NULL;
	int r;

	r = rev_parse(&pv, ctx, argc, argv, &a, opts);
	if (r != CLI_OPT_CONTINUE)
		return r;
	if (!a.cert)
		return cli_usage_error(pv.cmd, "%s: missing '--cert ID'", pv.cmd->name);
	r = cli_prov_policy_load(&pv);
	if (r == CLI_EXIT_OK)
		r = cli_prov_operator_check(&pv);
	if (r == CLI_EXIT_OK)
		r = cli_prov_cert_find(&pv, a.cert, &o);
	if (r != CLI_EXIT_OK)
		goto out;
	/* R18: a position certificate goes with the post; a person's does not. */
	if (o->type != POL_TYPE_JABATAN) {
		r = cli_prov_refuse(&pv, o, CLI_EXIT_REFUSED, "R18", "not-jabatan",
			"certificate %.16s… is a%s %s certificate: only a jabatan (position) certificate "
			"is revoked with its post (R18); for a person who left their post use 'paraf "
			"admin revoke --reason left-post'", o->cert_id,
			o->type == POL_TYPE_INDIVIDUAL ? "n" : "", pol_type_to_string(o->type));
		goto out;
	}
	r = cli_prov_revoke(&pv, o->cert_id, "transferred", a.note, "R18");
	if (r == CLI_EXIT_OK && pv.json)
		r = revoked_json(o->cert_id, "transferred");
out:
	cli_prov_release(&pv);
	return r;
}
