/*
 * The method table and its handlers. Each method names its parameter table; the server parses
 * params with it before the handler runs, so handlers work on plain, checked structs. Token
 * work goes to the helper and continues in a callback; a handler answers exactly once, with
 * ag_call_reply() or ag_call_fail().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ag-server.h"
#include "paraf-config.h"
#include "pf-codec.h"
#include "pf-util.h"
#include "pol.h"

static unsigned
op_timeout_ms(const struct ag_server *srv, size_t n_docs)
{
	/* helper_timeout for the operation, and a second more for every further document: a
	 * smartcard takes 0.1-1 s per signature. */
	return srv->cfg.helper_timeout * 1000u + (unsigned)(n_docs ? n_docs - 1 : 0) * 1000u;
}

static void
fail(struct ag_call *call, enum ag_err e, const char *field, const char *msg)
{
	struct ag_error err = {};

	ag_error_set(&err, e, field, "%s", msg);
	ag_call_fail(call, &err);
}

static void
fail_helper(struct ag_call *call, int r)
{
	struct ag_error err = {};

	ag_error_set(&err, AG_ERR_TOKEN_HELPER_FAILED, NULL,
		"the token helper %s; it has been replaced, try again",
		r == -ETIMEDOUT ? "did not answer in time" : "failed");
	ag_call_fail(call, &err);
}

/* Asks the helper for tokens and certificates; cb gets the decoded list, or fails the call. */
typedef void (*list_cb)(struct ag_call *call, struct tok_list *l);

struct list_req {
	struct ag_call *call;
	list_cb cb;
};

static void
list_done(int r, uint32_t type, const uint8_t *body, size_t len, void *data)
{
	struct list_req *q = data;
	struct ag_call *call = q->call;
	list_cb cb = q->cb;
	struct tok_list l = {};

	free(q);
	if (r < 0) {
		fail_helper(call, r);
		return;
	}
	if (type != TOK_MSG_LIST_REPLY || tok_list_decode(body, len, &l) < 0) {
		fail(call, AG_ERR_INTERNAL, NULL, "the token helper sent a malformed answer");
		return;
	}
	if (l.err != TOK_OK) {
		fail(call, ag_error_from_tok(l.err), NULL, tok_err_to_string(l.err));
		tok_list_release(&l);
		return;
	}
	cb(call, &l);
	tok_list_release(&l);
}

