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
	c->hotplug_interval = AG_HOTPLUG_INTERVAL_DEFAULT;
	c->audit_mode = AG_AUDIT_REQUIRED;
	c->audit_timeout = AG_AUDIT_TIMEOUT_DEFAULT;
}

static const char *const audit_mode_names[_AG_AUDIT_MODE_MAX] = {
	[AG_AUDIT_REQUIRED] = "required",
	[AG_AUDIT_SPOOL] = "spool",
	[AG_AUDIT_JOURNAL] = "journal",
};

const char *
ag_audit_mode_to_string(enum ag_audit_mode m)
{
	return (unsigned)m < _AG_AUDIT_MODE_MAX ? audit_mode_names[m] : "?";
}

static int
audit_mode_parse(const char *v, enum ag_audit_mode *ret)
{
	for (int m = 0; m < _AG_AUDIT_MODE_MAX; m++)
		if (streq(v, audit_mode_names[m])) {
			*ret = (enum ag_audit_mode)m;
			return 0;
		}
	return -EINVAL;
}

int
ag_config_set_audit_socket(struct ag_config *c, const char *path)
{
	char *p;

	/* An absolute path that fits a sockaddr_un. */
	if (path[0] != '/' || strlen(path) >= AG_AUDIT_SOCKET_PATH_MAX)
		return -EINVAL;
	p = strdup(path);
	if (!p)
		return -ENOMEM;
	free(c->audit_socket);
	c->audit_socket = p;
	return 0;
}

void
ag_config_release(struct ag_config *c)
{
	for (size_t i = 0; i < c->n_modules; i++)
		free(c->modules[i]);
	free(c->modules);
	c->modules = NULL;
	c->n_modules = 0;
	free(c->audit_socket);
	c->audit_socket = NULL;
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

int
ag_config_parse_mode(const char *v, bool *ret_system)
{
	if (streq(v, "user"))
		*ret_system = false;
	else if (streq(v, "system"))
		*ret_system = true;
	else
		return -EINVAL;
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
	else if (streq(key, "audit"))
		r = audit_mode_parse(val, &c->audit_mode);
	else if (streq(key, "audit_socket"))
		r = ag_config_set_audit_socket(c, val);
	else if (streq(key, "audit_timeout"))
		r = pf_parse_uint(val, 1, 60, &c->audit_timeout);
	else if (streq(key, "hotplug_interval"))
		r = pf_parse_uint(val, AG_HOTPLUG_INTERVAL_MIN, AG_HOTPLUG_INTERVAL_MAX,
			&c->hotplug_interval);
	else if (streq(key, "exit_idle"))
		r = pf_parse_uint(val, 0, AG_EXIT_IDLE_MAX, &c->exit_idle);
	else if (streq(key, "mode"))
		r = ag_config_parse_mode(val, &c->system_mode);
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
