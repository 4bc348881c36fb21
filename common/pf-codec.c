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
