/*
 * The pure decision function, rule by rule: for every rule at least one allowed and one refused
 * case, named after the rule. No token, no clock, no login session: facts in, verdict out.
 * The last group builds a small PKI in memory for the chain and CRL checks (trust, R8).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pol.h"

#define DAY 86400L
#define NOW ((time_t)1800000000) /* 2027-01-15 */
#define OWNER_UID 1000
#define CERT_ID "aa00000000000000000000000000000000000000000000000000000000000001"
#define SYS_ID "bb00000000000000000000000000000000000000000000000000000000000002"
#define REV_ID "cc00000000000000000000000000000000000000000000000000000000000003"
#define OID_IND "2.25.1"

struct fixture {
	struct pol_policy p;
	struct pol_cert_facts c;
	struct pol_request req;
	struct pol_peer peer;
	struct pol_session session;
	char *eku_store[4];
};

static void
owner(struct pol_policy *p, const char *id, const char *type, uid_t uid)
{
	char text[512], err[256];

	snprintf(text, sizeof(text),
		"[owner]\ncertificate = %s\naccount = user%u\ntype = %s\nname = Budi Santoso\n"
		"nip = 197803152005011002\nposition = Kepala Dinas\n", id, (unsigned)uid, type);
	assert_int_equal(pol_owner_parse(p, "test", text, err, sizeof(err)), 0);
	p->owners[p->n_owners - 1].uid = uid;
	p->owners[p->n_owners - 1].uid_known = true;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	pol_policy_init(&f->p);
	owner(&f->p, CERT_ID, "individual", OWNER_UID);
	owner(&f->p, SYS_ID, "system", OWNER_UID);
	memcpy(f->c.id, CERT_ID, 65);
	f->c.not_before = NOW - 30 * DAY;
	f->c.not_after = NOW + 700 * DAY;
	f->c.has_key_usage = true;
	f->c.key_usage = KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION;
	f->c.trusted = true;
	f->c.revocation = POL_REV_GOOD;
	f->req.usage = POL_USAGE_SIGNATURE;
	f->req.n_documents = 1;
	f->peer.uid = OWNER_UID;
	f->peer.pid = 4242;
	f->session = (struct pol_session){ .logind = true, .found = true, .active = true };
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	pol_policy_release(&f->p);
	free(f->c.ekus.v);
	free(f);
	return 0;
}

static void
set_ekus(struct fixture *f, const char *a, const char *b)
{
	f->c.has_eku = true;
	f->eku_store[0] = (char *)a;
	f->eku_store[1] = (char *)b;
	free(f->c.ekus.v);
	f->c.ekus.v = calloc(2, sizeof(char *));
	f->c.ekus.n = 0;
	if (a)
		f->c.ekus.v[f->c.ekus.n++] = (char *)a;
	if (b)
		f->c.ekus.v[f->c.ekus.n++] = (char *)b;
}

static struct pol_verdict
decide(struct fixture *f)
{
	struct pol_verdict v;

	pol_decide(&f->p, &f->req, &f->c, &f->peer, &f->session, NOW, &v);
	return v;
}

#define ALLOWED(f)                                                                            \
	do {                                                                                  \
		struct pol_verdict v_ = decide(f);                                            \
		if (!v_.allow)                                                                \
			fail_msg("expected allow, got deny %s/%s: %s", v_.rule ? v_.rule : "-", \
				v_.reason, v_.message);                                       \
	} while (0)

#define REFUSED(f, rule_, reason_)                                                            \
	do {                                                                                  \
		struct pol_verdict v_ = decide(f);                                            \
		if (v_.allow)                                                                 \
			fail_msg("expected deny %s/%s, got allow", rule_ ? rule_ : "-", reason_); \
		if (strcmp(v_.reason, reason_) != 0 ||                                        \
		    ((rule_) ? !v_.rule || strcmp(v_.rule, (rule_) ? (rule_) : "") : v_.rule != NULL)) \
			fail_msg("expected deny %s/%s, got %s/%s: %s", (rule_) ? (rule_) : "-",   \
				reason_, v_.rule ? v_.rule : "-", v_.reason, v_.message);     \
	} while (0)

/* --- R1 -------------------------------------------------------------------------------- */

static void
r1_owner_allowed(void **state)
{
	ALLOWED((struct fixture *)*state);
}

