/*
 * What a certificate says about itself (DER in, facts out), and whether its chain and its
 * issuer's CRL vouch for it at a given time. No files: anchors and CRLs arrive in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pol.h"

static int
strv_push(struct pol_strv *v, const char *s)
{
	char **n;

	if (v->n >= POL_LIST_MAX)
		return 0; /* more than we look at; the rest cannot matter to a decision */
	n = realloc(v->v, (v->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	v->v = n;
	if (!(n[v->n] = strdup(s)))
		return -ENOMEM;
	v->n++;
	return 0;
}

static time_t
asn1_time_to_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

static int
has_email(X509 *x)
{
	GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int found = 0;

	for (int i = 0; san && i < sk_GENERAL_NAME_num(san); i++)
		if (sk_GENERAL_NAME_value(san, i)->type == GEN_EMAIL)
			found = 1;
	GENERAL_NAMES_free(san);
	if (!found)
		found = X509_NAME_get_index_by_NID(X509_get_subject_name(x), NID_pkcs9_emailAddress,
				-1) >= 0;
	return found;
}

int
pol_cert_facts_from_der(const uint8_t *der, size_t n, struct pol_cert_facts *ret)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)n);
	int r = -EINVAL;

	if (x && p == der + n)
		r = pol_cert_facts_from_x509(x, der, n, ret);
	X509_free(x);
	return r;
}

int
pol_cert_facts_from_x509(X509 *x, const uint8_t *der, size_t n, struct pol_cert_facts *ret)
{
	unsigned char md[32];
	EXTENDED_KEY_USAGE *eku;
	CERTIFICATEPOLICIES *cp;
	struct pol_cert_facts f = {};
	char oid[80];
	int r = 0;

	if (!EVP_Digest(der, n, md, NULL, EVP_sha256(), NULL))
		return -EINVAL;
	for (int i = 0; i < 32; i++)
		snprintf(f.id + 2 * i, 3, "%02x", md[i]);
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, f.subject_cn,
		sizeof(f.subject_cn));
	f.not_before = asn1_time_to_time(X509_get0_notBefore(x));
	f.not_after = asn1_time_to_time(X509_get0_notAfter(x));
	/* X509_check_ca() also caches the extensions; a malformed one makes EXFLAG_INVALID. */
	f.is_ca = X509_check_ca(x) != 0;
	if (X509_get_extension_flags(x) & EXFLAG_INVALID) {
		return -EINVAL;
	}
	f.has_key_usage = X509_get_ext_by_NID(x, NID_key_usage, -1) >= 0;
	f.key_usage = f.has_key_usage ? X509_get_key_usage(x) : 0;
	eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	f.has_eku = X509_get_ext_by_NID(x, NID_ext_key_usage, -1) >= 0;
	for (int i = 0; eku && r >= 0 && i < sk_ASN1_OBJECT_num(eku); i++)
		if (OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_OBJECT_value(eku, i), 1) > 0)
			r = strv_push(&f.ekus, oid);
	EXTENDED_KEY_USAGE_free(eku);
	cp = X509_get_ext_d2i(x, NID_certificate_policies, NULL, NULL);
	for (int i = 0; cp && r >= 0 && i < sk_POLICYINFO_num(cp); i++)
		if (OBJ_obj2txt(oid, sizeof(oid), sk_POLICYINFO_value(cp, i)->policyid, 1) > 0)
			r = strv_push(&f.policies, oid);
	CERTIFICATEPOLICIES_free(cp);
	f.has_email = has_email(x);
	f.revocation = POL_REV_UNCHECKED;
	snprintf(f.trust_error, sizeof(f.trust_error), "not checked");
	if (r < 0) {
		pol_cert_facts_release(&f);
		return r;
	}
	*ret = f;
	return 0;
}

