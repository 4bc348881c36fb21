/*
 * The pure pieces of the paraf command line: the offline CMS verifier and its report (R11:
 * signer, signing time, integrity, trusted, verified and valid certificate, issuer, conclusion;
 * R7 and R8 at the signing time), --cert resolution, terminal-safe text, the PIN file reader,
 * atomic output and streamed hashing, whether a PIN may travel for a certificate type (R2),
 * where the PIN dialog must appear (R1), and which refusals are the policy's. Signatures,
 * certificates, CRLs and RFC 3161 timestamps are made here with OpenSSL and software keys, in a
 * temporary directory; the verification time is fixed by the tests where it matters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli.h"
#include "pf-codec.h"

#define DAY (24 * 3600L)

static char tmpdir[64];
static time_t now;

static char *
path_of(const char *name)
{
	static char buf[16][256];
	static int k;

	k = (k + 1) % 16;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmpdir, name);
	return buf[k];
}

static void
file_put(const char *name, const void *p, size_t n)
{
	FILE *f = fopen(path_of(name), "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static EVP_PKEY *
key_new(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

static void
ext_add(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

enum { LEAF, CA, TSA };

/*
 * A certificate for key's public half, signed by issuer_key (self-signed when issuer is NULL),
 * valid from now + from to now + to (seconds), with the key identifiers that strict chain
 * checking wants. serial_number: the subject's serialNumber attribute, or NULL.
 */
static X509 *
cert_new(const char *cn, const char *serial_number, EVP_PKEY *key, X509 *issuer,
	EVP_PKEY *issuer_key, long from, long to, int kind)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	static long serial = 0x1000;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC,
				 (const unsigned char *)"ID", -1, -1, 0),
		1);
	if (serial_number)
		assert_int_equal(X509_NAME_add_entry_by_txt(name, "serialNumber", MBSTRING_ASC,
					 (const unsigned char *)serial_number, -1, -1, 0),
			1);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
				 (const unsigned char *)cn, -1, -1, 0),
		1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
	assert_non_null(X509_time_adj(X509_getm_notBefore(x), from, &now));
	assert_non_null(X509_time_adj(X509_getm_notAfter(x), to, &now));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	ext_add(x, issuer, NID_basic_constraints,
		kind == CA ? "critical,CA:TRUE" : "critical,CA:FALSE");
	ext_add(x, issuer, NID_subject_key_identifier, "hash");
	if (issuer)
		ext_add(x, issuer, NID_authority_key_identifier, "keyid:always");
	if (kind == CA)
		ext_add(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
	else if (kind == TSA) {
		ext_add(x, issuer, NID_key_usage, "critical,digitalSignature");
		ext_add(x, issuer, NID_ext_key_usage, "critical,timeStamping");
	} else
		ext_add(x, issuer, NID_key_usage, "critical,digitalSignature,nonRepudiation");
	assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	X509_NAME_free(name);
	return x;
}

static void
cert_write_pem(const char *name, X509 *a, X509 *b)
{
	FILE *f = fopen(path_of(name), "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, a), 1);
	if (b)
		assert_int_equal(PEM_write_X509(f, b), 1);
	assert_int_equal(fclose(f), 0);
}

struct revoked {
	X509 *cert;
	long when; /* seconds from now */
	int reason;
};

/* A CRL by ca from now + this_update to now + next_update, listing revoked[0..n). */
static void
crl_write(const char *name, X509 *ca, EVP_PKEY *ca_key, long this_update, long next_update,
	const struct revoked *revoked, size_t n, int der)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	FILE *f;

	assert_non_null(crl);
	assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
	assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)), 1);
	assert_non_null(X509_time_adj(t, this_update, &now));
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
	assert_non_null(X509_time_adj(t, next_update, &now));
	assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
	for (size_t i = 0; i < n; i++) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_ENUMERATED *e = ASN1_ENUMERATED_new();

		assert_int_equal(X509_REVOKED_set_serialNumber(r,
					 X509_get_serialNumber(revoked[i].cert)),
			1);
		assert_non_null(X509_time_adj(t, revoked[i].when, &now));
		assert_int_equal(X509_REVOKED_set_revocationDate(r, t), 1);
		assert_int_equal(ASN1_ENUMERATED_set(e, revoked[i].reason), 1);
		assert_int_equal(X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, e, 0, 0), 1);
		ASN1_ENUMERATED_free(e);
		assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
	}
	assert_int_equal(X509_CRL_sort(crl), 1);
	assert_true(X509_CRL_sign(crl, ca_key, EVP_sha256()) > 0);
	f = fopen(path_of(name), "wb");
	assert_non_null(f);
	assert_int_equal(der ? i2d_X509_CRL_fp(f, crl) : PEM_write_X509_CRL(f, crl), 1);
	assert_int_equal(fclose(f), 0);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
}

struct tsa {
	X509 *cert;
	EVP_PKEY *key;
	long gen_time; /* seconds from now */
	int wrong_imprint;
};

static long tsa_time;

static int
tsa_time_cb(TS_RESP_CTX *ctx, void *data, long *sec, long *usec)
{
	*sec = (long)now + tsa_time;
	*usec = 0;
	return 1;
}

/* An RFC 3161 token (DER) over the hash of sig, by tsa at now + tsa->gen_time. */
static unsigned char *
timestamp_make(const struct tsa *tsa, const ASN1_OCTET_STRING *sig, int *ret_len)
{
	unsigned char h[32];
	TS_REQ *req = TS_REQ_new();
	TS_MSG_IMPRINT *imp = TS_MSG_IMPRINT_new();
	X509_ALGOR *alg = X509_ALGOR_new();
	TS_RESP_CTX *ctx = TS_RESP_CTX_new();
	ASN1_OBJECT *policy = OBJ_txt2obj("1.3.6.1.4.1.55555.1.1", 1);
	BIO *rb = BIO_new(BIO_s_mem());
	TS_RESP *resp;
	unsigned char *der = NULL;

	assert_int_equal(EVP_Digest(ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig), h,
				 NULL, EVP_sha256(), NULL),
		1);
	if (tsa->wrong_imprint)
		h[0] ^= 1;
	assert_int_equal(X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, NULL), 1);
	assert_int_equal(TS_MSG_IMPRINT_set_algo(imp, alg), 1);
	assert_int_equal(TS_MSG_IMPRINT_set_msg(imp, h, sizeof(h)), 1);
	assert_int_equal(TS_REQ_set_version(req, 1), 1);
	assert_int_equal(TS_REQ_set_msg_imprint(req, imp), 1);
	assert_int_equal(TS_REQ_set_cert_req(req, 1), 1);
	assert_int_equal(i2d_TS_REQ_bio(rb, req), 1);
	assert_int_equal(TS_RESP_CTX_set_signer_cert(ctx, tsa->cert), 1);
	assert_int_equal(TS_RESP_CTX_set_signer_key(ctx, tsa->key), 1);
	assert_int_equal(TS_RESP_CTX_set_signer_digest(ctx, EVP_sha256()), 1);
	assert_int_equal(TS_RESP_CTX_set_def_policy(ctx, policy), 1);
	assert_int_equal(TS_RESP_CTX_add_md(ctx, EVP_sha256()), 1);
	tsa_time = tsa->gen_time;
	TS_RESP_CTX_set_time_cb(ctx, tsa_time_cb, NULL);
	resp = TS_RESP_create_response(ctx, rb);
	assert_non_null(resp);
	assert_int_equal(ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(TS_RESP_get_status_info(resp))),
		TS_STATUS_GRANTED);
	*ret_len = i2d_PKCS7(TS_RESP_get_token(resp), &der);
	assert_true(*ret_len > 0);
	TS_RESP_free(resp);
	BIO_free(rb);
	ASN1_OBJECT_free(policy);
	TS_RESP_CTX_free(ctx);
	X509_ALGOR_free(alg);
	TS_MSG_IMPRINT_free(imp);
	TS_REQ_free(req);
	return der;
}

enum { SIG_NOCERTS = 1, SIG_NOATTR = 2, SIG_BAD_VALUE = 4, SIG_ATTACHED = 8 };

