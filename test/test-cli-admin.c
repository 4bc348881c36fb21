/*
 * The pure pieces of provisioning (cli/cli-admin-check.c, cli/cli-owner-csr.c and the registry
 * writer): revocation reasons and revoked.list lines (R8, R9), application ids, activation
 * codes (R4), token labels and key ids, the certificate-against-registration check of
 * `paraf admin import-cert` (R5, R6, R7, R17, R18), the status `paraf admin list` shows, the
 * PKCS#10 request built around a signer that stands in for the token (R3, R16), the SO PIN
 * file's checks (R2) and registry entries read back as parafd reads them. Certificates are
 * made here with OpenSSL and software keys.
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

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli-admin.h"

#define DAY (24 * 3600L)

static char tmpdir[64];
static time_t now;

static int
setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/paraf-test-admin-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	now = time(NULL);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* --- revocation ------------------------------------------------------------------------- */

static void
test_revoke_reasons(void **state)
{
	for (size_t i = 0; cli_revoke_reasons[i]; i++)
		assert_true(cli_revoke_reason_valid(cli_revoke_reasons[i]));
	assert_false(cli_revoke_reason_valid("bored"));
	assert_false(cli_revoke_reason_valid(""));
	assert_false(cli_revoke_reason_valid(NULL));
	/* R9: the incident reasons pol_decide() answers under R9 */
	assert_true(cli_revoke_reason_is_incident("key-lost"));
	assert_true(cli_revoke_reason_is_incident("key-compromise"));
	assert_false(cli_revoke_reason_is_incident("transferred"));
	assert_string_equal(cli_incident_reason("lost"), "key-lost");
	assert_string_equal(cli_incident_reason("damaged"), "key-damaged");
	assert_string_equal(cli_incident_reason("inaccessible"), "key-lost");
	assert_string_equal(cli_incident_reason("suspected-misuse"), "key-compromise");
	assert_null(cli_incident_reason("stolen-by-aliens"));
	assert_null(cli_incident_reason(NULL));
}

static void
test_revoked_line(void **state)
{
	const char *id = "3b1f0c2a00000000000000000000000000000000000000000000000000000001";
	struct pol_policy p;
	char *line = NULL, err[256];

	assert_int_equal(cli_revoked_line(id, 1800000000, "transferred", "SK mutasi 800/77/2027",
				 &line), 0);
	assert_string_equal(line, "3b1f0c2a00000000000000000000000000000000000000000000000000000001 "
				  "2027-01-15T08:00:00Z transferred SK mutasi 800/77/2027\n");
	/* R8: what paraf appends, parafd reads back as a revocation */
	pol_policy_init(&p);
	assert_int_equal(pol_revoked_parse(&p, "revoked.list", line, err, sizeof(err)), 0);
	assert_non_null(pol_revoked_find(&p, id));
	assert_string_equal(pol_revoked_find(&p, id)->reason, "transferred");
	pol_policy_release(&p);
	free(line);
	line = NULL;
	assert_int_equal(cli_revoked_line(id, 1800000000, "retired", NULL, &line), 0);
	assert_string_equal(line + 65, "2027-01-15T08:00:00Z retired\n");
	free(line);
	/* a short id, upper case, a bad reason, a note that would start a new line */
	assert_int_equal(cli_revoked_line("3b1f", 0, "retired", NULL, &line), -EINVAL);
	assert_int_equal(cli_revoked_line("3B1F0C2A00000000000000000000000000000000000000000000000000000001",
				 0, "retired", NULL, &line), -EINVAL);
	assert_int_equal(cli_revoked_line(id, 0, "Retired Early", NULL, &line), -EINVAL);
	assert_int_equal(cli_revoked_line(id, 0, "retired", "a\n" "b 2027 x", &line), -EINVAL);
	{
		char longnote[CLI_PROV_NOTE_MAX + 2];

		memset(longnote, 'x', sizeof(longnote) - 1);
		longnote[sizeof(longnote) - 1] = 0;
		assert_int_equal(cli_revoked_line(id, 0, "retired", longnote, &line), -EINVAL);
	}
	assert_true(cli_text_line_ok("SK 800/77", 200));
	assert_false(cli_text_line_ok("a\tb", 200));
	assert_false(cli_text_line_ok("\xff", 200));
	assert_false(cli_text_line_ok("", 200));
}

