/*
 * The pure pieces of `paraf devices` (cli/cli-devices-match.c): the table generated from
 * udev/tokens.tsv, device kinds and names, the rule that puts a token in a USB device by its
 * PKCS#11 slot description (pcscd's reader names), and the injected device list's parser with
 * the errors it names.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli-devices.h"

static void
test_table(void **state)
{
	const struct cli_usb_id *id = cli_usb_id_find(0x096e, 0x0807);

	assert_non_null(id);
	assert_string_equal(id->name, "Feitian ePass2003");
	assert_int_equal(id->kind, CLI_USB_KIND_TOKEN);
	id = cli_usb_id_find(0x072f, 0xb100);
	assert_non_null(id);
	assert_int_equal(id->kind, CLI_USB_KIND_READER);
	assert_null(cli_usb_id_find(0x096e, 0x0006)); /* a Feitian HID dongle: not a token */
	assert_true(cli_usb_vendor_known(0x096e));
	assert_false(cli_usb_vendor_known(0x046d));
	assert_true(cli_usb_ids_n >= 40);
	/* No duplicates, and every name is one the slot-description rule can use. */
	for (size_t i = 0; i < cli_usb_ids_n; i++) {
		assert_true(strlen(cli_usb_ids[i].name) >= CLI_USB_NAME_MIN);
		assert_ptr_equal(cli_usb_id_find(cli_usb_ids[i].vendor, cli_usb_ids[i].product),
			&cli_usb_ids[i]);
	}
}

static void
test_kind_and_name(void **state)
{
	struct cli_usb_dev epass = { .vendor = 0x096e, .product = 0x0807 };
	struct cli_usb_dev ccid = { .vendor = 0x1234, .product = 0x5678, .n_interfaces = 2,
		.interfaces = { 0x030000, 0x0b0000 }, .manufacturer = "Acme",
		.product_name = "Reader 9" };
	struct cli_usb_dev cousin = { .vendor = 0x096e, .product = 0x0006,
		.product_name = "HID Dongle" };
	struct cli_usb_dev mouse = { .vendor = 0x046d, .product = 0xc077, .n_interfaces = 1,
		.interfaces = { 0x030102 } };
	const struct cli_usb_id *id;
	char name[128];

	assert_int_equal(cli_usb_dev_kind(&epass, &id), CLI_USB_KIND_TOKEN);
	assert_non_null(id);
	assert_int_equal(cli_usb_dev_kind(&ccid, &id), CLI_USB_KIND_CCID);
	assert_null(id);
	assert_int_equal(cli_usb_dev_kind(&cousin, NULL), CLI_USB_KIND_VENDOR);
	assert_int_equal(cli_usb_dev_kind(&mouse, NULL), CLI_USB_KIND_OTHER);
	assert_string_equal(cli_usb_kind_name(CLI_USB_KIND_CCID), "ccid");

	cli_usb_dev_name(&epass, name, sizeof(name));
	assert_string_equal(name, "Feitian ePass2003");
	cli_usb_dev_name(&ccid, name, sizeof(name));
	assert_string_equal(name, "Acme Reader 9");
	cli_usb_dev_name(&cousin, name, sizeof(name));
	assert_string_equal(name, "HID Dongle");
	cli_usb_dev_name(&mouse, name, sizeof(name));
	assert_string_equal(name, "unknown");
}

static void
test_name_matches(void **state)
{
	/* pcscd: the CCID driver's name, " [interface]", " (serial)", " 00 00". */
	assert_true(cli_usb_name_matches("Feitian ePass2003 00 00", "Feitian ePass2003"));
	assert_true(cli_usb_name_matches("feitian  EPASS2003 01 00", "Feitian ePass2003"));
	assert_true(cli_usb_name_matches("Feitian ePass2003", "Feitian ePass2003"));
	assert_true(cli_usb_name_matches("Yubico YubiKey OTP+FIDO+CCID [OTP+FIDO+CCID] 00 00",
		"Yubico YubiKey OTP+FIDO+CCID"));
	assert_true(cli_usb_name_matches("ACS ACR39U ICC Reader (123ABC) 00 00",
		"ACS ACR39U ICC Reader"));
	assert_true(cli_usb_name_matches("  Feitian ePass2003 00 00", " Feitian ePass2003 "));
	/* A longer product of the same family is another device. */
	assert_false(cli_usb_name_matches("FT ePass2003Auto 00 00", "FT ePass2003"));
	assert_false(cli_usb_name_matches("Yubico YubiKey OTP+CCID 00 00",
		"Yubico YubiKey OTP+FIDO+CCID"));
	assert_false(cli_usb_name_matches("Feitian ePass", "Feitian ePass2003"));
	assert_false(cli_usb_name_matches("Gemalto PC Twin Reader 00 00", "Feitian ePass2003"));
	/* Names too short to mean anything, and nothing. */
	assert_false(cli_usb_name_matches("FT 00 00", "FT"));
	assert_false(cli_usb_name_matches("anything", ""));
	assert_false(cli_usb_name_matches("", "Feitian ePass2003"));
	assert_false(cli_usb_name_matches(NULL, "Feitian ePass2003"));
	assert_false(cli_usb_name_matches("Feitian ePass2003 00 00", NULL));
	/* SoftHSM's slot description, named by a product string. */
	assert_true(cli_usb_name_matches("SoftHSM slot ID 0x5a1c7e2b", "SoftHSM slot"));
}

