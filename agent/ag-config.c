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
#include "pf-ini.h"
#include "pf-util.h"

#define AG_CONFIG_FILE_MAX (64 * 1024)
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

static int
config_kv(void *data, const char *section, const char *key, const char *val, char *err,
	size_t errsz)
{
	struct ag_config *c = data;
	int r;

	if (!streq(section, "agent")) {
		snprintf(err, errsz, "unknown section [%s]; the configuration has one [agent]", section);
		return -EINVAL;
	}
	if (streq(key, "helper_timeout"))
		r = pf_parse_uint(val, 1, 3600, &c->helper_timeout);
	else if (streq(key, "idle_timeout"))
		r = pf_parse_uint(val, 1, 86400, &c->idle_timeout);
	else if (streq(key, "max_clients"))
		r = pf_parse_uint(val, 1, 65536, &c->max_clients);
	else if (streq(key, "module"))
		r = val[0] == '/' ? ag_config_add_module(c, val) : -EINVAL;
	else {
		snprintf(err, errsz, "unknown key '%s'", key);
		return -EINVAL;
	}
	if (r < 0)
		snprintf(err, errsz, "bad value '%s' for '%s'", val, key);
	return r;
}

int
ag_config_load(struct ag_config *c, const char *path, char *ret_error, size_t error_size)
{
	_cleanup_free_ char *text = NULL;
	FILE *f = fopen(path, "re");
	size_t n = 0;
	int r;

	if (!f) {
		r = -errno;
		snprintf(ret_error, error_size, "cannot open '%s': %s", path, strerror(errno));
		return r;
	}
	text = calloc(1, AG_CONFIG_FILE_MAX + 1);
	if (text)
		n = fread(text, 1, AG_CONFIG_FILE_MAX + 1, f);
	fclose(f);
	if (!text)
		return -ENOMEM;
	if (n > AG_CONFIG_FILE_MAX || memchr(text, 0, n)) {
		snprintf(ret_error, error_size, "'%s' is larger than %d bytes or not text", path,
			AG_CONFIG_FILE_MAX);
		return -EINVAL;
	}
	return pf_ini_parse(path, text, config_kv, c, ret_error, error_size);
}
