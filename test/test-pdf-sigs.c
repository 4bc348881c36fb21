/*
 * Reading the signatures out of a PDF (pdf/pdf-sigs.c) and the verification report on PDFs
 * (R11, R12): PDFs are written here byte by byte (a classic cross-reference table, then one
 * incremental update per signature, as a PAdES signer appends them), signed with software keys
 * over their ByteRange, and then changed the ways an attacker or a careless tool would: bytes
 * appended, a second signature, ByteRanges that lie, a file qpdf must repair, an encrypted copy
 * (made with the qpdf command line when it is installed), and a large file that must be
 * streamed. Each test works in its own files in one temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli.h"
#include "pdf-sigs.h"

#define DAY (24 * 3600L)
#define HOLE_HEX 16384 /* hex digits reserved for /Contents */

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

/* --- a PKI ---------------------------------------------------------------------------------- */

static EVP_PKEY *ca_key, *key;
static X509 *ca, *cert;

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

static X509 *
cert_new(const char *cn, const char *sn, EVP_PKEY *k, X509 *issuer, EVP_PKEY *ik, int is_ca)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	assert_non_null(x);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), is_ca ? 1 : 2);
	X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"ID", -1, -1, 0);
	if (sn)
		X509_NAME_add_entry_by_txt(name, "serialNumber", MBSTRING_ASC,
			(const unsigned char *)sn, -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509_time_adj(X509_getm_notBefore(x), -30 * DAY, &now);
	X509_time_adj(X509_getm_notAfter(x), 700 * DAY, &now);
	X509_set_pubkey(x, k);
	ext_add(x, issuer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	ext_add(x, issuer, NID_subject_key_identifier, "hash");
	if (issuer)
		ext_add(x, issuer, NID_authority_key_identifier, "keyid:always");
	ext_add(x, issuer, NID_key_usage,
		is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,nonRepudiation");
	assert_true(X509_sign(x, ik ? ik : k, EVP_sha256()) > 0);
	X509_NAME_free(name);
	return x;
}

static void
crl_write(const char *name)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	FILE *f = fopen(path_of(name), "w");

	assert_non_null(f);
	X509_CRL_set_version(crl, X509_CRL_VERSION_2);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
	X509_time_adj(t, -DAY, &now);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_time_adj(t, 6 * DAY, &now);
	X509_CRL_set1_nextUpdate(crl, t);
	assert_true(X509_CRL_sign(crl, ca_key, EVP_sha256()) > 0);
	assert_int_equal(PEM_write_X509_CRL(f, crl), 1);
	fclose(f);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
}

/* --- writing PDFs ------------------------------------------------------------------------- */

#define OBJS_MAX 64

/* A PDF being written: appended to on disk, one update at a time. */
struct doc {
	char name[64];
	FILE *f;
	int size;        /* the next object number */
	long prev_xref;  /* the last cross-reference section's offset */
	int fields[8];   /* signature field objects, for the catalog's /AcroForm */
	int n_fields;
	int objs[OBJS_MAX];
	long offs[OBJS_MAX];
	int n_objs;
};

static long
doc_tell(struct doc *d)
{
	fflush(d->f);
	return ftell(d->f);
}

static void
obj_begin(struct doc *d, int num)
{
	assert_true(d->n_objs < OBJS_MAX);
	d->objs[d->n_objs] = num;
	d->offs[d->n_objs++] = doc_tell(d);
	fprintf(d->f, "%d 0 obj\n", num);
}

static void
catalog_write(struct doc *d)
{
	obj_begin(d, 1);
	fprintf(d->f, "<< /Type /Catalog /Pages 2 0 R");
	if (d->n_fields) {
		fprintf(d->f, " /AcroForm << /Fields [");
		for (int i = 0; i < d->n_fields; i++)
			fprintf(d->f, " %d 0 R", d->fields[i]);
		fprintf(d->f, " ] /SigFlags 3 >>");
	}
	fprintf(d->f, " >>\nendobj\n");
}

/* The cross-reference section for the objects written since the last one, and the trailer. */
static void
xref_write(struct doc *d)
{
	long xref = doc_tell(d);

	fprintf(d->f, "xref\n");
	if (d->prev_xref < 0)
		fprintf(d->f, "0 1\n0000000000 65535 f \n");
	for (int i = 0; i < d->n_objs; i++)
		fprintf(d->f, "%d 1\n%010ld 00000 n \n", d->objs[i], d->offs[i]);
	fprintf(d->f, "trailer\n<< /Size %d /Root 1 0 R", d->size);
	if (d->prev_xref >= 0)
		fprintf(d->f, " /Prev %ld", d->prev_xref);
	fprintf(d->f, " >>\nstartxref\n%ld\n%%%%EOF\n", xref);
	d->prev_xref = xref;
	d->n_objs = 0;
	fflush(d->f);
}

/* One page with some text; pad bytes of comments in its content stream (for a large file). */
static void
doc_new(struct doc *d, const char *name, size_t pad)
{
	static const char text[] = "BT /F1 12 Tf 72 720 Td (Surat Keputusan Nomor 1) Tj ET\n";
	char line[80];
	size_t len = strlen(text), k;

	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->f = fopen(path_of(name), "w+b");
	assert_non_null(d->f);
	d->prev_xref = -1;
	d->size = 5;
	fprintf(d->f, "%%PDF-1.7\n%%\xe2\xe3\xcf\xd3\n");
	catalog_write(d);
	obj_begin(d, 2);
	fprintf(d->f, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n");
	obj_begin(d, 3);
	fprintf(d->f, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
		      "/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 "
		      "/BaseFont /Helvetica >> >> >> >>\nendobj\n");
	memset(line, 'x', sizeof(line));
	line[0] = '%';
	line[sizeof(line) - 1] = '\n';
	k = pad / sizeof(line);
	obj_begin(d, 4);
	fprintf(d->f, "<< /Length %zu >>\nstream\n", len + k * sizeof(line));
	for (size_t i = 0; i < k; i++)
		fwrite(line, 1, sizeof(line), d->f);
	fprintf(d->f, "%sendstream\nendobj\n", text);
	xref_write(d);
}

/* An update that is not a signature: the page's text replaced. */
static void
doc_update(struct doc *d)
{
	static const char text[] = "BT /F1 12 Tf 72 720 Td (Surat Keputusan Nomor 2) Tj ET\n";

	obj_begin(d, 4);
	fprintf(d->f, "<< /Length %zu >>\nstream\n%sendstream\nendobj\n", strlen(text), text);
	xref_write(d);
}

static void
doc_close(struct doc *d)
{
	assert_int_equal(fclose(d->f), 0);
	d->f = NULL;
}

/* now + delta as a PDF date in Western Indonesian Time (UTC+7), as a signer there writes it */
static const char *
pdf_date(long delta)
{
	static char buf[64];
	time_t t = now + delta + 7 * 3600;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "D:%Y%m%d%H%M%S+07'00'", &tm);
	return buf;
}

static const char *
iso(long delta)
{
	static char buf[32];
	time_t t = now + delta;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* How a signature's ByteRange is made wrong, for the tests of lying ByteRanges. */
enum br_lie {
	BR_TRUE,
	BR_BEYOND_EOF,  /* c + d past the end of the file */
	BR_NOT_AT_ZERO, /* a = 1 */
	BR_SHIFTED,     /* the hole two bytes off the /Contents string */
	BR_DECOY,       /* the hole around another hex string of the dictionary */
	BR_THREE,       /* three numbers */
};

struct sig_opts {
	const char *field;
	const char *sub_filter;
	const char *m;
	enum br_lie lie;
	int no_value; /* an empty signature field */
};

static void
digest_range(int fd, long from, long to, EVP_MD_CTX *ctx)
{
	char buf[65536];

	while (from < to) {
		size_t n = (size_t)(to - from) < sizeof(buf) ? (size_t)(to - from) : sizeof(buf);
		ssize_t k = pread(fd, buf, n, from);

		assert_true(k > 0);
		assert_int_equal(EVP_DigestUpdate(ctx, buf, (size_t)k), 1);
		from += k;
	}
}

/* A detached CMS by cert over the digest (contentType, messageDigest, signingTime now). */
static unsigned char *
cms_over_digest(const unsigned char *md, unsigned mdlen, int *ret_len)
{
	unsigned flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL;
	CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
	CMS_SignerInfo *si;
	unsigned char *der = NULL;

	assert_non_null(cms);
	si = CMS_add1_signer(cms, cert, key, EVP_sha256(), flags | CMS_CADES);
	assert_non_null(si);
	assert_int_equal(CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
				 OBJ_nid2obj(NID_pkcs7_data), -1),
		1);
	assert_int_equal(CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest,
				 V_ASN1_OCTET_STRING, md, (int)mdlen),
		1);
	assert_int_equal(CMS_SignerInfo_sign(si), 1);
	*ret_len = i2d_CMS_ContentInfo(cms, &der);
	assert_true(*ret_len > 0);
	CMS_ContentInfo_free(cms);
	return der;
}

