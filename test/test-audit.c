/*
 * The audit log (audit/): known answers for the hash chain; every sampled byte flip of a
 * 5,000-record log detected; removal, reordering, insertion and truncation at every record
 * boundary of a small rotated log detected with the right kind; a torn tail cut at every byte
 * repaired; a partial write (file size limit) undone; records stamped with the real peer
 * (a child of another uid through the real server code); the client's timeouts and refusals;
 * and a 100,000-record log verified in bounded memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <systemd/sd-event.h>

#include "aud-internal.h"
#include "aud-server.h"
#include "aud.h"
#include "pf-sanitizer.h"

/* --- helpers ------------------------------------------------------------------------------- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *
temp_dir(void)
{
	char *d = strdup("/tmp/test-audit-XXXXXX");

	assert_non_null(mkdtemp(d));
	return d;
}

static char *
path_in(const char *dir, const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static char *
read_all(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = 0;
	fclose(f);
	*ret_len = (size_t)n;
	return buf;
}

static void
write_all(const char *path, const char *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
}

static void
sha256_hex(const char *s, size_t n, char ret[65])
{
	unsigned char md[32];
	unsigned len;

	assert_true(EVP_Digest(s, n, md, &len, EVP_sha256(), NULL));
	for (int i = 0; i < 32; i++)
		sprintf(ret + 2 * i, "%02x", md[i]);
}

static struct aud_log *
open_log(const char *dir, uint64_t file_max)
{
	struct aud_log_options o = { .dir = dir, .file_max = file_max };
	struct aud_log *l = NULL;

	assert_int_equal(aud_log_open(&o, &l), 0);
	return l;
}

static void
append(struct aud_log *l, const char *json, uint64_t *ret_seq)
{
	char hash[AUD_HASH_HEX + 1];
	uint64_t seq;

	assert_int_equal(aud_log_append(l, getuid(), getpid(), json, strlen(json), &seq, hash), 0);
	if (ret_seq)
		*ret_seq = seq;
}

/* A log of n records (each about record_len bytes), a checkpoint over all of them. */
static void
make_log(const char *dir, unsigned n, uint64_t file_max, size_t pad)
{
	struct aud_log *l = open_log(dir, file_max);
	char *pads = malloc(pad + 1);

	memset(pads, 'x', pad);
	pads[pad] = 0;
	for (unsigned i = 0; i < n; i++) {
		char rec[512 + 256];
		uint64_t seq;

		snprintf(rec, sizeof(rec), "{\"method\":\"sign\",\"n\":%u,\"verdict\":\"%s\","
			"\"pad\":\"%s\"}", i, i % 3 ? "allow" : "deny", pads);
		append(l, rec, &seq);
		assert_int_equal(seq, i + 1);
	}
	free(pads);
	assert_int_equal(aud_log_checkpoint(l), 0);
	aud_log_close(l);
}

static struct aud_report
verify(const char *dir)
{
	struct aud_report rep;

	assert_int_equal(aud_verify(dir, &rep), 0);
	return rep;
}

#define assert_fault(rep, want)                                                               \
	do {                                                                                  \
		if ((rep).fault != (want))                                                    \
			print_error("fault %s, expected %s, at %s:%" PRIu64 " seq %" PRIu64   \
				": %s\n", aud_fault_to_string((rep).fault),                   \
				aud_fault_to_string(want), (rep).file, (rep).line,            \
				(rep).seq, (rep).detail);                                     \
		assert_string_equal(aud_fault_to_string((rep).fault), aud_fault_to_string(want)); \
	} while (0)

/* The log's lines in memory, each with its file, to be changed and written back. */
struct model {
	char names[8][AUD_NAME_MAX];
	size_t n_files;
	struct mline {
		char *text; /* without newline */
		size_t file;
	} *lines;
	size_t n;
};

static void
model_load(const char *dir, struct model *m)
{
	struct aud_files f;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);

	memset(m, 0, sizeof(*m));
	assert_true(dfd >= 0);
	assert_int_equal(aud_files_list(dfd, &f), 0);
	assert_true(f.n <= 8);
	for (size_t i = 0; i < f.n; i++) {
		char *p = path_in(dir, f.names[i]), *data, *s, *nl;
		size_t len;

		memcpy(m->names[i], f.names[i], AUD_NAME_MAX);
		data = read_all(p, &len);
		for (s = data; (nl = strchr(s, '\n')); s = nl + 1) {
			m->lines = realloc(m->lines, (m->n + 1) * sizeof(*m->lines));
			m->lines[m->n].text = strndup(s, (size_t)(nl - s));
			m->lines[m->n].file = i;
			m->n++;
		}
		free(data);
		free(p);
	}
	m->n_files = f.n;
	aud_files_release(&f);
	close(dfd);
}

static void
model_release(struct model *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->lines[i].text);
	free(m->lines);
	memset(m, 0, sizeof(*m));
}

/* Writes lines (a changed copy of the model's) back as the log files; files left without a
 * line are removed. */
static void
model_write(const char *dir, const struct model *m, const struct mline *lines, size_t n)
{
	for (size_t fi = 0; fi < m->n_files; fi++) {
		char *p = path_in(dir, m->names[fi]);
		size_t len = 0;
		char *buf = NULL;

		for (size_t i = 0; i < n; i++) {
			size_t k;

			if (lines[i].file != fi)
				continue;
			k = strlen(lines[i].text);
			buf = realloc(buf, len + k + 1);
			memcpy(buf + len, lines[i].text, k);
			buf[len + k] = '\n';
			len += k + 1;
		}
		if (len)
			write_all(p, buf, len);
		else
			unlink(p);
		free(buf);
		free(p);
	}
}

