/*
 * The stored line: a client's record checked and compacted, the envelope written in its one
 * spelling ({"seq","time","uid","pid","prev","record"}, no spaces), parsed back strictly, and
 * hashed; and the names of the log files.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "aud-internal.h"
#include "pf-codec.h"
#include "pf-util.h"

const char aud_zero_hash[AUD_HASH_HEX + 1] =
	"0000000000000000000000000000000000000000000000000000000000000000";

static const char *const fault_names[] = {
	[AUD_OK] = "ok",
	[AUD_EDITED] = "edited",
	[AUD_REMOVED] = "removed",
	[AUD_REORDERED] = "reordered",
	[AUD_INSERTED] = "inserted",
	[AUD_TRUNCATED] = "truncated",
	[AUD_MALFORMED] = "malformed",
	[AUD_BROKEN_JOIN] = "broken-join",
};

const char *
aud_fault_to_string(enum aud_fault f)
{
	if ((unsigned)f >= ARRAY_SIZE(fault_names) || !fault_names[f])
		return "unknown";
	return fault_names[f];
}

void
aud_line_hash(const char *line, size_t len, char ret[AUD_HASH_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned n = 0;

	if (!EVP_Digest(line, len, md, &n, EVP_sha256(), NULL) || n != sizeof(md)) {
		/* Cannot happen with a working libcrypto; a hash that matches nothing is safe. */
		memset(ret, 'x', AUD_HASH_HEX);
		ret[AUD_HASH_HEX] = 0;
		return;
	}
	for (size_t i = 0; i < sizeof(md); i++) {
		ret[2 * i] = hex[md[i] >> 4];
		ret[2 * i + 1] = hex[md[i] & 15];
	}
	ret[AUD_HASH_HEX] = 0;
}

int
aud_hex_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int
hex4(const char *s)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Copies s without the whitespace outside strings into out (which has room for n bytes), and
 * refuses what json-c lets through but a line must not carry: control characters inside
 * strings (a raw newline would split the line) and lone UTF-16 surrogate escapes (json-c
 * turns them into U+FFFD: the text would not mean what was sent). */
static int
compact_scan(const char *s, size_t n, char *out, size_t *ret_len)
{
	size_t o = 0;
	bool in_str = false;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!in_str) {
			if (is_space(c))
				continue;
			if (c == '"')
				in_str = true;
			out[o++] = c;
			continue;
		}
		if ((unsigned char)c < 0x20)
			return -EINVAL;
		if (c == '"') {
			in_str = false;
			out[o++] = c;
			continue;
		}
		if (c != '\\') {
			out[o++] = c;
			continue;
		}
		if (i + 1 >= n)
			return -EINVAL;
		if (s[i + 1] == 'u') {
			int v, w;

			if (i + 5 >= n || (v = hex4(s + i + 2)) < 0)
				return -EINVAL;
			if (v >= 0xdc00 && v <= 0xdfff)
				return -EINVAL;
			if (v >= 0xd800 && v <= 0xdbff) {
				if (i + 11 >= n || s[i + 6] != '\\' || s[i + 7] != 'u' ||
				    (w = hex4(s + i + 8)) < 0xdc00 || w > 0xdfff)
					return -EINVAL;
				memcpy(out + o, s + i, 12);
				o += 12;
				i += 11;
				continue;
			}
			memcpy(out + o, s + i, 6);
			o += 6;
			i += 5;
			continue;
		}
		out[o++] = c;
		out[o++] = s[++i];
	}
	if (in_str)
		return -EINVAL;
	*ret_len = o;
	return 0;
}

/* RFC 8259's grammar, exactly. json-c's strict mode alone lets through single-quoted strings,
 * NaN, Infinity, "5.", "00" and raw tabs in strings, which other JSON readers refuse: a
 * stored line must read the same everywhere. Recursion is bounded by AUD_JSON_DEPTH_MAX. */
struct jscan {
	const char *p, *end;
};

static void
js_ws(struct jscan *j)
{
	while (j->p < j->end && is_space(*j->p))
		j->p++;
}

static bool
js_lit(struct jscan *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
		return false;
	j->p += n;
	return true;
}

static bool
js_digits(struct jscan *j)
{
	const char *start = j->p;

	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > start;
}

static bool
js_number(struct jscan *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (j->p >= j->end || *j->p < '1' || *j->p > '9' || !js_digits(j))
		return false;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!js_digits(j))
			return false;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!js_digits(j))
			return false;
	}
	return true;
}

static bool
js_string(struct jscan *j)
{
	if (j->p >= j->end || *j->p != '"')
		return false;
	for (j->p++; j->p < j->end; j->p++) {
		unsigned char c = (unsigned char)*j->p;

		if (c == '"') {
			j->p++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c != '\\')
			continue;
		if (++j->p >= j->end)
			return false;
		switch (*j->p) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
			break;
		case 'u':
			if (j->end - j->p < 5 || hex4(j->p + 1) < 0)
				return false;
			j->p += 4;
			break;
		default:
			return false;
		}
	}
	return false;
}

