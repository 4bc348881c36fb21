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

#include "ag-methods.h"
#include "ag-policy.h"
#include "ag-session.h"
#include "ag-state.h"
#include "ag-server.h"
#include "paraf-config.h"
#include "pf-codec.h"
#include "pf-util.h"
#include "pol.h"

unsigned
ag_op_timeout_ms(const struct ag_server *srv, size_t n_docs)
{
	/* helper_timeout for the operation, and a second more for every further document: a
	 * smartcard takes 0.1-1 s per signature. */
	return srv->cfg.helper_timeout * 1000u + (unsigned)(n_docs ? n_docs - 1 : 0) * 1000u;
}

void
ag_call_fail_msg(struct ag_call *call, enum ag_err e, const char *field, const char *msg)
{
	struct ag_error err = {};

	ag_error_set(&err, e, field, "%s", msg);
	ag_call_fail(call, &err);
}

void
ag_call_fail_helper(struct ag_call *call, int r)
{
	struct ag_error err = {};

	ag_error_set(&err, AG_ERR_TOKEN_HELPER_FAILED, NULL,
		"the token helper %s; it has been replaced, try again",
		r == -ETIMEDOUT ? "did not answer in time" : "failed");
	ag_call_fail(call, &err);
}

/* Asks the helper for tokens and certificates; cb gets the decoded list, or fails the call. */

struct list_req {
	struct ag_call *call;
	ag_list_cb cb;
};

static void
list_done(int r, uint32_t type, const uint8_t *body, size_t len, void *data)
{
	struct list_req *q = data;
	struct ag_call *call = q->call;
	ag_list_cb cb = q->cb;
	struct tok_list l = {};

	free(q);
	if (r < 0) {
		ag_call_fail_helper(call, r);
		return;
	}
	if (type != TOK_MSG_LIST_REPLY || tok_list_decode(body, len, &l) < 0) {
		ag_call_fail_msg(call, AG_ERR_INTERNAL, NULL, "the token helper sent a malformed answer");
		return;
	}
	if (l.err != TOK_OK) {
		ag_call_fail_msg(call, ag_error_from_tok(l.err), NULL, tok_err_to_string(l.err));
		tok_list_release(&l);
		return;
	}
	/* Every enumeration tells the hotplug side what is there (before anything else is
	 * queued: a token gone retires the helper between operations). */
	ag_tokens_seen(call->srv, &l);
	cb(call, &l);
	tok_list_release(&l);
}

