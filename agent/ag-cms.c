/*
 * CAdES-BES detached SignedData whose signature is made on a token in another process.
 *
 * OpenSSL's CMS_sign() wants the private key in-process. Here OpenSSL builds the structure
 * (CMS_PARTIAL, with the certificate's public key standing in for the private one, which
 * CMS_add1_signer only compares), we add the signed attributes, hash their DER SET encoding
 * ourselves, the token signs that hash, and the signature is put in place. For RSA-PSS the
 * signature algorithm identifier is written here too, so the padding is chosen by the
 * request, not by whatever a token would do with raw RSA.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "ag.h"
#include "pf-util.h"

struct ag_cms {
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	int is_ec;
};

struct ag_cms *
ag_cms_free(struct ag_cms *c)
{
	if (!c)
		return NULL;
	CMS_ContentInfo_free(c->cms);
	free(c);
	return NULL;
}

struct der_item {
	unsigned char *p;
	int n;
};

static int
der_item_cmp(const void *a, const void *b)
{
	const struct der_item *x = a, *y = b;
	int r = memcmp(x->p, y->p, (size_t)(x->n < y->n ? x->n : y->n));

	return r ? r : x->n - y->n;
}

/* The DER of the signed attributes as a SET OF (X.690 11.6: elements sorted by their
 * encodings), which is what the signature covers (RFC 5652 5.4). */
static int
signed_attrs_der(CMS_SignerInfo *si, unsigned char **ret, size_t *ret_len)
{
	int n = CMS_signed_get_attr_count(si), i, total = 0, hdr;
	struct der_item *items;
	unsigned char *out, *p;
	int r = -ENOMEM;

	if (n <= 0)
		return -EINVAL;
	items = calloc((size_t)n, sizeof(*items));
	if (!items)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		items[i].n = i2d_X509_ATTRIBUTE(CMS_signed_get_attr(si, i), &items[i].p);
		if (items[i].n <= 0)
			goto out;
		total += items[i].n;
	}
	qsort(items, (size_t)n, sizeof(*items), der_item_cmp);
	hdr = ASN1_object_size(1, total, V_ASN1_SET) - total;
	out = malloc((size_t)(hdr + total));
	if (!out)
		goto out;
	p = out;
	ASN1_put_object(&p, 1, total, V_ASN1_SET, V_ASN1_UNIVERSAL);
	for (i = 0; i < n; i++) {
		memcpy(p, items[i].p, (size_t)items[i].n);
		p += items[i].n;
	}
	*ret = out;
	*ret_len = (size_t)(hdr + total);
	r = 0;
out:
	for (i = 0; i < n; i++)
		OPENSSL_free(items[i].p);
	free(items);
	return r;
}

/* RSASSA-PSS-params (RFC 4055): MGF1 with the same hash, salt as long as the hash. */
static int
set_pss_algorithm(CMS_SignerInfo *si, const EVP_MD *md)
{
	RSA_PSS_PARAMS *pss = RSA_PSS_PARAMS_new();
	X509_ALGOR *sig_alg, *mgf_md = NULL;
	ASN1_STRING *mgf_param = NULL, *params = NULL;
	int ok = 0;

	if (!pss)
		return -ENOMEM;
	CMS_SignerInfo_get0_algs(si, NULL, NULL, NULL, &sig_alg);
	pss->hashAlgorithm = X509_ALGOR_new();
	pss->maskGenAlgorithm = X509_ALGOR_new();
	pss->saltLength = ASN1_INTEGER_new();
	mgf_md = X509_ALGOR_new();
	if (!pss->hashAlgorithm || !pss->maskGenAlgorithm || !pss->saltLength || !mgf_md)
		goto out;
	X509_ALGOR_set_md(pss->hashAlgorithm, md);
	X509_ALGOR_set_md(mgf_md, md);
	if (!ASN1_INTEGER_set(pss->saltLength, EVP_MD_get_size(md)))
		goto out;
	if (!ASN1_item_pack(mgf_md, ASN1_ITEM_rptr(X509_ALGOR), &mgf_param))
		goto out;
	if (!X509_ALGOR_set0(pss->maskGenAlgorithm, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE, mgf_param))
		goto out;
	mgf_param = NULL;
	if (!ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), &params))
		goto out;
	if (!X509_ALGOR_set0(sig_alg, OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE, params))
		goto out;
	params = NULL;
	ok = 1;
out:
	ASN1_STRING_free(mgf_param);
	ASN1_STRING_free(params);
	X509_ALGOR_free(mgf_md);
	RSA_PSS_PARAMS_free(pss);
	return ok ? 0 : -EINVAL;
}

