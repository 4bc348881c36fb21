/*
 * `paraf verify`: checks a CMS signature offline, without the agent, and reports what R11 asks
 * for, per SignerInfo: signer, issuer, serial, the certificate's validity, the signing time it
 * claims, integrity (the signature over the signed attributes, and their messageDigest against
 * the content, streamed through OpenSSL), trust (the chain built to the configured anchors with
 * X509_verify_cert, purpose any), and a conclusion: VALID, INVALID (integrity fails) or
 * INDETERMINATE (intact, but not shown to come from a trusted certificate).
 */
#include "cli.h"

#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/stat.h>

/* pem.h first: cms.h declares PEM_read_bio_CMS() only when it is included. */
#include <openssl/pem.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "paraf-config.h"
#include "pf-codec.h"

#define VERIFY_CAS_MAX 256 /* --ca options */

static const char verify_usage[] =
	"Usage: paraf verify [--ca FILE]... [--json] SIGFILE [CONTENT]\n"
	"\n"
	"Verifies a detached CMS signature (DER or PEM) over CONTENT, offline: the agent is not\n"
	"needed. CONTENT defaults to SIGFILE without its .p7s suffix. For each signature it\n"
	"shows the signer, issuer, serial, the certificate's validity, the signing time the\n"
	"signer claims, integrity, trust, and a conclusion:\n"
	"  VALID          the content is intact and the signer's certificate chains to a\n"
	"                 trust anchor\n"
	"  INVALID        the content or the signature does not check out\n"
	"  INDETERMINATE  intact, but the certificate is not trusted (or no anchors)\n"
	"\n"
	"  --ca FILE  a trust anchor file (PEM, one or more certificates); may be repeated.\n"
	"             Without --ca: every *.pem in " PARAF_SYSCONFDIR "/anchors\n"
	"  --json     print the report as JSON\n"
	"\n"
	"Exit status 0 when every signature is VALID, 1 otherwise.\n";

const char *
cli_conclusion_name(enum cli_conclusion c)
{
	switch (c) {
	case CLI_VALID:
		return "VALID";
	case CLI_INDETERMINATE:
		return "INDETERMINATE";
	case CLI_INVALID:
	default:
		return "INVALID";
	}
}

struct cli_verify_report *
cli_verify_report_free(struct cli_verify_report *r)
{
	size_t i;

	if (!r)
		return NULL;
	for (i = 0; i < r->n_signers; i++) {
		struct cli_signer_report *s = &r->signers[i];

		free(s->signer);
		free(s->signer_cn);
		free(s->issuer);
		free(s->serial);
		free(s->not_before);
		free(s->not_after);
		free(s->signing_time);
		free(s->trust_error);
		free(s->reason);
	}
	free(r->signers);
	free(r->file);
	free(r->content);
	free(r->error);
	free(r);
	return NULL;
}

static int
set_error(char **error_out, const char *fmt, ...) _printf_(2, 3);

static int
set_error(char **error_out, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(error_out, fmt, ap);
	va_end(ap);
	if (n < 0)
		*error_out = NULL;
	return n < 0 ? -ENOMEM : 0;
}

static char *
name_rfc2253(const X509_NAME *name)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *s = NULL;
	long n;

	if (!b)
		return NULL;
	/* RFC 2253, but UTF-8 kept as it is rather than escaped byte by byte. */
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		n = BIO_get_mem_data(b, &data);
		if (n >= 0)
			s = strndup(n ? data : "", (size_t)n);
	}
	BIO_free(b);
	return s;
}

static char *
serial_hex(const ASN1_INTEGER *serial)
{
	const unsigned char *p = ASN1_STRING_get0_data(serial);
	int n = ASN1_STRING_length(serial);
	_cleanup_free_ char *hex = NULL;
	char *s;

	if (n <= 0)
		return strdup("0");
	hex = pf_hex_encode(p, (size_t)n);
	if (!hex)
		return NULL;
	if (asprintf(&s, "%s%s", ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER ? "-" : "", hex) <
	    0)
		return NULL;
	return s;
}