void
ag_list_start(struct ag_call *call, ag_list_cb cb)
{
	struct list_req *q = calloc(1, sizeof(*q));
	struct pf_buf frame;

	if (!q) {
		ag_call_fail_msg(call, AG_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	q->call = call;
	q->cb = cb;
	pf_buf_init(&frame);
	tok_frame_begin(&frame, TOK_MSG_LIST);
	if (tok_frame_end(&frame) < 0 ||
	    ag_helper_submit(call->srv->helper, &frame, ag_op_timeout_ms(call->srv, 0), list_done, q) < 0) {
		pf_buf_release(&frame);
		free(q);
		ag_call_fail_msg(call, AG_ERR_INTERNAL, NULL, "out of memory");
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

/* What the policy directory says now, for agent.status. */
static void
policy_status(struct ag_server *srv, json_object *o)
{
	struct ag_policy *ap = NULL;
	json_object *pol = json_object_new_object(), *types = json_object_new_array();
	char err[512] = "";
	int r = ag_policy_load(srv->policy_dir, srv->policy_dir_given, &ap, err, sizeof(err));

	json_object_object_add(pol, "directory", json_object_new_string(srv->policy_dir));
	json_object_object_add(pol, "valid", json_object_new_boolean(r >= 0));
	json_object_object_add(pol, "error", r < 0 ? json_object_new_string(err) : NULL);
	/* --policy accepts files of the agent's own account: say so, it is not R13-grade. */
	json_object_object_add(pol, "test_mode", json_object_new_boolean(srv->policy_dir_given));
	json_object_object_add(pol, "owners", r >= 0 ? json_object_new_int((int)ap->pol.n_owners) : NULL);
	json_object_object_add(pol, "revoked", r >= 0 ? json_object_new_int((int)ap->pol.n_revoked) : NULL);
	for (int t = POL_TYPE_INDIVIDUAL; r >= 0 && t < _POL_TYPE_MAX; t++)
		if (ap->pol.pin_parameter_types & POL_TYPE_BIT(t))
			json_object_array_add(types, json_object_new_string(pol_type_to_string(t)));
	json_object_object_add(o, "policy", pol);
	json_object_object_add(o, "pin_parameter_types", types);
	json_object_object_add(o, "pinentry", json_object_new_string(srv->pinentry ? srv->pinentry
		: r >= 0 && ap->pol.pinentry ? ap->pol.pinentry : "/usr/bin/pinentry"));
	/* R13: where the decision records go, and whether signing can go ahead. */
	json_object_object_add(o, "audit", json_object_new_string(
		ag_audit_mode_to_string(srv->cfg.audit_mode)));
	/* R1: where logind is absent, say so: the policy's without_logind applies. */
	json_object_object_add(o, "logind", json_object_new_boolean(ag_logind_present()));
	/* How this agent runs as a service (doc/service.md). */
	json_object_object_add(o, "mode", json_object_new_string(srv->cfg.system_mode ? "system"
		: "user"));
	json_object_object_add(o, "exit_idle", json_object_new_int64(srv->on_idle
		? (int64_t)srv->cfg.exit_idle : 0));
	json_object_object_add(o, "hotplug_interval", json_object_new_int64(
		(int64_t)srv->cfg.hotplug_interval));
	ag_policy_free(ap);
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
	policy_status(srv, o);
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
	ag_tokens_seen(call->srv, &l);
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
	    ag_helper_submit(call->srv->helper, &frame, ag_op_timeout_ms(call->srv, 0), status_done,
		    call) < 0) {
		pf_buf_release(&frame);
		status_listed(call, NULL);
	}
}

/* --- tokens.list ------------------------------------------------------------------------ */

json_object *
ag_pin_status_json(uint32_t f)
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

json_object *
ag_token_json(const struct tok_token *t, bool present)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "id", json_object_new_string(t->id));
	json_object_object_add(j, "label", json_object_new_string(t->label));
	json_object_object_add(j, "serial", json_object_new_string(t->serial));
	json_object_object_add(j, "manufacturer", json_object_new_string(t->manufacturer));
	json_object_object_add(j, "model", json_object_new_string(t->model));
	json_object_object_add(j, "present", json_object_new_boolean(present));
	json_object_object_add(j, "module", json_object_new_string(t->module));
	json_object_object_add(j, "slot", json_object_new_string(t->slot));
	json_object_object_add(j, "pin_status", ag_pin_status_json(t->flags));
	return j;
}

static json_object *
tokens_json(const struct tok_list *l)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < l->n_tokens; i++)
		json_object_array_add(a, ag_token_json(&l->tokens[i], true));
	return a;
}

static void
tokens_listed(struct ag_call *call, struct tok_list *l)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "tokens", tokens_json(l));
	ag_call_reply(call, o);
}

static void
tokens_list(struct ag_call *call)
{
	ag_list_start(call, tokens_listed);
}

/* --- certificates.list ------------------------------------------------------------------ */

static json_object *
usages_json(unsigned mask)
{
	json_object *a = json_object_new_array();

	for (int u = POL_USAGE_SIGNATURE; u < _POL_USAGE_MAX; u++)
		if (mask & POL_USAGE_BIT(u))
			json_object_array_add(a, json_object_new_string(pol_usage_to_string(u)));
	return a;
}

