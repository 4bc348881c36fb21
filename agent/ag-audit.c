/*
 * Decision records and their way to paraf-auditd (ag-audit.h): the record's JSON, the one
 * connection to the service (audit/aud.h's client), the local spool, and the journal copy.
 *
 * The spool is one file, appended to and forwarded under a lock file beside it (flock), so
 * parafd and a `paraf` command of the same account never interleave. Its first line is a
 * fixed-width header holding the offset of the first record not yet acknowledged; it is
 * rewritten in place (fdatasync) after each acknowledgement. Once everything is forwarded the
 * header is reset first and the file truncated after, so a crash in between resends records
 * (recognisable by record_id) rather than losing them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "ag-audit.h"
#include "ag.h"
#include "aud.h"
#include "pf-codec.h"
#include "pf-util.h"

#define SPOOL_MAGIC "paraf-audit-spool 1 sent="
#define SPOOL_DIGITS 16
#define SPOOL_HDR_LEN (sizeof(SPOOL_MAGIC) - 1 + SPOOL_DIGITS + 1)

_Static_assert(AG_AUDIT_PART_MAX + 1 <= AUD_RECORD_MAX, "a part must fit the service's line");

static struct {
	enum ag_audit_mode mode;
	char *socket_path;
	char *spool_path;
	unsigned timeout_ms;
	char *program;
	struct aud_client *client;
} sink = { .mode = AG_AUDIT_REQUIRED };

/* --- the record ------------------------------------------------------------------------- */

static json_object *
docs_json(const struct ag_audit_record *r)
{
	json_object *docs = json_object_new_array_ext((int)r->n_docs);

	for (size_t i = 0; docs && i < r->n_docs; i++) {
		json_object *d = json_object_new_object();
		_cleanup_free_ char *hex = pf_hex_encode(r->docs[i].digest, r->docs[i].digest_len);

		json_object_object_add(d, "name", json_object_new_string(r->docs[i].name));
		json_object_object_add(d, "digest", hex ? json_object_new_string(hex) : NULL);
		json_object_array_add(docs, d);
	}
	return docs;
}

json_object *
ag_audit_json(const struct ag_audit_record *r)
{
	json_object *o = json_object_new_object();
	_cleanup_free_ char *now = ag_time_iso8601(r->time ? r->time : time(NULL));

	json_object_object_add(o, "time", now ? json_object_new_string(now) : NULL);
	json_object_object_add(o, "method", json_object_new_string(r->method));
	json_object_object_add(o, "uid", json_object_new_int64(r->peer.uid));
	json_object_object_add(o, "pid", json_object_new_int64(r->peer.pid));
	json_object_object_add(o, "exe", r->exe ? json_object_new_string(r->exe) : NULL);
#define S(k, v) json_object_object_add(o, k, (v) ? json_object_new_string(v) : NULL)
	S("certificate", r->certificate);
	S("certificate_type", r->certificate_type);
	S("owner", r->owner);
	S("usage", r->usage);
	S("digest_algorithm", r->digest_algorithm);
	json_object_object_add(o, "documents",
		r->early && r->early->docs ? json_object_get(r->early->docs) : docs_json(r));
	S("verdict", r->allow ? "allow" : "deny");
	S("rule", r->rule);
	S("reason", r->reason);
	S("message", r->message);
	S("outcome", r->outcome);
	if (r->record_id)
		S("record_id", r->record_id);
#undef S
	return o;
}

