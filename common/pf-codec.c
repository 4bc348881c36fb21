/*
 * Strict base64 and hex. OpenSSL's EVP_DecodeBlock skips whitespace and keeps padding bytes in
 * its count, which would let two spellings of one digest through, hence this small decoder.
 */
#include "pf-codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
pf_base64_encode(const uint8_t *p, size_t n)
{
	size_t i, o = 0;
	char *s;

	if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	s = malloc((n + 2) / 3 * 4 + 1);
	if (!s)
		return NULL;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		s[o++] = b64[v >> 18 & 63];
		s[o++] = b64[v >> 12 & 63];
		s[o++] = b64[v >> 6 & 63];
		s[o++] = b64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
		s[o++] = b64[v >> 18 & 63];
		s[o++] = b64[v >> 12 & 63];
		s[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
		s[o++] = '=';
	}
	s[o] = 0;
	return s;
}

static int
b64_value(char c)
{
	const char *x;

	if (c == 0)
		return -1;
	x = strchr(b64, c);
	return x ? (int)(x - b64) : -1;
}

size_t
pf_base64_decoded_max(size_t len)
{
	return len / 4 * 3;
}

int
pf_base64_decode(const char *s, size_t len, uint8_t **ret_p, size_t *ret_n)
{
	size_t i, o = 0, pad = 0;
	uint8_t *d;

	if (len % 4)
		return -EINVAL;
	if (len >= 1 && s[len - 1] == '=')
		pad++;
	if (len >= 2 && s[len - 2] == '=')
		pad++;
	d = malloc(len / 4 * 3 + 1);
	if (!d)
		return -ENOMEM;
	for (i = 0; i < len; i += 4) {
		int v[4], k;
		int last = i + 4 == len;

		for (k = 0; k < 4; k++) {
			if (last && k >= 4 - (int)pad) {
				v[k] = 0;
				continue;
			}
			v[k] = b64_value(s[i + k]);
			if (v[k] < 0) {
				free(d);
				return -EINVAL;
			}
		}
		uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | v[3];
		d[o++] = x >> 16;
		if (!last || pad < 2)
			d[o++] = x >> 8;
		if (!last || pad < 1)
			d[o++] = x;
		/* Canonical form: the bits dropped by padding must be zero. */
		if (last && ((pad == 2 && (x & 0xffff)) || (pad == 1 && (x & 0xff)))) {
			free(d);
			return -EINVAL;
		}
	}
	*ret_p = d;
	*ret_n = o;
	return 0;
}

char *
pf_hex_encode(const uint8_t *p, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	char *s;
	size_t i;

	if (n > (SIZE_MAX - 1) / 2)
		return NULL;
	s = malloc(n * 2 + 1);
	if (!s)
		return NULL;
	for (i = 0; i < n; i++) {
		s[2 * i] = hx[p[i] >> 4];
		s[2 * i + 1] = hx[p[i] & 15];
	}
	s[2 * n] = 0;
	return s;
}

int
pf_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		unsigned c = *p;
		size_t len;
		unsigned cp;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, cp = c & 0x07;
		else
			return 0; /* continuation byte first, or C0/C1 (overlong), or beyond F4 */
		if ((size_t)(end - p) < len)
			return 0;
		for (size_t i = 1; i < len; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0; /* overlong, or past Unicode */
		if (cp >= 0xd800 && cp <= 0xdfff)
			return 0; /* UTF-16 surrogates are not characters */
		p += len;
	}
	return 1;
}