void
pol_cert_facts_release(struct pol_cert_facts *f)
{
	for (size_t i = 0; i < f->ekus.n; i++)
		free(f->ekus.v[i]);
	free(f->ekus.v);
	for (size_t i = 0; i < f->policies.n; i++)
		free(f->policies.v[i]);
	free(f->policies.v);
	f->ekus = (struct pol_strv){};
	f->policies = (struct pol_strv){};
}

/* The leaf's own dates are R7's to judge (pol_decide), so that an expired certificate reads
 * "expired", not "untrusted"; the CA certificates above it are checked at the given time. */
static int
leaf_dates_are_r7s(int ok, X509_STORE_CTX *ctx)
{
	int err = X509_STORE_CTX_get_error(ctx);

	if (!ok && X509_STORE_CTX_get_error_depth(ctx) == 0 &&
	    (err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID))
		return 1;
	return ok;
}

/* Builds and checks the chain; on success returns the leaf's issuer (a new reference). */
static int
verify_chain(const struct pol_trust *t, X509 *cert, time_t now, X509 **ret_issuer, int *ret_err)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *chain;
	int ok = 0;

	*ret_err = X509_V_ERR_UNSPECIFIED;
	if (!store || !ctx)
		goto out;
	for (int i = 0; t->anchors && i < sk_X509_num(t->anchors); i++)
		X509_STORE_add_cert(store, sk_X509_value(t->anchors, i));
	if (!X509_STORE_CTX_init(ctx, store, cert, t->intermediates))
		goto out;
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
	X509_STORE_CTX_set_time(ctx, 0, now);
	X509_STORE_CTX_set_verify_cb(ctx, leaf_dates_are_r7s);
	/* Usage is judged against the regulation by pol_decide(), not by OpenSSL's purposes. */
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY);
	ok = X509_verify_cert(ctx) == 1;
	*ret_err = X509_STORE_CTX_get_error(ctx);
	if (ok) {
		chain = X509_STORE_CTX_get0_chain(ctx);
		/* A self-signed leaf that is itself an anchor is its own issuer. */
		*ret_issuer = sk_X509_value(chain, sk_X509_num(chain) > 1 ? 1 : 0);
		X509_up_ref(*ret_issuer);
	}
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ok;
}

void
pol_trust_check(const struct pol_trust *t, X509 *cert, time_t now, struct pol_cert_facts *facts)
{
	X509 *issuer = NULL;
	EVP_PKEY *ikey;
	int err = 0, fresh = 0, stale = 0, revoked = 0;

	facts->trusted = verify_chain(t, cert, now, &issuer, &err);
	if (!facts->trusted) {
		snprintf(facts->trust_error, sizeof(facts->trust_error), "%s",
			X509_verify_cert_error_string(err));
		facts->revocation = POL_REV_UNCHECKED;
		return;
	}
	facts->trust_error[0] = 0;

	/* R8: every CRL signed by the issuer counts for "revoked", a stale one too (revocation is
	 * for ever); only a current one (thisUpdate <= now < nextUpdate) counts for "not revoked". */
	ikey = X509_get0_pubkey(issuer);
	for (int i = 0; t->crls && i < sk_X509_CRL_num(t->crls); i++) {
		X509_CRL *crl = sk_X509_CRL_value(t->crls, i);
		X509_REVOKED *rev = NULL;
		const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);

		if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0)
			continue;
		if (!ikey || X509_CRL_verify(crl, ikey) != 1)
			continue; /* not the issuer's: worth nothing either way */
		if (X509_CRL_get0_by_cert(crl, &rev, cert) == 1)
			revoked = 1;
		if (X509_cmp_time(X509_CRL_get0_lastUpdate(crl), &now) <= 0 && next &&
		    X509_cmp_time(next, &now) > 0)
			fresh = 1;
		else
			stale = 1;
	}
	X509_free(issuer);
	if (revoked)
		facts->revocation = POL_REV_REVOKED;
	else if (fresh)
		facts->revocation = POL_REV_GOOD;
	else if (stale)
		facts->revocation = POL_REV_CRL_STALE;
	else
		facts->revocation = POL_REV_CRL_MISSING;
}
