/*
 * `paraf audit`: the tamper-evident audit log paraf-auditd keeps (R13, R14), for security
 * staff. `verify` checks the hash chain, its checkpoints and rotations (aud_verify); `show`
 * lists stored records with filters; `report` writes the yearly evaluation report
 * (cli-audit-report.c). Also here: the reader of the log's files, and the audit sink of the
 * `paraf` process itself (provisioning records go where parafd's go).
 */
#include "cli.h"

#include <dirent.h>
#include <inttypes.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/stat.h>

#include "ag-audit.h"
#include "ag-policy.h"
#include "ag.h"
#include "aud.h"
#include "cli-admin.h"
#include "paraf-config.h"
#include "pol.h"

static const char audit_usage[] =
	"Usage: paraf audit SUBCOMMAND [OPTIONS]\n"
	"\n"
	"The tamper-evident audit log that paraf-auditd keeps (R13), for security staff:\n"
	"\n"
	"  verify [DIR]   check every link of the hash chain, the checkpoints and the rotated\n"
	"                 files; exit 0 when intact, 1 when not, 5 when the log cannot be read\n"
	"  show           the stored records as a table, with filters\n"
	"  report         the yearly evaluation report (R14), HTML or JSON\n"
	"\n"
	"The log directory is " CLI_AUDIT_DIR_DEFAULT " unless given. 'paraf audit SUBCOMMAND\n"
	"--help' describes each.\n";

static const char verify_usage[] =
	"Usage: paraf audit verify [DIR] [--json]\n"
	"\n"
	"Verifies the audit log in DIR (default " CLI_AUDIT_DIR_DEFAULT "): every record's link\n"
	"to the one before it, the sequence numbers, the checkpoints (truncation) and the joins\n"
	"of rotated files (R13). Prints OK with the number of records and the head hash, or the\n"
	"first bad record: its file, line and sequence number and what is wrong there (edited,\n"
	"removed, reordered, inserted, truncated, malformed, broken-join).\n"
	"\n"
	"Exit status: 0 intact, 1 not intact, 5 the log cannot be read.\n";

static const char show_usage[] =
	"Usage: paraf audit show [--dir DIR] [--since T] [--until T] [--owner ACCOUNT]\n"
	"           [--cert ID] [--verdict allow|deny] [--json]\n"
	"\n"
	"The stored records as a table: sequence number, time of the decision, method, verdict,\n"
	"rule, reason, owner, certificate (first 16 hex digits), documents and outcome. It does\n"
	"not verify the chain: 'paraf audit verify' does.\n"
	"\n"
	"  --dir DIR         the log directory (default " CLI_AUDIT_DIR_DEFAULT ")\n"
	"  --since T         records from T on; T is UTC: 2027-01-15, 2027-01-15T08:00:00Z\n"
	"  --until T         records up to T; a date alone includes that whole day\n"
	"  --owner ACCOUNT   records naming this owner account\n"
	"  --cert ID         records of this certificate: 64 hex digits or a prefix of at least 8\n"
	"  --verdict V       allow or deny\n"
	"  --json            the stored records themselves, as a JSON array\n";

static const char report_usage[] =
	"Usage: paraf audit report --year YYYY [--dir DIR] [--policy DIR] [--format html|json]\n"
	"           [-o FILE] [--force]\n"
	"\n"
	"The yearly evaluation report (R14): signatures per month, per unit, per certificate type\n"
	"and per usage; refusals by rule and reason; incidents (incidents.log and the log);\n"
	"revocations of that year (revoked.list); certificates expiring in the next 90 days\n"
	"(certs/*.pem); registered certificates not used that year. The log is verified first and\n"
	"the report says whether it is intact. HTML is one self-contained page (inline SVG\n"
	"charts, printable); JSON follows the schema in doc/audit-commands.md.\n"
	"\n"
	"  --year YYYY       the year reported\n"
	"  --dir DIR         the log directory (default " CLI_AUDIT_DIR_DEFAULT ")\n"
	"  --policy DIR      the policy directory for the registry (default " PARAF_SYSCONFDIR ")\n"
	"  --format F        html (default) or json\n"
	"  -o FILE           write to FILE (default: standard output)\n"
	"  --force           replace FILE if it exists\n";

