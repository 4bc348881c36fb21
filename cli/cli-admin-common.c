/*
 * What the provisioning commands share: their options, the policy directory read as parafd
 * reads it (R13), who may run which command (the operator's R13, the owner's R4), the registry
 * entries and the local revocation list, the audit record of every step, the trusted dialog
 * paraf runs itself on the caller's own terminal or display, the SO PIN's root-only file, and
 * the synchronous link to the token helper.
 */
#include "cli-admin.h"

#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "ag-audit.h"
#include "ag-pinentry.h"
#include "ag.h"
#include "paraf-config.h"

#define CLI_PROV_ADMIN_GROUP "paraf-admin"
#define CLI_PROV_DEFAULT_PINENTRY "/usr/bin/pinentry"
#define CLI_PROV_REAP_TRIES 150 /* event-loop turns of 20 ms to let the dialog's reaper finish */

void
cli_prov_release(struct cli_prov *pv)
{
	pv->link = tok_link_close(pv->link);
	pv->policy = ag_policy_free(pv->policy);
}

int
cli_prov_opt(struct cli_prov *pv, struct cli_ctx *ctx, int c, char **argv)
{
	switch (c) {
	case 'P':
		if (!*optarg)
			return cli_usage_error(pv->cmd, "%s: '--policy' needs a directory",
				pv->cmd->name);
		pv->policy_dir = optarg;
		pv->policy_given = true;
		return CLI_OPT_CONTINUE;
	case 'M':
		if (!*optarg)
			return cli_usage_error(pv->cmd, "%s: '--module' needs a path", pv->cmd->name);
		if (pv->n_modules == CLI_PROV_MODULES_MAX)
			return cli_usage_error(pv->cmd, "%s: at most %d '--module' options",
				pv->cmd->name, CLI_PROV_MODULES_MAX);
		pv->modules[pv->n_modules++] = optarg;
		return CLI_OPT_CONTINUE;
	case 'E':
		if (optarg[0] != '/')
			return cli_usage_error(pv->cmd, "%s: '--pinentry' needs an absolute path",
				pv->cmd->name);
		pv->pinentry = optarg;
		return CLI_OPT_CONTINUE;
	case 'S':
		if (!*optarg)
			return cli_usage_error(pv->cmd, "%s: '--so-pin-file' needs a file name",
				pv->cmd->name);
		pv->so_pin_file = optarg;
		return CLI_OPT_CONTINUE;
	case CLI_OPT_JSON:
		pv->json = 1;
		return cli_opt_common(ctx, pv->cmd, c, argv);
	default:
		return cli_opt_common(ctx, pv->cmd, c, argv);
	}
}

int
cli_prov_policy_load(struct cli_prov *pv)
{
	char err[1024] = "";
	int r;

	if (!pv->policy_dir)
		pv->policy_dir = PARAF_SYSCONFDIR;
	r = ag_policy_load(pv->policy_dir, pv->policy_given, &pv->policy, err, sizeof(err));
	if (r == -ENOMEM) {
		cli_error("%s: out of memory", pv->cmd->name);
		return CLI_EXIT_LOCAL;
	}
	if (r < 0) {
		/* R13: a directory anyone but the security staff could change is not used. */
		cli_error("%s: the policy directory '%s' cannot be used: %s", pv->cmd->name,
			pv->policy_dir, err);
		return r == -EPERM ? CLI_EXIT_REFUSED : CLI_EXIT_LOCAL;
	}
	return CLI_EXIT_OK;
}

/* --- who may run what ------------------------------------------------------------------- */

