/*
 * libparaf-faultp11.so: a fault-injecting PKCS#11 module for the tests. It wraps a real module
 * (SoftHSM by default) and, on command, removes the token, inserts it again, swaps it for
 * another, makes any call fail with a chosen CK_RV, hangs a call, or counts wrong PINs down to
 * FINAL_TRY and LOCKED (which SoftHSM never does). Built by test/meson.build, never installed.
 *
 * What the module shows: ONE removable slot, slot id FAULT_SLOT (0x4641), holding one of the
 * real module's tokens (by label) or nothing. Every other slot of the real module is hidden.
 *
 * Environment:
 *   PARAF_FAULT_REAL     the real module (default /usr/lib/softhsm/libsofthsm2.so)
 *   PARAF_FAULT_CONTROL  the control file; absent or unreadable: plain pass-through, present
 *   PARAF_FAULT_LOG      optional: every call is appended as "<pid> <function> <CKR_name>"
 *
 * The control file is re-read whenever it changes (stat on every call: write it atomically,
 * by rename). One directive a line, '#' starts a comment:
 *
 *   token LABEL           the real token shown in the slot (default: the first initialised one)
 *   swap LABEL            the same: another token in the same slot. Old sessions die, the
 *                         token id (manufacturer/model/serial) is the other token's
 *   present 0|1           the token is in the slot (default 1)
 *   slot_events 0|1       C_WaitForSlotEvent works (1, default: it reports insertion, removal
 *                         and swap; CKF_DONT_BLOCK gives CKR_NO_EVENT when nothing changed) or
 *                         returns CKR_FUNCTION_NOT_SUPPORTED (0), as SoftHSM and p11-kit's
 *                         proxy do, so the caller must poll
 *   pin_tries N           a user PIN retry counter of N tries: each wrong PIN counts down
 *                         (CKF_USER_PIN_COUNT_LOW after one, CKF_USER_PIN_FINAL_TRY at one
 *                         left); the last wrong PIN gives CKR_PIN_INCORRECT and locks
 *                         (CKF_USER_PIN_LOCKED), after which C_Login gives CKR_PIN_LOCKED
 *                         whatever the PIN; a correct PIN resets the counter while not locked
 *   fail FUNC CKR_X [Q]   FUNC returns CKR_X (a CKR_ name or a number) without reaching the
 *                         real module
 *   hang FUNC [SECS] [Q]  FUNC sleeps SECS seconds (default 3600), then goes on normally
 *   remove_at FUNC [Q]    the token vanishes when FUNC is reached: that call and every later
 *                         one sees it gone, until the control file changes (write it again
 *                         with `present 1` to reinsert)
 *
 * Q, the qualifiers of a rule: `skip N` (let the first N matching calls through), `times N`
 * (fire N times, then never; default: always), `login` (only while a user login made through
 * this module is active, i.e. in the signing part of a request). Counts are kept across
 * processes (a token helper replaced after a fault must not see the fault again).
 *
 * While the token is absent, slot calls (C_GetTokenInfo, C_OpenSession, C_GetMechanism*,
 * C_InitToken) give CKR_TOKEN_NOT_PRESENT, C_GetSlotList(CK_TRUE) leaves the slot out, and
 * calls on sessions give CKR_DEVICE_REMOVED. Sessions opened before a removal or a swap stay
 * dead after reinsertion: CKR_SESSION_HANDLE_INVALID, as real modules do.
 *
 * State shared by processes (removal by remove_at, rule counts, the PIN counter) lives in
 * "<control>.state" (locked through "<control>.lock", replaced by rename) and is reset whenever the control file changes (the PIN counter only
 * when the pin_tries line changes). The module is meant for one caller thread at a time, as
 * paraf-token-helper is.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define FAULT_SLOT 0x4641
#define FAULT_DEFAULT_REAL "/usr/lib/softhsm/libsofthsm2.so"
#define FAULT_RULES_MAX 64
#define FAULT_SESSIONS_MAX 1024
#define FAULT_LABEL_MAX 32
#define FAULT_HANG_DEFAULT 3600

#define EXPORT __attribute__((visibility("default")))

enum rule_kind { RULE_FAIL, RULE_HANG, RULE_REMOVE };

struct rule {
	enum rule_kind kind;
	char fn[40];
	CK_RV rv;
	unsigned secs;
	unsigned skip;
	unsigned times; /* 0: always */
	int login;
};

struct control {
	int present;
	int slot_events;
	int pin_tries; /* 0: the real module's own counter */
	char label[FAULT_LABEL_MAX + 1];
	struct rule rules[FAULT_RULES_MAX];
	size_t n_rules;
	/* which version of the file this is */
	int loaded;
	ino_t ino;
	struct timespec mtime;
	off_t size;
};

struct state {
	char version[96];
	int removed;
	int pin_cfg;
	int pin_left;
	int locked;
	unsigned hits[FAULT_RULES_MAX];
};

struct session {
	CK_SESSION_HANDLE ours, real;
	unsigned epoch;
	int used;
};

static void *real_dl;
static CK_FUNCTION_LIST *real;
static struct control ctl = { .present = 1, .slot_events = 1 };
static struct state st;
static struct session sessions[FAULT_SESSIONS_MAX];
static CK_SESSION_HANDLE next_handle = 1;
static unsigned epoch;
static int logged_in;     /* a user login through us is active */
static int event_pending; /* for C_WaitForSlotEvent */
static int initialized;
/* What this process last acted on: the token in the slot, and where it really is. */
static struct {
	int present;
	char label[FAULT_LABEL_MAX + 1];
	int have_slot;
	CK_SLOT_ID real_slot;
} seen;