static int audit_run(struct cli_ctx *ctx, int argc, char **argv);
static int audit_verify(struct cli_ctx *ctx, int argc, char **argv);
static int audit_show(struct cli_ctx *ctx, int argc, char **argv);
static int audit_report(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_cmd cli_cmd_audit = {
	"audit", "the audit log: verify, show, yearly report (R13, R14)", audit_usage, audit_run,
};
static const struct cli_cmd cmd_verify = {
	"audit verify", "verify the hash chain", verify_usage, audit_verify,
};
static const struct cli_cmd cmd_show = {
	"audit show", "show stored records", show_usage, audit_show,
};
static const struct cli_cmd cmd_report = {
	"audit report", "the yearly evaluation report", report_usage, audit_report,
};
static const struct cli_cmd *const audit_subs[] = { &cmd_verify, &cmd_show, &cmd_report };

static int
audit_run(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (!sub)
		return cli_usage_error(&cli_cmd_audit, "audit: missing SUBCOMMAND");
	if (streq(sub, "--help") || streq(sub, "-h") || streq(sub, "help")) {
		fputs(audit_usage, stdout);
		return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(audit_subs); i++)
		if (streq(audit_subs[i]->name + strlen("audit "), sub)) {
			optind = 0;
			return audit_subs[i]->run(ctx, argc - 1, argv + 1);
		}
	return cli_usage_error(&cli_cmd_audit, "audit: unknown subcommand '%s'", sub);
}

/* --- the sink of this process ----------------------------------------------------------- */

void
cli_audit_sink_setup(void)
{
	static bool done;
	struct ag_config cfg;
	struct ag_audit_options o = { .program = "paraf" };
	_cleanup_free_ char *def = NULL;
	const char *path = getenv("PARAF_CONFIG");
	char err[512];

	if (done)
		return;
	done = true;
	ag_config_init(&cfg);
	if (!path || !*path) {
		if (asprintf(&def, "%s/parafd.conf", PARAF_SYSCONFDIR) < 0)
			def = NULL;
		path = def && access(def, F_OK) == 0 ? def : NULL;
	}
	if (path && ag_config_load(&cfg, path, err, sizeof(err)) < 0) {
		/* The defaults stay: `required`, the default socket (fail closed). */
		cli_warn("audit: %s; records go to paraf-auditd at %s", err, AG_AUDIT_SOCKET_DEFAULT);
		ag_config_release(&cfg);
		ag_config_init(&cfg);
	}
	o.mode = cfg.audit_mode;
	o.socket_path = cfg.audit_socket;
	o.timeout_ms = cfg.audit_timeout * 1000;
	(void)ag_audit_setup(&o);
	ag_config_release(&cfg);
}

/* --- reading the log -------------------------------------------------------------------- */

static int
log_name_filter(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	/* audit-YYYYMM-NNN.log: the names sort in the order of the chain */
	return n > 10 && strncmp(e->d_name, "audit-", 6) == 0 &&
	       streq(e->d_name + n - 4, ".log");
}

static int
entry_from_line(json_object *o, struct cli_audit_entry *e)
{
	json_object *seq, *t, *uid, *pid, *rec;

	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "seq", &seq) || !json_object_is_type(seq, json_type_int) ||
	    !json_object_object_get_ex(o, "time", &t) || !json_object_is_type(t, json_type_string) ||
	    !json_object_object_get_ex(o, "record", &rec) ||
	    !json_object_is_type(rec, json_type_object))
		return -EBADMSG;
	e->seq = (uint64_t)json_object_get_int64(seq);
	e->time = json_object_get_string(t);
	e->uid = json_object_object_get_ex(o, "uid", &uid) ? json_object_get_int64(uid) : -1;
	e->pid = json_object_object_get_ex(o, "pid", &pid) ? json_object_get_int64(pid) : -1;
	e->record = rec;
	e->stored = o;
	return 0;
}

