/*
 * aud_verify(): walks the whole log once, in constant memory, checking each line's form, its
 * seq (one more than the last) and its prev (the last line's hash), the rotation joins and
 * the checkpoint, and stops at the first fault. What kind of fault it is takes a look at the
 * next line, and for a seq that jumps ahead, one more pass over the rest of the log: a seq that
 * comes back later was reordered, one that never does was removed, a record the chain does not
 * account for was inserted.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aud-internal.h"
#include "pf-util.h"

#define AUD_VERIFY_RETRIES 3   /* rereads of a live log caught in the middle of a write */
#define AUD_VERIFY_WAIT_MS 50

/* One line, as much as the checks need of it once the walker has moved on. */
struct entry {
	bool valid;
	size_t file;
	uint64_t line, offset, end;
	size_t len;
	bool complete, too_long, first_in_file, parsed;
	char why[160];
	uint64_t seq;
	char prev[AUD_HASH_HEX + 1];
	char hash[AUD_HASH_HEX + 1];
};

struct verify {
	int dfd;
	struct aud_files files;
	struct aud_checkpoint cp;
	int cp_state; /* 0 read, -ENOENT missing, -EBADMSG malformed */
	char cp_why[160];
	struct aud_report *rep;

	uint64_t e;                     /* the seq expected next */
	char ph[AUD_HASH_HEX + 1];      /* the hash of the last good record */
	char pph[AUD_HASH_HEX + 1];     /* … and of the one before it */
	struct entry p;                 /* the last good record */
	bool head_ok;                   /* the checkpoint's head was met on the chain */
	ssize_t from_file;              /* the file the current file continues, -1 none */
	uint64_t first_seq;             /* the current file's first record */
	char first_prev[AUD_HASH_HEX + 1];
	bool torn_tail;                 /* the fault is an incomplete last line */
};

static void
entry_from(struct entry *en, const struct aud_walk_line *wl)
{
	struct aud_line al;

	*en = (struct entry){
		.valid = true, .file = wl->file, .line = wl->line, .offset = wl->offset,
		.end = wl->end, .len = wl->len, .complete = wl->complete, .too_long = wl->too_long,
		.first_in_file = wl->first_in_file,
	};
	if (wl->too_long || !wl->complete)
		return;
	aud_line_hash(wl->text, wl->len, en->hash);
	if (aud_line_parse(wl->text, wl->len, &al, en->why, sizeof(en->why)) < 0)
		return;
	en->parsed = true;
	en->seq = al.seq;
	memcpy(en->prev, al.prev, sizeof(en->prev));
}

/* Reads the next line into en; en->valid false at the end. A file that is not a regular file
 * stops the walk as a malformed entry. */
static int
next_entry(struct aud_walk *w, struct entry *en)
{
	struct aud_walk_line wl;
	int r = aud_walk_next(w, &wl);

	memset(en, 0, sizeof(*en));
	if (r > 0) {
		entry_from(en, &wl);
		return 0;
	}
	if (r == -EBADF || r == -ELOOP) {
		*en = (struct entry){ .valid = true, .file = w->file, .line = 0, .too_long = false };
		snprintf(en->why, sizeof(en->why), "not a regular file");
		w->done = true;
		return 0;
	}
	return r;
}

static void _printf_(6, 7)
report(struct verify *v, enum aud_fault fault, const struct entry *at, uint64_t seq,
	bool before_p, const char *fmt, ...)
{
	struct aud_report *rep = v->rep;
	va_list ap;

	rep->fault = fault;
	if (at && at->valid && at->file < v->files.n)
		snprintf(rep->file, sizeof(rep->file), "%s", v->files.names[at->file]);
	else if (v->files.n)
		snprintf(rep->file, sizeof(rep->file), "%s", v->files.names[v->files.n - 1]);
	rep->line = at ? at->line : 0;
	rep->seq = seq;
	/* What was checked good: the records before the bad place. */
	rep->records = before_p ? v->e - 2 : v->e - 1;
	snprintf(rep->head, sizeof(rep->head), "%s", before_p ? v->pph : v->ph);
	va_start(ap, fmt);
	vsnprintf(rep->detail, sizeof(rep->detail), fmt, ap);
	va_end(ap);
}

