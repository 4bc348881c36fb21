/*
 * What pdf-read.c learns about the source PDF, shared with pdf-update.c. Not for callers
 * outside pdf/ (they use pdf-write.h).
 */
#pragma once

#include <qpdf/qpdf-c.h>

#include "pdf-write.h"

#define PDF_ID_MAX 64 /* bytes of a trailer /ID element we carry over */

struct pdf_doc {
	qpdf_data q;
	int fd;
	uint64_t size;      /* bytes of the original */
	uint64_t startxref; /* its last cross-reference section: the update's /Prev */
	int xref_stream;    /* that section is a cross-reference stream */
	int ends_with_eol;  /* the last byte is CR or LF */
	char version[16];
	int n_pages;
	long long trailer_size; /* /Size: the first free object number */
	uint8_t id0[PDF_ID_MAX];
	size_t id0_len;
	int has_id;
	int info_num, info_gen; /* /Info, or 0 */
	int root_num, root_gen;
};

/* d[key], or null when d is not a dictionary: qpdf's own qpdf_oh_get_key() records a warning
 * then, and a warning makes the file look damaged. */
static inline qpdf_oh
pdf_dict_get(qpdf_data q, qpdf_oh d, const char *key)
{
	if (!qpdf_oh_is_dictionary(q, d))
		return qpdf_oh_new_null(q);
	return qpdf_oh_get_key(q, d, key);
}

/* A message with qpdf's current error or first warning, for ret_error. */
char *pdf_qpdf_message(qpdf_data q, const char *what);
/* -EBADMSG with *ret_error set when qpdf reported an error or a warning since the last call. */
int pdf_qpdf_check(struct pdf_doc *d, const char *what, char **ret_error);
