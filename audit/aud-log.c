/*
 * The appending side of the audit log (paraf-auditd's): opening a log directory, checking its
 * tail against the checkpoint and repairing a torn final line; appending a record (one write,
 * fdatasync, and only then success), undoing a write that failed; rotating by size and month
 * so the chain runs on across files; and checkpoints.
 *
 * One process appends: the directory is flock()ed while the log is open. Writes go with
 * pwrite() at the offset this side knows, and the file is checked to still be that long
 * before each one, so a file changed behind the service's back is refused, not extended.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "aud-internal.h"
#include "pf-codec.h"
#include "pf-util.h"

#define AUD_LOCK_TRIES 20 /* 10 ms apart: a verifier's probe is over by then */

struct aud_log {
	int dfd;                     /* the directory, flock()ed */
	int fd;                      /* the newest file, -1 before the first */
	char file[AUD_NAME_MAX];     /* its name */
	unsigned month, n;           /* its YYYYMM and NNN */
	uint64_t size;               /* its length: complete records only */
	bool damaged;                /* a failed write could not be undone yet */

	uint64_t seq;                /* the last record's seq (0: none) */
	char head[AUD_HASH_HEX + 1]; /* its hash */
	char head_file[AUD_NAME_MAX];
	uint64_t head_offset;        /* just past it */
	bool join;                   /* head_file continues join_from: */
	char join_from[AUD_NAME_MAX];
	uint64_t join_seq;
	char join_prev[AUD_HASH_HEX + 1];

	uint64_t checkpointed;       /* count in the last checkpoint */
	uint64_t file_max;
	unsigned checkpoint_records;
	void (*on_checkpoint)(const char *json, void *userdata);
	void *userdata;
};

static bool
mode_private(const struct stat *st)
{
	return st->st_uid == geteuid() && !(st->st_mode & 022);
}

