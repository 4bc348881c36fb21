/*
 * Reads the source PDF with qpdf's C API, through the same open file the signer copies (as
 * /proc/self/fd/N), and refuses what must not be signed: not a PDF, encrypted, damaged or
 * truncated (anything qpdf reports, even what it could repair: then its object map may not
 * match the bytes the update is appended to), no pages. What the update needs is kept in
 * struct pdf_doc: /Size, /Root, /Info, /ID, the last startxref and the kind of its section.
 */
#include "pdf-internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pf-util.h"

static char *
msg_new(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

char *
pdf_qpdf_message(qpdf_data q, const char *what)
{
	qpdf_error e = NULL;
	const char *detail;

	if (qpdf_has_error(q))
		e = qpdf_get_error(q);
	else if (qpdf_more_warnings(q))
		e = qpdf_next_warning(q);
	detail = e ? qpdf_get_error_message_detail(q, e) : NULL;
	if (detail && *detail && e)
		return msg_new("%s (qpdf: %s, at byte %llu)", what, detail,
			qpdf_get_error_file_position(q, e));
	return msg_new("%s", what);
}

int
pdf_qpdf_check(struct pdf_doc *d, const char *what, char **ret_error)
{
	if (!qpdf_has_error(d->q) && !qpdf_more_warnings(d->q))
		return 0;
	*ret_error = pdf_qpdf_message(d->q, what);
	return -EBADMSG;
}

struct pdf_doc *
pdf_doc_free(struct pdf_doc *d)
{
	if (!d)
		return NULL;
	if (d->q)
		qpdf_cleanup(&d->q);
	free(d);
	return NULL;
}

int
pdf_doc_n_pages(const struct pdf_doc *d)
{
	return d->n_pages;
}

const char *
pdf_doc_version(const struct pdf_doc *d)
{
	return d->version;
}

int
pdf_doc_xref_stream(const struct pdf_doc *d)
{
	return d->xref_stream;
}

static int
doc_refuse(struct pdf_doc *d, int r, char **ret_error, char *msg)
{
	pdf_doc_free(d);
	*ret_error = msg;
	return r;
}

int
pdf_doc_open(int fd, uint64_t size, struct pdf_doc **ret, char **ret_error)
{
	struct pdf_doc *d;
	char path[64];
	qpdf_oh trailer, root, id, info;
	const char *v;
	uint8_t last;
	int r;

	if (!pdf_file_has_header(fd)) {
		*ret_error = msg_new("not a PDF file (it does not start with %%PDF-1.x or %%PDF-2.x)");
		return -EMEDIUMTYPE;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->fd = fd;
	d->size = size;
	r = pdf_file_startxref(fd, size, &d->startxref, &d->xref_stream);
	if (r == -EBADMSG)
		return doc_refuse(d, r, ret_error,
			msg_new("damaged or truncated PDF: its end is not 'startxref N %%%%EOF' "
				"pointing at a cross-reference section"));
	if (r < 0)
		return doc_refuse(d, r, ret_error, msg_new("cannot read it: %s", strerror(-r)));
	if (pread(fd, &last, 1, (off_t)size - 1) != 1)
		return doc_refuse(d, -EIO, ret_error, msg_new("cannot read it"));
	d->ends_with_eol = last == '\n' || last == '\r';

	d->q = qpdf_init();
	if (!d->q)
		return doc_refuse(d, -ENOMEM, ret_error, NULL);
	qpdf_silence_errors(d->q);
	qpdf_set_suppress_warnings(d->q, QPDF_TRUE);
	/* A file qpdf would have to reconstruct is refused, not repaired behind our back. */
	qpdf_set_attempt_recovery(d->q, QPDF_FALSE);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (qpdf_read(d->q, path, NULL) & QPDF_ERRORS) {
		qpdf_error e = qpdf_get_error(d->q);

		if (e && qpdf_get_error_code(d->q, e) == qpdf_e_password)
			return doc_refuse(d, -EACCES, ret_error,
				msg_new("encrypted PDF: paraf signs only unencrypted documents"));
		return doc_refuse(d, -EBADMSG, ret_error,
			pdf_qpdf_message(d->q, "damaged or truncated PDF"));
	}
	if (qpdf_is_encrypted(d->q))
		return doc_refuse(d, -EACCES, ret_error,
			msg_new("encrypted PDF: paraf signs only unencrypted documents"));
	r = pdf_qpdf_check(d, "damaged PDF (qpdf had to repair it)", ret_error);
	if (r < 0)
		return doc_refuse(d, r, ret_error, *ret_error);
	v = qpdf_get_pdf_version(d->q);
	snprintf(d->version, sizeof(d->version), "%s", v ? v : "");

	trailer = qpdf_get_trailer(d->q);
	root = qpdf_get_root(d->q);
	if (!qpdf_oh_is_dictionary(d->q, trailer) || !qpdf_oh_is_dictionary(d->q, root) ||
	    !qpdf_oh_is_indirect(d->q, root))
		return doc_refuse(d, -EBADMSG, ret_error,
			msg_new("damaged PDF: no document catalog"));
	d->root_num = qpdf_oh_get_object_id(d->q, root);
	d->root_gen = qpdf_oh_get_generation(d->q, root);
	if (!qpdf_oh_get_value_as_longlong(d->q, pdf_dict_get(d->q, trailer, "/Size"),
		    &d->trailer_size) ||
	    d->trailer_size < 1 || d->trailer_size > 8388607)
		return doc_refuse(d, -EBADMSG, ret_error,
			msg_new("damaged PDF: the trailer's /Size is missing or out of range"));
	id = pdf_dict_get(d->q, trailer, "/ID");
	if (qpdf_oh_is_array(d->q, id) && qpdf_oh_get_array_n_items(d->q, id) >= 1) {
		size_t n = 0;
		const char *s;
		qpdf_oh first = qpdf_oh_get_array_item(d->q, id, 0);

		if (qpdf_oh_is_string(d->q, first)) {
			s = qpdf_oh_get_binary_string_value(d->q, first, &n);
			if (s && n > 0 && n <= PDF_ID_MAX) {
				memcpy(d->id0, s, n);
				d->id0_len = n;
				d->has_id = 1;
			}
		}
	}
	info = pdf_dict_get(d->q, trailer, "/Info");
	if (qpdf_oh_is_indirect(d->q, info)) {
		d->info_num = qpdf_oh_get_object_id(d->q, info);
		d->info_gen = qpdf_oh_get_generation(d->q, info);
	}
	d->n_pages = qpdf_get_num_pages(d->q);
	r = pdf_qpdf_check(d, "damaged PDF: its page tree cannot be read", ret_error);
	if (r < 0)
		return doc_refuse(d, r, ret_error, *ret_error);
	if (d->n_pages <= 0)
		return doc_refuse(d, -ENODATA, ret_error,
			msg_new("the PDF has no pages: there is nothing to sign"));
	*ret = d;
	return 0;
}
