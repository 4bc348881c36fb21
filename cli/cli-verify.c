/*
 * `paraf verify`: checks signatures offline, without the agent, and reports for each what R11
 * asks for: signer (name, NIP), signing time (a timestamp's, else the claimed one), integrity,
 * whether the certificate is trusted, verified and valid at the signing time, its issuer, and a
 * conclusion VALID, INVALID or INDETERMINATE with the reason (doc/verification.md). The file is
 * a detached (or embedded) CMS signature, or a PDF, told apart by the "%PDF-" header; in a PDF
 * every signature field is reported, in the order the signatures were applied.
 *
 * This file holds the command and the two containers; cli-verify-cms.c checks one SignedData,
 * cli-verify-trust.c the certificates, cli-verify-tst.c timestamps, cli-verify-report.c the
 * conclusion and the output; pdf/pdf-sigs.c reads the PDF.
 */
#include "cli.h"

#include <fcntl.h>
#include <getopt.h>
#include <sys/stat.h>

/* pem.h first: cms.h declares PEM_read_bio_CMS() only when it is included. */
#include <openssl/pem.h>
#include <openssl/cms.h>
#include <openssl/err.h>

#include "paraf-config.h"
#include "pdf-sigs.h"

static const char verify_usage[] =
	"Usage: paraf verify [--ca FILE]... [--crl FILE]... [--crl-dir DIR] [--json]\n"
	"                    SIGFILE [CONTENT]\n"
	"       paraf verify [options] FILE.pdf\n"
	"\n"
	"Verifies signatures offline (the agent is not needed): a CMS signature file (DER or\n"
	"PEM) over CONTENT, which defaults to SIGFILE without its .p7s suffix; or every\n"
	"signature in a PDF. For each signature it shows the signer (name, NIP), the signing\n"
	"time (a timestamp's, else the time the signer claims), integrity, whether the\n"
	"certificate is trusted, verified and valid at the signing time (dates, CRLs), the\n"
	"issuer, and a conclusion:\n"
	"  VALID          intact, by a certificate that chains to a trust anchor and was valid\n"
	"                 and not revoked when it signed\n"
	"  INVALID        the content or a signature does not check out, or the certificate\n"
	"                 was expired or revoked when it signed\n"
	"  INDETERMINATE  not shown either way: the certificate is not trusted (or no anchors),\n"
	"                 revocation is unknown (no current CRL), the document was changed\n"
	"                 after signing by something other than a signature...\n"
	"\n"
	"  --ca FILE      a trust anchor file (PEM, one or more certificates; TSA and\n"
	"                 intermediate certificates too); may be repeated. Without --ca:\n"
	"                 every certificate file in " PARAF_SYSCONFDIR "/anchors\n"
	"  --crl FILE     a CRL (PEM or DER); may be repeated\n"
	"  --crl-dir DIR  every CRL file in DIR. Without --crl and --crl-dir:\n"
	"                 " PARAF_SYSCONFDIR "/crl\n"
	"  --json         print the report as JSON (doc/verification.md)\n"
	"\n"
	"Exit status 0 when every signature is VALID, 1 otherwise.\n";

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

/* The report's file-level error: no signature could be reported. */
static int
report_fail(struct cli_verify_report *rep, enum cli_conclusion c, const char *fmt, ...)
	_printf_(3, 4);

static int
report_fail(struct cli_verify_report *rep, enum cli_conclusion c, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&rep->error, fmt, ap);
	va_end(ap);
	if (n < 0) {
		rep->error = NULL;
		return -ENOMEM;
	}
	rep->conclusion = c;
	return 0;
}