/* --- ids and codes ---------------------------------------------------------------------- */

static void
test_application_id(void **state)
{
	const uint8_t rnd[2] = { 0x3f, 0xa2 };
	char buf[CLI_PROV_APP_ID_MAX + 1];

	assert_int_equal(cli_application_id("budi", 1803456000, rnd, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "budi-20270224-3fa2");
	assert_true(cli_application_id_valid(buf));
	assert_int_equal(cli_application_id("../etc", 0, rnd, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(cli_application_id("Budi", 0, rnd, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(cli_application_id("budi", 0, rnd, buf, 8), -ENAMETOOLONG);
	assert_true(cli_account_name_valid("siti.rahayu"));
	assert_true(cli_account_name_valid("_svc-surat"));
	assert_true(cli_account_name_valid("host$"));
	assert_false(cli_account_name_valid("a/b"));
	assert_false(cli_account_name_valid(".hidden"));
	assert_false(cli_account_name_valid("-x"));
	assert_false(cli_account_name_valid(""));
	assert_false(cli_application_id_valid("../x"));
	assert_false(cli_application_id_valid(".x"));
	assert_false(cli_application_id_valid("a b"));
	assert_false(cli_application_id_valid(""));
}

static void
test_activation_code(void **state)
{
	char code[CLI_PROV_CODE_MAX + 1], shown[2 * CLI_PROV_CODE_MAX + 2];
	struct pf_secret *typed, *norm;
	int counts[10] = { 0 };

	/* within the token's PIN limits; never shorter than 8 digits */
	assert_int_equal(cli_activation_code_len(0, 0), 12);
	assert_int_equal(cli_activation_code_len(4, 255), 12);
	assert_int_equal(cli_activation_code_len(4, 10), 10);
	assert_int_equal(cli_activation_code_len(16, 64), 16);
	assert_int_equal(cli_activation_code_len(4, 6), 0);
	assert_int_equal(cli_activation_code_len(40, 64), 0);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(cli_activation_code_make(12, code), 0);
		assert_int_equal(strlen(code), 12);
		for (int k = 0; k < 12; k++) {
			assert_true(code[k] >= '0' && code[k] <= '9');
			counts[code[k] - '0']++;
		}
	}
	for (int d = 0; d < 10; d++) /* 2400 digits: every one appears */
		assert_true(counts[d] > 100);
	assert_int_equal(cli_activation_code_make(0, code), -EINVAL);
	cli_activation_code_format("123456789012", shown, sizeof(shown));
	assert_string_equal(shown, "1234-5678-9012");
	cli_activation_code_format("1234567890", shown, sizeof(shown));
	assert_string_equal(shown, "1234-5678-90");
	/* the owner may copy the grouping, or not */
	assert_int_equal(pf_secret_new("1234-5678 9012", 14, &typed), 0);
	assert_int_equal(cli_activation_code_normalize(typed, &norm), 0);
	assert_string_equal(norm->data, "123456789012");
	pf_secret_free(typed);
	pf_secret_free(norm);
	assert_int_equal(pf_secret_new("1234-56a8", 9, &typed), 0);
	assert_int_equal(cli_activation_code_normalize(typed, &norm), -EINVAL);
	pf_secret_free(typed);
	assert_int_equal(pf_secret_new("- -", 3, &typed), 0);
	assert_int_equal(cli_activation_code_normalize(typed, &norm), -EINVAL);
	pf_secret_free(typed);
	/* R2, R4: a passphrase the operator knows, however it is spaced, is the code */
#define HOLDS(p) cli_passphrase_holds_code(p, strlen(p), "123456789012")
	assert_true(HOLDS("123456789012"));
	assert_true(HOLDS("1234-5678-9012"));
	assert_true(HOLDS("1234 5678 9012"));
	assert_true(HOLDS("kode 1234.5678.9012!"));
	assert_false(HOLDS("Kopi tubruk di Kupang, pagi!"));
	assert_false(HOLDS("1234-5678-901"));
	assert_false(HOLDS("9012-5678-1234"));
#undef HOLDS
}

static void
test_token_label(void **state)
{
	char buf[TOK_TOKEN_LABEL_MAX + 1];

	cli_token_label("Budi Santoso", buf, sizeof(buf));
	assert_string_equal(buf, "PARAF Budi Santoso");
	cli_token_label("Raden Ayu Sekar Kedhaton Wulandari Putri", buf, sizeof(buf));
	assert_int_equal(strlen(buf), 32);
	assert_string_equal(buf, "PARAF Raden Ayu Sekar Kedhaton W");
	/* "é" (2 bytes) across byte 32: cut before it, never in its middle */
	cli_token_label("Abcdefghijklmnopqrstuvwxy\xc3\xa9z", buf, sizeof(buf));
	assert_string_equal(buf, "PARAF Abcdefghijklmnopqrstuvwxy");
	/* no trailing space where a word ended at the cut */
	cli_token_label("Abcdefghijklmnopqrstuvwxy Z", buf, sizeof(buf));
	assert_string_equal(buf, "PARAF Abcdefghijklmnopqrstuvwxy");
}

static void
test_key_id(void **state)
{
	uint8_t a[CLI_PROV_KEY_ID_LEN], b[CLI_PROV_KEY_ID_LEN], want[32];
	const char *s = "paraf-key:budi-20270219-3fa2";

	cli_key_id("budi-20270219-3fa2", a);
	assert_int_equal(EVP_Digest(s, strlen(s), want, NULL, EVP_sha256(), NULL), 1);
	assert_memory_equal(a, want, CLI_PROV_KEY_ID_LEN);
	cli_key_id("budi-20270219-3fa3", b);
	assert_memory_not_equal(a, b, CLI_PROV_KEY_ID_LEN);
	/* the recorded key wins; else the derived one */
	{
		struct pol_owner o = {};
		uint8_t out[TOK_CKA_ID_MAX];
		size_t n = 0;

		o.application = (char *)"budi-20270219-3fa2";
		assert_int_equal(cli_key_id_of(&o, out, sizeof(out), &n), 0);
		assert_int_equal(n, CLI_PROV_KEY_ID_LEN);
		assert_memory_equal(out, a, n);
		o.key_id = (char *)"00ff10";
		assert_int_equal(cli_key_id_of(&o, out, sizeof(out), &n), 0);
		assert_int_equal(n, 3);
		assert_memory_equal(out, "\x00\xff\x10", 3);
		assert_int_equal(cli_key_id_of(&o, out, 2, &n), -EINVAL);
		o.key_id = NULL;
		o.application = NULL;
		assert_int_equal(cli_key_id_of(&o, out, sizeof(out), &n), -EINVAL);
	}
}

/* --- certificates ----------------------------------------------------------------------- */

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

struct spec {
	const char *cn, *serial, *email, *san, *ku, *eku, *policy, *ou, *title;
	long from, to;
	int ca;
};

static X509 *
cert_make(const struct spec *s, EVP_PKEY *key, EVP_PKEY *issuer_key)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
	X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"ID", -1, -1, 0);
	if (s->cn)
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)s->cn,
			-1, -1, 0);
	if (s->serial)
		X509_NAME_add_entry_by_txt(name, "serialNumber", MBSTRING_ASC,
			(const unsigned char *)s->serial, -1, -1, 0);
	if (s->ou)
		X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8, (const unsigned char *)s->ou,
			-1, -1, 0);
	if (s->title)
		X509_NAME_add_entry_by_txt(name, "title", MBSTRING_UTF8,
			(const unsigned char *)s->title, -1, -1, 0);
	if (s->email)
		X509_NAME_add_entry_by_txt(name, "emailAddress", MBSTRING_ASC,
			(const unsigned char *)s->email, -1, -1, 0);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, name), 1);
	assert_non_null(X509_time_adj(X509_getm_notBefore(x), s->from, &now));
	assert_non_null(X509_time_adj(X509_getm_notAfter(x), s->to, &now));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	ext_add(x, NULL, NID_basic_constraints, s->ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	if (s->ku)
		ext_add(x, NULL, NID_key_usage, s->ku);
	if (s->eku)
		ext_add(x, NULL, NID_ext_key_usage, s->eku);
	if (s->san)
		ext_add(x, NULL, NID_subject_alt_name, s->san);
	if (s->policy) {
		/* certificatePolicies wants a config database for the text form: built here */
		CERTIFICATEPOLICIES *cp = sk_POLICYINFO_new_null();
		POLICYINFO *pi = POLICYINFO_new();

		assert_non_null(cp);
		assert_non_null(pi);
		ASN1_OBJECT_free(pi->policyid);
		pi->policyid = OBJ_txt2obj(s->policy, 1);
		assert_non_null(pi->policyid);
		assert_true(sk_POLICYINFO_push(cp, pi) > 0);
		assert_int_equal(X509_add1_ext_i2d(x, NID_certificate_policies, cp, 0, 0), 1);
		CERTIFICATEPOLICIES_free(cp);
	}
	assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	X509_NAME_free(name);
	return x;
}

