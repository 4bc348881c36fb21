/*
 * The PIN dialog client (agent/ag-pinentry.c) on a real sd-event loop against test/fake-pinentry,
 * a scripted Assuan server: the PIN arrives byte-exact (R2), texts arrive decoded exactly and
 * within Assuan's line limit, every way a dialog ends maps to its errno, the callback runs once
 * and only from the loop, and no child outlives its dialog. The test process blocks and ignores
 * signals as parafd does, so the child's clean start is checked too.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "ag-pinentry.h"
#include "pf-util.h"

#define CANARY_NAME "PARAF_TEST_CANARY"
#define CANARY_VALUE "must-not-reach-the-pinentry"
#define WAIT_MS 20000 /* for an answer that should come at once: generous for slow CI */

static const char *fake_path; /* the absolute path of test/fake-pinentry */

struct fixture {
	char dir[64];
	char log[PATH_MAX];
	char signals[PATH_MAX]; /* the wrapper's SigIgn, before python changes it (read with
	                           builtins: dash blocks signals around a fork) */
	sd_event *e;
};

struct result {
	int calls;
	int r;
	struct pf_secret *pin;
};

static void
on_pin(int r, struct pf_secret *pin, void *data)
{
	struct result *res = data;

	res->calls++;
	res->r = r;
	res->pin = pin;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/paraf-pinentry-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->log, sizeof(f->log), "%s/log.jsonl", f->dir);
	snprintf(f->signals, sizeof(f->signals), "%s/signals", f->dir);
	assert_int_equal(sd_event_new(&f->e), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[PATH_MAX + 16];

	sd_event_unref(f->e);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t n = strlen(text);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

/* Writes conf-NAME.json (consuming conf; "log" defaults to the fixture's log) and the wrapper
 * script parafd would be given; returns the wrapper's path (static storage per name slot). */
static const char *
fake(struct fixture *f, const char *name, json_object *conf)
{
	static char paths[8][PATH_MAX];
	static unsigned slot;
	char conf_path[PATH_MAX], script[3 * PATH_MAX];
	char *wrapper = paths[slot++ % 8];

	if (!json_object_object_get_ex(conf, "log", NULL))
		json_object_object_add(conf, "log", json_object_new_string(f->log));
	snprintf(conf_path, sizeof(conf_path), "%s/conf-%s.json", f->dir, name);
	write_file(conf_path, json_object_to_json_string_ext(conf, JSON_C_TO_STRING_PLAIN), 0600);
	json_object_put(conf);
	snprintf(wrapper, PATH_MAX, "%s/pinentry-%s", f->dir, name);
	snprintf(script, sizeof(script),
		"#!/bin/sh\n"
		"while IFS= read -r l; do case $l in SigIgn:*) echo \"$l\";; esac\n"
		"done < /proc/$$/status > '%s'\n"
		"exec /usr/bin/python3 '%s' --conf '%s' \"$@\"\n",
		f->signals, fake_path, conf_path);
	write_file(wrapper, script, 0700);
	return wrapper;
}

/* The fake with no shell in between (dash clears the signal mask): a symlink to it, its
 * configuration beside it as SYMLINK.json. */
static const char *
fake_direct(struct fixture *f, const char *name, json_object *conf)
{
	static char path[PATH_MAX];
	char conf_path[PATH_MAX + 8];

	if (!json_object_object_get_ex(conf, "log", NULL))
		json_object_object_add(conf, "log", json_object_new_string(f->log));
	snprintf(path, sizeof(path), "%s/direct-%s", f->dir, name);
	snprintf(conf_path, sizeof(conf_path), "%s.json", path);
	write_file(conf_path, json_object_to_json_string_ext(conf, JSON_C_TO_STRING_PLAIN), 0600);
	json_object_put(conf);
	assert_int_equal(symlink(fake_path, path), 0);
	return path;
}

static json_object *
conf_pin(const char *pin)
{
	json_object *c = json_object_new_object();

	json_object_object_add(c, "pin", json_object_new_string(pin));
	return c;
}

static json_object *
conf_action(const char *action)
{
	json_object *c = json_object_new_object();

	json_object_object_add(c, "action", json_object_new_string(action));
	return c;
}

static struct ag_pin_dialog
dialog(const char *program)
{
	return (struct ag_pin_dialog){
		.program = program,
		.title = "paraf",
		.description = "Tanda tangani 1 dokumen",
		.prompt = "PIN:",
		.timeout = 30,
	};
}

/* Runs the loop until cond(arg) or ms have passed; returns the milliseconds it took. */
static uint64_t
run_until(sd_event *e, bool (*cond)(void *), void *arg, unsigned ms)
{
	uint64_t start = now_ms();

	while (!cond(arg) && now_ms() - start < ms)
		assert_true(sd_event_run(e, 20 * 1000) >= 0);
	return now_ms() - start;
}

static bool
answered(void *arg)
{
	return ((struct result *)arg)->calls > 0;
}

static bool
never(void *arg)
{
	return false;
}

static bool
pid_gone(void *arg)
{
	pid_t pid = *(pid_t *)arg;

	/* Our own child answers kill(0) until it is reaped: gone means no zombie either. */
	return kill(pid, 0) < 0 && errno == ESRCH;
}

/* Asks and runs the loop until the answer; the callback must not run inside the ask. */
static void
ask(struct fixture *f, const struct ag_pin_dialog *d, struct result *res, pid_t *ret_pid)
{
	struct ag_pinentry *p = NULL;

	memset(res, 0, sizeof(*res));
	assert_int_equal(ag_pinentry_ask(f->e, d, on_pin, res, &p), 0);
	assert_non_null(p);
	assert_int_equal(res->calls, 0);
	if (ret_pid)
		*ret_pid = ag_pinentry_pid(p);
	run_until(f->e, answered, res, WAIT_MS);
	assert_int_equal(res->calls, 1);
	if (res->r != 0)
		assert_null(res->pin);
}

/* Every record of the log with this "event", in order. */
static json_object *
log_records(struct fixture *f, const char *event)
{
	json_object *all = json_object_new_array();
	FILE *fp = fopen(f->log, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!fp)
		return all;
	while ((n = getline(&line, &cap, fp)) > 0) {
		json_object *o, *ev;

		if (line[n - 1] != '\n')
			break; /* still being written */
		o = json_tokener_parse(line);
		assert_non_null(o);
		if (json_object_object_get_ex(o, "event", &ev) &&
		    streq(json_object_get_string(ev), event))
			json_object_array_add(all, o);
		else
			json_object_put(o);
	}
	free(line);
	fclose(fp);
	return all;
}

static bool
have_dialog_record(void *arg)
{
	json_object *a = log_records(arg, "dialog");
	bool r = json_object_array_length(a) > 0;

	json_object_put(a);
	return r;
}

/* The n-th dialog record (a new reference). */
static json_object *
log_dialog(struct fixture *f, size_t n)
{
	json_object *a = log_records(f, "dialog"), *o;

	assert_true(json_object_array_length(a) > n);
	o = json_object_get(json_object_array_get_idx(a, n));
	json_object_put(a);
	return o;
}

static const char *
str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	return json_object_get_string(v);
}

