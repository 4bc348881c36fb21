/*
 * The asynchronous link to paraf-token-helper. Operations queue and go to the helper one at a
 * time; each has a deadline. A helper that crashes, closes its end, speaks nonsense or misses
 * a deadline is killed and reaped, the operation in flight fails with a negative errno, and
 * the next operation starts a fresh helper: parafd itself never restarts.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ag-server.h"
#include "pf-util.h"

struct ag_helper_op {
	struct ag_helper_op *next;
	struct pf_buf frame;
	unsigned timeout_ms;
	uint32_t part_type;
	ag_helper_part_cb part; /* NULL: one answer, nothing before it */
	ag_helper_cb cb;
	void *data;
};

struct ag_helper {
	sd_event *event;
	char *path;
	char **modules;
	size_t n_modules;
	pid_t pid;
	int fd;
	sd_event_source *io;
	sd_event_source *timer;
	struct ag_helper_op *head, *tail;
	bool inflight;   /* head has been (partly) sent */
	size_t out_off;  /* bytes of head->frame written */
	struct pf_buf in;
	unsigned restarts;
};

static void helper_start(struct ag_helper *h);

static void
op_free(struct ag_helper_op *op)
{
	pf_buf_release(&op->frame); /* wipes: sign frames carry the PIN */
	free(op);
}

static void
helper_stop(struct ag_helper *h)
{
	h->io = sd_event_source_disable_unref(h->io);
	h->timer = sd_event_source_disable_unref(h->timer);
	if (h->fd >= 0) {
		close(h->fd);
		h->fd = -1;
	}
	if (h->pid > 0) {
		kill(h->pid, SIGKILL);
		while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
			;
		h->pid = 0;
	}
	h->in.len = 0;
	h->out_off = 0;
}

/* Takes the head operation off the queue and answers it. */
static void
op_complete(struct ag_helper *h, int r, uint32_t type, const uint8_t *body, size_t len)
{
	struct ag_helper_op *op = h->head;

	if (!op)
		return;
	h->head = op->next;
	if (!h->head)
		h->tail = NULL;
	h->inflight = false;
	h->timer = sd_event_source_disable_unref(h->timer);
	op->cb(r, type, body, len, op->data);
	op_free(op);
}

static void
helper_fail(struct ag_helper *h, int r)
{
	bool had_op = h->inflight;

	helper_stop(h);
	h->restarts++;
	if (had_op)
		op_complete(h, r, 0, NULL, 0);
	if (h->head)
		helper_start(h);
}

static int
helper_update_events(struct ag_helper *h)
{
	uint32_t ev = EPOLLIN;

	if (h->inflight && h->head && h->out_off < h->head->frame.len)
		ev |= EPOLLOUT;
	return sd_event_source_set_io_events(h->io, ev);
}

static void
helper_write(struct ag_helper *h)
{
	struct pf_buf *f = &h->head->frame;

	while (h->out_off < f->len) {
		ssize_t n = write(h->fd, f->data + h->out_off, f->len - h->out_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			helper_fail(h, -EPIPE);
			return;
		}
		h->out_off += (size_t)n;
	}
	if (h->out_off == f->len)
		explicit_bzero(f->data, f->len); /* the helper has the PIN now; we need no copy */
	helper_update_events(h);
}

static void
helper_read(struct ag_helper *h)
{
	for (;;) {
		struct pf_buf msg;
		const uint8_t *d;
		ssize_t n;
		uint32_t flen, type;

		if (pf_buf_reserve(&h->in, AG_READ_CHUNK) < 0) {
			helper_fail(h, -ENOMEM);
			return;
		}
		n = read(h->fd, h->in.data + h->in.len, AG_READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			helper_fail(h, -ECONNRESET);
			return;
		}
		h->in.len += (size_t)n;
		/* Every whole frame read: parts of the operation in flight, then its answer. */
		while (h->in.len >= 8) {
			struct ag_helper_op *op = h->head;
			size_t whole;

			d = h->in.data;
			flen = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
			type = (uint32_t)d[4] << 24 | (uint32_t)d[5] << 16 | (uint32_t)d[6] << 8 | d[7];
			if (flen < 4 || flen > TOK_FRAME_MAX || !h->inflight) {
				/* Unasked-for or oversized: not our helper. */
				helper_fail(h, -EBADMSG);
				return;
			}
			whole = 4 + (size_t)flen;
			if (h->in.len < whole)
				break;
			if (op->part && type == op->part_type) {
				if (op->part(d + 8, flen - 4, op->data) < 0) {
					helper_fail(h, -EBADMSG);
					return;
				}
				memmove(h->in.data, h->in.data + whole, h->in.len - whole);
				h->in.len -= whole;
				continue;
			}
			if (h->in.len > whole) {
				/* More than one answer: not our helper. */
				helper_fail(h, -EBADMSG);
				return;
			}
			/* Detach the answer first: the callback may start the next operation, or a
			 * new helper, which reuses h->in. */
			msg = h->in;
			pf_buf_init(&h->in);
			op_complete(h, 0, type, msg.data + 8, flen - 4);
			pf_buf_release(&msg);
			if (h->head && !h->inflight)
				helper_start(h);
			return;
		}
	}
}

