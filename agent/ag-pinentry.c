/*
 * The client side of the Assuan protocol against a pinentry program, on parafd's event loop.
 * Every command is planned (and its text checked) before the child exists; the child gets a
 * clean environment and a socketpair as stdin and stdout; each command is sent when the answer
 * to the one before has arrived; the PIN's D lines are decoded straight into a locked
 * pf_secret and the bytes that carried them are wiped (R2). When the answer is in, the child
 * gets BYE and is reaped from the loop, by a floating event source that also kills and reaps
 * it when the loop is freed first.
 */
#include "ag-pinentry.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pf-util.h"

#define PIN_CMDS_MAX 16          /* the longest plan: 4 OPTION + 9 SET + CONFIRM + GETPIN */
#define PIN_ENV_MAX 8            /* PATH, LANG, LC_ALL and four optional values, NULL */
#define PIN_LINES_PER_ANSWER 512 /* status, comment and D lines before OK or ERR: room for a
                                    PF_SECRET_MAX PIN sent a byte a line */
#define PIN_READS_PER_EVENT 16   /* then back to the loop: a chatty child starves no one */
#define PIN_REAP_TICK_USEC (20 * 1000ULL)
#define PIN_REAP_TERM_USEC (1000 * 1000ULL) /* after BYE: SIGTERM if still there ... */
#define PIN_REAP_KILL_USEC (1000 * 1000ULL) /* ... and SIGKILL this long after SIGTERM */
#define USEC_PER_SEC 1000000ULL

/* gpg-error codes: the low 16 bits of an Assuan ERR code (the high bits name the source). */
#define GPG_ERR_TIMEOUT 62
#define GPG_ERR_CANCELED 99
#define GPG_ERR_NOT_CONFIRMED 114
#define GPG_ERR_FULLY_CANCELED 198

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026, ends a truncated text */

enum pin_cmd_kind {
	CMD_OPTION,  /* ERR tolerated: a pinentry refuses options it does not know */
	CMD_SET,     /* must be answered OK */
	CMD_CONFIRM, /* OK: confirmed; ERR: declined */
	CMD_GETPIN,  /* D lines, then OK */
};

struct pin_cmd {
	enum pin_cmd_kind kind;
	char *line; /* ends with LF */
	size_t len;
};

struct ag_pinentry {
	sd_event *event;         /* not referenced: our sources keep it, or it owns the reaper */
	ag_pin_cb cb;            /* NULL once answered or cancelled */
	void *data;
	pid_t pid;               /* > 0 until reaped */
	int fd;                  /* our end of the socketpair: the child's stdin and stdout */
	int exec_fd;             /* read end of the pipe on which a failed exec reports errno */
	sd_event_source *io;
	sd_event_source *timer;  /* the deadline */
	sd_event_source *reaper; /* floating, once answered: owned by the loop */
	uint64_t deadline_usec;
	uint64_t term_at, kill_at; /* CLOCK_MONOTONIC, while reaping */
	bool term_sent;
	struct pin_cmd cmds[PIN_CMDS_MAX];
	size_t n_cmds;
	size_t next;             /* the command to send next; cmds[next - 1] awaits its answer */
	bool greeted;            /* the pinentry's first OK has arrived */
	bool awaiting;           /* an answer (or the greeting) is due */
	unsigned lines;          /* lines before the final OK/ERR of the current answer */
	const char *out;         /* what is being sent: a command's line or a literal */
	size_t out_len, out_off;
	struct pf_secret *pin;   /* made PF_SECRET_MAX long, so data has room; see pin_append() */
	size_t pin_len;
	size_t in_len;
	char in[AG_PIN_LINE_MAX + 1]; /* a line and its LF; wiped as consumed: D lines (R2) */
};

/* PF_SECRET_MAX bytes that are not NUL: pf_secret_new() then guarantees data has room for
 * every PIN we accept, and D lines are decoded into it in place (R2: no other copy). */
static const char pin_room[PF_SECRET_MAX] = { [0 ... PF_SECRET_MAX - 1] = 'x' };

static void pinentry_free(struct ag_pinentry *p);
PF_DEFINE_CLEANUP(struct ag_pinentry, pinentry_free)

/* --- checking and escaping what we send ------------------------------------------------- */

