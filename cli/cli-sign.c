/*
 * `paraf sign`: hashes each file here (the document never travels), asks the agent for one
 * `sign` request covering every digest with one PIN (R1: one PIN authorises exactly the listed
 * documents), checks each signature it returns against the certificate and the digest it was
 * given, and writes FILE.p7s or FILE.sig atomically beside each file. Every output is checked
 * before the agent is asked, so nothing is signed for nothing. The PIN of an individual or
 * jabatan certificate is typed in the agent's own trusted PIN dialog and never passes through
 * paraf (R2): paraf tells the agent where that dialog must appear (R1). Only for the types the
 * agent lists in pin_parameter_types (system, by default) does paraf read a PIN, from
 * --pin-file or the terminal, never argv or the environment (R2).
 */
#include "cli.h"

#include <getopt.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "pf-codec.h"

static const char sign_usage[] =
	"Usage: paraf sign --cert ID [--usage U] [--digest ALG] [--format cms|raw]\n"
	"                  [--padding pkcs1|pss] [--pin-file FILE] [--force] [--json] FILE...\n"
	"\n"
	"Hashes each FILE here and asks the agent to sign all the digests with the key of the\n"
	"certificate ID, with one PIN for the whole batch. Writes FILE.p7s (a detached CMS\n"
	"signature, DER) or FILE.sig (the bare signature) beside each FILE, and prints one line\n"
	"per file written. Existing outputs are refused before anything is signed.\n"
	"\n"
	"  --cert ID        the certificate's id as 'paraf certs' shows it: all 64 hex digits,\n"
	"                   or a unique prefix of at least 8\n"
	"  --usage U        signature (default), email, tls-client, tls-server or\n"
	"                   document-protection\n"
	"  --digest ALG     sha256 (default), sha384 or sha512\n"
	"  --format F       cms (default): FILE.p7s; raw: FILE.sig\n"
	"  --padding P      RSA keys only: pkcs1 (the agent's default) or pss\n"
	"  --pin-file FILE  only for a certificate type whose PIN the agent takes from clients\n"
	"                   (system): the PIN is the first line of FILE; without it the PIN\n"
	"                   is asked on the terminal. A PIN is never taken from the command\n"
	"                   line or the environment.\n"
	"  --force          replace existing outputs\n"
	"  --json           print the agent's answer (sign) as JSON instead\n"
	"\n"
	"The PIN of an individual or jabatan certificate is typed in parafd's own PIN dialog\n"
	"(pinentry), on this terminal or this desktop, never given to paraf: --pin-file is then\n"
	"refused. Only for the certificate types the agent lists in 'paraf status' (system, by\n"
	"default) is the PIN read by paraf.\n"
	"\n"
	"At most 1000 files at once.\n";

static const char *const sign_usages[] = {
	"signature", "email", "tls-client", "tls-server", "document-protection",
};

static const struct {
	const char *name;
	const EVP_MD *(*md)(void);
} sign_digests[] = {
	{ "sha256", EVP_sha256 },
	{ "sha384", EVP_sha384 },
	{ "sha512", EVP_sha512 },
};

struct sign_args {
	char *cert; /* lower-case hex */
	const char *usage;
	const char *digest;
	const EVP_MD *md;
	const char *format;
	const char *padding; /* NULL: not sent */
	const char *pin_file;
	int force;
	char **files;
	size_t n_files;
};

struct sign_doc {
	const char *path;
	const char *name; /* the basename, inside path */
	char *out;
	dev_t dev;
	ino_t ino;
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned digest_len;
	uint8_t *sig;
	size_t sig_len;
};

static int
one_of(const char *s, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (streq(s, list[i]))
			return 1;
	return 0;
}

