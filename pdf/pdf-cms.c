/*
 * The CMS that goes in /Contents: the agent's answer (format cms, profile pades) is checked to
 * be what was asked for before it is embedded, optionally given a signature timestamp (PAdES
 * B-T: the unsigned attribute id-aa-signatureTimeStampToken, RFC 3161 appendix A), and written
 * out again in DER with definite lengths (ISO 32000-2 12.8.3.4: "DER-encoded").
 */
#include "pdf-write.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include "pf-util.h"

static char *
msg_new(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* Why the CMS is not a PAdES signature by x over digest, or NULL. */
static const char *
cms_check(CMS_ContentInfo *cms, const uint8_t *digest, size_t digest_len, X509 *x,
	const EVP_MD *md, CMS_SignerInfo **ret_si)
{
	STACK_OF(CMS_SignerInfo) * sis;
	CMS_SignerInfo *si;
	X509_ALGOR *dig = NULL;
	const ASN1_OBJECT *obj = NULL;
	ASN1_OCTET_STRING *os;

	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed || CMS_is_detached(cms) != 1)
		return "not a detached CMS SignedData";
	sis = CMS_get0_SignerInfos(cms);
	if (!sis || sk_CMS_SignerInfo_num(sis) != 1)
		return "not exactly one SignerInfo";
	si = sk_CMS_SignerInfo_value(sis, 0);
	if (CMS_SignerInfo_cert_cmp(si, x) != 0)
		return "signed by another certificate";
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
	if (dig)
		X509_ALGOR_get0(&obj, NULL, NULL, dig);
	if (!obj || OBJ_obj2nid(obj) != EVP_MD_get_type(md))
		return "another digest algorithm";
	os = CMS_signed_get0_data_by_OBJ(si, OBJ_nid2obj(NID_pkcs9_messageDigest), -3,
		V_ASN1_OCTET_STRING);
	if (!os || (size_t)ASN1_STRING_length(os) != digest_len ||
	    memcmp(ASN1_STRING_get0_data(os), digest, digest_len) != 0)
		return "its messageDigest is not the digest of the ByteRange";
	/* PAdES baseline: the signing time is the dictionary's /M, never an attribute. */
	if (CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1) >= 0)
		return "it has a signingTime attribute (the agent ignored profile pades)";
	CMS_SignerInfo_set1_signer_cert(si, x);
	if (CMS_SignerInfo_verify(si) != 1)
		return "the signature does not verify with the certificate";
	*ret_si = si;
	return NULL;
}

int
pdf_cms_finish(const uint8_t *der, size_t len, const uint8_t *digest, size_t digest_len,
	X509 *x, const EVP_MD *md, const char *tsa_url, uint8_t **ret, size_t *ret_len,
	char **ret_error)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms = NULL, *again = NULL;
	CMS_SignerInfo *si = NULL;
	uint8_t *out = NULL, *tok = NULL;
	size_t tok_len = 0;
	const char *why;
	int n, r;

	*ret_error = NULL;
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (!cms || p != der + len) {
		*ret_error = msg_new("the agent's signature is unusable: not a DER CMS structure");
		r = -EBADMSG;
		goto out;
	}
	why = cms_check(cms, digest, digest_len, x, md, &si);
	if (why) {
		*ret_error = msg_new("the agent's signature is unusable: %s", why);
		r = -EBADMSG;
		goto out;
	}
	if (tsa_url) {
		ASN1_OCTET_STRING *sig = CMS_SignerInfo_get0_signature(si);

		r = pdf_tsa_stamp(tsa_url, ASN1_STRING_get0_data(sig),
			(size_t)ASN1_STRING_length(sig), &tok, &tok_len, ret_error);
		if (r < 0) {
			r = r == -ENOMEM ? r : -ECOMM;
			goto out;
		}
		if (tok_len > PDF_CONTENTS_MAX ||
		    !CMS_unsigned_add1_attr_by_NID(si, NID_id_smime_aa_timeStampToken,
			    V_ASN1_SEQUENCE, tok, (int)tok_len)) {
			r = -ENOMEM;
			goto out;
		}
	}
	n = i2d_CMS_ContentInfo(cms, &out);
	if (n <= 0) {
		r = -ENOMEM;
		goto out;
	}
	/* What is embedded must still be the signature that was checked. */
	p = out;
	again = d2i_CMS_ContentInfo(NULL, &p, n);
	if (!again || cms_check(again, digest, digest_len, x, md, &si)) {
		*ret_error = msg_new("the signature does not survive DER re-encoding");
		r = -EBADMSG;
		goto out;
	}
	*ret = malloc((size_t)n);
	if (!*ret) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(*ret, out, (size_t)n);
	*ret_len = (size_t)n;
	r = 0;
out:
	ERR_clear_error();
	OPENSSL_free(out);
	OPENSSL_free(tok);
	CMS_ContentInfo_free(cms);
	CMS_ContentInfo_free(again);
	return r;
}
