/*
 * Provisioning end to end: the real paraf-token-helper, through tok_link, against a private
 * SoftHSM token that the test's own INIT_TOKEN initialises (no softhsm2-util). The operator's
 * steps and the owner's run in order (R4): init the token, set the activation code, the owner
 * chooses a passphrase, generates EC P-256 and RSA 3072 keys on the token (R3: sensitive,
 * never extractable, checked in-process through PKCS#11), a certificate goes beside each key,
 * LIST shows it, SIGN verifies against the public key; nothing that exists is ever overwritten.
 * The link's own failures (deadline, EOF, oversized frame) run against small fake helpers.
 *
 * Needs PARAF_HELPER (the built helper) and SOFTHSM2_MODULE; skips (77) without SoftHSM.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#include "tok.h"

#define CALL_TIMEOUT_MS (60 * 1000) /* RSA 3072 generation on SoftHSM takes a second or two */

#define SO_PIN "so-pin-9182"
#define ACTIVATION "AKT-246813"
#define PASSPHRASE "kata sandi rahasia"
#define TOKEN_LABEL "paraf uji"

static const uint8_t id_ec[] = { 0xec, 0x01 };
static const uint8_t id_rsa[] = { 0x5a, 0x01 };

static struct {
	char dir[64];
	const char *helper;
	const char *module;
	struct tok_link *link;
	char token_id[TOK_ID_LEN + 1];
	char serial[TOK_SERIAL_MAX + 1];
	struct tok_blob spki_ec, spki_rsa;
	struct tok_blob cert_ec, cert_rsa;
} T;

/* Requests and replies. */

static struct pf_secret *
secret(const char *s)
{
	struct pf_secret *p = NULL;

	assert_int_equal(pf_secret_new(s, strlen(s), &p), 0);
	return p;
}

static void
req_release(struct tok_admin_req *r)
{
	r->so_pin = pf_secret_free(r->so_pin);
	r->pin = pf_secret_free(r->pin);
	r->new_pin = pf_secret_free(r->new_pin);
}

static int
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Sends one frame, returns the answer's body; checks the frame was wiped (it held a PIN). */
static void
call(uint32_t type, const struct pf_buf *body, uint32_t want_type, struct pf_buf *ret)
{
	struct pf_buf f;
	uint32_t got_type = 0;
	int r;

	pf_buf_init(&f);
	f.wipe = body->wipe;
	tok_frame_begin(&f, type);
	pf_buf_put(&f, body->data, body->len);
	assert_int_equal(tok_frame_end(&f), 0);
	pf_buf_init(ret);
	r = tok_link_call(T.link, &f, CALL_TIMEOUT_MS, &got_type, ret);
	if (r < 0)
		fail_msg("tok_link_call: %s", strerror(-r));
	assert_int_equal(f.len, 0);
	assert_true(all_zero(f.data, f.cap));
	assert_int_equal(got_type, want_type);
	pf_buf_release(&f);
}

static void
admin(struct tok_admin_req *req, struct tok_admin_reply *ret)
{
	struct pf_buf body, reply;

	pf_buf_init(&body);
	tok_admin_req_encode(&body, req);
	assert_int_equal(pf_buf_status(&body), 0);
	call(req->type, &body, TOK_MSG_ADMIN_REPLY, &reply);
	pf_buf_release(&body);
	memset(ret, 0, sizeof(*ret));
	assert_int_equal(tok_admin_reply_decode(reply.data, reply.len, ret), 0);
	pf_buf_release(&reply);
	req_release(req);
}

static void
expect_ok(const struct tok_admin_reply *r, const char *what)
{
	if (r->err != TOK_OK)
		fail_msg("%s: expected ok, got %s (%u, ck_rv 0x%x): %s", what,
			tok_err_to_string(r->err), r->err, r->ck_rv, r->detail);
}

static void
expect_err(const struct tok_admin_reply *r, enum tok_err want, uint32_t exists, const char *what)
{
	if (r->err != want || r->exists != exists)
		fail_msg("%s: expected %s (exists %u), got %s (exists %u): %s", what,
			tok_err_to_string(want), exists, tok_err_to_string(r->err), r->exists,
			r->detail);
	assert_true(r->detail[0] != 0); /* a refusal always says why */
}

static void
list(struct tok_list *ret)
{
	struct pf_buf body, reply;

	pf_buf_init(&body);
	call(TOK_MSG_LIST, &body, TOK_MSG_LIST_REPLY, &reply);
	assert_int_equal(tok_list_decode(reply.data, reply.len, ret), 0);
	assert_int_equal(ret->err, TOK_OK);
	pf_buf_release(&reply);
	pf_buf_release(&body);
}

static const struct tok_token *
list_token(const struct tok_list *l, const char *id)
{
	for (size_t i = 0; i < l->n_tokens; i++)
		if (strcmp(l->tokens[i].id, id) == 0)
			return &l->tokens[i];
	return NULL;
}

