/*
 * PDF syntax for what the signer writes: literal, hex and text strings, names, numbers, dates,
 * and the conversion of UTF-8 to the WinAnsi bytes the standard 14 fonts draw. Everything is
 * appended to a pf_buf; its errors stick and are checked once by the caller.
 */
#include "pdf-write.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pf-codec.h"
#include "pf-util.h"

void
pdf_printf(struct pf_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		if (!b->error)
			b->error = -EINVAL;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		pf_buf_put(b, small, (size_t)n);
		return;
	}
	if (pf_buf_reserve(b, (size_t)n + 1) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void
pdf_puts(struct pf_buf *b, const char *s)
{
	pf_buf_put(b, s, strlen(s));
}

void
pdf_string_put(struct pf_buf *b, const void *s, size_t n)
{
	const uint8_t *p = s;
	size_t i;

	pf_buf_put(b, "(", 1);
	for (i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (c == '(' || c == ')' || c == '\\') {
			uint8_t e[2] = { '\\', c };

			pf_buf_put(b, e, 2);
		} else if (c < 0x20 || c > 0x7e) {
			char e[5];

			snprintf(e, sizeof(e), "\\%03o", c);
			pf_buf_put(b, e, 4);
		} else
			pf_buf_put(b, &c, 1);
	}
	pf_buf_put(b, ")", 1);
}

void
pdf_hexstring_put(struct pf_buf *b, const void *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *p = s;
	size_t i;

	pf_buf_put(b, "<", 1);
	for (i = 0; i < n; i++) {
		char e[2] = { hex[p[i] >> 4], hex[p[i] & 15] };

		pf_buf_put(b, e, 2);
	}
	pf_buf_put(b, ">", 1);
}

void
pdf_name_put(struct pf_buf *b, const char *s)
{
	const uint8_t *p = (const uint8_t *)s;

	pf_buf_put(b, "/", 1);
	for (; *p; p++) {
		if (*p < 0x21 || *p > 0x7e || strchr("#()<>[]{}/%", *p)) {
			char e[4];

			snprintf(e, sizeof(e), "#%02X", *p);
			pf_buf_put(b, e, 3);
		} else
			pf_buf_put(b, p, 1);
	}
}

/* Decodes one UTF-8 character of valid UTF-8; returns its length. */
static size_t
utf8_next(const uint8_t *p, uint32_t *ret)
{
	if (p[0] < 0x80) {
		*ret = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0) {
		*ret = ((uint32_t)(p[0] & 0x1f) << 6) | (p[1] & 0x3f);
		return 2;
	}
	if ((p[0] & 0xf0) == 0xe0) {
		*ret = ((uint32_t)(p[0] & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) |
		       (p[2] & 0x3f);
		return 3;
	}
	*ret = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) |
	       ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
	return 4;
}

int
pdf_text_put(struct pf_buf *b, const char *utf8)
{
	size_t n = strlen(utf8), i;
	const uint8_t *p = (const uint8_t *)utf8;
	int ascii = 1;

	if (!pf_utf8_valid(utf8, n))
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			ascii = 0;
	if (ascii) {
		pdf_string_put(b, utf8, n);
		return 0;
	}
	/* UTF-16BE with its byte-order mark, as a hex string. */
	pf_buf_put(b, "<feff", 5);
	for (i = 0; i < n;) {
		uint32_t c;
		char e[16];

		i += utf8_next(p + i, &c);
		if (c >= 0x10000) {
			c -= 0x10000;
			snprintf(e, sizeof(e), "%04x%04x", 0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
			pf_buf_put(b, e, 8);
		} else {
			snprintf(e, sizeof(e), "%04x", c);
			pf_buf_put(b, e, 4);
		}
	}
	pf_buf_put(b, ">", 1);
	return 0;
}

void
pdf_real_put(struct pf_buf *b, double v)
{
	char s[48];
	size_t n;

	if (!isfinite(v) || fabs(v) > 1e9)
		v = 0;
	snprintf(s, sizeof(s), "%.3f", v);
	n = strlen(s);
	while (n > 0 && s[n - 1] == '0')
		n--;
	if (n > 0 && s[n - 1] == '.')
		n--;
	s[n] = 0;
	if (streq(s, "-0"))
		strcpy(s, "0");
	pdf_puts(b, s);
}

int
pdf_winansi_from_utf8(const char *utf8, char **ret)
{
	size_t n = strlen(utf8), i, k = 0;
	const uint8_t *p = (const uint8_t *)utf8;
	char *out;

	if (!pf_utf8_valid(utf8, n))
		return -EINVAL;
	out = malloc(n + 1);
	if (!out)
		return -ENOMEM;
	for (i = 0; i < n;) {
		uint32_t c;

		i += utf8_next(p + i, &c);
		/* WinAnsi equals Latin-1 on these ranges; 0x80-0x9f are other characters in
		 * WinAnsi and controls in Latin-1, so those are left out with the rest. */
		if ((c >= 0x20 && c <= 0x7e) || (c >= 0xa0 && c <= 0xff))
			out[k++] = (char)c;
		else
			out[k++] = '?';
	}
	out[k] = 0;
	*ret = out;
	return 0;
}

void
pdf_date_format(time_t t, char *buf, size_t n)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, n, "D:%Y%m%d%H%M%S+00'00'", &tm);
}