/* Whether an appender holds the log (paraf-auditd keeps an exclusive flock on the directory):
 * probing takes a shared lock for an instant, which aud_log_open() waits out. */
static bool
log_live(int dfd)
{
	if (flock(dfd, LOCK_SH | LOCK_NB) == 0) {
		(void)flock(dfd, LOCK_UN);
		return false;
	}
	return errno == EWOULDBLOCK;
}

/* Whether the file grows past end while an appender runs: a write in progress. */
static bool
file_grew(int dfd, const char *name, uint64_t end)
{
	struct timespec pause = { 0, AUD_VERIFY_WAIT_MS * 1000000L };
	struct stat st;

	if (!log_live(dfd))
		return false;
	nanosleep(&pause, NULL);
	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (uint64_t)st.st_size > end;
}

struct rest {
	bool found_e, dup, onchain;
};

/* The rest of the log after entry l: does seq e come later, does l's seq come again, and
 * does anything link to l (or l to anything), which a record in the wrong place does and an
 * inserted one does not. */
static int
scan_rest(struct verify *v, const struct entry *l, struct rest *ret)
{
	struct aud_walk w;
	struct entry en;
	struct rest rs = {};
	int r;

	rs.onchain = v->cp_state == 0 && streq(v->cp.head, l->hash);
	r = aud_walk_init(&w, v->dfd, &v->files, l->file, l->end, 0);
	if (r < 0)
		return r;
	while ((r = next_entry(&w, &en)) == 0 && en.valid) {
		if (!en.parsed)
			continue;
		if (en.seq == v->e)
			rs.found_e = true;
		if (en.seq == l->seq)
			rs.dup = true;
		if (streq(en.prev, l->hash) || streq(en.hash, l->prev))
			rs.onchain = true;
	}
	aud_walk_release(&w);
	if (r < 0)
		return r;
	*ret = rs;
	return 0;
}

static const char *
name_of(struct verify *v, size_t file)
{
	return file < v->files.n ? v->files.names[file] : "?";
}

