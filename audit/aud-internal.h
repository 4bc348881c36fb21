/*
 * What the pieces of the audit library share and nobody outside audit/ includes: the stored
 * line's parser and writer, file names, the streaming reader over a log directory, the
 * checkpoint file, and the directory's ownership check.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "aud.h"

/* A stored line (client record plus envelope, or a repair record carrying a torn line as hex):
 * a longer line is malformed, and the reader never buffers more. */
#define AUD_LINE_MAX (4u * AUD_RECORD_MAX)
/* A torn final line longer than any line the service writes is not a crash: not repaired. */
#define AUD_TORN_MAX (AUD_RECORD_MAX + 1024u)
#define AUD_JSON_DEPTH_MAX 32       /* nesting of a record */
#define AUD_FILES_MAX 100000u       /* log files in one directory */
#define AUD_FILE_SEQ_MAX 999u       /* NNN of audit-YYYYMM-NNN.log: names sort as numbers */
#define AUD_CHECKPOINT_MAX 4096u    /* bytes of a checkpoint file */
#define AUD_NAME_MAX 64             /* a log file's name, NUL included */
#define AUD_TIME_LEN 20             /* "YYYY-MM-DDTHH:MM:SSZ" */

#define AUD_CHECKPOINT_FILE "checkpoint"
#define AUD_CHECKPOINT_TMP "checkpoint.tmp"

extern const char aud_zero_hash[AUD_HASH_HEX + 1];

/* aud-record.c ----------------------------------------------------------------------------- */

/* Checks that json is one strict JSON object (UTF-8, no lone surrogate escapes, no control
 * characters in strings, nesting at most AUD_JSON_DEPTH_MAX) and returns it without the
 * whitespace outside its strings (malloc'd, NUL-terminated). -EMSGSIZE over max bytes,
 * -EINVAL not such an object, -ENOMEM. */
int aud_record_compact(const char *json, size_t len, size_t max, char **ret, size_t *ret_len);
/* 1 when the text is a strict JSON object already compact, else 0. */
int aud_record_is_compact(const char *json, size_t len);

/* "YYYY-MM-DDTHH:MM:SSZ" (UTC) and YYYYMM of t. */
int aud_time_format(time_t t, char ret[AUD_TIME_LEN + 1]);
unsigned aud_time_month(time_t t);

/* The stored line for these fields (no newline; malloc'd). */
int aud_line_format(uint64_t seq, time_t t, uid_t uid, pid_t pid, const char *prev,
	const char *record, size_t record_len, char **ret, size_t *ret_len);

struct aud_line {
	uint64_t seq;
	uint32_t uid, pid;
	char prev[AUD_HASH_HEX + 1];
	size_t record_off, record_len; /* the "record" object within the line */
};
/* Parses a stored line (without its newline): the envelope exactly as aud_line_format()
 * writes it, the record a compact strict JSON object. -EBADMSG with a reason in why. */
int aud_line_parse(const char *line, size_t len, struct aud_line *ret, char *why, size_t why_size);

/* audit-YYYYMM-NNN.log: 0 and the parts when name is exactly such a name, else -EINVAL. */
int aud_file_name_parse(const char *name, unsigned *ret_month, unsigned *ret_n);
void aud_file_name_format(unsigned month, unsigned n, char ret[AUD_NAME_MAX]);

int aud_hex_valid(const char *s, size_t n); /* n lower-case hex digits */

/* aud-scan.c ------------------------------------------------------------------------------- */

/* The log files of a directory, oldest first. */
struct aud_files {
	char (*names)[AUD_NAME_MAX];
	size_t n;
};
int aud_files_list(int dfd, struct aud_files *ret);
void aud_files_release(struct aud_files *f);
/* The index of name in f, or -1. */
ssize_t aud_files_find(const struct aud_files *f, const char *name);

/* One line of the log as the walker returns it. text is valid until the next call. */
struct aud_walk_line {
	size_t file;         /* index into the file list */
	uint64_t line;       /* 1-based within the file (0 when the walk started mid-file) */
	uint64_t offset;     /* where it starts in its file */
	uint64_t end;        /* just past its newline (or its last byte when incomplete) */
	const char *text;    /* without the newline */
	size_t len;
	bool complete;       /* ends with a newline */
	bool too_long;       /* longer than AUD_LINE_MAX: text holds only its start */
	bool first_in_file;
};

/* Streams the lines of the listed files in order, from file `file` at byte `offset` (a line
 * start) on; line numbers count from first_line. Constant memory. */
struct aud_walk {
	int dfd;
	const struct aud_files *files;
	size_t file;
	int fd;
	char *buf;
	size_t start, end;     /* unread bytes in buf */
	uint64_t buf_offset;   /* file offset of buf[0] */
	uint64_t line;
	bool eof;
	bool started_mid;      /* the first file was entered at an offset > 0 */
	bool done;             /* stopped after a line too long to find its end */
};
int aud_walk_init(struct aud_walk *w, int dfd, const struct aud_files *files, size_t file,
	uint64_t offset, uint64_t first_line);
/* 1: a line in *ret; 0: the end of the log; < 0: the file w->file could not be read (-ELOOP
 * for a symlink, -EBADF for a file that is not a regular file, -errno). */
int aud_walk_next(struct aud_walk *w, struct aud_walk_line *ret);
void aud_walk_release(struct aud_walk *w);

/* Reads the complete line that ends (newline included) at offset in file name. -EBADMSG when
 * there is no such line. Returns the text (malloc'd, no newline). */
int aud_line_read_before(int dfd, const char *name, uint64_t offset, char **ret, size_t *ret_len);

/* aud-checkpoint.c ------------------------------------------------------------------------- */

struct aud_checkpoint {
	uint64_t count;
	char head[AUD_HASH_HEX + 1];
	char file[AUD_NAME_MAX];       /* "" when count is 0 */
	uint64_t offset;
	char time[AUD_TIME_LEN + 1];
	bool join;                     /* file continues another: */
	char join_from[AUD_NAME_MAX];  /* the previous file */
	uint64_t join_seq;             /* the first seq in file */
	char join_prev[AUD_HASH_HEX + 1]; /* its prev: the last hash of join_from */
};
/* -ENOENT: none; -EBADMSG: not a checkpoint (why says what). */
int aud_checkpoint_read(int dfd, struct aud_checkpoint *ret, char *why, size_t why_size);
int aud_checkpoint_format(const struct aud_checkpoint *c, char **ret);
/* Temp file, fsync, rename, fsync of the directory. */
int aud_checkpoint_write(int dfd, const char *text);

/* aud-log.c -------------------------------------------------------------------------------- */

/* 0 when the directory is a directory owned by us, and it and every log file and checkpoint in
 * it are regular files owned by us that nobody else may write; else -EPERM and why. */
int aud_dir_check(int dfd, char *why, size_t why_size);
/* Records appended since the last checkpoint. */
uint64_t aud_log_uncheckpointed(const struct aud_log *l);
