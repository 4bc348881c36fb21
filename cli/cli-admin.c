/*
 * `paraf admin`: the security officer's (operator's) provisioning commands, and two of them:
 * `register` writes an applicant's registration (R17, R18) as a pending application in
 * owners.d, `list` shows the registry with each entry's status. The subcommands live in
 * cli-admin-token.c (init-token, import-cert) and cli-admin-revoke.c (revoke, incident,
 * transfer). There is deliberately no command that removes a revocation (R8).
 */
#include "cli-admin.h"

#include <getopt.h>
#include <pwd.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <openssl/pem.h>

#include "paraf-config.h"

static const char admin_usage[] =
	"Usage: paraf admin SUBCOMMAND [OPTIONS]\n"
	"\n"
	"The security officer's provisioning commands (root, or a member of the group\n"
	"'paraf-admin'); the owner's own steps are 'paraf activate' and 'paraf renew'.\n"
	"\n"
	"  register     register an applicant: a pending application in owners.d (R17, R18)\n"
	"  init-token   initialise the applicant's token and issue a one-time activation code\n"
	"  import-cert  check the issued certificate against the registration and the token's\n"
	"               key, and store it on the token (R7)\n"
	"  revoke       revoke a certificate locally, for good (R8)\n"
	"  incident     record a lost, damaged or misused token and revoke its certificates (R9)\n"
	"  transfer     revoke a jabatan certificate whose holder left the post (R18)\n"
	"  list         the registry: applications, certificates and their status\n"
	"  backup       back up the registry, policy and audit log to an archive (R15)\n"
	"  restore      restore such an archive, checked first; it merges revoked.list and\n"
	"               never lifts a revocation (R15)\n"
	"\n"
	"'paraf admin SUBCOMMAND --help' describes each. Options every subcommand takes:\n"
	"  --policy DIR     the policy directory (default " PARAF_SYSCONFDIR "); with it,\n"
	"                   files of the caller are accepted, as 'parafd --policy' does (tests)\n"
	"  --json           JSON output where there is a table or a result\n"
	"\n"
	"There is no command that lifts a revocation: revocation is permanent (R8).\n";

static const char register_usage[] =
	"Usage: paraf admin register --account A --type individual|jabatan|system --name N\n"
	"           --nik NIK --nip NIP --email E [--phone P] --unit U [--position P]\n"
	"           [--decree D] [--superior S] [--token SERIAL] [--renews CERTID]\n"
	"           [--policy DIR] [--json]\n"
	"\n"
	"Registers an applicant (R17): checks every field, that the local account exists, and\n"
	"writes owners.d/<application>.conf (mode 0644, never over an existing file). Prints the\n"
	"application id, e.g. budi-20270301-3fa2, which the next steps name.\n"
	"\n"
	"  --account A    the owner's local account: only it may activate (R1, R4)\n"
	"  --type T       individual, jabatan or system (R5)\n"
	"  --name N       full name without titles (R17)\n"
	"  --nik NIK      16 digits    --nip NIP    18 digits (R17)\n"
	"  --email E      the official e-mail, on a domain of [registration] email_domains\n"
	"  --phone P      --unit U (required)    --superior S\n"
	"  --position P   the position; required for jabatan (R18)\n"
	"  --decree D     the appointment decree; required for jabatan (R18)\n"
	"  --token SERIAL the serial of the token set aside for the applicant\n"
	"  --renews ID    a renewal (R7) of this registered certificate: fields not given are\n"
	"                 taken from its registration; importing the new certificate supersedes\n"
	"                 the old one\n";

static const char list_usage[] =
	"Usage: paraf admin list [--policy DIR] [--json]\n"
	"\n"
	"The registry as a table: application, owner account, name, type, token, certificate\n"
	"(first 16 hex digits), status and days left. Status: pending (no certificate yet),\n"
	"active, expiring (renew: R7), expired, revoked, superseded (renewed), or what parafd\n"
	"would say (untrusted, non-compliant, not-yet-valid). Days are known for certificates\n"
	"imported with 'paraf admin import-cert', which keeps a copy in certs/.\n";