static void
model_restore(const char *dir, const struct model *m)
{
	model_write(dir, m, m->lines, m->n);
}

/* --- known answers ------------------------------------------------------------------------- */

#define Z64 "0000000000000000000000000000000000000000000000000000000000000000"
/* Computed with `printf '%s' LINE | openssl dgst -sha256`, not with this code. */
#define KA_H1 "77e9bec744d9f0b987d956a94adbd5c7378238ae3852ba56c2360dcff52620d0"
#define KA_H2 "ccfe85f9eab6784fc2bad588303bda96f050980bbf54ae6edae465052bb7a2e0"
#define KA_H3 "ddc953c4759af876b04ebed5fb1513136a6c54e579a9383494d1ed0ee3ab275f"
static const char *const ka_lines[] = {
	"{\"seq\":1,\"time\":\"2024-01-15T08:00:00Z\",\"uid\":1000,\"pid\":4242,\"prev\":\"" Z64
	"\",\"record\":{\"method\":\"sign\",\"verdict\":\"allow\",\"rule\":\"R1\"}}",
	"{\"seq\":2,\"time\":\"2024-01-15T08:00:01Z\",\"uid\":1000,\"pid\":4242,\"prev\":\"" KA_H1
	"\",\"record\":{\"method\":\"sign\",\"verdict\":\"deny\",\"rule\":\"R7\",\"documents\":"
	"[{\"name\":\"surat.pdf\"}]}}",
	"{\"seq\":3,\"time\":\"2024-01-15T08:00:02Z\",\"uid\":0,\"pid\":1,\"prev\":\"" KA_H2
	"\",\"record\":{\"event\":\"note\",\"text\":\"Surat Keputusan \\u00e9\"}}",
};
static const char *const ka_hashes[] = { KA_H1, KA_H2, KA_H3 };

static void
test_known_answers(void **state)
{
	char *dir = temp_dir(), *p, hash[AUD_HASH_HEX + 1], evp[65], *cp, *data;
	size_t total = 0, len;
	struct aud_report rep;
	struct aud_log *l;
	struct aud_line al;
	char why[160];
	char buf[2048] = "";
	uint64_t seq;

	for (int i = 0; i < 3; i++) {
		aud_line_hash(ka_lines[i], strlen(ka_lines[i]), hash);
		assert_string_equal(hash, ka_hashes[i]);
		sha256_hex(ka_lines[i], strlen(ka_lines[i]), evp);
		assert_string_equal(evp, ka_hashes[i]);
		assert_int_equal(aud_line_parse(ka_lines[i], strlen(ka_lines[i]), &al, why,
			sizeof(why)), 0);
		assert_int_equal(al.seq, (uint64_t)i + 1);
		strcat(buf, ka_lines[i]);
		strcat(buf, "\n");
	}
	total = strlen(buf);
	p = path_in(dir, "audit-202401-001.log");
	write_all(p, buf, total);
	free(p);
	assert_true(asprintf(&cp, "{\"count\":3,\"head\":\"" KA_H3 "\",\"file\":\"audit-202401-001.log\","
		"\"offset\":%zu,\"time\":\"2024-01-15T08:00:03Z\",\"join\":null}\n", total) > 0);
	p = path_in(dir, "checkpoint");
	write_all(p, cp, strlen(cp));
	free(cp);

	rep = verify(dir);
	assert_fault(rep, AUD_OK);
	assert_int_equal(rep.records, 3);
	assert_string_equal(rep.head, KA_H3);

	/* The service carries on from it: a new month's file continues the chain. */
	l = open_log(dir, 0);
	append(l, "{\"event\":\"next\"}", &seq);
	assert_int_equal(seq, 4);
	assert_int_equal(aud_log_checkpoint(l), 0);
	aud_log_close(l);
	rep = verify(dir);
	assert_fault(rep, AUD_OK);
	assert_int_equal(rep.records, 4);
	assert_string_not_equal(rep.file, "audit-202401-001.log");
	data = read_all(p, &len);
	assert_non_null(strstr(data, "\"join\":{\"from\":\"audit-202401-001.log\",\"seq\":4,"
		"\"prev\":\"" KA_H3 "\"}"));
	free(data);
	free(p);
	p = path_in(dir, rep.file);
	data = read_all(p, &len);
	assert_non_null(strstr(data, "{\"seq\":4,\"time\":\""));
	assert_non_null(strstr(data, "\"prev\":\"" KA_H3 "\",\"record\":{\"event\":\"next\"}}\n"));
	free(data);
	free(p);
	rm_rf(dir);
	free(dir);
}

/* --- the stored form and what is refused --------------------------------------------------- */