/* 1 when path is a regular file that starts like a PDF. */
static int
file_is_pdf(const char *path, int *ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	uint8_t head[PDF_HEADER_SCAN];
	struct stat st;
	size_t n = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		return pf_negerrno();
	*ret = 0;
	if (!S_ISREG(st.st_mode))
		return 0; /* a pipe may still hold a signature: read as CMS */
	while (n < sizeof(head)) {
		ssize_t k = read(fd, head + n, sizeof(head) - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return pf_negerrno();
		if (k == 0)
			break;
		n += (size_t)k;
	}
	/* A DER CMS with the PDF it signs embedded has "%PDF-" near its start too. */
	*ret = !(n > 0 && head[0] == 0x30) && pdf_sigs_is_pdf(head, n);
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

static void
conclude_report(struct cli_verify_report *rep)
{
	rep->conclusion = CLI_VALID;
	for (size_t i = 0; i < rep->n_signers; i++)
		if (rep->signers[i].conclusion > rep->conclusion)
			rep->conclusion = rep->signers[i].conclusion;
}

static int
verify_cms(const struct cli_verify_opts *o, time_t now, struct cli_verify_report *rep,
	char **error_out)
{
	_cleanup_(cli_trust_freep) struct cli_trust *t = NULL;
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_free_ char *ssig = cli_sanitize(o->sigfile), *scont = NULL;
	CMS_ContentInfo *cms = NULL;
	STACK_OF(CMS_SignerInfo) *sis;
	BIO *cont = NULL;
	size_t len;
	int r, n;

	if (!ssig)
		return -ENOMEM;
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
		r = report_fail(rep, CLI_INVALID,
			"'%s' is not a CMS SignedData signature (DER or PEM)%s%s", ssig,
			cms ? "" : ": ", cms ? "" : cli_openssl_error());
		goto out;
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
	r = cli_trust_load(o, now, &t, error_out);
	if (r < 0)
		goto out;
	rep->n_anchors = cli_trust_n_anchors(t);
	rep->n_crls = cli_trust_n_crls(t);

	sis = CMS_get0_SignerInfos(cms);
	n = sis ? sk_CMS_SignerInfo_num(sis) : 0;
	if (n <= 0) {
		r = report_fail(rep, CLI_INVALID, "'%s' holds no signature (no SignerInfo)", ssig);
		goto out;
	}
	rep->signers = calloc((size_t)n, sizeof(*rep->signers));
	if (!rep->signers) {
		r = -ENOMEM;
		goto out;
	}
	rep->n_signers = (size_t)n;
	scont = cli_sanitize(rep->content ? rep->content : "the embedded content");
	if (!scont) {
		r = -ENOMEM;
		goto out;
	}
	r = cli_verify_signed_data(t, cms, cont, scont, NULL, rep->signers, rep->n_signers,
		error_out);
	if (r < 0)
		goto out;
	conclude_report(rep);
out:
	ERR_clear_error();
	BIO_free(cont);
	CMS_ContentInfo_free(cms);
	return r;
}

/*
 * What can still be said of a PDF signature that cannot be checked: the time its dictionary
 * claims, and who the CMS in /Contents names, if it can be read (nothing of it is checked).
 */
static int
pdf_sig_describe(struct cli_signer_report *s, const struct pdf_sig *p)
{
	const unsigned char *der = p->contents;
	CMS_ContentInfo *cms;
	STACK_OF(CMS_SignerInfo) *sis;
	X509 *x = NULL;
	int r = 0;

	if (p->m_valid) {
		struct tm tm;
		char buf[32];

		if (gmtime_r(&p->m_time, &tm) &&
		    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) &&
		    (!(s->claimed_time = strdup(buf)) || !(s->signing_time = strdup(buf))))
			return -ENOMEM;
		s->time_source = CLI_TIME_CLAIMED;
		s->time = p->m_time;
	}
	if (!der || !p->contents_len)
		return 0;
	cms = d2i_CMS_ContentInfo(NULL, &der, (long)p->contents_len);
	sis = cms && OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_signed ?
		      CMS_get0_SignerInfos(cms) :
		      NULL;
	if (sis && sk_CMS_SignerInfo_num(sis) == 1) {
		(void)CMS_set1_signers_certs(cms, NULL, 0);
		CMS_SignerInfo_get0_algs(sk_CMS_SignerInfo_value(sis, 0), NULL, &x, NULL, NULL);
		if (x)
			r = cli_signer_identify(NULL, x, s);
	}
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	return r;
}

static int
sig_format_error(struct cli_signer_report *s, const struct pdf_sig *p, int unsupported,
	const char *fmt, ...) _printf_(4, 5);

static int
sig_format_error(struct cli_signer_report *s, const struct pdf_sig *p, int unsupported,
	const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s->format_error, fmt, ap);
	va_end(ap);
	if (n < 0) {
		s->format_error = NULL;
		return -ENOMEM;
	}
	s->unsupported = unsupported;
	s->integrity_state = CLI_INTEGRITY_FORMAT;
	s->cert_status = "unknown";
	s->cert_validity = CLI_CERT_UNKNOWN;
	s->chain = CLI_CHAIN_INCOMPLETE;
	s->revocation = CLI_REV_UNCHECKED;
	return pdf_sig_describe(s, p);
}

static int
pdf_sig_report_fill(const struct pdf_sigs *sigs, const struct pdf_sig *p,
	struct cli_signer_report *s)
{
	struct cli_pdf_sig_report *d = &s->pdf;