/* --- names -------------------------------------------------------------------------------- */

static const struct {
	const char *name;
	CK_RV rv;
} rv_names[] = {
#define RV(x) { #x, x }
	RV(CKR_OK), RV(CKR_CANCEL), RV(CKR_HOST_MEMORY), RV(CKR_SLOT_ID_INVALID),
	RV(CKR_GENERAL_ERROR), RV(CKR_FUNCTION_FAILED), RV(CKR_ARGUMENTS_BAD), RV(CKR_NO_EVENT),
	RV(CKR_ATTRIBUTE_TYPE_INVALID), RV(CKR_ATTRIBUTE_VALUE_INVALID), RV(CKR_DATA_LEN_RANGE),
	RV(CKR_DEVICE_ERROR), RV(CKR_DEVICE_MEMORY), RV(CKR_DEVICE_REMOVED),
	RV(CKR_FUNCTION_CANCELED), RV(CKR_FUNCTION_NOT_SUPPORTED), RV(CKR_KEY_HANDLE_INVALID),
	RV(CKR_KEY_TYPE_INCONSISTENT), RV(CKR_KEY_FUNCTION_NOT_PERMITTED),
	RV(CKR_MECHANISM_INVALID), RV(CKR_MECHANISM_PARAM_INVALID), RV(CKR_OBJECT_HANDLE_INVALID),
	RV(CKR_OPERATION_ACTIVE), RV(CKR_OPERATION_NOT_INITIALIZED), RV(CKR_PIN_INCORRECT),
	RV(CKR_PIN_INVALID), RV(CKR_PIN_LEN_RANGE), RV(CKR_PIN_EXPIRED), RV(CKR_PIN_LOCKED),
	RV(CKR_SESSION_CLOSED), RV(CKR_SESSION_COUNT), RV(CKR_SESSION_HANDLE_INVALID),
	RV(CKR_SESSION_READ_ONLY), RV(CKR_SESSION_EXISTS), RV(CKR_TOKEN_NOT_PRESENT),
	RV(CKR_TOKEN_NOT_RECOGNIZED), RV(CKR_TOKEN_WRITE_PROTECTED), RV(CKR_USER_ALREADY_LOGGED_IN),
	RV(CKR_USER_NOT_LOGGED_IN), RV(CKR_USER_PIN_NOT_INITIALIZED), RV(CKR_USER_TYPE_INVALID),
	RV(CKR_BUFFER_TOO_SMALL), RV(CKR_CRYPTOKI_NOT_INITIALIZED),
	RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
#undef RV
};

static const char *const fn_names[] = { "C_Initialize", "C_Finalize", "C_GetInfo",
	"C_GetFunctionList", "C_GetSlotList", "C_GetSlotInfo", "C_GetTokenInfo",
	"C_GetMechanismList", "C_GetMechanismInfo", "C_InitToken", "C_InitPIN", "C_SetPIN",
	"C_OpenSession", "C_CloseSession", "C_CloseAllSessions", "C_GetSessionInfo",
	"C_GetOperationState", "C_SetOperationState", "C_Login", "C_Logout", "C_CreateObject",
	"C_CopyObject", "C_DestroyObject", "C_GetObjectSize", "C_GetAttributeValue",
	"C_SetAttributeValue", "C_FindObjectsInit", "C_FindObjects", "C_FindObjectsFinal",
	"C_EncryptInit", "C_Encrypt", "C_EncryptUpdate", "C_EncryptFinal", "C_DecryptInit",
	"C_Decrypt", "C_DecryptUpdate", "C_DecryptFinal", "C_DigestInit", "C_Digest",
	"C_DigestUpdate", "C_DigestKey", "C_DigestFinal", "C_SignInit", "C_Sign", "C_SignUpdate",
	"C_SignFinal", "C_SignRecoverInit", "C_SignRecover", "C_VerifyInit", "C_Verify",
	"C_VerifyUpdate", "C_VerifyFinal", "C_VerifyRecoverInit", "C_VerifyRecover",
	"C_DigestEncryptUpdate", "C_DecryptDigestUpdate", "C_SignEncryptUpdate",
	"C_DecryptVerifyUpdate", "C_GenerateKey", "C_GenerateKeyPair", "C_WrapKey", "C_UnwrapKey",
	"C_DeriveKey", "C_SeedRandom", "C_GenerateRandom", "C_GetFunctionStatus",
	"C_CancelFunction", "C_WaitForSlotEvent", NULL };

