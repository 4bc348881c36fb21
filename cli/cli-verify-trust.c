/*
 * What `paraf verify` trusts and how it judges a signer's certificate (R7, R8, R11): the anchors
 * and CRLs (--ca, --crl, --crl-dir, else the policy directory's anchors/ and crl/, as parafd
 * loads them), the registry for the NIP when the certificate lacks one, and the certificate's
 * status at the signing time: trusted (the chain to an anchor, and its CRLs, are the policy
 * library's pol_trust_check(), the same check parafd makes before signing), verified (every
 * signature in the chain checks), valid (its dates, and revocation against the CRLs).
 */
#include "cli.h"

#include <dirent.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pf-codec.h"
#include "pol.h"

#define VERIFY_TRUST_FILE_MAX (64u * 1024 * 1024) /* one anchor or CRL file */
#define VERIFY_DIR_FILES_MAX 4096                 /* files read from one directory */
#define VERIFY_OWNER_FILE_MAX (64u * 1024)        /* one registry file */
#define VERIFY_CHAIN_MAX 16                       /* certificates in a path */

struct cli_trust {
	struct pol_trust t;        /* anchors (self-signed), intermediates, CRLs */
	STACK_OF(X509) *all;       /* anchors and intermediates, to find issuers */
	struct pol_policy registry; /* owners.d, for the NIP (optional) */
	time_t now;
};

size_t
cli_trust_n_anchors(const struct cli_trust *t)
{
	return (size_t)sk_X509_num(t->t.anchors);
}

size_t
cli_trust_n_crls(const struct cli_trust *t)
{
	return (size_t)sk_X509_CRL_num(t->t.crls);
}

STACK_OF(X509) *
cli_trust_certs(const struct cli_trust *t)
{
	return t->all;
}

struct cli_trust *
cli_trust_free(struct cli_trust *t)
{
	if (!t)
		return NULL;
	sk_X509_pop_free(t->t.anchors, X509_free);
	sk_X509_pop_free(t->t.intermediates, X509_free);
	sk_X509_CRL_pop_free(t->t.crls, X509_CRL_free);
	sk_X509_pop_free(t->all, X509_free);
	pol_policy_release(&t->registry);
	free(t);
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

/* Self-signed certificates are anchors; the others may complete chains. */
static int
trust_add_cert(struct cli_trust *t, X509 *x)
{
	STACK_OF(X509) *to = X509_check_issued(x, x) == X509_V_OK ? t->t.anchors :
								   t->t.intermediates;

	if (!X509_up_ref(x))
		return -ENOMEM;
	if (!sk_X509_push(to, x)) {
		X509_free(x);
		return -ENOMEM;
	}
	if (!X509_up_ref(x))
		return -ENOMEM;
	if (!sk_X509_push(t->all, x)) {
		X509_free(x);
		return -ENOMEM;
	}
	return 0;
}

/* Every PEM certificate in data. -ENODATA when it holds none, -EBADMSG when it is not PEM. */
static int
certs_parse(struct cli_trust *t, const uint8_t *data, size_t len, size_t *ret_n)
{
	BIO *b = BIO_new_mem_buf(data, (int)len);
	size_t n = 0;
	int r = 0;

	if (!b)
		return -ENOMEM;
	ERR_clear_error();
	for (;;) {
		X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

		if (!x) {
			unsigned long e = ERR_peek_last_error();

			/* The end of the file, after any other PEM blocks, looks like this. */
			if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
				r = n ? 0 : -ENODATA;
			else
				r = -EBADMSG;
			break;
		}
		r = trust_add_cert(t, x);
		X509_free(x);
		if (r < 0)
			break;
		n++;
	}
	ERR_clear_error();
	BIO_free(b);
	*ret_n = n;
	return r;
}

/* Every CRL in data, PEM (one or more) or DER (one). -ENODATA, -EBADMSG. */
static int
crls_parse(struct cli_trust *t, const uint8_t *data, size_t len)
{
	size_t n = 0;

	ERR_clear_error();
	if (memmem(data, len, "-----BEGIN X509 CRL-----", 24)) {
		BIO *b = BIO_new_mem_buf(data, (int)len);
		X509_CRL *crl;

		if (!b)
			return -ENOMEM;
		while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL))) {
			if (!sk_X509_CRL_push(t->t.crls, crl)) {
				X509_CRL_free(crl);
				BIO_free(b);
				return -ENOMEM;
			}
			n++;
		}
		BIO_free(b);
	} else {
		const unsigned char *p = data;
		X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);

		if (crl && p != data + len) {
			X509_CRL_free(crl);
			crl = NULL;
		}
		if (crl && !sk_X509_CRL_push(t->t.crls, crl)) {
			X509_CRL_free(crl);
			return -ENOMEM;
		}
		n += crl != NULL;
	}
	ERR_clear_error();
	return n ? 0 : -EBADMSG;
}

