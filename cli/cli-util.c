/*
 * Small pieces every paraf command uses: messages on stderr, making untrusted text safe for a
 * terminal (names in certificates and token labels come from others), OpenSSL error strings,
 * ISO 8601 times, strict hex, and the typed json-c accessors.
 */
#include "cli.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/err.h>

static void
cli_vmessage(const char *prefix, const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs("paraf: ", stderr);
	if (prefix)
		fputs(prefix, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vmessage(NULL, fmt, ap);
	va_end(ap);
}

void
cli_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vmessage("warning: ", fmt, ap);
	va_end(ap);
}

int
cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vmessage(NULL, fmt, ap);
	va_end(ap);
	if (cmd)
		fprintf(stderr, "Try 'paraf %s --help'.\n", cmd->name);
	else
		fputs("Try 'paraf --help'.\n", stderr);
	return CLI_EXIT_USAGE;
}

/*
 * Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one. Refuses overlong
 * forms, surrogates and code points above U+10FFFF; *ret_cp is the code point.
 */
static size_t
utf8_next(const unsigned char *s, uint32_t *ret_cp)
{
	uint32_t cp;
	size_t n, i;

	if (s[0] < 0x80) {
		*ret_cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*ret_cp = cp;
	return n;
}

static int
cp_is_unsafe(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
	       cp == 0x200e || cp == 0x200f || cp == 0x061c;
}

char *
cli_sanitize(const char *s)
{
	const unsigned char *p;
	char *out, *o;

	if (!s)
		return NULL;
	/* Every replaced sequence becomes one byte, so the copy is never longer. */
	out = malloc(strlen(s) + 1);
	if (!out)
		return NULL;
	o = out;
	for (p = (const unsigned char *)s; *p;) {
		uint32_t cp;
		size_t n = utf8_next(p, &cp);

		if (n == 0) {
			*o++ = '?';
			p++;
		} else if (cp_is_unsafe(cp)) {
			*o++ = '?';
			p += n;
		} else {
			memcpy(o, p, n);
			o += n;
			p += n;
		}
	}
	*o = 0;
	return out;
}

/* What doc/protocol.md refuses in a document name: C0, DEL, C1, bidi overrides and isolates. */
static int
cp_is_refused(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

int
cli_text_is_displayable(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		uint32_t cp;
		size_t k;

		/* utf8_next() stops at a NUL, which every caller's string has at s[n]. */
		k = utf8_next(p, &cp);
		if (k == 0 || (size_t)(end - p) < k || cp == 0 || cp_is_refused(cp))
			return 0;
		p += k;
	}
	return 1;
}

size_t
cli_text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

const char *
cli_openssl_error(void)
{
	unsigned long e = ERR_peek_error();
	const char *s = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return s ? s : "unknown OpenSSL error";
}

int
cli_asn1_time_iso(const ASN1_TIME *t, char *buf, size_t n)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return -EINVAL;
	if (strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return -ENOBUFS;
	return 0;
}

int
cli_hex_normalize(const char *s, char **ret)
{
	size_t i, n = strlen(s);
	char *d;

	if (n == 0)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return -EINVAL;
	d = malloc(n + 1);
	if (!d)
		return -ENOMEM;
	for (i = 0; i <= n; i++)
		d[i] = (char)tolower((unsigned char)s[i]);
	*ret = d;
	return 0;
}

char *
cli_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

int
cli_json_print(json_object *o)
{
	const char *s;

	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s)
		return -ENOMEM;
	if (puts(s) == EOF || fflush(stdout) != 0)
		return -EIO;
	return 0;
}

json_object *
cli_json_obj(json_object *o, const char *key, json_type type)
{
	json_object *v;

	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

const char *
cli_json_str(json_object *o, const char *key)
{
	json_object *v = cli_json_obj(o, key, json_type_string);

	return v ? json_object_get_string(v) : NULL;
}
