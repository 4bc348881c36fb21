/*
 * The policy directory, read afresh for every decision (a revocation that security staff
 * append takes effect on the next request, R8), with every file and directory checked: only
 * root may be able to write it (R13). A file that fails the check is refused by name, never
 * skipped: skipping a drop-in could silently drop a rule or a revocation.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <openssl/x509.h>

#include "ag-policy.h"
#include "pf-util.h"

static int
check_owner(const char *path, const struct stat *st, bool allow_own, char *err, size_t errsz)
{
	bool owner_ok = st->st_uid == 0 || (allow_own && st->st_uid == geteuid());

	/* R13: records and rules are changed by authorised persons only. */
	if (!owner_ok || (st->st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errsz,
			"'%s' can be changed by someone other than root (owner uid %u, mode %04o): "
			"refusing it (R13)", path, (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* Reads a whole file after the R13 check. Text files must hold no NUL byte; binary ones
 * (DER CRLs and certificates) may. */
static int
read_file_as(const char *path, bool allow_own, bool optional, bool binary, char **ret,
	size_t *ret_len, char *err, size_t errsz)
{
	struct stat st;
	char *buf;
	size_t n = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && optional) {
			*ret = NULL;
			*ret_len = 0;
			return 0;
		}
		r = -errno;
		snprintf(err, errsz, "cannot open '%s': %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errsz, "'%s' is not a regular file", path);
		return -EINVAL;
	}
	r = check_owner(path, &st, allow_own, err, errsz);
	if (r < 0) {
		close(fd);
		return r;
	}
	if ((size_t)st.st_size > AG_POLICY_FILE_MAX) {
		close(fd);
		snprintf(err, errsz, "'%s' is larger than %u bytes", path, AG_POLICY_FILE_MAX);
		return -EFBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (n < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	buf[n] = 0;
	if (!binary && memchr(buf, 0, n)) {
		free(buf);
		snprintf(err, errsz, "'%s' contains NUL bytes", path);
		return -EINVAL;
	}
	*ret = buf;
	*ret_len = n;
	return 0;
}

static int
read_file(const char *path, bool allow_own, bool optional, char **ret, size_t *ret_len, char *err,
	size_t errsz)
{
	return read_file_as(path, allow_own, optional, false, ret, ret_len, err, errsz);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in dir ending in suffix (NULL: any regular name), after checking the
 * directory itself. A missing directory is an empty one. */
static int
list_dir(const char *dir, const char *suffix, bool allow_own, char ***ret, size_t *ret_n,
	char *err, size_t errsz)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	char **v = NULL;
	size_t n = 0;
	int r;

	*ret = NULL;
	*ret_n = 0;
	if (lstat(dir, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		r = -errno;
		snprintf(err, errsz, "cannot read '%s': %s", dir, strerror(errno));
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errsz, "'%s' is not a directory", dir);
		return -ENOTDIR;
	}
	r = check_owner(dir, &st, allow_own, err, errsz);
	if (r < 0)
		return r;
	d = opendir(dir);
	if (!d) {
		r = -errno;
		snprintf(err, errsz, "cannot read '%s': %s", dir, strerror(errno));
		return r;
	}
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name), sl = suffix ? strlen(suffix) : 0;
		char **nv;

		if (e->d_name[0] == '.')
			continue;
		if (suffix && (len <= sl || strcmp(e->d_name + len - sl, suffix) != 0))
			continue;
		if (n >= AG_POLICY_FILES_MAX) {
			snprintf(err, errsz, "'%s' holds more than %d files", dir, AG_POLICY_FILES_MAX);
			r = -E2BIG;
			break;
		}
		nv = realloc(v, (n + 1) * sizeof(*nv));
		if (!nv || asprintf(&nv[n], "%s/%s", dir, e->d_name) < 0) {
			if (nv)
				v = nv;
			r = -ENOMEM;
			break;
		}
		v = nv;
		n++;
	}
	closedir(d);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return r;
	}
	if (n)
		qsort(v, n, sizeof(*v), name_cmp);
	*ret = v;
	*ret_n = n;
	return 0;
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

typedef int (*parse_fn)(struct pol_policy *p, const char *name, const char *text, char *err,
	size_t errsz);

static int
parse_files(struct ag_policy *ap, const char *dir, const char *suffix, parse_fn fn, char *err,
	size_t errsz)
{
	char **files;
	size_t n;
	int r;

	r = list_dir(dir, suffix, ap->owner_files_allowed, &files, &n, err, errsz);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++) {
		char *text;
		size_t len;

		r = read_file(files[i], ap->owner_files_allowed, false, &text, &len, err, errsz);
		if (r >= 0) {
			r = fn(&ap->pol, files[i], text, err, errsz);
			free(text);
		}
	}
	strv_free(files, n);
	return r;
}

/* Anchors: self-signed certificates; other certificates in the directory are intermediates. */
static int
load_anchors(struct ag_policy *ap, const char *dir, char *err, size_t errsz)
{
	char **files;
	size_t n;
	int r;

	ap->trust.anchors = sk_X509_new_null();
	ap->trust.intermediates = sk_X509_new_null();
	if (!ap->trust.anchors || !ap->trust.intermediates)
		return -ENOMEM;
	r = list_dir(dir, NULL, ap->owner_files_allowed, &files, &n, err, errsz);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++) {
		char *text;
		size_t len;
		BIO *b;
		X509 *x;
		int count = 0;

		r = read_file(files[i], ap->owner_files_allowed, false, &text, &len, err, errsz);
		if (r < 0)
			break;
		b = BIO_new_mem_buf(text, (int)len);
		while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
			bool self = X509_check_issued(x, x) == X509_V_OK;
			sk_X509_push(self ? ap->trust.anchors : ap->trust.intermediates, x);
			count++;
		}
		BIO_free(b);
		free(text);
		if (!count) {
			snprintf(err, errsz, "'%s' holds no PEM certificate", files[i]);
			r = -EINVAL;
		}
	}
	strv_free(files, n);
	return r;
}