static const char *
load_error(int r, const char *what)
{
	switch (r) {
	case -ENODATA:
	case -EBADMSG:
		return what;
	case -EFBIG:
		return "too large";
	default:
		return strerror(-r);
	}
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular files in dir (not hidden), sorted. A missing directory is an empty one. */
static int
dir_files(const char *dir, int must_exist, char ***ret, size_t *ret_n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;

	if (!d) {
		if (errno == ENOENT && !must_exist) {
			*ret = NULL;
			*ret_n = 0;
			return 0;
		}
		return pf_negerrno();
	}
	while ((de = readdir(d)) && n < VERIFY_DIR_FILES_MAX) {
		char *path, **nv;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
			goto oom;
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
			free(path);
			continue;
		}
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			free(path);
			goto oom;
		}
		v = nv;
		v[n++] = path;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), name_cmp);
	*ret = v;
	*ret_n = n;
	return 0;
oom:
	closedir(d);
	while (n)
		free(v[--n]);
	free(v);
	return -ENOMEM;
}

static void
files_free(char **v, size_t n)
{
	while (n)
		free(v[--n]);
	free(v);
}

enum load_kind { LOAD_CERTS, LOAD_CRLS };

/* A named file (--ca, --crl): it must load. */
static int
load_named(struct cli_trust *t, enum load_kind kind, const char *opt, const char *path,
	char **error_out)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len, n;
	int r;

	r = cli_file_read_all(path, VERIFY_TRUST_FILE_MAX, &data, &len);
	if (r >= 0)
		r = kind == LOAD_CERTS ? certs_parse(t, data, len, &n) : crls_parse(t, data, len);
	if (r < 0) {
		_cleanup_free_ char *s = cli_sanitize(path);

		if (set_error(error_out, "cannot use '%s %s': %s", opt, s ? s : "",
			    load_error(r, kind == LOAD_CERTS ? "no PEM certificate in it" :
							       "not a CRL (PEM or DER)")) < 0)
			return -ENOMEM;
		/* readable, but not certificates or CRLs */
		return r == -ENODATA || r == -EBADMSG ? -EINVAL : r;
	}
	return 0;
}

/* Every file of a directory; one that does not load is skipped with a warning. */
static int
load_dir(struct cli_trust *t, enum load_kind kind, const char *dir, int must_exist,
	char **error_out)
{
	char **files = NULL;
	size_t n = 0;
	int r;

	r = dir_files(dir, must_exist, &files, &n);
	if (r < 0) {
		_cleanup_free_ char *s = cli_sanitize(dir);

		return set_error(error_out, "cannot read the directory '%s': %s", s ? s : "",
			       strerror(-r)) < 0 ?
			       -ENOMEM :
			       r;
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ uint8_t *data = NULL;
		size_t len, k;

		r = cli_file_read_all(files[i], VERIFY_TRUST_FILE_MAX, &data, &len);
		if (r >= 0)
			r = kind == LOAD_CERTS ? certs_parse(t, data, len, &k) :
						 crls_parse(t, data, len);
		if (r == -ENOMEM)
			break;
		if (r < 0) {
			_cleanup_free_ char *s = cli_sanitize(files[i]);

			cli_warn("ignoring %s file '%s': %s",
				kind == LOAD_CERTS ? "trust anchor" : "CRL", s ? s : "",
				load_error(r, kind == LOAD_CERTS ? "no PEM certificate in it" :
								   "not a CRL (PEM or DER)"));
		}
		r = 0;
	}
	files_free(files, n);
	return r;
}

/*
 * The registry, for the NIP of certificates that do not carry one: owners.d/NAME.conf as parafd
 * reads them. Only files that no one but root (or this user) can change count (R13); the
 * registry is optional here, so a file that fails is skipped.
 */