static const char *
rv_name(CK_RV rv, char *buf, size_t n)
{
	for (size_t i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
		if (rv_names[i].rv == rv)
			return rv_names[i].name;
	snprintf(buf, n, "0x%lx", (unsigned long)rv);
	return buf;
}

static int
parse_rv(const char *s, CK_RV *ret)
{
	char *end;

	for (size_t i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
		if (strcmp(rv_names[i].name, s) == 0) {
			*ret = rv_names[i].rv;
			return 0;
		}
	errno = 0;
	*ret = strtoul(s, &end, 0);
	return errno || end == s || *end ? -1 : 0;
}

static void
complain(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("faultp11: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* --- the control file --------------------------------------------------------------------- */

static void
control_parse_line(struct control *c, char *line, unsigned lineno)
{
	char *words[8];
	size_t n = 0;
	char *save = NULL, *w, *rest;

	line[strcspn(line, "#\r\n")] = 0;
	/* `token`/`swap` take the rest of the line: labels may hold blanks. */
	rest = line + strspn(line, " \t");
	if (strncmp(rest, "token ", 6) == 0 || strncmp(rest, "swap ", 5) == 0) {
		char *l = rest + (rest[0] == 't' ? 6 : 5);
		size_t k;

		l += strspn(l, " \t");
		k = strlen(l);
		while (k && (l[k - 1] == ' ' || l[k - 1] == '\t'))
			l[--k] = 0;
		snprintf(c->label, sizeof(c->label), "%s", l);
		return;
	}
	for (w = strtok_r(line, " \t", &save); w && n < 8; w = strtok_r(NULL, " \t", &save))
		words[n++] = w;
	if (n == 0)
		return;
	if (strcmp(words[0], "present") == 0 && n == 2) {
		c->present = atoi(words[1]) != 0;
	} else if (strcmp(words[0], "slot_events") == 0 && n == 2) {
		c->slot_events = atoi(words[1]) != 0;
	} else if (strcmp(words[0], "pin_tries") == 0 && n == 2) {
		c->pin_tries = atoi(words[1]);
	} else if ((strcmp(words[0], "fail") == 0 || strcmp(words[0], "hang") == 0 ||
		    strcmp(words[0], "remove_at") == 0) && n >= 2 && c->n_rules < FAULT_RULES_MAX) {
		struct rule r = { .secs = FAULT_HANG_DEFAULT };
		size_t i = 2, k;

		r.kind = words[0][0] == 'f' ? RULE_FAIL : words[0][0] == 'h' ? RULE_HANG : RULE_REMOVE;
		snprintf(r.fn, sizeof(r.fn), "%s", words[1]);
		for (k = 0; fn_names[k] && strcmp(fn_names[k], r.fn) != 0; k++)
			;
		if (!fn_names[k])
			complain("control line %u: unknown function '%s'", lineno, r.fn);
		if (r.kind == RULE_FAIL) {
			if (n < 3 || parse_rv(words[2], &r.rv) < 0) {
				complain("control line %u: 'fail %s' needs a CKR_ value", lineno, r.fn);
				return;
			}
			i = 3;
		} else if (r.kind == RULE_HANG && n > 2 && words[2][0] >= '0' && words[2][0] <= '9') {
			r.secs = (unsigned)atoi(words[2]);
			i = 3;
		}
		for (; i < n; i++) {
			if (strcmp(words[i], "login") == 0)
				r.login = 1;
			else if (strcmp(words[i], "skip") == 0 && i + 1 < n)
				r.skip = (unsigned)atoi(words[++i]);
			else if (strcmp(words[i], "times") == 0 && i + 1 < n)
				r.times = (unsigned)atoi(words[++i]);
			else
				complain("control line %u: unknown qualifier '%s'", lineno, words[i]);
		}
		c->rules[c->n_rules++] = r;
	} else {
		complain("control line %u: cannot parse '%s'", lineno, words[0]);
	}
}

/* Re-reads the control file when it changed. Returns 1 when it did. */
static int
control_refresh(void)
{
	const char *path = getenv("PARAF_FAULT_CONTROL");
	struct control c = { .present = 1, .slot_events = 1 };
	struct stat s;
	char line[512];
	unsigned lineno = 0;
	FILE *f;

	if (!path || stat(path, &s) < 0) {
		if (ctl.loaded) {
			ctl = c;
			return 1;
		}
		return 0;
	}
	if (ctl.loaded && ctl.ino == s.st_ino && ctl.size == s.st_size &&
	    ctl.mtime.tv_sec == s.st_mtim.tv_sec && ctl.mtime.tv_nsec == s.st_mtim.tv_nsec)
		return 0;
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		control_parse_line(&c, line, ++lineno);
	fclose(f);
	c.loaded = 1;
	c.ino = s.st_ino;
	c.mtime = s.st_mtim;
	c.size = s.st_size;
	ctl = c;
	return 1;
}

/* --- shared state ------------------------------------------------------------------------- */

/* The state is read and written under an flock of "<control>.lock", and replaced by rename,
 * so a helper killed at any moment (parafd SIGKILLs them) never leaves half a state. Returns
 * the lock's fd. */
static int
state_open(void)
{
	const char *path = getenv("PARAF_FAULT_CONTROL");
	char sp[4096];
	int fd;

	if (!path || !ctl.loaded)
		return -1;
	snprintf(sp, sizeof(sp), "%s.lock", path);
	fd = open(sp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	flock(fd, LOCK_EX);
	return fd;
}

static int
state_path(char *buf, size_t n, const char *suffix)
{
	const char *path = getenv("PARAF_FAULT_CONTROL");

	return path && (size_t)snprintf(buf, n, "%s%s", path, suffix) < n ? 0 : -1;
}

static void
state_read(int fd)
{
	char buf[4096], version[96], sp[4096];
	ssize_t n = 0;
	char *line, *save = NULL;
	struct state s = {};
	int sfd;

	snprintf(version, sizeof(version), "%lu:%ld.%09ld:%ld", (unsigned long)ctl.ino,
		(long)ctl.mtime.tv_sec, ctl.mtime.tv_nsec, (long)ctl.size);
	(void)fd; /* the lock */
	if (state_path(sp, sizeof(sp), ".state") == 0 &&
	    (sfd = open(sp, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(sfd, buf, sizeof(buf) - 1);
		close(sfd);
	}
	buf[n > 0 ? n : 0] = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned i, v;

		if (sscanf(line, "version %95s", s.version) == 1)
			continue;
		if (sscanf(line, "removed %d", &s.removed) == 1 ||
		    sscanf(line, "pin_cfg %d", &s.pin_cfg) == 1 ||
		    sscanf(line, "pin_left %d", &s.pin_left) == 1 ||
		    sscanf(line, "locked %d", &s.locked) == 1)
			continue;
		if (sscanf(line, "hits %u %u", &i, &v) == 2 && i < FAULT_RULES_MAX)
			s.hits[i] = v;
	}
	if (strcmp(s.version, version) != 0) {
		/* A new control file: removals and rule counts start again; the PIN counter only
		 * when pin_tries itself changed (it is the token's state, not the test's). */
		s.removed = 0;
		memset(s.hits, 0, sizeof(s.hits));
		snprintf(s.version, sizeof(s.version), "%s", version);
	}
	if (s.pin_cfg != ctl.pin_tries) {
		s.pin_cfg = ctl.pin_tries;
		s.pin_left = ctl.pin_tries;
		s.locked = 0;
	}
	st = s;
}

static void
state_write(int fd)
{
	char buf[4096];
	size_t n;

	n = (size_t)snprintf(buf, sizeof(buf), "version %s\nremoved %d\npin_cfg %d\npin_left %d\n"
		"locked %d\n", st.version, st.removed, st.pin_cfg, st.pin_left, st.locked);
	char sp[4096], tmp[4096];
	int sfd;

	(void)fd; /* the lock */
	for (size_t i = 0; i < ctl.n_rules && n < sizeof(buf) - 32; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "hits %zu %u\n", i, st.hits[i]);
	if (state_path(sp, sizeof(sp), ".state") < 0 || state_path(tmp, sizeof(tmp), ".state.tmp") < 0)
		return;
	sfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (sfd < 0)
		return;
	if (write(sfd, buf, n) == (ssize_t)n)
		(void)!rename(tmp, sp);
	close(sfd);
}

static void
state_close(int fd)
{
	if (fd >= 0)
		close(fd); /* drops the lock */
}

/* --- the token in the slot ---------------------------------------------------------------- */

static void
trim_label(const CK_UTF8CHAR *p, char *out)
{
	size_t n = 32;

	while (n && (p[n - 1] == ' ' || p[n - 1] == 0))
		n--;
	memcpy(out, p, n);
	out[n] = 0;
}

/* The real slot holding the token labelled `label` (or the first initialised one). */
static int
real_slot_of(const char *label, CK_SLOT_ID *ret)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;

	if (real->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return -1;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		char l[FAULT_LABEL_MAX + 1];

		if (real->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
		    !(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		trim_label(ti.label, l);
		if (!*label || strcmp(l, label) == 0) {
			*ret = slots[i];
			return 0;
		}
	}
	return -1;
}

static void
sessions_kill(void)
{
	/* The token left (or another took its place): every session on it is gone for good. */
	if (seen.have_slot)
		real->C_CloseAllSessions(seen.real_slot);
	epoch++;
	logged_in = 0;
}

/* Brings this process's view in line with the control file and the shared state. */
static void
view_update(void)
{
	int present = ctl.present && !st.removed;

	if (present == seen.present && strcmp(ctl.label, seen.label) == 0)
		return;
	if (seen.present)
		sessions_kill();
	seen.present = present;
	snprintf(seen.label, sizeof(seen.label), "%s", ctl.label);
	seen.have_slot = present && real_slot_of(ctl.label, &seen.real_slot) == 0;
	if (!seen.have_slot)
		seen.present = 0;
	event_pending = 1;
}

static int
rule_matches(const struct rule *r, size_t i, const char *fn)
{
	unsigned hit;

	if (strcmp(r->fn, fn) != 0 || (r->login && !logged_in))
		return 0;
	hit = ++st.hits[i];
	if (hit <= r->skip)
		return 0;
	return r->times == 0 || hit - r->skip <= r->times;
}

static void
log_call(const char *fn, CK_RV rv)
{
	const char *path = getenv("PARAF_FAULT_LOG");
	char buf[32], line[160];
	int fd, n;

	if (!path)
		return;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%d %s %s\n", (int)getpid(), fn, rv_name(rv, buf, sizeof(buf)));
	(void)!write(fd, line, (size_t)n);
	close(fd);
}

/* Every call starts here: the control file, the shared state, the rules for this function.
 * Returns the injected CK_RV, or CKR_OK to go on. */
static CK_RV
enter(const char *fn)
{
	CK_RV rv = CKR_OK;
	unsigned hang = 0;
	int fd;

	control_refresh();
	fd = state_open();
	if (fd >= 0)
		state_read(fd);
	else
		memset(&st, 0, sizeof(st));
	for (size_t i = 0; i < ctl.n_rules; i++) {
		const struct rule *r = &ctl.rules[i];

		if (!rule_matches(r, i, fn))
			continue;
		if (r->kind == RULE_REMOVE)
			st.removed = 1;
		else if (r->kind == RULE_HANG)
			hang = r->secs;
		else if (rv == CKR_OK)
			rv = r->rv;
	}
	if (fd >= 0)
		state_write(fd);
	state_close(fd);
	if (initialized && real)
		view_update();
	if (hang) {
		struct timespec t = { (time_t)hang, 0 };
		while (nanosleep(&t, &t) < 0 && errno == EINTR)
			;
	}
	return rv;
}

static CK_RV
leave(const char *fn, CK_RV rv)
{
	log_call(fn, rv);
	return rv;
}

/* The real slot behind FAULT_SLOT, or why there is none. */
static CK_RV
slot_real(CK_SLOT_ID id, CK_SLOT_ID *ret)
{
	if (id != FAULT_SLOT)
		return CKR_SLOT_ID_INVALID;
	if (!seen.present)
		return CKR_TOKEN_NOT_PRESENT;
	*ret = seen.real_slot;
	return CKR_OK;
}

static struct session *
session_find(CK_SESSION_HANDLE h)
{
	for (size_t i = 0; i < FAULT_SESSIONS_MAX; i++)
		if (sessions[i].used && sessions[i].ours == h)
			return &sessions[i];
	return NULL;
}

static CK_RV
session_real(CK_SESSION_HANDLE h, CK_SESSION_HANDLE *ret)
{
	struct session *s = session_find(h);

	if (!s)
		return CKR_SESSION_HANDLE_INVALID;
	if (s->epoch != epoch)
		return seen.present ? CKR_SESSION_HANDLE_INVALID : CKR_DEVICE_REMOVED;
	*ret = s->real;
	return CKR_OK;
}

static CK_RV
load_real(void)
{
	const char *path = getenv("PARAF_FAULT_REAL");
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);

	if (real)
		return CKR_OK;
	if (!path || !*path)
		path = FAULT_DEFAULT_REAL;
	real_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!real_dl) {
		complain("cannot load '%s': %s", path, dlerror());
		return CKR_GENERAL_ERROR;
	}
	get = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(real_dl, "C_GetFunctionList");
	if (!get || get(&real) != CKR_OK || !real) {
		complain("'%s' has no usable C_GetFunctionList", path);
		real = NULL;
		return CKR_GENERAL_ERROR;
	}
	return CKR_OK;
}

/* --- general and slot functions ----------------------------------------------------------- */

static CK_RV
w_C_Initialize(CK_VOID_PTR args)
{
	CK_RV rv = load_real();

	if (rv == CKR_OK)
		rv = enter("C_Initialize");
	if (rv == CKR_OK)
		rv = real->C_Initialize(args);
	if (rv == CKR_OK) {
		initialized = 1;
		memset(&seen, 0, sizeof(seen));
		memset(sessions, 0, sizeof(sessions));
		view_update();
		event_pending = 0; /* what is there at start is no event */
	}
	return leave("C_Initialize", rv);
}

static CK_RV
w_C_Finalize(CK_VOID_PTR reserved)
{
	CK_RV rv = enter("C_Finalize");

	if (rv == CKR_OK && real)
		rv = real->C_Finalize(reserved);
	if (rv == CKR_OK) {
		initialized = 0;
		logged_in = 0;
		epoch++;
	}
	return leave("C_Finalize", rv);
}

static CK_RV
w_C_GetInfo(CK_INFO_PTR info)
{
	CK_RV rv = enter("C_GetInfo");

	if (rv == CKR_OK)
		rv = real->C_GetInfo(info);
	return leave("C_GetInfo", rv);
}

static CK_RV w_C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ret);

static CK_RV
w_C_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	CK_RV rv = enter("C_GetSlotList");
	CK_ULONG n;

	if (rv == CKR_OK && !initialized)
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
	if (rv == CKR_OK && !count)
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK) {
		n = present && !seen.present ? 0 : 1;
		if (list && *count < n)
			rv = CKR_BUFFER_TOO_SMALL;
		else if (list && n)
			list[0] = FAULT_SLOT;
		*count = n;
	}
	return leave("C_GetSlotList", rv);
}

static void
pad_copy(CK_UTF8CHAR *dst, size_t n, const char *s)
{
	size_t k = strlen(s);

	memset(dst, ' ', n);
	memcpy(dst, s, k < n ? k : n);
}

static CK_RV
w_C_GetSlotInfo(CK_SLOT_ID id, CK_SLOT_INFO_PTR info)
{
	CK_RV rv = enter("C_GetSlotInfo");

	if (rv == CKR_OK && id != FAULT_SLOT)
		rv = CKR_SLOT_ID_INVALID;
	if (rv == CKR_OK && !info)
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK) {
		memset(info, 0, sizeof(*info));
		pad_copy(info->slotDescription, sizeof(info->slotDescription),
			"paraf fault-injection slot");
		pad_copy(info->manufacturerID, sizeof(info->manufacturerID), "paraf test");
		info->flags = CKF_REMOVABLE_DEVICE | CKF_HW_SLOT | (seen.present ? CKF_TOKEN_PRESENT : 0);
	}
	return leave("C_GetSlotInfo", rv);
}

static CK_RV
w_C_GetTokenInfo(CK_SLOT_ID id, CK_TOKEN_INFO_PTR info)
{
	CK_RV rv = enter("C_GetTokenInfo");
	CK_SLOT_ID rs;

	if (rv == CKR_OK)
		rv = slot_real(id, &rs);
	if (rv == CKR_OK)
		rv = real->C_GetTokenInfo(rs, info);
	if (rv == CKR_OK && ctl.pin_tries > 0) {
		/* Our counter replaces SoftHSM's, which never locks. */
		info->flags &= ~(CK_FLAGS)(CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY |
			CKF_USER_PIN_LOCKED);
		if (st.locked)
			info->flags |= CKF_USER_PIN_LOCKED;
		else if (st.pin_left == 1)
			info->flags |= CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW;
		else if (st.pin_left < ctl.pin_tries)
			info->flags |= CKF_USER_PIN_COUNT_LOW;
	}
	return leave("C_GetTokenInfo", rv);
}

static CK_RV
w_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved)
{
	CK_RV rv = enter("C_WaitForSlotEvent");

	while (rv == CKR_OK) {
		if (!ctl.slot_events) {
			rv = CKR_FUNCTION_NOT_SUPPORTED;
		} else if (event_pending) {
			event_pending = 0;
			if (slot)
				*slot = FAULT_SLOT;
			break;
		} else if (flags & CKF_DONT_BLOCK) {
			rv = CKR_NO_EVENT;
		} else {
			struct timespec t = { 0, 100 * 1000 * 1000 };
			nanosleep(&t, NULL);
			rv = enter("C_WaitForSlotEvent");
		}
	}
	return leave("C_WaitForSlotEvent", rv);
}