static struct pol_owner
owner_budi(enum pol_type type)
{
	struct pol_owner o = {};

	o.application = (char *)"budi-20270219-3fa2";
	o.account = (char *)"budi";
	o.type = type;
	o.name = (char *)"Budi Santoso";
	o.nip = (char *)"197803152005011002";
	o.nik = (char *)"3201011503780001";
	o.email = (char *)"budi@contoh.go.id";
	o.unit = (char *)"Dinas Kominfo";
	o.position = (char *)"Kepala Bidang Aplikasi";
	o.decree = (char *)"800/123/2026";
	return o;
}

static const struct spec good = {
	.cn = "Budi Santoso",
	.serial = "NIP197803152005011002",
	.san = "email:budi@contoh.go.id",
	.ku = "critical,digitalSignature,nonRepudiation",
	.from = -60,
	.to = 730 * DAY,
};

/* The field cli_cert_match_registration names for a certificate made from s, or NULL. */
static const char *
match(const struct pol_policy *p, const struct pol_owner *o, const struct spec *s)
{
	static char msg[512];
	EVP_PKEY *k = key_new();
	X509 *x = cert_make(s, k, NULL);
	const char *field = "unset";
	int r;

	r = cli_cert_match_registration(p, o, x, now, &field, msg, sizeof(msg));
	X509_free(x);
	EVP_PKEY_free(k);
	if (r == 0) {
		assert_null(field);
		return NULL;
	}
	assert_int_equal(r, -EINVAL);
	assert_non_null(field);
	assert_true(strlen(msg) > 0);
	return field;
}

