/*
 * The appearance's optional logo: a PNG file becomes a PDF image XObject without decoding it.
 * A PNG's IDAT chunks together are a zlib stream of rows each preceded by a PNG filter byte,
 * which is exactly what PDF's FlateDecode with /Predictor 15 reads (ISO 32000 7.4.4.4), so the
 * compressed bytes are copied as they are and no image library is needed. That works for PNGs
 * without an alpha channel and without interlacing: grey, RGB and palette images. The others
 * are refused with a message saying how to save the logo instead (a transparent logo would
 * need its alpha separated into an /SMask, which means inflating and filtering the rows).
 * A palette's tRNS transparency is ignored: the logo is drawn opaque.
 */
#include "pdf-write.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void
pdf_image_release(struct pdf_image *im)
{
	pf_buf_release(&im->dict_and_stream);
}

static int
read_file(const char *path, uint8_t **ret, size_t *ret_len)
{
	FILE *f = fopen(path, "rbe");
	uint8_t *d;
	long n;

	if (!f)
		return pf_negerrno();
	if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
		fclose(f);
		return -EIO;
	}
	if ((unsigned long)n > PDF_LOGO_MAX) {
		fclose(f);
		return -EFBIG;
	}
	d = malloc((size_t)n + 1);
	if (!d) {
		fclose(f);
		return -ENOMEM;
	}
	if (fread(d, 1, (size_t)n, f) != (size_t)n) {
		free(d);
		fclose(f);
		return -EIO;
	}
	fclose(f);
	*ret = d;
	*ret_len = (size_t)n;
	return 0;
}

int
pdf_png_load(const char *path, struct pdf_image *ret, char **ret_error)
{
	static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	_cleanup_free_ uint8_t *d = NULL;
	struct pf_buf idat, *b;
	struct pdf_image im = {};
	const uint8_t *plte = NULL;
	uint32_t w = 0, h = 0, plte_len = 0;
	unsigned depth = 0, ctype = 0, colors;
	size_t n, pos;
	int r, have_ihdr = 0, have_end = 0;

	r = read_file(path, &d, &n);
	if (r < 0) {
		*ret_error = r == -EFBIG ?
				     msg_new("logo '%s' is larger than %u bytes", path, PDF_LOGO_MAX) :
				     msg_new("cannot read logo '%s': %s", path, strerror(-r));
		return r;
	}
	if (n < 8 || memcmp(d, sig, 8) != 0) {
		*ret_error = msg_new("logo '%s' is not a PNG file", path);
		return -EINVAL;
	}
	pf_buf_init(&idat);
	for (pos = 8; pos + 12 <= n && !have_end;) {
		uint32_t len = be32(d + pos);
		const uint8_t *type = d + pos + 4, *data = d + pos + 8;

		if (len > n - pos - 12) {
			*ret_error = msg_new("logo '%s' is a truncated PNG file", path);
			pf_buf_release(&idat);
			return -EINVAL;
		}
		if (memcmp(type, "IHDR", 4) == 0 && len == 13) {
			w = be32(data);
			h = be32(data + 4);
			depth = data[8];
			ctype = data[9];
			if (data[10] != 0 || data[11] != 0) {
				*ret_error = msg_new("logo '%s': unknown PNG compression or filter",
					path);
				pf_buf_release(&idat);
				return -EINVAL;
			}
			if (data[12] != 0) {
				*ret_error = msg_new("logo '%s' is an interlaced PNG: save it "
						     "without interlacing",
					path);
				pf_buf_release(&idat);
				return -EINVAL;
			}
			have_ihdr = 1;
		} else if (memcmp(type, "PLTE", 4) == 0) {
			plte = data;
			plte_len = len;
		} else if (memcmp(type, "IDAT", 4) == 0)
			pf_buf_put(&idat, data, len);
		else if (memcmp(type, "IEND", 4) == 0)
			have_end = 1;
		pos += 12 + (size_t)len;
	}
	if (!have_ihdr || !have_end || idat.len == 0 || w == 0 || h == 0 || w > 10000 ||
	    h > 10000) {
		*ret_error = msg_new("logo '%s' is not a complete PNG image", path);
		pf_buf_release(&idat);
		return -EINVAL;
	}
	switch (ctype) {
	case 0:
		colors = 1;
		break;
	case 2:
		colors = 3;
		break;
	case 3:
		colors = 1;
		if (!plte || plte_len % 3 || plte_len == 0 || plte_len > 768) {
			*ret_error = msg_new("logo '%s': a palette PNG without a valid palette", path);
			pf_buf_release(&idat);
			return -EINVAL;
		}
		break;
	default:
		*ret_error = msg_new("logo '%s' has an alpha channel (transparency), which paraf "
				     "cannot draw yet: save it as a PNG without alpha (RGB, grey or "
				     "palette)",
			path);
		pf_buf_release(&idat);
		return -ENOTSUP;
	}
	if (depth != 1 && depth != 2 && depth != 4 && depth != 8 && depth != 16) {
		*ret_error = msg_new("logo '%s': bit depth %u is not a PNG's", path, depth);
		pf_buf_release(&idat);
		return -EINVAL;
	}
	b = &im.dict_and_stream;
	pf_buf_init(b);
	pdf_printf(b, "<< /Type /XObject /Subtype /Image /Width %u /Height %u /ColorSpace ", w, h);
	if (ctype == 3) {
		pdf_printf(b, "[/Indexed /DeviceRGB %u ", plte_len / 3 - 1);
		pdf_hexstring_put(b, plte, plte_len);
		pdf_puts(b, "]");
	} else
		pdf_puts(b, ctype == 2 ? "/DeviceRGB" : "/DeviceGray");
	pdf_printf(b, " /BitsPerComponent %u /Filter /FlateDecode /DecodeParms << /Predictor 15 "
		      "/Colors %u /BitsPerComponent %u /Columns %u >> /Length %zu >>\nstream\n",
		depth, colors, depth, w, idat.len);
	pf_buf_put(b, idat.data, idat.len);
	pdf_puts(b, "\nendstream");
	pf_buf_release(&idat);
	r = pf_buf_status(b);
	if (r < 0) {
		pdf_image_release(&im);
		return r;
	}
	im.width = w;
	im.height = h;
	*ret = im;
	return 0;
}