static const struct tok_cert *
list_cert(const struct tok_list *l, const uint8_t *id, size_t n)
{
	for (size_t i = 0; i < l->n_certs; i++)
		if (strcmp(l->certs[i].token_id, T.token_id) == 0 && l->certs[i].ck_id.n == n &&
		    memcmp(l->certs[i].ck_id.p, id, n) == 0)
			return &l->certs[i];
	return NULL;
}

static void
blob_set(struct tok_blob *b, const uint8_t *p, size_t n)
{
	free(b->p);
	b->p = malloc(n);
	assert_non_null(b->p);
	memcpy(b->p, p, n);
	b->n = n;
}

static EVP_PKEY *
spki_parse(const struct tok_blob *b)
{
	const unsigned char *q = b->p;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &q, (long)b->n);

	assert_non_null(pk);
	assert_ptr_equal(q, b->p + b->n);
	return pk;
}

/* Setup: a private SoftHSM token directory, and the helper spawned with it in its env. */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
group_setup(void **state)
{
	char conf[128], tokens[96];
	FILE *f;
	int r;

	snprintf(T.dir, sizeof(T.dir), "/tmp/paraf-tok-admin-XXXXXX");
	if (!mkdtemp(T.dir))
		return -1;
	snprintf(tokens, sizeof(tokens), "%s/tokens", T.dir);
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", T.dir);
	if (mkdir(tokens, 0700) < 0 || !(f = fopen(conf, "w")))
		return -1;
	fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
		tokens);
	fclose(f);
	/* Before the spawn: the helper inherits it, and SoftHSM in it reads it. */
	setenv("SOFTHSM2_CONF", conf, 1);
	r = tok_link_open(T.helper, (char *const *)&T.module, 1, &T.link);
	if (r < 0) {
		fprintf(stderr, "cannot start '%s': %s\n", T.helper, strerror(-r));
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	T.link = tok_link_close(T.link);
	free(T.spki_ec.p);
	free(T.spki_rsa.p);
	free(T.cert_ec.p);
	free(T.cert_rsa.p);
	nftw(T.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* The operator's steps. */

static void
test_init_token(void **state)
{
	struct tok_admin_req req = { .type = TOK_MSG_INIT_TOKEN, .serial = "",
		.label = TOKEN_LABEL, .so_pin = secret(SO_PIN) };
	struct tok_admin_reply rep;
	struct tok_list l = {};
	const struct tok_token *t;

	/* Before: SoftHSM shows one blank token, which LIST leaves out. */
	list(&l);
	assert_int_equal(l.n_tokens, 0);
	tok_list_release(&l);

	admin(&req, &rep);
	expect_ok(&rep, "INIT_TOKEN");
	assert_int_equal(strlen(rep.token_id), TOK_ID_LEN);
	assert_true(rep.serial[0] != 0);
	assert_true(rep.min_pin >= 1);
	assert_true(rep.max_pin >= rep.min_pin);
	memcpy(T.token_id, rep.token_id, TOK_ID_LEN + 1);
	snprintf(T.serial, sizeof(T.serial), "%s", rep.serial);
	tok_admin_reply_release(&rep);

	/* The id is the one LIST gives (SoftHSM moved the token to a new slot). */
	list(&l);
	t = list_token(&l, T.token_id);
	assert_non_null(t);
	assert_string_equal(t->label, TOKEN_LABEL);
	assert_string_equal(t->serial, T.serial);
	assert_false(t->flags & TOK_PIN_INITIALIZED);
	tok_list_release(&l);
}

static void
test_init_pin(void **state)
{
	struct tok_admin_req req = { .type = TOK_MSG_INIT_PIN, .token_id = T.token_id,
		.so_pin = secret("not-the-so-pin"), .pin = secret(ACTIVATION) };
	struct tok_admin_reply rep;
	struct tok_list l = {};

	/* A wrong SO PIN is refused as such. */
	admin(&req, &rep);
	expect_err(&rep, TOK_ERR_PIN_INCORRECT, 0, "INIT_PIN with a wrong SO PIN");
	tok_admin_reply_release(&rep);

	/* An activation code shorter than the token allows, before the SO logs in. */
	req = (struct tok_admin_req){ .type = TOK_MSG_INIT_PIN, .token_id = T.token_id,
		.so_pin = secret(SO_PIN), .pin = secret("1") };
	admin(&req, &rep);
	expect_err(&rep, TOK_ERR_PIN_INVALID, 0, "INIT_PIN with a one-character code");
	assert_true(rep.min_pin > 1);
	tok_admin_reply_release(&rep);

	req = (struct tok_admin_req){ .type = TOK_MSG_INIT_PIN, .token_id = T.token_id,
		.so_pin = secret(SO_PIN), .pin = secret(ACTIVATION) };
	admin(&req, &rep);
	expect_ok(&rep, "INIT_PIN");
	tok_admin_reply_release(&rep);

	list(&l);
	assert_true(list_token(&l, T.token_id)->flags & TOK_PIN_INITIALIZED);
	tok_list_release(&l);

	/* R1, R4: once the user PIN is set, the operator cannot set it again. */
	req = (struct tok_admin_req){ .type = TOK_MSG_INIT_PIN, .token_id = T.token_id,
		.so_pin = secret(SO_PIN), .pin = secret("AKT-000000") };
	admin(&req, &rep);
	expect_err(&rep, TOK_ERR_DEVICE, 1, "a second INIT_PIN");
	tok_admin_reply_release(&rep);
}

/* The owner's steps. */

static void
test_set_pin(void **state)
{
	struct tok_admin_req req = { .type = TOK_MSG_SET_PIN, .token_id = T.token_id,
		.pin = secret("not the code"), .new_pin = secret(PASSPHRASE) };
	struct tok_admin_reply rep;

	admin(&req, &rep);
	expect_err(&rep, TOK_ERR_PIN_INCORRECT, 0, "SET_PIN with a wrong old PIN");
	assert_true(rep.pin_flags & TOK_PIN_INITIALIZED); /* read after the failure */
	assert_int_equal(rep.ck_rv, CKR_PIN_INCORRECT);
	assert_true(rep.max_pin >= rep.min_pin && rep.min_pin > 0);
	tok_admin_reply_release(&rep);

	/* A new PIN the token would refuse, before the old one is even tried. */
	req = (struct tok_admin_req){ .type = TOK_MSG_SET_PIN, .token_id = T.token_id,
		.pin = secret(ACTIVATION), .new_pin = secret("ab") };
	admin(&req, &rep);
	expect_err(&rep, TOK_ERR_PIN_INVALID, 0, "SET_PIN to a two-character PIN");
	assert_non_null(strstr(rep.detail, "characters"));
	tok_admin_reply_release(&rep);

	req = (struct tok_admin_req){ .type = TOK_MSG_SET_PIN, .token_id = T.token_id,
		.pin = secret(ACTIVATION), .new_pin = secret(PASSPHRASE) };
	admin(&req, &rep);
	expect_ok(&rep, "SET_PIN");
	tok_admin_reply_release(&rep);

	/* The activation code is spent. */
	req = (struct tok_admin_req){ .type = TOK_MSG_SET_PIN, .token_id = T.token_id,
		.pin = secret(ACTIVATION), .new_pin = secret("another one") };
	admin(&req, &rep);
	expect_err(&rep, TOK_ERR_PIN_INCORRECT, 0, "SET_PIN with the spent activation code");
	tok_admin_reply_release(&rep);
}

static void
generate(uint32_t kind, const uint8_t *id, size_t id_len, uint32_t decrypt, const char *label,
	const char *pin, struct tok_admin_reply *ret)
{
	struct tok_admin_req req = { .type = TOK_MSG_GENERATE, .token_id = T.token_id,
		.pin = secret(pin), .key_kind = kind, .ck_id = { (uint8_t *)id, id_len },
		.label = (char *)label, .decrypt = decrypt };

	admin(&req, ret);
}

static void
test_generate(void **state)
{
	struct tok_admin_reply rep;
	EVP_PKEY *pk;
	char group[32];
	size_t glen = 0;

	generate(TOK_KEY_EC_P256, id_ec, sizeof(id_ec), 0, "ttd ec", "wrong passphrase", &rep);
	expect_err(&rep, TOK_ERR_PIN_INCORRECT, 0, "GENERATE with a wrong PIN");
	tok_admin_reply_release(&rep);

	generate(TOK_KEY_EC_P256, id_ec, sizeof(id_ec), 1, "ttd ec", PASSPHRASE, &rep);
	expect_err(&rep, TOK_ERR_MECHANISM, 0, "an EC key for decryption");
	tok_admin_reply_release(&rep);

	generate(TOK_KEY_EC_P256, id_ec, sizeof(id_ec), 0, "ttd ec", PASSPHRASE, &rep);
	expect_ok(&rep, "GENERATE EC P-256");
	pk = spki_parse(&rep.spki);
	assert_true(EVP_PKEY_is_a(pk, "EC"));
	assert_int_equal(EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
				 sizeof(group), &glen), 1);
	assert_string_equal(group, "prime256v1");
	EVP_PKEY_free(pk);
	blob_set(&T.spki_ec, rep.spki.p, rep.spki.n);
	tok_admin_reply_release(&rep);

	generate(TOK_KEY_RSA_3072, id_rsa, sizeof(id_rsa), 1, "enkripsi rsa", PASSPHRASE, &rep);
	expect_ok(&rep, "GENERATE RSA 3072");
	pk = spki_parse(&rep.spki);
	assert_true(EVP_PKEY_is_a(pk, "RSA"));
	assert_int_equal(EVP_PKEY_get_bits(pk), 3072);
	{
		BIGNUM *e = NULL;

		assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e), 1);
		assert_true(BN_is_word(e, 65537));
		BN_free(e);
	}
	EVP_PKEY_free(pk);
	blob_set(&T.spki_rsa, rep.spki.p, rep.spki.n);
	tok_admin_reply_release(&rep);
}

