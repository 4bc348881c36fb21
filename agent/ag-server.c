/*
 * The socket side of parafd: accepting clients, reading request lines, answering them in
 * order, and dropping clients that go idle. Each client is served one request at a time
 * (its later lines wait in its buffer), while other clients are served meanwhile: nothing
 * here blocks on a token, a PIN or another client.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ag-audit.h"
#include "ag-server.h"
#include "ag-session.h"
#include "pf-util.h"

/* Reading stops at AG_OUTPUT_MAX unread; the answer that crosses it must still fit. */
#define AG_OUTPUT_BUF_MAX (2 * AG_OUTPUT_MAX)
#define AG_ACCEPT_RETRY_USEC (100 * 1000) /* accepting again after running out of descriptors */

static void client_process(struct ag_client *c);
static void client_free(struct ag_client *c);

static size_t
client_pending(const struct ag_client *c)
{
	return c->out.len - c->out_off;
}

static void
client_update_events(struct ag_client *c)
{
	uint32_t ev = 0;

	/* Stop reading while a full request waits or the client does not read its answers. */
	if (!c->eof && c->in.len <= AG_REQUEST_MAX && client_pending(c) < AG_OUTPUT_MAX)
		ev |= EPOLLIN;
	if (client_pending(c))
		ev |= EPOLLOUT;
	sd_event_source_set_io_events(c->io, ev);
}

/* Returns -EPIPE when the client is gone. */
static int
client_flush(struct ag_client *c)
{
	while (client_pending(c)) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, client_pending(c), MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return -EPIPE;
		c->out_off += (size_t)n;
	}
	c->out.len = 0;
	c->out_off = 0;
	return 0;
}

