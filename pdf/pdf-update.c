/*
 * The incremental update that signs a PDF (ISO 32000 7.5.6, 12.8; PAdES baseline B-B):
 *
 *   the signature dictionary     /Type /Sig /Filter /Adobe.PPKLite /SubFilter
 *                                /ETSI.CAdES.detached /M /ByteRange /Contents <hole>
 *   the signature field          merged with its widget: /FT /Sig /T (Signature N) /V
 *                                /Subtype /Widget /F 132 /P /Rect (zero when invisible)
 *   visible only (R10)           the block's form XObject (QR code and text), the three
 *                                standard fonts, a /Stamp annotation with the footer's
 *                                form XObject (one per page: a page that already has a
 *                                paraf footer keeps it), the logo image
 *   what must change to hold     the page (or its /Annots array when that is an object of
 *   the new objects              its own), the catalog (or its /AcroForm dictionary, or the
 *                                /Fields array, whichever holds the change)
 *   a cross-reference section    of the source's last section's kind, with /Prev, /Size,
 *                                /Root, /Info, /ID [first-of-the-source new]
 *
 * Nothing else of the source is written again, so earlier signatures keep covering exactly
 * the bytes they covered. Objects are read and changed with qpdf in memory (the source file is
 * never rewritten) and each changed object is written back with qpdf_oh_unparse_resolved().
 */
#include "pdf-internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "pf-util.h"

#define PAGE_MARGIN 36.0   /* points from the page's edges to the block and the footer */
#define FOOTER_BOTTOM 12.0 /* the footer's lowest point above the page's bottom edge */
#define BLOCK_FOOTER_GAP 8.0
#define OBJS_MAX 16        /* objects one update writes */
#define FOOTER_NM "paraf-footer"

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

struct pdf_update *
pdf_update_free(struct pdf_update *u)
{
	if (!u)
		return NULL;
	pf_buf_release(&u->buf);
	free(u);
	return NULL;
}

int
pdf_byterange_compute(uint64_t base, size_t len, size_t hole_start, size_t hole_end,
	uint64_t ret[4])
{
	if (hole_start >= hole_end || hole_end > len)
		return -EINVAL;
	ret[0] = 0;
	ret[1] = base + hole_start;
	ret[2] = base + hole_end;
	ret[3] = (uint64_t)(len - hole_end);
	return 0;
}

int
pdf_byterange_patch(uint8_t *placeholder, const uint64_t br[4])
{
	char s[PDF_BYTERANGE_WIDTH + 1];
	int n;

	n = snprintf(s, sizeof(s), "[%llu %llu %llu %llu]", (unsigned long long)br[0],
		(unsigned long long)br[1], (unsigned long long)br[2], (unsigned long long)br[3]);
	if (n < 0 || n > PDF_BYTERANGE_WIDTH)
		return -EOVERFLOW;
	memset(placeholder, ' ', PDF_BYTERANGE_WIDTH);
	memcpy(placeholder, s, (size_t)n);
	return 0;
}

size_t
pdf_contents_estimate(size_t cert_len, size_t sig_len, bool tsa)
{
	/*
	 * The CMS holds the certificate once, the signature, and about 600 bytes of structure
	 * and signed attributes; cert + signature + 2 KiB leaves room for all that and more.
	 * The hole is reserved before the agent signs, and a CMS that does not fit means
	 * building the update again and signing again, which asks the official for the PIN a
	 * second time: so the estimate is generous (doubled), the cost being a few KiB of
	 * zeros. A timestamp token carries the TSA's certificate (often its chain too): 16 KiB
	 * more, doubled likewise.
	 */
	size_t n = 2 * (cert_len + sig_len + 2048);

	if (tsa)
		n += 2 * 16384;
	return n > PDF_CONTENTS_MAX ? PDF_CONTENTS_MAX : n;
}

int
pdf_update_digest_update(const struct pdf_update *u, EVP_MD_CTX *ctx)
{
	if (!EVP_DigestUpdate(ctx, u->buf.data, u->hole_start) ||
	    !EVP_DigestUpdate(ctx, u->buf.data + u->hole_end, u->buf.len - u->hole_end))
		return -EIO;
	return 0;
}