static void
r1_other_uid_refused(void **state)
{
	struct fixture *f = *state;

	f->peer.uid = 1001;
	REFUSED(f, "R1", "not-owner");
}

static void
r1_root_refused(void **state)
{
	struct fixture *f = *state;

	/* Root is not the owner, and knowing the PIN changes nothing. */
	f->peer.uid = 0;
	f->req.pin_parameter = false;
	REFUSED(f, "R1", "not-owner");
}

static void
r1_system_agent_serves_system_only(void **state)
{
	struct fixture *f = *state;

	/* The system agent has no dialog and serves other accounts' services: an individual
	 * certificate, even its own owner's, is refused there; a system one is served. */
	f->req.system_agent = true;
	REFUSED(f, "R1", "type-not-served");
	memcpy(f->c.id, SYS_ID, 65);
	ALLOWED(f);
	f->req.system_agent = false;
	ALLOWED(f);
}

static void
r1_root_owner_needs_policy(void **state)
{
	struct fixture *f = *state;
	char err[256];

	f->p.owners[0].uid = 0;
	f->peer.uid = 0;
	REFUSED(f, "R1", "not-owner");
	assert_int_equal(pol_policy_parse(&f->p, "t", "[owner]\nroot_may_own = yes\n", err,
		sizeof(err)), 0);
	ALLOWED(f);
}

static void
r1_unregistered_owner_refused(void **state)
{
	struct fixture *f = *state;
	char err[256];

	/* A type from the certificate's policy OID, but nobody registered as its owner. */
	assert_int_equal(pol_policy_parse(&f->p, "t", "[types]\nindividual = " OID_IND "\n", err,
		sizeof(err)), 0);
	memcpy(f->c.id, REV_ID, 65);
	f->c.policies.v = (char *[]){ OID_IND };
	f->c.policies.n = 1;
	REFUSED(f, "R1", "unregistered");
	f->c.policies = (struct pol_strv){};
}

static void
r1_unknown_account_refused(void **state)
{
	struct fixture *f = *state;

	f->p.owners[0].uid_known = false;
	REFUSED(f, "R1", "unregistered");
}

static void
r1_remote_session_refused(void **state)
{
	struct fixture *f = *state;
	char err[256];

	f->session.remote = true;
	REFUSED(f, "R1", "remote-session");
	assert_int_equal(pol_policy_parse(&f->p, "t", "[session]\nallow_remote = yes\n", err,
		sizeof(err)), 0);
	ALLOWED(f);
}

static void
r1_no_session_refused(void **state)
{
	struct fixture *f = *state;

	f->session.found = false;
	REFUSED(f, "R1", "no-session");
}

static void
r1_inactive_session_refused(void **state)
{
	struct fixture *f = *state;

	f->session.active = false;
	REFUSED(f, "R1", "inactive-session");
}

static void
r1_no_logind_default_refused(void **state)
{
	struct fixture *f = *state;
	char err[256];

	f->session = (struct pol_session){ .logind = false };
	REFUSED(f, "R1", "no-session");
	assert_int_equal(pol_policy_parse(&f->p, "t", "[session]\nwithout_logind = allow\n", err,
		sizeof(err)), 0);
	ALLOWED(f);
}

static void
r1_system_certificate_exempt_from_session(void **state)
{
	struct fixture *f = *state;

	memcpy(f->c.id, SYS_ID, 65);
	f->session = (struct pol_session){ .logind = true, .found = false };
	ALLOWED(f);
}

static void
r1_batch_limit(void **state)
{
	struct fixture *f = *state;

	f->req.n_documents = POL_BATCH_MAX; /* the default max_batch */
	ALLOWED(f);
	f->req.n_documents = POL_BATCH_MAX + 1;
	REFUSED(f, "R1", "batch-too-large");
}

/* --- R2 -------------------------------------------------------------------------------- */

static void
r2_pin_parameter_refused_for_individual(void **state)
{
	struct fixture *f = *state;

	f->req.pin_parameter = true;
	REFUSED(f, "R2", "pin-parameter-refused");
}

static void
r2_pin_parameter_allowed_for_system(void **state)
{
	struct fixture *f = *state;

	memcpy(f->c.id, SYS_ID, 65);
	f->req.pin_parameter = true;
	ALLOWED(f);
}