static bool
js_value(struct jscan *j, unsigned depth)
{
	js_ws(j);
	if (j->p >= j->end)
		return false;
	switch (*j->p) {
	case '{':
		if (depth >= AUD_JSON_DEPTH_MAX)
			return false;
		j->p++;
		js_ws(j);
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			return true;
		}
		for (;;) {
			js_ws(j);
			if (!js_string(j))
				return false;
			js_ws(j);
			if (j->p >= j->end || *j->p++ != ':' || !js_value(j, depth + 1))
				return false;
			js_ws(j);
			if (j->p >= j->end)
				return false;
			if (*j->p == '}') {
				j->p++;
				return true;
			}
			if (*j->p++ != ',')
				return false;
		}
	case '[':
		if (depth >= AUD_JSON_DEPTH_MAX)
			return false;
		j->p++;
		js_ws(j);
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return true;
		}
		for (;;) {
			if (!js_value(j, depth + 1))
				return false;
			js_ws(j);
			if (j->p >= j->end)
				return false;
			if (*j->p == ']') {
				j->p++;
				return true;
			}
			if (*j->p++ != ',')
				return false;
		}
	case '"':
		return js_string(j);
	case 't':
		return js_lit(j, "true");
	case 'f':
		return js_lit(j, "false");
	case 'n':
		return js_lit(j, "null");
	default:
		return js_number(j);
	}
}

/* One JSON object and nothing after it but whitespace: RFC 8259's grammar, then json-c's
 * strict parse as a second opinion. */
static int
strict_object(const char *s, size_t n)
{
	struct jscan j = { s, s + n };
	json_tokener *tok;
	json_object *o;
	size_t end;
	int r = 0;

	js_ws(&j);
	if (j.p >= j.end || *j.p != '{' || !js_value(&j, 0))
		return -EINVAL;
	js_ws(&j);
	if (j.p != j.end)
		return -EINVAL;
	if (n > INT32_MAX)
		return -EMSGSIZE;
	tok = json_tokener_new_ex(AUD_JSON_DEPTH_MAX + 1);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, s, (int)n);
	end = json_tokener_get_parse_end(tok);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object))
		r = -EINVAL;
	for (size_t i = end; r == 0 && i < n; i++)
		if (!is_space(s[i]))
			r = -EINVAL;
	json_object_put(o);
	json_tokener_free(tok);
	return r;
}

int
aud_record_compact(const char *json, size_t len, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *out = NULL;
	size_t n;
	int r;

	if (len > max)
		return -EMSGSIZE;
	if (memchr(json, '\0', len) || !pf_utf8_valid(json, len))
		return -EINVAL;
	r = strict_object(json, len);
	if (r < 0)
		return r;
	out = malloc(len + 1);
	if (!out)
		return -ENOMEM;
	r = compact_scan(json, len, out, &n);
	if (r < 0)
		return r;
	out[n] = 0;
	*ret = TAKE_PTR(out);
	*ret_len = n;
	return 0;
}

int
aud_record_is_compact(const char *json, size_t len)
{
	_cleanup_free_ char *c = NULL;
	size_t n;

	if (aud_record_compact(json, len, AUD_LINE_MAX, &c, &n) < 0)
		return 0;
	return n == len; /* compacting only removes bytes */
}

int
aud_time_format(time_t t, char ret[AUD_TIME_LEN + 1])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
		return -ERANGE;
	if (strftime(ret, AUD_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", &tm) != AUD_TIME_LEN)
		return -ERANGE;
	return 0;
}

unsigned
aud_time_month(time_t t)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		return 0;
	return (unsigned)(tm.tm_year + 1900) * 100 + (unsigned)tm.tm_mon + 1;
}

int
aud_line_format(uint64_t seq, time_t t, uid_t uid, pid_t pid, const char *prev,
	const char *record, size_t record_len, char **ret, size_t *ret_len)
{
	char head[256], when[AUD_TIME_LEN + 1];
	char *line;
	int n, r;

	r = aud_time_format(t, when);
	if (r < 0)
		return r;
	n = snprintf(head, sizeof(head),
		"{\"seq\":%" PRIu64 ",\"time\":\"%s\",\"uid\":%" PRIu32 ",\"pid\":%" PRIu32
		",\"prev\":\"%s\",\"record\":", seq, when, (uint32_t)uid,
		(uint32_t)(pid < 0 ? 0 : pid), prev);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -EINVAL;
	line = malloc((size_t)n + record_len + 2);
	if (!line)
		return -ENOMEM;
	memcpy(line, head, (size_t)n);
	memcpy(line + n, record, record_len);
	line[(size_t)n + record_len] = '}';
	line[(size_t)n + record_len + 1] = 0;
	*ret = line;
	*ret_len = (size_t)n + record_len + 1;
	return 0;
}