/* The regulation's view of one certificate: type, owner, usages, status (R5-R8). */
static void
add_policy_facts(json_object *j, struct ag_policy *ap, const char *policy_error,
	const struct tok_cert *c, X509 *x, time_t now)
{
	struct pol_cert_facts f;
	struct pol_status st;
	const struct pol_owner *o;
	json_object *owner = NULL;

	if (!ap || pol_cert_facts_from_der(c->der.p, c->der.n, &f) < 0) {
		json_object_object_add(j, "type", NULL);
		json_object_object_add(j, "owner", NULL);
		json_object_object_add(j, "allowed_usages", json_object_new_array());
		json_object_object_add(j, "status", json_object_new_string("unknown"));
		json_object_object_add(j, "status_reason",
			json_object_new_string(policy_error ? policy_error : "cannot parse"));
		json_object_object_add(j, "days_left", NULL);
		return;
	}
	pol_trust_check(&ap->trust, x, now, &f);
	if (f.revocation == POL_REV_REVOKED)
		(void)ag_state_remember_revoked(f.id);
	else if (ag_state_revoked(f.id))
		f.revocation = POL_REV_REVOKED; /* R8: for ever */
	pol_cert_status(&ap->pol, &f, now, &st);
	o = pol_owner_find(&ap->pol, f.id);
	if (o) {
		owner = json_object_new_object();
		json_object_object_add(owner, "account", json_object_new_string(o->account));
		json_object_object_add(owner, "name", json_object_new_string(o->name));
		json_object_object_add(owner, "nip", o->nip ? json_object_new_string(o->nip) : NULL);
		json_object_object_add(owner, "position",
			o->position ? json_object_new_string(o->position) : NULL);
		json_object_object_add(owner, "unit", o->unit ? json_object_new_string(o->unit) : NULL);
	}
	{
		enum pol_type t = pol_cert_type(&ap->pol, &f, o);
		json_object_object_add(j, "type",
			t == POL_TYPE_NONE ? NULL : json_object_new_string(pol_type_to_string(t)));
	}
	json_object_object_add(j, "owner", owner);
	json_object_object_add(j, "allowed_usages", usages_json(st.usages));
	json_object_object_add(j, "status", json_object_new_string(st.status));
	json_object_object_add(j, "status_reason",
		st.reason ? json_object_new_string(st.reason) : NULL);
	json_object_object_add(j, "days_left", json_object_new_int64(st.days_left));
	pol_cert_facts_release(&f);
}

static void
certs_listed(struct ag_call *call, struct tok_list *l)
{
	json_object *a = json_object_new_array(), *o = json_object_new_object();
	struct ag_policy *ap = NULL;
	char err[512] = "";
	time_t now = time(NULL);

	if (ag_policy_load(call->srv->policy_dir, call->srv->policy_dir_given, &ap, err,
		    sizeof(err)) < 0)
		ap = NULL;
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
		add_policy_facts(j, ap, ap ? NULL : err, c, x, now);
		json_object_object_add(j, "certificate", b64 ? json_object_new_string(b64) : NULL);
		json_object_array_add(a, j);
		free(id);
		free(b64);
		free(key_id);
		X509_free(x);
	}
	ag_policy_free(ap);
	json_object_object_add(o, "certificates", a);
	ag_call_reply(call, o);
}

static void
certificates_list(struct ag_call *call)
{
	ag_list_start(call, certs_listed);
}

/* --- events.subscribe ------------------------------------------------------------------- */

static const char *const event_names[] = { "token.inserted", "token.removed", NULL };
#define AG_EVENT_NAMES_MAX 16 /* items in one events list (names may repeat) */

struct subscribe_params {
	unsigned events; /* AG_F_ENUM_SET: bit i for event_names[i] */
};

static const struct ag_field subscribe_fields[] = {
	{ "events", AG_F_ENUM_SET, 0, offsetof(struct subscribe_params, events), 0, 0,
		AG_EVENT_NAMES_MAX, .values = event_names,
		.description = "the notifications wanted (default: all); [] unsubscribes" },
	{ NULL },
};