/* --- R5 -------------------------------------------------------------------------------- */

static void
r5_unregistered_refused(void **state)
{
	struct fixture *f = *state;

	memcpy(f->c.id, REV_ID, 65); /* no registry entry, no policy OID */
	REFUSED(f, "R5", "unregistered");
}

static void
r5_type_from_policy_oid(void **state)
{
	struct fixture *f = *state;
	char err[256];

	/* The registry says individual; the certificate's OID says system and wins. */
	assert_int_equal(pol_policy_parse(&f->p, "t", "[types]\nsystem = 2.25.9\n", err,
		sizeof(err)), 0);
	f->c.policies.v = (char *[]){ "2.25.9" };
	f->c.policies.n = 1;
	assert_int_equal(pol_cert_type(&f->p, &f->c, pol_owner_find(&f->p, CERT_ID)), POL_TYPE_SYSTEM);
	f->c.policies = (struct pol_strv){};
	assert_int_equal(pol_cert_type(&f->p, &f->c, pol_owner_find(&f->p, CERT_ID)),
		POL_TYPE_INDIVIDUAL);
}

/* --- R6 -------------------------------------------------------------------------------- */

static void
r6_tls_server_on_individual_refused(void **state)
{
	struct fixture *f = *state;

	f->req.usage = POL_USAGE_TLS_SERVER;
	f->c.key_usage |= KU_KEY_ENCIPHERMENT;
	set_ekus(f, "1.3.6.1.5.5.7.3.1", NULL);
	REFUSED(f, "R6", "usage-not-allowed");
	memcpy(f->c.id, SYS_ID, 65); /* the same certificate as a system one: allowed */
	ALLOWED(f);
}

static void
r6_missing_key_usage_refused(void **state)
{
	struct fixture *f = *state;

	f->c.has_key_usage = false;
	f->c.key_usage = 0;
	REFUSED(f, "R6", "usage-not-in-certificate");
}

static void
r6_signature_needs_signing_bits(void **state)
{
	struct fixture *f = *state;

	f->c.key_usage = KU_KEY_ENCIPHERMENT;
	REFUSED(f, "R6", "usage-not-in-certificate");
	f->c.key_usage = KU_NON_REPUDIATION;
	ALLOWED(f);
}

static void
r6_signature_eku_must_be_listed(void **state)
{
	struct fixture *f = *state;

	set_ekus(f, "1.3.6.1.5.5.7.3.1", NULL); /* serverAuth only */
	REFUSED(f, "R6", "usage-not-in-certificate");
	set_ekus(f, "1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.36"); /* + documentSigning */
	ALLOWED(f);
}

static void
r6_email_needs_eku_and_address(void **state)
{
	struct fixture *f = *state;

	f->req.usage = POL_USAGE_EMAIL;
	REFUSED(f, "R6", "usage-not-in-certificate"); /* no EKU at all */
	set_ekus(f, "1.3.6.1.5.5.7.3.4", NULL);
	REFUSED(f, "R6", "usage-not-in-certificate"); /* no e-mail address */
	f->c.has_email = true;
	ALLOWED(f);
}

static void
r6_tls_client_needs_client_auth(void **state)
{
	struct fixture *f = *state;

	f->req.usage = POL_USAGE_TLS_CLIENT;
	REFUSED(f, "R6", "usage-not-in-certificate");
	set_ekus(f, "1.3.6.1.5.5.7.3.2", NULL);
	ALLOWED(f);
}

static void
r6_document_protection_needs_encipherment(void **state)
{
	struct fixture *f = *state;

	f->req.usage = POL_USAGE_DOCUMENT_PROTECTION;
	REFUSED(f, "R6", "usage-not-in-certificate");
	f->c.key_usage |= KU_KEY_ENCIPHERMENT;
	ALLOWED(f);
}

static void
r6_ca_certificate_refused(void **state)
{
	struct fixture *f = *state;

	f->c.is_ca = true;
	REFUSED(f, "R6", "usage-not-in-certificate");
}

static void
r6_matrix_is_configurable(void **state)
{
	struct fixture *f = *state;
	char err[256];

	assert_int_equal(pol_policy_parse(&f->p, "t", "[usage]\nindividual = email\n", err,
		sizeof(err)), 0);
	REFUSED(f, "R6", "usage-not-allowed");
}