static CK_RV
w_C_GetMechanismList(CK_SLOT_ID id, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
	CK_RV rv = enter("C_GetMechanismList");
	CK_SLOT_ID rs;

	if (rv == CKR_OK)
		rv = slot_real(id, &rs);
	if (rv == CKR_OK)
		rv = real->C_GetMechanismList(rs, list, count);
	return leave("C_GetMechanismList", rv);
}

static CK_RV
w_C_GetMechanismInfo(CK_SLOT_ID id, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
	CK_RV rv = enter("C_GetMechanismInfo");
	CK_SLOT_ID rs;

	if (rv == CKR_OK)
		rv = slot_real(id, &rs);
	if (rv == CKR_OK)
		rv = real->C_GetMechanismInfo(rs, type, info);
	return leave("C_GetMechanismInfo", rv);
}

static CK_RV
w_C_InitToken(CK_SLOT_ID id, CK_UTF8CHAR_PTR pin, CK_ULONG len, CK_UTF8CHAR_PTR label)
{
	CK_RV rv = enter("C_InitToken");
	CK_SLOT_ID rs;

	if (rv == CKR_OK)
		rv = slot_real(id, &rs);
	if (rv == CKR_OK)
		rv = real->C_InitToken(rs, pin, len, label);
	return leave("C_InitToken", rv);
}

