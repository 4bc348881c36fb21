/*
 * `paraf sign-pdf`: signs PDFs in PAdES baseline B-B (B-T with --tsa) as incremental updates
 * (pdf/, doc/pdf.md). For each input it reads the PDF with qpdf, refuses what must not be
 * signed, copies the input into a temporary file beside the output while hashing it (the
 * document id of the verification URL, and the first part of the ByteRange), appends the
 * update with a /Contents hole sized from the certificate, and hashes the rest of the
 * ByteRange. Then one `sign` request (format cms, profile pades) covers every input with one
 * PIN (R1), typed in parafd's own dialog (R2); each CMS is checked, timestamped with --tsa,
 * written into its hole, and each output renamed into place. Invisible by default (R12);
 * --visible draws the QR code, signature block and footer of R10 from an appearance file.
 * On any error before the outputs are renamed, nothing is left behind.
 */
#include "cli.h"

#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "paraf-config.h"
#include "pdf-write.h"
#include "pf-codec.h"

#define SPDF_ROUNDS_MAX 2 /* sign requests: the first, and one with larger holes */

static const char spdf_usage[] =
	"Usage: paraf sign-pdf IN.pdf -o OUT.pdf --cert ID [options]\n"
	"       paraf sign-pdf A.pdf B.pdf ... --cert ID [-o DIR] [options]\n"
	"\n"
	"Signs PDF documents (PAdES baseline B-B; B-T with --tsa) with the key of the\n"
	"certificate ID, all of them with one PIN, typed in parafd's PIN dialog. The signature\n"
	"is appended to the document as an incremental update: the original bytes are kept\n"
	"unchanged, and earlier signatures stay valid. Invisible by default; --visible draws\n"
	"the QR code, the signature block and the footer the regulation asks for (R10).\n"
	"\n"
	"  -o, --output PATH  one input: the signed file (or an existing directory to put it\n"
	"                     in); several inputs: an existing directory, each output keeping\n"
	"                     its input's name. Default: NAME-signed.pdf beside each input\n"
	"  --in-place         replace each input by its signed version (atomically)\n"
	"  --force            replace existing outputs\n"
	"  --cert ID          the certificate's id as 'paraf certs' shows it (64 hex digits,\n"
	"                     or a unique prefix of at least 8)\n"
	"  --visible          draw the visible signature (QR code, block, footer)\n"
	"  --page N|last      the page of the signature (1 is the first); default last\n"
	"  --at X,Y           the block's lower-left corner, in points from the page's\n"
	"                     lower-left corner as displayed (default: bottom right, above\n"
	"                     the footer)\n"
	"  --appearance FILE  the appearance template (default " PARAF_SYSCONFDIR
	"/appearance.conf)\n"
	"  --reason TEXT      the signature's /Reason\n"
	"  --location TEXT    the signature's /Location\n"
	"  --tsa URL          add an RFC 3161 timestamp from this http:// or https:// server\n"
	"  --json             print what was written as JSON\n"
	"\n"
	"Outputs are written atomically; an existing one is never replaced without --force.\n"
	"Encrypted, damaged, truncated and page-less PDFs are refused. At most 1000 files at once.\n";

struct spdf_args {
	char *cert;
	const char *output;
	bool visible, in_place, force, at_given;
	int page; /* 1-based; 0: the last */
	double at_x, at_y;
	const char *reason, *location, *tsa, *appearance;
	char **files;
	size_t n_files;
};

struct spdf_doc {
	const char *path;
	const char *name; /* the basename, inside path: the document's name for the agent */
	char *out_path;
	dev_t dev;
	ino_t ino;
	uint64_t size;
	struct pdf_out out;
	struct pdf_update *u;
	size_t contents_max;
	unsigned char digest[32];
	char doc_id[65];
	uint8_t *cms;
	size_t cms_len;
	bool again; /* its CMS did not fit: built again with a larger hole */
};

/* What the signer's certificate says, for the update. */
struct spdf_signer {
	const char *cert_id;
	X509 *x;
	size_t cert_len, sig_len;
	char *name, *nip, *position, *issuer_line;
};

/*
 * The temporary outputs exist from before the PIN dialog until the renames: an interrupted
 * paraf (Ctrl-C at the dialog) removes them, as it does on any error, so nothing is left
 * behind. unlink() is async-signal-safe; the paths are cleared before they are freed.
 */
static struct spdf_doc *volatile spdf_live_docs;
static volatile size_t spdf_live_n;