static void
client_send(struct ag_client *c, json_object *resp)
{
	size_t n;
	const char *s = json_object_to_json_string_ext(resp,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	if (!s) {
		/* Out of memory writing the answer: the client would wait for ever. Drop it. */
		json_object_put(resp);
		c->dead = true;
		return;
	}
	n = strlen(s);
	if (c->out_off && c->out_off == c->out.len) {
		c->out.len = 0;
		c->out_off = 0;
	}
	/* Before growing, drop what was read: the buffer holds unread answers only. */
	if (c->out_off && c->out.len + n + 1 > c->out.cap) {
		memmove(c->out.data, c->out.data + c->out_off, client_pending(c));
		c->out.len -= c->out_off;
		c->out_off = 0;
	}
	pf_buf_put(&c->out, s, n);
	pf_buf_put(&c->out, "\n", 1);
	json_object_put(resp);
	if (pf_buf_status(&c->out) < 0) {
		/* Cannot even queue the answer: the client would wait for ever. Drop it. */
		c->dead = true;
		return;
	}
	if (client_flush(c) < 0)
		c->dead = true;
}

static void
send_error(struct ag_client *c, json_object *id, struct ag_error *e)
{
	client_send(c, ag_error_response(id, e));
	ag_error_release(e);
}

unsigned
ag_server_subscribers(const struct ag_server *srv)
{
	unsigned n = 0;

	for (const struct ag_client *c = srv->clients; c; c = c->next)
		if (c->events && !c->dead)
			n++;
	return n;
}

void
ag_server_notify(struct ag_server *srv, unsigned event, const char *method, json_object *params)
{
	struct ag_client *c, *next;

	for (c = srv->clients; c; c = next) {
		json_object *n, *p;

		next = c->next;
		if (!(c->events & event) || c->dead)
			continue;
		/* A client that does not read gets no more than AG_OUTPUT_MAX queued: it misses
		 * notifications (and is told how many with the next one), never its answers. */
		if (client_pending(c) >= AG_OUTPUT_MAX) {
			c->missed++;
			continue;
		}
		p = NULL;
		if (json_object_deep_copy(params, &p, NULL) < 0 || !p)
			continue;
		if (c->missed) {
			json_object_object_add(p, "missed", json_object_new_int64(c->missed));
			c->missed = 0;
		}
		n = json_object_new_object();
		json_object_object_add(n, "jsonrpc", json_object_new_string("2.0"));
		json_object_object_add(n, "method", json_object_new_string(method));
		json_object_object_add(n, "params", p);
		client_send(c, n);
		if (c->dead && !c->busy)
			client_free(c);
		else
			client_update_events(c);
	}
	json_object_put(params);
}

bool
ag_server_busy(const struct ag_server *s)
{
	return s->n_clients || s->n_calls;
}

static void
server_maybe_idle(struct ag_server *s)
{
	if (!ag_server_busy(s) && s->on_idle)
		s->on_idle(s);
}

static void
call_free(struct ag_call *call)
{
	struct ag_server *srv;

	if (!call)
		return;
	srv = call->srv;
	if (call->method && call->params)
		ag_fields_release(call->method->params, call->params);
	free(call->params);
	if (call->root) {
		ag_json_wipe_strings(call->root);
		json_object_put(call->root);
	}
	json_object_put(call->id);
	free(call);
	if (srv) {
		srv->n_calls--;
		server_maybe_idle(srv);
	}
}

static void
call_done(struct ag_call *call, json_object *resp)
{
	struct ag_client *c = call->client;

	if (!c) {
		call_free(call);
		json_object_put(resp); /* the client went away meanwhile */
		return;
	}
	c->busy = NULL;
	client_send(c, resp);
	call_free(call); /* the answer first: freeing a large request waits for it */
	sd_event_source_set_time_relative(c->idle, (uint64_t)c->srv->cfg.idle_timeout * 1000000);
	/* Inside client_process() the loop goes on by itself; otherwise restart it. */
	if (c->processing)
		return;
	client_process(c);
	if (c->dead || (c->eof && !c->busy && !c->in.len && !client_pending(c)))
		client_free(c);
	else
		client_update_events(c);
}

void
ag_call_reply(struct ag_call *call, json_object *result)
{
	call_done(call, ag_result_response(call->id, result));
}

void
ag_call_fail(struct ag_call *call, struct ag_error *e)
{
	json_object *resp = ag_error_response(call->id, e);

	ag_error_release(e);
	call_done(call, resp);
}

static void
handle_line(struct ag_client *c, char *line, size_t len)
{
	struct ag_request req = {};
	struct ag_error err = {};
	json_object *id = NULL;
	const struct ag_method *m;
	struct ag_call *call;

	c->srv->requests++;
	if (ag_request_parse(line, len, &req, &id, &err) < 0) {
		send_error(c, id, &err);
		json_object_put(id);
		return;
	}
	m = ag_method_find(req.method);
	if (!m) {
		ag_error_set(&err, AG_ERR_METHOD_NOT_FOUND, NULL, "no method '%.64s'", req.method);
		send_error(c, id, &err);
		ag_request_release(&req);
		json_object_put(id);
		return;
	}
	call = calloc(1, sizeof(*call));
	if (call)
		call->params = calloc(1, m->params_size ? m->params_size : 1);
	if (!call || !call->params) {
		free(call);
		ag_error_set(&err, AG_ERR_INTERNAL, NULL, "out of memory");
		send_error(c, id, &err);
		ag_request_release(&req);
		json_object_put(id);
		return;
	}
	call->srv = c->srv;
	c->srv->n_calls++;
	call->client = c;
	call->id = id;
	call->method = m;
	call->peer = c->peer;
	call->root = TAKE_PTR(req.root); /* params borrow strings from the tree */
	c->busy = call;
	if (ag_fields_parse(m->params, req.params, call->params, &err) < 0) {
		ag_call_fail(call, &err);
		return;
	}
	m->handler(call);
}

static void
client_consume(struct ag_client *c, size_t n)
{
	explicit_bzero(c->in.data, n);
	memmove(c->in.data, c->in.data + n, c->in.len - n);
	c->in.len -= n;
}

static void
client_process(struct ag_client *c)
{
	c->processing = true;
	while (!c->busy && !c->dead && client_pending(c) < AG_OUTPUT_MAX) {
		char *nl = c->in.len ? memchr(c->in.data, '\n', c->in.len) : NULL;
		size_t len;

		if (!nl) {
			if (c->in.len > AG_REQUEST_MAX || (c->discarding && c->in.len)) {
				if (!c->discarding) {
					struct ag_error err = {};

					ag_error_set(&err, AG_ERR_REQUEST_TOO_LARGE, NULL,
						"the request exceeds %u bytes; the rest of the line is "
						"discarded", AG_REQUEST_MAX);
					err.extra = json_object_new_object();
					json_object_object_add(err.extra, "limit",
						json_object_new_int64(AG_REQUEST_MAX));
					send_error(c, NULL, &err);
					c->discarding = true;
				}
				client_consume(c, c->in.len);
			}
			break;
		}
		len = (size_t)(nl - (char *)c->in.data);
		if (c->discarding) {
			c->discarding = false;
		} else {
			*nl = 0;
			if (len && nl[-1] == '\r')
				nl[-1] = 0, len--;
			if (len > AG_REQUEST_MAX) {
				struct ag_error err = {};

				ag_error_set(&err, AG_ERR_REQUEST_TOO_LARGE, NULL,
					"the request exceeds %u bytes", AG_REQUEST_MAX);
				err.extra = json_object_new_object();
				json_object_object_add(err.extra, "limit",
					json_object_new_int64(AG_REQUEST_MAX));
				send_error(c, NULL, &err);
			} else if (strspn((char *)c->in.data, " \t") != len) {
				handle_line(c, (char *)c->in.data, len);
			}
		}
		client_consume(c, (size_t)(nl - (char *)c->in.data) + 1);
	}
	c->processing = false;
}

static int
client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct ag_client *c = userdata;

	if (revents & EPOLLOUT) {
		if (client_flush(c) < 0) {
			client_free(c);
			return 0;
		}
	}
	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t n;

		if (pf_buf_reserve(&c->in, AG_READ_CHUNK) < 0) {
			client_free(c);
			return 0;
		}
		n = recv(fd, c->in.data + c->in.len, AG_READ_CHUNK, 0);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			client_free(c);
			return 0;
		}
		if (n == 0) {
			/* Half-closed: answer what was asked, then go. */
			c->eof = true;
		} else if (n > 0) {
			/* A line has idle_timeout from its first byte to its newline: a client
			 * trickling bytes (slowloris) is no busier than a silent one. */
			bool line_begins = !c->in.len && !c->discarding;

			c->in.len += (size_t)n;
			if (line_begins || memchr(c->in.data + c->in.len - n, '\n', (size_t)n))
				sd_event_source_set_time_relative(c->idle,
					(uint64_t)c->srv->cfg.idle_timeout * 1000000);
		}
	}
	if (c->eof && !c->discarding && c->in.len && !memchr(c->in.data, '\n', c->in.len))
		pf_buf_put(&c->in, "\n", 1); /* a last line without a newline is still a request */
	client_process(c);
	if (c->dead && !c->busy) {
		client_free(c);
		return 0;
	}
	if (c->eof && !c->busy && !c->in.len && !client_pending(c)) {
		client_free(c);
		return 0;
	}
	client_update_events(c);
	return 0;
}