static void
list_start(struct ag_call *call, list_cb cb)
{
	struct list_req *q = calloc(1, sizeof(*q));
	struct pf_buf frame;

	if (!q) {
		fail(call, AG_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	q->call = call;
	q->cb = cb;
	pf_buf_init(&frame);
	tok_frame_begin(&frame, TOK_MSG_LIST);
	if (tok_frame_end(&frame) < 0 ||
	    ag_helper_submit(call->srv->helper, &frame, op_timeout_ms(call->srv, 0), list_done, q) < 0) {
		pf_buf_release(&frame);
		free(q);
		fail(call, AG_ERR_INTERNAL, NULL, "out of memory");
	}
}

/* --- agent.status ----------------------------------------------------------------------- */

static json_object *
helper_json(struct ag_server *srv)
{
	json_object *h = json_object_new_object();
	pid_t pid = ag_helper_pid(srv->helper);

	json_object_object_add(h, "running", json_object_new_boolean(pid > 0));
	json_object_object_add(h, "pid", pid > 0 ? json_object_new_int(pid) : NULL);
	json_object_object_add(h, "restarts", json_object_new_int((int)ag_helper_restarts(srv->helper)));
	return h;
}

static void
status_listed(struct ag_call *call, struct tok_list *l)
{
	struct ag_server *srv = call->srv;
	json_object *o = json_object_new_object(), *ids = json_object_new_array();
	uint64_t now = 0;

	sd_event_now(srv->event, CLOCK_MONOTONIC, &now);
	for (size_t i = 0; l && i < l->n_tokens; i++)
		json_object_array_add(ids, json_object_new_string(l->tokens[i].id));
	json_object_object_add(o, "version", json_object_new_string(PARAF_VERSION));
	json_object_object_add(o, "uptime_seconds",
		json_object_new_int64((int64_t)((now - srv->start_usec) / 1000000)));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "tokens_present",
		l ? json_object_new_int((int)l->n_tokens) : NULL);
	json_object_object_add(o, "tokens", ids);
	json_object_object_add(o, "helper", helper_json(srv));
	json_object_object_add(o, "clients", json_object_new_int((int)srv->n_clients));
	json_object_object_add(o, "pin_parameter", json_object_new_boolean(srv->cfg.allow_pin_parameter));
	ag_call_reply(call, o);
}

static void
status_done(int r, uint32_t type, const uint8_t *body, size_t len, void *data)
{
	struct ag_call *call = data;
	struct tok_list l = {};

	/* The status answers even when no token can be reached: that is what it is for. */
	if (r < 0 || type != TOK_MSG_LIST_REPLY || tok_list_decode(body, len, &l) < 0 ||
	    l.err != TOK_OK) {
		tok_list_release(&l);
		status_listed(call, NULL);
		return;
	}
	status_listed(call, &l);
	tok_list_release(&l);
}

static void
agent_status(struct ag_call *call)
{
	struct pf_buf frame;

	pf_buf_init(&frame);
	tok_frame_begin(&frame, TOK_MSG_LIST);
	if (tok_frame_end(&frame) < 0 ||
	    ag_helper_submit(call->srv->helper, &frame, op_timeout_ms(call->srv, 0), status_done,
		    call) < 0) {
		pf_buf_release(&frame);
		status_listed(call, NULL);
	}
}

/* --- tokens.list ------------------------------------------------------------------------ */

static json_object *
pin_status_json(uint32_t f)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "initialized", json_object_new_boolean(f & TOK_PIN_INITIALIZED));
	json_object_object_add(o, "count_low", json_object_new_boolean(f & TOK_PIN_COUNT_LOW));
	json_object_object_add(o, "final_try", json_object_new_boolean(f & TOK_PIN_FINAL_TRY));
	json_object_object_add(o, "locked", json_object_new_boolean(f & TOK_PIN_LOCKED));
	json_object_object_add(o, "to_be_changed",
		json_object_new_boolean(f & TOK_PIN_TO_BE_CHANGED));
	return o;
}

static void
tokens_listed(struct ag_call *call, struct tok_list *l)
{
	json_object *a = json_object_new_array(), *o = json_object_new_object();

	for (size_t i = 0; i < l->n_tokens; i++) {
		const struct tok_token *t = &l->tokens[i];
		json_object *j = json_object_new_object();

		json_object_object_add(j, "id", json_object_new_string(t->id));
		json_object_object_add(j, "label", json_object_new_string(t->label));
		json_object_object_add(j, "serial", json_object_new_string(t->serial));
		json_object_object_add(j, "manufacturer", json_object_new_string(t->manufacturer));
		json_object_object_add(j, "model", json_object_new_string(t->model));
		json_object_object_add(j, "present", json_object_new_boolean(1));
		json_object_object_add(j, "module", json_object_new_string(t->module));
		json_object_object_add(j, "pin_status", pin_status_json(t->flags));
		json_object_array_add(a, j);
	}
	json_object_object_add(o, "tokens", a);
	ag_call_reply(call, o);
}

static void
tokens_list(struct ag_call *call)
{
	list_start(call, tokens_listed);
}

/* --- certificates.list ------------------------------------------------------------------ */

static void
certs_listed(struct ag_call *call, struct tok_list *l)
{
	json_object *a = json_object_new_array(), *o = json_object_new_object();

	for (size_t i = 0; i < l->n_certs; i++) {
		const struct tok_cert *c = &l->certs[i];
		const unsigned char *p = c->der.p;
		X509 *x = d2i_X509(NULL, &p, (long)c->der.n);
		char *id, *b64, *key_id;
		json_object *j;

		if (!x)
			continue; /* not X.509 DER: nothing anyone could sign with */
		j = ag_cert_describe(x);
		id = ag_cert_id(c->der.p, c->der.n);
		b64 = pf_base64_encode(c->der.p, c->der.n);
		key_id = pf_hex_encode(c->ck_id.p, c->ck_id.n);
		json_object_object_add(j, "id", id ? json_object_new_string(id) : NULL);
		json_object_object_add(j, "token", json_object_new_string(c->token_id));
		json_object_object_add(j, "key_id", key_id ? json_object_new_string(key_id) : NULL);
		json_object_object_add(j, "label", json_object_new_string(c->label ? c->label : ""));
		json_object_object_add(j, "certificate", b64 ? json_object_new_string(b64) : NULL);
		json_object_array_add(a, j);
		free(id);
		free(b64);
		free(key_id);
		X509_free(x);
	}
	json_object_object_add(o, "certificates", a);
	ag_call_reply(call, o);
}