static void
test_cert_match(void **state)
{
	struct pol_policy p;
	struct pol_owner o = owner_budi(POL_TYPE_INDIVIDUAL);
	struct spec s;
	char err[256];

	pol_policy_init(&p);
	assert_null(match(&p, &o, &good));
	/* R17: the subject is the registration's; CAs write names in capitals */
	s = good;
	s.cn = "BUDI  SANTOSO";
	assert_null(match(&p, &o, &s));
	s.cn = "Siti Rahayu";
	assert_string_equal(match(&p, &o, &s), "name");
	s = good;
	s.cn = NULL;
	assert_string_equal(match(&p, &o, &s), "name");
	s = good;
	s.serial = "NIP199901012020011001";
	assert_string_equal(match(&p, &o, &s), "nip");
	s.serial = NULL;
	assert_string_equal(match(&p, &o, &s), "nip");
	s = good;
	s.serial = "197803152005011002"; /* the bare NIP is held too */
	assert_null(match(&p, &o, &s));
	/* the unit (R17) and the position (R18), where the certificate names them */
	s = good;
	s.ou = "DINAS KOMINFO";
	assert_null(match(&p, &o, &s));
	s.ou = "Badan Pendapatan Daerah";
	assert_string_equal(match(&p, &o, &s), "unit");
	s = good;
	s.title = "Kepala Bidang Aplikasi";
	assert_null(match(&p, &o, &s));
	s.title = "Sekretaris Daerah";
	assert_string_equal(match(&p, &o, &s), "position");
	s = good;
	s.email = "budi@contoh.go.id";
	assert_null(match(&p, &o, &s));
	s.email = "other@contoh.go.id";
	assert_string_equal(match(&p, &o, &s), "email");
	s = good;
	s.san = "email:other@contoh.go.id";
	assert_string_equal(match(&p, &o, &s), "email");
	s.san = NULL; /* no e-mail in the certificate at all: fine */
	assert_null(match(&p, &o, &s));
	/* R6: at least one usage of the type that the extensions allow */
	s = good;
	s.ku = NULL;
	assert_string_equal(match(&p, &o, &s), "usage");
	s.ku = "critical,keyCertSign";
	assert_string_equal(match(&p, &o, &s), "usage");
	s = good;
	s.eku = "serverAuth";
	assert_string_equal(match(&p, &o, &s), "usage");
	s.eku = "clientAuth"; /* tls-client is an individual's usage */
	assert_null(match(&p, &o, &s));
	s = good;
	s.ca = 1;
	s.ku = "critical,digitalSignature,keyCertSign";
	assert_string_equal(match(&p, &o, &s), "usage");
	/* R7: two years, and not expired */
	s = good;
	s.to = 900 * DAY;
	assert_string_equal(match(&p, &o, &s), "validity");
	p.allow_long_validity = true;
	assert_null(match(&p, &o, &s));
	p.allow_long_validity = false;
	s = good;
	s.from = -800 * DAY;
	s.to = -70 * DAY;
	assert_string_equal(match(&p, &o, &s), "validity");
	/* R5: with [types], the certificate's OID says its type, and must say the registered one */
	assert_int_equal(pol_policy_parse(&p, "policy.conf",
				 "[types]\nindividual = 1.3.6.1.4.1.99999.1.1\n"
				 "jabatan = 1.3.6.1.4.1.99999.1.2\n", err, sizeof(err)), 0);
	assert_string_equal(match(&p, &o, &good), "type");
	s = good;
	s.policy = "1.3.6.1.4.1.99999.1.1";
	assert_null(match(&p, &o, &s));
	s.policy = "1.3.6.1.4.1.99999.1.2";
	assert_string_equal(match(&p, &o, &s), "type");
	o = owner_budi(POL_TYPE_JABATAN);
	assert_null(match(&p, &o, &s));
	o = owner_budi(POL_TYPE_SYSTEM); /* no [types] OID for system: none needed, none other */
	s.policy = NULL;
	assert_null(match(&p, &o, &s));
	pol_policy_release(&p);
}

