/*
 * One CMS SignedData against its content (a file, a PDF's signed byte ranges, or embedded), for
 * `paraf verify` (R11): per SignerInfo, who signed, when (the timestamp's time, else the claimed
 * time), integrity (the digest of the content, streamed through OpenSSL, against messageDigest,
 * and the signature over the signed attributes), the certificate's status at that time, and
 * the conclusion. A signer certificate missing from the signature is looked for among the
 * anchors' files.
 */
#include "cli.h"

#include <openssl/cms.h>
#include <openssl/err.h>

static void
bio_free_upto(BIO *b, BIO *upto)
{
	while (b && b != upto) {
		BIO *next = BIO_pop(b);

		BIO_free(b);
		b = next;
	}
}

static int
integrity_set(struct cli_signer_report *s, enum cli_integrity st, const char *why)
{
	s->integrity_state = st;
	s->integrity = st == CLI_INTEGRITY_OK;
	free(s->integrity_error);
	s->integrity_error = why ? strdup(why) : NULL;
	return why && !s->integrity_error ? -ENOMEM : 0;
}

/*
 * Streams the content through the digests the SignedData names, once for all signers, then
 * checks each: its signature over the signed attributes, then their messageDigest against the
 * content. -EIO (with *error_out) when the content cannot be read.
 */
static int
integrity_check(CMS_ContentInfo *cms, STACK_OF(CMS_SignerInfo) *sis, BIO *cont,
	struct cli_signer_report *reps, const int *has_key, const char *content_name,
	char **error_out)
{
	_cleanup_free_ unsigned char *buf = NULL;
	BIO *chain;
	int i, n = sk_CMS_SignerInfo_num(sis), r = 0;

	chain = CMS_dataInit(cms, cont);
	if (!chain) {
		ERR_clear_error();
		for (i = 0; i < n; i++) {
			r = integrity_set(&reps[i], CLI_INTEGRITY_FORMAT,
				"the content digest cannot be computed (unsupported digest "
				"algorithm?)");
			if (r < 0)
				return r;
		}
		return 0;
	}
	buf = malloc(CLI_HASH_CHUNK);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	errno = 0;
	for (;;) {
		int k = BIO_read(chain, buf, CLI_HASH_CHUNK);

		if (k > 0)
			continue;
		if (k < 0 || (k == 0 && !BIO_eof(chain) && !BIO_should_retry(chain))) {
			/* A read error of the content, not a verdict on the signature. */
			if (asprintf(error_out, "cannot read '%s': %s", content_name,
				    errno ? strerror(errno) : "read error") < 0) {
				*error_out = NULL;
				r = -ENOMEM;
			} else
				r = -EIO;
			goto out;
		}
		break;
	}
	for (i = 0; i < n && r >= 0; i++) {
		CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sis, i);
		int attrs = CMS_signed_get_attr_count(si) >= 0;

		ERR_clear_error();
		if (attrs && has_key[i] && CMS_SignerInfo_verify(si) != 1) {
			r = integrity_set(&reps[i], CLI_INTEGRITY_SIG_FAILURE,
				"the signature does not verify with the signer's certificate");
			continue;
		}
		if (!attrs && !has_key[i]) {
			r = integrity_set(&reps[i], CLI_INTEGRITY_UNKNOWN,
				"the signer's certificate is not in the signature: the signature "
				"cannot be checked");
			continue;
		}
		if (CMS_SignerInfo_verify_content(si, chain) != 1) {
			r = integrity_set(&reps[i],
				attrs ? CLI_INTEGRITY_HASH_FAILURE : CLI_INTEGRITY_SIG_FAILURE,
				attrs ? "the content does not match the signature: it is not the "
					"signed content, or was changed after signing" :
					"the signature does not verify over the content");
			continue;
		}
		if (!has_key[i])
			r = integrity_set(&reps[i], CLI_INTEGRITY_UNKNOWN,
				"the content matches its digest, but the signer's certificate is not "
				"in the signature: the signature cannot be checked");
		else
			r = integrity_set(&reps[i], CLI_INTEGRITY_OK, NULL);
	}
out:
	ERR_clear_error();
	if (cont)
		bio_free_upto(chain, cont);
	else
		BIO_free_all(chain);
	return r;
}