/*
 * Appends a signature: its dictionary (a ByteRange and /Contents placeholder), its field and
 * widget, the catalog with the field; then fills in the ByteRange and signs what it covers.
 */
static void
doc_sign(struct doc *d, const struct sig_opts *o)
{
	int sig = d->size, field = d->size + 1;
	long br_at = 0, hole = 0, hole_end = 0, decoy = 0, end;
	long br[4];
	char brtext[64];
	int fd;

	d->size += 2;
	d->fields[d->n_fields++] = field;
	if (!o->no_value) {
		obj_begin(d, sig);
		fprintf(d->f, "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /%s ",
			o->sub_filter ? o->sub_filter : "ETSI.CAdES.detached");
		fprintf(d->f, "/M (%s) /Reason (Menyetujui) /Location (Kota Blitar) "
			      "/Name (Budi Santoso) ",
			o->m ? o->m : pdf_date(-3600));
		if (o->lie == BR_DECOY) {
			fprintf(d->f, "/Decoy ");
			decoy = doc_tell(d);
			fputc('<', d->f);
			for (int i = 0; i < HOLE_HEX; i++)
				fputc('0', d->f);
			fprintf(d->f, "> ");
		}
		fprintf(d->f, "/ByteRange ");
		br_at = doc_tell(d);
		fprintf(d->f, "[0 0000000000 0000000000 0000000000]");
		fprintf(d->f, " /Contents ");
		hole = doc_tell(d);
		fputc('<', d->f);
		for (int i = 0; i < HOLE_HEX; i++)
			fputc('0', d->f);
		fputc('>', d->f);
		hole_end = doc_tell(d);
		fprintf(d->f, " >>\nendobj\n");
	}
	obj_begin(d, field);
	fprintf(d->f, "<< /FT /Sig /T (%s) /Type /Annot /Subtype /Widget /Rect [0 0 0 0] /F 132 "
		      "/P 3 0 R",
		o->field);
	if (!o->no_value)
		fprintf(d->f, " /V %d 0 R", sig);
	fprintf(d->f, " >>\nendobj\n");
	catalog_write(d);
	xref_write(d);
	if (o->no_value)
		return;
	end = doc_tell(d);

	br[0] = 0;
	br[1] = hole;
	br[2] = hole_end;
	br[3] = end - hole_end;
	if (o->lie == BR_DECOY) {
		br[1] = decoy;
		br[2] = decoy + HOLE_HEX + 2;
		br[3] = end - br[2];
	}
	if (o->lie == BR_SHIFTED) {
		br[1] += 2;
		br[2] += 2;
		br[3] -= 2;
	}
	if (o->lie == BR_THREE)
		snprintf(brtext, sizeof(brtext), "[0 %010ld %010ld           ]", br[1], br[2]);
	else
		snprintf(brtext, sizeof(brtext), "[%ld %010ld %010ld %010ld]",
			o->lie == BR_NOT_AT_ZERO ? 1L : 0L, br[1], br[2],
			o->lie == BR_BEYOND_EOF ? br[3] + 100 : br[3]);
	fd = fileno(d->f);
	assert_int_equal(pwrite(fd, brtext, strlen(brtext), br_at), (ssize_t)strlen(brtext));

	/* Sign the true ranges, whatever the ByteRange says, so only the ByteRange lies. */
	{
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		unsigned char md[32], *der;
		unsigned mdlen;
		int n;
		char *hex;

		assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
		digest_range(fd, 0, hole, ctx);
		digest_range(fd, hole_end, end, ctx);
		assert_int_equal(EVP_DigestFinal_ex(ctx, md, &mdlen), 1);
		EVP_MD_CTX_free(ctx);
		der = cms_over_digest(md, mdlen, &n);
		assert_true(2 * n <= HOLE_HEX);
		hex = malloc(2 * (size_t)n + 1);
		for (int i = 0; i < n; i++)
			snprintf(hex + 2 * i, 3, "%02x", der[i]);
		assert_int_equal(pwrite(fd, hex, 2 * (size_t)n, hole + 1), 2 * n);
		free(hex);
		OPENSSL_free(der);
	}
	fseek(d->f, 0, SEEK_END);
}

