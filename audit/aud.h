/*
 * The audit log (R13, R14, R15): records appended by paraf-auditd, one JSON object per line,
 * each carrying the SHA-256 of the line before it (a hash chain), with checkpoints that make
 * truncation visible, rotated by size or month without breaking the chain.
 *
 * Files in the log directory (default /var/lib/paraf/audit):
 *   audit-YYYYMM-NNN.log   records, oldest file first (the name sorts in order)
 *   checkpoint             {"count", "head", "file", "offset", "time", "join"}: written atomically
 * (count records, the last one's hash, the file it is in and the offset just past it; join
 * names how that file continues the previous one, or is null: doc/audit.md)
 *
 * A stored record (one line, no spaces outside strings, keys in this order):
 *   {"seq":N,"time":"…Z","uid":U,"pid":P,"prev":"<64 hex>","record":{…what the sender sent…}}
 * `uid` and `pid` come from SO_PEERCRED of the sender, never from the record (a record that
 * claims another uid keeps its claim inside "record", where it means nothing). `prev` of the
 * very first record is 64 zeros; the first record of a rotated file has the previous file's
 * last hash. The hash of a record is SHA-256 over its line without the newline.
 *
 * The wire protocol on the audit socket (/run/paraf/audit.sock): the client sends one JSON
 * object per line (at most AUD_RECORD_MAX bytes); the service answers one line per record,
 * only after the record is on disk (fdatasync):
 *   ok <seq> <hash>\n
 *   error <reason>\n        reason: too-large, not-json, disk-full, io-error, internal
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AUD_RECORD_MAX (64u * 1024u)          /* one record line from a client */
#define AUD_FILE_MAX_DEFAULT (64u * 1024u * 1024u) /* rotate past this size */
#define AUD_CHECKPOINT_RECORDS 100            /* a checkpoint at least every N records */
#define AUD_CHECKPOINT_SECONDS 60             /* … and every T seconds */
#define AUD_HASH_HEX 64

/* Verification results: the first bad place, what is wrong there. */
enum aud_fault {
	AUD_OK = 0,
	AUD_EDITED,     /* a record's content changed: the next record's prev does not match */
	AUD_REMOVED,    /* a gap in seq */
	AUD_REORDERED,  /* seq goes backwards */
	AUD_INSERTED,   /* a seq appears twice, or a record the chain does not account for */
	AUD_TRUNCATED,  /* fewer records, or another head, than the last checkpoint says */
	AUD_MALFORMED,  /* not a stored record line */
	AUD_BROKEN_JOIN /* a rotated file does not start from the previous file's head */
};

struct aud_report {
	enum aud_fault fault;
	char file[256];   /* where */
	uint64_t line;    /* 1-based line in that file */
	uint64_t seq;     /* the seq expected there */
	char detail[256];
	uint64_t records; /* records checked */
	char head[AUD_HASH_HEX + 1];
};

const char *aud_fault_to_string(enum aud_fault f);

/* Hash of one stored line (without its newline), as 64 lower-case hex digits. */
void aud_line_hash(const char *line, size_t len, char ret[AUD_HASH_HEX + 1]);

/* Verifies every link, every checkpoint and every rotation join of the log in dir.
 * 0: the log was read and *ret says whether it is intact (fault AUD_OK) or where the first
 * fault is; < 0: the log could not be read (-ENOENT, -EACCES, -ENOMEM, -EIO). */
int aud_verify(const char *dir, struct aud_report *ret);

/* The appending side (paraf-auditd). */
struct aud_log;
struct aud_log_options {
	const char *dir;
	uint64_t file_max;      /* rotate past this size (0: AUD_FILE_MAX_DEFAULT) */
	unsigned checkpoint_records, checkpoint_seconds;
	/* Called with the checkpoint's JSON text after each checkpoint is written (for the
	 * journal); may be NULL. */
	void (*on_checkpoint)(const char *json, void *userdata);
	void *userdata;
};
/* Opens the log: finds the newest file, repairs a torn final line (truncating to the last
 * complete record and recording the repair as a record of its own), checks the chain's tail
 * against the checkpoint. -EPERM: the directory or a file in it is writable by another user;
 * -EBUSY: another process has the log open; -EUCLEAN: the log does not match its checkpoint
 * or is damaged beyond a torn final line (nothing is changed: run aud_verify). */
int aud_log_open(const struct aud_log_options *o, struct aud_log **ret);
struct aud_log *aud_log_close(struct aud_log *l);
/* Appends one record from a peer; returns after fdatasync with its seq and hash.
 * -ENOSPC / -EIO: nothing acknowledged. -EMSGSIZE: longer than AUD_RECORD_MAX; -EINVAL: not
 * one strict JSON object in UTF-8 (it is stored compacted: whitespace outside strings goes). */
int aud_log_append(struct aud_log *l, uid_t uid, pid_t pid, const char *json, size_t len,
	uint64_t *ret_seq, char ret_hash[AUD_HASH_HEX + 1]);
/* Writes the checkpoint now (atomically: temp file, fsync, rename, fsync of the directory). */
int aud_log_checkpoint(struct aud_log *l);

/* The client side (parafd, paraf admin): one connection, one record at a time. */
struct aud_client;
int aud_client_connect(const char *socket_path, struct aud_client **ret);
struct aud_client *aud_client_free(struct aud_client *c);
/* Sends one record (a JSON object, no newline) and waits for the answer (timeout_ms).
 * 0: acknowledged (on disk); -ENOSPC/-EIO: the service could not store it; -ECONNREFUSED,
 * -ENOENT, -ETIMEDOUT, -EPIPE, -EPROTO: no service (the connection is dropped; the next send
 * connects again); -EMSGSIZE, -EINVAL: the service refused the record (too large, not a JSON
 * object). timeout_ms 0 waits without limit. */
int aud_client_send(struct aud_client *c, const char *json, size_t len, unsigned timeout_ms,
	uint64_t *ret_seq);