/* R3, read in this process straight from SoftHSM as the owner: what the helper asked for is
 * what the token holds. */
static CK_BBOOL
attr_bool(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t)
{
	CK_BBOOL v = 0x55;
	CK_ATTRIBUTE a = { t, &v, sizeof(v) };

	assert_int_equal(f->C_GetAttributeValue(s, o, &a, 1), CKR_OK);
	return v;
}

static CK_OBJECT_HANDLE
find_one(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const uint8_t *id,
	size_t n)
{
	CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_ID, (void *)id, n } };
	CK_OBJECT_HANDLE o[2];
	CK_ULONG k = 0;

	assert_int_equal(f->C_FindObjectsInit(s, tmpl, 2), CKR_OK);
	assert_int_equal(f->C_FindObjects(s, o, 2, &k), CKR_OK);
	f->C_FindObjectsFinal(s);
	assert_int_equal(k, 1);
	return o[0];
}

static void
test_key_attributes(void **state)
{
	CK_FUNCTION_LIST *f = p11_kit_module_load(T.module, 0);
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16, i;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;

	assert_non_null(f);
	assert_int_equal(p11_kit_module_initialize(f), CKR_OK);
	assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;

		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.serialNumber, T.serial, strlen(T.serial)) == 0)
			break;
	}
	assert_true(i < n);
	assert_int_equal(f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);

	/* The public keys are readable without a login (PUBKEY relies on it). */
	assert_int_equal(attr_bool(f, s, find_one(f, s, CKO_PUBLIC_KEY, id_ec, sizeof(id_ec)),
				 CKA_PRIVATE), CK_FALSE);
	assert_int_equal(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)PASSPHRASE, strlen(PASSPHRASE)),
		CKR_OK);
	for (int k = 0; k < 2; k++) {
		const uint8_t *id = k ? id_rsa : id_ec;
		CK_OBJECT_HANDLE o = find_one(f, s, CKO_PRIVATE_KEY, id, 2);
		CK_BBOOL dec = k ? CK_TRUE : CK_FALSE;

		assert_int_equal(attr_bool(f, s, o, CKA_TOKEN), CK_TRUE);
		assert_int_equal(attr_bool(f, s, o, CKA_PRIVATE), CK_TRUE);
		assert_int_equal(attr_bool(f, s, o, CKA_SENSITIVE), CK_TRUE);
		assert_int_equal(attr_bool(f, s, o, CKA_ALWAYS_SENSITIVE), CK_TRUE);
		assert_int_equal(attr_bool(f, s, o, CKA_EXTRACTABLE), CK_FALSE);
		assert_int_equal(attr_bool(f, s, o, CKA_NEVER_EXTRACTABLE), CK_TRUE);
		assert_int_equal(attr_bool(f, s, o, CKA_SIGN), CK_TRUE);
		assert_int_equal(attr_bool(f, s, o, CKA_DERIVE), CK_FALSE);
		assert_int_equal(attr_bool(f, s, o, CKA_DECRYPT), dec);
		assert_int_equal(attr_bool(f, s, o, CKA_UNWRAP), dec);
		{
			uint8_t lbl[64];
			CK_ATTRIBUTE a = { CKA_LABEL, lbl, sizeof(lbl) };
			const char *want = k ? "enkripsi rsa" : "ttd ec";

			assert_int_equal(f->C_GetAttributeValue(s, o, &a, 1), CKR_OK);
			assert_int_equal(a.ulValueLen, strlen(want));
			assert_memory_equal(lbl, want, strlen(want));
		}
		o = find_one(f, s, CKO_PUBLIC_KEY, id, 2);
		assert_int_equal(attr_bool(f, s, o, CKA_VERIFY), CK_TRUE);
		assert_int_equal(attr_bool(f, s, o, CKA_ENCRYPT), dec);
	}
	f->C_Logout(s);
	f->C_CloseSession(s);
	p11_kit_module_finalize(f);
	p11_kit_module_release(f);
}

