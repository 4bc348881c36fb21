/*
 * The pure pieces of the paraf command line: the offline CMS verifier and its report (R11),
 * --cert resolution, terminal-safe text, the PIN file reader, atomic output and streamed
 * hashing, whether a PIN may travel for a certificate type (R2), where the PIN dialog must
 * appear (R1), and which refusals are the policy's. Signatures and certificates are made here
 * with OpenSSL, in a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli.h"
#include "pf-codec.h"

static char tmpdir[64];

static char *
path_of(const char *name)
{
	static char buf[8][256];
	static int k;

	k = (k + 1) % 8;
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

/* A certificate for key's public half, signed by issuer_key (self-signed when issuer is NULL). */
static X509 *
cert_new(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long days_from,
	long days_to, int ca)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	static long serial = 0x1000;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC,
				 (const unsigned char *)"ID", -1, -1, 0),
		1);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
				 (const unsigned char *)cn, -1, -1, 0),
		1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
	assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), days_from, 0, NULL));
	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), days_to, 0, NULL));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
		ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
	if (ca) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
		assert_non_null(ext);
		assert_int_equal(X509_add_ext(x, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
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

/* A detached DER CMS signature of content, by cert/key, into name. */
static void
cms_write(const char *name, X509 *cert, EVP_PKEY *key, const char *content, unsigned flags)
{
	BIO *in = BIO_new_mem_buf(content, (int)strlen(content));
	BIO *out = BIO_new_file(path_of(name), "wb");
	CMS_ContentInfo *cms;

	assert_non_null(in);
	assert_non_null(out);
	cms = CMS_sign(cert, key, NULL, in, CMS_DETACHED | CMS_BINARY | flags);
	assert_non_null(cms);
	assert_int_equal(i2d_CMS_bio(out, cms), 1);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	assert_int_equal(BIO_free(out), 1);
}

struct pki {
	EVP_PKEY *ca_key, *key, *old_key;
	X509 *ca, *cert, *old;
};

static struct pki pki;

static int
setup(void **state)
{
	static const char doc[] = "Surat Keputusan Nomor 1 Tahun 2026\n";

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-cli-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	pki.ca_key = key_new();
	pki.ca = cert_new("Test CA", pki.ca_key, NULL, NULL, -1, 3650, 1);
	pki.key = key_new();
	pki.cert = cert_new("Budi Santoso", pki.key, pki.ca, pki.ca_key, -1, 730, 0);
	pki.old_key = key_new();
	pki.old = cert_new("Pejabat Lama", pki.old_key, pki.ca, pki.ca_key, -800, -70, 0);
	cert_write_pem("ca.pem", pki.ca, NULL);
	file_put("surat.pdf", doc, strlen(doc));
	file_put("changed.pdf", "Surat Keputusan Nomor 2\n", 24);
	cms_write("surat.pdf.p7s", pki.cert, pki.key, doc, 0);
	cms_write("old.p7s", pki.old, pki.old_key, doc, 0);
	cms_write("nocerts.p7s", pki.cert, pki.key, doc, CMS_NOCERTS);
	mkdir(path_of("anchors"), 0755);
	mkdir(path_of("empty-anchors"), 0755);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	EVP_PKEY_free(pki.ca_key);
	EVP_PKEY_free(pki.key);
	EVP_PKEY_free(pki.old_key);
	X509_free(pki.ca);
	X509_free(pki.cert);
	X509_free(pki.old);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct cli_verify_report *
verify(const char *sig, const char *content, const char *ca, const char *anchors_dir)
{
	const char *cas[] = { ca ? path_of(ca) : NULL, NULL };
	struct cli_verify_opts o = {
		.sigfile = path_of(sig),
		.content = content ? path_of(content) : NULL,
		.cas = cas,
		.anchors_dir = anchors_dir ? path_of(anchors_dir) : NULL,
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

static void
test_verify_valid(void **state)
{
	struct cli_verify_report *rep = verify("surat.pdf.p7s", NULL, "ca.pem", NULL);
	const struct cli_signer_report *s;
	json_object *j, *sigs, *s0, *v;

	assert_string_equal(rep->content, path_of("surat.pdf"));
	assert_int_equal(rep->n_signers, 1);
	s = &rep->signers[0];
	assert_string_equal(s->signer, "CN=Budi Santoso,C=ID");
	assert_string_equal(s->signer_cn, "Budi Santoso");
	assert_string_equal(s->issuer, "CN=Test CA,C=ID");
	assert_non_null(s->serial);
	assert_non_null(s->signing_time);
	assert_int_equal(strlen(s->signing_time), 20);
	assert_true(s->integrity);
	assert_true(s->trusted);
	assert_null(s->trust_error);
	assert_null(s->reason);
	assert_int_equal(s->conclusion, CLI_VALID);
	assert_int_equal(rep->conclusion, CLI_VALID);

	assert_int_equal(cli_verify_report_json(rep, &j), 0);
	assert_true(json_object_object_get_ex(j, "signatures", &sigs));
	s0 = json_object_array_get_idx(sigs, 0);
	assert_true(json_object_object_get_ex(s0, "conclusion", &v));
	assert_string_equal(json_object_get_string(v), "VALID");
	assert_true(json_object_object_get_ex(s0, "reason", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(s0, "integrity", &v));
	assert_true(json_object_get_boolean(v));
	json_object_put(j);
	cli_verify_report_free(rep);
}

static void
test_verify_changed_content(void **state)
{
	struct cli_verify_report *rep = verify("surat.pdf.p7s", "changed.pdf", "ca.pem", NULL);

	assert_false(rep->signers[0].integrity);
	assert_true(rep->signers[0].trusted);
	assert_int_equal(rep->signers[0].conclusion, CLI_INVALID);
	assert_non_null(rep->signers[0].reason);
	assert_int_equal(rep->conclusion, CLI_INVALID);
	cli_verify_report_free(rep);
}

static void
test_verify_anchors(void **state)
{
	struct cli_verify_report *rep;

	/* No --ca and an empty anchors directory (or none at all): no trust anchors. */
	rep = verify("surat.pdf.p7s", NULL, NULL, "empty-anchors");
	assert_true(rep->signers[0].integrity);
	assert_false(rep->signers[0].trusted);
	assert_int_equal(rep->conclusion, CLI_INDETERMINATE);
	assert_string_equal(rep->signers[0].reason, "no trust anchors configured");
	cli_verify_report_free(rep);
	rep = verify("surat.pdf.p7s", NULL, NULL, "no-such-dir");
	assert_string_equal(rep->signers[0].reason, "no trust anchors configured");
	cli_verify_report_free(rep);

	/* The anchors directory: only *.pem files count. */
	cert_write_pem("anchors/ca.crt", pki.ca, NULL);
	rep = verify("surat.pdf.p7s", NULL, NULL, "anchors");
	assert_int_equal(rep->conclusion, CLI_INDETERMINATE);
	cli_verify_report_free(rep);
	cert_write_pem("anchors/ca.pem", pki.ca, NULL);
	rep = verify("surat.pdf.p7s", NULL, NULL, "anchors");
	assert_int_equal(rep->conclusion, CLI_VALID);
	cli_verify_report_free(rep);

	/* A --ca that does not hold the signer's issuer: OpenSSL's reason. */
	cert_write_pem("self.pem", pki.cert, NULL);
	rep = verify("surat.pdf.p7s", NULL, "self.pem", NULL);
	assert_int_equal(rep->conclusion, CLI_INDETERMINATE);
	assert_non_null(rep->signers[0].trust_error);
	assert_non_null(strstr(rep->signers[0].reason, rep->signers[0].trust_error));
	cli_verify_report_free(rep);
}

static void
test_verify_expired(void **state)
{
	struct cli_verify_report *rep = verify("old.p7s", "surat.pdf", "ca.pem", NULL);

	assert_true(rep->signers[0].integrity);
	assert_false(rep->signers[0].trusted);
	assert_string_equal(rep->signers[0].trust_error, "certificate has expired");
	assert_int_equal(rep->conclusion, CLI_INDETERMINATE);
	cli_verify_report_free(rep);
}

static void
test_verify_missing_signer_cert(void **state)
{
	struct cli_verify_report *rep = verify("nocerts.p7s", "surat.pdf", "ca.pem", NULL);

	assert_null(rep->signers[0].signer);
	assert_string_equal(rep->signers[0].issuer, "CN=Test CA,C=ID");
	assert_false(rep->signers[0].integrity);
	assert_int_equal(rep->conclusion, CLI_INVALID);
	cli_verify_report_free(rep);
}

static void
test_verify_not_cms(void **state)
{
	struct cli_verify_report *rep = verify("surat.pdf", "surat.pdf", "ca.pem", NULL);

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
	struct cli_verify_opts o = { .cas = none };
	struct cli_verify_report *rep = NULL;
	char *error = NULL;
	uint8_t *der;
	size_t n;

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
		T("/cli/verify/changed-content", test_verify_changed_content),
		T("/cli/verify/anchors", test_verify_anchors),
		T("/cli/verify/expired", test_verify_expired),
		T("/cli/verify/missing-signer-cert", test_verify_missing_signer_cert),
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