static void
spdf_on_signal(int sig)
{
	struct spdf_doc *docs = spdf_live_docs;
	size_t i;

	for (i = 0; docs && i < spdf_live_n; i++) {
		const char *tmp = docs[i].out.tmp;

		if (tmp)
			(void)unlink(tmp);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
spdf_signals_catch(struct spdf_doc *docs, size_t n)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct sigaction sa = { .sa_handler = spdf_on_signal };
	size_t i;

	spdf_live_n = n;
	spdf_live_docs = docs;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaddset(&sa.sa_mask, sigs[i]);
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		(void)sigaction(sigs[i], &sa, NULL);
}

static void
spdf_signer_release(struct spdf_signer *s)
{
	X509_free(s->x);
	free(s->name);
	free(s->nip);
	free(s->position);
	free(s->issuer_line);
}

static int
spdf_parse_page(const char *s, int *ret)
{
	char *end;
	long v;

	if (streq(s, "last")) {
		*ret = 0;
		return 0;
	}
	if (*s < '1' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 1000000)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

static int
spdf_parse_at(const char *s, double *x, double *y)
{
	char *end;

	errno = 0;
	*x = strtod(s, &end);
	if (errno || end == s || *end != ',')
		return -EINVAL;
	s = end + 1;
	*y = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(*x) || !isfinite(*y) || *x < 0 || *y < 0)
		return -EINVAL;
	return 0;
}

static int
spdf_text_ok(const struct cli_cmd *cmd, const char *opt, const char *v)
{
	if (strlen(v) > PDF_TEXT_MAX || !cli_text_is_displayable(v, strlen(v)))
		return cli_usage_error(cmd,
			"sign-pdf: '%s' must be UTF-8 text of at most %d bytes without control "
			"characters",
			opt, PDF_TEXT_MAX);
	return CLI_OPT_CONTINUE;
}

static int
spdf_args_parse(struct cli_ctx *ctx, int argc, char **argv, struct spdf_args *a)
{
	enum {
		OPT_CERT = 0x200,
		OPT_VISIBLE,
		OPT_PAGE,
		OPT_AT,
		OPT_REASON,
		OPT_LOCATION,
		OPT_TSA,
		OPT_APPEARANCE,
		OPT_IN_PLACE,
		OPT_FORCE,
	};
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "cert", required_argument, NULL, OPT_CERT },
		{ "visible", no_argument, NULL, OPT_VISIBLE },
		{ "page", required_argument, NULL, OPT_PAGE },
		{ "at", required_argument, NULL, OPT_AT },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "location", required_argument, NULL, OPT_LOCATION },
		{ "tsa", required_argument, NULL, OPT_TSA },
		{ "appearance", required_argument, NULL, OPT_APPEARANCE },
		{ "in-place", no_argument, NULL, OPT_IN_PLACE },
		{ "force", no_argument, NULL, OPT_FORCE },
		CLI_COMMON_OPTIONS,
		{},
	};
	const struct cli_cmd *cmd = &cli_cmd_sign_pdf;
	const char *cert = NULL, *page = NULL, *at = NULL;
	int c, r;

	r = cli_opts_exact(cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			a->output = optarg;
			break;
		case OPT_CERT:
			cert = optarg;
			break;
		case OPT_VISIBLE:
			a->visible = true;
			break;
		case OPT_PAGE:
			page = optarg;
			break;
		case OPT_AT:
			at = optarg;
			break;
		case OPT_REASON:
			a->reason = optarg;
			break;
		case OPT_LOCATION:
			a->location = optarg;
			break;
		case OPT_TSA:
			a->tsa = optarg;
			break;
		case OPT_APPEARANCE:
			a->appearance = optarg;
			break;
		case OPT_IN_PLACE:
			a->in_place = true;
			break;
		case OPT_FORCE:
			a->force = true;
			break;
		default:
			r = cli_opt_common(ctx, cmd, c, argv);
			if (r != CLI_OPT_CONTINUE)
				return r;
		}
	}
	if (!cert)
		return cli_usage_error(cmd, "sign-pdf: missing '--cert ID' (see 'paraf certs')");
	r = cli_hex_normalize(cert, &a->cert);
	if (r == -ENOMEM)
		return CLI_EXIT_LOCAL;
	if (r < 0 || strlen(a->cert) < CLI_CERT_PREFIX_MIN || strlen(a->cert) > CLI_CERT_ID_LEN)
		return cli_usage_error(cmd,
			"sign-pdf: '--cert %s' must be a certificate id: %d hex digits, or a "
			"prefix of at least %d",
			cert, CLI_CERT_ID_LEN, CLI_CERT_PREFIX_MIN);
	if (page && spdf_parse_page(page, &a->page) < 0)
		return cli_usage_error(cmd, "sign-pdf: '--page %s' must be a page number (1 is "
					    "the first) or 'last'",
			page);
	if (at) {
		if (!a->visible)
			return cli_usage_error(cmd, "sign-pdf: '--at' places the visible "
						    "signature: it needs --visible");
		if (spdf_parse_at(at, &a->at_x, &a->at_y) < 0)
			return cli_usage_error(cmd, "sign-pdf: '--at %s' must be X,Y: two "
						    "non-negative numbers of points",
				at);
		a->at_given = true;
	}
	if (a->appearance && !a->visible)
		return cli_usage_error(cmd, "sign-pdf: '--appearance' is for a visible signature: "
					    "it needs --visible");
	if (a->appearance && !*a->appearance)
		return cli_usage_error(cmd, "sign-pdf: '--appearance' needs a file name");
	if (a->reason && (r = spdf_text_ok(cmd, "--reason", a->reason)) != CLI_OPT_CONTINUE)
		return r;
	if (a->location &&
	    (r = spdf_text_ok(cmd, "--location", a->location)) != CLI_OPT_CONTINUE)
		return r;
	if (a->tsa && !pdf_tsa_url_valid(a->tsa))
		return cli_usage_error(cmd, "sign-pdf: '--tsa %s' must be an http:// or https:// "
					    "URL",
			a->tsa);
	if (a->in_place && a->output)
		return cli_usage_error(cmd, "sign-pdf: '--in-place' and '-o' exclude each other");
	if (a->output && !*a->output)
		return cli_usage_error(cmd, "sign-pdf: '-o' needs a path");
	if (optind >= argc)
		return cli_usage_error(cmd, "sign-pdf: missing IN.pdf");
	a->files = argv + optind;
	a->n_files = (size_t)(argc - optind);
	if (a->n_files > CLI_DOCUMENTS_MAX)
		return cli_usage_error(cmd, "sign-pdf: %zu files given, at most %d are signed at "
					    "once",
			a->n_files, CLI_DOCUMENTS_MAX);
	return CLI_OPT_CONTINUE;
}

