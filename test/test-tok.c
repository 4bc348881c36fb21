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

/* TOK_MSG_SIGN_PART: in order from `first`, at least one signature, never past TOK_SIGN_MAX. */
static void
test_sign_part(void **state)
{
	struct tok_blob sigs[3] = { { (uint8_t *)"\x30\x01", 2 }, { (uint8_t *)"r||s", 4 },
		{ (uint8_t *)"x", 1 } };
	struct tok_sign_reply got = {};
	struct pf_buf b;
	size_t first = 0;

	pf_buf_init(&b);
	tok_sign_part_encode(&b, 32, sigs, 3);
	assert_int_equal(tok_sign_part_decode(b.data, b.len, &first, &got), 0);
	assert_int_equal(first, 32);
	assert_int_equal(got.n_sigs, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(got.sigs[i].n, sigs[i].n);
		assert_memory_equal(got.sigs[i].p, sigs[i].p, sigs[i].n);
	}
	tok_sign_reply_release(&got);
	/* truncated anywhere: refused */
	for (size_t cut = 0; cut < b.len; cut++)
		assert_int_equal(tok_sign_part_decode(b.data, cut, &first, &got), -EBADMSG);
	pf_buf_release(&b);

	/* an empty part, a part past the last digest a request may have, trailing bytes */
	pf_buf_init(&b);
	tok_sign_part_encode(&b, 0, sigs, 0);
	assert_int_equal(tok_sign_part_decode(b.data, b.len, &first, &got), -EBADMSG);
	pf_buf_release(&b);
	pf_buf_init(&b);
	tok_sign_part_encode(&b, TOK_SIGN_MAX - 1, sigs, 2);
	assert_int_equal(tok_sign_part_decode(b.data, b.len, &first, &got), -EBADMSG);
	pf_buf_release(&b);
	pf_buf_init(&b);
	tok_sign_part_encode(&b, TOK_SIGN_MAX - 1, sigs, 1);
	assert_int_equal(tok_sign_part_decode(b.data, b.len, &first, &got), 0);
	assert_int_equal(first, TOK_SIGN_MAX - 1);
	tok_sign_reply_release(&got);
	pf_buf_put_u32(&b, 0);
	assert_int_equal(tok_sign_part_decode(b.data, b.len, &first, &got), -EBADMSG);
	pf_buf_release(&b);
}

