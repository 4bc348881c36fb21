/*
 * paraf-auditd's socket side, in the library so the tests can run it in their own event loop:
 * clients, their lines, the answers, and the checkpoint timer. Nothing outside audit/ (and
 * the tests) includes this.
 */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "aud.h"

#define AUD_CLIENTS_MAX 8192          /* connections served at once */
#define AUD_OUTPUT_MAX (256u * 1024u) /* unread answers before a client's lines wait */
#define AUD_SOCKET_DEFAULT "/run/paraf/audit.sock"
#define AUD_DIR_DEFAULT "/var/lib/paraf/audit"

struct aud_server;

/* Serves listen_fd (taken over: closed, and unlinked when socket_path is given) into log (not
 * taken over), with a checkpoint every checkpoint_seconds (0: AUD_CHECKPOINT_SECONDS) when
 * records came in meanwhile. */
int aud_server_new(sd_event *e, struct aud_log *log, int listen_fd, const char *socket_path,
	unsigned checkpoint_seconds, struct aud_server **ret);
struct aud_server *aud_server_free(struct aud_server *s);
unsigned aud_server_clients(const struct aud_server *s);

/* Creates the socket's directory (0755) if needed, refuses one that others may write (unless
 * sticky), replaces a stale socket, binds, makes the socket 0666 (any local user may send
 * records: each is stamped with its sender) and listens. */
int aud_socket_listen(const char *path, int *ret_fd, char *why, size_t why_size);
