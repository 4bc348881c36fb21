/*
 * Parameter field tables: values land in the struct, and every wrong shape is refused with
 * the field that is at fault. The second half drives the real `sign` table.
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

struct item {
	const char *name;
	struct tok_blob data;
};

struct params {
	const char *text;
	int choice;
	const char *hex;
	struct item *items;
	size_t n_items;
	struct pf_secret *secret;
};

static const char *const choices[] = { "one", "two", NULL };

static const struct ag_field item_fields[] = {
	{ "name", AG_F_STRING, AG_F_REQUIRED | AG_F_DISPLAYED, offsetof(struct item, name), 0, 1, 8, .values = NULL },
	{ "data", AG_F_BASE64, AG_F_REQUIRED, offsetof(struct item, data), 0, 1, 4, .values = NULL },
	{ NULL },
};

static const struct ag_field fields[] = {
	{ "text", AG_F_STRING, AG_F_REQUIRED, offsetof(struct params, text), 0, 1, 16, .values = NULL },
	{ "choice", AG_F_ENUM, 0, offsetof(struct params, choice), .values = choices },
	{ "hex", AG_F_HEX, 0, offsetof(struct params, hex), 0, 4, 4, .values = NULL },
	{ "items", AG_F_OBJECTS, 0, offsetof(struct params, items), offsetof(struct params, n_items),
		1, 3, .sub = item_fields, .sub_size = sizeof(struct item),
		.max_err = AG_ERR_TOO_MANY_DOCUMENTS },
	{ "secret", AG_F_SECRET, 0, offsetof(struct params, secret), 0, 1, 64, .values = NULL },
	{ NULL },
};

/* Parses JSON text with a table; returns "ok" or "reason field". */
static const char *
run(const struct ag_field *table, size_t size, const char *text, void *keep)
{
	static char out[128];
	json_object *obj = json_tokener_parse(text);
	struct ag_error err = {};
	void *p = keep ? keep : calloc(1, size);
	int r;

	assert_non_null(obj);
	r = ag_fields_parse(table, obj, p, &err);
	if (r < 0)
		snprintf(out, sizeof(out), "%s %s", ag_error_info(err.err)->reason, err.field);
	else
		snprintf(out, sizeof(out), "ok");
	ag_error_release(&err);
	if (!keep) {
		ag_fields_release(table, p);
		free(p);
		json_object_put(obj);
	}
	return out;
}

static void
test_values(void **state)
{
	struct params p = {};
	json_object *obj = json_tokener_parse(
		"{\"text\":\"hello\",\"choice\":\"two\",\"hex\":\"AbCd\","
		"\"items\":[{\"name\":\"a.pdf\",\"data\":\"AQID\"}],\"secret\":\"1234\"}");
	struct ag_error err = {};

	assert_int_equal(ag_fields_parse(fields, obj, &p, &err), 0);
	assert_string_equal(p.text, "hello");
	assert_int_equal(p.choice, 2);
	assert_string_equal(p.hex, "abcd"); /* normalised to lower case */
	assert_int_equal(p.n_items, 1);
	assert_string_equal(p.items[0].name, "a.pdf");
	assert_int_equal(p.items[0].data.n, 3);
	assert_memory_equal(p.items[0].data.p, "\1\2\3", 3);
	assert_non_null(p.secret);
	assert_string_equal(p.secret->data, "1234");
	ag_fields_release(fields, &p);
	assert_null(p.secret);
	assert_null(p.items);
	json_object_put(obj);
}

static void
test_secret_wiped_in_tree(void **state)
{
	struct params p = {};
	json_object *obj = json_tokener_parse("{\"text\":\"x\",\"secret\":\"987654\"}"), *v;
	struct ag_error err = {};

	assert_int_equal(ag_fields_parse(fields, obj, &p, &err), 0);
	assert_true(json_object_object_get_ex(obj, "secret", &v));
	/* R2: the JSON tree no longer holds the PIN once it is in locked memory. */
	assert_memory_equal(json_object_get_string(v), "\0\0\0\0\0\0", 6);
	ag_fields_release(fields, &p);
	json_object_put(obj);
}