static int
client_idle(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct ag_client *c = userdata;

	if (c->busy || c->events) {
		/* Waiting for a token, or for token events, is not idleness. */
		sd_event_source_set_time_relative(s, (uint64_t)c->srv->cfg.idle_timeout * 1000000);
		sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
		return 0;
	}
	client_free(c);
	return 0;
}

static void
client_free(struct ag_client *c)
{
	struct ag_server *srv = c->srv;

	if (c->busy) {
		struct ag_call *call = c->busy;

		call->client = NULL; /* the call finishes on its own and is dropped */
		c->busy = NULL;
		if (call->abandon)
			call->abandon(call);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->n_clients--;
	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->idle);
	close(c->fd);
	pf_buf_release(&c->in);
	pf_buf_release(&c->out);
	free(c);
	server_maybe_idle(srv);
}

static void
refuse(int fd, enum ag_err e, const char *msg)
{
	struct ag_error err = {};
	json_object *resp;
	const char *s;

	ag_error_set(&err, e, NULL, "%s", msg);
	resp = ag_error_response(NULL, &err);
	s = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);
	/* Best effort on a fresh non-blocking socket: a one-line answer fits its buffer. */
	(void)!send(fd, s, strlen(s), MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)!send(fd, "\n", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	json_object_put(resp);
	ag_error_release(&err);
	close(fd);
}

static int
accept_resume(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct ag_server *srv = userdata;

	sd_event_source_set_enabled(srv->listen_src, SD_EVENT_ON);
	return 0;
}

/* Out of descriptors or memory: the connection stays in the backlog and the listening socket
 * stays readable, so accepting again at once would spin. Pause accepting for a moment. */
static void
accept_pause(struct ag_server *srv)
{
	int r = 0;

	if (!srv->accept_retry)
		r = sd_event_add_time_relative(srv->event, &srv->accept_retry, CLOCK_MONOTONIC,
			AG_ACCEPT_RETRY_USEC, 0, accept_resume, srv);
	else
		r = sd_event_source_set_time_relative(srv->accept_retry, AG_ACCEPT_RETRY_USEC);
	if (r >= 0)
		r = sd_event_source_set_enabled(srv->accept_retry, SD_EVENT_ONESHOT);
	if (r >= 0)
		sd_event_source_set_enabled(srv->listen_src, SD_EVENT_OFF);
}

