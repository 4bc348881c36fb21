/*
 * The INI reader (pf-ini.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pf-ini.h"

char *
pf_strip(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

int
pf_ini_parse(const char *name, const char *text, pf_ini_cb cb, void *data, char *err,
	size_t errsz)
{
	char section[64] = "", line[PF_INI_LINE_MAX];
	const char *p = text;
	unsigned lineno = 0;
	int r;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *s, *eq, sub[PF_INI_LINE_MAX + 64];

		lineno++;
		if (len >= sizeof(line)) {
			snprintf(err, errsz, "%s:%u: line too long", name, lineno);
			return -EINVAL;
		}
		memcpy(line, p, len);
		line[len] = 0;
		p += len + (nl ? 1 : 0);
		s = pf_strip(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			size_t n = strlen(s);
			if (s[n - 1] != ']' || n - 2 >= sizeof(section) || n < 3) {
				snprintf(err, errsz, "%s:%u: malformed section header", name, lineno);
				return -EINVAL;
			}
			memcpy(section, s + 1, n - 2);
			section[n - 2] = 0;
			continue;
		}
		eq = strchr(s, '=');
		if (!eq || !*section) {
			snprintf(err, errsz, "%s:%u: expected 'key = value' inside a [section]", name,
				lineno);
			return -EINVAL;
		}
		*eq = 0;
		r = cb(data, section, pf_strip(s), pf_strip(eq + 1), sub, sizeof(sub));
		if (r < 0) {
			snprintf(err, errsz, "%s:%u: %s", name, lineno, sub);
			return r;
		}
	}
	return 0;
}

int
pf_parse_bool(const char *v, bool *ret)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on"))
		*ret = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off"))
		*ret = false;
	else
		return -EINVAL;
	return 0;
}

int
pf_parse_uint(const char *v, unsigned min, unsigned max, unsigned *ret)
{
	char *end;
	unsigned long x;

	if (!isdigit((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno || *end || x < min || x > max)
		return -EINVAL;
	*ret = (unsigned)x;
	return 0;
}

