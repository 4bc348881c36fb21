/*
 * The token layer's plain-data side: CK_RV to outcome mapping, and the agent <-> helper
 * messages, which each side decodes as untrusted input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <p11-kit/pkcs11.h>

#include "ag.h"
#include "tok.h"

static void
test_rv_mapping(void **state)
{
	static const struct {
		unsigned long rv;
		enum tok_err want;
		enum ag_err wire;
	} cases[] = {
		{ CKR_PIN_INCORRECT, TOK_ERR_PIN_INCORRECT, AG_ERR_PIN_INCORRECT },
		{ CKR_PIN_LOCKED, TOK_ERR_PIN_LOCKED, AG_ERR_PIN_LOCKED },
		{ CKR_PIN_LEN_RANGE, TOK_ERR_PIN_INVALID, AG_ERR_PIN_INVALID },
		{ CKR_PIN_INVALID, TOK_ERR_PIN_INVALID, AG_ERR_PIN_INVALID },
		{ CKR_USER_NOT_LOGGED_IN, TOK_ERR_PIN_REQUIRED, AG_ERR_PIN_REQUIRED },
		{ CKR_DEVICE_REMOVED, TOK_ERR_TOKEN_REMOVED, AG_ERR_TOKEN_REMOVED },
		{ CKR_SESSION_HANDLE_INVALID, TOK_ERR_TOKEN_REMOVED, AG_ERR_TOKEN_REMOVED },
		{ CKR_TOKEN_NOT_PRESENT, TOK_ERR_TOKEN_NOT_PRESENT, AG_ERR_TOKEN_NOT_PRESENT },
		{ CKR_TOKEN_NOT_RECOGNIZED, TOK_ERR_TOKEN_NOT_PRESENT, AG_ERR_TOKEN_NOT_PRESENT },
		{ CKR_MECHANISM_INVALID, TOK_ERR_MECHANISM, AG_ERR_UNSUPPORTED_ALGORITHM },
		{ CKR_KEY_TYPE_INCONSISTENT, TOK_ERR_MECHANISM, AG_ERR_UNSUPPORTED_ALGORITHM },
		{ CKR_KEY_HANDLE_INVALID, TOK_ERR_KEY_NOT_FOUND, AG_ERR_KEY_NOT_FOUND },
		{ CKR_DEVICE_ERROR, TOK_ERR_DEVICE, AG_ERR_TOKEN_ERROR },
		{ CKR_GENERAL_ERROR, TOK_ERR_DEVICE, AG_ERR_TOKEN_ERROR },
		{ CKR_FUNCTION_FAILED, TOK_ERR_DEVICE, AG_ERR_TOKEN_ERROR },
		{ 0x80001234UL, TOK_ERR_DEVICE, AG_ERR_TOKEN_ERROR }, /* vendor-defined */
	};

	assert_int_equal(tok_err_from_rv(CKR_OK), TOK_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (tok_err_from_rv(cases[i].rv) != cases[i].want)
			fail_msg("CK_RV 0x%lx: expected tok_err %d, got %d", cases[i].rv, cases[i].want,
				tok_err_from_rv(cases[i].rv));
		if (ag_error_from_tok(cases[i].want) != cases[i].wire)
			fail_msg("tok_err %d: expected wire error '%s', got '%s'", cases[i].want,
				ag_error_info(cases[i].wire)->reason,
				ag_error_info(ag_error_from_tok(cases[i].want))->reason);
	}
	/* R3: the extractable-key refusal keeps its own identity all the way to the wire. */
	assert_int_equal(ag_error_from_tok(TOK_ERR_KEY_EXTRACTABLE), AG_ERR_KEY_EXTRACTABLE);
	for (int e = 0; e < _TOK_ERR_MAX; e++)
		assert_string_not_equal(tok_err_to_string(e), "unknown error");
}

static uint8_t d32[32] = { 1, 2, 3 };