/* --- R7 -------------------------------------------------------------------------------- */

static void
r7_expired_refused(void **state)
{
	struct fixture *f = *state;

	f->c.not_after = NOW - 1;
	REFUSED(f, "R7", "expired");
}

static void
r7_not_yet_valid_refused(void **state)
{
	struct fixture *f = *state;

	f->c.not_before = NOW + 1;
	REFUSED(f, "R7", "not-yet-valid");
}

static void
r7_three_year_validity_refused(void **state)
{
	struct fixture *f = *state;
	char err[256];

	f->c.not_before = NOW - DAY;
	f->c.not_after = NOW + 3 * 365 * DAY;
	REFUSED(f, "R7", "non-compliant");
	assert_int_equal(pol_policy_parse(&f->p, "t", "[validity]\nallow_long_validity = yes\n", err,
		sizeof(err)), 0);
	ALLOWED(f);
}

static void
r7_two_years_allowed(void **state)
{
	struct fixture *f = *state;

	f->c.not_before = NOW - DAY;
	f->c.not_after = f->c.not_before + 731 * DAY;
	ALLOWED(f);
}

static void
r7_status_expiring(void **state)
{
	struct fixture *f = *state;
	struct pol_status st;

	f->c.not_after = NOW + 10 * DAY;
	pol_cert_status(&f->p, &f->c, NOW, &st);
	assert_string_equal(st.status, "expiring");
	assert_int_equal(st.days_left, 10);
	f->c.not_after = NOW + 100 * DAY;
	pol_cert_status(&f->p, &f->c, NOW, &st);
	assert_string_equal(st.status, "valid");
	assert_true(st.usages & POL_USAGE_BIT(POL_USAGE_SIGNATURE));
	assert_false(st.usages & POL_USAGE_BIT(POL_USAGE_TLS_SERVER));
}

/* --- trust and R8 ------------------------------------------------------------------------ */

static void
trust_untrusted_refused(void **state)
{
	struct fixture *f = *state;

	f->c.trusted = false;
	f->c.revocation = POL_REV_UNCHECKED;
	snprintf(f->c.trust_error, sizeof(f->c.trust_error), "unable to get local issuer certificate");
	REFUSED(f, NULL, "untrusted");
}

static void
r8_revoked_by_crl_refused(void **state)
{
	struct fixture *f = *state;

	f->c.revocation = POL_REV_REVOKED;
	REFUSED(f, "R8", "revoked");
}

static void
r8_missing_crl_with_require_refused(void **state)
{
	struct fixture *f = *state;
	char err[256];

	f->c.revocation = POL_REV_CRL_MISSING;
	REFUSED(f, "R8", "revocation-unknown");
	f->c.revocation = POL_REV_CRL_STALE;
	REFUSED(f, "R8", "revocation-unknown");
	assert_int_equal(pol_policy_parse(&f->p, "t", "[trust]\nrevocation = best-effort\n", err,
		sizeof(err)), 0);
	ALLOWED(f);
}

static void
r8_locally_revoked_refused_for_ever(void **state)
{
	struct fixture *f = *state;
	char err[256];

	assert_int_equal(pol_revoked_parse(&f->p, "revoked.list",
		"# staff append here\n" CERT_ID " 2027-01-01T00:00:00Z left-post mutasi\n", err,
		sizeof(err)), 0);
	REFUSED(f, "R8", "revoked");
	/* Even with a good CRL and everything else in order. */
	f->c.revocation = POL_REV_GOOD;
	REFUSED(f, "R8", "revoked");
}

static void
r9_incident_revocation_names_r9(void **state)
{
	struct fixture *f = *state;
	char err[256];

	assert_int_equal(pol_revoked_parse(&f->p, "revoked.list",
		CERT_ID " 2027-01-01T00:00:00Z key-lost\n", err, sizeof(err)), 0);
	REFUSED(f, "R9", "revoked");
}

/* --- parsing ----------------------------------------------------------------------------- */

