/*
 * The pure pieces of PDF signing (pdf/): PDF string, name and text escaping, numbers, WinAnsi
 * text and Helvetica wrapping, startxref from tricky file tails, the cross-reference table and
 * stream writers, ByteRange placement, the QR code's merged runs, the appearance template, the
 * PNG logo, streaming atomic output, refusals of a non-PDF, a truncated and a page-less file,
 * and a whole update built over a small PDF made here and read back with qpdf. The signed
 * results are checked end to end (pdfsig, qpdf --check, zbarimg) by test/test_pdf.py.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <qpdf/qpdf-c.h>
#include <qrencode.h>

#include "pdf-write.h"
#include "pf-util.h"

static char tmpdir[64];

static char *
path_of(const char *name)
{
	static char buf[8][256];
	static int k;

	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmpdir, name);
	return buf[k];
}

static void
write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static int
setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-pdf-write.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The buffer as a NUL-terminated string (it stays owned by b). */
static const char *
buf_str(struct pf_buf *b)
{
	pf_buf_put(b, "", 1);
	b->len--;
	assert_int_equal(pf_buf_status(b), 0);
	return (const char *)b->data;
}

static void
test_string_escape(void **state)
{
	struct pf_buf b;

	pf_buf_init(&b);
	pdf_string_put(&b, "a(b)c\\d\n\x01\xe9", 10);
	assert_string_equal(buf_str(&b), "(a\\(b\\)c\\\\d\\012\\001\\351)");
	pf_buf_release(&b);

	pf_buf_init(&b);
	pdf_string_put(&b, "", 0);
	pdf_hexstring_put(&b, "\x00\xff\x10", 3);
	assert_string_equal(buf_str(&b), "()<00ff10>");
	pf_buf_release(&b);
}

static void
test_name_escape(void **state)
{
	struct pf_buf b;

	pf_buf_init(&b);
	pdf_name_put(&b, "Adobe.PPKLite");
	pdf_name_put(&b, "A b#(x)/%\xc3");
	assert_string_equal(buf_str(&b), "/Adobe.PPKLite/A#20b#23#28x#29#2F#25#C3");
	pf_buf_release(&b);
}

static void
test_text_string(void **state)
{
	struct pf_buf b;

	pf_buf_init(&b);
	assert_int_equal(pdf_text_put(&b, "Kota (Contoh)"), 0);
	assert_string_equal(buf_str(&b), "(Kota \\(Contoh\\))");
	pf_buf_release(&b);

	/* é, an en dash and U+1F600 (a surrogate pair) */
	pf_buf_init(&b);
	assert_int_equal(pdf_text_put(&b, "\xc3\xa9\xe2\x80\x93\xf0\x9f\x98\x80"), 0);
	assert_string_equal(buf_str(&b), "<feff00e92013d83dde00>");
	pf_buf_release(&b);

	pf_buf_init(&b);
	assert_int_equal(pdf_text_put(&b, "\xc3("), -EINVAL);
	pf_buf_release(&b);
}