static int
read_file(const char *dir, const char *name, cli_audit_fn fn, void *data, char *err,
	size_t errsz)
{
	_cleanup_free_ char *path = NULL, *line = NULL;
	FILE *f;
	size_t cap = 0;
	ssize_t n;
	uint64_t lineno = 0;
	int r = 0;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	f = fopen(path, "re");
	if (!f) {
		r = pf_negerrno();
		snprintf(err, errsz, "cannot read '%s': %s", path, strerror(-r));
		return r;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		struct cli_audit_entry e = {};
		json_object *o;

		lineno++;
		if ((size_t)n > CLI_AUDIT_LINE_MAX) {
			snprintf(err, errsz, "%s:%" PRIu64 ": a line longer than %u bytes", path, lineno,
				CLI_AUDIT_LINE_MAX);
			r = -EFBIG;
			break;
		}
		bool complete = line[n - 1] == '\n';

		if (complete)
			line[--n] = 0;
		o = complete ? json_tokener_parse(line) : NULL;
		if (!o || entry_from_line(o, &e) < 0) {
			json_object_put(o);
			if (!complete) {
				/* A crash during an append; paraf-auditd repairs it when it starts. */
				fprintf(stderr, "paraf: %s:%" PRIu64 ": a torn final line, not a record: "
						"skipped\n", path, lineno);
				break;
			}
			snprintf(err, errsz, "%s:%" PRIu64 ": not a stored record (run 'paraf audit "
					     "verify')", path, lineno);
			r = -EBADMSG;
			break;
		}
		e.file = name;
		e.line = lineno;
		r = fn(&e, data);
		json_object_put(o);
		if (r < 0)
			break;
	}
	if (r >= 0 && ferror(f)) {
		r = -EIO;
		snprintf(err, errsz, "cannot read '%s'", path);
	}
	fclose(f);
	return r < 0 ? r : 0;
}

int
cli_audit_read(const char *dir, cli_audit_fn fn, void *data, char *err, size_t errsz)
{
	struct dirent **names = NULL;
	int n, r = 0;

	n = scandir(dir, &names, log_name_filter, alphasort);
	if (n < 0) {
		r = pf_negerrno();
		snprintf(err, errsz, "cannot read the log directory '%s': %s", dir, strerror(-r));
		return r;
	}
	if (n > CLI_AUDIT_FILES_MAX) {
		snprintf(err, errsz, "'%s' holds more than %d log files", dir, CLI_AUDIT_FILES_MAX);
		r = -E2BIG;
	}
	for (int i = 0; i < n; i++) {
		if (r >= 0)
			r = read_file(dir, names[i]->d_name, fn, data, err, errsz);
		free(names[i]);
	}
	free(names);
	return r;
}

int
cli_time_parse(const char *s, bool end_of_day, time_t *ret)
{
	struct tm tm = {};
	const char *rest;
	time_t t;

	if (!s)
		return -EINVAL;
	rest = strptime(s, "%Y-%m-%d", &tm);
	if (!rest)
		return -EINVAL;
	if (*rest == 0) {
		t = timegm(&tm);
		if (t == (time_t)-1)
			return -EINVAL;
		*ret = end_of_day ? t + 86399 : t;
		return 0;
	}
	if (*rest != 'T' && *rest != ' ')
		return -EINVAL;
	rest = strptime(rest + 1, "%H:%M", &tm);
	if (!rest)
		return -EINVAL;
	if (*rest == ':') {
		rest = strptime(rest + 1, "%S", &tm);
		if (!rest)
			return -EINVAL;
	}
	if (*rest == 'Z')
		rest++;
	if (*rest)
		return -EINVAL;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*ret = t;
	return 0;
}

time_t
cli_audit_entry_time(const struct cli_audit_entry *e)
{
	const char *t = cli_json_str(e->record, "time");
	time_t v;

	if (t && cli_time_parse(t, false, &v) == 0)
		return v;
	if (e->time && cli_time_parse(e->time, false, &v) == 0)
		return v;
	return -1;
}

