/*
 * paraf-token-helper: the only process that loads PKCS#11 modules. parafd (or the CLI's
 * provisioning commands, through tok-link.c) starts it with a socketpair on fd 3 and sends
 * plain-data requests (list tokens, sign digests, provision a token); the helper answers each
 * in turn and exits when the other end closes. A crash or hang here costs one request, never
 * the agent.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "pf-util.h"
#include "tok.h"

#define HELPER_MODULES_MAX 64
#define HELPER_REFRESH_MIN_MS 1000 /* a context is re-made at most this often */

/* The modules and their context. Some modules (SoftHSM) fix their slot list at C_Initialize
 * and never show a token that arrives later; so when an enumeration finds no token at all,
 * the context is made afresh (C_Finalize, C_Initialize) and the slots enumerated again, at
 * most once per HELPER_REFRESH_MIN_MS. With no token present nothing is lost by it. */
struct helper {
	char **modules;
	size_t n_modules;
	struct tok_ctx *ctx;
	uint64_t ctx_ms; /* when ctx was made, CLOCK_MONOTONIC */
};

static uint64_t
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void
helper_ctx_make(struct helper *h)
{
	h->ctx = tok_ctx_free(h->ctx);
	if (tok_ctx_new(h->modules, h->n_modules, &h->ctx) < 0)
		h->ctx = NULL;
	h->ctx_ms = now_ms();
}

/* After an enumeration that found nothing: may the context be re-made for another look? */
static bool
helper_refresh_empty(struct helper *h, const struct tok_list *l)
{
	if (!h->ctx || l->err != TOK_OK || l->n_tokens || now_ms() - h->ctx_ms < HELPER_REFRESH_MIN_MS)
		return false;
	helper_ctx_make(h);
	return h->ctx != NULL;
}

static int
send_frame(int fd, struct pf_buf *b)
{
	int r = tok_frame_end(b);

	if (r < 0)
		return r;
	return tok_write_all(fd, b->data, b->len);
}

static int
handle_list(int fd, struct helper *h)
{
	struct tok_list l = {};
	struct pf_buf out;
	int r;

	pf_buf_init(&out);
	if (!h->ctx)
		l.err = TOK_ERR_MODULE;
	else if (tok_ctx_list(h->ctx, &l) < 0)
		l.err = TOK_ERR_INTERNAL;
	if (helper_refresh_empty(h, &l)) {
		tok_list_release(&l);
		if (tok_ctx_list(h->ctx, &l) < 0)
			l.err = TOK_ERR_INTERNAL;
	}
	tok_frame_begin(&out, TOK_MSG_LIST_REPLY);
	tok_list_encode(&out, &l);
	r = send_frame(fd, &out);
	tok_list_release(&l);
	pf_buf_release(&out);
	return r;
}

/* TOK_MSG_SIGN_STREAM: each part goes out as soon as the token has made it. */
static int
send_part(size_t first, const struct tok_blob *sigs, size_t n, void *data)
{
	struct pf_buf out;
	int r;

	pf_buf_init(&out);
	tok_frame_begin(&out, TOK_MSG_SIGN_PART);
	tok_sign_part_encode(&out, first, sigs, n);
	r = send_frame(*(int *)data, &out);
	pf_buf_release(&out);
	return r;
}

static int
handle_sign(int fd, struct tok_ctx *ctx, const struct pf_buf *in, bool stream)
{
	struct tok_sign_req req = {};
	struct tok_sign_reply rep = {};
	struct pf_buf out;
	int r;

	r = tok_sign_req_decode(in->data, in->len, &req);
	if (r < 0) {
		rep.err = TOK_ERR_INTERNAL;
		rep.detail = strdup("malformed sign request");
	} else if (!ctx) {
		rep.err = TOK_ERR_MODULE;
		rep.detail = strdup("no PKCS#11 module could be loaded");
	} else {
		tok_ctx_sign(ctx, &req, stream ? send_part : NULL, &fd, &rep);
	}
	tok_sign_req_release(&req); /* wipes the PIN */
	pf_buf_init(&out);
	tok_frame_begin(&out, TOK_MSG_SIGN_REPLY);
	tok_sign_reply_encode(&out, &rep);
	r = send_frame(fd, &out);
	tok_sign_reply_release(&rep);
	pf_buf_release(&out);
	return r;
}

/* The light look of the hotplug watch (TOK_MSG_WATCH): no sessions, no certificates. */
static int
handle_watch(int fd, struct helper *h, const struct pf_buf *in)
{
	struct tok_list l = {};
	struct pf_buf out;
	uint32_t force = 0;
	int changed = 1, r;

	if (tok_watch_req_decode(in->data, in->len, &force) < 0)
		return -EBADMSG;
	if (!h->ctx)
		l.err = TOK_ERR_MODULE;
	else if (tok_ctx_watch(h->ctx, (int)force, &changed, &l) < 0)
		l.err = TOK_ERR_INTERNAL, changed = 1;
	if (changed && helper_refresh_empty(h, &l)) {
		/* a fresh context's first look enumerates whatever its slot events say */
		tok_list_release(&l);
		if (tok_ctx_watch(h->ctx, 1, &changed, &l) < 0)
			l.err = TOK_ERR_INTERNAL, changed = 1;
	}
	pf_buf_init(&out);
	tok_frame_begin(&out, TOK_MSG_WATCH_REPLY);
	tok_watch_reply_encode(&out, (uint32_t)changed, &l);
	r = send_frame(fd, &out);
	tok_list_release(&l);
	pf_buf_release(&out);
	return r;
}