static void
pubkey(const uint8_t *id, size_t n, struct tok_admin_reply *ret)
{
	struct tok_admin_req req = { .type = TOK_MSG_PUBKEY, .token_id = T.token_id,
		.ck_id = { (uint8_t *)id, n } };

	admin(&req, ret);
}

static void
test_pubkey(void **state)
{
	struct tok_admin_reply rep;
	static const uint8_t none[] = { 0x77 };

	pubkey(id_ec, sizeof(id_ec), &rep);
	expect_ok(&rep, "PUBKEY EC");
	assert_int_equal(rep.spki.n, T.spki_ec.n);
	assert_memory_equal(rep.spki.p, T.spki_ec.p, T.spki_ec.n);
	tok_admin_reply_release(&rep);

	pubkey(id_rsa, sizeof(id_rsa), &rep);
	expect_ok(&rep, "PUBKEY RSA");
	assert_int_equal(rep.spki.n, T.spki_rsa.n);
	assert_memory_equal(rep.spki.p, T.spki_rsa.p, T.spki_rsa.n);
	tok_admin_reply_release(&rep);

	pubkey(none, sizeof(none), &rep);
	expect_err(&rep, TOK_ERR_KEY_NOT_FOUND, 0, "PUBKEY of an unknown CKA_ID");
	tok_admin_reply_release(&rep);

	/* A token id nobody has. */
	{
		struct tok_admin_req req = { .type = TOK_MSG_PUBKEY, .token_id = "0000000000000000",
			.ck_id = { (uint8_t *)id_ec, sizeof(id_ec) } };

		admin(&req, &rep);
		expect_err(&rep, TOK_ERR_TOKEN_NOT_PRESENT, 0, "PUBKEY on an absent token");
		tok_admin_reply_release(&rep);
	}
}

