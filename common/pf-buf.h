/*
 * A growable byte buffer and a bounds-checked reader over one, for the plain-data messages
 * between parafd and the token helper (in the spirit of OpenSSH's sshbuf). Writers never fail
 * silently: a failed allocation makes the buffer sticky-failed and pf_buf_status() reports it.
 * Readers return -EBADMSG on any truncated or malformed field and never read past the end.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* No single message between agent and helper may exceed this: checked before allocating. */
#define PF_BUF_MAX (8u * 1024 * 1024)

struct pf_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int error; /* 0 or a negative errno that stuck */
	int wipe;  /* wipe contents on growth and release (holds a secret) */
	size_t max; /* this buffer's cap; 0: PF_BUF_MAX */
};

void pf_buf_init(struct pf_buf *b);
void pf_buf_release(struct pf_buf *b); /* wipes if b->wipe, frees */
int pf_buf_status(const struct pf_buf *b);
/* Makes room for n more bytes after len; a negative errno sticks. */
int pf_buf_reserve(struct pf_buf *b, size_t n);
void pf_buf_put(struct pf_buf *b, const void *p, size_t n);
void pf_buf_put_u32(struct pf_buf *b, uint32_t v);
void pf_buf_put_bytes(struct pf_buf *b, const void *p, size_t n); /* u32 length, then bytes */
void pf_buf_put_str(struct pf_buf *b, const char *s);              /* NULL is sent as "" */

struct pf_reader {
	const uint8_t *p;
	size_t left;
};

void pf_reader_init(struct pf_reader *r, const void *data, size_t len);
int pf_reader_u32(struct pf_reader *r, uint32_t *ret);
/* Points into the buffer; the bytes stay owned by it. */
int pf_reader_bytes(struct pf_reader *r, const uint8_t **ret_p, size_t *ret_n);
/* A newly allocated NUL-terminated copy; refuses embedded NUL bytes. */
int pf_reader_str(struct pf_reader *r, char **ret);
/* Duplicates bytes into newly allocated memory (one extra NUL byte, not counted). */
int pf_reader_bytes_dup(struct pf_reader *r, uint8_t **ret_p, size_t *ret_n);
/* 0 when everything was consumed, -EBADMSG when bytes remain. */
int pf_reader_end(const struct pf_reader *r);