static char *
time_iso(const ASN1_TIME *t)
{
	char buf[32];

	return cli_asn1_time_iso(t, buf, sizeof(buf)) < 0 ? NULL : strdup(buf);
}

/* Adds every PEM certificate in path to store. -ENODATA when it holds none, -EBADMSG. */
static int
anchors_load_file(X509_STORE *store, const char *path, size_t *count)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	size_t n = 0;
	FILE *f;
	BIO *b;
	int r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return pf_negerrno();
	if (fstat(fd, &st) < 0)
		return pf_negerrno();
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	f = fdopen(fd, "r");
	if (!f)
		return pf_negerrno();
	fd = -1;
	b = BIO_new_fp(f, BIO_CLOSE);
	if (!b) {
		fclose(f);
		return -ENOMEM;
	}
	ERR_clear_error();
	for (;;) {
		X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

		if (!x) {
			unsigned long e = ERR_peek_last_error();

			/* The end of the file, after any other PEM blocks, looks like this. */
			if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
				r = n ? 0 : -ENODATA;
			else
				r = -EBADMSG;
			ERR_clear_error();
			break;
		}
		if (!X509_STORE_add_cert(store, x)) {
			X509_free(x);
			ERR_clear_error();
			r = -ENOMEM;
			break;
		}
		X509_free(x);
		n++;
	}
	BIO_free(b);
	*count += n;
	return r;
}

static const char *
anchor_error(int r)
{
	switch (r) {
	case -ENODATA:
		return "no PEM certificate in it";
	case -EBADMSG:
		return "not a PEM certificate file";
	default:
		return strerror(-r);
	}
}

/* The --ca files (each must load), else every *.pem in the anchors directory. */
static int
anchors_load(const struct cli_verify_opts *o, X509_STORE **ret, size_t *ret_n, char **error_out)
{
	X509_STORE *store = X509_STORE_new();
	size_t n = 0;
	int r;

	if (!store)
		return -ENOMEM;
	if (o->cas && o->cas[0]) {
		const char *const *p;

		for (p = o->cas; *p; p++) {
			r = anchors_load_file(store, *p, &n);
			if (r < 0) {
				_cleanup_free_ char *s = cli_sanitize(*p);

				X509_STORE_free(store);
				if (set_error(error_out, "cannot use '--ca %s': %s", s ? s : "",
					    anchor_error(r)) < 0)
					return -ENOMEM;
				if (r == -ENODATA || r == -EBADMSG)
					r = -EINVAL; /* readable, but not certificates */
				return r;
			}
		}
	} else if (o->anchors_dir) {
		DIR *d = opendir(o->anchors_dir);
		struct dirent *de;

		/* No directory means no anchors: the report says so (INDETERMINATE). */
		while (d && (de = readdir(d))) {
			size_t len = strlen(de->d_name);
			_cleanup_free_ char *path = NULL;

			if (de->d_name[0] == '.' || len < 5 || !streq(de->d_name + len - 4, ".pem"))
				continue;
			if (asprintf(&path, "%s/%s", o->anchors_dir, de->d_name) < 0) {
				path = NULL;
				closedir(d);
				X509_STORE_free(store);
				return -ENOMEM;
			}
			r = anchors_load_file(store, path, &n);
			if (r < 0) {
				_cleanup_free_ char *s = cli_sanitize(path);

				cli_warn("ignoring trust anchor file '%s': %s", s ? s : "",
					anchor_error(r));
			}
		}
		if (d)
			closedir(d);
	}
	*ret = store;
	*ret_n = n;
	return 0;
}

static CMS_ContentInfo *
cms_parse(const uint8_t *data, size_t len)
{
	CMS_ContentInfo *cms = NULL;
	size_t i = 0;

	while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
		i++;
	if (len - i >= 10 && memcmp(data + i, "-----BEGIN", 10) == 0) {
		BIO *b = BIO_new_mem_buf(data, (int)len);

		if (b)
			cms = PEM_read_bio_CMS(b, NULL, NULL, NULL);
		BIO_free(b);
	} else {
		const unsigned char *p = data;

		cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
		/* Trailing bytes after the structure: not a signature file we understand. */
		if (cms && p != data + len) {
			CMS_ContentInfo_free(cms);
			cms = NULL;
		}
	}
	return cms;
}