void
ag_audit_record_id(char ret[AG_AUDIT_ID_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[AG_AUDIT_ID_HEX / 2];
	size_t got = 0;

	while (got < sizeof(b)) {
		ssize_t k = getrandom(b + got, sizeof(b) - got, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			abort(); /* no randomness at all: nothing here can go on safely */
		got += (size_t)k;
	}
	for (size_t i = 0; i < sizeof(b); i++) {
		ret[2 * i] = hex[b[i] >> 4];
		ret[2 * i + 1] = hex[b[i] & 15];
	}
	ret[AG_AUDIT_ID_HEX] = 0;
}

static const char *
json_line(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
		JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int
strv_push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

/*
 * How a record's documents go into lines (doc/audit-commands.md). A record that fits one line
 * (others: its length without documents, plus slack) is one line. Otherwise the record itself
 * carries its first documents, AG_AUDIT_HEAD_DOCS bytes of them (at least one), and
 * continuation records sent before it carry the rest, as many as fit each. The split depends
 * on the documents alone, so it can be made before the verdict is final (ag_audit_prestore).
 * bounds[0] = head; continuation p (1..parts-1) carries [bounds[p-1], bounds[p]).
 */
static int
split_docs(json_object *docs, size_t others, size_t **ret_bounds, size_t *ret_parts)
{
	size_t n_docs = docs ? json_object_array_length(docs) : 0, total = 0, parts = 1;
	_cleanup_free_ size_t *len = calloc(n_docs + 1, sizeof(*len));
	size_t *bounds = NULL, i = 0, used = 0;

	if (!len)
		return -ENOMEM;
	for (size_t k = 0; k < n_docs; k++) {
		/* each document's JSON once: the lines reuse these objects */
		len[k] = strlen(json_line(json_object_array_get_idx(docs, k))) + 1;
		total += len[k];
	}
	bounds = calloc(n_docs + 2, sizeof(*bounds));
	if (!bounds)
		return -ENOMEM;
	if (others + total <= AG_AUDIT_PART_MAX || n_docs == 0) {
		bounds[0] = n_docs;
		*ret_bounds = bounds;
		*ret_parts = 1;
		return 0;
	}
	for (; i < n_docs && (i == 0 || used + len[i] <= AG_AUDIT_HEAD_DOCS); i++)
		used += len[i];
	bounds[0] = i;
	for (used = 256; i < n_docs; i++) { /* 256: a continuation's own members */
		if (used + len[i] > AG_AUDIT_PART_MAX) {
			bounds[parts++] = i;
			used = 256;
		}
		used += len[i];
	}
	if (used > 256)
		bounds[parts++] = n_docs;
	*ret_bounds = bounds;
	*ret_parts = parts;
	return 0;
}

/* Documents [from, to) of docs, in a new array sharing them. */
static json_object *
docs_slice(json_object *docs, size_t from, size_t to)
{
	json_object *a = json_object_new_array_ext((int)(to - from));

	for (size_t k = from; a && k < to; k++)
		json_object_array_add(a, json_object_get(json_object_array_get_idx(docs, k)));
	return a;
}

/* Continuation records 2..parts of record id. */
static int
continuation_lines(const char *id, json_object *time_j, const char *method, json_object *docs,
	const size_t *bounds, size_t parts, char ***v, size_t *n)
{
	int rr = 0;

	for (size_t p = 1; p < parts && rr >= 0; p++) {
		json_object *c = json_object_new_object();
		char cid[AG_AUDIT_ID_HEX + 1];

		ag_audit_record_id(cid);
		json_object_object_add(c, "record_id", json_object_new_string(cid));
		json_object_object_add(c, "continues", json_object_new_string(id));
		json_object_object_add(c, "part", json_object_new_int64((int64_t)p + 1));
		json_object_object_add(c, "parts", json_object_new_int64((int64_t)parts));
		json_object_object_add(c, "time", json_object_get(time_j));
		json_object_object_add(c, "method", method ? json_object_new_string(method) : NULL);
		json_object_object_add(c, "documents", docs_slice(docs, bounds[p - 1], bounds[p]));
		rr = strv_push(v, n, json_line(c));
		json_object_put(c);
	}
	return rr;
}

/* The record's line without its documents: how long the rest of it is. */
static size_t
others_len(json_object *full)
{
	json_object *o = json_object_new_object();
	size_t n;

	json_object_object_foreach(full, k, val)
		if (!streq(k, "documents"))
			json_object_object_add(o, k, json_object_get(val));
	n = strlen(json_line(o)) + 64; /* "documents":[] and documents_total, parts */
	json_object_put(o);
	return n;
}

/* The record itself, carrying documents [0, head) of parts lines. */
static int
record_line(json_object *full, size_t head, size_t parts, char ***v, size_t *n)
{
	json_object *o = json_object_new_object(), *docs = json_object_object_get(full, "documents");
	int rr;

	json_object_object_foreach(full, k, val)
		json_object_object_add(o, k, streq(k, "documents") ? docs_slice(docs, 0, head)
								   : json_object_get(val));
	json_object_object_add(o, "documents_total",
		json_object_new_int64((int64_t)json_object_array_length(docs)));
	json_object_object_add(o, "parts", json_object_new_int64((int64_t)parts));
	rr = strv_push(v, n, json_line(o));
	json_object_put(o);
	return rr;
}

/*
 * The lines that carry one record (full, not changed): the record itself, or continuation
 * records with the later documents, then the record with the first ones and
 * `documents_total` (split_docs). The record goes last: its verdict is stored only after
 * everything it refers to. With early, the continuations already made (and those stored) are
 * taken from it.
 */
static int
record_lines(json_object *full, const struct ag_audit_early *early, char ***ret, size_t *ret_n)
{
	json_object *docs = json_object_object_get(full, "documents");
	_cleanup_free_ size_t *bounds = NULL;
	char **v = NULL;
	size_t n = 0, parts;
	int rr = 0;

	if (early && early->head < json_object_array_length(docs)) {
		for (size_t k = early->stored; k < early->n_lines && rr >= 0; k++)
			rr = strv_push(&v, &n, early->lines[k]);
		if (rr >= 0)
			rr = record_line(full, early->head, early->n_lines + 1, &v, &n);
		goto out;
	}
	if (json_object_array_length(docs) > AG_DOCUMENTS_MAX) {
		rr = -E2BIG;
		goto out;
	}
	rr = split_docs(docs, others_len(full), &bounds, &parts);
	if (rr < 0)
		goto out;
	if (parts == 1) {
		rr = strv_push(&v, &n, json_line(full));
		goto out;
	}
	rr = continuation_lines(json_object_get_string(json_object_object_get(full, "record_id")),
		json_object_object_get(full, "time"),
		json_object_get_string(json_object_object_get(full, "method")), docs, bounds, parts,
		&v, &n);
	if (rr >= 0)
		rr = record_line(full, bounds[0], parts, &v, &n);
out:
	if (rr < 0) {
		strv_free(v, n);
		return rr;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* --- the sink --------------------------------------------------------------------------- */

char *
ag_audit_spool_default(void)
{
	const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char *p = NULL;

	if (state && state[0] == '/')
		return asprintf(&p, "%s/paraf/audit-spool", state) < 0 ? NULL : p;
	if (home && home[0] == '/')
		return asprintf(&p, "%s/.local/state/paraf/audit-spool", home) < 0 ? NULL : p;
	return NULL;
}

void
ag_audit_shutdown(void)
{
	sink.client = aud_client_free(sink.client);
	free(sink.socket_path);
	free(sink.spool_path);
	free(sink.program);
	sink.socket_path = sink.spool_path = sink.program = NULL;
	sink.mode = AG_AUDIT_REQUIRED;
	sink.timeout_ms = 0;
}

int
ag_audit_setup(const struct ag_audit_options *o)
{
	char *sock = strdup(o->socket_path ? o->socket_path : AG_AUDIT_SOCKET_DEFAULT);
	char *spool = o->spool_path ? strdup(o->spool_path) : ag_audit_spool_default();
	char *prog = strdup(o->program ? o->program : "parafd");

	if (!sock || !prog) {
		free(sock);
		free(spool);
		free(prog);
		return -ENOMEM;
	}
	ag_audit_shutdown();
	sink.mode = o->mode;
	sink.socket_path = sock;
	sink.spool_path = spool; /* may be NULL: then nothing can be spooled */
	sink.program = prog;
	sink.timeout_ms = o->timeout_ms ? o->timeout_ms : AG_AUDIT_TIMEOUT_DEFAULT * 1000;
	return 0;
}

enum ag_audit_mode
ag_audit_mode(void)
{
	return sink.mode;
}

const char *
ag_audit_socket_path(void)
{
	return sink.socket_path ? sink.socket_path : AG_AUDIT_SOCKET_DEFAULT;
}

static unsigned
timeout_ms(void)
{
	return sink.timeout_ms ? sink.timeout_ms : AG_AUDIT_TIMEOUT_DEFAULT * 1000;
}

/* One line to the service and its acknowledgement. The client replaces a connection the
 * service closed while idle by itself; a connection lost after the line went out is tried once
 * more (the service may have restarted): if the first copy was stored after all, the log holds
 * it twice under one record_id, which readers count once. */
static int
deliver_line(const char *line, size_t len)
{
	uint64_t seq = 0;
	int r;

	if (!sink.client) {
		r = aud_client_connect(ag_audit_socket_path(), &sink.client);
		if (r < 0) {
			sink.client = NULL;
			return r;
		}
	}
	r = aud_client_send(sink.client, line, len, timeout_ms(), &seq);
	if (r == -EPIPE)
		r = aud_client_send(sink.client, line, len, timeout_ms(), &seq);
	return r;
}

int
ag_audit_check(void)
{
	struct aud_client *c = NULL;

	if (sink.mode == AG_AUDIT_JOURNAL || (sink.mode == AG_AUDIT_SPOOL && sink.spool_path))
		return 0;
	/* A fresh connection: an old one cannot tell whether the service is still there. */
	if (aud_client_connect(ag_audit_socket_path(), &c) < 0)
		return -ENOLINK;
	aud_client_free(sink.client);
	sink.client = c;
	return 0;
}

static void note(bool to_stderr, int prio, const char *fmt, ...) _printf_(3, 4);

/* --- the spool -------------------------------------------------------------------------- */

static int
mkdir_parents(const char *path)
{
	_cleanup_free_ char *p = strdup(path);
	char *s;

	if (!p)
		return -ENOMEM;
	s = strrchr(p, '/');
	if (!s || s == p)
		return 0;
	*s = 0;
	for (char *q = p + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = 0;
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return pf_negerrno();
		*q = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return pf_negerrno();
	return 0;
}

static int
spool_lock(const char *path, bool create)
{
	_cleanup_free_ char *lock = NULL;
	int fd;

	if (asprintf(&lock, "%s.lock", path) < 0)
		return -ENOMEM;
	if (create) {
		int r = mkdir_parents(path);
		if (r < 0)
			return r;
	}
	/* The lock file is created whenever its directory exists. */
	fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_CREAT, 0600);
	if (fd < 0)
		return pf_negerrno();
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int r = pf_negerrno();
			close(fd);
			return r;
		}
	}
	return fd;
}

static int
pread_all(int fd, void *buf, size_t n, off_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return pf_negerrno();
		if (k == 0)
			return -EBADMSG;
		got += (size_t)k;
	}
	return 0;
}

static int
pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = pwrite(fd, (const char *)buf + done, n - done, off + (off_t)done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return pf_negerrno();
		done += (size_t)k;
	}
	return 0;
}

static int
header_write(int fd, uint64_t sent)
{
	char h[SPOOL_HDR_LEN + 1];
	int r;

	snprintf(h, sizeof(h), SPOOL_MAGIC "%0*" PRIu64 "\n", SPOOL_DIGITS, sent);
	r = pwrite_all(fd, h, SPOOL_HDR_LEN, 0);
	if (r >= 0 && fdatasync(fd) < 0)
		r = pf_negerrno();
	return r;
}

/* Opens the spool (creating it with its header when asked) and reads the header. A file that
 * does not start with the header is not ours to change: -EBADMSG. */
static int
spool_open(const char *path, bool create, int *ret_fd, uint64_t *ret_sent, uint64_t *ret_size)
{
	_cleanup_close_ int fd = -1;
	char h[SPOOL_HDR_LEN + 1];
	uint64_t sent = 0;
	struct stat st;
	bool fresh = false;
	int r;

	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
	if (fd < 0)
		return pf_negerrno();
	if (fstat(fd, &st) < 0)
		return pf_negerrno();
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid())
		return -EPERM;
	if ((st.st_mode & 077) && fchmod(fd, 0600) < 0)
		return pf_negerrno();
	if (st.st_size == 0) {
		if (!create) {
			*ret_fd = TAKE_FD(fd);
			*ret_sent = *ret_size = 0;
			return 0;
		}
		r = header_write(fd, SPOOL_HDR_LEN);
		if (r < 0)
			return r;
		fresh = true;
		sent = SPOOL_HDR_LEN;
		st.st_size = SPOOL_HDR_LEN;
	} else {
		if ((uint64_t)st.st_size < SPOOL_HDR_LEN)
			return -EBADMSG;
		r = pread_all(fd, h, SPOOL_HDR_LEN, 0);
		if (r < 0)
			return r;
		h[SPOOL_HDR_LEN] = 0;
		if (strncmp(h, SPOOL_MAGIC, sizeof(SPOOL_MAGIC) - 1) != 0 ||
		    h[SPOOL_HDR_LEN - 1] != '\n')
			return -EBADMSG;
		for (size_t i = sizeof(SPOOL_MAGIC) - 1; i < SPOOL_HDR_LEN - 1; i++) {
			if (h[i] < '0' || h[i] > '9')
				return -EBADMSG;
			sent = sent * 10 + (uint64_t)(h[i] - '0');
		}
		if (sent < SPOOL_HDR_LEN)
			return -EBADMSG;
		if (sent > (uint64_t)st.st_size) {
			/* Shortened behind our back: resend everything rather than skip. */
			sent = SPOOL_HDR_LEN;
			r = header_write(fd, sent);
			if (r < 0)
				return r;
		}
	}
	if (fresh) {
		_cleanup_free_ char *dir = strdup(path);
		char *s = dir ? strrchr(dir, '/') : NULL;

		if (s && s != dir) {
			int dfd;

			*s = 0;
			dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd >= 0) {
				(void)fsync(dfd);
				close(dfd);
			}
		}
	}
	*ret_fd = TAKE_FD(fd);
	*ret_sent = sent;
	*ret_size = (uint64_t)st.st_size;
	return 0;
}

