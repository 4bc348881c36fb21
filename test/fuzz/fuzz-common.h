/*
 * What the fuzz targets (test/fuzz/fuzz-*.c) share: the libFuzzer entry points, the fixed
 * inputs in test/fuzz/data, a private scratch directory, and checks that abort (a fuzzer
 * reports an abort as a crash, with the input that caused it). See doc/security.md, "Fuzzing".
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The time every target judges certificates and CRLs at: 2026-11-25T00:00:00Z, inside the
 * validity of test/fuzz/data's certificates and CRLs, so runs do not depend on the clock. */
#define FUZZ_NOW ((time_t)1795564800)

/* A property every input must keep; its failure is a bug, reported as a crash. */
#define FUZZ_CHECK(cond)                                                                    \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                            \
		}                                                                           \
	} while (0)

/* The file `name` of test/fuzz/data ($PARAF_FUZZ_DATA overrides the directory); a new string. */
char *fuzz_data_path(const char *name);
/* Reads the whole of a data file, NUL-terminated (len excludes the NUL); aborts on failure. */
uint8_t *fuzz_data_read(const char *name, size_t *ret_len);
/* A private scratch directory, made once and removed at exit. */
const char *fuzz_tmpdir(void);
/* dir/name, a new string; aborts when out of memory. */
char *fuzz_path(const char *dir, const char *name);
/* Writes (truncates) a file; aborts on failure: the scratch directory is ours. */
void fuzz_write_file(const char *path, const void *p, size_t n);
/* mkdir -m mode, EEXIST ignored; aborts on other failures. */
void fuzz_mkdir(const char *path, unsigned mode);
/* Removes every entry of dir (not dir itself), one level deep plus subdirectories' files. */
void fuzz_empty_dir(const char *dir);

/* Splits data at every byte sep into at most max parts (the last part holds the rest);
 * the parts are NUL-terminated copies, freed with fuzz_parts_free(). Returns the count. */
size_t fuzz_split(const uint8_t *data, size_t size, uint8_t sep, size_t max, char **parts,
	size_t *lens);
void fuzz_parts_free(char **parts, size_t n);
