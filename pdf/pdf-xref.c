/*
 * The update's cross-reference section: a classic table (ISO 32000 7.5.4) after a source
 * whose last section is a table, or a cross-reference stream (7.5.8) after one whose last
 * section is a stream, so that readers which know only one kind (or PDF 1.4 readers, for
 * tables) read the signed file as they read the original.
 */
#include "pdf-write.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int
entry_cmp(const void *a, const void *b)
{
	const struct pdf_xref_entry *x = a, *y = b;

	return x->num < y->num ? -1 : x->num > y->num;
}

/* A sorted copy without duplicates. */
static int
entries_sorted(const struct pdf_xref_entry *e, size_t n, struct pdf_xref_entry **ret)
{
	struct pdf_xref_entry *s;
	size_t i;

	if (n == 0 || n > PDF_ANNOTS_MAX)
		return -EINVAL;
	s = malloc(n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	memcpy(s, e, n * sizeof(*s));
	qsort(s, n, sizeof(*s), entry_cmp);
	for (i = 1; i < n; i++)
		if (s[i].num == s[i - 1].num) {
			free(s);
			return -EINVAL;
		}
	*ret = s;
	return 0;
}

int
pdf_xref_table_put(struct pf_buf *b, const struct pdf_xref_entry *e, size_t n)
{
	struct pdf_xref_entry *s;
	size_t i, j;
	int r;

	r = entries_sorted(e, n, &s);
	if (r < 0)
		return r;
	pdf_puts(b, "xref\n");
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && s[j].num == s[j - 1].num + 1; j++)
			;
		pdf_printf(b, "%u %zu\n", s[i].num, j - i);
		for (size_t k = i; k < j; k++) {
			if (s[k].offset > 9999999999ull) {
				free(s);
				return -EOVERFLOW;
			}
			/* Exactly 20 bytes each, the end of line being "\r\n". */
			pdf_printf(b, "%010llu %05u n\r\n", (unsigned long long)s[k].offset,
				(unsigned)s[k].gen);
		}
	}
	free(s);
	return pf_buf_status(b);
}

int
pdf_xref_stream_put(struct pf_buf *b, const struct pdf_xref_entry *e, size_t n,
	uint32_t self_num, uint64_t self_offset, const char *trailer_keys)
{
	struct pdf_xref_entry *all, *s;
	uint64_t max = self_offset;
	unsigned w = 1;
	size_t i, j;
	int r;

	all = malloc((n + 1) * sizeof(*all));
	if (!all)
		return -ENOMEM;
	memcpy(all, e, n * sizeof(*all));
	all[n] = (struct pdf_xref_entry){ .num = self_num, .gen = 0, .offset = self_offset };
	r = entries_sorted(all, n + 1, &s);
	free(all);
	if (r < 0)
		return r;
	n++;
	for (i = 0; i < n; i++)
		if (s[i].offset > max)
			max = s[i].offset;
	while (w < 8 && (max >> (8 * w)) != 0)
		w++;
	pdf_printf(b, "%u 0 obj\n<< /Type /XRef /W [1 %u 2] /Index [", self_num, w);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && s[j].num == s[j - 1].num + 1; j++)
			;
		pdf_printf(b, "%s%u %zu", i ? " " : "", s[i].num, j - i);
	}
	pdf_printf(b, "] %s /Length %zu >>\nstream\n", trailer_keys, n * (3 + (size_t)w));
	for (i = 0; i < n; i++) {
		uint8_t row[11];

		row[0] = 1; /* in use, at a byte offset */
		for (unsigned k = 0; k < w; k++)
			row[1 + k] = (uint8_t)(s[i].offset >> (8 * (w - 1 - k)));
		row[1 + w] = (uint8_t)(s[i].gen >> 8);
		row[2 + w] = (uint8_t)s[i].gen;
		pf_buf_put(b, row, 3 + w);
	}
	pdf_printf(b, "\nendstream\nendobj\nstartxref\n%llu\n%%%%EOF\n",
		(unsigned long long)self_offset);
	free(s);
	return pf_buf_status(b);
}