static void
test_refusals(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
		{ "{}", "invalid-params text" },
		{ "{\"text\":5}", "invalid-params text" },
		{ "{\"text\":\"\"}", "invalid-params text" },
		{ "{\"text\":\"01234567890123456\"}", "invalid-params text" },
		{ "{\"text\":\"x\",\"bogus\":1}", "invalid-params bogus" },
		{ "{\"text\":\"x\",\"choice\":\"three\"}", "invalid-params choice" },
		{ "{\"text\":\"x\",\"choice\":1}", "invalid-params choice" },
		{ "{\"text\":\"x\",\"hex\":\"abc\"}", "invalid-params hex" },
		{ "{\"text\":\"x\",\"hex\":\"abcg\"}", "invalid-params hex" },
		{ "{\"text\":\"x\",\"items\":{}}", "invalid-params items" },
		{ "{\"text\":\"x\",\"items\":[]}", "invalid-params items" },
		{ "{\"text\":\"x\",\"items\":[1]}", "invalid-params items[0]" },
		{ "{\"text\":\"x\",\"items\":[{\"name\":\"a\"}]}", "invalid-params items[0].data" },
		{ "{\"text\":\"x\",\"items\":[{\"name\":\"a\",\"data\":\"AQI\"}]}",
			"invalid-params items[0].data" },
		{ "{\"text\":\"x\",\"items\":[{\"name\":\"a\",\"data\":\"AQ ID\"}]}",
			"invalid-params items[0].data" },
		{ "{\"text\":\"x\",\"items\":[{\"name\":\"a\",\"data\":\"AQIDBAU=\"}]}",
			"invalid-params items[0].data" },
		{ "{\"text\":\"x\",\"items\":[{\"name\":\"a\",\"data\":\"AQID\",\"more\":1}]}",
			"invalid-params items[0].more" },
		{ "{\"text\":\"x\",\"items\":[{\"name\":\"a\\nb\",\"data\":\"AQID\"}]}",
			"invalid-params items[0].name" },
		{ "{\"text\":\"x\",\"items\":[{\"name\":\"a\\u202eb\",\"data\":\"AQID\"}]}",
			"invalid-params items[0].name" },
		{ "{\"text\":\"x\",\"items\":[{\"name\":\"a\\u0085\",\"data\":\"AQID\"}]}",
			"invalid-params items[0].name" },
		{ "{\"text\":\"x\",\"items\":[{\"name\":\"a\",\"data\":\"AQID\"},{\"name\":\"b\",\"data\":"
		  "\"AQID\"},{\"name\":\"c\",\"data\":\"AQID\"},{\"name\":\"d\",\"data\":\"AQID\"}]}",
			"too-many-documents items" },
		{ "{\"text\":\"x\",\"secret\":\"\"}", "invalid-params secret" },
		{ "{\"text\":\"x\",\"secret\":[]}", "invalid-params secret" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = run(fields, sizeof(struct params), cases[i].text, NULL);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu %s: expected '%s', got '%s'", i, cases[i].text, cases[i].want,
				got);
	}
}

static void
test_no_params(void **state)
{
	const struct ag_method *m = ag_method_find("agent.status");
	struct ag_error err = {};
	json_object *arr = json_object_new_array(), *obj = json_tokener_parse("{\"x\":1}");
	char dummy[8];

	assert_non_null(m);
	assert_int_equal(ag_fields_parse(m->params, NULL, dummy, &err), 0);
	assert_int_equal(ag_fields_parse(m->params, arr, dummy, &err), 0);
	assert_true(ag_fields_parse(m->params, obj, dummy, &err) < 0);
	assert_string_equal(err.field, "x");
	json_object_array_add(arr, json_object_new_int(1));
	assert_true(ag_fields_parse(m->params, arr, dummy, &err) < 0);
	json_object_put(arr);
	json_object_put(obj);
}