static void
test_real(void **state)
{
	static const struct {
		double v;
		const char *s;
	} cases[] = {
		{ 0, "0" }, { 1.5, "1.5" }, { 2.0, "2" }, { -0.0001, "0" }, { 85.03937, "85.039" },
		{ -12.25, "-12.25" }, { 1e12, "0" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct pf_buf b;

		pf_buf_init(&b);
		pdf_real_put(&b, cases[i].v);
		assert_string_equal(buf_str(&b), cases[i].s);
		pf_buf_release(&b);
	}
}

static void
test_winansi_and_wrap(void **state)
{
	char *w = NULL;
	size_t starts[8], lens[8], n;
	int trunc;

	/* Latin-1 kept, the rest (CJK, en dash, controls) '?' */
	assert_int_equal(pdf_winansi_from_utf8("Caf\xc3\xa9 \xe6\x97\xa5\xe2\x80\x93\t", &w), 0);
	assert_string_equal(w, "Caf\xe9 ???");
	free(w);
	assert_int_equal(pdf_winansi_from_utf8("\xff", &w), -EINVAL);

	/* Helvetica: 'a' is 556/1000 em, space 278 */
	assert_true(pdf_text_width(PDF_FONT_REGULAR, 10, "a", 1) == 5.56);
	assert_true(pdf_text_width(PDF_FONT_BOLD, 10, "rrr", 3) > pdf_text_width(PDF_FONT_REGULAR,
										10, "rrr", 3));

	/* "aaa bbb ccc": 3 letters are 16.68 pt at 10 pt; 40 pt holds "aaa bbb" (36.14) */
	n = pdf_text_wrap(PDF_FONT_REGULAR, 10, "aaa bbb ccc", 40, 8, starts, lens, &trunc);
	assert_int_equal(n, 2);
	assert_int_equal(starts[0], 0);
	assert_int_equal(lens[0], 7);
	assert_int_equal(starts[1], 8);
	assert_int_equal(lens[1], 3);
	assert_false(trunc);
	/* at most one line: the rest is cut and said so */
	n = pdf_text_wrap(PDF_FONT_REGULAR, 10, "aaa bbb ccc", 40, 1, starts, lens, &trunc);
	assert_int_equal(n, 1);
	assert_true(trunc);
	/* a word longer than a line is cut inside */
	n = pdf_text_wrap(PDF_FONT_REGULAR, 10, "aaaaaaaaaa", 20, 8, starts, lens, &trunc);
	assert_int_equal(n, 4); /* 3 + 3 + 3 + 1 */
	assert_int_equal(lens[0], 3);
}

static void
test_date(void **state)
{
	char buf[32];

	pdf_date_format(1795250400, buf, sizeof(buf)); /* 2026-11-21T08:40:00Z */
	assert_string_equal(buf, "D:20261121084000+00'00'");
}

static void
test_tail_startxref(void **state)
{
	static const struct {
		const char *tail;
		int r;
		uint64_t off;
	} cases[] = {
		{ "trailer\n<< >>\nstartxref\n1234\n%%EOF\n", 0, 1234 },
		{ "startxref\r\n1234\r\n%%EOF\r\n", 0, 1234 },
		{ "startxref\r1234\r%%EOF", 0, 1234 },                    /* no final EOL */
		{ "startxref 1234 %%EOF \n\n\t  \r\n", 0, 1234 },         /* white space after */
		{ "startxref\n1234\n%%EOF\n%%EOF\n", 0, 1234 },           /* %%EOF twice */
		{ "startxref\n1234\n%%EOF\n% written by X\n", 0, 1234 },  /* a comment after */
		{ "startxref\n1\n%%EOF\nstartxref\n99\n%%EOF\n", 0, 99 }, /* the last one */
		{ ">>startxref\n7\n%%EOF", 0, 7 },
		{ "startxref\n1234\n%%EOF\0\0\0", 0, 1234 },              /* NUL padding */
		{ "startxref\n1234\n", -EBADMSG, 0 },                     /* no %%EOF */
		{ "startxref\n%%EOF\n", -EBADMSG, 0 },                    /* no offset */
		{ "startxref\n12a4\n%%EOF\n", -EBADMSG, 0 },
		{ "startxref\n1234\n%%EOF\n1 0 obj\n<< >>\n", -EBADMSG, 0 }, /* data after */
		{ "startxref\n1234\n%%EO", -EBADMSG, 0 },                 /* truncated */
		{ "xstartxref\n1\n%%EOF\n", -EBADMSG, 0 },
		{ "trailer << >>\n%%EOF\n", -EBADMSG, 0 },
		{ "startxref\n99999999999999999999\n%%EOF\n", -EBADMSG, 0 },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t off = 0;
		size_t n = strlen(cases[i].tail);
		int r;

		if (i == 8)
			n += 3; /* the NULs */
		r = pdf_tail_startxref((const uint8_t *)cases[i].tail, n, &off);
		print_message("tail %zu: %d\n", i, r);
		assert_int_equal(r, cases[i].r);
		if (r == 0)
			assert_int_equal(off, cases[i].off);
	}
}

static int
open_file(const char *name, const char *content, size_t n)
{
	int fd;

	write_file(path_of(name), content, n);
	fd = open(path_of(name), O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static void
test_file_startxref(void **state)
{
	static const char classic[] = "%PDF-1.4\nxref\n0 1\n0000000000 65535 f \ntrailer\n<< >>\n"
				      "startxref\n9\n%%EOF\n";
	static const char stream[] = "%PDF-1.5\n12 0 obj\n<< /Type /XRef >>\nendobj\n"
				     "startxref\n9\n%%EOF\n";
	static const char beyond[] = "%PDF-1.4\nstartxref\n999\n%%EOF\n";
	static const char nothing[] = "%PDF-1.4\nhello\nstartxref\n9\n%%EOF\n";
	uint64_t off;
	int fd, kind;

	fd = open_file("classic.pdf", classic, sizeof(classic) - 1);
	assert_int_equal(pdf_file_startxref(fd, sizeof(classic) - 1, &off, &kind), 0);
	assert_int_equal(off, 9);
	assert_int_equal(kind, 0);
	assert_int_equal(pdf_file_has_header(fd), 1);
	close(fd);

	fd = open_file("stream.pdf", stream, sizeof(stream) - 1);
	assert_int_equal(pdf_file_startxref(fd, sizeof(stream) - 1, &off, &kind), 0);
	assert_int_equal(kind, 1);
	close(fd);

	fd = open_file("beyond.pdf", beyond, sizeof(beyond) - 1);
	assert_int_equal(pdf_file_startxref(fd, sizeof(beyond) - 1, &off, &kind), -EBADMSG);
	close(fd);

	fd = open_file("nothing.pdf", nothing, sizeof(nothing) - 1);
	assert_int_equal(pdf_file_startxref(fd, sizeof(nothing) - 1, &off, &kind), -EBADMSG);
	close(fd);

	fd = open_file("text.pdf", "just text\n", 10);
	assert_int_equal(pdf_file_has_header(fd), 0);
	close(fd);
}

static void
test_xref_table(void **state)
{
	const struct pdf_xref_entry e[] = {
		{ .num = 9, .gen = 0, .offset = 1500 },
		{ .num = 1, .gen = 0, .offset = 2000 },
		{ .num = 8, .gen = 0, .offset = 1207 },
		{ .num = 6, .gen = 2, .offset = 1900 },
	};
	const struct pdf_xref_entry dup[] = { { .num = 3 }, { .num = 3 } };
	struct pf_buf b;
	const char *s, *line;

	pf_buf_init(&b);
	assert_int_equal(pdf_xref_table_put(&b, e, ARRAY_SIZE(e)), 0);
	s = buf_str(&b);
	assert_string_equal(s, "xref\n"
			       "1 1\n0000002000 00000 n\r\n"
			       "6 1\n0000001900 00002 n\r\n"
			       "8 2\n0000001207 00000 n\r\n0000001500 00000 n\r\n");
	/* every entry exactly 20 bytes */
	line = strstr(s, "0000002000");
	assert_int_equal(strchr(line, '\n') - line + 1, 20);
	pf_buf_release(&b);

	pf_buf_init(&b);
	assert_int_equal(pdf_xref_table_put(&b, dup, 2), -EINVAL);
	pf_buf_release(&b);
}

static void
test_xref_stream(void **state)
{
	const struct pdf_xref_entry e[] = {
		{ .num = 11, .gen = 0, .offset = 0x10203 },
		{ .num = 10, .gen = 0, .offset = 0x100 },
		{ .num = 4, .gen = 1, .offset = 0x50 },
	};
	struct pf_buf b;
	const char *s, *data;
	const uint8_t *d;

	pf_buf_init(&b);
	assert_int_equal(pdf_xref_stream_put(&b, e, ARRAY_SIZE(e), 12, 0x20000, "/Size 13 /Prev 5"),
		0);
	s = buf_str(&b);
	/* offsets up to 0x20000 need 3 bytes; rows are 1 + 3 + 2 = 6 bytes, 4 rows */
	assert_non_null(strstr(s, "12 0 obj\n<< /Type /XRef /W [1 3 2] /Index [4 1 10 3] "
				  "/Size 13 /Prev 5 /Length 24 >>\nstream\n"));
	data = strstr(s, "stream\n") + 7;
	d = (const uint8_t *)data;
	/* 4 gen 1 at 0x50 */
	assert_memory_equal(d, "\x01\x00\x00\x50\x00\x01", 6);
	/* 10, 11, then the stream itself (12) at 0x20000 */
	assert_memory_equal(d + 6, "\x01\x00\x01\x00\x00\x00", 6);
	assert_memory_equal(d + 12, "\x01\x01\x02\x03\x00\x00", 6);
	assert_memory_equal(d + 18, "\x01\x02\x00\x00\x00\x00", 6);
	assert_memory_equal(d + 24, "\nendstream\nendobj\nstartxref\n131072\n%%EOF\n", 41);
	pf_buf_release(&b);
}

static void
test_byterange(void **state)
{
	uint64_t br[4];
	uint8_t ph[PDF_BYTERANGE_WIDTH + 1];
	const uint64_t big[4] = { 0, 999999999999999ull, 999999999999999ull, 999999999999999ull };

	/* 1000 bytes of original, an update of 500 whose hole is [100, 300) */
	assert_int_equal(pdf_byterange_compute(1000, 500, 100, 300, br), 0);
	assert_int_equal(br[0], 0);
	assert_int_equal(br[1], 1100);
	assert_int_equal(br[2], 1300);
	assert_int_equal(br[3], 200);
	/* the ranges and the hole make the whole file */
	assert_int_equal(br[1] + (br[2] - br[1]) + br[3], 1500);
	assert_int_equal(pdf_byterange_compute(1000, 500, 300, 100, br), -EINVAL);
	assert_int_equal(pdf_byterange_compute(1000, 500, 100, 501, br), -EINVAL);

	memset(ph, 'x', sizeof(ph));
	assert_int_equal(pdf_byterange_patch(ph, (const uint64_t[]){ 0, 1100, 1300, 200 }), 0);
	assert_memory_equal(ph, "[0 1100 1300 200]", 17);
	for (size_t i = 17; i < PDF_BYTERANGE_WIDTH; i++)
		assert_int_equal(ph[i], ' ');
	assert_int_equal(ph[PDF_BYTERANGE_WIDTH], 'x'); /* nothing written past it */
	assert_int_equal(pdf_byterange_patch(ph, big), -EOVERFLOW);

	/* the estimate holds a certificate and a signature, and more with a timestamp */
	assert_true(pdf_contents_estimate(1200, 256, false) >= 1200 + 256 + 2048);
	assert_true(pdf_contents_estimate(1200, 256, true) > pdf_contents_estimate(1200, 256,
								    false) + 16000);
}

/* Counts the "re" operators, and checks their area against the dark modules. */
static void
test_qr_runs(void **state)
{
	const char *url = "https://tte.contoh.go.id/verifikasi/"
			  "c58890a4c866f7123642ef351153e76aec6e88891450eab4872d670f9981d53e";
	struct pf_buf b;
	QRcode *qr;
	const char *s, *p;
	size_t runs = 0, dark = 0, rects = 0;
	double area = 0, m;
	int modules, x, y;

	qr = QRcode_encodeString(url, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	assert_non_null(qr);
	for (y = 0; y < qr->width; y++)
		for (x = 0; x < qr->width; x++)
			if (qr->data[y * qr->width + x] & 1) {
				dark++;
				if (x == 0 || !(qr->data[y * qr->width + x - 1] & 1))
					runs++;
			}
	pf_buf_init(&b);
	assert_int_equal(pdf_qr_draw(&b, url, 10, 20, PDF_QR_SIZE, &modules), 0);
	assert_int_equal(modules, qr->width);
	m = PDF_QR_SIZE / modules;
	s = buf_str(&b);
	/* the white quiet zone first: 4 modules around the symbol */
	assert_non_null(strstr(s, "q 1 g "));
	/* then one rectangle per horizontal run, all filled once, in black */
	p = strstr(s, "q 0 g\n");
	assert_non_null(p);
	p += 6;
	while (*p && strncmp(p, "f Q", 3) != 0) {
		double rx, ry, rw, rh;

		assert_int_equal(sscanf(p, "%lf %lf %lf %lf re", &rx, &ry, &rw, &rh), 4);
		assert_true(rx >= 10 - 0.01 && ry >= 20 - 0.01);
		assert_true(rx + rw <= 10 + PDF_QR_SIZE + 0.01);
		assert_true(ry + rh <= 20 + PDF_QR_SIZE + 0.01);
		area += rw * rh;
		rects++;
		p = strchr(p, '\n') + 1;
	}
	assert_int_equal(rects, runs);
	assert_true(rects < dark); /* runs were merged */
	assert_true(area > dark * m * m * 0.99 && area < dark * m * m * 1.01);
	QRcode_free(qr);
	pf_buf_release(&b);

	/* too long for any QR code */
	{
		char *huge = malloc(8000);

		memset(huge, 'a', 7999);
		huge[7999] = 0;
		pf_buf_init(&b);
		assert_int_equal(pdf_qr_draw(&b, huge, 0, 0, PDF_QR_SIZE, &modules), -E2BIG);
		pf_buf_release(&b);
		free(huge);
	}
}

static void
test_appearance_conf(void **state)
{
	struct pdf_appearance_conf *c = NULL;
	char *err = NULL, *s = NULL;

	static const char good[] = "# x\n[appearance]\nverify_url = https://v.go.id/d/{id}?x={id}\n"
				   "issuer_name = BSrE Uji\n";

	write_file(path_of("a.conf"), good, strlen(good));
	assert_int_equal(pdf_appearance_conf_load(path_of("a.conf"), &c, &err), 0);
	assert_string_equal(c->issuer_name, "BSrE Uji");
	assert_string_equal(c->signed_by_text, "Ditandatangani secara elektronik oleh :");
	assert_null(c->logo);
	assert_int_equal(pdf_appearance_url(c, "abc", &s), 0);
	assert_string_equal(s, "https://v.go.id/d/abc?x=abc");
	free(s);
	assert_int_equal(pdf_appearance_footer(c, &s), 0);
	assert_string_equal(s, "Dokumen ini telah ditandatangani secara elektronik menggunakan "
			       "sertifikat elektronik yang diterbitkan oleh BSrE Uji");
	free(s);
	pdf_appearance_conf_free(c);

	static const struct {
		const char *text, *msg;
	} bad[] = {
		{ "[appearance]\nverify_url = https://x/{id}\ncolour = red\n", "unknown key 'colour'" },
		{ "[appearance]\nissuer_name = X\n", "'verify_url' is required" },
		{ "[appearance]\nverify_url = https://x/static\n", "'{id}'" },
		{ "[appearance]\nverify_url = ftp://x/{id}\n", "http://" },
		{ "[appearance]\nverify_url = https://x/{id} y\n", "spaces" },
		{ "[look]\nverify_url = https://x/{id}\n", "unknown section" },
		{ "[appearance]\nverify_url = https://x/{id}\nverify_url = https://y/{id}\n", "twice" },
		{ "[appearance]\nverify_url = https://x/{id}\nfooter_text =\n", "empty" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		write_file(path_of("b.conf"), bad[i].text, strlen(bad[i].text));
		c = NULL;
		err = NULL;
		assert_true(pdf_appearance_conf_load(path_of("b.conf"), &c, &err) < 0);
		assert_null(c);
		assert_non_null(err);
		print_message("%s\n", err);
		assert_non_null(strstr(err, bad[i].msg));
		assert_non_null(strstr(err, ":")); /* names the file and line */
		free(err);
	}
	err = NULL;
	assert_int_equal(pdf_appearance_conf_load(path_of("none.conf"), &c, &err), -ENOENT);
	free(err);
}

static void
test_block_form(void **state)
{
	const struct pdf_block_text t = {
		.signed_by = "Ditandatangani secara elektronik oleh :",
		.position = "Kepala Dinas (Kominfo)",
		.name = "Budi Santoso",
		.nip = "197803152005011002",
		.issuer = "Sertifikat elektronik diterbitkan oleh BSrE",
	};
	struct pdf_form f = {};
	const char *s;

	assert_int_equal(pdf_block_form("https://x/abc", &t, 0, &f), 0);
	s = buf_str(&f.content);
	assert_true(f.height >= PDF_QR_SIZE);
	assert_true(f.width > PDF_QR_SIZE + 100);
	assert_non_null(strstr(s, "/F1 7 Tf"));
	assert_non_null(strstr(s, "(Ditandatangani secara elektronik oleh :) Tj"));
	assert_non_null(strstr(s, "/F2 7.5 Tf"));
	assert_non_null(strstr(s, "(Kepala Dinas \\(Kominfo\\)) Tj"));
	assert_non_null(strstr(s, "(NIP. 197803152005011002) Tj"));
	assert_non_null(strstr(s, "/F3 6.5 Tf")); /* the italic issuer line */
	assert_false(f.uses_logo);
	pdf_form_release(&f);

	assert_int_equal(pdf_footer_form("Dokumen ini telah ditandatangani secara elektronik "
					 "menggunakan sertifikat elektronik yang diterbitkan oleh "
					 "BSrE",
				 200, &f),
		0);
	s = buf_str(&f.content);
	assert_non_null(strstr(s, "/F1 7 Tf"));
	assert_true(f.height > 2 * 8); /* wrapped into several lines at 200 pt */
	pdf_form_release(&f);
}

static void
test_png(void **state)
{
	/* 1x1 grey PNG, and the same header claiming RGBA */
	static const uint8_t grey[] = {
		0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
		0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0, 0x3a, 0x7e,
		0x9b, 0x55,
		0, 0, 0, 10, 'I', 'D', 'A', 'T', 0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00,
		0x01, 0xe5, 0x27, 0xde, 0xfc,
		0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82,
	};
	uint8_t rgba[sizeof(grey)];
	struct pdf_image im = {};
	char *err = NULL;

	write_file(path_of("g.png"), grey, sizeof(grey));
	assert_int_equal(pdf_png_load(path_of("g.png"), &im, &err), 0);
	assert_int_equal(im.width, 1);
	assert_non_null(strstr((const char *)im.dict_and_stream.data,
		"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode "
		"/DecodeParms << /Predictor 15 /Colors 1 /BitsPerComponent 8 /Columns 1 >> "
		"/Length 10 >>"));
	pdf_image_release(&im);

	memcpy(rgba, grey, sizeof(grey));
	rgba[8 + 8 + 9] = 6;
	write_file(path_of("a.png"), rgba, sizeof(rgba));
	assert_int_equal(pdf_png_load(path_of("a.png"), &im, &err), -ENOTSUP);
	assert_non_null(strstr(err, "alpha"));
	free(err);

	write_file(path_of("t.png"), grey, 20);
	assert_int_equal(pdf_png_load(path_of("t.png"), &im, &err), -EINVAL);
	free(err);
}

/* A small classic PDF: a catalog, a page tree with n pages, their contents. */
static size_t
make_pdf(char *out, size_t cap, int n_pages)
{
	size_t len = 0, offs[16];
	int i, nobj = 2 + 2 * n_pages;

	len += (size_t)snprintf(out + len, cap - len, "%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n");
	offs[1] = len;
	len += (size_t)snprintf(out + len, cap - len, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\n"
						      "endobj\n");
	offs[2] = len;
	len += (size_t)snprintf(out + len, cap - len,
		"2 0 obj\n<< /Type /Pages /MediaBox [0 0 595 842] /Count %d /Kids [", n_pages);
	for (i = 0; i < n_pages; i++)
		len += (size_t)snprintf(out + len, cap - len, " %d 0 R", 3 + 2 * i);
	len += (size_t)snprintf(out + len, cap - len, "] >>\nendobj\n");
	for (i = 0; i < n_pages; i++) {
		offs[3 + 2 * i] = len;
		len += (size_t)snprintf(out + len, cap - len,
			"%d 0 obj\n<< /Type /Page /Parent 2 0 R /Contents %d 0 R >>\nendobj\n",
			3 + 2 * i, 4 + 2 * i);
		offs[4 + 2 * i] = len;
		len += (size_t)snprintf(out + len, cap - len,
			"%d 0 obj\n<< /Length 0 >>\nstream\n\nendstream\nendobj\n", 4 + 2 * i);
	}
	offs[0] = len;
	len += (size_t)snprintf(out + len, cap - len, "xref\n0 %d\n0000000000 65535 f \n",
		nobj + 1);
	for (i = 1; i <= nobj; i++)
		len += (size_t)snprintf(out + len, cap - len, "%010zu 00000 n \n", offs[i]);
	len += (size_t)snprintf(out + len, cap - len,
		"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n", nobj + 1, offs[0]);
	return len;
}

static int
open_path(const char *p, uint64_t *size)
{
	struct stat st;
	int fd = open(p, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	*size = (uint64_t)st.st_size;
	return fd;
}

static void
test_read_refusals(void **state)
{
	char pdf[4096], *err = NULL;
	size_t n = make_pdf(pdf, sizeof(pdf), 1);
	struct pdf_doc *d = NULL;
	uint64_t size;
	int fd;

	write_file(path_of("notpdf.pdf"), "Surat ini bukan PDF.\n", 21);
	fd = open_path(path_of("notpdf.pdf"), &size);
	assert_int_equal(pdf_doc_open(fd, size, &d, &err), -EMEDIUMTYPE);
	assert_null(d);
	assert_non_null(strstr(err, "not a PDF"));
	free(err);
	close(fd);

	write_file(path_of("trunc.pdf"), pdf, n * 6 / 10);
	fd = open_path(path_of("trunc.pdf"), &size);
	err = NULL;
	assert_int_equal(pdf_doc_open(fd, size, &d, &err), -EBADMSG);
	assert_non_null(strstr(err, "truncated"));
	free(err);
	close(fd);

	n = make_pdf(pdf, sizeof(pdf), 0);
	write_file(path_of("zero.pdf"), pdf, n);
	fd = open_path(path_of("zero.pdf"), &size);
	err = NULL;
	assert_int_equal(pdf_doc_open(fd, size, &d, &err), -ENODATA);
	free(err);
	close(fd);

	/* every xref offset wrong: qpdf would repair it, the signer refuses */
	n = make_pdf(pdf, sizeof(pdf), 1);
	memmove(pdf + 20, pdf + 9, n - 9);
	memset(pdf + 9, '%', 11);
	pdf[19] = '\n';
	write_file(path_of("shifted.pdf"), pdf, n + 11);
	fd = open_path(path_of("shifted.pdf"), &size);
	err = NULL;
	assert_int_equal(pdf_doc_open(fd, size, &d, &err), -EBADMSG);
	free(err);
	close(fd);
}

/* A whole invisible update over a 2-page PDF; the result read back with qpdf. */
static void
test_update_invisible(void **state)
{
	char pdf[4096], *err = NULL, *all;
	size_t n = make_pdf(pdf, sizeof(pdf), 2);
	struct pdf_sign_opts o = { .page = 1, .when = 1795250400, .contents_max = 100,
		.reason = "Menyetujui", .name = "Budi Santoso" };
	struct pdf_doc *d = NULL;
	struct pdf_update *u = NULL;
	qpdf_data q;
	qpdf_oh af, f;
	uint64_t size;
	const char *s;
	int fd;

	write_file(path_of("two.pdf"), pdf, n);
	fd = open_path(path_of("two.pdf"), &size);
	assert_int_equal(pdf_doc_open(fd, size, &d, &err), 0);
	assert_int_equal(pdf_doc_n_pages(d), 2);
	assert_int_equal(pdf_doc_xref_stream(d), 0);
	o.page = 2;
	assert_int_equal(pdf_update_build(d, &o, &u, &err), -ERANGE);
	free(err);
	o.page = 1;
	assert_int_equal(pdf_update_build(d, &o, &u, &err), 0);
	pdf_doc_free(d);
	close(fd);

	/* the hole: 200 zeros between angle brackets, excluded by the ByteRange */
	assert_int_equal(u->hole_end - u->hole_start, 202);
	assert_int_equal(u->buf.data[u->hole_start], '<');
	assert_int_equal(u->buf.data[u->hole_end - 1], '>');
	assert_int_equal(u->byterange[1], n + u->hole_start);
	assert_int_equal(u->byterange[2], n + u->hole_end);
	assert_int_equal(u->byterange[2] + u->byterange[3], n + u->buf.len);
	assert_string_equal(u->field_name, "Signature 1");
	s = buf_str(&u->buf);
	assert_non_null(strstr(s, "/Type /Sig /Filter /Adobe.PPKLite /SubFilter "
				  "/ETSI.CAdES.detached /M (D:20261121084000+00'00') "
				  "/Name (Budi Santoso) /Reason (Menyetujui)"));
	assert_non_null(strstr(s, "/FT /Sig /T (Signature 1) /V 7 0 R /F 132 /P 5 0 R "
				  "/Rect [0 0 0 0]"));
	assert_non_null(strstr(s, "/Fields [ 8 0 R ] /SigFlags 3"));
	assert_non_null(strstr(s, "/Annots [ 8 0 R ]"));
	assert_non_null(strstr(s, "trailer\n<< /Size 9 /Root 1 0 R /ID ["));
	assert_non_null(strstr(s, "/Prev "));

	/* The signed file (hole still zeros) reads cleanly, with the field in its form. */
	all = malloc(n + u->buf.len);
	memcpy(all, pdf, n);
	memcpy(all + n, u->buf.data, u->buf.len);
	write_file(path_of("two-signed.pdf"), all, n + u->buf.len);
	free(all);
	q = qpdf_init();
	qpdf_silence_errors(q);
	qpdf_set_attempt_recovery(q, QPDF_FALSE);
	assert_int_equal(qpdf_read(q, path_of("two-signed.pdf"), NULL) & QPDF_ERRORS, 0);
	assert_false(qpdf_more_warnings(q));
	af = qpdf_oh_get_key(q, qpdf_get_root(q), "/AcroForm");
	assert_int_equal(qpdf_oh_get_int_value(q, qpdf_oh_get_key(q, af, "/SigFlags")), 3);
	f = qpdf_oh_get_array_item(q, qpdf_oh_get_key(q, af, "/Fields"), 0);
	assert_true(qpdf_oh_is_name_and_equals(q, qpdf_oh_get_key(q, f, "/FT"), "/Sig"));
	assert_int_equal(qpdf_get_num_pages(q), 2);
	assert_false(qpdf_more_warnings(q));
	qpdf_cleanup(&q);

	/* A CMS larger than the hole is refused; one that fits is written as hex. */
	fd = open(path_of("two-signed.pdf"), O_RDWR | O_CLOEXEC);
	{
		uint8_t der[101] = { 0x30, 0x03, 0x02, 0x01, 0xab };
		char hex[16];

		assert_int_equal(pdf_update_contents_write(u, fd, der, 101), -EOVERFLOW);
		assert_int_equal(pdf_update_contents_write(u, fd, der, 5), 0);
		assert_int_equal(pread(fd, hex, 12, (off_t)(n + u->hole_start)), 12);
		assert_memory_equal(hex, "<30030201ab00", 12);
	}
	close(fd);
	pdf_update_free(u);
}

static void
test_out_atomic(void **state)
{
	struct pdf_out o;
	uint64_t size;
	int fd;
	struct stat st;

	write_file(path_of("src.bin"), "0123456789", 10);
	fd = open_path(path_of("src.bin"), &size);
	assert_int_equal(pdf_out_open(path_of("dst.bin"), &o), 0);
	assert_int_equal(pdf_out_copy(&o, fd, size, NULL), 0);
	assert_int_equal(pdf_out_write(&o, "ab", 2), 0);
	assert_int_equal(stat(path_of("dst.bin"), &st), -1); /* not there before commit */
	assert_int_equal(pdf_out_commit(&o, false), 0);
	pdf_out_discard(&o);
	assert_int_equal(stat(path_of("dst.bin"), &st), 0);
	assert_int_equal(st.st_size, 12);

	/* never replaced without overwrite; the temporary file goes away */
	assert_int_equal(pdf_out_open(path_of("dst.bin"), &o), 0);
	assert_int_equal(pdf_out_copy(&o, fd, size, NULL), 0);
	assert_int_equal(pdf_out_commit(&o, false), -EEXIST);
	pdf_out_discard(&o);
	assert_int_equal(stat(path_of("dst.bin"), &st), 0);
	assert_int_equal(st.st_size, 12);

	/* a source shorter than said is noticed */
	assert_int_equal(pdf_out_open(path_of("dst2.bin"), &o), 0);
	assert_int_equal(pdf_out_copy(&o, fd, size + 5, NULL), -ESTALE);
	pdf_out_discard(&o);
	assert_int_equal(stat(path_of("dst2.bin"), &st), -1);
	close(fd);
	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | grep -c '^\\.') -eq 0", tmpdir);
		assert_int_equal(system(cmd), 0); /* no temporary file left */
	}
}

static void
test_tsa_url(void **state)
{
	assert_true(pdf_tsa_url_valid("https://tsa.example.go.id/tsr"));
	assert_true(pdf_tsa_url_valid("http://127.0.0.1:8080/"));
	assert_false(pdf_tsa_url_valid("ftp://tsa.example/"));
	assert_false(pdf_tsa_url_valid("https://"));
	assert_false(pdf_tsa_url_valid("https:///x"));
	assert_false(pdf_tsa_url_valid("https://a b/"));
	assert_false(pdf_tsa_url_valid("file:///etc/passwd"));
}

#define T(name, fn) { name, fn, NULL, NULL, NULL }

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T("/pdf/syntax/string-escape", test_string_escape),
		T("/pdf/syntax/name-escape", test_name_escape),
		T("/pdf/syntax/text-string", test_text_string),
		T("/pdf/syntax/real", test_real),
		T("/pdf/syntax/winansi-and-wrap", test_winansi_and_wrap),
		T("/pdf/syntax/date", test_date),
		T("/pdf/tail/startxref", test_tail_startxref),
		T("/pdf/tail/file", test_file_startxref),
		T("/pdf/xref/table", test_xref_table),
		T("/pdf/xref/stream", test_xref_stream),
		T("/pdf/update/byterange", test_byterange),
		T("/pdf/appearance/qr-runs", test_qr_runs),
		T("/pdf/appearance/conf", test_appearance_conf),
		T("/pdf/appearance/block", test_block_form),
		T("/pdf/appearance/png", test_png),
		T("/pdf/read/refusals", test_read_refusals),
		T("/pdf/update/invisible", test_update_invisible),
		T("/pdf/out/atomic", test_out_atomic),
		T("/pdf/tsa/url", test_tsa_url),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