static json_object *
member(json_object *o, const char *key)
{
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return v;
}

static void
assert_pin(const struct result *res, const char *want)
{
	assert_int_equal(res->r, 0);
	assert_non_null(res->pin);
	assert_int_equal(res->pin->len, strlen(want));
	assert_memory_equal(res->pin->data, want, strlen(want));
	assert_int_equal(res->pin->data[res->pin->len], 0);
}

/* Waits until the child is reaped (BYE, or the SIGTERM/SIGKILL of a failed dialog). */
static void
assert_reaped(struct fixture *f, pid_t pid)
{
	assert_true(pid > 0);
	run_until(f->e, pid_gone, &pid, 5000);
	assert_true(pid_gone(&pid));
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static void
test_pin_exact(void **state)
{
	struct fixture *f = *state;
	/* Spaces at both ends, %, an escape-looking text, a tab, CR LF, 2-, 3- and 4-byte UTF-8. */
	static const char pin[] = " 1%25 %x\tb \xc3\xa9\xe2\x82\xac\xf0\x9f\x99\x82\r\n% ";
	struct ag_pin_dialog d = dialog(fake(f, "pin", conf_pin(pin)));
	struct result res;
	json_object *rec, *env, *bye;
	pid_t pid;
	char sig[256] = "";
	FILE *fp;

	d.tty = "/dev/pts/77";
	d.tty_type = "xterm-256color";
	d.lang = "id_ID.UTF-8";
	d.display = ":7";
	d.xauthority = "/run/user/1000/xauth";
	d.wayland_display = "wayland-1";
	d.runtime_dir = "/run/user/1000";
	d.ok_label = "Tanda _tangani";
	d.cancel_label = "_Batal";
	d.error = "PIN salah, sisa percobaan rendah";
	d.timeout = 42;
	ask(f, &d, &res, &pid);
	assert_pin(&res, pin);
	res.pin = pf_secret_free(res.pin);
	assert_reaped(f, pid);

	rec = log_dialog(f, 0);
	assert_int_equal(json_object_get_int(member(rec, "pid")), pid);
	assert_string_equal(str(member(rec, "options"), "ttyname"), "/dev/pts/77");
	assert_string_equal(str(member(rec, "options"), "ttytype"), "xterm-256color");
	assert_string_equal(str(member(rec, "options"), "lc-ctype"), "id_ID.UTF-8");
	assert_string_equal(str(member(rec, "options"), "lc-messages"), "id_ID.UTF-8");
	assert_string_equal(str(rec, "title"), "paraf");
	assert_string_equal(str(rec, "description"), "Tanda tangani 1 dokumen");
	assert_string_equal(str(rec, "prompt"), "PIN:");
	assert_string_equal(str(rec, "ok"), "Tanda _tangani");
	assert_string_equal(str(rec, "cancel"), "_Batal");
	assert_string_equal(str(rec, "getpin_error"), "PIN salah, sisa percobaan rendah");
	assert_int_equal(json_object_get_int(member(rec, "timeout")), 42);
	assert_false(json_object_get_boolean(member(rec, "confirm")));
	assert_string_equal(json_object_to_json_string_ext(member(rec, "commands"),
		JSON_C_TO_STRING_PLAIN),
		"[\"OPTION\",\"OPTION\",\"OPTION\",\"OPTION\",\"SETTIMEOUT\",\"SETTITLE\",\"SETOK\","
		"\"SETCANCEL\",\"SETERROR\",\"SETDESC\",\"SETPROMPT\",\"GETPIN\"]");

	/* R2: a clean environment (dash adds PWD), never ours, never the PIN; no arguments. */
	env = member(rec, "env");
	json_object_object_foreach(env, key, val) {
		static const char *const allowed[] = { "PATH", "LANG", "LC_ALL", "DISPLAY",
			"XAUTHORITY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "PWD" };
		bool ok = false;

		for (size_t i = 0; i < ARRAY_SIZE(allowed); i++)
			ok = ok || streq(key, allowed[i]);
		if (!ok)
			fail_msg("unexpected variable in the pinentry's environment: %s", key);
		assert_null(strstr(json_object_get_string(val), "%x")); /* a piece of the PIN */
	}
	assert_string_equal(str(env, "PATH"), "/usr/bin:/bin");
	assert_string_equal(str(env, "LANG"), "id_ID.UTF-8");
	assert_string_equal(str(env, "LC_ALL"), "id_ID.UTF-8");
	assert_string_equal(str(env, "DISPLAY"), ":7");
	assert_string_equal(str(env, "XAUTHORITY"), "/run/user/1000/xauth");
	assert_string_equal(str(env, "WAYLAND_DISPLAY"), "wayland-1");
	assert_string_equal(str(env, "XDG_RUNTIME_DIR"), "/run/user/1000");
	assert_int_equal(json_object_array_length(member(rec, "extra_args")), 0);

	/* Only stdin and stdout (the socketpair) and stderr (/dev/null) are open. */
	assert_string_equal(json_object_to_json_string_ext(member(rec, "fds"),
		JSON_C_TO_STRING_PLAIN), "[\"0\",\"1\",\"2\"]");
	assert_string_equal(str(member(rec, "stdio"), "2"), "/dev/null");
	assert_ptr_equal(strstr(str(member(rec, "stdio"), "0"), "socket:"),
		str(member(rec, "stdio"), "0"));
	assert_string_equal(str(member(rec, "stdio"), "0"), str(member(rec, "stdio"), "1"));
	/* parafd ignores SIGPIPE and main() SIGUSR1: dash keeps ignored signals ignored, so the
	 * wrapper shows whether the child reset them (the mask is checked below, without dash,
	 * which clears it). */
	fp = fopen(f->signals, "re");
	assert_non_null(fp);
	assert_int_equal(fread(sig, 1, sizeof(sig) - 1, fp) > 0, 1);
	fclose(fp);
	{
		/* Signals 32 and 33 (below SIGRTMIN) are glibc's own: sigaction() refuses to touch
		 * them, so an ignored one inherited from whoever started the test stays ignored. */
		unsigned long long ign = 0;
		assert_int_equal(sscanf(sig, "SigIgn:\t%llx", &ign), 1);
		for (int s32 = 32; s32 < SIGRTMIN; s32++)
			ign &= ~(1ULL << (s32 - 1));
		if (ign)
			fail_msg("the dialog inherited ignored signals: %s", sig);
	}
	json_object_put(rec);

	/* The conversation ended with BYE. */
	bye = log_records(f, "bye");
	assert_int_equal(json_object_array_length(bye), 1);
	assert_int_equal(json_object_get_int(member(json_object_array_get_idx(bye, 0), "pid")),
		pid);
	json_object_put(bye);

	/* Started directly (python keeps what it inherits, but for ignoring SIGPIPE and SIGXFSZ
	 * itself): nothing blocked (parafd blocks SIGTERM/SIGINT/SIGHUP), nothing of ours
	 * ignored. */
	d = dialog(fake_direct(f, "pin", conf_pin("4321")));
	ask(f, &d, &res, &pid);
	assert_pin(&res, "4321");
	res.pin = pf_secret_free(res.pin);
	assert_reaped(f, pid);
	rec = log_dialog(f, 1);
	assert_string_equal(str(rec, "sigblk"), "0000000000000000");
	/* Less glibc's own 32 and 33, which no one but the kernel can reset (see above). */
	assert_int_equal(strtoull(str(rec, "sigign"), NULL, 16) &
		~(1ULL << (SIGPIPE - 1) | 1ULL << (SIGXFSZ - 1) | 1ULL << 31 | 1ULL << 32), 0);
	assert_int_equal(json_object_array_length(member(rec, "extra_args")), 0);
	assert_string_equal(json_object_to_json_string_ext(member(rec, "fds"),
		JSON_C_TO_STRING_PLAIN), "[\"0\",\"1\",\"2\"]");
	json_object_put(rec);
}

static void
test_description_decoded(void **state)
{
	struct fixture *f = *state;
	static const char desc[] = "  Dua spasi di depan\nBaris 2: 100% selesai, %0A bukan baris\r\n"
				   "\tTab\x01kontrol \xe2\x80\xa2 Rp 1.000 ";
	struct ag_pin_dialog d = dialog(fake(f, "desc", conf_pin("1234")));
	struct result res;
	json_object *rec;

	d.description = desc;
	d.title = "100% %25";
	d.prompt = " PIN:";
	ask(f, &d, &res, NULL);
	assert_pin(&res, "1234");
	res.pin = pf_secret_free(res.pin);
	rec = log_dialog(f, 0);
	assert_string_equal(str(rec, "description"), desc);
	assert_string_equal(str(rec, "title"), "100% %25");
	assert_string_equal(str(rec, "prompt"), " PIN:");
	assert_null(str(rec, "ok"));
	assert_null(str(rec, "error"));
	assert_null(json_object_object_get_ex(rec, "bad", NULL) ? "bad escape" : NULL);
	json_object_put(rec);
}

/* An Assuan line is at most 1000 bytes: a long description is cut at a character boundary
 * and ends with U+2026; escapes count with their three bytes. */
static void
test_truncate_utf8(void **state)
{
	struct fixture *f = *state;
	static const char *const units[] = { "\xc3\xa9", "\xe2\x82\xac", "%", "\n", "a" };
	struct ag_pin_dialog d = dialog(fake(f, "long", conf_pin("1")));
	char desc[3000];
	size_t n = 0, i, got_len;
	struct result res;
	json_object *rec;
	const char *got;

	/* Every start offset modulo the unit lengths, so a byte cut would split a character. */
	for (i = 0; n + 4 < sizeof(desc); i++) {
		const char *u = units[(i * 7 + i / 5) % ARRAY_SIZE(units)];

		memcpy(desc + n, u, strlen(u));
		n += strlen(u);
	}
	desc[n] = 0;
	d.description = desc;
	ask(f, &d, &res, NULL);
	assert_pin(&res, "1");
	res.pin = pf_secret_free(res.pin);
	rec = log_dialog(f, 0);
	assert_false(json_object_object_get_ex(rec, "line_too_long", NULL));
	assert_true(json_object_get_int(member(rec, "max_line")) <= AG_PIN_ASSUAN_LINE_MAX);
	/* Not cut much shorter than it had to be (one escaped character at most). */
	assert_true(json_object_get_int(member(rec, "max_line")) >= AG_PIN_ASSUAN_LINE_MAX - 6);
	got = str(rec, "description");
	got_len = strlen(got);
	assert_true(got_len > 3 && got_len < n);
	assert_memory_equal(got + got_len - 3, "\xe2\x80\xa6", 3);
	assert_memory_equal(got, desc, got_len - 3);
	/* The cut is at a boundary: the next original byte starts a character. */
	assert_true(((unsigned char)desc[got_len - 3] & 0xc0) != 0x80);
	json_object_put(rec);
}

static void
test_cancel(void **state)
{
	struct fixture *f = *state;
	struct ag_pin_dialog d = dialog(fake(f, "cancel", conf_action("cancel")));
	struct result res;
	json_object *bye;
	pid_t pid;

	ask(f, &d, &res, &pid);
	assert_int_equal(res.r, -ECANCELED);
	assert_reaped(f, pid);
	bye = log_records(f, "bye"); /* a cancelled dialog still ends with BYE */
	assert_int_equal(json_object_array_length(bye), 1);
	json_object_put(bye);
}

static void
test_decline_confirm(void **state)
{
	struct fixture *f = *state;
	static const long codes[] = { 83886179 /* CANCELED */, 83886194 /* NOT_CONFIRMED */ };

	for (size_t i = 0; i < ARRAY_SIZE(codes); i++) {
		json_object *c = conf_action("decline-confirm"), *rec;
		struct ag_pin_dialog d;
		struct result res;
		char name[16];

		json_object_object_add(c, "confirm_code", json_object_new_int64(codes[i]));
		snprintf(name, sizeof(name), "decline%zu", i);
		d = dialog(fake(f, name, c));
		d.confirm_text = "PERINGATAN: percobaan PIN terakhir.\nLanjutkan?";
		d.error = "PIN salah";
		ask(f, &d, &res, NULL);
		assert_int_equal(res.r, -ECANCELED);
		rec = log_dialog(f, i);
		assert_true(json_object_get_boolean(member(rec, "confirm")));
		assert_false(json_object_get_boolean(member(rec, "getpin")));
		assert_string_equal(str(rec, "confirm_description"), d.confirm_text);
		assert_string_equal(str(rec, "confirm_error"), "PIN salah");
		json_object_put(rec);
	}
}

static void
test_confirm_then_pin(void **state)
{
	struct fixture *f = *state;
	struct ag_pin_dialog d = dialog(fake(f, "confirm", conf_pin("2468")));
	struct result res;
	json_object *rec;

	d.confirm_text = "PERINGATAN: percobaan PIN terakhir. Lanjutkan?";
	d.error = "PIN salah";
	ask(f, &d, &res, NULL);
	assert_pin(&res, "2468");
	res.pin = pf_secret_free(res.pin);
	rec = log_dialog(f, 0);
	assert_true(json_object_get_boolean(member(rec, "confirm")));
	assert_true(json_object_get_boolean(member(rec, "confirm_first")));
	assert_true(json_object_get_boolean(member(rec, "getpin")));
	assert_string_equal(str(rec, "confirm_description"), d.confirm_text);
	assert_string_equal(str(rec, "getpin_description"), d.description);
	/* A pinentry shows an error once: it is sent for each of the two dialogs. */
	assert_string_equal(str(rec, "confirm_error"), "PIN salah");
	assert_string_equal(str(rec, "getpin_error"), "PIN salah");
	json_object_put(rec);
}

/* A pinentry that never answers is killed at our deadline, timeout + 5 s. */
static void
test_hang_deadline(void **state)
{
	struct fixture *f = *state;
	struct ag_pin_dialog d = dialog(fake(f, "hang", conf_action("hang")));
	struct ag_pinentry *p = NULL;
	struct result res = {};
	uint64_t ms;
	pid_t pid;

	d.timeout = 1;
	assert_int_equal(ag_pinentry_ask(f->e, &d, on_pin, &res, &p), 0);
	pid = ag_pinentry_pid(p);
	ms = run_until(f->e, answered, &res, 15000);
	assert_int_equal(res.calls, 1);
	assert_int_equal(res.r, -ETIMEDOUT);
	assert_null(res.pin);
	/* sd-event's default accuracy is 250 ms; the start itself takes some time. */
	assert_true(ms >= (1 + AG_PIN_DEADLINE_GRACE) * 1000 - 300);
	assert_true(ms <= (1 + AG_PIN_DEADLINE_GRACE) * 1000 + 3000);
	assert_reaped(f, pid);
}

static void
test_answers_map(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *action;
		int r;
	} cases[] = {
		{ "timeout", -ETIMEDOUT }, /* the pinentry's own SETTIMEOUT ran out */
		{ "error", -EIO },         /* e.g. no terminal: not the person's answer */
		{ "crash", -EIO },
		{ "garbage", -EIO },
		{ "long-line", -EIO },     /* over AG_PIN_LINE_MAX */
		{ "no-greeting", -EIO },
	};

	static const char *const refused[] = { "SETTITLE", "SETDESC", "SETTIMEOUT", "GETPIN" };

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ag_pin_dialog d = dialog(fake(f, cases[i].action,
			conf_action(cases[i].action)));
		struct result res;
		pid_t pid;

		ask(f, &d, &res, &pid);
		if (res.r != cases[i].r)
			fail_msg("action %s: r = %d, expected %d", cases[i].action, res.r,
				cases[i].r);
		assert_reaped(f, pid);
	}
	/* ERR is tolerated for OPTION lines only: a text the person would not see fails. */
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		json_object *c = conf_pin("1234"), *cmds = json_object_new_array();
		struct ag_pin_dialog d;
		struct result res;

		json_object_array_add(cmds, json_object_new_string(refused[i]));
		json_object_object_add(c, "reject_commands", cmds);
		d = dialog(fake(f, refused[i], c));
		ask(f, &d, &res, NULL);
		if (res.r != -EIO)
			fail_msg("%s refused: r = %d, expected -EIO", refused[i], res.r);
	}
}