/* Length of the UTF-8 sequence at s, or 0 when it is not valid UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
static size_t
utf8_seq(const unsigned char *s, size_t left)
{
	size_t n, i;
	uint32_t c;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, c = s[0] & 0x07;
	else
		return 0;
	if (left < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10ffff ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n;
}

static bool
utf8_valid(const char *s, size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i += k) {
		k = utf8_seq((const unsigned char *)s + i, n - i);
		if (k == 0)
			return false;
	}
	return true;
}

/* Assuan escapes %, CR and LF; we escape every control byte, and a space at either end of
 * the text, which Assuan's command parser would otherwise eat. Pinentries decode any %XX. */
static bool
byte_needs_escape(unsigned char c, size_t i, size_t n)
{
	return c < 0x20 || c == 0x7f || c == '%' || (c == ' ' && (i == 0 || i == n - 1));
}

/* Appends "VERB text\n" to the plan, percent-escaped; a text that would make the line longer
 * than AG_PIN_ASSUAN_LINE_MAX is cut at a character boundary and ends with U+2026. */
static int
plan_text(struct ag_pinentry *p, enum pin_cmd_kind kind, const char *verb, const char *text)
{
	const size_t vlen = strlen(verb);
	size_t n, i, k, tlen, full, limit;
	char *line;

	if (p->n_cmds >= PIN_CMDS_MAX)
		return -E2BIG;
	tlen = text ? strlen(text) : 0;
	if (tlen > AG_PIN_TEXT_MAX || !utf8_valid(text ? text : "", tlen))
		return -EINVAL;
	line = malloc(AG_PIN_ASSUAN_LINE_MAX + 2);
	if (!line)
		return -ENOMEM;
	memcpy(line, verb, vlen);
	n = vlen;
	if (tlen)
		line[n++] = ' ';
	full = n;
	for (i = 0; i < tlen; i++)
		full += byte_needs_escape((unsigned char)text[i], i, tlen) ? 3 : 1;
	limit = full > AG_PIN_ASSUAN_LINE_MAX ? AG_PIN_ASSUAN_LINE_MAX - strlen(ELLIPSIS) :
		AG_PIN_ASSUAN_LINE_MAX;
	for (i = 0; i < tlen; i += k) {
		size_t need = 0, j;

		k = utf8_seq((const unsigned char *)text + i, tlen - i);
		for (j = i; j < i + k; j++)
			need += byte_needs_escape((unsigned char)text[j], j, tlen) ? 3 : 1;
		if (n + need > limit)
			break;
		for (j = i; j < i + k; j++) {
			unsigned char c = (unsigned char)text[j];

			if (byte_needs_escape(c, j, tlen))
				n += (size_t)snprintf(line + n, 4, "%%%02X", c);
			else
				line[n++] = (char)c;
		}
	}
	if (full > AG_PIN_ASSUAN_LINE_MAX) {
		memcpy(line + n, ELLIPSIS, strlen(ELLIPSIS));
		n += strlen(ELLIPSIS);
	}
	line[n++] = '\n';
	line[n] = 0;
	p->cmds[p->n_cmds++] = (struct pin_cmd){ .kind = kind, .line = line, .len = n };
	return 0;
}

/* OPTION values go to the pinentry unescaped (Assuan does not decode them): printable ASCII
 * without spaces or '%' only. */
static bool
option_value_valid(const char *v)
{
	size_t n = strlen(v), i;

	if (n == 0 || n > AG_PIN_VALUE_MAX)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f || v[i] == '%')
			return false;
	return true;
}

static int
plan_option(struct ag_pinentry *p, const char *name, const char *value)
{
	char *line;
	int n;

	if (!value)
		return 0;
	if (!option_value_valid(value))
		return -EINVAL;
	if (p->n_cmds >= PIN_CMDS_MAX)
		return -E2BIG;
	n = asprintf(&line, "OPTION %s=%s\n", name, value);
	if (n < 0)
		return -ENOMEM;
	if ((size_t)n > AG_PIN_ASSUAN_LINE_MAX + 1) {
		free(line);
		return -EINVAL;
	}
	p->cmds[p->n_cmds++] =
		(struct pin_cmd){ .kind = CMD_OPTION, .line = line, .len = (size_t)n };
	return 0;
}

static int
plan_verb(struct ag_pinentry *p, enum pin_cmd_kind kind, const char *verb)
{
	char *line;
	int n;

	if (p->n_cmds >= PIN_CMDS_MAX)
		return -E2BIG;
	n = asprintf(&line, "%s\n", verb);
	if (n < 0)
		return -ENOMEM;
	p->cmds[p->n_cmds++] = (struct pin_cmd){ .kind = kind, .line = line, .len = (size_t)n };
	return 0;
}

