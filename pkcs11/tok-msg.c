/*
 * The messages between parafd and paraf-token-helper: plain data, bytes in and bytes out.
 * Both sides decode what the other sent as untrusted input: every count is checked against
 * a named cap before anything is allocated for it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pf-util.h"
#include "tok.h"

#define TOK_LIST_MAX 4096 /* tokens or certificates in one list */
#define TOK_DETAIL_MAX 1024 /* an admin reply's detail text */

void
tok_frame_begin(struct pf_buf *b, uint32_t type)
{
	pf_buf_put_u32(b, 0);
	pf_buf_put_u32(b, type);
}

int
tok_frame_end(struct pf_buf *b)
{
	size_t n;

	if (b->error)
		return b->error;
	if (b->len < 8)
		return -EINVAL;
	n = b->len - 4;
	b->data[0] = n >> 24;
	b->data[1] = n >> 16;
	b->data[2] = n >> 8;
	b->data[3] = n;
	return 0;
}

static int
read_all(int fd, void *p, size_t n)
{
	uint8_t *q = p;

	while (n) {
		ssize_t k = read(fd, q, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -EPIPE;
		q += k;
		n -= (size_t)k;
	}
	return 0;
}

int
tok_write_all(int fd, const void *p, size_t n)
{
	const uint8_t *q = p;

	while (n) {
		ssize_t k = write(fd, q, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		q += k;
		n -= (size_t)k;
	}
	return 0;
}

int
tok_frame_read(int fd, struct pf_buf *ret_body, uint32_t *ret_type)
{
	uint8_t hdr[8];
	uint32_t n, type;
	int r;

	r = read_all(fd, hdr, sizeof(hdr));
	if (r < 0)
		return r;
	n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	type = (uint32_t)hdr[4] << 24 | (uint32_t)hdr[5] << 16 | (uint32_t)hdr[6] << 8 | hdr[7];
	if (n < 4 || n > TOK_FRAME_MAX)
		return -EBADMSG;
	n -= 4;
	if (ret_body->data && ret_body->wipe)
		explicit_bzero(ret_body->data, ret_body->len);
	ret_body->len = 0;
	ret_body->error = 0;
	r = pf_buf_reserve(ret_body, n);
	if (r < 0)
		return r;
	r = read_all(fd, ret_body->data, n);
	if (r < 0)
		return r == -EPIPE ? -EBADMSG : r;
	ret_body->len = n;
	*ret_type = type;
	return 0;
}

static void
put_blob(struct pf_buf *b, const struct tok_blob *x)
{
	pf_buf_put_bytes(b, x->p, x->n);
}

static int
get_blob(struct pf_reader *r, struct tok_blob *x)
{
	return pf_reader_bytes_dup(r, &x->p, &x->n);
}

static void
blob_release(struct tok_blob *x)
{
	free(x->p);
	x->p = NULL;
	x->n = 0;
}

/* Reads a count and checks it against cap before the caller allocates for it. */
static int
get_count(struct pf_reader *r, size_t cap, size_t *ret)
{
	uint32_t n;

	if (pf_reader_u32(r, &n) < 0 || n > cap)
		return -EBADMSG;
	*ret = n;
	return 0;
}

void
tok_list_encode(struct pf_buf *b, const struct tok_list *l)
{
	size_t i;

	pf_buf_put_u32(b, l->err);
	pf_buf_put_u32(b, (uint32_t)l->n_tokens);
	for (i = 0; i < l->n_tokens; i++) {
		const struct tok_token *t = &l->tokens[i];
		pf_buf_put_str(b, t->id);
		pf_buf_put_str(b, t->label);
		pf_buf_put_str(b, t->serial);
		pf_buf_put_str(b, t->manufacturer);
		pf_buf_put_str(b, t->model);
		pf_buf_put_str(b, t->module);
		pf_buf_put_str(b, t->slot);
		pf_buf_put_u32(b, t->flags);
	}
	pf_buf_put_u32(b, (uint32_t)l->n_certs);
	for (i = 0; i < l->n_certs; i++) {
		const struct tok_cert *c = &l->certs[i];
		pf_buf_put_str(b, c->token_id);
		pf_buf_put_str(b, c->label);
		put_blob(b, &c->ck_id);
		put_blob(b, &c->der);
	}
}

int
tok_list_decode(const uint8_t *p, size_t n, struct tok_list *ret)
{
	struct tok_list l = {};
	struct pf_reader r;
	size_t i, nt, nc;
	int e = -EBADMSG;

	pf_reader_init(&r, p, n);
	if (pf_reader_u32(&r, &l.err) < 0 || get_count(&r, TOK_LIST_MAX, &nt) < 0)
		goto fail;
	l.tokens = calloc(nt ? nt : 1, sizeof(*l.tokens));
	if (!l.tokens)
		goto nomem;
	for (i = 0; i < nt; i++) {
		struct tok_token *t = &l.tokens[i];
		l.n_tokens++;
		if (pf_reader_str(&r, &t->id) < 0 || pf_reader_str(&r, &t->label) < 0 ||
		    pf_reader_str(&r, &t->serial) < 0 || pf_reader_str(&r, &t->manufacturer) < 0 ||
		    pf_reader_str(&r, &t->model) < 0 || pf_reader_str(&r, &t->module) < 0 ||
		    pf_reader_str(&r, &t->slot) < 0 || pf_reader_u32(&r, &t->flags) < 0)
			goto fail;
	}
	if (get_count(&r, TOK_LIST_MAX, &nc) < 0)
		goto fail;
	l.certs = calloc(nc ? nc : 1, sizeof(*l.certs));
	if (!l.certs)
		goto nomem;
	for (i = 0; i < nc; i++) {
		struct tok_cert *c = &l.certs[i];
		l.n_certs++;
		if (pf_reader_str(&r, &c->token_id) < 0 || pf_reader_str(&r, &c->label) < 0 ||
		    get_blob(&r, &c->ck_id) < 0 || get_blob(&r, &c->der) < 0)
			goto fail;
	}
	if (pf_reader_end(&r) < 0)
		goto fail;
	*ret = l;
	return 0;
nomem:
	e = -ENOMEM;
fail:
	tok_list_release(&l);
	return e;
}

void
tok_token_release(struct tok_token *t)
{
	free(t->id);
	free(t->label);
	free(t->serial);
	free(t->manufacturer);
	free(t->model);
	free(t->module);
	free(t->slot);
}

void
tok_cert_release(struct tok_cert *c)
{
	free(c->token_id);
	free(c->label);
	blob_release(&c->ck_id);
	blob_release(&c->der);
}

void
tok_list_release(struct tok_list *l)
{
	size_t i;

	for (i = 0; i < l->n_tokens; i++)
		tok_token_release(&l->tokens[i]);
	for (i = 0; i < l->n_certs; i++)
		tok_cert_release(&l->certs[i]);
	free(l->tokens);
	free(l->certs);
	memset(l, 0, sizeof(*l));
}

void
tok_watch_req_encode(struct pf_buf *b, uint32_t force)
{
	pf_buf_put_u32(b, force);
}

int
tok_watch_req_decode(const uint8_t *p, size_t n, uint32_t *ret_force)
{
	struct pf_reader r;
	uint32_t force;

	pf_reader_init(&r, p, n);
	if (pf_reader_u32(&r, &force) < 0 || force > 1 || pf_reader_end(&r) < 0)
		return -EBADMSG;
	*ret_force = force;
	return 0;
}

void
tok_watch_reply_encode(struct pf_buf *b, uint32_t changed, const struct tok_list *l)
{
	pf_buf_put_u32(b, changed ? 1 : 0);
	if (changed)
		tok_list_encode(b, l);
}

int
tok_watch_reply_decode(const uint8_t *p, size_t n, uint32_t *ret_changed, struct tok_list *ret)
{
	struct pf_reader r;
	uint32_t changed;

	pf_reader_init(&r, p, n);
	if (pf_reader_u32(&r, &changed) < 0 || changed > 1)
		return -EBADMSG;
	if (!changed) {
		if (pf_reader_end(&r) < 0)
			return -EBADMSG;
		memset(ret, 0, sizeof(*ret));
		*ret_changed = 0;
		return 0;
	}
	if (tok_list_decode(p + 4, n - 4, ret) < 0)
		return -EBADMSG;
	*ret_changed = 1;
	return 0;
}

void
tok_sign_req_encode(struct pf_buf *b, const struct tok_sign_req *r)
{
	size_t i;

	pf_buf_put_str(b, r->token_id);
	put_blob(b, &r->ck_id);
	pf_buf_put_u32(b, r->mech);
	pf_buf_put_u32(b, r->hash);
	pf_buf_put_u32(b, r->pin ? 1 : 0);
	if (r->pin)
		pf_buf_put_bytes(b, r->pin->data, r->pin->len);
	pf_buf_put_u32(b, (uint32_t)r->n_digests);
	for (i = 0; i < r->n_digests; i++)
		put_blob(b, &r->digests[i]);
}

int
tok_sign_req_decode(const uint8_t *p, size_t n, struct tok_sign_req *ret)
{
	struct tok_sign_req q = {};
	struct pf_reader r;
	uint32_t has_pin;
	size_t i, nd;
	int e = -EBADMSG;

	pf_reader_init(&r, p, n);
	if (pf_reader_str(&r, &q.token_id) < 0 || get_blob(&r, &q.ck_id) < 0 ||
	    pf_reader_u32(&r, &q.mech) < 0 || pf_reader_u32(&r, &q.hash) < 0 ||
	    pf_reader_u32(&r, &has_pin) < 0 || has_pin > 1)
		goto fail;
	if (has_pin) {
		const uint8_t *pin;
		size_t pin_len;

		if (pf_reader_bytes(&r, &pin, &pin_len) < 0)
			goto fail;
		e = pf_secret_new(pin, pin_len, &q.pin);
		if (e < 0)
			goto fail;
		e = -EBADMSG;
	}
	if (get_count(&r, TOK_SIGN_MAX, &nd) < 0 || nd == 0)
		goto fail;
	q.digests = calloc(nd, sizeof(*q.digests));
	if (!q.digests) {
		e = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < nd; i++) {
		q.n_digests++;
		if (get_blob(&r, &q.digests[i]) < 0 || q.digests[i].n != tok_hash_len(q.hash))
			goto fail;
	}
	if (pf_reader_end(&r) < 0)
		goto fail;
	*ret = q;
	return 0;
fail:
	tok_sign_req_release(&q);
	return e;
}

void
tok_sign_req_release(struct tok_sign_req *r)
{
	size_t i;

	free(r->token_id);
	blob_release(&r->ck_id);
	r->pin = pf_secret_free(r->pin);
	for (i = 0; i < r->n_digests; i++)
		blob_release(&r->digests[i]);
	free(r->digests);
	memset(r, 0, sizeof(*r));
}

void
tok_sign_reply_encode(struct pf_buf *b, const struct tok_sign_reply *r)
{
	size_t i;

	pf_buf_put_u32(b, r->err);
	pf_buf_put_u32(b, r->ck_rv);
	pf_buf_put_u32(b, r->pin_flags);
	pf_buf_put_u32(b, r->logins);
	pf_buf_put_str(b, r->detail);
	pf_buf_put_u32(b, (uint32_t)r->n_sigs);
	for (i = 0; i < r->n_sigs; i++)
		put_blob(b, &r->sigs[i]);
}

void
tok_sign_part_encode(struct pf_buf *b, size_t first, const struct tok_blob *sigs, size_t n)
{
	pf_buf_put_u32(b, (uint32_t)first);
	pf_buf_put_u32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		put_blob(b, &sigs[i]);
}

int
tok_sign_part_decode(const uint8_t *p, size_t n, size_t *ret_first, struct tok_sign_reply *ret)
{
	struct tok_sign_reply q = {};
	struct pf_reader r;
	uint32_t first;
	size_t i, ns;

	pf_reader_init(&r, p, n);
	if (pf_reader_u32(&r, &first) < 0 || first >= TOK_SIGN_MAX ||
	    get_count(&r, TOK_SIGN_MAX - first, &ns) < 0 || ns == 0)
		return -EBADMSG;
	q.sigs = calloc(ns, sizeof(*q.sigs));
	if (!q.sigs)
		return -ENOMEM;
	for (i = 0; i < ns; i++) {
		q.n_sigs++;
		if (get_blob(&r, &q.sigs[i]) < 0)
			goto fail;
	}
	if (pf_reader_end(&r) < 0)
		goto fail;
	*ret_first = first;
	*ret = q;
	return 0;
fail:
	tok_sign_reply_release(&q);
	return -EBADMSG;
}

int
tok_sign_reply_decode(const uint8_t *p, size_t n, struct tok_sign_reply *ret)
{
	struct tok_sign_reply q = {};
	struct pf_reader r;
	size_t i, ns;

	pf_reader_init(&r, p, n);
	if (pf_reader_u32(&r, &q.err) < 0 || pf_reader_u32(&r, &q.ck_rv) < 0 ||
	    pf_reader_u32(&r, &q.pin_flags) < 0 || pf_reader_u32(&r, &q.logins) < 0 ||
	    pf_reader_str(&r, &q.detail) < 0 || get_count(&r, TOK_SIGN_MAX, &ns) < 0)
		goto fail;
	q.sigs = calloc(ns ? ns : 1, sizeof(*q.sigs));
	if (!q.sigs) {
		tok_sign_reply_release(&q);
		return -ENOMEM;
	}
	for (i = 0; i < ns; i++) {
		q.n_sigs++;
		if (get_blob(&r, &q.sigs[i]) < 0)
			goto fail;
	}
	if (pf_reader_end(&r) < 0 || q.err >= _TOK_ERR_MAX)
		goto fail;
	*ret = q;
	return 0;
fail:
	tok_sign_reply_release(&q);
	return -EBADMSG;
}

void
tok_sign_reply_release(struct tok_sign_reply *r)
{
	size_t i;

	free(r->detail);
	for (i = 0; i < r->n_sigs; i++)
		blob_release(&r->sigs[i]);
	free(r->sigs);
	memset(r, 0, sizeof(*r));
}

/* Provisioning. Each request type carries only its own fields (see tok.h). */

static void
put_secret(struct pf_buf *b, const struct pf_secret *s)
{
	/* Set before the secret is appended: growth from here on wipes the old copy. */
	b->wipe = 1;
	pf_buf_put_bytes(b, s ? s->data : "", s ? s->len : 0);
}

static void
put_opt_secret(struct pf_buf *b, const struct pf_secret *s)
{
	pf_buf_put_u32(b, s ? 1 : 0);
	if (s)
		put_secret(b, s);
}

/* A PIN: never empty (the token must not see one), never over PF_SECRET_MAX. */
static int
get_secret(struct pf_reader *r, struct pf_secret **ret)
{
	const uint8_t *p;
	size_t n;

	int e;

	if (pf_reader_bytes(r, &p, &n) < 0 || n == 0 || n > PF_SECRET_MAX)
		return -EBADMSG;
	e = pf_secret_new(p, n, ret);
	return e == -ENOMEM ? e : e < 0 ? -EBADMSG : 0; /* -EINVAL: a NUL byte */
}

static int
get_opt_secret(struct pf_reader *r, struct pf_secret **ret)
{
	uint32_t has;

	if (pf_reader_u32(r, &has) < 0 || has > 1)
		return -EBADMSG;
	if (!has) {
		*ret = NULL;
		return 0;
	}
	return get_secret(r, ret);
}

/* A string of at most cap bytes, checked before it is copied; printable when text is set
 * (labels reach token fields, JSON and the terminal). */
static int
get_str_capped(struct pf_reader *r, size_t cap, int text, char **ret)
{
	const uint8_t *p;
	size_t n, i;
	char *s;

	if (pf_reader_bytes(r, &p, &n) < 0 || n > cap)
		return -EBADMSG;
	for (i = 0; i < n; i++)
		if (p[i] == 0 || (text && (p[i] < 0x20 || p[i] == 0x7f)))
			return -EBADMSG;
	s = malloc(n + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, p, n);
	s[n] = 0;
	*ret = s;
	return 0;
}

static int
get_token_id(struct pf_reader *r, char **ret)
{
	char *s = NULL;
	int e = get_str_capped(r, TOK_ID_LEN, 0, &s);

	if (e < 0)
		return e;
	if (strlen(s) != TOK_ID_LEN || strspn(s, "0123456789abcdef") != TOK_ID_LEN) {
		free(s);
		return -EBADMSG;
	}
	*ret = s;
	return 0;
}

static int
get_blob_capped(struct pf_reader *r, size_t cap, struct tok_blob *x)
{
	const uint8_t *p;
	size_t n;

	if (pf_reader_bytes(r, &p, &n) < 0 || n == 0 || n > cap)
		return -EBADMSG;
	x->p = malloc(n + 1);
	if (!x->p)
		return -ENOMEM;
	memcpy(x->p, p, n);
	x->p[n] = 0;
	x->n = n;
	return 0;
}

void
tok_admin_req_encode(struct pf_buf *b, const struct tok_admin_req *r)
{
	switch (r->type) {
	case TOK_MSG_INIT_TOKEN:
		pf_buf_put_str(b, r->serial);
		put_secret(b, r->so_pin);
		pf_buf_put_str(b, r->label);
		break;
	case TOK_MSG_INIT_PIN:
		pf_buf_put_str(b, r->token_id);
		put_secret(b, r->so_pin);
		put_secret(b, r->pin);
		break;
	case TOK_MSG_SET_PIN:
		pf_buf_put_str(b, r->token_id);
		put_secret(b, r->pin);
		put_secret(b, r->new_pin);
		break;
	case TOK_MSG_GENERATE:
		pf_buf_put_str(b, r->token_id);
		put_opt_secret(b, r->pin);
		pf_buf_put_u32(b, r->key_kind);
		put_blob(b, &r->ck_id);
		pf_buf_put_str(b, r->label);
		pf_buf_put_u32(b, r->decrypt);
		break;
	case TOK_MSG_PUBKEY:
		pf_buf_put_str(b, r->token_id);
		put_blob(b, &r->ck_id);
		break;
	case TOK_MSG_WRITE_CERT:
		pf_buf_put_str(b, r->token_id);
		put_opt_secret(b, r->pin);
		put_blob(b, &r->ck_id);
		put_blob(b, &r->der);
		pf_buf_put_str(b, r->label);
		break;
	default:
		b->error = -EINVAL; /* not a provisioning request: the frame must not go out */
		break;
	}
}

int
tok_admin_req_decode(uint32_t type, const uint8_t *p, size_t n, struct tok_admin_req *ret)
{
	struct tok_admin_req q = { .type = type };
	struct pf_reader r;
	int e = -EBADMSG;

	pf_reader_init(&r, p, n);
	switch (type) {
	case TOK_MSG_INIT_TOKEN:
		if ((e = get_str_capped(&r, TOK_SERIAL_MAX, 1, &q.serial)) < 0 ||
		    (e = get_secret(&r, &q.so_pin)) < 0 ||
		    (e = get_str_capped(&r, TOK_TOKEN_LABEL_MAX, 1, &q.label)) < 0)
			goto fail;
		e = -EBADMSG;
		if (q.label[0] == 0) /* the new token is found again by its label */
			goto fail;
		break;
	case TOK_MSG_INIT_PIN:
		if ((e = get_token_id(&r, &q.token_id)) < 0 ||
		    (e = get_secret(&r, &q.so_pin)) < 0 || (e = get_secret(&r, &q.pin)) < 0)
			goto fail;
		break;
	case TOK_MSG_SET_PIN:
		if ((e = get_token_id(&r, &q.token_id)) < 0 || (e = get_secret(&r, &q.pin)) < 0 ||
		    (e = get_secret(&r, &q.new_pin)) < 0)
			goto fail;
		break;
	case TOK_MSG_GENERATE:
		if ((e = get_token_id(&r, &q.token_id)) < 0 || (e = get_opt_secret(&r, &q.pin)) < 0)
			goto fail;
		e = -EBADMSG;
		if (pf_reader_u32(&r, &q.key_kind) < 0 ||
		    (q.key_kind != TOK_KEY_RSA_3072 && q.key_kind != TOK_KEY_EC_P256))
			goto fail;
		if ((e = get_blob_capped(&r, TOK_CKA_ID_MAX, &q.ck_id)) < 0 ||
		    (e = get_str_capped(&r, TOK_CKA_LABEL_MAX, 1, &q.label)) < 0)
			goto fail;
		e = -EBADMSG;
		if (pf_reader_u32(&r, &q.decrypt) < 0 || q.decrypt > 1)
			goto fail;
		break;
	case TOK_MSG_PUBKEY:
		if ((e = get_token_id(&r, &q.token_id)) < 0 ||
		    (e = get_blob_capped(&r, TOK_CKA_ID_MAX, &q.ck_id)) < 0)
			goto fail;
		break;
	case TOK_MSG_WRITE_CERT:
		if ((e = get_token_id(&r, &q.token_id)) < 0 ||
		    (e = get_opt_secret(&r, &q.pin)) < 0 ||
		    (e = get_blob_capped(&r, TOK_CKA_ID_MAX, &q.ck_id)) < 0 ||
		    (e = get_blob_capped(&r, TOK_CERT_MAX, &q.der)) < 0 ||
		    (e = get_str_capped(&r, TOK_CKA_LABEL_MAX, 1, &q.label)) < 0)
			goto fail;
		break;
	default:
		goto fail;
	}
	e = -EBADMSG;
	if (pf_reader_end(&r) < 0)
		goto fail;
	*ret = q;
	return 0;
fail:
	tok_admin_req_release(&q);
	return e;
}

void
tok_admin_req_release(struct tok_admin_req *r)
{
	free(r->token_id);
	free(r->serial);
	free(r->label);
	r->so_pin = pf_secret_free(r->so_pin);
	r->pin = pf_secret_free(r->pin);
	r->new_pin = pf_secret_free(r->new_pin);
	blob_release(&r->ck_id);
	blob_release(&r->der);
	memset(r, 0, sizeof(*r));
}

void
tok_admin_reply_encode(struct pf_buf *b, const struct tok_admin_reply *r)
{
	pf_buf_put_u32(b, r->err);
	pf_buf_put_u32(b, r->ck_rv);
	pf_buf_put_u32(b, r->pin_flags);
	pf_buf_put_str(b, r->detail);
	pf_buf_put_str(b, r->token_id);
	pf_buf_put_str(b, r->serial);
	put_blob(b, &r->spki);
	pf_buf_put_u32(b, r->min_pin);
	pf_buf_put_u32(b, r->max_pin);
	pf_buf_put_u32(b, r->exists);
}

int
tok_admin_reply_decode(const uint8_t *p, size_t n, struct tok_admin_reply *ret)
{
	struct tok_admin_reply q = {};
	struct pf_reader r;
	const uint8_t *spki;
	size_t spki_len;
	int e = -EBADMSG;

	pf_reader_init(&r, p, n);
	if (pf_reader_u32(&r, &q.err) < 0 || q.err >= _TOK_ERR_MAX ||
	    pf_reader_u32(&r, &q.ck_rv) < 0 || pf_reader_u32(&r, &q.pin_flags) < 0)
		goto fail;
	/* detail reaches the operator's terminal: text only */
	if ((e = get_str_capped(&r, TOK_DETAIL_MAX, 1, &q.detail)) < 0 ||
	    (e = get_str_capped(&r, TOK_ID_LEN, 1, &q.token_id)) < 0 ||
	    (e = get_str_capped(&r, TOK_SERIAL_MAX, 1, &q.serial)) < 0)
		goto fail;
	e = -EBADMSG;
	if (pf_reader_bytes(&r, &spki, &spki_len) < 0 || spki_len > TOK_SPKI_MAX)
		goto fail;
	if (spki_len) {
		q.spki.p = malloc(spki_len + 1);
		if (!q.spki.p) {
			e = -ENOMEM;
			goto fail;
		}
		memcpy(q.spki.p, spki, spki_len);
		q.spki.p[spki_len] = 0;
		q.spki.n = spki_len;
	}
	if (pf_reader_u32(&r, &q.min_pin) < 0 || pf_reader_u32(&r, &q.max_pin) < 0 ||
	    pf_reader_u32(&r, &q.exists) < 0 || q.exists > 1 || pf_reader_end(&r) < 0)
		goto fail;
	*ret = q;
	return 0;
fail:
	tok_admin_reply_release(&q);
	return e;
}

void
tok_admin_reply_release(struct tok_admin_reply *r)
{
	free(r->detail);
	free(r->token_id);
	free(r->serial);
	blob_release(&r->spki);
	memset(r, 0, sizeof(*r));
}