/* Who signed, from the certificate or, when it is missing, from the SignerIdentifier. */
static int
signer_describe(CMS_SignerInfo *si, X509 *x, struct cli_signer_report *s)
{
	int idx;

	if (x) {
		s->signer = name_rfc2253(X509_get_subject_name(x));
		s->issuer = name_rfc2253(X509_get_issuer_name(x));
		s->serial = serial_hex(X509_get0_serialNumber(x));
		s->not_before = time_iso(X509_get0_notBefore(x));
		s->not_after = time_iso(X509_get0_notAfter(x));
		if (cli_name_cn(X509_get_subject_name(x), &s->signer_cn) == -ENOMEM)
			return -ENOMEM;
		if (!s->signer || !s->issuer || !s->serial)
			return -ENOMEM;
	} else {
		ASN1_OCTET_STRING *keyid = NULL;
		X509_NAME *issuer = NULL;
		ASN1_INTEGER *sno = NULL;

		if (CMS_SignerInfo_get0_signer_id(si, &keyid, &issuer, &sno) == 1 && issuer &&
		    sno) {
			s->issuer = name_rfc2253(issuer);
			s->serial = serial_hex(sno);
			if (!s->issuer || !s->serial)
				return -ENOMEM;
		}
		ERR_clear_error();
	}
	idx = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
	if (idx >= 0) {
		X509_ATTRIBUTE *at = CMS_signed_get_attr(si, idx);
		ASN1_TYPE *t = at ? X509_ATTRIBUTE_get0_type(at, 0) : NULL;

		if (t && (t->type == V_ASN1_UTCTIME || t->type == V_ASN1_GENERALIZEDTIME))
			s->signing_time = time_iso(t->value.asn1_string);
	}
	return 0;
}

static void
bio_free_upto(BIO *b, BIO *upto)
{
	while (b && b != upto) {
		BIO *next = BIO_pop(b);

		BIO_free(b);
		b = next;
	}
}

/*
 * Streams the content through the digests the SignedData names and checks every signer: its
 * signature over the signed attributes, then their messageDigest against the content.
 * *ret_why[i] is NULL for an intact signer, else why not (static strings).
 */
static int
integrity_check(CMS_ContentInfo *cms, STACK_OF(CMS_SignerInfo) * sis, BIO *cont,
	const char **why, const char *content_name, char **error_out)
{
	unsigned char *buf = NULL;
	BIO *chain;
	int i, n = sk_CMS_SignerInfo_num(sis), r = 0;

	chain = CMS_dataInit(cms, cont);
	if (!chain) {
		for (i = 0; i < n; i++)
			if (!why[i])
				why[i] = "the content digest cannot be computed (unsupported digest "
					 "algorithm?)";
		ERR_clear_error();
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
			/* A read error of the content file, not a verdict on the signature. */
			if (set_error(error_out, "cannot read '%s': %s", content_name,
				    errno ? strerror(errno) : "read error") < 0)
				r = -ENOMEM;
			else
				r = -EIO;
			goto out;
		}
		break;
	}
	for (i = 0; i < n; i++) {
		CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sis, i);

		if (why[i])
			continue;
		/* Without signed attributes verify_content checks the signature itself. */
		if (CMS_signed_get_attr_count(si) >= 0 && CMS_SignerInfo_verify(si) != 1) {
			why[i] = "the signature does not verify with the signer's certificate";
			continue;
		}
		if (CMS_SignerInfo_verify_content(si, chain) != 1)
			why[i] = CMS_signed_get_attr_count(si) >= 0 ?
					 "the content does not match the signature: it is not the "
					 "signed file, or was changed after signing" :
					 "the signature does not verify over the content";
	}