/* --- sessions ----------------------------------------------------------------------------- */

static CK_RV
w_C_OpenSession(CK_SLOT_ID id, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
	CK_SESSION_HANDLE_PTR ret)
{
	CK_RV rv = enter("C_OpenSession");
	CK_SLOT_ID rs;
	CK_SESSION_HANDLE h;
	struct session *s = NULL;

	if (rv == CKR_OK)
		rv = slot_real(id, &rs);
	if (rv == CKR_OK && !ret)
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK) {
		for (size_t i = 0; i < FAULT_SESSIONS_MAX && !s; i++)
			if (!sessions[i].used)
				s = &sessions[i];
		if (!s)
			rv = CKR_SESSION_COUNT;
	}
	if (rv == CKR_OK)
		rv = real->C_OpenSession(rs, flags, app, notify, &h);
	if (rv == CKR_OK) {
		s->used = 1;
		s->real = h;
		s->ours = next_handle++;
		s->epoch = epoch;
		*ret = s->ours;
	}
	return leave("C_OpenSession", rv);
}

static CK_RV
w_C_CloseSession(CK_SESSION_HANDLE h)
{
	CK_RV rv = enter("C_CloseSession");
	CK_SESSION_HANDLE r;

	if (rv == CKR_OK) {
		rv = session_real(h, &r);
		if (rv == CKR_OK)
			rv = real->C_CloseSession(r);
		if (rv == CKR_OK || rv == CKR_DEVICE_REMOVED || rv == CKR_SESSION_HANDLE_INVALID) {
			struct session *s = session_find(h);
			if (s)
				s->used = 0;
		}
		if (rv == CKR_OK)
			logged_in = 0; /* one session at a time here: its login ends with it */
	}
	return leave("C_CloseSession", rv);
}