static void
test_entry_status(void **state)
{
	const char *id = "3b1f0c2a00000000000000000000000000000000000000000000000000000001";
	struct pol_policy p;
	struct pol_owner o = owner_budi(POL_TYPE_INDIVIDUAL);
	struct cli_entry_status st;
	struct pol_cert_facts f = {};
	char err[256];

	pol_policy_init(&p);
	cli_entry_status(&p, &o, NULL, now, &st);
	assert_string_equal(st.status, "pending");
	assert_string_equal(st.reason, "the token is not initialised yet");
	o.token_serial = (char *)"6eb3ed4e4f2be4f7";
	cli_entry_status(&p, &o, NULL, now, &st);
	assert_string_equal(st.status, "pending");
	memcpy(o.cert_id, id, 65);
	cli_entry_status(&p, &o, NULL, now, &st);
	assert_string_equal(st.status, "active");
	assert_false(st.days_known);
	/* with a copy of the certificate: days, and what parafd would say */
	memcpy(f.id, id, 65);
	f.not_before = now - DAY;
	f.not_after = now + 400 * DAY + 60;
	f.has_key_usage = true;
	f.key_usage = KU_DIGITAL_SIGNATURE;
	f.trusted = true;
	assert_int_equal(pol_owner_parse(&p, "owners.d/budi.conf",
				 "[owner]\ncertificate = 3b1f0c2a00000000000000000000000000000000"
				 "000000000000000000000001\naccount = budi\ntype = individual\n"
				 "name = Budi Santoso\n", err, sizeof(err)), 0);
	cli_entry_status(&p, &o, &f, now, &st);
	assert_string_equal(st.status, "active");
	assert_true(st.days_known);
	assert_int_equal(st.days_left, 400);
	f.not_after = now + 10 * DAY + 60;
	cli_entry_status(&p, &o, &f, now, &st);
	assert_string_equal(st.status, "expiring");
	assert_int_equal(st.days_left, 10);
	f.not_after = now - 2 * DAY;
	cli_entry_status(&p, &o, &f, now, &st);
	assert_string_equal(st.status, "expired");
	/* R8: revoked wins; a renewal's predecessor is superseded */
	assert_int_equal(pol_revoked_parse(&p, "revoked.list",
				 "3b1f0c2a00000000000000000000000000000000000000000000000000000001 "
				 "2027-03-01T09:00:00Z superseded\n", err, sizeof(err)), 0);
	cli_entry_status(&p, &o, &f, now, &st);
	assert_string_equal(st.status, "superseded");
	assert_non_null(strstr(st.reason, "2027-03-01T09:00:00Z"));
	pol_policy_release(&p);
	pol_policy_init(&p);
	assert_int_equal(pol_revoked_parse(&p, "revoked.list",
				 "3b1f0c2a00000000000000000000000000000000000000000000000000000001 "
				 "2027-03-01T09:00:00Z key-lost\n", err, sizeof(err)), 0);
	cli_entry_status(&p, &o, NULL, now, &st);
	assert_string_equal(st.status, "revoked");
	pol_policy_release(&p);
}

