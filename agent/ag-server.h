/*
 * The server's state, shared by the socket code (ag-server.c) and the method handlers
 * (ag-methods.c). Nothing outside agent/ includes this.
 */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "ag.h"

#define AG_PIN_FAILURES_MAX 64 /* certificates whose wrong PINs we remember */

struct ag_client {
	struct ag_server *srv;
	struct ag_client *prev, *next;
	int fd;
	sd_event_source *io;
	sd_event_source *idle;
	struct ucred peer;
	struct pf_buf in;   /* wiped: request lines may hold a PIN */
	bool discarding;    /* dropping the rest of an over-long line */
	bool processing;    /* client_process() is on the stack */
	bool eof;           /* the client closed its sending side */
	bool dead;          /* writing failed: free as soon as no call holds it */
	struct pf_buf out;
	size_t out_off;
	struct ag_call *busy; /* the request being answered; later lines wait */
	unsigned events;      /* AG_EVENT_* subscribed to with events.subscribe */
	unsigned missed;      /* notifications dropped while it did not read (AG_OUTPUT_MAX) */
};

struct ag_server {
	sd_event *event;
	struct ag_config cfg;
	int listen_fd;
	bool listen_owned; /* we created the socket (not systemd) */
	char *socket_path;
	sd_event_source *listen_src;
	sd_event_source *accept_retry; /* listen_src off for a moment after EMFILE */
	struct ag_client *clients;
	unsigned n_clients;
	struct ag_helper *helper;
	/* Hotplug (ag-watch.c): the token set last seen, and the watch while anyone subscribes. */
	struct tok_list known;     /* tokens only */
	bool known_valid;
	sd_event_source *watch_timer;
	bool watch_inflight;
	uint64_t start_usec;
	uid_t uid;
	uint64_t requests;
	bool log_stderr;        /* audit records and logs to stderr (foreground) */
	char *policy_dir;       /* read afresh for every decision */
	bool policy_dir_given;  /* --policy: files of our own account accepted (tests) */
	char *pinentry;         /* --pinentry: overrides the policy's */
	unsigned n_calls;       /* requests in progress, also those whose client has gone */
	/* Called when the last client has gone and no request is in progress (exit_idle). */
	void (*on_idle)(struct ag_server *s);
	struct ag_pin_failure {
		char cert_id[65];
		unsigned failures;
		uint64_t last_usec;
	} pin_failures[AG_PIN_FAILURES_MAX];
};

int ag_server_new(sd_event *e, const struct ag_config *cfg, const char *helper_path, int listen_fd,
	bool listen_owned, const char *socket_path, struct ag_server **ret);
struct ag_server *ag_server_free(struct ag_server *s);
/* Whether a client is connected or a request is in progress (a helper operation, a PIN
 * dialog); an agent that is not busy may exit when socket-activated (exit_idle). */
bool ag_server_busy(const struct ag_server *s);
/* Creates the socket's directory (0700) if needed, checks it is private, binds and listens. */
int ag_socket_listen(const char *path, int *ret_fd, char *ret_error, size_t error_size);

/* Kills the helper so the next operation gets a fresh one (a removed token). */
void ag_helper_recycle(struct ag_helper *h);

/* Token events (events.subscribe): bits of ag_client.events. */
enum {
	AG_EVENT_TOKEN_INSERTED = 1 << 0,
	AG_EVENT_TOKEN_REMOVED = 1 << 1,
	AG_EVENTS_ALL = AG_EVENT_TOKEN_INSERTED | AG_EVENT_TOKEN_REMOVED,
};
/* Sends the JSON-RPC notification `method` with params (consumed) to every client subscribed
 * to event. A client with AG_OUTPUT_MAX unread bytes misses it; the next notification it gets
 * says how many it missed ("missed"). */
void ag_server_notify(struct ag_server *srv, unsigned event, const char *method,
	json_object *params);
unsigned ag_server_subscribers(const struct ag_server *srv);

/* ag-watch.c: the token set and its changes. */
/* Compares a fresh enumeration with the last one: notifies token.inserted / token.removed,
 * and when a token went away retires the helper once idle, so the next request gets a fresh
 * PKCS#11 context (stale sessions after reinsertion, PLATFORM.md). */
void ag_tokens_seen(struct ag_server *srv, const struct tok_list *l);
/* Starts the watch timer when someone subscribes (a no-op when it runs or nobody does). */
void ag_watch_start(struct ag_server *srv);
void ag_watch_release(struct ag_server *srv);
/* Asks the helper for the token set now (force: enumerate whatever the slot events say); cb
 * gets the list (NULL when the helper failed) after ag_tokens_seen() saw it. */
typedef void (*ag_watch_cb)(struct ag_server *srv, const struct tok_list *l, void *data);
int ag_watch_look(struct ag_server *srv, bool force, ag_watch_cb cb, void *data);