out:
	ERR_clear_error();
	free(buf);
	if (cont)
		bio_free_upto(chain, cont);
	else
		BIO_free_all(chain);
	return r;
}

static int
trust_check(X509_STORE *store, X509 *x, STACK_OF(X509) * untrusted, char **ret_error)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok, r = 0;

	*ret_error = NULL;
	if (!ctx)
		return -ENOMEM;
	/*
	 * Purpose "any": which usages a signature needs is the signer's policy, not the chain's.
	 * Set on the parameters: X509_STORE_CTX_set_purpose() refuses X509_PURPOSE_ANY in 3.0.
	 */
	if (!X509_STORE_CTX_init(ctx, store, x, untrusted) ||
	    !X509_VERIFY_PARAM_set_purpose(X509_STORE_CTX_get0_param(ctx), X509_PURPOSE_ANY)) {
		X509_STORE_CTX_free(ctx);
		ERR_clear_error();
		return -ENOMEM;
	}
	ok = X509_verify_cert(ctx);
	if (ok != 1) {
		int e = X509_STORE_CTX_get_error(ctx);

		*ret_error = strdup(e != X509_V_OK ? X509_verify_cert_error_string(e) :
						     cli_openssl_error());
		if (!*ret_error)
			r = -ENOMEM;
	}
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	return r;
}

static int
content_open(const char *path, BIO **ret, char **error_out)
{
	_cleanup_free_ char *s = cli_sanitize(path);
	_cleanup_close_ int fd = -1;
	struct stat st;
	FILE *f;
	BIO *b;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int r = pf_negerrno();

		return set_error(error_out, "cannot read '%s': %s", s ? s : "", strerror(-r)) < 0 ?
			       -ENOMEM :
			       r;
	}
	if (!S_ISREG(st.st_mode))
		return set_error(error_out, "cannot read '%s': not a regular file", s ? s : "") <
				       0 ?
			       -ENOMEM :
			       -EINVAL;
	/* Back to blocking reads: O_NONBLOCK only kept a FIFO from hanging the open. */
	if (fcntl(fd, F_SETFL, 0) < 0 || !(f = fdopen(fd, "rb")))
		return pf_negerrno();
	fd = -1;
	b = BIO_new_fp(f, BIO_CLOSE);
	if (!b) {
		fclose(f);
		return -ENOMEM;
	}
	*ret = b;
	return 0;
}

static int
report_conclude(struct cli_verify_report *rep, size_t i, const char *why, size_t n_anchors)
{
	struct cli_signer_report *s = &rep->signers[i];
	const char *reason = NULL;

	s->integrity = why == NULL;
	if (!s->integrity) {
		s->conclusion = CLI_INVALID;
		reason = why;
	} else if (!s->trusted) {
		s->conclusion = CLI_INDETERMINATE;
		if (n_anchors == 0)
			reason = "no trust anchors configured";
	} else
		s->conclusion = CLI_VALID;
	if (reason)
		s->reason = strdup(reason);
	else if (s->conclusion == CLI_INDETERMINATE &&
		 asprintf(&s->reason, "the signer's certificate is not trusted: %s",
			 s->trust_error ? s->trust_error : "no chain to a trust anchor") < 0)
		s->reason = NULL;
	if (s->conclusion != CLI_VALID && !s->reason)
		return -ENOMEM;
	if (s->conclusion > rep->conclusion)
		rep->conclusion = s->conclusion;
	return 0;
}