static void
test_missing_program(void **state)
{
	struct fixture *f = *state;
	char programs[3][PATH_MAX];
	struct ag_pin_dialog d;
	struct result res;

	snprintf(programs[0], PATH_MAX, "%s/not-there", f->dir);
	snprintf(programs[1], PATH_MAX, "%s/not-executable", f->dir);
	write_file(programs[1], "#!/bin/sh\nexit 0\n", 0600);
	snprintf(programs[2], PATH_MAX, "%s/bad-interpreter", f->dir);
	write_file(programs[2], "#!/nonexistent/interpreter\n", 0700);
	for (size_t i = 0; i < ARRAY_SIZE(programs); i++) {
		d = dialog(programs[i]);
		ask(f, &d, &res, NULL); /* also checks: not called from inside the ask */
		if (res.r != -ENOENT)
			fail_msg("%s: r = %d, expected -ENOENT", programs[i], res.r);
	}
}

/* The client went away: the dialog is killed, the callback never runs, no zombie is left. */
static void
test_cancel_kills(void **state)
{
	struct fixture *f = *state;
	struct ag_pin_dialog d = dialog(fake(f, "hang", conf_action("hang")));
	struct ag_pinentry *p = NULL;
	struct result res = {};
	pid_t pid;

	/* While the dialog is up (the fake logged GETPIN). */
	assert_int_equal(ag_pinentry_ask(f->e, &d, on_pin, &res, &p), 0);
	pid = ag_pinentry_pid(p);
	run_until(f->e, have_dialog_record, f, WAIT_MS);
	assert_true(have_dialog_record(f));
	assert_null(ag_pinentry_cancel(p));
	assert_reaped(f, pid);
	run_until(f->e, never, NULL, 300);
	assert_int_equal(res.calls, 0);

	/* At once, before the greeting. */
	assert_int_equal(ag_pinentry_ask(f->e, &d, on_pin, &res, &p), 0);
	pid = ag_pinentry_pid(p);
	assert_null(ag_pinentry_cancel(p));
	assert_reaped(f, pid);
	run_until(f->e, never, NULL, 300);
	assert_int_equal(res.calls, 0);

	assert_null(ag_pinentry_cancel(NULL));
}

