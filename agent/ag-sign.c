/*
 * The sign method: the only way to a private-key operation. In order:
 *
 *   list the tokens afresh -> find the certificate -> read the policy directory afresh ->
 *   gather the facts (chain, CRLs, peer, session) -> pol_decide() -> the PIN (the trusted
 *   dialog, or for the policy's listed types the request or a root-only credential) ->
 *   the token helper signs, sending the signatures in parts as the token makes them -> each
 *   part's CMS assembled and its answer text written while the token makes the next -> the
 *   audit record stored -> answer.
 *
 * Every request that reaches a decision writes exactly one audit record, allow or deny, and
 * a signature is answered only after that record is stored (ag_audit_commit(), R13).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/printbuf.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ag-audit.h"
#include "ag-methods.h"
#include "ag-pinentry.h"
#include "ag-policy.h"
#include "ag-server.h"
#include "ag-session.h"
#include "ag-state.h"
#include "pf-codec.h"
#include "pf-util.h"
#include "pol.h"

#define AG_PATH_PARAM_MAX 255
#define AG_DIALOG_DOCS_SHOWN 8     /* documents listed by name in the dialog; the rest counted */
#define AG_PIN_DELAY_MAX_SEC 60    /* the longest wait after repeated wrong PINs */
#define AG_DEFAULT_PINENTRY "/usr/bin/pinentry"

_Static_assert(AG_DOCUMENTS_MAX <= TOK_SIGN_MAX, "a sign request's documents fit one helper message");
_Static_assert(AG_DOCUMENTS_MAX == POL_BATCH_MAX, "one request may carry what one PIN may sign");

enum { FORMAT_CMS = 1, FORMAT_RAW = 2 };
enum { PADDING_PKCS1 = 1, PADDING_PSS = 2 };

static const char *const format_values[] = { "cms", "raw", NULL };
static const char *const digest_values[] = { "sha256", "sha384", "sha512", NULL };
static const char *const padding_values[] = { "pkcs1", "pss", NULL };
static const char *const profile_values[] = { "cades", "pades", NULL };
enum { PROFILE_CADES = 1, PROFILE_PADES = 2 };

static const struct ag_field sign_doc_fields[] = {
	{ "name", AG_F_STRING, AG_F_REQUIRED | AG_F_DISPLAYED, offsetof(struct sign_doc, name), 0,
		1, AG_NAME_MAX, .description = "the document's name, shown to the signer" },
	{ "digest", AG_F_BASE64, AG_F_REQUIRED, offsetof(struct sign_doc, digest), 0, 32,
		TOK_DIGEST_MAX, .description = "the document's digest with digest_algorithm" },
	{ NULL },
};

#define LOCATION(n, what)                                                                   \
	{ #n, AG_F_STRING, AG_F_DISPLAYED, offsetof(struct sign_params, n), 0, 1,           \
		AG_PATH_PARAM_MAX, .values = NULL, .description = what }

const struct ag_field ag_sign_fields[] = {
	{ "certificate", AG_F_HEX, AG_F_REQUIRED, offsetof(struct sign_params, certificate), 0, 64,
		64, .description = "a certificate id from certificates.list" },
	{ "usage", AG_F_ENUM, AG_F_REQUIRED, offsetof(struct sign_params, usage),
		.values = pol_usage_names, .description = "the usage type of the signature (R6)" },
	{ "format", AG_F_ENUM, AG_F_REQUIRED, offsetof(struct sign_params, format),
		.values = format_values,
		.description = "cms: detached CMS SignedData; raw: the bare signature" },
	{ "digest_algorithm", AG_F_ENUM, AG_F_REQUIRED,
		offsetof(struct sign_params, digest_algorithm), .values = digest_values,
		.description = "the algorithm of every document digest" },
	{ "documents", AG_F_OBJECTS, AG_F_REQUIRED, offsetof(struct sign_params, documents),
		offsetof(struct sign_params, n_documents), 1, AG_DOCUMENTS_MAX,
		.sub = sign_doc_fields, .sub_size = sizeof(struct sign_doc),
		.max_err = AG_ERR_TOO_MANY_DOCUMENTS,
		.description = "the documents one PIN authorises, and nothing after them" },
	{ "padding", AG_F_ENUM, 0, offsetof(struct sign_params, padding), .values = padding_values,
		.description = "RSA keys only: pkcs1 (default) or pss" },
	{ "profile", AG_F_ENUM, 0, offsetof(struct sign_params, profile), .values = profile_values,
		.description = "format cms only: cades (default; with signingTime) or pades (no "
			       "signingTime: the PDF's /M carries the time)" },
	{ "pin", AG_F_SECRET, 0, offsetof(struct sign_params, pin), 0, 1, PF_SECRET_MAX,
		.description = "the PIN, only for certificate types the policy lists (default: system)" },
	LOCATION(tty, "the caller's terminal for a text PIN dialog, e.g. /dev/pts/3"),
	LOCATION(tty_type, "the terminal's TERM"),
	LOCATION(display, "the caller's X11 display for the PIN dialog, e.g. :0"),
	LOCATION(xauthority, "the caller's X authority file"),
	LOCATION(wayland_display, "the caller's Wayland display, e.g. wayland-0"),
	{ NULL },
};