static int
listen_io(sd_event_source *s, int lfd, uint32_t revents, void *userdata)
{
	struct ag_server *srv = userdata;

	for (;;) {
		struct ag_client *c;
		struct ucred cred;
		socklen_t len = sizeof(cred);
		int fd, r;

		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* Out of descriptors: existing clients go on, new ones wait. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				accept_pause(srv);
			return 0;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			close(fd);
			continue;
		}
		/* R1: a per-user agent serves its own account only, root included. A system-mode
		 * agent serves every account and checks each request instead: only the registered
		 * owner of a system certificate may use it (pol_decide on call->peer). */
		if (!srv->cfg.system_mode && cred.uid != srv->uid) {
			_cleanup_free_ char *exe = ag_peer_exe(cred.pid);
			struct ag_audit_record rec = {
				.method = "connect", .peer = cred, .exe = exe, .allow = false,
				.rule = "R1", .reason = "peer-refused",
				.message = "a process of another account connected",
			};

			ag_audit_write(srv->log_stderr, &rec);
			refuse(fd, AG_ERR_PEER_REFUSED,
				"this agent serves only its own account; the certificate owner's keys "
				"are not usable by another account");
			continue;
		}
		if (srv->n_clients >= srv->cfg.max_clients) {
			refuse(fd, AG_ERR_TOO_MANY_CLIENTS, "too many clients; try again later");
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->srv = srv;
		c->fd = fd;
		c->peer = cred;
		pf_buf_init(&c->in);
		c->in.wipe = 1;
		pf_buf_init(&c->out);
		c->out.max = AG_OUTPUT_BUF_MAX;
		r = sd_event_add_io(srv->event, &c->io, fd, EPOLLIN, client_io, c);
		if (r >= 0)
			r = sd_event_add_time_relative(srv->event, &c->idle, CLOCK_MONOTONIC,
				(uint64_t)srv->cfg.idle_timeout * 1000000, 0, client_idle, c);
		if (r < 0) {
			sd_event_source_disable_unref(c->io);
			close(fd);
			free(c);
			continue;
		}
		c->next = srv->clients;
		if (srv->clients)
			srv->clients->prev = c;
		srv->clients = c;
		srv->n_clients++;
	}
}

int
ag_socket_listen(const char *path, int *ret_fd, char *ret_error, size_t error_size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_free_ char *dir = NULL;
	struct stat st;
	char *slash;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(ret_error, error_size, "socket path '%s' is too long", path);
		return -ENAMETOOLONG;
	}
	dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			r = -errno;
			snprintf(ret_error, error_size, "cannot create '%s': %s", dir, strerror(errno));
			return r;
		}
		if (lstat(dir, &st) < 0) {
			r = -errno;
			snprintf(ret_error, error_size, "cannot stat '%s': %s", dir, strerror(errno));
			return r;
		}
		/* Anyone who can enter the directory could swap the socket for their own. */
		if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
			snprintf(ret_error, error_size,
				"socket directory '%s' is not private (must be a directory owned by uid "
				"%u with mode 0700, is owned by uid %u with mode %04o)", dir,
				(unsigned)geteuid(), (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
			return -EPERM;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* A stale socket from a crashed agent is replaced; anything else is not ours to remove. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			close(fd);
			snprintf(ret_error, error_size, "'%s' exists and is not a socket", path);
			return -EEXIST;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			snprintf(ret_error, error_size, "another agent already listens on '%s'", path);
			return -EADDRINUSE;
		}
		unlink(path);
		close(fd);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
	}
	mode_t old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
		r = -errno;
		snprintf(ret_error, error_size, "cannot listen on '%s': %s", path, strerror(-r));
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int
ag_server_new(sd_event *e, const struct ag_config *cfg, const char *helper_path, int listen_fd,
	bool listen_owned, const char *socket_path, struct ag_server **ret)
{
	struct ag_server *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->event = sd_event_ref(e);
	s->cfg = *cfg;
	s->listen_fd = listen_fd;
	s->listen_owned = listen_owned;
	s->socket_path = socket_path ? strdup(socket_path) : NULL;
	s->uid = geteuid();
	sd_event_now(e, CLOCK_MONOTONIC, &s->start_usec);
	r = ag_helper_new(s, helper_path, cfg->modules, cfg->n_modules, &s->helper);
	if (r >= 0)
		r = sd_event_add_io(e, &s->listen_src, listen_fd, EPOLLIN, listen_io, s);
	if (r < 0) {
		ag_server_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

struct ag_server *
ag_server_free(struct ag_server *s)
{
	if (!s)
		return NULL;
	while (s->clients)
		client_free(s->clients);
	s->helper = ag_helper_free(s->helper);
	ag_watch_release(s);
	sd_event_source_disable_unref(s->accept_retry);
	sd_event_source_disable_unref(s->listen_src);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->listen_owned && s->socket_path)
		unlink(s->socket_path);
	free(s->socket_path);
	free(s->policy_dir);
	free(s->pinentry);
	sd_event_unref(s->event);
	free(s);
	return NULL;
}
