/*
 * Parameter tables: a method's params object is parsed into a plain struct before its handler
 * runs, so no handler sees unchecked input. Unknown keys and missing required keys are errors;
 * every error names the field at fault ("documents[3].digest").
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "ag.h"
#include "pf-codec.h"
#include "pf-util.h"

#define AG_PATH_MAX 96

static void *
at(void *base, size_t off)
{
	return (char *)base + off;
}

/* Refuses what could make a PIN dialog lie: control characters (C0, DEL, C1) and the
 * bidirectional overrides and isolates that reorder text (U+202A-U+202E, U+2066-U+2069).
 * The string is already known to be valid UTF-8 (json-c validated it). */
static const char *
displayed_text_problem(const unsigned char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			return "control characters";
		if (s[i] == 0xc2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f)
			return "control characters";
		if (s[i] == 0xe2 && i + 2 < n && s[i + 1] == 0x80 && s[i + 2] >= 0xaa && s[i + 2] <= 0xae)
			return "bidirectional override characters";
		if (s[i] == 0xe2 && i + 2 < n && s[i + 1] == 0x81 && s[i + 2] >= 0xa6 && s[i + 2] <= 0xa9)
			return "bidirectional isolate characters";
	}
	return NULL;
}

static int
type_error(struct ag_error *err, const char *path, const char *what)
{
	ag_error_set(err, AG_ERR_INVALID_PARAMS, path, "'%s' must be %s", path, what);
	return -EINVAL;
}

static int parse_object(const struct ag_field *fields, json_object *obj, void *out,
	const char *prefix, struct ag_error *err);

static int
parse_value(const struct ag_field *f, json_object *v, void *out, const char *path,
	struct ag_error *err)
{
	const char *s;
	size_t n, i;
	int r;

	switch (f->type) {
	case AG_F_STRING:
	case AG_F_HEX:
	case AG_F_ENUM:
	case AG_F_BASE64:
	case AG_F_SECRET:
		if (!json_object_is_type(v, json_type_string))
			return type_error(err, path, "a string");
		s = json_object_get_string(v);
		n = (size_t)json_object_get_string_len(v);
		break;
	case AG_F_OBJECTS:
	case AG_F_ENUM_SET:
		if (!json_object_is_type(v, json_type_array))
			return type_error(err, path, "an array");
		s = NULL;
		n = json_object_array_length(v);
		break;
	default:
		ag_error_set(err, AG_ERR_INTERNAL, path, "bad field table");
		return -EINVAL;
	}