/* A canonical decimal (no sign, no leading zero) up to max, ending at the first non-digit. */
static int
take_uint(const char **p, const char *end, uint64_t max, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;

	if (s >= end || *s < '0' || *s > '9')
		return -EBADMSG;
	if (*s == '0' && s + 1 < end && s[1] >= '0' && s[1] <= '9')
		return -EBADMSG;
	while (s < end && *s >= '0' && *s <= '9') {
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return -EBADMSG;
		v = v * 10 + d;
		s++;
	}
	*p = s;
	*ret = v;
	return 0;
}

static int
take_lit(const char **p, const char *end, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
		return -EBADMSG;
	*p += n;
	return 0;
}

static bool
time_valid(const char *s)
{
	/* YYYY-MM-DDTHH:MM:SSZ */
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";

	for (size_t i = 0; i < AUD_TIME_LEN; i++) {
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return false;
	}
	return true;
}

int
aud_line_parse(const char *line, size_t len, struct aud_line *ret, char *why, size_t why_size)
{
	const char *p = line, *end = line + len;
	struct aud_line l = {};
	uint64_t v;

#define FAIL(...) do { snprintf(why, why_size, __VA_ARGS__); return -EBADMSG; } while (0)
	if (take_lit(&p, end, "{\"seq\":") < 0)
		FAIL("not a stored record: it does not begin with {\"seq\":");
	if (take_uint(&p, end, UINT64_MAX, &l.seq) < 0 || l.seq == 0)
		FAIL("\"seq\" is not a positive integer");
	if (take_lit(&p, end, ",\"time\":\"") < 0)
		FAIL("\"time\" does not follow \"seq\"");
	if (end - p < AUD_TIME_LEN + 1 || !time_valid(p) || p[AUD_TIME_LEN] != '"')
		FAIL("\"time\" is not YYYY-MM-DDTHH:MM:SSZ");
	p += AUD_TIME_LEN + 1;
	if (take_lit(&p, end, ",\"uid\":") < 0 || take_uint(&p, end, UINT32_MAX, &v) < 0)
		FAIL("\"uid\" is missing or not an integer");
	l.uid = (uint32_t)v;
	if (take_lit(&p, end, ",\"pid\":") < 0 || take_uint(&p, end, INT32_MAX, &v) < 0)
		FAIL("\"pid\" is missing or not an integer");
	l.pid = (uint32_t)v;
	if (take_lit(&p, end, ",\"prev\":\"") < 0)
		FAIL("\"prev\" does not follow \"pid\"");
	if (end - p < AUD_HASH_HEX + 1 || !aud_hex_valid(p, AUD_HASH_HEX) || p[AUD_HASH_HEX] != '"')
		FAIL("\"prev\" is not 64 lower-case hex digits");
	memcpy(l.prev, p, AUD_HASH_HEX);
	l.prev[AUD_HASH_HEX] = 0;
	p += AUD_HASH_HEX + 1;
	if (take_lit(&p, end, ",\"record\":") < 0)
		FAIL("\"record\" does not follow \"prev\"");
	if (p >= end || end[-1] != '}' || p == end - 1)
		FAIL("the line does not end with the record object and }");
	l.record_off = (size_t)(p - line);
	l.record_len = (size_t)(end - 1 - p);
	if (*p != '{' || !aud_record_is_compact(p, l.record_len))
		FAIL("\"record\" is not a compact JSON object");
#undef FAIL
	*ret = l;
	return 0;
}

int
aud_file_name_parse(const char *name, unsigned *ret_month, unsigned *ret_n)
{
	char again[AUD_NAME_MAX];
	unsigned month = 0, n = 0;
	const char *p = name;

	if (strncmp(p, "audit-", 6) != 0)
		return -EINVAL;
	p += 6;
	for (int i = 0; i < 6; i++, p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		month = month * 10 + (unsigned)(*p - '0');
	}
	if (*p++ != '-' || month % 100 < 1 || month % 100 > 12)
		return -EINVAL;
	for (int i = 0; i < 3; i++, p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		n = n * 10 + (unsigned)(*p - '0');
	}
	if (!streq(p, ".log") || n == 0)
		return -EINVAL;
	aud_file_name_format(month, n, again);
	if (!streq(again, name))
		return -EINVAL;
	*ret_month = month;
	*ret_n = n;
	return 0;
}

void
aud_file_name_format(unsigned month, unsigned n, char ret[AUD_NAME_MAX])
{
	snprintf(ret, AUD_NAME_MAX, "audit-%06u-%03u.log", month, n);
}
