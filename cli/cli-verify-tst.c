/*
 * The signature timestamp (RFC 3161 token in the SignerInfo's unsigned attribute
 * id-aa-signatureTimeStampToken, RFC 3161 appendix A): when it verifies, its genTime is the
 * trusted signing time that R11's "signing time" and the certificate's validity (R7, R8) are
 * judged at. It verifies when the token is a SignedData over a TSTInfo whose signature checks,
 * whose message imprint is the hash of this SignerInfo's signature value, and whose TSA
 * certificate is for timestamping and trusted at genTime (cli_trust_tsa_check()).
 */
#include "cli.h"

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/ts.h>

static int
tst_fail(struct cli_timestamp_report *ts, enum cli_tst_status st, const char *why)
{
	ts->status = st;
	free(ts->error);
	ts->error = strdup(why);
	return ts->error ? 0 : -ENOMEM;
}

/* The token's SignedData, or NULL. */
static CMS_ContentInfo *
token_of(CMS_SignerInfo *si)
{
	int idx = CMS_unsigned_get_attr_by_NID(si, NID_id_smime_aa_timeStampToken, -1);
	X509_ATTRIBUTE *at = idx >= 0 ? CMS_unsigned_get_attr(si, idx) : NULL;
	ASN1_TYPE *v = at ? X509_ATTRIBUTE_get0_type(at, 0) : NULL;
	const unsigned char *p;
	CMS_ContentInfo *tok;

	if (!v || v->type != V_ASN1_SEQUENCE)
		return NULL;
	p = v->value.sequence->data;
	tok = d2i_CMS_ContentInfo(NULL, &p, v->value.sequence->length);
	if (tok && p != v->value.sequence->data + v->value.sequence->length) {
		CMS_ContentInfo_free(tok);
		tok = NULL;
	}
	return tok;
}

int
cli_timestamp_check(const struct cli_trust *t, CMS_SignerInfo *si, struct cli_timestamp_report *ts)
{
	CMS_ContentInfo *tok = NULL;
	TS_TST_INFO *info = NULL;
	STACK_OF(X509) *signers = NULL, *certs = NULL;
	ASN1_OCTET_STRING **content, *sigval;
	const unsigned char *p;
	TS_MSG_IMPRINT *imp;
	const EVP_MD *md;
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned hl;
	struct tm tm;
	char buf[32];
	_cleanup_free_ char *why = NULL;
	int r = 0;

	memset(ts, 0, sizeof(*ts));
	if (CMS_unsigned_get_attr_by_NID(si, NID_id_smime_aa_timeStampToken, -1) < 0)
		return 0; /* CLI_TST_NONE */
	ERR_clear_error();
	tok = token_of(si);
	if (!tok || OBJ_obj2nid(CMS_get0_type(tok)) != NID_pkcs7_signed ||
	    OBJ_obj2nid(CMS_get0_eContentType(tok)) != NID_id_smime_ct_TSTInfo ||
	    !(content = CMS_get0_content(tok)) || !*content) {
		r = tst_fail(ts, CLI_TST_INVALID, "the timestamp token is not an RFC 3161 token");
		goto out;
	}
	p = ASN1_STRING_get0_data(*content);
	info = d2i_TS_TST_INFO(NULL, &p, ASN1_STRING_length(*content));
	if (!info) {
		r = tst_fail(ts, CLI_TST_INVALID, "the timestamp token's TSTInfo cannot be read");
		goto out;
	}
	if (!ASN1_TIME_to_tm(TS_TST_INFO_get_time(info), &tm)) {
		r = tst_fail(ts, CLI_TST_INVALID, "the timestamp token's time cannot be read");
		goto out;
	}
	ts->time = timegm(&tm);
	if (strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 ||
	    !(ts->time_iso = strdup(buf))) {
		r = -ENOMEM;
		goto out;
	}

	/* Its signature (and the digest of the TSTInfo), not yet who made it. */
	certs = CMS_get1_certs(tok);
	if (CMS_verify(tok, cli_trust_certs(t), NULL, NULL, NULL,
		    CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1) {
		r = tst_fail(ts, CLI_TST_INVALID, "the timestamp token's signature does not verify");
		goto out;
	}
	signers = CMS_get0_signers(tok);
	if (!signers || sk_X509_num(signers) != 1) {
		r = tst_fail(ts, CLI_TST_INVALID, "the timestamp token must have exactly one signer");
		goto out;
	}
	ts->tsa = NULL;
	{
		BIO *b = BIO_new(BIO_s_mem());
		char *d;
		long n;

		if (b && X509_NAME_print_ex(b, X509_get_subject_name(sk_X509_value(signers, 0)), 0,
				 XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
		    (n = BIO_get_mem_data(b, &d)) >= 0)
			ts->tsa = strndup(n ? d : "", (size_t)n);
		BIO_free(b);
		if (!ts->tsa) {
			r = -ENOMEM;
			goto out;
		}
	}

	/* About this signature: the imprint is the hash of its signature value. */
	imp = TS_TST_INFO_get_msg_imprint(info);
	md = imp ? EVP_get_digestbyobj(TS_MSG_IMPRINT_get_algo(imp)->algorithm) : NULL;
	sigval = CMS_SignerInfo_get0_signature(si);
	if (!md || !sigval) {
		r = tst_fail(ts, CLI_TST_INVALID, "the timestamp's hash algorithm is not supported");
		goto out;
	}
	if (!EVP_Digest(ASN1_STRING_get0_data(sigval), (size_t)ASN1_STRING_length(sigval), h, &hl,
		    md, NULL)) {
		r = -ENOMEM;
		goto out;
	}
	if (ASN1_STRING_length(TS_MSG_IMPRINT_get_msg(imp)) != (int)hl ||
	    memcmp(ASN1_STRING_get0_data(TS_MSG_IMPRINT_get_msg(imp)), h, hl) != 0) {
		r = tst_fail(ts, CLI_TST_INVALID,
			"the timestamp is not about this signature (its message imprint is not the "
			"hash of the signature value)");
		goto out;
	}

	/* Who stamped: trusted at genTime? */
	r = cli_trust_tsa_check(t, sk_X509_value(signers, 0), certs, ts->time, &why);
	if (r < 0)
		goto out;
	if (why)
		r = tst_fail(ts, CLI_TST_UNTRUSTED, why);
	else
		ts->status = CLI_TST_VALID;
out:
	ERR_clear_error();
	sk_X509_free(signers);
	sk_X509_pop_free(certs, X509_free);
	TS_TST_INFO_free(info);
	CMS_ContentInfo_free(tok);
	return r;
}