struct sign_state {
	struct ag_call *call;
	struct sign_params *p;
	char *token_id;
	struct tok_blob ck_id;
	uint32_t token_flags;
	X509 *cert;
	struct pol_cert_facts facts;
	bool have_facts;
	struct ag_policy *policy;
	struct pol_verdict verdict;
	bool decided;
	enum tok_mech mech;
	const EVP_MD *md;
	struct ag_cms_batch *cms; /* format cms: the documents' structures */
	struct pf_buf *answer;    /* the signatures' JSON text, as the parts came (render_one) */
	size_t n_done;            /* signatures in it */
	bool assembly_failed;
	struct ag_audit_early early; /* the record's continuations, stored while the token signs */
	bool have_early;
	sd_event_source *prestore; /* runs audit_prestore once the helper has the request */
	struct pf_secret *pin;
	struct ag_pinentry *dialog;
	sd_event_source *delay;
	char *exe;
};

static void
state_free(struct sign_state *st)
{
	ag_cms_batch_free(st->cms);
	st->prestore = sd_event_source_disable_unref(st->prestore);
	if (st->have_early)
		ag_audit_early_release(&st->early);
	if (st->answer) {
		pf_buf_release(st->answer);
		free(st->answer);
	}
	free(st->token_id);
	free(st->ck_id.p);
	X509_free(st->cert);
	if (st->have_facts)
		pol_cert_facts_release(&st->facts);
	ag_policy_free(st->policy);
	st->pin = pf_secret_free(st->pin);
	st->dialog = ag_pinentry_cancel(st->dialog);
	st->delay = sd_event_source_disable_unref(st->delay);
	free(st->exe);
	free(st);
}

/* This request's record, without its verdict (docs: room for its documents). */
static void
record_fill(struct sign_state *st, struct ag_audit_record *r, struct ag_audit_doc *docs)
{
	struct ag_call *call = st->call;
	struct sign_params *p = st->p;

	*r = (struct ag_audit_record){
		.method = "sign",
		.peer = call->peer,
		.exe = st->exe,
		.certificate = p->certificate,
		.certificate_type = st->decided ? pol_type_to_string(st->verdict.type) : NULL,
		.owner = st->decided && st->verdict.owner ? st->verdict.owner->account : NULL,
		.usage = pol_usage_to_string(p->usage),
		.digest_algorithm = tok_hash_name((uint32_t)p->digest_algorithm),
		.docs = docs,
		.n_docs = p->n_documents,
		.early = st->have_early ? &st->early : NULL,
	};
	for (size_t i = 0; i < p->n_documents; i++)
		docs[i] = (struct ag_audit_doc){ p->documents[i].name, p->documents[i].digest.p,
			p->documents[i].digest.n };
}

/* The one record of this request's decision (STYLE 14). 0 once stored as the audit mode
 * demands (R13); -ENOLINK when not: then the record's copy in the journal says
 * `audit-unavailable`, and nothing may be released on it. */
static int
audit(struct sign_state *st, bool allow, const char *rule, const char *reason, const char *message,
	const char *outcome)
{
	struct ag_audit_doc docs[AG_DOCUMENTS_MAX];
	struct ag_audit_record r;

	record_fill(st, &r, docs);
	r.allow = allow;
	r.rule = rule;
	r.reason = reason;
	r.message = message;
	r.outcome = outcome;
	return ag_audit_commit(st->call->srv->log_stderr, &r,
		outcome ? ag_error_info(AG_ERR_AUDIT_UNAVAILABLE)->reason : NULL);
}

/* While the token signs: a long record's continuation records are stored meanwhile, so the
 * answer waits only for the record itself (ag_audit_prestore); the record, with the verdict,
 * is still stored before anything is released (R13). A deferred event: it runs on the next
 * turn of the loop, after the helper has the request, and never after the request ended
 * (state_free drops it), even one that failed inside ag_helper_submit_parts. */
static int
audit_prestore(sd_event_source *s, void *data)
{
	struct sign_state *st = data;
	struct ag_audit_doc docs[AG_DOCUMENTS_MAX];
	struct ag_audit_record r;

	st->prestore = sd_event_source_disable_unref(st->prestore);
	record_fill(st, &r, docs);
	r.early = NULL;
	r.allow = st->verdict.allow;
	r.rule = st->verdict.rule;
	r.reason = st->verdict.reason;
	r.message = st->verdict.message;
	ag_audit_prestore(&r, &st->early);
	st->have_early = true;
	return 0;
}

/* Fails the call; before a decision the refusal is itself the decision and is recorded as a
 * deny, after an allow it is the outcome of the allowed request. */
static void
finish_error(struct sign_state *st, struct ag_error *err)
{
	struct ag_call *call = st->call;
	const struct ag_error_info *info = ag_error_info(err->err);

	/* A refusal that enforces a rule after the policy said yes (the dialog's location, R1; a
	 * key that could have left the token, R3) is a deny in its own right; other failures
	 * (a wrong PIN, a token error) are the outcome of an allowed request. */
	if (st->decided && st->verdict.allow && !(err->rule ? err->rule : info->rule))
		(void)audit(st, true, st->verdict.rule, st->verdict.reason, st->verdict.message,
			info->reason);
	else
		(void)audit(st, false, err->rule ? err->rule : info->rule, info->reason, err->message,
			NULL);
	call->abandon = NULL;
	state_free(st);
	ag_call_fail(call, err);
}