/* Cuts a line torn by a crash during an append: it was never acknowledged as spooled. */
static int
spool_cut_torn(int fd, uint64_t *size)
{
	char buf[4096];
	uint64_t end = *size;

	while (end > SPOOL_HDR_LEN) {
		size_t n = end - SPOOL_HDR_LEN < sizeof(buf) ? (size_t)(end - SPOOL_HDR_LEN)
							      : sizeof(buf);
		int r = pread_all(fd, buf, n, (off_t)(end - n));

		if (r < 0)
			return r;
		for (size_t i = n; i-- > 0;)
			if (buf[i] == '\n') {
				uint64_t keep = end - n + i + 1;

				if (keep != *size) {
					if (ftruncate(fd, (off_t)keep) < 0)
						return pf_negerrno();
					*size = keep;
				}
				return 0;
			}
		end -= n;
	}
	if (*size != SPOOL_HDR_LEN) {
		if (ftruncate(fd, SPOOL_HDR_LEN) < 0)
			return pf_negerrno();
		*size = SPOOL_HDR_LEN;
	}
	return 0;
}

/* Appends lines (each without a newline) under the lock already held. */
static int
spool_append_locked(const char *path, char *const *lines, size_t n)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	uint64_t sent, size, total = 0;
	size_t off = 0;
	int r;

	for (size_t i = 0; i < n; i++) {
		if (memchr(lines[i], '\n', strlen(lines[i])))
			return -EINVAL;
		total += strlen(lines[i]) + 1;
	}
	r = spool_open(path, true, &fd, &sent, &size);
	if (r < 0)
		return r;
	r = spool_cut_torn(fd, &size);
	if (r < 0)
		return r;
	if (size + total > AG_AUDIT_SPOOL_MAX)
		return -ENOSPC;
	buf = malloc(total ? total : 1);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(lines[i]);

		memcpy(buf + off, lines[i], l);
		buf[off + l] = '\n';
		off += l + 1;
	}
	r = pwrite_all(fd, buf, total, (off_t)size);
	if (r >= 0 && fsync(fd) < 0)
		r = pf_negerrno();
	if (r < 0)
		(void)!ftruncate(fd, (off_t)size); /* nothing half-spooled */
	return r;
}