int
aud_dir_check(int dfd, char *why, size_t why_size)
{
	static const char *const extra[] = { AUD_CHECKPOINT_FILE, AUD_CHECKPOINT_TMP };
	struct aud_files f;
	struct stat st;
	int r;

	if (fstat(dfd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || !mode_private(&st)) {
		snprintf(why, why_size, "the log directory must be owned by uid %u and writable by "
			"nobody else (it is owned by uid %u, mode %04o)", (unsigned)geteuid(),
			(unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	r = aud_files_list(dfd, &f);
	if (r < 0)
		return r;
	for (size_t i = 0; i < f.n + ARRAY_SIZE(extra); i++) {
		const char *name = i < f.n ? f.names[i] : extra[i - f.n];

		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT && i >= f.n)
				continue;
			r = -errno;
			break;
		}
		if (!S_ISREG(st.st_mode) || !mode_private(&st)) {
			snprintf(why, why_size, "'%s' must be a regular file owned by uid %u and writable "
				"by nobody else (it is %s owned by uid %u, mode %04o)", name,
				(unsigned)geteuid(), S_ISREG(st.st_mode) ? "a file" : "not a regular file",
				(unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
			r = -EPERM;
			break;
		}
	}
	aud_files_release(&f);
	return r;
}

/* mkdir -p: the parents as the umask allows, the log directory itself 0700. */
static int
make_dirs(const char *dir)
{
	_cleanup_free_ char *p = strdup(dir);
	char *s;

	if (!p)
		return -ENOMEM;
	for (s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = 0;
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int
write_all_at(int fd, const char *p, size_t n, uint64_t offset)
{
	while (n) {
		ssize_t k = pwrite(fd, p, n, (off_t)offset);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -ENOSPC;
		p += k;
		n -= (size_t)k;
		offset += (uint64_t)k;
	}
	return 0;
}

/* The storage errors a caller can act on: full, or broken. */
static int
storage_error(int r)
{
	if (r == -ENOSPC || r == -EDQUOT || r == -EFBIG)
		return -ENOSPC;
	if (r == -ENOMEM)
		return r;
	return -EIO;
}

int
aud_log_checkpoint(struct aud_log *l)
{
	struct aud_checkpoint c = { .count = l->seq, .offset = l->head_offset, .join = l->join,
		.join_seq = l->join_seq };
	_cleanup_free_ char *text = NULL;
	int r;

	memcpy(c.head, l->head, sizeof(c.head));
	memcpy(c.file, l->head_file, sizeof(c.file));
	memcpy(c.join_from, l->join_from, sizeof(c.join_from));
	memcpy(c.join_prev, l->join_prev, sizeof(c.join_prev));
	r = aud_time_format(time(NULL), c.time);
	if (r >= 0)
		r = aud_checkpoint_format(&c, &text);
	if (r >= 0)
		r = aud_checkpoint_write(l->dfd, text);
	if (r < 0)
		return r;
	l->checkpointed = l->seq;
	if (l->on_checkpoint)
		l->on_checkpoint(text, l->userdata);
	return 0;
}

uint64_t
aud_log_uncheckpointed(const struct aud_log *l)
{
	return l->seq - l->checkpointed;
}

/* Undoes a failed write: the file goes back to its last complete record. */
static void
log_undo(struct aud_log *l)
{
	if (ftruncate(l->fd, (off_t)l->size) < 0 || fdatasync(l->fd) < 0)
		l->damaged = true;
	else
		l->damaged = false;
}

/* Starts the file a record written at time now belongs in, if it is not the current one. */
static int
log_rotate(struct aud_log *l, time_t now, size_t len)
{
	unsigned month = aud_time_month(now), n;
	char name[AUD_NAME_MAX];
	int fd;

	if (l->fd >= 0) {
		bool full = l->size > 0 && l->size + len > l->file_max && l->n < AUD_FILE_SEQ_MAX;
		bool new_month = month > l->month;

		if (!full && !new_month)
			return 0;
		if (l->size == 0) {
			/* An empty file (its first write failed) is not left behind in an
			 * earlier month. */
			if (unlinkat(l->dfd, l->file, 0) < 0)
				return -errno;
			close(l->fd);
			l->fd = -1;
			(void)fsync(l->dfd);
		}
		/* The clock may go back: a file never follows a later month's. */
		n = new_month ? 1 : l->n + 1;
		if (!new_month)
			month = l->month;
	} else {
		n = 1;
		if (l->head_file[0]) {
			unsigned hm, hn;

			if (aud_file_name_parse(l->head_file, &hm, &hn) < 0)
				return -EIO;
			if (month <= hm) {
				month = hm;
				n = hn + 1 > AUD_FILE_SEQ_MAX ? AUD_FILE_SEQ_MAX : hn + 1;
			}
		}
	}
	aud_file_name_format(month, n, name);
	fd = openat(l->dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	/* The new name must survive a power cut before any record in it is acknowledged. */
	if (fsync(l->dfd) < 0) {
		int r = -errno;
		(void)unlinkat(l->dfd, name, 0);
		close(fd);
		return r;
	}
	if (l->fd >= 0)
		close(l->fd);
	l->fd = fd;
	memcpy(l->file, name, sizeof(name));
	l->month = month;
	l->n = n;
	l->size = 0;
	return 0;
}

/* Appends one already compacted record. */
static int
log_append_compact(struct aud_log *l, uid_t uid, pid_t pid, const char *rec, size_t rec_len,
	uint64_t *ret_seq, char ret_hash[AUD_HASH_HEX + 1])
{
	_cleanup_free_ char *line = NULL;
	char hash[AUD_HASH_HEX + 1];
	struct stat st;
	time_t now = time(NULL);
	size_t len;
	bool first;
	int r;

	if (l->damaged) {
		log_undo(l);
		if (l->damaged)
			return -EIO;
	}
	r = aud_line_format(l->seq + 1, now, uid, pid, l->head, rec, rec_len, &line, &len);
	if (r < 0)
		return r;
	line[len] = '\n';
	r = log_rotate(l, now, len + 1);
	if (r < 0)
		return storage_error(r);
	/* Someone else wrote, truncated or removed the file: appending would hide it. */
	if (fstat(l->fd, &st) < 0 || (uint64_t)st.st_size != l->size || st.st_nlink == 0)
		return -EIO;
	r = write_all_at(l->fd, line, len + 1, l->size);
	if (r >= 0 && fdatasync(l->fd) < 0)
		r = -errno;
	if (r < 0) {
		log_undo(l);
		return storage_error(r);
	}
	aud_line_hash(line, len, hash);
	first = l->size == 0;
	if (first && l->head_file[0] && !streq(l->head_file, l->file)) {
		l->join = true;
		memcpy(l->join_from, l->head_file, sizeof(l->join_from));
		l->join_seq = l->seq + 1;
		memcpy(l->join_prev, l->head, sizeof(l->join_prev));
	}
	l->size += len + 1;
	l->seq++;
	memcpy(l->head, hash, sizeof(hash));
	memcpy(l->head_file, l->file, sizeof(l->head_file));
	l->head_offset = l->size;
	/* The first record, then every N: a failed checkpoint is retried with the next record,
	 * and does not undo this one, which is on disk. */
	if (l->checkpointed == 0 || l->seq - l->checkpointed >= l->checkpoint_records)
		(void)aud_log_checkpoint(l);
	if (ret_seq)
		*ret_seq = l->seq;
	if (ret_hash)
		memcpy(ret_hash, hash, AUD_HASH_HEX + 1);
	return 0;
}

int
aud_log_append(struct aud_log *l, uid_t uid, pid_t pid, const char *json, size_t len,
	uint64_t *ret_seq, char ret_hash[AUD_HASH_HEX + 1])
{
	_cleanup_free_ char *rec = NULL;
	size_t n;
	int r;

	if (!l || !json)
		return -EINVAL;
	r = aud_record_compact(json, len, AUD_RECORD_MAX, &rec, &n);
	if (r < 0)
		return r;
	return log_append_compact(l, uid, pid, rec, n, ret_seq, ret_hash);
}

/* What the tail check found. */
struct tail {
	uint64_t seq;
	char head[AUD_HASH_HEX + 1];
	ssize_t head_file;           /* index, -1: no record */
	uint64_t head_offset;
	bool join;
	ssize_t join_from;
	uint64_t join_seq;
	char join_prev[AUD_HASH_HEX + 1];
	bool torn;                   /* the newest file ends in an incomplete line: */
	uint64_t torn_offset;
	char *torn_data;
	size_t torn_len;
};

/* Checks that the records from the checkpoint's head to the end of the log chain on from it,
 * and finds a torn final line. -EUCLEAN for anything else. */
static int
log_check_tail(int dfd, const struct aud_files *f, const struct aud_checkpoint *cp,
	struct tail *t)
{
	struct aud_walk w;
	struct aud_walk_line wl;
	size_t file = 0;
	uint64_t offset = 0;
	int r;

	t->seq = cp->count;
	memcpy(t->head, cp->head, sizeof(t->head));
	t->head_file = -1;
	if (cp->count > 0) {
		_cleanup_free_ char *line = NULL;
		char hash[AUD_HASH_HEX + 1], why[128];
		struct aud_line al;
		ssize_t i = aud_files_find(f, cp->file);
		size_t n;

		if (i < 0)
			return -EUCLEAN;
		r = aud_line_read_before(dfd, cp->file, cp->offset, &line, &n);
		if (r == -EBADMSG)
			return -EUCLEAN;
		if (r < 0)
			return r;
		aud_line_hash(line, n, hash);
		if (!streq(hash, cp->head) || aud_line_parse(line, n, &al, why, sizeof(why)) < 0 ||
		    al.seq != cp->count)
			return -EUCLEAN;
		file = (size_t)i;
		offset = cp->offset;
		t->head_file = i;
		t->head_offset = cp->offset;
		if (cp->join) {
			t->join = true;
			t->join_from = aud_files_find(f, cp->join_from);
			t->join_seq = cp->join_seq;
			memcpy(t->join_prev, cp->join_prev, sizeof(t->join_prev));
			if (t->join_from < 0)
				return -EUCLEAN;
		}
	} else if (f->n == 0) {
		return 0;
	}
	r = aud_walk_init(&w, dfd, f, file, offset, offset ? 0 : 1);
	if (r < 0)
		return r;
	while ((r = aud_walk_next(&w, &wl)) > 0) {
		char why[128];
		struct aud_line al;

		if (!wl.complete) {
			/* Only the very last bytes of the log may be a torn line. */
			if (wl.too_long || wl.len > AUD_TORN_MAX || wl.file != f->n - 1) {
				r = -EUCLEAN;
				break;
			}
			t->torn = true;
			t->torn_offset = wl.offset;
			t->torn_len = wl.len;
			t->torn_data = malloc(wl.len ? wl.len : 1);
			if (!t->torn_data) {
				r = -ENOMEM;
				break;
			}
			memcpy(t->torn_data, wl.text, wl.len);
			continue;
		}
		if (wl.too_long || aud_line_parse(wl.text, wl.len, &al, why, sizeof(why)) < 0 ||
		    al.seq != t->seq + 1 || !streq(al.prev, t->head)) {
			r = -EUCLEAN;
			break;
		}
		if (wl.first_in_file && t->head_file >= 0 && (size_t)t->head_file != wl.file) {
			t->join = true;
			t->join_from = t->head_file;
			t->join_seq = al.seq;
			memcpy(t->join_prev, al.prev, sizeof(t->join_prev));
		}
		t->seq = al.seq;
		aud_line_hash(wl.text, wl.len, t->head);
		t->head_file = (ssize_t)wl.file;
		t->head_offset = wl.end;
	}
	aud_walk_release(&w);
	return r < 0 ? (r == -EBADF || r == -ELOOP ? -EUCLEAN : r) : 0;
}

/* The record that says what a repair cut away: where, how much, its SHA-256 and its bytes. */
static int
repair_record(const char *file, const struct tail *t, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *hex = pf_hex_encode((const uint8_t *)t->torn_data, t->torn_len);
	unsigned char md[32];
	_cleanup_free_ char *mdhex = NULL;
	unsigned n = 0;
	int k;

	if (!hex || !EVP_Digest(t->torn_data, t->torn_len, md, &n, EVP_sha256(), NULL))
		return -ENOMEM;
	mdhex = pf_hex_encode(md, n);
	if (!mdhex)
		return -ENOMEM;
	k = asprintf(ret, "{\"event\":\"repair\",\"reason\":\"torn-final-line\",\"file\":\"%s\","
		"\"offset\":%" PRIu64 ",\"bytes\":%zu,\"sha256\":\"%s\",\"data\":\"%s\"}", file,
		t->torn_offset, t->torn_len, mdhex, hex);
	if (k < 0)
		return -ENOMEM;
	*ret_len = (size_t)k;
	return 0;
}

int
aud_log_open(const struct aud_log_options *o, struct aud_log **ret)
{
	struct aud_log *l = NULL;
	struct aud_files f = {};
	struct aud_checkpoint cp = {};
	struct tail t = {};
	char why[256];
	bool fresh = false;
	int r;

	if (!o || !o->dir || !o->dir[0])
		return -EINVAL;
	r = make_dirs(o->dir);
	if (r < 0)
		return r;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->fd = -1;
	l->file_max = o->file_max ? o->file_max : AUD_FILE_MAX_DEFAULT;
	l->checkpoint_records = o->checkpoint_records ? o->checkpoint_records :
							 AUD_CHECKPOINT_RECORDS;
	l->on_checkpoint = o->on_checkpoint;
	l->userdata = o->userdata;
	l->dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dfd < 0) {
		r = -errno;
		goto fail;
	}
	/* aud_verify() may hold a shared lock for an instant (it asks whether we run). */
	for (int i = 0; flock(l->dfd, LOCK_EX | LOCK_NB) < 0; i++) {
		struct timespec pause = { 0, 10 * 1000000L };

		if (errno != EWOULDBLOCK) {
			r = -errno;
			goto fail;
		}
		if (i == AUD_LOCK_TRIES) {
			r = -EBUSY;
			goto fail;
		}
		nanosleep(&pause, NULL);
	}
	r = aud_dir_check(l->dfd, why, sizeof(why));
	if (r < 0)
		goto fail;
	(void)unlinkat(l->dfd, AUD_CHECKPOINT_TMP, 0); /* a checkpoint a crash left half-made */
	r = aud_files_list(l->dfd, &f);
	if (r < 0)
		goto fail;
	r = aud_checkpoint_read(l->dfd, &cp, why, sizeof(why));
	if (r == -ENOENT && f.n == 0) {
		/* A new log: its checkpoint exists before its first record, so a missing
		 * checkpoint always means one was removed. */
		fresh = true;
		memcpy(cp.head, aud_zero_hash, sizeof(cp.head));
	} else if (r == -ENOENT || r == -EBADMSG) {
		r = -EUCLEAN;
		goto fail;
	} else if (r < 0) {
		goto fail;
	}
	r = log_check_tail(l->dfd, &f, &cp, &t);
	if (r < 0)
		goto fail;

	l->seq = t.seq;
	memcpy(l->head, t.head, sizeof(l->head));
	if (t.head_file >= 0) {
		memcpy(l->head_file, f.names[t.head_file], sizeof(l->head_file));
		l->head_offset = t.head_offset;
	}
	if (t.join) {
		l->join = true;
		memcpy(l->join_from, f.names[t.join_from], sizeof(l->join_from));
		l->join_seq = t.join_seq;
		memcpy(l->join_prev, t.join_prev, sizeof(l->join_prev));
	}
	l->checkpointed = cp.count;
	if (f.n) {
		const char *newest = f.names[f.n - 1];
		struct stat st;

		l->fd = openat(l->dfd, newest, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (l->fd < 0 || fstat(l->fd, &st) < 0) {
			r = -errno;
			goto fail;
		}
		memcpy(l->file, newest, sizeof(l->file));
		aud_file_name_parse(newest, &l->month, &l->n);
		l->size = (uint64_t)st.st_size;
		if (t.torn) {
			/* Cut the torn line away before anything else is written after it. */
			l->size = t.torn_offset;
			if (ftruncate(l->fd, (off_t)l->size) < 0 || fdatasync(l->fd) < 0) {
				r = -errno;
				goto fail;
			}
		}
		if (l->size != (t.head_file == (ssize_t)f.n - 1 ? t.head_offset : 0)) {
			r = -EUCLEAN;
			goto fail;
		}
		if (l->size == 0 && f.n > 1) {
			/* A file a crash left empty right after its rotation: the next record
			 * starts it again. */
			if (unlinkat(l->dfd, newest, 0) < 0) {
				r = -errno;
				goto fail;
			}
			(void)fsync(l->dfd);
			close(l->fd);
			l->fd = -1;
			l->file[0] = 0;
		}
	}
	if (fresh || t.torn || l->seq != l->checkpointed) {
		if (t.torn) {
			_cleanup_free_ char *rec = NULL;
			size_t n;

			r = repair_record(l->file[0] ? l->file : f.names[f.n - 1], &t, &rec, &n);
			if (r >= 0)
				r = log_append_compact(l, geteuid(), getpid(), rec, n, NULL, NULL);
			if (r < 0)
				goto fail;
		}
		if (fresh || l->seq != l->checkpointed) {
			r = aud_log_checkpoint(l);
			if (r < 0)
				goto fail;
		}
	}
	free(t.torn_data);
	aud_files_release(&f);
	*ret = l;
	return 0;
fail:
	free(t.torn_data);
	aud_files_release(&f);
	aud_log_close(l);
	return r;
}

struct aud_log *
aud_log_close(struct aud_log *l)
{
	if (!l)
		return NULL;
	if (l->fd >= 0)
		close(l->fd);
	if (l->dfd >= 0)
		close(l->dfd); /* releases the lock */
	free(l);
	return NULL;
}
