/*
 * Reading a log directory: its files in order, and their lines streamed one at a time with a
 * fixed buffer, so a log of any length is read in constant memory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aud-internal.h"
#include "pf-util.h"

#define AUD_READ_CHUNK (64u * 1024u)

static int
name_cmp(const void *a, const void *b)
{
	/* audit-YYYYMM-NNN.log with fixed widths: the byte order is the time order. */
	return strcmp(a, b);
}

int
aud_files_list(int dfd, struct aud_files *ret)
{
	struct aud_files f = {};
	size_t cap = 0;
	DIR *d;
	struct dirent *de;
	int fd, r = 0;

	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	errno = 0;
	while ((de = readdir(d))) {
		unsigned month, n;

		if (aud_file_name_parse(de->d_name, &month, &n) < 0)
			continue;
		if (f.n == AUD_FILES_MAX) {
			r = -E2BIG;
			break;
		}
		if (f.n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			void *p = realloc(f.names, ncap * sizeof(*f.names));
			if (!p) {
				r = -ENOMEM;
				break;
			}
			f.names = p;
			cap = ncap;
		}
		/* A parsed name is exactly 20 bytes. */
		memcpy(f.names[f.n++], de->d_name, strlen(de->d_name) + 1);
		errno = 0;
	}
	if (!r && errno)
		r = -errno;
	closedir(d);
	if (r < 0) {
		free(f.names);
		return r;
	}
	if (f.n)
		qsort(f.names, f.n, sizeof(*f.names), name_cmp);
	*ret = f;
	return 0;
}

void
aud_files_release(struct aud_files *f)
{
	free(f->names);
	f->names = NULL;
	f->n = 0;
}

ssize_t
aud_files_find(const struct aud_files *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (streq(f->names[i], name))
			return (ssize_t)i;
	return -1;
}

/* Opens a log file for reading: a regular file, never through a symlink. */
static int
open_log_file(int dfd, const char *name)
{
	struct stat st;
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EBADF;
	}
	return fd;
}

int
aud_walk_init(struct aud_walk *w, int dfd, const struct aud_files *files, size_t file,
	uint64_t offset, uint64_t first_line)
{
	memset(w, 0, sizeof(*w));
	w->dfd = dfd;
	w->files = files;
	w->file = file;
	w->fd = -1;
	w->buf = malloc(AUD_LINE_MAX + AUD_READ_CHUNK);
	if (!w->buf)
		return -ENOMEM;
	w->buf_offset = offset;
	w->line = first_line ? first_line - 1 : 0;
	w->started_mid = offset > 0;
	return 0;
}

void
aud_walk_release(struct aud_walk *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	free(w->buf);
	w->buf = NULL;
}

/* Reads more of the current file into the buffer: > 0 bytes read, 0 at its end. */
static int
walk_fill(struct aud_walk *w)
{
	ssize_t n;

	if (w->start > 0) {
		memmove(w->buf, w->buf + w->start, w->end - w->start);
		w->buf_offset += w->start;
		w->end -= w->start;
		w->start = 0;
	}
	do
		n = pread(w->fd, w->buf + w->end, AUD_LINE_MAX + AUD_READ_CHUNK - w->end,
			(off_t)(w->buf_offset + w->end));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	w->end += (size_t)n;
	return n > 0;
}

int
aud_walk_next(struct aud_walk *w, struct aud_walk_line *ret)
{
	for (;;) {
		char *nl;
		int r;

		if (w->done || w->file >= w->files->n)
			return 0;
		if (w->fd < 0) {
			r = open_log_file(w->dfd, w->files->names[w->file]);
			if (r < 0)
				return r;
			w->fd = r;
			w->start = w->end = 0;
			w->eof = false;
		}
		nl = memchr(w->buf + w->start, '\n', w->end - w->start);
		if (!nl && !w->eof && w->end - w->start <= AUD_LINE_MAX) {
			r = walk_fill(w);
			if (r < 0)
				return r;
			if (r == 0)
				w->eof = true;
			continue;
		}
		if (!nl && w->start == w->end) {
			/* This file is done: on to the next, from its start. */
			close(w->fd);
			w->fd = -1;
			w->file++;
			w->buf_offset = 0;
			w->line = 0;
			w->started_mid = false;
			continue;
		}
		*ret = (struct aud_walk_line){
			.file = w->file,
			.offset = w->buf_offset + w->start,
			.text = w->buf + w->start,
			.first_in_file = !w->started_mid && w->buf_offset + w->start == 0,
		};
		ret->line = w->started_mid ? 0 : ++w->line;
		if (nl && (size_t)(nl - (w->buf + w->start)) <= AUD_LINE_MAX) {
			ret->len = (size_t)(nl - (w->buf + w->start));
			ret->complete = true;
			w->start += ret->len + 1;
		} else if (!nl && w->eof) {
			ret->len = w->end - w->start;
			w->start = w->end;
		} else {
			/* Longer than any stored line: report its start, skip to its end. */
			ret->len = AUD_LINE_MAX;
			ret->too_long = true;
			w->start = w->end;
			w->done = true; /* where it ends is unknown: the walk stops here */
		}
		ret->end = w->buf_offset + w->start;
		return 1;
	}
}

int
aud_line_read_before(int dfd, const char *name, uint64_t offset, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	uint64_t from;
	size_t n, start;
	ssize_t k;
	char *line;

	if (offset == 0)
		return -EBADMSG;
	fd = open_log_file(dfd, name);
	if (fd < 0)
		return fd == -ENOENT ? -EBADMSG : fd;
	from = offset > AUD_LINE_MAX + 1 ? offset - (AUD_LINE_MAX + 1) : 0;
	n = (size_t)(offset - from);
	buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	do
		k = pread(fd, buf, n, (off_t)from);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return -errno;
	if ((size_t)k != n || buf[n - 1] != '\n')
		return -EBADMSG;
	start = n - 1;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	if (start == 0 && from > 0)
		return -EBADMSG; /* longer than any line */
	line = malloc(n - start);
	if (!line)
		return -ENOMEM;
	memcpy(line, buf + start, n - 1 - start);
	line[n - 1 - start] = 0;
	*ret = line;
	*ret_len = n - 1 - start;
	return 0;
}