static void
finish_msg(struct sign_state *st, enum ag_err e, const char *field, const char *msg)
{
	struct ag_error err = {};

	ag_error_set(&err, e, field, "%s", msg);
	finish_error(st, &err);
}

static struct ag_pin_failure *
pin_failure(struct ag_server *srv, const char *cert_id, bool create)
{
	struct ag_pin_failure *oldest = &srv->pin_failures[0];

	for (size_t i = 0; i < AG_PIN_FAILURES_MAX; i++) {
		struct ag_pin_failure *f = &srv->pin_failures[i];
		if (streq(f->cert_id, cert_id))
			return f;
		if (f->last_usec < oldest->last_usec)
			oldest = f;
	}
	if (!create)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	memcpy(oldest->cert_id, cert_id, 65);
	return oldest;
}

/* Appends document i's entry of the answer, {"name":...,"cms" or "signature":"<base64>"}, to
 * st->answer: assembled as the signature arrives from the token, while the token makes the next
 * ones, and spliced into the answer unchanged (answer_serialize). */
static int
render_one(struct sign_state *st, size_t i, const struct tok_blob *sig)
{
	struct sign_params *p = st->p;
	struct pf_buf *b = st->answer;
	_cleanup_free_ uint8_t *der = NULL;
	const uint8_t *bytes = sig->p;
	size_t n = sig->n, der_len = 0;
	json_object *name;
	const char *q;
	int r = 0;

	if (p->format == FORMAT_CMS)
		r = ag_cms_batch_finish(st->cms, p->documents[i].digest.p, p->documents[i].digest.n,
			sig->p, sig->n, &der, &der_len);
	else if (st->mech == TOK_MECH_ECDSA)
		r = ag_ecdsa_sig_to_der(sig->p, sig->n, &der, &der_len);
	if (r < 0)
		return r;
	if (der) {
		bytes = der;
		n = der_len;
	}
	/* json-c writes the name, whatever characters it has; base64 needs no escaping. */
	name = json_object_new_string(p->documents[i].name);
	q = name ? json_object_to_json_string_ext(name,
			   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
		 : NULL;
	if (!q) {
		json_object_put(name);
		return -ENOMEM;
	}
	if (i > 0)
		pf_buf_put(b, ",", 1);
	pf_buf_put(b, "{\"name\":", 8);
	pf_buf_put(b, q, strlen(q));
	json_object_put(name);
	if (p->format == FORMAT_CMS)
		pf_buf_put(b, ",\"cms\":\"", 8);
	else
		pf_buf_put(b, ",\"signature\":\"", 14);
	if (pf_buf_reserve(b, (n + 2) / 3 * 4 + 2) < 0)
		return pf_buf_status(b);
	b->len += (size_t)EVP_EncodeBlock(b->data + b->len, bytes, (int)n);
	pf_buf_put(b, "\"}", 2);
	return pf_buf_status(b);
}

/* Signatures in order, each document's once: anything else is not our helper. A document
 * that cannot be assembled fails the request at its end (nothing is answered in part). */
static int
take_signatures(struct sign_state *st, size_t first, const struct tok_blob *sigs, size_t n)
{
	if (first != st->n_done || n > st->p->n_documents - st->n_done)
		return -EBADMSG;
	for (size_t k = 0; k < n; k++)
		if (!st->assembly_failed && render_one(st, st->n_done + k, &sigs[k]) < 0)
			st->assembly_failed = true;
	st->n_done += n;
	return 0;
}

static int
sign_part(const uint8_t *body, size_t len, void *data)
{
	struct sign_state *st = data;
	struct tok_sign_reply part = {};
	size_t first;
	int r;

	r = tok_sign_part_decode(body, len, &first, &part);
	if (r < 0)
		return r;
	r = take_signatures(st, first, part.sigs, part.n_sigs);
	tok_sign_reply_release(&part);
	return r;
}

/* The "signatures" member of the answer: the text render_one wrote. */
static int
answer_serialize(json_object *o, struct printbuf *pb, int level, int flags)
{
	const struct pf_buf *b = json_object_get_userdata(o);

	if (printbuf_memappend(pb, "[", 1) < 0 ||
	    printbuf_memappend(pb, (const char *)b->data, (int)b->len) < 0 ||
	    printbuf_memappend(pb, "]", 1) < 0)
		return -1;
	return 0;
}

static void
answer_free(json_object *o, void *userdata)
{
	pf_buf_release(userdata);
	free(userdata);
}

static void
sign_signed(int r, uint32_t type, const uint8_t *body, size_t len, void *data)
{
	struct sign_state *st = data;
	struct ag_call *call = st->call;
	struct sign_params *p = st->p;
	struct tok_sign_reply rep = {};
	struct ag_error err = {};
	struct ag_pin_failure *pf;
	json_object *sigs, *res;
	uint64_t now = 0;

	if (r < 0) {
		ag_error_set(&err, AG_ERR_TOKEN_HELPER_FAILED, NULL,
			"the token helper %s; it has been replaced, try again",
			r == -ETIMEDOUT ? "did not answer in time" : "failed");
		finish_error(st, &err);
		return;
	}
	if (type != TOK_MSG_SIGN_REPLY || tok_sign_reply_decode(body, len, &rep) < 0) {
		finish_msg(st, AG_ERR_INTERNAL, NULL, "the token helper sent a malformed answer");
		return;
	}
	sd_event_now(call->srv->event, CLOCK_MONOTONIC, &now);
	if (rep.err == TOK_ERR_PIN_INCORRECT) {
		/* Remembered per certificate: repeated failures slow down (R2). */
		pf = pin_failure(call->srv, p->certificate, true);
		pf->failures++;
		pf->last_usec = now;
	}
	if (rep.err != TOK_OK) {
		/* Whatever parts came before are void: nothing of this request is answered. */
		ag_error_set(&err, ag_error_from_tok(rep.err), NULL, "%s%s%s",
			tok_err_to_string(rep.err), rep.detail && *rep.detail ? ": " : "",
			rep.detail ? rep.detail : "");
		err.extra = json_object_new_object();
		if (rep.ck_rv)
			json_object_object_add(err.extra, "ck_rv", json_object_new_int64(rep.ck_rv));
		if (rep.err == TOK_ERR_PIN_INCORRECT || rep.err == TOK_ERR_PIN_LOCKED)
			json_object_object_add(err.extra, "pin_status", ag_pin_status_json(rep.pin_flags));
		if (rep.err == TOK_ERR_PIN_INCORRECT)
			snprintf(err.message, sizeof(err.message), "%s",
				rep.pin_flags & TOK_PIN_LOCKED ? "PIN incorrect: the token's PIN is now locked"
				: rep.pin_flags & TOK_PIN_FINAL_TRY
					? "PIN incorrect: the next wrong PIN locks the token"
				: rep.pin_flags & TOK_PIN_COUNT_LOW
					? "PIN incorrect: few tries are left before the token locks"
					: "PIN incorrect");
		if (rep.err == TOK_ERR_TOKEN_REMOVED)
			ag_helper_recycle(call->srv->helper); /* a fresh context for the next try */
		if ((rep.err == TOK_ERR_PIN_INCORRECT || rep.err == TOK_ERR_PIN_INVALID) && p->pin)
			snprintf(err.field, sizeof(err.field), "pin");
		tok_sign_reply_release(&rep);
		finish_error(st, &err);
		return;
	}
	pf = pin_failure(call->srv, p->certificate, false);
	if (pf)
		memset(pf, 0, sizeof(*pf));
	r = take_signatures(st, st->n_done, rep.sigs, rep.n_sigs);
	tok_sign_reply_release(&rep);
	if (r < 0 || st->n_done != p->n_documents) {
		finish_msg(st, AG_ERR_INTERNAL, NULL,
			r < 0 ? "the token helper returned too many signatures"
			      : "the token helper returned too few signatures");
		return;
	}
	if (st->assembly_failed) {
		finish_msg(st, AG_ERR_INTERNAL,
			pf_buf_status(st->answer) == -EMSGSIZE ? "documents" : NULL,
			pf_buf_status(st->answer) == -EMSGSIZE
				? "the signatures would make an answer over the agent's output limit; "
				  "sign fewer documents a request"
				: "cannot assemble the signature");
		return;
	}
	sigs = json_object_new_array();
	res = json_object_new_object();
	if (!sigs || !res) {
		json_object_put(sigs);
		json_object_put(res);
		finish_msg(st, AG_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	json_object_set_serializer(sigs, answer_serialize, TAKE_PTR(st->answer), answer_free);
	json_object_object_add(res, "certificate", json_object_new_string(p->certificate));
	json_object_object_add(res, "signatures", sigs);
	/* R13: the signatures leave only once the record of this decision is stored (fail
	 * closed): acknowledged by paraf-auditd, or spooled where the policy allows it. */
	if (audit(st, true, st->verdict.rule, st->verdict.reason, st->verdict.message,
		    "signed") < 0) {
		json_object_put(res);
		ag_error_set(&err, AG_ERR_AUDIT_UNAVAILABLE, NULL,
			"the audit service did not store the record of this signature, so the "
			"signature is withheld (R13); the audit service at '%s' must be running",
			ag_audit_socket_path());
		call->abandon = NULL;
		state_free(st);
		ag_call_fail(call, &err);
		return;
	}
	call->abandon = NULL;
	ag_call_reply(call, res);
	state_free(st); /* after the answer: nothing in it is needed for that */
}

/* Builds the CMS structures (or takes the raw digests) and sends them with the PIN. */
static void
sign_submit(struct sign_state *st)
{
	struct ag_call *call = st->call;
	struct sign_params *p = st->p;
	struct tok_sign_req req = {};
	struct pf_buf frame;
	time_t now = time(NULL);
	size_t i;
	int r = 0;

	call->abandon = NULL; /* the token is working: nothing left to stop */
	req.token_id = st->token_id;
	req.ck_id = st->ck_id;
	req.mech = st->mech;
	req.hash = (uint32_t)p->digest_algorithm;
	req.pin = st->pin;
	req.n_digests = p->n_documents;
	req.digests = calloc(p->n_documents, sizeof(*req.digests));
	st->answer = calloc(1, sizeof(*st->answer));
	if (st->answer) {
		pf_buf_init(st->answer);
		st->answer->max = AG_OUTPUT_MAX;
	}
	if (!req.digests || !st->answer) {
		free(req.digests);
		finish_msg(st, AG_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	/* One structure for all the documents: one signer, one signing time (ag-cms.c). */
	if (p->format == FORMAT_CMS)
		r = ag_cms_batch_new(st->cert, st->md,
			p->padding == PADDING_PSS ? AG_PAD_PSS : AG_PAD_PKCS1,
			p->profile == PROFILE_PADES ? AG_CMS_PADES : AG_CMS_CADES, now, &st->cms);
	for (i = 0; i < p->n_documents && r == 0; i++) {
		if (p->format == FORMAT_RAW) {
			req.digests[i] = p->documents[i].digest;
			continue;
		}
		req.digests[i].p = malloc(EVP_MAX_MD_SIZE);
		if (!req.digests[i].p) {
			r = -ENOMEM;
			break;
		}
		r = ag_cms_batch_tbs(st->cms, p->documents[i].digest.p, p->documents[i].digest.n,
			req.digests[i].p, &req.digests[i].n);
		if (r < 0)
			break;
	}
	pf_buf_init(&frame);
	frame.wipe = 1; /* it holds the PIN */
	tok_frame_begin(&frame, TOK_MSG_SIGN_STREAM);
	if (i == p->n_documents)
		tok_sign_req_encode(&frame, &req);
	if (p->format == FORMAT_CMS)
		for (size_t k = 0; k < p->n_documents; k++)
			free(req.digests[k].p);
	free(req.digests);
	/* The PIN is in the frame now; no other copy is kept (R2). */
	st->pin = pf_secret_free(st->pin);
	p->pin = pf_secret_free(p->pin);
	if (i != p->n_documents || tok_frame_end(&frame) < 0) {
		pf_buf_release(&frame);
		finish_msg(st, AG_ERR_INTERNAL, NULL, "cannot build the CMS structure");
		return;
	}
	/* Armed first: the helper may fail the request (and free st) before submit returns. */
	if (sd_event_add_defer(call->srv->event, &st->prestore, audit_prestore, st) >= 0)
		sd_event_source_set_enabled(st->prestore, SD_EVENT_ONESHOT);
	if (ag_helper_submit_parts(call->srv->helper, &frame,
		    ag_op_timeout_ms(call->srv, p->n_documents), TOK_MSG_SIGN_PART, sign_part,
		    sign_signed, st) < 0)
		finish_msg(st, AG_ERR_INTERNAL, NULL, "out of memory");
	/* st may be gone here */
}

static void
abandon(struct ag_call *call)
{
	struct sign_state *st = call->abandon_data;

	/* The client left while its dialog was open: close the dialog, sign nothing. */
	finish_msg(st, AG_ERR_PIN_CANCELLED, NULL, "the client went away before the PIN was given");
}

static void
dialog_done(int r, struct pf_secret *pin, void *data)
{
	struct sign_state *st = data;

	st->dialog = NULL;
	if (r == -ECANCELED) {
		finish_msg(st, AG_ERR_PIN_CANCELLED, NULL, "the PIN dialog was cancelled");
		return;
	}
	if (r < 0) {
		finish_msg(st, AG_ERR_PIN_DIALOG_FAILED, NULL,
			r == -ETIMEDOUT ? "nobody answered the PIN dialog in time"
			: r == -ENOENT	? "the PIN dialog program cannot be run"
					: "the PIN dialog failed");
		return;
	}
	if (!pin || pin->len == 0) {
		/* Enter alone: never spend one of the token's tries on it. */
		pf_secret_free(pin);
		finish_msg(st, AG_ERR_PIN_INVALID, NULL,
			"an empty PIN was given; nothing was sent to the token");
		return;
	}
	st->pin = pin;
	sign_submit(st);
}

static void
hex_ends(const struct tok_blob *d, char *out, size_t outsz)
{
	_cleanup_free_ char *hex = pf_hex_encode(d->p, d->n);

	if (hex && strlen(hex) >= 16)
		snprintf(out, outsz, "%.8s…%s", hex, hex + strlen(hex) - 8);
	else
		snprintf(out, outsz, "?");
}

/* What the official reads before giving the PIN: who asks, with which certificate, for which
 * usage, and exactly which documents (R1). */
static char *
dialog_text(struct sign_state *st)
{
	struct sign_params *p = st->p;
	const struct pol_owner *o = st->verdict.owner;
	_cleanup_free_ char *until = ag_time_iso8601(st->facts.not_after);
	struct pf_buf b;
	char line[512], hx[40];
	size_t i, shown = p->n_documents <= AG_DIALOG_DOCS_SHOWN + 1 ? p->n_documents
								  : AG_DIALOG_DOCS_SHOWN;

	pf_buf_init(&b);
#define ADD(...) (snprintf(line, sizeof(line), __VA_ARGS__), pf_buf_put(&b, line, strlen(line)))
	ADD("Permintaan tanda tangan elektronik (electronic signature request)\n\n");
	ADD("Pemohon: %s (pid %d)\n", st->exe, (int)st->call->peer.pid);
	ADD("Sertifikat: %s, %s, berlaku s.d. %.10s\n", o && o->name ? o->name : st->facts.subject_cn,
		pol_type_to_string(st->verdict.type), until ? until : "?");
	ADD("Penggunaan: %s\n", pol_usage_to_string(p->usage));
	ADD("Dokumen (%zu):\n", p->n_documents);
	for (i = 0; i < shown; i++) {
		hex_ends(&p->documents[i].digest, hx, sizeof(hx));
		ADD("  %s  %s %s\n", p->documents[i].name, tok_hash_name((uint32_t)p->digest_algorithm),
			hx);
	}
	if (shown < p->n_documents)
		ADD("  … dan %zu dokumen lain\n", p->n_documents - shown);
	ADD("\nPIN ini hanya untuk dokumen di atas.");
#undef ADD
	pf_buf_put(&b, "", 1);
	if (pf_buf_status(&b) < 0) {
		pf_buf_release(&b);
		return NULL;
	}
	return (char *)b.data;
}

static void
open_dialog(struct sign_state *st)
{
	struct ag_call *call = st->call;
	struct sign_params *p = st->p;
	struct ag_pin_dialog d = {};
	_cleanup_free_ char *text = dialog_text(st);
	const char *program = call->srv->pinentry ? call->srv->pinentry
			      : st->policy->pol.pinentry ? st->policy->pol.pinentry
							 : AG_DEFAULT_PINENTRY;
	int r;

	if (!text) {
		finish_msg(st, AG_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	d.program = program;
	d.tty = p->tty;
	d.tty_type = p->tty_type;
	d.display = p->display;
	d.xauthority = p->xauthority;
	d.wayland_display = p->wayland_display;
	d.runtime_dir = getenv("XDG_RUNTIME_DIR");
	d.title = "paraf: tanda tangan elektronik";
	d.description = text;
	d.prompt = "PIN:";
	d.ok_label = "Tanda tangani";
	d.cancel_label = "Batal";
	d.timeout = st->policy->pol.pin_timeout;
	{
		struct ag_pin_failure *f = pin_failure(call->srv, p->certificate, false);
		if (f && f->failures)
			d.error = "PIN sebelumnya salah (the previous PIN was wrong)";
	}
	if (st->token_flags & TOK_PIN_COUNT_LOW)
		d.error = "Sisa percobaan PIN tinggal sedikit (few PIN tries left)";
	if (st->token_flags & TOK_PIN_FINAL_TRY)
		/* The last try before the token locks: the official agrees to it explicitly. */
		d.confirm_text = "PERINGATAN: ini percobaan PIN terakhir. PIN yang salah akan mengunci "
				 "token. Lanjutkan? (the next wrong PIN locks the token)";
	r = ag_pinentry_ask(call->srv->event, &d, dialog_done, st, &st->dialog);
	if (r < 0) {
		finish_msg(st, AG_ERR_PIN_DIALOG_FAILED, NULL,
			r == -ENOENT ? "the PIN dialog program cannot be run" : "cannot open the PIN dialog");
		return;
	}
	call->abandon = abandon;
	call->abandon_data = st;
}

static int
delay_done(sd_event_source *s, uint64_t usec, void *data)
{
	struct sign_state *st = data;

	st->delay = sd_event_source_disable_unref(st->delay);
	open_dialog(st);
	return 0;
}

/* R2: after two wrong PINs for a certificate, each next dialog waits longer (2, 4, 8… up to
 * 60 s), so no local program can drain the token's retry counter. */
static void
dialog_after_delay(struct sign_state *st)
{
	struct ag_server *srv = st->call->srv;
	struct ag_pin_failure *f = pin_failure(srv, st->p->certificate, false);
	uint64_t now = 0, wait = 0, due;

	sd_event_now(srv->event, CLOCK_MONOTONIC, &now);
	if (f && f->failures >= 2) {
		unsigned shift = f->failures - 1 < 6 ? f->failures - 1 : 6;
		uint64_t delay = (uint64_t)(1u << shift) * 1000000;

		if (delay > (uint64_t)AG_PIN_DELAY_MAX_SEC * 1000000)
			delay = (uint64_t)AG_PIN_DELAY_MAX_SEC * 1000000;
		due = f->last_usec + delay;
		wait = due > now ? due - now : 0;
	}
	if (!wait) {
		open_dialog(st);
		return;
	}
	if (sd_event_add_time_relative(srv->event, &st->delay, CLOCK_MONOTONIC, wait, 0, delay_done,
		    st) < 0) {
		finish_msg(st, AG_ERR_INTERNAL, NULL, "cannot schedule the PIN dialog");
		return;
	}
	st->call->abandon = abandon;
	st->call->abandon_data = st;
}

/* The systemd credential that holds a certificate's PIN: LoadCredential= or
 * LoadCredentialEncrypted= in the unit, read from $CREDENTIALS_DIRECTORY (doc/service.md). */
#define AG_CREDENTIAL_PIN_PREFIX "paraf-pin-"

/* A system certificate's PIN from systemd credentials or a root-only file (R2). The PIN goes
 * straight into a locked pf_secret; the read buffer is wiped; nothing of it is logged. */
static int
credential_pin(struct sign_state *st, struct pf_secret **ret)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	char path[4096], buf[PF_SECRET_MAX + 2];
	struct stat sb;
	ssize_t n;
	int fd = -1;

	if (creds && creds[0] == '/') {
		snprintf(path, sizeof(path), "%s/" AG_CREDENTIAL_PIN_PREFIX "%s", creds,
			st->p->certificate);
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		snprintf(path, sizeof(path), "%s/pins/%s.pin", st->policy->dir, st->p->certificate);
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		/* Root's own and readable by nobody else. */
		if (fd >= 0 && (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_uid != 0 ||
				       (sb.st_mode & 077))) {
			close(fd);
			return -EPERM;
		}
	}
	if (fd < 0)
		return -ENOENT;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return -EIO;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	n = pf_secret_new(buf, (size_t)n, ret) < 0 ? -EINVAL : 0;
	explicit_bzero(buf, sizeof(buf));
	return (int)n;
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

static int
choose_mechanism(struct sign_state *st, const char **ret_msg)
{
	EVP_PKEY *pub = X509_get0_pubkey(st->cert);
	int padding = st->p->padding;

	if (!pub) {
		*ret_msg = "the certificate's public key cannot be read";
		return -EINVAL;
	}
	if (EVP_PKEY_is_a(pub, "EC")) {
		if (padding) {
			*ret_msg = "'padding' applies to RSA keys only; this certificate has an EC key";
			return -EINVAL;
		}
		st->mech = TOK_MECH_ECDSA;
	} else if (EVP_PKEY_is_a(pub, "RSA-PSS")) {
		if (padding == PADDING_PKCS1) {
			*ret_msg = "this certificate's key is restricted to RSA-PSS";
			return -EINVAL;
		}
		st->mech = TOK_MECH_RSA_PSS;
	} else if (EVP_PKEY_is_a(pub, "RSA")) {
		st->mech = padding == PADDING_PSS ? TOK_MECH_RSA_PSS : TOK_MECH_RSA_PKCS;
	} else {
		*ret_msg = "only RSA and EC keys are supported";
		return -EINVAL;
	}
	return 0;
}

static void
sign_listed(struct ag_call *call, struct tok_list *l)
{
	struct sign_params *p = call->params;
	struct sign_state *st = calloc(1, sizeof(*st));
	const struct tok_cert *tc = NULL;
	struct pol_request preq = {};
	struct pol_peer peer = { call->peer.uid, call->peer.pid };
	struct pol_session session;
	struct ag_dialog_location loc = { p->tty, p->tty_type, p->display, p->xauthority,
		p->wayland_display };
	char err[512];
	const char *msg = NULL, *field = NULL;
	time_t now = time(NULL);
	int r;

	if (!st) {
		ag_call_fail_msg(call, AG_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	st->call = call;
	st->p = p;
	st->md = hash_md(p->digest_algorithm);
	st->exe = ag_peer_exe(call->peer.pid);
	for (size_t i = 0; i < l->n_certs && !tc; i++) {
		_cleanup_free_ char *id = ag_cert_id(l->certs[i].der.p, l->certs[i].der.n);
		if (id && streq(id, p->certificate))
			tc = &l->certs[i];
	}
	if (!tc) {
		finish_msg(st, AG_ERR_UNKNOWN_CERTIFICATE, "certificate",
			"no present token holds a certificate with this id");
		return;
	}
	for (size_t i = 0; i < l->n_tokens; i++)
		if (streq(l->tokens[i].id, tc->token_id))
			st->token_flags = l->tokens[i].flags;
	st->token_id = strdup(tc->token_id);
	st->ck_id.p = malloc(tc->ck_id.n ? tc->ck_id.n : 1);
	if (!st->token_id || !st->ck_id.p) {
		finish_msg(st, AG_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	memcpy(st->ck_id.p, tc->ck_id.p, tc->ck_id.n);
	st->ck_id.n = tc->ck_id.n;
	{
		const unsigned char *q = tc->der.p;
		st->cert = d2i_X509(NULL, &q, (long)tc->der.n);
		if (st->cert && q != tc->der.p + tc->der.n) {
			X509_free(st->cert); /* trailing bytes: not one certificate */
			st->cert = NULL;
		}
	}
	/* decoded once: the facts come from the same object */
	if (!st->cert || pol_cert_facts_from_x509(st->cert, tc->der.p, tc->der.n, &st->facts) < 0) {
		finish_msg(st, AG_ERR_UNREGISTERED, "certificate",
			"the certificate on the token cannot be parsed");
		return;
	}
	st->have_facts = true;

	/* The policy directory, afresh: a revocation appended a second ago counts (R8). */
	r = ag_policy_load(call->srv->policy_dir, call->srv->policy_dir_given, &st->policy, err,
		sizeof(err));
	if (r < 0) {
		finish_msg(st, AG_ERR_POLICY_INVALID, NULL, err);
		return;
	}
	pol_trust_check(&st->policy->trust, st->cert, now, &st->facts);
	/* R8: once seen revoked, revoked for ever, whatever the CRLs say later. */
	if (st->facts.revocation == POL_REV_REVOKED)
		(void)ag_state_remember_revoked(st->facts.id);
	else if (ag_state_revoked(st->facts.id))
		st->facts.revocation = POL_REV_REVOKED;
	ag_session_facts(call->peer.pid, &session);
	preq.usage = (enum pol_usage)p->usage;
	preq.n_documents = p->n_documents;
	preq.pin_parameter = p->pin != NULL;
	preq.system_agent = call->srv->cfg.system_mode; /* R1: type-not-served */
	pol_decide(&st->policy->pol, &preq, &st->facts, &peer, &session, now, &st->verdict);
	st->decided = true;
	if (!st->verdict.allow) {
		struct ag_error e = {};

		ag_error_set(&e, ag_error_from_reason(st->verdict.reason),
			streq(st->verdict.reason, "pin-parameter-refused") ? "pin"
			: streq(st->verdict.reason, "batch-too-large")	   ? "documents"
			: strncmp(st->verdict.reason, "usage", 5) == 0	   ? "usage"
									   : "certificate",
			"%s", st->verdict.message);
		e.rule = st->verdict.rule;
		finish_error(st, &e);
		return;
	}
	if (choose_mechanism(st, &msg) < 0) {
		finish_msg(st, AG_ERR_UNSUPPORTED_ALGORITHM, p->padding ? "padding" : "certificate", msg);
		return;
	}
	/* R13: a signature could not be released without its record; say so before the
	 * official types a PIN, not after the token signed. */
	if (ag_audit_check() < 0) {
		snprintf(err, sizeof(err), "the audit service at '%s' is not reachable and the "
			 "agent's audit setting is '%s': nothing is signed until it is (R13)",
			ag_audit_socket_path(), ag_audit_mode_to_string(ag_audit_mode()));
		finish_msg(st, AG_ERR_AUDIT_UNAVAILABLE, NULL, err);
		return;
	}
	/* A locked PIN is not unlocked by typing it: no dialog asks for one in vain (R2). */
	if (st->token_flags & TOK_PIN_LOCKED) {
		finish_msg(st, AG_ERR_PIN_LOCKED, NULL,
			"the token's PIN is locked; security staff must unblock it");
		return;
	}
	/* The PIN: from the request only for the policy's listed types (checked above), else
	 * their credential, else the trusted dialog on the caller's own display (R1, R2). */
	if (p->pin) {
		st->pin = TAKE_PTR(p->pin);
		sign_submit(st);
		return;
	}
	if (st->policy->pol.pin_parameter_types & POL_TYPE_BIT(st->verdict.type)) {
		r = credential_pin(st, &st->pin);
		if (r == 0) {
			sign_submit(st);
			return;
		}
		if (r != -ENOENT) {
			finish_msg(st, AG_ERR_POLICY_INVALID, NULL,
				"the certificate's PIN file is not root's own or cannot be read (R13)");
			return;
		}
	}
	if (call->srv->cfg.system_mode) {
		/* No dialog in system mode: nobody sits at a service's terminal (R2). */
		struct ag_error e = {};
		char name[sizeof(AG_CREDENTIAL_PIN_PREFIX) + 64];

		snprintf(name, sizeof(name), AG_CREDENTIAL_PIN_PREFIX "%s", p->certificate);
		if (!(st->policy->pol.pin_parameter_types & POL_TYPE_BIT(st->verdict.type)))
			ag_error_set(&e, AG_ERR_PIN_REQUIRED, NULL,
				"no PIN for this certificate: the policy's [pin] parameter_types does "
				"not list type %s, so its credential '%s' is not read",
				pol_type_to_string(st->verdict.type), name);
		else
			ag_error_set(&e, AG_ERR_PIN_REQUIRED, NULL,
				"no PIN for this system certificate: the credential '%s' is missing; "
				"give it to paraf-system.service with LoadCredential= or "
				"LoadCredentialEncrypted=", name);
		e.extra = json_object_new_object();
		json_object_object_add(e.extra, "credential", json_object_new_string(name));
		finish_error(st, &e);
		return;
	}
	if (ag_dialog_location_check(call->peer.uid, call->peer.pid, &loc, err, sizeof(err),
		    &field) < 0) {
		finish_msg(st, AG_ERR_DIALOG_LOCATION_REFUSED, field, err);
		return;
	}
	dialog_after_delay(st);
}

void
ag_sign(struct ag_call *call)
{
	struct sign_params *p = call->params;
	size_t want = tok_hash_len((uint32_t)p->digest_algorithm);

	if (p->profile && p->format != FORMAT_CMS) {
		ag_call_fail_msg(call, AG_ERR_INVALID_PARAMS, "profile",
			"'profile' applies to format cms only");
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
	ag_list_start(call, sign_listed);
}