	switch (f->type) {
	case AG_F_STRING: {
		const char *bad;

		if (memchr(s, 0, n)) {
			ag_error_set(err, AG_ERR_INVALID_PARAMS, path, "'%s' contains a NUL character",
				path);
			return -EINVAL;
		}
		if (n < f->min || n > f->max) {
			ag_error_set(err, AG_ERR_INVALID_PARAMS, path,
				"'%s' must be %zu to %zu bytes long, got %zu", path, f->min, f->max, n);
			return -EINVAL;
		}
		if ((f->flags & AG_F_DISPLAYED) && (bad = displayed_text_problem((const void *)s, n))) {
			ag_error_set(err, AG_ERR_INVALID_PARAMS, path,
				"'%s' must not contain %s: it is shown to the signer", path, bad);
			return -EINVAL;
		}
		*(const char **)at(out, f->offset) = s;
		return 0;
	}
	case AG_F_HEX:
		if (n != f->max) {
			ag_error_set(err, AG_ERR_INVALID_PARAMS, path,
				"'%s' must be %zu hex digits, got %zu characters", path, f->max, n);
			return -EINVAL;
		}
		for (i = 0; i < n; i++) {
			if (!isxdigit((unsigned char)s[i])) {
				ag_error_set(err, AG_ERR_INVALID_PARAMS, path,
					"'%s' must be %zu hex digits", path, f->max);
				return -EINVAL;
			}
			((char *)s)[i] = (char)tolower((unsigned char)s[i]);
		}
		*(const char **)at(out, f->offset) = s;
		return 0;
	case AG_F_ENUM: {
		char allowed[256] = "";

		for (i = 0; f->values[i]; i++) {
			if (strlen(f->values[i]) == n && memcmp(f->values[i], s, n) == 0) {
				*(int *)at(out, f->offset) = (int)i + 1;
				return 0;
			}
			snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed), "%s%s",
				i ? ", " : "", f->values[i]);
		}
		ag_error_set(err, AG_ERR_INVALID_PARAMS, path, "'%s' must be one of: %s", path,
			allowed);
		return -EINVAL;
	}
	case AG_F_BASE64: {
		struct tok_blob *b = at(out, f->offset);

		/* The size check before decoding bounds the allocation. */
		if (pf_base64_decoded_max(n) > f->max + 2) {
			ag_error_set(err, AG_ERR_INVALID_PARAMS, path,
				"'%s' must decode to at most %zu bytes", path, f->max);
			return -EINVAL;
		}
		r = pf_base64_decode(s, n, &b->p, &b->n);
		if (r == -ENOMEM) {
			ag_error_set(err, AG_ERR_INTERNAL, path, "out of memory");
			return r;
		}
		if (r < 0) {
			ag_error_set(err, AG_ERR_INVALID_PARAMS, path,
				"'%s' is not valid base64 (RFC 4648, padded, no whitespace)", path);
			return r;
		}
		if (b->n < f->min || b->n > f->max) {
			ag_error_set(err, AG_ERR_INVALID_PARAMS, path,
				"'%s' must decode to %zu to %zu bytes, got %zu", path, f->min, f->max, b->n);
			return -EINVAL;
		}
		return 0;
	}
	case AG_F_SECRET: {
		struct pf_secret **sec = at(out, f->offset);

		r = pf_secret_new(s, n, sec);
		ag_json_wipe_strings(v);
		if (r == -ENOMEM) {
			ag_error_set(err, AG_ERR_INTERNAL, path, "out of memory");
			return r;
		}
		if (r < 0 || n < f->min) {
			ag_error_set(err, AG_ERR_INVALID_PARAMS, path,
				"'%s' must be %zu to %d bytes without NUL characters", path, f->min,
				PF_SECRET_MAX);
			return -EINVAL;
		}
		return 0;
	}
	case AG_F_OBJECTS: {
		void **items = at(out, f->offset);
		size_t *count = at(out, f->count_offset);

		if (n > f->max) {
			enum ag_err e = f->max_err ? f->max_err : AG_ERR_INVALID_PARAMS;
			ag_error_set(err, e, path, "'%s' holds %zu items; at most %zu are allowed", path,
				n, f->max);
			err->extra = json_object_new_object();
			json_object_object_add(err->extra, "limit", json_object_new_int64((int64_t)f->max));
			return -E2BIG;
		}
		if (n < f->min) {
			ag_error_set(err, AG_ERR_INVALID_PARAMS, path,
				"'%s' must hold at least %zu item%s", path, f->min, f->min == 1 ? "" : "s");
			return -EINVAL;
		}
		*items = calloc(n ? n : 1, f->sub_size);
		if (!*items) {
			ag_error_set(err, AG_ERR_INTERNAL, path, "out of memory");
			return -ENOMEM;
		}
		for (i = 0; i < n; i++) {
			char sub[AG_PATH_MAX];
			json_object *item = json_object_array_get_idx(v, i);

			*count = i + 1; /* so release frees what was parsed so far */
			if (snprintf(sub, sizeof(sub), "%.60s[%zu]", path, i) >= (int)sizeof(sub))
				sub[sizeof(sub) - 1] = 0;
			if (!json_object_is_type(item, json_type_object))
				return type_error(err, sub, "an object");
			r = parse_object(f->sub, item, at(*items, i * f->sub_size), sub, err);
			if (r < 0)
				return r;
		}
		*count = n;
		return 0;
	}
	case AG_F_ENUM_SET: {
		unsigned mask = AG_F_SET_GIVEN;

		if (n < f->min || n > f->max) {
			ag_error_set(err, AG_ERR_INVALID_PARAMS, path,
				"'%s' must hold %zu to %zu items, got %zu", path, f->min, f->max, n);
			return -EINVAL;
		}
		for (i = 0; i < n; i++) {
			char sub[AG_PATH_MAX];
			json_object *item = json_object_array_get_idx(v, i);
			struct ag_field one = *f;
			int bit = 0;

			if (snprintf(sub, sizeof(sub), "%.60s[%zu]", path, i) >= (int)sizeof(sub))
				sub[sizeof(sub) - 1] = 0;
			one.type = AG_F_ENUM;
			one.offset = 0;
			r = parse_value(&one, item, &bit, sub, err);
			if (r < 0)
				return r;
			mask |= 1u << (bit - 1);
		}
		*(unsigned *)at(out, f->offset) = mask;
		return 0;
	}
	}
	return -EINVAL;
}

static int
parse_object(const struct ag_field *fields, json_object *obj, void *out, const char *prefix,
	struct ag_error *err)
{
	const struct ag_field *f;
	char path[AG_PATH_MAX];
	int r;