static void
test_format(void **state)
{
	char *dir = temp_dir(), *p, *data, hash[AUD_HASH_HEX + 1], expect[512], *big;
	struct aud_log *l = open_log(dir, 0);
	struct aud_files f;
	uint64_t seq;
	size_t len;
	int dfd;
	static const char *const bad[] = {
		"", "[1,2]", "\"x\"", "42", "{\"a\":1", "{\"a\":1}{\"b\":2}", "{\"a\":1} x",
		"{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00x\"}", "{\"a\":\"line\nbreak\"}",
		"{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}", "{'a':1}", "{\"a\":01}",
		"{\"a\":NaN}", "{\"a\":1,}", "{\"a\":Infinity}", "{\"a\":-Infinity}",
		"{\"a\":5.}", "{\"a\":00}", "{\"a\":-01}", "{\"a\":\"\t\"}", "{\"a\":.5}",
		"{\"a\":\"\\x41\"}", "{\"a\":tru}", "{\"a\" 1}", "{\"a\":[1 2]}", "{,}",
		"{\"a\":\"\\u00g0\"}", "{\"a\":\"\\'\"}",
		"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
	};

	static const char spaced[] = " { \"uid\" : 0,\t\"s\" : \"x  y\", \"a\" : [ 1 , 2.50 , "
		"{\"k\" : null} ] , \"e\":\"\\u00e9\\ud83d\\ude00\" }\r\n";

	assert_int_equal(aud_log_append(l, 1000, 77, spaced, strlen(spaced), &seq, hash), 0);
	assert_int_equal(seq, 1);
	{
		static const char ok[] = "{\"n\":[-0,0.5e-3,1E+9,-12.25,18446744073709551616],"
			"\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"t\":true,\"f\":false,\"z\":null,"
			"\"d\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}";

		assert_int_equal(aud_log_append(l, 1000, 77, ok, strlen(ok), &seq, hash), 0);
		assert_int_equal(seq, 2);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		int r = aud_log_append(l, 1000, 77, bad[i], strlen(bad[i]), &seq, hash);
		if (r != -EINVAL)
			print_error("'%s' gave %d\n", bad[i], r);
		assert_int_equal(r, -EINVAL);
	}
	big = malloc(AUD_RECORD_MAX + 16);
	memset(big, ' ', AUD_RECORD_MAX + 16);
	memcpy(big, "{\"a\":1}", 7);
	assert_int_equal(aud_log_append(l, 1000, 77, big, AUD_RECORD_MAX + 1, &seq, hash),
		-EMSGSIZE);
	assert_int_equal(aud_log_append(l, 1000, 77, big, AUD_RECORD_MAX, &seq, hash), 0);
	assert_int_equal(seq, 3);
	free(big);
	aud_log_close(l);

	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_int_equal(aud_files_list(dfd, &f), 0);
	assert_int_equal(f.n, 1);
	close(dfd);
	p = path_in(dir, f.names[0]);
	data = read_all(p, &len);
	snprintf(expect, sizeof(expect), "\",\"uid\":1000,\"pid\":77,\"prev\":\"" Z64 "\","
		"\"record\":{\"uid\":0,\"s\":\"x  y\",\"a\":[1,2.50,{\"k\":null}],"
		"\"e\":\"\\u00e9\\ud83d\\ude00\"}}\n{\"seq\":2,");
	assert_non_null(strstr(data, "18446744073709551616],")); /* numbers as sent */
	assert_non_null(strstr(data, expect));
	assert_memory_equal(data, "{\"seq\":1,\"time\":\"", 17);
	assert_non_null(strstr(data, "\"record\":{\"a\":1}}\n"));
	assert_int_equal(data[len - 1], '\n');
	free(data);
	free(p);
	aud_files_release(&f);
	assert_fault(verify(dir), AUD_OK);
	rm_rf(dir);
	free(dir);
}

/* --- every sampled byte flip of a 5,000-record log ---------------------------------------- */

#define FLIP_RECORDS 5000
#define FLIP_SAMPLES 512

static void
test_flip_5000(void **state)
{
	char *dir = temp_dir();
	struct aud_files f;
	char *paths[64];
	off_t sizes[64], total = 0;
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	unsigned detected = 0;
	int dfd;

	make_log(dir, FLIP_RECORDS, 256 * 1024, 40);
	assert_fault(verify(dir), AUD_OK);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_int_equal(aud_files_list(dfd, &f), 0);
	close(dfd);
	assert_true(f.n >= 2 && f.n < 64); /* rotated by size: the joins are sampled too */
	for (size_t i = 0; i < f.n; i++) {
		struct stat st;

		paths[i] = path_in(dir, f.names[i]);
		assert_int_equal(stat(paths[i], &st), 0);
		sizes[i] = st.st_size;
		total += st.st_size;
	}
	for (unsigned k = 0; k < FLIP_SAMPLES; k++) {
		off_t pos;
		size_t fi = 0;
		unsigned char b, flipped;
		struct aud_report rep;
		int fd;

		/* xorshift64: the same sample every run */
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		pos = (off_t)(rng % (uint64_t)total);
		/* the first and last bytes of the log always among the sample */
		if (k == 0)
			pos = 0;
		if (k == 1)
			pos = total - 1;
		while (pos >= sizes[fi])
			pos -= sizes[fi++];
		fd = open(paths[fi], O_RDWR);
		assert_int_equal(pread(fd, &b, 1, pos), 1);
		/* all bits of half of them, one bit of the other half */
		flipped = k % 2 ? (unsigned char)~b : (unsigned char)(b ^ (1u << (k / 2 % 8)));
		assert_int_equal(pwrite(fd, &flipped, 1, pos), 1);
		rep = verify(dir);
		assert_int_equal(pwrite(fd, &b, 1, pos), 1);
		close(fd);
		if (rep.fault != AUD_OK)
			detected++;
		else
			print_error("flip of byte %lld of %s (0x%02x -> 0x%02x) not detected\n",
				(long long)pos, f.names[fi], b, flipped);
	}
	assert_int_equal(detected, FLIP_SAMPLES);
	assert_fault(verify(dir), AUD_OK);
	for (size_t i = 0; i < f.n; i++)
		free(paths[i]);
	aud_files_release(&f);
	rm_rf(dir);
	free(dir);
}