static CK_RV
w_C_CloseAllSessions(CK_SLOT_ID id)
{
	CK_RV rv = enter("C_CloseAllSessions");
	CK_SLOT_ID rs;

	if (rv == CKR_OK)
		rv = slot_real(id, &rs);
	if (rv == CKR_OK)
		rv = real->C_CloseAllSessions(rs);
	if (rv == CKR_OK || rv == CKR_TOKEN_NOT_PRESENT) {
		for (size_t i = 0; i < FAULT_SESSIONS_MAX; i++)
			sessions[i].used = 0;
		logged_in = 0;
	}
	return leave("C_CloseAllSessions", rv);
}

static CK_RV
w_C_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info)
{
	CK_RV rv = enter("C_GetSessionInfo");
	CK_SESSION_HANDLE r;

	if (rv == CKR_OK)
		rv = session_real(h, &r);
	if (rv == CKR_OK)
		rv = real->C_GetSessionInfo(r, info);
	if (rv == CKR_OK)
		info->slotID = FAULT_SLOT;
	return leave("C_GetSessionInfo", rv);
}

static CK_RV
w_C_Login(CK_SESSION_HANDLE h, CK_USER_TYPE who, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	CK_RV rv = enter("C_Login");
	CK_SESSION_HANDLE r;
	int counted = who == CKU_USER && ctl.pin_tries > 0;

	if (rv == CKR_OK)
		rv = session_real(h, &r);
	if (rv == CKR_OK && counted && st.locked)
		rv = CKR_PIN_LOCKED; /* whatever the PIN */
	else if (rv == CKR_OK)
		rv = real->C_Login(r, who, pin, len);
	if (counted && (rv == CKR_OK || rv == CKR_PIN_INCORRECT)) {
		int fd = state_open();

		if (fd >= 0)
			state_read(fd);
		if (rv == CKR_OK) {
			st.pin_left = ctl.pin_tries;
		} else if (st.pin_left > 0 && --st.pin_left == 0) {
			st.locked = 1;
		}
		if (fd >= 0)
			state_write(fd);
		state_close(fd);
	}
	if (rv == CKR_OK && who == CKU_USER)
		logged_in = 1;
	return leave("C_Login", rv);
}

