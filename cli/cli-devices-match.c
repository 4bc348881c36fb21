/*
 * The pure pieces of `paraf devices`: the table generated from udev/tokens.tsv, the injected
 * device list (--usb-list, for tests and for replaying a user's `paraf devices --json`), and the
 * rule that puts a token, by its PKCS#11 slot description, in a USB device. No I/O here.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli-devices.h"
#include "cli.h"

const struct cli_usb_id *
cli_usb_id_find(uint16_t vendor, uint16_t product)
{
	for (size_t i = 0; i < cli_usb_ids_n; i++)
		if (cli_usb_ids[i].vendor == vendor && cli_usb_ids[i].product == product)
			return &cli_usb_ids[i];
	return NULL;
}

bool
cli_usb_vendor_known(uint16_t vendor)
{
	for (size_t i = 0; i < cli_usb_ids_n; i++)
		if (cli_usb_ids[i].vendor == vendor)
			return true;
	return false;
}

const char *
cli_usb_kind_name(enum cli_usb_kind k)
{
	switch (k) {
	case CLI_USB_KIND_TOKEN:
		return "token";
	case CLI_USB_KIND_READER:
		return "reader";
	case CLI_USB_KIND_CCID:
		return "ccid";
	case CLI_USB_KIND_VENDOR:
		return "vendor";
	default:
		return "other";
	}
}

static void
dev_release(struct cli_usb_dev *d)
{
	free(d->manufacturer);
	free(d->product_name);
	free(d->serial);
	d->manufacturer = d->product_name = d->serial = NULL;
}

void
cli_usb_list_release(struct cli_usb_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		dev_release(&l->devs[i]);
	free(l->devs);
	l->devs = NULL;
	l->n = 0;
}

int
cli_usb_list_add(struct cli_usb_list *l, struct cli_usb_dev *d)
{
	struct cli_usb_dev *nd;

	if (l->n >= CLI_USB_DEVICES_MAX)
		return -E2BIG;
	nd = realloc(l->devs, (l->n + 1) * sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	l->devs = nd;
	l->devs[l->n++] = *d;
	d->manufacturer = d->product_name = d->serial = NULL;
	return 0;
}

bool
cli_usb_dev_is_ccid(const struct cli_usb_dev *d)
{
	for (size_t i = 0; i < d->n_interfaces; i++)
		if ((d->interfaces[i] >> 16) == 0x0b)
			return true;
	return false;
}

enum cli_usb_kind
cli_usb_dev_kind(const struct cli_usb_dev *d, const struct cli_usb_id **ret_id)
{
	const struct cli_usb_id *id = cli_usb_id_find(d->vendor, d->product);

	if (ret_id)
		*ret_id = id;
	if (id)
		return id->kind;
	if (cli_usb_dev_is_ccid(d))
		return CLI_USB_KIND_CCID;
	if (cli_usb_vendor_known(d->vendor))
		return CLI_USB_KIND_VENDOR;
	return CLI_USB_KIND_OTHER;
}

void
cli_usb_dev_name(const struct cli_usb_dev *d, char *buf, size_t n)
{
	const struct cli_usb_id *id = cli_usb_id_find(d->vendor, d->product);

	if (id)
		snprintf(buf, n, "%s", id->name);
	else if (d->manufacturer && *d->manufacturer && d->product_name && *d->product_name)
		snprintf(buf, n, "%s %s", d->manufacturer, d->product_name);
	else if (d->product_name && *d->product_name)
		snprintf(buf, n, "%s", d->product_name);
	else
		snprintf(buf, n, "unknown");
}

/* --- matching ---------------------------------------------------------------------------- */