/* --- removal, reordering, insertion, truncation at every boundary of a small log ------------ */

#define SMALL_RECORDS 20

struct small {
	char *dir;
	struct model m;
	struct mline *work;
};

static void
small_setup(struct small *s)
{
	s->dir = temp_dir();
	/* About 200 bytes a line: two files of 12 and 8 records. */
	make_log(s->dir, SMALL_RECORDS, 12 * 200, 40);
	model_load(s->dir, &s->m);
	assert_int_equal(s->m.n, SMALL_RECORDS);
	assert_int_equal(s->m.n_files, 2);
	s->work = calloc(SMALL_RECORDS + 2, sizeof(*s->work));
}

static void
small_teardown(struct small *s)
{
	free(s->work);
	model_release(&s->m);
	rm_rf(s->dir);
	free(s->dir);
}

/* Writes the changed lines, verifies, restores, and returns the report. */
static struct aud_report
small_check(struct small *s, size_t n)
{
	struct aud_report rep;

	model_write(s->dir, &s->m, s->work, n);
	rep = verify(s->dir);
	model_restore(s->dir, &s->m);
	return rep;
}

static void
test_small_log(void **state)
{
	struct small s;
	struct aud_report rep;
	const size_t n = SMALL_RECORDS;
	char *cp_path, *cp_text, h[AUD_HASH_HEX + 1];
	size_t cp_len;

	small_setup(&s);
	assert_fault(verify(s.dir), AUD_OK);

	/* The join: file 2 starts from file 1's last hash, and the checkpoint names it. */
	{
		size_t first2 = 0;
		char *want;

		while (s.m.lines[first2].file == 0)
			first2++;
		aud_line_hash(s.m.lines[first2 - 1].text, strlen(s.m.lines[first2 - 1].text), h);
		assert_non_null(strstr(s.m.lines[first2].text, h));
		cp_path = path_in(s.dir, "checkpoint");
		cp_text = read_all(cp_path, &cp_len);
		assert_true(asprintf(&want, "\"join\":{\"from\":\"%s\",\"seq\":%zu,\"prev\":\"%s\"}",
			s.m.names[0], first2 + 1, h) > 0);
		assert_non_null(strstr(cp_text, want));
		free(want);
	}

	/* Removal of each record: a gap (the last one: the log is shorter than the checkpoint). */
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;

		for (size_t j = 0; j < n; j++)
			if (j != i)
				s.work[k++] = s.m.lines[j];
		rep = small_check(&s, k);
		assert_fault(rep, i == n - 1 ? AUD_TRUNCATED : AUD_REMOVED);
		assert_int_equal(rep.seq, i + 1);
	}

	/* Each pair of neighbours swapped (within a file and across the join). */
	for (size_t i = 0; i + 1 < n; i++) {
		memcpy(s.work, s.m.lines, n * sizeof(*s.work));
		s.work[i].text = s.m.lines[i + 1].text;
		s.work[i + 1].text = s.m.lines[i].text;
		rep = small_check(&s, n);
		assert_fault(rep, AUD_REORDERED);
		assert_int_equal(rep.seq, i + 1);
	}

	/* A copy of another record inserted at every boundary, the end included. */
	for (size_t i = 0; i <= n; i++) {
		const size_t sources[] = { i ? i - 1 : 0, i + 1 < n ? i + 1 : 0, 0, n - 1, n / 2 };

		for (size_t si = 0; si < sizeof(sources) / sizeof(*sources); si++) {
			size_t k = 0;

			for (size_t j = 0; j < n; j++) {
				if (j == i) {
					s.work[k] = s.m.lines[sources[si]];
					s.work[k++].file = s.m.lines[j].file;
				}
				s.work[k++] = s.m.lines[j];
			}
			if (i == n) {
				s.work[k] = s.m.lines[sources[si]];
				s.work[k++].file = s.m.lines[n - 1].file;
			}
			rep = small_check(&s, k);
			assert_fault(rep, AUD_INSERTED);
		}
	}

	/* A forged record linked right in (seq and prev as the service would write them) before
	 * every record: its successor repeats its seq and skips it. */
	for (size_t i = 0; i < n; i++) {
		char prev[AUD_HASH_HEX + 1], *forged;
		size_t k = 0;

		if (i == 0)
			memcpy(prev, Z64, sizeof(prev));
		else
			aud_line_hash(s.m.lines[i - 1].text, strlen(s.m.lines[i - 1].text), prev);
		assert_true(asprintf(&forged, "{\"seq\":%zu,\"time\":\"2024-01-01T00:00:00Z\","
			"\"uid\":0,\"pid\":1,\"prev\":\"%s\",\"record\":{\"forged\":true}}", i + 1,
			prev) > 0);
		for (size_t j = 0; j < n; j++) {
			if (j == i) {
				s.work[k].text = forged;
				s.work[k++].file = s.m.lines[j].file;
			}
			s.work[k++] = s.m.lines[j];
		}
		rep = small_check(&s, k);
		assert_fault(rep, AUD_INSERTED);
		assert_int_equal(rep.seq, i + 1);
		free(forged);
	}
	/* … and one after the last record that does not link to it. */
	{
		char *forged;

		assert_true(asprintf(&forged, "{\"seq\":%zu,\"time\":\"2024-01-01T00:00:00Z\","
			"\"uid\":0,\"pid\":1,\"prev\":\"%s\",\"record\":{\"forged\":true}}", n + 1,
			KA_H1) > 0);
		memcpy(s.work, s.m.lines, n * sizeof(*s.work));
		s.work[n].text = forged;
		s.work[n].file = 1;
		rep = small_check(&s, n + 1);
		assert_fault(rep, AUD_INSERTED);
		assert_int_equal(rep.seq, n + 1);
		free(forged);
	}

	/* Truncation at every record boundary: shorter than the checkpoint. */
	for (size_t i = 0; i < n; i++) {
		memcpy(s.work, s.m.lines, i * sizeof(*s.work));
		rep = small_check(&s, i);
		assert_fault(rep, AUD_TRUNCATED);
		assert_int_equal(rep.seq, i + 1);
		assert_int_equal(rep.records, i);
	}

	/* Each record's content changed (the chain not rewritten): the record is named, or the
	 * join it ends. */
	for (size_t i = 0; i < n; i++) {
		char *edited = strdup(s.m.lines[i].text), *v = strstr(edited, "\"verdict\":\"");

		assert_non_null(v);
		v[11] = v[11] == 'a' ? 'd' : 'a'; /* allow <-> dllow: still JSON */
		memcpy(s.work, s.m.lines, n * sizeof(*s.work));
		s.work[i].text = edited;
		rep = small_check(&s, n);
		if (s.m.lines[i].file == 0 && (i + 1 == n || s.m.lines[i + 1].file == 1))
			assert_true(rep.fault == AUD_BROKEN_JOIN || rep.fault == AUD_EDITED);
		else
			assert_fault(rep, AUD_EDITED);
		if (rep.fault == AUD_EDITED)
			assert_int_equal(rep.seq, i + 1);
		free(edited);
	}

	/* The second file's first prev changed: the join is broken. */
	{
		size_t first2 = 0;
		char *edited, *pv;

		while (s.m.lines[first2].file == 0)
			first2++;
		edited = strdup(s.m.lines[first2].text);
		pv = strstr(edited, "\"prev\":\"") + 8;
		pv[0] = pv[0] == '0' ? '1' : '0';
		memcpy(s.work, s.m.lines, n * sizeof(*s.work));
		s.work[first2].text = edited;
		rep = small_check(&s, n);
		assert_fault(rep, AUD_BROKEN_JOIN);
		assert_string_equal(rep.file, s.m.names[1]);
		assert_int_equal(rep.line, 1);
		free(edited);
	}

	/* A whole file gone. */
	{
		char *p = path_in(s.dir, s.m.names[0]);

		unlink(p);
		rep = verify(s.dir);
		assert_fault(rep, AUD_REMOVED);
		assert_int_equal(rep.seq, 1);
		model_restore(s.dir, &s.m);
		free(p);
	}

	/* The second file renamed: the checkpoint names another file. */
	{
		char *a = path_in(s.dir, s.m.names[1]), *b, nm[AUD_NAME_MAX];
		unsigned month, k;

		assert_int_equal(aud_file_name_parse(s.m.names[1], &month, &k), 0);
		aud_file_name_format(month, k + 5, nm);
		b = path_in(s.dir, nm);
		assert_int_equal(rename(a, b), 0);
		rep = verify(s.dir);
		assert_fault(rep, AUD_BROKEN_JOIN);
		assert_int_equal(rename(b, a), 0);
		free(a);
		free(b);
	}

	/* The checkpoint: missing, malformed, or the whole chain rewritten after an edit. */
	unlink(cp_path);
	assert_fault(verify(s.dir), AUD_TRUNCATED);
	write_all(cp_path, "{\"count\":1}\n", 12);
	rep = verify(s.dir);
	assert_fault(rep, AUD_MALFORMED);
	assert_string_equal(rep.file, "checkpoint");
	write_all(cp_path, cp_text, cp_len);
	{
		char prev[AUD_HASH_HEX + 1], *edited;

		memcpy(prev, Z64, sizeof(prev));
		for (size_t i = 0; i < n; i++) {
			char *pv;

			edited = strdup(s.m.lines[i].text);
			pv = strstr(edited, "\"prev\":\"") + 8;
			memcpy(pv, prev, AUD_HASH_HEX);
			if (i == 4)
				strstr(edited, "\"verdict\":\"")[11] = 'X';
			s.work[i].text = edited;
			s.work[i].file = s.m.lines[i].file;
			aud_line_hash(edited, strlen(edited), prev);
		}
		rep = small_check(&s, n);
		assert_fault(rep, AUD_EDITED);
		assert_int_equal(rep.seq, n);
		for (size_t i = 0; i < n; i++)
			free(s.work[i].text);
	}
	assert_fault(verify(s.dir), AUD_OK);
	free(cp_text);
	free(cp_path);
	small_teardown(&s);
}

