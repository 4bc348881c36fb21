/*
 * `paraf expiry`: owners are warned ahead of expiry (R7). Lists the registered certificates
 * that expire within the warning window (the policy's renew_warning_days, or --days N): the
 * caller's own, or every owner's when root runs it. Each one found is also written to the
 * journal, and, in a graphical session with notify-send installed, shown as a desktop
 * notification. The user units paraf-expiry.service and paraf-expiry.timer run it daily.
 *
 * The dates come from the copies import-cert keeps in certs/<id>.pem; revoked (and superseded)
 * certificates are not listed: they will never be used again (R8).
 */
#include "cli.h"

#include <getopt.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>

#include <openssl/pem.h>
#include <systemd/sd-journal.h>

#include "ag-policy.h"
#include "ag.h"
#include "paraf-config.h"
#include "pol.h"

#define EXPIRY_DAYS_MAX 3650
#define EXPIRY_NOTIFY_TIMEOUT_SEC 10 /* notify-send may not hang the daily run */
#define EXPIRY_BODY_MAX 2048
#define DAY 86400

extern char **environ;

static const char expiry_usage[] =
	"Usage: paraf expiry [--policy DIR] [--days N] [--no-notify] [--json]\n"
	"\n"
	"Lists the registered certificates that expire within the warning window (R7): your own,\n"
	"or every owner's when run as root. Each is written to the journal and, in a graphical\n"
	"session where notify-send is installed, shown as a desktop notification. Certificates\n"
	"already expired and not revoked are listed too: they need renewing ('paraf renew').\n"
	"The user timer paraf-expiry.timer runs this daily.\n"
	"\n"
	"  --policy DIR   the policy directory (default " PARAF_SYSCONFDIR ")\n"
	"  --days N       the window in days (default: the policy's [validity]\n"
	"                 renew_warning_days, 30)\n"
	"  --no-notify    print only: no journal entry, no desktop notification\n"
	"  --json         the list as JSON\n";

static int expiry_run(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_cmd cli_cmd_expiry = {
	"expiry", "certificates expiring soon; warns in the journal and on the desktop (R7)",
	expiry_usage, expiry_run,
};

struct expiring {
	const struct pol_owner *o;
	time_t not_after;
	long days_left;
	bool expired;
	const char *renewal; /* a pending application that renews it */
};

static bool
cert_dates(const char *policy_dir, const char *id, time_t *ret_not_after)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ uint8_t *pem = NULL;
	struct pol_cert_facts f = {};
	unsigned char *der = NULL;
	size_t len;
	X509 *x = NULL;
	BIO *b;
	int n;
	bool ok = false;

	if (asprintf(&path, "%s/certs/%s.pem", policy_dir, id) < 0)
		return false;
	if (cli_file_read_all(path, CLI_REPORT_FILE_MAX, &pem, &len) < 0)
		return false;
	b = BIO_new_mem_buf(pem, (int)len);
	if (b)
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!x)
		return false;
	n = i2d_X509(x, &der);
	X509_free(x);
	if (n > 0 && pol_cert_facts_from_der(der, (size_t)n, &f) >= 0) {
		/* The copy must be the certificate its name says. */
		ok = streq(f.id, id);
		*ret_not_after = f.not_after;
		pol_cert_facts_release(&f);
	}
	OPENSSL_free(der);
	return ok;
}

/* notify-send on $PATH, or NULL. */
static char *
find_notify_send(void)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = strdup(path && *path ? path : "/usr/bin:/bin");
	char *save = NULL;

	if (!copy)
		return NULL;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *p = NULL;

		if (d[0] != '/' || asprintf(&p, "%s/notify-send", d) < 0)
			continue;
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

/* One desktop notification for the whole list; argv only, never a shell. */
static void
notify_desktop(const char *summary, const char *body, bool urgent)
{
	_cleanup_free_ char *prog = NULL;
	char *const argv[] = { "notify-send", "--app-name=paraf", urgent ? "--urgency=critical"
		: "--urgency=normal", "--icon=dialog-warning", (char *)summary, (char *)body, NULL };
	pid_t pid;
	int status;

	if (!getenv("DISPLAY") && !getenv("WAYLAND_DISPLAY"))
		return;
	prog = find_notify_send();
	if (!prog)
		return;
	if (posix_spawn(&pid, prog, NULL, NULL, argv, environ) != 0)
		return;
	for (int i = 0; i < EXPIRY_NOTIFY_TIMEOUT_SEC * 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(100000);
	}
	kill(pid, SIGKILL);
	(void)waitpid(pid, &status, 0);
}