	if (obj) {
	json_object_object_foreach(obj, key, val) {
		(void)val;
		for (f = fields; f->name; f++)
			if (streq(f->name, key))
				break;
		if (!f->name) {
			snprintf(path, sizeof(path), "%s%s%.32s", prefix, *prefix ? "." : "", key);
			ag_error_set(err, AG_ERR_INVALID_PARAMS, path, "unknown parameter '%s'", path);
			return -EINVAL;
		}
	}
	}
	for (f = fields; f->name; f++) {
		json_object *v;

		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", f->name);
		if (!json_object_object_get_ex(obj, f->name, &v)) {
			if (f->flags & AG_F_REQUIRED) {
				ag_error_set(err, AG_ERR_INVALID_PARAMS, path,
					"missing parameter '%s'", path);
				return -EINVAL;
			}
			continue;
		}
		r = parse_value(f, v, out, path, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int
ag_fields_parse(const struct ag_field *fields, json_object *obj, void *out, struct ag_error *err)
{
	static const struct ag_field none[] = { { .name = NULL } };

	if (!fields)
		fields = none;
	if (!obj || (json_object_is_type(obj, json_type_array) && json_object_array_length(obj) == 0))
		return parse_object(fields, NULL, out, "", err);
	if (!json_object_is_type(obj, json_type_object)) {
		ag_error_set(err, AG_ERR_INVALID_PARAMS, NULL,
			"'params' must be an object of named parameters");
		return -EINVAL;
	}
	return parse_object(fields, obj, out, "", err);
}

void
ag_fields_release(const struct ag_field *fields, void *out)
{
	const struct ag_field *f;

	for (f = fields; f && f->name; f++) {
		switch (f->type) {
		case AG_F_BASE64: {
			struct tok_blob *b = at(out, f->offset);
			free(b->p);
			b->p = NULL;
			b->n = 0;
			break;
		}
		case AG_F_SECRET: {
			struct pf_secret **s = at(out, f->offset);
			*s = pf_secret_free(*s);
			break;
		}
		case AG_F_OBJECTS: {
			void **items = at(out, f->offset);
			size_t *count = at(out, f->count_offset);
			for (size_t i = 0; *items && i < *count; i++)
				ag_fields_release(f->sub, at(*items, i * f->sub_size));
			free(*items);
			*items = NULL;
			*count = 0;
			break;
		}
		default:
			break;
		}
	}
}

json_object *
ag_field_schema(const struct ag_field *f)
{
	json_object *s = json_object_new_object();
	size_t i;

	switch (f->type) {
	case AG_F_STRING:
	case AG_F_SECRET:
		json_object_object_add(s, "type", json_object_new_string("string"));
		json_object_object_add(s, "minLength", json_object_new_int64((int64_t)f->min));
		json_object_object_add(s, "maxLength",
			json_object_new_int64(f->type == AG_F_SECRET ? PF_SECRET_MAX : (int64_t)f->max));
		break;
	case AG_F_HEX:
		json_object_object_add(s, "type", json_object_new_string("string"));
		json_object_object_add(s, "pattern",
			json_object_new_string(f->max == 64 ? "^[0-9a-fA-F]{64}$" : "^[0-9a-fA-F]+$"));
		break;
	case AG_F_ENUM: {
		json_object *e = json_object_new_array();
		for (i = 0; f->values[i]; i++)
			json_object_array_add(e, json_object_new_string(f->values[i]));
		json_object_object_add(s, "type", json_object_new_string("string"));
		json_object_object_add(s, "enum", e);
		break;
	}
	case AG_F_BASE64:
		json_object_object_add(s, "type", json_object_new_string("string"));
		json_object_object_add(s, "contentEncoding", json_object_new_string("base64"));
		break;
	case AG_F_ENUM_SET: {
		json_object *item = json_object_new_object(), *e = json_object_new_array();

		for (i = 0; f->values[i]; i++)
			json_object_array_add(e, json_object_new_string(f->values[i]));
		json_object_object_add(item, "type", json_object_new_string("string"));
		json_object_object_add(item, "enum", e);
		json_object_object_add(s, "type", json_object_new_string("array"));
		json_object_object_add(s, "minItems", json_object_new_int64((int64_t)f->min));
		json_object_object_add(s, "maxItems", json_object_new_int64((int64_t)f->max));
		json_object_object_add(s, "items", item);
		break;
	}
	case AG_F_OBJECTS: {
		json_object *item = json_object_new_object(), *props = json_object_new_object();
		json_object *req = json_object_new_array();
		const struct ag_field *g;

		for (g = f->sub; g->name; g++) {
			json_object_object_add(props, g->name, ag_field_schema(g));
			if (g->flags & AG_F_REQUIRED)
				json_object_array_add(req, json_object_new_string(g->name));
		}
		json_object_object_add(item, "type", json_object_new_string("object"));
		json_object_object_add(item, "properties", props);
		json_object_object_add(item, "required", req);
		json_object_object_add(item, "additionalProperties", json_object_new_boolean(0));
		json_object_object_add(s, "type", json_object_new_string("array"));
		json_object_object_add(s, "minItems", json_object_new_int64((int64_t)f->min));
		json_object_object_add(s, "maxItems", json_object_new_int64((int64_t)f->max));
		json_object_object_add(s, "items", item);
		break;
	}
	}
	if (f->description)
		json_object_object_add(s, "description", json_object_new_string(f->description));
	return s;
}