static int
sign_args_parse(struct cli_ctx *ctx, int argc, char **argv, struct sign_args *a)
{
	static const char *const formats[] = { "cms", "raw" };
	static const char *const paddings[] = { "pkcs1", "pss" };
	static const struct option opts[] = {
		{ "cert", required_argument, NULL, 'c' },
		{ "usage", required_argument, NULL, 'u' },
		{ "digest", required_argument, NULL, 'd' },
		{ "format", required_argument, NULL, 'f' },
		{ "padding", required_argument, NULL, 'p' },
		{ "pin-file", required_argument, NULL, 'P' },
		{ "force", no_argument, NULL, 'F' },
		CLI_COMMON_OPTIONS,
		{},
	};
	const struct cli_cmd *cmd = &cli_cmd_sign;
	const char *cert = NULL;
	size_t i;
	int c, r;

	a->usage = "signature";
	a->digest = "sha256";
	a->format = "cms";
	r = cli_opts_exact(cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cert = optarg;
			break;
		case 'u':
			a->usage = optarg;
			break;
		case 'd':
			a->digest = optarg;
			break;
		case 'f':
			a->format = optarg;
			break;
		case 'p':
			a->padding = optarg;
			break;
		case 'P':
			a->pin_file = optarg;
			break;
		case 'F':
			a->force = 1;
			break;
		default:
			r = cli_opt_common(ctx, cmd, c, argv);
			if (r != CLI_OPT_CONTINUE)
				return r;
		}
	}
	if (!cert)
		return cli_usage_error(cmd, "sign: missing '--cert ID' (see 'paraf certs')");
	r = cli_hex_normalize(cert, &a->cert);
	if (r == -ENOMEM)
		return CLI_EXIT_LOCAL;
	if (r < 0 || strlen(a->cert) < CLI_CERT_PREFIX_MIN || strlen(a->cert) > CLI_CERT_ID_LEN)
		return cli_usage_error(cmd,
			"sign: '--cert %s' must be a certificate id: %d hex digits, or a prefix "
			"of at least %d",
			cert, CLI_CERT_ID_LEN, CLI_CERT_PREFIX_MIN);
	if (!one_of(a->usage, sign_usages, ARRAY_SIZE(sign_usages)))
		return cli_usage_error(cmd,
			"sign: '--usage %s' must be signature, email, tls-client, tls-server or "
			"document-protection",
			a->usage);
	for (i = 0; i < ARRAY_SIZE(sign_digests); i++)
		if (streq(a->digest, sign_digests[i].name))
			a->md = sign_digests[i].md();
	if (!a->md)
		return cli_usage_error(cmd, "sign: '--digest %s' must be sha256, sha384 or sha512",
			a->digest);
	if (!one_of(a->format, formats, ARRAY_SIZE(formats)))
		return cli_usage_error(cmd, "sign: '--format %s' must be cms or raw", a->format);
	if (a->padding && !one_of(a->padding, paddings, ARRAY_SIZE(paddings)))
		return cli_usage_error(cmd, "sign: '--padding %s' must be pkcs1 or pss", a->padding);
	if (a->pin_file && !*a->pin_file)
		return cli_usage_error(cmd, "sign: '--pin-file' needs a file name");
	if (optind >= argc)
		return cli_usage_error(cmd, "sign: missing FILE");
	a->files = argv + optind;
	a->n_files = (size_t)(argc - optind);
	if (a->n_files > CLI_DOCUMENTS_MAX)
		return cli_usage_error(cmd, "sign: %zu files given, at most %d are signed at once",
			a->n_files, CLI_DOCUMENTS_MAX);
	return CLI_OPT_CONTINUE;
}

static void
sign_docs_free(struct sign_doc *docs, size_t n)
{
	size_t i;

	if (!docs)
		return;
	for (i = 0; i < n; i++) {
		free(docs[i].out);
		free(docs[i].sig);
	}
	free(docs);
}

/*
 * Names, outputs and the checks that need no agent: every input a distinct regular file, every
 * output absent (or --force) and its directory writable. Reports every problem, not the first.
 */
