/*
 * Files for `paraf sign` and `paraf verify`: documents are hashed by streaming them through
 * OpenSSL in CLI_HASH_CHUNK reads (a document is never held in memory whole), signatures are
 * written atomically (a temporary file in the same directory, fsync, rename), and small inputs
 * are read whole under a named cap.
 */
#include "cli.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

int
cli_file_digest(const char *path, const EVP_MD *md, unsigned char *out, unsigned *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ unsigned char *buf = NULL;
	EVP_MD_CTX *ctx = NULL;
	struct stat st;
	unsigned len;
	int r;

	/* O_NONBLOCK: opening a FIFO must not hang; regular files ignore it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return pf_negerrno();
	if (fstat(fd, &st) < 0)
		return pf_negerrno();
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	buf = malloc(CLI_HASH_CHUNK);
	ctx = EVP_MD_CTX_new();
	if (!buf || !ctx) {
		r = -ENOMEM;
		goto out;
	}
	if (!EVP_DigestInit_ex(ctx, md, NULL)) {
		r = -EIO;
		goto out;
	}
	for (;;) {
		ssize_t k = read(fd, buf, CLI_HASH_CHUNK);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = pf_negerrno();
			goto out;
		}
		if (k == 0)
			break;
		if (!EVP_DigestUpdate(ctx, buf, (size_t)k)) {
			r = -EIO;
			goto out;
		}
	}
	if (!EVP_DigestFinal_ex(ctx, out, &len)) {
		r = -EIO;
		goto out;
	}
	*ret_len = len;
	r = 0;
out:
	EVP_MD_CTX_free(ctx);
	return r;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return pf_negerrno();
		}
		p += k;
		n -= (size_t)k;
	}
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
cli_file_write_atomic(const char *path, const void *data, size_t n, int overwrite)
{
	_cleanup_free_ char *dcopy = NULL, *bcopy = NULL, *tmp = NULL;
	_cleanup_close_ int fd = -1;
	const char *dir, *base;
	int r, dfd;

	dcopy = strdup(path);
	bcopy = strdup(path);
	if (!dcopy || !bcopy)
		return -ENOMEM;
	dir = dirname(dcopy);
	base = basename(bcopy);
	/* A hidden name beside the target; a shorter one when the target's name is long. */
	if (strlen(base) + 9 > NAME_MAX)
		base = "paraf";
	if (asprintf(&tmp, "%s/.%s.XXXXXX", dir, base) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return pf_negerrno();
	if (fchmod(fd, 0644) < 0 || write_all(fd, data, n) < 0 || fsync(fd) < 0) {
		r = pf_negerrno();
		goto fail;
	}
	r = close(TAKE_FD(fd));
	if (r < 0) {
		r = pf_negerrno();
		goto fail;
	}
	if (overwrite)
		r = rename(tmp, path) < 0 ? pf_negerrno() : 0;
	else
		r = rename_noreplace(tmp, path);
	if (r < 0)
		goto fail;
	/* The new name must survive a crash as well as the bytes. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
fail:
	(void)unlink(tmp);
	return r;
}

int
cli_file_read_all(const char *path, size_t max, uint8_t **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	struct stat st;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return pf_negerrno();
	if (fstat(fd, &st) < 0)
		return pf_negerrno();
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
		return -EFBIG;
	for (;;) {
		ssize_t k;

		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 64 * 1024;
			uint8_t *d;

			if (cap > max)
				return -EFBIG;
			if (ncap > max + 1)
				ncap = max + 1;
			d = realloc(buf, ncap + 1);
			if (!d)
				return -ENOMEM;
			buf = d;
			cap = ncap;
		}
		k = read(fd, buf + len, cap - len);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return pf_negerrno();
		}
		if (k == 0)
			break;
		len += (size_t)k;
	}
	if (len > max)
		return -EFBIG;
	buf[len] = 0;
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}
