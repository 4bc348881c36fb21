/*
 * Hotplug: the set of tokens parafd saw last, its changes told to subscribers as token.inserted
 * and token.removed notifications, and the watch that looks at the tokens every
 * hotplug_interval ms while anyone subscribes.
 *
 * A look is one TOK_MSG_WATCH to the helper, which first asks each module for slot events
 * (C_WaitForSlotEvent with CKF_DONT_BLOCK) and enumerates the slots only when there was one or
 * the module has none (polling); no session is opened and no certificate read. A tick is
 * skipped while the helper works for a request, so a signature waits for at most one look.
 * Every enumeration counts, not only the watch's: tokens.list, certificates.list, sign and
 * agent.status feed ag_tokens_seen() too, so a removal seen by any of them retires the helper
 * (a fresh PKCS#11 context for the next request: no stale session or login survives a
 * reinsertion, and a token swapped in is never met with the old one's state).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ag-methods.h"
#include "ag-server.h"
#include "pf-util.h"

static bool
list_has(const struct tok_list *l, const char *id)
{
	for (size_t i = 0; i < l->n_tokens; i++)
		if (streq(l->tokens[i].id, id))
			return true;
	return false;
}

/* The tokens of l (not its certificates), copied. */
static int
tokens_copy(const struct tok_list *l, struct tok_list *ret)
{
	struct tok_list c = {};

	c.tokens = calloc(l->n_tokens ? l->n_tokens : 1, sizeof(*c.tokens));
	if (!c.tokens)
		return -ENOMEM;
	for (size_t i = 0; i < l->n_tokens; i++) {
		const struct tok_token *t = &l->tokens[i];
		struct tok_token *d = &c.tokens[i];

		c.n_tokens++;
		d->id = strdup(t->id);
		d->label = strdup(t->label);
		d->serial = strdup(t->serial);
		d->manufacturer = strdup(t->manufacturer);
		d->model = strdup(t->model);
		d->module = strdup(t->module);
		d->slot = strdup(t->slot);
		d->flags = t->flags;
		if (!d->id || !d->label || !d->serial || !d->manufacturer || !d->model ||
		    !d->module || !d->slot) {
			tok_list_release(&c);
			return -ENOMEM;
		}
	}
	*ret = c;
	return 0;
}

static void
notify_token(struct ag_server *srv, unsigned event, const char *method,
	const struct tok_token *t, bool present)
{
	json_object *params = json_object_new_object();

	json_object_object_add(params, "token", ag_token_json(t, present));
	ag_server_notify(srv, event, method, params);
}

void
ag_tokens_seen(struct ag_server *srv, const struct tok_list *l)
{
	struct tok_list now = {};
	bool gone = false;

	if (l->err != TOK_OK || tokens_copy(l, &now) < 0)
		return;
	if (srv->known_valid) {
		/* Removals first: a swap reads as the old token leaving, then the new arriving. */
		for (size_t i = 0; i < srv->known.n_tokens; i++) {
			if (list_has(&now, srv->known.tokens[i].id))
				continue;
			gone = true;
			notify_token(srv, AG_EVENT_TOKEN_REMOVED, "token.removed",
				&srv->known.tokens[i], false);
		}
		for (size_t i = 0; i < now.n_tokens; i++)
			if (!list_has(&srv->known, now.tokens[i].id))
				notify_token(srv, AG_EVENT_TOKEN_INSERTED, "token.inserted",
					&now.tokens[i], true);
	}
	tok_list_release(&srv->known);
	srv->known = now;
	srv->known_valid = true;
	/* The module's context has seen the token go: whatever it still holds for it (sessions,
	 * a login, a card's cached identity) must not meet the next request. Between
	 * operations only: ag_helper_recycle() leaves one in flight alone. */
	if (gone)
		ag_helper_recycle(srv->helper);
}

struct look {
	struct ag_server *srv;
	bool tick; /* the timer's own look */
	ag_watch_cb cb;
	void *data;
};

static void
look_done(int r, uint32_t type, const uint8_t *body, size_t len, void *data)
{
	struct look *q = data;
	struct ag_server *srv = q->srv;
	struct tok_list l = {};
	uint32_t changed = 0;
	const struct tok_list *seen = NULL;

	if (q->tick)
		srv->watch_inflight = false;
	if (r >= 0 && type == TOK_MSG_WATCH_REPLY &&
	    tok_watch_reply_decode(body, len, &changed, &l) >= 0) {
		if (!changed && srv->known_valid) {
			seen = &srv->known;
		} else if (changed && l.err == TOK_OK) {
			ag_tokens_seen(srv, &l);
			seen = &l;
		}
	}
	if (q->cb)
		q->cb(srv, seen, q->data);
	tok_list_release(&l);
	free(q);
}

int
ag_watch_look(struct ag_server *srv, bool force, ag_watch_cb cb, void *data)
{
	struct look *q = calloc(1, sizeof(*q));
	struct pf_buf frame;
	int r;

	if (!q)
		return -ENOMEM;
	q->srv = srv;
	q->tick = !cb;
	q->cb = cb;
	q->data = data;
	pf_buf_init(&frame);
	tok_frame_begin(&frame, TOK_MSG_WATCH);
	tok_watch_req_encode(&frame, force ? 1 : 0);
	r = tok_frame_end(&frame);
	if (r < 0) {
		pf_buf_release(&frame);
		free(q);
		return r;
	}
	if (q->tick)
		srv->watch_inflight = true;
	/* On failure the helper link has answered look_done already (or never will). */
	r = ag_helper_submit(srv->helper, &frame, ag_op_timeout_ms(srv, 0), look_done, q);
	if (r < 0) {
		if (q->tick)
			srv->watch_inflight = false;
		free(q);
	}
	return r;
}

static int
watch_tick(sd_event_source *s, uint64_t usec, void *data)
{
	struct ag_server *srv = data;

	if (!ag_server_subscribers(srv)) {
		/* Nobody listens any more: no more looks (tokens.list still enumerates). */
		srv->watch_timer = sd_event_source_disable_unref(srv->watch_timer);
		return 0;
	}
	/* A request at the helper goes first; this tick is skipped, not queued. */
	if (!srv->watch_inflight && !ag_helper_busy(srv->helper))
		(void)ag_watch_look(srv, false, NULL, NULL);
	sd_event_source_set_time_relative(s, (uint64_t)srv->cfg.hotplug_interval * 1000);
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

void
ag_watch_start(struct ag_server *srv)
{
	if (srv->watch_timer || !ag_server_subscribers(srv))
		return;
	if (sd_event_add_time_relative(srv->event, &srv->watch_timer, CLOCK_MONOTONIC,
		    (uint64_t)srv->cfg.hotplug_interval * 1000, 0, watch_tick, srv) < 0)
		srv->watch_timer = NULL;
}

void
ag_watch_release(struct ag_server *srv)
{
	srv->watch_timer = sd_event_source_disable_unref(srv->watch_timer);
	tok_list_release(&srv->known);
	srv->known_valid = false;
}