int
cli_verify_run(const struct cli_verify_opts *o, struct cli_verify_report **ret, char **error_out)
{
	_cleanup_(cli_verify_report_freep) struct cli_verify_report *rep = NULL;
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_free_ const char **why = NULL;
	_cleanup_free_ char *ssig = cli_sanitize(o->sigfile);
	CMS_ContentInfo *cms = NULL;
	STACK_OF(CMS_SignerInfo) *sis;
	STACK_OF(X509) *certs = NULL;
	X509_STORE *store = NULL;
	BIO *cont = NULL;
	size_t len, n_anchors = 0, i;
	int r, n;

	*error_out = NULL;
	if (!ssig)
		return -ENOMEM;
	rep = calloc(1, sizeof(*rep));
	if (!rep || !(rep->file = strdup(o->sigfile)))
		return -ENOMEM;
	rep->conclusion = CLI_VALID;

	r = cli_file_read_all(o->sigfile, CLI_SIGFILE_MAX, &data, &len);
	if (r < 0)
		return set_error(error_out, "cannot read '%s': %s", ssig,
			       r == -EFBIG ? "larger than a signature file can be" :
					     strerror(-r)) < 0 ?
			       -ENOMEM :
			       r;
	if (o->content && !(rep->content = strdup(o->content)))
		return -ENOMEM;

	ERR_clear_error();
	cms = cms_parse(data, len);
	if (!cms || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		if (asprintf(&rep->error, "'%s' is not a CMS SignedData signature (DER or PEM)%s%s",
			    ssig, cms ? "" : ": ", cms ? "" : cli_openssl_error()) < 0) {
			rep->error = NULL;
			r = -ENOMEM;
			goto out;
		}
		rep->conclusion = CLI_INVALID;
		r = 0;
		goto done;
	}

	if (!rep->content && CMS_is_detached(cms) == 1) {
		size_t sl = strlen(o->sigfile);

		if (sl <= 4 || !streq(o->sigfile + sl - 4, ".p7s") || o->sigfile[sl - 5] == '/') {
			r = set_error(error_out,
				"cannot tell which file '%s' signs: name it as CONTENT", ssig);
			if (r == 0)
				r = -EUCLEAN;
			goto out;
		}
		rep->content = strndup(o->sigfile, sl - 4);
		if (!rep->content) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (rep->content) {
		r = content_open(rep->content, &cont, error_out);
		if (r < 0)
			goto out;
	}
	r = anchors_load(o, &store, &n_anchors, error_out);
	if (r < 0)
		goto out;

	sis = CMS_get0_SignerInfos(cms);
	n = sis ? sk_CMS_SignerInfo_num(sis) : 0;
	if (n <= 0) {
		if (asprintf(&rep->error, "'%s' holds no signature (no SignerInfo)", ssig) < 0) {
			rep->error = NULL;
			r = -ENOMEM;
			goto out;
		}
		rep->conclusion = CLI_INVALID;
		r = 0;
		goto done;
	}
	rep->signers = calloc((size_t)n, sizeof(*rep->signers));
	why = calloc((size_t)n, sizeof(*why));
	if (!rep->signers || !why) {
		r = -ENOMEM;
		goto out;
	}
	rep->n_signers = (size_t)n;

	/* Finds each signer's certificate among those in the signature; -1 only on error. */
	(void)CMS_set1_signers_certs(cms, NULL, 0);
	ERR_clear_error();
	certs = CMS_get1_certs(cms);
	for (i = 0; i < (size_t)n; i++) {
		CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sis, (int)i);
		X509 *x = NULL;

		CMS_SignerInfo_get0_algs(si, NULL, &x, NULL, NULL);
		r = signer_describe(si, x, &rep->signers[i]);
		if (r < 0)
			goto out;
		if (!x) {
			why[i] = "the signer's certificate is not in the signature";
			rep->signers[i].trust_error = strdup("the signer's certificate is missing");
			if (!rep->signers[i].trust_error) {
				r = -ENOMEM;
				goto out;
			}
			continue;
		}
		if (n_anchors == 0) {
			rep->signers[i].trust_error = strdup("no trust anchors configured");
			if (!rep->signers[i].trust_error) {
				r = -ENOMEM;
				goto out;
			}
			continue;
		}
		r = trust_check(store, x, certs, &rep->signers[i].trust_error);
		if (r < 0)
			goto out;
		rep->signers[i].trusted = rep->signers[i].trust_error == NULL;
	}

	{
		_cleanup_free_ char *scont = cli_sanitize(rep->content ? rep->content :
									  "the embedded content");

		if (!scont) {
			r = -ENOMEM;
			goto out;
		}
		r = integrity_check(cms, sis, cont, why, scont, error_out);
	}
	if (r < 0)
		goto out;
	for (i = 0; i < (size_t)n; i++) {
		r = report_conclude(rep, i, why[i], n_anchors);
		if (r < 0)
			goto out;
	}
	r = 0;
done:
	*ret = TAKE_PTR(rep);
out:
	ERR_clear_error();
	sk_X509_pop_free(certs, X509_free);
	X509_STORE_free(store);
	BIO_free(cont);
	CMS_ContentInfo_free(cms);
	return r;
}