/* Freeing the loop with a cancelled dialog still reaping kills and reaps the child at once. */
static void
test_loop_freed(void **state)
{
	struct fixture *f = *state;
	struct ag_pin_dialog d = dialog(fake(f, "hang", conf_action("hang")));
	struct ag_pinentry *p = NULL;
	struct result res = {};
	pid_t pid;

	assert_int_equal(ag_pinentry_ask(f->e, &d, on_pin, &res, &p), 0);
	pid = ag_pinentry_pid(p);
	run_until(f->e, have_dialog_record, f, WAIT_MS);
	assert_null(ag_pinentry_cancel(p));
	f->e = sd_event_unref(f->e);
	assert_true(pid_gone(&pid));
	assert_int_equal(res.calls, 0);
	assert_int_equal(sd_event_new(&f->e), 0);
}

static void
test_pin_limits(void **state)
{
	struct fixture *f = *state;
	char pin[PF_SECRET_MAX + 2];
	struct ag_pin_dialog d;
	struct result res;

	memset(pin, 'x', sizeof(pin) - 1);
	pin[PF_SECRET_MAX] = 0;
	d = dialog(fake(f, "max", conf_pin(pin)));
	ask(f, &d, &res, NULL);
	assert_pin(&res, pin);
	res.pin = pf_secret_free(res.pin);

	pin[PF_SECRET_MAX] = 'x'; /* one more: refused, never truncated */
	pin[PF_SECRET_MAX + 1] = 0;
	d = dialog(fake(f, "over", conf_pin(pin)));
	ask(f, &d, &res, NULL);
	assert_int_equal(res.r, -E2BIG);

	d = dialog(fake(f, "empty", conf_pin(""))); /* Enter alone: an empty PIN, for the caller */
	ask(f, &d, &res, NULL);
	assert_pin(&res, "");
	res.pin = pf_secret_free(res.pin);
}