/*
 * A detached DER CMS signature of content by cert/key into name: signingTime now + when (or
 * OpenSSL's own when when is 0; none with SIG_NOATTR), with a timestamp by tsa when given.
 */
static void
cms_write(const char *name, X509 *cert, EVP_PKEY *key, const char *content, long when,
	const struct tsa *tsa, unsigned opts)
{
	unsigned flags = (opts & SIG_ATTACHED ? 0 : CMS_DETACHED) | CMS_BINARY | CMS_PARTIAL |
			 (opts & SIG_NOCERTS ? CMS_NOCERTS : 0) | (opts & SIG_NOATTR ? CMS_NOATTR : 0);
	BIO *in = BIO_new_mem_buf(content, (int)strlen(content));
	BIO *out = BIO_new_file(path_of(name), "wb");
	CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
	CMS_SignerInfo *si;

	assert_non_null(in);
	assert_non_null(out);
	assert_non_null(cms);
	si = CMS_add1_signer(cms, cert, key, EVP_sha256(), flags);
	assert_non_null(si);
	if (when && !(opts & SIG_NOATTR)) {
		ASN1_TIME *t = X509_time_adj(NULL, when, &now);

		assert_non_null(t);
		assert_int_equal(CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime,
					 t->type, t, -1),
			1);
		ASN1_TIME_free(t);
	}
	assert_int_equal(CMS_final(cms, in, NULL, flags), 1);
	if (tsa) {
		int n;
		unsigned char *tok = timestamp_make(tsa, CMS_SignerInfo_get0_signature(si), &n);

		assert_int_equal(CMS_unsigned_add1_attr_by_NID(si, NID_id_smime_aa_timeStampToken,
					 V_ASN1_SEQUENCE, tok, n),
			1);
		OPENSSL_free(tok);
	}
	if (opts & SIG_BAD_VALUE) {
		ASN1_OCTET_STRING *sig = CMS_SignerInfo_get0_signature(si);
		unsigned char *p = (unsigned char *)ASN1_STRING_get0_data(sig);

		p[ASN1_STRING_length(sig) / 2] ^= 0x40;
	}
	assert_int_equal(i2d_CMS_bio(out, cms), 1);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	assert_int_equal(BIO_free(out), 1);
}

struct pki {
	EVP_PKEY *ca_key, *key, *old_key, *other_key, *tsa_key, *tsa_ca_key, *late_key;
	X509 *ca, *cert, *old, *other_ca, *other, *tsa, *tsa_ca, *tsa_foreign, *bad_sig, *late;
};

static struct pki pki;

static const char doc[] = "Surat Keputusan Nomor 1 Tahun 2026\n";