/* Skips spaces; returns the next character, lower-case, 0 at the end. */
static const char *
skip_spaces(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

bool
cli_usb_name_matches(const char *slot, const char *name)
{
	const char *s, *p;
	size_t len = 0;

	if (!slot || !name)
		return false;
	for (p = skip_spaces(name); *p; p++)
		if (*p != ' ' && *p != '\t')
			len++;
	if (len < CLI_USB_NAME_MIN)
		return false;
	s = skip_spaces(slot);
	p = skip_spaces(name);
	while (*p) {
		bool sp_p = *p == ' ' || *p == '\t', sp_s = *s == ' ' || *s == '\t';

		if (sp_p || sp_s) {
			/* A run of spaces matches a run of spaces, unless the name ends there. */
			if (!sp_s)
				return false;
			p = skip_spaces(p);
			s = skip_spaces(s);
			if (!*p)
				return true; /* the name ended at a space of the slot */
			continue;
		}
		if (tolower((unsigned char)*p) != tolower((unsigned char)*s))
			return false;
		p++;
		s++;
	}
	return *s == 0 || *s == ' ' || *s == '\t' || *s == '[' || *s == '(';
}

int
cli_usb_token_score(const struct cli_usb_dev *d, const struct tok_token *t)
{
	char both[2 * CLI_USB_STRING_MAX + 2];
	const struct cli_usb_id *id = cli_usb_id_find(d->vendor, d->product);
	bool named = false;

	if (!t->slot || !*t->slot)
		return 0;
	if (id && cli_usb_name_matches(t->slot, id->name))
		named = true;
	if (!named && d->manufacturer && d->product_name) {
		snprintf(both, sizeof(both), "%s %s", d->manufacturer, d->product_name);
		named = cli_usb_name_matches(t->slot, both);
	}
	if (!named && d->product_name)
		named = cli_usb_name_matches(t->slot, d->product_name);
	if (!named)
		return 0;
	if (d->serial && *d->serial) {
		size_t n = strlen(d->serial);
		const char *s = t->slot;

		while ((s = strchr(s, '(')) != NULL) {
			if (strncmp(s + 1, d->serial, n) == 0 && s[1 + n] == ')')
				return 2;
			s++;
		}
	}
	return 1;
}

void
cli_usb_match(const struct cli_usb_list *l, const struct tok_token *tokens, size_t n_tokens,
	bool *ret)
{
	for (size_t j = 0; j < n_tokens; j++) {
		int best = 0;

		for (size_t i = 0; i < l->n; i++) {
			int s = cli_usb_token_score(&l->devs[i], &tokens[j]);

			if (s > best)
				best = s;
		}
		for (size_t i = 0; i < l->n; i++)
			ret[i * n_tokens + j] =
				best > 0 && cli_usb_token_score(&l->devs[i], &tokens[j]) == best;
	}
}

/* --- the injected list ------------------------------------------------------------------- */

static int _printf_(3, 4)
bad(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

static int
hex_field(json_object *v, unsigned digits, uint32_t *ret)
{
	const char *s;
	uint32_t x = 0;

	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	s = json_object_get_string(v);
	if (strlen(s) != digits || (size_t)json_object_get_string_len(v) != digits)
		return -EINVAL;
	for (unsigned i = 0; i < digits; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return -EINVAL;
		x = x << 4 | (uint32_t)(isdigit((unsigned char)s[i]) ? s[i] - '0'
								      : (tolower((unsigned char)s[i]) - 'a' + 10));
	}
	*ret = x;
	return 0;
}

static int
int_field(json_object *v, int min, int max, int *ret)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int))
		return -EINVAL;
	x = json_object_get_int64(v);
	if (x < min || x > max)
		return -ERANGE;
	*ret = (int)x;
	return 0;
}