/* --- verify ----------------------------------------------------------------------------- */

static int
audit_verify(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = { CLI_COMMON_OPTIONS, {} };
	const struct cli_cmd *cmd = &cmd_verify;
	struct aud_report rep;
	const char *dir = CLI_AUDIT_DIR_DEFAULT;
	bool bad;
	int c, r;

	r = cli_opts_exact(cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		r = cli_opt_common(ctx, cmd, c, argv);
		if (r != CLI_OPT_CONTINUE)
			return r;
	}
	if (optind < argc)
		dir = argv[optind++];
	if (optind < argc)
		return cli_usage_error(cmd, "%s: unexpected argument '%s'", cmd->name, argv[optind]);
	memset(&rep, 0, sizeof(rep));
	rep.fault = AUD_OK;
	r = aud_verify(dir, &rep);
	/* 0: read, and rep says whether it is intact; < 0: not readable at all. */
	bad = r >= 0 && rep.fault != AUD_OK;
	if (r < 0) {
		cli_error("%s: cannot read the audit log in '%s': %s", cmd->name, dir, strerror(-r));
		return CLI_EXIT_LOCAL;
	}
	if (ctx->json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "dir", json_object_new_string(dir));
		json_object_object_add(j, "intact", json_object_new_boolean(!bad));
		json_object_object_add(j, "records", json_object_new_int64((int64_t)rep.records));
		json_object_object_add(j, "head", !bad && rep.head[0] ?
			json_object_new_string(rep.head) : NULL);
		json_object_object_add(j, "fault", bad ? json_object_new_string(
			aud_fault_to_string(rep.fault)) : NULL);
		json_object_object_add(j, "file", bad && rep.file[0] ?
			json_object_new_string(rep.file) : NULL);
		json_object_object_add(j, "line", bad ? json_object_new_int64((int64_t)rep.line)
						      : NULL);
		json_object_object_add(j, "seq", bad ? json_object_new_int64((int64_t)rep.seq) : NULL);
		json_object_object_add(j, "detail", bad && rep.detail[0] ?
			json_object_new_string(rep.detail) : NULL);
		r = cli_json_print(j) < 0 ? CLI_EXIT_LOCAL : bad ? CLI_EXIT_NOT_VALID : CLI_EXIT_OK;
		json_object_put(j);
		return r;
	}
	if (!bad) {
		printf("OK: %s: %" PRIu64 " records intact, head %s\n", dir, rep.records,
			rep.records ? rep.head : "(empty log)");
	} else {
		_cleanup_free_ char *detail = cli_sanitize(rep.detail);

		printf("NOT INTACT: %s: %s:%" PRIu64 ": seq %" PRIu64 ": %s%s%s\n", dir,
			rep.file[0] ? rep.file : "?", rep.line, rep.seq, aud_fault_to_string(rep.fault),
			detail && *detail ? ": " : "", detail ? detail : "");
		printf("%" PRIu64 " records before it are intact\n", rep.records);
	}
	if (fflush(stdout) != 0)
		return CLI_EXIT_LOCAL;
	return bad ? CLI_EXIT_NOT_VALID : CLI_EXIT_OK;
}

/* --- show ------------------------------------------------------------------------------- */

struct show_state {
	time_t since, until;
	bool has_since, has_until;
	const char *owner;
	char *cert; /* lower-case hex prefix */
	const char *verdict;
	json_object *arr;     /* --json */
	struct cli_table *t;
	size_t shown;
};