#define CERT "\"certificate\":\"" \
	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\""
#define D32 "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\""

static void
test_sign_table(void **state)
{
	const struct ag_method *m = ag_method_find("sign");
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
		{ "{" CERT ",\"usage\":\"signature\",\"format\":\"cms\",\"digest_algorithm\":\"sha256\","
		  "\"documents\":[{\"name\":\"a\",\"digest\":" D32 "}]}", "ok" },
		{ "{" CERT ",\"usage\":\"signature\",\"format\":\"cms\",\"digest_algorithm\":\"sha256\","
		  "\"documents\":[{\"name\":\"a\",\"digest\":" D32 "}],\"padding\":\"pss\",\"pin\":\"1\"}",
			"ok" },
		{ "{\"usage\":\"signature\",\"format\":\"cms\",\"digest_algorithm\":\"sha256\","
		  "\"documents\":[{\"name\":\"a\",\"digest\":" D32 "}]}", "invalid-params certificate" },
		{ "{" CERT ",\"usage\":\"sign\",\"format\":\"cms\",\"digest_algorithm\":\"sha256\","
		  "\"documents\":[{\"name\":\"a\",\"digest\":" D32 "}]}", "invalid-params usage" },
		{ "{" CERT ",\"usage\":\"signature\",\"format\":\"pdf\",\"digest_algorithm\":\"sha256\","
		  "\"documents\":[{\"name\":\"a\",\"digest\":" D32 "}]}", "invalid-params format" },
		{ "{" CERT ",\"usage\":\"signature\",\"format\":\"cms\",\"digest_algorithm\":\"md5\","
		  "\"documents\":[{\"name\":\"a\",\"digest\":" D32 "}]}",
			"invalid-params digest_algorithm" },
		{ "{" CERT ",\"usage\":\"signature\",\"format\":\"cms\",\"digest_algorithm\":\"sha256\","
		  "\"documents\":[]}", "invalid-params documents" },
		{ "{" CERT ",\"usage\":\"signature\",\"format\":\"cms\",\"digest_algorithm\":\"sha256\","
		  "\"documents\":[{\"name\":\"a\",\"digest\":" D32 "}],\"digest_algoritm\":\"sha256\"}",
			"invalid-params digest_algoritm" },
		{ "{" CERT ",\"usage\":\"signature\",\"format\":\"cms\",\"digest_algorithm\":\"sha256\","
		  "\"documents\":[{\"name\":\"a\",\"digest\":" D32 "}],\"padding\":\"oaep\"}",
			"invalid-params padding" },
	};

	assert_non_null(m);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = run(m->params, m->params_size, cases[i].text, NULL);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu: expected '%s', got '%s'", i, cases[i].want, got);
	}
}

static void
test_sign_document_limit(void **state)
{
	const struct ag_method *m = ag_method_find("sign");
	size_t n = AG_DOCUMENTS_MAX + 1, cap = n * 80 + 512, k;
	char *text = malloc(cap);

	k = (size_t)snprintf(text, cap, "{" CERT ",\"usage\":\"signature\",\"format\":\"cms\","
					 "\"digest_algorithm\":\"sha256\",\"documents\":[");
	for (size_t i = 0; i < n; i++)
		k += (size_t)snprintf(text + k, cap - k, "%s{\"name\":\"d%zu\",\"digest\":" D32 "}",
			i ? "," : "", i);
	snprintf(text + k, cap - k, "]}");
	assert_string_equal(run(m->params, m->params_size, text, NULL), "too-many-documents documents");
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_secret_wiped_in_tree),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_no_params),
		cmocka_unit_test(test_sign_table),
		cmocka_unit_test(test_sign_document_limit),
	};

	return cmocka_run_group_tests_name("/fields", tests, NULL, NULL);
}