/* --- a torn tail, cut at every byte -------------------------------------------------------- */

/* The last record is past the checkpoint (as at a crash); its line is cut at every offset. */
static void
torn_case(bool last_starts_file)
{
	char *dir = temp_dir(), *cp_path, *cp_text, *last_path, *last_data;
	size_t cp_len, last_len, line_start;
	struct aud_log *l;
	struct aud_files f;
	struct model m;
	int dfd;

	/* 6 records; with last_starts_file the 6th opens a new file. */
	l = open_log(dir, last_starts_file ? 5 * 200 : 0);
	for (int i = 0; i < 5; i++)
		append(l, "{\"method\":\"sign\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			  "xxxxxxxxxxxxxxxxxxxxxxxx\"}", NULL);
	assert_int_equal(aud_log_checkpoint(l), 0);
	append(l, "{\"method\":\"sign\",\"last\":\"\\u00e9 the line that tears\"}", NULL);
	aud_log_close(l);
	model_load(dir, &m);
	assert_int_equal(m.n, 6);
	assert_int_equal(m.n_files, last_starts_file ? 2 : 1);

	cp_path = path_in(dir, "checkpoint");
	cp_text = read_all(cp_path, &cp_len);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_int_equal(aud_files_list(dfd, &f), 0);
	close(dfd);
	last_path = path_in(dir, f.names[f.n - 1]);
	last_data = read_all(last_path, &last_len);
	line_start = last_len - strlen(m.lines[5].text) - 1;

	for (size_t k = 0; k <= strlen(m.lines[5].text); k++) {
		struct aud_report rep;
		struct model after;
		char hexcut[1024] = "", *want;

		write_all(last_path, last_data, line_start + k);
		write_all(cp_path, cp_text, cp_len);
		if (k > 0)
			assert_fault(verify(dir), AUD_MALFORMED);
		l = open_log(dir, last_starts_file ? 5 * 200 : 0);
		aud_log_close(l);
		rep = verify(dir);
		assert_fault(rep, AUD_OK);
		model_load(dir, &after);
		/* every complete record kept, in place */
		for (size_t i = 0; i < 5; i++)
			assert_string_equal(after.lines[i].text, m.lines[i].text);
		if (k == 0) {
			assert_int_equal(after.n, 5);
		} else {
			assert_int_equal(after.n, 6);
			for (size_t i = 0; i < k; i++)
				sprintf(hexcut + 2 * i, "%02x", (unsigned char)m.lines[5].text[i]);
			assert_true(asprintf(&want, "\"record\":{\"event\":\"repair\",\"reason\":"
				"\"torn-final-line\",\"file\":\"%s\",\"offset\":%zu,\"bytes\":%zu,",
				f.names[f.n - 1], line_start, k) > 0);
			assert_non_null(strstr(after.lines[5].text, want));
			free(want);
			assert_true(asprintf(&want, "\"data\":\"%s\"}}", hexcut) > 0);
			assert_non_null(strstr(after.lines[5].text, want));
			free(want);
			assert_non_null(strstr(after.lines[5].text, "\"seq\":6,"));
			/* from the service itself */
			assert_true(asprintf(&want, "\"uid\":%u,\"pid\":%d,", (unsigned)geteuid(),
				(int)getpid()) > 0);
			assert_non_null(strstr(after.lines[5].text, want));
			free(want);
		}
		model_release(&after);
		/* back to the torn state's starting point: all files as before the cut */
		model_restore(dir, &m);
		write_all(last_path, last_data, last_len);
	}
	free(last_data);
	free(last_path);
	free(cp_text);
	free(cp_path);
	aud_files_release(&f);
	model_release(&m);
	rm_rf(dir);
	free(dir);
}

