/*
 * PDF signing (PAdES baseline B-B and B-T) as an incremental update: what `paraf sign-pdf`
 * needs to read a PDF with qpdf, build the update (signature dictionary with a /Contents hole,
 * signature field and widget, updated page and catalog, appearance streams for a visible
 * signature, cross-reference section and trailer), hash the ByteRange while streaming the
 * file, and put the CMS from the agent in the hole. The original bytes are never rewritten: the
 * output is the input, byte for byte, followed by the update. See doc/pdf.md.
 *
 * Functions return >= 0 on success or a negative errno, and write ret_* only on success. Those
 * that take `char **ret_error` set it on failure to a message for people (lower-case, no full
 * stop, to be freed; NULL only when out of memory). Nothing here logs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pf-buf.h"

/* Limits, each checked before anything is allocated for the value it bounds. */
#define PDF_TAIL_MAX 2048            /* startxref and %%EOF are looked for in this many bytes */
#define PDF_TEXT_MAX 1024            /* --reason, --location, a name, bytes of UTF-8 */
#define PDF_URL_MAX 1024             /* the verification URL once {id} is filled in */
#define PDF_CONTENTS_MAX (1024u * 1024) /* the largest /Contents hole, bytes of DER */
#define PDF_ANNOTS_MAX 100000        /* annotations on one page, fields in one form */
#define PDF_APPEARANCE_FILE_MAX (64u * 1024)
#define PDF_LOGO_MAX (4u * 1024 * 1024)
#define PDF_TSA_REPLY_MAX (256u * 1024)
#define PDF_TSA_TIMEOUT 30           /* seconds for the whole timestamp exchange */

/* QR code: the symbol (its dark and light modules, without the quiet zone) is exactly 3 cm
 * (R10); the four-module quiet zone is white around it, inside the block. */
#define PDF_QR_SIZE (30.0 * 72.0 / 25.4) /* 85.04 pt */

