/*
 * The audit socket: accepts any local process, reads its lines, and answers each one, in
 * order, only once its record is on disk. Who sent a record comes from SO_PEERCRED, taken when
 * the connection is accepted. Appends are synchronous (each ends in fdatasync), so one loop
 * turn stores the lines one client had buffered, then the next client's: a client that sends
 * many lines is answered in order and others still get their turn.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "aud-internal.h"
#include "aud-server.h"
#include "pf-buf.h"
#include "pf-util.h"

#define AUD_READ_CHUNK (64u * 1024u)
#define AUD_LINES_PER_TURN 64 /* records of one client stored before the others' turn */

struct aud_conn {
	struct aud_server *srv;
	struct aud_conn *prev, *next;
	int fd;
	sd_event_source *io;
	sd_event_source *defer; /* more buffered lines to store on the next turn */
	struct ucred peer;
	struct pf_buf in;
	bool discarding; /* dropping the rest of an over-long line */
	bool eof;
	struct pf_buf out;
	size_t out_off;
};

struct aud_server {
	sd_event *event;
	struct aud_log *log;
	int listen_fd;
	char *socket_path;
	sd_event_source *listen_src;
	sd_event_source *timer;
	uint64_t checkpoint_usec;
	struct aud_conn *conns;
	unsigned n_conns;
};

static void conn_free(struct aud_conn *c);
static void conn_update(struct aud_conn *c);

static size_t
conn_pending(const struct aud_conn *c)
{
	return c->out.len - c->out_off;
}

/* -EPIPE when the client is gone. */
static int
conn_flush(struct aud_conn *c)
{
	while (conn_pending(c)) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, conn_pending(c),
			MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return -EPIPE;
		c->out_off += (size_t)n;
	}
	c->out.len = c->out_off = 0;
	return 0;
}

static void
conn_answer(struct aud_conn *c, const char *s)
{
	pf_buf_put(&c->out, s, strlen(s));
}

static const char *
error_reason(int r)
{
	switch (r) {
	case -EMSGSIZE:
		return "too-large";
	case -EINVAL:
		return "not-json";
	case -ENOSPC:
		return "disk-full";
	case -EIO:
		return "io-error";
	default:
		return "internal";
	}
}

static void
conn_store(struct aud_conn *c, const char *line, size_t len)
{
	char hash[AUD_HASH_HEX + 1], buf[128];
	uint64_t seq;
	int r;

	r = aud_log_append(c->srv->log, c->peer.uid, c->peer.pid, line, len, &seq, hash);
	if (r < 0)
		snprintf(buf, sizeof(buf), "error %s\n", error_reason(r));
	else
		snprintf(buf, sizeof(buf), "ok %" PRIu64 " %s\n", seq, hash);
	conn_answer(c, buf);
}

/* Stores up to AUD_LINES_PER_TURN complete lines; true when more are waiting. */
static bool
conn_process(struct aud_conn *c)
{
	size_t off = 0;
	unsigned lines = 0;
	bool more = false;

	while (off < c->in.len) {
		char *start = (char *)c->in.data + off;
		char *nl = memchr(start, '\n', c->in.len - off);
		size_t len;

		if (lines == AUD_LINES_PER_TURN || conn_pending(c) >= AUD_OUTPUT_MAX) {
			more = conn_pending(c) < AUD_OUTPUT_MAX;
			break;
		}
		if (!nl) {
			if (c->discarding) {
				off = c->in.len;
			} else if (c->in.len - off > AUD_RECORD_MAX) {
				conn_answer(c, "error too-large\n");
				c->discarding = true;
				off = c->in.len;
			} else if (c->eof) {
				/* A last line without its newline is still a record. */
				conn_store(c, start, c->in.len - off);
				lines++;
				off = c->in.len;
			}
			break;
		}
		len = (size_t)(nl - start);
		if (c->discarding)
			c->discarding = false; /* the rest of the over-long line: answered already */
		else if (len > AUD_RECORD_MAX)
			conn_answer(c, "error too-large\n");
		else
			conn_store(c, start, len);
		lines++;
		off += len + 1;
	}
	if (off) {
		memmove(c->in.data, c->in.data + off, c->in.len - off);
		c->in.len -= off;
	}
	return more;
}

static bool
conn_done(const struct aud_conn *c)
{
	return c->eof && !c->in.len && !conn_pending(c);
}

/* One turn for a client: store what it sent, send what is answered. false: it is freed. */
static bool
conn_turn(struct aud_conn *c)
{
	bool more = conn_process(c);

	if (pf_buf_status(&c->out) < 0 || conn_flush(c) < 0 || conn_done(c)) {
		conn_free(c);
		return false;
	}
	sd_event_source_set_enabled(c->defer, more ? SD_EVENT_ONESHOT : SD_EVENT_OFF);
	conn_update(c);
	return true;
}

static void
conn_update(struct aud_conn *c)
{
	uint32_t ev = 0;

	/* Read while there is room for a line and the client reads its answers. */
	if (!c->eof && c->in.len <= AUD_RECORD_MAX && conn_pending(c) < AUD_OUTPUT_MAX)
		ev |= EPOLLIN;
	if (conn_pending(c))
		ev |= EPOLLOUT;
	sd_event_source_set_io_events(c->io, ev);
}

