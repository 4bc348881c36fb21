/*
 * JSON-RPC framing and request validation: every malformed shape gets its documented error,
 * and the limits hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ag.h"

/* Parses text (copied so it can carry the NUL the parser wants after it) and returns the
 * error's reason, or "ok". */
static const char *
parse(const char *text, struct ag_request *ret, json_object **ret_id)
{
	static char reason[64];
	size_t n = strlen(text);
	char *line = malloc(n + 1);
	struct ag_error err = {};
	struct ag_request req = {};
	json_object *id = NULL;
	int r;

	memcpy(line, text, n + 1);
	r = ag_request_parse(line, n, &req, &id, &err);
	free(line);
	if (r < 0) {
		snprintf(reason, sizeof(reason), "%s", ag_error_info(err.err)->reason);
		ag_error_release(&err);
		if (ret_id)
			*ret_id = id;
		else
			json_object_put(id);
		return reason;
	}
	if (ret)
		*ret = req;
	else
		ag_request_release(&req);
	if (ret_id)
		*ret_id = id;
	else
		json_object_put(id);
	return "ok";
}

static void
test_valid(void **state)
{
	struct ag_request req = {};
	json_object *id = NULL;

	assert_string_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"agent.status\"}", &req, &id),
		"ok");
	assert_string_equal(req.method, "agent.status");
	assert_int_equal(json_object_get_int(id), 7);
	assert_null(req.params);
	ag_request_release(&req);
	json_object_put(id);

	assert_string_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"x\",\"params\":{}}",
		NULL, NULL), "ok");
	/* A surrogate pair and an escaped backslash before "ud800" are fine. */
	assert_string_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":\"\\ud83d\\ude00\",\"method\":\"x\"}",
		NULL, NULL), "ok");
	assert_string_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":\"\\\\ud800\",\"method\":\"x\"}",
		NULL, NULL), "ok");
	assert_string_equal(parse("  {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":[]}  ",
		NULL, NULL), "ok");
}

static void
test_malformed(void **state)
{
	static const struct {
		const char *text;
		const char *reason;
	} cases[] = {
		{ "{", "parse-error" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"", "parse-error" },
		{ "not json", "parse-error" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"} trailing", "parse-error" },
		{ "{'jsonrpc':'2.0'}", "parse-error" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\"}", "parse-error" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xc0\xaf\"}", "parse-error" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xed\xa0\x80\"}", "parse-error" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xf4\x90\x80\x80\"}", "parse-error" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"\xc0\xaf\":1,\"method\":\"x\"}", "parse-error" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\\ud800\"}", "parse-error" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\\udc00x\"}", "parse-error" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":123456789012345678901234567890,\"method\":\"x\"}",
			"invalid-request" },
		{ "[]", "invalid-request" },
		{ "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"}]", "invalid-request" },
		{ "42", "invalid-request" },
		{ "\"string\"", "invalid-request" },
		{ "{\"id\":1,\"method\":\"x\"}", "invalid-request" },
		{ "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"x\"}", "invalid-request" },
		{ "{\"jsonrpc\":2.0,\"id\":1,\"method\":\"x\"}", "invalid-request" },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"x\"}", "invalid-request" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"x\"}", "invalid-request" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"x\"}", "invalid-request" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"x\"}", "invalid-request" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", "invalid-request" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1}", "invalid-request" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":5}", "invalid-request" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"extra\":5}", "invalid-request" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = parse(cases[i].text, NULL, NULL);
		if (strcmp(got, cases[i].reason) != 0)
			fail_msg("case %zu '%s': expected %s, got %s", i, cases[i].text, cases[i].reason,
				got);
	}
}

static void
test_id_survives_error(void **state)
{
	json_object *id = NULL;

	assert_string_equal(parse("{\"jsonrpc\":\"1.0\",\"id\":\"abc\",\"method\":\"x\"}", NULL, &id),
		"invalid-request");
	assert_non_null(id);
	assert_string_equal(json_object_get_string(id), "abc");
	json_object_put(id);
}

