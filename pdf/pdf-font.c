/*
 * Helvetica metrics for laying out the signature block and the footer: the advance widths of
 * WinAnsiEncoding 0x20-0xff (0x80-0x9f unused: pdf_winansi_from_utf8() never emits them) from
 * Adobe's Helvetica and Helvetica-Bold AFM files (as groff's devps font files carry them), in
 * units of 1/1000 em. Helvetica-Oblique has Helvetica's widths. Kerning is ignored: viewers
 * draw the standard fonts without it unless told, and so do we.
 */
#include "pdf-write.h"

#include <string.h>

static const uint16_t pdf_helvetica_widths[224] = {
	278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584,
	278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556, 556,
	556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722,
	722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
	667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278,
	278, 278, 333, 556, 333, 556, 556, 500, 556, 556, 278, 556,
	556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500,
	278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 333, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 278, 333, 556, 556,
	556, 556, 260, 556, 333, 737, 370, 333, 584, 333, 737, 333,
	400, 584, 333, 333, 333, 578, 537, 278, 333, 333, 365, 333,
	834, 834, 834, 611, 667, 667, 667, 667, 667, 667, 1000, 722,
	667, 667, 667, 667, 278, 278, 278, 278, 722, 722, 778, 778,
	778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
	556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556,
	278, 278, 278, 278, 556, 556, 556, 556, 556, 556, 556, 584,
	611, 556, 556, 556, 556, 500, 556, 500,
};
static const uint16_t pdf_helvetica_bold_widths[224] = {
	278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584,
	278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556, 556,
	556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722,
	722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
	667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333,
	278, 333, 333, 556, 333, 556, 611, 556, 611, 556, 333, 611,
	611, 278, 278, 556, 278, 889, 611, 611, 611, 611, 389, 556,
	333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 333, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 278, 333, 556, 556,
	556, 556, 280, 556, 333, 737, 370, 333, 584, 333, 737, 333,
	400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 333,
	834, 834, 834, 611, 722, 722, 722, 722, 722, 722, 1000, 722,
	667, 667, 667, 667, 278, 278, 278, 278, 722, 722, 778, 778,
	778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
	556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556,
	278, 278, 278, 278, 611, 611, 611, 611, 611, 611, 611, 584,
	611, 611, 611, 611, 611, 556, 611, 556,
};

static unsigned
glyph_width(enum pdf_font f, uint8_t c)
{
	const uint16_t *w = f == PDF_FONT_BOLD ? pdf_helvetica_bold_widths : pdf_helvetica_widths;

	if (c < 0x20 || !w[c - 0x20])
		return w['?' - 0x20];
	return w[c - 0x20];
}

double
pdf_text_width(enum pdf_font f, double size, const char *winansi, size_t n)
{
	unsigned long sum = 0;
	size_t i;

	for (i = 0; i < n; i++)
		sum += glyph_width(f, (uint8_t)winansi[i]);
	return (double)sum * size / 1000.0;
}

size_t
pdf_text_wrap(enum pdf_font f, double size, const char *s, double width, size_t max_lines,
	size_t *starts, size_t *lens, int *ret_truncated)
{
	size_t n = strlen(s), pos = 0, lines = 0;

	*ret_truncated = 0;
	while (pos < n && lines < max_lines) {
		size_t end = pos, last_space = 0, k;
		int have_space = 0;

		while (pos < n && s[pos] == ' ')
			pos++;
		if (pos >= n)
			break;
		/* The longest prefix that fits, then back to its last space. */
		for (k = pos; k < n; k++) {
			if (pdf_text_width(f, size, s + pos, k - pos + 1) > width)
				break;
			if (s[k] == ' ') {
				last_space = k;
				have_space = 1;
			}
		}
		if (k >= n)
			end = n;
		else if (have_space)
			end = last_space;
		else
			end = k > pos ? k : pos + 1; /* a word longer than the line is cut */
		starts[lines] = pos;
		lens[lines] = end - pos;
		while (lens[lines] > 0 && s[pos + lens[lines] - 1] == ' ')
			lens[lines]--;
		lines++;
		pos = end;
	}
	while (pos < n && s[pos] == ' ')
		pos++;
	if (pos < n && lines > 0)
		*ret_truncated = 1;
	return lines;
}