static bool
in_group(gid_t gid)
{
	gid_t groups[NGROUPS_MAX];
	int n;

	if (getgid() == gid || getegid() == gid)
		return true;
	n = getgroups(ARRAY_SIZE(groups), groups);
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

int
cli_prov_operator_check(struct cli_prov *pv)
{
	struct group *g;
	struct stat st;
	uid_t uid = getuid();

	if (uid == 0)
		return CLI_EXIT_OK;
	g = getgrnam(CLI_PROV_ADMIN_GROUP);
	if (g && in_group(g->gr_gid))
		return CLI_EXIT_OK;
	/* Test mode: the owner of the --policy directory is its security staff. */
	if (pv->policy_given && stat(pv->policy_dir, &st) == 0 && st.st_uid == uid)
		return CLI_EXIT_OK;
	return cli_prov_refuse(pv, NULL, CLI_EXIT_REFUSED, "R13", "not-operator",
		"only root and members of the group '%s' (the security staff) may run 'paraf %s' "
		"(R13)", CLI_PROV_ADMIN_GROUP, pv->cmd->name);
}

int
cli_prov_owner_check(struct cli_prov *pv, const struct pol_owner *o)
{
	struct passwd *pw = getpwnam(o->account);
	uid_t uid = getuid();

	if (!pw)
		return cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, "R1", "unregistered",
			"application %s belongs to the account '%s', which does not exist here",
			o->application ? o->application : o->cert_id, o->account);
	/* R4: issuance and activation by the applicant personally, never through a proxy:
	 * root is no exception. */
	if (pw->pw_uid != uid)
		return cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, "R4", "not-owner",
			"%s %s belongs to the account '%s': only '%s' may run this, from their own "
			"account, never anyone for them, root included (R4)",
			o->application ? "application" : "certificate",
			o->application ? o->application : o->cert_id, o->account, o->account);
	if (uid == 0 && !pv->policy->pol.root_may_own)
		return cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, "R1", "not-owner",
			"root may own a certificate only with '[owner] root_may_own = yes' (R1)");
	return CLI_EXIT_OK;
}

/* --- the registry ---------------------------------------------------------------------- */

const struct pol_owner *
cli_prov_application_find(const struct cli_prov *pv, const char *id)
{
	const struct pol_policy *p = &pv->policy->pol;

	for (size_t i = 0; i < p->n_owners; i++)
		if (p->owners[i].application && streq(p->owners[i].application, id))
			return &p->owners[i];
	return NULL;
}

int
cli_prov_cert_find(const struct cli_prov *pv, const char *arg, const struct pol_owner **ret)
{
	const struct pol_policy *p = &pv->policy->pol;
	_cleanup_free_ char *hex = NULL;
	const struct pol_owner *found = NULL;
	size_t n;
	int r;

	r = cli_hex_normalize(arg, &hex);
	if (r == -ENOMEM)
		return CLI_EXIT_LOCAL;
	if (r < 0 || strlen(hex) < CLI_CERT_PREFIX_MIN || strlen(hex) > CLI_CERT_ID_LEN)
		return cli_usage_error(pv->cmd,
			"%s: '--cert %s' must be a certificate id: %d hex digits, or a prefix of at "
			"least %d", pv->cmd->name, arg, CLI_CERT_ID_LEN, CLI_CERT_PREFIX_MIN);
	n = strlen(hex);
	for (size_t i = 0; i < p->n_owners; i++) {
		if (!p->owners[i].cert_id[0] || strncmp(p->owners[i].cert_id, hex, n) != 0)
			continue;
		if (found) {
			cli_error("%s: '--cert %s' matches several registered certificates: give more "
				  "digits", pv->cmd->name, arg);
			return CLI_EXIT_USAGE;
		}
		found = &p->owners[i];
	}
	if (!found) {
		cli_error("%s: no registered certificate %s (see 'paraf admin list')", pv->cmd->name,
			arg);
		return CLI_EXIT_REFUSED;
	}
	*ret = found;
	return CLI_EXIT_OK;
}

int
cli_prov_registry_write(const char *path, const struct pol_owner *o, bool overwrite, char *err,
	size_t errsz)
{
	_cleanup_free_ char *text = pol_owner_format(o);
	struct pol_policy check;
	int r;

	if (!text)
		return -ENOMEM;
	/* What parafd will read back: an entry it would refuse never reaches the directory. */
	pol_policy_init(&check);
	r = pol_owner_parse(&check, path, text, err, errsz);
	pol_policy_release(&check);
	if (r < 0)
		return -EINVAL;
	r = cli_file_write_atomic(path, text, strlen(text), overwrite);
	if (r < 0)
		snprintf(err, errsz, "cannot write '%s': %s", path, strerror(-r));
	return r;
}

