/*
 * `paraf admin backup FILE` and `paraf admin restore FILE` (R15: backup and restore of the
 * certificate-management system, never keys). The archive is POSIX ustar, readable with tar(1):
 *
 *   paraf-backup.info    what, when, from where, by whom
 *   policy/…             owners.d/, certs/, revoked.list, incidents.log, policy.conf,
 *                        policy.d/, anchors/, crl/
 *   audit/…              the audit log directory (checkpoint first, then the log files, each
 *                        cut at its last complete line: a consistent snapshot while
 *                        paraf-auditd appends)
 *   SHA256SUMS           sha256sum(1) lines for every member above ('sha256sum -c' checks an
 *                        extracted archive); its own SHA-256 is the archive's fingerprint,
 *                        printed and recorded in the audit log
 *
 * Key material never goes in (R3): pins/ is not among the parts, files named *.key or *.pin
 * are left out, and a file holding a PEM private key stops the backup. A restore stages the
 * whole archive in a private directory and checks everything (form, checksums, no key
 * material, the audit chain with aud_verify, the policy as parafd reads it) before it writes
 * anything into place; it never overwrites a differing file without --force, never removes a
 * revocation or an incident (R8, R9: those files are merged), and never deletes an audit log
 * (one that the archive's does not continue is moved aside).
 */
#include "cli.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ag-policy.h"
#include "aud.h"
#include "cli-admin.h"
#include "paraf-config.h"

#define TAR_BLOCK 512
#define BACKUP_FORMAT "paraf-backup 1"
#define BACKUP_SUMS "SHA256SUMS"
#define BACKUP_INFO "paraf-backup.info"
#define BACKUP_CHUNK (64u * 1024)
#define BACKUP_NAME_MAX 255 /* one file name inside a part */
#define KEY_NEEDLE "PRIVATE KEY-----"

/* The policy directory's parts: single files, then directories of files (one level). */
static const char *const policy_files[] = { "policy.conf", "revoked.list", "incidents.log" };
static const char *const policy_dirs[] = { "owners.d", "certs", "policy.d", "anchors", "crl" };

/* --- names ------------------------------------------------------------------------------ */

static bool
name_is_key(const char *name)
{
	size_t n = strlen(name);

	return (n >= 4 && (streq(name + n - 4, ".key") || streq(name + n - 4, ".pin"))) ||
	       streq(name, "pins") || strncmp(name, "pins/", 5) == 0 ||
	       strstr(name, "/pins/") != NULL;
}

/* A file name inside a part: printable, no '/', not hidden. */
static bool
leaf_ok(const char *s, size_t n)
{
	if (n == 0 || n > BACKUP_NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '/' || s[i] == '\\')
			return false;
	return true;
}

/* The members an archive may hold; anything else is refused. */
static bool
member_name_ok(const char *p)
{
	if (streq(p, BACKUP_SUMS) || streq(p, BACKUP_INFO))
		return true;
	if (strncmp(p, "audit/", 6) == 0)
		return leaf_ok(p + 6, strlen(p + 6));
	if (strncmp(p, "policy/", 7) != 0)
		return false;
	p += 7;
	for (size_t i = 0; i < ARRAY_SIZE(policy_files); i++)
		if (streq(p, policy_files[i]))
			return true;
	for (size_t i = 0; i < ARRAY_SIZE(policy_dirs); i++) {
		size_t l = strlen(policy_dirs[i]);

		if (strncmp(p, policy_dirs[i], l) == 0 && p[l] == '/')
			return leaf_ok(p + l + 1, strlen(p + l + 1));
	}
	return false;
}

/* --- SHA-256 and the key scan ----------------------------------------------------------- */

struct scan {
	EVP_MD_CTX *md;
	char tail[sizeof(KEY_NEEDLE)]; /* the last bytes of the previous chunk */
	size_t tail_len;
	bool key;
};

static int
scan_init(struct scan *s)
{
	memset(s, 0, sizeof(*s));
	s->md = EVP_MD_CTX_new();
	if (!s->md || !EVP_DigestInit_ex(s->md, EVP_sha256(), NULL))
		return -ENOMEM;
	return 0;
}

static void
scan_update(struct scan *s, const uint8_t *p, size_t n)
{
	const size_t nl = sizeof(KEY_NEEDLE) - 1;
	char join[2 * sizeof(KEY_NEEDLE)];
	size_t head = n < nl ? n : nl;

	EVP_DigestUpdate(s->md, p, n);
	/* The needle may straddle two chunks. */
	memcpy(join, s->tail, s->tail_len);
	memcpy(join + s->tail_len, p, head);
	if (memmem(join, s->tail_len + head, KEY_NEEDLE, nl) || memmem(p, n, KEY_NEEDLE, nl))
		s->key = true;
	if (n >= nl - 1) {
		memcpy(s->tail, p + n - (nl - 1), nl - 1);
		s->tail_len = nl - 1;
	} else {
		size_t keep = s->tail_len + n > nl - 1 ? nl - 1 - n : s->tail_len;

		memmove(s->tail, s->tail + s->tail_len - keep, keep);
		memcpy(s->tail + keep, p, n);
		s->tail_len = keep + n;
	}
}

static void
scan_final(struct scan *s, char hex[65])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	EVP_DigestFinal_ex(s->md, d, &n);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	EVP_MD_CTX_free(s->md);
	s->md = NULL;
}

static void
sha256_hex(const void *p, size_t n, char hex[65])
{
	struct scan s;

	if (scan_init(&s) < 0) {
		EVP_MD_CTX_free(s.md);
		memset(hex, '0', 64);
		hex[64] = 0;
		return;
	}
	scan_update(&s, p, n);
	scan_final(&s, hex);
}

/* --- writing ustar ---------------------------------------------------------------------- */