static int admin_register(struct cli_ctx *ctx, int argc, char **argv);
static int admin_list(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_cmd cli_cmd_admin_register = {
	"admin register", "register an applicant", register_usage, admin_register,
};
const struct cli_cmd cli_cmd_admin_list = {
	"admin list", "the registry and its status", list_usage, admin_list,
};

static int admin_run(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_cmd cli_cmd_admin = {
	"admin", "the security officer's provisioning commands", admin_usage, admin_run,
};

static const struct cli_cmd *const admin_subs[] = {
	&cli_cmd_admin_register, &cli_cmd_admin_init_token, &cli_cmd_admin_import_cert,
	&cli_cmd_admin_revoke, &cli_cmd_admin_incident, &cli_cmd_admin_transfer,
	&cli_cmd_admin_list, &cli_cmd_admin_backup, &cli_cmd_admin_restore,
};

/* Words an operator might try for lifting a revocation: each is answered, none exists. */
static const char *const unrevoke_words[] = {
	"unrevoke", "reinstate", "restore", "unrevoke-cert", "remove-revocation", "delete-revocation",
	"reactivate",
};

/* `restore` restores a backup (cli-backup.c); `restore --cert ID` asks to lift a revocation. */
static bool
means_unrevoke(const char *sub, int argc, char **argv)
{
	if (!streq(sub, "restore"))
		return true;
	for (int i = 2; i < argc; i++)
		if (streq(argv[i], "--cert") || strncmp(argv[i], "--cert=", 7) == 0)
			return true;
	return false;
}

static int
admin_run(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (!sub)
		return cli_usage_error(&cli_cmd_admin, "admin: missing SUBCOMMAND");
	if (streq(sub, "--help") || streq(sub, "-h") || streq(sub, "help")) {
		fputs(admin_usage, stdout);
		return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(unrevoke_words); i++)
		if (streq(sub, unrevoke_words[i]) && means_unrevoke(sub, argc, argv)) {
			struct cli_prov pv = { .cmd = &cli_cmd_admin, .method = "admin.unrevoke" };

			/* R8: a revoked certificate is never usable again; using it again needs a
			 * new issuance. The attempt is recorded like any refusal. */
			return cli_prov_refuse(&pv, NULL, CLI_EXIT_REFUSED, "R8", "revocation-permanent",
				"revocation is permanent (R8): a revoked certificate can never be used "
				"again, and no paraf command lifts a revocation; using it again needs a new "
				"issuance ('paraf admin register', then the owner's 'paraf activate')");
		}
	for (size_t i = 0; i < ARRAY_SIZE(admin_subs); i++)
		if (streq(admin_subs[i]->name + strlen("admin "), sub)) {
			optind = 0; /* glibc: start afresh on the subcommand's arguments */
			return admin_subs[i]->run(ctx, argc - 1, argv + 1);
		}
	return cli_usage_error(&cli_cmd_admin, "admin: unknown subcommand '%s'", sub);
}

/* --- register --------------------------------------------------------------------------- */

struct reg_args {
	const char *account, *type, *name, *nik, *nip, *email, *phone, *unit, *position, *decree,
		*superior, *token, *renews;
};

/* The rule a registration field answers to, for the audit record. */
static const char *
field_rule(const char *field)
{
	if (streq(field, "position") || streq(field, "decree"))
		return "R18";
	if (streq(field, "type"))
		return "R5";
	if (streq(field, "account"))
		return "R1";
	return "R17";
}

static int
reg_refuse(struct cli_prov *pv, const struct pol_owner *o, const char *field, const char *msg)
{
	struct cli_prov_audit a = {};
	char text[768];

	snprintf(text, sizeof(text), "--%s: %s", field, msg);
	cli_error("%s: %s", pv->cmd->name, text);
	fprintf(stderr, "Try 'paraf admin register --help'.\n");
	a.owner = o && o->account ? o : NULL;
	a.rule = field_rule(field);
	a.reason = "invalid-registration";
	a.message = text;
	cli_prov_audit(pv, &a);
	return CLI_EXIT_USAGE;
}

static int
reg_parse(struct cli_prov *pv, struct cli_ctx *ctx, int argc, char **argv, struct reg_args *a)
{
	static const struct option opts[] = {
		{ "account", required_argument, NULL, 'a' },
		{ "type", required_argument, NULL, 't' },
		{ "name", required_argument, NULL, 'n' },
		{ "nik", required_argument, NULL, 'k' },
		{ "nip", required_argument, NULL, 'i' },
		{ "email", required_argument, NULL, 'e' },
		{ "phone", required_argument, NULL, 'f' },
		{ "unit", required_argument, NULL, 'u' },
		{ "position", required_argument, NULL, 'p' },
		{ "decree", required_argument, NULL, 'd' },
		{ "superior", required_argument, NULL, 's' },
		{ "token", required_argument, NULL, 'T' },
		{ "renews", required_argument, NULL, 'R' },
		CLI_PROV_OPT_POLICY,
		CLI_COMMON_OPTIONS,
		{},
	};
	int c, r;

	r = cli_opts_exact(pv->cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		const char **dst = NULL;

		switch (c) {
		case 'a': dst = &a->account; break;
		case 't': dst = &a->type; break;
		case 'n': dst = &a->name; break;
		case 'k': dst = &a->nik; break;
		case 'i': dst = &a->nip; break;
		case 'e': dst = &a->email; break;
		case 'f': dst = &a->phone; break;
		case 'u': dst = &a->unit; break;
		case 'p': dst = &a->position; break;
		case 'd': dst = &a->decree; break;
		case 's': dst = &a->superior; break;
		case 'T': dst = &a->token; break;
		case 'R': dst = &a->renews; break;
		default:
			r = cli_prov_opt(pv, ctx, c, argv);
			if (r != CLI_OPT_CONTINUE)
				return r;
		}
		if (dst)
			*dst = optarg;
	}
	if (optind < argc)
		return cli_usage_error(pv->cmd, "%s: unexpected argument '%s'", pv->cmd->name,
			argv[optind]);
	return CLI_OPT_CONTINUE;
}

/* A renewal takes what is not given from the registration it renews. */
static int
reg_from_renewed(struct cli_prov *pv, struct reg_args *a, const struct pol_owner **ret_old)
{
	const struct pol_policy *p = &pv->policy->pol;
	const struct pol_owner *old = NULL;
	const struct pol_revoked *rv;
	int r;

	r = cli_prov_cert_find(pv, a->renews, &old);
	if (r != CLI_EXIT_OK)
		return r;
	rv = pol_revoked_find(p, old->cert_id);
	if (rv)
		return cli_prov_refuse(pv, old, CLI_EXIT_REFUSED, "R8", "revoked",
			"certificate %.16s… was revoked on %s (%s): it cannot be renewed; a new "
			"issuance needs a registration without --renews (R8)", old->cert_id, rv->when,
			rv->reason);
	for (size_t i = 0; i < p->n_owners; i++)
		if (!p->owners[i].cert_id[0] && p->owners[i].renews &&
		    streq(p->owners[i].renews, old->cert_id))
			return cli_prov_refuse(pv, old, CLI_EXIT_REFUSED, "R7", "renewal-pending",
				"application %s already renews certificate %.16s…",
				p->owners[i].application ? p->owners[i].application : "?", old->cert_id);
#define FROM(f, g) if (!a->f) a->f = old->g
	FROM(account, account);
	FROM(name, name);
	FROM(nik, nik);
	FROM(nip, nip);
	FROM(email, email);
	FROM(phone, phone);
	FROM(unit, unit);
	FROM(position, position);
	FROM(decree, decree);
	FROM(superior, superior);
	FROM(token, token_serial);
#undef FROM
	if (!a->type)
		a->type = pol_type_to_string(old->type);
	a->renews = old->cert_id;
	*ret_old = old;
	return CLI_EXIT_OK;
}

static int
owners_dir_ensure(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0755) == 0)
		return chmod(dir, 0755) < 0 ? pf_negerrno() : 0; /* whatever the umask */
	if (errno != EEXIST)
		return pf_negerrno();
	if (lstat(dir, &st) < 0)
		return pf_negerrno();
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int
admin_register(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_prov pv = { .cmd = &cli_cmd_admin_register, .method = "admin.register",
		.json = ctx->json };
	struct reg_args a = {};
	const struct pol_owner *old = NULL;
	struct pol_owner o = {};
	struct cli_prov_audit au = {};
	struct passwd *pw;
	_cleanup_free_ char *dir = NULL, *path = NULL;
	const char *field = NULL;
	char app[CLI_PROV_APP_ID_MAX + 1], msg[512], err[1024];
	int r;

	r = reg_parse(&pv, ctx, argc, argv, &a);
	if (r != CLI_OPT_CONTINUE)
		return r;
	r = cli_prov_policy_load(&pv);
	if (r == CLI_EXIT_OK)
		r = cli_prov_operator_check(&pv);
	if (r == CLI_EXIT_OK && a.renews)
		r = reg_from_renewed(&pv, &a, &old);
	if (r != CLI_EXIT_OK)
		goto out;

	/* Each field in turn, one clear message naming it. */
	{
		static const char *const names[] = { "account", "type", "name", "nik", "nip",
			"email", "phone", "unit", "position", "decree", "superior", "token" };
		const char *const vals[] = { a.account, a.type, a.name, a.nik, a.nip, a.email,
			a.phone, a.unit, a.position, a.decree, a.superior, a.token };

		for (size_t i = 0; i < ARRAY_SIZE(names); i++)
			if (vals[i] && !cli_text_line_ok(vals[i],
					     streq(names[i], "token") ? TOK_SERIAL_MAX : POL_TEXT_MAX)) {
				snprintf(msg, sizeof(msg), "must be 1 to %d characters of text on one line",
					streq(names[i], "token") ? TOK_SERIAL_MAX : POL_TEXT_MAX);
				r = reg_refuse(&pv, NULL, names[i], msg);
				goto out;
			}
	}
	if (!a.account) {
		r = reg_refuse(&pv, NULL, "account", "the owner's local account is required (R1)");
		goto out;
	}
	if (!cli_account_name_valid(a.account) || strchr(a.account, '$')) {
		r = reg_refuse(&pv, NULL, "account", "not a valid account name");
		goto out;
	}
	pw = getpwnam(a.account);
	if (!pw) {
		snprintf(msg, sizeof(msg), "there is no local account '%s' (R1)", a.account);
		r = reg_refuse(&pv, NULL, "account", msg);
		goto out;
	}
	if (pw->pw_uid == 0 && !pv.policy->pol.root_may_own) {
		r = reg_refuse(&pv, NULL, "account",
			"root may own a certificate only with '[owner] root_may_own = yes' (R1)");
		goto out;
	}
	o.account = (char *)a.account;
	o.type = a.type ? pol_type_from_string(a.type) : POL_TYPE_NONE;
	if (o.type == POL_TYPE_NONE) {
		r = reg_refuse(&pv, NULL, "type",
			"the certificate type must be individual, jabatan or system (R5)");
		goto out;
	}
	o.name = (char *)a.name;
	o.nik = (char *)a.nik;
	o.nip = (char *)a.nip;
	o.email = (char *)a.email;
	o.phone = (char *)a.phone;
	o.unit = (char *)a.unit;
	o.position = (char *)a.position;
	o.decree = (char *)a.decree;
	o.superior = (char *)a.superior;
	o.token_serial = (char *)a.token;
	o.renews = (char *)a.renews;
	if (pol_registration_check(&pv.policy->pol, &o, &field, msg, sizeof(msg)) < 0) {
		r = reg_refuse(&pv, &o, field ? field : "registration", msg);
		goto out;
	}

	if (asprintf(&dir, "%s/owners.d", pv.policy_dir) < 0) {
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	r = owners_dir_ensure(dir);
	if (r < 0) {
		cli_error("%s: cannot use '%s': %s", pv.cmd->name, dir, strerror(-r));
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	/* A fresh id, never over an existing file: another one if the name is taken. */
	for (int tries = 0;; tries++) {
		uint8_t rnd[2];

		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd) ||
		    cli_application_id(a.account, time(NULL), rnd, app, sizeof(app)) < 0) {
			r = CLI_EXIT_LOCAL;
			goto out;
		}
		free(path);
		if (asprintf(&path, "%s/%s.conf", dir, app) < 0) {
			path = NULL;
			r = CLI_EXIT_LOCAL;
			goto out;
		}
		o.application = app;
		r = cli_prov_registry_write(path, &o, false, err, sizeof(err));
		if (r != -EEXIST || tries == 8)
			break;
	}
	if (r == -EINVAL) {
		r = reg_refuse(&pv, &o, "registration", err);
		goto out;
	}
	if (r < 0) {
		cli_error("%s: %s", pv.cmd->name, err);
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	snprintf(msg, sizeof(msg), "application %s registered for '%s' (%s)%s%s%s%.16s%s", app,
		a.account, pol_type_to_string(o.type), a.token ? ", token " : "",
		a.token ? a.token : "", old ? ", renewing certificate " : "", old ? old->cert_id : "",
		old ? "…" : "");
	au.owner = &o;
	au.allow = true;
	au.rule = old ? "R7" : "R17";
	au.message = msg;
	au.outcome = "registered";
	cli_prov_audit(&pv, &au);
	if (pv.json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "application", json_object_new_string(app));
		json_object_object_add(j, "file", json_object_new_string(path));
		r = cli_json_print(j) < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
		json_object_put(j);
	} else {
		printf("%s\n", app);
		r = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
		fprintf(stderr, "paraf: registered %s; next: paraf admin init-token --application %s\n",
			path, app);
	}
out:
	cli_prov_release(&pv);
	return r;
}

/* --- list ------------------------------------------------------------------------------- */

/* The copy import-cert keeps in certs/<id>.pem, trust-checked now; NULL when there is none. */
static bool
entry_facts(const struct cli_prov *pv, const struct pol_owner *o, time_t now,
	struct pol_cert_facts *ret)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ uint8_t *pem = NULL;
	unsigned char *der = NULL;
	size_t len;
	X509 *x = NULL;
	BIO *b;
	int n;
	bool ok = false;

	if (!o->cert_id[0] || asprintf(&path, "%s/certs/%s.pem", pv->policy_dir, o->cert_id) < 0)
		return false;
	if (cli_file_read_all(path, CLI_PROV_CERT_FILE_MAX, &pem, &len) < 0)
		return false;
	b = BIO_new_mem_buf(pem, (int)len);
	if (b)
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!x)
		return false;
	n = i2d_X509(x, &der);
	if (n > 0 && pol_cert_facts_from_der(der, (size_t)n, ret) >= 0 &&
	    streq(ret->id, o->cert_id)) {
		pol_trust_check(&pv->policy->trust, x, now, ret);
		ok = true;
	} else if (n > 0)
		pol_cert_facts_release(ret);
	OPENSSL_free(der);
	X509_free(x);
	return ok;
}