/* D lines of three bytes (splitting UTF-8 characters and escapes' neighbours), INQUIRE
 * answered CAN, unknown options refused and tolerated. */
static void
test_protocol_variants(void **state)
{
	struct fixture *f = *state;
	static const char pin[] = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x99\x82 a%b\n";
	json_object *c = conf_pin(pin), *rej = json_object_new_array(), *rec;
	struct ag_pin_dialog d;
	struct result res;

	json_object_object_add(c, "d_chunk", json_object_new_int(3));
	json_object_object_add(c, "inquire", json_object_new_boolean(true));
	json_object_array_add(rej, json_object_new_string("lc-ctype"));
	json_object_array_add(rej, json_object_new_string("lc-messages"));
	json_object_array_add(rej, json_object_new_string("ttytype"));
	json_object_object_add(c, "reject_options", rej);
	d = dialog(fake(f, "variants", c));
	d.tty = "/dev/pts/3";
	d.tty_type = "screen";
	ask(f, &d, &res, NULL);
	assert_pin(&res, pin);
	res.pin = pf_secret_free(res.pin);
	rec = log_dialog(f, 0);
	assert_string_equal(str(rec, "inquire_reply"), "CAN");
	json_object_put(rec);
}

static void
test_successive_pins(void **state)
{
	struct fixture *f = *state;
	json_object *c = json_object_new_object(), *pins = json_object_new_array();
	static const char *const want[] = { "1111", "2222", "2222" };
	struct ag_pin_dialog d;
	struct result res;

	json_object_array_add(pins, json_object_new_string("1111"));
	json_object_array_add(pins, json_object_new_string("2222"));
	json_object_object_add(c, "pins", pins);
	d = dialog(fake(f, "pins", c));
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		ask(f, &d, &res, NULL);
		assert_pin(&res, want[i]);
		res.pin = pf_secret_free(res.pin);
	}
}