int
ag_audit_spool_append(const char *path, const char *line, size_t len)
{
	_cleanup_free_ char *copy = strndup(line, len);
	char *v[1] = { copy };
	int lock, r;

	if (!copy)
		return -ENOMEM;
	if (strlen(copy) != len)
		return -EINVAL;
	lock = spool_lock(path, true);
	if (lock < 0)
		return lock;
	r = spool_append_locked(path, v, 1);
	close(lock);
	return r;
}

static size_t
count_lines(const char *p, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += p[i] == '\n';
	return c;
}

/* <spool>.rejected: spooled lines the service would not take. */
static int
spool_reject(const char *path, const char *line, size_t len)
{
	_cleanup_free_ char *rej = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	if (asprintf(&rej, "%s.rejected", path) < 0)
		return -ENOMEM;
	fd = open(rej, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return pf_negerrno();
	r = pwrite_all(fd, line, len, lseek(fd, 0, SEEK_END));
	if (r >= 0)
		r = pwrite_all(fd, "\n", 1, lseek(fd, 0, SEEK_END));
	if (r >= 0 && fsync(fd) < 0)
		r = pf_negerrno();
	if (r >= 0)
		note(false, LOG_ERR, "a spooled record was refused by paraf-auditd as malformed; it is "
			"kept in '%s'", rej);
	return r;
}

/* Forwards under the lock already held. */
static int
spool_forward_locked(const char *path, unsigned max, size_t *ret_left)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	uint64_t sent, size;
	size_t len, pos = 0;
	unsigned done = 0;
	int r;

	r = spool_open(path, false, &fd, &sent, &size);
	if (r == -ENOENT || (r >= 0 && size == 0)) {
		if (ret_left)
			*ret_left = 0;
		return 0;
	}
	if (r < 0)
		return r;
	if (size - sent > AG_AUDIT_SPOOL_MAX)
		return -EFBIG;
	len = (size_t)(size - sent);
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	r = pread_all(fd, buf, len, (off_t)sent);
	if (r < 0)
		return r;
	buf[len] = 0;
	while (done < max) {
		char *nl = memchr(buf + pos, '\n', len - pos);
		size_t l;

		if (!nl)
			break; /* nothing, or a torn line the next append cuts */
		l = (size_t)(nl - (buf + pos));
		r = deliver_line(buf + pos, l);
		if (r == -EINVAL || r == -EMSGSIZE) {
			/* The service refuses this line itself (damaged on disk?): it would block
			 * every record behind it. Kept aside for the operator, never dropped. */
			r = spool_reject(path, buf + pos, l);
			if (r < 0)
				break;
		} else if (r < 0) {
			r = -ENOLINK;
			break;
		}
		pos += l + 1;
		sent += l + 1;
		done++;
		/* Acknowledged: never sent again (unless we crash before this write lands). */
		r = header_write(fd, sent);
		if (r < 0)
			break;
	}
	if (r >= 0 && sent == size && size > SPOOL_HDR_LEN) {
		/* All forwarded: the header first, then the records (a crash in between resends). */
		r = header_write(fd, SPOOL_HDR_LEN);
		if (r >= 0 && (ftruncate(fd, SPOOL_HDR_LEN) < 0 || fsync(fd) < 0))
			r = pf_negerrno();
	}
	if (ret_left)
		*ret_left = count_lines(buf + pos, len - pos);
	return r < 0 ? r : 0;
}