static void
subscribed(struct ag_server *srv, const struct tok_list *l, void *data)
{
	struct ag_call *call = data;
	struct subscribe_params *p = call->params;
	json_object *o = json_object_new_object(), *names = json_object_new_array();

	for (size_t i = 0; event_names[i]; i++)
		if (p->events & (1u << i))
			json_object_array_add(names, json_object_new_string(event_names[i]));
	json_object_object_add(o, "events", names);
	/* The tokens now: notifications from here on tell changes from this set. */
	json_object_object_add(o, "tokens", l ? tokens_json(l) : NULL);
	ag_call_reply(call, o);
}

static void
events_subscribe(struct ag_call *call)
{
	struct subscribe_params *p = call->params;

	p->events = p->events & AG_F_SET_GIVEN ? p->events & ~AG_F_SET_GIVEN : AG_EVENTS_ALL;
	call->client->events = p->events;
	ag_watch_start(call->srv);
	/* A look now, whatever the slot events say: the answer's baseline. */
	if (ag_watch_look(call->srv, true, subscribed, call) < 0)
		subscribed(call->srv, NULL, call);
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
	AG_ERR_TOKEN_HELPER_FAILED, AG_ERR_UNREGISTERED, AG_ERR_NOT_OWNER, AG_ERR_NO_SESSION,
	AG_ERR_REMOTE_SESSION, AG_ERR_INACTIVE_SESSION, AG_ERR_BATCH_TOO_LARGE,
	AG_ERR_USAGE_NOT_ALLOWED, AG_ERR_USAGE_NOT_IN_CERTIFICATE, AG_ERR_NOT_YET_VALID,
	AG_ERR_EXPIRED, AG_ERR_NON_COMPLIANT, AG_ERR_UNTRUSTED, AG_ERR_REVOKED,
	AG_ERR_REVOCATION_UNKNOWN, AG_ERR_PIN_CANCELLED, AG_ERR_PIN_DIALOG_FAILED,
	AG_ERR_DIALOG_LOCATION_REFUSED, AG_ERR_POLICY_INVALID, AG_ERR_AUDIT_UNAVAILABLE,
	AG_ERR_TYPE_NOT_SERVED, _AG_ERR_MAX };

const struct ag_method ag_methods[] = {
	{ "rpc.discover", NULL, 0, "this API as an OpenRPC document",
		"the OpenRPC document", no_errors, rpc_discover },
	{ "agent.status", NULL, 0, "the agent's version, uptime and tokens",
		"{version, uptime_seconds, pid, tokens_present, tokens, helper, clients, policy, "
		"pin_parameter_types, pinentry, audit, logind, mode, exit_idle, hotplug_interval}",
		no_errors, agent_status },
	{ "tokens.list", NULL, 0, "the tokens present in any slot of any module",
		"{tokens: [{id, label, serial, manufacturer, model, present, module, slot, pin_status}]}",
		list_errors, tokens_list },
	{ "certificates.list", NULL, 0, "the X.509 certificates on present tokens",
		"{certificates: [{id, token, key_id, label, type, owner, allowed_usages, status, "
		"status_reason, days_left, subject, issuer, serial, not_before, not_after, key, "
		"key_usage, extended_key_usage, certificate}]}",
		list_errors, certificates_list },
	{ "events.subscribe", subscribe_fields, sizeof(struct subscribe_params),
		"token events for this connection: JSON-RPC notifications token.inserted and "
		"token.removed, {\"token\": {the fields of tokens.list}}, interleaved with the answers",
		"{events: [names subscribed], tokens: [the tokens now, as tokens.list] or null}",
		no_errors, events_subscribe },
	{ "sign", ag_sign_fields, AG_SIGN_PARAMS_SIZE,
		"signs the listed document digests with a certificate's key, one PIN for exactly "
		"these documents",
		"{certificate, signatures: [{name, cms} or {name, signature}]}, in the order given",
		sign_errors, ag_sign },
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
