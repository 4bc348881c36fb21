/*
 * CMS assembly around a signature made elsewhere: a software key stands in for the token,
 * and OpenSSL's own CMS_verify() must accept the result, for RSA PKCS#1 v1.5, RSA-PSS and
 * ECDSA, with the signed attributes the protocol promises.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ag.h"
#include "pf-codec.h"

static X509 *
self_signed(EVP_PKEY *k)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"Budi", -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	X509_NAME_free(n);
	return x;
}

/* What a token does with CKM_RSA_PKCS / CKM_RSA_PKCS_PSS / CKM_ECDSA on a digest. */
static size_t
token_sign(EVP_PKEY *k, const EVP_MD *md, enum ag_pad pad, const uint8_t *tbs, size_t n,
	uint8_t *sig)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
	size_t len = 1024;

	assert_true(EVP_PKEY_sign_init(ctx) > 0);
	assert_true(EVP_PKEY_CTX_set_signature_md(ctx, md) > 0);
	if (EVP_PKEY_is_a(k, "RSA"))
		assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, pad == AG_PAD_PSS ? RSA_PKCS1_PSS_PADDING
										 : RSA_PKCS1_PADDING) > 0);
	if (pad == AG_PAD_PSS)
		assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) > 0);
	assert_true(EVP_PKEY_sign(ctx, sig, &len, tbs, n) > 0);
	EVP_PKEY_CTX_free(ctx);
	if (EVP_PKEY_is_a(k, "EC")) {
		/* Tokens give r || s, not DER. */
		const unsigned char *p = sig;
		ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
		const BIGNUM *r, *v;
		ECDSA_SIG_get0(s, &r, &v);
		BN_bn2binpad(r, sig, 32);
		BN_bn2binpad(v, sig + 32, 32);
		ECDSA_SIG_free(s);
		len = 64;
	}
	return len;
}

static void
sign_and_verify_profile(EVP_PKEY *k, const EVP_MD *md, enum ag_pad pad,
	enum ag_cms_profile profile)
{
	static const char doc[] = "Surat Keputusan Bupati\n";
	X509 *x = self_signed(k);
	uint8_t digest[64], tbs[64], sig[1024], *der = NULL;
	unsigned int dlen;
	size_t tbs_len, sig_len, der_len;
	struct ag_cms *c = NULL;
	const unsigned char *p;
	CMS_ContentInfo *cms;
	X509_STORE *store = X509_STORE_new();
	BIO *content;
	CMS_SignerInfo *si;
	X509_ALGOR *sig_alg;
	const ASN1_OBJECT *oid;

	assert_true(EVP_Digest(doc, strlen(doc), digest, &dlen, md, NULL));
	assert_int_equal(ag_cms_new(x, md, pad, profile, digest, dlen, time(NULL), &c, tbs,
		&tbs_len), 0);
	assert_int_equal(tbs_len, dlen);
	sig_len = token_sign(k, md, pad, tbs, tbs_len, sig);
	assert_int_equal(ag_cms_finish(c, sig, sig_len, &der, &der_len), 0);
	ag_cms_free(c);

	p = der;
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)der_len);
	assert_non_null(cms);
	X509_STORE_add_cert(store, x);
	content = BIO_new_mem_buf(doc, (int)strlen(doc));
	if (CMS_verify(cms, NULL, store, content, NULL, CMS_BINARY) != 1)
		fail_msg("CMS_verify refused the signature");
	BIO_free(content);

	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	assert_true(CMS_signed_get_attr_by_NID(si, NID_pkcs9_contentType, -1) >= 0);
	assert_true(CMS_signed_get_attr_by_NID(si, NID_pkcs9_messageDigest, -1) >= 0);
	/* PAdES baseline: no signingTime (the PDF's /M carries the time). */
	assert_int_equal(CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1) >= 0,
		profile == AG_CMS_CADES);
	assert_true(CMS_signed_get_attr_by_NID(si, NID_id_smime_aa_signingCertificateV2, -1) >= 0);
	CMS_SignerInfo_get0_algs(si, NULL, NULL, NULL, &sig_alg);
	X509_ALGOR_get0(&oid, NULL, NULL, sig_alg);
	if (pad == AG_PAD_PSS)
		assert_int_equal(OBJ_obj2nid(oid), NID_rsassaPss);

	/* One changed byte of content: refused. */
	content = BIO_new_mem_buf("Surat Keputusan Bupatl\n", (int)strlen(doc));
	assert_int_not_equal(CMS_verify(cms, NULL, store, content, NULL, CMS_BINARY), 1);
	BIO_free(content);

	CMS_ContentInfo_free(cms);
	X509_STORE_free(store);
	X509_free(x);
	free(der);
}

static void
sign_and_verify(EVP_PKEY *k, const EVP_MD *md, enum ag_pad pad)
{
	sign_and_verify_profile(k, md, pad, AG_CMS_CADES);
}