/* A certificate for the token's public key, signed by a throw-away software CA key: only its
 * SubjectPublicKeyInfo has to be right. */
static void
make_cert(const struct tok_blob *spki, const char *cn, long serial, struct tok_blob *ret)
{
	EVP_PKEY *pub = spki_parse(spki), *ca = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *subj = X509_NAME_new(), *iss = X509_NAME_new();
	unsigned char *der = NULL;
	int n;

	assert_non_null(ca);
	assert_non_null(x);
	assert_true(X509_set_version(x, 2));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), serial));
	assert_true(X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
		-1, -1, 0));
	assert_true(X509_NAME_add_entry_by_txt(iss, "CN", MBSTRING_UTF8,
		(const unsigned char *)"paraf test CA", -1, -1, 0));
	assert_true(X509_set_subject_name(x, subj));
	assert_true(X509_set_issuer_name(x, iss));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 730));
	assert_true(X509_set_pubkey(x, pub));
	assert_true(X509_sign(x, ca, EVP_sha256()) > 0);
	n = i2d_X509(x, &der);
	assert_true(n > 0);
	blob_set(ret, der, (size_t)n);
	OPENSSL_free(der);
	X509_NAME_free(subj);
	X509_NAME_free(iss);
	X509_free(x);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(ca);
}

static void
write_cert(const uint8_t *id, size_t n, const struct tok_blob *der, const char *label,
	struct tok_admin_reply *ret)
{
	struct tok_admin_req req = { .type = TOK_MSG_WRITE_CERT, .token_id = T.token_id,
		.pin = secret(PASSPHRASE), .ck_id = { (uint8_t *)id, n }, .der = *der,
		.label = (char *)label };

	admin(&req, ret);
}

static void
test_write_cert(void **state)
{
	static const uint8_t none[] = { 0x77 };
	struct tok_admin_reply rep;

	make_cert(&T.spki_ec, "Pejabat Uji (EC)", 4242, &T.cert_ec);
	make_cert(&T.spki_rsa, "Pejabat Uji (RSA)", 4343, &T.cert_rsa);

	/* Not beside its key: no private key with that CKA_ID, or another key's id. */
	write_cert(none, sizeof(none), &T.cert_ec, "sertifikat", &rep);
	expect_err(&rep, TOK_ERR_KEY_NOT_FOUND, 0, "WRITE_CERT with no key");
	tok_admin_reply_release(&rep);
	write_cert(id_rsa, sizeof(id_rsa), &T.cert_ec, "sertifikat", &rep);
	expect_err(&rep, TOK_ERR_KEY_NOT_FOUND, 0, "WRITE_CERT beside the wrong key");
	tok_admin_reply_release(&rep);
	/* Not a certificate at all. */
	{
		struct tok_blob junk = { (uint8_t *)"\x30\x03\x02\x01\x01", 5 };

		write_cert(id_ec, sizeof(id_ec), &junk, "", &rep);
		expect_err(&rep, TOK_ERR_INTERNAL, 0, "WRITE_CERT of junk");
		tok_admin_reply_release(&rep);
	}

	write_cert(id_ec, sizeof(id_ec), &T.cert_ec, "sertifikat ec", &rep);
	expect_ok(&rep, "WRITE_CERT EC");
	tok_admin_reply_release(&rep);
	write_cert(id_rsa, sizeof(id_rsa), &T.cert_rsa, "", &rep);
	expect_ok(&rep, "WRITE_CERT RSA");
	tok_admin_reply_release(&rep);

	/* Never overwritten. */
	write_cert(id_ec, sizeof(id_ec), &T.cert_ec, "again", &rep);
	expect_err(&rep, TOK_ERR_DEVICE, 1, "a second WRITE_CERT");
	tok_admin_reply_release(&rep);
}