static char *
time_iso(time_t t)
{
	struct tm tm;
	char buf[32];

	if (!gmtime_r(&t, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return NULL;
	return strdup(buf);
}

/* The signingTime attribute, or -ENOENT. */
static int
signing_time_attr(CMS_SignerInfo *si, time_t *ret)
{
	int idx = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
	X509_ATTRIBUTE *at = idx >= 0 ? CMS_signed_get_attr(si, idx) : NULL;
	ASN1_TYPE *v = at ? X509_ATTRIBUTE_get0_type(at, 0) : NULL;
	struct tm tm;

	if (!v || (v->type != V_ASN1_UTCTIME && v->type != V_ASN1_GENERALIZEDTIME) ||
	    !ASN1_TIME_to_tm(v->value.asn1_string, &tm))
		return -ENOENT;
	*ret = timegm(&tm);
	return 0;
}

/* The signer's identity from the SignerIdentifier, when its certificate is missing. */
static int
signer_id_describe(CMS_SignerInfo *si, struct cli_signer_report *s)
{
	ASN1_OCTET_STRING *keyid = NULL;
	X509_NAME *issuer = NULL;
	ASN1_INTEGER *sno = NULL;

	if (CMS_SignerInfo_get0_signer_id(si, &keyid, &issuer, &sno) == 1 && issuer && sno) {
		X509 *tmp = X509_new();

		/* cli_signer_identify() wants a certificate: a shell with the two fields. */
		if (!tmp)
			return -ENOMEM;
		if (X509_set_issuer_name(tmp, issuer) && X509_set_serialNumber(tmp, sno)) {
			struct cli_signer_report t = {};
			int r = cli_signer_identify(NULL, tmp, &t);

			if (r == 0) {
				s->issuer = TAKE_PTR(t.issuer);
				s->serial = TAKE_PTR(t.serial);
			}
			cli_signer_report_release(&t);
			X509_free(tmp);
			ERR_clear_error();
			return r == -ENOMEM ? r : 0;
		}
		X509_free(tmp);
	}
	/* A subjectKeyIdentifier alone names no issuer and no serial. */
	ERR_clear_error();
	return 0;
}

int
cli_verify_signed_data(const struct cli_trust *t, CMS_ContentInfo *cms, BIO *cont,
	const char *content_name, const struct cli_claim *claim, struct cli_signer_report *reps,
	size_t n_reps, char **error_out)
{
	STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
	STACK_OF(X509) *certs = NULL;
	_cleanup_free_ int *has_key = NULL;
	size_t i, n = sis ? (size_t)sk_CMS_SignerInfo_num(sis) : 0;
	int r;

	if (n != n_reps)
		return -EINVAL;
	has_key = calloc(n ? n : 1, sizeof(*has_key));
	if (!has_key)
		return -ENOMEM;

	/* Each signer's certificate among those in the signature, else among the anchors' files. */
	(void)CMS_set1_signers_certs(cms, cli_trust_certs(t), 0);
	ERR_clear_error();
	certs = CMS_get1_certs(cms);
	for (i = 0; i < n; i++) {
		CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sis, (int)i);
		struct cli_signer_report *s = &reps[i];
		X509_ALGOR *dig = NULL;
		X509 *x = NULL;

		CMS_SignerInfo_get0_algs(si, NULL, &x, &dig, NULL);
		has_key[i] = x != NULL;
		if (dig) {
			int nid = OBJ_obj2nid(dig->algorithm);

			if (nid != NID_undef && !(s->digest_algorithm = strdup(OBJ_nid2ln(nid)))) {
				r = -ENOMEM;
				goto out;
			}
		}
		r = x ? cli_signer_identify(t, x, s) : signer_id_describe(si, s);
		if (r < 0)
			goto out;
	}

	r = integrity_check(cms, sis, cont, reps, has_key, content_name, error_out);
	if (r < 0)
		goto out;

	for (i = 0; i < n; i++) {
		CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sis, (int)i);
		struct cli_signer_report *s = &reps[i];
		time_t claimed;
		int have_claim = 0;
		X509 *x = NULL;

		/* The time: the PDF's /M (PAdES keeps it there), else signingTime. */
		if (claim && claim->has_time) {
			claimed = claim->time;
			have_claim = 1;
		} else if (signing_time_attr(si, &claimed) == 0)
			have_claim = 1;
		if (have_claim && !(s->claimed_time = time_iso(claimed))) {
			r = -ENOMEM;
			goto out;
		}
		r = cli_timestamp_check(t, si, &s->ts);
		if (r < 0)
			goto out;
		if (s->ts.status == CLI_TST_VALID) {
			s->time_source = CLI_TIME_TIMESTAMP;
			s->time = s->ts.time;
		} else if (have_claim) {
			s->time_source = CLI_TIME_CLAIMED;
			s->time = claimed;
		} else
			s->time_source = CLI_TIME_NONE;
		if (s->time_source != CLI_TIME_NONE && !(s->signing_time = time_iso(s->time))) {
			r = -ENOMEM;
			goto out;
		}

		CMS_SignerInfo_get0_algs(si, NULL, &x, NULL, NULL);
		if (x) {
			r = cli_signer_check_cert(t, x, certs, s);
			if (r < 0)
				goto out;
		} else {
			s->cert_validity = CLI_CERT_UNKNOWN;
			s->cert_status = "unknown";
			s->chain = CLI_CHAIN_INCOMPLETE;
			s->revocation = CLI_REV_UNCHECKED;
			if (!(s->trust_error = strdup("the signer's certificate is missing")) ||
			    !(s->verify_error = strdup("the signer's certificate is missing")) ||
			    !(s->cert_error = strdup("the signer's certificate is missing"))) {
				r = -ENOMEM;
				goto out;
			}
		}
		r = cli_signer_conclude(t, s);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	sk_X509_pop_free(certs, X509_free);
	return r;
}