static void
parse_errors_name_the_line(void **state)
{
	struct pol_policy p;
	char err[256];
	static const char *const bad[] = {
		"[pin]\nmax_batch = 1001\n",
		"[pin]\nmax_batch = many\n",
		"[trust]\nrevocation = sometimes\n",
		"[types]\nindividual = not.an.oid\n",
		"[types]\nboss = 1.2.3\n",
		"[usage]\nindividual = signature, telepathy\n",
		"[nosuch]\nkey = 1\n",
		"key = outside\n",
		"[session]\nallow_remote = maybe\n",
		"[trust]\nanchors = relative/path\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pol_policy_init(&p);
		err[0] = 0;
		if (pol_policy_parse(&p, "policy.conf", bad[i], err, sizeof(err)) >= 0)
			fail_msg("accepted: %s", bad[i]);
		if (!strstr(err, "policy.conf:"))
			fail_msg("error does not name the file and line: '%s'", err);
		pol_policy_release(&p);
	}
}

static void
owner_file_checked(void **state)
{
	struct pol_policy p;
	char err[256];

	pol_policy_init(&p);
	assert_true(pol_owner_parse(&p, "o.conf", "[owner]\naccount = a\ntype = individual\n"
		"name = A\n", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "certificate"));
	assert_true(pol_owner_parse(&p, "o.conf", "[owner]\ncertificate = " CERT_ID "\naccount = a\n"
		"type = jabatan\nname = A\n", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "position")); /* R18: a jabatan names its position */
	assert_true(pol_owner_parse(&p, "o.conf", "[owner]\ncertificate = " CERT_ID "\naccount = a\n"
		"type = individual\nname = A\nshoe_size = 42\n", err, sizeof(err)) < 0);
	assert_int_equal(pol_owner_parse(&p, "o.conf", "[owner]\ncertificate = " CERT_ID
		"\naccount = a\ntype = individual\nname = A\n", err, sizeof(err)), 0);
	assert_true(pol_owner_parse(&p, "p.conf", "[owner]\ncertificate = " CERT_ID
		"\naccount = b\ntype = individual\nname = B\n", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "twice"));
	pol_policy_release(&p);
}

/* --- a real chain, in memory -------------------------------------------------------------- */

static EVP_PKEY *
key(void)
{
	return EVP_EC_gen("P-256");
}

static X509 *
make_cert(const char *cn, EVP_PKEY *k, X509 *issuer, EVP_PKEY *ik, int ca, long serial)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_time_adj_ex(X509_getm_notBefore(x), -1, 0, &(time_t){ NOW });
	X509_time_adj_ex(X509_getm_notAfter(x), 700, 0, &(time_t){ NOW });
	X509_set_pubkey(x, k);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
		ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,nonRepudiation");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	if (issuer) {
		e = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid");
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, ik ? ik : k, EVP_sha256()) > 0);
	X509_NAME_free(n);
	return x;
}

static X509_CRL *
make_crl(X509 *ca, EVP_PKEY *ck, long revoked_serial, time_t last, time_t next)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();

	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
	ASN1_TIME_set(t, last);
	X509_CRL_set1_lastUpdate(crl, t);
	ASN1_TIME_set(t, next);
	X509_CRL_set1_nextUpdate(crl, t);
	if (revoked_serial) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *s = ASN1_INTEGER_new();
		ASN1_INTEGER_set(s, revoked_serial);
		X509_REVOKED_set_serialNumber(r, s);
		ASN1_TIME_set(t, last);
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
		ASN1_INTEGER_free(s);
	}
	ASN1_TIME_free(t);
	X509_CRL_sort(crl);
	assert_true(X509_CRL_sign(crl, ck, EVP_sha256()) > 0);
	return crl;
}