static void
test_list_shows_certs(void **state)
{
	struct tok_list l = {};
	const struct tok_cert *c;

	list(&l);
	c = list_cert(&l, id_ec, sizeof(id_ec));
	assert_non_null(c);
	assert_int_equal(c->der.n, T.cert_ec.n);
	assert_memory_equal(c->der.p, T.cert_ec.p, T.cert_ec.n);
	assert_string_equal(c->label, "sertifikat ec");
	c = list_cert(&l, id_rsa, sizeof(id_rsa));
	assert_non_null(c);
	assert_memory_equal(c->der.p, T.cert_rsa.p, T.cert_rsa.n);
	assert_int_equal(l.n_certs, 2);
	tok_list_release(&l);
}

static void
sign(const uint8_t *id, uint32_t mech, const uint8_t *digest, struct tok_blob *ret)
{
	struct tok_blob d = { (uint8_t *)digest, 32 };
	struct tok_sign_req req = { .token_id = T.token_id, .ck_id = { (uint8_t *)id, 2 },
		.mech = mech, .hash = TOK_HASH_SHA256, .pin = secret(PASSPHRASE), .digests = &d,
		.n_digests = 1 };
	struct tok_sign_reply rep = {};
	struct pf_buf body, reply;

	pf_buf_init(&body);
	body.wipe = 1;
	tok_sign_req_encode(&body, &req);
	call(TOK_MSG_SIGN, &body, TOK_MSG_SIGN_REPLY, &reply);
	pf_buf_release(&body);
	req.pin = pf_secret_free(req.pin);
	assert_int_equal(tok_sign_reply_decode(reply.data, reply.len, &rep), 0);
	pf_buf_release(&reply);
	if (rep.err != TOK_OK)
		fail_msg("SIGN: %s: %s", tok_err_to_string(rep.err), rep.detail);
	assert_int_equal(rep.n_sigs, 1);
	*ret = rep.sigs[0];
	rep.sigs[0] = (struct tok_blob){};
	tok_sign_reply_release(&rep);
}

static void
test_sign_verifies(void **state)
{
	uint8_t digest[32];
	struct tok_blob sig = {};
	EVP_PKEY *pk;
	EVP_PKEY_CTX *ctx;
	ECDSA_SIG *es;
	unsigned char *der = NULL;
	int n;

	assert_int_equal(EVP_Digest("surat keputusan", 15, digest, NULL, EVP_sha256(), NULL), 1);

	/* ECDSA: the token gives r || s; OpenSSL verifies DER. */
	sign(id_ec, TOK_MECH_ECDSA, digest, &sig);
	assert_int_equal(sig.n, 64);
	es = ECDSA_SIG_new();
	assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(sig.p, 32, NULL),
				 BN_bin2bn(sig.p + 32, 32, NULL)), 1);
	n = i2d_ECDSA_SIG(es, &der);
	assert_true(n > 0);
	pk = spki_parse(&T.spki_ec);
	ctx = EVP_PKEY_CTX_new(pk, NULL);
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_verify(ctx, der, (size_t)n, digest, sizeof(digest)), 1);
	digest[0] ^= 1;
	assert_int_not_equal(EVP_PKEY_verify(ctx, der, (size_t)n, digest, sizeof(digest)), 1);
	digest[0] ^= 1;
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	free(sig.p);

	/* RSA PKCS#1 v1.5 with the 3072-bit key. */
	sign(id_rsa, TOK_MECH_RSA_PKCS, digest, &sig);
	assert_int_equal(sig.n, 384);
	pk = spki_parse(&T.spki_rsa);
	ctx = EVP_PKEY_CTX_new(pk, NULL);
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_verify(ctx, sig.p, sig.n, digest, sizeof(digest)), 1);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	free(sig.p);
}

/* TOK_MSG_SIGN_STREAM (parafd's batches): parts in order while the token signs, then the
 * reply with the rest; together one signature a digest, each verifying against its own. */