static void
spdf_docs_free(struct spdf_doc *docs, size_t n)
{
	size_t i;

	if (!docs)
		return;
	for (i = 0; i < n; i++) {
		pdf_out_discard(&docs[i].out);
		pdf_update_free(docs[i].u);
		free(docs[i].out_path);
		free(docs[i].cms);
	}
	free(docs);
}

static int
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* NAME-signed.pdf beside the input (NAME without its .pdf). */
static char *
spdf_default_out(const char *path)
{
	size_t n = strlen(path);
	char *s;

	if (n > 4 && strcasecmp(path + n - 4, ".pdf") == 0)
		n -= 4;
	if (asprintf(&s, "%.*s-signed.pdf", (int)n, path) < 0)
		return NULL;
	return s;
}

/*
 * Names and outputs, and the checks that need neither the agent nor the PDF: every input a
 * distinct regular file, every output distinct, absent (or --force) and in a writable
 * directory. Reports every problem, not the first.
 */
static int
spdf_docs_prepare(const struct spdf_args *a, struct spdf_doc **ret)
{
	const struct cli_cmd *cmd = &cli_cmd_sign_pdf;
	struct spdf_doc *docs;
	int status = CLI_EXIT_OK, out_dir = 0;
	size_t i, j;

	if (a->output && a->n_files > 1 && !is_dir(a->output)) {
		_cleanup_free_ char *s = cli_sanitize(a->output);

		return cli_usage_error(cmd, "sign-pdf: with several inputs '-o %s' must be an "
					    "existing directory",
			s ? s : "");
	}
	if (a->output)
		out_dir = is_dir(a->output);
	docs = calloc(a->n_files, sizeof(*docs));
	if (!docs)
		return CLI_EXIT_LOCAL;
	for (i = 0; i < a->n_files; i++)
		docs[i].out.fd = -1;
	for (i = 0; i < a->n_files; i++) {
		struct spdf_doc *d = &docs[i];
		_cleanup_free_ char *spath = cli_sanitize(a->files[i]);
		_cleanup_free_ char *sout = NULL, *dcopy = NULL;
		const char *slash;
		struct stat st;

		d->path = a->files[i];
		slash = strrchr(d->path, '/');
		d->name = slash ? slash + 1 : d->path;
		if (a->in_place)
			d->out_path = strdup(d->path);
		else if (out_dir) {
			if (asprintf(&d->out_path, "%s/%s", a->output, d->name) < 0)
				d->out_path = NULL;
		} else if (a->output)
			d->out_path = strdup(a->output);
		else
			d->out_path = spdf_default_out(d->path);
		if (!spath || !d->out_path || !(sout = cli_sanitize(d->out_path))) {
			spdf_docs_free(docs, a->n_files);
			return CLI_EXIT_LOCAL;
		}
		if (!*d->name) {
			status = cli_usage_error(cmd, "sign-pdf: '%s' is not a file name", spath);
			break;
		}
		/* The agent shows the name when it asks for the PIN: refuse now what it would. */
		if (!cli_text_is_displayable(d->name, strlen(d->name))) {
			status = cli_usage_error(cmd,
				"sign-pdf: the name of '%s' has control or bidirectional-override "
				"characters, or is not UTF-8: rename the file",
				spath);
			break;
		}
		if (stat(d->path, &st) < 0) {
			cli_error("cannot read '%s': %s", spath, strerror(errno));
			status = CLI_EXIT_LOCAL;
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			cli_error("cannot sign '%s': not a regular file", spath);
			status = CLI_EXIT_LOCAL;
			continue;
		}
		d->dev = st.st_dev;
		d->ino = st.st_ino;
		for (j = 0; j < i; j++) {
			if (docs[j].dev == d->dev && docs[j].ino == d->ino) {
				_cleanup_free_ char *other = cli_sanitize(docs[j].path);

				status = cli_usage_error(cmd, "sign-pdf: '%s' and '%s' are the same "
							      "file",
					other ? other : "", spath);
				break;
			}
			if (docs[j].out_path && streq(docs[j].out_path, d->out_path)) {
				status = cli_usage_error(cmd, "sign-pdf: two inputs would be written "
							      "to '%s'",
					sout);
				break;
			}
		}
		if (status == CLI_EXIT_USAGE)
			break;
		if (!a->in_place) {
			if (lstat(d->out_path, &st) == 0) {
				if (!a->force) {
					cli_error("'%s' exists: not replaced without --force", sout);
					status = CLI_EXIT_LOCAL;
					continue;
				}
				if (!S_ISREG(st.st_mode)) {
					cli_error("cannot write '%s': not a regular file", sout);
					status = CLI_EXIT_LOCAL;
					continue;
				}
			} else if (errno != ENOENT) {
				cli_error("cannot write '%s': %s", sout, strerror(errno));
				status = CLI_EXIT_LOCAL;
				continue;
			}
		}
		dcopy = strdup(d->out_path);
		if (!dcopy) {
			spdf_docs_free(docs, a->n_files);
			return CLI_EXIT_LOCAL;
		}
		slash = strrchr(dcopy, '/');
		if (slash)
			dcopy[slash - dcopy + 1] = 0;
		if (access(slash ? dcopy : ".", W_OK | X_OK) < 0) {
			cli_error("cannot write '%s': its directory: %s", sout, strerror(errno));
			status = CLI_EXIT_LOCAL;
		}
	}
	if (status != CLI_EXIT_OK) {
		spdf_docs_free(docs, a->n_files);
		return status;
	}
	*ret = docs;
	return CLI_EXIT_OK;
}

