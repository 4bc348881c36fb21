/*
 * The end of a PDF: where its last cross-reference section starts (the new trailer's /Prev)
 * and what kind it is (the update's own section is of the same kind). qpdf's C API gives
 * neither, so they are read here from the bytes. A tail that is not "startxref N %%EOF"
 * followed only by white space and comments is refused: it is a truncated file, or one with
 * data appended after its last revision, and an update appended to it would not be read as
 * the signer saw it.
 */
#include "pdf-write.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "pf-util.h"

/* ISO 32000 7.2.3: NUL, HT, LF, FF, CR, SP. */
static int
is_ws(uint8_t c)
{
	return c == 0 || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' ';
}

static int
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

int
pdf_tail_startxref(const uint8_t *t, size_t n, uint64_t *ret)
{
	static const char kw[] = "startxref";
	const size_t kwlen = sizeof(kw) - 1;
	size_t i, p, digits = 0;
	uint64_t off = 0;
	int found = 0;

	if (n > PDF_TAIL_MAX || n < kwlen)
		return -EBADMSG;
	for (i = n - kwlen + 1; i-- > 0;)
		if (memcmp(t + i, kw, kwlen) == 0) {
			found = 1;
			break;
		}
	if (!found)
		return -EBADMSG;
	p = i + kwlen;
	/* "startxrefs" or "xstartxref" are other tokens. */
	if ((p < n && !is_ws(t[p])) || (i > 0 && !is_ws(t[i - 1]) && t[i - 1] != '>'))
		return -EBADMSG;
	while (p < n && is_ws(t[p]))
		p++;
	while (p < n && is_digit(t[p])) {
		if (++digits > 19)
			return -EBADMSG;
		off = off * 10 + (uint64_t)(t[p] - '0');
		p++;
	}
	if (!digits)
		return -EBADMSG;
	while (p < n && is_ws(t[p]))
		p++;
	if (n - p < 5 || memcmp(t + p, "%%EOF", 5) != 0)
		return -EBADMSG;
	p += 5;
	/* Then white space and comments only ("%%EOF" lines again, producers' notes). */
	while (p < n) {
		if (is_ws(t[p])) {
			p++;
			continue;
		}
		if (t[p] != '%')
			return -EBADMSG;
		while (p < n && t[p] != '\n' && t[p] != '\r')
			p++;
	}
	*ret = off;
	return 0;
}

static int
pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return pf_negerrno();
		}
		if (k == 0)
			return -ESTALE;
		got += (size_t)k;
	}
	return 0;
}

int
pdf_file_has_header(int fd)
{
	uint8_t h[8];

	/*
	 * At byte 0 only: readers disagree on whether offsets count from the file's start or
	 * from a header found later, and the update's offsets must mean the same to all.
	 */
	if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return 0;
	return memcmp(h, "%PDF-", 5) == 0 && (h[5] == '1' || h[5] == '2') && h[6] == '.' &&
	       is_digit(h[7]);
}

int
pdf_file_startxref(int fd, uint64_t size, uint64_t *ret_offset, int *ret_xref_stream)
{
	uint8_t t[PDF_TAIL_MAX], at[64];
	size_t n = size < PDF_TAIL_MAX ? (size_t)size : PDF_TAIL_MAX;
	size_t k, i = 0;
	uint64_t off;
	int r;

	r = pread_all(fd, t, n, size - n);
	if (r < 0)
		return r;
	r = pdf_tail_startxref(t, n, &off);
	if (r < 0)
		return r;
	if (off >= size)
		return -EBADMSG;
	k = size - off < sizeof(at) ? (size_t)(size - off) : sizeof(at);
	r = pread_all(fd, at, k, off);
	if (r < 0)
		return r;
	if (k >= 4 && memcmp(at, "xref", 4) == 0) {
		*ret_offset = off;
		*ret_xref_stream = 0;
		return 0;
	}
	/* "N G obj": a cross-reference stream object. */
	for (int part = 0; part < 2; part++) {
		size_t start = i;

		while (i < k && is_digit(at[i]))
			i++;
		if (i == start || i >= k || !is_ws(at[i]))
			return -EBADMSG;
		while (i < k && is_ws(at[i]))
			i++;
	}
	if (k - i < 3 || memcmp(at + i, "obj", 3) != 0)
		return -EBADMSG;
	*ret_offset = off;
	*ret_xref_stream = 1;
	return 0;
}