/* --- the certificate request ------------------------------------------------------------ */

struct soft_signer {
	EVP_PKEY *key;
	int calls;
	int corrupt;
};

/* Stands in for the token: signs the digest it is given, never the data. */
static int
soft_sign(void *data, const uint8_t digest[32], uint8_t **ret_sig, size_t *ret_len)
{
	struct soft_signer *s = data;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(s->key, NULL);
	size_t n = 0;

	s->calls++;
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_sign_init(c), 1);
	if (EVP_PKEY_is_a(s->key, "RSA")) {
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
		assert_int_equal(EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()), 1);
	}
	assert_int_equal(EVP_PKEY_sign(c, NULL, &n, digest, 32), 1);
	*ret_sig = malloc(n);
	assert_int_equal(EVP_PKEY_sign(c, *ret_sig, &n, digest, 32), 1);
	EVP_PKEY_CTX_free(c);
	if (s->corrupt)
		(*ret_sig)[n - 1] ^= 1;
	*ret_len = n;
	return 0;
}

static X509_REQ *
csr_make(EVP_PKEY *key, const struct cli_csr_subject *subj, int corrupt, int *ret)
{
	struct soft_signer s = { key, 0, corrupt };
	unsigned char *spki = NULL;
	int spki_len = i2d_PUBKEY(key, &spki);
	const char *field = "unset";
	char *pem = NULL;
	size_t len = 0;
	X509_REQ *req = NULL;

	*ret = cli_csr_build(subj, spki, (size_t)spki_len, soft_sign, &s, &pem, &len, &field);
	if (*ret == 0) {
		BIO *b = BIO_new_mem_buf(pem, (int)len);

		assert_int_equal(s.calls, 1);
		assert_null(field);
		assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE REQUEST-----"));
		req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
		assert_non_null(req);
		BIO_free(b);
	} else if (*ret == -EINVAL)
		assert_string_equal(field, "name");
	free(pem);
	OPENSSL_free(spki);
	return req;
}