static void
test_embedded_nul(void **state)
{
	char line[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"}";
	struct ag_error err = {};
	struct ag_request req = {};
	json_object *id = NULL;
	size_t n = strlen(line);

	line[5] = 0;
	assert_true(ag_request_parse(line, n, &req, &id, &err) < 0);
	assert_string_equal(ag_error_info(err.err)->reason, "parse-error");
}

static void
test_depth_limit(void **state)
{
	char buf[512];
	size_t k = 0;
	int depth;

	/* AG_JSON_DEPTH_MAX levels are fine, one more is not. */
	for (depth = AG_JSON_DEPTH_MAX; depth <= AG_JSON_DEPTH_MAX + 1; depth++) {
		k = (size_t)snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\","
							"\"params\":");
		for (int i = 0; i < depth - 1; i++)
			buf[k++] = '[';
		for (int i = 0; i < depth - 1; i++)
			buf[k++] = ']';
		buf[k++] = '}';
		buf[k] = 0;
		assert_string_equal(parse(buf, NULL, NULL),
			depth <= AG_JSON_DEPTH_MAX ? "ok" : "nesting-too-deep");
	}
}

static void
test_deep_nesting_10000(void **state)
{
	size_t n = 20000;
	char *buf = malloc(n + 1);

	memset(buf, '[', n / 2);
	memset(buf + n / 2, ']', n / 2);
	buf[n] = 0;
	assert_string_equal(parse(buf, NULL, NULL), "nesting-too-deep");
	free(buf);
}

static void
test_size_limit(void **state)
{
	struct ag_error err = {};
	struct ag_request req = {};
	json_object *id = NULL;
	char *big = calloc(1, AG_REQUEST_MAX + 2);

	memset(big, ' ', AG_REQUEST_MAX + 1);
	assert_true(ag_request_parse(big, AG_REQUEST_MAX + 1, &req, &id, &err) < 0);
	assert_string_equal(ag_error_info(err.err)->reason, "request-too-large");
	free(big);
}

static void
test_wipe(void **state)
{
	struct ag_request req = {};
	json_object *id = NULL, *pin;
	char *p;

	assert_string_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sign\","
				  "\"params\":{\"pin\":\"123456\"}}", &req, &id), "ok");
	assert_true(json_object_object_get_ex(req.params, "pin", &pin));
	p = (char *)json_object_get_string(pin);
	ag_json_wipe_strings(req.root);
	assert_memory_equal(p, "\0\0\0\0\0\0", 6);
	ag_request_release(&req);
	json_object_put(id);
}

static void
test_error_table(void **state)
{
	/* Codes and reasons are unique: clients switch on them. */
	for (int a = 0; a < _AG_ERR_MAX; a++) {
		assert_non_null(ag_error_info(a)->reason);
		for (int b = a + 1; b < _AG_ERR_MAX; b++) {
			assert_int_not_equal(ag_error_info(a)->code, ag_error_info(b)->code);
			assert_string_not_equal(ag_error_info(a)->reason, ag_error_info(b)->reason);
		}
	}
	/* R3 and R2 refusals name their rule. */
	assert_string_equal(ag_error_info(AG_ERR_KEY_EXTRACTABLE)->rule, "R3");
	assert_string_equal(ag_error_info(AG_ERR_PIN_PARAMETER_REFUSED)->rule, "R2");
}

static void
test_error_response_shape(void **state)
{
	struct ag_error err = {};
	json_object *resp, *e, *data, *v;

	ag_error_set(&err, AG_ERR_INVALID_PARAMS, "documents[0].digest", "bad %s", "digest");
	resp = ag_error_response(NULL, &err);
	assert_true(json_object_object_get_ex(resp, "id", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(resp, "error", &e));
	assert_true(json_object_object_get_ex(e, "code", &v));
	assert_int_equal(json_object_get_int(v), -32602);
	assert_true(json_object_object_get_ex(e, "data", &data));
	assert_true(json_object_object_get_ex(data, "reason", &v));
	assert_string_equal(json_object_get_string(v), "invalid-params");
	assert_true(json_object_object_get_ex(data, "field", &v));
	assert_string_equal(json_object_get_string(v), "documents[0].digest");
	assert_true(json_object_object_get_ex(data, "rule", &v));
	assert_null(v);
	json_object_put(resp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_id_survives_error),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_deep_nesting_10000),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_wipe),
		cmocka_unit_test(test_error_table),
		cmocka_unit_test(test_error_response_shape),
	};

	return cmocka_run_group_tests_name("/jsonrpc", tests, NULL, NULL);
}
