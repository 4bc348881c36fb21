/*
 * The signed PDF's output file: a temporary file beside the final name, filled by streaming
 * (the source is copied in PDF_COPY_CHUNK reads, never held whole in memory), patched in
 * place with the CMS, synced, then renamed into place, so that a reader never sees half a
 * file and a failure leaves nothing behind. cli_file_write_atomic() does the same for data
 * already in memory; a 100 MB PDF is not, hence this streaming twin.
 */
#include "pdf-write.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pf-util.h"

#define PDF_COPY_CHUNK (256u * 1024)

int
pdf_out_open(const char *path, struct pdf_out *ret)
{
	_cleanup_free_ char *dcopy = NULL, *bcopy = NULL;
	struct pdf_out o = { .fd = -1 };
	const char *dir, *base;

	dcopy = strdup(path);
	bcopy = strdup(path);
	o.path = strdup(path);
	if (!dcopy || !bcopy || !o.path) {
		free(o.path);
		return -ENOMEM;
	}
	dir = dirname(dcopy);
	base = basename(bcopy);
	if (strlen(base) + 9 > NAME_MAX)
		base = "paraf";
	if (asprintf(&o.tmp, "%s/.%s.XXXXXX", dir, base) < 0) {
		free(o.path);
		return -ENOMEM;
	}
	o.fd = mkostemp(o.tmp, O_CLOEXEC);
	if (o.fd < 0 || fchmod(o.fd, 0644) < 0) {
		int r = pf_negerrno();

		if (o.fd >= 0) {
			close(o.fd);
			(void)unlink(o.tmp);
		}
		free(o.tmp);
		free(o.path);
		return r;
	}
	*ret = o;
	return 0;
}

int
pdf_out_write(struct pdf_out *o, const void *p, size_t n)
{
	const uint8_t *c = p;

	while (n > 0) {
		ssize_t k = write(o->fd, c, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return pf_negerrno();
		}
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

int
pdf_out_copy(struct pdf_out *o, int fd, uint64_t size, EVP_MD_CTX *ctx)
{
	_cleanup_free_ uint8_t *buf = malloc(PDF_COPY_CHUNK);
	uint64_t done = 0;
	int r;

	if (!buf)
		return -ENOMEM;
	while (done < size) {
		size_t want = size - done < PDF_COPY_CHUNK ? (size_t)(size - done) : PDF_COPY_CHUNK;
		ssize_t k = pread(fd, buf, want, (off_t)done);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return pf_negerrno();
		}
		if (k == 0)
			return -ESTALE; /* the file shrank since it was read */
		if (ctx && !EVP_DigestUpdate(ctx, buf, (size_t)k))
			return -EIO;
		r = pdf_out_write(o, buf, (size_t)k);
		if (r < 0)
			return r;
		done += (size_t)k;
	}
	/* And it must not have grown either: the update goes after its last byte. */
	if (pread(fd, buf, 1, (off_t)size) != 0)
		return -ESTALE;
	return 0;
}

/* Renames without replacing an existing target, on filesystems with and without renameat2. */
static int
rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return pf_negerrno();
	if (link(from, to) < 0)
		return pf_negerrno();
	(void)unlink(from);
	return 0;
}

int
pdf_out_commit(struct pdf_out *o, bool overwrite)
{
	_cleanup_free_ char *dcopy = NULL;
	int r, dfd;

	if (fsync(o->fd) < 0)
		return pf_negerrno();
	r = close(o->fd);
	o->fd = -1;
	if (r < 0)
		return pf_negerrno();
	r = overwrite ? (rename(o->tmp, o->path) < 0 ? pf_negerrno() : 0) :
			rename_noreplace(o->tmp, o->path);
	if (r < 0)
		return r;
	/* Cleared before it is freed: a signal handler may be reading it (pdf-write.h). */
	dcopy = o->tmp;
	o->tmp = NULL;
	free(dcopy);
	dcopy = NULL;
	/* The new name must survive a crash as well as the bytes. */
	dcopy = strdup(o->path);
	if (dcopy) {
		dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
	return 0;
}

void
pdf_out_discard(struct pdf_out *o)
{
	char *tmp;

	/* A zeroed struct has fd 0 but no temporary file: nothing of it is ours. */
	if (o->tmp) {
		if (o->fd >= 0)
			close(o->fd);
		(void)unlink(o->tmp);
	}
	o->fd = -1;
	tmp = o->tmp;
	o->tmp = NULL;
	free(tmp);
	free(o->path);
	o->path = NULL;
}