int
pdf_update_contents_write(const struct pdf_update *u, int fd, const uint8_t *der,
	size_t der_len)
{
	static const char hex[] = "0123456789abcdef";
	size_t room = u->hole_end - u->hole_start - 2, i, done = 0;
	_cleanup_free_ char *h = NULL;

	if (2 * der_len > room)
		return -EOVERFLOW;
	h = malloc(room);
	if (!h)
		return -ENOMEM;
	memset(h, '0', room);
	for (i = 0; i < der_len; i++) {
		h[2 * i] = hex[der[i] >> 4];
		h[2 * i + 1] = hex[der[i] & 15];
	}
	while (done < room) {
		ssize_t k = pwrite(fd, h + done, room - done,
			(off_t)(u->base + u->hole_start + 1 + done));

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return pf_negerrno();
		}
		done += (size_t)k;
	}
	return 0;
}

/* --- reading the source's objects ------------------------------------------------------- */

static int
oh_number(qpdf_data q, qpdf_oh o, double *ret)
{
	return qpdf_oh_get_value_as_number(q, o, ret) ? 0 : -EINVAL;
}

/* A rectangle [llx lly urx ury], normalised. */
static int
oh_rect(qpdf_data q, qpdf_oh a, double r[4])
{
	double t;
	int i;

	if (!qpdf_oh_is_array(q, a) || qpdf_oh_get_array_n_items(q, a) != 4)
		return -EINVAL;
	for (i = 0; i < 4; i++)
		if (oh_number(q, qpdf_oh_get_array_item(q, a, i), &r[i]) < 0)
			return -EINVAL;
	if (r[0] > r[2]) {
		t = r[0];
		r[0] = r[2];
		r[2] = t;
	}
	if (r[1] > r[3]) {
		t = r[1];
		r[1] = r[3];
		r[3] = t;
	}
	return 0;
}

/* A page attribute that may be inherited from the page tree (ISO 32000 7.7.3.4). */
static qpdf_oh
page_inherited(qpdf_data q, qpdf_oh page, const char *key)
{
	qpdf_oh o = page;
	int depth;

	for (depth = 0; depth < 64 && qpdf_oh_is_dictionary(q, o); depth++) {
		if (qpdf_oh_has_key(q, o, key))
			return pdf_dict_get(q, o, key);
		o = pdf_dict_get(q, o, "/Parent");
	}
	return qpdf_oh_new_null(q);
}

/* The page as a reader shows it: its visible box and its rotation. */
struct geom {
	double box[4]; /* CropBox (within MediaBox), else MediaBox */
	int rotate;    /* 0, 90, 180, 270 */
	double vw, vh; /* width and height as displayed */
};

static int
geom_read(qpdf_data q, qpdf_oh page, struct geom *g)
{
	double media[4], crop[4];
	long long rot = 0;

	if (oh_rect(q, page_inherited(q, page, "/MediaBox"), media) < 0)
		return -EINVAL;
	memcpy(g->box, media, sizeof(media));
	if (oh_rect(q, page_inherited(q, page, "/CropBox"), crop) == 0) {
		g->box[0] = fmax(crop[0], media[0]);
		g->box[1] = fmax(crop[1], media[1]);
		g->box[2] = fmin(crop[2], media[2]);
		g->box[3] = fmin(crop[3], media[3]);
	}
	if (g->box[2] - g->box[0] < 1 || g->box[3] - g->box[1] < 1)
		return -EINVAL;
	(void)qpdf_oh_get_value_as_longlong(q, page_inherited(q, page, "/Rotate"), &rot);
	rot %= 360;
	if (rot < 0)
		rot += 360;
	if (rot % 90)
		rot = 0;
	g->rotate = (int)rot;
	if (g->rotate == 90 || g->rotate == 270) {
		g->vw = g->box[3] - g->box[1];
		g->vh = g->box[2] - g->box[0];
	} else {
		g->vw = g->box[2] - g->box[0];
		g->vh = g->box[3] - g->box[1];
	}
	return 0;
}

/* A point of the displayed page (origin at its lower-left corner) in default user space. */
static void
geom_to_page(const struct geom *g, double dx, double dy, double *px, double *py)
{
	double pw = g->box[2] - g->box[0], ph = g->box[3] - g->box[1], u, v;

	switch (g->rotate) {
	case 90:
		u = pw - dy;
		v = dx;
		break;
	case 180:
		u = pw - dx;
		v = ph - dy;
		break;
	case 270:
		u = dy;
		v = ph - dx;
		break;
	default:
		u = dx;
		v = dy;
	}
	*px = g->box[0] + u;
	*py = g->box[1] + v;
}

