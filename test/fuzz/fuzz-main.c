/*
 * The driver of a fuzz target when it is not built with libFuzzer (the normal gcc build): runs
 * the target once over every file given, or every file in every directory given (the seed
 * corpus and the regression inputs, test/fuzz/corpus/NAME and test/fuzz/regressions/NAME).
 * A crash or a failed check aborts, and meson reports the test as failed.
 */
#include "fuzz-common.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f) {
		fprintf(stderr, "cannot open '%s': %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t k;

		if (n == cap) {
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap);
			FUZZ_CHECK(buf);
		}
		k = fread(buf + n, 1, cap - n, f);
		if (!k)
			break;
		n += k;
	}
	fclose(f);
	/* A copy of exactly n bytes, as libFuzzer gives it: overreads are caught. */
	{
		uint8_t *exact = malloc(n ? n : 1);

		FUZZ_CHECK(exact);
		memcpy(exact, buf, n);
		free(buf);
		fprintf(stderr, "running %s (%zu bytes)\n", path, n);
		LLVMFuzzerTestOneInput(exact, n);
		free(exact);
	}
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
	size_t ran = 0;
	int failed = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		DIR *d;
		struct dirent *de;
		char **names = NULL;
		size_t n = 0;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "cannot stat '%s': %s\n", argv[i], strerror(errno));
			failed = 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			failed |= run_file(argv[i]) < 0;
			ran++;
			continue;
		}
		d = opendir(argv[i]);
		FUZZ_CHECK(d);
		while ((de = readdir(d))) {
			char *p = fuzz_path(argv[i], de->d_name);

			/* README.md explains the directory; dot files are not inputs. */
			if (de->d_name[0] != '.' && strcmp(de->d_name, "README.md") != 0 &&
			    stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
				names = realloc(names, (n + 1) * sizeof(*names));
				FUZZ_CHECK(names);
				names[n++] = p;
			} else {
				free(p);
			}
		}
		closedir(d);
		if (n > 1) /* names is NULL in an empty directory: qsort's argument is nonnull */
			qsort(names, n, sizeof(*names), name_cmp);
		for (size_t k = 0; k < n; k++) {
			failed |= run_file(names[k]) < 0;
			ran++;
			free(names[k]);
		}
		free(names);
	}
	printf("%s: %zu inputs, no crash\n", argv[0], ran);
	return failed;
}
