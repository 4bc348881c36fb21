/*
 * Reading the signatures out of a PDF for `paraf verify` (R11, R12): every form field of
 * type /Sig with a signature dictionary, its /ByteRange, the CMS bytes of its /Contents (taken
 * from the file at the ByteRange's hole and checked against the parsed dictionary), the texts
 * the signer added (/M, /Reason, /Location, /Name), and what was appended to the file after
 * the signed range. The signed bytes are never held in memory: pdf_sig_range_bio() streams
 * them from the file.
 *
 * Functions return >= 0 or a negative errno and write ret_* only on success.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/bio.h>

/* Limits on what a document may make us allocate or walk. */
#define PDF_SIGS_MAX 256                      /* signature fields reported */
#define PDF_FIELDS_MAX 10000                  /* form fields walked */
#define PDF_FIELD_DEPTH_MAX 32                /* /Kids nesting */
#define PDF_SIG_CONTENTS_MAX (4u * 1024 * 1024) /* bytes of one /Contents (hex is twice) */
#define PDF_TEXT_MAX 1024                     /* /Reason, /Location, /Name, /T, kept */
#define PDF_HEADER_SCAN 1024                  /* "%PDF-" must start within these bytes */
#define PDF_TRAILING_SPACE_MAX 64             /* whitespace tolerated after the last revision */

/* What follows the signed range of a signature in the file. */
enum pdf_appended {
	PDF_APPENDED_NONE = 0,   /* the signature covers the file up to its end */
	PDF_APPENDED_SIGNATURES, /* only the updates of later signatures, one revision each */
	PDF_APPENDED_OTHER,      /* other updates (or bytes) after it */
};

struct pdf_sig {
	char *field;      /* fully qualified field name (the /T of each level joined by '.') */
	char *sub_filter; /* "/ETSI.CAdES.detached"… without the slash, or NULL */
	char *filter;
	char *name, *reason, *location, *contact_info; /* UTF-8 text, or NULL when absent */
	char *m;          /* /M as written, or NULL */
	bool m_valid;     /* /M parsed into m_time */
	time_t m_time;

	/* NULL when the signature's bytes can be checked; else why not (ByteRange malformed, the
	 * hole is not this dictionary's /Contents…). The fields below are then partly unset. */
	char *error;
	int64_t byte_range[4]; /* a b c d: signed [a, a+b) and [c, c+d) */
	uint8_t *contents;     /* the CMS DER, the zero padding after it removed */
	size_t contents_len;
	uint64_t signed_end;   /* c + d: where the signed revision ends */
	bool whole_file;       /* a == 0 and c + d == the file's size */

	/* After the signed range (signed_end to the end of the file). */
	uint64_t appended_bytes;
	size_t appended_revisions; /* "%%EOF" markers in the appended bytes */
	size_t later_signatures;   /* signatures whose hole lies in the appended bytes */
	enum pdf_appended appended;
	char *appended_detail;     /* for PDF_APPENDED_OTHER: what, for people; else NULL */
};

struct pdf_sigs {
	int fd;               /* the file that was parsed; the ranges are read from it */
	uint64_t size;
	size_t n;
	struct pdf_sig *sigs; /* in the order they were applied: by signed_end */
	size_t unsigned_fields; /* /Sig fields without a value (not signed yet) */
	BIO_METHOD *range_method;
};

/* 1 when "%PDF-" starts within the first PDF_HEADER_SCAN bytes of data[0..n). */
int pdf_sigs_is_pdf(const uint8_t *data, size_t n);

/*
 * Parses the PDF at path with qpdf and collects its signatures. Fails with -ENOTRECOVERABLE
 * when qpdf cannot read it (damaged, not a PDF), -EUCLEAN when it could only read it by
 * repairing it (its object map may not match the bytes), -EACCES when it is encrypted,
 * -E2BIG when it has more than PDF_SIGS_MAX signatures, or the -errno of the file;
 * *ret_error then says why, for people (NULL only when out of memory). A signature whose bytes
 * cannot be checked is still returned, with its error set.
 */
int pdf_sigs_read(const char *path, struct pdf_sigs **ret, char **ret_error);
struct pdf_sigs *pdf_sigs_free(struct pdf_sigs *s);

/*
 * A read-only BIO over the signed bytes of sigs->sigs[i] (the two ranges of its ByteRange,
 * read from the file in turn), for OpenSSL's CMS digest chain. Valid while sigs is; free it
 * with BIO_free(). -EINVAL for a signature with an error.
 */
int pdf_sig_range_bio(struct pdf_sigs *sigs, size_t i, BIO **ret);

/*
 * A PDF date ("D:YYYYMMDDHHmmSSOHH'mm'", every part after the year optional) as a UTC time.
 * -EINVAL when it is not one.
 */
int pdf_date_parse(const char *s, time_t *ret);