int
ag_audit_flush(unsigned max, size_t *ret_left)
{
	int lock, r;

	if (ret_left)
		*ret_left = 0;
	if (!sink.spool_path || access(sink.spool_path, F_OK) < 0)
		return 0;
	lock = spool_lock(sink.spool_path, false);
	if (lock == -ENOENT)
		return 0;
	if (lock < 0)
		return lock;
	r = spool_forward_locked(sink.spool_path, max, ret_left);
	close(lock);
	return r;
}

static bool
spool_nonempty(void)
{
	struct stat st;

	/* A spool holds records when it is longer than its header and not all is sent; the
	 * cheap test is the size, the forwarder reads the rest. */
	return sink.spool_path && stat(sink.spool_path, &st) == 0 &&
	       (uint64_t)st.st_size > SPOOL_HDR_LEN;
}

size_t
ag_audit_spool_pending(void)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	uint64_t sent, size;
	int lock;

	if (!spool_nonempty())
		return 0;
	lock = spool_lock(sink.spool_path, false);
	if (lock < 0)
		return 0;
	if (spool_open(sink.spool_path, false, &fd, &sent, &size) < 0 || size - sent >
		AG_AUDIT_SPOOL_MAX || !(buf = malloc((size_t)(size - sent) + 1)) ||
	    pread_all(fd, buf, (size_t)(size - sent), (off_t)sent) < 0) {
		close(lock);
		return 0;
	}
	close(lock);
	return count_lines(buf, (size_t)(size - sent));
}