/* A string of at most CLI_USB_STRING_MAX bytes without NUL or control characters, or null. */
static int
str_field(json_object *v, char **ret)
{
	const char *s;
	size_t n;

	if (!v || json_object_is_type(v, json_type_null)) {
		*ret = NULL;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n > CLI_USB_STRING_MAX)
		return -E2BIG;
	if (strlen(s) != n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -EINVAL;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

/* Keys of a device entry that `paraf devices --json` adds: accepted and ignored. */
static const char *const output_keys[] = { "id", "name", "kind", "in_table", "notes", "state",
	"tokens", "hints", "ambiguous" };
/* Top-level keys of that output besides "devices". */
static const char *const output_top_keys[] = { "usb", "pcscd", "pkcs11", "other_tokens",
	"other_devices" };

static bool
in_list(const char *key, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (streq(key, list[i]))
			return true;
	return false;
}

static int
dev_parse(json_object *o, size_t idx, struct cli_usb_dev *d, char *err, size_t errsz)
{
	static const char *const required[] = { "bus", "address", "vendor", "product" };
	int r, x;
	uint32_t h;

	if (!json_object_is_type(o, json_type_object))
		return bad(err, errsz, "devices[%zu]: not an object", idx);
	for (size_t i = 0; i < ARRAY_SIZE(required); i++)
		if (!json_object_object_get_ex(o, required[i], NULL))
			return bad(err, errsz, "devices[%zu].%s: missing", idx, required[i]);
	json_object_object_foreach(o, key, v) {
		if (streq(key, "bus") || streq(key, "address")) {
			r = int_field(v, 1, 255, &x);
			if (r < 0)
				return bad(err, errsz, "devices[%zu].%s: not a number from 1 to 255",
					idx, key);
			if (streq(key, "bus"))
				d->bus = (uint8_t)x;
			else
				d->address = (uint8_t)x;
		} else if (streq(key, "vendor") || streq(key, "product")) {
			if (hex_field(v, 4, &h) < 0)
				return bad(err, errsz, "devices[%zu].%s: not 4 hex digits (\"096e\")",
					idx, key);
			if (streq(key, "vendor"))
				d->vendor = (uint16_t)h;
			else
				d->product = (uint16_t)h;
		} else if (streq(key, "manufacturer") || streq(key, "product_name") ||
			   streq(key, "serial")) {
			char **dst = streq(key, "manufacturer") ? &d->manufacturer
				     : streq(key, "serial")     ? &d->serial
								: &d->product_name;

			free(*dst);
			*dst = NULL;
			r = str_field(v, dst);
			if (r == -ENOMEM)
				return r;
			if (r < 0)
				return bad(err, errsz, "devices[%zu].%s: not a string of at most %d "
					"printable bytes, or null", idx, key, CLI_USB_STRING_MAX);
		} else if (streq(key, "interfaces")) {
			size_t n;

			if (!json_object_is_type(v, json_type_array))
				return bad(err, errsz, "devices[%zu].interfaces: not an array", idx);
			n = json_object_array_length(v);
			if (n > CLI_USB_INTERFACES_MAX)
				return bad(err, errsz, "devices[%zu].interfaces: more than %d", idx,
					CLI_USB_INTERFACES_MAX);
			for (size_t i = 0; i < n; i++)
				if (hex_field(json_object_array_get_idx(v, i), 6, &d->interfaces[i]) <
				    0)
					return bad(err, errsz, "devices[%zu].interfaces[%zu]: not 6 hex "
						"digits of class, subclass, protocol (\"0b0000\")",
						idx, i);
			d->n_interfaces = n;
		} else if (streq(key, "access")) {
			const char *s = json_object_is_type(v, json_type_string)
						? json_object_get_string(v)
						: "";

			if (streq(s, "ok"))
				d->access = CLI_USB_ACCESS_OK;
			else if (streq(s, "denied"))
				d->access = CLI_USB_ACCESS_DENIED;
			else if (streq(s, "unknown"))
				d->access = CLI_USB_ACCESS_UNKNOWN;
			else
				return bad(err, errsz, "devices[%zu].access: not \"ok\", \"denied\" "
					"or \"unknown\"", idx);
		} else if (!in_list(key, output_keys, ARRAY_SIZE(output_keys))) {
			return bad(err, errsz, "devices[%zu].%s: unknown key", idx, key);
		}
	}
	return 0;
}

int
cli_usb_list_parse(const char *text, size_t n, struct cli_usb_list *ret, char *err,
	size_t errsz)
{
	_cleanup_(json_object_putp) json_object *root = NULL;
	struct cli_usb_list l = {};
	struct json_tokener *tok;
	json_object *devs = NULL;
	enum json_tokener_error e;
	size_t end, nd;
	int r = 0;

	if (n > CLI_USB_LIST_FILE_MAX)
		return bad(err, errsz, "longer than %u bytes", CLI_USB_LIST_FILE_MAX);
	if (memchr(text, 0, n))
		return bad(err, errsz, "holds a NUL byte: not a JSON text");
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, text, (int)n);
	e = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (root) {
		/* Only white space may follow the value. */
		for (; end < n; end++)
			if (!isspace((unsigned char)text[end])) {
				e = json_tokener_error_parse_unexpected;
				break;
			}
	} else if (e == json_tokener_continue || e == json_tokener_success) {
		e = json_tokener_error_parse_eof;
		end = n;
	}
	if (e != json_tokener_success) {
		size_t line = 1;

		for (size_t i = 0; i < end && i < n; i++)
			line += text[i] == '\n';
		return bad(err, errsz, "line %zu: not valid JSON: %s", line,
			json_tokener_error_desc(e));
	}
	if (!json_object_is_type(root, json_type_object))
		return bad(err, errsz, "not a JSON object with a \"devices\" array");
	json_object_object_foreach(root, key, v) {
		if (streq(key, "devices"))
			devs = v;
		else if (!in_list(key, output_top_keys, ARRAY_SIZE(output_top_keys)))
			return bad(err, errsz, "%s: unknown key (want \"devices\")", key);
	}
	if (!devs || !json_object_is_type(devs, json_type_array))
		return bad(err, errsz, "devices: missing, or not an array");
	nd = json_object_array_length(devs);
	if (nd > CLI_USB_DEVICES_MAX) {
		snprintf(err, errsz, "devices: more than %d", CLI_USB_DEVICES_MAX);
		return -E2BIG;
	}
	for (size_t i = 0; i < nd && r >= 0; i++) {
		struct cli_usb_dev d = {};

		r = dev_parse(json_object_array_get_idx(devs, i), i, &d, err, errsz);
		for (size_t k = 0; r >= 0 && k < l.n; k++)
			if (l.devs[k].bus == d.bus && l.devs[k].address == d.address)
				r = bad(err, errsz, "devices[%zu]: bus %u address %u is devices[%zu]'s",
					i, d.bus, d.address, k);
		if (r >= 0)
			r = cli_usb_list_add(&l, &d);
		dev_release(&d);
	}
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(err, errsz, "out of memory");
		cli_usb_list_release(&l);
		return r;
	}
	*ret = l;
	return 0;
}