static void
trust_and_crl(void **state)
{
	EVP_PKEY *cak = key(), *otherk = key(), *lk = key();
	X509 *ca = make_cert("Test CA", cak, NULL, NULL, 1, 1);
	X509 *other = make_cert("Other CA", otherk, NULL, NULL, 1, 1);
	X509 *leaf = make_cert("Budi", lk, ca, cak, 0, 77);
	struct pol_trust t = { sk_X509_new_null(), NULL, sk_X509_CRL_new_null() };
	struct pol_cert_facts f = {};

	/* No anchor: untrusted. */
	pol_trust_check(&t, leaf, NOW, &f);
	assert_false(f.trusted);
	assert_int_equal(f.revocation, POL_REV_UNCHECKED);
	/* The wrong anchor: untrusted. */
	sk_X509_push(t.anchors, other);
	pol_trust_check(&t, leaf, NOW, &f);
	assert_false(f.trusted);
	/* The right anchor, no CRL: trusted, revocation unknown (R8). */
	sk_X509_push(t.anchors, ca);
	pol_trust_check(&t, leaf, NOW, &f);
	assert_true(f.trusted);
	assert_int_equal(f.revocation, POL_REV_CRL_MISSING);
	/* A current CRL without the leaf: good. */
	sk_X509_CRL_push(t.crls, make_crl(ca, cak, 0, NOW - DAY, NOW + DAY));
	pol_trust_check(&t, leaf, NOW, &f);
	assert_int_equal(f.revocation, POL_REV_GOOD);
	/* Past its nextUpdate: stale. */
	pol_trust_check(&t, leaf, NOW + 2 * DAY, &f);
	assert_int_equal(f.revocation, POL_REV_CRL_STALE);
	/* A CRL signed by another key does not count either way. */
	sk_X509_CRL_push(t.crls, make_crl(ca, otherk, 77, NOW - DAY, NOW + 9 * DAY));
	pol_trust_check(&t, leaf, NOW + 2 * DAY, &f);
	assert_int_equal(f.revocation, POL_REV_CRL_STALE);
	/* Revoked on an old, stale CRL is still revoked: for ever (R8). */
	sk_X509_CRL_push(t.crls, make_crl(ca, cak, 77, NOW - 9 * DAY, NOW - 8 * DAY));
	pol_trust_check(&t, leaf, NOW, &f);
	assert_int_equal(f.revocation, POL_REV_REVOKED);

	/* An expired leaf is trusted as a chain and refused by R7, not as "untrusted". */
	{
		X509 *old = make_cert("Old", lk, ca, cak, 0, 78);
		X509_time_adj_ex(X509_getm_notAfter(old), -10, 0, &(time_t){ NOW });
		X509_sign(old, cak, EVP_sha256());
		pol_trust_check(&t, old, NOW, &f);
		if (!f.trusted)
			fail_msg("expired leaf: %s", f.trust_error);
		X509_free(old);
	}
	sk_X509_pop_free(t.anchors, X509_free);
	sk_X509_CRL_pop_free(t.crls, X509_CRL_free);
	X509_free(leaf);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(otherk);
	EVP_PKEY_free(lk);
}

static void
facts_from_der(void **state)
{
	EVP_PKEY *k = key();
	X509 *x = make_cert("Budi Santoso", k, NULL, NULL, 0, 5);
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	struct pol_cert_facts f;

	assert_int_equal(pol_cert_facts_from_der(der, (size_t)n, &f), 0);
	assert_string_equal(f.subject_cn, "Budi Santoso");
	assert_true(f.has_key_usage);
	assert_true(f.key_usage & KU_NON_REPUDIATION);
	assert_false(f.has_eku);
	assert_false(f.is_ca);
	assert_int_equal(strlen(f.id), 64);
	pol_cert_facts_release(&f);
	/* Truncated or trailing bytes: not a certificate. */
	assert_true(pol_cert_facts_from_der(der, (size_t)n - 1, &f) < 0);
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(k);
}


/* --- provisioning: R17, R18, R2/R4 ------------------------------------------------------ */

static struct pol_owner
applicant(void)
{
	struct pol_owner o = {};

	o.type = POL_TYPE_INDIVIDUAL;
	o.name = "Budi Santoso";
	o.nik = "3201011503780001"; /* born 15-03-78 */
	o.nip = "197803152005011002";
	o.email = "budi@diskominfo.contoh.go.id";
	o.unit = "Dinas Komunikasi dan Informatika";
	o.account = "budi";
	o.application = "app-1";
	return o;
}