/* The signer's name, NIP, position and issuer, from the registry (certificates.list's
 * owner), else from the certificate: CN, and a subject serialNumber "NIP...". */
static int
spdf_signer_init(json_object *cert, struct spdf_signer *s)
{
	json_object *owner = cli_json_obj(cert, "owner", json_type_object);
	const X509_NAME *subj = X509_get_subject_name(s->x);
	unsigned char *der = NULL;
	EVP_PKEY *pk = X509_get0_pubkey(s->x);
	char *issuer_cn = NULL;
	int n, idx;

	n = i2d_X509(s->x, &der);
	OPENSSL_free(der);
	if (n <= 0 || !pk)
		return -EINVAL;
	s->cert_len = (size_t)n;
	s->sig_len = (size_t)EVP_PKEY_get_size(pk);
	if (owner) {
		const char *v;

		if ((v = cli_json_str(owner, "name")) && *v && !(s->name = strdup(v)))
			return -ENOMEM;
		if ((v = cli_json_str(owner, "nip")) && *v && !(s->nip = strdup(v)))
			return -ENOMEM;
		if ((v = cli_json_str(owner, "position")) && *v && !(s->position = strdup(v)))
			return -ENOMEM;
	}
	if (!s->name && cli_name_cn(subj, &s->name) == -ENOMEM)
		return -ENOMEM;
	idx = -1;
	while (!s->nip && (idx = X509_NAME_get_index_by_NID(subj, NID_serialNumber, idx)) >= 0) {
		const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
		const char *p = (const char *)ASN1_STRING_get0_data(v);
		int len = ASN1_STRING_length(v);

		if (len > 3 && len < 64 && strncasecmp(p, "NIP", 3) == 0) {
			p += 3;
			len -= 3;
			while (len > 0 && (*p == ':' || *p == ' ' || *p == '-' || *p == '.')) {
				p++;
				len--;
			}
			if (len > 0 && !(s->nip = strndup(p, (size_t)len)))
				return -ENOMEM;
		}
	}
	if (cli_name_cn(X509_get_issuer_name(s->x), &issuer_cn) == 0) {
		n = asprintf(&s->issuer_line, "Sertifikat elektronik diterbitkan oleh %s",
			issuer_cn);
		free(issuer_cn);
		if (n < 0) {
			s->issuer_line = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

struct spdf_visible {
	struct pdf_appearance_conf *conf;
	struct pdf_image logo;
	bool have_logo;
	char *footer;
};

/*
 * Reads the PDF, copies it into the output's temporary file (hashing it on the way), and
 * appends the update. On failure prints one message and returns an exit status.
 */
static int
spdf_doc_build(const struct spdf_args *a, const struct spdf_signer *s,
	const struct spdf_visible *vis, struct spdf_doc *d)
{
	_cleanup_free_ char *spath = cli_sanitize(d->path), *sout = cli_sanitize(d->out_path);
	_cleanup_free_ char *why = NULL, *url = NULL;
	_cleanup_close_ int fd = -1;
	struct pdf_doc *pdoc = NULL;
	struct pdf_sign_opts o = {};
	EVP_MD_CTX *ctx = NULL, *idctx = NULL;
	unsigned char id[32];
	struct stat st;
	unsigned len;
	int r, status = CLI_EXIT_LOCAL;

	fd = open(d->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		cli_error("cannot read '%s': %s", spath ? spath : "", strerror(errno));
		return CLI_EXIT_LOCAL;
	}
	if (!S_ISREG(st.st_mode) || st.st_dev != d->dev || st.st_ino != d->ino) {
		cli_error("cannot sign '%s': it was replaced while being signed", spath);
		return CLI_EXIT_LOCAL;
	}
	d->size = (uint64_t)st.st_size;
	r = pdf_doc_open(fd, d->size, &pdoc, &why);
	if (r < 0) {
		cli_error("cannot sign '%s': %s", spath, why ? why : strerror(-r));
		return CLI_EXIT_LOCAL;
	}
	o.page = a->page ? a->page - 1 : pdf_doc_n_pages(pdoc) - 1;
	if (o.page >= pdf_doc_n_pages(pdoc)) {
		cli_error("cannot sign '%s': --page %d does not exist, it has %d page%s", spath,
			a->page, pdf_doc_n_pages(pdoc), pdf_doc_n_pages(pdoc) == 1 ? "" : "s");
		goto out;
	}

	pdf_out_discard(&d->out);
	r = pdf_out_open(d->out_path, &d->out);
	if (r < 0) {
		d->out.fd = -1;
		cli_error("cannot write '%s': %s", sout, strerror(-r));
		goto out;
	}
	ctx = EVP_MD_CTX_new();
	idctx = EVP_MD_CTX_new();
	if (!ctx || !idctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		cli_error("out of memory");
		goto out;
	}
	/* One read of the input: the copy, the document id and the ByteRange's first part. */
	r = pdf_out_copy(&d->out, fd, d->size, ctx);
	if (r == -ESTALE) {
		cli_error("cannot sign '%s': it changed while being signed", spath);
		goto out;
	}
	if (r < 0) {
		cli_error("cannot copy '%s' to '%s': %s", spath, sout, strerror(-r));
		goto out;
	}
	if (!EVP_MD_CTX_copy_ex(idctx, ctx) || !EVP_DigestFinal_ex(idctx, id, &len)) {
		cli_error("cannot hash '%s'", spath);
		goto out;
	}
	for (unsigned i = 0; i < 32; i++)
		snprintf(d->doc_id + 2 * i, 3, "%02x", id[i]);

	o.visible = a->visible;
	o.at_given = a->at_given;
	o.at_x = a->at_x;
	o.at_y = a->at_y;
	o.reason = a->reason;
	o.location = a->location;
	o.name = s->name;
	o.when = time(NULL);
	o.contents_max = d->contents_max;
	if (a->visible) {
		r = pdf_appearance_url(vis->conf, d->doc_id, &url);
		if (r < 0) {
			cli_error("the verification URL is longer than %d bytes", PDF_URL_MAX);
			goto out;
		}
		o.url = url;
		o.text = (struct pdf_block_text){
			.signed_by = vis->conf->signed_by_text,
			.position = s->position,
			.name = s->name,
			.nip = s->nip,
			.issuer = s->issuer_line,
		};
		o.footer = vis->footer;
		o.logo = vis->have_logo ? &vis->logo : NULL;
	}
	pdf_update_free(d->u);
	d->u = NULL;
	r = pdf_update_build(pdoc, &o, &d->u, &why);
	if (r < 0) {
		cli_error("cannot sign '%s': %s", spath, why ? why : strerror(-r));
		goto out;
	}
	r = pdf_out_write(&d->out, d->u->buf.data, d->u->buf.len);
	if (r < 0) {
		cli_error("cannot write '%s': %s", sout, strerror(-r));
		goto out;
	}
	if (pdf_update_digest_update(d->u, ctx) < 0 || !EVP_DigestFinal_ex(ctx, d->digest, &len)) {
		cli_error("cannot hash '%s'", spath);
		goto out;
	}
	status = CLI_EXIT_OK;
out:
	if (status != CLI_EXIT_OK)
		pdf_out_discard(&d->out);
	EVP_MD_CTX_free(ctx);
	EVP_MD_CTX_free(idctx);
	pdf_doc_free(pdoc);
	return status;
}

static int
json_add_str(json_object *o, const char *key, const char *val)
{
	json_object *v = json_object_new_string(val);

	if (!v || json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

/* The sign request for the documents marked in want (all when want is NULL). */
static int
spdf_params_build(const char *cert_id, const struct spdf_doc *docs, size_t n, const bool *want,
	json_object **ret)
{
	_cleanup_(json_object_putp) json_object *p = json_object_new_object();
	json_object *arr = json_object_new_array();
	size_t i;

	if (!p || !arr || json_object_object_add(p, "documents", arr) < 0) {
		json_object_put(arr);
		return -ENOMEM;
	}
	if (json_add_str(p, "certificate", cert_id) < 0 ||
	    json_add_str(p, "usage", "signature") < 0 || json_add_str(p, "format", "cms") < 0 ||
	    json_add_str(p, "profile", "pades") < 0 ||
	    json_add_str(p, "digest_algorithm", "sha256") < 0)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		_cleanup_free_ char *b64 = NULL;
		json_object *d;

		if (want && !want[i])
			continue;
		b64 = pf_base64_encode(docs[i].digest, sizeof(docs[i].digest));
		d = json_object_new_object();
		if (!b64 || !d || json_object_array_add(arr, d) < 0) {
			json_object_put(d);
			return -ENOMEM;
		}
		if (json_add_str(d, "name", docs[i].name) < 0 || json_add_str(d, "digest", b64) < 0)
			return -ENOMEM;
	}
	if (cli_dialog_location_add(p) < 0)
		return -ENOMEM;
	*ret = TAKE_PTR(p);
	return 0;
}

/* For an agent error about documents[i] of this round: which file that is. */
static void
spdf_error_locate(const struct cli_rpc_error *e, const struct spdf_doc *docs, size_t n,
	const bool *want)
{
	unsigned long k;
	size_t i;
	char *end;

	if (!e->field || strncmp(e->field, "documents[", 10) != 0)
		return;
	errno = 0;
	k = strtoul(e->field + 10, &end, 10);
	if (errno || *end != ']')
		return;
	for (i = 0; i < n; i++)
		if (!want || want[i]) {
			if (k-- == 0) {
				_cleanup_free_ char *s = cli_sanitize(docs[i].path);

				cli_error("%s is '%s'", e->field, s ? s : "");
				return;
			}
		}
}

/*
 * One sign request for the documents in want; each CMS checked, timestamped (--tsa) and kept.
 * A CMS larger than its hole marks the document in again[] (with the room it needs).
 */
static int
spdf_sign_round(struct cli_conn *conn, const struct spdf_args *a, const struct spdf_signer *s,
	struct spdf_doc *docs, const bool *want, bool *again, size_t *n_again)
{
	_cleanup_(json_object_putp) json_object *params = NULL, *res = NULL;
	struct cli_rpc_error err = {};
	json_object *sigs;
	const char *rcert;
	size_t i, k = 0, n_want = 0;
	int r;

	for (i = 0; i < a->n_files; i++)
		n_want += !want || want[i];
	if (spdf_params_build(s->cert_id, docs, a->n_files, want, &params) < 0) {
		cli_error("out of memory");
		return CLI_EXIT_LOCAL;
	}
	fflush(stdout);
	fputs("paraf: Masukkan PIN di jendela PIN / enter the PIN in the PIN dialog\n", stderr);
	r = cli_agent_call(conn, "sign", params, NULL, &res, &err);
	if (r != CLI_EXIT_OK) {
		spdf_error_locate(&err, docs, a->n_files, want);
		if (err.reason && streq(err.reason, "pin-dialog-failed"))
			cli_error("parafd shows its PIN dialog on the terminal or display this paraf "
				  "runs in; 'paraf status' names the pinentry program it uses");
		cli_rpc_error_release(&err);
		return r;
	}
	sigs = cli_json_obj(res, "signatures", json_type_array);
	rcert = cli_json_str(res, "certificate");
	if (!rcert || !streq(rcert, s->cert_id) || !sigs ||
	    json_object_array_length(sigs) != n_want) {
		cli_error("the agent's answer to 'sign' does not match the request: "
			  "nothing written");
		return CLI_EXIT_AGENT;
	}
	*n_again = 0;
	for (i = 0; i < a->n_files; i++) {
		struct spdf_doc *d = &docs[i];
		json_object *o;
		const char *name, *b64;
		_cleanup_free_ char *spath = NULL, *why = NULL;
		_cleanup_free_ uint8_t *raw = NULL;
		size_t raw_len;

		if (want && !want[i])
			continue;
		o = json_object_array_get_idx(sigs, k++);
		name = cli_json_str(o, "name");
		b64 = cli_json_str(o, "cms");
		spath = cli_sanitize(d->path);
		if (!name || !streq(name, d->name) || !b64) {
			cli_error("the agent's answer for '%s' is malformed: nothing written", spath);
			return CLI_EXIT_AGENT;
		}
		r = pf_base64_decode(b64, strlen(b64), &raw, &raw_len);
		if (r == -ENOMEM)
			return CLI_EXIT_LOCAL;
		if (r < 0) {
			cli_error("the agent's 'cms' for '%s' is not valid base64: nothing written",
				spath);
			return CLI_EXIT_AGENT;
		}
		free(d->cms);
		d->cms = NULL;
		r = pdf_cms_finish(raw, raw_len, d->digest, sizeof(d->digest), s->x, EVP_sha256(),
			a->tsa, &d->cms, &d->cms_len, &why);
		if (r < 0) {
			cli_error("'%s': %s: nothing written", spath, why ? why : strerror(-r));
			/* A timestamp server that fails is no fault of the agent's. */
			return r == -ECOMM || r == -ENOMEM ? CLI_EXIT_LOCAL : CLI_EXIT_AGENT;
		}
		if (d->cms_len > d->contents_max) {
			/* Room for this CMS and as much again: another round must not be needed. */
			d->contents_max = 2 * d->cms_len;
			if (d->contents_max > PDF_CONTENTS_MAX) {
				cli_error("'%s': the signature (%zu bytes) is larger than paraf "
					  "embeds (%u): nothing written",
					spath, d->cms_len, PDF_CONTENTS_MAX);
				return CLI_EXIT_AGENT;
			}
			again[i] = true;
			(*n_again)++;
		}
	}
	return CLI_EXIT_OK;
}

static int
spdf_visible_load(const struct spdf_args *a, struct spdf_visible *v)
{
	const char *path = a->appearance ? a->appearance : PARAF_SYSCONFDIR "/appearance.conf";
	_cleanup_free_ char *why = NULL;
	int r;

	r = pdf_appearance_conf_load(path, &v->conf, &why);
	if (r < 0) {
		if (r == -ENOENT && !a->appearance)
			cli_error("a visible signature needs an appearance template: '%s' does "
				  "not exist (see appearance.conf.example), or give --appearance FILE",
				path);
		else
			cli_error("appearance template: %s", why ? why : strerror(-r));
		return r == -ENOMEM ? CLI_EXIT_LOCAL : CLI_EXIT_USAGE;
	}
	if (v->conf->logo) {
		free(why);
		why = NULL;
		r = pdf_png_load(v->conf->logo, &v->logo, &why);
		if (r < 0) {
			cli_error("appearance template '%s': %s", path, why ? why : strerror(-r));
			return CLI_EXIT_USAGE;
		}
		v->have_logo = true;
	}
	if (pdf_appearance_footer(v->conf, &v->footer) < 0) {
		cli_error("appearance template '%s': the footer text is too long", path);
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

static int
spdf_result_json(const struct spdf_args *a, const struct spdf_signer *s,
	const struct spdf_doc *docs)
{
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();
	json_object *arr = json_object_new_array();
	size_t i;

	if (!o || !arr || json_object_object_add(o, "signed", arr) < 0 ||
	    json_add_str(o, "certificate", s->cert_id) < 0) {
		json_object_put(arr);
		return -ENOMEM;
	}
	for (i = 0; i < a->n_files; i++) {
		const struct spdf_doc *d = &docs[i];
		json_object *e = json_object_new_object();

		if (!e || json_object_array_add(arr, e) < 0) {
			json_object_put(e);
			return -ENOMEM;
		}
		if (json_add_str(e, "input", d->path) < 0 ||
		    json_add_str(e, "output", d->out_path) < 0 ||
		    json_add_str(e, "document_id", d->doc_id) < 0 ||
		    json_add_str(e, "field", d->u->field_name) < 0 ||
		    json_object_object_add(e, "page", json_object_new_int(d->u->page + 1)) < 0 ||
		    json_object_object_add(e, "visible", json_object_new_boolean(a->visible)) < 0 ||
		    json_object_object_add(e, "timestamp", json_object_new_boolean(!!a->tsa)) < 0)
			return -ENOMEM;
	}
	return cli_json_print(o);
}

static int
spdf_run(struct cli_ctx *ctx, int argc, char **argv)
{
	struct spdf_args a = { .page = 0 };
	struct spdf_doc *docs = NULL;
	struct spdf_signer s = {};
	struct spdf_visible vis = {};
	_cleanup_(cli_conn_freep) struct cli_conn *conn = NULL;
	_cleanup_(json_object_putp) json_object *list = NULL;
	_cleanup_free_ bool *want = NULL, *again = NULL;
	json_object *cert;
	size_t i, n_again = 0;
	int r, round, failed = 0;

	r = spdf_args_parse(ctx, argc, argv, &a);
	if (r != CLI_OPT_CONTINUE)
		goto out;
	r = spdf_docs_prepare(&a, &docs);
	if (r != CLI_EXIT_OK)
		goto out;
	if (a.visible) {
		r = spdf_visible_load(&a, &vis);
		if (r != CLI_EXIT_OK)
			goto out;
	}

	r = cli_agent_connect(ctx, &conn);
	if (r != CLI_EXIT_OK)
		goto out;
	r = cli_agent_cert(conn, &cli_cmd_sign_pdf, a.cert, &list, &cert, &s.x);
	if (r != CLI_EXIT_OK)
		goto out;
	s.cert_id = cli_json_str(cert, "id");
	r = spdf_signer_init(cert, &s);
	if (r < 0) {
		cli_error("cannot read the certificate '%s'", s.cert_id);
		r = r == -ENOMEM ? CLI_EXIT_LOCAL : CLI_EXIT_AGENT;
		goto out;
	}

	/* Every document read, checked and prepared before anything is signed. */
	spdf_signals_catch(docs, a.n_files);
	for (i = 0; i < a.n_files; i++) {
		docs[i].contents_max = pdf_contents_estimate(s.cert_len, s.sig_len, !!a.tsa);
		if (spdf_doc_build(&a, &s, &vis, &docs[i]) != CLI_EXIT_OK)
			failed = 1;
	}
	if (failed) {
		cli_error("nothing signed");
		r = CLI_EXIT_LOCAL;
		goto out;
	}

	want = calloc(a.n_files, sizeof(*want));
	again = calloc(a.n_files, sizeof(*again));
	if (!want || !again) {
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	for (round = 0; round < SPDF_ROUNDS_MAX; round++) {
		memset(again, 0, a.n_files * sizeof(*again));
		r = spdf_sign_round(conn, &a, &s, docs, round ? want : NULL, again, &n_again);
		if (r != CLI_EXIT_OK)
			goto out;
		if (!n_again)
			break;
		/*
		 * Rare (the hole is sized generously): a CMS larger than its hole. The ByteRange
		 * moves with a larger hole, so those documents are built again and signed again,
		 * and the official is asked for the PIN once more.
		 */
		cli_warn("%zu signature%s did not fit the room reserved in the PDF: preparing "
			 "again with more room; the PIN is asked for once more",
			n_again, n_again == 1 ? "" : "s");
		for (i = 0; i < a.n_files; i++) {
			want[i] = again[i];
			if (again[i] && spdf_doc_build(&a, &s, &vis, &docs[i]) != CLI_EXIT_OK) {
				r = CLI_EXIT_LOCAL;
				goto out;
			}
		}
	}
	if (n_again) {
		cli_error("the signatures still do not fit: nothing written");
		r = CLI_EXIT_AGENT;
		goto out;
	}

	/* Every signature in its hole, then every output renamed into place. */
	for (i = 0; i < a.n_files; i++) {
		_cleanup_free_ char *sout = cli_sanitize(docs[i].out_path);

		r = pdf_update_contents_write(docs[i].u, docs[i].out.fd, docs[i].cms,
			docs[i].cms_len);
		if (r < 0) {
			cli_error("cannot write '%s': %s: nothing written", sout, strerror(-r));
			r = CLI_EXIT_LOCAL;
			goto out;
		}
	}
	r = CLI_EXIT_OK;
	for (i = 0; i < a.n_files; i++) {
		_cleanup_free_ char *sout = cli_sanitize(docs[i].out_path);
		int k = pdf_out_commit(&docs[i].out, a.force || a.in_place);

		if (k == -EEXIST)
			cli_error("cannot write '%s': it appeared since it was checked; not "
				  "replaced",
				sout ? sout : "");
		else if (k < 0)
			cli_error("cannot write '%s': %s", sout ? sout : "", strerror(-k));
		if (k < 0) {
			r = CLI_EXIT_LOCAL; /* the others are still written: they are signed */
			continue;
		}
		if (!ctx->json)
			printf("wrote %s\n", sout ? sout : docs[i].out_path);
	}
	if (ctx->json && r == CLI_EXIT_OK && spdf_result_json(&a, &s, docs) < 0)
		r = CLI_EXIT_LOCAL;
	if (fflush(stdout) != 0)
		r = CLI_EXIT_LOCAL;
out:
	spdf_live_docs = NULL;
	spdf_docs_free(docs, a.n_files);
	spdf_signer_release(&s);
	pdf_appearance_conf_free(vis.conf);
	if (vis.have_logo)
		pdf_image_release(&vis.logo);
	free(vis.footer);
	free(a.cert);
	return r;
}

const struct cli_cmd cli_cmd_sign_pdf = {
	.name = "sign-pdf",
	.summary = "sign PDF documents (PAdES), invisibly or with the QR code and block (R10)",
	.usage = spdf_usage,
	.run = spdf_run,
};
