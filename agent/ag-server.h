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
};

struct ag_server {
	sd_event *event;
	struct ag_config cfg;
	int listen_fd;
	bool listen_owned; /* we created the socket (not systemd) */
	char *socket_path;
	sd_event_source *listen_src;
	struct ag_client *clients;
	unsigned n_clients;
	struct ag_helper *helper;
	uint64_t start_usec;
	uid_t uid;
	uint64_t requests;
	bool log_stderr;        /* audit records and logs to stderr (foreground) */
	char *policy_dir;       /* read afresh for every decision */
	bool policy_dir_given;  /* --policy: files of our own account accepted (tests) */
	char *pinentry;         /* --pinentry: overrides the policy's */
	struct ag_pin_failure {
		char cert_id[65];
		unsigned failures;
		uint64_t last_usec;
	} pin_failures[AG_PIN_FAILURES_MAX];
};

int ag_server_new(sd_event *e, const struct ag_config *cfg, const char *helper_path, int listen_fd,
	bool listen_owned, const char *socket_path, struct ag_server **ret);
struct ag_server *ag_server_free(struct ag_server *s);
/* Creates the socket's directory (0700) if needed, checks it is private, binds and listens. */
int ag_socket_listen(const char *path, int *ret_fd, char *ret_error, size_t error_size);

/* Kills the helper so the next operation gets a fresh one (a removed token). */
void ag_helper_recycle(struct ag_helper *h);