static int
load_crls(struct ag_policy *ap, const char *dir, char *err, size_t errsz)
{
	char **files;
	size_t n;
	int r;

	ap->trust.crls = sk_X509_CRL_new_null();
	if (!ap->trust.crls)
		return -ENOMEM;
	r = list_dir(dir, NULL, ap->owner_files_allowed, &files, &n, err, errsz);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++) {
		char *text;
		size_t len;
		const unsigned char *p;
		X509_CRL *crl = NULL;
		BIO *b;

		r = read_file_as(files[i], ap->owner_files_allowed, false, true, &text, &len, err,
			errsz);
		if (r < 0)
			break;
		b = BIO_new_mem_buf(text, (int)len);
		while (b && (crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)))
			sk_X509_CRL_push(ap->trust.crls, crl);
		BIO_free(b);
		if (!memmem(text, len, "-----BEGIN X509 CRL-----", 24)) {
			p = (const unsigned char *)text;
			crl = d2i_X509_CRL(NULL, &p, (long)len);
			if (crl)
				sk_X509_CRL_push(ap->trust.crls, crl);
			else {
				snprintf(err, errsz, "'%s' is not a CRL (PEM or DER)", files[i]);
				r = -EINVAL;
			}
		}
		free(text);
	}
	strv_free(files, n);
	return r;
}

static void
resolve_owners(struct pol_policy *p)
{
	for (size_t i = 0; i < p->n_owners; i++) {
		struct passwd pw, *res = NULL;
		char buf[4096];

		if (getpwnam_r(p->owners[i].account, &pw, buf, sizeof(buf), &res) == 0 && res) {
			p->owners[i].uid = res->pw_uid;
			p->owners[i].uid_known = true;
		}
	}
}

int
ag_policy_load(const char *dir, bool dir_given, struct ag_policy **ret, char *err, size_t errsz)
{
	struct ag_policy *ap = calloc(1, sizeof(*ap));
	_cleanup_free_ char *path = NULL;
	struct stat st;
	char *text = NULL;
	size_t len;
	int r;

	if (!ap)
		return -ENOMEM;
	pol_policy_init(&ap->pol);
	ap->owner_files_allowed = dir_given;
	ap->dir = strdup(dir);
	if (!ap->dir) {
		r = -ENOMEM;
		goto fail;
	}
	if (lstat(dir, &st) == 0) {
		r = check_owner(dir, &st, dir_given, err, errsz);
		if (r < 0)
			goto fail;
	} else if (dir_given) {
		r = -errno;
		snprintf(err, errsz, "cannot read the policy directory '%s': %s", dir, strerror(errno));
		goto fail;
	}
	if (asprintf(&path, "%s/policy.conf", dir) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	r = read_file(path, dir_given, true, &text, &len, err, errsz);
	if (r >= 0 && text)
		r = pol_policy_parse(&ap->pol, path, text, err, errsz);
	free(text);
	text = NULL;
	if (r < 0)
		goto fail;
	free(path);
	path = NULL;

#define SUBDIR(name) (free(path), path = NULL, asprintf(&path, "%s/" name, dir) < 0 ? NULL : path)
	if (!SUBDIR("policy.d") ||
	    (r = parse_files(ap, path, ".conf", pol_policy_parse, err, errsz)) < 0)
		goto fail_nomem;
	if (!SUBDIR("owners.d") ||
	    (r = parse_files(ap, path, ".conf", pol_owner_parse, err, errsz)) < 0)
		goto fail_nomem;
	if (!SUBDIR("revoked.list"))
		goto fail_nomem;
	r = read_file(path, dir_given, true, &text, &len, err, errsz);
	if (r >= 0 && text)
		r = pol_revoked_parse(&ap->pol, path, text, err, errsz);
	free(text);
	if (r < 0)
		goto fail;
	if (!ap->pol.trust_anchors && !(ap->pol.trust_anchors = SUBDIR("anchors") ? strdup(path) : NULL))
		goto fail_nomem;
	if (!ap->pol.crl_dir && !(ap->pol.crl_dir = SUBDIR("crl") ? strdup(path) : NULL))
		goto fail_nomem;
#undef SUBDIR
	r = load_anchors(ap, ap->pol.trust_anchors, err, errsz);
	if (r >= 0)
		r = load_crls(ap, ap->pol.crl_dir, err, errsz);
	if (r < 0)
		goto fail;
	resolve_owners(&ap->pol);
	*ret = ap;
	return 0;
fail_nomem:
	if (r >= 0) {
		r = -ENOMEM;
		snprintf(err, errsz, "out of memory");
	}
fail:
	ag_policy_free(ap);
	return r;
}

struct ag_policy *
ag_policy_free(struct ag_policy *ap)
{
	if (!ap)
		return NULL;
	pol_policy_release(&ap->pol);
	sk_X509_pop_free(ap->trust.anchors, X509_free);
	sk_X509_pop_free(ap->trust.intermediates, X509_free);
	sk_X509_CRL_pop_free(ap->trust.crls, X509_CRL_free);
	free(ap->dir);
	free(ap);
	return NULL;
}