static int
expiring_cmp(const void *x, const void *y)
{
	const struct expiring *a = x, *b = y;

	if (a->not_after != b->not_after)
		return a->not_after < b->not_after ? -1 : 1;
	return strcmp(a->o->cert_id, b->o->cert_id);
}

static int
expiry_run(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'P' },
		{ "days", required_argument, NULL, 'd' },
		{ "no-notify", no_argument, NULL, 'n' },
		CLI_COMMON_OPTIONS,
		{},
	};
	static const char *const headers[] = { "CERTIFICATE", "NAME", "ACCOUNT", "TYPE", "NOT-AFTER",
		"DAYS", "STATUS" };
	const struct cli_cmd *cmd = &cli_cmd_expiry;
	const char *policy_dir = PARAF_SYSCONFDIR;
	bool policy_given = false, notify = true;
	unsigned days = 0;
	bool days_given = false;
	struct ag_policy *ap = NULL;
	struct expiring *list = NULL;
	size_t n = 0;
	uid_t uid = getuid();
	time_t now = time(NULL);
	char err[1024];
	int c, r;

	r = cli_opts_exact(cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'P':
			if (!*optarg)
				return cli_usage_error(cmd, "%s: '--policy' needs a directory", cmd->name);
			policy_dir = optarg;
			policy_given = true;
			break;
		case 'd': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (!*optarg || *end || optarg[0] == '-' || v > EXPIRY_DAYS_MAX)
				return cli_usage_error(cmd, "%s: '--days' needs a number of days from 0 "
					"to %d", cmd->name, EXPIRY_DAYS_MAX);
			days = (unsigned)v;
			days_given = true;
			break;
		}
		case 'n':
			notify = false;
			break;
		default:
			r = cli_opt_common(ctx, cmd, c, argv);
			if (r != CLI_OPT_CONTINUE)
				return r;
		}
	}
	if (optind < argc)
		return cli_usage_error(cmd, "%s: unexpected argument '%s'", cmd->name, argv[optind]);
	r = ag_policy_load(policy_dir, policy_given, &ap, err, sizeof(err));
	if (r < 0) {
		cli_error("%s: the policy directory '%s' cannot be used: %s", cmd->name, policy_dir,
			err);
		return r == -EPERM ? CLI_EXIT_REFUSED : CLI_EXIT_LOCAL;
	}
	if (!days_given)
		days = ap->pol.renew_warning_days;

	for (size_t i = 0; i < ap->pol.n_owners; i++) {
		const struct pol_owner *o = &ap->pol.owners[i];
		struct expiring *nl;
		struct passwd *pw;
		time_t na;
		long left;

		if (!o->cert_id[0] || pol_revoked_find(&ap->pol, o->cert_id))
			continue;
		/* The caller's own certificates; root sees everyone's. */
		if (uid != 0) {
			pw = o->uid_known ? NULL : getpwnam(o->account);
			if (!(o->uid_known ? o->uid == uid : pw && pw->pw_uid == uid))
				continue;
		}
		if (!cert_dates(policy_dir, o->cert_id, &na))
			continue;
		/* As certificates.list counts them (pol_cert_status). */
		left = (long)((na - now) / DAY);
		if (left > (long)days)
			continue;
		nl = realloc(list, (n + 1) * sizeof(*nl));
		if (!nl) {
			r = CLI_EXIT_LOCAL;
			goto out;
		}
		list = nl;
		list[n] = (struct expiring){ .o = o, .not_after = na, .days_left = left,
			.expired = na < now };
		for (size_t k = 0; k < ap->pol.n_owners; k++) {
			const struct pol_owner *a = &ap->pol.owners[k];
			if (!a->cert_id[0] && a->renews && streq(a->renews, o->cert_id))
				list[n].renewal = a->application;
		}
		n++;
	}
	if (n)
		qsort(list, n, sizeof(*list), expiring_cmp);

	if (ctx->json) {
		json_object *j = json_object_new_object(), *arr = json_object_new_array();

		json_object_object_add(j, "window_days", json_object_new_int64(days));
		json_object_object_add(j, "all_owners", json_object_new_boolean(uid == 0));
		for (size_t i = 0; i < n; i++) {
			json_object *e = json_object_new_object();
			_cleanup_free_ char *t = ag_time_iso8601(list[i].not_after);
			const struct pol_owner *o = list[i].o;

			json_object_object_add(e, "certificate", json_object_new_string(o->cert_id));
			json_object_object_add(e, "account", json_object_new_string(o->account));
			json_object_object_add(e, "name", o->name ? json_object_new_string(o->name) : NULL);
			json_object_object_add(e, "unit", o->unit ? json_object_new_string(o->unit) : NULL);
			json_object_object_add(e, "type",
				json_object_new_string(pol_type_to_string(o->type)));
			json_object_object_add(e, "not_after", t ? json_object_new_string(t) : NULL);
			json_object_object_add(e, "days_left", json_object_new_int64(list[i].days_left));
			json_object_object_add(e, "status", json_object_new_string(
				list[i].expired ? "expired" : "expiring"));
			json_object_object_add(e, "renewal", list[i].renewal ?
				json_object_new_string(list[i].renewal) : NULL);
			json_object_array_add(arr, e);
		}
		json_object_object_add(j, "certificates", arr);
		r = cli_json_print(j) < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
		json_object_put(j);
	} else if (!n) {
		printf("no %scertificate expires within %u days\n", uid == 0 ? "registered " : "",
			days);
		r = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
	} else {
		_cleanup_(cli_table_freep) struct cli_table *t = NULL;

		r = cli_table_new(ARRAY_SIZE(headers), headers, &t) < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
		for (size_t i = 0; i < n && r == CLI_EXIT_OK; i++) {
			_cleanup_free_ char *na = ag_time_iso8601(list[i].not_after);
			char id[20], d[24];
			const char *cells[7];

			snprintf(id, sizeof(id), "%.16s", list[i].o->cert_id);
			snprintf(d, sizeof(d), "%ld", list[i].days_left);
			cells[0] = id;
			cells[1] = list[i].o->name;
			cells[2] = list[i].o->account;
			cells[3] = pol_type_to_string(list[i].o->type);
			cells[4] = na;
			cells[5] = d;
			cells[6] = list[i].expired ? "expired" : list[i].renewal ?
				"expiring (renewal pending)" : "expiring";
			if (cli_table_add(t, cells) < 0)
				r = CLI_EXIT_LOCAL;
		}
		if (r == CLI_EXIT_OK && cli_table_print(t, stdout) < 0)
			r = CLI_EXIT_LOCAL;
	}

	if (notify && n) {
		char body[EXPIRY_BODY_MAX] = "", summary[128];
		size_t used = 0;
		bool urgent = false;

		for (size_t i = 0; i < n; i++) {
			const struct pol_owner *o = list[i].o;
			_cleanup_free_ char *na = ag_time_iso8601(list[i].not_after);
			int k;

			/* One journal entry per certificate, for monitoring to pick up. */
			sd_journal_send("MESSAGE=paraf: certificate %.16s… of %s (%s) %s %s (%ld days): "
					"renew it (R7)", o->cert_id, o->account, o->name ? o->name : "?",
				list[i].expired ? "expired on" : "expires on", na ? na : "?",
				list[i].days_left,
				"PRIORITY=%i", list[i].expired ? LOG_ERR : LOG_WARNING,
				"SYSLOG_IDENTIFIER=paraf-expiry", "PARAF_CERTIFICATE=%s", o->cert_id,
				"PARAF_OWNER=%s", o->account, "PARAF_DAYS_LEFT=%ld", list[i].days_left,
				"PARAF_NOT_AFTER=%s", na ? na : "", NULL);
			if (list[i].days_left < 7)
				urgent = true;
			if (used < sizeof(body)) {
				k = snprintf(body + used, sizeof(body) - used, "%s%s: %s (%ld hari/days)",
					used ? "\n" : "", o->name ? o->name : o->account,
					list[i].expired ? "sudah kedaluwarsa/expired"
							      : "akan kedaluwarsa/expires",
					list[i].days_left);
				used += k > 0 ? (size_t)k : 0;
			}
		}
		snprintf(summary, sizeof(summary), "Sertifikat elektronik: %zu perlu diperbarui "
						   "(renew, R7)", n);
		notify_desktop(summary, body, urgent);
	}
out:
	free(list);
	ag_policy_free(ap);
	return r;
}