static int
tick(sd_event_source *s, uint64_t usec, void *data)
{
	(*(unsigned *)data)++;
	if (sd_event_source_set_time_relative(s, 50 * 1000) < 0 ||
	    sd_event_source_set_enabled(s, SD_EVENT_ONESHOT) < 0)
		return -EIO;
	return 0;
}

/* While a person types, the loop serves others: a timer keeps firing, and three dialogs run
 * side by side, each getting its own answer. */
static void
test_loop_keeps_serving(void **state)
{
	struct fixture *f = *state;
	struct ag_pin_dialog d[3];
	struct result res[3] = {};
	struct ag_pinentry *p[3] = {};
	sd_event_source *timer = NULL;
	unsigned ticks = 0;
	static const char *const pins[] = { "satu", "dua", "tiga" };

	for (size_t i = 0; i < 3; i++) {
		json_object *c = conf_pin(pins[i]);

		json_object_object_add(c, "delay", json_object_new_double(1.0));
		d[i] = dialog(fake(f, pins[i], c));
		assert_int_equal(ag_pinentry_ask(f->e, &d[i], on_pin, &res[i], &p[i]), 0);
	}
	assert_int_equal(sd_event_add_time_relative(f->e, &timer, CLOCK_MONOTONIC, 50 * 1000,
		1000, tick, &ticks), 0);
	run_until(f->e, answered, &res[0], WAIT_MS);
	run_until(f->e, answered, &res[1], WAIT_MS);
	run_until(f->e, answered, &res[2], WAIT_MS);
	assert_true(ticks >= 10);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(res[i].calls, 1);
		assert_pin(&res[i], pins[i]);
		res[i].pin = pf_secret_free(res[i].pin);
	}
	sd_event_source_disable_unref(timer);
}