static void
r17_registration_checked(void **state)
{
	struct pol_policy p;
	struct pol_owner o = applicant();
	const char *field = NULL;
	char msg[256], err[256];
	static const struct {
		const char *field, *value;
	} bad[] = {
		{ "nik", "320101150378" },       /* 12 digits */
		{ "nik", "32010115037800AB" },   /* not digits */
		{ "nik", "3201019913780001" },   /* month 13 */
		{ "nip", "19780315200501100" },  /* 17 digits */
		{ "nip", "197813152005011002" }, /* month 13 */
		{ "nip", "197803152005013002" }, /* sex digit 3 */
		{ "email", "budi@gmail.com" },
		{ "email", "budi@evilgo.id" },
		{ "email", "no-at-sign" },
		{ "name", "Dr. Budi Santoso" },
		{ "name", "Budi Santoso, S.Kom" },
		{ "name", "Ir Budi Santoso" },
		{ "name", "Prof Budi" },
		{ "name", "H Budi Santoso" },
	};

	pol_policy_init(&p);
	assert_int_equal(pol_registration_check(&p, &o, &field, msg, sizeof(msg)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pol_owner t = applicant();
		if (!strcmp(bad[i].field, "nik"))
			t.nik = (char *)bad[i].value;
		else if (!strcmp(bad[i].field, "nip"))
			t.nip = (char *)bad[i].value;
		else if (!strcmp(bad[i].field, "email"))
			t.email = (char *)bad[i].value;
		else
			t.name = (char *)bad[i].value;
		field = NULL;
		if (pol_registration_check(&p, &t, &field, msg, sizeof(msg)) >= 0)
			fail_msg("accepted %s = '%s'", bad[i].field, bad[i].value);
		if (!field || strcmp(field, bad[i].field))
			fail_msg("%s = '%s': field '%s' blamed", bad[i].field, bad[i].value,
				field ? field : "(none)");
	}
	/* A woman's NIK: day + 40. */
	o.nik = "3201015503780002";
	assert_int_equal(pol_registration_check(&p, &o, &field, msg, sizeof(msg)), 0);
	/* The domain list is the policy's. */
	assert_int_equal(pol_policy_parse(&p, "t", "[registration]\nemail_domains = contoh.go.id\n",
		err, sizeof(err)), 0);
	o.email = "budi@lain.go.id";
	assert_true(pol_registration_check(&p, &o, &field, msg, sizeof(msg)) < 0);
	pol_policy_release(&p);
}

static void
r18_jabatan_needs_position_and_decree(void **state)
{
	struct pol_policy p;
	struct pol_owner o = applicant();
	const char *field = NULL;
	char msg[256];

	pol_policy_init(&p);
	o.type = POL_TYPE_JABATAN;
	assert_true(pol_registration_check(&p, &o, &field, msg, sizeof(msg)) < 0);
	assert_string_equal(field, "position");
	o.position = "Kepala Dinas";
	assert_true(pol_registration_check(&p, &o, &field, msg, sizeof(msg)) < 0);
	assert_string_equal(field, "decree");
	o.decree = "800/12/2026";
	assert_int_equal(pol_registration_check(&p, &o, &field, msg, sizeof(msg)), 0);
	pol_policy_release(&p);
}

static void
r4_passphrase_policy(void **state)
{
	struct pol_policy p;
	struct pol_owner o = applicant();
	char msg[256];
	static const char *const weak[] = {
		"short", "aaaaaaaaaa", "x3201011503780001", "197803152005011002", "lahir15031978!",
		"19780315abc", "ACT-7391-2046x", "abc150378def",
	};

	pol_policy_init(&p);
	for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++)
		if (pol_passphrase_check(&p, &o, weak[i], strlen(weak[i]), "ACT-7391-2046", 4, 64, msg,
			    sizeof(msg)) >= 0)
			fail_msg("accepted the weak passphrase '%s'", weak[i]);
	assert_int_equal(pol_passphrase_check(&p, &o, "kopi tubruk pagi", 16, "ACT-7391-2046", 4, 64,
		msg, sizeof(msg)), 0);
	/* The token's own limits. */
	assert_true(pol_passphrase_check(&p, &o, "kopi tubruk pagi", 16, NULL, 4, 12, msg,
		sizeof(msg)) < 0);
	pol_policy_release(&p);
}

static void
registry_roundtrip(void **state)
{
	struct pol_policy p;
	struct pol_owner o = applicant();
	char *text = pol_owner_format(&o), err[256];

	pol_policy_init(&p);
	assert_non_null(text);
	assert_int_equal(pol_owner_parse(&p, "app-1.conf", text, err, sizeof(err)), 0);
	assert_string_equal(p.owners[0].nik, o.nik);
	assert_string_equal(p.owners[0].application, "app-1");
	assert_string_equal(p.owners[0].cert_id, "");
	/* A pending application matches no certificate. */
	assert_null(pol_owner_find(&p, ""));
	free(text);
	pol_policy_release(&p);
}

