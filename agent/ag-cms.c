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
#include <openssl/rand.h>
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

/* One DER INTEGER of an unsigned big-endian number: leading zero bytes dropped, a 0x00 put in
 * front when the high bit is set (X.690 8.3). */
static size_t
der_uint(const uint8_t *v, size_t n, uint8_t *out)
{
	size_t len;

	while (n > 1 && v[0] == 0)
		v++, n--;
	len = n + (v[0] & 0x80 ? 1 : 0);
	out[0] = 0x02;
	out[1] = (uint8_t)len;
	if (v[0] & 0x80)
		out[2] = 0;
	memcpy(out + 2 + (len - n), v, n);
	return 2 + len;
}

int
ag_ecdsa_sig_to_der(const uint8_t *sig, size_t n, uint8_t **ret_der, size_t *ret_len)
{
	/* SEQUENCE { INTEGER r, INTEGER s } with r and s at most 66 bytes (P-521) each: the
	 * content is at most 2 * (2 + 67) = 138 bytes, so the header takes 2 or 3 bytes. */
	uint8_t body[2 * (2 + 67)], *der;
	size_t len, hdr;

	if (n == 0 || n % 2 || n > 2 * 66)
		return -EINVAL;
	len = der_uint(sig, n / 2, body);
	len += der_uint(sig + n / 2, n / 2, body + len);
	hdr = len < 0x80 ? 2 : 3;
	der = malloc(hdr + len);
	if (!der)
		return -ENOMEM;
	der[0] = 0x30;
	if (len < 0x80) {
		der[1] = (uint8_t)len;
	} else {
		der[1] = 0x81;
		der[2] = (uint8_t)len;
	}
	memcpy(der + hdr, body, len);
	*ret_der = der;
	*ret_len = hdr + len;
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

/*
 * Many documents under one signer, one signing time and one profile (a `sign` batch): the
 * CMS structure is built and encoded once, with marker bytes standing for the document's
 * digest and for the signature, and each document's DER is that encoding with its own bytes
 * put in place. DER encodes an OCTET STRING's content as it is, and the order of the signed
 * attributes (a DER SET OF) is decided by their headers and object identifiers before any
 * digest byte, so the result is byte for byte what ag_cms_new() + ag_cms_finish() give for
 * the same input (test-cms.c checks it), at a small part of the cost.
 */
struct ag_cms_tpl {
	size_t sig_len;   /* the length of the signature (DER for EC) this template is for */
	uint8_t *der;     /* the whole ContentInfo with the markers */
	size_t len, digest_off, sig_off;
};

struct ag_cms_batch {
	struct ag_cms *c;
	const EVP_MD *md;
	size_t digest_len;
	uint8_t digest_marker[EVP_MAX_MD_SIZE];
	uint8_t *attrs; /* the signed attributes' DER with the digest marker */
	size_t attrs_len, attrs_off;
	EVP_MD_CTX *prefix; /* the hash of the attributes up to the digest */
	struct ag_cms_tpl *tpl;
	size_t n_tpl;
};

/* Where `marker` occurs in `hay`, provided it occurs exactly once. */
static int
find_once(const uint8_t *hay, size_t hay_len, const uint8_t *marker, size_t n, size_t *ret_off)
{
	const uint8_t *p = memmem(hay, hay_len, marker, n);

	if (!p || memmem(p + 1, hay_len - (size_t)(p + 1 - hay), marker, n))
		return -EINVAL;
	*ret_off = (size_t)(p - hay);
	return 0;
}

struct ag_cms_batch *
ag_cms_batch_free(struct ag_cms_batch *b)
{
	if (!b)
		return NULL;
	ag_cms_free(b->c);
	EVP_MD_CTX_free(b->prefix);
	free(b->attrs);
	for (size_t i = 0; i < b->n_tpl; i++)
		free(b->tpl[i].der);
	free(b->tpl);
	free(b);
	return NULL;
}

int
ag_cms_batch_new(X509 *cert, const EVP_MD *md, enum ag_pad pad, enum ag_cms_profile profile,
	time_t signing_time, struct ag_cms_batch **ret)
{
	struct ag_cms_batch *b = calloc(1, sizeof(*b));
	uint8_t tbs[EVP_MAX_MD_SIZE];
	size_t tbs_len;
	int r = -EINVAL;

	if (!b)
		return -ENOMEM;
	if (EVP_MD_get_size(md) <= 0)
		goto fail;
	b->md = md;
	b->digest_len = (size_t)EVP_MD_get_size(md);
	if (RAND_bytes(b->digest_marker, (int)b->digest_len) != 1)
		goto fail;
	r = ag_cms_new(cert, md, pad, profile, b->digest_marker, b->digest_len, signing_time, &b->c,
		tbs, &tbs_len);
	if (r < 0)
		goto fail;
	r = signed_attrs_der(b->c->si, &b->attrs, &b->attrs_len);
	if (r < 0)
		goto fail;
	r = find_once(b->attrs, b->attrs_len, b->digest_marker, b->digest_len, &b->attrs_off);
	if (r < 0)
		goto fail;
	r = -ENOMEM;
	b->prefix = EVP_MD_CTX_new();
	if (!b->prefix || !EVP_DigestInit_ex(b->prefix, md, NULL) ||
	    !EVP_DigestUpdate(b->prefix, b->attrs, b->attrs_off))
		goto fail;
	*ret = b;
	return 0;
fail:
	ag_cms_batch_free(b);
	return r;
}

int
ag_cms_batch_tbs(struct ag_cms_batch *b, const uint8_t *digest, size_t digest_len,
	uint8_t *ret_tbs, size_t *ret_tbs_len)
{
	unsigned int n = 0;
	EVP_MD_CTX *ctx;
	int ok;

	if (digest_len != b->digest_len)
		return -EINVAL;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	ok = EVP_MD_CTX_copy_ex(ctx, b->prefix) &&
	     EVP_DigestUpdate(ctx, digest, digest_len) &&
	     EVP_DigestUpdate(ctx, b->attrs + b->attrs_off + digest_len,
		     b->attrs_len - b->attrs_off - digest_len) &&
	     EVP_DigestFinal_ex(ctx, ret_tbs, &n);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -EINVAL;
	*ret_tbs_len = n;
	return 0;
}

/* The template for signatures of sig_len bytes, made on first use. */
static struct ag_cms_tpl *
batch_template(struct ag_cms_batch *b, size_t sig_len)
{
	struct ag_cms_tpl *t, *more;
	uint8_t *marker;
	size_t i;

	for (i = 0; i < b->n_tpl; i++)
		if (b->tpl[i].sig_len == sig_len)
			return &b->tpl[i];
	if (sig_len == 0 || sig_len > 4096 || b->n_tpl >= 64)
		return NULL;
	more = realloc(b->tpl, (b->n_tpl + 1) * sizeof(*b->tpl));
	if (!more)
		return NULL;
	b->tpl = more;
	t = &b->tpl[b->n_tpl];
	*t = (struct ag_cms_tpl){ .sig_len = sig_len };
	marker = malloc(sig_len);
	if (!marker || RAND_bytes(marker, (int)sig_len) != 1 ||
	    !ASN1_OCTET_STRING_set(CMS_SignerInfo_get0_signature(b->c->si), marker, (int)sig_len)) {
		free(marker);
		return NULL;
	}
	{
		unsigned char *der = NULL;
		int len = i2d_CMS_ContentInfo(b->c->cms, &der);

		if (len > 0 && (t->der = malloc((size_t)len)))
			memcpy(t->der, der, (size_t)len);
		OPENSSL_free(der);
		t->len = len > 0 ? (size_t)len : 0;
	}
	if (!t->der || find_once(t->der, t->len, b->digest_marker, b->digest_len, &t->digest_off) < 0 ||
	    find_once(t->der, t->len, marker, sig_len, &t->sig_off) < 0) {
		free(t->der);
		free(marker);
		return NULL;
	}
	free(marker);
	b->n_tpl++;
	return t;
}

int
ag_cms_batch_finish(struct ag_cms_batch *b, const uint8_t *digest, size_t digest_len,
	const uint8_t *sig, size_t sig_len, uint8_t **ret_der, size_t *ret_len)
{
	uint8_t *ecder = NULL, *out;
	size_t ecder_len = 0;
	struct ag_cms_tpl *t;
	int r;

	if (digest_len != b->digest_len)
		return -EINVAL;
	if (b->c->is_ec) {
		r = ag_ecdsa_sig_to_der(sig, sig_len, &ecder, &ecder_len);
		if (r < 0)
			return r;
		sig = ecder;
		sig_len = ecder_len;
	}
	t = batch_template(b, sig_len);
	out = t ? malloc(t->len) : NULL;
	if (!out) {
		free(ecder);
		return t ? -ENOMEM : -EINVAL;
	}
	memcpy(out, t->der, t->len);
	memcpy(out + t->digest_off, digest, digest_len);
	memcpy(out + t->sig_off, sig, sig_len);
	free(ecder);
	*ret_der = out;
	*ret_len = t->len;
	return 0;
}