/* A displayed rectangle as a /Rect in default user space. */
static void
geom_rect(const struct geom *g, double x, double y, double w, double h, double r[4])
{
	double px[4], py[4];
	int i;

	geom_to_page(g, x, y, &px[0], &py[0]);
	geom_to_page(g, x + w, y, &px[1], &py[1]);
	geom_to_page(g, x, y + h, &px[2], &py[2]);
	geom_to_page(g, x + w, y + h, &px[3], &py[3]);
	r[0] = r[2] = px[0];
	r[1] = r[3] = py[0];
	for (i = 1; i < 4; i++) {
		r[0] = fmin(r[0], px[i]);
		r[1] = fmin(r[1], py[i]);
		r[2] = fmax(r[2], px[i]);
		r[3] = fmax(r[3], py[i]);
	}
}

/* The form XObject's /Matrix that turns its upright drawing with the page's /Rotate. */
static const char *
geom_matrix(const struct geom *g)
{
	switch (g->rotate) {
	case 90:
		return "[0 1 -1 0 0 0]";
	case 180:
		return "[-1 0 0 -1 0 0]";
	case 270:
		return "[0 -1 1 0 0 0]";
	default:
		return "[1 0 0 1 0 0]";
	}
}

static int
rects_overlap(const double a[4], const double b[4])
{
	return a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
}

/* What the page's annotations tell: visible signature widgets (to keep clear of) and whether
 * a paraf footer is there already. */
struct page_annots {
	double (*sig_rects)[4];
	size_t n_sig_rects;
	bool has_footer;
};

static int
is_sig_field(qpdf_data q, qpdf_oh a)
{
	qpdf_oh ft = pdf_dict_get(q, a, "/FT");

	if (qpdf_oh_is_null(q, ft))
		ft = pdf_dict_get(q, pdf_dict_get(q, a, "/Parent"), "/FT");
	return qpdf_oh_is_name_and_equals(q, ft, "/Sig");
}

static int
page_annots_read(qpdf_data q, qpdf_oh annots, struct page_annots *pa)
{
	int n, i;

	if (!qpdf_oh_is_array(q, annots))
		return 0;
	n = qpdf_oh_get_array_n_items(q, annots);
	if (n > PDF_ANNOTS_MAX)
		return -E2BIG;
	pa->sig_rects = calloc((size_t)n + 1, sizeof(*pa->sig_rects));
	if (!pa->sig_rects)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		qpdf_oh a = qpdf_oh_get_array_item(q, annots, i);
		qpdf_oh nm;
		size_t len = 0;
		const char *s;
		double r[4];

		if (!qpdf_oh_is_dictionary(q, a))
			continue;
		nm = pdf_dict_get(q, a, "/NM");
		if (qpdf_oh_is_string(q, nm)) {
			s = qpdf_oh_get_binary_string_value(q, nm, &len);
			if (s && len >= strlen(FOOTER_NM) &&
			    memcmp(s, FOOTER_NM, strlen(FOOTER_NM)) == 0)
				pa->has_footer = true;
		}
		if (is_sig_field(q, a) && oh_rect(q, pdf_dict_get(q, a, "/Rect"), r) == 0 &&
		    r[2] - r[0] > 0 && r[3] - r[1] > 0)
			memcpy(pa->sig_rects[pa->n_sig_rects++], r, sizeof(r));
	}
	return 0;
}

/* DocMDP of a certified document (ISO 32000 12.8.2.2): its /P, or 0 when not certified. */
static long long
docmdp_p(qpdf_data q, qpdf_oh root)
{
	qpdf_oh sig = pdf_dict_get(q, pdf_dict_get(q, root, "/Perms"), "/DocMDP");
	qpdf_oh refs;
	long long p = 2;
	int i, n;

	if (!qpdf_oh_is_dictionary(q, sig))
		return 0;
	refs = pdf_dict_get(q, sig, "/Reference");
	n = qpdf_oh_is_array(q, refs) ? qpdf_oh_get_array_n_items(q, refs) : 0;
	for (i = 0; i < n; i++) {
		qpdf_oh ref = qpdf_oh_get_array_item(q, refs, i);

		if (qpdf_oh_is_name_and_equals(q, pdf_dict_get(q, ref, "/TransformMethod"),
			    "/DocMDP"))
			(void)qpdf_oh_get_value_as_longlong(q,
				pdf_dict_get(q, pdf_dict_get(q, ref, "/TransformParams"), "/P"),
				&p);
	}
	return p;
}