/* l breaks the chain (seq or prev): says what and where. */
static int
classify(struct verify *v, const struct entry *l, const struct entry *n)
{
	const struct entry *p = v->p.valid ? &v->p : NULL;
	bool at_join = l->first_in_file && p && p->file != l->file;
	struct rest rs;
	int r;

	if (l->seq == v->e) {
		/* The seq is right, the link is not. */
		if (n && n->valid && n->parsed && n->seq == v->e && streq(n->prev, v->ph)) {
			report(v, AUD_INSERTED, l, v->e, false, "seq %" PRIu64 " appears twice and "
				"this one is not on the chain: the next record follows seq %" PRIu64,
				v->e, v->e - 1);
			return 0;
		}
		if (at_join) {
			/* The checkpoint's join remembers how its file began. */
			if (v->cp_state == 0 && v->cp.join && streq(v->cp.file, name_of(v, l->file)) &&
			    v->cp.join_seq == l->seq && streq(v->cp.join_prev, l->prev)) {
				report(v, AUD_EDITED, p, p->seq, true, "the record was changed: %s "
					"begins from another hash (%.16s…), as the checkpoint says",
					name_of(v, l->file), l->prev);
				return 0;
			}
			report(v, AUD_BROKEN_JOIN, l, v->e, false, "%s does not begin from the last "
				"record of %s (seq %" PRIu64 ", hash %.16s…): its prev is %.16s…",
				name_of(v, l->file), name_of(v, p->file), p->seq, v->ph, l->prev);
			return 0;
		}
		if (p && v->head_ok && p->seq == v->cp.count) {
			/* The record before is the checkpoint's head, so it is this one that is
			 * wrong. */
			if (!n || !n->valid)
				report(v, AUD_INSERTED, l, v->e, false, "a record that does not follow "
					"the checkpoint's head (seq %" PRIu64 "): its prev is %.16s…",
					p->seq, l->prev);
			else
				report(v, AUD_EDITED, l, v->e, false, "its prev (%.16s…) is not the "
					"hash of seq %" PRIu64 ", which the checkpoint confirms", l->prev,
					p->seq);
			return 0;
		}
		if (p) {
			report(v, AUD_EDITED, p, p->seq, true, "the record was changed: the next "
				"record's prev (%.16s…) is not its hash (%.16s…)", l->prev, v->ph);
			return 0;
		}
		report(v, AUD_EDITED, l, v->e, false, "the first record's prev is not 64 zeros");
		return 0;
	}
	if (streq(l->prev, v->ph)) {
		report(v, AUD_EDITED, l, v->e, false, "its seq is %" PRIu64 " where the chain has "
			"%" PRIu64 ": the record was changed", l->seq, v->e);
		return 0;
	}
	if (l->seq < v->e) {
		if (p && l->seq == v->e - 1 && streq(l->prev, v->pph)) {
			report(v, AUD_INSERTED, p, p->seq, true, "seq %" PRIu64 " appears twice and "
				"this one is not on the chain: the next record follows seq %" PRIu64,
				p->seq, p->seq - 1);
			return 0;
		}
		report(v, AUD_INSERTED, l, v->e, false, "seq %" PRIu64 " appears again after seq "
			"%" PRIu64, l->seq, v->e - 1);
		return 0;
	}
	r = scan_rest(v, l, &rs);
	if (r < 0)
		return r;
	if (rs.dup)
		report(v, AUD_INSERTED, l, v->e, false, "seq %" PRIu64 " appears twice: this copy "
			"is not on the chain", l->seq);
	else if (rs.found_e && rs.onchain)
		report(v, AUD_REORDERED, l, v->e, false, "seq %" PRIu64 " comes before seq %"
			PRIu64 ", which is later in the log", l->seq, v->e);
	else if (rs.found_e)
		report(v, AUD_INSERTED, l, v->e, false, "a record the chain does not account for "
			"(seq %" PRIu64 ", while seq %" PRIu64 " comes later)", l->seq, v->e);
	else if (v->e == 1)
		report(v, AUD_REMOVED, l, v->e, false, "the log begins with seq %" PRIu64 ": seq 1%s "
			"missing", l->seq, l->seq == 2 ? " is" : " and more are");
	else if (l->seq == v->e + 1)
		report(v, AUD_REMOVED, l, v->e, false, "seq %" PRIu64 " is missing%s: the record "
			"after seq %" PRIu64 " is seq %" PRIu64, v->e,
			at_join ? " where this file begins" : "", v->e - 1, l->seq);
	else
		report(v, AUD_REMOVED, l, v->e, false, "seq %" PRIu64 " to %" PRIu64 " are "
			"missing%s: the record after seq %" PRIu64 " is seq %" PRIu64, v->e, l->seq - 1,
			at_join ? " where this file begins" : "", v->e - 1, l->seq);
	return 0;
}

/* l is the record the checkpoint names: it must be the head, where the checkpoint says, in a
 * file joined as it says. n is the line after it. */
