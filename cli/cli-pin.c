/*
 * Getting the token PIN for `paraf sign` (R2): from the first line of a --pin-file, or typed at
 * the terminal (/dev/tty, echo off), never from argv or the environment. The PIN goes straight
 * into a struct pf_secret; the stack buffers it passed through are wiped before returning, and
 * the terminal's echo is restored even when the prompt is interrupted by a signal.
 */
#include "cli.h"

#include <fcntl.h>
#include <signal.h>
#include <termios.h>

/* A PIN line: PF_SECRET_MAX bytes, "\r\n", and the NUL. */
#define PIN_LINE_MAX (PF_SECRET_MAX + 3)

/* The line in buf[0..n) up to its first newline, "\r\n" or "\n" removed; its length. */
static size_t
pin_line_length(const char *buf, size_t n, int *ret_complete)
{
	const char *nl = memchr(buf, '\n', n);
	size_t len = nl ? (size_t)(nl - buf) : n;

	*ret_complete = nl != NULL;
	if (nl && len > 0 && buf[len - 1] == '\r')
		len--;
	return len;
}

int
cli_pin_read_file(const char *path, struct pf_secret **ret)
{
	_cleanup_close_ int fd = -1;
	char buf[PIN_LINE_MAX];
	size_t n = 0, len;
	int complete = 0, r;

	/* Not O_NONBLOCK: a pipe (--pin-file <(pass show token)) is a fine source. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return pf_negerrno();
	while (n < sizeof(buf) - 1) {
		ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = pf_negerrno();
			goto out;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (memchr(buf, '\n', n))
			break;
	}
	len = pin_line_length(buf, n, &complete);
	if (!complete && n == sizeof(buf) - 1) {
		r = -E2BIG;
		goto out;
	}
	if (len == 0) {
		r = -ENODATA;
		goto out;
	}
	if (len > PF_SECRET_MAX) {
		r = -E2BIG;
		goto out;
	}
	r = pf_secret_new(buf, len, ret);
	if (r == -EINVAL) /* a NUL byte inside the line */
		r = -EBADMSG;
out:
	explicit_bzero(buf, sizeof(buf));
	return r;
}

static volatile sig_atomic_t pin_signal;

static void
pin_on_signal(int sig)
{
	pin_signal = sig;
}

int
cli_pin_read_tty(const char *prompt, struct pf_secret **ret)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct sigaction sa = { .sa_handler = pin_on_signal }, old_sa[ARRAY_SIZE(sigs)];
	_cleanup_close_ int fd = -1;
	struct termios old, noecho;
	char buf[PIN_LINE_MAX];
	size_t n = 0, len, i;
	int r = 0, eof = 0, overlong = 0;

	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -ENXIO;
	if (tcgetattr(fd, &old) < 0)
		return pf_negerrno();

	/* No SA_RESTART: a signal must end the read() so that echo comes back on at once. */
	pin_signal = 0;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, &old_sa[i]);

	noecho = old;
	noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	noecho.c_lflag |= ECHONL | ICANON;
	if (tcsetattr(fd, TCSAFLUSH, &noecho) < 0) {
		r = pf_negerrno();
		goto restore_signals;
	}
	if (write(fd, prompt, strlen(prompt)) < 0) {
		r = pf_negerrno();
		goto restore_tty;
	}
	/* One byte at a time, so nothing after the newline is consumed. */
	while (!pin_signal) {
		char ch;
		ssize_t k = read(fd, &ch, 1);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = pf_negerrno();
			break;
		}
		if (k == 0) {
			eof = 1;
			break;
		}
		if (ch == '\n')
			break;
		if (n < PF_SECRET_MAX + 1)
			buf[n++] = ch;
		else
			overlong = 1; /* keep reading to the newline, refuse below */
		explicit_bzero(&ch, sizeof(ch));
	}
restore_tty:
	(void)tcsetattr(fd, TCSAFLUSH, &old);
	if (eof || pin_signal)
		(void)!write(fd, "\n", 1);
restore_signals:
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &old_sa[i], NULL);
	if (pin_signal) {
		explicit_bzero(buf, sizeof(buf));
		/* Now with the old disposition and echo back on: act on it as if it came now. */
		raise(pin_signal);
		return -EINTR;
	}
	if (r < 0)
		goto out;
	len = n;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (eof || (len == 0 && !overlong)) {
		r = -ECANCELED;
		goto out;
	}
	if (overlong || len > PF_SECRET_MAX) {
		r = -E2BIG;
		goto out;
	}
	r = pf_secret_new(buf, len, ret);
	if (r == -EINVAL)
		r = -EBADMSG;
out:
	explicit_bzero(buf, sizeof(buf));
	return r;
}