static int
show_one(const struct cli_audit_entry *e, void *data)
{
	struct show_state *st = data;
	json_object *rec = e->record, *docs, *total;
	const char *owner = cli_json_str(rec, "owner"), *cert = cli_json_str(rec, "certificate");
	const char *verdict = cli_json_str(rec, "verdict");
	time_t t = cli_audit_entry_time(e);
	char seq[24], when[32] = "-", ndocs[16] = "-", cert16[20] = "-", who[64];
	struct tm tm;

	if (st->has_since && (t < 0 || t < st->since))
		return 0;
	if (st->has_until && (t < 0 || t > st->until))
		return 0;
	if (st->owner && (!owner || !streq(owner, st->owner)))
		return 0;
	if (st->cert && (!cert || strncmp(cert, st->cert, strlen(st->cert)) != 0))
		return 0;
	if (st->verdict && (!verdict || !streq(verdict, st->verdict)))
		return 0;
	st->shown++;
	if (st->arr) {
		json_object_array_add(st->arr, json_object_get(e->stored));
		return 0;
	}
	snprintf(seq, sizeof(seq), "%" PRIu64, e->seq);
	if (t >= 0 && gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (json_object_object_get_ex(rec, "documents_total", &total))
		snprintf(ndocs, sizeof(ndocs), "%" PRId64, json_object_get_int64(total));
	else if (json_object_object_get_ex(rec, "documents", &docs) &&
		 json_object_is_type(docs, json_type_array) && json_object_array_length(docs))
		snprintf(ndocs, sizeof(ndocs), "%zu", json_object_array_length(docs));
	if (cert)
		snprintf(cert16, sizeof(cert16), "%.16s", cert);
	if (owner)
		snprintf(who, sizeof(who), "%s", owner);
	else
		snprintf(who, sizeof(who), "uid %" PRId64, e->uid);
	{
		const char *method = cli_json_str(rec, "method");
		const char *cont = cli_json_str(rec, "continues");
		char mbuf[64];

		if (cont) {
			/* A continuation of a long record: the documents after the first ones. */
			snprintf(mbuf, sizeof(mbuf), "%s (part)", method ? method : "?");
			method = mbuf;
		}
		const char *cells[] = { seq, when, method, verdict, cli_json_str(rec, "rule"),
			cli_json_str(rec, "reason"), who, cert16, ndocs, cli_json_str(rec, "outcome") };

		return cli_table_add(st->t, cells);
	}
}

static int
audit_show(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "owner", required_argument, NULL, 'o' },
		{ "cert", required_argument, NULL, 'c' },
		{ "verdict", required_argument, NULL, 'v' },
		CLI_COMMON_OPTIONS,
		{},
	};
	static const char *const headers[] = { "SEQ", "TIME", "METHOD", "VERDICT", "RULE",
		"REASON", "OWNER", "CERTIFICATE", "DOCS", "OUTCOME" };
	const struct cli_cmd *cmd = &cmd_show;
	struct show_state st = {};
	const char *dir = CLI_AUDIT_DIR_DEFAULT;
	char err[1024];
	int c, r;

	r = cli_opts_exact(cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 's':
			if (cli_time_parse(optarg, false, &st.since) < 0)
				return cli_usage_error(cmd, "%s: '--since %s' is not a UTC time such as "
					"2027-01-15 or 2027-01-15T08:00:00Z", cmd->name, optarg);
			st.has_since = true;
			break;
		case 'u':
			if (cli_time_parse(optarg, true, &st.until) < 0)
				return cli_usage_error(cmd, "%s: '--until %s' is not a UTC time such as "
					"2027-01-31 or 2027-01-31T17:00:00Z", cmd->name, optarg);
			st.has_until = true;
			break;
		case 'o':
			if (!cli_account_name_valid(optarg))
				return cli_usage_error(cmd, "%s: '--owner %s' is not an account name",
					cmd->name, optarg);
			st.owner = optarg;
			break;
		case 'c':
			free(st.cert);
			st.cert = NULL;
			if (cli_hex_normalize(optarg, &st.cert) < 0 ||
			    strlen(st.cert) < CLI_CERT_PREFIX_MIN || strlen(st.cert) > CLI_CERT_ID_LEN) {
				free(st.cert);
				return cli_usage_error(cmd, "%s: '--cert %s' must be a certificate id: %d "
					"hex digits, or a prefix of at least %d", cmd->name, optarg,
					CLI_CERT_ID_LEN, CLI_CERT_PREFIX_MIN);
			}
			break;
		case 'v':
			if (!streq(optarg, "allow") && !streq(optarg, "deny")) {
				free(st.cert);
				return cli_usage_error(cmd, "%s: '--verdict' must be allow or deny",
					cmd->name);
			}
			st.verdict = optarg;
			break;
		default:
			r = cli_opt_common(ctx, cmd, c, argv);
			if (r != CLI_OPT_CONTINUE) {
				free(st.cert);
				return r;
			}
		}
	}
	if (optind < argc) {
		free(st.cert);
		return cli_usage_error(cmd, "%s: unexpected argument '%s'", cmd->name, argv[optind]);
	}
	if (ctx->json)
		st.arr = json_object_new_array();
	else if (cli_table_new(ARRAY_SIZE(headers), headers, &st.t) < 0) {
		free(st.cert);
		return CLI_EXIT_LOCAL;
	}
	r = cli_audit_read(dir, show_one, &st, err, sizeof(err));
	if (r < 0) {
		cli_error("%s: %s", cmd->name, r == -ENOMEM ? "out of memory" : err);
		r = CLI_EXIT_LOCAL;
	} else if (st.arr) {
		r = cli_json_print(st.arr) < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
	} else {
		r = cli_table_print(st.t, stdout) < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
		if (r == CLI_EXIT_OK && !st.shown)
			fprintf(stderr, "paraf: %s: no record matches\n", cmd->name);
	}
	json_object_put(st.arr);
	cli_table_free(st.t);
	free(st.cert);
	return r;
}