static void
test_torn_tail(void **state)
{
	torn_case(false);
	torn_case(true);
}

/* --- refusals when opening ----------------------------------------------------------------- */

static void
test_open_refusals(void **state)
{
	char *dir = temp_dir(), *p, *before, *after;
	struct aud_log_options o = { .dir = dir };
	struct aud_log *l, *l2 = NULL;
	struct aud_files f;
	size_t n1, n2;
	int dfd;

	make_log(dir, 5, 0, 10);
	/* one appender at a time */
	l = open_log(dir, 0);
	assert_int_equal(aud_log_open(&o, &l2), -EBUSY);
	aud_log_close(l);

	/* writable by others */
	assert_int_equal(chmod(dir, 0770), 0);
	assert_int_equal(aud_log_open(&o, &l2), -EPERM);
	assert_int_equal(chmod(dir, 0700), 0);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_int_equal(aud_files_list(dfd, &f), 0);
	close(dfd);
	p = path_in(dir, f.names[0]);
	assert_int_equal(chmod(p, 0622), 0);
	assert_int_equal(aud_log_open(&o, &l2), -EPERM);
	assert_int_equal(chmod(p, 0600), 0);

	/* a log shorter than its checkpoint is not appended to, nor changed */
	before = read_all(p, &n1);
	before[n1 - 1] = 0;
	assert_int_equal(truncate(p, (off_t)(strrchr(before, '\n') - before + 1)), 0);
	free(before);
	before = read_all(p, &n1);
	assert_int_equal(aud_log_open(&o, &l2), -EUCLEAN);
	after = read_all(p, &n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, n1);
	assert_fault(verify(dir), AUD_TRUNCATED);
	free(after);

	/* cut inside the checkpoint's last record: truncation, not a crash to repair */
	assert_int_equal(truncate(p, (off_t)n1 - 7), 0);
	free(before);
	before = read_all(p, &n1);
	assert_int_equal(aud_log_open(&o, &l2), -EUCLEAN);
	after = read_all(p, &n2);
	assert_int_equal(n1, n2);
	free(after);
	free(before);
	{
		struct aud_report rep = verify(dir);

		assert_fault(rep, AUD_TRUNCATED);
		assert_int_equal(rep.seq, 4);
	}

	/* no checkpoint beside records */
	free(p);
	p = path_in(dir, "checkpoint");
	unlink(p);
	assert_int_equal(aud_log_open(&o, &l2), -EUCLEAN);
	free(p);
	aud_files_release(&f);
	rm_rf(dir);
	free(dir);

	/* a fresh directory is made 0700 */
	dir = temp_dir();
	p = path_in(dir, "a/b/log");
	o.dir = p;
	assert_int_equal(aud_log_open(&o, &l2), 0);
	aud_log_close(l2);
	{
		struct stat st;

		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0700);
	}
	assert_fault(verify(p), AUD_OK);
	free(p);
	rm_rf(dir);
	free(dir);
}