static int
is_admin_type(uint32_t type)
{
	switch (type) {
	case TOK_MSG_INIT_TOKEN:
	case TOK_MSG_INIT_PIN:
	case TOK_MSG_SET_PIN:
	case TOK_MSG_GENERATE:
	case TOK_MSG_PUBKEY:
	case TOK_MSG_WRITE_CERT:
		return 1;
	default:
		return 0;
	}
}

/* Provisioning: one request, one TOK_MSG_ADMIN_REPLY. */
static int
handle_admin(int fd, struct tok_ctx *ctx, uint32_t type, const struct pf_buf *in)
{
	struct tok_admin_req req = {};
	struct tok_admin_reply rep = {};
	struct pf_buf out;
	int r;

	r = tok_admin_req_decode(type, in->data, in->len, &req);
	if (r < 0) {
		rep.err = TOK_ERR_INTERNAL;
		rep.detail = strdup("malformed provisioning request");
	} else if (!ctx) {
		rep.err = TOK_ERR_MODULE;
		rep.detail = strdup("no PKCS#11 module could be loaded");
	} else {
		tok_ctx_admin(ctx, &req, &rep);
	}
	tok_admin_req_release(&req); /* wipes the SO PIN, the PIN and the new PIN */
	pf_buf_init(&out);
	tok_frame_begin(&out, TOK_MSG_ADMIN_REPLY);
	tok_admin_reply_encode(&out, &rep);
	r = send_frame(fd, &out);
	tok_admin_reply_release(&rep);
	pf_buf_release(&out);
	return r;
}

int
main(int argc, char **argv)
{
	char *modules[HELPER_MODULES_MAX];
	size_t n_modules = 0;
	struct helper h = { .modules = modules };
	struct pf_buf in;
	struct rlimit no_core = { 0, 0 };
	int fd = -1, i, r;

	/* The PIN passes through here: no ptrace, no core file (R2). */
	prctl(PR_SET_DUMPABLE, 0);
	setrlimit(RLIMIT_CORE, &no_core);
	signal(SIGPIPE, SIG_IGN);

	for (i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--fd=", 5) == 0) {
			fd = atoi(argv[i] + 5);
		} else if (streq(argv[i], "--module") && i + 1 < argc) {
			if (n_modules == HELPER_MODULES_MAX) {
				fprintf(stderr, "paraf-token-helper: too many modules\n");
				return 2;
			}
			modules[n_modules++] = argv[++i];
		} else {
			fprintf(stderr, "paraf-token-helper: unknown argument '%s' (started by parafd "
					"or paraf only)\n", argv[i]);
			return 2;
		}
	}
	if (fd < 0) {
		fprintf(stderr,
			"paraf-token-helper: no --fd given (started by parafd or paraf only)\n");
		return 2;
	}

	h.n_modules = n_modules;
	helper_ctx_make(&h);
	if (!h.ctx) {
		fprintf(stderr, "paraf-token-helper: no PKCS#11 module could be loaded%s\n",
			n_modules ? " from the given paths" : " from the p11-kit registry");
	}

	pf_buf_init(&in);
	in.wipe = 1; /* sign and provisioning requests carry PINs */
	for (;;) {
		uint32_t type;

		r = tok_frame_read(fd, &in, &type);
		if (r < 0)
			break; /* parafd went away, or spoke nonsense: either way, stop */
		/* A module that failed to initialise (a fault, a reader service not up yet) is
		 * tried again for every request, so clearing the fault needs no new helper. */
		if (!h.ctx)
			helper_ctx_make(&h);
		if (type == TOK_MSG_LIST)
			r = handle_list(fd, &h);
		else if (type == TOK_MSG_SIGN || type == TOK_MSG_SIGN_STREAM)
			r = handle_sign(fd, h.ctx, &in, type == TOK_MSG_SIGN_STREAM);
		else if (type == TOK_MSG_WATCH)
			r = handle_watch(fd, &h, &in);
		else if (is_admin_type(type))
			r = handle_admin(fd, h.ctx, type, &in);
		else
			r = -EBADMSG;
		if (in.data) /* NULL after an empty frame: explicit_bzero's argument is nonnull */
			explicit_bzero(in.data, in.len);
		if (r < 0)
			break;
	}
	pf_buf_release(&in);
	tok_ctx_free(h.ctx);
	return r == -EPIPE ? 0 : 1;
}