/* pdf-syntax.c: PDF syntax. All writers append to a pf_buf (whose errors stick). */
void pdf_printf(struct pf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pdf_puts(struct pf_buf *b, const char *s);
/* A literal string: "(" bytes ")" with \ ( ) escaped and other bytes outside 0x20-0x7e as
 * octal \ddd, so the output is plain ASCII on one line. */
void pdf_string_put(struct pf_buf *b, const void *s, size_t n);
/* A hex string <...>. */
void pdf_hexstring_put(struct pf_buf *b, const void *s, size_t n);
/* A name "/..." with #xx for bytes outside 0x21-0x7e, '#' and the delimiters ()<>[]{}/%. */
void pdf_name_put(struct pf_buf *b, const char *s);
/* A text string from UTF-8: a literal string when it is printable ASCII, else UTF-16BE with
 * a byte-order mark, as a hex string (ISO 32000 7.9.2.2). -EINVAL for invalid UTF-8. */
int pdf_text_put(struct pf_buf *b, const char *utf8);
/* A number with at most 3 decimals, no exponent, no trailing zeros ("12.5", "-3", "0"). */
void pdf_real_put(struct pf_buf *b, double v);
/*
 * UTF-8 to WinAnsiEncoding for the standard 14 fonts. Only Latin-1 (U+0020-U+007E,
 * U+00A0-U+00FF) is kept; anything else becomes '?': the standard fonts have no glyphs
 * beyond WinAnsi, and embedding a font for the rest is not worth it for names and positions
 * that are Indonesian (Latin script). Control characters become '?' too. A new string.
 */
int pdf_winansi_from_utf8(const char *utf8, char **ret);
/* "D:YYYYMMDDHHmmSS+00'00'" for t in UTC, into buf of at least 24 bytes. */
void pdf_date_format(time_t t, char *buf, size_t n);

/* pdf-font.c: Helvetica metrics (Adobe's AFM widths, units of 1/1000 em), WinAnsi bytes. */
enum pdf_font {
	PDF_FONT_REGULAR, /* Helvetica; Helvetica-Oblique has the same widths */
	PDF_FONT_BOLD,    /* Helvetica-Bold */
	PDF_FONT_OBLIQUE, /* Helvetica-Oblique */
};
double pdf_text_width(enum pdf_font f, double size, const char *winansi, size_t n);
/*
 * Breaks winansi text into lines no wider than width at size: at spaces, or inside a word
 * longer than a line. Returns the number of lines (at most max_lines); starts[i], lens[i]
 * give each line, and *ret_truncated is set when text was left over (the caller then draws
 * "..." after the last line).
 */
size_t pdf_text_wrap(enum pdf_font f, double size, const char *winansi, double width,
	size_t max_lines, size_t *starts, size_t *lens, int *ret_truncated);

/* pdf-tail.c: the end of the file */
/*
 * The offset after the last "startxref" of a file's tail (its last n <= PDF_TAIL_MAX bytes):
 * the keyword, white space, a decimal offset, white space, "%%EOF", then only white space or
 * comment lines. -EBADMSG when the tail is not so (a truncated file, or data after %%EOF).
 */
int pdf_tail_startxref(const uint8_t *tail, size_t n, uint64_t *ret);
/* Reads the tail of fd (size bytes long) and applies pdf_tail_startxref(); then checks that
 * the offset is inside the file and says what is there: 0 a classic "xref" table, 1 a
 * cross-reference stream ("N G obj"). -EBADMSG otherwise. */
int pdf_file_startxref(int fd, uint64_t size, uint64_t *ret_offset, int *ret_xref_stream);
/* 1 when fd starts with "%PDF-1.x" or "%PDF-2.x" (at byte 0), else 0. */
int pdf_file_has_header(int fd);

/* pdf-xref.c: cross-reference sections of the update */
struct pdf_xref_entry {
	uint32_t num;
	uint16_t gen;
	uint64_t offset;
};

/* A classic table: "xref", subsections of consecutive numbers, 20-byte entries. Entries need
 * not be sorted; duplicates are -EINVAL. */
int pdf_xref_table_put(struct pf_buf *b, const struct pdf_xref_entry *e, size_t n);
/*
 * A cross-reference stream object numbered self_num at self_offset (which must be where it
 * is written: b->len plus base) that lists e[] and itself, uncompressed, /W [1 w 2] with the
 * smallest w that holds every offset. trailer_keys is written into its dictionary as given
 * (/Size, /Root, /Prev...). Then "startxref" and "%%EOF".
 */
int pdf_xref_stream_put(struct pf_buf *b, const struct pdf_xref_entry *e, size_t n,
	uint32_t self_num, uint64_t self_offset, const char *trailer_keys);

/* pdf-read.c: the source PDF, read with qpdf */
struct pdf_doc;

/*
 * Reads the PDF open on fd (a regular file, size bytes). Refuses, with -EMEDIUMTYPE, a file
 * that is not a PDF; -EBADMSG a damaged or truncated one, or one qpdf had to repair (its
 * object map may not match the bytes); -EACCES an encrypted one; -ENODATA one without pages.
 */
int pdf_doc_open(int fd, uint64_t size, struct pdf_doc **ret, char **ret_error);
struct pdf_doc *pdf_doc_free(struct pdf_doc *d);
int pdf_doc_n_pages(const struct pdf_doc *d);
/* The version in the header ("1.7"); a borrowed string. */
const char *pdf_doc_version(const struct pdf_doc *d);
int pdf_doc_xref_stream(const struct pdf_doc *d);

/* pdf-appearance.c: the visible signature's look (R10) */
struct pdf_appearance_conf {
	char *verify_url;     /* required for a visible signature; "{id}" = the document id */
	char *issuer_name;    /* default "BSrE" */
	char *signed_by_text; /* default "Ditandatangani secara elektronik oleh :" */
	char *footer_text;    /* default: the regulation's sentence, "{issuer}" = issuer_name */
	char *logo;           /* a PNG path, or NULL */
};

/* Reads an appearance template (INI, doc/pdf.md, appearance.conf.example). Unknown keys and
 * sections are errors naming the line; -ENOENT when the file does not exist. */
int pdf_appearance_conf_load(const char *path, struct pdf_appearance_conf **ret,
	char **ret_error);
struct pdf_appearance_conf *pdf_appearance_conf_free(struct pdf_appearance_conf *c);
/* verify_url with every "{id}" replaced by id. -E2BIG when longer than PDF_URL_MAX. */
int pdf_appearance_url(const struct pdf_appearance_conf *c, const char *id, char **ret);
/* footer_text with every "{issuer}" replaced by issuer_name. */
int pdf_appearance_footer(const struct pdf_appearance_conf *c, char **ret);

/* What the signature block says (UTF-8; NULL lines are left out). */
struct pdf_block_text {
	const char *signed_by; /* "Ditandatangani secara elektronik oleh :" */
	const char *position;
	const char *name;
	const char *nip;       /* printed as "NIP. <nip>" */
	const char *issuer;    /* the italic line */
};

/* A form XObject's content and size. */
struct pdf_form {
	struct pf_buf content;
	double width, height;
	bool uses_logo; /* draws /Logo: the XObject resource must be given */
};

void pdf_form_release(struct pdf_form *f);
/*
 * Draws the QR code of url as vector modules: one filled rectangle per horizontal run of dark
 * modules (libqrencode, error correction M), symbol size `size` pt with its lower-left corner
 * at (x, y), a white square for the quiet zone of four modules around it. -E2BIG when url does
 * not fit in a QR code. *ret_modules: the symbol's width in modules.
 */
int pdf_qr_draw(struct pf_buf *b, const char *url, double x, double y, double size,
	int *ret_modules);
/*
 * The signature block: the QR code of url on the left (PDF_QR_SIZE, its quiet zone inside the
 * block), the text lines beside it: signed_by (Helvetica 7 pt), position (Helvetica-Bold,
 * up to 3 lines), name (Helvetica-Bold), "NIP. <nip>", issuer (Helvetica-Oblique); with
 * logo_aspect > 0 (width / height), a logo of that aspect above the text, drawn as /Logo.
 * Fonts are the resources /F1 Helvetica, /F2 Helvetica-Bold, /F3 Helvetica-Oblique.
 */
int pdf_block_form(const char *url, const struct pdf_block_text *t, double logo_aspect,
	struct pdf_form *ret);
/* The footer: text in 7 pt Helvetica, wrapped to width and centred. */
int pdf_footer_form(const char *text, double width, struct pdf_form *ret);

/* pdf-png.c: a PNG logo as an image XObject without decoding it (see the file) */
struct pdf_image {
	struct pf_buf dict_and_stream; /* "<< ... >>\nstream\n...\nendstream" */
	uint32_t width, height;
};
int pdf_png_load(const char *path, struct pdf_image *ret, char **ret_error);
void pdf_image_release(struct pdf_image *im);

/* pdf-update.c: the incremental update */
struct pdf_sign_opts {
	int page;                 /* 0-based index of the page the widget belongs to */
	bool visible;
	bool at_given;            /* place the block's lower-left corner at (at_x, at_y) */
	double at_x, at_y;
	const char *reason;       /* UTF-8, or NULL */
	const char *location;
	const char *name;         /* /Name: the signer, or NULL */
	time_t when;              /* /M */
	size_t contents_max;      /* bytes of DER the /Contents hole holds */
	/* visible only */
	const char *url;          /* the QR code's URL */
	struct pdf_block_text text;
	const char *footer;       /* the footer text; NULL: none */
	const struct pdf_image *logo; /* or NULL */
};

struct pdf_update {
	struct pf_buf buf;    /* the bytes appended to the original file */
	uint64_t base;        /* the original's length: the file offset of buf.data[0] */
	size_t hole_start;    /* buf offset of the '<' of /Contents */
	size_t hole_end;      /* buf offset just after its '>' */
	uint64_t byterange[4];
	char field_name[32];  /* "Signature N" */
	int page;             /* the page (0-based) the widget is on */
	double rect[4];       /* the widget's /Rect (zero when invisible) */
};

int pdf_update_build(struct pdf_doc *d, const struct pdf_sign_opts *o,
	struct pdf_update **ret, char **ret_error);
struct pdf_update *pdf_update_free(struct pdf_update *u);
/*
 * The ByteRange of a file that is base bytes of original then an update of len bytes whose
 * /Contents hex string occupies [hole_start, hole_end) of the update, angle brackets
 * included: [0, base + hole_start, base + hole_end, len - hole_end]. -EINVAL when the hole is
 * not inside the update.
 */
int pdf_byterange_compute(uint64_t base, size_t len, size_t hole_start, size_t hole_end,
	uint64_t ret[4]);
/* Writes br into the fixed-width /ByteRange placeholder of buf (the "[...]" at placeholder,
 * PDF_BYTERANGE_WIDTH bytes), padding with spaces. -EOVERFLOW when it does not fit. */
#define PDF_BYTERANGE_WIDTH 48
int pdf_byterange_patch(uint8_t *placeholder, const uint64_t br[4]);
/* Hashes the update's parts that the ByteRange covers into ctx (which already holds the
 * original's bytes). */
int pdf_update_digest_update(const struct pdf_update *u, EVP_MD_CTX *ctx);
/* The hex of der for the hole (der_len <= contents_max), zero-padded: -EOVERFLOW when the
 * DER does not fit. The hex is written to fd at the hole's offset. */
int pdf_update_contents_write(const struct pdf_update *u, int fd, const uint8_t *der,
	size_t der_len);
/* The /Contents capacity (bytes of DER) for a certificate of cert_len DER bytes and a key
 * whose signatures are at most sig_len bytes; tsa adds room for a timestamp token. */
size_t pdf_contents_estimate(size_t cert_len, size_t sig_len, bool tsa);

/* pdf-cms.c: the agent's CMS, checked and finished */
/*
 * Checks the agent's CMS for a PAdES signature: a detached SignedData with one SignerInfo by
 * x, digest algorithm md, messageDigest = digest, no signingTime attribute (PAdES baseline:
 * the time is /M), and a signature that verifies. With tsa_url, adds an RFC 3161 timestamp of
 * the signature value as the unsigned attribute id-aa-signatureTimeStampToken (PAdES B-T).
 * Returns the DER to embed (definite lengths). -EBADMSG when the agent's CMS is not that;
 * -ECOMM when the timestamp could not be had (*ret_error says why).
 */
int pdf_cms_finish(const uint8_t *der, size_t len, const uint8_t *digest, size_t digest_len,
	X509 *x, const EVP_MD *md, const char *tsa_url, uint8_t **ret, size_t *ret_len,
	char **ret_error);

/* pdf-tsa.c: RFC 3161 over HTTP */
/* 1 when url is http:// or https:// with a host, else 0. */
int pdf_tsa_url_valid(const char *url);
/*
 * Asks the TSA at url for a timestamp token over the SHA-256 of data: a TimeStampReq with a
 * random nonce and certReq, POSTed as application/timestamp-query with a PDF_TSA_TIMEOUT
 * second timeout; the reply's status must be granted, and its nonce and message imprint
 * must be the request's. Returns the token (a CMS ContentInfo), DER.
 */
int pdf_tsa_stamp(const char *url, const uint8_t *data, size_t len, uint8_t **ret,
	size_t *ret_len, char **ret_error);

/* pdf-out.c: streaming atomic output */
struct pdf_out {
	char *path; /* the final name */
	char *tmp;  /* the temporary file beside it, while it exists; set to NULL before it is
		       freed, so a signal handler may unlink() it */
	int fd;
};

/* Creates the temporary file for path in path's directory (mode 0644, close-on-exec). */
int pdf_out_open(const char *path, struct pdf_out *ret);
/* Copies fd (size bytes) into the output, through ctx too (NULL: not hashed). -ESTALE when
 * fewer or more bytes could be read than size. */
int pdf_out_copy(struct pdf_out *o, int fd, uint64_t size, EVP_MD_CTX *ctx);
int pdf_out_write(struct pdf_out *o, const void *p, size_t n);
/* fsync, then rename over path: without overwrite, an existing path is never replaced
 * (-EEXIST); then the directory is synced. */
int pdf_out_commit(struct pdf_out *o, bool overwrite);
/* Removes the temporary file (when still there) and frees; safe on a zeroed struct. */
void pdf_out_discard(struct pdf_out *o);
