/*
 * The signatures of a PDF, read for verification: qpdf parses the document (its C API), finds
 * the /Sig form fields and their signature dictionaries; the signature bytes themselves are
 * taken from the file at the ByteRange's hole and must equal what qpdf parsed, so that what is
 * verified is what the ByteRange leaves out and nothing else. A file qpdf had to repair is
 * refused: its object map may not describe the bytes that were signed. The file is opened once
 * and qpdf reads that same open file (/proc/self/fd), so both look at one version of it.
 */
#include "pdf-sigs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <qpdf/qpdf-c.h>

#include "pf-util.h"

#define PDF_IO_CHUNK (64u * 1024)
#define PDF_EOF_MARKS_MAX 4096 /* "%%EOF" positions remembered after the first signature */

static const char eof_mark[] = "%%EOF";

int
pdf_sigs_is_pdf(const uint8_t *data, size_t n)
{
	if (n > PDF_HEADER_SCAN)
		n = PDF_HEADER_SCAN;
	return n >= 5 && memmem(data, n, "%PDF-", 5) != NULL;
}

static int
set_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);

static int
set_error(char **ret_error, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(ret_error, fmt, ap);
	va_end(ap);
	if (n < 0)
		*ret_error = NULL;
	return n < 0 ? -ENOMEM : 0;
}

static int
digits(const char **p, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -EINVAL;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*ret = v;
	return 0;
}

int
pdf_date_parse(const char *s, time_t *ret)
{
	struct tm tm = { .tm_mday = 1 };
	int year, v, sign = 0, oh = 0, om = 0;
	time_t t;

	if (strncmp(s, "D:", 2) == 0)
		s += 2;
	if (digits(&s, 4, &year) < 0)
		return -EINVAL;
	tm.tm_year = year - 1900;
	/* Month, day, hour, minute, second: each optional, but only in order. */
	if (*s >= '0' && *s <= '9') {
		if (digits(&s, 2, &v) < 0 || v < 1 || v > 12)
			return -EINVAL;
		tm.tm_mon = v - 1;
		if (*s >= '0' && *s <= '9') {
			if (digits(&s, 2, &v) < 0 || v < 1 || v > 31)
				return -EINVAL;
			tm.tm_mday = v;
			if (*s >= '0' && *s <= '9') {
				if (digits(&s, 2, &v) < 0 || v > 23)
					return -EINVAL;
				tm.tm_hour = v;
				if (*s >= '0' && *s <= '9') {
					if (digits(&s, 2, &v) < 0 || v > 59)
						return -EINVAL;
					tm.tm_min = v;
					if (*s >= '0' && *s <= '9') {
						if (digits(&s, 2, &v) < 0 || v > 60)
							return -EINVAL;
						tm.tm_sec = v;
					}
				}
			}
		}
	}
	if (*s == 'Z') {
		s++;
		/* Some writers put "Z00'00'". */
		if (*s && digits(&s, 2, &oh) == 0 && *s == '\'')
			s++;
		if (*s && digits(&s, 2, &om) == 0 && *s == '\'')
			s++;
		oh = om = 0;
	} else if (*s == '+' || *s == '-') {
		sign = *s == '+' ? 1 : -1;
		s++;
		if (digits(&s, 2, &oh) < 0 || oh > 23)
			return -EINVAL;
		if (*s == '\'')
			s++;
		if (*s) {
			if (digits(&s, 2, &om) < 0 || om > 59)
				return -EINVAL;
			if (*s == '\'')
				s++;
		}
	}
	if (*s)
		return -EINVAL;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*ret = t - sign * (oh * 3600 + om * 60);
	return 0;
}

static void
sig_release(struct pdf_sig *s)
{
	free(s->field);
	free(s->sub_filter);
	free(s->filter);
	free(s->name);
	free(s->reason);
	free(s->location);
	free(s->contact_info);
	free(s->m);
	free(s->error);
	free(s->contents);
	free(s->appended_detail);
}