static void
subject_has(X509_REQ *req, int nid, const char *want)
{
	const X509_NAME *nm = X509_REQ_get_subject_name(req);
	int i = X509_NAME_get_index_by_NID(nm, nid, -1);
	unsigned char *u = NULL;

	if (!want) {
		assert_int_equal(i, -1);
		return;
	}
	assert_true(i >= 0);
	assert_true(ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, i))) >
		0);
	assert_string_equal((char *)u, want);
	OPENSSL_free(u);
}

static void
test_csr(void **state)
{
	struct cli_csr_subject subj = { .name = "Budi Santoso", .nip = "197803152005011002",
		.email = "budi@contoh.go.id", .unit = "Dinas Kominfo", .country = "ID" };
	EVP_PKEY *ec = key_new(), *rsa = EVP_RSA_gen(2048);
	STACK_OF(X509_EXTENSION) *exts;
	X509_REQ *req;
	char longname[80];
	int r;

	assert_non_null(rsa);
	/* EC: ecdsa-with-SHA256, the DER signature the helper's r || s becomes */
	req = csr_make(ec, &subj, 0, &r);
	assert_int_equal(r, 0);
	assert_int_equal(X509_REQ_verify(req, ec), 1);
	assert_int_equal(X509_REQ_get_signature_nid(req), NID_ecdsa_with_SHA256);
	subject_has(req, NID_commonName, "Budi Santoso");
	subject_has(req, NID_serialNumber, "NIP197803152005011002");
	subject_has(req, NID_pkcs9_emailAddress, "budi@contoh.go.id");
	subject_has(req, NID_organizationalUnitName, "Dinas Kominfo");
	subject_has(req, NID_countryName, "ID");
	subject_has(req, NID_title, NULL);
	subject_has(req, NID_organizationName, NULL);
	exts = X509_REQ_get_extensions(req);
	assert_non_null(exts);
	assert_int_equal(sk_X509_EXTENSION_num(exts), 2); /* keyUsage, subjectAltName */
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	/* RSA PKCS#1 v1.5, a jabatan's title */
	subj.position = "Kepala Bidang Aplikasi";
	subj.decrypt = true;
	req = csr_make(rsa, &subj, 0, &r);
	assert_int_equal(r, 0);
	assert_int_equal(X509_REQ_verify(req, rsa), 1);
	assert_int_equal(X509_REQ_get_signature_nid(req), NID_sha256WithRSAEncryption);
	subject_has(req, NID_title, "Kepala Bidang Aplikasi");
	X509_REQ_free(req);
	/* a signature that does not verify is never handed out */
	assert_null(csr_make(ec, &subj, 1, &r));
	assert_int_equal(r, -EBADE);
	/* X.520: a CN of more than 64 characters is named, not truncated */
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	subj.name = longname;
	assert_null(csr_make(ec, &subj, 0, &r));
	assert_int_equal(r, -EINVAL);
	/* not a public key */
	{
		const uint8_t junk[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
		char *pem = NULL;
		size_t len;
		const char *field;

		assert_int_equal(cli_csr_build(&subj, junk, sizeof(junk), soft_sign, NULL, &pem, &len,
					 &field), -EBADMSG);
	}
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
}

/* --- the SO PIN file and the registry ---------------------------------------------------- */

static void
test_secret_file(void **state)
{
	struct stat st = {};

	st.st_mode = S_IFREG | 0600;
	st.st_uid = 0;
	assert_int_equal(cli_prov_secret_file_ok(&st, 1000), 0);
	st.st_mode = S_IFREG | 0400;
	st.st_uid = 1000;
	assert_int_equal(cli_prov_secret_file_ok(&st, 1000), 0);
	st.st_uid = 1001; /* someone else's */
	assert_int_equal(cli_prov_secret_file_ok(&st, 1000), -EPERM);
	st.st_uid = 0;
	st.st_mode = S_IFREG | 0640; /* group-readable */
	assert_int_equal(cli_prov_secret_file_ok(&st, 1000), -EPERM);
	st.st_mode = S_IFREG | 0604;
	assert_int_equal(cli_prov_secret_file_ok(&st, 0), -EPERM);
	st.st_mode = S_IFIFO | 0600;
	assert_int_equal(cli_prov_secret_file_ok(&st, 0), -EINVAL);
}

static void
test_registry_write(void **state)
{
	struct pol_owner o = owner_budi(POL_TYPE_JABATAN);
	struct pol_policy p;
	char path[128], err[512], *text;
	FILE *f;
	long n;
	struct stat st;

	snprintf(path, sizeof(path), "%s/budi-20270219-3fa2.conf", tmpdir);
	o.token_serial = (char *)"6eb3ed4e4f2be4f7";
	o.key_id = (char *)"00112233445566778899aabbccddeeff";
	o.phone = (char *)"+62 812 0000 0000";
	assert_int_equal(cli_prov_registry_write(path, &o, false, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	/* a new registration never replaces one */
	assert_int_equal(cli_prov_registry_write(path, &o, false, err, sizeof(err)), -EEXIST);
	/* what parafd reads back */
	f = fopen(path, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	pol_policy_init(&p);
	assert_int_equal(pol_owner_parse(&p, path, text, err, sizeof(err)), 0);
	assert_int_equal(p.n_owners, 1);
	assert_string_equal(p.owners[0].application, "budi-20270219-3fa2");
	assert_string_equal(p.owners[0].key_id, "00112233445566778899aabbccddeeff");
	assert_string_equal(p.owners[0].token_serial, "6eb3ed4e4f2be4f7");
	assert_string_equal(p.owners[0].decree, "800/123/2026");
	assert_int_equal(p.owners[0].type, POL_TYPE_JABATAN);
	pol_policy_release(&p);
	free(text);
	/* an entry parafd would refuse never reaches the directory */
	o.position = NULL; /* R18 */
	assert_int_equal(cli_prov_registry_write(path, &o, true, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "position"));
	o = owner_budi(POL_TYPE_INDIVIDUAL);
	o.key_id = (char *)"ABC"; /* not lower-case hex bytes */
	assert_int_equal(cli_prov_registry_write(path, &o, true, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "key"));
}

#define T(name, fn) { name, fn, NULL, NULL, NULL }

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T("/admin/revoke/reasons", test_revoke_reasons),
		T("/admin/revoke/line", test_revoked_line),
		T("/admin/register/application-id", test_application_id),
		T("/admin/init-token/activation-code", test_activation_code),
		T("/admin/init-token/label", test_token_label),
		T("/owner/activate/key-id", test_key_id),
		T("/admin/import-cert/match", test_cert_match),
		T("/admin/list/status", test_entry_status),
		T("/owner/activate/csr", test_csr),
		T("/admin/init-token/so-pin-file", test_secret_file),
		T("/admin/register/write", test_registry_write),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