/* The whole conversation, before the child exists: bad text fails ag_pinentry_ask(). */
static int
pinentry_plan(struct ag_pinentry *p, const struct ag_pin_dialog *d, const char *lang,
	unsigned timeout)
{
	char num[32];
	int r;

	r = plan_option(p, "ttyname", d->tty);
	if (r >= 0)
		r = plan_option(p, "ttytype", d->tty_type);
	if (r >= 0)
		r = plan_option(p, "lc-ctype", lang);
	if (r >= 0)
		r = plan_option(p, "lc-messages", lang);
	if (r < 0)
		return r;
	/* R1: no OPTION allow-external-password-cache and no SETKEYINFO, so no pinentry offers
	 * to keep the PIN in a password manager: every signing act asks the person again. */
	snprintf(num, sizeof(num), "%u", timeout);
	r = plan_text(p, CMD_SET, "SETTIMEOUT", num);
	if (r >= 0 && d->title)
		r = plan_text(p, CMD_SET, "SETTITLE", d->title);
	if (r >= 0 && d->ok_label)
		r = plan_text(p, CMD_SET, "SETOK", d->ok_label);
	if (r >= 0 && d->cancel_label)
		r = plan_text(p, CMD_SET, "SETCANCEL", d->cancel_label);
	if (r >= 0 && d->confirm_text) {
		/* A pinentry shows an error in the next dialog only: it goes with each. */
		if (d->error)
			r = plan_text(p, CMD_SET, "SETERROR", d->error);
		if (r >= 0)
			r = plan_text(p, CMD_SET, "SETDESC", d->confirm_text);
		if (r >= 0)
			r = plan_verb(p, CMD_CONFIRM, "CONFIRM");
	}
	if (r >= 0 && d->error)
		r = plan_text(p, CMD_SET, "SETERROR", d->error);
	/* Always: after a CONFIRM an absent description must not leave the confirmation's text
	 * on the PIN dialog. */
	if (r >= 0)
		r = plan_text(p, CMD_SET, "SETDESC", d->description);
	if (r >= 0 && d->prompt)
		r = plan_text(p, CMD_SET, "SETPROMPT", d->prompt);
	if (r >= 0)
		r = plan_verb(p, CMD_GETPIN, "GETPIN");
	return r;
}

/* --- the child ------------------------------------------------------------------------------ */

struct pin_env {
	char *v[PIN_ENV_MAX];
	size_t n;
};

static void
env_release(struct pin_env *env)
{
	size_t i;

	for (i = 0; i < env->n; i++)
		free(env->v[i]);
	env->n = 0;
}