static void
certificates_list(struct ag_call *call)
{
	list_start(call, certs_listed);
}

/* --- sign ------------------------------------------------------------------------------- */

struct sign_doc {
	const char *name;
	struct tok_blob digest;
};

struct sign_params {
	const char *certificate;
	int usage;            /* enum pol_usage */
	int format;           /* 1 cms, 2 raw */
	int digest_algorithm; /* enum tok_hash */
	int padding;          /* 0 absent, 1 pkcs1, 2 pss */
	struct sign_doc *documents;
	size_t n_documents;
	struct pf_secret *pin;
};

enum { FORMAT_CMS = 1, FORMAT_RAW = 2 };
enum { PADDING_PKCS1 = 1, PADDING_PSS = 2 };

static const char *const format_values[] = { "cms", "raw", NULL };
static const char *const digest_values[] = { "sha256", "sha384", "sha512", NULL };
static const char *const padding_values[] = { "pkcs1", "pss", NULL };

static const struct ag_field sign_doc_fields[] = {
	{ "name", AG_F_STRING, AG_F_REQUIRED | AG_F_DISPLAYED, offsetof(struct sign_doc, name), 0,
		1, AG_NAME_MAX, .description = "the document's name, shown to the signer" },
	{ "digest", AG_F_BASE64, AG_F_REQUIRED, offsetof(struct sign_doc, digest), 0, 32,
		TOK_DIGEST_MAX, .description = "the document's digest with digest_algorithm" },
	{ NULL },
};

static const struct ag_field sign_fields[] = {
	{ "certificate", AG_F_HEX, AG_F_REQUIRED, offsetof(struct sign_params, certificate), 0, 64,
		64, .description = "a certificate id from certificates.list" },
	{ "usage", AG_F_ENUM, AG_F_REQUIRED, offsetof(struct sign_params, usage),
		.values = pol_usage_names, .description = "the usage type of the signature (R6)" },
	{ "format", AG_F_ENUM, AG_F_REQUIRED, offsetof(struct sign_params, format),
		.values = format_values, .description = "cms: detached CMS SignedData; raw: the bare signature" },
	{ "digest_algorithm", AG_F_ENUM, AG_F_REQUIRED,
		offsetof(struct sign_params, digest_algorithm), .values = digest_values,
		.description = "the algorithm of every document digest" },
	{ "documents", AG_F_OBJECTS, AG_F_REQUIRED, offsetof(struct sign_params, documents),
		offsetof(struct sign_params, n_documents), 1, AG_DOCUMENTS_MAX, .sub = sign_doc_fields,
		.sub_size = sizeof(struct sign_doc), .max_err = AG_ERR_TOO_MANY_DOCUMENTS,
		.description = "the documents one PIN authorises, and nothing after them" },
	{ "padding", AG_F_ENUM, 0, offsetof(struct sign_params, padding), .values = padding_values,
		.description = "RSA keys only: pkcs1 (default) or pss" },
	{ "pin", AG_F_SECRET, 0, offsetof(struct sign_params, pin), 0, 1, PF_SECRET_MAX,
		.description = "the token PIN, only while the agent's allow_pin_parameter is on" },
	{ NULL },
};

struct sign_state {
	struct ag_call *call;
	X509 *cert;
	char *cert_id;
	enum tok_mech mech;
	const EVP_MD *md;
	struct ag_cms **cms; /* one per document, format cms */
};

static void
sign_state_free(struct sign_state *st)
{
	struct sign_params *p = st->call ? st->call->params : NULL;

	if (st->cms && p)
		for (size_t i = 0; i < p->n_documents; i++)
			ag_cms_free(st->cms[i]);
	free(st->cms);
	X509_free(st->cert);
	free(st->cert_id);
	free(st);
}

static void
sign_fail(struct sign_state *st, struct ag_error *err)
{
	struct ag_call *call = st->call;

	sign_state_free(st);
	ag_call_fail(call, err);
}

static void
sign_fail_msg(struct sign_state *st, enum ag_err e, const char *field, const char *msg)
{
	struct ag_error err = {};

	ag_error_set(&err, e, field, "%s", msg);
	sign_fail(st, &err);
}