static struct tok_token
token(const char *slot)
{
	struct tok_token t = { .slot = (char *)slot, .label = "t" };

	return t;
}

static void
test_match(void **state)
{
	struct cli_usb_dev devs[] = {
		{ .bus = 1, .address = 2, .vendor = 0x072f, .product = 0xb100, .serial = "AAA1" },
		{ .bus = 1, .address = 3, .vendor = 0x072f, .product = 0xb100, .serial = "BBB2" },
		{ .bus = 1, .address = 4, .vendor = 0x096e, .product = 0x0807 },
		{ .bus = 1, .address = 5, .vendor = 0x1234, .product = 0x0001,
			.manufacturer = "Acme", .product_name = "Key" },
		{ .bus = 1, .address = 6, .vendor = 0x046d, .product = 0xc077,
			.product_name = "USB Optical Mouse" },
	};
	struct cli_usb_list l = { devs, sizeof(devs) / sizeof(devs[0]) };
	struct tok_token toks[] = {
		token("ACS ACR39U ICC Reader (BBB2) 00 00"), /* the second reader, by serial */
		token("ACS ACR39U ICC Reader 01 00"),        /* no serial: either reader */
		token("Feitian ePass2003 00 00"),
		token("Acme Key 00 00"),                     /* USB strings, not in the table */
		token("SoftHSM slot ID 0x1"),                /* in no device */
		token(""),
	};
	enum { NT = sizeof(toks) / sizeof(toks[0]) };
	bool m[sizeof(devs) / sizeof(devs[0]) * NT];

	assert_int_equal(cli_usb_token_score(&devs[1], &toks[0]), 2);
	assert_int_equal(cli_usb_token_score(&devs[0], &toks[0]), 1);
	assert_int_equal(cli_usb_token_score(&devs[2], &toks[0]), 0);
	cli_usb_match(&l, toks, NT, m);
	/* token 0: only in device 1 */
	assert_false(m[0 * NT + 0]);
	assert_true(m[1 * NT + 0]);
	/* token 1: in both readers (ambiguous) */
	assert_true(m[0 * NT + 1]);
	assert_true(m[1 * NT + 1]);
	assert_false(m[2 * NT + 1]);
	/* token 2: the ePass2003 */
	assert_true(m[2 * NT + 2]);
	assert_false(m[0 * NT + 2]);
	/* token 3: Acme Key by its USB strings */
	assert_true(m[3 * NT + 3]);
	/* tokens 4, 5: nowhere; the mouse holds nothing */
	for (size_t i = 0; i < l.n; i++) {
		assert_false(m[i * NT + 4]);
		assert_false(m[i * NT + 5]);
		assert_false(m[4 * NT + i]);
	}
}

static int
parse(const char *text, struct cli_usb_list *l, char *err, size_t n)
{
	memset(l, 0, sizeof(*l));
	err[0] = 0;
	return cli_usb_list_parse(text, strlen(text), l, err, n);
}