static void
test_sign_stream(void **state)
{
	enum { N = 3 * TOK_SIGN_PART_MAX + 5 };
	static uint8_t digests[N][32];
	struct tok_blob d[N];
	struct tok_sign_req req = { .token_id = T.token_id, .ck_id = { (uint8_t *)id_ec, 2 },
		.mech = TOK_MECH_ECDSA, .hash = TOK_HASH_SHA256, .pin = secret(PASSPHRASE),
		.digests = d, .n_digests = N };
	struct pf_buf f, in;
	size_t got = 0, parts = 0;
	uint32_t type = 0;
	EVP_PKEY *pk = spki_parse(&T.spki_ec);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
	pid_t pid;
	int fd;

	for (size_t i = 0; i < N; i++) {
		char text[32];

		snprintf(text, sizeof(text), "surat %zu", i);
		assert_int_equal(EVP_Digest(text, strlen(text), digests[i], NULL, EVP_sha256(),
					 NULL), 1);
		d[i] = (struct tok_blob){ digests[i], 32 };
	}
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	assert_int_equal(tok_helper_spawn(T.helper, (char *const *)&T.module, 1, &pid, &fd), 0);
	pf_buf_init(&f);
	f.wipe = 1;
	tok_frame_begin(&f, TOK_MSG_SIGN_STREAM);
	tok_sign_req_encode(&f, &req);
	assert_int_equal(tok_frame_end(&f), 0);
	assert_int_equal(tok_write_all(fd, f.data, f.len), 0);
	pf_buf_release(&f);
	req.pin = pf_secret_free(req.pin);
	pf_buf_init(&in);
	while (type != TOK_MSG_SIGN_REPLY) {
		struct tok_sign_reply rep = {};
		size_t first = got;

		assert_int_equal(tok_frame_read(fd, &in, &type), 0);
		if (type == TOK_MSG_SIGN_PART) {
			assert_int_equal(tok_sign_part_decode(in.data, in.len, &first, &rep), 0);
			assert_int_equal(first, got); /* in order, nothing skipped or repeated */
			assert_true(rep.n_sigs <= TOK_SIGN_PART_MAX);
			parts++;
		} else {
			assert_int_equal(type, TOK_MSG_SIGN_REPLY);
			assert_int_equal(tok_sign_reply_decode(in.data, in.len, &rep), 0);
			if (rep.err != TOK_OK)
				fail_msg("SIGN_STREAM: %s: %s", tok_err_to_string(rep.err), rep.detail);
			assert_int_equal(rep.logins, 1); /* one PIN for the batch */
		}
		for (size_t k = 0; k < rep.n_sigs; k++) {
			ECDSA_SIG *es = ECDSA_SIG_new();
			unsigned char *der = NULL;
			int n;

			assert_true(got + k < N);
			assert_int_equal(rep.sigs[k].n, 64);
			assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(rep.sigs[k].p, 32, NULL),
						 BN_bin2bn(rep.sigs[k].p + 32, 32, NULL)), 1);
			n = i2d_ECDSA_SIG(es, &der);
			assert_int_equal(EVP_PKEY_verify(ctx, der, (size_t)n, digests[got + k], 32),
				1);
			OPENSSL_free(der);
			ECDSA_SIG_free(es);
		}
		got += rep.n_sigs;
		tok_sign_reply_release(&rep);
	}
	assert_int_equal(got, N);
	/* SoftHSM signs fast: every TOK_SIGN_PART_MAX signatures make a part */
	assert_true(parts >= N / TOK_SIGN_PART_MAX);
	pf_buf_release(&in);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	close(fd);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Nothing that exists is overwritten. */

static void
test_init_token_again(void **state)
{
	struct tok_admin_req req = { .type = TOK_MSG_INIT_TOKEN, .serial = T.serial,
		.label = "perampas", .so_pin = secret(SO_PIN) };
	struct tok_admin_reply rep;
	struct tok_list l = {};

	admin(&req, &rep);
	expect_err(&rep, TOK_ERR_TOKEN_NOT_PRESENT, 1, "a second INIT_TOKEN of the same serial");
	assert_non_null(strstr(rep.detail, "already initialised"));
	assert_string_equal(rep.token_id, T.token_id);
	assert_string_equal(rep.serial, T.serial);
	tok_admin_reply_release(&rep);

	/* A serial nobody has. */
	req = (struct tok_admin_req){ .type = TOK_MSG_INIT_TOKEN, .serial = "nobody", .label = "x",
		.so_pin = secret(SO_PIN) };
	admin(&req, &rep);
	expect_err(&rep, TOK_ERR_TOKEN_NOT_PRESENT, 0, "INIT_TOKEN of an absent serial");
	tok_admin_reply_release(&rep);

	list(&l);
	assert_string_equal(list_token(&l, T.token_id)->label, TOKEN_LABEL);
	assert_int_equal(l.n_certs, 2);
	tok_list_release(&l);
}

static void
test_generate_existing_id(void **state)
{
	struct tok_admin_reply rep;

	generate(TOK_KEY_EC_P256, id_ec, sizeof(id_ec), 0, "penimpa", PASSPHRASE, &rep);
	expect_err(&rep, TOK_ERR_DEVICE, 1, "GENERATE over an existing CKA_ID");
	assert_null(rep.spki.p);
	tok_admin_reply_release(&rep);

	/* The key that was there still is. */
	pubkey(id_ec, sizeof(id_ec), &rep);
	expect_ok(&rep, "PUBKEY after the refusal");
	assert_memory_equal(rep.spki.p, T.spki_ec.p, T.spki_ec.n);
	tok_admin_reply_release(&rep);
}