static void
check_head(struct verify *v, const struct entry *l, const struct entry *n, bool *ret_bad)
{
	const char *name = name_of(v, l->file);

	*ret_bad = true;
	if (!streq(l->hash, v->cp.head)) {
		if (n && n->valid && n->parsed && n->seq == l->seq && streq(n->prev, l->prev) &&
		    streq(n->hash, v->cp.head))
			report(v, AUD_INSERTED, l, v->e, false, "seq %" PRIu64 " appears twice and "
				"this one is not on the chain: the next one is the checkpoint's head",
				l->seq);
		else if (streq(name, v->cp.file) && l->end == v->cp.offset)
			report(v, AUD_EDITED, l, v->e, false, "the checkpoint's head is %.16s…, this "
				"record's hash %.16s…: it or a record before it was changed and the "
				"chain written again", v->cp.head, l->hash);
		else
			report(v, AUD_TRUNCATED, l, v->e, false, "the checkpoint's head (seq %" PRIu64
				", %.16s… in %s at offset %" PRIu64 ") is not on the chain: the log was "
				"cut and written again", v->cp.count, v->cp.head, v->cp.file,
				v->cp.offset);
		return;
	}
	if (!streq(name, v->cp.file) || l->end != v->cp.offset) {
		report(v, AUD_BROKEN_JOIN, l, v->e, false, "the checkpoint puts seq %" PRIu64 " in %s "
			"at offset %" PRIu64 ", it is in %s at offset %" PRIu64, v->cp.count,
			v->cp.file, v->cp.offset, name, l->end);
		return;
	}
	if (v->cp.join != (v->from_file >= 0) ||
	    (v->cp.join && (!streq(v->cp.join_from, name_of(v, (size_t)v->from_file)) ||
			       v->cp.join_seq != v->first_seq ||
			       !streq(v->cp.join_prev, v->first_prev)))) {
		struct entry first = { .valid = true, .file = l->file, .line = 1 };

		if (v->cp.join)
			report(v, AUD_BROKEN_JOIN, &first, v->first_seq, false, "the checkpoint says "
				"%s continues %s from seq %" PRIu64 " (prev %.16s…)", name,
				v->cp.join_from, v->cp.join_seq, v->cp.join_prev);
		else
			report(v, AUD_BROKEN_JOIN, &first, v->first_seq, false, "the checkpoint says "
				"%s is the first file of the log", name);
		return;
	}
	v->head_ok = true;
	*ret_bad = false;
}

/* Checks one entry; 1 when it is good (and becomes the last good record), 0 when a fault was
 * reported. */
static int
check_entry(struct verify *v, const struct entry *l, const struct entry *n)
{
	bool bad;
	int r;

	if (!l->complete || l->too_long || !l->parsed) {
		if (l->too_long)
			report(v, AUD_MALFORMED, l, v->e, false, "a line longer than %u bytes",
				AUD_LINE_MAX);
		else if (!l->complete && l->len == 0 && l->why[0])
			report(v, AUD_MALFORMED, l, v->e, false, "%s", l->why);
		else if (!l->complete && l->file == v->files.n - 1 && !(n && n->valid) &&
			 v->cp_state == 0 && v->cp.count >= v->e)
			report(v, AUD_TRUNCATED, l, v->e, false, "the log ends inside seq %" PRIu64
				" (%zu bytes of its line are left); the checkpoint says %" PRIu64
				" records", v->e, l->len, v->cp.count);
		else if (!l->complete && l->file == v->files.n - 1 && !(n && n->valid)) {
			v->torn_tail = true;
			report(v, AUD_MALFORMED, l, v->e, false, "an incomplete last line (%zu bytes "
				"without a newline): a crash while appending, which paraf-auditd cuts "
				"away when it starts", l->len);
		} else if (!l->complete) {
			report(v, AUD_MALFORMED, l, v->e, false, "the file ends without a newline");
		} else {
			report(v, AUD_MALFORMED, l, v->e, false, "%s", l->why);
		}
		return 0;
	}
	if (l->first_in_file) {
		v->from_file = v->p.valid && v->p.file != l->file ? (ssize_t)v->p.file : -1;
		v->first_seq = l->seq;
		memcpy(v->first_prev, l->prev, sizeof(v->first_prev));
	}
	if (l->seq != v->e || !streq(l->prev, v->ph)) {
		r = classify(v, l, n);
		return r < 0 ? r : 0;
	}
	if (v->cp_state == 0 && v->cp.count == l->seq) {
		check_head(v, l, n, &bad);
		if (bad)
			return 0;
	}
	memcpy(v->pph, v->ph, sizeof(v->pph));
	memcpy(v->ph, l->hash, sizeof(v->ph));
	v->p = *l;
	v->e++;
	return 1;
}