static int
write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t k = write(fd, b, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return pf_negerrno();
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

static int
tar_header(int fd, const char *name, uint64_t size, mode_t mode, time_t mtime)
{
	uint8_t h[TAR_BLOCK];
	size_t n = strlen(name);
	unsigned sum = 0;

	memset(h, 0, sizeof(h));
	if (n <= 100) {
		memcpy(h, name, n);
	} else {
		/* prefix (155) '/' name (100) */
		const char *slash = NULL;

		for (const char *s = name; (s = strchr(s, '/')); s++)
			if ((size_t)(s - name) <= 155 && n - (size_t)(s - name) - 1 <= 100)
				slash = s;
		if (!slash)
			return -ENAMETOOLONG;
		memcpy(h + 345, name, (size_t)(slash - name));
		memcpy(h, slash + 1, n - (size_t)(slash - name) - 1);
	}
	snprintf((char *)h + 100, 8, "%07o", (unsigned)(mode & 07777));
	snprintf((char *)h + 108, 8, "%07o", 0u);
	snprintf((char *)h + 116, 8, "%07o", 0u);
	if (size > 077777777777ull)
		return -EFBIG; /* 11 octal digits: what ustar can say */
	snprintf((char *)h + 124, 12, "%011" PRIo64, (uint64_t)(size & 077777777777ull));
	snprintf((char *)h + 136, 12, "%011" PRIo64,
		(uint64_t)((uint64_t)(mtime > 0 ? mtime : 0) & 077777777777ull));
	memset(h + 148, ' ', 8);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memcpy(h + 265, "root", 4);
	memcpy(h + 297, "root", 4);
	for (size_t i = 0; i < TAR_BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	return write_all(fd, h, sizeof(h));
}

static int
tar_pad(int fd, uint64_t size)
{
	static const uint8_t zero[TAR_BLOCK];
	size_t pad = (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);

	return pad ? write_all(fd, zero, pad) : 0;
}

static int
tar_member_mem(int fd, const char *name, const char *data, size_t n, time_t now)
{
	int r = tar_header(fd, name, n, 0644, now);

	if (r >= 0)
		r = write_all(fd, data, n);
	if (r >= 0)
		r = tar_pad(fd, n);
	return r;
}

struct bk {
	const struct cli_backup_opts *o;
	int fd;
	struct pf_buf sums;
	struct cli_backup_result *res;
	char *err;
	size_t errsz;
};

/* For an audit log file: the length up to its last complete line (the service may be
 * appending one right now). */
static int
complete_length(int fd, uint64_t size, uint64_t *ret)
{
	char buf[4096];
	uint64_t end = size;

	while (end > 0) {
		size_t n = end < sizeof(buf) ? (size_t)end : sizeof(buf);
		ssize_t k = pread(fd, buf, n, (off_t)(end - n));

		if (k < 0)
			return pf_negerrno();
		if ((size_t)k != n)
			return -EIO;
		for (size_t i = n; i-- > 0;)
			if (buf[i] == '\n') {
				*ret = end - n + i + 1;
				return 0;
			}
		end -= n;
	}
	*ret = 0;
	return 0;
}

static int
backup_file(struct bk *b, const char *src, const char *name, bool lines)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ uint8_t *buf = NULL;
	struct scan sc;
	struct stat st;
	uint64_t size, left;
	char hex[65];
	int r;

	fd = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = pf_negerrno();
		snprintf(b->err, b->errsz, "cannot read '%s': %s", src, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	size = (uint64_t)st.st_size;
	if (lines) {
		r = complete_length(fd, size, &size);
		if (r < 0) {
			snprintf(b->err, b->errsz, "cannot read '%s': %s", src, strerror(-r));
			return r;
		}
	}
	if (size > CLI_BACKUP_MEMBER_MAX) {
		snprintf(b->err, b->errsz, "'%s' is larger than %llu bytes", src,
			(unsigned long long)CLI_BACKUP_MEMBER_MAX);
		return -EFBIG;
	}
	if (b->res->files >= CLI_BACKUP_MEMBERS_MAX) {
		snprintf(b->err, b->errsz, "more than %d files to back up", CLI_BACKUP_MEMBERS_MAX);
		return -E2BIG;
	}
	buf = malloc(BACKUP_CHUNK);
	if (!buf || scan_init(&sc) < 0) {
		if (buf)
			EVP_MD_CTX_free(sc.md);
		return -ENOMEM;
	}
	r = tar_header(b->fd, name, size, st.st_mode, st.st_mtime);
	for (left = size; r >= 0 && left > 0;) {
		ssize_t k = read(fd, buf, left < BACKUP_CHUNK ? (size_t)left : BACKUP_CHUNK);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			/* Shorter than it was a moment ago: not the file we started on. */
			r = k < 0 ? pf_negerrno() : -EAGAIN;
			snprintf(b->err, b->errsz, "'%s' %s while it was read", src,
				k < 0 ? "could not be read" : "shrank");
			break;
		}
		scan_update(&sc, buf, (size_t)k);
		r = write_all(b->fd, buf, (size_t)k);
		left -= (uint64_t)k;
	}
	if (r >= 0)
		r = tar_pad(b->fd, size);
	scan_final(&sc, hex);
	if (r >= 0 && sc.key) {
		snprintf(b->err, b->errsz, "'%s' holds a private key: key material is never backed "
					   "up (R3, R15); remove it from there, then back up again", src);
		return -EPERM;
	}
	if (r < 0) {
		if (!b->err[0])
			snprintf(b->err, b->errsz, "cannot write the archive: %s", strerror(-r));
		return r;
	}
	pf_buf_put(&b->sums, hex, 64);
	pf_buf_put(&b->sums, "  ", 2);
	pf_buf_put(&b->sums, name, strlen(name));
	pf_buf_put(&b->sums, "\n", 1);
	b->res->files++;
	if (b->o->out)
		fprintf(b->o->out, "  %s\n", name);
	return pf_buf_status(&b->sums);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular, non-hidden files of dir, sorted; a missing directory has none. */
static int
dir_files(const char *dir, char ***ret, size_t *ret_n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0;
	int r = 0;

	*ret = NULL;
	*ret_n = 0;
	if (!d)
		return errno == ENOENT ? 0 : pf_negerrno();
	while ((e = readdir(d))) {
		char **nv;

		if (e->d_name[0] == '.')
			continue;
		if (n >= CLI_BACKUP_MEMBERS_MAX) {
			r = -E2BIG;
			break;
		}
		nv = realloc(v, (n + 1) * sizeof(*nv));
		if (!nv || !(nv[n] = strdup(e->d_name))) {
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

static bool
is_regular(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int
backup_policy(struct bk *b)
{
	const char *pd = b->o->policy_dir;
	_cleanup_free_ char *pins = NULL;
	int r = 0;

	if (asprintf(&pins, "%s/pins", pd) < 0)
		return -ENOMEM;
	if (b->o->out && access(pins, F_OK) == 0)
		fprintf(b->o->out, "  left out (key material): %s/ (PINs are never backed up, R3)\n",
			pins);
	for (size_t i = 0; i < ARRAY_SIZE(policy_files) && r >= 0; i++) {
		_cleanup_free_ char *src = NULL, *name = NULL;

		if (asprintf(&src, "%s/%s", pd, policy_files[i]) < 0 ||
		    asprintf(&name, "policy/%s", policy_files[i]) < 0)
			return -ENOMEM;
		if (is_regular(src))
			r = backup_file(b, src, name, false);
	}
	for (size_t i = 0; i < ARRAY_SIZE(policy_dirs) && r >= 0; i++) {
		_cleanup_free_ char *dir = NULL;
		char **files;
		size_t n;

		if (asprintf(&dir, "%s/%s", pd, policy_dirs[i]) < 0)
			return -ENOMEM;
		r = dir_files(dir, &files, &n);
		if (r < 0) {
			snprintf(b->err, b->errsz, "cannot read '%s': %s", dir, strerror(-r));
			return r;
		}
		for (size_t k = 0; k < n && r >= 0; k++) {
			_cleanup_free_ char *src = NULL, *name = NULL;

			if (asprintf(&src, "%s/%s", dir, files[k]) < 0 ||
			    asprintf(&name, "policy/%s/%s", policy_dirs[i], files[k]) < 0) {
				r = -ENOMEM;
				break;
			}
			if (name_is_key(files[k])) {
				/* R3: keys and PINs stay where they are. */
				b->res->skipped++;
				if (b->o->out)
					fprintf(b->o->out, "  left out (key material): %s\n", src);
				continue;
			}
			if (!is_regular(src) || !leaf_ok(files[k], strlen(files[k])))
				continue;
			r = backup_file(b, src, name, false);
		}
		strv_free(files, n);
	}
	return r;
}

static int
backup_audit(struct bk *b)
{
	const char *ad = b->o->audit_dir;
	char **files;
	size_t n;
	int r;

	r = dir_files(ad, &files, &n);
	if (r < 0) {
		snprintf(b->err, b->errsz, "cannot read '%s': %s", ad, strerror(-r));
		return r;
	}
	/* The checkpoint before the logs: the logs copied after it can only be longer than it
	 * says, never shorter. */
	for (int pass = 0; pass < 2 && r >= 0; pass++)
		for (size_t k = 0; k < n && r >= 0; k++) {
			_cleanup_free_ char *src = NULL, *name = NULL;
			bool cp = streq(files[k], "checkpoint");

			if (cp != (pass == 0))
				continue;
			if (name_is_key(files[k])) {
				b->res->skipped++;
				continue;
			}
			if (asprintf(&src, "%s/%s", ad, files[k]) < 0 ||
			    asprintf(&name, "audit/%s", files[k]) < 0) {
				r = -ENOMEM;
				break;
			}
			if (!is_regular(src) || !leaf_ok(files[k], strlen(files[k])))
				continue;
			r = backup_file(b, src, name, strncmp(files[k], "audit-", 6) == 0);
		}
	strv_free(files, n);
	return r;
}

static int
tmp_beside(const char *path, char **ret_tmp)
{
	_cleanup_free_ char *copy = strdup(path);
	char *slash;

	if (!copy)
		return -ENOMEM;
	slash = strrchr(copy, '/');
	if (slash)
		*slash = 0;
	if (asprintf(ret_tmp, "%s/.paraf-tmp.XXXXXX", slash ? (*copy ? copy : "/") : ".") < 0)
		return -ENOMEM;
	return 0;
}

static void
fsync_dir_of(const char *path)
{
	_cleanup_free_ char *copy = strdup(path);
	char *slash = copy ? strrchr(copy, '/') : NULL;
	int dfd;

	if (!copy)
		return;
	if (slash)
		*slash = 0;
	dfd = open(slash ? (*copy ? copy : "/") : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
}

int
cli_backup_write(const struct cli_backup_opts *o, struct cli_backup_result *ret, char *err,
	size_t errsz)
{
	struct cli_backup_result res = {};
	struct bk b = { .o = o, .fd = -1, .res = &res, .err = err, .errsz = errsz };
	_cleanup_free_ char *tmp = NULL, *info = NULL;
	struct aud_report ar;
	struct passwd *pw = getpwuid(getuid());
	char host[256] = "?", when[32];
	struct tm tm;
	struct stat st;
	int r;

	err[0] = 0;
	if (stat(o->policy_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errsz, "the policy directory '%s' cannot be read", o->policy_dir);
		return -ENOENT;
	}
	if (!o->force && access(o->archive, F_OK) == 0) {
		snprintf(err, errsz, "'%s' exists; --force replaces it", o->archive);
		return -EEXIST;
	}
	/* The log's state at the time of the backup goes into the info (a restore checks it). */
	memset(&ar, 0, sizeof(ar));
	r = aud_verify(o->audit_dir, &ar);
	if (r < 0 && ar.fault == AUD_OK)
		ar.records = 0;
	res.audit_records = ar.records;
	gethostname(host, sizeof(host) - 1);
	if (!gmtime_r(&o->now, &tm) || !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(when, sizeof(when), "?");
	if (asprintf(&info, "format = %s\ncreated = %s\nhost = %s\nby = %s (uid %u)\n"
			    "policy_dir = %s\naudit_dir = %s\naudit_intact = %s\n"
			    "audit_records = %" PRIu64 "\naudit_head = %s\n",
		    BACKUP_FORMAT, when, host, pw ? pw->pw_name : "?", (unsigned)getuid(),
		    o->policy_dir, o->audit_dir, r < 0 && ar.fault == AUD_OK ? "unreadable"
		    : ar.fault == AUD_OK ? "yes" : "no", ar.records,
		    ar.fault == AUD_OK && ar.records ? ar.head : "-") < 0) {
		info = NULL;
		return -ENOMEM;
	}
	if (ar.fault != AUD_OK && o->out)
		fprintf(o->out, "warning: the audit log in '%s' is not intact (%s): the archive "
				"keeps it as it is, and a restore will refuse it\n", o->audit_dir,
			aud_fault_to_string(ar.fault));
	r = tmp_beside(o->archive, &tmp);
	if (r < 0)
		return r;
	/* The archive holds the registry's personal data (R17): the caller's eyes only. */
	b.fd = mkostemp(tmp, O_CLOEXEC);
	if (b.fd < 0) {
		r = pf_negerrno();
		snprintf(err, errsz, "cannot write beside '%s': %s", o->archive, strerror(-r));
		free(TAKE_PTR(tmp));
		return r;
	}
	(void)fchmod(b.fd, 0600);
	pf_buf_init(&b.sums);
	r = tar_member_mem(b.fd, BACKUP_INFO, info, strlen(info), o->now);
	if (r >= 0) {
		char hex[65];

		sha256_hex(info, strlen(info), hex);
		pf_buf_put(&b.sums, hex, 64);
		pf_buf_put(&b.sums, "  " BACKUP_INFO "\n", strlen("  " BACKUP_INFO "\n"));
		res.files++;
		r = backup_policy(&b);
	}
	if (r >= 0)
		r = backup_audit(&b);
	if (r >= 0)
		r = pf_buf_status(&b.sums);
	if (r >= 0) {
		r = tar_member_mem(b.fd, BACKUP_SUMS, (const char *)b.sums.data, b.sums.len, o->now);
		sha256_hex(b.sums.data, b.sums.len, res.manifest_sha256);
	}
	if (r >= 0) {
		static const uint8_t end[2 * TAR_BLOCK];
		r = write_all(b.fd, end, sizeof(end));
	}
	if (r >= 0 && fsync(b.fd) < 0)
		r = pf_negerrno();
	if (close(TAKE_FD(b.fd)) < 0 && r >= 0)
		r = pf_negerrno();
	if (r >= 0) {
		if (o->force)
			r = rename(tmp, o->archive) < 0 ? pf_negerrno() : 0;
		else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, o->archive, RENAME_NOREPLACE) < 0)
			r = errno == EINVAL || errno == ENOSYS
				    ? (link(tmp, o->archive) < 0 ? pf_negerrno() : (unlink(tmp), 0))
				    : pf_negerrno();
		if (r < 0)
			snprintf(err, errsz, "cannot write '%s': %s", o->archive, strerror(-r));
		else
			fsync_dir_of(o->archive);
	}
	if (r < 0) {
		(void)unlink(tmp);
		if (!err[0])
			snprintf(err, errsz, "cannot write the archive: %s", strerror(-r));
	}
	pf_buf_release(&b.sums);
	if (r >= 0)
		*ret = res;
	return r;
}

/* --- reading ustar into a staging directory --------------------------------------------- */

struct member {
	char *name;
	char sha[65];
	mode_t mode;
	uint64_t size;
	bool listed; /* in SHA256SUMS */
};

struct stage {
	char *dir;
	struct member *m;
	size_t n;
};

static void
stage_release(struct stage *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->m[i].name);
	free(s->m);
	s->m = NULL;
	s->n = 0;
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void
stage_remove(struct stage *s)
{
	if (s->dir) {
		(void)nftw(s->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
		free(s->dir);
		s->dir = NULL;
	}
	stage_release(s);
}

static int
read_full(int fd, void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = read(fd, (uint8_t *)p + got, n - got);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return pf_negerrno();
		if (k == 0)
			return got ? -EBADMSG : -ENODATA;
		got += (size_t)k;
	}
	return 0;
}

static int
octal(const uint8_t *f, size_t n, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i = 0;

	while (i < n && f[i] == ' ')
		i++;
	if (i == n || f[i] < '0' || f[i] > '7')
		return -EBADMSG;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v > (UINT64_MAX >> 3))
			return -EBADMSG;
		v = v * 8 + (uint64_t)(f[i] - '0');
	}
	for (; i < n; i++)
		if (f[i] != ' ' && f[i] != 0)
			return -EBADMSG;
	*ret = v;
	return 0;
}

static int
mkdir_p(const char *path, mode_t mode)
{
	_cleanup_free_ char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	for (char *q = p + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = 0;
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return pf_negerrno();
		*q = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return pf_negerrno();
	return 0;
}

#define BAD(...) (snprintf(err, errsz, __VA_ARGS__), -EBADMSG)

static int
stage_archive(int fd, struct stage *s, char *err, size_t errsz)
{
	_cleanup_free_ uint8_t *buf = malloc(BACKUP_CHUNK);
	uint8_t h[TAR_BLOCK];
	int r;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		char name[256 + 2];
		uint64_t size, mode, chk, left;
		unsigned sum = 0;
		size_t nl;
		bool zero = true;
		_cleanup_free_ char *path = NULL;
		_cleanup_close_ int out = -1;
		struct scan sc;
		struct member *nm;

		r = read_full(fd, h, sizeof(h));
		if (r == -ENODATA)
			return BAD("the archive ends without its end marker: it is truncated");
		if (r < 0)
			return r == -EBADMSG ? BAD("the archive is truncated") : r;
		for (size_t i = 0; i < sizeof(h) && zero; i++)
			zero = h[i] == 0;
		if (zero) {
			/* The end: a second zero block, then nothing that matters. */
			r = read_full(fd, h, sizeof(h));
			if (r < 0)
				return BAD("the archive is truncated after its first end block");
			for (size_t i = 0; i < sizeof(h); i++)
				if (h[i])
					return BAD("data after the archive's end block");
			return 0;
		}
		if (octal(h + 148, 8, &chk) < 0)
			return BAD("a member header has no checksum: not a tar archive");
		memset(h + 148, ' ', 8);
		for (size_t i = 0; i < sizeof(h); i++)
			sum += h[i];
		if (sum != chk)
			return BAD("a member header's checksum is wrong: the archive is damaged");
		if (memcmp(h + 257, "ustar", 6) != 0)
			return BAD("not a POSIX ustar archive");
		if (h[345]) {
			size_t pl = strnlen((char *)h + 345, 155);

			memcpy(name, h + 345, pl);
			name[pl] = '/';
			nl = strnlen((char *)h, 100);
			memcpy(name + pl + 1, h, nl);
			name[pl + 1 + nl] = 0;
		} else {
			nl = strnlen((char *)h, 100);
			memcpy(name, h, nl);
			name[nl] = 0;
		}
		if (octal(h + 124, 12, &size) < 0 || octal(h + 100, 8, &mode) < 0)
			return BAD("'%s': a malformed size or mode in its header", name);
		if (h[156] == '5') {
			if (size)
				return BAD("'%s': a directory with contents: the archive is refused",
					name);
			continue; /* a directory entry: its files say all */
		}
		if (h[156] != '0' && h[156] != 0)
			return BAD("'%s' is not a regular file (type '%c'): refused", name, h[156]);
		if (name_is_key(name))
			return BAD("'%s' looks like key material: a paraf backup never holds keys "
				   "(R3, R15); the archive is refused", name);
		if (!member_name_ok(name))
			return BAD("'%s' is not part of a paraf backup: the archive is refused", name);
		for (size_t i = 0; i < s->n; i++)
			if (streq(s->m[i].name, name))
				return BAD("'%s' appears twice: the archive is refused", name);
		if (size > CLI_BACKUP_MEMBER_MAX)
			return BAD("'%s' is larger than a member may be", name);
		if (s->n >= CLI_BACKUP_MEMBERS_MAX)
			return BAD("more than %d members", CLI_BACKUP_MEMBERS_MAX);
		if (asprintf(&path, "%s/%s", s->dir, name) < 0) {
			path = NULL;
			return -ENOMEM;
		}
		{
			_cleanup_free_ char *parent = strdup(path);
			char *slash = parent ? strrchr(parent, '/') : NULL;

			if (!slash)
				return -ENOMEM;
			*slash = 0;
			r = mkdir_p(parent, 0700);
			if (r < 0)
				return r;
		}
		out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (out < 0)
			return pf_negerrno();
		if (scan_init(&sc) < 0) {
			EVP_MD_CTX_free(sc.md);
			return -ENOMEM;
		}
		for (left = size; left > 0;) {
			size_t want = left < BACKUP_CHUNK ? (size_t)left : BACKUP_CHUNK;

			r = read_full(fd, buf, want);
			if (r < 0) {
				EVP_MD_CTX_free(sc.md);
				return r == -ENODATA || r == -EBADMSG
					       ? BAD("'%s' is cut short: the archive is truncated", name)
					       : r;
			}
			scan_update(&sc, buf, want);
			r = write_all(out, buf, want);
			if (r < 0) {
				EVP_MD_CTX_free(sc.md);
				return r;
			}
			left -= want;
		}
		if (size % TAR_BLOCK) {
			r = read_full(fd, buf, TAR_BLOCK - size % TAR_BLOCK);
			if (r < 0) {
				EVP_MD_CTX_free(sc.md);
				return BAD("'%s' is cut short: the archive is truncated", name);
			}
		}
		nm = realloc(s->m, (s->n + 1) * sizeof(*nm));
		if (!nm) {
			EVP_MD_CTX_free(sc.md);
			return -ENOMEM;
		}
		s->m = nm;
		memset(&nm[s->n], 0, sizeof(*nm));
		scan_final(&sc, nm[s->n].sha);
		if (sc.key)
			return BAD("'%s' holds a private key: a paraf backup never holds keys (R3, "
				   "R15); the archive is refused", name);
		nm[s->n].name = strdup(name);
		if (!nm[s->n].name)
			return -ENOMEM;
		nm[s->n].mode = (mode_t)mode;
		nm[s->n].size = size;
		s->n++;
	}
}

static struct member *
member_find(struct stage *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (streq(s->m[i].name, name))
			return &s->m[i];
	return NULL;
}

/* Every member against SHA256SUMS, and every line of it against a member. */
static int
stage_check_sums(struct stage *s, char *err, size_t errsz)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ uint8_t *text = NULL;
	struct member *sums = member_find(s, BACKUP_SUMS), *info = member_find(s, BACKUP_INFO);
	size_t len;
	char *line, *save = NULL;
	int r;

	if (!sums)
		return BAD("the archive has no " BACKUP_SUMS ": not a paraf backup, or damaged");
	if (!info)
		return BAD("the archive has no " BACKUP_INFO ": not a paraf backup, or damaged");
	if (asprintf(&path, "%s/" BACKUP_SUMS, s->dir) < 0)
		return -ENOMEM;
	r = cli_file_read_all(path, 64u * 1024 * 1024, &text, &len);
	if (r < 0)
		return r;
	if (memchr(text, 0, len))
		return BAD(BACKUP_SUMS " is not text");
	for (line = strtok_r((char *)text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct member *m;
		size_t hl = strspn(line, "0123456789abcdef");

		if (hl != 64 || line[64] != ' ' || line[65] != ' ')
			return BAD(BACKUP_SUMS ": a malformed line");
		m = member_find(s, line + 66);
		if (!m || streq(m->name, BACKUP_SUMS))
			return BAD(BACKUP_SUMS " lists '%s', which the archive does not hold: "
				   "files were removed from it", line + 66);
		if (m->listed)
			return BAD(BACKUP_SUMS " lists '%s' twice", m->name);
		m->listed = true;
		if (memcmp(m->sha, line, 64) != 0)
			return BAD("'%s' does not match its checksum: the archive is damaged or was "
				   "changed after the backup", m->name);
	}
	for (size_t i = 0; i < s->n; i++)
		if (!s->m[i].listed && !streq(s->m[i].name, BACKUP_SUMS))
			return BAD("'%s' is not in " BACKUP_SUMS ": it was added to the archive after "
				   "the backup", s->m[i].name);
	/* The format the info names. */
	{
		_cleanup_free_ char *ipath = NULL;
		_cleanup_free_ uint8_t *itext = NULL;

		if (asprintf(&ipath, "%s/" BACKUP_INFO, s->dir) < 0)
			return -ENOMEM;
		r = cli_file_read_all(ipath, 64u * 1024, &itext, &len);
		if (r < 0)
			return r;
		if (strncmp((char *)itext, "format = " BACKUP_FORMAT "\n",
			    strlen("format = " BACKUP_FORMAT "\n")) != 0)
			return BAD(BACKUP_INFO " names another format than '" BACKUP_FORMAT "'");
	}
	return 0;
}

/* --- putting it in place ---------------------------------------------------------------- */

enum action { ACT_NONE, ACT_WRITE, ACT_MERGE };

struct plan_item {
	const struct member *m;
	char *dest;
	enum action act;
	bool conflict;    /* exists and differs */
	char *merged;     /* ACT_MERGE: the new content */
	size_t added;     /* ACT_MERGE: lines added */
};

static int
files_equal(const char *a, const char *b)
{
	_cleanup_close_ int fa = open(a, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int fb = open(b, O_RDONLY | O_CLOEXEC);
	struct stat sa, sb;
	uint8_t x[8192], y[8192];
	uint64_t left;

	if (fa < 0 || fb < 0 || fstat(fa, &sa) < 0 || fstat(fb, &sb) < 0 || sa.st_size != sb.st_size)
		return 0;
	for (left = (uint64_t)sa.st_size; left > 0;) {
		size_t n = left < sizeof(x) ? (size_t)left : sizeof(x);

		if (read_full(fa, x, n) < 0 || read_full(fb, y, n) < 0 || memcmp(x, y, n) != 0)
			return 0;
		left -= n;
	}
	return 1;
}

/* 1 when a's bytes are the first bytes of b (or equal). */
static int
file_is_prefix(const char *a, const char *b)
{
	_cleanup_close_ int fa = open(a, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int fb = open(b, O_RDONLY | O_CLOEXEC);
	struct stat sa, sb;
	uint8_t x[8192], y[8192];
	uint64_t left;

	if (fa < 0 || fb < 0 || fstat(fa, &sa) < 0 || fstat(fb, &sb) < 0 || sa.st_size > sb.st_size)
		return 0;
	for (left = (uint64_t)sa.st_size; left > 0;) {
		size_t n = left < sizeof(x) ? (size_t)left : sizeof(x);

		if (read_full(fa, x, n) < 0 || read_full(fb, y, n) < 0 || memcmp(x, y, n) != 0)
			return 0;
		left -= n;
	}
	return 1;
}

/* revoked.list: what is here, then the archive's revocations of certificates not revoked
 * here (R8: a restore never lifts one). incidents.log: what is here, then the archive's
 * lines not here (R9). */
static int
merge_lines(const char *here, const char *archived, bool by_first_word, char **ret,
	size_t *ret_added)
{
	_cleanup_free_ uint8_t *h = NULL, *a = NULL;
	size_t hl = 0, al = 0, added = 0;
	struct pf_buf out;
	char *save = NULL;
	int r;

	r = cli_file_read_all(here, 64u * 1024 * 1024, &h, &hl);
	if (r == -ENOENT) {
		h = (uint8_t *)strdup("");
		r = h ? 0 : -ENOMEM;
	}
	if (r < 0)
		return r;
	r = cli_file_read_all(archived, 64u * 1024 * 1024, &a, &al);
	if (r < 0)
		return r;
	pf_buf_init(&out);
	pf_buf_put(&out, h, hl);
	if (hl && h[hl - 1] != '\n')
		pf_buf_put(&out, "\n", 1);
	for (char *line = strtok_r((char *)a, "\n", &save); line;
		line = strtok_r(NULL, "\n", &save)) {
		bool present = false;
		size_t ll = strlen(line), key = by_first_word ? strcspn(line, " \t") : ll;
		const char *p = (const char *)h;

		if (!ll || (by_first_word && line[0] == '#'))
			continue;
		/* Is it (or, for revocations, its certificate) here already? */
		while (p && *p) {
			const char *nl = strchr(p, '\n');
			size_t pl = nl ? (size_t)(nl - p) : strlen(p);

			if (by_first_word ? (pl >= key && strncmp(p, line, key) == 0 &&
						    (pl == key || p[key] == ' ' || p[key] == '\t'))
					  : (pl == ll && strncmp(p, line, ll) == 0)) {
				present = true;
				break;
			}
			p = nl ? nl + 1 : NULL;
		}
		if (present)
			continue;
		pf_buf_put(&out, line, ll);
		pf_buf_put(&out, "\n", 1);
		added++;
		/* later archive lines are checked against this one too */
		{
			uint8_t *nh = realloc(h, hl + ll + 2);

			if (!nh) {
				pf_buf_release(&out);
				return -ENOMEM;
			}
			h = nh;
			if (hl && h[hl - 1] != '\n')
				h[hl++] = '\n';
			memcpy(h + hl, line, ll);
			hl += ll;
			h[hl++] = '\n';
			h[hl] = 0;
		}
	}
	pf_buf_put(&out, "", 1);
	r = pf_buf_status(&out);
	if (r < 0) {
		pf_buf_release(&out);
		return r;
	}
	*ret = (char *)out.data;
	*ret_added = added;
	return 0;
}

/* Writes a new version of dest from a staged file or from memory: a temporary file beside
 * it, fsync, rename, fsync of the directory. */
static int
put_file(const char *dest, const char *src, const char *data, mode_t mode, uid_t uid, gid_t gid,
	bool chown_it)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int in = -1;
	int fd, r = 0;

	r = tmp_beside(dest, &tmp);
	if (r < 0)
		return r;
	{
		_cleanup_free_ char *parent = strdup(dest);
		char *slash = parent ? strrchr(parent, '/') : NULL;

		if (!slash)
			return -ENOMEM;
		*slash = 0;
		if (*parent) {
			r = mkdir_p(parent, 0755);
			if (r < 0)
				return r;
		}
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return pf_negerrno();
	if (data) {
		r = write_all(fd, data, strlen(data));
	} else {
		uint8_t buf[BACKUP_CHUNK / 4];
		ssize_t k;

		in = open(src, O_RDONLY | O_CLOEXEC);
		if (in < 0)
			r = pf_negerrno();
		while (r >= 0 && (k = read(in, buf, sizeof(buf))) != 0) {
			if (k < 0) {
				if (errno == EINTR)
					continue;
				r = pf_negerrno();
				break;
			}
			r = write_all(fd, buf, (size_t)k);
		}
	}
	if (r >= 0 && fchmod(fd, mode) < 0)
		r = pf_negerrno();
	if (r >= 0 && chown_it && fchown(fd, uid, gid) < 0)
		r = pf_negerrno();
	if (r >= 0 && fsync(fd) < 0)
		r = pf_negerrno();
	close(fd);
	if (r >= 0 && rename(tmp, dest) < 0)
		r = pf_negerrno();
	if (r < 0)
		(void)unlink(tmp);
	else
		fsync_dir_of(dest);
	return r;
}

static bool
is_log_name(const char *leaf)
{
	return strncmp(leaf, "audit-", 6) == 0;
}

enum audit_plan { AUDIT_NOTHING, AUDIT_WRITE, AUDIT_KEEP, AUDIT_REPLACE };

/* How the archive's log relates to the one here. */
static int
audit_relation(struct stage *s, const char *audit_dir, enum audit_plan *ret)
{
	char **here;
	size_t n_here, n_logs_here = 0, n_arch = 0;
	bool here_prefix = true, arch_prefix = true, differs = false;
	int r;

	r = dir_files(audit_dir, &here, &n_here);
	if (r < 0)
		return r;
	for (size_t i = 0; i < s->n; i++)
		if (strncmp(s->m[i].name, "audit/", 6) == 0 && is_log_name(s->m[i].name + 6))
			n_arch++;
	for (size_t i = 0; i < n_here; i++) {
		_cleanup_free_ char *hp = NULL, *ap = NULL, *mn = NULL;

		if (!is_log_name(here[i]))
			continue;
		n_logs_here++;
		if (asprintf(&hp, "%s/%s", audit_dir, here[i]) < 0 ||
		    asprintf(&mn, "audit/%s", here[i]) < 0 ||
		    asprintf(&ap, "%s/audit/%s", s->dir, here[i]) < 0) {
			strv_free(here, n_here);
			return -ENOMEM;
		}
		if (!member_find(s, mn)) {
			here_prefix = false; /* a file here the archive lacks */
			differs = true;
			continue;
		}
		if (!files_equal(hp, ap))
			differs = true;
		here_prefix = here_prefix && file_is_prefix(hp, ap);
		arch_prefix = arch_prefix && file_is_prefix(ap, hp);
	}
	if (n_arch > n_logs_here)
		differs = true;
	/* Archive files missing here break "the archive's is a prefix of this one" unless they
	 * are all here. */
	for (size_t i = 0; i < s->n && arch_prefix; i++) {
		const char *nm = s->m[i].name;
		bool found = false;

		if (strncmp(nm, "audit/", 6) != 0 || !is_log_name(nm + 6))
			continue;
		for (size_t k = 0; k < n_here && !found; k++)
			found = streq(here[k], nm + 6);
		arch_prefix = found;
	}
	strv_free(here, n_here);
	if (!n_arch)
		*ret = AUDIT_NOTHING;
	else if (!n_logs_here || (here_prefix && differs))
		*ret = AUDIT_WRITE;   /* nothing here, or the archive continues what is here */
	else if (!differs || arch_prefix)
		*ret = AUDIT_KEEP;    /* the same, or this one is newer */
	else
		*ret = AUDIT_REPLACE; /* diverged: only with --force, the old one moved aside */
	return 0;
}

static void
plan_release(struct plan_item *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].dest);
		free(v[i].merged);
	}
	free(v);
}

int
cli_backup_restore(const struct cli_backup_opts *o, struct cli_backup_result *ret, char *err,
	size_t errsz)
{
	struct cli_backup_result res = {};
	struct stage s = {};
	struct plan_item *plan = NULL;
	size_t n_plan = 0, conflicts = 0;
	struct aud_report ar;
	enum audit_plan ap = AUDIT_NOTHING;
	struct ag_policy *pol = NULL;
	_cleanup_close_ int fd = -1, audit_lock = -1;
	_cleanup_free_ char *tmpl = NULL, *sdir = NULL;
	struct stat st;
	uid_t audit_uid = 0;
	gid_t audit_gid = 0;
	bool chown_audit = false;
	const char *tmpdir = getenv("TMPDIR");
	int r;

	err[0] = 0;
	fd = open(o->archive, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = pf_negerrno();
		snprintf(err, errsz, "cannot read '%s': %s", o->archive, strerror(-r));
		return r;
	}
	if (asprintf(&tmpl, "%s/paraf-restore.XXXXXX",
		    tmpdir && tmpdir[0] == '/' ? tmpdir : "/tmp") < 0) {
		tmpl = NULL;
		return -ENOMEM;
	}
	if (!mkdtemp(tmpl)) {
		r = pf_negerrno();
		snprintf(err, errsz, "cannot make a staging directory: %s", strerror(-r));
		return r;
	}
	s.dir = TAKE_PTR(tmpl);

	/* 1. The archive's form, into the staging directory. */
	r = stage_archive(fd, &s, err, errsz);
	/* 2. Every checksum. */
	if (r >= 0)
		r = stage_check_sums(&s, err, errsz);
	/* 3. The archived audit chain (R13). */
	if (r >= 0) {
		if (asprintf(&sdir, "%s/audit", s.dir) < 0) {
			sdir = NULL;
			r = -ENOMEM;
		} else if (mkdir(sdir, 0700) < 0 && errno != EEXIST)
			r = pf_negerrno();
	}
	if (r >= 0) {
		memset(&ar, 0, sizeof(ar));
		r = aud_verify(sdir, &ar);
		if (r < 0) {
			snprintf(err, errsz, "the archived audit log cannot be read: %s; nothing was "
					     "restored", strerror(-r));
			r = -EBADMSG;
		} else if (ar.fault != AUD_OK) {
			snprintf(err, errsz, "the archived audit log is not intact: %s%s%s:%" PRIu64
					     ": seq %" PRIu64 "%s%s; nothing was restored",
				aud_fault_to_string(ar.fault),
				ar.file[0] ? " at " : "", ar.file[0] ? ar.file : "", ar.line, ar.seq,
				ar.detail[0] ? ": " : "", ar.detail);
			r = -EBADMSG;
		} else
			res.audit_records = ar.records;
	}
	/* 4. The archived policy, as parafd would read it. */
	if (r >= 0) {
		_cleanup_free_ char *pdir = NULL;
		char perr[1024];

		if (asprintf(&pdir, "%s/policy", s.dir) < 0)
			r = -ENOMEM;
		else if (mkdir(pdir, 0700) < 0 && errno != EEXIST)
			r = pf_negerrno();
		else if (ag_policy_load(pdir, true, &pol, perr, sizeof(perr)) < 0) {
			snprintf(err, errsz, "the archived policy would be refused by parafd: %s; "
					     "nothing was restored", perr);
			r = -EBADMSG;
		}
		pol = ag_policy_free(pol);
	}
	if (r >= 0) {
		_cleanup_free_ char *sp = NULL;
		_cleanup_free_ uint8_t *text = NULL;
		size_t len;

		if (asprintf(&sp, "%s/" BACKUP_SUMS, s.dir) >= 0 &&
		    cli_file_read_all(sp, 64u * 1024 * 1024, &text, &len) >= 0)
			sha256_hex(text, len, res.manifest_sha256);
	}

	/* 5. What would change here. */
	if (r >= 0)
		r = audit_relation(&s, o->audit_dir, &ap);
	st.st_mode = 0750;
	if (r >= 0 && stat(o->audit_dir, &st) == 0 && getuid() == 0) {
		/* The log's files belong to whoever owns its directory (the service's account). */
		audit_uid = st.st_uid;
		audit_gid = st.st_gid;
		chown_audit = true;
	}
	for (size_t i = 0; r >= 0 && i < s.n; i++) {
		struct member *m = &s.m[i];
		struct plan_item *pi;
		bool audit = strncmp(m->name, "audit/", 6) == 0;
		_cleanup_free_ char *src = NULL;

		if (streq(m->name, BACKUP_SUMS) || streq(m->name, BACKUP_INFO))
			continue;
		if (audit && (ap == AUDIT_NOTHING || ap == AUDIT_KEEP))
			continue;
		pi = realloc(plan, (n_plan + 1) * sizeof(*pi));
		if (!pi) {
			r = -ENOMEM;
			break;
		}
		plan = pi;
		pi = &plan[n_plan++];
		memset(pi, 0, sizeof(*pi));
		pi->m = m;
		if (asprintf(&pi->dest, "%s/%s", audit ? o->audit_dir : o->policy_dir,
			    m->name + (audit ? 6 : 7)) < 0 ||
		    asprintf(&src, "%s/%s", s.dir, m->name) < 0) {
			pi->dest = NULL;
			r = -ENOMEM;
			break;
		}
		if ((streq(m->name, "policy/revoked.list") || streq(m->name, "policy/incidents.log")) &&
		    access(pi->dest, F_OK) == 0) {
			r = merge_lines(pi->dest, src, streq(m->name, "policy/revoked.list"),
				&pi->merged, &pi->added);
			pi->act = r >= 0 && pi->added ? ACT_MERGE : ACT_NONE;
			if (pi->act == ACT_NONE)
				res.skipped++;
			continue;
		}
		if (access(pi->dest, F_OK) != 0) {
			pi->act = ACT_WRITE;
		} else if (files_equal(pi->dest, src)) {
			pi->act = ACT_NONE;
			res.skipped++;
		} else {
			pi->act = ACT_WRITE;
			/* The audit log is extended or moved aside as a whole, below. */
			if (!audit) {
				pi->conflict = true;
				conflicts++;
			}
		}
	}
	if (r >= 0 && ap == AUDIT_REPLACE)
		conflicts++;
	if (r >= 0 && conflicts && !o->force) {
		size_t off = (size_t)snprintf(err, errsz, "%zu file(s) here differ from the "
			"archive's, and --force is not given; nothing was restored:", conflicts);

		for (size_t i = 0; i < n_plan && off < errsz; i++)
			if (plan[i].conflict)
				off += (size_t)snprintf(err + off, errsz - off, " %s", plan[i].dest);
		if (ap == AUDIT_REPLACE && off < errsz)
			snprintf(err + off, errsz - off, " %s (the audit log here is not the archive's "
				 "nor a part of it)", o->audit_dir);
		r = -EEXIST;
	}
	if (r >= 0 && (ap == AUDIT_WRITE || ap == AUDIT_REPLACE)) {
		/* paraf-auditd holds this lock while its log is open (audit/aud-log.c); holding
		 * it ourselves also keeps a service from starting on the log while it is written. */
		audit_lock = open(o->audit_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (audit_lock >= 0 && flock(audit_lock, LOCK_EX | LOCK_NB) < 0) {
			snprintf(err, errsz, "paraf-auditd has the log in '%s' open: stop it before "
					     "restoring its log, and start it again after; nothing was "
					     "restored", o->audit_dir);
			r = -EBUSY;
		}
	}

	/* 6. Into place. */
	if (r >= 0 && ap == AUDIT_REPLACE) {
		char aside[PATH_MAX], when[32];
		struct tm tm;

		gmtime_r(&o->now, &tm);
		strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
		snprintf(aside, sizeof(aside), "%s.replaced-%s", o->audit_dir, when);
		if (rename(o->audit_dir, aside) < 0) {
			r = pf_negerrno();
			snprintf(err, errsz, "cannot move '%s' aside to '%s': %s", o->audit_dir, aside,
				strerror(-r));
		} else {
			if (mkdir(o->audit_dir, st.st_mode & 07777) < 0 ||
			    (chown_audit && chown(o->audit_dir, audit_uid, audit_gid) < 0))
				r = pf_negerrno();
			/* The new directory is the one a service would open: lock it too. */
			if (r >= 0) {
				pf_closep(&audit_lock);
				audit_lock = open(o->audit_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				if (audit_lock >= 0)
					(void)flock(audit_lock, LOCK_EX | LOCK_NB);
			}
			if (o->out)
				fprintf(o->out, "  the audit log here was moved aside to %s (kept)\n",
					aside);
		}
	}
	for (size_t i = 0; r >= 0 && i < n_plan; i++) {
		struct plan_item *pi = &plan[i];
		bool audit = strncmp(pi->m->name, "audit/", 6) == 0;
		_cleanup_free_ char *src = NULL;

		if (pi->act == ACT_NONE)
			continue;
		if (asprintf(&src, "%s/%s", s.dir, pi->m->name) < 0) {
			r = -ENOMEM;
			break;
		}
		if (audit)
			r = put_file(pi->dest, src, NULL, pi->m->mode & 0640, audit_uid, audit_gid,
				chown_audit);
		else
			r = put_file(pi->dest, src, pi->act == ACT_MERGE ? pi->merged : NULL,
				(pi->m->mode & 0644) | 0600, 0, 0, false);
		if (r < 0) {
			snprintf(err, errsz, "cannot write '%s': %s (files before it in this list "
					     "were restored)", pi->dest, strerror(-r));
			break;
		}
		res.files++;
		if (o->out) {
			if (pi->act == ACT_MERGE)
				fprintf(o->out, "  %s: %zu line(s) added, none removed\n", pi->dest,
					pi->added);
			else
				fprintf(o->out, "  %s%s\n", pi->dest, pi->conflict ? " (replaced)" : "");
		}
	}
	if (r >= 0 && o->out) {
		if (ap == AUDIT_KEEP)
			fprintf(o->out, "  the audit log in %s is the archive's or newer: kept\n",
				o->audit_dir);
		else if (ap == AUDIT_NOTHING)
			fprintf(o->out, "  the archive holds no audit log\n");
	}
	plan_release(plan, n_plan);
	stage_remove(&s);
	if (r >= 0)
		*ret = res;
	return r;
}

/* --- the commands ----------------------------------------------------------------------- */

static const char backup_usage[] =
	"Usage: paraf admin backup FILE [--policy DIR] [--audit-dir DIR] [--force] [--json]\n"
	"\n"
	"Writes a backup of the certificate-management system (R15) to FILE (mode 0600): the\n"
	"registry (owners.d, certs), revoked.list, incidents.log, the policy (policy.conf,\n"
	"policy.d, anchors, crl) and the audit log, with a SHA256SUMS manifest. It is a POSIX tar\n"
	"archive. Key material never goes in: pins/ is not backed up, files named *.key or *.pin\n"
	"are left out, and a file holding a private key stops the backup (R3). Prints the\n"
	"manifest's SHA-256, which the audit log also records: keep it with the archive.\n"
	"\n"
	"  --policy DIR     the policy directory (default " PARAF_SYSCONFDIR ")\n"
	"  --audit-dir DIR  the audit log (default " CLI_AUDIT_DIR_DEFAULT ")\n"
	"  --force          replace FILE if it exists\n";

static const char restore_usage[] =
	"Usage: paraf admin restore FILE [--policy DIR] [--audit-dir DIR] [--force] [--json]\n"
	"\n"
	"Restores a backup made by 'paraf admin backup' (R15). Before anything is written it\n"
	"checks every file against SHA256SUMS, that no key material is inside, the archived\n"
	"audit chain (as 'paraf audit verify' does) and the archived policy (as parafd reads it);\n"
	"a damaged or tampered archive is refused whole. Then:\n"
	"  - files missing here are written; identical ones are left alone;\n"
	"  - files that differ are replaced only with --force (otherwise nothing is written and\n"
	"    they are listed);\n"
	"  - revoked.list and incidents.log are merged: nothing is ever removed from them, so a\n"
	"    restore never lifts a revocation (R8);\n"
	"  - an audit log here that the archive's continues is extended; one that is newer is\n"
	"    kept; one the archive's does not continue is moved aside (with --force), never\n"
	"    deleted. Stop paraf-auditd before restoring its log.\n"
	"Files here that the archive does not hold are left as they are.\n"
	"\n"
	"  --policy DIR     the policy directory (default " PARAF_SYSCONFDIR ")\n"
	"  --audit-dir DIR  the audit log (default " CLI_AUDIT_DIR_DEFAULT ")\n"
	"  --force          replace differing files, move a diverging audit log aside\n";

static int admin_backup(struct cli_ctx *ctx, int argc, char **argv);
static int admin_restore(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_cmd cli_cmd_admin_backup = {
	"admin backup", "back up the registry, policy and audit log (R15)", backup_usage,
	admin_backup,
};
const struct cli_cmd cli_cmd_admin_restore = {
	"admin restore", "restore a backup, checked first (R15)", restore_usage, admin_restore,
};

static int
backup_args(struct cli_prov *pv, struct cli_ctx *ctx, int argc, char **argv,
	struct cli_backup_opts *o)
{
	static const struct option opts[] = {
		{ "audit-dir", required_argument, NULL, 'A' },
		{ "force", no_argument, NULL, 'F' },
		CLI_PROV_OPT_POLICY,
		CLI_COMMON_OPTIONS,
		{},
	};
	int c, r;

	r = cli_opts_exact(pv->cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'A':
			if (!*optarg)
				return cli_usage_error(pv->cmd, "%s: '--audit-dir' needs a directory",
					pv->cmd->name);
			o->audit_dir = optarg;
			break;
		case 'F':
			o->force = true;
			break;
		default:
			r = cli_prov_opt(pv, ctx, c, argv);
			if (r != CLI_OPT_CONTINUE)
				return r;
		}
	}
	if (optind >= argc)
		return cli_usage_error(pv->cmd, "%s: missing FILE", pv->cmd->name);
	o->archive = argv[optind++];
	if (optind < argc)
		return cli_usage_error(pv->cmd, "%s: unexpected argument '%s'", pv->cmd->name,
			argv[optind]);
	if (!pv->policy_dir)
		pv->policy_dir = PARAF_SYSCONFDIR;
	o->policy_dir = pv->policy_dir;
	if (!o->audit_dir)
		o->audit_dir = CLI_AUDIT_DIR_DEFAULT;
	o->now = time(NULL);
	return CLI_OPT_CONTINUE;
}

static int
result_json(const char *what, const struct cli_backup_opts *o,
	const struct cli_backup_result *res)
{
	json_object *j = json_object_new_object();
	int r;

	json_object_object_add(j, what, json_object_new_string(o->archive));
	json_object_object_add(j, "files", json_object_new_int64((int64_t)res->files));
	json_object_object_add(j, "skipped", json_object_new_int64((int64_t)res->skipped));
	json_object_object_add(j, "audit_records",
		json_object_new_int64((int64_t)res->audit_records));
	json_object_object_add(j, "manifest_sha256", json_object_new_string(res->manifest_sha256));
	r = cli_json_print(j) < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
	json_object_put(j);
	return r;
}

static int
admin_backup(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_prov pv = { .cmd = &cli_cmd_admin_backup, .method = "admin.backup",
		.json = ctx->json };
	struct cli_backup_opts o = {};
	struct cli_backup_result res = {};
	struct cli_prov_audit au = {};
	char err[2048], msg[1024];
	int r;

	r = backup_args(&pv, ctx, argc, argv, &o);
	if (r != CLI_OPT_CONTINUE)
		return r;
	r = cli_prov_operator_check(&pv);
	if (r != CLI_EXIT_OK)
		goto out;
	o.out = pv.json ? NULL : stdout;
	if (o.out)
		fprintf(o.out, "backing up %s and %s to %s:\n", o.policy_dir, o.audit_dir, o.archive);
	r = cli_backup_write(&o, &res, err, sizeof(err));
	if (r == -EPERM) {
		r = cli_prov_refuse(&pv, NULL, CLI_EXIT_REFUSED, "R15", "key-material", "%s", err);
		goto out;
	}
	if (r < 0) {
		cli_error("%s: %s", pv.cmd->name, err);
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	snprintf(msg, sizeof(msg), "backup of %s and %s written to %s: %zu files, %" PRIu64
				   " audit records, SHA256SUMS %s", o.policy_dir, o.audit_dir,
		o.archive, res.files, res.audit_records, res.manifest_sha256);
	au.allow = true;
	au.rule = "R15";
	au.message = msg;
	au.outcome = "written";
	cli_prov_audit(&pv, &au);
	if (pv.json)
		r = result_json("archive", &o, &res);
	else {
		printf("%zu files, %zu left out; SHA256SUMS %s\n", res.files, res.skipped,
			res.manifest_sha256);
		r = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
	}
out:
	cli_prov_release(&pv);
	return r;
}

static int
admin_restore(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_prov pv = { .cmd = &cli_cmd_admin_restore, .method = "admin.restore",
		.json = ctx->json };
	struct cli_backup_opts o = {};
	struct cli_backup_result res = {};
	struct cli_prov_audit au = {};
	char err[4096], msg[1024];
	int r;

	r = backup_args(&pv, ctx, argc, argv, &o);
	if (r != CLI_OPT_CONTINUE)
		return r;
	r = cli_prov_operator_check(&pv);
	if (r != CLI_EXIT_OK)
		goto out;
	o.out = pv.json ? NULL : stdout;
	if (o.out)
		fprintf(o.out, "restoring %s into %s and %s:\n", o.archive, o.policy_dir, o.audit_dir);
	r = cli_backup_restore(&o, &res, err, sizeof(err));
	if (r == -EBADMSG) {
		r = cli_prov_refuse(&pv, NULL, CLI_EXIT_REFUSED, "R15", "archive-refused",
			"'%s' is refused: %s", o.archive, err);
		goto out;
	}
	if (r == -EEXIST || r == -EBUSY) {
		r = cli_prov_refuse(&pv, NULL, CLI_EXIT_LOCAL, "R15", r == -EEXIST ? "would-overwrite"
			: "audit-service-running", "%s", err);
		goto out;
	}
	if (r < 0) {
		cli_error("%s: %s", pv.cmd->name, err[0] ? err : strerror(-r));
		r = CLI_EXIT_LOCAL;
		goto out;
	}
	snprintf(msg, sizeof(msg), "backup %s (SHA256SUMS %s) restored into %s and %s: %zu files "
				   "written, %zu unchanged", o.archive, res.manifest_sha256,
		o.policy_dir, o.audit_dir, res.files, res.skipped);
	au.allow = true;
	au.rule = "R15";
	au.message = msg;
	au.outcome = "restored";
	cli_prov_audit(&pv, &au);
	if (pv.json)
		r = result_json("archive", &o, &res);
	else {
		printf("%zu files written, %zu unchanged; SHA256SUMS %s\n", res.files, res.skipped,
			res.manifest_sha256);
		r = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
	}
out:
	cli_prov_release(&pv);
	return r;
}