/* --- report ----------------------------------------------------------------------------- */

static int
report_add(const struct cli_audit_entry *e, void *data)
{
	return cli_report_add(data, e);
}

static int
audit_report(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "year", required_argument, NULL, 'y' },
		{ "dir", required_argument, NULL, 'd' },
		{ "policy", required_argument, NULL, 'P' },
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'F' },
		CLI_COMMON_OPTIONS,
		{},
	};
	const struct cli_cmd *cmd = &cmd_report;
	struct cli_report_input in = { .year = 0 };
	const char *dir = CLI_AUDIT_DIR_DEFAULT, *policy_dir = PARAF_SYSCONFDIR, *out = NULL;
	bool policy_given = false, force = false, html = true;
	struct ag_policy *ap = NULL;
	struct cli_report *rep = NULL;
	struct cli_report_cert *certs = NULL;
	struct aud_report ar;
	_cleanup_free_ char *incidents_path = NULL;
	_cleanup_free_ uint8_t *incidents = NULL;
	json_object *j = NULL;
	struct pf_buf buf;
	char err[1024], *end;
	size_t n_certs = 0, len;
	int c, r;

	r = cli_opts_exact(cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		switch (c) {
		case 'y': {
			long y = strtol(optarg, &end, 10);

			if (!*optarg || *end || y < 1970 || y > 9999)
				return cli_usage_error(cmd, "%s: '--year' needs a year such as 2027",
					cmd->name);
			in.year = (int)y;
			break;
		}
		case 'd':
			dir = optarg;
			break;
		case 'P':
			policy_dir = optarg;
			policy_given = true;
			break;
		case 'f':
			if (!streq(optarg, "html") && !streq(optarg, "json"))
				return cli_usage_error(cmd, "%s: '--format' must be html or json",
					cmd->name);
			html = streq(optarg, "html");
			break;
		case 'o':
			if (!*optarg)
				return cli_usage_error(cmd, "%s: '-o' needs a file name", cmd->name);
			out = optarg;
			break;
		case 'F':
			force = true;
			break;
		case CLI_OPT_JSON:
			html = false;
			ctx->json = 1;
			break;
		default:
			r = cli_opt_common(ctx, cmd, c, argv);
			if (r != CLI_OPT_CONTINUE)
				return r;
		}
	}
	if (optind < argc)
		return cli_usage_error(cmd, "%s: unexpected argument '%s'", cmd->name, argv[optind]);
	if (!in.year)
		return cli_usage_error(cmd, "%s: missing '--year YYYY'", cmd->name);
	if (out && !force && access(out, F_OK) == 0) {
		cli_error("%s: '%s' exists; --force replaces it", cmd->name, out);
		return CLI_EXIT_LOCAL;
	}

	/* The registry, as parafd reads it (R13). */
	r = ag_policy_load(policy_dir, policy_given, &ap, err, sizeof(err));
	if (r < 0) {
		cli_error("%s: the policy directory '%s' cannot be used: %s", cmd->name, policy_dir,
			err);
		return r == -EPERM ? CLI_EXIT_REFUSED : CLI_EXIT_LOCAL;
	}
	if (asprintf(&incidents_path, "%s/incidents.log", policy_dir) < 0) {
		incidents_path = NULL;
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	r = cli_file_read_all(incidents_path, CLI_REPORT_FILE_MAX, &incidents, &len);
	if (r < 0 && r != -ENOENT) {
		cli_error("%s: cannot read '%s': %s", cmd->name, incidents_path, strerror(-r));
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	r = cli_report_certs_load(policy_dir, &certs, &n_certs);
	if (r < 0) {
		cli_error("%s: cannot read '%s/certs': %s", cmd->name, policy_dir, strerror(-r));
		r = CLI_EXIT_LOCAL;
		goto out;
	}

	/* The chain first: the report says whether what it counts is intact. */
	memset(&ar, 0, sizeof(ar));
	r = aud_verify(dir, &ar);
	if (r < 0) {
		cli_error("%s: cannot read the audit log in '%s': %s", cmd->name, dir, strerror(-r));
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	in.log.checked = true;
	in.log.intact = ar.fault == AUD_OK;
	in.log.fault = in.log.intact ? NULL : aud_fault_to_string(ar.fault);
	in.log.detail = ar.detail;
	in.log.file = ar.file;
	in.log.line = ar.line;
	in.log.seq = ar.seq;
	in.log.records = ar.records;
	in.log.head = ar.head;
	in.now = time(NULL);
	in.audit_dir = dir;
	in.policy_dir = policy_dir;
	in.policy = &ap->pol;
	in.incidents = (const char *)incidents;
	in.certs = certs;
	in.n_certs = n_certs;
	if (!in.log.intact)
		cli_warn("%s: the audit log in '%s' is not intact (%s): the report says so", cmd->name,
			dir, in.log.fault);
	r = cli_report_new(&in, &rep);
	if (r >= 0)
		r = cli_audit_read(dir, report_add, rep, err, sizeof(err));
	if (r < 0) {
		cli_error("%s: %s", cmd->name, r == -ENOMEM ? "out of memory" : err);
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	j = cli_report_json(rep);
	pf_buf_init(&buf);
	if (!j)
		r = -ENOMEM;
	else if (html)
		r = cli_report_html(j, &buf);
	else {
		const char *s = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
			JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);

		pf_buf_put(&buf, s, strlen(s));
		pf_buf_put(&buf, "\n", 1);
		r = pf_buf_status(&buf);
	}
	if (r < 0) {
		pf_buf_release(&buf);
		cli_error("%s: out of memory", cmd->name);
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	if (out) {
		r = cli_file_write_atomic(out, buf.data, buf.len, force);
		if (r < 0)
			cli_error("%s: cannot write '%s': %s", cmd->name, out, strerror(-r));
		else
			fprintf(stderr, "paraf: %s: %s report for %d written to %s\n", cmd->name,
				html ? "HTML" : "JSON", in.year, out);
	} else {
		r = fwrite(buf.data, 1, buf.len, stdout) == buf.len && fflush(stdout) == 0 ? 0 : -EIO;
	}
	pf_buf_release(&buf);
	r = r < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
out:
	json_object_put(j);
	cli_report_free(rep);
	free(certs);
	ag_policy_free(ap);
	return r;
}