/* Appends raw bytes. */
static void
doc_append(struct doc *d, const char *s)
{
	fseek(d->f, 0, SEEK_END);
	fputs(s, d->f);
	fflush(d->f);
}

/* --- setup -------------------------------------------------------------------------------- */

static int
setup(void **state)
{
	FILE *f;

	now = time(NULL);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-pdf-sigs-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	ca_key = EVP_EC_gen("P-256");
	key = EVP_EC_gen("P-256");
	ca = cert_new("Test CA", NULL, ca_key, NULL, NULL, 1);
	cert = cert_new("Budi Santoso", "NIP197803152005011002", key, ca, ca_key, 0);
	f = fopen(path_of("ca.pem"), "w");
	if (!f || PEM_write_X509(f, ca) != 1 || fclose(f) != 0)
		return -1;
	crl_write("ca.crl");
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	X509_free(ca);
	X509_free(cert);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct pdf_sigs *
sigs_read(const char *name)
{
	struct pdf_sigs *s = NULL;
	char *err = NULL;
	int r = pdf_sigs_read(path_of(name), &s, &err);

	if (r < 0)
		fail_msg("pdf_sigs_read(%s): %s (%s)", name, strerror(-r), err ? err : "");
	assert_null(err);
	return s;
}

static int
sigs_read_fails(const char *name, char **ret_err)
{
	struct pdf_sigs *s = NULL;
	int r = pdf_sigs_read(path_of(name), &s, ret_err);

	assert_true(r < 0);
	assert_null(s);
	assert_non_null(*ret_err);
	return r;
}

static struct cli_verify_report *
verify_pdf(const char *name)
{
	const char *cas[] = { path_of("ca.pem"), NULL };
	const char *crls[] = { path_of("ca.crl"), NULL };
	struct cli_verify_opts o = {
		.sigfile = path_of(name),
		.cas = cas,
		.crls = crls,
	};
	struct cli_verify_report *rep = NULL;
	char *error = NULL;
	int r = cli_verify_run(&o, &rep, &error);

	if (r < 0)
		fail_msg("cli_verify_run(%s): %s (%s)", name, strerror(-r), error ? error : "");
	assert_true(rep->is_pdf);
	return rep;
}

/* --- tests -------------------------------------------------------------------------------- */

static void
test_is_pdf(void **state)
{
	uint8_t buf[2048];

	assert_true(pdf_sigs_is_pdf((const uint8_t *)"%PDF-1.7\n", 9));
	assert_false(pdf_sigs_is_pdf((const uint8_t *)"%PDF", 4));
	assert_false(pdf_sigs_is_pdf((const uint8_t *)"0\x82\x01", 3));
	/* "%PDF-" may follow some junk, within the first 1024 bytes (ISO 32000 readers' habit) */
	memset(buf, ' ', sizeof(buf));
	memcpy(buf + 1000, "%PDF-1.4", 8);
	assert_true(pdf_sigs_is_pdf(buf, sizeof(buf)));
	memset(buf, ' ', sizeof(buf));
	memcpy(buf + 1030, "%PDF-1.4", 8);
	assert_false(pdf_sigs_is_pdf(buf, sizeof(buf)));
}

static void
test_date(void **state)
{
	time_t t;

	assert_int_equal(pdf_date_parse("D:20260105103000+07'00'", &t), 0);
	assert_int_equal(t, 1767583800); /* 2026-01-05T03:30:00Z */
	assert_int_equal(pdf_date_parse("D:20260105033000Z", &t), 0);
	assert_int_equal(t, 1767583800);
	assert_int_equal(pdf_date_parse("D:20260105033000Z00'00'", &t), 0);
	assert_int_equal(t, 1767583800);
	assert_int_equal(pdf_date_parse("D:20260104223000-05'00", &t), 0);
	assert_int_equal(t, 1767583800);
	assert_int_equal(pdf_date_parse("D:2026", &t), 0);
	assert_int_equal(t, 1767225600); /* 2026-01-01T00:00:00Z */
	assert_int_equal(pdf_date_parse("20260105033000", &t), 0);
	assert_int_equal(pdf_date_parse("D:202613", &t), -EINVAL);
	assert_int_equal(pdf_date_parse("D:20260105033000+7", &t), -EINVAL);
	assert_int_equal(pdf_date_parse("yesterday", &t), -EINVAL);
	assert_int_equal(pdf_date_parse("D:20260105033000Zjunk", &t), -EINVAL);
}

static void
test_not_pdf(void **state)
{
	FILE *f = fopen(path_of("text.pdf"), "w");
	char *err = NULL;
	struct cli_verify_report *rep;

	fputs("%PDF-1.4\nthis is not really a PDF\n", f);
	fclose(f);
	assert_int_equal(sigs_read_fails("text.pdf", &err), -ENOTRECOVERABLE);
	assert_non_null(strstr(err, "cannot be read as a PDF"));
	free(err);
	/* verify: a report saying why, INDETERMINATE */
	rep = verify_pdf("text.pdf");
	assert_non_null(rep->error);
	assert_int_equal(rep->n_signers, 0);
	assert_int_equal(rep->conclusion, CLI_INDETERMINATE);
	cli_verify_report_free(rep);
	assert_int_equal(pdf_sigs_read(path_of("none.pdf"), &(struct pdf_sigs *){ NULL }, &err),
		-ENOENT);
	free(err);
}

static void
test_unsigned(void **state)
{
	struct doc d;
	struct pdf_sigs *s;
	struct cli_verify_report *rep;

	doc_new(&d, "unsigned.pdf", 0);
	doc_close(&d);
	s = sigs_read("unsigned.pdf");
	assert_int_equal(s->n, 0);
	assert_int_equal(s->unsigned_fields, 0);
	pdf_sigs_free(s);
	rep = verify_pdf("unsigned.pdf");
	assert_non_null(strstr(rep->error, "holds no signature"));
	assert_int_equal(rep->conclusion, CLI_INVALID);
	cli_verify_report_free(rep);

	/* an empty signature field is not a signature */
	doc_new(&d, "empty-field.pdf", 0);
	doc_sign(&d, &(struct sig_opts){ .field = "Signature1", .no_value = 1 });
	doc_close(&d);
	s = sigs_read("empty-field.pdf");
	assert_int_equal(s->n, 0);
	assert_int_equal(s->unsigned_fields, 1);
	pdf_sigs_free(s);
}

static void
expect_range_digest(struct pdf_sigs *s, size_t i, const char *name)
{
	unsigned char want[32], got[32], buf[4096];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int fd = open(path_of(name), O_RDONLY);
	const struct pdf_sig *p = &s->sigs[i];
	BIO *b;
	int k;

	assert_true(fd >= 0);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	digest_range(fd, 0, (long)p->byte_range[1], ctx);
	digest_range(fd, (long)p->byte_range[2], (long)(p->byte_range[2] + p->byte_range[3]), ctx);
	EVP_DigestFinal_ex(ctx, want, NULL);
	close(fd);
	assert_int_equal(pdf_sig_range_bio(s, i, &b), 0);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((k = BIO_read(b, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(ctx, buf, (size_t)k);
	assert_int_equal(k, 0);
	assert_true(BIO_eof(b));
	EVP_DigestFinal_ex(ctx, got, NULL);
	EVP_MD_CTX_free(ctx);
	BIO_free(b);
	assert_memory_equal(got, want, 32);
}

static void
test_one_signature(void **state)
{
	struct doc d;
	struct pdf_sigs *s;
	const struct pdf_sig *p;
	struct cli_verify_report *rep;
	const struct cli_signer_report *r;
	struct stat st;
	const unsigned char *der;
	CMS_ContentInfo *cms;

	doc_new(&d, "one.pdf", 0);
	doc_sign(&d, &(struct sig_opts){ .field = "Signature1" });
	doc_close(&d);
	assert_int_equal(stat(path_of("one.pdf"), &st), 0);

	s = sigs_read("one.pdf");
	assert_int_equal(s->n, 1);
	assert_int_equal(s->size, (uint64_t)st.st_size);
	p = &s->sigs[0];
	assert_null(p->error);
	assert_string_equal(p->field, "Signature1");
	assert_string_equal(p->sub_filter, "ETSI.CAdES.detached");
	assert_string_equal(p->filter, "Adobe.PPKLite");
	assert_string_equal(p->reason, "Menyetujui");
	assert_string_equal(p->location, "Kota Blitar");
	assert_string_equal(p->name, "Budi Santoso");
	assert_true(p->m_valid);
	assert_int_equal(p->m_time, now - 3600);
	assert_true(p->whole_file);
	assert_int_equal(p->signed_end, (uint64_t)st.st_size);
	assert_int_equal(p->appended, PDF_APPENDED_NONE);
	assert_int_equal(p->appended_bytes, 0);
	/* the CMS, without the zero padding */
	der = p->contents;
	cms = d2i_CMS_ContentInfo(NULL, &der, (long)p->contents_len);
	assert_non_null(cms);
	assert_ptr_equal(der, p->contents + p->contents_len);
	CMS_ContentInfo_free(cms);
	expect_range_digest(s, 0, "one.pdf");
	pdf_sigs_free(s);

	/* R11 for a PDF: VALID, with /M as the claimed time, reason, location, the whole file */
	rep = verify_pdf("one.pdf");
	assert_int_equal(rep->conclusion, CLI_VALID);
	r = &rep->signers[0];
	if (r->conclusion != CLI_VALID)
		fail_msg("%s: %s", r->sub_indication, r->reason);
	assert_string_equal(r->nip, "197803152005011002");
	assert_int_equal(r->time_source, CLI_TIME_CLAIMED);
	assert_string_equal(r->signing_time, iso(-3600)); /* /M, not signingTime */
	assert_string_equal(r->pdf.reason, "Menyetujui");
	assert_string_equal(r->pdf.location, "Kota Blitar");
	assert_string_equal(r->pdf.field, "Signature1");
	assert_true(r->pdf.whole_file);
	assert_int_equal(r->pdf.appended, CLI_APPENDED_NONE);
	{
		json_object *j, *s0, *cov;

		assert_int_equal(cli_verify_report_json(rep, &j), 0);
		assert_string_equal(cli_json_str(j, "format"), "pdf");
		s0 = json_object_array_get_idx(cli_json_obj(j, "signatures", json_type_array), 0);
		cov = cli_json_obj(s0, "coverage", json_type_object);
		assert_non_null(cov);
		assert_true(json_object_get_boolean(cli_json_obj(cov, "whole_file",
			json_type_boolean)));
		assert_string_equal(cli_json_str(cov, "appended"), "none");
		assert_string_equal(cli_json_str(cli_json_obj(s0, "pdf", json_type_object),
					    "reason"),
			"Menyetujui");
		json_object_put(j);
	}
	cli_verify_report_free(rep);

	/* adbe.pkcs7.detached is read the same way */
	doc_new(&d, "adbe.pdf", 0);
	doc_sign(&d, &(struct sig_opts){ .field = "Sig", .sub_filter = "adbe.pkcs7.detached" });
	doc_close(&d);
	rep = verify_pdf("adbe.pdf");
	assert_int_equal(rep->conclusion, CLI_VALID);
	cli_verify_report_free(rep);
}

static void
test_tampered(void **state)
{
	struct doc d;
	struct cli_verify_report *rep;
	int fd;

	doc_new(&d, "tampered.pdf", 0);
	doc_sign(&d, &(struct sig_opts){ .field = "Signature1" });
	doc_close(&d);
	/* "Nomor 1" becomes "Nomor 7" inside the signed range */
	fd = open(path_of("tampered.pdf"), O_RDWR);
	{
		char buf[4096];
		ssize_t n = pread(fd, buf, sizeof(buf), 0);
		char *at = memmem(buf, (size_t)n, "Nomor 1", 7);

		assert_non_null(at);
		assert_int_equal(pwrite(fd, "7", 1, at - buf + 6), 1);
	}
	close(fd);
	rep = verify_pdf("tampered.pdf");
	assert_int_equal(rep->conclusion, CLI_INVALID);
	assert_string_equal(rep->signers[0].sub_indication, "HASH_FAILURE");
	assert_false(rep->signers[0].integrity);
	cli_verify_report_free(rep);
}

static void
test_two_signatures(void **state)
{
	struct doc d;
	struct pdf_sigs *s;
	struct cli_verify_report *rep;

	doc_new(&d, "two.pdf", 0);
	doc_sign(&d, &(struct sig_opts){ .field = "Pertama" });
	doc_sign(&d, &(struct sig_opts){ .field = "Kedua" });
	doc_close(&d);
	s = sigs_read("two.pdf");
	assert_int_equal(s->n, 2);
	/* in the order they were applied */
	assert_string_equal(s->sigs[0].field, "Pertama");
	assert_string_equal(s->sigs[1].field, "Kedua");
	assert_false(s->sigs[0].whole_file);
	assert_true(s->sigs[1].whole_file);
	assert_true(s->sigs[0].signed_end < s->sigs[1].signed_end);
	assert_int_equal(s->sigs[0].appended, PDF_APPENDED_SIGNATURES);
	assert_int_equal(s->sigs[0].later_signatures, 1);
	assert_int_equal(s->sigs[0].appended_revisions, 1);
	assert_int_equal(s->sigs[0].appended_bytes, s->size - s->sigs[0].signed_end);
	assert_int_equal(s->sigs[1].appended, PDF_APPENDED_NONE);
	expect_range_digest(s, 0, "two.pdf");
	expect_range_digest(s, 1, "two.pdf");
	pdf_sigs_free(s);

	rep = verify_pdf("two.pdf");
	assert_int_equal(rep->n_signers, 2);
	assert_int_equal(rep->signers[0].conclusion, CLI_VALID);
	assert_int_equal(rep->signers[1].conclusion, CLI_VALID);
	assert_int_equal(rep->signers[0].pdf.appended, CLI_APPENDED_SIGNATURES);
	assert_int_equal(rep->conclusion, CLI_VALID);
	cli_verify_report_free(rep);
}

static void
test_appended(void **state)
{
	struct doc d;
	struct pdf_sigs *s;
	struct cli_verify_report *rep;
	uint64_t end;

	/* an update that is not a signature, after the signature: the page's text replaced */
	doc_new(&d, "appended.pdf", 0);
	doc_sign(&d, &(struct sig_opts){ .field = "Signature1" });
	end = (uint64_t)doc_tell(&d);
	doc_update(&d);
	doc_close(&d);
	s = sigs_read("appended.pdf");
	assert_int_equal(s->n, 1);
	assert_false(s->sigs[0].whole_file);
	assert_int_equal(s->sigs[0].signed_end, end);
	assert_int_equal(s->sigs[0].appended_bytes, s->size - end);
	assert_int_equal(s->sigs[0].appended_revisions, 1);
	assert_int_equal(s->sigs[0].later_signatures, 0);
	assert_int_equal(s->sigs[0].appended, PDF_APPENDED_OTHER);
	assert_non_null(strstr(s->sigs[0].appended_detail, "none of them a signature"));
	pdf_sigs_free(s);
	rep = verify_pdf("appended.pdf");
	assert_int_equal(rep->conclusion, CLI_INDETERMINATE);
	assert_string_equal(rep->signers[0].sub_indication, "MODIFIED_AFTER_SIGNING");
	assert_true(rep->signers[0].integrity); /* what it signed is intact */
	cli_verify_report_free(rep);

	/* two signatures, then an unsigned update: both see it */
	doc_new(&d, "two-then-other.pdf", 0);
	doc_sign(&d, &(struct sig_opts){ .field = "A" });
	doc_sign(&d, &(struct sig_opts){ .field = "B" });
	doc_update(&d);
	doc_close(&d);
	s = sigs_read("two-then-other.pdf");
	assert_int_equal(s->n, 2);
	assert_int_equal(s->sigs[0].appended, PDF_APPENDED_OTHER);
	assert_int_equal(s->sigs[0].later_signatures, 1);
	assert_int_equal(s->sigs[0].appended_revisions, 2);
	assert_non_null(strstr(s->sigs[0].appended_detail, "no signature covers"));
	assert_int_equal(s->sigs[1].appended, PDF_APPENDED_OTHER);
	pdf_sigs_free(s);

	/* an unsigned update between two signatures: the first sees it, the second covers it */
	doc_new(&d, "other-between.pdf", 0);
	doc_sign(&d, &(struct sig_opts){ .field = "A" });
	doc_update(&d);
	doc_sign(&d, &(struct sig_opts){ .field = "B" });
	doc_close(&d);
	s = sigs_read("other-between.pdf");
	assert_int_equal(s->sigs[0].appended, PDF_APPENDED_OTHER);
	assert_int_equal(s->sigs[0].appended_revisions, 2);
	assert_int_equal(s->sigs[0].later_signatures, 1);
	assert_int_equal(s->sigs[1].appended, PDF_APPENDED_NONE);
	pdf_sigs_free(s);

	/* a newline after the end: nothing a reader would show */
	doc_new(&d, "newline.pdf", 0);
	doc_sign(&d, &(struct sig_opts){ .field = "A" });
	doc_append(&d, "\r\n");
	doc_close(&d);
	s = sigs_read("newline.pdf");
	assert_int_equal(s->sigs[0].appended, PDF_APPENDED_NONE);
	assert_int_equal(s->sigs[0].appended_bytes, 2);
	assert_false(s->sigs[0].whole_file);
	pdf_sigs_free(s);

	/* junk that is not an update */
	doc_new(&d, "junk.pdf", 0);
	doc_sign(&d, &(struct sig_opts){ .field = "A" });
	doc_append(&d, "% just a comment, but still bytes no one signed\n");
	doc_close(&d);
	s = sigs_read("junk.pdf");
	assert_int_equal(s->sigs[0].appended, PDF_APPENDED_OTHER);
	pdf_sigs_free(s);
}

static void
expect_sig_error(const char *name, const char *what)
{
	struct pdf_sigs *s = sigs_read(name);
	struct cli_verify_report *rep;

	assert_int_equal(s->n, 1);
	if (!s->sigs[0].error || !strstr(s->sigs[0].error, what))
		fail_msg("%s: error '%s', expected '%s'", name,
			s->sigs[0].error ? s->sigs[0].error : "(none)", what);
	pdf_sigs_free(s);
	rep = verify_pdf(name);
	assert_int_equal(rep->n_signers, 1);
	assert_int_equal(rep->signers[0].conclusion, CLI_INVALID);
	assert_string_equal(rep->signers[0].sub_indication, "FORMAT_FAILURE");
	assert_false(rep->signers[0].integrity);
	assert_non_null(strstr(rep->signers[0].reason, what));
	cli_verify_report_free(rep);
}

static void
test_malformed_byte_range(void **state)
{
	static const struct {
		enum br_lie lie;
		const char *what;
	} cases[] = {
		{ BR_BEYOND_EOF, "beyond the end of the file" },
		{ BR_NOT_AT_ZERO, "does not start at the beginning" },
		{ BR_SHIFTED, "not a hex string" },
		{ BR_DECOY, "not the /Contents of its signature dictionary" },
		{ BR_THREE, "not an array of 4" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char name[32];
		struct doc d;

		snprintf(name, sizeof(name), "lie%zu.pdf", i);
		doc_new(&d, name, 0);
		doc_sign(&d, &(struct sig_opts){ .field = "Signature1", .lie = cases[i].lie });
		doc_close(&d);
		expect_sig_error(name, cases[i].what);
	}
}

static void
test_unsupported(void **state)
{
	struct doc d;
	struct cli_verify_report *rep;

	doc_new(&d, "sha1.pdf", 0);
	doc_sign(&d, &(struct sig_opts){ .field = "Old", .sub_filter = "adbe.pkcs7.sha1" });
	doc_close(&d);
	rep = verify_pdf("sha1.pdf");
	assert_int_equal(rep->conclusion, CLI_INDETERMINATE);
	assert_string_equal(rep->signers[0].sub_indication, "UNSUPPORTED_FORMAT");
	assert_non_null(strstr(rep->signers[0].reason, "adbe.pkcs7.sha1"));
	cli_verify_report_free(rep);

	/* a PDF named as SIGFILE with a CONTENT: a usage error */
	{
		const char *none[] = { NULL };
		struct cli_verify_opts o = { .sigfile = path_of("sha1.pdf"),
			.content = path_of("ca.pem"), .cas = none };
		struct cli_verify_report *r = NULL;
		char *err = NULL;

		assert_int_equal(cli_verify_run(&o, &r, &err), -EUCLEAN);
		assert_non_null(strstr(err, "PDF"));
		free(err);
	}
}

static int
run_quiet(const char *cmd)
{
	char full[1024];

	snprintf(full, sizeof(full), "%s >/dev/null 2>&1", cmd);
	return system(full);
}

static void
test_encrypted(void **state)
{
	struct doc d;
	char cmd[512], *err = NULL;
	struct cli_verify_report *rep;

	if (access("/usr/bin/qpdf", X_OK) != 0)
		skip(); /* the qpdf command line makes the encrypted copy */
	doc_new(&d, "plain.pdf", 0);
	doc_sign(&d, &(struct sig_opts){ .field = "Signature1" });
	doc_close(&d);
	snprintf(cmd, sizeof(cmd), "qpdf --encrypt u o 256 -- '%s' '%s'", path_of("plain.pdf"),
		path_of("encrypted.pdf"));
	assert_int_equal(run_quiet(cmd), 0);
	assert_int_equal(sigs_read_fails("encrypted.pdf", &err), -EACCES);
	assert_non_null(strstr(err, "encrypted"));
	free(err);
	/* an empty user password: qpdf opens it, paraf still refuses */
	snprintf(cmd, sizeof(cmd), "qpdf --encrypt '' o 256 -- '%s' '%s'", path_of("plain.pdf"),
		path_of("encrypted-open.pdf"));
	assert_int_equal(run_quiet(cmd), 0);
	err = NULL;
	assert_int_equal(sigs_read_fails("encrypted-open.pdf", &err), -EACCES);
	free(err);
	rep = verify_pdf("encrypted.pdf");
	assert_int_equal(rep->conclusion, CLI_INDETERMINATE);
	assert_non_null(strstr(rep->error, "encrypted"));
	cli_verify_report_free(rep);
}

static void
test_damaged(void **state)
{
	struct doc d;
	char *err = NULL;
	FILE *in, *out;
	char buf[65536];
	size_t n;
	struct cli_verify_report *rep;

	doc_new(&d, "good.pdf", 0);
	doc_sign(&d, &(struct sig_opts){ .field = "Signature1" });
	doc_close(&d);
	/* 64 bytes after the header: every offset in every xref is now wrong */
	in = fopen(path_of("good.pdf"), "rb");
	out = fopen(path_of("damaged.pdf"), "wb");
	n = fread(buf, 1, 9, in);
	fwrite(buf, 1, n, out);
	memset(buf, ' ', 63);
	buf[63] = '\n';
	fwrite(buf, 1, 64, out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	fclose(out);
	assert_int_equal(sigs_read_fails("damaged.pdf", &err), -EUCLEAN);
	assert_non_null(strstr(err, "damaged"));
	free(err);
	rep = verify_pdf("damaged.pdf");
	assert_int_equal(rep->conclusion, CLI_INDETERMINATE);
	assert_non_null(strstr(rep->error, "repair"));
	cli_verify_report_free(rep);
}

/*
 * A large document (LARGE_PDF bytes of page content) is streamed, not read into memory: the
 * `paraf` binary verifies it in a process of its own whose peak memory is measured.
 */
#define LARGE_PDF (100u * 1024 * 1024)
#define LARGE_RSS_MAX_KB (48 * 1024)

static void
test_large(void **state)
{
	const char *paraf = getenv("PARAF_BIN");
	struct doc d;
	struct rusage ru;
	int status;
	pid_t pid;

	if (!paraf || access(paraf, X_OK) != 0)
		skip(); /* meson sets PARAF_BIN */
	doc_new(&d, "large.pdf", LARGE_PDF);
	doc_sign(&d, &(struct sig_opts){ .field = "Signature1" });
	doc_close(&d);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 1);
		execl(paraf, "paraf", "verify", "--ca", path_of("ca.pem"), "--crl",
			path_of("ca.crl"), path_of("large.pdf"), (char *)NULL);
		_exit(127);
	}
	assert_int_equal(wait4(pid, &status, 0, &ru), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0); /* VALID */
	if (ru.ru_maxrss > LARGE_RSS_MAX_KB)
		fail_msg("verifying a %u MB PDF took %ld kB of memory", LARGE_PDF >> 20,
			ru.ru_maxrss);
	unlink(path_of("large.pdf"));
}

#define T(name, fn) { name, fn, NULL, NULL, NULL }

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T("/pdf/sigs/is-pdf", test_is_pdf),
		T("/pdf/sigs/date", test_date),
		T("/pdf/sigs/not-pdf", test_not_pdf),
		T("/pdf/sigs/unsigned", test_unsigned),
		T("/pdf/sigs/one-signature", test_one_signature),
		T("/pdf/sigs/tampered", test_tampered),
		T("/pdf/sigs/two-signatures", test_two_signatures),
		T("/pdf/sigs/appended", test_appended),
		T("/pdf/sigs/malformed-byte-range", test_malformed_byte_range),
		T("/pdf/sigs/unsupported", test_unsupported),
		T("/pdf/sigs/encrypted", test_encrypted),
		T("/pdf/sigs/damaged", test_damaged),
		T("/pdf/sigs/large", test_large),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
