/*
 * One request line to a validated JSON-RPC 2.0 request. The line's size was checked by the
 * caller; nesting depth is bounded by json-c's tokener before it allocates deeper levels.
 */
#include <string.h>

#include <json-c/json.h>
#include <json-c/printbuf.h>

#include "ag.h"
#include "pf-codec.h"
#include "pf-util.h"

#define AG_ID_MAX 256 /* bytes in a string id */

static void
tokener_free_wiped(json_tokener *tok)
{
	/* The tokener's scratch buffer held every string of the request, a PIN among them. */
	if (tok->pb && tok->pb->buf)
		explicit_bzero(tok->pb->buf, (size_t)tok->pb->size);
	json_tokener_free(tok);
}

/* json-c's UTF-8 check lets overlong forms and surrogates through, and \ud800 escapes
 * become surrogate bytes: check every key and string once more, strictly. */
static int
tree_utf8_valid(json_object *o)
{
	size_t i, n;

	switch (json_object_get_type(o)) {
	case json_type_string:
		return pf_utf8_valid(json_object_get_string(o), (size_t)json_object_get_string_len(o));
	case json_type_object: {
		json_object_object_foreach(o, key, val) {
			if (!pf_utf8_valid(key, strlen(key)) || !tree_utf8_valid(val))
				return 0;
		}
		return 1;
	}
	case json_type_array:
		n = json_object_array_length(o);
		for (i = 0; i < n; i++)
			if (!tree_utf8_valid(json_object_array_get_idx(o, i)))
				return 0;
		return 1;
	default:
		return 1;
	}
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

/* json-c turns a lone surrogate escape ("\ud800") into U+FFFD without a word, so a string
 * would not come back as it was sent. Such text is not Unicode: refuse it. */
static int
has_lone_surrogate(const char *s, size_t n)
{
	int in_str = 0, v, w;

	for (size_t i = 0; i < n; i++) {
		if (!in_str) {
			in_str = s[i] == '"';
			continue;
		}
		if (s[i] == '"') {
			in_str = 0;
			continue;
		}
		if (s[i] != '\\' || i + 1 >= n)
			continue;
		if (s[i + 1] != 'u' || i + 5 >= n) {
			i++;
			continue;
		}
		v = hex4(s + i + 2);
		if (v >= 0xd800 && v <= 0xdbff) {
			if (i + 11 < n && s[i + 6] == '\\' && s[i + 7] == 'u' &&
			    (w = hex4(s + i + 8)) >= 0xdc00 && w <= 0xdfff) {
				i += 11;
				continue;
			}
			return 1;
		}
		if (v >= 0xdc00 && v <= 0xdfff)
			return 1;
		i += 5;
	}
	return 0;
}

static json_object *
parse_line(const char *line, size_t len, struct ag_error *err)
{
	json_tokener *tok;
	json_object *root;
	enum json_tokener_error jerr;
	size_t end;

	if (memchr(line, 0, len)) {
		ag_error_set(err, AG_ERR_PARSE, NULL, "the request contains a NUL byte");
		return NULL;
	}
	if (has_lone_surrogate(line, len)) {
		ag_error_set(err, AG_ERR_PARSE, NULL,
			"the request is not valid Unicode: a lone UTF-16 surrogate escape");
		return NULL;
	}
	tok = json_tokener_new_ex(AG_JSON_DEPTH_MAX);
	if (!tok) {
		ag_error_set(err, AG_ERR_INTERNAL, NULL, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* line[len] is a NUL written by the caller: it ends a bare number or literal. */
	root = json_tokener_parse_ex(tok, line, (int)len + 1);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	tokener_free_wiped(tok);
	if (root && jerr == json_tokener_success && end >= len) {
		if (tree_utf8_valid(root))
			return root;
		jerr = json_tokener_error_parse_utf8_string;
	}
	if (root)
		ag_json_wipe_strings(root);
	json_object_put(root);
	if (jerr == json_tokener_error_depth)
		ag_error_set(err, AG_ERR_NESTING_TOO_DEEP, NULL,
			"the request nests JSON deeper than %d levels", AG_JSON_DEPTH_MAX);
	else if (jerr == json_tokener_continue)
		ag_error_set(err, AG_ERR_PARSE, NULL, "the request ends in the middle of a JSON value");
	else if (jerr == json_tokener_error_parse_utf8_string)
		ag_error_set(err, AG_ERR_PARSE, NULL, "the request is not valid UTF-8");
	else if (jerr == json_tokener_success)
		ag_error_set(err, AG_ERR_PARSE, NULL, "unexpected text after the JSON value at byte %zu",
			end);
	else
		ag_error_set(err, AG_ERR_PARSE, NULL, "not valid JSON at byte %zu: %s", end,
			json_tokener_error_desc(jerr));
	return NULL;
}

/* Integers up to 2^53 - 1: what every JSON client (JavaScript included) holds exactly. */
#define AG_ID_INT_MAX (((int64_t)1 << 53) - 1)

static int
id_valid(json_object *id)
{
	if (json_object_is_type(id, json_type_int)) {
		int64_t v = json_object_get_int64(id);
		return v >= -AG_ID_INT_MAX && v <= AG_ID_INT_MAX;
	}
	return json_object_is_type(id, json_type_string) && json_object_get_string_len(id) <= AG_ID_MAX;
}

static json_object *
id_copy(json_object *id)
{
	if (json_object_is_type(id, json_type_int))
		return json_object_new_int64(json_object_get_int64(id));
	return json_object_new_string_len(json_object_get_string(id), json_object_get_string_len(id));
}

int
ag_request_parse(const char *line, size_t len, struct ag_request *ret, json_object **ret_id,
	struct ag_error *err)
{
	json_object *root, *id = NULL, *v, *method = NULL, *params = NULL;
	const char *version = NULL;

	*ret_id = NULL;
	if (len > AG_REQUEST_MAX) {
		ag_error_set(err, AG_ERR_REQUEST_TOO_LARGE, NULL,
			"the request exceeds %u bytes", AG_REQUEST_MAX);
		return -EMSGSIZE;
	}
	root = parse_line(line, len, err);
	if (!root)
		return -EBADMSG;
	if (json_object_is_type(root, json_type_array)) {
		ag_error_set(err, AG_ERR_INVALID_REQUEST, NULL,
			"batch requests are not supported: send one request per line");
		goto fail;
	}
	if (!json_object_is_type(root, json_type_object)) {
		ag_error_set(err, AG_ERR_INVALID_REQUEST, NULL, "the request must be a JSON object");
		goto fail;
	}
	/* A copy: the request tree is wiped when released, the id outlives it in the answer. */
	if (json_object_object_get_ex(root, "id", &id) && id_valid(id))
		*ret_id = id_copy(id);

	json_object_object_foreach(root, key, val) {
		if (streq(key, "jsonrpc"))
			version = json_object_is_type(val, json_type_string) ? json_object_get_string(val) : NULL;
		else if (streq(key, "method"))
			method = val;
		else if (streq(key, "params"))
			params = val;
		else if (!streq(key, "id")) {
			ag_error_set(err, AG_ERR_INVALID_REQUEST, NULL,
				"unknown member '%.64s' in the request", key);
			goto fail;
		}
	}
	if (!version || !streq(version, "2.0")) {
		ag_error_set(err, AG_ERR_INVALID_REQUEST, NULL, "'jsonrpc' must be \"2.0\"");
		goto fail;
	}
	if (!json_object_object_get_ex(root, "id", &v)) {
		ag_error_set(err, AG_ERR_INVALID_REQUEST, NULL,
			"the request has no 'id': notifications are not supported");
		goto fail;
	}
	if (!*ret_id) {
		ag_error_set(err, AG_ERR_INVALID_REQUEST, NULL,
			"'id' must be a string of at most %d bytes or an integer of at most 2^53 - 1",
			AG_ID_MAX);
		goto fail;
	}
	if (!method || !json_object_is_type(method, json_type_string)) {
		ag_error_set(err, AG_ERR_INVALID_REQUEST, NULL, "'method' must be a string");
		goto fail;
	}
	if (params && !json_object_is_type(params, json_type_object) &&
	    !json_object_is_type(params, json_type_array)) {
		ag_error_set(err, AG_ERR_INVALID_REQUEST, NULL, "'params' must be an object");
		goto fail;
	}
	ret->root = root;
	ret->id = *ret_id;
	ret->method = json_object_get_string(method);
	ret->params = params;
	return 0;
fail:
	ag_json_wipe_strings(root);
	json_object_put(root);
	return -EINVAL;
}

void
ag_request_release(struct ag_request *r)
{
	if (r->root) {
		ag_json_wipe_strings(r->root);
		json_object_put(r->root);
	}
	memset(r, 0, sizeof(*r));
}

void
ag_json_wipe_strings(json_object *o)
{
	size_t i, n;

	switch (json_object_get_type(o)) {
	case json_type_string:
		explicit_bzero((char *)json_object_get_string(o), (size_t)json_object_get_string_len(o));
		break;
	case json_type_object: {
		json_object_object_foreach(o, key, val) {
			(void)key;
			ag_json_wipe_strings(val);
		}
		break;
	}
	case json_type_array:
		n = json_object_array_length(o);
		for (i = 0; i < n; i++)
			ag_json_wipe_strings(json_object_array_get_idx(o, i));
		break;
	default:
		break;
	}
}