/* The link itself, against fake helpers: a deadline missed, an EOF, an oversized frame. */

static void
fake_helper(const char *name, const char *body, char *ret, size_t n)
{
	FILE *f;

	snprintf(ret, n, "%s/%s", T.dir, name);
	f = fopen(ret, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	assert_int_equal(chmod(ret, 0700), 0);
}

static int
link_try(struct tok_link *l, uint32_t *ret_type)
{
	struct pf_buf f, body;
	int r;

	pf_buf_init(&f);
	tok_frame_begin(&f, TOK_MSG_LIST);
	assert_int_equal(tok_frame_end(&f), 0);
	pf_buf_init(&body);
	r = tok_link_call(l, &f, 300, ret_type, &body);
	pf_buf_release(&f);
	pf_buf_release(&body);
	return r;
}

static void
test_link_failures(void **state)
{
	char path[128];
	struct tok_link *l = NULL;
	struct timespec t0, t1;
	uint32_t type;

	fake_helper("silent", "exec sleep 30", path, sizeof(path));
	assert_int_equal(tok_link_open(path, NULL, 0, &l), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(link_try(l, &type), -ETIMEDOUT);
	/* The helper was killed, not waited for: closing does not take the grace period. */
	assert_int_equal(link_try(l, &type), -ENOTCONN);
	l = tok_link_close(l);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 3);

	fake_helper("gone", "exit 0", path, sizeof(path));
	assert_int_equal(tok_link_open(path, NULL, 0, &l), 0);
	assert_int_equal(link_try(l, &type), -ECONNRESET);
	l = tok_link_close(l);

	/* A frame that announces more than TOK_FRAME_MAX. */
	fake_helper("huge", "printf '\\177\\377\\377\\377\\000\\000\\000\\013' >&3; exec sleep 30",
		path, sizeof(path));
	assert_int_equal(tok_link_open(path, NULL, 0, &l), 0);
	assert_int_equal(link_try(l, &type), -EBADMSG);
	l = tok_link_close(l);

	/* A path that is not an executable; a zero deadline. */
	assert_int_equal(tok_link_open("/nonexistent/paraf-token-helper", NULL, 0, &l), -ENOENT);
	{
		struct pf_buf f, body;

		pf_buf_init(&f);
		tok_frame_begin(&f, TOK_MSG_LIST);
		assert_int_equal(tok_frame_end(&f), 0);
		pf_buf_init(&body);
		assert_int_equal(tok_link_call(T.link, &f, 0, &type, &body), -EINVAL);
		pf_buf_release(&f);
		pf_buf_release(&body);
	}
	/* ... which left the real link working. */
	{
		struct tok_list lst = {};

		list(&lst);
		tok_list_release(&lst);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		{ "/tok-admin/init-token", test_init_token, NULL, NULL, NULL },
		{ "/tok-admin/init-pin", test_init_pin, NULL, NULL, NULL },
		{ "/tok-admin/set-pin", test_set_pin, NULL, NULL, NULL },
		{ "/tok-admin/generate", test_generate, NULL, NULL, NULL },
		{ "/tok-admin/key-attributes", test_key_attributes, NULL, NULL, NULL },
		{ "/tok-admin/pubkey", test_pubkey, NULL, NULL, NULL },
		{ "/tok-admin/write-cert", test_write_cert, NULL, NULL, NULL },
		{ "/tok-admin/list-shows-certs", test_list_shows_certs, NULL, NULL, NULL },
		{ "/tok-admin/sign-verifies", test_sign_verifies, NULL, NULL, NULL },
		{ "/tok-admin/sign-stream", test_sign_stream, NULL, NULL, NULL },
		{ "/tok-admin/init-token-again", test_init_token_again, NULL, NULL, NULL },
		{ "/tok-admin/generate-existing-id", test_generate_existing_id, NULL, NULL, NULL },
		{ "/tok-admin/link-failures", test_link_failures, NULL, NULL, NULL },
	};

	T.helper = getenv("PARAF_HELPER");
	T.module = getenv("SOFTHSM2_MODULE");
	if (!T.module || !*T.module)
		T.module = "/usr/lib/softhsm/libsofthsm2.so";
	if (access(T.module, R_OK) < 0) {
		printf("SKIP: SoftHSM is not installed ('%s' missing): apt-get install softhsm2\n",
			T.module);
		return 77;
	}
	if (!T.helper || access(T.helper, X_OK) < 0) {
		fprintf(stderr, "PARAF_HELPER must name the built paraf-token-helper\n");
		return 1;
	}
	return cmocka_run_group_tests_name("/tok-admin", tests, group_setup, group_teardown);
}