/* --- writing ---------------------------------------------------------------------------- */

struct writer {
	struct pdf_update *u;
	struct pdf_xref_entry objs[OBJS_MAX];
	size_t n_objs;
};

static int
obj_begin(struct writer *w, uint32_t num, uint16_t gen)
{
	size_t i;

	for (i = 0; i < w->n_objs; i++)
		if (w->objs[i].num == num)
			return -EINVAL;
	if (w->n_objs >= OBJS_MAX)
		return -E2BIG;
	w->objs[w->n_objs++] = (struct pdf_xref_entry){
		.num = num, .gen = gen, .offset = w->u->base + w->u->buf.len
	};
	pdf_printf(&w->u->buf, "%u %u obj\n", num, (unsigned)gen);
	return 0;
}

static void
obj_end(struct writer *w)
{
	pdf_puts(&w->u->buf, "\nendobj\n");
}

/* An object of the source, changed in qpdf's memory, written again whole. */
static int
obj_rewrite(struct writer *w, qpdf_data q, qpdf_oh o)
{
	const char *s;
	int r;

	r = obj_begin(w, (uint32_t)qpdf_oh_get_object_id(q, o),
		(uint16_t)qpdf_oh_get_generation(q, o));
	if (r < 0)
		return r;
	s = qpdf_oh_unparse_resolved(q, o);
	if (qpdf_has_error(q) || !s)
		return -EBADMSG;
	pdf_puts(&w->u->buf, s);
	obj_end(w);
	return 0;
}

static void
rect_put(struct pf_buf *b, const double r[4])
{
	pdf_puts(b, "[");
	for (int i = 0; i < 4; i++) {
		if (i)
			pdf_puts(b, " ");
		pdf_real_put(b, r[i]);
	}
	pdf_puts(b, "]");
}

static void
form_put(struct pf_buf *b, const struct pdf_form *f, const char *matrix, uint32_t fonts,
	uint32_t logo)
{
	pdf_puts(b, "<< /Type /XObject /Subtype /Form /FormType 1 /BBox [0 0 ");
	pdf_real_put(b, f->width);
	pdf_puts(b, " ");
	pdf_real_put(b, f->height);
	pdf_printf(b, "] /Matrix %s /Resources << /ProcSet [/PDF /Text%s] /Font << /F1 %u 0 R "
		      "/F2 %u 0 R /F3 %u 0 R >>",
		matrix, f->uses_logo ? " /ImageB /ImageC /ImageI" : "", fonts, fonts + 1,
		fonts + 2);
	if (f->uses_logo)
		pdf_printf(b, " /XObject << /Logo %u 0 R >>", logo);
	pdf_printf(b, " >> /Length %zu >>\nstream\n", f->content.len);
	pf_buf_put(b, f->content.data, f->content.len);
	pdf_puts(b, "\nendstream");
}

/* Field names at the top of the form, to give the new field one of its own. */
static int
field_name_taken(qpdf_data q, qpdf_oh fields, const char *name)
{
	int n = qpdf_oh_is_array(q, fields) ? qpdf_oh_get_array_n_items(q, fields) : 0;
	int i;

	for (i = 0; i < n; i++) {
		qpdf_oh t = pdf_dict_get(q, qpdf_oh_get_array_item(q, fields, i), "/T");
		const char *s;
		size_t len = 0;

		if (!qpdf_oh_is_string(q, t))
			continue;
		s = qpdf_oh_get_binary_string_value(q, t, &len);
		if (s && len == strlen(name) && memcmp(s, name, len) == 0)
			return 1;
	}
	return 0;
}

static int
count_sig_fields(qpdf_data q, qpdf_oh fields)
{
	int n = qpdf_oh_is_array(q, fields) ? qpdf_oh_get_array_n_items(q, fields) : 0;
	int i, k = 0;

	for (i = 0; i < n; i++)
		if (qpdf_oh_is_name_and_equals(q,
			    pdf_dict_get(q, qpdf_oh_get_array_item(q, fields, i), "/FT"), "/Sig"))
			k++;
	return k;
}