static json_object *
json_str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

int
cli_verify_report_json(const struct cli_verify_report *r, json_object **ret)
{
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();
	json_object *arr = json_object_new_array();
	size_t i;

	if (!o || !arr) {
		json_object_put(arr);
		return -ENOMEM;
	}
	json_object_object_add(o, "file", json_str_or_null(r->file));
	json_object_object_add(o, "content", json_str_or_null(r->content));
	json_object_object_add(o, "signatures", arr);
	for (i = 0; i < r->n_signers; i++) {
		const struct cli_signer_report *s = &r->signers[i];
		json_object *j = json_object_new_object();

		if (!j || json_object_array_add(arr, j) < 0) {
			json_object_put(j);
			return -ENOMEM;
		}
		json_object_object_add(j, "signer", json_str_or_null(s->signer));
		json_object_object_add(j, "signer_cn", json_str_or_null(s->signer_cn));
		json_object_object_add(j, "issuer", json_str_or_null(s->issuer));
		json_object_object_add(j, "serial", json_str_or_null(s->serial));
		json_object_object_add(j, "not_before", json_str_or_null(s->not_before));
		json_object_object_add(j, "not_after", json_str_or_null(s->not_after));
		json_object_object_add(j, "signing_time", json_str_or_null(s->signing_time));
		json_object_object_add(j, "integrity", json_object_new_boolean(s->integrity));
		json_object_object_add(j, "trusted", json_object_new_boolean(s->trusted));
		json_object_object_add(j, "trust_error", json_str_or_null(s->trust_error));
		json_object_object_add(j, "conclusion",
			json_object_new_string(cli_conclusion_name(s->conclusion)));
		json_object_object_add(j, "reason", json_str_or_null(s->reason));
	}
	json_object_object_add(o, "conclusion",
		json_object_new_string(cli_conclusion_name(r->conclusion)));
	json_object_object_add(o, "reason", json_str_or_null(r->error));
	*ret = TAKE_PTR(o);
	return 0;
}

/* "label:" then the sanitized value, or "-"; indented inside a signature's block. */
static void
field_print(FILE *f, int indent, const char *label, const char *value)
{
	_cleanup_free_ char *s = cli_sanitize(value);

	fprintf(f, "%*s%-*s%s\n", indent, "", 16 - indent, label, s ? s : "-");
}