static CK_RV
w_C_Logout(CK_SESSION_HANDLE h)
{
	CK_RV rv = enter("C_Logout");
	CK_SESSION_HANDLE r;

	if (rv == CKR_OK)
		rv = session_real(h, &r);
	if (rv == CKR_OK)
		rv = real->C_Logout(r);
	if (rv == CKR_OK)
		logged_in = 0;
	return leave("C_Logout", rv);
}

/* Every other call on a session: the rules, the session's life, then the real module. */
#define SESSION_FN(name, decl, ...)                                                         \
	static CK_RV w_##name decl                                                          \
	{                                                                                   \
		CK_SESSION_HANDLE r_;                                                       \
		CK_RV rv = enter(#name);                                                    \
		if (rv == CKR_OK)                                                           \
			rv = session_real(h, &r_);                                          \
		if (rv == CKR_OK)                                                           \
			rv = real->name(r_, __VA_ARGS__);                                   \
		return leave(#name, rv);                                                    \
	}
#define SESSION_FN0(name)                                                                   \
	static CK_RV w_##name(CK_SESSION_HANDLE h)                                          \
	{                                                                                   \
		CK_SESSION_HANDLE r_;                                                       \
		CK_RV rv = enter(#name);                                                    \
		if (rv == CKR_OK)                                                           \
			rv = session_real(h, &r_);                                          \
		if (rv == CKR_OK)                                                           \
			rv = real->name(r_);                                                \
		return leave(#name, rv);                                                    \
	}

SESSION_FN(C_InitPIN, (CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR p, CK_ULONG n), p, n)
SESSION_FN(C_SetPIN, (CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR o, CK_ULONG on, CK_UTF8CHAR_PTR p,
	CK_ULONG n), o, on, p, n)
SESSION_FN(C_GetOperationState, (CK_SESSION_HANDLE h, CK_BYTE_PTR p, CK_ULONG_PTR n), p, n)
SESSION_FN(C_SetOperationState, (CK_SESSION_HANDLE h, CK_BYTE_PTR p, CK_ULONG n,
	CK_OBJECT_HANDLE e, CK_OBJECT_HANDLE a), p, n, e, a)
SESSION_FN(C_CreateObject, (CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n,
	CK_OBJECT_HANDLE_PTR o), t, n, o)
SESSION_FN(C_CopyObject, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n,
	CK_OBJECT_HANDLE_PTR no), o, t, n, no)
SESSION_FN(C_DestroyObject, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o), o)
SESSION_FN(C_GetObjectSize, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ULONG_PTR n), o, n)
SESSION_FN(C_GetAttributeValue, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t,
	CK_ULONG n), o, t, n)
SESSION_FN(C_SetAttributeValue, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t,
	CK_ULONG n), o, t, n)
SESSION_FN(C_FindObjectsInit, (CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n), t, n)
SESSION_FN(C_FindObjects, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR o, CK_ULONG m,
	CK_ULONG_PTR n), o, m, n)
SESSION_FN0(C_FindObjectsFinal)
SESSION_FN(C_EncryptInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), m, k)
SESSION_FN(C_Encrypt, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR o,
	CK_ULONG_PTR on), d, dn, o, on)
SESSION_FN(C_EncryptUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR o,
	CK_ULONG_PTR on), d, dn, o, on)
SESSION_FN(C_EncryptFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR on), o, on)
SESSION_FN(C_DecryptInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), m, k)
SESSION_FN(C_Decrypt, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR o,
	CK_ULONG_PTR on), d, dn, o, on)
SESSION_FN(C_DecryptUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR o,
	CK_ULONG_PTR on), d, dn, o, on)
SESSION_FN(C_DecryptFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR on), o, on)
SESSION_FN(C_DigestInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m), m)
SESSION_FN(C_Digest, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR o,
	CK_ULONG_PTR on), d, dn, o, on)
SESSION_FN(C_DigestUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn), d, dn)
SESSION_FN(C_DigestKey, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE k), k)
SESSION_FN(C_DigestFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR on), o, on)
SESSION_FN(C_SignInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), m, k)
SESSION_FN(C_Sign, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR o,
	CK_ULONG_PTR on), d, dn, o, on)
SESSION_FN(C_SignUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn), d, dn)
SESSION_FN(C_SignFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR on), o, on)
SESSION_FN(C_SignRecoverInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), m, k)
SESSION_FN(C_SignRecover, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR o,
	CK_ULONG_PTR on), d, dn, o, on)
SESSION_FN(C_VerifyInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), m, k)
SESSION_FN(C_Verify, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR s,
	CK_ULONG sn), d, dn, s, sn)
SESSION_FN(C_VerifyUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn), d, dn)
SESSION_FN(C_VerifyFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG sn), s, sn)
SESSION_FN(C_VerifyRecoverInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
	m, k)
SESSION_FN(C_VerifyRecover, (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG sn, CK_BYTE_PTR o,
	CK_ULONG_PTR on), s, sn, o, on)
SESSION_FN(C_DigestEncryptUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR o,
	CK_ULONG_PTR on), d, dn, o, on)
SESSION_FN(C_DecryptDigestUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR o,
	CK_ULONG_PTR on), d, dn, o, on)
SESSION_FN(C_SignEncryptUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR o,
	CK_ULONG_PTR on), d, dn, o, on)
SESSION_FN(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR o,
	CK_ULONG_PTR on), d, dn, o, on)