int
ag_cms_new(X509 *cert, const EVP_MD *md, enum ag_pad pad, enum ag_cms_profile profile,
	const uint8_t *digest, size_t digest_len, time_t signing_time, struct ag_cms **ret,
	uint8_t *ret_tbs, size_t *ret_tbs_len)
{
	struct ag_cms *c = calloc(1, sizeof(*c));
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	ASN1_TIME *t = NULL;
	unsigned char *der = NULL;
	size_t der_len = 0;
	unsigned int tbs_len = 0;
	int r = -EINVAL;

	if (!c)
		return -ENOMEM;
	if (!pub || (size_t)EVP_MD_get_size(md) != digest_len)
		goto fail;
	c->is_ec = EVP_PKEY_is_a(pub, "EC");
	if (pad == AG_PAD_PSS && !EVP_PKEY_is_a(pub, "RSA") && !EVP_PKEY_is_a(pub, "RSA-PSS"))
		goto fail;
	c->cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_DETACHED | CMS_BINARY | CMS_PARTIAL);
	if (!c->cms)
		goto fail;
	/* CMS_CADES adds signing-certificate-v2 (RFC 5035) with the certificate's hash. */
	c->si = CMS_add1_signer(c->cms, cert, pub, md, CMS_PARTIAL | CMS_CADES | CMS_NOSMIMECAP);
	if (!c->si)
		goto fail;
	t = X509_time_adj(NULL, 0, &signing_time);
	if (!t)
		goto fail;
	if (!CMS_signed_add1_attr_by_NID(c->si, NID_pkcs9_contentType, V_ASN1_OBJECT,
		    OBJ_nid2obj(NID_pkcs7_data), -1) ||
	    (profile == AG_CMS_CADES &&
		    !CMS_signed_add1_attr_by_NID(c->si, NID_pkcs9_signingTime, t->type, t, -1)) ||
	    !CMS_signed_add1_attr_by_NID(c->si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING,
		    digest, (int)digest_len))
		goto fail;
	if (pad == AG_PAD_PSS && set_pss_algorithm(c->si, md) < 0)
		goto fail;
	r = signed_attrs_der(c->si, &der, &der_len);
	if (r < 0)
		goto fail;
	r = -EINVAL;
	if (!EVP_Digest(der, der_len, ret_tbs, &tbs_len, md, NULL))
		goto fail;
	free(der);
	ASN1_TIME_free(t);
	*ret_tbs_len = tbs_len;
	*ret = c;
	return 0;
fail:
	free(der);
	ASN1_TIME_free(t);
	ag_cms_free(c);
	return r;
}

int
ag_ecdsa_sig_to_der(const uint8_t *sig, size_t n, uint8_t **ret_der, size_t *ret_len)
{
	ECDSA_SIG *s;
	BIGNUM *r, *v;
	unsigned char *der = NULL;
	int len;

	if (n == 0 || n % 2 || n > 2 * 66)
		return -EINVAL;
	s = ECDSA_SIG_new();
	r = BN_bin2bn(sig, (int)(n / 2), NULL);
	v = BN_bin2bn(sig + n / 2, (int)(n / 2), NULL);
	if (!s || !r || !v || !ECDSA_SIG_set0(s, r, v)) {
		ECDSA_SIG_free(s);
		BN_free(r);
		BN_free(v);
		return -ENOMEM;
	}
	len = i2d_ECDSA_SIG(s, &der);
	ECDSA_SIG_free(s);
	if (len <= 0)
		return -EINVAL;
	*ret_der = malloc((size_t)len);
	if (!*ret_der) {
		OPENSSL_free(der);
		return -ENOMEM;
	}
	memcpy(*ret_der, der, (size_t)len);
	OPENSSL_free(der);
	*ret_len = (size_t)len;
	return 0;
}

int
ag_cms_finish(struct ag_cms *c, const uint8_t *sig, size_t sig_len, uint8_t **ret_der,
	size_t *ret_len)
{
	ASN1_OCTET_STRING *os = CMS_SignerInfo_get0_signature(c->si);
	uint8_t *ecder = NULL;
	size_t ecder_len = 0;
	unsigned char *der = NULL;
	int len, r;

	if (c->is_ec) {
		r = ag_ecdsa_sig_to_der(sig, sig_len, &ecder, &ecder_len);
		if (r < 0)
			return r;
		sig = ecder;
		sig_len = ecder_len;
	}
	r = ASN1_OCTET_STRING_set(os, sig, (int)sig_len) ? 0 : -ENOMEM;
	free(ecder);
	if (r < 0)
		return r;
	len = i2d_CMS_ContentInfo(c->cms, &der);
	if (len <= 0)
		return -EINVAL;
	*ret_der = malloc((size_t)len);
	if (!*ret_der) {
		OPENSSL_free(der);
		return -ENOMEM;
	}
	memcpy(*ret_der, der, (size_t)len);
	OPENSSL_free(der);
	*ret_len = (size_t)len;
	return 0;
}