/* --- the record's way ------------------------------------------------------------------- */

/* The journal (stderr) copy: the very record sent, or its outcome as it turned out. */
static void
copy_write(bool to_stderr, const struct ag_audit_record *r, json_object *o, bool stored)
{
	const char *s = json_line(o);

	if (to_stderr) {
		fprintf(stderr, "parafd: audit %s\n", s);
		fflush(stderr);
	}
	/* In the foreground the journal gets the copy only when it is the one place left. */
	if (!to_stderr || !stored)
		sd_journal_send("MESSAGE=paraf %s %s by uid %u: %s", r->method,
			r->allow ? "allowed" : "denied", (unsigned)r->peer.uid,
			r->reason ? r->reason : "", "PRIORITY=%i", r->allow ? LOG_INFO : LOG_NOTICE,
			"PARAF_RECORD=%s", s, "PARAF_VERDICT=%s", r->allow ? "allow" : "deny",
			"PARAF_RULE=%s", r->rule ? r->rule : "", "PARAF_CERTIFICATE=%s",
			r->certificate ? r->certificate : "", "PARAF_RECORD_ID=%s",
			r->record_id ? r->record_id : "", "PARAF_AUDIT_STORED=%s",
			stored ? "yes" : "no", NULL);
}

static void
note(bool to_stderr, int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (to_stderr) {
		fprintf(stderr, "%s: audit: ", sink.program ? sink.program : "parafd");
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		fflush(stderr);
	} else {
		sd_journal_printv(prio, fmt, ap);
	}
	va_end(ap);
}