SESSION_FN(C_GenerateKey, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t,
	CK_ULONG n, CK_OBJECT_HANDLE_PTR k), m, t, n, k)
SESSION_FN(C_GenerateKeyPair, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pt,
	CK_ULONG pn, CK_ATTRIBUTE_PTR vt, CK_ULONG vn, CK_OBJECT_HANDLE_PTR pk,
	CK_OBJECT_HANDLE_PTR vk), m, pt, pn, vt, vn, pk, vk)
SESSION_FN(C_WrapKey, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE w,
	CK_OBJECT_HANDLE k, CK_BYTE_PTR o, CK_ULONG_PTR on), m, w, k, o, on)
SESSION_FN(C_UnwrapKey, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE u,
	CK_BYTE_PTR d, CK_ULONG dn, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR k),
	m, u, d, dn, t, n, k)
SESSION_FN(C_DeriveKey, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE b,
	CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR k), m, b, t, n, k)
SESSION_FN(C_SeedRandom, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG n), d, n)
SESSION_FN(C_GenerateRandom, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG n), d, n)
SESSION_FN0(C_GetFunctionStatus)
SESSION_FN0(C_CancelFunction)

static CK_FUNCTION_LIST fault_list = {
	.version = { 2, 40 },
	.C_Initialize = w_C_Initialize,
	.C_Finalize = w_C_Finalize,
	.C_GetInfo = w_C_GetInfo,
	.C_GetFunctionList = w_C_GetFunctionList,
	.C_GetSlotList = w_C_GetSlotList,
	.C_GetSlotInfo = w_C_GetSlotInfo,
	.C_GetTokenInfo = w_C_GetTokenInfo,
	.C_GetMechanismList = w_C_GetMechanismList,
	.C_GetMechanismInfo = w_C_GetMechanismInfo,
	.C_InitToken = w_C_InitToken,
	.C_InitPIN = w_C_InitPIN,
	.C_SetPIN = w_C_SetPIN,
	.C_OpenSession = w_C_OpenSession,
	.C_CloseSession = w_C_CloseSession,
	.C_CloseAllSessions = w_C_CloseAllSessions,
	.C_GetSessionInfo = w_C_GetSessionInfo,
	.C_GetOperationState = w_C_GetOperationState,
	.C_SetOperationState = w_C_SetOperationState,
	.C_Login = w_C_Login,
	.C_Logout = w_C_Logout,
	.C_CreateObject = w_C_CreateObject,
	.C_CopyObject = w_C_CopyObject,
	.C_DestroyObject = w_C_DestroyObject,
	.C_GetObjectSize = w_C_GetObjectSize,
	.C_GetAttributeValue = w_C_GetAttributeValue,
	.C_SetAttributeValue = w_C_SetAttributeValue,
	.C_FindObjectsInit = w_C_FindObjectsInit,
	.C_FindObjects = w_C_FindObjects,
	.C_FindObjectsFinal = w_C_FindObjectsFinal,
	.C_EncryptInit = w_C_EncryptInit,
	.C_Encrypt = w_C_Encrypt,
	.C_EncryptUpdate = w_C_EncryptUpdate,
	.C_EncryptFinal = w_C_EncryptFinal,
	.C_DecryptInit = w_C_DecryptInit,
	.C_Decrypt = w_C_Decrypt,
	.C_DecryptUpdate = w_C_DecryptUpdate,
	.C_DecryptFinal = w_C_DecryptFinal,
	.C_DigestInit = w_C_DigestInit,
	.C_Digest = w_C_Digest,
	.C_DigestUpdate = w_C_DigestUpdate,
	.C_DigestKey = w_C_DigestKey,
	.C_DigestFinal = w_C_DigestFinal,
	.C_SignInit = w_C_SignInit,
	.C_Sign = w_C_Sign,
	.C_SignUpdate = w_C_SignUpdate,
	.C_SignFinal = w_C_SignFinal,
	.C_SignRecoverInit = w_C_SignRecoverInit,
	.C_SignRecover = w_C_SignRecover,
	.C_VerifyInit = w_C_VerifyInit,
	.C_Verify = w_C_Verify,
	.C_VerifyUpdate = w_C_VerifyUpdate,
	.C_VerifyFinal = w_C_VerifyFinal,
	.C_VerifyRecoverInit = w_C_VerifyRecoverInit,
	.C_VerifyRecover = w_C_VerifyRecover,
	.C_DigestEncryptUpdate = w_C_DigestEncryptUpdate,
	.C_DecryptDigestUpdate = w_C_DecryptDigestUpdate,
	.C_SignEncryptUpdate = w_C_SignEncryptUpdate,
	.C_DecryptVerifyUpdate = w_C_DecryptVerifyUpdate,
	.C_GenerateKey = w_C_GenerateKey,
	.C_GenerateKeyPair = w_C_GenerateKeyPair,
	.C_WrapKey = w_C_WrapKey,
	.C_UnwrapKey = w_C_UnwrapKey,
	.C_DeriveKey = w_C_DeriveKey,
	.C_SeedRandom = w_C_SeedRandom,
	.C_GenerateRandom = w_C_GenerateRandom,
	.C_GetFunctionStatus = w_C_GetFunctionStatus,
	.C_CancelFunction = w_C_CancelFunction,
	.C_WaitForSlotEvent = w_C_WaitForSlotEvent,
};

static CK_RV
w_C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ret)
{
	if (!ret)
		return CKR_ARGUMENTS_BAD;
	*ret = &fault_list;
	return CKR_OK;
}

EXPORT CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ret)
{
	return w_C_GetFunctionList(ret);
}