static void
sign_signed(int r, uint32_t type, const uint8_t *body, size_t len, void *data)
{
	struct sign_state *st = data;
	struct ag_call *call = st->call;
	struct sign_params *p = call->params;
	struct tok_sign_reply rep = {};
	struct ag_error err = {};
	json_object *sigs, *res;

	if (r < 0) {
		ag_error_set(&err, AG_ERR_TOKEN_HELPER_FAILED, NULL,
			"the token helper %s; it has been replaced, try again",
			r == -ETIMEDOUT ? "did not answer in time" : "failed");
		sign_fail(st, &err);
		return;
	}
	if (type != TOK_MSG_SIGN_REPLY || tok_sign_reply_decode(body, len, &rep) < 0) {
		sign_fail_msg(st, AG_ERR_INTERNAL, NULL, "the token helper sent a malformed answer");
		return;
	}
	if (rep.err != TOK_OK) {
		ag_error_set(&err, ag_error_from_tok(rep.err), NULL, "%s%s%s",
			tok_err_to_string(rep.err), rep.detail && *rep.detail ? ": " : "",
			rep.detail ? rep.detail : "");
		err.extra = json_object_new_object();
		if (rep.ck_rv)
			json_object_object_add(err.extra, "ck_rv", json_object_new_int64(rep.ck_rv));
		if (rep.err == TOK_ERR_PIN_INCORRECT || rep.err == TOK_ERR_PIN_LOCKED)
			json_object_object_add(err.extra, "pin_status", pin_status_json(rep.pin_flags));
		if (rep.err == TOK_ERR_PIN_INCORRECT && (rep.pin_flags & TOK_PIN_FINAL_TRY))
			snprintf(err.message, sizeof(err.message),
				"PIN incorrect: the next wrong PIN locks the token");
		if (rep.err == TOK_ERR_TOKEN_REMOVED)
			ag_helper_recycle(call->srv->helper); /* a fresh context for the next try */
		if (rep.err == TOK_ERR_PIN_INCORRECT || rep.err == TOK_ERR_PIN_INVALID)
			snprintf(err.field, sizeof(err.field), "pin");
		tok_sign_reply_release(&rep);
		sign_fail(st, &err);
		return;
	}
	if (rep.n_sigs != p->n_documents) {
		tok_sign_reply_release(&rep);
		sign_fail_msg(st, AG_ERR_INTERNAL, NULL, "the token helper returned too few signatures");
		return;
	}
	sigs = json_object_new_array();
	for (size_t i = 0; i < rep.n_sigs; i++) {
		json_object *j = json_object_new_object();
		uint8_t *der = NULL;
		size_t der_len = 0;
		char *b64;

		if (p->format == FORMAT_CMS)
			r = ag_cms_finish(st->cms[i], rep.sigs[i].p, rep.sigs[i].n, &der, &der_len);
		else if (st->mech == TOK_MECH_ECDSA)
			r = ag_ecdsa_sig_to_der(rep.sigs[i].p, rep.sigs[i].n, &der, &der_len);
		else
			r = 0;
		b64 = r < 0 ? NULL : der ? pf_base64_encode(der, der_len)
				       : pf_base64_encode(rep.sigs[i].p, rep.sigs[i].n);
		free(der);
		if (!b64) {
			json_object_put(j);
			json_object_put(sigs);
			tok_sign_reply_release(&rep);
			sign_fail_msg(st, AG_ERR_INTERNAL, NULL, "cannot assemble the signature");
			return;
		}
		json_object_object_add(j, "name", json_object_new_string(p->documents[i].name));
		json_object_object_add(j, p->format == FORMAT_CMS ? "cms" : "signature",
			json_object_new_string(b64));
		free(b64);
		json_object_array_add(sigs, j);
	}
	res = json_object_new_object();
	json_object_object_add(res, "certificate", json_object_new_string(st->cert_id));
	json_object_object_add(res, "signatures", sigs);
	tok_sign_reply_release(&rep);
	sign_state_free(st);
	ag_call_reply(call, res);
}