bool
cli_prov_registry_writable(const struct pol_owner *o)
{
	_cleanup_free_ char *dir = o->file ? strdup(o->file) : NULL;

	return dir && access(o->file, W_OK) == 0 && access(dirname(dir), W_OK) == 0;
}

int
cli_prov_owner_copy(const struct pol_owner *o, struct pol_owner *ret)
{
	struct pol_owner c = *o;
	int fail = 0;

#define DUP(f) (c.f = o->f ? strdup(o->f) : NULL, fail |= o->f && !c.f)
	DUP(file);
	DUP(account);
	DUP(name);
	DUP(nip);
	DUP(nik);
	DUP(email);
	DUP(position);
	DUP(unit);
	DUP(decree);
	DUP(token_serial);
	DUP(application);
	DUP(phone);
	DUP(superior);
	DUP(renews);
	DUP(key_id);
#undef DUP
	if (fail) {
		cli_prov_owner_release(&c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

void
cli_prov_owner_release(struct pol_owner *o)
{
	free(o->file);
	free(o->account);
	free(o->name);
	free(o->nip);
	free(o->nik);
	free(o->email);
	free(o->position);
	free(o->unit);
	free(o->decree);
	free(o->token_serial);
	free(o->application);
	free(o->phone);
	free(o->superior);
	free(o->renews);
	free(o->key_id);
	memset(o, 0, sizeof(*o));
}

/* --- audit ------------------------------------------------------------------------------ */

void
cli_prov_audit(const struct cli_prov *pv, const struct cli_prov_audit *a)
{
	struct ag_audit_record rec = {};
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	const char *cert = a->certificate;

	exe[n > 0 ? n : 0] = 0;
	if (!cert && a->owner && a->owner->cert_id[0])
		cert = a->owner->cert_id;
	if (!cert)
		cert = pv->audit_cert;
	rec.method = pv->method;
	rec.peer.pid = getpid();
	rec.peer.uid = getuid();
	rec.peer.gid = getgid();
	rec.exe = exe[0] ? exe : "paraf";
	rec.certificate = cert;
	rec.certificate_type = a->owner ? pol_type_to_string(a->owner->type) : NULL;
	rec.owner = a->owner ? a->owner->account : NULL;
	rec.allow = a->allow;
	rec.rule = a->rule;
	rec.reason = a->reason ? a->reason : a->allow ? "allowed" : NULL;
	rec.message = a->message;
	rec.outcome = a->outcome;
	fflush(stdout);
	/* R13: the same writer as parafd's decisions; a record the service did not take is
	 * said so on stderr and kept in the journal. */
	cli_audit_sink_setup();
	(void)ag_audit_commit(true, &rec, NULL);
}

int
cli_prov_refuse(const struct cli_prov *pv, const struct pol_owner *o, int status,
	const char *rule, const char *reason, const char *fmt, ...)
{
	struct cli_prov_audit a = {};
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cli_error("%s: %s", pv->cmd->name, msg);
	a.owner = o;
	a.rule = rule;
	a.reason = reason;
	a.message = msg;
	cli_prov_audit(pv, &a);
	return status;
}

/* --- the dialog ------------------------------------------------------------------------- */

struct ask_state {
	sd_event *event;
	bool done;
	int r;
	struct pf_secret *secret;
};

static void
ask_done(int r, struct pf_secret *pin, void *data)
{
	struct ask_state *st = data;

	st->done = true;
	st->r = r;
	st->secret = pin;
}

int
cli_prov_ask(struct cli_prov *pv, const char *title, const char *description,
	const char *prompt, const char *error, struct pf_secret **ret)
{
	struct ag_pin_dialog d = {};
	struct ask_state st = {};
	struct ag_pinentry *p = NULL;
	_cleanup_free_ char *tty = NULL;
	pid_t pid;
	int r;

	d.program = pv->pinentry ? pv->pinentry
		    : pv->policy && pv->policy->pol.pinentry ? pv->policy->pol.pinentry
							      : CLI_PROV_DEFAULT_PINENTRY;
	/* The caller's own terminal and display: this process is theirs (R1, R2). */
	if (cli_dialog_tty(&tty) == -ENOMEM)
		return -ENOMEM;
	d.tty = tty;
	d.tty_type = tty ? getenv("TERM") : NULL;
	d.display = getenv("DISPLAY");
	d.xauthority = getenv("XAUTHORITY");
	d.wayland_display = getenv("WAYLAND_DISPLAY");
	d.runtime_dir = getenv("XDG_RUNTIME_DIR");
	d.title = title;
	d.description = description;
	d.prompt = prompt;
	d.error = error;
	d.ok_label = "OK";
	d.cancel_label = "Batal";
	d.timeout = pv->policy ? pv->policy->pol.pin_timeout : 0;
	signal(SIGPIPE, SIG_IGN); /* a pinentry that dies is an error return, not our death */
	r = sd_event_new(&st.event);
	if (r < 0)
		return r;
	r = ag_pinentry_ask(st.event, &d, ask_done, &st, &p);
	if (r < 0) {
		sd_event_unref(st.event);
		return r;
	}
	pid = ag_pinentry_pid(p);
	while (!st.done) {
		r = sd_event_run(st.event, UINT64_MAX);
		if (r < 0) {
			ag_pinentry_cancel(p);
			break;
		}
	}
	/* The answer is in: let the loop's reaper see the pinentry exit after its BYE, so the
	 * terminal is handed back in order (freeing the loop would kill it at once). */
	for (int i = 0; st.done && pid > 0 && i < CLI_PROV_REAP_TRIES && kill(pid, 0) == 0; i++)
		sd_event_run(st.event, 20 * 1000);
	sd_event_unref(st.event);
	if (!st.done)
		return r < 0 ? r : -EIO;
	if (st.r < 0)
		return st.r;
	if (!st.secret || st.secret->len == 0) {
		pf_secret_free(st.secret);
		return -ECANCELED; /* Enter alone: never spend a token's try on it */
	}
	*ret = st.secret;
	return 0;
}

int
cli_prov_ask_failed(const struct cli_prov *pv, const struct pol_owner *o, const char *what, int r)
{
	const char *why = r == -ECANCELED  ? "cancelled, or nothing was typed"
			  : r == -ETIMEDOUT ? "nobody answered the dialog in time"
			  : r == -ENOENT    ? "the PIN dialog program cannot be run"
			  : r == -E2BIG	    ? "what was typed is too long"
					    : "the PIN dialog failed";

	return cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, "R2",
		r == -ECANCELED ? "pin-cancelled" : "pin-dialog-failed", "%s: %s; nothing was changed",
		what, why);
}

/* --- the SO PIN ------------------------------------------------------------------------- */

int
cli_prov_secret_file_ok(const struct stat *st, uid_t caller)
{
	if (!S_ISREG(st->st_mode))
		return -EINVAL;
	/* R2: readable by its owner only, and that owner root or the caller. */
	if ((st->st_uid != 0 && st->st_uid != caller) || (st->st_mode & 077))
		return -EPERM;
	return 0;
}

static int
secret_read_fd(int fd, struct pf_secret **ret)
{
	char buf[PF_SECRET_MAX + 3];
	size_t n = 0;
	int r;

	while (n < sizeof(buf)) {
		ssize_t k = read(fd, buf + n, sizeof(buf) - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = pf_negerrno();
			goto out;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	if (memchr(buf, '\n', n))
		n = (size_t)((char *)memchr(buf, '\n', n) - buf);
	if (n && buf[n - 1] == '\r')
		n--;
	if (n == 0)
		r = -ENODATA;
	else if (n > PF_SECRET_MAX)
		r = -E2BIG;
	else
		r = pf_secret_new(buf, n, ret);
out:
	explicit_bzero(buf, sizeof(buf));
	return r;
}

int
cli_prov_so_pin(struct cli_prov *pv, const struct pol_owner *o, struct pf_secret **ret)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	_cleanup_free_ char *cred_path = NULL;
	_cleanup_close_ int fd = -1;
	const char *path = pv->so_pin_file;
	struct stat st;
	int r;

	if (!path && creds && creds[0] == '/') {
		if (asprintf(&cred_path, "%s/paraf-so-pin", creds) < 0)
			return CLI_EXIT_LOCAL;
		if (access(cred_path, F_OK) == 0)
			path = cred_path;
	}
	if (!path) {
		r = cli_prov_ask(pv, "paraf: inisialisasi token (token initialisation)",
			"Masukkan PIN SO token (the token's security officer PIN).\n\n"
			"Untuk petugas keamanan saja (for the security officer only).",
			"PIN SO / security officer PIN:", NULL, ret);
		return r < 0 ? cli_prov_ask_failed(pv, o, "the SO PIN", r) : CLI_EXIT_OK;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		cli_error("%s: cannot open the SO PIN file '%s': %s", pv->cmd->name, path,
			strerror(errno));
		return CLI_EXIT_LOCAL;
	}
	if (fstat(fd, &st) < 0)
		return CLI_EXIT_LOCAL;
	r = cli_prov_secret_file_ok(&st, getuid());
	if (r < 0)
		return cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, "R2", "so-pin-file-refused",
			"the SO PIN file '%s' must be a regular file owned by root or by you and "
			"readable by nobody else (mode 0600 or stricter); it is %s, owner uid %u, mode "
			"%04o", path, S_ISREG(st.st_mode) ? "a regular file" : "not a regular file",
			(unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	r = secret_read_fd(fd, ret);
	if (r < 0) {
		cli_error("%s: the SO PIN file '%s' %s", pv->cmd->name, path,
			r == -ENODATA ? "is empty" : r == -E2BIG ? "holds a line that is too long"
							 : "cannot be read");
		return CLI_EXIT_LOCAL;
	}
	return CLI_EXIT_OK;
}

/* --- the token helper ------------------------------------------------------------------- */

int
cli_prov_link(struct cli_prov *pv)
{
	_cleanup_free_ char *helper = tok_helper_default_path();
	int r;

	if (!helper)
		return CLI_EXIT_LOCAL;
	signal(SIGPIPE, SIG_IGN); /* a helper that dies is an error return, not our death */
	r = tok_link_open(helper, pv->modules, pv->n_modules, &pv->link);
	if (r < 0) {
		cli_error("%s: cannot start the token helper '%s': %s", pv->cmd->name, helper,
			strerror(-r));
		return CLI_EXIT_NO_TOKEN;
	}
	return CLI_EXIT_OK;
}

static int
link_call(struct cli_prov *pv, struct pf_buf *frame, unsigned timeout_ms, uint32_t want,
	struct pf_buf *body)
{
	uint32_t type = 0;
	int r;

	r = tok_frame_end(frame);
	if (r < 0)
		return r;
	r = tok_link_call(pv->link, frame, timeout_ms, &type, body);
	if (r == -ETIMEDOUT)
		cli_error("%s: the token did not answer within %u seconds", pv->cmd->name,
			timeout_ms / 1000);
	else if (r < 0)
		cli_error("%s: the token helper failed: %s", pv->cmd->name, strerror(-r));
	else if (type != want) {
		cli_error("%s: the token helper answered with an unexpected message", pv->cmd->name);
		r = -EBADMSG;
	}
	return r;
}

int
cli_prov_admin_call(struct cli_prov *pv, const struct tok_admin_req *req, unsigned timeout_ms,
	struct tok_admin_reply *ret)
{
	struct pf_buf frame, body;
	int r;

	pf_buf_init(&frame);
	pf_buf_init(&body);
	frame.wipe = 1;
	tok_frame_begin(&frame, req->type);
	tok_admin_req_encode(&frame, req);
	r = link_call(pv, &frame, timeout_ms, TOK_MSG_ADMIN_REPLY, &body);
	if (r >= 0) {
		r = tok_admin_reply_decode(body.data, body.len, ret);
		if (r < 0)
			cli_error("%s: the token helper's answer is malformed", pv->cmd->name);
	}
	pf_buf_release(&frame);
	pf_buf_release(&body);
	return r;
}

int
cli_prov_token_find(struct cli_prov *pv, const char *serial, char **ret_id, uint32_t *ret_flags)
{
	struct pf_buf frame, body;
	struct tok_list l = {};
	int r;

	pf_buf_init(&frame);
	pf_buf_init(&body);
	tok_frame_begin(&frame, TOK_MSG_LIST);
	r = link_call(pv, &frame, CLI_PROV_TIMEOUT_MS, TOK_MSG_LIST_REPLY, &body);
	if (r >= 0 && (r = tok_list_decode(body.data, body.len, &l)) < 0)
		cli_error("%s: the token helper's answer is malformed", pv->cmd->name);
	pf_buf_release(&frame);
	pf_buf_release(&body);
	if (r < 0)
		return r;
	if (l.err) {
		cli_error("%s: cannot list the tokens: %s", pv->cmd->name,
			tok_err_to_string(l.err));
		tok_list_release(&l);
		return -EIO;
	}
	r = -ENOENT;
	for (size_t i = 0; i < l.n_tokens; i++)
		if (l.tokens[i].serial && streq(l.tokens[i].serial, serial)) {
			*ret_id = strdup(l.tokens[i].id);
			*ret_flags = l.tokens[i].flags;
			r = *ret_id ? 0 : -ENOMEM;
			break;
		}
	tok_list_release(&l);
	return r;
}

int
cli_prov_sign(struct cli_prov *pv, const char *token_id, const uint8_t *ck_id, size_t ck_id_len,
	bool ec, const struct pf_secret *pin, const uint8_t *digest, uint8_t **ret_sig,
	size_t *ret_len, struct tok_sign_reply *ret_reply)
{
	struct tok_blob d = { (uint8_t *)digest, 32 };
	struct tok_sign_req req = {};
	struct tok_sign_reply rep = {};
	struct pf_buf frame, body;
	int r;

	req.token_id = (char *)token_id;
	req.ck_id.p = (uint8_t *)ck_id;
	req.ck_id.n = ck_id_len;
	req.mech = ec ? TOK_MECH_ECDSA : TOK_MECH_RSA_PKCS;
	req.hash = TOK_HASH_SHA256;
	req.pin = (struct pf_secret *)pin;
	req.digests = &d;
	req.n_digests = 1;
	pf_buf_init(&frame);
	pf_buf_init(&body);
	frame.wipe = 1; /* the PIN */
	tok_frame_begin(&frame, TOK_MSG_SIGN);
	tok_sign_req_encode(&frame, &req);
	r = link_call(pv, &frame, CLI_PROV_TIMEOUT_MS, TOK_MSG_SIGN_REPLY, &body);
	if (r >= 0 && (r = tok_sign_reply_decode(body.data, body.len, &rep)) < 0)
		cli_error("%s: the token helper's answer is malformed", pv->cmd->name);
	pf_buf_release(&frame);
	pf_buf_release(&body);
	if (r < 0)
		return r;
	if (rep.err != TOK_OK || rep.n_sigs != 1) {
		if (rep.err == TOK_OK)
			rep.err = TOK_ERR_INTERNAL;
		*ret_reply = rep;
		return -EACCES;
	}
	if (ec)
		r = ag_ecdsa_sig_to_der(rep.sigs[0].p, rep.sigs[0].n, ret_sig, ret_len);
	else if ((*ret_sig = malloc(rep.sigs[0].n))) {
		memcpy(*ret_sig, rep.sigs[0].p, rep.sigs[0].n);
		*ret_len = rep.sigs[0].n;
	} else
		r = -ENOMEM;
	tok_sign_reply_release(&rep);
	return r;
}

void
cli_prov_tok_message(uint32_t err, uint32_t pin_flags, const char *detail, char *buf, size_t n)
{
	const char *tries = (pin_flags & TOK_PIN_LOCKED) || err == TOK_ERR_PIN_LOCKED
				    ? ": the PIN is now locked"
			    : pin_flags & TOK_PIN_FINAL_TRY ? ": one try is left before the token locks"
			    : pin_flags & TOK_PIN_COUNT_LOW ? ": few tries are left before the token locks"
							    : "";

	snprintf(buf, n, "%s%s%s%s", tok_err_to_string(err), detail && *detail ? " (" : "",
		detail && *detail ? detail : "", detail && *detail ? ")" : "");
	if (*tries && strlen(buf) + strlen(tries) < n)
		strcat(buf, tries);
}

/* --- the local revocation list (R8) ----------------------------------------------------- */

/* Appends line to the file at path, created 0644 when missing, on a fresh line, synced. */
static int
append_line(const char *path, const char *line)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	size_t n = strlen(line);
	char last = '\n';

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
	if (fd < 0)
		return pf_negerrno();
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -EINVAL;
	/* parafd of every user reads it: readable by all, whatever the umask (R13: writable by
	 * its owner only). */
	if (st.st_size == 0 && st.st_uid == geteuid() && fchmod(fd, 0644) < 0)
		return pf_negerrno();
	if (st.st_size > 0) {
		_cleanup_close_ int rfd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

		if (rfd < 0 || pread(rfd, &last, 1, st.st_size - 1) != 1)
			return -EIO;
	}
	/* A hand-edited file without its final newline must not swallow our line. */
	if (last != '\n' && write(fd, "\n", 1) != 1)
		return pf_negerrno();
	while (n > 0) {
		ssize_t k = write(fd, line, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return pf_negerrno();
		line += k;
		n -= (size_t)k;
	}
	return fsync(fd) < 0 ? pf_negerrno() : 0;
}

int
cli_prov_revoked_append(const struct cli_prov *pv, const char *line)
{
	_cleanup_free_ char *path = NULL;

	if (asprintf(&path, "%s/revoked.list", pv->policy_dir) < 0)
		return -ENOMEM;
	return append_line(path, line);
}

int
cli_prov_incident_append(const struct cli_prov *pv, const char *line)
{
	_cleanup_free_ char *path = NULL;

	if (asprintf(&path, "%s/incidents.log", pv->policy_dir) < 0)
		return -ENOMEM;
	return append_line(path, line);
}

int
cli_prov_revoke(struct cli_prov *pv, const char *cert_id, const char *reason, const char *note,
	const char *rule)
{
	const struct pol_owner *o = pol_owner_find(&pv->policy->pol, cert_id);
	const struct pol_revoked *rv = pol_revoked_find(&pv->policy->pol, cert_id);
	struct cli_prov_audit a = {};
	_cleanup_free_ char *line = NULL;
	char msg[512];
	int r;

	if (rv)
		return cli_prov_refuse(pv, o, CLI_EXIT_REFUSED, "R8", "already-revoked",
			"certificate %.16s… already revoked on %s (%s): revocation is permanent (R8)",
			cert_id, rv->when, rv->reason);
	r = cli_revoked_line(cert_id, time(NULL), reason, note, &line);
	if (r == -EINVAL)
		return cli_usage_error(pv->cmd, "%s: '--note' must be one line of at most %d "
						"characters", pv->cmd->name, CLI_PROV_NOTE_MAX);
	if (r >= 0)
		r = cli_prov_revoked_append(pv, line);
	if (r < 0) {
		cli_error("%s: cannot append to '%s/revoked.list': %s", pv->cmd->name,
			pv->policy_dir, strerror(-r));
		return CLI_EXIT_LOCAL;
	}
	snprintf(msg, sizeof(msg), "certificate %s revoked locally: %s%s%s%s%s", cert_id, reason,
		o && o->application ? ", application " : "", o && o->application ? o->application : "",
		o && o->token_serial ? ", token " : "", o && o->token_serial ? o->token_serial : "");
	a.owner = o;
	a.certificate = cert_id;
	a.allow = true;
	a.rule = rule;
	a.reason = reason;
	a.message = msg;
	a.outcome = "revoked";
	cli_prov_audit(pv, &a);
	if (pv->json)
		return CLI_EXIT_OK;
	printf("revoked %s (%s)\n", cert_id, reason);
	return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
}