static void
test_list_roundtrip(void **state)
{
	struct tok_token t = { "0123456789abcdef", "label", "serial", "maker", "model", "mod.so",
		"Feitian ePass2003 00 00", TOK_PIN_INITIALIZED | TOK_PIN_COUNT_LOW };
	struct tok_cert c = { "0123456789abcdef", "cert", { (uint8_t *)"\1", 1 },
		{ (uint8_t *)"\x30\x00", 2 } };
	struct tok_list l = { TOK_OK, &t, 1, &c, 1 }, got = {};
	struct pf_buf b;

	pf_buf_init(&b);
	tok_list_encode(&b, &l);
	assert_int_equal(tok_list_decode(b.data, b.len, &got), 0);
	assert_int_equal(got.n_tokens, 1);
	assert_string_equal(got.tokens[0].label, "label");
	assert_string_equal(got.tokens[0].slot, "Feitian ePass2003 00 00");
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

/* TOK_MSG_WATCH: the force flag, and "unchanged" (no list) or "changed" with the tokens. */
static void
test_watch_roundtrip(void **state)
{
	struct tok_token t = { "0123456789abcdef", "label", "serial", "maker", "model", "mod.so",
		"slot", TOK_PIN_INITIALIZED };
	struct tok_list l = { TOK_OK, &t, 1, NULL, 0 }, got = {};
	struct pf_buf b;
	uint32_t v = 7;

	pf_buf_init(&b);
	tok_watch_req_encode(&b, 1);
	assert_int_equal(tok_watch_req_decode(b.data, b.len, &v), 0);
	assert_int_equal(v, 1);
	b.len = 0;
	pf_buf_put_u32(&b, 2); /* force is 0 or 1 */
	assert_true(tok_watch_req_decode(b.data, b.len, &v) < 0);

	b.len = 0;
	tok_watch_reply_encode(&b, 0, NULL);
	assert_int_equal(tok_watch_reply_decode(b.data, b.len, &v, &got), 0);
	assert_int_equal(v, 0);
	assert_int_equal(got.n_tokens, 0);
	pf_buf_put_u32(&b, 0); /* "unchanged" carries nothing more */
	assert_true(tok_watch_reply_decode(b.data, b.len, &v, &got) < 0);

	b.len = 0;
	tok_watch_reply_encode(&b, 1, &l);
	assert_int_equal(tok_watch_reply_decode(b.data, b.len, &v, &got), 0);
	assert_int_equal(v, 1);
	assert_int_equal(got.n_tokens, 1);
	assert_string_equal(got.tokens[0].id, "0123456789abcdef");
	tok_list_release(&got);
	for (size_t n = 0; n < b.len; n++)
		assert_true(tok_watch_reply_decode(b.data, n, &v, &got) < 0);
	b.data[3] = 2; /* changed is 0 or 1 */
	assert_true(tok_watch_reply_decode(b.data, b.len, &v, &got) < 0);
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

/* One request of each provisioning type, filled as the CLI would. */
static void
admin_req_fill(struct tok_admin_req *r, uint32_t type)
{
	static uint8_t idb[] = { 0x01, 0x02, 0x03 };
	static uint8_t der[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };

	memset(r, 0, sizeof(*r));
	r->type = type;
	r->token_id = "0123456789abcdef";
	r->serial = "b1a2c3";
	r->label = "Kepala Dinas";
	r->ck_id = (struct tok_blob){ idb, sizeof(idb) };
	r->der = (struct tok_blob){ der, sizeof(der) };
	r->key_kind = TOK_KEY_EC_P256;
	assert_int_equal(pf_secret_new("so-secret", 9, &r->so_pin), 0);
	assert_int_equal(pf_secret_new("123456", 6, &r->pin), 0);
	assert_int_equal(pf_secret_new("kata sandi baru", 15, &r->new_pin), 0);
}

static void
admin_req_unfill(struct tok_admin_req *r)
{
	r->so_pin = pf_secret_free(r->so_pin);
	r->pin = pf_secret_free(r->pin);
	r->new_pin = pf_secret_free(r->new_pin);
}

static void
test_admin_req_roundtrip(void **state)
{
	static const uint32_t types[] = { TOK_MSG_INIT_TOKEN, TOK_MSG_INIT_PIN, TOK_MSG_SET_PIN,
		TOK_MSG_GENERATE, TOK_MSG_PUBKEY, TOK_MSG_WRITE_CERT };

	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		struct tok_admin_req req, got = {};
		struct pf_buf b;
		int secret;

		admin_req_fill(&req, types[t]);
		pf_buf_init(&b);
		tok_admin_req_encode(&b, &req);
		assert_int_equal(pf_buf_status(&b), 0);
		assert_int_equal(tok_admin_req_decode(types[t], b.data, b.len, &got), 0);
		assert_int_equal(got.type, types[t]);
		/* Each type carries its own fields and no others: no secret travels unused. */
		switch (types[t]) {
		case TOK_MSG_INIT_TOKEN:
			assert_string_equal(got.serial, "b1a2c3");
			assert_string_equal(got.so_pin->data, "so-secret");
			assert_string_equal(got.label, "Kepala Dinas");
			assert_null(got.token_id);
			assert_null(got.pin);
			assert_null(got.new_pin);
			break;
		case TOK_MSG_INIT_PIN:
			assert_string_equal(got.token_id, "0123456789abcdef");
			assert_string_equal(got.so_pin->data, "so-secret");
			assert_string_equal(got.pin->data, "123456");
			assert_null(got.new_pin);
			break;
		case TOK_MSG_SET_PIN:
			assert_string_equal(got.pin->data, "123456");
			assert_string_equal(got.new_pin->data, "kata sandi baru");
			assert_int_equal(got.new_pin->len, 15);
			assert_null(got.so_pin);
			break;
		case TOK_MSG_GENERATE:
			assert_string_equal(got.pin->data, "123456");
			assert_int_equal(got.key_kind, TOK_KEY_EC_P256);
			assert_int_equal(got.ck_id.n, 3);
			assert_memory_equal(got.ck_id.p, "\1\2\3", 3);
			assert_string_equal(got.label, "Kepala Dinas");
			assert_int_equal(got.decrypt, 0);
			assert_null(got.so_pin);
			break;
		case TOK_MSG_PUBKEY:
			assert_string_equal(got.token_id, "0123456789abcdef");
			assert_int_equal(got.ck_id.n, 3);
			assert_null(got.pin);
			assert_null(got.so_pin);
			assert_null(got.label);
			break;
		case TOK_MSG_WRITE_CERT:
			assert_string_equal(got.pin->data, "123456");
			assert_int_equal(got.der.n, 5);
			assert_memory_equal(got.der.p, "\x30\x03\x02\x01\x01", 5);
			assert_string_equal(got.label, "Kepala Dinas");
			break;
		}
		secret = types[t] != TOK_MSG_PUBKEY;
		assert_int_equal(b.wipe, secret); /* the frame is wiped where it held a PIN */
		tok_admin_req_release(&got);
		assert_null(got.pin);

		/* Every truncation is refused, never read past; so are trailing bytes. */
		for (size_t n = 0; n < b.len; n++)
			if (tok_admin_req_decode(types[t], b.data, n, &got) >= 0)
				fail_msg("type %u: a body cut to %zu of %zu bytes was accepted",
					types[t], n, b.len);
		pf_buf_put_u32(&b, 0);
		assert_true(tok_admin_req_decode(types[t], b.data, b.len, &got) < 0);
		pf_buf_release(&b);
		admin_req_unfill(&req);
	}
}

static void
test_admin_req_refusals(void **state)
{
	struct tok_admin_req req, got = {};
	struct pf_buf b;
	char long_label[TOK_CKA_LABEL_MAX + 2];

	/* A body is read as the frame's type says, and only provisioning types are accepted. */
	admin_req_fill(&req, TOK_MSG_PUBKEY);
	pf_buf_init(&b);
	tok_admin_req_encode(&b, &req);
	assert_true(tok_admin_req_decode(TOK_MSG_SIGN, b.data, b.len, &got) < 0);
	assert_true(tok_admin_req_decode(TOK_MSG_ADMIN_REPLY, b.data, b.len, &got) < 0);
	pf_buf_release(&b);
	/* ... and the encoder refuses to write anything else. */
	req.type = TOK_MSG_LIST;
	pf_buf_init(&b);
	tok_admin_req_encode(&b, &req);
	assert_true(pf_buf_status(&b) < 0);
	pf_buf_release(&b);
	admin_req_unfill(&req);

	/* Missing or empty secrets: the token never sees an empty PIN. */
	admin_req_fill(&req, TOK_MSG_SET_PIN);
	req.new_pin = pf_secret_free(req.new_pin);
	pf_buf_init(&b);
	tok_admin_req_encode(&b, &req);
	assert_true(tok_admin_req_decode(TOK_MSG_SET_PIN, b.data, b.len, &got) < 0);
	pf_buf_release(&b);
	admin_req_unfill(&req);

	/* A token id that is not TOK_ID_LEN lower-case hex digits. */
	admin_req_fill(&req, TOK_MSG_PUBKEY);
	req.token_id = "0123456789ABCDEF";
	pf_buf_init(&b);
	tok_admin_req_encode(&b, &req);
	assert_true(tok_admin_req_decode(TOK_MSG_PUBKEY, b.data, b.len, &got) < 0);
	pf_buf_release(&b);
	/* An empty CKA_ID, or one beyond its cap. */
	req.token_id = "0123456789abcdef";
	req.ck_id.n = 0;
	pf_buf_init(&b);
	tok_admin_req_encode(&b, &req);
	assert_true(tok_admin_req_decode(TOK_MSG_PUBKEY, b.data, b.len, &got) < 0);
	pf_buf_release(&b);
	admin_req_unfill(&req);

	/* Labels: a token label beyond 32 bytes, or empty; control bytes; a CKA_LABEL too long. */
	admin_req_fill(&req, TOK_MSG_INIT_TOKEN);
	req.label = "123456789012345678901234567890123";
	pf_buf_init(&b);
	tok_admin_req_encode(&b, &req);
	assert_true(tok_admin_req_decode(TOK_MSG_INIT_TOKEN, b.data, b.len, &got) < 0);
	pf_buf_release(&b);
	req.label = "";
	pf_buf_init(&b);
	tok_admin_req_encode(&b, &req);
	assert_true(tok_admin_req_decode(TOK_MSG_INIT_TOKEN, b.data, b.len, &got) < 0);
	pf_buf_release(&b);
	req.label = "line\nbreak";
	pf_buf_init(&b);
	tok_admin_req_encode(&b, &req);
	assert_true(tok_admin_req_decode(TOK_MSG_INIT_TOKEN, b.data, b.len, &got) < 0);
	pf_buf_release(&b);
	admin_req_unfill(&req);

	admin_req_fill(&req, TOK_MSG_GENERATE);
	memset(long_label, 'a', sizeof(long_label) - 1);
	long_label[sizeof(long_label) - 1] = 0;
	req.label = long_label;
	pf_buf_init(&b);
	tok_admin_req_encode(&b, &req);
	assert_true(tok_admin_req_decode(TOK_MSG_GENERATE, b.data, b.len, &got) < 0);
	pf_buf_release(&b);
	/* An unknown key kind, a decrypt flag that is not 0 or 1. */
	req.label = "k";
	req.key_kind = 7;
	pf_buf_init(&b);
	tok_admin_req_encode(&b, &req);
	assert_true(tok_admin_req_decode(TOK_MSG_GENERATE, b.data, b.len, &got) < 0);
	pf_buf_release(&b);
	req.key_kind = TOK_KEY_RSA_3072;
	req.decrypt = 2;
	pf_buf_init(&b);
	tok_admin_req_encode(&b, &req);
	assert_true(tok_admin_req_decode(TOK_MSG_GENERATE, b.data, b.len, &got) < 0);
	pf_buf_release(&b);
	/* GENERATE without a PIN is well-formed (a PIN pad reader); the helper decides. */
	req.decrypt = 1;
	req.pin = pf_secret_free(req.pin);
	pf_buf_init(&b);
	tok_admin_req_encode(&b, &req);
	assert_int_equal(tok_admin_req_decode(TOK_MSG_GENERATE, b.data, b.len, &got), 0);
	assert_null(got.pin);
	assert_int_equal(got.key_kind, TOK_KEY_RSA_3072);
	assert_int_equal(got.decrypt, 1);
	tok_admin_req_release(&got);
	pf_buf_release(&b);
	admin_req_unfill(&req);
}

static void
test_admin_req_der_cap(void **state)
{
	struct tok_admin_req got = {};
	struct pf_buf b;
	uint8_t *big = calloc(1, TOK_CERT_MAX + 1);

	/* A certificate beyond TOK_CERT_MAX is refused before it is copied. */
	assert_non_null(big);
	pf_buf_init(&b);
	pf_buf_put_str(&b, "0123456789abcdef");
	pf_buf_put_u32(&b, 0);
	pf_buf_put_bytes(&b, "\1", 1);
	pf_buf_put_bytes(&b, big, TOK_CERT_MAX + 1);
	pf_buf_put_str(&b, "");
	assert_int_equal(pf_buf_status(&b), 0);
	assert_true(tok_admin_req_decode(TOK_MSG_WRITE_CERT, b.data, b.len, &got) < 0);
	pf_buf_release(&b);
	/* An announced length far beyond the body. */
	pf_buf_init(&b);
	pf_buf_put_str(&b, "0123456789abcdef");
	pf_buf_put_u32(&b, 0);
	pf_buf_put_bytes(&b, "\1", 1);
	pf_buf_put_u32(&b, 0xfffffff0u);
	assert_true(tok_admin_req_decode(TOK_MSG_WRITE_CERT, b.data, b.len, &got) < 0);
	pf_buf_release(&b);
	free(big);
}

static void
test_admin_reply_roundtrip(void **state)
{
	uint8_t spki[] = { 0x30, 0x59, 0x30, 0x13 };
	struct tok_admin_reply rep = { .err = TOK_ERR_PIN_INCORRECT, .ck_rv = CKR_PIN_INCORRECT,
		.pin_flags = TOK_PIN_INITIALIZED | TOK_PIN_COUNT_LOW,
		.detail = "the token refused the PIN",
		.token_id = "0123456789abcdef", .serial = "5d2b6c9e1f0a3b47",
		.spki = { spki, sizeof(spki) }, .min_pin = 4, .max_pin = 255, .exists = 1 };
	struct tok_admin_reply got = {};
	struct pf_buf b;

	pf_buf_init(&b);
	tok_admin_reply_encode(&b, &rep);
	assert_int_equal(tok_admin_reply_decode(b.data, b.len, &got), 0);
	assert_int_equal(got.err, TOK_ERR_PIN_INCORRECT);
	assert_int_equal(got.ck_rv, CKR_PIN_INCORRECT);
	assert_int_equal(got.pin_flags, TOK_PIN_INITIALIZED | TOK_PIN_COUNT_LOW);
	assert_string_equal(got.detail, "the token refused the PIN");
	assert_string_equal(got.token_id, "0123456789abcdef");
	assert_string_equal(got.serial, "5d2b6c9e1f0a3b47");
	assert_int_equal(got.spki.n, sizeof(spki));
	assert_memory_equal(got.spki.p, spki, sizeof(spki));
	assert_int_equal(got.min_pin, 4);
	assert_int_equal(got.max_pin, 255);
	assert_int_equal(got.exists, 1);
	tok_admin_reply_release(&got);
	for (size_t n = 0; n < b.len; n++)
		if (tok_admin_reply_decode(b.data, n, &got) >= 0)
			fail_msg("a reply cut to %zu of %zu bytes was accepted", n, b.len);
	pf_buf_put_u32(&b, 0);
	assert_true(tok_admin_reply_decode(b.data, b.len, &got) < 0);
	pf_buf_release(&b);

	/* An empty reply (success without data) decodes to empty strings and no key. */
	memset(&rep, 0, sizeof(rep));
	pf_buf_init(&b);
	tok_admin_reply_encode(&b, &rep);
	assert_int_equal(tok_admin_reply_decode(b.data, b.len, &got), 0);
	assert_int_equal(got.err, TOK_OK);
	assert_string_equal(got.detail, "");
	assert_null(got.spki.p);
	tok_admin_reply_release(&got);
	pf_buf_release(&b);

	/* The helper is untrusted too: an outcome beyond the enum, control bytes in the detail
	 * (it reaches the terminal), a key beyond TOK_SPKI_MAX. */
	rep.err = _TOK_ERR_MAX;
	pf_buf_init(&b);
	tok_admin_reply_encode(&b, &rep);
	assert_true(tok_admin_reply_decode(b.data, b.len, &got) < 0);
	pf_buf_release(&b);
	rep.err = TOK_ERR_DEVICE;
	rep.detail = "\x1b[2Jcleared";
	pf_buf_init(&b);
	tok_admin_reply_encode(&b, &rep);
	assert_true(tok_admin_reply_decode(b.data, b.len, &got) < 0);
	pf_buf_release(&b);
	rep.detail = NULL;
	rep.spki.n = TOK_SPKI_MAX + 1;
	rep.spki.p = calloc(1, rep.spki.n);
	assert_non_null(rep.spki.p);
	pf_buf_init(&b);
	tok_admin_reply_encode(&b, &rep);
	assert_true(tok_admin_reply_decode(b.data, b.len, &got) < 0);
	pf_buf_release(&b);
	free(rep.spki.p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rv_mapping),
		cmocka_unit_test(test_sign_roundtrip),
		cmocka_unit_test(test_sign_count_cap),
		cmocka_unit_test(test_sign_part),
		cmocka_unit_test(test_list_roundtrip),
		cmocka_unit_test(test_watch_roundtrip),
		cmocka_unit_test(test_frame_over_socket),
		cmocka_unit_test(test_admin_req_roundtrip),
		cmocka_unit_test(test_admin_req_refusals),
		cmocka_unit_test(test_admin_req_der_cap),
		cmocka_unit_test(test_admin_reply_roundtrip),
	};

	return cmocka_run_group_tests_name("/pkcs11", tests, NULL, NULL);
}