static int
admin_list(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = { CLI_PROV_OPT_POLICY, CLI_COMMON_OPTIONS, {} };
	static const char *const headers[] = { "APPLICATION", "ACCOUNT", "NAME", "TYPE", "TOKEN",
		"CERTIFICATE", "STATUS", "DAYS" };
	struct cli_prov pv = { .cmd = &cli_cmd_admin_list, .method = "admin.list",
		.json = ctx->json };
	_cleanup_(cli_table_freep) struct cli_table *t = NULL;
	json_object *arr = NULL;
	const struct pol_policy *p;
	time_t now = time(NULL);
	int c, r;

	r = cli_opts_exact(pv.cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		r = cli_prov_opt(&pv, ctx, c, argv);
		if (r != CLI_OPT_CONTINUE)
			return r;
	}
	if (optind < argc)
		return cli_usage_error(pv.cmd, "%s: unexpected argument '%s'", pv.cmd->name,
			argv[optind]);
	r = cli_prov_policy_load(&pv);
	if (r == CLI_EXIT_OK)
		r = cli_prov_operator_check(&pv);
	if (r != CLI_EXIT_OK)
		goto out;
	p = &pv.policy->pol;
	{
		/* The registry holds personal data (R17): who read it is on record. */
		struct cli_prov_audit au = { .allow = true, .rule = "R13", .outcome = "listed" };
		char msg[128];

		snprintf(msg, sizeof(msg), "registry of %s listed: %zu entries", pv.policy_dir,
			p->n_owners);
		au.message = msg;
		cli_prov_audit(&pv, &au);
	}
	if (pv.json)
		arr = json_object_new_array();
	else if (cli_table_new(ARRAY_SIZE(headers), headers, &t) < 0) {
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	for (size_t i = 0; i < p->n_owners; i++) {
		const struct pol_owner *o = &p->owners[i];
		struct pol_cert_facts f = {};
		struct cli_entry_status st;
		bool have = entry_facts(&pv, o, now, &f);
		char days[32] = "-", cert[20] = "-";

		cli_entry_status(p, o, have ? &f : NULL, now, &st);
		if (st.days_known)
			snprintf(days, sizeof(days), "%ld", st.days_left);
		if (o->cert_id[0])
			snprintf(cert, sizeof(cert), "%.16s", o->cert_id);
		if (arr) {
			json_object *e = json_object_new_object();
#define S(k, v) json_object_object_add(e, k, (v) ? json_object_new_string(v) : NULL)
			S("application", o->application);
			S("account", o->account);
			S("name", o->name);
			S("type", pol_type_to_string(o->type));
			S("token", o->token_serial);
			S("certificate", o->cert_id[0] ? o->cert_id : NULL);
			S("key", o->key_id);
			S("renews", o->renews);
			S("status", st.status);
			S("reason", st.reason);
			S("file", o->file);
#undef S
			json_object_object_add(e, "days_left",
				st.days_known ? json_object_new_int64(st.days_left) : NULL);
			json_object_array_add(arr, e);
		} else {
			const char *cells[] = { o->application, o->account, o->name,
				pol_type_to_string(o->type), o->token_serial, cert, st.status, days };

			if (cli_table_add(t, cells) < 0)
				r = CLI_EXIT_LOCAL;
		}
		if (have)
			pol_cert_facts_release(&f);
	}
	if (arr) {
		r = cli_json_print(arr) < 0 ? CLI_EXIT_LOCAL : r;
		json_object_put(arr);
	} else if (r == CLI_EXIT_OK) {
		bool blank = false;

		if (cli_table_print(t, stdout) < 0)
			r = CLI_EXIT_LOCAL;
		for (size_t i = 0; i < p->n_owners && r == CLI_EXIT_OK; i++) {
			const struct pol_owner *o = &p->owners[i];
			struct pol_cert_facts f = {};
			struct cli_entry_status st;
			bool have = entry_facts(&pv, o, now, &f);

			cli_entry_status(p, o, have ? &f : NULL, now, &st);
			if (!streq(st.status, "active") && st.reason) {
				_cleanup_free_ char *safe = cli_sanitize(st.reason);

				printf("%s%s: %s: %s\n", blank ? "" : "\n",
					o->application ? o->application : o->cert_id, st.status,
					safe ? safe : "?");
				blank = true;
			}
			if (have)
				pol_cert_facts_release(&f);
		}
		if (fflush(stdout) != 0)
			r = CLI_EXIT_LOCAL;
	}
out:
	cli_prov_release(&pv);
	return r;
}