int
cli_verify_report_print(const struct cli_verify_report *r, FILE *f)
{
	size_t i;

	field_print(f, 0, "file:", r->file);
	field_print(f, 0, "content:", r->content ? r->content : "(inside the signature)");
	if (r->error) {
		field_print(f, 0, "error:", r->error);
		field_print(f, 0, "conclusion:", cli_conclusion_name(r->conclusion));
		return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
	}
	for (i = 0; i < r->n_signers; i++) {
		const struct cli_signer_report *s = &r->signers[i];
		_cleanup_free_ char *validity = NULL, *integrity = NULL, *trust = NULL,
				    *conclusion = NULL, *signer = NULL;

		if (asprintf(&validity, "%s to %s", s->not_before ? s->not_before : "?",
			    s->not_after ? s->not_after : "?") < 0)
			validity = NULL;
		if (asprintf(&signer, "%s%s%s%s", s->signer_cn ? s->signer_cn : "",
			    s->signer_cn ? " (" : "", s->signer ? s->signer : "unknown",
			    s->signer_cn ? ")" : "") < 0)
			signer = NULL;
		if (asprintf(&integrity, "%s",
			    s->integrity ? "ok: the content is unchanged since it was signed" :
					   "FAILED") < 0)
			integrity = NULL;
		if (asprintf(&trust, "%s%s", s->trusted ? "trusted (chains to a trust anchor)" :
							  "not trusted: ",
			    s->trusted ? "" : (s->trust_error ? s->trust_error : "?")) < 0)
			trust = NULL;
		if (asprintf(&conclusion, "%s%s%s", cli_conclusion_name(s->conclusion),
			    s->reason ? ": " : "", s->reason ? s->reason : "") < 0)
			conclusion = NULL;
		if (!validity || !signer || !integrity || !trust || !conclusion)
			return -ENOMEM;

		fprintf(f, "\nsignature %zu of %zu\n", i + 1, r->n_signers);
		field_print(f, 2, "signer:", signer);
		field_print(f, 2, "issuer:", s->issuer);
		field_print(f, 2, "serial:", s->serial);
		field_print(f, 2, "valid:", s->signer ? validity : NULL);
		field_print(f, 2, "signing time:", s->signing_time ? s->signing_time : "not stated");
		field_print(f, 2, "integrity:", integrity);
		field_print(f, 2, "certificate:", trust);
		field_print(f, 2, "conclusion:", conclusion);
	}
	fputc('\n', f);
	field_print(f, 0, "conclusion:", cli_conclusion_name(r->conclusion));
	return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}

static int
verify_run(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca", required_argument, NULL, 'c' },
		CLI_COMMON_OPTIONS,
		{},
	};
	const struct cli_cmd *cmd = &cli_cmd_verify;
	_cleanup_(cli_verify_report_freep) struct cli_verify_report *rep = NULL;
	_cleanup_(json_object_putp) json_object *j = NULL;
	_cleanup_free_ char *error = NULL;
	const char *cas[VERIFY_CAS_MAX + 1] = {};
	struct cli_verify_opts o = { .cas = cas, .anchors_dir = PARAF_SYSCONFDIR "/anchors" };
	size_t n_cas = 0;
	int c, r;

	r = cli_opts_exact(cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (n_cas == VERIFY_CAS_MAX)
				return cli_usage_error(cmd, "verify: at most %d '--ca' options",
					VERIFY_CAS_MAX);
			if (!*optarg)
				return cli_usage_error(cmd, "verify: '--ca' needs a file name");
			cas[n_cas++] = optarg;
			break;
		default:
			r = cli_opt_common(ctx, cmd, c, argv);
			if (r != CLI_OPT_CONTINUE)
				return r;
		}
	}
	if (optind >= argc)
		return cli_usage_error(cmd, "verify: missing SIGFILE");
	if (argc - optind > 2)
		return cli_usage_error(cmd, "verify: unexpected argument '%s'", argv[optind + 2]);
	o.sigfile = argv[optind];
	o.content = argc - optind == 2 ? argv[optind + 1] : NULL;

	r = cli_verify_run(&o, &rep, &error);
	if (r == -EUCLEAN)
		return cli_usage_error(cmd, "verify: %s", error);
	if (r < 0) {
		cli_error("%s", error ? error : strerror(-r));
		return CLI_EXIT_LOCAL;
	}
	if (ctx->json) {
		if (cli_verify_report_json(rep, &j) < 0 || cli_json_print(j) < 0)
			return CLI_EXIT_LOCAL;
	} else if (cli_verify_report_print(rep, stdout) < 0)
		return CLI_EXIT_LOCAL;
	return rep->conclusion == CLI_VALID ? CLI_EXIT_OK : CLI_EXIT_NOT_VALID;
}

const struct cli_cmd cli_cmd_verify = {
	.name = "verify",
	.summary = "verify a detached CMS signature offline: VALID, INVALID or INDETERMINATE",
	.usage = verify_usage,
	.run = verify_run,
};