static void
test_sign_roundtrip(void **state)
{
	struct tok_blob digests[2] = { { d32, 32 }, { d32, 32 } };
	uint8_t idb[] = { 0xde, 0xad };
	struct tok_sign_req req = { .token_id = "0123456789abcdef", .ck_id = { idb, 2 },
		.mech = TOK_MECH_RSA_PSS, .hash = TOK_HASH_SHA256, .digests = digests, .n_digests = 2 };
	struct tok_sign_req got = {};
	struct pf_buf b;

	assert_int_equal(pf_secret_new("4321", 4, &req.pin), 0);
	pf_buf_init(&b);
	tok_sign_req_encode(&b, &req);
	assert_int_equal(pf_buf_status(&b), 0);
	assert_int_equal(tok_sign_req_decode(b.data, b.len, &got), 0);
	assert_string_equal(got.token_id, "0123456789abcdef");
	assert_int_equal(got.ck_id.n, 2);
	assert_int_equal(got.mech, TOK_MECH_RSA_PSS);
	assert_int_equal(got.n_digests, 2);
	assert_string_equal(got.pin->data, "4321");
	tok_sign_req_release(&got);

	/* Every truncation is refused, never read past. */
	for (size_t n = 0; n < b.len; n++)
		assert_true(tok_sign_req_decode(b.data, n, &got) < 0);
	pf_buf_release(&b);
	req.pin = pf_secret_free(req.pin);

	/* A digest whose length does not fit the hash is refused. */
	digests[1].n = 31;
	pf_buf_init(&b);
	tok_sign_req_encode(&b, &req);
	assert_true(tok_sign_req_decode(b.data, b.len, &got) < 0);
	pf_buf_release(&b);
}

static void
test_sign_count_cap(void **state)
{
	struct pf_buf b;
	struct tok_sign_req got = {};

	/* A count beyond TOK_SIGN_MAX is refused before anything is allocated for it. */
	pf_buf_init(&b);
	pf_buf_put_str(&b, "0123456789abcdef");
	pf_buf_put_bytes(&b, "\1", 1);
	pf_buf_put_u32(&b, TOK_MECH_ECDSA);
	pf_buf_put_u32(&b, TOK_HASH_SHA256);
	pf_buf_put_u32(&b, 0);
	pf_buf_put_u32(&b, 0xffffffffu);
	assert_true(tok_sign_req_decode(b.data, b.len, &got) < 0);
	pf_buf_release(&b);
}

static void
test_list_roundtrip(void **state)
{
	struct tok_token t = { "0123456789abcdef", "label", "serial", "maker", "model", "mod.so",
		TOK_PIN_INITIALIZED | TOK_PIN_COUNT_LOW };
	struct tok_cert c = { "0123456789abcdef", "cert", { (uint8_t *)"\1", 1 },
		{ (uint8_t *)"\x30\x00", 2 } };
	struct tok_list l = { TOK_OK, &t, 1, &c, 1 }, got = {};
	struct pf_buf b;

	pf_buf_init(&b);
	tok_list_encode(&b, &l);
	assert_int_equal(tok_list_decode(b.data, b.len, &got), 0);
	assert_int_equal(got.n_tokens, 1);
	assert_string_equal(got.tokens[0].label, "label");
	assert_int_equal(got.tokens[0].flags, TOK_PIN_INITIALIZED | TOK_PIN_COUNT_LOW);
	assert_int_equal(got.n_certs, 1);
	assert_memory_equal(got.certs[0].der.p, "\x30\x00", 2);
	tok_list_release(&got);
	for (size_t n = 0; n < b.len; n++)
		assert_true(tok_list_decode(b.data, n, &got) < 0);
	/* Trailing bytes are as wrong as missing ones. */
	pf_buf_put_u32(&b, 0);
	assert_true(tok_list_decode(b.data, b.len, &got) < 0);
	pf_buf_release(&b);
}

static void
test_frame_over_socket(void **state)
{
	int sv[2];
	struct pf_buf out, in;
	uint32_t type;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pf_buf_init(&out);
	tok_frame_begin(&out, TOK_MSG_LIST);
	pf_buf_put_u32(&out, 42);
	assert_int_equal(tok_frame_end(&out), 0);
	assert_int_equal(tok_write_all(sv[0], out.data, out.len), 0);
	pf_buf_init(&in);
	assert_int_equal(tok_frame_read(sv[1], &in, &type), 0);
	assert_int_equal(type, TOK_MSG_LIST);
	assert_int_equal(in.len, 4);
	/* An announced length beyond the cap is refused before allocating it. */
	{
		uint8_t hdr[8] = { 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1 };
		assert_int_equal(tok_write_all(sv[0], hdr, sizeof(hdr)), 0);
		assert_int_equal(tok_frame_read(sv[1], &in, &type), -EBADMSG);
	}
	close(sv[0]);
	assert_int_equal(tok_frame_read(sv[1], &in, &type), -EPIPE);
	close(sv[1]);
	pf_buf_release(&out);
	pf_buf_release(&in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rv_mapping),
		cmocka_unit_test(test_sign_roundtrip),
		cmocka_unit_test(test_sign_count_cap),
		cmocka_unit_test(test_list_roundtrip),
		cmocka_unit_test(test_frame_over_socket),
	};

	return cmocka_run_group_tests_name("/pkcs11", tests, NULL, NULL);
}