static int
verify_once(int dfd, struct aud_report *ret, bool *ret_live_tail)
{
	struct aud_report rep = {};
	struct verify v = { .rep = &rep, .e = 1, .from_file = -1 };
	struct aud_walk w;
	struct entry cur, nxt;
	int r;

	v.dfd = dfd;
	memcpy(v.ph, aud_zero_hash, sizeof(v.ph));
	memcpy(v.pph, aud_zero_hash, sizeof(v.pph));
	/* The checkpoint first: on a live log, every file it names is then in the listing. */
	v.cp_state = aud_checkpoint_read(v.dfd, &v.cp, v.cp_why, sizeof(v.cp_why));
	if (v.cp_state < 0 && v.cp_state != -ENOENT && v.cp_state != -EBADMSG)
		return v.cp_state;
	r = aud_files_list(v.dfd, &v.files);
	if (r < 0)
		return r;
	r = aud_walk_init(&w, v.dfd, &v.files, 0, 0, 1);
	if (r < 0)
		goto out;
	r = next_entry(&w, &cur);
	while (r >= 0 && cur.valid) {
		r = next_entry(&w, &nxt);
		if (r < 0)
			break;
		r = check_entry(&v, &cur, &nxt);
		if (r <= 0)
			break;
		cur = nxt;
	}
	aud_walk_release(&w);
	if (r < 0)
		goto out;
	if (rep.fault == AUD_OK) {
		struct entry end = v.p;

		if (end.valid)
			end.line++;
		if (v.cp_state == -ENOENT && v.files.n) {
			report(&v, AUD_TRUNCATED, NULL, v.e, false, "the checkpoint is missing: the "
				"log cannot be shown complete");
			snprintf(rep.file, sizeof(rep.file), "%s", AUD_CHECKPOINT_FILE);
		} else if (v.cp_state == -EBADMSG) {
			report(&v, AUD_MALFORMED, NULL, v.e, false, "%s", v.cp_why);
			snprintf(rep.file, sizeof(rep.file), "%s", AUD_CHECKPOINT_FILE);
			rep.line = 1;
		} else if (v.cp_state == 0 && v.cp.count > v.e - 1) {
			report(&v, AUD_TRUNCATED, end.valid ? &end : NULL, v.e, false, "the log ends "
				"after seq %" PRIu64 ", the checkpoint says %" PRIu64 " records (head "
				"%.16s… in %s)", v.e - 1, v.cp.count, v.cp.head, v.cp.file);
		} else {
			report(&v, AUD_OK, v.p.valid ? &v.p : NULL, v.e - 1, false, "%" PRIu64
				" records, %" PRIu64 " of them after the checkpoint", v.e - 1,
				v.e - 1 - (v.cp_state == 0 ? v.cp.count : 0));
		}
	}
	*ret = rep;
	*ret_live_tail = v.torn_tail && cur.valid && cur.file < v.files.n &&
		file_grew(v.dfd, v.files.names[cur.file], cur.end);
	r = 0;
out:
	aud_files_release(&v.files);
	return r;
}

int
aud_verify(const char *dir, struct aud_report *ret)
{
	int dfd, r;
	bool live;

	if (!dir || !ret)
		return -EINVAL;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	/* An incomplete last line may be a write in progress on a live log: when its file grows
	 * meanwhile, read the log again. */
	for (int attempt = 0;; attempt++) {
		r = verify_once(dfd, ret, &live);
		if (r < 0 || !live || attempt == AUD_VERIFY_RETRIES)
			break;
	}
	close(dfd);
	return r;
}