static int
conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct aud_conn *c = userdata;

	if (revents & EPOLLOUT) {
		if (conn_flush(c) < 0) {
			conn_free(c);
			return 0;
		}
	}
	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t n;

		if (pf_buf_reserve(&c->in, AUD_READ_CHUNK) < 0) {
			conn_free(c);
			return 0;
		}
		n = recv(fd, c->in.data + c->in.len, AUD_READ_CHUNK, MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			/* A reset: nobody is left to answer. */
			conn_free(c);
			return 0;
		}
		if (n == 0)
			c->eof = true;
		else if (n > 0)
			c->in.len += (size_t)n;
	}
	conn_turn(c);
	return 0;
}

static int
conn_defer(sd_event_source *s, void *userdata)
{
	conn_turn(userdata);
	return 0;
}

static void
conn_free(struct aud_conn *c)
{
	struct aud_server *srv = c->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->n_conns--;
	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->defer);
	close(c->fd);
	pf_buf_release(&c->in);
	pf_buf_release(&c->out);
	free(c);
}

static int
listen_io(sd_event_source *s, int lfd, uint32_t revents, void *userdata)
{
	struct aud_server *srv = userdata;

	for (;;) {
		struct aud_conn *c;
		socklen_t len = sizeof(struct ucred);
		int fd, r;

		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return 0; /* EAGAIN, or out of descriptors: the clients we have go on */
		}
		if (srv->n_conns >= AUD_CLIENTS_MAX) {
			close(fd); /* the client sees the connection close: no service */
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		/* Who sends is the kernel's word, never the record's. */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->peer, &len) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->srv = srv;
		c->fd = fd;
		pf_buf_init(&c->in);
		pf_buf_init(&c->out);
		r = sd_event_add_io(srv->event, &c->io, fd, EPOLLIN, conn_io, c);
		if (r >= 0)
			r = sd_event_add_defer(srv->event, &c->defer, conn_defer, c);
		if (r >= 0)
			r = sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
		if (r < 0) {
			sd_event_source_disable_unref(c->io);
			sd_event_source_disable_unref(c->defer);
			close(fd);
			free(c);
			continue;
		}
		c->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = c;
		srv->conns = c;
		srv->n_conns++;
	}
}

static int
checkpoint_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct aud_server *srv = userdata;

	if (aud_log_uncheckpointed(srv->log) > 0)
		(void)aud_log_checkpoint(srv->log); /* retried on the next tick */
	sd_event_source_set_time(s, usec + srv->checkpoint_usec);
	sd_event_source_set_enabled(s, SD_EVENT_ON);
	return 0;
}

int
aud_server_new(sd_event *e, struct aud_log *log, int listen_fd, const char *socket_path,
	unsigned checkpoint_seconds, struct aud_server **ret)
{
	struct aud_server *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->event = sd_event_ref(e);
	s->log = log;
	s->listen_fd = listen_fd;
	s->checkpoint_usec = (uint64_t)(checkpoint_seconds ? checkpoint_seconds :
							     AUD_CHECKPOINT_SECONDS) * 1000000;
	if (socket_path) {
		s->socket_path = strdup(socket_path);
		if (!s->socket_path) {
			aud_server_free(s);
			return -ENOMEM;
		}
	}
	r = sd_event_add_io(e, &s->listen_src, listen_fd, EPOLLIN, listen_io, s);
	if (r >= 0)
		r = sd_event_add_time_relative(e, &s->timer, CLOCK_MONOTONIC, s->checkpoint_usec,
			0, checkpoint_timer, s);
	if (r < 0) {
		aud_server_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

struct aud_server *
aud_server_free(struct aud_server *s)
{
	if (!s)
		return NULL;
	while (s->conns)
		conn_free(s->conns);
	sd_event_source_disable_unref(s->listen_src);
	sd_event_source_disable_unref(s->timer);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->socket_path)
		unlink(s->socket_path);
	free(s->socket_path);
	sd_event_unref(s->event);
	free(s);
	return NULL;
}

unsigned
aud_server_clients(const struct aud_server *s)
{
	return s->n_conns;
}

int
aud_socket_listen(const char *path, int *ret_fd, char *why, size_t why_size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_free_ char *dir = NULL;
	struct stat st;
	char *slash;
	mode_t old;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, why_size, "socket path '%s' is too long", path);
		return -ENAMETOOLONG;
	}
	dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) == 0) {
			(void)chmod(dir, 0755); /* whatever the umask: local users reach the socket */
		} else if (errno != EEXIST) {
			r = -errno;
			snprintf(why, why_size, "cannot create '%s': %s", dir, strerror(errno));
			return r;
		}
		if (lstat(dir, &st) < 0) {
			r = -errno;
			snprintf(why, why_size, "cannot stat '%s': %s", dir, strerror(errno));
			return r;
		}
		/* Whoever may write the directory could put their own socket in our place. */
		if (!S_ISDIR(st.st_mode) || (st.st_uid != geteuid() && st.st_uid != 0) ||
		    ((st.st_mode & 022) && !(st.st_mode & S_ISVTX))) {
			snprintf(why, why_size, "the socket directory '%s' must be owned by uid %u or "
				"root and writable by nobody else (it is owned by uid %u, mode %04o)",
				dir, (unsigned)geteuid(), (unsigned)st.st_uid,
				(unsigned)(st.st_mode & 07777));
			return -EPERM;
		}
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		/* A stale socket of a service that crashed is replaced; nothing else is. */
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(why, why_size, "'%s' exists and is not a socket", path);
			return -EEXIST;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (r == 0) {
			snprintf(why, why_size, "another service already listens on '%s'", path);
			return -EADDRINUSE;
		}
		(void)unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	old = umask(0111);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chmod(path, 0666) < 0 || listen(fd, SOMAXCONN) < 0) {
		r = -errno;
		snprintf(why, why_size, "cannot listen on '%s': %s", path, strerror(-r));
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}