static int
env_add(struct pin_env *env, const char *name, const char *value)
{
	size_t n, i;

	if (!value)
		return 0;
	n = strlen(value);
	if (n == 0 || n > AG_PIN_VALUE_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
			return -EINVAL;
	if (env->n + 1 >= PIN_ENV_MAX)
		return -E2BIG;
	if (asprintf(&env->v[env->n], "%s=%s", name, value) < 0)
		return -ENOMEM;
	env->n++;
	return 0;
}

/* R2: the child's whole environment is built here: never parafd's own, never the PIN. */
static int
env_build(struct pin_env *env, const struct ag_pin_dialog *d, const char *lang)
{
	int r;

	r = env_add(env, "PATH", "/usr/bin:/bin");
	if (r >= 0)
		r = env_add(env, "LANG", lang);
	if (r >= 0)
		r = env_add(env, "LC_ALL", lang);
	if (r >= 0)
		r = env_add(env, "DISPLAY", d->display);
	if (r >= 0)
		r = env_add(env, "XAUTHORITY", d->xauthority);
	if (r >= 0)
		r = env_add(env, "WAYLAND_DISPLAY", d->wayland_display);
	if (r >= 0)
		r = env_add(env, "XDG_RUNTIME_DIR", d->runtime_dir);
	env->v[env->n] = NULL;
	return r;
}

/* Moves fd to a number >= min (close-on-exec), so that dup2() onto 0..min-1 in the child can
 * never overwrite one of its own sources. */
static int
fd_move_above(int fd, int min)
{
	int nfd;

	if (fd >= min)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, min);
	if (nfd < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	close(fd);
	return nfd;
}

/* Between fork and exec: async-signal-safe calls only. Reports a failure as errno on report. */
static _Noreturn void
child_exec(pid_t parent, int io, int null_fd, int report, const char *program, char *const *envp)
{
	char *const argv[] = { (char *)program, NULL };
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	struct rlimit rl;
	sigset_t none;
	int sig, e;
	unsigned fd;

	/* parafd blocks SIGTERM/SIGINT/SIGHUP for sd-event and ignores SIGPIPE: the pinentry
	 * starts with every signal unblocked and at its default. */
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &dfl, NULL); /* EINVAL for libc's reserved ones */
	if (sigemptyset(&none) < 0 || sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		goto fail;
	/* A dialog whose agent died asks for a PIN nobody will use: it goes with the agent. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		goto fail;
	if (getppid() != parent)
		_exit(127);
	if (dup2(io, STDIN_FILENO) < 0 || dup2(io, STDOUT_FILENO) < 0 ||
	    dup2(null_fd, STDERR_FILENO) < 0 || dup3(report, 3, O_CLOEXEC) < 0)
		goto fail;
	report = 3;
	if (close_range(4, ~0U, 0) < 0) {
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
			goto fail;
		for (fd = 4; fd < rl.rlim_cur && fd < (1u << 20); fd++)
			(void)close((int)fd);
	}
	execve(program, argv, envp);
fail:
	e = errno;
	(void)!write(report, &e, sizeof(e));
	_exit(127);
}

static int
pinentry_spawn(struct ag_pinentry *p, const char *program, char *const *envp)
{
	_cleanup_close_ int ours = -1, io = -1, null_fd = -1, exec_r = -1, exec_w = -1;
	int sv[2], ep[2];
	pid_t parent = getpid(), pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	ours = sv[0];
	io = sv[1];
	if (pipe2(ep, O_CLOEXEC) < 0)
		return -errno;
	exec_r = ep[0];
	exec_w = ep[1];
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0)
		return -errno;
	io = fd_move_above(TAKE_FD(io), 4);
	if (io < 0)
		return io;
	null_fd = fd_move_above(TAKE_FD(null_fd), 4);
	if (null_fd < 0)
		return null_fd;
	exec_w = fd_move_above(TAKE_FD(exec_w), 4);
	if (exec_w < 0)
		return exec_w;
	if (fcntl(ours, F_SETFL, O_NONBLOCK) < 0 || fcntl(exec_r, F_SETFL, O_NONBLOCK) < 0)
		return -errno;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		child_exec(parent, io, null_fd, exec_w, program, envp);
	p->pid = pid;
	p->fd = TAKE_FD(ours);
	p->exec_fd = TAKE_FD(exec_r);
	return 0;
}

/* The child is gone from the conversation (EOF, reset): did it ever run? */
static int
pinentry_broken(struct ag_pinentry *p)
{
	int e;

	if (!p->greeted && p->exec_fd >= 0 && read(p->exec_fd, &e, sizeof(e)) == sizeof(e))
		return -ENOENT; /* exec failed: missing, not executable, bad interpreter */
	return -EIO;
}

/* --- reaping -------------------------------------------------------------------------------- */

static bool
pinentry_reap(struct ag_pinentry *p)
{
	pid_t r;

	if (p->pid <= 0)
		return true;
	r = waitpid(p->pid, NULL, WNOHANG);
	if (r == p->pid || (r < 0 && errno == ECHILD)) {
		p->pid = 0;
		return true;
	}
	return false;
}

static void
pinentry_kill_wait(struct ag_pinentry *p)
{
	if (p->pid <= 0)
		return;
	(void)kill(p->pid, SIGKILL);
	while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
		;
	p->pid = 0;
}

static void
pinentry_free(struct ag_pinentry *p)
{
	size_t i;

	if (!p)
		return;
	pinentry_kill_wait(p);
	p->io = sd_event_source_disable_unref(p->io);
	p->timer = sd_event_source_disable_unref(p->timer);
	if (p->fd >= 0)
		close(p->fd);
	if (p->exec_fd >= 0)
		close(p->exec_fd);
	for (i = 0; i < p->n_cmds; i++)
		free(p->cmds[i].line);
	p->pin = pf_secret_free(p->pin);
	explicit_bzero(p->in, sizeof(p->in)); /* R2 */
	free(p);
}

static void
reaper_destroyed(void *userdata)
{
	/* The reaper's source is gone: reaped, or the loop is being freed. */
	pinentry_free(userdata);
}

static void
reaper_release(struct ag_pinentry *p)
{
	sd_event_source *s = TAKE_PTR(p->reaper);

	/* Hands the loop's reference back and drops it: reaper_destroyed() frees p. If that
	 * fails, p stays until the loop is freed, which frees it all the same. */
	(void)sd_event_source_set_floating(s, false);
}

static int
reaper_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct ag_pinentry *p = userdata;
	int r;

	if (pinentry_reap(p)) {
		reaper_release(p);
		return 0;
	}
	if (usec >= p->kill_at) {
		pinentry_kill_wait(p);
		reaper_release(p);
		return 0;
	}
	if (usec >= p->term_at && !p->term_sent) {
		(void)kill(p->pid, SIGTERM);
		p->term_sent = true;
	}
	r = sd_event_source_set_time_relative(s, PIN_REAP_TICK_USEC);
	if (r >= 0)
		r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	if (r < 0) {
		pinentry_kill_wait(p);
		reaper_release(p);
	}
	return 0;
}

/*
 * Ends the conversation: after an answer (graceful) the child gets BYE and time to exit by
 * itself; otherwise (a deadline, nonsense, a cancel) SIGTERM at once, so a curses pinentry
 * can restore the terminal, and SIGKILL a second later. p may be freed on return.
 */
static void
pinentry_close(struct ag_pinentry *p, bool graceful)
{
	sd_event_source *s = NULL;
	uint64_t now;
	int r;

	p->io = sd_event_source_disable_unref(p->io);
	p->timer = sd_event_source_disable_unref(p->timer);
	if (p->exec_fd >= 0) {
		close(p->exec_fd);
		p->exec_fd = -1;
	}
	p->pin = pf_secret_free(p->pin);
	explicit_bzero(p->in, sizeof(p->in)); /* R2 */
	p->in_len = 0;
	/* Our end stays open until the child is reaped, so its answer to BYE does not fail. */
	if (graceful && p->fd >= 0)
		(void)send(p->fd, "BYE\n", 4, MSG_NOSIGNAL | MSG_DONTWAIT);
	else if (p->pid > 0) {
		(void)kill(p->pid, SIGTERM);
		p->term_sent = true;
	}
	if (pinentry_reap(p)) {
		pinentry_free(p);
		return;
	}

	r = sd_event_now(p->event, CLOCK_MONOTONIC, &now);
	if (r >= 0) {
		p->term_at = now + (p->term_sent ? 0 : PIN_REAP_TERM_USEC);
		p->kill_at = p->term_at + PIN_REAP_KILL_USEC;
		r = sd_event_add_time_relative(p->event, &s, CLOCK_MONOTONIC, PIN_REAP_TICK_USEC, 0,
			reaper_tick, p);
	}
	if (r >= 0)
		r = sd_event_source_set_floating(s, true);
	if (r >= 0)
		r = sd_event_source_set_destroy_callback(s, reaper_destroyed);
	if (r < 0) {
		if (s) {
			(void)sd_event_source_set_floating(s, false);
			sd_event_source_disable_unref(s);
		}
		pinentry_free(p); /* kills and reaps at once */
		return;
	}
	/* The loop owns the reaper now: freeing the loop kills and reaps the child. */
	p->reaper = s;
	sd_event_source_unref(s);
}

/* Delivers the result: exactly once, from the loop. */
static void
pinentry_complete(struct ag_pinentry *p, int r)
{
	ag_pin_cb cb = p->cb;
	void *data = p->data;
	struct pf_secret *pin = NULL;
	bool graceful = p->greeted && !p->awaiting;

	if (r == 0) {
		pin = TAKE_PTR(p->pin);
		pin->len = p->pin_len;
		/* Wipes the room past the PIN and writes its terminating NUL. */
		explicit_bzero(pin->data + p->pin_len, PF_SECRET_MAX + 1 - p->pin_len);
	}
	p->cb = NULL;
	pinentry_close(p, graceful);
	cb(r, pin, data);
}

/* --- the conversation ----------------------------------------------------------------------- */

static int
pinentry_update_events(struct ag_pinentry *p)
{
	uint32_t ev = EPOLLIN;
	int r;

	if (p->out_off < p->out_len)
		ev |= EPOLLOUT;
	r = sd_event_source_set_io_events(p->io, ev);
	return r < 0 ? r : 0;
}

static int
pinentry_flush(struct ag_pinentry *p)
{
	while (p->out_off < p->out_len) {
		ssize_t n = send(p->fd, p->out + p->out_off, p->out_len - p->out_off,
			MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return pinentry_broken(p);
		p->out_off += (size_t)n;
	}
	return pinentry_update_events(p);
}

static int
pinentry_send(struct ag_pinentry *p, const char *s, size_t n)
{
	if (p->out_off < p->out_len)
		return -EIO; /* Assuan is one line at a time: the peer spoke out of turn */
	p->out = s;
	p->out_len = n;
	p->out_off = 0;
	return pinentry_flush(p);
}

static int
pinentry_send_next(struct ag_pinentry *p)
{
	const struct pin_cmd *c;
	int r;

	if (p->next >= p->n_cmds)
		return -EIO;
	c = &p->cmds[p->next++];
	if (c->kind == CMD_CONFIRM || c->kind == CMD_GETPIN) {
		/* Each dialog gets the whole timeout; the deadline restarts with it. */
		r = sd_event_source_set_time_relative(p->timer, p->deadline_usec);
		if (r >= 0)
			r = sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT);
		if (r < 0)
			return r;
	}
	p->awaiting = true;
	p->lines = 0;
	return pinentry_send(p, c->line, c->len);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes one D line's data into the secret in place (R2: no other copy is made). */
static int
pin_append(struct ag_pinentry *p, const char *s, size_t n)
{
	size_t i;
	int r;

	if (!p->pin) {
		r = pf_secret_new(pin_room, sizeof(pin_room), &p->pin);
		if (r < 0)
			return r;
		p->pin_len = 0;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (n - i < 3 || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
				return -EIO;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (c == 0)
			return -EIO;
		if (p->pin_len >= PF_SECRET_MAX)
			return -E2BIG; /* refused, never truncated */
		p->pin->data[p->pin_len++] = (char)c;
	}
	return 0;
}

/* "ERR <code> <text>": the code's low 16 bits are the gpg-error code. */
static unsigned
err_code(const char *s, size_t n)
{
	unsigned long v = 0;
	size_t i;

	for (i = 4; i < n && s[i] >= '0' && s[i] <= '9' && i < 4 + 10; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	return (unsigned)(v & 0xffff);
}

static bool
is_word(const char *s, size_t n, const char *w)
{
	size_t k = strlen(w);

	return n >= k && memcmp(s, w, k) == 0 && (n == k || s[k] == ' ');
}

/* 0: go on; 1: the PIN is in; < 0: the result. */
static int
pinentry_answer(struct ag_pinentry *p, bool ok, unsigned code)
{
	const struct pin_cmd *c;

	p->awaiting = false;
	if (!p->greeted) {
		if (!ok)
			return -EIO;
		p->greeted = true;
		if (p->exec_fd >= 0) {
			close(p->exec_fd); /* it runs: the report pipe has nothing more to say */
			p->exec_fd = -1;
		}
		return pinentry_send_next(p);
	}
	c = &p->cmds[p->next - 1];
	switch (c->kind) {
	case CMD_OPTION:
		return pinentry_send_next(p);
	case CMD_SET:
		return ok ? pinentry_send_next(p) : -EIO;
	case CMD_CONFIRM:
	case CMD_GETPIN:
		if (!ok) {
			if (code == GPG_ERR_TIMEOUT)
				return -ETIMEDOUT;
			if (code == GPG_ERR_CANCELED || code == GPG_ERR_NOT_CONFIRMED ||
			    code == GPG_ERR_FULLY_CANCELED)
				return -ECANCELED;
			/* e.g. no usable terminal or display: not the person's answer */
			return -EIO;
		}
		if (c->kind == CMD_CONFIRM)
			return pinentry_send_next(p);
		if (!p->pin) {
			int r = pf_secret_new(pin_room, sizeof(pin_room), &p->pin);
			if (r < 0)
				return r;
			p->pin_len = 0;
		}
		return 1;
	}
	return -EIO;
}

static int
pinentry_line(struct ag_pinentry *p, const char *s, size_t n)
{
	if (n && s[n - 1] == '\r')
		n--;
	if (is_word(s, n, "OK"))
		return pinentry_answer(p, true, 0);
	if (is_word(s, n, "ERR"))
		return pinentry_answer(p, false, err_code(s, n));
	if (++p->lines > PIN_LINES_PER_ANSWER)
		return -EIO;
	if (n && s[0] == '#')
		return 0;
	if (is_word(s, n, "S"))
		return 0;
	if (is_word(s, n, "D")) {
		if (!p->greeted || p->cmds[p->next - 1].kind != CMD_GETPIN)
			return -EIO;
		return n > 2 ? pin_append(p, s + 2, n - 2) : pin_append(p, "", 0);
	}
	if (is_word(s, n, "INQUIRE") && p->greeted)
		return pinentry_send(p, "CAN\n", 4); /* we never set up anything to inquire */
	return -EIO;
}

/* Consumes the complete lines in the buffer; their bytes are wiped (R2). */
static int
pinentry_lines(struct ag_pinentry *p)
{
	size_t start = 0;
	char *nl;
	int r = 0;

	while (r == 0 && (nl = memchr(p->in + start, '\n', p->in_len - start))) {
		r = pinentry_line(p, p->in + start, (size_t)(nl - (p->in + start)));
		start = (size_t)(nl - p->in) + 1;
	}
	memmove(p->in, p->in + start, p->in_len - start);
	explicit_bzero(p->in + p->in_len - start, start);
	p->in_len -= start;
	if (r == 0 && p->in_len == sizeof(p->in))
		return -EIO; /* a line longer than AG_PIN_LINE_MAX */
	return r;
}

static int
pinentry_receive(struct ag_pinentry *p)
{
	unsigned i;

	for (i = 0; i < PIN_READS_PER_EVENT; i++) {
		ssize_t n = recv(p->fd, p->in + p->in_len, sizeof(p->in) - p->in_len,
			MSG_DONTWAIT);
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return pinentry_broken(p);
		p->in_len += (size_t)n;
		r = pinentry_lines(p);
		if (r != 0)
			return r;
	}
	return 0;
}

static int
pinentry_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct ag_pinentry *p = userdata;
	int r = 0;

	if (revents & EPOLLOUT)
		r = pinentry_flush(p);
	if (r == 0 && revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
		r = pinentry_receive(p);
	if (r != 0)
		pinentry_complete(p, r > 0 ? 0 : r);
	return 0;
}

static int
pinentry_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	pinentry_complete(userdata, -ETIMEDOUT);
	return 0;
}

int
ag_pinentry_ask(sd_event *e, const struct ag_pin_dialog *d, ag_pin_cb cb, void *data,
	struct ag_pinentry **ret_p)
{
	_cleanup_(pinentry_freep) struct ag_pinentry *p = NULL;
	_cleanup_(env_release) struct pin_env env = {};
	const char *lang;
	unsigned timeout;
	int r;

	if (!e || !d || !cb || !ret_p || !d->program || d->program[0] != '/')
		return -EINVAL;
	timeout = d->timeout ? d->timeout : AG_PIN_TIMEOUT_DEFAULT;
	if (timeout > AG_PIN_TIMEOUT_MAX)
		return -EINVAL;
	lang = d->lang ? d->lang : "C.UTF-8";

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->event = e;
	p->fd = -1;
	p->exec_fd = -1;
	p->cb = cb;
	p->data = data;
	p->deadline_usec = ((uint64_t)timeout + AG_PIN_DEADLINE_GRACE) * USEC_PER_SEC;

	r = pinentry_plan(p, d, lang, timeout);
	if (r < 0)
		return r;
	r = env_build(&env, d, lang);
	if (r < 0)
		return r;
	r = pinentry_spawn(p, d->program, env.v);
	if (r < 0)
		return r;
	r = sd_event_add_io(e, &p->io, p->fd, EPOLLIN, pinentry_io, p);
	if (r < 0)
		return r;
	/* The same deadline covers the start and the settings; each dialog restarts it. */
	r = sd_event_add_time_relative(e, &p->timer, CLOCK_MONOTONIC, p->deadline_usec, 0,
		pinentry_deadline, p);
	if (r < 0)
		return r;
	p->awaiting = true; /* the greeting */
	*ret_p = TAKE_PTR(p);
	return 0;
}

struct ag_pinentry *
ag_pinentry_cancel(struct ag_pinentry *p)
{
	if (!p)
		return NULL;
	p->cb = NULL;
	pinentry_close(p, false);
	return NULL;
}

pid_t
ag_pinentry_pid(const struct ag_pinentry *p)
{
	return p ? p->pid : 0;
}