static const EVP_MD *
hash_md(int h)
{
	switch (h) {
	case TOK_HASH_SHA256:
		return EVP_sha256();
	case TOK_HASH_SHA384:
		return EVP_sha384();
	case TOK_HASH_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

static void
sign_listed(struct ag_call *call, struct tok_list *l)
{
	struct sign_params *p = call->params;
	struct sign_state *st = calloc(1, sizeof(*st));
	const struct tok_cert *tc = NULL;
	struct tok_sign_req req = {};
	struct pf_buf frame;
	EVP_PKEY *pub;
	time_t now = time(NULL);
	size_t i;
	int r;

	if (!st) {
		fail(call, AG_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	st->call = call;
	st->md = hash_md(p->digest_algorithm);
	for (i = 0; i < l->n_certs && !tc; i++) {
		char *id = ag_cert_id(l->certs[i].der.p, l->certs[i].der.n);
		if (id && streq(id, p->certificate))
			tc = &l->certs[i];
		free(id);
	}
	if (!tc) {
		sign_fail_msg(st, AG_ERR_UNKNOWN_CERTIFICATE, "certificate",
			"no present token holds a certificate with this id");
		return;
	}
	{
		const unsigned char *q = tc->der.p;
		st->cert = d2i_X509(NULL, &q, (long)tc->der.n);
	}
	st->cert_id = strdup(p->certificate);
	pub = st->cert ? X509_get0_pubkey(st->cert) : NULL;
	if (!pub || !st->cert_id) {
		sign_fail_msg(st, AG_ERR_UNSUPPORTED_ALGORITHM, "certificate",
			"the certificate's public key cannot be read");
		return;
	}
	if (EVP_PKEY_is_a(pub, "EC")) {
		if (p->padding) {
			sign_fail_msg(st, AG_ERR_UNSUPPORTED_ALGORITHM, "padding",
				"'padding' applies to RSA keys only; this certificate has an EC key");
			return;
		}
		st->mech = TOK_MECH_ECDSA;
	} else if (EVP_PKEY_is_a(pub, "RSA-PSS")) {
		if (p->padding == PADDING_PKCS1) {
			sign_fail_msg(st, AG_ERR_UNSUPPORTED_ALGORITHM, "padding",
				"this certificate's key is restricted to RSA-PSS");
			return;
		}
		st->mech = TOK_MECH_RSA_PSS;
	} else if (EVP_PKEY_is_a(pub, "RSA")) {
		st->mech = p->padding == PADDING_PSS ? TOK_MECH_RSA_PSS : TOK_MECH_RSA_PKCS;
	} else {
		sign_fail_msg(st, AG_ERR_UNSUPPORTED_ALGORITHM, "certificate",
			"only RSA and EC keys are supported");
		return;
	}

	req.token_id = tc->token_id;
	req.ck_id = tc->ck_id;
	req.mech = st->mech;
	req.hash = (uint32_t)p->digest_algorithm;
	req.pin = p->pin;
	req.n_digests = p->n_documents;
	req.digests = calloc(p->n_documents, sizeof(*req.digests));
	if (p->format == FORMAT_CMS)
		st->cms = calloc(p->n_documents, sizeof(*st->cms));
	if (!req.digests || (p->format == FORMAT_CMS && !st->cms)) {
		free(req.digests);
		sign_fail_msg(st, AG_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	for (i = 0; i < p->n_documents; i++) {
		if (p->format == FORMAT_RAW) {
			req.digests[i] = p->documents[i].digest;
			continue;
		}
		req.digests[i].p = malloc(EVP_MAX_MD_SIZE);
		if (!req.digests[i].p) {
			r = -ENOMEM;
			break;
		}
		r = ag_cms_new(st->cert, st->md, p->padding == PADDING_PSS ? AG_PAD_PSS : AG_PAD_PKCS1,
			p->documents[i].digest.p, p->documents[i].digest.n, now, &st->cms[i],
			req.digests[i].p, &req.digests[i].n);
		if (r < 0)
			break;
	}
	pf_buf_init(&frame);
	frame.wipe = 1; /* it holds the PIN */
	tok_frame_begin(&frame, TOK_MSG_SIGN);
	if (i == p->n_documents)
		tok_sign_req_encode(&frame, &req);
	if (p->format == FORMAT_CMS)
		for (size_t k = 0; k < p->n_documents; k++)
			free(req.digests[k].p);
	free(req.digests);
	/* The PIN has been copied into the frame; this request needs it no more. */
	p->pin = pf_secret_free(p->pin);
	if (i != p->n_documents) {
		pf_buf_release(&frame);
		sign_fail_msg(st, AG_ERR_INTERNAL, NULL, "cannot build the CMS structure");
		return;
	}
	if (tok_frame_end(&frame) < 0) {
		pf_buf_release(&frame);
		sign_fail_msg(st, AG_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	if (ag_helper_submit(call->srv->helper, &frame, op_timeout_ms(call->srv, p->n_documents),
		    sign_signed, st) < 0)
		sign_fail_msg(st, AG_ERR_INTERNAL, NULL, "out of memory");
}

static void
sign(struct ag_call *call)
{
	struct sign_params *p = call->params;
	size_t want = tok_hash_len((uint32_t)p->digest_algorithm);

	if (p->pin && !call->srv->cfg.allow_pin_parameter) {
		fail(call, AG_ERR_PIN_PARAMETER_REFUSED, "pin",
			"this agent does not accept a PIN from clients (allow_pin_parameter is off)");
		return;
	}
	for (size_t i = 0; i < p->n_documents; i++) {
		if (p->documents[i].digest.n != want) {
			struct ag_error err = {};
			char field[64];

			snprintf(field, sizeof(field), "documents[%zu].digest", i);
			ag_error_set(&err, AG_ERR_INVALID_PARAMS, field,
				"'%s' must be %zu bytes for %s, got %zu", field, want,
				tok_hash_name((uint32_t)p->digest_algorithm), p->documents[i].digest.n);
			ag_call_fail(call, &err);
			return;
		}
	}
	/* A fresh list every time: the token in the slot may not be the one seen last. */
	list_start(call, sign_listed);
}

/* --- rpc.discover ----------------------------------------------------------------------- */

static void
rpc_discover(struct ag_call *call)
{
	ag_call_reply(call, ag_discover());
}

/* --- the table -------------------------------------------------------------------------- */

static const enum ag_err no_errors[] = { _AG_ERR_MAX };
static const enum ag_err list_errors[] = { AG_ERR_TOKEN_ERROR, AG_ERR_TOKEN_HELPER_FAILED,
	_AG_ERR_MAX };
static const enum ag_err sign_errors[] = { AG_ERR_TOO_MANY_DOCUMENTS, AG_ERR_UNKNOWN_CERTIFICATE,
	AG_ERR_TOKEN_NOT_PRESENT, AG_ERR_KEY_NOT_FOUND, AG_ERR_KEY_EXTRACTABLE, AG_ERR_PIN_REQUIRED,
	AG_ERR_PIN_PARAMETER_REFUSED, AG_ERR_PIN_INCORRECT, AG_ERR_PIN_LOCKED, AG_ERR_PIN_INVALID,
	AG_ERR_UNSUPPORTED_ALGORITHM, AG_ERR_TOKEN_REMOVED, AG_ERR_TOKEN_ERROR,
	AG_ERR_TOKEN_HELPER_FAILED, _AG_ERR_MAX };

const struct ag_method ag_methods[] = {
	{ "rpc.discover", NULL, 0, "this API as an OpenRPC document",
		"the OpenRPC document", no_errors, rpc_discover },
	{ "agent.status", NULL, 0, "the agent's version, uptime and tokens",
		"{version, uptime_seconds, pid, tokens_present, tokens, helper, clients, pin_parameter}",
		no_errors, agent_status },
	{ "tokens.list", NULL, 0, "the tokens present in any slot of any module",
		"{tokens: [{id, label, serial, manufacturer, model, present, module, pin_status}]}",
		list_errors, tokens_list },
	{ "certificates.list", NULL, 0, "the X.509 certificates on present tokens",
		"{certificates: [{id, token, key_id, label, subject, issuer, serial, not_before, not_after, key, "
		"key_usage, extended_key_usage, certificate}]}",
		list_errors, certificates_list },
	{ "sign", sign_fields, sizeof(struct sign_params),
		"signs the listed document digests with a certificate's key, one PIN for exactly "
		"these documents",
		"{certificate, signatures: [{name, cms} or {name, signature}]}, in the order given",
		sign_errors, sign },
};
const size_t ag_n_methods = ARRAY_SIZE(ag_methods);

const struct ag_method *
ag_method_find(const char *name)
{
	for (size_t i = 0; i < ag_n_methods; i++)
		if (streq(ag_methods[i].name, name))
			return &ag_methods[i];
	return NULL;
}