struct layout {
	struct geom g;
	struct pdf_form block, footer;
	double block_rect[4], footer_rect[4];
	bool with_footer;
};

static void
layout_release(struct layout *l)
{
	pdf_form_release(&l->block);
	pdf_form_release(&l->footer);
}

/* Where the block and the footer go on the displayed page. */
static int
layout_place(const struct pdf_sign_opts *o, const struct page_annots *pa, struct layout *l,
	char **ret_error)
{
	const struct geom *g = &l->g;
	double fw = g->vw - 2 * PAGE_MARGIN, x, y, r[4];
	double low;
	double logo_aspect = o->logo ? (double)o->logo->width / o->logo->height : 0;
	int tries, r2;

	r2 = pdf_block_form(o->url, &o->text, logo_aspect, &l->block);
	if (r2 == -E2BIG) {
		*ret_error = msg_new("the verification URL is too long for a QR code");
		return r2;
	}
	if (r2 < 0)
		return r2;
	if (fw < 100) {
		*ret_error = msg_new("the page is too small for a visible signature");
		return -ERANGE;
	}
	l->with_footer = o->footer && !pa->has_footer;
	low = FOOTER_BOTTOM;
	if (o->footer) {
		/* Laid out even when the page has its footer already, so the block stays
		 * clear of it. */
		r2 = pdf_footer_form(o->footer, fw, &l->footer);
		if (r2 < 0)
			return r2;
		geom_rect(g, PAGE_MARGIN, FOOTER_BOTTOM, l->footer.width, l->footer.height,
			l->footer_rect);
		low = FOOTER_BOTTOM + l->footer.height + BLOCK_FOOTER_GAP;
	}
	if (o->at_given) {
		x = o->at_x;
		y = o->at_y;
		if (x < 0 || y < 0 || x + l->block.width > g->vw || y + l->block.height > g->vh) {
			*ret_error = msg_new("--at %g,%g puts the signature block (%.0f x %.0f pt) "
					     "outside the page (%.0f x %.0f pt)",
				x, y, l->block.width, l->block.height, g->vw, g->vh);
			return -ERANGE;
		}
		geom_rect(g, x, y, l->block.width, l->block.height, l->block_rect);
		return 0;
	}
	/* Bottom right, above the footer; moved up past earlier visible signatures. */
	x = g->vw - PAGE_MARGIN - l->block.width;
	if (x < PAGE_MARGIN / 2)
		x = (g->vw - l->block.width) / 2;
	if (x < 0) {
		*ret_error = msg_new("the page (%.0f pt wide) is narrower than the signature "
				     "block (%.0f pt)",
			g->vw, l->block.width);
		return -ERANGE;
	}
	y = low;
	for (tries = 0; tries < 64; tries++) {
		size_t i;
		int clash = 0;

		geom_rect(g, x, y, l->block.width, l->block.height, r);
		for (i = 0; i < pa->n_sig_rects; i++)
			if (rects_overlap(r, pa->sig_rects[i]))
				clash = 1;
		if (!clash)
			break;
		y += l->block.height + 4;
	}
	if (y + l->block.height > g->vh) {
		*ret_error = msg_new("no room left at the bottom of the page for the signature "
				     "block: choose a place with --at X,Y");
		return -ERANGE;
	}
	memcpy(l->block_rect, r, sizeof(r));
	return 0;
}

/* A new object number: must be free in the source (qpdf resolves it to null). */
static int
new_ref(qpdf_data q, uint32_t num, qpdf_oh *ret)
{
	qpdf_oh o = qpdf_get_object_by_id(q, (int)num, 0);

	if (qpdf_has_error(q) || !qpdf_oh_is_null(q, o))
		return -EBADMSG;
	*ret = o;
	return 0;
}

