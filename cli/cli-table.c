/*
 * Plain aligned tables for people: a header row, then one row per item, columns padded to
 * their widest cell (counted in characters, not bytes, so Indonesian and other non-ASCII names
 * line up). Cells are sanitized on the way in: they come from tokens and certificates.
 */
#include "cli.h"

#define TABLE_GAP 2

struct cli_table {
	size_t ncols;
	size_t nrows; /* including the header */
	size_t cap;
	char **cells; /* nrows * ncols */
	size_t *width;
};

struct cli_table *
cli_table_free(struct cli_table *t)
{
	size_t i;

	if (!t)
		return NULL;
	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->width);
	free(t);
	return NULL;
}

int
cli_table_new(size_t ncols, const char *const *headers, struct cli_table **ret)
{
	_cleanup_(cli_table_freep) struct cli_table *t = NULL;
	int r;

	if (ncols == 0)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->ncols = ncols;
	t->width = calloc(ncols, sizeof(*t->width));
	if (!t->width)
		return -ENOMEM;
	r = cli_table_add(t, headers);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(t);
	return 0;
}

int
cli_table_add(struct cli_table *t, const char *const *cells)
{
	size_t i, base;

	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		char **d;

		if (cap > SIZE_MAX / sizeof(*d) / t->ncols)
			return -ENOMEM;
		d = realloc(t->cells, cap * t->ncols * sizeof(*d));
		if (!d)
			return -ENOMEM;
		t->cells = d;
		t->cap = cap;
	}
	base = t->nrows * t->ncols;
	for (i = 0; i < t->ncols; i++) {
		char *s = cli_sanitize(cells[i] ? cells[i] : "-");
		size_t w;

		if (!s) {
			while (i-- > 0)
				free(t->cells[base + i]);
			return -ENOMEM;
		}
		t->cells[base + i] = s;
		w = cli_text_width(s);
		if (w > t->width[i])
			t->width[i] = w;
	}
	t->nrows++;
	return 0;
}

int
cli_table_print(const struct cli_table *t, FILE *f)
{
	size_t r, i;

	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			const char *s = t->cells[r * t->ncols + i];
			int pad = (int)(t->width[i] - cli_text_width(s) + TABLE_GAP);

			fputs(s, f);
			if (i + 1 < t->ncols)
				fprintf(f, "%*s", pad, "");
		}
		fputc('\n', f);
	}
	return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}