static void
test_pades_profile(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	sign_and_verify_profile(k, EVP_sha256(), AG_PAD_PKCS1, AG_CMS_PADES);
	EVP_PKEY_free(k);
}

static void
test_rsa_pkcs1(void **state)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	sign_and_verify(k, EVP_sha256(), AG_PAD_PKCS1);
	sign_and_verify(k, EVP_sha384(), AG_PAD_PKCS1);
	sign_and_verify(k, EVP_sha512(), AG_PAD_PKCS1);
	EVP_PKEY_free(k);
}

static void
test_rsa_pss(void **state)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	sign_and_verify(k, EVP_sha256(), AG_PAD_PSS);
	sign_and_verify(k, EVP_sha512(), AG_PAD_PSS);
	EVP_PKEY_free(k);
}

static void
test_ecdsa(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	sign_and_verify(k, EVP_sha256(), AG_PAD_PKCS1);
	sign_and_verify(k, EVP_sha384(), AG_PAD_PKCS1);
	EVP_PKEY_free(k);
}

/* A batch gives, document by document, the very bytes ag_cms_new() + ag_cms_finish() give for
 * the same time, digest and signature, and OpenSSL verifies each against its content; among
 * the digests one equal to the certificate's own hash (which signing-certificate-v2 holds). */
static void
batch_matches(EVP_PKEY *k, const EVP_MD *md, enum ag_pad pad, enum ag_cms_profile profile)
{
	X509 *x = self_signed(k);
	X509_STORE *store = X509_STORE_new();
	struct ag_cms_batch *b = NULL;
	time_t now = time(NULL);
	unsigned char *cert_der = NULL;
	int cert_len = i2d_X509(x, &cert_der);

	X509_STORE_add_cert(store, x);
	assert_int_equal(ag_cms_batch_new(x, md, pad, profile, now, &b), 0);
	for (int i = 0; i < 24; i++) {
		char doc[64];
		uint8_t digest[64], tbs1[64], tbs2[64], sig[1024], *der1 = NULL, *der2 = NULL;
		unsigned int dlen;
		size_t n1, n2, sig_len, len1, len2;
		struct ag_cms *c = NULL;
		const unsigned char *p;
		CMS_ContentInfo *cms;
		BIO *content;

		snprintf(doc, sizeof(doc), "Surat nomor %d\n", i);
		if (i == 0) /* the certificate itself as the document */
			assert_true(EVP_Digest(cert_der, (size_t)cert_len, digest, &dlen, md, NULL));
		else
			assert_true(EVP_Digest(doc, strlen(doc), digest, &dlen, md, NULL));
		assert_int_equal(ag_cms_batch_tbs(b, digest, dlen, tbs1, &n1), 0);
		assert_int_equal(ag_cms_new(x, md, pad, profile, digest, dlen, now, &c, tbs2, &n2), 0);
		assert_int_equal(n1, n2);
		assert_memory_equal(tbs1, tbs2, n1);
		sig_len = token_sign(k, md, pad, tbs1, n1, sig);
		assert_int_equal(ag_cms_batch_finish(b, digest, dlen, sig, sig_len, &der1, &len1), 0);
		assert_int_equal(ag_cms_finish(c, sig, sig_len, &der2, &len2), 0);
		ag_cms_free(c);
		assert_int_equal(len1, len2);
		assert_memory_equal(der1, der2, len1);
		p = der1;
		cms = d2i_CMS_ContentInfo(NULL, &p, (long)len1);
		assert_non_null(cms);
		if (i == 0)
			content = BIO_new_mem_buf(cert_der, cert_len);
		else
			content = BIO_new_mem_buf(doc, (int)strlen(doc));
		if (CMS_verify(cms, NULL, store, content, NULL, CMS_BINARY) != 1)
			fail_msg("CMS_verify refused document %d of a batch", i);
		BIO_free(content);
		CMS_ContentInfo_free(cms);
		free(der1);
		free(der2);
	}
	/* A digest of the wrong length is refused. */
	{
		uint8_t d[16] = { 0 }, tbs[64], *der;
		size_t n, len;
		assert_true(ag_cms_batch_tbs(b, d, sizeof(d), tbs, &n) < 0);
		assert_true(ag_cms_batch_finish(b, d, sizeof(d), d, sizeof(d), &der, &len) < 0);
	}
	ag_cms_batch_free(b);
	OPENSSL_free(cert_der);
	X509_STORE_free(store);
	X509_free(x);
}