static int
sign_docs_prepare(const struct sign_args *a, struct sign_doc **ret)
{
	const char *ext = streq(a->format, "cms") ? ".p7s" : ".sig";
	struct sign_doc *docs;
	int status = CLI_EXIT_OK;
	size_t i, j;

	docs = calloc(a->n_files, sizeof(*docs));
	if (!docs)
		return CLI_EXIT_LOCAL;
	for (i = 0; i < a->n_files; i++) {
		struct sign_doc *d = &docs[i];
		_cleanup_free_ char *spath = cli_sanitize(a->files[i]);
		_cleanup_free_ char *sout = NULL, *dir = NULL;
		const char *slash;
		struct stat st;

		d->path = a->files[i];
		slash = strrchr(d->path, '/');
		d->name = slash ? slash + 1 : d->path;
		if (asprintf(&d->out, "%s%s", d->path, ext) < 0)
			d->out = NULL;
		sout = cli_sanitize(d->out);
		if (!spath || !sout) {
			sign_docs_free(docs, a->n_files);
			return CLI_EXIT_LOCAL;
		}
		if (!*d->name) {
			status = cli_usage_error(&cli_cmd_sign, "sign: '%s' is not a file name",
				spath);
			break;
		}
		/* The agent shows the name when it asks for the PIN: refuse now what it would. */
		if (!cli_text_is_displayable(d->name, strlen(d->name))) {
			status = cli_usage_error(&cli_cmd_sign,
				"sign: the name of '%s' has control or bidirectional-override "
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
		for (j = 0; j < i; j++)
			if (docs[j].out && docs[j].dev == d->dev && docs[j].ino == d->ino) {
				_cleanup_free_ char *other = cli_sanitize(docs[j].path);

				status = cli_usage_error(&cli_cmd_sign,
					"sign: '%s' and '%s' are the same file", other ? other : "",
					spath);
				break;
			}
		if (status == CLI_EXIT_USAGE)
			break;
		if (lstat(d->out, &st) == 0) {
			if (!a->force) {
				cli_error("'%s' exists: not replaced without --force", sout);
				status = CLI_EXIT_LOCAL;
				continue;
			}
			if (S_ISDIR(st.st_mode)) {
				cli_error("cannot write '%s': it is a directory", sout);
				status = CLI_EXIT_LOCAL;
				continue;
			}
		} else if (errno != ENOENT) {
			cli_error("cannot write '%s': %s", sout, strerror(errno));
			status = CLI_EXIT_LOCAL;
			continue;
		}
		dir = slash ? strndup(d->path, (size_t)(slash - d->path) + 1) : strdup(".");
		if (!dir) {
			sign_docs_free(docs, a->n_files);
			return CLI_EXIT_LOCAL;
		}
		if (access(dir, W_OK | X_OK) < 0) {
			_cleanup_free_ char *sdir = cli_sanitize(dir);

			cli_error("cannot write '%s': directory '%s': %s", sout, sdir ? sdir : "",
				strerror(errno));
			status = CLI_EXIT_LOCAL;
		}
	}
	if (status != CLI_EXIT_OK) {
		sign_docs_free(docs, a->n_files);
		return status;
	}
	*ret = docs;
	return CLI_EXIT_OK;
}

static int
sign_docs_hash(struct sign_doc *docs, size_t n, const EVP_MD *md)
{
	int status = CLI_EXIT_OK;
	size_t i;

	for (i = 0; i < n; i++) {
		int r = cli_file_digest(docs[i].path, md, docs[i].digest, &docs[i].digest_len);

		if (r < 0) {
			_cleanup_free_ char *s = cli_sanitize(docs[i].path);

			cli_error("cannot read '%s': %s", s ? s : "",
				r == -EINVAL ? "not a regular file" : strerror(-r));
			status = CLI_EXIT_LOCAL;
		}
	}
	return status;
}

/*
 * The PIN for the batch, for a certificate type whose PIN the agent takes from clients: from
 * --pin-file, else typed on the terminal. Without a terminal *ret is NULL: the agent then uses
 * the certificate's stored credential, or asks in its own dialog.
 */
static int
sign_pin_get(const struct sign_args *a, const char *who, struct pf_secret **ret)
{
	_cleanup_free_ char *prompt = NULL;
	struct pf_secret *pin = NULL;
	int r;

	if (!a->pin_file && !isatty(STDIN_FILENO)) {
		*ret = NULL;
		return CLI_EXIT_OK;
	}
	/*
	 * No core dump and no ptrace by other processes of this user while a PIN is about (R2);
	 * the secret's own page is already locked and excluded from dumps.
	 */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (a->pin_file) {
		_cleanup_free_ char *s = cli_sanitize(a->pin_file);

		r = cli_pin_read_file(a->pin_file, &pin);
		switch (r) {
		case 0:
			break;
		case -ENODATA:
			cli_error("PIN file '%s' is empty", s);
			return CLI_EXIT_LOCAL;
		case -E2BIG:
			cli_error("PIN file '%s': the PIN is longer than %d bytes", s,
				PF_SECRET_MAX);
			return CLI_EXIT_LOCAL;
		case -EBADMSG:
			cli_error("PIN file '%s': the PIN contains a NUL byte", s);
			return CLI_EXIT_LOCAL;
		default:
			cli_error("cannot read PIN file '%s': %s", s, strerror(-r));
			return CLI_EXIT_LOCAL;
		}
	} else {
		if (asprintf(&prompt, "PIN for %s: ", who) < 0) {
			prompt = NULL;
			return CLI_EXIT_LOCAL;
		}
		r = cli_pin_read_tty(prompt, &pin);
		switch (r) {
		case 0:
			break;
		case -ECANCELED:
			cli_error("no PIN entered: nothing signed");
			return CLI_EXIT_USAGE;
		case -E2BIG:
			cli_error("the PIN is longer than %d bytes", PF_SECRET_MAX);
			return CLI_EXIT_USAGE;
		case -EBADMSG:
			cli_error("the PIN contains a NUL byte");
			return CLI_EXIT_USAGE;
		case -ENXIO:
			cli_error("cannot open the terminal to ask for the PIN: "
				  "use --pin-file FILE");
			return CLI_EXIT_USAGE;
		default:
			cli_error("cannot read the PIN from the terminal: %s", strerror(-r));
			return CLI_EXIT_USAGE;
		}
	}
	if (!cli_text_is_displayable(pin->data, pin->len)) {
		pf_secret_free(pin);
		cli_error("the PIN contains control characters or is not valid UTF-8");
		return CLI_EXIT_USAGE;
	}
	*ret = pin;
	return CLI_EXIT_OK;
}

/*
 * R2: the PIN of a certificate type the agent does not take from clients is typed in the
 * agent's dialog only; a --pin-file for it is refused here, before it is even read.
 */
static int
sign_pin_file_refuse(const char *type)
{
	_cleanup_free_ char *stype = cli_sanitize(type);

	if (!type) {
		cli_error("the PIN of a certificate without a registered type is given in the "
			  "trusted PIN dialog, not on the command line (R2)");
		return CLI_EXIT_USAGE;
	}
	cli_error("the PIN of %s %s certificate is given in the trusted PIN dialog, not on the "
		  "command line (R2)",
		stype && stype[0] && strchr("aeiou", stype[0]) ? "an" : "a", stype ? stype : "");
	return CLI_EXIT_USAGE;
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

static int
sign_params_build(const struct sign_args *a, const char *cert_id, const struct sign_doc *docs,
	json_object **ret)
{
	_cleanup_(json_object_putp) json_object *p = json_object_new_object();
	json_object *arr = json_object_new_array_ext((int)a->n_files);
	size_t i;

	if (!p || !arr || json_object_object_add(p, "documents", arr) < 0) {
		json_object_put(arr);
		return -ENOMEM;
	}
	if (json_add_str(p, "certificate", cert_id) < 0 || json_add_str(p, "usage", a->usage) < 0 ||
	    json_add_str(p, "format", a->format) < 0 ||
	    json_add_str(p, "digest_algorithm", a->digest) < 0 ||
	    (a->padding && json_add_str(p, "padding", a->padding) < 0))
		return -ENOMEM;
	for (i = 0; i < a->n_files; i++) {
		_cleanup_free_ char *b64 = pf_base64_encode(docs[i].digest, docs[i].digest_len);
		json_object *d = json_object_new_object();

		if (!b64 || !d || json_object_array_add(arr, d) < 0) {
			json_object_put(d);
			return -ENOMEM;
		}
		if (json_add_str(d, "name", docs[i].name) < 0 || json_add_str(d, "digest", b64) < 0)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(p);
	return 0;
}

/* A CMS signature from the agent: detached SignedData by our certificate over our digest. */
static const char *
sign_check_cms(const uint8_t *der, size_t len, const struct sign_doc *d, X509 *x,
	const EVP_MD *md)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms;
	STACK_OF(CMS_SignerInfo) * sis;
	CMS_SignerInfo *si;
	X509_ALGOR *dig = NULL;
	const ASN1_OBJECT *obj;
	ASN1_OCTET_STRING *os;
	const char *why = NULL;

	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (!cms || p != der + len) {
		why = "not a DER CMS structure";
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed || CMS_is_detached(cms) != 1) {
		why = "not a detached CMS SignedData";
		goto out;
	}
	sis = CMS_get0_SignerInfos(cms);
	if (!sis || sk_CMS_SignerInfo_num(sis) != 1) {
		why = "not exactly one SignerInfo";
		goto out;
	}
	si = sk_CMS_SignerInfo_value(sis, 0);
	if (CMS_SignerInfo_cert_cmp(si, x) != 0) {
		why = "signed by another certificate";
		goto out;
	}
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
	X509_ALGOR_get0(&obj, NULL, NULL, dig);
	if (!dig || OBJ_obj2nid(obj) != EVP_MD_get_type(md)) {
		why = "another digest algorithm";
		goto out;
	}
	os = CMS_signed_get0_data_by_OBJ(si, OBJ_nid2obj(NID_pkcs9_messageDigest), -3,
		V_ASN1_OCTET_STRING);
	if (!os || (size_t)ASN1_STRING_length(os) != d->digest_len ||
	    memcmp(ASN1_STRING_get0_data(os), d->digest, d->digest_len) != 0) {
		why = "its messageDigest is not the file's digest";
		goto out;
	}
	CMS_SignerInfo_set1_signer_cert(si, x);
	if (CMS_SignerInfo_verify(si) != 1)
		why = "the signature does not verify with the certificate";
out:
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	return why;
}

/* A bare signature from the agent: it must verify over our digest with the certificate's key. */
static const char *
sign_check_raw(const uint8_t *sig, size_t len, const struct sign_doc *d, X509 *x,
	const EVP_MD *md, const char *padding)
{
	EVP_PKEY *pkey = X509_get0_pubkey(x);
	EVP_PKEY_CTX *pctx = NULL;
	const char *why = NULL;
	int pss = padding && streq(padding, "pss");

	if (!pkey) {
		why = "the certificate's public key cannot be read";
		goto out;
	}
	pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (!pctx || EVP_PKEY_verify_init(pctx) <= 0 ||
	    EVP_PKEY_CTX_set_signature_md(pctx, md) <= 0) {
		why = "cannot check it";
		goto out;
	}
	if (EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_is_a(pkey, "RSA-PSS")) {
		if (EVP_PKEY_is_a(pkey, "RSA-PSS"))
			pss = 1;
		if (EVP_PKEY_CTX_set_rsa_padding(pctx, pss ? RSA_PKCS1_PSS_PADDING :
							     RSA_PKCS1_PADDING) <= 0 ||
		    (pss && (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0 ||
				    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) <= 0))) {
			why = "cannot check it";
			goto out;
		}
	}
	if (EVP_PKEY_verify(pctx, sig, len, d->digest, d->digest_len) != 1)
		why = "the signature does not verify with the certificate";
out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(pctx);
	return why;
}

/* Takes the signatures out of the agent's answer, each checked; nothing is written yet. */
static int
sign_result_take(const struct sign_args *a, const char *cert_id, X509 *x, json_object *res,
	struct sign_doc *docs)
{
	const char *key = streq(a->format, "cms") ? "cms" : "signature";
	json_object *sigs = cli_json_obj(res, "signatures", json_type_array);
	const char *rcert = cli_json_str(res, "certificate");
	size_t i;

	if (!rcert || !streq(rcert, cert_id) || !sigs ||
	    json_object_array_length(sigs) != a->n_files) {
		cli_error("the agent's answer to 'sign' does not match the request: "
			  "nothing written");
		return CLI_EXIT_AGENT;
	}
	for (i = 0; i < a->n_files; i++) {
		json_object *s = json_object_array_get_idx(sigs, i);
		const char *name = cli_json_str(s, "name");
		const char *b64 = cli_json_str(s, key);
		_cleanup_free_ char *spath = cli_sanitize(docs[i].path);
		const char *why;
		int r;

		if (!name || !streq(name, docs[i].name) || !b64) {
			cli_error("the agent's answer for '%s' (signatures[%zu]) is malformed: "
				  "nothing written",
				spath, i);
			return CLI_EXIT_AGENT;
		}
		r = pf_base64_decode(b64, strlen(b64), &docs[i].sig, &docs[i].sig_len);
		if (r == -ENOMEM)
			return CLI_EXIT_LOCAL;
		if (r < 0) {
			cli_error("the agent's '%s' for '%s' is not valid base64: nothing written",
				key, spath);
			return CLI_EXIT_AGENT;
		}
		why = streq(a->format, "cms") ?
			      sign_check_cms(docs[i].sig, docs[i].sig_len, &docs[i], x, a->md) :
			      sign_check_raw(docs[i].sig, docs[i].sig_len, &docs[i], x, a->md,
				      a->padding);
		if (why) {
			cli_error("the agent's signature for '%s' is unusable (%s): nothing written",
				spath, why);
			return CLI_EXIT_AGENT;
		}
	}
	return CLI_EXIT_OK;
}

static int
sign_docs_write(const struct sign_args *a, struct sign_doc *docs, int quiet)
{
	int status = CLI_EXIT_OK;
	size_t i;

	for (i = 0; i < a->n_files; i++) {
		_cleanup_free_ char *sout = cli_sanitize(docs[i].out);
		int r = cli_file_write_atomic(docs[i].out, docs[i].sig, docs[i].sig_len, a->force);

		if (r == -EEXIST)
			cli_error("cannot write '%s': it appeared since it was checked; "
				  "not replaced",
				sout ? sout : "");
		else if (r < 0)
			cli_error("cannot write '%s': %s", sout ? sout : "", strerror(-r));
		if (r < 0) {
			status = CLI_EXIT_LOCAL; /* the others are still written: they are signed */
			continue;
		}
		if (!quiet)
			printf("wrote %s\n", sout ? sout : docs[i].out);
	}
	if (fflush(stdout) != 0)
		status = CLI_EXIT_LOCAL;
	return status;
}

/* For an agent error about documents[i]: which file that is. */
static void
sign_error_locate(const struct cli_rpc_error *e, const struct sign_doc *docs, size_t n)
{
	unsigned long i;
	char *end;

	if (!e->field || strncmp(e->field, "documents[", 10) != 0)
		return;
	errno = 0;
	i = strtoul(e->field + 10, &end, 10);
	if (errno || *end != ']' || i >= n)
		return;
	_cleanup_free_ char *s = cli_sanitize(docs[i].path);
	cli_error("documents[%lu] is '%s'", i, s ? s : "");
}

static int
sign_run(struct cli_ctx *ctx, int argc, char **argv)
{
	struct sign_args a = {};
	struct sign_doc *docs = NULL;
	_cleanup_(cli_conn_freep) struct cli_conn *conn = NULL;
	_cleanup_(json_object_putp) json_object *status = NULL, *list = NULL, *params = NULL,
					       *res = NULL;
	_cleanup_free_ char *who = NULL;
	struct cli_rpc_error err = {};
	struct pf_secret *pin = NULL;
	json_object *cert;
	const char *cert_id, *type;
	X509 *x = NULL;
	int r;

	r = sign_args_parse(ctx, argc, argv, &a);
	if (r != CLI_OPT_CONTINUE)
		goto out;
	r = sign_docs_prepare(&a, &docs);
	if (r != CLI_EXIT_OK)
		goto out;
	r = sign_docs_hash(docs, a.n_files, a.md);
	if (r != CLI_EXIT_OK)
		goto out;

	r = cli_agent_connect(ctx, &conn);
	if (r != CLI_EXIT_OK)
		goto out;
	r = cli_agent_call(conn, "agent.status", NULL, NULL, &status, NULL);
	if (r != CLI_EXIT_OK)
		goto out;
	r = cli_agent_cert(conn, &cli_cmd_sign, a.cert, &list, &cert, &x);
	if (r != CLI_EXIT_OK)
		goto out;
	cert_id = cli_json_str(cert, "id");
	if (cli_name_cn(X509_get_subject_name(x), &who) < 0 || !*who) {
		free(who);
		who = cli_strdup(cli_json_str(cert, "subject"));
	}
	if (cli_pin_in_request(status, cert, &type)) {
		_cleanup_free_ char *swho = cli_sanitize(who ? who : cert_id);

		r = sign_pin_get(&a, swho ? swho : cert_id, &pin);
		if (r != CLI_EXIT_OK)
			goto out;
	} else if (a.pin_file) {
		r = sign_pin_file_refuse(type);
		goto out;
	}
	if (sign_params_build(&a, cert_id, docs, &params) < 0 ||
	    (!pin && cli_dialog_location_add(params) < 0)) {
		cli_error("out of memory");
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	if (!pin) {
		/* The agent shows the dialog, or finds a stored credential (system types). */
		fflush(stdout);
		fputs("paraf: Masukkan PIN di jendela PIN / enter the PIN in the PIN dialog\n",
			stderr);
	}
	r = cli_agent_call(conn, "sign", params, pin, &res, &err);
	pin = pf_secret_free(pin);
	if (r != CLI_EXIT_OK) {
		sign_error_locate(&err, docs, a.n_files);
		if (err.reason && streq(err.reason, "pin-dialog-failed"))
			cli_error("parafd shows its PIN dialog on the terminal or display this paraf "
				  "runs in; 'paraf status' names the pinentry program it uses");
		goto out;
	}
	r = sign_result_take(&a, cert_id, x, res, docs);
	if (r != CLI_EXIT_OK)
		goto out;
	r = sign_docs_write(&a, docs, ctx->json);
	if (ctx->json && cli_json_print(res) < 0)
		r = CLI_EXIT_LOCAL;
out:
	pf_secret_free(pin);
	cli_rpc_error_release(&err);
	X509_free(x);
	sign_docs_free(docs, a.n_files);
	free(a.cert);
	return r;
}

const struct cli_cmd cli_cmd_sign = {
	.name = "sign",
	.summary = "sign files with a certificate's key: FILE.p7s (CMS) or FILE.sig (raw)",
	.usage = sign_usage,
	.run = sign_run,
};