static void
test_invalid_arguments(void **state)
{
	struct fixture *f = *state;
	const char *program = fake(f, "never", conf_pin("1"));
	struct ag_pin_dialog d;
	struct ag_pinentry *p = NULL;
	struct result res = {};

#define EXPECT_EINVAL(field, value)                                                   \
	do {                                                                          \
		d = dialog(program);                                                  \
		d.field = value;                                                      \
		assert_int_equal(ag_pinentry_ask(f->e, &d, on_pin, &res, &p), -EINVAL); \
		assert_null(p);                                                       \
	} while (0)
	EXPECT_EINVAL(program, "relative/pinentry");
	EXPECT_EINVAL(description, "bukan UTF-8 \xc3\x28");
	EXPECT_EINVAL(description, "overlong \xc0\xaf");
	EXPECT_EINVAL(title, "surrogate \xed\xa0\x80");
	EXPECT_EINVAL(tty, "/dev/pts/1 x");
	EXPECT_EINVAL(tty_type, "xterm%0A");
	EXPECT_EINVAL(lang, "");
	EXPECT_EINVAL(display, ":0\nFOO=1");
	EXPECT_EINVAL(timeout, AG_PIN_TIMEOUT_MAX + 1);
#undef EXPECT_EINVAL
	d = dialog(program);
	assert_int_equal(ag_pinentry_ask(f->e, &d, NULL, &res, &p), -EINVAL);
	assert_int_equal(ag_pinentry_ask(NULL, &d, on_pin, &res, &p), -EINVAL);
	run_until(f->e, never, NULL, 200);
	assert_int_equal(res.calls, 0);
	assert_false(have_dialog_record(f)); /* nothing was started */
}