static int
helper_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct ag_helper *h = userdata;

	if (revents & EPOLLOUT && h->inflight) {
		helper_write(h);
		if (h->fd < 0)
			return 0;
	}
	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
		helper_read(h);
	return 0;
}

static int
helper_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	helper_fail(userdata, -ETIMEDOUT);
	return 0;
}

static int
helper_spawn(struct ag_helper *h)
{
	int r, fd;
	pid_t pid;

	r = tok_helper_spawn(h->path, h->modules, h->n_modules, &pid, &fd);
	if (r < 0)
		return r;
	h->pid = pid;
	h->fd = fd;
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		helper_stop(h);
		return r;
	}
	r = sd_event_add_io(h->event, &h->io, fd, EPOLLIN, helper_io, h);
	if (r < 0) {
		helper_stop(h);
		return r;
	}
	return 0;
}

static void
helper_start(struct ag_helper *h)
{
	int r;

	while (h->head && !h->inflight) {
		if (h->fd < 0) {
			r = helper_spawn(h);
			if (r < 0) {
				h->inflight = true;
				op_complete(h, r, 0, NULL, 0);
				continue;
			}
		}
		h->inflight = true;
		h->out_off = 0;
		r = sd_event_add_time_relative(h->event, &h->timer, CLOCK_MONOTONIC,
			(uint64_t)h->head->timeout_ms * 1000, 0, helper_timeout, h);
		if (r < 0) {
			helper_fail(h, r);
			return;
		}
		helper_write(h);
	}
}

int
ag_helper_submit(struct ag_helper *h, struct pf_buf *frame, unsigned timeout_ms, ag_helper_cb cb,
	void *data)
{
	return ag_helper_submit_parts(h, frame, timeout_ms, 0, NULL, cb, data);
}

int
ag_helper_submit_parts(struct ag_helper *h, struct pf_buf *frame, unsigned timeout_ms,
	uint32_t part_type, ag_helper_part_cb part, ag_helper_cb cb, void *data)
{
	struct ag_helper_op *op = calloc(1, sizeof(*op));

	if (!op) {
		pf_buf_release(frame);
		return -ENOMEM;
	}
	op->frame = *frame;
	pf_buf_init(frame);
	op->timeout_ms = timeout_ms;
	op->part_type = part_type;
	op->part = part;
	op->cb = cb;
	op->data = data;
	if (h->tail)
		h->tail->next = op;
	else
		h->head = op;
	h->tail = op;
	if (!h->inflight)
		helper_start(h);
	return 0;
}

int
ag_helper_new(struct ag_server *srv, const char *path, char *const *modules, size_t n_modules,
	struct ag_helper **ret)
{
	struct ag_helper *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->event = srv->event;
	h->fd = -1;
	h->path = strdup(path);
	h->modules = (char **)modules; /* borrowed from the server's configuration */
	h->n_modules = n_modules;
	pf_buf_init(&h->in);
	if (!h->path) {
		free(h);
		return -ENOMEM;
	}
	*ret = h;
	return 0;
}

/* At exit: the helper sees its socket close and returns (its PKCS#11 modules finalized, a
 * reader released cleanly; memcheck and LeakSanitizer check it then, see doc/security.md);
 * one still busy in a token call after HELPER_EXIT_GRACE_MS is killed by helper_stop. */
#define HELPER_EXIT_GRACE_MS 3000

static void
helper_let_exit(struct ag_helper *h)
{
	h->io = sd_event_source_disable_unref(h->io);
	h->timer = sd_event_source_disable_unref(h->timer);
	if (h->fd >= 0) {
		close(h->fd);
		h->fd = -1;
	}
	for (int waited = 0; h->pid > 0 && waited < HELPER_EXIT_GRACE_MS; waited += 10) {
		pid_t p = waitpid(h->pid, NULL, WNOHANG);

		if (p == h->pid || (p < 0 && errno == ECHILD))
			h->pid = 0;
		else
			usleep(10 * 1000);
	}
}

struct ag_helper *
ag_helper_free(struct ag_helper *h)
{
	if (!h)
		return NULL;
	helper_let_exit(h);
	helper_stop(h);
	while (h->head)
		op_complete(h, -ECANCELED, 0, NULL, 0);
	pf_buf_release(&h->in);
	free(h->path);
	free(h);
	return NULL;
}

void
ag_helper_recycle(struct ag_helper *h)
{
	/* Only between operations: the one in flight would be lost. */
	if (!h->inflight && h->pid > 0) {
		helper_stop(h);
		h->restarts++;
	}
}

pid_t
ag_helper_pid(const struct ag_helper *h)
{
	return h->pid;
}

unsigned
ag_helper_restarts(const struct ag_helper *h)
{
	return h->restarts;
}

bool
ag_helper_busy(const struct ag_helper *h)
{
	return h->inflight || h->head;
}