/* --- a write that fails half way is undone ------------------------------------------------- */

static void
test_partial_write(void **state)
{
	char *dir = temp_dir(), *p, big[4096], hash[AUD_HASH_HEX + 1];
	struct aud_log *l = open_log(dir, 0);
	struct rlimit old, lim;
	struct aud_files f;
	struct stat st;
	off_t size;
	uint64_t seq;
	int dfd, r;

	append(l, "{\"a\":1}", NULL);
	append(l, "{\"a\":2}", NULL);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_int_equal(aud_files_list(dfd, &f), 0);
	close(dfd);
	p = path_in(dir, f.names[0]);
	assert_int_equal(stat(p, &st), 0);
	size = st.st_size;

	/* A file size limit a little past the end: the write stops short, as on a full disk. */
	memset(big, 'x', sizeof(big));
	memcpy(big, "{\"big\":\"", 8);
	memcpy(big + sizeof(big) - 3, "\"}", 3);
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)size + 100;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	r = aud_log_append(l, 0, 1, big, strlen(big), &seq, hash);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(r, -ENOSPC);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, size); /* nothing of it left */
	assert_fault(verify(dir), AUD_OK);

	/* and the log goes on */
	append(l, big, &seq);
	assert_int_equal(seq, 3);
	assert_int_equal(aud_log_checkpoint(l), 0);
	aud_log_close(l);
	assert_fault(verify(dir), AUD_OK);
	free(p);
	aud_files_release(&f);
	rm_rf(dir);
	free(dir);
}

/* --- the server stamps the real peer ------------------------------------------------------- */

static void
run_until_child_exits(sd_event *e, pid_t pid, int *ret_status)
{
	for (int i = 0; i < 1000; i++) {
		if (waitpid(pid, ret_status, WNOHANG) == pid)
			return;
		sd_event_run(e, 10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, ret_status, 0);
	fail_msg("the client child did not finish");
}

static void
test_peer_stamp(void **state)
{
	char *dir = temp_dir(), *logdir = path_in(dir, "log"), *sock = path_in(dir, "run/audit.sock");
	struct aud_log *l;
	struct aud_server *srv = NULL;
	sd_event *e = NULL;
	char why[256];
	int lfd, status;
	uid_t want_uid = geteuid() == 0 ? 65534 : geteuid();
	pid_t pid;
	struct model m;
	char *want;

	assert_int_equal(chmod(dir, 0755), 0); /* the child of another uid must reach the socket */
	l = open_log(logdir, 0);
	assert_int_equal(aud_socket_listen(sock, &lfd, why, sizeof(why)), 0);
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(aud_server_new(e, l, lfd, sock, 0, &srv), 0);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct aud_client *c = NULL;
		uint64_t seq = 0;
		const char *claim = "{\"uid\":0,\"pid\":1,\"what\":\"a record that claims to be root's\"}";

		if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
					  setresuid(65534, 65534, 65534) < 0))
			_exit(10);
		if (aud_client_connect(sock, &c) < 0)
			_exit(11);
		if (aud_client_send(c, claim, strlen(claim), 5000, &seq) < 0 || seq != 1)
			_exit(12);
		/* refusals come back as errors, and the connection goes on */
		if (aud_client_send(c, "[1]", 3, 5000, &seq) != -EINVAL)
			_exit(13);
		if (aud_client_send(c, "{\"second\":true}", 15, 5000, &seq) < 0 || seq != 2)
			_exit(14);
		aud_client_free(c);
		_exit(0);
	}
	run_until_child_exits(e, pid, &status);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	srv = aud_server_free(srv);
	assert_int_equal(access(sock, F_OK), -1); /* removed */
	assert_int_equal(aud_log_checkpoint(l), 0);
	aud_log_close(l);
	sd_event_unref(e);

	model_load(logdir, &m);
	assert_int_equal(m.n, 2);
	assert_true(asprintf(&want, "\"uid\":%u,\"pid\":%d,", (unsigned)want_uid, (int)pid) > 0);
	assert_non_null(strstr(m.lines[0].text, want));
	assert_non_null(strstr(m.lines[0].text, "\"record\":{\"uid\":0,\"pid\":1,"));
	assert_non_null(strstr(m.lines[1].text, want));
	free(want);
	model_release(&m);
	assert_fault(verify(logdir), AUD_OK);
	free(logdir);
	free(sock);
	rm_rf(dir);
	free(dir);
}