int
main(void)
{
	static char fake_buf[PATH_MAX];
	const char *src = getenv("PARAF_SOURCE_DIR");
	sigset_t mask;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pin_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_description_decoded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decline_confirm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_confirm_then_pin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hang_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answers_map, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_program, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_kills, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_freed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_protocol_variants, setup, teardown),
		cmocka_unit_test_setup_teardown(test_successive_pins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_keeps_serving, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
	};

	if (!src || src[0] != '/') {
		printf("SKIP: PARAF_SOURCE_DIR (absolute) is not set: run through meson test\n");
		return 77;
	}
	if (access("/usr/bin/python3", X_OK) < 0) {
		printf("SKIP: /usr/bin/python3 is needed for test/fake-pinentry\n");
		return 77;
	}
	snprintf(fake_buf, sizeof(fake_buf), "%s/test/fake-pinentry", src);
	if (strchr(fake_buf, '\'')) {
		printf("SKIP: the source path contains a quote: %s\n", fake_buf);
		return 77;
	}
	fake_path = fake_buf;

	/* As parafd: the child must start with these unblocked and SIGPIPE at its default;
	 * SIGUSR1 stands for any other disposition the child must not inherit. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	/* R2: nothing of ours reaches the pinentry's environment. */
	setenv(CANARY_NAME, CANARY_VALUE, 1);
	/* A descriptor without close-on-exec, as a careless library in parafd might leave: the
	 * child must not inherit it. */
	if (open("/dev/null", O_RDONLY) < 0) {
		printf("cannot open /dev/null: %s\n", strerror(errno));
		return 1;
	}

	return cmocka_run_group_tests_name("/pinentry", tests, NULL, NULL);
}