int
pdf_update_build(struct pdf_doc *d, const struct pdf_sign_opts *o, struct pdf_update **ret,
	char **ret_error)
{
	qpdf_data q = d->q;
	struct pdf_update *u;
	struct writer w = {};
	struct layout lay = {};
	struct page_annots pa = {};
	qpdf_oh page, annots, root, af, fields, widget_ref, footer_ref = 0, sig_ref;
	uint32_t next, sig_num, widget_num, block_num = 0, fonts_num = 0, footer_num = 0;
	uint32_t footer_form_num = 0, logo_num = 0, size;
	uint8_t new_id[16];
	size_t br_at, i;
	long long sigflags = 0, p;
	int page_num, page_gen, r, k;
	bool page_dirty = false, root_dirty = false, af_dirty = false;
	qpdf_oh annots_obj = 0, fields_obj = 0, af_obj = 0;
	char date[32];
	struct pf_buf *b;

	*ret_error = NULL;
	if (o->page < 0 || o->page >= d->n_pages) {
		*ret_error = msg_new("page %d does not exist: the PDF has %d", o->page + 1,
			d->n_pages);
		return -ERANGE;
	}
	if (o->contents_max == 0 || o->contents_max > PDF_CONTENTS_MAX)
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	pf_buf_init(&u->buf);
	u->base = d->size;
	u->page = o->page;
	w.u = u;
	b = &u->buf;

	root = qpdf_get_root(q);
	p = docmdp_p(q, root);
	if (p == 1 || (p == 2 && o->visible)) {
		*ret_error = msg_new(p == 1 ? "the PDF is certified with no changes allowed "
					      "(DocMDP P=1): it cannot be signed again" :
					      "the PDF is certified allowing only form filling and "
					      "signing (DocMDP P=2): the visible signature's footer "
					      "would break that; sign it without --visible");
		r = -EPERM;
		goto fail;
	}
	page = qpdf_get_page_n(q, (size_t)o->page);
	page_num = qpdf_oh_get_object_id(q, page);
	page_gen = qpdf_oh_get_generation(q, page);
	if (qpdf_has_error(q) || page_num <= 0) {
		*ret_error = pdf_qpdf_message(q, "damaged PDF: the page cannot be read");
		r = -EBADMSG;
		goto fail;
	}
	annots = pdf_dict_get(q, page, "/Annots");
	if (!qpdf_oh_is_null(q, annots) && !qpdf_oh_is_array(q, annots)) {
		*ret_error = msg_new("damaged PDF: page %d's /Annots is not an array", o->page + 1);
		r = -EBADMSG;
		goto fail;
	}
	r = page_annots_read(q, annots, &pa);
	if (r < 0)
		goto fail;

	if (o->visible) {
		if (geom_read(q, page, &lay.g) < 0) {
			*ret_error = msg_new("damaged PDF: page %d has no valid /MediaBox",
				o->page + 1);
			r = -EBADMSG;
			goto fail;
		}
		r = layout_place(o, &pa, &lay, ret_error);
		if (r < 0)
			goto fail;
		memcpy(u->rect, lay.block_rect, sizeof(u->rect));
	}

	/* New object numbers, from the source's /Size on. */
	next = (uint32_t)d->trailer_size;
	sig_num = next++;
	widget_num = next++;
	if (o->visible) {
		block_num = next++;
		fonts_num = next;
		next += 3;
		if (lay.with_footer) {
			footer_num = next++;
			footer_form_num = next++;
		}
		if (lay.block.uses_logo)
			logo_num = next++;
	}
	if (new_ref(q, widget_num, &widget_ref) < 0 ||
	    (footer_num && new_ref(q, footer_num, &footer_ref) < 0) ||
	    new_ref(q, sig_num, &sig_ref) < 0) {
		*ret_error = pdf_qpdf_message(q, "damaged PDF: objects beyond its /Size");
		r = -EBADMSG;
		goto fail;
	}

	/* The page's annotations: the widget (and the footer). */
	if (qpdf_oh_is_array(q, annots)) {
		if (qpdf_oh_is_indirect(q, annots))
			annots_obj = annots;
		else
			page_dirty = true;
	} else {
		annots = qpdf_oh_new_array(q);
		qpdf_oh_replace_key(q, page, "/Annots", annots);
		page_dirty = true;
	}
	qpdf_oh_append_item(q, annots, widget_ref);
	if (footer_num)
		qpdf_oh_append_item(q, annots, footer_ref);

	/* The form: /Fields gets the field, /SigFlags 3 (signatures exist, append only). */
	af = pdf_dict_get(q, root, "/AcroForm");
	if (qpdf_oh_is_dictionary(q, af)) {
		if (qpdf_oh_is_indirect(q, af))
			af_obj = af;
	} else {
		af = qpdf_oh_new_dictionary(q);
		qpdf_oh_replace_key(q, root, "/AcroForm", af);
		root_dirty = true;
	}
	fields = pdf_dict_get(q, af, "/Fields");
	if (qpdf_oh_is_array(q, fields)) {
		if (qpdf_oh_get_array_n_items(q, fields) > PDF_ANNOTS_MAX) {
			r = -E2BIG;
			goto fail;
		}
		if (qpdf_oh_is_indirect(q, fields))
			fields_obj = fields;
		else
			af_dirty = true;
	} else {
		fields = qpdf_oh_new_array(q);
		qpdf_oh_replace_key(q, af, "/Fields", fields);
		af_dirty = true;
	}
	k = count_sig_fields(q, fields) + 1;
	do
		snprintf(u->field_name, sizeof(u->field_name), "Signature %d", k++);
	while (field_name_taken(q, fields, u->field_name) && k < PDF_ANNOTS_MAX + 2);
	qpdf_oh_append_item(q, fields, widget_ref);
	(void)qpdf_oh_get_value_as_longlong(q, pdf_dict_get(q, af, "/SigFlags"), &sigflags);
	if ((sigflags & 3) != 3) {
		qpdf_oh_replace_key(q, af, "/SigFlags", qpdf_oh_new_integer(q, sigflags | 3));
		af_dirty = true;
	}
	if (af_dirty && !af_obj)
		root_dirty = true;
	r = pdf_qpdf_check(d, "damaged PDF: its page or form cannot be read", ret_error);
	if (r < 0)
		goto fail;

	/* --- the bytes --- */
	if (!d->ends_with_eol)
		pdf_puts(b, "\n");

	/* The signature dictionary; /Contents last, a hole of zeros for the CMS. */
	pdf_date_format(o->when, date, sizeof(date));
	obj_begin(&w, sig_num, 0);
	pdf_puts(b, "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /M ");
	pdf_string_put(b, date, strlen(date));
	if (o->name) {
		pdf_puts(b, " /Name ");
		if (pdf_text_put(b, o->name) < 0)
			goto bad_text;
	}
	if (o->reason) {
		pdf_puts(b, " /Reason ");
		if (pdf_text_put(b, o->reason) < 0)
			goto bad_text;
	}
	if (o->location) {
		pdf_puts(b, " /Location ");
		if (pdf_text_put(b, o->location) < 0)
			goto bad_text;
	}
	pdf_puts(b, " /Prop_Build << /App << /Name /paraf >> >> /ByteRange ");
	br_at = b->len;
	for (i = 0; i < PDF_BYTERANGE_WIDTH; i++)
		pdf_puts(b, " ");
	pdf_puts(b, " /Contents ");
	u->hole_start = b->len;
	if (pf_buf_reserve(b, 2 * o->contents_max + 2) == 0) {
		pdf_puts(b, "<");
		memset(b->data + b->len, '0', 2 * o->contents_max);
		b->len += 2 * o->contents_max;
		pdf_puts(b, ">");
	}
	u->hole_end = b->len;
	pdf_puts(b, " >>");
	obj_end(&w);

	/* The field and its widget, one dictionary. */
	obj_begin(&w, widget_num, 0);
	pdf_puts(b, "<< /Type /Annot /Subtype /Widget /FT /Sig /T ");
	pdf_string_put(b, u->field_name, strlen(u->field_name));
	pdf_printf(b, " /V %u 0 R /F 132 /P %d %d R /Rect ", sig_num, page_num, page_gen);
	rect_put(b, u->rect);
	if (o->visible)
		pdf_printf(b, " /AP << /N %u 0 R >>", block_num);
	pdf_puts(b, " >>");
	obj_end(&w);

	if (o->visible) {
		static const char *const fonts[] = { "Helvetica", "Helvetica-Bold",
			"Helvetica-Oblique" };

		obj_begin(&w, block_num, 0);
		form_put(b, &lay.block, geom_matrix(&lay.g), fonts_num, logo_num);
		obj_end(&w);
		for (i = 0; i < 3; i++) {
			obj_begin(&w, fonts_num + (uint32_t)i, 0);
			pdf_printf(b, "<< /Type /Font /Subtype /Type1 /BaseFont /%s "
				      "/Encoding /WinAnsiEncoding >>",
				fonts[i]);
			obj_end(&w);
		}
		if (footer_num) {
			char nm[64];

			snprintf(nm, sizeof(nm), FOOTER_NM "-%u", sig_num);
			obj_begin(&w, footer_num, 0);
			pdf_puts(b, "<< /Type /Annot /Subtype /Stamp /F 132 /Rect ");
			rect_put(b, lay.footer_rect);
			pdf_printf(b, " /P %d %d R /NM ", page_num, page_gen);
			pdf_string_put(b, nm, strlen(nm));
			pdf_printf(b, " /AP << /N %u 0 R >> >>", footer_form_num);
			obj_end(&w);
			obj_begin(&w, footer_form_num, 0);
			form_put(b, &lay.footer, geom_matrix(&lay.g), fonts_num, 0);
			obj_end(&w);
		}
		if (logo_num) {
			obj_begin(&w, logo_num, 0);
			pf_buf_put(b, o->logo->dict_and_stream.data, o->logo->dict_and_stream.len);
			obj_end(&w);
		}
	}

	/* The source's objects that changed. */
	if ((page_dirty && (r = obj_rewrite(&w, q, page)) < 0) ||
	    (annots_obj && (r = obj_rewrite(&w, q, annots_obj)) < 0) ||
	    (root_dirty && (r = obj_rewrite(&w, q, root)) < 0) ||
	    (af_obj && af_dirty && (r = obj_rewrite(&w, q, af_obj)) < 0) ||
	    (fields_obj && (r = obj_rewrite(&w, q, fields_obj)) < 0)) {
		*ret_error = pdf_qpdf_message(q, "cannot write the changed page or form");
		goto fail;
	}
	r = pdf_qpdf_check(d, "damaged PDF: an object cannot be read", ret_error);
	if (r < 0)
		goto fail;

	/* The cross-reference section and trailer. */
	if (RAND_bytes(new_id, sizeof(new_id)) != 1) {
		r = -EIO;
		goto fail;
	}
	size = next;
	if ((uint64_t)d->trailer_size > size)
		size = (uint32_t)d->trailer_size;
	{
		struct pf_buf t;

		pf_buf_init(&t);
		pdf_printf(&t, "/Size %u /Root %d %d R", size + (d->xref_stream ? 1 : 0),
			d->root_num, d->root_gen);
		if (d->info_num > 0)
			pdf_printf(&t, " /Info %d %d R", d->info_num, d->info_gen);
		pdf_puts(&t, " /ID [");
		if (d->has_id)
			pdf_hexstring_put(&t, d->id0, d->id0_len);
		else
			pdf_hexstring_put(&t, new_id, sizeof(new_id));
		pdf_puts(&t, " ");
		pdf_hexstring_put(&t, new_id, sizeof(new_id));
		pdf_printf(&t, "] /Prev %llu", (unsigned long long)d->startxref);
		pf_buf_put(&t, "", 1);
		if ((r = pf_buf_status(&t)) < 0) {
			pf_buf_release(&t);
			goto fail;
		}
		if (d->xref_stream) {
			/* The stream is an object too: the next number. */
			r = pdf_xref_stream_put(b, w.objs, w.n_objs, size, u->base + b->len,
				(const char *)t.data);
		} else {
			uint64_t xref_at = u->base + b->len;

			r = pdf_xref_table_put(b, w.objs, w.n_objs);
			pdf_printf(b, "trailer\n<< %s >>\nstartxref\n%llu\n%%%%EOF\n", t.data,
				(unsigned long long)xref_at);
		}
		pf_buf_release(&t);
		if (r < 0)
			goto fail;
	}
	r = pf_buf_status(b);
	if (r < 0)
		goto fail;
	r = pdf_byterange_compute(u->base, b->len, u->hole_start, u->hole_end, u->byterange);
	if (r < 0)
		goto fail;
	r = pdf_byterange_patch(b->data + br_at, u->byterange);
	if (r < 0)
		goto fail;
	free(pa.sig_rects);
	layout_release(&lay);
	*ret = u;
	return 0;

bad_text:
	*ret_error = msg_new("--reason, --location and names must be valid UTF-8");
	r = -EINVAL;
fail:
	free(pa.sig_rects);
	layout_release(&lay);
	pdf_update_free(u);
	return r;
}
