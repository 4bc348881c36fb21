/*
 * The visible signature's look (R10): the appearance template file, and the content of the two
 * form XObjects the update carries, the signature block (a QR code linking to the archived
 * document, "Ditandatangani secara elektronik oleh :", position, name, NIP and an italic
 * issuer line) and the footer sentence. Only the standard 14 fonts are used (Helvetica,
 * Helvetica-Bold, Helvetica-Oblique, WinAnsiEncoding), so nothing is embedded; the QR code is
 * drawn as filled rectangles, one per horizontal run of dark modules.
 */
#include "pdf-write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <qrencode.h>

#include "pf-codec.h"
#include "pf-ini.h"
#include "pf-util.h"

#define DEFAULT_ISSUER "BSrE"
#define DEFAULT_SIGNED_BY "Ditandatangani secara elektronik oleh :"
#define DEFAULT_FOOTER                                                                      \
	"Dokumen ini telah ditandatangani secara elektronik menggunakan sertifikat elektronik " \
	"yang diterbitkan oleh {issuer}"

/* The block's text column and type sizes, points. */
#define BLOCK_TEXT_WIDTH 170.0
#define BLOCK_GAP 6.0
#define BLOCK_LOGO_HEIGHT 20.0
#define FOOTER_SIZE 7.0
#define FOOTER_LEADING 8.5

struct pdf_appearance_conf *
pdf_appearance_conf_free(struct pdf_appearance_conf *c)
{
	if (!c)
		return NULL;
	free(c->verify_url);
	free(c->issuer_name);
	free(c->signed_by_text);
	free(c->footer_text);
	free(c->logo);
	free(c);
	return NULL;
}

static int
conf_key(void *data, const char *section, const char *key, const char *value, char *err,
	size_t errsz)
{
	struct pdf_appearance_conf *c = data;
	char **slot = NULL;

	if (!streq(section, "appearance")) {
		snprintf(err, errsz, "unknown section '[%s]' (only [appearance])", section);
		return -EINVAL;
	}
	if (streq(key, "verify_url"))
		slot = &c->verify_url;
	else if (streq(key, "issuer_name"))
		slot = &c->issuer_name;
	else if (streq(key, "signed_by_text"))
		slot = &c->signed_by_text;
	else if (streq(key, "footer_text"))
		slot = &c->footer_text;
	else if (streq(key, "logo"))
		slot = &c->logo;
	if (!slot) {
		snprintf(err, errsz, "unknown key '%s'", key);
		return -EINVAL;
	}
	if (*slot) {
		snprintf(err, errsz, "'%s' is given twice", key);
		return -EINVAL;
	}
	if (!*value) {
		snprintf(err, errsz, "'%s' is empty", key);
		return -EINVAL;
	}
	if (!pf_utf8_valid(value, strlen(value)) || strlen(value) > PDF_TEXT_MAX) {
		snprintf(err, errsz, "'%s' must be UTF-8 text of at most %d bytes", key,
			PDF_TEXT_MAX);
		return -EINVAL;
	}
	if (slot == &c->verify_url) {
		if ((strncmp(value, "https://", 8) != 0 && strncmp(value, "http://", 7) != 0) ||
		    !strstr(value, "{id}")) {
			snprintf(err, errsz, "'verify_url' must be an http:// or https:// URL "
					     "with '{id}' where the document id goes");
			return -EINVAL;
		}
		for (const char *p = value; *p; p++)
			if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
				snprintf(err, errsz, "'verify_url' must not contain spaces, control "
						     "or non-ASCII characters (percent-encode them)");
				return -EINVAL;
			}
	}
	*slot = strdup(value);
	if (!*slot) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int
set_default(char **slot, const char *v)
{
	if (*slot)
		return 0;
	*slot = strdup(v);
	return *slot ? 0 : -ENOMEM;
}