#define T(name, fn) { name, fn, setup, teardown, NULL }

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T("/policy/R1/owner-allowed", r1_owner_allowed),
		T("/policy/R1/other-uid-refused", r1_other_uid_refused),
		T("/policy/R1/root-refused", r1_root_refused),
		T("/policy/R1/root-owner-needs-policy", r1_root_owner_needs_policy),
		T("/policy/R1/system-agent-serves-system-only", r1_system_agent_serves_system_only),
		T("/policy/R1/unregistered-owner-refused", r1_unregistered_owner_refused),
		T("/policy/R1/unknown-account-refused", r1_unknown_account_refused),
		T("/policy/R1/remote-session-refused", r1_remote_session_refused),
		T("/policy/R1/no-session-refused", r1_no_session_refused),
		T("/policy/R1/inactive-session-refused", r1_inactive_session_refused),
		T("/policy/R1/no-logind-default-refused", r1_no_logind_default_refused),
		T("/policy/R1/system-certificate-exempt-from-session", r1_system_certificate_exempt_from_session),
		T("/policy/R1/batch-limit", r1_batch_limit),
		T("/policy/R2/pin-parameter-refused-for-individual", r2_pin_parameter_refused_for_individual),
		T("/policy/R2/pin-parameter-allowed-for-system", r2_pin_parameter_allowed_for_system),
		T("/policy/R5/unregistered-refused", r5_unregistered_refused),
		T("/policy/R5/type-from-policy-oid", r5_type_from_policy_oid),
		T("/policy/R6/tls-server-on-individual-refused", r6_tls_server_on_individual_refused),
		T("/policy/R6/missing-key-usage-refused", r6_missing_key_usage_refused),
		T("/policy/R6/signature-needs-signing-bits", r6_signature_needs_signing_bits),
		T("/policy/R6/signature-eku-must-be-listed", r6_signature_eku_must_be_listed),
		T("/policy/R6/email-needs-eku-and-address", r6_email_needs_eku_and_address),
		T("/policy/R6/tls-client-needs-client-auth", r6_tls_client_needs_client_auth),
		T("/policy/R6/document-protection-needs-encipherment", r6_document_protection_needs_encipherment),
		T("/policy/R6/ca-certificate-refused", r6_ca_certificate_refused),
		T("/policy/R6/matrix-is-configurable", r6_matrix_is_configurable),
		T("/policy/R7/expired-refused", r7_expired_refused),
		T("/policy/R7/not-yet-valid-refused", r7_not_yet_valid_refused),
		T("/policy/R7/three-year-validity-refused", r7_three_year_validity_refused),
		T("/policy/R7/two-years-allowed", r7_two_years_allowed),
		T("/policy/R7/status-expiring", r7_status_expiring),
		T("/policy/trust/untrusted-refused", trust_untrusted_refused),
		T("/policy/R8/revoked-by-crl-refused", r8_revoked_by_crl_refused),
		T("/policy/R8/missing-crl-with-require-refused", r8_missing_crl_with_require_refused),
		T("/policy/R8/locally-revoked-refused-for-ever", r8_locally_revoked_refused_for_ever),
		T("/policy/R9/incident-revocation-names-r9", r9_incident_revocation_names_r9),
		{ "/policy/parse/parse-errors-name-the-line", parse_errors_name_the_line, NULL, NULL, NULL },
		{ "/policy/parse/owner-file-checked", owner_file_checked, NULL, NULL, NULL },
		{ "/policy/R8/trust-and-crl", trust_and_crl, NULL, NULL, NULL },
		{ "/policy/R6/facts-from-der", facts_from_der, NULL, NULL, NULL },
		{ "/policy/R17/registration-checked", r17_registration_checked, NULL, NULL, NULL },
		{ "/policy/R18/jabatan-needs-position-and-decree", r18_jabatan_needs_position_and_decree,
			NULL, NULL, NULL },
		{ "/policy/R4/passphrase-policy", r4_passphrase_policy, NULL, NULL, NULL },
		{ "/policy/registry/roundtrip", registry_roundtrip, NULL, NULL, NULL },
	};

	return cmocka_run_group_tests_name("/policy", tests, NULL, NULL);
}
