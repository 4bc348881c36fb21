/*
 * The client side of the audit socket (parafd, paraf admin): one connection, one record in
 * flight. Each send writes one line and waits, with poll() and a deadline, for its one answer.
 * A connection that failed in any way is dropped, since a late answer could otherwise be taken
 * for the next record's; the next send connects again.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "aud-internal.h"
#include "pf-util.h"

#define AUD_CONNECT_TIMEOUT_MS 5000 /* a service whose backlog is full */
#define AUD_ANSWER_MAX 128          /* "ok <seq> <hash>": about 90 bytes */

struct aud_client {
	int fd;
	char *path;
	char in[AUD_ANSWER_MAX];
	size_t in_len;
};

static int
client_open(const char *path, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { AUD_CONNECT_TIMEOUT_MS / 1000, (AUD_CONNECT_TIMEOUT_MS % 1000) * 1000 };
	size_t n = strlen(path);
	int fd, r;

	if (n == 0)
		return -EINVAL;
	if (n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, n + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A blocking connect waits while the backlog is full; SO_SNDTIMEO bounds that wait. */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	do
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		r = (errno == EAGAIN || errno == EINPROGRESS) ? -ETIMEDOUT : -errno;
		close(fd);
		return r;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static void
client_drop(struct aud_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->in_len = 0;
}

int
aud_client_connect(const char *socket_path, struct aud_client **ret)
{
	struct aud_client *c;
	int r;

	if (!socket_path)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->path = strdup(socket_path);
	if (!c->path) {
		free(c);
		return -ENOMEM;
	}
	r = client_open(c->path, &c->fd);
	if (r < 0) {
		aud_client_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

struct aud_client *
aud_client_free(struct aud_client *c)
{
	if (!c)
		return NULL;
	client_drop(c);
	free(c->path);
	free(c);
	return NULL;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits for events on the connection until the deadline (0: none). -ETIMEDOUT. */
static int
client_wait(struct aud_client *c, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = events };
		int timeout = -1, r;

		if (deadline) {
			uint64_t now = now_ms();
			if (now >= deadline)
				return -ETIMEDOUT;
			timeout = deadline - now > INT32_MAX ? INT32_MAX : (int)(deadline - now);
		}
		r = poll(&p, 1, timeout);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		return 0;
	}
}

/* A connection the service closed while idle (it restarted) reads as EOF: replace it before
 * sending, when nothing of the record has gone out yet. */
static bool
client_stale(struct aud_client *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	return poll(&p, 1, 0) != 0;
}

static int
client_write(struct aud_client *c, const char *json, size_t len, uint64_t deadline)
{
	size_t done = 0, total = len + 1;

	while (done < total) {
		struct iovec iov[2];
		struct msghdr mh = { .msg_iov = iov };
		ssize_t n;
		int r;

		if (done < len) {
			iov[0] = (struct iovec){ (char *)json + done, len - done };
			iov[1] = (struct iovec){ "\n", 1 };
			mh.msg_iovlen = 2;
		} else {
			iov[0] = (struct iovec){ "\n", 1 };
			mh.msg_iovlen = 1;
		}
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (n >= 0) {
			done += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return errno == ECONNRESET || errno == ENOTCONN ? -EPIPE : -errno;
		r = client_wait(c, POLLOUT, deadline);
		if (r < 0)
			return r;
	}
	return 0;
}

static int
parse_u64(const char *s, size_t n, uint64_t *ret)
{
	uint64_t v = 0;

	if (n == 0 || n > 20 || (s[0] == '0' && n > 1))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*ret = v;
	return 0;
}

static int
parse_answer(const char *s, size_t n, uint64_t *ret_seq)
{
	static const struct {
		const char *reason;
		int err;
	} reasons[] = {
		{ "disk-full", -ENOSPC },
		{ "io-error", -EIO },
		{ "too-large", -EMSGSIZE },
		{ "not-json", -EINVAL },
		{ "internal", -EPROTO },
	};
	const char *sp;
	uint64_t seq;

	if (n > 3 && memcmp(s, "ok ", 3) == 0) {
		sp = memchr(s + 3, ' ', n - 3);
		if (!sp || parse_u64(s + 3, (size_t)(sp - s - 3), &seq) < 0 || seq == 0)
			return -EPROTO;
		if ((size_t)(s + n - sp - 1) != AUD_HASH_HEX || !aud_hex_valid(sp + 1, AUD_HASH_HEX))
			return -EPROTO;
		*ret_seq = seq;
		return 0;
	}
	if (n > 6 && memcmp(s, "error ", 6) == 0) {
		for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
			if (n - 6 == strlen(reasons[i].reason) &&
			    memcmp(s + 6, reasons[i].reason, n - 6) == 0)
				return reasons[i].err;
	}
	return -EPROTO;
}

static int
client_read_answer(struct aud_client *c, uint64_t deadline, uint64_t *ret_seq)
{
	for (;;) {
		char *nl = memchr(c->in, '\n', c->in_len);
		ssize_t n;
		int r;

		if (nl) {
			size_t len = (size_t)(nl - c->in);

			/* One record in flight: anything after its answer is not ours. */
			if (len + 1 != c->in_len)
				return -EPROTO;
			c->in_len = 0;
			return parse_answer(c->in, len, ret_seq);
		}
		if (c->in_len == sizeof(c->in))
			return -EPROTO;
		n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
		if (n > 0) {
			c->in_len += (size_t)n;
			continue;
		}
		if (n == 0)
			return -EPIPE; /* the service went away: the record may or may not be stored */
		if (errno == EINTR)
			continue;
		if (errno == ECONNRESET)
			return -EPIPE;
		if (errno != EAGAIN)
			return -errno;
		r = client_wait(c, POLLIN, deadline);
		if (r < 0)
			return r;
	}
}

int
aud_client_send(struct aud_client *c, const char *json, size_t len, unsigned timeout_ms,
	uint64_t *ret_seq)
{
	uint64_t deadline = timeout_ms ? now_ms() + timeout_ms : 0, seq = 0;
	int r;

	if (!c || !json)
		return -EINVAL;
	if (len > AUD_RECORD_MAX)
		return -EMSGSIZE;
	if (memchr(json, '\n', len) || memchr(json, '\0', len))
		return -EINVAL; /* one record is one line */
	if (c->fd >= 0 && client_stale(c))
		client_drop(c);
	if (c->fd < 0) {
		r = client_open(c->path, &c->fd);
		if (r < 0)
			return r;
	}
	r = client_write(c, json, len, deadline);
	if (r >= 0)
		r = client_read_answer(c, deadline, &seq);
	if (r < 0 && r != -ENOSPC && r != -EIO && r != -EMSGSIZE && r != -EINVAL) {
		client_drop(c);
		return r;
	}
	if (r < 0)
		return r;
	if (ret_seq)
		*ret_seq = seq;
	return 0;
}