int
pdf_appearance_conf_load(const char *path, struct pdf_appearance_conf **ret, char **ret_error)
{
	struct pdf_appearance_conf *c = NULL;
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int fd = -1;
	char err[PF_INI_LINE_MAX + 256] = "";
	struct stat st;
	ssize_t k;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = pf_negerrno();
		if (asprintf(ret_error, "cannot read '%s': %s", path, strerror(-r)) < 0)
			*ret_error = NULL;
		return r;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > PDF_APPEARANCE_FILE_MAX) {
		if (asprintf(ret_error, "'%s' is not a regular file of at most %u bytes", path,
			    PDF_APPEARANCE_FILE_MAX) < 0)
			*ret_error = NULL;
		return -EINVAL;
	}
	text = malloc((size_t)st.st_size + 1);
	c = calloc(1, sizeof(*c));
	if (!text || !c) {
		free(c);
		return -ENOMEM;
	}
	k = read(fd, text, (size_t)st.st_size);
	if (k != st.st_size) {
		pdf_appearance_conf_free(c);
		if (asprintf(ret_error, "cannot read '%s'", path) < 0)
			*ret_error = NULL;
		return -EIO;
	}
	text[k] = 0;
	if (strlen(text) != (size_t)k) {
		pdf_appearance_conf_free(c);
		if (asprintf(ret_error, "'%s' contains a NUL byte", path) < 0)
			*ret_error = NULL;
		return -EINVAL;
	}
	r = pf_ini_parse(path, text, conf_key, c, err, sizeof(err));
	if (r >= 0 && !c->verify_url) {
		snprintf(err, sizeof(err), "%s: 'verify_url' is required (R10: the QR code links "
					   "to the archived document)", path);
		r = -EINVAL;
	}
	if (r < 0) {
		pdf_appearance_conf_free(c);
		*ret_error = strdup(err);
		return r;
	}
	if (set_default(&c->issuer_name, DEFAULT_ISSUER) < 0 ||
	    set_default(&c->signed_by_text, DEFAULT_SIGNED_BY) < 0 ||
	    set_default(&c->footer_text, DEFAULT_FOOTER) < 0) {
		pdf_appearance_conf_free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

/* s with every occurrence of key replaced by val. */
static int
replace_all(const char *s, const char *key, const char *val, size_t max, char **ret)
{
	struct pf_buf b;
	const char *p;
	size_t kl = strlen(key);

	pf_buf_init(&b);
	while ((p = strstr(s, key))) {
		pf_buf_put(&b, s, (size_t)(p - s));
		pdf_puts(&b, val);
		s = p + kl;
	}
	pf_buf_put(&b, s, strlen(s) + 1);
	if (pf_buf_status(&b) < 0) {
		pf_buf_release(&b);
		return -ENOMEM;
	}
	if (b.len - 1 > max) {
		pf_buf_release(&b);
		return -E2BIG;
	}
	*ret = (char *)b.data;
	return 0;
}

int
pdf_appearance_url(const struct pdf_appearance_conf *c, const char *id, char **ret)
{
	return replace_all(c->verify_url, "{id}", id, PDF_URL_MAX, ret);
}

int
pdf_appearance_footer(const struct pdf_appearance_conf *c, char **ret)
{
	return replace_all(c->footer_text, "{issuer}", c->issuer_name, 4 * PDF_TEXT_MAX, ret);
}

void
pdf_form_release(struct pdf_form *f)
{
	pf_buf_release(&f->content);
}

int
pdf_qr_draw(struct pf_buf *b, const char *url, double x, double y, double size,
	int *ret_modules)
{
	QRcode *qr;
	double m, quiet;
	int w, row, col;

	/* Error correction M: a scan survives a stain or a fold, and a URL stays small. */
	qr = QRcode_encodeString(url, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (!qr)
		return errno == ERANGE ? -E2BIG : errno ? -errno : -EINVAL;
	w = qr->width;
	m = size / w;
	quiet = 4 * m;
	/* The quiet zone, white whatever is under it on the page. */
	pdf_puts(b, "q 1 g ");
	pdf_real_put(b, x - quiet);
	pdf_puts(b, " ");
	pdf_real_put(b, y - quiet);
	pdf_puts(b, " ");
	pdf_real_put(b, size + 2 * quiet);
	pdf_puts(b, " ");
	pdf_real_put(b, size + 2 * quiet);
	pdf_puts(b, " re f Q\nq 0 g\n");
	for (row = 0; row < w; row++) {
		const unsigned char *d = qr->data + (size_t)row * (size_t)w;

		for (col = 0; col < w;) {
			int start;

			if (!(d[col] & 1)) {
				col++;
				continue;
			}
			start = col;
			while (col < w && (d[col] & 1))
				col++;
			/* Row 0 is the top of the symbol; PDF's y grows upwards. */
			pdf_real_put(b, x + start * m);
			pdf_puts(b, " ");
			pdf_real_put(b, y + (w - 1 - row) * m);
			pdf_puts(b, " ");
			pdf_real_put(b, (col - start) * m);
			pdf_puts(b, " ");
			pdf_real_put(b, m);
			pdf_puts(b, " re\n");
		}
	}
	pdf_puts(b, "f Q\n");
	QRcode_free(qr);
	*ret_modules = w;
	return pf_buf_status(b);
}

static const char *const font_res[] = {
	[PDF_FONT_REGULAR] = "/F1",
	[PDF_FONT_BOLD] = "/F2",
	[PDF_FONT_OBLIQUE] = "/F3",
};

struct text_line {
	enum pdf_font font;
	double size;
	char *text; /* WinAnsi */
	size_t len;
	bool ellipsis;
};

#define BLOCK_LINES_MAX 12

struct layout {
	struct text_line l[BLOCK_LINES_MAX];
	size_t n;
};

static void
layout_release(struct layout *lo)
{
	for (size_t i = 0; i < lo->n; i++)
		free(lo->l[i].text);
}

/* Adds utf8 wrapped to width, in at most max_lines lines. */
static int
layout_add(struct layout *lo, const char *utf8, enum pdf_font f, double size, double width,
	size_t max_lines)
{
	_cleanup_free_ char *w = NULL;
	size_t starts[BLOCK_LINES_MAX], lens[BLOCK_LINES_MAX], n, i;
	int truncated, r;

	if (!utf8 || !*utf8)
		return 0;
	r = pdf_winansi_from_utf8(utf8, &w);
	if (r < 0)
		return r;
	if (max_lines > BLOCK_LINES_MAX - lo->n)
		max_lines = BLOCK_LINES_MAX - lo->n;
	n = pdf_text_wrap(f, size, w, width, max_lines, starts, lens, &truncated);
	for (i = 0; i < n; i++) {
		struct text_line *t = &lo->l[lo->n];

		t->text = strndup(w + starts[i], lens[i]);
		if (!t->text)
			return -ENOMEM;
		t->len = lens[i];
		t->font = f;
		t->size = size;
		t->ellipsis = truncated && i == n - 1;
		lo->n++;
	}
	return 0;
}

static void
line_put(struct pf_buf *b, const struct text_line *t, double x, double y)
{
	pdf_printf(b, "BT %s ", font_res[t->font]);
	pdf_real_put(b, t->size);
	pdf_puts(b, " Tf ");
	pdf_real_put(b, x);
	pdf_puts(b, " ");
	pdf_real_put(b, y);
	pdf_puts(b, " Td ");
	if (t->ellipsis) {
		struct pf_buf s;

		pf_buf_init(&s);
		pf_buf_put(&s, t->text, t->len);
		pf_buf_put(&s, "...", 3);
		if (pf_buf_status(&s) == 0)
			pdf_string_put(b, s.data, s.len);
		else
			b->error = -ENOMEM;
		pf_buf_release(&s);
	} else
		pdf_string_put(b, t->text, t->len);
	pdf_puts(b, " Tj ET\n");
}

int
pdf_block_form(const char *url, const struct pdf_block_text *t, double logo_aspect,
	struct pdf_form *ret)
{
	struct layout lo = {};
	struct pdf_form f = {};
	double qr_box, text_h = 0, y, x_text, logo_h = 0;
	int modules, r;
	size_t i;
	_cleanup_free_ char *nip = NULL;

	pf_buf_init(&f.content);
	if (t->nip && asprintf(&nip, "NIP. %s", t->nip) < 0)
		return -ENOMEM;
	if ((r = layout_add(&lo, t->signed_by, PDF_FONT_REGULAR, 7, BLOCK_TEXT_WIDTH, 2)) < 0 ||
	    (r = layout_add(&lo, t->position, PDF_FONT_BOLD, 7.5, BLOCK_TEXT_WIDTH, 3)) < 0 ||
	    (r = layout_add(&lo, t->name, PDF_FONT_BOLD, 8.5, BLOCK_TEXT_WIDTH, 2)) < 0 ||
	    (r = layout_add(&lo, nip, PDF_FONT_REGULAR, 7.5, BLOCK_TEXT_WIDTH, 1)) < 0 ||
	    (r = layout_add(&lo, t->issuer, PDF_FONT_OBLIQUE, 6.5, BLOCK_TEXT_WIDTH, 2)) < 0)
		goto out;
	for (i = 0; i < lo.n; i++)
		text_h += lo.l[i].size * 1.3;
	if (logo_aspect > 0)
		logo_h = BLOCK_LOGO_HEIGHT + 4;

	/*
	 * The QR symbol is PDF_QR_SIZE (3 cm, R10) without its quiet zone; the quiet zone is
	 * four modules, so the square it needs depends on the symbol's version: draw it once
	 * to learn its width in modules, then lay the block out around it.
	 */
	{
		struct pf_buf probe;

		pf_buf_init(&probe);
		r = pdf_qr_draw(&probe, url, 0, 0, PDF_QR_SIZE, &modules);
		pf_buf_release(&probe);
		if (r < 0)
			goto out;
	}
	qr_box = PDF_QR_SIZE * (modules + 8) / modules;
	f.width = qr_box + BLOCK_GAP + BLOCK_TEXT_WIDTH;
	f.height = qr_box;
	if (text_h + logo_h + 4 > f.height)
		f.height = text_h + logo_h + 4;
	r = pdf_qr_draw(&f.content, url, (qr_box - PDF_QR_SIZE) / 2,
		(f.height - qr_box) / 2 + (qr_box - PDF_QR_SIZE) / 2, PDF_QR_SIZE, &modules);
	if (r < 0)
		goto out;
	x_text = qr_box + BLOCK_GAP;
	/* Text and logo centred vertically beside the QR code. */
	y = (f.height + text_h + logo_h) / 2;
	if (logo_aspect > 0) {
		double lw = BLOCK_LOGO_HEIGHT * logo_aspect, lh = BLOCK_LOGO_HEIGHT;

		if (lw > BLOCK_TEXT_WIDTH) {
			lw = BLOCK_TEXT_WIDTH;
			lh = lw / logo_aspect;
		}
		pdf_puts(&f.content, "q ");
		pdf_real_put(&f.content, lw);
		pdf_puts(&f.content, " 0 0 ");
		pdf_real_put(&f.content, lh);
		pdf_puts(&f.content, " ");
		pdf_real_put(&f.content, x_text);
		pdf_puts(&f.content, " ");
		pdf_real_put(&f.content, y - lh);
		pdf_puts(&f.content, " cm /Logo Do Q\n");
		y -= logo_h;
		f.uses_logo = true;
	}
	pdf_puts(&f.content, "0 g\n");
	for (i = 0; i < lo.n; i++) {
		y -= lo.l[i].size * 1.3;
		line_put(&f.content, &lo.l[i], x_text, y + lo.l[i].size * 0.3);
	}
	r = pf_buf_status(&f.content);
	if (r < 0)
		goto out;
	*ret = f;
	f = (struct pdf_form){};
out:
	pdf_form_release(&f);
	layout_release(&lo);
	return r;
}

int
pdf_footer_form(const char *text, double width, struct pdf_form *ret)
{
	struct layout lo = {};
	struct pdf_form f = {};
	double y;
	size_t i;
	int r;

	pf_buf_init(&f.content);
	r = layout_add(&lo, text, PDF_FONT_REGULAR, FOOTER_SIZE, width, 4);
	if (r < 0)
		goto out;
	f.width = width;
	f.height = (double)lo.n * FOOTER_LEADING + 2;
	y = f.height - 1;
	pdf_puts(&f.content, "0 g\n");
	for (i = 0; i < lo.n; i++) {
		double lw = pdf_text_width(lo.l[i].font, lo.l[i].size, lo.l[i].text, lo.l[i].len);

		if (lo.l[i].ellipsis)
			lw += pdf_text_width(lo.l[i].font, lo.l[i].size, "...", 3);
		y -= FOOTER_LEADING;
		line_put(&f.content, &lo.l[i], (width - lw) / 2, y + 2);
	}
	r = pf_buf_status(&f.content);
	if (r < 0)
		goto out;
	*ret = f;
	f = (struct pdf_form){};
out:
	pdf_form_release(&f);
	layout_release(&lo);
	return r;
}
