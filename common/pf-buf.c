/*
 * Byte buffers for the agent <-> token helper messages. Lengths are big-endian u32.
 */
#include "pf-buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void
pf_buf_init(struct pf_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
pf_buf_release(struct pf_buf *b)
{
	if (b->data && b->wipe)
		explicit_bzero(b->data, b->cap);
	free(b->data);
	pf_buf_init(b);
}

int
pf_buf_status(const struct pf_buf *b)
{
	return b->error;
}

int
pf_buf_reserve(struct pf_buf *b, size_t n)
{
	size_t cap, max = b->max ? b->max : PF_BUF_MAX;
	uint8_t *d;

	if (b->error)
		return b->error;
	if (n > max || b->len > max - n)
		return (b->error = -EMSGSIZE);
	if (b->len + n <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	if (b->wipe) {
		/* Never leave a copy of a secret behind in freed memory. */
		d = malloc(cap);
		if (!d)
			return (b->error = -ENOMEM);
		if (b->len)
			memcpy(d, b->data, b->len);
		if (b->data)
			explicit_bzero(b->data, b->cap);
		free(b->data);
	} else {
		d = realloc(b->data, cap);
		if (!d)
			return (b->error = -ENOMEM);
	}
	b->data = d;
	b->cap = cap;
	return 0;
}

void
pf_buf_put(struct pf_buf *b, const void *p, size_t n)
{
	if (pf_buf_reserve(b, n) < 0)
		return;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

void
pf_buf_put_u32(struct pf_buf *b, uint32_t v)
{
	uint8_t x[4] = { v >> 24, v >> 16, v >> 8, v };

	pf_buf_put(b, x, sizeof(x));
}

void
pf_buf_put_bytes(struct pf_buf *b, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		b->error = -EMSGSIZE;
		return;
	}
	pf_buf_put_u32(b, (uint32_t)n);
	pf_buf_put(b, p, n);
}

void
pf_buf_put_str(struct pf_buf *b, const char *s)
{
	pf_buf_put_bytes(b, s ? s : "", s ? strlen(s) : 0);
}

void
pf_reader_init(struct pf_reader *r, const void *data, size_t len)
{
	r->p = data;
	r->left = len;
}

int
pf_reader_u32(struct pf_reader *r, uint32_t *ret)
{
	if (r->left < 4)
		return -EBADMSG;
	*ret = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	r->left -= 4;
	return 0;
}

int
pf_reader_bytes(struct pf_reader *r, const uint8_t **ret_p, size_t *ret_n)
{
	struct pf_reader save = *r;
	uint32_t n;

	if (pf_reader_u32(r, &n) < 0)
		return -EBADMSG;
	if (n > r->left) {
		*r = save;
		return -EBADMSG;
	}
	*ret_p = r->p;
	*ret_n = n;
	r->p += n;
	r->left -= n;
	return 0;
}

int
pf_reader_bytes_dup(struct pf_reader *r, uint8_t **ret_p, size_t *ret_n)
{
	const uint8_t *p;
	uint8_t *d;
	size_t n;

	if (pf_reader_bytes(r, &p, &n) < 0)
		return -EBADMSG;
	d = malloc(n + 1);
	if (!d)
		return -ENOMEM;
	memcpy(d, p, n);
	d[n] = 0;
	*ret_p = d;
	*ret_n = n;
	return 0;
}

int
pf_reader_str(struct pf_reader *r, char **ret)
{
	struct pf_reader save = *r;
	const uint8_t *p;
	size_t n;
	char *s;

	if (pf_reader_bytes(r, &p, &n) < 0)
		return -EBADMSG;
	if (memchr(p, 0, n)) {
		*r = save;
		return -EBADMSG;
	}
	s = malloc(n + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, p, n);
	s[n] = 0;
	*ret = s;
	return 0;
}

int
pf_reader_end(const struct pf_reader *r)
{
	return r->left == 0 ? 0 : -EBADMSG;
}