int
ag_audit_commit(bool to_stderr, const struct ag_audit_record *r, const char *failed_outcome)
{
	struct ag_audit_record rec = *r;
	json_object *o;
	char id[AG_AUDIT_ID_HEX + 1], **lines = NULL;
	size_t n = 0, acked = 0;
	bool stored = false, spooled = false;
	int err = 0;

	if (rec.early) {
		rec.record_id = rec.early->record_id;
		rec.time = rec.early->time;
	}
	if (!rec.record_id) {
		ag_audit_record_id(id);
		rec.record_id = id;
	}
	o = ag_audit_json(&rec);
	if (sink.mode == AG_AUDIT_JOURNAL) {
		copy_write(to_stderr, &rec, o, true);
		json_object_put(o);
		return 0;
	}
	err = record_lines(o, rec.early, &lines, &n);
	if (err >= 0) {
		/* Older records first: a spool left from before goes ahead (a pass of it). */
		if (spool_nonempty())
			(void)ag_audit_flush(AG_AUDIT_FLUSH_BATCH, NULL);
		if (sink.mode == AG_AUDIT_SPOOL && spool_nonempty()) {
			/* Still records waiting: this one queues behind them, in order. */
			err = 0;
		} else {
			for (; acked < n; acked++) {
				err = deliver_line(lines[acked], strlen(lines[acked]));
				if (err < 0)
					break;
			}
			stored = acked == n;
		}
		if (!stored && sink.mode == AG_AUDIT_SPOOL) {
			int lock = sink.spool_path ? spool_lock(sink.spool_path, true) : -ENXIO;

			if (lock >= 0) {
				int e = spool_append_locked(sink.spool_path, lines + acked, n - acked);
				close(lock);
				lock = e;
			}
			if (lock >= 0)
				stored = spooled = true;
			else {
				note(to_stderr, LOG_ERR, "record %s cannot be spooled to '%s': %s",
					rec.record_id, sink.spool_path ? sink.spool_path : "(no "
					"$XDG_STATE_HOME or $HOME)", strerror(-lock));
			}
		}
	}
	if (!stored && failed_outcome) {
		rec.outcome = failed_outcome;
		json_object_object_add(o, "outcome", json_object_new_string(failed_outcome));
	}
	copy_write(to_stderr, &rec, o, stored);
	json_object_put(o);
	if (spooled)
		note(to_stderr, LOG_WARNING, "record %s spooled to '%s': paraf-auditd at '%s' %s",
			rec.record_id, sink.spool_path, ag_audit_socket_path(),
			err < 0 ? strerror(-err) : "has older records to take first");
	else if (!stored)
		note(to_stderr, LOG_ERR, "record %s was not stored: paraf-auditd at '%s': %s "
			"(audit = %s)", rec.record_id, ag_audit_socket_path(),
			err < 0 ? strerror(-err) : "unavailable", ag_audit_mode_to_string(sink.mode));
	strv_free(lines, n);
	return stored ? 0 : -ENOLINK;
}