static int
setup(void **state)
{
	char *p;

	/* A whole second, so that the certificates' dates and the checks line up exactly. */
	now = time(NULL);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-cli-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	pki.ca_key = key_new();
	pki.ca = cert_new("Test CA", NULL, pki.ca_key, NULL, NULL, -3650 * DAY, 3650 * DAY, CA);
	pki.key = key_new();
	pki.cert = cert_new("Budi Santoso", "NIP197803152005011002", pki.key, pki.ca, pki.ca_key,
		-30 * DAY, 700 * DAY, LEAF);
	pki.old_key = key_new();
	pki.old = cert_new("Pejabat Lama", NULL, pki.old_key, pki.ca, pki.ca_key, -800 * DAY,
		-70 * DAY, LEAF);
	pki.late_key = key_new();
	pki.late = cert_new("Pejabat Baru", NULL, pki.late_key, pki.ca, pki.ca_key, -2 * DAY,
		700 * DAY, LEAF);
	pki.other_key = key_new();
	pki.other_ca = cert_new("Other CA", NULL, pki.other_key, NULL, NULL, -DAY, 3650 * DAY, CA);
	pki.other = cert_new("Orang Lain", NULL, pki.key, pki.other_ca, pki.other_key, -DAY,
		700 * DAY, LEAF);
	pki.tsa_key = key_new();
	pki.tsa = cert_new("Test TSA", NULL, pki.tsa_key, pki.ca, pki.ca_key, -1000 * DAY,
		1000 * DAY, TSA);
	pki.tsa_ca_key = key_new();
	pki.tsa_ca = cert_new("TSA Root", NULL, pki.tsa_ca_key, NULL, NULL, -3650 * DAY,
		3650 * DAY, CA);
	pki.tsa_foreign = cert_new("Foreign TSA", NULL, pki.tsa_key, pki.tsa_ca, pki.tsa_ca_key,
		-1000 * DAY, 1000 * DAY, TSA);
	/* The signer's own key, but its certificate's signature broken after signing it. */
	pki.bad_sig = cert_new("Budi Santoso", NULL, pki.key, pki.ca, pki.ca_key, -30 * DAY,
		700 * DAY, LEAF);
	{
		const ASN1_BIT_STRING *sig;

		X509_get0_signature(&sig, NULL, pki.bad_sig);
		p = (char *)ASN1_STRING_get0_data(sig);
		p[ASN1_STRING_length(sig) - 5] ^= 0x01;
	}

	cert_write_pem("ca.pem", pki.ca, NULL);
	cert_write_pem("other-ca.pem", pki.other_ca, NULL);
	cert_write_pem("ca-and-tsa-root.pem", pki.ca, pki.tsa_ca);
	cert_write_pem("ca-and-signer.pem", pki.ca, pki.cert);
	file_put("surat.pdf", doc, strlen(doc));
	file_put("changed.pdf", "Surat Keputusan Nomor 2\n", 24);
	/* current CRLs: none revoked; and stale */
	mkdir(path_of("crl"), 0755);
	crl_write("crl/ca.crl", pki.ca, pki.ca_key, -DAY, 6 * DAY, NULL, 0, 0);
	crl_write("stale.crl", pki.ca, pki.ca_key, -10 * DAY, -3 * DAY, NULL, 0, 1);
	crl_write("other.crl", pki.other_ca, pki.other_key, -DAY, 6 * DAY, NULL, 0, 0);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	EVP_PKEY_free(pki.ca_key);
	EVP_PKEY_free(pki.key);
	EVP_PKEY_free(pki.old_key);
	EVP_PKEY_free(pki.other_key);
	EVP_PKEY_free(pki.tsa_key);
	EVP_PKEY_free(pki.tsa_ca_key);
	EVP_PKEY_free(pki.late_key);
	X509_free(pki.ca);
	X509_free(pki.cert);
	X509_free(pki.old);
	X509_free(pki.other_ca);
	X509_free(pki.other);
	X509_free(pki.tsa);
	X509_free(pki.tsa_ca);
	X509_free(pki.tsa_foreign);
	X509_free(pki.bad_sig);
	X509_free(pki.late);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Options for verify(): the anchors (a --ca file), the CRLs (a --crl file or a directory). */
struct vopts {
	const char *ca, *crl, *crl_dir, *anchors_dir, *owners_dir;
	long at; /* the verification time: now + at */
};

static struct cli_verify_report *
verify_with(const char *sig, const char *content, const struct vopts *v)
{
	const char *cas[] = { v->ca ? path_of(v->ca) : NULL, NULL };
	const char *crls[] = { v->crl ? path_of(v->crl) : NULL, NULL };
	struct cli_verify_opts o = {
		.sigfile = path_of(sig),
		.content = content ? path_of(content) : NULL,
		.cas = cas,
		.anchors_dir = v->anchors_dir ? path_of(v->anchors_dir) : NULL,
		.crls = crls,
		.crl_dir = v->crl_dir ? path_of(v->crl_dir) : NULL,
		.crl_dir_given = v->crl_dir != NULL,
		.owners_dir = v->owners_dir ? path_of(v->owners_dir) : NULL,
		.now = now + v->at,
	};
	struct cli_verify_report *rep = NULL;
	char *error = NULL;
	int r;

	r = cli_verify_run(&o, &rep, &error);
	if (r < 0)
		fail_msg("cli_verify_run: %s (%s)", strerror(-r), error ? error : "");
	assert_null(error);
	return rep;
}

/* With the test CA as anchor and its current CRL. */
static struct cli_verify_report *
verify(const char *sig, const char *content)
{
	return verify_with(sig, content, &(struct vopts){ .ca = "ca.pem", .crl_dir = "crl" });
}

static void
expect_verdict(const struct cli_verify_report *rep, enum cli_conclusion c, const char *sub)
{
	assert_int_equal(rep->n_signers, 1);
	if (rep->signers[0].conclusion != c)
		fail_msg("conclusion %s (%s: %s), expected %s (%s)",
			cli_conclusion_name(rep->signers[0].conclusion),
			rep->signers[0].sub_indication ? rep->signers[0].sub_indication : "-",
			rep->signers[0].reason ? rep->signers[0].reason : "-", cli_conclusion_name(c),
			sub ? sub : "-");
	if (sub)
		assert_string_equal(rep->signers[0].sub_indication, sub);
	else
		assert_null(rep->signers[0].sub_indication);
	assert_int_equal(rep->conclusion, c);
	if (c == CLI_VALID)
		assert_null(rep->signers[0].reason);
	else
		assert_non_null(rep->signers[0].reason);
}

static char *
iso(long delta)
{
	static char buf[4][32];
	static int k;
	time_t t = now + delta;
	struct tm tm;

	k = (k + 1) % 4;
	gmtime_r(&t, &tm);
	strftime(buf[k], sizeof(buf[k]), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf[k];
}

static void
test_verify_valid(void **state)
{
	struct cli_verify_report *rep;
	const struct cli_signer_report *s;
	json_object *j, *sigs, *s0, *v;

	cms_write("surat.pdf.p7s", pki.cert, pki.key, doc, -3600, NULL, 0);
	rep = verify("surat.pdf.p7s", NULL);
	assert_string_equal(rep->content, path_of("surat.pdf"));
	assert_false(rep->is_pdf);
	assert_int_equal(rep->n_anchors, 1);
	assert_int_equal(rep->n_crls, 1);
	expect_verdict(rep, CLI_VALID, NULL);
	s = &rep->signers[0];
	/* R11: signer (name, NIP), issuer, time, integrity, trusted, verified, valid */
	assert_string_equal(s->signer, "CN=Budi Santoso,serialNumber=NIP197803152005011002,C=ID");
	assert_string_equal(s->signer_cn, "Budi Santoso");
	assert_string_equal(s->nip, "197803152005011002");
	assert_string_equal(s->nip_source, "certificate");
	assert_string_equal(s->issuer, "CN=Test CA,C=ID");
	assert_non_null(s->serial);
	assert_string_equal(s->digest_algorithm, "sha256");
	assert_int_equal(s->time_source, CLI_TIME_CLAIMED);
	assert_string_equal(s->signing_time, iso(-3600));
	assert_string_equal(s->claimed_time, iso(-3600));
	assert_int_equal(s->ts.status, CLI_TST_NONE);
	assert_true(s->integrity);
	assert_true(s->trusted);
	assert_null(s->trust_error);
	assert_string_equal(s->anchor, "CN=Test CA,C=ID");
	assert_true(s->verified);
	assert_int_equal(s->chain_len, 2);
	assert_int_equal(s->cert_validity, CLI_CERT_VALID);
	assert_string_equal(s->cert_status, "valid");
	assert_int_equal(s->revocation, CLI_REV_GOOD);

	assert_int_equal(cli_verify_report_json(rep, &j), 0);
	assert_string_equal(cli_json_str(j, "format"), "cms");
	assert_string_equal(cli_json_str(j, "conclusion"), "VALID");
	assert_string_equal(cli_json_str(j, "indication"), "TOTAL_PASSED");
	assert_true(json_object_object_get_ex(j, "signatures", &sigs));
	s0 = json_object_array_get_idx(sigs, 0);
	assert_string_equal(cli_json_str(s0, "conclusion"), "VALID");
	assert_string_equal(cli_json_str(s0, "nip"), "197803152005011002");
	assert_string_equal(cli_json_str(s0, "signing_time_source"), "claimed");
	assert_string_equal(cli_json_str(s0, "certificate_status"), "valid");
	assert_string_equal(cli_json_str(s0, "revocation"), "good");
	assert_true(json_object_object_get_ex(s0, "reason", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(s0, "sub_indication", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(s0, "timestamp", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(s0, "pdf", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(s0, "coverage", &v));
	assert_null(v);
	assert_true(json_object_get_boolean(cli_json_obj(s0, "integrity", json_type_boolean)));
	assert_true(json_object_get_boolean(cli_json_obj(s0, "verified", json_type_boolean)));
	assert_true(json_object_get_boolean(cli_json_obj(s0, "valid_at_signing_time",
		json_type_boolean)));
	json_object_put(j);
	cli_verify_report_free(rep);
}

static void
test_verify_text(void **state)
{
	static const char *const labels[] = { "signer (penanda tangan):",
		"Budi Santoso, NIP 197803152005011002", "issuer (penerbit):",
		"signing time (waktu tanda tangan):", "claimed by the signer",
		"integrity (keutuhan dokumen):", "certificate trusted (terpercaya):",
		"certificate verified (terverifikasi):", "certificate valid (berlaku):",
		"revocation (pencabutan):", "conclusion (kesimpulan):", "VALID" };
	struct cli_verify_report *rep;
	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);

	cms_write("surat.pdf.p7s", pki.cert, pki.key, doc, -60, NULL, 0);
	rep = verify("surat.pdf.p7s", NULL);
	assert_non_null(f);
	assert_int_equal(cli_verify_report_print(rep, f), 0);
	fclose(f);
	for (size_t i = 0; i < ARRAY_SIZE(labels); i++)
		if (!strstr(text, labels[i]))
			fail_msg("'%s' not in:\n%s", labels[i], text);
	free(text);
	cli_verify_report_free(rep);
}

static void
test_verify_changed_content(void **state)
{
	struct cli_verify_report *rep;

	cms_write("surat.pdf.p7s", pki.cert, pki.key, doc, 0, NULL, 0);
	rep = verify("surat.pdf.p7s", "changed.pdf");
	expect_verdict(rep, CLI_INVALID, "HASH_FAILURE");
	assert_false(rep->signers[0].integrity);
	assert_int_equal(rep->signers[0].integrity_state, CLI_INTEGRITY_HASH_FAILURE);
	assert_true(rep->signers[0].trusted);
	cli_verify_report_free(rep);

	/* the signature value itself changed */
	cms_write("bad.p7s", pki.cert, pki.key, doc, 0, NULL, SIG_BAD_VALUE);
	rep = verify("bad.p7s", "surat.pdf");
	expect_verdict(rep, CLI_INVALID, "SIG_CRYPTO_FAILURE");
	assert_false(rep->signers[0].integrity);
	cli_verify_report_free(rep);
}

static void
test_verify_anchors(void **state)
{
	struct cli_verify_report *rep;

	cms_write("surat.pdf.p7s", pki.cert, pki.key, doc, 0, NULL, 0);
	/* No --ca and an empty anchors directory (or none at all): no trust anchors. */
	mkdir(path_of("empty-anchors"), 0755);
	rep = verify_with("surat.pdf.p7s", NULL,
		&(struct vopts){ .anchors_dir = "empty-anchors", .crl_dir = "crl" });
	expect_verdict(rep, CLI_INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND");
	assert_true(rep->signers[0].integrity);
	assert_false(rep->signers[0].trusted);
	assert_string_equal(rep->signers[0].reason, "no trust anchors configured");
	assert_true(rep->signers[0].verified == 0);
	assert_int_equal(rep->signers[0].chain, CLI_CHAIN_INCOMPLETE);
	cli_verify_report_free(rep);
	rep = verify_with("surat.pdf.p7s", NULL,
		&(struct vopts){ .anchors_dir = "no-such-dir", .crl_dir = "crl" });
	assert_string_equal(rep->signers[0].reason, "no trust anchors configured");
	cli_verify_report_free(rep);

	/* The anchors directory: every file, as parafd reads it; a file without a certificate
	 * is skipped (with a warning), not fatal. */
	mkdir(path_of("anchors"), 0755);
	file_put("anchors/README", "not a certificate\n", 18);
	cert_write_pem("anchors/ca.crt", pki.ca, NULL);
	rep = verify_with("surat.pdf.p7s", NULL,
		&(struct vopts){ .anchors_dir = "anchors", .crl_dir = "crl" });
	expect_verdict(rep, CLI_VALID, NULL);
	assert_int_equal(rep->n_anchors, 1);
	cli_verify_report_free(rep);

	/* A --ca that does not hold the signer's issuer: OpenSSL's reason. */
	cert_write_pem("self.pem", pki.cert, NULL);
	rep = verify_with("surat.pdf.p7s", NULL,
		&(struct vopts){ .ca = "self.pem", .crl_dir = "crl" });
	expect_verdict(rep, CLI_INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND");
	assert_non_null(rep->signers[0].trust_error);
	assert_non_null(strstr(rep->signers[0].reason, rep->signers[0].trust_error));
	cli_verify_report_free(rep);

	/* Another CA's anchor: untrusted, whatever else holds. */
	rep = verify_with("surat.pdf.p7s", NULL,
		&(struct vopts){ .ca = "other-ca.pem", .crl = "other.crl" });
	expect_verdict(rep, CLI_INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND");
	assert_int_equal(rep->signers[0].revocation, CLI_REV_UNCHECKED);
	assert_int_equal(rep->signers[0].cert_validity, CLI_CERT_UNKNOWN);
	cli_verify_report_free(rep);
}

static void
test_verify_revocation_unknown(void **state)
{
	struct cli_verify_report *rep;

	cms_write("surat.pdf.p7s", pki.cert, pki.key, doc, 0, NULL, 0);
	/* no CRL at all: trusted, intact, but revocation unknown (R8) */
	rep = verify_with("surat.pdf.p7s", NULL, &(struct vopts){ .ca = "ca.pem" });
	expect_verdict(rep, CLI_INDETERMINATE, "TRY_LATER");
	assert_true(rep->signers[0].trusted);
	assert_int_equal(rep->signers[0].revocation, CLI_REV_CRL_MISSING);
	assert_int_equal(rep->signers[0].cert_validity, CLI_CERT_UNKNOWN);
	assert_int_equal(rep->n_crls, 0);
	cli_verify_report_free(rep);

	/* only a stale CRL (DER) */
	rep = verify_with("surat.pdf.p7s", NULL,
		&(struct vopts){ .ca = "ca.pem", .crl = "stale.crl" });
	expect_verdict(rep, CLI_INDETERMINATE, "TRY_LATER");
	assert_int_equal(rep->signers[0].revocation, CLI_REV_CRL_STALE);
	cli_verify_report_free(rep);

	/* the CRL of another CA says nothing about ours */
	rep = verify_with("surat.pdf.p7s", NULL,
		&(struct vopts){ .ca = "ca.pem", .crl = "other.crl" });
	expect_verdict(rep, CLI_INDETERMINATE, "TRY_LATER");
	assert_int_equal(rep->signers[0].revocation, CLI_REV_CRL_MISSING);
	cli_verify_report_free(rep);
}

static void
test_verify_expired(void **state)
{
	struct cli_verify_report *rep;

	/* R7: signed (by its own clock) after the certificate expired: INVALID */
	cms_write("old.p7s", pki.old, pki.old_key, doc, -DAY, NULL, 0);
	rep = verify("old.p7s", "surat.pdf");
	expect_verdict(rep, CLI_INVALID, "EXPIRED");
	assert_true(rep->signers[0].integrity);
	assert_true(rep->signers[0].trusted); /* the chain is fine: the leaf's dates are R7's */
	assert_int_equal(rep->signers[0].cert_validity, CLI_CERT_INVALID);
	assert_string_equal(rep->signers[0].cert_status, "expired");
	cli_verify_report_free(rep);

	/* signed within its validity, expired since, no timestamp: not provable either way */
	cms_write("old.p7s", pki.old, pki.old_key, doc, -100 * DAY, NULL, 0);
	rep = verify("old.p7s", "surat.pdf");
	expect_verdict(rep, CLI_INDETERMINATE, "OUT_OF_BOUNDS_NO_POE");
	cli_verify_report_free(rep);

	/* ... and with a trusted timestamp from then: VALID */
	cms_write("old.p7s", pki.old, pki.old_key, doc, -100 * DAY,
		&(struct tsa){ pki.tsa, pki.tsa_key, -100 * DAY, 0 }, 0);
	rep = verify("old.p7s", "surat.pdf");
	expect_verdict(rep, CLI_VALID, NULL);
	assert_int_equal(rep->signers[0].time_source, CLI_TIME_TIMESTAMP);
	cli_verify_report_free(rep);

	/* not yet valid at the claimed signing time (R7) */
	cms_write("late.p7s", pki.late, pki.late_key, doc, -3 * DAY, NULL, 0);
	rep = verify("late.p7s", "surat.pdf");
	expect_verdict(rep, CLI_INVALID, "NOT_YET_VALID");
	assert_string_equal(rep->signers[0].cert_status, "not-yet-valid");
	cli_verify_report_free(rep);

	/* no signing time at all: judged at the verification time */
	cms_write("noattr.p7s", pki.old, pki.old_key, doc, 0, NULL, SIG_NOATTR);
	rep = verify("noattr.p7s", "surat.pdf");
	expect_verdict(rep, CLI_INVALID, "EXPIRED");
	assert_int_equal(rep->signers[0].time_source, CLI_TIME_NONE);
	assert_null(rep->signers[0].signing_time);
	cli_verify_report_free(rep);
	cms_write("noattr.p7s", pki.cert, pki.key, doc, 0, NULL, SIG_NOATTR);
	rep = verify("noattr.p7s", "surat.pdf");
	expect_verdict(rep, CLI_VALID, NULL);
	cli_verify_report_free(rep);
}

static void
test_verify_revoked(void **state)
{
	struct cli_verify_report *rep;
	struct revoked rv = { pki.cert, -DAY, 1 /* keyCompromise */ };

	mkdir(path_of("crl-revoked"), 0755);
	crl_write("crl-revoked/ca.crl", pki.ca, pki.ca_key, -3600, 6 * DAY, &rv, 1, 1);

	/* R8: signed after it was revoked: INVALID */
	cms_write("surat.pdf.p7s", pki.cert, pki.key, doc, -3600, NULL, 0);
	rep = verify_with("surat.pdf.p7s", NULL,
		&(struct vopts){ .ca = "ca.pem", .crl_dir = "crl-revoked" });
	expect_verdict(rep, CLI_INVALID, "REVOKED");
	assert_int_equal(rep->signers[0].revocation, CLI_REV_REVOKED);
	assert_string_equal(rep->signers[0].revocation_time, iso(-DAY));
	assert_string_equal(rep->signers[0].revocation_reason, "keyCompromise");
	assert_string_equal(rep->signers[0].cert_status, "revoked");
	cli_verify_report_free(rep);

	/* signed, by its own clock, before it was revoked: the claim cannot be proven */
	cms_write("before.p7s", pki.cert, pki.key, doc, -3 * DAY, NULL, 0);
	rep = verify_with("before.p7s", "surat.pdf",
		&(struct vopts){ .ca = "ca.pem", .crl_dir = "crl-revoked" });
	expect_verdict(rep, CLI_INDETERMINATE, "REVOKED_NO_POE");
	cli_verify_report_free(rep);

	/* ... a timestamp proves it: VALID, and the later revocation is still shown */
	cms_write("before.p7s", pki.cert, pki.key, doc, -3 * DAY,
		&(struct tsa){ pki.tsa, pki.tsa_key, -3 * DAY + 60, 0 }, 0);
	rep = verify_with("before.p7s", "surat.pdf",
		&(struct vopts){ .ca = "ca.pem", .crl_dir = "crl-revoked" });
	expect_verdict(rep, CLI_VALID, NULL);
	assert_int_equal(rep->signers[0].revocation, CLI_REV_REVOKED);
	assert_int_equal(rep->signers[0].cert_validity, CLI_CERT_VALID);
	assert_string_equal(rep->signers[0].signing_time, iso(-3 * DAY + 60));
	cli_verify_report_free(rep);

	/* ... a timestamp after the revocation: INVALID, whatever the signer claims */
	cms_write("before.p7s", pki.cert, pki.key, doc, -3 * DAY,
		&(struct tsa){ pki.tsa, pki.tsa_key, -3600, 0 }, 0);
	rep = verify_with("before.p7s", "surat.pdf",
		&(struct vopts){ .ca = "ca.pem", .crl_dir = "crl-revoked" });
	expect_verdict(rep, CLI_INVALID, "REVOKED");
	cli_verify_report_free(rep);
}

static void
test_verify_timestamp(void **state)
{
	struct cli_verify_report *rep;
	const struct cli_signer_report *s;
	json_object *j, *ts;

	/* a timestamp by a TSA the CA certified: the trusted signing time */
	cms_write("ts.p7s", pki.cert, pki.key, doc, -7200,
		&(struct tsa){ pki.tsa, pki.tsa_key, -3600, 0 }, 0);
	rep = verify("ts.p7s", "surat.pdf");
	expect_verdict(rep, CLI_VALID, NULL);
	s = &rep->signers[0];
	assert_int_equal(s->ts.status, CLI_TST_VALID);
	assert_int_equal(s->time_source, CLI_TIME_TIMESTAMP);
	assert_string_equal(s->signing_time, iso(-3600));
	assert_string_equal(s->claimed_time, iso(-7200));
	assert_string_equal(s->ts.tsa, "CN=Test TSA,C=ID");
	assert_int_equal(cli_verify_report_json(rep, &j), 0);
	s = NULL;
	ts = cli_json_obj(json_object_array_get_idx(cli_json_obj(j, "signatures", json_type_array),
				  0),
		"timestamp", json_type_object);
	assert_non_null(ts);
	assert_string_equal(cli_json_str(ts, "status"), "valid");
	assert_string_equal(cli_json_str(ts, "time"), iso(-3600));
	json_object_put(j);
	cli_verify_report_free(rep);

	/* a TSA that chains to no anchor: its time is not trusted; the claimed time is used */
	cms_write("ts.p7s", pki.cert, pki.key, doc, -7200,
		&(struct tsa){ pki.tsa_foreign, pki.tsa_key, -3600, 0 }, 0);
	rep = verify("ts.p7s", "surat.pdf");
	expect_verdict(rep, CLI_VALID, NULL);
	s = &rep->signers[0];
	assert_int_equal(s->ts.status, CLI_TST_UNTRUSTED);
	assert_non_null(strstr(s->ts.error, "does not chain to a trust anchor"));
	assert_int_equal(s->time_source, CLI_TIME_CLAIMED);
	assert_string_equal(s->signing_time, iso(-7200));
	cli_verify_report_free(rep);
	/* ... its root added to the anchors: trusted */
	rep = verify_with("ts.p7s", "surat.pdf",
		&(struct vopts){ .ca = "ca-and-tsa-root.pem", .crl_dir = "crl" });
	expect_verdict(rep, CLI_VALID, NULL);
	assert_int_equal(rep->signers[0].ts.status, CLI_TST_VALID);
	cli_verify_report_free(rep);

	/* a timestamp that is not about this signature: INDETERMINATE */
	cms_write("ts.p7s", pki.cert, pki.key, doc, -7200,
		&(struct tsa){ pki.tsa, pki.tsa_key, -3600, 1 }, 0);
	rep = verify("ts.p7s", "surat.pdf");
	expect_verdict(rep, CLI_INDETERMINATE, "TIMESTAMP_FAILURE");
	assert_int_equal(rep->signers[0].ts.status, CLI_TST_INVALID);
	assert_non_null(strstr(rep->signers[0].ts.error, "imprint"));
	assert_int_equal(rep->signers[0].time_source, CLI_TIME_CLAIMED);
	cli_verify_report_free(rep);
}

static void
test_verify_chain_signature(void **state)
{
	struct cli_verify_report *rep;

	/* R11 "verified": a certificate whose issuer's signature does not check: INVALID */
	cms_write("badcert.p7s", pki.bad_sig, pki.key, doc, 0, NULL, 0);
	rep = verify("badcert.p7s", "surat.pdf");
	expect_verdict(rep, CLI_INVALID, "CHAIN_SIG_FAILURE");
	assert_true(rep->signers[0].integrity);
	assert_false(rep->signers[0].verified);
	assert_false(rep->signers[0].trusted);
	assert_int_equal(rep->signers[0].chain, CLI_CHAIN_BAD_SIGNATURE);
	assert_non_null(strstr(rep->signers[0].verify_error, "does not verify"));
	cli_verify_report_free(rep);
}

static void
test_verify_missing_signer_cert(void **state)
{
	struct cli_verify_report *rep;

	cms_write("nocerts.p7s", pki.cert, pki.key, doc, 0, NULL, SIG_NOCERTS);
	rep = verify("nocerts.p7s", "surat.pdf");
	expect_verdict(rep, CLI_INDETERMINATE, "NO_SIGNING_CERTIFICATE_FOUND");
	assert_null(rep->signers[0].signer);
	assert_string_equal(rep->signers[0].issuer, "CN=Test CA,C=ID");
	assert_non_null(rep->signers[0].serial);
	assert_false(rep->signers[0].integrity);
	assert_int_equal(rep->signers[0].integrity_state, CLI_INTEGRITY_UNKNOWN);
	cli_verify_report_free(rep);

	/* and changed content is still seen, without the certificate */
	rep = verify("nocerts.p7s", "changed.pdf");
	expect_verdict(rep, CLI_INVALID, "HASH_FAILURE");
	cli_verify_report_free(rep);

	/* the certificate given with the anchors: found there */
	rep = verify_with("nocerts.p7s", "surat.pdf",
		&(struct vopts){ .ca = "ca-and-signer.pem", .crl_dir = "crl" });
	expect_verdict(rep, CLI_VALID, NULL);
	assert_string_equal(rep->signers[0].signer_cn, "Budi Santoso");
	cli_verify_report_free(rep);
}

static void
test_verify_two_signers(void **state)
{
	BIO *in = BIO_new_mem_buf(doc, (int)strlen(doc));
	BIO *out = BIO_new_file(path_of("two.p7s"), "wb");
	unsigned flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL;
	CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
	struct cli_verify_report *rep;
	size_t valid = 0, indet = 0;

	assert_non_null(CMS_add1_signer(cms, pki.cert, pki.key, EVP_sha256(), flags));
	assert_non_null(CMS_add1_signer(cms, pki.other, pki.key, EVP_sha384(), flags));
	assert_int_equal(CMS_final(cms, in, NULL, flags), 1);
	assert_int_equal(i2d_CMS_bio(out, cms), 1);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(out);

	/* every SignerInfo is reported; the worst conclusion wins */
	rep = verify("two.p7s", "surat.pdf");
	assert_int_equal(rep->n_signers, 2);
	for (size_t i = 0; i < 2; i++) {
		valid += rep->signers[i].conclusion == CLI_VALID;
		indet += rep->signers[i].conclusion == CLI_INDETERMINATE;
	}
	assert_int_equal(valid, 1);
	assert_int_equal(indet, 1);
	assert_int_equal(rep->conclusion, CLI_INDETERMINATE);
	cli_verify_report_free(rep);
}

static void
test_verify_registry(void **state)
{
	struct cli_verify_report *rep;
	unsigned char *der = NULL, md[32];
	int n = i2d_X509(pki.old, &der);
	char id[65], text[512];

	/* a certificate without a NIP: the registry's, said to be from there */
	assert_true(n > 0);
	EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL);
	OPENSSL_free(der);
	for (int i = 0; i < 32; i++)
		snprintf(id + 2 * i, 3, "%02x", md[i]);
	snprintf(text, sizeof(text),
		"[owner]\ncertificate = %s\naccount = root\ntype = jabatan\nname = Pejabat Lama\n"
		"nip = 196501011990031001\nposition = Kepala Dinas\n", id);
	mkdir(path_of("owners.d"), 0755);
	file_put("owners.d/lama.conf", text, strlen(text));
	chmod(path_of("owners.d/lama.conf"), 0644);
	cms_write("old.p7s", pki.old, pki.old_key, doc, -100 * DAY, NULL, 0);
	rep = verify_with("old.p7s", "surat.pdf",
		&(struct vopts){ .ca = "ca.pem", .crl_dir = "crl", .owners_dir = "owners.d" });
	assert_string_equal(rep->signers[0].nip, "196501011990031001");
	assert_string_equal(rep->signers[0].nip_source, "registry");
	assert_string_equal(rep->signers[0].position, "Kepala Dinas");
	cli_verify_report_free(rep);

	/* a registry file others can change is not believed (R13) */
	chmod(path_of("owners.d/lama.conf"), 0666);
	rep = verify_with("old.p7s", "surat.pdf",
		&(struct vopts){ .ca = "ca.pem", .crl_dir = "crl", .owners_dir = "owners.d" });
	assert_null(rep->signers[0].nip);
	cli_verify_report_free(rep);
}

static void
test_verify_nip(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "NIP197803152005011002", "197803152005011002" },
		{ "nip:197803152005011002", "197803152005011002" },
		{ "NIP-197803152005011002", "197803152005011002" },
		{ "197803152005011002", "197803152005011002" },
		{ "3201234567890001", NULL }, /* 16 digits: a NIK, not a NIP */
		{ "NIPabc", NULL },
		{ "NIP", NULL },
		{ "PID-12345", NULL },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *got = cli_nip_from_serial_number(cases[i].in);

		if (cases[i].want)
			assert_string_equal(got, cases[i].want);
		else
			assert_null(got);
		free(got);
	}
}

/* The conclusion rules on their own, in their order (doc/verification.md). */
static void
test_verify_conclusion_rules(void **state)
{
	static const struct {
		const char *name;
		enum cli_integrity integ;
		int trusted;
		enum cli_chain chain;
		enum cli_cert_validity valid;
		const char *cert_sub;
		enum cli_tst_status ts;
		enum cli_appended appended;
		enum cli_conclusion want;
		const char *sub;
	} cases[] = {
		{ "all good", CLI_INTEGRITY_OK, 1, CLI_CHAIN_OK, CLI_CERT_VALID, NULL, CLI_TST_NONE,
			CLI_APPENDED_NONE, CLI_VALID, NULL },
		{ "later signatures only", CLI_INTEGRITY_OK, 1, CLI_CHAIN_OK, CLI_CERT_VALID, NULL,
			CLI_TST_VALID, CLI_APPENDED_SIGNATURES, CLI_VALID, NULL },
		{ "hash beats untrusted", CLI_INTEGRITY_HASH_FAILURE, 0, CLI_CHAIN_INCOMPLETE,
			CLI_CERT_UNKNOWN, "TRY_LATER", CLI_TST_NONE, CLI_APPENDED_NONE, CLI_INVALID,
			"HASH_FAILURE" },
		{ "signature value", CLI_INTEGRITY_SIG_FAILURE, 1, CLI_CHAIN_OK, CLI_CERT_VALID,
			NULL, CLI_TST_NONE, CLI_APPENDED_NONE, CLI_INVALID, "SIG_CRYPTO_FAILURE" },
		{ "chain signature", CLI_INTEGRITY_OK, 0, CLI_CHAIN_BAD_SIGNATURE, CLI_CERT_UNKNOWN,
			"TRY_LATER", CLI_TST_NONE, CLI_APPENDED_NONE, CLI_INVALID,
			"CHAIN_SIG_FAILURE" },
		{ "revoked", CLI_INTEGRITY_OK, 1, CLI_CHAIN_OK, CLI_CERT_INVALID, "REVOKED",
			CLI_TST_VALID, CLI_APPENDED_NONE, CLI_INVALID, "REVOKED" },
		{ "expired but untrusted", CLI_INTEGRITY_OK, 0, CLI_CHAIN_INCOMPLETE,
			CLI_CERT_INVALID, "EXPIRED", CLI_TST_NONE, CLI_APPENDED_NONE,
			CLI_INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND" },
		{ "no certificate", CLI_INTEGRITY_UNKNOWN, 0, CLI_CHAIN_INCOMPLETE, CLI_CERT_UNKNOWN,
			NULL, CLI_TST_NONE, CLI_APPENDED_NONE, CLI_INDETERMINATE,
			"NO_SIGNING_CERTIFICATE_FOUND" },
		{ "timestamp broken", CLI_INTEGRITY_OK, 1, CLI_CHAIN_OK, CLI_CERT_UNKNOWN,
			"TRY_LATER", CLI_TST_INVALID, CLI_APPENDED_NONE, CLI_INDETERMINATE,
			"TIMESTAMP_FAILURE" },
		{ "revocation unknown", CLI_INTEGRITY_OK, 1, CLI_CHAIN_OK, CLI_CERT_UNKNOWN,
			"TRY_LATER", CLI_TST_UNTRUSTED, CLI_APPENDED_NONE, CLI_INDETERMINATE,
			"TRY_LATER" },
		{ "revocation unknown beats changes", CLI_INTEGRITY_OK, 1, CLI_CHAIN_OK,
			CLI_CERT_UNKNOWN, "REVOKED_NO_POE", CLI_TST_NONE, CLI_APPENDED_OTHER,
			CLI_INDETERMINATE, "REVOKED_NO_POE" },
		{ "changed after signing", CLI_INTEGRITY_OK, 1, CLI_CHAIN_OK, CLI_CERT_VALID, NULL,
			CLI_TST_NONE, CLI_APPENDED_OTHER, CLI_INDETERMINATE,
			"MODIFIED_AFTER_SIGNING" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cli_signer_report s = {
			.integrity_state = cases[i].integ,
			.integrity = cases[i].integ == CLI_INTEGRITY_OK,
			.integrity_error = strdup("integrity"),
			.trusted = cases[i].trusted,
			.trust_error = cases[i].trusted ? NULL : strdup(X509_verify_cert_error_string(
					X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)),
			.chain = cases[i].chain,
			.verify_error = strdup("chain"),
			.cert_validity = cases[i].valid,
			.cert_sub = cases[i].cert_sub,
			.cert_error = strdup("certificate"),
			.ts = { .status = cases[i].ts, .error = strdup("ts") },
			.is_pdf = 1,
			.pdf = { .appended = cases[i].appended },
		};

		assert_int_equal(cli_signer_conclude(NULL, &s), 0);
		if (s.conclusion != cases[i].want ||
		    (cases[i].sub ? !s.sub_indication || !streq(s.sub_indication, cases[i].sub) :
				    s.sub_indication != NULL))
			fail_msg("%s: %s (%s), expected %s (%s)", cases[i].name,
				cli_conclusion_name(s.conclusion),
				s.sub_indication ? s.sub_indication : "-",
				cli_conclusion_name(cases[i].want), cases[i].sub ? cases[i].sub : "-");
		assert_true((s.reason == NULL) == (s.conclusion == CLI_VALID));
		cli_signer_report_release(&s);
	}
}

static void
test_verify_attached(void **state)
{
	static const char pdf[] = "%PDF-1.7\n% an embedded document, not a PDF to read\n";
	struct cli_verify_report *rep;

	/* the content inside the signature; a PDF's header near the start is not a PDF */
	cms_write("attached.p7s", pki.cert, pki.key, pdf, 0, NULL, SIG_ATTACHED);
	rep = verify("attached.p7s", NULL);
	assert_false(rep->is_pdf);
	assert_null(rep->content);
	expect_verdict(rep, CLI_VALID, NULL);
	cli_verify_report_free(rep);
}

static void
test_verify_not_cms(void **state)
{
	struct cli_verify_report *rep = verify("surat.pdf", "surat.pdf");

	assert_non_null(rep->error);
	assert_int_equal(rep->n_signers, 0);
	assert_int_equal(rep->conclusion, CLI_INVALID);
	cli_verify_report_free(rep);
}

static void
test_verify_file_errors(void **state)
{
	const char *none[] = { NULL };
	const char *bad_ca[] = { path_of("surat.pdf"), NULL };
	const char *bad_crl[] = { path_of("ca.pem"), NULL };
	struct cli_verify_opts o = { .cas = none, .crls = none };
	struct cli_verify_report *rep = NULL;
	char *error = NULL;
	uint8_t *der;
	size_t n;

	cms_write("old.p7s", pki.old, pki.old_key, doc, 0, NULL, 0);
	cms_write("surat.pdf.p7s", pki.cert, pki.key, doc, 0, NULL, 0);
	/* The content derived from the name ("old") does not exist. */
	o.sigfile = path_of("old.p7s");
	assert_int_equal(cli_verify_run(&o, &rep, &error), -ENOENT);
	assert_null(rep);
	assert_non_null(strstr(error, "/old'"));
	free(error);
	error = NULL;

	/* No .p7s suffix and no CONTENT: the caller must name it. */
	assert_int_equal(cli_file_read_all(path_of("surat.pdf.p7s"), CLI_SIGFILE_MAX, &der, &n), 0);
	file_put("x.sig", der, n);
	free(der);
	o.sigfile = path_of("x.sig");
	assert_int_equal(cli_verify_run(&o, &rep, &error), -EUCLEAN);
	assert_null(rep);
	assert_non_null(strstr(error, "CONTENT"));
	free(error);
	error = NULL;

	o.sigfile = path_of("missing.p7s");
	assert_int_equal(cli_verify_run(&o, &rep, &error), -ENOENT);
	assert_non_null(strstr(error, "missing.p7s"));
	free(error);
	error = NULL;

	o.sigfile = path_of("surat.pdf.p7s");
	o.cas = bad_ca;
	assert_int_equal(cli_verify_run(&o, &rep, &error), -EINVAL);
	assert_non_null(strstr(error, "no PEM certificate"));
	free(error);
	error = NULL;

	o.cas = none;
	o.crls = bad_crl;
	assert_int_equal(cli_verify_run(&o, &rep, &error), -EINVAL);
	assert_non_null(strstr(error, "--crl"));
	assert_non_null(strstr(error, "not a CRL"));
	free(error);
	error = NULL;

	/* --crl-dir must exist; the default CRL directory need not */
	o.crls = none;
	o.crl_dir = path_of("no-such-dir");
	o.crl_dir_given = 1;
	assert_int_equal(cli_verify_run(&o, &rep, &error), -ENOENT);
	assert_non_null(strstr(error, "no-such-dir"));
	free(error);
	error = NULL;
	o.crl_dir_given = 0;
	assert_int_equal(cli_verify_run(&o, &rep, &error), 0);
	cli_verify_report_free(rep);
}

static void
test_cert_resolve(void **state)
{
	const char *a = "3b1f0000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	const char *b = "3b1f0000bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
	const char *c = "77770000cccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
	json_object *list = json_object_new_array(), *found = NULL;
	const char *ids[] = { a, b, c, c }; /* c twice: one certificate on two tokens */
	size_t i;

	for (i = 0; i < 4; i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "id", json_object_new_string(ids[i]));
		json_object_array_add(list, e);
	}
	assert_int_equal(cli_cert_resolve(list, a, &found), 0);
	assert_ptr_equal(found, json_object_array_get_idx(list, 0));
	assert_int_equal(cli_cert_resolve(list, "3B1F0000B", &found), 0);
	assert_ptr_equal(found, json_object_array_get_idx(list, 1));
	assert_int_equal(cli_cert_resolve(list, "77770000", &found), 0);
	assert_ptr_equal(found, json_object_array_get_idx(list, 2));
	assert_int_equal(cli_cert_resolve(list, "3b1f0000", &found), -ENOTUNIQ);
	assert_int_equal(cli_cert_resolve(list, "3b1f000", &found), -EINVAL);
	assert_int_equal(cli_cert_resolve(list, "3b1f00zz", &found), -EINVAL);
	assert_int_equal(cli_cert_resolve(list, "12345678", &found), -ENOENT);
	json_object_put(list);
}

static void
check_sanitize(const char *in, const char *want)
{
	char *s = cli_sanitize(in);

	assert_string_equal(s, want);
	free(s);
}

static void
test_sanitize(void **state)
{
	check_sanitize("Budi Santoso", "Budi Santoso");
	check_sanitize("Kepala Dinas \xc3\xa9t\xc3\xa9", "Kepala Dinas \xc3\xa9t\xc3\xa9");
	check_sanitize("a\x1b[2Jb\r\n", "a?[2Jb??");
	check_sanitize("x\xe2\x80\xae" "evil", "x?evil");    /* RIGHT-TO-LEFT OVERRIDE */
	check_sanitize("x\xc2\x9b" "1m", "x?1m");           /* C1 CSI */
	check_sanitize("bad \xff\xfe utf8", "bad ?? utf8"); /* invalid bytes */
	check_sanitize("over\xc0\xaflong", "over??long");   /* overlong "/" */
	assert_int_equal(cli_text_width("\xc3\xa9t\xc3\xa9"), 3);
	assert_true(cli_text_is_displayable("surat \xc3\xa9.pdf", 10));
	assert_false(cli_text_is_displayable("a\tb", 3));
	assert_false(cli_text_is_displayable("a\xe2\x81\xa6" "b", 5)); /* LEFT-TO-RIGHT ISOLATE */
	assert_false(cli_text_is_displayable("a\xc3", 2));
}

static void
test_json_escape(void **state)
{
	static const char pin[] = "a\"b\\c\x01\x7f\xc3\xa9/";
	static const char want[] = "\"a\\\"b\\\\c\\u0001\\u007f\xc3\xa9/\"";
	struct pf_buf b;
	json_object *o;

	pf_buf_init(&b);
	b.wipe = 1;
	cli_json_escape(&b, pin, strlen(pin));
	assert_int_equal(pf_buf_status(&b), 0);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
	/* and json-c reads the original back */
	pf_buf_put(&b, "", 1);
	o = json_tokener_parse((const char *)b.data);
	assert_non_null(o);
	assert_string_equal(json_object_get_string(o), pin);
	json_object_put(o);
	pf_buf_release(&b);
}

static void
check_pin_file(const char *content, size_t n, int want_r, const char *want_pin)
{
	struct pf_secret *pin = NULL;
	int r;

	file_put("pin", content, n);
	r = cli_pin_read_file(path_of("pin"), &pin);
	assert_int_equal(r, want_r);
	if (want_pin) {
		assert_string_equal(pin->data, want_pin);
		assert_int_equal(pin->len, strlen(want_pin));
	}
	pf_secret_free(pin);
}

static void
test_pin_file(void **state)
{
	char big[PF_SECRET_MAX + 10];

	check_pin_file("1234\n", 5, 0, "1234");
	check_pin_file("1234\r\n", 6, 0, "1234");
	check_pin_file("1234", 4, 0, "1234");
	check_pin_file("12 34\nsecond\n", 13, 0, "12 34");
	check_pin_file("\n1234\n", 6, -ENODATA, NULL);
	check_pin_file("", 0, -ENODATA, NULL);
	check_pin_file("12\0" "34\n", 6, -EBADMSG, NULL);
	memset(big, '7', sizeof(big));
	check_pin_file(big, PF_SECRET_MAX, 0, NULL);
	check_pin_file(big, PF_SECRET_MAX + 1, -E2BIG, NULL);
	big[PF_SECRET_MAX + 1] = '\n';
	check_pin_file(big, PF_SECRET_MAX + 2, -E2BIG, NULL);
	assert_int_equal(cli_pin_read_file(path_of("no-pin"), &(struct pf_secret *){ NULL }),
		-ENOENT);
}

static void
test_file_write_and_digest(void **state)
{
	unsigned char md[EVP_MAX_MD_SIZE], want[EVP_MAX_MD_SIZE];
	unsigned mdlen, wantlen;
	size_t n = 3 * CLI_HASH_CHUNK + 17, i;
	uint8_t *data = malloc(n), *back;
	struct stat st;

	assert_non_null(data);
	for (i = 0; i < n; i++)
		data[i] = (uint8_t)(i * 31 + 7);
	assert_int_equal(cli_file_write_atomic(path_of("out.bin"), data, n, 0), 0);
	assert_int_equal(stat(path_of("out.bin"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(st.st_size, n);
	/* never over an existing file without overwrite, and nothing left behind */
	assert_int_equal(cli_file_write_atomic(path_of("out.bin"), "x", 1, 0), -EEXIST);
	assert_int_equal(cli_file_write_atomic(path_of("out.bin"), data, n - 1, 1), 0);
	assert_int_equal(stat(path_of("out.bin"), &st), 0);
	assert_int_equal(st.st_size, n - 1);
	assert_int_equal(cli_file_read_all(path_of("out.bin"), n, &back, &i), 0);
	assert_int_equal(i, n - 1);
	assert_memory_equal(back, data, n - 1);
	free(back);
	assert_int_equal(cli_file_read_all(path_of("out.bin"), n - 2, &back, &i), -EFBIG);
	assert_int_equal(cli_file_write_atomic(path_of("no-dir/out.bin"), "x", 1, 0), -ENOENT);

	assert_int_equal(cli_file_digest(path_of("out.bin"), EVP_sha384(), md, &mdlen), 0);
	assert_int_equal(EVP_Digest(data, n - 1, want, &wantlen, EVP_sha384(), NULL), 1);
	assert_int_equal(mdlen, wantlen);
	assert_memory_equal(md, want, mdlen);
	assert_int_equal(cli_file_digest(tmpdir, EVP_sha256(), md, &mdlen), -EISDIR);
	free(data);
}

static void
test_pin_in_request(void **state)
{
	json_object *status = json_tokener_parse("{\"pin_parameter_types\": [7, \"system\"]}");
	json_object *none = json_tokener_parse("{\"pin_parameter_types\": []}");
	json_object *old = json_tokener_parse("{\"pin_parameter\": true}");
	json_object *sys = json_tokener_parse("{\"type\": \"system\"}");
	json_object *ind = json_tokener_parse("{\"type\": \"individual\"}");
	json_object *jab = json_tokener_parse("{\"type\": \"jabatan\"}");
	json_object *untyped = json_tokener_parse("{\"type\": null}");
	const char *type = "x";

	/* R2: a PIN travels only for the types the agent lists */
	assert_int_equal(cli_pin_in_request(status, sys, &type), 1);
	assert_string_equal(type, "system");
	assert_int_equal(cli_pin_in_request(status, ind, &type), 0);
	assert_string_equal(type, "individual");
	assert_int_equal(cli_pin_in_request(status, jab, &type), 0);
	assert_int_equal(cli_pin_in_request(status, untyped, &type), 0);
	assert_null(type);
	/* an agent listing none, or not saying, takes no PIN from clients */
	assert_int_equal(cli_pin_in_request(none, sys, &type), 0);
	assert_int_equal(cli_pin_in_request(old, sys, &type), 0);
	assert_int_equal(cli_pin_in_request(NULL, sys, &type), 0);
	json_object_put(status);
	json_object_put(none);
	json_object_put(old);
	json_object_put(sys);
	json_object_put(ind);
	json_object_put(jab);
	json_object_put(untyped);
}

static void
test_reason_is_policy(void **state)
{
	static const char *const policy[] = { "pin-parameter-refused", "unregistered",
		"not-owner", "no-session", "remote-session", "inactive-session", "batch-too-large",
		"usage-not-allowed", "usage-not-in-certificate", "not-yet-valid", "expired",
		"non-compliant", "untrusted", "revoked", "revocation-unknown",
		"dialog-location-refused", "policy-invalid" };
	static const char *const other[] = { "pin-incorrect", "pin-cancelled",
		"pin-dialog-failed", "invalid-params", "token-error", "key-extractable",
		"peer-refused", "", "revoked-or-not" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(policy); i++)
		assert_true(cli_reason_is_policy(policy[i]));
	for (i = 0; i < ARRAY_SIZE(other); i++)
		assert_false(cli_reason_is_policy(other[i]));
	assert_false(cli_reason_is_policy(NULL));
}

static void
test_dialog_location(void **state)
{
	char longer[CLI_LOCATION_MAX + 2];
	char *tty = NULL;
	json_object *p = json_object_new_object();
	int r;

	setenv("DISPLAY", ":3", 1);
	setenv("XAUTHORITY", "/home/budi/.Xauthority", 1);
	setenv("WAYLAND_DISPLAY", "", 1); /* empty: not sent */
	setenv("TERM", "xterm-256color", 1);
	assert_int_equal(cli_dialog_location_add(p), 0);
	assert_string_equal(cli_json_str(p, "display"), ":3");
	assert_string_equal(cli_json_str(p, "xauthority"), "/home/budi/.Xauthority");
	assert_false(json_object_object_get_ex(p, "wayland_display", NULL));
	/* tty and tty_type only with a terminal, and then its real path, not /dev/tty */
	r = cli_dialog_tty(&tty);
	if (r == 0) {
		assert_string_equal(cli_json_str(p, "tty"), tty);
		assert_int_equal(strncmp(tty, "/dev/", 5), 0);
		assert_string_not_equal(tty, "/dev/tty");
		assert_string_equal(cli_json_str(p, "tty_type"), "xterm-256color");
	} else {
		assert_int_equal(r, -ENOTTY);
		assert_false(json_object_object_get_ex(p, "tty", NULL));
		assert_false(json_object_object_get_ex(p, "tty_type", NULL));
	}
	free(tty);
	json_object_put(p);

	/* longer than a sign parameter may be: left out (with a warning) */
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = 0;
	setenv("XAUTHORITY", longer, 1);
	setenv("WAYLAND_DISPLAY", "wayland-0", 1);
	unsetenv("DISPLAY");
	p = json_object_new_object();
	assert_int_equal(cli_dialog_location_add(p), 0);
	assert_false(json_object_object_get_ex(p, "xauthority", NULL));
	assert_false(json_object_object_get_ex(p, "display", NULL));
	assert_string_equal(cli_json_str(p, "wayland_display"), "wayland-0");
	json_object_put(p);
	unsetenv("XAUTHORITY");
	unsetenv("WAYLAND_DISPLAY");
}

#define T(name, fn) { name, fn, NULL, NULL, NULL }

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T("/cli/verify/valid", test_verify_valid),
		T("/cli/verify/text", test_verify_text),
		T("/cli/verify/changed-content", test_verify_changed_content),
		T("/cli/verify/anchors", test_verify_anchors),
		T("/cli/verify/revocation-unknown", test_verify_revocation_unknown),
		T("/cli/verify/expired", test_verify_expired),
		T("/cli/verify/revoked", test_verify_revoked),
		T("/cli/verify/timestamp", test_verify_timestamp),
		T("/cli/verify/chain-signature", test_verify_chain_signature),
		T("/cli/verify/missing-signer-cert", test_verify_missing_signer_cert),
		T("/cli/verify/two-signers", test_verify_two_signers),
		T("/cli/verify/registry", test_verify_registry),
		T("/cli/verify/nip", test_verify_nip),
		T("/cli/verify/conclusion-rules", test_verify_conclusion_rules),
		T("/cli/verify/attached", test_verify_attached),
		T("/cli/verify/not-cms", test_verify_not_cms),
		T("/cli/verify/file-errors", test_verify_file_errors),
		T("/cli/cert/resolve", test_cert_resolve),
		T("/cli/text/sanitize", test_sanitize),
		T("/cli/rpc/json-escape", test_json_escape),
		T("/cli/pin/file", test_pin_file),
		T("/cli/file/write-and-digest", test_file_write_and_digest),
		T("/cli/sign/pin-in-request", test_pin_in_request),
		T("/cli/sign/dialog-location", test_dialog_location),
		T("/cli/rpc/reason-is-policy", test_reason_is_policy),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
