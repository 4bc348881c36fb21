/*
 * parafd's configuration file: INI, one [agent] section. Unknown keys and bad values are
 * errors naming the line, not warnings: a misspelt setting must not silently keep a default.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag.h"
#include "pf-util.h"

#define AG_CONFIG_LINE_MAX 4096
#define AG_MODULES_MAX 32

void
ag_config_init(struct ag_config *c)
{
	memset(c, 0, sizeof(*c));
	c->helper_timeout = AG_HELPER_TIMEOUT_DEFAULT;
	c->idle_timeout = AG_IDLE_TIMEOUT_DEFAULT;
	c->max_clients = AG_CLIENTS_DEFAULT;
}

void
ag_config_release(struct ag_config *c)
{
	for (size_t i = 0; i < c->n_modules; i++)
		free(c->modules[i]);
	free(c->modules);
	c->modules = NULL;
	c->n_modules = 0;
}

int
ag_config_add_module(struct ag_config *c, const char *path)
{
	char **m;

	if (c->n_modules >= AG_MODULES_MAX)
		return -E2BIG;
	m = realloc(c->modules, (c->n_modules + 1) * sizeof(*m));
	if (!m)
		return -ENOMEM;
	c->modules = m;
	m[c->n_modules] = strdup(path);
	if (!m[c->n_modules])
		return -ENOMEM;
	c->n_modules++;
	return 0;
}

static char *
strip(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

static int
parse_uint(const char *v, unsigned min, unsigned max, unsigned *ret)
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

int
ag_config_load(struct ag_config *c, const char *path, char *ret_error, size_t error_size)
{
	char line[AG_CONFIG_LINE_MAX];
	FILE *f = fopen(path, "re");
	unsigned lineno = 0;
	int in_agent = 0, r = 0;

	if (!f) {
		r = -errno;
		snprintf(ret_error, error_size, "cannot open '%s': %s", path, strerror(errno));
		return r;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s, *eq, *key, *val;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(ret_error, error_size, "%s:%u: line too long", path, lineno);
			r = -EINVAL;
			break;
		}
		s = strip(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			in_agent = streq(s, "[agent]");
			if (!in_agent) {
				snprintf(ret_error, error_size, "%s:%u: unknown section '%s'", path, lineno, s);
				r = -EINVAL;
				break;
			}
			continue;
		}
		eq = strchr(s, '=');
		if (!eq || !in_agent) {
			snprintf(ret_error, error_size, "%s:%u: expected 'key = value' in [agent]", path,
				lineno);
			r = -EINVAL;
			break;
		}
		*eq = 0;
		key = strip(s);
		val = strip(eq + 1);
		if (streq(key, "helper_timeout"))
			r = parse_uint(val, 1, 3600, &c->helper_timeout);
		else if (streq(key, "idle_timeout"))
			r = parse_uint(val, 1, 86400, &c->idle_timeout);
		else if (streq(key, "max_clients"))
			r = parse_uint(val, 1, 65536, &c->max_clients);
		else if (streq(key, "module"))
			r = ag_config_add_module(c, val);
		else {
			snprintf(ret_error, error_size, "%s:%u: unknown key '%s'", path, lineno, key);
			r = -EINVAL;
			break;
		}
		if (r < 0) {
			snprintf(ret_error, error_size, "%s:%u: bad value '%s' for '%s'", path, lineno,
				val, key);
			break;
		}
	}
	fclose(f);
	return r;
}