	s->is_pdf = 1;
	if ((p->field && !(d->field = strdup(p->field))) ||
	    (p->sub_filter && !(d->sub_filter = strdup(p->sub_filter))) ||
	    (p->name && !(d->name = strdup(p->name))) ||
	    (p->reason && !(d->reason = strdup(p->reason))) ||
	    (p->location && !(d->location = strdup(p->location))) ||
	    (p->appended_detail && !(d->appended_detail = strdup(p->appended_detail))))
		return -ENOMEM;
	d->file_size = sigs->size;
	if (p->error)
		return 0;
	d->has_byte_range = 1;
	memcpy(d->byte_range, p->byte_range, sizeof(d->byte_range));
	d->signed_end = p->signed_end;
	d->whole_file = p->whole_file;
	d->appended_bytes = p->appended_bytes;
	d->appended = p->appended == PDF_APPENDED_NONE	     ? CLI_APPENDED_NONE :
		      p->appended == PDF_APPENDED_SIGNATURES ? CLI_APPENDED_SIGNATURES :
							       CLI_APPENDED_OTHER;
	d->appended_revisions = p->appended_revisions;
	d->later_signatures = p->later_signatures;
	return 0;
}

/* One signature of a PDF: what can be checked, checked; what cannot, said. */
static int
verify_pdf_sig(struct cli_trust *t, struct pdf_sigs *sigs, size_t i, const char *spath,
	struct cli_signer_report *s, char **error_out)
{
	const struct pdf_sig *p = &sigs->sigs[i];
	CMS_ContentInfo *cms = NULL;
	STACK_OF(CMS_SignerInfo) *sis;
	const unsigned char *der;
	struct cli_claim claim = { .has_time = p->m_valid, .time = p->m_time };
	BIO *range = NULL;
	int r, n;

	r = pdf_sig_report_fill(sigs, p, s);
	if (r < 0)
		return r;
	if (p->error) {
		r = sig_format_error(s, p, 0, "the signature's bytes cannot be located: %s",
			p->error);
		goto conclude;
	}
	/* What PAdES and Adobe's detached PKCS#7 make; the rest is said, not guessed at. */
	if (!p->sub_filter || (!streq(p->sub_filter, "ETSI.CAdES.detached") &&
				      !streq(p->sub_filter, "adbe.pkcs7.detached"))) {
		if (p->sub_filter && streq(p->sub_filter, "ETSI.RFC3161"))
			r = sig_format_error(s, p, 1, "a document timestamp (/SubFilter "
						   "/ETSI.RFC3161), which paraf does not verify");
		else
			r = sig_format_error(s, p, 1,
				"its /SubFilter is %s%s: paraf verifies /ETSI.CAdES.detached and "
				"/adbe.pkcs7.detached signatures",
				p->sub_filter ? "/" : "missing", p->sub_filter ? p->sub_filter : "");
		goto conclude;
	}
	der = p->contents;
	ERR_clear_error();
	cms = d2i_CMS_ContentInfo(NULL, &der, (long)p->contents_len);
	if (!cms || der != p->contents + p->contents_len ||
	    OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		r = sig_format_error(s, p, 0, "its /Contents is not a CMS SignedData");
		goto conclude;
	}
	sis = CMS_get0_SignerInfos(cms);
	n = sis ? sk_CMS_SignerInfo_num(sis) : 0;
	if (n != 1) {
		r = sig_format_error(s, p, 0,
			"its CMS holds %d SignerInfos where a PDF signature holds exactly one", n);
		goto conclude;
	}
	if (CMS_is_detached(cms) != 1) {
		r = sig_format_error(s, p, 0,
			"its CMS carries content of its own: it does not sign the document's bytes");
		goto conclude;
	}
	r = pdf_sig_range_bio(sigs, i, &range);
	if (r < 0)
		goto out;
	r = cli_verify_signed_data(t, cms, range, spath, &claim, s, 1, error_out);
	if (r < 0 || s->integrity_state != CLI_INTEGRITY_HASH_FAILURE)
		goto out;
	/* Said for a PDF: what changed is the document's signed bytes. */
	free(s->integrity_error);
	s->integrity_error = strdup("the signed bytes of the document were changed after "
				    "signing (their digest is not the one signed)");
	r = s->integrity_error ? 0 : -ENOMEM;
	goto conclude;
conclude:
	if (r >= 0)
		r = cli_signer_conclude(t, s);
out:
	ERR_clear_error();
	BIO_free(range);
	CMS_ContentInfo_free(cms);
	return r;
}