/* --- the client: timeouts and refusals ----------------------------------------------------- */

static uint64_t
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
plain_socket(const char *path, bool do_listen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (do_listen)
		assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static void
test_client(void **state)
{
	char *dir = temp_dir(), *silent = path_in(dir, "silent.sock"),
	     *dead = path_in(dir, "dead.sock"), *missing = path_in(dir, "missing.sock"),
	     *closer = path_in(dir, "closer.sock");
	struct aud_client *c = NULL;
	uint64_t t0, seq;
	int fd, cfd, status;
	pid_t pid;

	/* nobody there */
	assert_int_equal(aud_client_connect(missing, &c), -ENOENT);
	fd = plain_socket(dead, false); /* bound, not listening */
	assert_int_equal(aud_client_connect(dead, &c), -ECONNREFUSED);
	close(fd);
	assert_int_equal(aud_client_connect(dead, &c), -ECONNREFUSED);

	/* a service that never answers: the timeout holds */
	fd = plain_socket(silent, true);
	assert_int_equal(aud_client_connect(silent, &c), 0);
	t0 = ms_now();
	assert_int_equal(aud_client_send(c, "{\"a\":1}", 7, 300, &seq), -ETIMEDOUT);
	assert_true(ms_now() - t0 >= 290);
	assert_true(ms_now() - t0 < 3000);
	/* a record is one line */
	assert_int_equal(aud_client_send(c, "{\"a\":\n1}", 8, 300, &seq), -EINVAL);
	assert_int_equal(aud_client_send(c, "{}", AUD_RECORD_MAX + 1, 300, &seq), -EMSGSIZE);
	c = aud_client_free(c);
	close(fd);

	/* a service that goes away before answering */
	fd = plain_socket(closer, true);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char buf[64];

		cfd = accept(fd, NULL, NULL);
		(void)!read(cfd, buf, sizeof(buf));
		_exit(0);
	}
	close(fd);
	assert_int_equal(aud_client_connect(closer, &c), 0);
	assert_int_equal(aud_client_send(c, "{\"a\":1}", 7, 5000, &seq), -EPIPE);
	waitpid(pid, &status, 0);
	/* and after that, with the socket still there but nobody listening: refused */
	assert_int_equal(aud_client_send(c, "{\"a\":1}", 7, 5000, &seq), -ECONNREFUSED);
	c = aud_client_free(c);

	free(silent);
	free(dead);
	free(missing);
	free(closer);
	rm_rf(dir);
	free(dir);
}

/* --- 100,000 records, verified in bounded memory ------------------------------------------- */

#define BIG_RECORDS 100000

static long
maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void
test_verify_streams(void **state)
{
	char *dir = temp_dir(), *p, prev[65], line[512], *cp;
	FILE *out;
	uint64_t offset = 0;
	struct aud_report rep;
	long before;

	/* Written here with OpenSSL, independently of the service. */
	memcpy(prev, Z64, sizeof(prev));
	p = path_in(dir, "audit-202402-001.log");
	out = fopen(p, "w");
	for (unsigned i = 1; i <= BIG_RECORDS; i++) {
		int n = snprintf(line, sizeof(line), "{\"seq\":%u,\"time\":\"2024-02-01T00:00:00Z\","
			"\"uid\":1000,\"pid\":%u,\"prev\":\"%s\",\"record\":{\"method\":\"sign\","
			"\"n\":%u,\"documents\":[{\"name\":\"surat-%u.pdf\"}]}}", i, 1000 + i % 7, prev,
			i, i);
		fprintf(out, "%s\n", line);
		offset += (uint64_t)n + 1;
		sha256_hex(line, (size_t)n, prev);
	}
	fclose(out);
	free(p);
	p = path_in(dir, "checkpoint");
	assert_true(asprintf(&cp, "{\"count\":%u,\"head\":\"%s\",\"file\":\"audit-202402-001.log\","
		"\"offset\":%" PRIu64 ",\"time\":\"2024-02-01T00:00:01Z\",\"join\":null}\n",
		BIG_RECORDS, prev, offset) > 0);
	write_all(p, cp, strlen(cp));
	free(cp);
	free(p);

	before = maxrss_kib();
	rep = verify(dir);
	assert_fault(rep, AUD_OK);
	assert_int_equal(rep.records, BIG_RECORDS);
	assert_string_equal(rep.head, prev);
	/* The file is about 25 MB; the verifier holds a fixed buffer. (A sanitizer's quarantine
	 * keeps freed memory: no bound to check there.) */
#if !PF_ASAN
	assert_true(maxrss_kib() - before < 8 * 1024);
#else
	(void)before;
#endif
	rm_rf(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_small_log),
		cmocka_unit_test(test_torn_tail),
		cmocka_unit_test(test_open_refusals),
		cmocka_unit_test(test_partial_write),
		cmocka_unit_test(test_peer_stamp),
		cmocka_unit_test(test_client),
		cmocka_unit_test(test_verify_streams),
		cmocka_unit_test(test_flip_5000),
	};

	return cmocka_run_group_tests_name("/audit", tests, NULL, NULL);
}