struct pdf_sigs *
pdf_sigs_free(struct pdf_sigs *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		sig_release(&s->sigs[i]);
	free(s->sigs);
	if (s->fd >= 0)
		close(s->fd);
	BIO_meth_free(s->range_method);
	free(s);
	return NULL;
}

PF_DEFINE_CLEANUP(struct pdf_sigs, pdf_sigs_free)

/* Reads exactly n bytes at off; -EIO when the file is shorter. */
static int
read_at(int fd, uint64_t off, void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return pf_negerrno();
		if (k == 0)
			return -EIO;
		done += (size_t)k;
	}
	return 0;
}

/* --- the qpdf walk ------------------------------------------------------------------------ */

struct walk {
	qpdf_data q;
	struct pdf_sigs *out;
	size_t fields;
	int visited_n;
	int *visited; /* object ids of fields seen: /Kids may loop */
	int visited_cap;
	int oom;
};

/* A text string (PDFDocEncoding or UTF-16) as UTF-8, at most PDF_TEXT_MAX bytes, or NULL. */
static char *
text_value(qpdf_data q, qpdf_oh oh)
{
	const char *s;
	size_t n;

	if (!qpdf_oh_is_string(q, oh))
		return NULL;
	s = qpdf_oh_get_binary_utf8_value(q, oh, &n);
	if (!s)
		return NULL;
	/* A NUL inside would cut the text short silently: keep what precedes it. */
	n = strnlen(s, n);
	if (n > PDF_TEXT_MAX)
		n = PDF_TEXT_MAX;
	return strndup(s, n);
}

static char *
key_text(qpdf_data q, qpdf_oh dict, const char *key)
{
	qpdf_oh v = qpdf_oh_get_key_if_dict(q, dict, key);

	return text_value(q, v);
}

/* A name's value without the slash, or NULL. */
static char *
key_name(qpdf_data q, qpdf_oh dict, const char *key)
{
	qpdf_oh v = qpdf_oh_get_key_if_dict(q, dict, key);
	const char *s;

	if (!qpdf_oh_is_name(q, v))
		return NULL;
	s = qpdf_oh_get_name(q, v);
	if (!s)
		return NULL;
	return strndup(s[0] == '/' ? s + 1 : s, PDF_TEXT_MAX);
}

static int
walk_seen(struct walk *w, qpdf_oh oh)
{
	int id = qpdf_oh_is_indirect(w->q, oh) ? qpdf_oh_get_object_id(w->q, oh) : 0;

	if (id <= 0)
		return 0;
	for (int i = 0; i < w->visited_n; i++)
		if (w->visited[i] == id)
			return 1;
	if (w->visited_n == w->visited_cap) {
		int cap = w->visited_cap ? 2 * w->visited_cap : 64;
		int *v = realloc(w->visited, (size_t)cap * sizeof(*v));

		if (!v) {
			w->oom = 1;
			return 1;
		}
		w->visited = v;
		w->visited_cap = cap;
	}
	w->visited[w->visited_n++] = id;
	return 0;
}

