/*
 * A synchronous link to paraf-token-helper for programs that are not an event loop (the
 * provisioning commands of the CLI): one request frame out, one answer frame back, under one
 * deadline. A helper that misses the deadline, closes its end or sends a frame beyond the cap
 * is killed and reaped at once, as parafd does (ag-helper.c); the link is then dead.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pf-util.h"
#include "tok.h"

#define TOK_LINK_GRACE_MS 1000 /* for the helper to exit by itself once its socket closes */
#define TOK_LINK_GRACE_STEP_MS 10

struct tok_link {
	pid_t pid; /* 0 once reaped */
	int fd;    /* -1 once closed */
};

static void
link_kill(struct tok_link *l)
{
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	if (l->pid > 0) {
		(void)kill(l->pid, SIGKILL);
		while (waitpid(l->pid, NULL, 0) < 0 && errno == EINTR)
			;
		l->pid = 0;
	}
}

int
tok_link_open(const char *helper_path, char *const *modules, size_t n_modules,
	struct tok_link **ret)
{
	struct tok_link *l;
	int r, fl;

	if (!helper_path || access(helper_path, X_OK) < 0)
		return helper_path ? -errno : -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	r = tok_helper_spawn(helper_path, modules, n_modules, &l->pid, &l->fd);
	if (r < 0) {
		free(l);
		return r;
	}
	/* Non-blocking, so that a helper that stops reading cannot hold us past the deadline. */
	fl = fcntl(l->fd, F_GETFL);
	if (fl < 0 || fcntl(l->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		r = -errno;
		link_kill(l);
		free(l);
		return r;
	}
	*ret = l;
	return 0;
}

struct tok_link *
tok_link_close(struct tok_link *l)
{
	int waited;

	if (!l)
		return NULL;
	if (l->fd >= 0) {
		close(l->fd); /* the helper reads EOF and exits */
		l->fd = -1;
	}
	for (waited = 0; l->pid > 0 && waited < TOK_LINK_GRACE_MS;
	     waited += TOK_LINK_GRACE_STEP_MS) {
		pid_t p = waitpid(l->pid, NULL, WNOHANG);

		if (p == l->pid || (p < 0 && errno == ECHILD)) {
			l->pid = 0;
			break;
		}
		if (p < 0 && errno != EINTR)
			break;
		(void)poll(NULL, 0, TOK_LINK_GRACE_STEP_MS);
	}
	link_kill(l);
	free(l);
	return NULL;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passes: 0, -ETIMEDOUT, -errno. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int64_t left = deadline - now_ms();
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n > 0)
			return 0; /* ready, or POLLHUP/POLLERR: the read or write says which */
	}
}

static int
send_all(int fd, const uint8_t *p, size_t n, int64_t deadline)
{
	while (n) {
		/* MSG_NOSIGNAL: a helper that died must not take us with SIGPIPE. */
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		int r;

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			r = wait_fd(fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			continue;
		}
		if (k < 0)
			return errno == EPIPE ? -ECONNRESET : -errno;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int
recv_all(int fd, uint8_t *p, size_t n, int64_t deadline)
{
	while (n) {
		ssize_t k = read(fd, p, n);
		int r;

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			r = wait_fd(fd, POLLIN, deadline);
			if (r < 0)
				return r;
			continue;
		}
		if (k < 0)
			return -errno;
		if (k == 0)
			return -ECONNRESET;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int
tok_link_call(struct tok_link *l, struct pf_buf *frame, unsigned timeout_ms, uint32_t *ret_type,
	struct pf_buf *ret_body)
{
	int64_t deadline = now_ms() + timeout_ms;
	uint8_t hdr[8];
	uint32_t n, type;
	int r;

	if (!l || l->fd < 0)
		r = -ENOTCONN;
	else if (frame->error)
		r = frame->error;
	else if (timeout_ms == 0 || frame->len < 8)
		r = -EINVAL;
	else
		r = 0;
	if (r == 0)
		r = send_all(l->fd, frame->data, frame->len, deadline);
	else
		l = NULL; /* refused before anything was sent: the link stays as it was */
	/* The frame may hold a PIN: it is dead once written, or once it cannot be. */
	if (frame->data)
		explicit_bzero(frame->data, frame->cap);
	frame->len = 0;
	if (r < 0)
		goto fail;

	r = recv_all(l->fd, hdr, sizeof(hdr), deadline);
	if (r < 0)
		goto fail;
	n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	type = (uint32_t)hdr[4] << 24 | (uint32_t)hdr[5] << 16 | (uint32_t)hdr[6] << 8 | hdr[7];
	if (n < 4 || n > TOK_FRAME_MAX) {
		r = -EBADMSG;
		goto fail;
	}
	n -= 4;
	if (ret_body->data && ret_body->wipe)
		explicit_bzero(ret_body->data, ret_body->len);
	ret_body->len = 0;
	ret_body->error = 0;
	r = pf_buf_reserve(ret_body, n);
	if (r == 0)
		r = recv_all(l->fd, ret_body->data, n, deadline);
	if (r < 0)
		goto fail;
	ret_body->len = n;
	*ret_type = type;
	return 0;
fail:
	/* Once a request went out, nothing more can be believed on this socket: no stale answer
	 * may pair with a later request. */
	if (l)
		link_kill(l);
	return r;
}