static void
test_batch(void **state)
{
	EVP_PKEY *ec = EVP_EC_gen("P-256"), *rsa = EVP_RSA_gen(2048);
	struct ag_cms_batch *b = NULL;
	X509 *x = self_signed(ec);

	batch_matches(ec, EVP_sha256(), AG_PAD_PKCS1, AG_CMS_CADES);
	batch_matches(ec, EVP_sha384(), AG_PAD_PKCS1, AG_CMS_PADES);
	batch_matches(rsa, EVP_sha256(), AG_PAD_PKCS1, AG_CMS_CADES);
	batch_matches(rsa, EVP_sha512(), AG_PAD_PSS, AG_CMS_PADES);
	/* PSS with an EC key. */
	assert_true(ag_cms_batch_new(x, EVP_sha256(), AG_PAD_PSS, AG_CMS_CADES, 0, &b) < 0);
	X509_free(x);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
}

/* r || s to DER by hand gives what OpenSSL's i2d_ECDSA_SIG gives: leading zeros dropped, a
 * zero put before a high bit, P-256 to P-521 sizes (the long form of the length past 127). */
static void
test_ecdsa_der(void **state)
{
	static const size_t sizes[] = { 64, 96, 132 };
	uint8_t sig[132];

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];

		for (int i = 0; i < 200; i++) {
			ECDSA_SIG *es = ECDSA_SIG_new();
			unsigned char *ref = NULL;
			uint8_t *der = NULL;
			size_t len = 0;
			int ref_len;

			for (size_t j = 0; j < n; j++)
				sig[j] = (uint8_t)rand();
			switch (i % 5) {
			case 1: memset(sig, 0, 3); break;                  /* r with leading zeros */
			case 2: sig[0] = 0xff; sig[n / 2] = 0x80; break;   /* both high bits */
			case 3: memset(sig, 0, n / 2 - 1); break;          /* r of one byte */
			case 4: memset(sig, 0xff, n); break;               /* the longest */
			}
			assert_true(ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)(n / 2), NULL),
				BN_bin2bn(sig + n / 2, (int)(n / 2), NULL)));
			ref_len = i2d_ECDSA_SIG(es, &ref);
			assert_true(ref_len > 0);
			assert_int_equal(ag_ecdsa_sig_to_der(sig, n, &der, &len), 0);
			assert_int_equal(len, (size_t)ref_len);
			assert_memory_equal(der, ref, len);
			free(der);
			OPENSSL_free(ref);
			ECDSA_SIG_free(es);
		}
	}
}

static void
test_refusals(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = self_signed(k);
	uint8_t d[32] = { 0 }, tbs[64];
	size_t n;
	struct ag_cms *c = NULL;

	/* PSS with an EC key, and a digest whose length does not fit the algorithm. */
	assert_true(ag_cms_new(x, EVP_sha256(), AG_PAD_PSS, AG_CMS_CADES, d, 32, 0, &c, tbs, &n) < 0);
	assert_true(ag_cms_new(x, EVP_sha384(), AG_PAD_PKCS1, AG_CMS_CADES, d, 32, 0, &c, tbs, &n) < 0);
	/* An r || s of odd length is not an ECDSA signature. */
	{
		uint8_t *der;
		size_t len;
		assert_true(ag_ecdsa_sig_to_der(d, 31, &der, &len) < 0);
	}
	X509_free(x);
	EVP_PKEY_free(k);
}

static void
test_cert_describe(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = self_signed(k);
	json_object *o = ag_cert_describe(x), *v;
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	char *id = ag_cert_id(der, (size_t)n);

	assert_int_equal(strlen(id), 64);
	assert_true(json_object_object_get_ex(o, "subject", &v));
	assert_string_equal(json_object_get_string(v), "CN=Budi");
	/* No keyUsage extension is null, not an empty list: "missing" must not read as "none". */
	assert_true(json_object_object_get_ex(o, "key_usage", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(o, "key", &v));
	assert_true(json_object_object_get_ex(v, "curve", &v));
	assert_string_equal(json_object_get_string(v), "prime256v1");
	json_object_put(o);
	free(id);
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void
test_base64(void **state)
{
	uint8_t *p;
	size_t n;
	char *s = pf_base64_encode((const uint8_t *)"hello", 5);

	assert_string_equal(s, "aGVsbG8=");
	free(s);
	assert_int_equal(pf_base64_decode("aGVsbG8=", 8, &p, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(p, "hello", 5);
	free(p);
	/* Non-canonical spellings are refused: one digest, one spelling. */
	assert_true(pf_base64_decode("aGVsbG9=", 8, &p, &n) < 0);
	assert_true(pf_base64_decode("aGVsbG8", 7, &p, &n) < 0);
	assert_true(pf_base64_decode("aGVs\nbG8=", 9, &p, &n) < 0);
	assert_true(pf_base64_decode("a=VsbG8=", 8, &p, &n) < 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsa_pkcs1),
		cmocka_unit_test(test_rsa_pss),
		cmocka_unit_test(test_ecdsa),
		cmocka_unit_test(test_pades_profile),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_ecdsa_der),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_cert_describe),
		cmocka_unit_test(test_base64),
	};

	return cmocka_run_group_tests_name("/cms", tests, NULL, NULL);
}