static void
test_list_parse(void **state)
{
	struct cli_usb_list l;
	char err[256];

	assert_int_equal(parse("{\"devices\": [\n"
			       " {\"bus\": 1, \"address\": 4, \"vendor\": \"096E\", \"product\": \"0807\",\n"
			       "  \"manufacturer\": \"FS\", \"product_name\": \"ePass2003\",\n"
			       "  \"serial\": null, \"interfaces\": [\"0b0000\"], \"access\": \"denied\",\n"
			       "  \"name\": \"x\", \"state\": \"no-token\", \"tokens\": [], \"hints\": []},\n"
			       " {\"bus\": 2, \"address\": 4, \"vendor\": \"046d\", \"product\": \"c077\"}\n"
			       "], \"other_devices\": 3, \"usb\": {}}\n",
				 &l, err, sizeof(err)),
		0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.devs[0].vendor, 0x096e);
	assert_int_equal(l.devs[0].product, 0x0807);
	assert_string_equal(l.devs[0].product_name, "ePass2003");
	assert_null(l.devs[0].serial);
	assert_int_equal(l.devs[0].n_interfaces, 1);
	assert_int_equal(l.devs[0].interfaces[0], 0x0b0000);
	assert_int_equal(l.devs[0].access, CLI_USB_ACCESS_DENIED);
	assert_int_equal(l.devs[1].access, CLI_USB_ACCESS_UNKNOWN);
	assert_null(l.devs[1].product_name);
	cli_usb_list_release(&l);

	assert_int_equal(parse("{\"devices\": []}", &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 0);
	cli_usb_list_release(&l);
}

static void
expect_error(const char *text, const char *want)
{
	struct cli_usb_list l;
	char err[256];
	int r = parse(text, &l, err, sizeof(err));

	if (r != -EBADMSG || !strstr(err, want))
		fail_msg("'%s': got %d '%s', want -EBADMSG and '%s'", text, r, err, want);
}

static void
test_list_errors(void **state)
{
	static const char ok[] = "\"bus\": 1, \"address\": 2, \"vendor\": \"096e\", "
				 "\"product\": \"0807\"";
	char text[512];

	expect_error("{\"devices\": [\n{\"bus\": 1,\n\"address\": }\n]}", "line 3: not valid JSON");
	expect_error("{\"devices\": [", "not valid JSON");
	expect_error("{\"devices\": []} x", "line 1: not valid JSON");
	expect_error("[]", "not a JSON object");
	expect_error("{}", "devices: missing");
	expect_error("{\"devices\": {}}", "devices: missing, or not an array");
	expect_error("{\"devices\": [], \"extra\": 1}", "extra: unknown key");
	expect_error("{\"devices\": [1]}", "devices[0]: not an object");
	expect_error("{\"devices\": [{\"bus\": 1, \"address\": 2, \"product\": \"0807\"}]}",
		"devices[0].vendor: missing");
	snprintf(text, sizeof(text), "{\"devices\": [{%s}, {%s, \"vendor\": \"96e\"}]}", ok, ok);
	expect_error(text, "devices[1].vendor: not 4 hex digits");
	snprintf(text, sizeof(text), "{\"devices\": [{%s, \"product\": \"08g7\"}]}", ok);
	expect_error(text, "devices[0].product: not 4 hex digits");
	snprintf(text, sizeof(text), "{\"devices\": [{%s, \"bus\": 0}]}", ok);
	expect_error(text, "devices[0].bus: not a number from 1 to 255");
	snprintf(text, sizeof(text), "{\"devices\": [{%s, \"address\": \"2\"}]}", ok);
	expect_error(text, "devices[0].address: not a number");
	snprintf(text, sizeof(text), "{\"devices\": [{%s, \"interfaces\": [\"0b00\"]}]}", ok);
	expect_error(text, "devices[0].interfaces[0]: not 6 hex digits");
	snprintf(text, sizeof(text), "{\"devices\": [{%s, \"access\": \"yes\"}]}", ok);
	expect_error(text, "devices[0].access: not \"ok\"");
	snprintf(text, sizeof(text), "{\"devices\": [{%s, \"product_name\": \"a\\u0007b\"}]}", ok);
	expect_error(text, "devices[0].product_name: not a string");
	snprintf(text, sizeof(text), "{\"devices\": [{%s, \"serial\": 5}]}", ok);
	expect_error(text, "devices[0].serial: not a string");
	snprintf(text, sizeof(text), "{\"devices\": [{%s, \"vendr\": \"096e\"}]}", ok);
	expect_error(text, "devices[0].vendr: unknown key");
	snprintf(text, sizeof(text), "{\"devices\": [{%s}, {%s}]}", ok, ok);
	expect_error(text, "devices[1]: bus 1 address 2 is devices[0]'s");
}

static void
test_list_limits(void **state)
{
	struct cli_usb_list l;
	char err[256], *text, *p;
	size_t n = CLI_USB_DEVICES_MAX + 1, cap = 64 + n * 80;

	text = p = malloc(cap);
	assert_non_null(text);
	p += sprintf(p, "{\"devices\": [");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s{\"bus\": %zu, \"address\": %zu, \"vendor\": \"096e\", "
				"\"product\": \"0807\"}", i ? "," : "", 1 + i / 200, 1 + i % 200);
	sprintf(p, "]}");
	memset(&l, 0, sizeof(l));
	assert_int_equal(cli_usb_list_parse(text, strlen(text), &l, err, sizeof(err)), -E2BIG);
	free(text);
	assert_int_equal(l.n, 0);
}

#define T(name, fn) { name, fn, NULL, NULL, NULL }

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T("/cli/devices/table", test_table),
		T("/cli/devices/kind-and-name", test_kind_and_name),
		T("/cli/devices/name-matches", test_name_matches),
		T("/cli/devices/match", test_match),
		T("/cli/devices/list-parse", test_list_parse),
		T("/cli/devices/list-errors", test_list_errors),
		T("/cli/devices/list-limits", test_list_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