static int
sig_add(struct walk *w, qpdf_oh v, const char *field)
{
	qpdf_data q = w->q;
	struct pdf_sigs *o = w->out;
	struct pdf_sig *s, *n;
	qpdf_oh br, contents;

	if (o->n >= PDF_SIGS_MAX)
		return -E2BIG;
	n = realloc(o->sigs, (o->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	o->sigs = n;
	s = &o->sigs[o->n++];
	*s = (struct pdf_sig){};
	s->field = field ? strdup(field) : NULL;
	s->sub_filter = key_name(q, v, "/SubFilter");
	s->filter = key_name(q, v, "/Filter");
	s->name = key_text(q, v, "/Name");
	s->reason = key_text(q, v, "/Reason");
	s->location = key_text(q, v, "/Location");
	s->contact_info = key_text(q, v, "/ContactInfo");
	s->m = key_text(q, v, "/M");
	if (s->m)
		s->m_valid = pdf_date_parse(s->m, &s->m_time) == 0;

	br = qpdf_oh_get_key_if_dict(q, v, "/ByteRange");
	if (!qpdf_oh_is_array(q, br) || qpdf_oh_get_array_n_items(q, br) != 4) {
		s->error = strdup("its /ByteRange is not an array of 4 numbers");
		return s->error ? 0 : -ENOMEM;
	}
	for (int i = 0; i < 4; i++) {
		qpdf_oh it = qpdf_oh_get_array_item(q, br, i);
		long long x;

		if (!qpdf_oh_is_integer(q, it) || !qpdf_oh_get_value_as_longlong(q, it, &x) ||
		    x < 0) {
			s->error = strdup("its /ByteRange is not an array of 4 non-negative "
					  "integers");
			return s->error ? 0 : -ENOMEM;
		}
		s->byte_range[i] = x;
	}
	contents = qpdf_oh_get_key_if_dict(q, v, "/Contents");
	if (!qpdf_oh_is_string(q, contents)) {
		s->error = strdup("its /Contents is not a string");
		return s->error ? 0 : -ENOMEM;
	}
	{
		size_t len;
		const char *p = qpdf_oh_get_binary_string_value(q, contents, &len);

		if (len > PDF_SIG_CONTENTS_MAX) {
			if (asprintf(&s->error, "its /Contents is larger than %u bytes",
				    PDF_SIG_CONTENTS_MAX) < 0)
				return -ENOMEM;
			return 0;
		}
		/* Kept for the cross-check with the file's bytes; replaced by them after. */
		s->contents = malloc(len ? len : 1);
		if (!s->contents)
			return -ENOMEM;
		memcpy(s->contents, p, len);
		s->contents_len = len;
	}
	return 0;
}

static int
field_walk(struct walk *w, qpdf_oh f, const char *parent_name, bool parent_sig, int depth)
{
	qpdf_data q = w->q;
	_cleanup_free_ char *t = NULL, *name = NULL;
	qpdf_oh ft, kids, v;
	bool is_sig;
	int r = 0, n_kids, named_kids = 0;

	if (!qpdf_oh_is_dictionary(q, f) || walk_seen(w, f))
		return w->oom ? -ENOMEM : 0;
	if (depth > PDF_FIELD_DEPTH_MAX || ++w->fields > PDF_FIELDS_MAX)
		return 0; /* beyond what any real form has; not walked */
	t = key_text(q, f, "/T");
	if (t && parent_name) {
		if (asprintf(&name, "%s.%s", parent_name, t) < 0)
			return -ENOMEM;
	} else if (t || parent_name) {
		name = strdup(t ? t : parent_name);
		if (!name)
			return -ENOMEM;
	}
	ft = qpdf_oh_get_key_if_dict(q, f, "/FT");
	/* /FT is inheritable: a widget kid takes its parent field's type. */
	is_sig = qpdf_oh_is_name(q, ft) ? qpdf_oh_is_name_and_equals(q, ft, "/Sig") : parent_sig;
	kids = qpdf_oh_get_key_if_dict(q, f, "/Kids");
	v = qpdf_oh_get_key_if_dict(q, f, "/V");
	n_kids = qpdf_oh_is_array(q, kids) ? qpdf_oh_get_array_n_items(q, kids) : 0;
	for (int i = 0; i < n_kids; i++) {
		qpdf_oh kid = qpdf_oh_get_array_item(q, kids, i);

		if (qpdf_oh_is_dictionary(q, kid) && qpdf_oh_has_key(q, kid, "/T"))
			named_kids++;
	}
	if (is_sig && qpdf_oh_is_dictionary(q, v)) {
		/* Two fields sharing one signature dictionary are one signature. */
		if (!walk_seen(w, v)) {
			r = sig_add(w, v, name);
			if (r < 0)
				return r;
		} else if (w->oom)
			return -ENOMEM;
	} else if (is_sig && named_kids == 0)
		w->out->unsigned_fields++;
	for (int i = 0; i < n_kids && r >= 0; i++) {
		qpdf_oh kid = qpdf_oh_get_array_item(q, kids, i);

		/* A kid with /T is a field of its own; one without is a widget of this field. */
		if (!qpdf_oh_is_dictionary(q, kid) || !qpdf_oh_has_key(q, kid, "/T"))
			continue;
		r = field_walk(w, kid, name, is_sig, depth + 1);
	}
	return r;
}

static const char *
qpdf_error_text(qpdf_data q)
{
	qpdf_error e = qpdf_get_error(q);
	const char *s = e ? qpdf_get_error_message_detail(q, e) : NULL;

	return s && *s ? s : "unknown error";
}

static int
sigs_parse(int fd, const char *shown, struct pdf_sigs *out, char **ret_error)
{
	char path[64];
	qpdf_data q = qpdf_init();
	struct walk w = { .q = q, .out = out };
	qpdf_oh root, acro, fields;
	int r = 0;

	if (!q)
		return -ENOMEM;
	qpdf_silence_errors(q);
	qpdf_set_suppress_warnings(q, QPDF_TRUE);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	/* Without /proc (some sandboxes), the path again: the ByteRange checks still hold. */
	if (qpdf_read(q, access(path, R_OK) == 0 ? path : shown, NULL) & QPDF_ERRORS) {
		qpdf_error e = qpdf_get_error(q);

		if (e && qpdf_get_error_code(q, e) == qpdf_e_password)
			r = set_error(ret_error,
				"'%s' is encrypted: encrypted PDFs cannot be verified", shown);
		else
			r = set_error(ret_error, "'%s' cannot be read as a PDF: %s", shown,
				e ? qpdf_get_error_message_detail(q, e) : "unknown error");
		if (r == 0)
			r = e && qpdf_get_error_code(q, e) == qpdf_e_password ? -EACCES :
										-ENOTRECOVERABLE;
		goto out;
	}
	if (qpdf_is_encrypted(q)) {
		r = set_error(ret_error, "'%s' is encrypted: encrypted PDFs cannot be verified",
			shown);
		if (r == 0)
			r = -EACCES;
		goto out;
	}
	if (qpdf_more_warnings(q)) {
		qpdf_error e = qpdf_next_warning(q);

		r = set_error(ret_error,
			"'%s' is damaged (qpdf had to repair it: %s): its objects may not be the "
			"bytes that were signed, refusing to verify it",
			shown, e ? qpdf_get_error_message_detail(q, e) : "warnings");
		if (r == 0)
			r = -EUCLEAN;
		goto out;
	}

	root = qpdf_get_root(q);
	acro = qpdf_oh_get_key_if_dict(q, root, "/AcroForm");
	fields = qpdf_oh_get_key_if_dict(q, acro, "/Fields");
	if (qpdf_oh_is_array(q, fields)) {
		int n = qpdf_oh_get_array_n_items(q, fields);

		for (int i = 0; i < n && r >= 0; i++)
			r = field_walk(&w, qpdf_oh_get_array_item(q, fields, i), NULL, false, 0);
	}
	if (r == -E2BIG) {
		if (set_error(ret_error, "'%s' has more than %d signatures", shown, PDF_SIGS_MAX) < 0)
			r = -ENOMEM;
		goto out;
	}
	if (r < 0)
		goto out;
	/* Objects are read lazily: a broken one shows up only now, as an error or a warning. */
	if (qpdf_has_error(q) || qpdf_more_warnings(q)) {
		const char *why = qpdf_has_error(q) ? qpdf_error_text(q) : NULL;

		if (!why) {
			qpdf_error e = qpdf_next_warning(q);

			why = e ? qpdf_get_error_message_detail(q, e) : "warnings";
		}
		r = set_error(ret_error,
			"'%s' is damaged (%s): its objects may not be the bytes that were signed, "
			"refusing to verify it", shown, why);
		if (r == 0)
			r = -EUCLEAN;
	}
out:
	free(w.visited);
	qpdf_cleanup(&q);
	return r;
}

/* --- the bytes in the file ---------------------------------------------------------------- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
is_pdf_space(int c)
{
	return c == 0 || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' ';
}

static int
sig_error(struct pdf_sig *s, const char *fmt, ...) _printf_(2, 3);

static int
sig_error(struct pdf_sig *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	free(s->error);
	va_start(ap, fmt);
	n = vasprintf(&s->error, fmt, ap);
	va_end(ap);
	if (n < 0)
		s->error = NULL;
	return n < 0 ? -ENOMEM : 0;
}

/*
 * Checks the ByteRange against the file and takes the signature from the hole: "<hex>" exactly,
 * equal to the /Contents qpdf parsed. Sets s->error (returning 0) when it does not hold.
 */
static int
sig_check_bytes(int fd, uint64_t size, struct pdf_sig *s)
{
	const int64_t *br = s->byte_range;
	uint64_t hole, hole_end, hexlen;
	_cleanup_free_ uint8_t *hex = NULL, *bin = NULL;
	size_t n = 0, i;
	int r, hi = -1;

	if (br[0] != 0)
		return sig_error(s, "its /ByteRange does not start at the beginning of the file");
	/* Every value is below the file size, so the sums cannot overflow. */
	if ((uint64_t)br[1] > size || (uint64_t)br[2] > size || (uint64_t)br[3] > size ||
	    (uint64_t)br[2] + (uint64_t)br[3] > size)
		return sig_error(s, "its /ByteRange [%lld %lld %lld %lld] reaches beyond the end of "
				    "the file (%llu bytes)",
			(long long)br[0], (long long)br[1], (long long)br[2], (long long)br[3],
			(unsigned long long)size);
	hole = (uint64_t)br[1];
	hole_end = (uint64_t)br[2];
	if (hole_end < hole + 2)
		return sig_error(s, "its /ByteRange ranges overlap or leave no room for /Contents");
	hexlen = hole_end - hole - 2;
	if (hexlen > 2ull * PDF_SIG_CONTENTS_MAX)
		return sig_error(s, "the hole of its /ByteRange is larger than a signature can be");
	hex = malloc(hexlen + 2);
	bin = malloc(hexlen / 2 + 1);
	if (!hex || !bin)
		return -ENOMEM;
	r = read_at(fd, hole, hex, hexlen + 2);
	if (r < 0)
		return r;
	if (hex[0] != '<' || hex[hexlen + 1] != '>')
		return sig_error(s, "the hole of its /ByteRange is not a hex string <...>: the "
				    "signature is not where the ByteRange says");
	for (i = 1; i <= hexlen; i++) {
		int v = hexval(hex[i]);

		if (v < 0) {
			if (is_pdf_space(hex[i]) && hex[i] != 0)
				continue;
			return sig_error(s, "the hole of its /ByteRange holds something other than "
					    "hex digits");
		}
		if (hi < 0)
			hi = v;
		else {
			bin[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	if (hi >= 0)
		bin[n++] = (uint8_t)(hi << 4); /* an odd digit count: a final 0 is implied */
	if (!s->contents || n != s->contents_len || memcmp(bin, s->contents, n) != 0)
		return sig_error(s, "the hole of its /ByteRange is not the /Contents of its "
				    "signature dictionary");

	/* The CMS is followed by zero padding up to the placeholder's size. */
	{
		const unsigned char *p = bin;
		long len;
		int tag, cls, ret = ASN1_get_object(&p, &len, &tag, &cls, (long)n);

		if (!(ret & 0x80) && !(ret & 0x01)) {
			size_t end = (size_t)(p - bin) + (size_t)len;

			for (i = end; i < n; i++)
				if (bin[i] != 0)
					return sig_error(s, "its /Contents holds bytes after the "
							    "signature");
			n = end;
		}
	}
	free(s->contents);
	s->contents = TAKE_PTR(bin);
	s->contents_len = n;
	s->signed_end = (uint64_t)br[2] + (uint64_t)br[3];
	s->whole_file = s->signed_end == size;
	return 0;
}

/* Offsets just past each "%%EOF" that starts at or after from, by streaming the file. */
static int
eof_marks_scan(int fd, uint64_t from, uint64_t size, uint64_t **ret, size_t *ret_n)
{
	_cleanup_free_ uint8_t *buf = malloc(PDF_IO_CHUNK + sizeof(eof_mark));
	_cleanup_free_ uint64_t *marks = NULL;
	const size_t ml = sizeof(eof_mark) - 1;
	size_t n = 0, keep = 0;
	uint64_t off = from;

	if (!buf)
		return -ENOMEM;
	while (off < size) {
		size_t k = size - off < PDF_IO_CHUNK ? (size_t)(size - off) : PDF_IO_CHUNK;
		uint64_t base = off - keep; /* file offset of buf[0] */
		int r = read_at(fd, off, buf + keep, k);

		if (r < 0)
			return r;
		for (size_t i = 0; i + ml <= keep + k; i++) {
			if (memcmp(buf + i, eof_mark, ml) != 0)
				continue;
			if (n == PDF_EOF_MARKS_MAX)
				return -E2BIG;
			if (n % 64 == 0) {
				uint64_t *m = realloc(marks, (n + 64) * sizeof(*m));

				if (!m)
					return -ENOMEM;
				marks = m;
			}
			marks[n++] = base + i + ml;
		}
		off += k;
		/* The last ml - 1 bytes may start a marker that the next read completes. */
		keep = keep + k < ml - 1 ? keep + k : ml - 1;
		memmove(buf, buf + (size_t)(off - base) - keep, keep);
	}
	*ret = TAKE_PTR(marks);
	*ret_n = n;
	return 0;
}

/* 1 when bytes [from, to) of the file are PDF whitespace only (at most a few). */
static int
only_space(int fd, uint64_t from, uint64_t to)
{
	uint8_t buf[PDF_TRAILING_SPACE_MAX];

	if (to - from > sizeof(buf))
		return 0;
	if (read_at(fd, from, buf, (size_t)(to - from)) < 0)
		return 0;
	for (uint64_t i = 0; i < to - from; i++)
		if (!is_pdf_space(buf[i]))
			return 0;
	return 1;
}

/*
 * What follows signature i: the revisions appended after its range, and whether each of them
 * is a later signature's (one "%%EOF" per later signature, ending where its signed range ends),
 * with nothing but whitespace after the last one.
 */
static int
sig_appended(int fd, struct pdf_sigs *o, size_t i, const uint64_t *marks, size_t n_marks)
{
	struct pdf_sig *s = &o->sigs[i];
	uint64_t prev = s->signed_end;
	size_t later = 0, revs = 0, bad_revs = 0;
	int r;

	s->appended_bytes = o->size - s->signed_end;
	for (size_t k = 0; k < n_marks; k++)
		if (marks[k] - (sizeof(eof_mark) - 1) >= s->signed_end)
			revs++;
	s->appended_revisions = revs;
	if (s->appended_bytes == 0) {
		s->appended = PDF_APPENDED_NONE;
		return 0;
	}
	/* The later signatures, in order (o->sigs is sorted by signed_end). */
	for (size_t j = i + 1; j < o->n; j++) {
		const struct pdf_sig *t = &o->sigs[j];
		size_t in_segment = 0;

		if (t->error || t->signed_end <= s->signed_end)
			continue;
		later++;
		if ((uint64_t)t->byte_range[1] < prev || t->signed_end == prev) {
			bad_revs++; /* its signature was not added after the previous revision */
			prev = t->signed_end > prev ? t->signed_end : prev;
			continue;
		}
		for (size_t k = 0; k < n_marks; k++)
			if (marks[k] - (sizeof(eof_mark) - 1) >= prev && marks[k] <= t->signed_end)
				in_segment++;
		if (in_segment != 1)
			bad_revs++;
		prev = t->signed_end;
	}
	s->later_signatures = later;
	if (bad_revs == 0 && (prev == o->size || only_space(fd, prev, o->size))) {
		/* whitespace after the last revision: nothing a reader would show */
		int extra = 0;

		for (size_t k = 0; k < n_marks; k++)
			if (marks[k] - (sizeof(eof_mark) - 1) >= prev)
				extra++;
		if (!extra && later > 0) {
			s->appended = PDF_APPENDED_SIGNATURES;
			return 0;
		}
		if (!extra && later == 0) {
			/* a few bytes of whitespace only, no revision: nothing was changed */
			s->appended = PDF_APPENDED_NONE;
			s->appended_detail = strdup("only whitespace");
			return s->appended_detail ? 0 : -ENOMEM;
		}
	}
	s->appended = PDF_APPENDED_OTHER;
	if (later == 0 && revs == 0)
		r = asprintf(&s->appended_detail, "%llu bytes added after it, not a signature",
			(unsigned long long)s->appended_bytes);
	else if (later == 0)
		r = asprintf(&s->appended_detail,
			"%llu bytes added after it in %zu update%s, none of them a signature",
			(unsigned long long)s->appended_bytes, revs, revs == 1 ? "" : "s");
	else if (prev < o->size)
		r = asprintf(&s->appended_detail,
			"%llu bytes added after it: %zu later signature%s, then %llu bytes that no "
			"signature covers",
			(unsigned long long)s->appended_bytes, later, later == 1 ? "" : "s",
			(unsigned long long)(o->size - prev));
	else
		r = asprintf(&s->appended_detail,
			"%llu bytes added after it in %zu updates, for only %zu later signature%s",
			(unsigned long long)s->appended_bytes, revs, later, later == 1 ? "" : "s");
	if (r < 0) {
		s->appended_detail = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int
sig_cmp(const void *a, const void *b)
{
	const struct pdf_sig *x = a, *y = b;
	uint64_t kx = x->error ? UINT64_MAX : x->signed_end;
	uint64_t ky = y->error ? UINT64_MAX : y->signed_end;

	return kx < ky ? -1 : kx > ky ? 1 : 0;
}

int
pdf_sigs_read(const char *path, struct pdf_sigs **ret, char **ret_error)
{
	_cleanup_(pdf_sigs_freep) struct pdf_sigs *o = NULL;
	_cleanup_free_ uint64_t *marks = NULL;
	size_t n_marks = 0;
	uint64_t first_end = UINT64_MAX;
	struct stat st;
	int r;

	*ret_error = NULL;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (o->fd < 0 || fstat(o->fd, &st) < 0) {
		r = pf_negerrno();
		if (set_error(ret_error, "cannot read '%s': %s", path, strerror(-r)) < 0)
			return -ENOMEM;
		return r;
	}
	if (!S_ISREG(st.st_mode))
		return set_error(ret_error, "cannot read '%s': not a regular file", path) < 0 ?
			       -ENOMEM :
			       -EINVAL;
	if (fcntl(o->fd, F_SETFL, 0) < 0)
		return pf_negerrno();
	o->size = (uint64_t)st.st_size;

	/* qpdf reads this open file, not the path again; then each signature's bytes are
	 * checked against what qpdf parsed. */
	r = sigs_parse(o->fd, path, o, ret_error);
	if (r < 0)
		return r;
	for (size_t i = 0; i < o->n; i++)
		if (!o->sigs[i].error) {
			r = sig_check_bytes(o->fd, o->size, &o->sigs[i]);
			if (r < 0)
				return set_error(ret_error, "cannot read '%s': %s", path,
					       strerror(-r)) < 0 ?
					       -ENOMEM :
					       r;
		}
	if (o->n > 1) /* o->sigs is NULL when there is none: qsort's argument is nonnull */
		qsort(o->sigs, o->n, sizeof(*o->sigs), sig_cmp);
	for (size_t i = 0; i < o->n; i++)
		if (!o->sigs[i].error && o->sigs[i].signed_end < first_end)
			first_end = o->sigs[i].signed_end;
	if (first_end != UINT64_MAX && first_end < o->size) {
		r = eof_marks_scan(o->fd, first_end, o->size, &marks, &n_marks);
		if (r == -E2BIG)
			return set_error(ret_error, "'%s' has more than %d updates after its first "
						    "signature",
				       path, PDF_EOF_MARKS_MAX) < 0 ?
				       -ENOMEM :
				       r;
		if (r < 0)
			return set_error(ret_error, "cannot read '%s': %s", path, strerror(-r)) < 0 ?
				       -ENOMEM :
				       r;
	}
	for (size_t i = 0; i < o->n; i++)
		if (!o->sigs[i].error) {
			r = sig_appended(o->fd, o, i, marks, n_marks);
			if (r < 0)
				return r;
		}
	*ret = TAKE_PTR(o);
	return 0;
}

/* --- the signed bytes as a BIO ------------------------------------------------------------ */

struct range_state {
	int fd;
	uint64_t off[2], len[2];
	int seg;
	uint64_t pos; /* within the segment */
};

static int
range_read(BIO *b, char *out, int outl)
{
	struct range_state *st = BIO_get_data(b);
	ssize_t k;

	if (outl <= 0)
		return 0;
	while (st->seg < 2 && st->pos == st->len[st->seg]) {
		st->seg++;
		st->pos = 0;
	}
	if (st->seg >= 2)
		return 0;
	if ((uint64_t)outl > st->len[st->seg] - st->pos)
		outl = (int)(st->len[st->seg] - st->pos);
	do
		k = pread(st->fd, out, (size_t)outl, (off_t)(st->off[st->seg] + st->pos));
	while (k < 0 && errno == EINTR);
	if (k <= 0)
		return -1; /* an I/O error, or the file shrank under us */
	st->pos += (uint64_t)k;
	return (int)k;
}

static long
range_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct range_state *st = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_EOF:
		return st->seg >= 2 || (st->seg == 1 && st->pos == st->len[1]);
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_RESET:
		st->seg = 0;
		st->pos = 0;
		return 1;
	default:
		return 0;
	}
}

static int
range_destroy(BIO *b)
{
	free(BIO_get_data(b));
	BIO_set_data(b, NULL);
	return 1;
}

int
pdf_sig_range_bio(struct pdf_sigs *sigs, size_t i, BIO **ret)
{
	const struct pdf_sig *s = &sigs->sigs[i];
	struct range_state *st;
	BIO *b;

	if (i >= sigs->n || s->error)
		return -EINVAL;
	if (!sigs->range_method) {
		sigs->range_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
			"pdf byte range");
		if (!sigs->range_method || !BIO_meth_set_read(sigs->range_method, range_read) ||
		    !BIO_meth_set_ctrl(sigs->range_method, range_ctrl) ||
		    !BIO_meth_set_destroy(sigs->range_method, range_destroy)) {
			BIO_meth_free(sigs->range_method);
			sigs->range_method = NULL;
			return -ENOMEM;
		}
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->fd = sigs->fd;
	st->off[0] = (uint64_t)s->byte_range[0];
	st->len[0] = (uint64_t)s->byte_range[1];
	st->off[1] = (uint64_t)s->byte_range[2];
	st->len[1] = (uint64_t)s->byte_range[3];
	b = BIO_new(sigs->range_method);
	if (!b) {
		free(st);
		return -ENOMEM;
	}
	BIO_set_data(b, st);
	BIO_set_init(b, 1);
	*ret = b;
	return 0;
}