static int
registry_load(struct cli_trust *t, const char *dir)
{
	char **files = NULL;
	size_t n = 0;
	int r;

	if (dir_files(dir, 0, &files, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ uint8_t *data = NULL;
		size_t len = strlen(files[i]), dlen;
		struct stat st;
		char err[256];

		if (len < 5 || !streq(files[i] + len - 5, ".conf"))
			continue;
		if (stat(files[i], &st) < 0 || (st.st_uid != 0 && st.st_uid != geteuid()) ||
		    (st.st_mode & (S_IWGRP | S_IWOTH)))
			continue;
		r = cli_file_read_all(files[i], VERIFY_OWNER_FILE_MAX, &data, &dlen);
		if (r == -ENOMEM) {
			files_free(files, n);
			return r;
		}
		if (r < 0 || memchr(data, 0, dlen))
			continue;
		{
			_cleanup_free_ char *text = strndup((const char *)data, dlen);

			if (!text) {
				files_free(files, n);
				return -ENOMEM;
			}
			(void)pol_owner_parse(&t->registry, files[i], text, err, sizeof(err));
		}
	}
	files_free(files, n);
	return 0;
}

int
cli_trust_load(const struct cli_verify_opts *o, time_t now, struct cli_trust **ret,
	char **error_out)
{
	_cleanup_(cli_trust_freep) struct cli_trust *t = calloc(1, sizeof(*t));
	int r = 0;

	*error_out = NULL;
	if (!t)
		return -ENOMEM;
	pol_policy_init(&t->registry);
	t->now = now;
	t->t.anchors = sk_X509_new_null();
	t->t.intermediates = sk_X509_new_null();
	t->t.crls = sk_X509_CRL_new_null();
	t->all = sk_X509_new_null();
	if (!t->t.anchors || !t->t.intermediates || !t->t.crls || !t->all)
		return -ENOMEM;

	if (o->cas && o->cas[0]) {
		for (const char *const *p = o->cas; *p && r >= 0; p++)
			r = load_named(t, LOAD_CERTS, "--ca", *p, error_out);
	} else if (o->anchors_dir)
		r = load_dir(t, LOAD_CERTS, o->anchors_dir, 0, error_out);
	if (r < 0)
		return r;

	if (o->crls && o->crls[0])
		for (const char *const *p = o->crls; *p && r >= 0; p++)
			r = load_named(t, LOAD_CRLS, "--crl", *p, error_out);
	if (r < 0)
		return r;
	/* --crl-dir must exist; the default directory need not. --crl alone replaces it. */
	if (o->crl_dir && (o->crl_dir_given || !(o->crls && o->crls[0])))
		r = load_dir(t, LOAD_CRLS, o->crl_dir, o->crl_dir_given, error_out);
	if (r < 0)
		return r;

	if (o->owners_dir) {
		r = registry_load(t, o->owners_dir);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(t);
	return 0;
}

/* --- who signed --------------------------------------------------------------------------- */

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

#define NIP_DIGITS 18 /* a civil servant's NIP: birth date, appointment, sex, sequence */

char *
cli_nip_from_serial_number(const char *v)
{
	size_t n;

	/* BSrE writes "NIP" and the number; some issuers put a separator after it. */
	if (strncasecmp(v, "NIP", 3) == 0) {
		v += 3;
		if (*v == ':' || *v == '-' || *v == ' ')
			v++;
	} else if (strlen(v) != NIP_DIGITS)
		return NULL; /* a bare number of another length: a NIK or something else */
	n = strlen(v);
	if (n == 0 || n > 32 || strspn(v, "0123456789") != n)
		return NULL;
	return strdup(v);
}

static int
cert_id(X509 *x, char id[65])
{
	unsigned char *der = NULL, md[32];
	int n = i2d_X509(x, &der);

	if (n <= 0)
		return -ENOMEM;
	if (!EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL)) {
		OPENSSL_free(der);
		return -ENOMEM;
	}
	OPENSSL_free(der);
	for (int i = 0; i < 32; i++)
		snprintf(id + 2 * i, 3, "%02x", md[i]);
	return 0;
}

int
cli_signer_identify(const struct cli_trust *t, X509 *x, struct cli_signer_report *s)
{
	const X509_NAME *subject = X509_get_subject_name(x);
	int idx;

	s->signer = name_rfc2253(subject);
	s->issuer = name_rfc2253(X509_get_issuer_name(x));
	s->serial = serial_hex(X509_get0_serialNumber(x));
	s->not_before = time_iso(X509_get0_notBefore(x));
	s->not_after = time_iso(X509_get0_notAfter(x));
	if (cli_name_cn(subject, &s->signer_cn) == -ENOMEM)
		return -ENOMEM;
	if (!s->signer || !s->issuer || !s->serial)
		return -ENOMEM;

	for (idx = X509_NAME_get_index_by_NID(subject, NID_serialNumber, -1); idx >= 0 && !s->nip;
	     idx = X509_NAME_get_index_by_NID(subject, NID_serialNumber, idx)) {
		ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
		unsigned char *u = NULL;
		int n = ASN1_STRING_to_UTF8(&u, v);

		if (n < 0)
			continue;
		if ((size_t)n == strlen((char *)u))
			s->nip = cli_nip_from_serial_number((char *)u);
		OPENSSL_free(u);
		if (s->nip)
			s->nip_source = "certificate";
	}
	if (t && t->registry.n_owners) {
		char id[65];
		const struct pol_owner *ow;

		if (cert_id(x, id) < 0)
			return -ENOMEM;
		ow = pol_owner_find(&t->registry, id);
		if (ow && !s->nip && ow->nip) {
			s->nip = strdup(ow->nip);
			if (!s->nip)
				return -ENOMEM;
			s->nip_source = "registry";
		}
		if (ow && ow->position && !(s->position = strdup(ow->position)))
			return -ENOMEM;
	}
	return 0;
}

/* --- the chain's signatures --------------------------------------------------------------- */

/*
 * The path from x upwards, each certificate's signature checked with its issuer's key: issuers
 * are looked for among the candidates by name and key identifier, one whose key verifies the
 * signature preferred. path[0] = x; *ret_n certificates; *ret_bad: the index whose signature
 * failed, or -1.
 */
static int
chain_walk(X509 *x, STACK_OF(X509) *const *cands, size_t n_cands, X509 **path, size_t *ret_n,
	int *ret_bad, int *ret_complete)
{
	size_t n = 0;

	*ret_bad = -1;
	*ret_complete = 0;
	path[n++] = x;
	while (n < VERIFY_CHAIN_MAX) {
		X509 *cur = path[n - 1], *issuer = NULL, *fallback = NULL;

		if (X509_check_issued(cur, cur) == X509_V_OK) {
			/* self-signed: the top; its own signature must hold too */
			EVP_PKEY *k = X509_get0_pubkey(cur);

			if (!k || X509_verify(cur, k) != 1)
				*ret_bad = (int)(n - 1);
			*ret_complete = 1;
			break;
		}
		for (size_t c = 0; c < n_cands && !issuer; c++)
			for (int i = 0; cands[c] && i < sk_X509_num(cands[c]); i++) {
				X509 *cand = sk_X509_value(cands[c], i);
				EVP_PKEY *k;

				if (X509_check_issued(cand, cur) != X509_V_OK)
					continue;
				k = X509_get0_pubkey(cand);
				if (k && X509_verify(cur, k) == 1) {
					issuer = cand;
					break;
				}
				if (!fallback)
					fallback = cand;
			}
		ERR_clear_error();
		if (!issuer && fallback) {
			path[n++] = fallback;
			*ret_bad = (int)(n - 2);
			break;
		}
		if (!issuer)
			break;
		/* A loop of cross-signed certificates ends the walk. */
		for (size_t k = 0; k < n; k++)
			if (X509_cmp(path[k], issuer) == 0) {
				issuer = NULL;
				break;
			}
		if (!issuer)
			break;
		path[n++] = issuer;
	}
	ERR_clear_error();
	*ret_n = n;
	return 0;
}

static char *
subject_of(X509 *x)
{
	char *s = name_rfc2253(X509_get_subject_name(x));

	return s;
}

int
cli_chain_verify(X509 *x, STACK_OF(X509) *const *cands, size_t n_cands, enum cli_chain *ret,
	char **ret_error, size_t *ret_len)
{
	X509 *path[VERIFY_CHAIN_MAX];
	size_t n;
	int bad, complete;
	_cleanup_free_ char *a = NULL, *b = NULL;

	chain_walk(x, cands, n_cands, path, &n, &bad, &complete);
	*ret_error = NULL;
	*ret_len = n;
	if (bad >= 0) {
		a = subject_of(path[bad]);
		b = (size_t)bad + 1 < n ? subject_of(path[bad + 1]) : NULL;
		*ret = CLI_CHAIN_BAD_SIGNATURE;
		if ((size_t)bad + 1 < n ?
			    asprintf(ret_error, "the signature on the certificate '%s' by '%s' does "
						"not verify",
				    a ? a : "?", b ? b : "?") < 0 :
			    asprintf(ret_error, "the self-signature of '%s' does not verify",
				    a ? a : "?") < 0) {
			*ret_error = NULL;
			return -ENOMEM;
		}
		return 0;
	}
	if (!complete) {
		X509 *top = path[n - 1];

		a = name_rfc2253(X509_get_issuer_name(top));
		b = subject_of(top);
		*ret = CLI_CHAIN_INCOMPLETE;
		if (asprintf(ret_error, "the issuer '%s' of '%s' is not available", a ? a : "?",
			    b ? b : "?") < 0) {
			*ret_error = NULL;
			return -ENOMEM;
		}
		return 0;
	}
	*ret = CLI_CHAIN_OK;
	return 0;
}

/* --- revocation --------------------------------------------------------------------------- */

static const char *
crl_reason_name(long code)
{
	switch (code) {
	case 0: return "unspecified";
	case 1: return "keyCompromise";
	case 2: return "cACompromise";
	case 3: return "affiliationChanged";
	case 4: return "superseded";
	case 5: return "cessationOfOperation";
	case 6: return "certificateHold";
	case 8: return "removeFromCRL";
	case 9: return "privilegeWithdrawn";
	case 10: return "aACompromise";
	default: return NULL;
	}
}

/*
 * When the CRLs that issuer signed say x was revoked: the earliest date, and its reason.
 * -ENOENT when none lists it.
 */
static int
revocation_find(const struct cli_trust *t, X509 *x, X509 *issuer, time_t *ret_when,
	const char **ret_reason)
{
	EVP_PKEY *ikey = issuer ? X509_get0_pubkey(issuer) : NULL;
	int found = 0;

	for (int i = 0; ikey && i < sk_X509_CRL_num(t->t.crls); i++) {
		X509_CRL *crl = sk_X509_CRL_value(t->t.crls, i);
		X509_REVOKED *rev = NULL;
		struct tm tm;
		time_t when;
		ASN1_ENUMERATED *e;

		if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0 ||
		    X509_CRL_verify(crl, ikey) != 1 || X509_CRL_get0_by_cert(crl, &rev, x) != 1)
			continue;
		if (!ASN1_TIME_to_tm(X509_REVOKED_get0_revocationDate(rev), &tm))
			continue;
		when = timegm(&tm);
		if (found && when >= *ret_when)
			continue;
		found = 1;
		*ret_when = when;
		*ret_reason = NULL;
		e = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
		if (e) {
			*ret_reason = crl_reason_name(ASN1_ENUMERATED_get(e));
			ASN1_ENUMERATED_free(e);
		}
	}
	ERR_clear_error();
	return found ? 0 : -ENOENT;
}