static int
verify_pdf(const struct cli_verify_opts *o, time_t now, struct cli_verify_report *rep,
	char **error_out)
{
	_cleanup_(cli_trust_freep) struct cli_trust *t = NULL;
	_cleanup_free_ char *spath = cli_sanitize(o->sigfile), *err = NULL;
	struct pdf_sigs *sigs = NULL;
	int r;

	if (!spath)
		return -ENOMEM;
	rep->is_pdf = 1;
	r = pdf_sigs_read(o->sigfile, &sigs, &err);
	if (r == -ENOMEM)
		return r;
	if (r < 0 && r != -EACCES && r != -EUCLEAN && r != -ENOTRECOVERABLE && r != -E2BIG) {
		*error_out = cli_sanitize(err);
		return r;
	}
	r = cli_trust_load(o, now, &t, error_out);
	if (r < 0)
		goto out;
	rep->n_anchors = cli_trust_n_anchors(t);
	rep->n_crls = cli_trust_n_crls(t);
	if (!sigs) {
		_cleanup_free_ char *serr = cli_sanitize(err);

		r = report_fail(rep, CLI_INDETERMINATE, "%s", serr ? serr : "cannot read the PDF");
		goto out;
	}
	rep->unsigned_fields = sigs->unsigned_fields;
	if (sigs->n == 0) {
		r = report_fail(rep, CLI_INVALID, "'%s' holds no signature%s", spath,
			sigs->unsigned_fields ? " (only empty signature fields)" : "");
		goto out;
	}
	rep->signers = calloc(sigs->n, sizeof(*rep->signers));
	if (!rep->signers) {
		r = -ENOMEM;
		goto out;
	}
	rep->n_signers = sigs->n;
	for (size_t i = 0; i < sigs->n && r >= 0; i++)
		r = verify_pdf_sig(t, sigs, i, spath, &rep->signers[i], error_out);
	if (r >= 0)
		conclude_report(rep);
out:
	pdf_sigs_free(sigs);
	return r;
}

int
cli_verify_run(const struct cli_verify_opts *o, struct cli_verify_report **ret, char **error_out)
{
	_cleanup_(cli_verify_report_freep) struct cli_verify_report *rep = NULL;
	_cleanup_free_ char *ssig = cli_sanitize(o->sigfile);
	time_t now = o->now ? o->now : time(NULL);
	struct tm tm;
	char buf[32];
	int r, is_pdf;

	*error_out = NULL;
	if (!ssig)
		return -ENOMEM;
	rep = calloc(1, sizeof(*rep));
	if (!rep || !(rep->file = strdup(o->sigfile)))
		return -ENOMEM;
	if (gmtime_r(&now, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) &&
	    !(rep->time = strdup(buf)))
		return -ENOMEM;

	r = file_is_pdf(o->sigfile, &is_pdf);
	if (r < 0)
		return set_error(error_out, "cannot read '%s': %s", ssig, strerror(-r)) < 0 ?
			       -ENOMEM :
			       r;
	if (is_pdf && o->content)
		return set_error(error_out,
			       "'%s' is a PDF: its signatures are inside it, give no CONTENT",
			       ssig) < 0 ?
			       -ENOMEM :
			       -EUCLEAN;
	r = is_pdf ? verify_pdf(o, now, rep, error_out) : verify_cms(o, now, rep, error_out);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(rep);
	return 0;
}

static int
verify_run(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca", required_argument, NULL, 'c' },
		{ "crl", required_argument, NULL, 'r' },
		{ "crl-dir", required_argument, NULL, 'd' },
		CLI_COMMON_OPTIONS,
		{},
	};
	const struct cli_cmd *cmd = &cli_cmd_verify;
	_cleanup_(cli_verify_report_freep) struct cli_verify_report *rep = NULL;
	_cleanup_(json_object_putp) json_object *j = NULL;
	_cleanup_free_ char *error = NULL;
	const char *cas[CLI_VERIFY_FILES_MAX + 1] = {}, *crls[CLI_VERIFY_FILES_MAX + 1] = {};
	struct cli_verify_opts o = {
		.cas = cas,
		.anchors_dir = PARAF_SYSCONFDIR "/anchors",
		.crls = crls,
		.crl_dir = PARAF_SYSCONFDIR "/crl",
		.owners_dir = PARAF_SYSCONFDIR "/owners.d",
	};
	size_t n_cas = 0, n_crls = 0;
	int c, r;

	r = cli_opts_exact(cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (n_cas == CLI_VERIFY_FILES_MAX)
				return cli_usage_error(cmd, "verify: at most %d '--ca' options",
					CLI_VERIFY_FILES_MAX);
			if (!*optarg)
				return cli_usage_error(cmd, "verify: '--ca' needs a file name");
			cas[n_cas++] = optarg;
			break;
		case 'r':
			if (n_crls == CLI_VERIFY_FILES_MAX)
				return cli_usage_error(cmd, "verify: at most %d '--crl' options",
					CLI_VERIFY_FILES_MAX);
			if (!*optarg)
				return cli_usage_error(cmd, "verify: '--crl' needs a file name");
			crls[n_crls++] = optarg;
			break;
		case 'd':
			if (o.crl_dir_given)
				return cli_usage_error(cmd, "verify: '--crl-dir' given twice");
			if (!*optarg)
				return cli_usage_error(cmd, "verify: '--crl-dir' needs a directory");
			o.crl_dir = optarg;
			o.crl_dir_given = 1;
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
	.summary = "verify CMS signatures and a PDF's signatures offline: VALID, INVALID or "
		   "INDETERMINATE",
	.usage = verify_usage,
	.run = verify_run,
};
