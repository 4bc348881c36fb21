/*
 * Helpers of the fuzz targets: fixed inputs, a scratch directory, splitting an input.
 */
#include "fuzz-common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FUZZ_DATA_DIR
#error "FUZZ_DATA_DIR must be defined (test/fuzz/meson.build)"
#endif

static char *tmpdir;

char *
fuzz_data_path(const char *name)
{
	const char *dir = getenv("PARAF_FUZZ_DATA");

	return fuzz_path(dir && *dir ? dir : FUZZ_DATA_DIR, name);
}

uint8_t *
fuzz_data_read(const char *name, size_t *ret_len)
{
	char *path = fuzz_data_path(name);
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0 ||
	    !(buf = malloc((size_t)n + 1)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "fuzz: cannot read '%s': %s\n", path, strerror(errno));
		abort();
	}
	fclose(f);
	free(path);
	buf[n] = 0;
	if (ret_len)
		*ret_len = (size_t)n;
	return buf;
}

char *
fuzz_path(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}

void
fuzz_write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	const uint8_t *d = p;

	if (fd < 0) {
		fprintf(stderr, "fuzz: cannot write '%s': %s\n", path, strerror(errno));
		abort();
	}
	while (n) {
		ssize_t k = write(fd, d, n);
		if (k < 0 && errno == EINTR)
			continue;
		FUZZ_CHECK(k > 0);
		d += k;
		n -= (size_t)k;
	}
	close(fd);
}

void
fuzz_mkdir(const char *path, unsigned mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST) {
		fprintf(stderr, "fuzz: cannot create '%s': %s\n", path, strerror(errno));
		abort();
	}
}

static void
rm_tree(const char *dir, bool self)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *p;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		p = fuzz_path(dir, de->d_name);
		if (unlink(p) < 0 && (errno == EISDIR || errno == EPERM))
			rm_tree(p, true);
		free(p);
	}
	closedir(d);
	if (self)
		rmdir(dir);
}

void
fuzz_empty_dir(const char *dir)
{
	rm_tree(dir, false);
}

static void
tmpdir_remove(void)
{
	if (tmpdir)
		rm_tree(tmpdir, true);
}

const char *
fuzz_tmpdir(void)
{
	const char *base;
	char *t;

	if (tmpdir)
		return tmpdir;
	/* tmpfs when there is one: some targets fsync. */
	base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	t = fuzz_path(base, "paraf-fuzz-XXXXXX");
	if (!mkdtemp(t)) {
		fprintf(stderr, "fuzz: cannot create a directory in '%s': %s\n", base,
			strerror(errno));
		abort();
	}
	tmpdir = t;
	atexit(tmpdir_remove);
	return tmpdir;
}

size_t
fuzz_split(const uint8_t *data, size_t size, uint8_t sep, size_t max, char **parts, size_t *lens)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; n + 1 < max && i < size; i++) {
		if (data[i] != sep)
			continue;
		lens[n] = i - start;
		parts[n] = malloc(lens[n] + 1);
		FUZZ_CHECK(parts[n]);
		memcpy(parts[n], data + start, lens[n]);
		parts[n][lens[n]] = 0;
		n++;
		start = i + 1;
	}
	lens[n] = size - start;
	parts[n] = malloc(lens[n] + 1);
	FUZZ_CHECK(parts[n]);
	memcpy(parts[n], data + start, lens[n]);
	parts[n][lens[n]] = 0;
	return n + 1;
}

void
fuzz_parts_free(char **parts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(parts[i]);
}