static char *
time_t_iso(time_t t)
{
	struct tm tm;
	char buf[32];

	if (!gmtime_r(&t, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return NULL;
	return strdup(buf);
}

/* pol_trust_check() with the signature's certificates as extra intermediates. */
static int
trust_at(const struct cli_trust *t, X509 *x, STACK_OF(X509) *extra, time_t when,
	struct pol_cert_facts *f)
{
	struct pol_trust tr = t->t;
	STACK_OF(X509) *inter = NULL;

	if (extra && sk_X509_num(extra) > 0) {
		inter = sk_X509_dup(t->t.intermediates);
		if (!inter)
			return -ENOMEM;
		for (int i = 0; i < sk_X509_num(extra); i++)
			if (!sk_X509_push(inter, sk_X509_value(extra, i))) {
				sk_X509_free(inter);
				return -ENOMEM;
			}
		tr.intermediates = inter;
	}
	*f = (struct pol_cert_facts){};
	pol_trust_check(&tr, x, when, f);
	sk_X509_free(inter); /* the certificates are borrowed */
	ERR_clear_error();
	return 0;
}

static enum cli_revocation
rev_from_pol(enum pol_rev_state r)
{
	switch (r) {
	case POL_REV_GOOD:
		return CLI_REV_GOOD;
	case POL_REV_REVOKED:
		return CLI_REV_REVOKED;
	case POL_REV_CRL_MISSING:
		return CLI_REV_CRL_MISSING;
	case POL_REV_CRL_STALE:
		return CLI_REV_CRL_STALE;
	case POL_REV_UNCHECKED:
	default:
		return CLI_REV_UNCHECKED;
	}
}

static int
cert_state(struct cli_signer_report *s, enum cli_cert_validity v, const char *status,
	const char *sub, const char *fmt, ...) _printf_(5, 6);

static int
cert_state(struct cli_signer_report *s, enum cli_cert_validity v, const char *status,
	const char *sub, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	s->cert_validity = v;
	s->cert_status = status;
	s->cert_sub = sub;
	free(s->cert_error);
	s->cert_error = NULL;
	if (fmt) {
		va_start(ap, fmt);
		n = vasprintf(&s->cert_error, fmt, ap);
		va_end(ap);
		if (n < 0)
			s->cert_error = NULL;
	}
	return n < 0 ? -ENOMEM : 0;
}

static const char *
when_word(enum cli_time_source src)
{
	return src == CLI_TIME_TIMESTAMP ? "the trusted signing time" :
	       src == CLI_TIME_CLAIMED	 ? "the claimed signing time" :
					   "the time of this verification (no signing time stated)";
}

int
cli_signer_check_cert(const struct cli_trust *t, X509 *x, STACK_OF(X509) *extra,
	struct cli_signer_report *s)
{
	STACK_OF(X509) *cands[3] = { t->t.anchors, t->t.intermediates, extra };
	X509 *path[VERIFY_CHAIN_MAX];
	size_t n_path;
	int bad, complete, r;
	struct pol_cert_facts at = {}, now = {};
	time_t when = s->time_source == CLI_TIME_NONE ? t->now : s->time, now_t = t->now;
	time_t rev_when = 0;
	const char *rev_reason = NULL;
	_cleanup_free_ char *nb = NULL, *na = NULL;

	/* verified: the chain's signatures, whatever the anchors */
	r = cli_chain_verify(x, cands, ARRAY_SIZE(cands), &s->chain, &s->verify_error,
		&s->chain_len);
	if (r < 0)
		return r;
	s->verified = s->chain == CLI_CHAIN_OK;
	chain_walk(x, cands, ARRAY_SIZE(cands), path, &n_path, &bad, &complete);

	/* trusted: the chain to an anchor, the CA certificates valid at the signing time */
	r = trust_at(t, x, extra, when, &at);
	if (r < 0)
		return r;
	s->trusted = at.trusted;
	if (!s->trusted) {
		s->trust_error = strdup(cli_trust_n_anchors(t) == 0 ? "no trust anchors configured" :
								       at.trust_error);
		if (!s->trust_error)
			return -ENOMEM;
	} else if (complete && n_path > 0 && !(s->anchor = subject_of(path[n_path - 1])))
		return -ENOMEM;

	/* revocation: the CRLs current now say what happened up to now, the signing time too */
	if (when == t->now)
		now = at;
	else {
		r = trust_at(t, x, extra, t->now, &now);
		if (r < 0)
			return r;
	}
	s->revocation = rev_from_pol(now.revocation);
	if (s->revocation == CLI_REV_REVOKED &&
	    revocation_find(t, x, n_path > 1 ? path[1] : NULL, &rev_when, &rev_reason) == 0) {
		if (!(s->revocation_time = time_t_iso(rev_when)))
			return -ENOMEM;
		if (rev_reason && !(s->revocation_reason = strdup(rev_reason)))
			return -ENOMEM;
	} else if (s->revocation == CLI_REV_REVOKED)
		rev_when = 0; /* a stale CRL we could not date it from: as early as can be */

	/* valid: the certificate's dates and revocation at the signing time (R7, R8) */
	nb = s->not_before ? strdup(s->not_before) : NULL;
	na = s->not_after ? strdup(s->not_after) : NULL;
	if (X509_cmp_time(X509_get0_notBefore(x), &when) > 0)
		return cert_state(s, CLI_CERT_INVALID, "not-yet-valid", "NOT_YET_VALID",
			"the certificate was not yet valid at %s (valid from %s)",
			when_word(s->time_source), nb ? nb : "?");
	if (X509_cmp_time(X509_get0_notAfter(x), &when) < 0)
		return cert_state(s, CLI_CERT_INVALID, "expired", "EXPIRED",
			"the certificate had expired at %s (valid until %s)",
			when_word(s->time_source), na ? na : "?");
	if (s->revocation == CLI_REV_REVOKED) {
		const char *rt = s->revocation_time ? s->revocation_time : "an unknown date";

		if (rev_when <= when)
			return cert_state(s, CLI_CERT_INVALID, "revoked", "REVOKED",
				"the certificate was revoked on %s%s%s%s, before %s", rt,
				rev_reason ? " (" : "", rev_reason ? rev_reason : "",
				rev_reason ? ")" : "", when_word(s->time_source));
		if (s->time_source == CLI_TIME_TIMESTAMP)
			return cert_state(s, CLI_CERT_VALID, "valid", NULL, NULL);
		return cert_state(s, CLI_CERT_UNKNOWN, "unknown", "REVOKED_NO_POE",
			"the certificate was revoked on %s, after the claimed signing time, but "
			"no timestamp proves the signature existed before that",
			rt);
	}
	if (s->time_source != CLI_TIME_TIMESTAMP && X509_cmp_time(X509_get0_notAfter(x), &now_t) < 0)
		return cert_state(s, CLI_CERT_UNKNOWN, "unknown", "OUT_OF_BOUNDS_NO_POE",
			"the certificate expired on %s, after the claimed signing time, but no "
			"timestamp proves the signature existed before that", na ? na : "?");
	switch (s->revocation) {
	case CLI_REV_GOOD:
		return cert_state(s, CLI_CERT_VALID, "valid", NULL, NULL);
	case CLI_REV_CRL_MISSING:
		return cert_state(s, CLI_CERT_UNKNOWN, "unknown", "TRY_LATER",
			"no CRL from the issuer says whether it was revoked");
	case CLI_REV_CRL_STALE:
		return cert_state(s, CLI_CERT_UNKNOWN, "unknown", "TRY_LATER",
			"the issuer's CRL is out of date (past its next update): whether it was "
			"revoked is unknown");
	default:
		return cert_state(s, CLI_CERT_UNKNOWN, "unknown", "TRY_LATER",
			"its chain is not trusted now, so no CRL can say whether it was revoked");
	}
}

/* --- the TSA's certificate, for cli-verify-tst.c ------------------------------------------ */

int
cli_trust_tsa_check(const struct cli_trust *t, X509 *tsa, STACK_OF(X509) *extra, time_t gen,
	char **ret_why)
{
	struct pol_cert_facts f = {};
	STACK_OF(X509) *cands[3] = { t->t.anchors, t->t.intermediates, extra };
	X509 *path[VERIFY_CHAIN_MAX];
	size_t n_path;
	int bad, complete, listed = 0, r;
	time_t when;
	const char *reason;

	*ret_why = NULL;
	for (int i = 0; i < sk_X509_num(t->all); i++)
		if (X509_cmp(sk_X509_value(t->all, i), tsa) == 0)
			listed = 1;
	if (X509_check_purpose(tsa, X509_PURPOSE_TIMESTAMP_SIGN, 0) != 1) {
		ERR_clear_error();
		*ret_why = strdup("its TSA certificate is not for timestamping (RFC 3161 wants a "
				  "critical extendedKeyUsage timeStamping)");
		return *ret_why ? 0 : -ENOMEM;
	}
	if (X509_cmp_time(X509_get0_notBefore(tsa), &gen) > 0 ||
	    X509_cmp_time(X509_get0_notAfter(tsa), &gen) < 0) {
		*ret_why = strdup("its TSA certificate was not valid at the time it stamped");
		return *ret_why ? 0 : -ENOMEM;
	}
	r = trust_at(t, tsa, extra, gen, &f);
	if (r < 0)
		return r;
	if (!f.trusted && !listed) {
		if (asprintf(ret_why, "its TSA certificate does not chain to a trust anchor: %s",
			    cli_trust_n_anchors(t) == 0 ? "no trust anchors configured" :
							  f.trust_error) < 0) {
			*ret_why = NULL;
			return -ENOMEM;
		}
		return 0;
	}
	/* Revoked before it stamped: its time means nothing. A missing CRL is accepted. */
	r = trust_at(t, tsa, extra, t->now, &f);
	if (r < 0)
		return r;
	chain_walk(tsa, cands, ARRAY_SIZE(cands), path, &n_path, &bad, &complete);
	if (f.revocation == POL_REV_REVOKED &&
	    (revocation_find(t, tsa, n_path > 1 ? path[1] : NULL, &when, &reason) < 0 ||
		    when <= gen)) {
		*ret_why = strdup("its TSA certificate was revoked before the time it stamped");
		return *ret_why ? 0 : -ENOMEM;
	}
	return 0;
}