void
ag_audit_prestore(const struct ag_audit_record *r, struct ag_audit_early *e)
{
	struct ag_audit_record rec = *r;
	_cleanup_free_ size_t *bounds = NULL;
	json_object *full;
	size_t parts;

	memset(e, 0, sizeof(*e));
	ag_audit_record_id(e->record_id);
	e->time = time(NULL);
	e->docs = docs_json(r);
	e->head = r->n_docs;
	if (!e->docs || sink.mode == AG_AUDIT_JOURNAL || r->n_docs > AG_DOCUMENTS_MAX)
		return;
	rec.record_id = e->record_id;
	rec.time = e->time;
	rec.early = e;
	full = ag_audit_json(&rec);
	/* The verdict may still change what the record says (an error's message, the
	 * outcome): AG_AUDIT_SLACK leaves room for it. */
	if (split_docs(e->docs, others_len(full) + AG_AUDIT_SLACK, &bounds, &parts) < 0 ||
	    parts == 1)
		goto out;
	if (continuation_lines(e->record_id, json_object_object_get(full, "time"), r->method,
		    e->docs, bounds, parts, &e->lines, &e->n_lines) < 0) {
		strv_free(e->lines, e->n_lines);
		e->lines = NULL;
		e->n_lines = 0;
		goto out;
	}
	e->head = bounds[0];
	/* Stored now, while the service answers; older spooled records go first, so with any
	 * waiting nothing is sent here. What is not stored now, ag_audit_commit sends (or
	 * spools) in order. */
	if (!spool_nonempty())
		for (; e->stored < e->n_lines; e->stored++)
			if (deliver_line(e->lines[e->stored], strlen(e->lines[e->stored])) < 0)
				break;
out:
	json_object_put(full);
}

void
ag_audit_early_release(struct ag_audit_early *e)
{
	json_object_put(e->docs);
	strv_free(e->lines, e->n_lines);
	memset(e, 0, sizeof(*e));
}

void
ag_audit_write(bool to_stderr, const struct ag_audit_record *r)
{
	(void)ag_audit_commit(to_stderr, r, NULL);
}
