/*
 * A harness for test/test_pinentry_tty.py: asks for a PIN through agent/ag-pinentry.c with a
 * real pinentry on a terminal (a tmux pane) and reports what came back, never the PIN itself
 * (R2): its length and SHA-256, so a test can compare with what it typed.
 *
 *   pinentry-probe --program PATH [--tty PATH|auto] [--ttytype TERM] [--lang LANG]
 *                  [--description TEXT] [--prompt TEXT] [--error TEXT] [--confirm TEXT]
 *                  [--timeout SECONDS] [--cancel-after SECONDS] [--out FILE]
 *
 * --tty auto (the default) is the terminal on stdin, --ttytype defaults to $TERM.
 * --cancel-after plays a client that goes away: the dialog is cancelled after that long.
 * Prints one line, "ok len=N sha256=HEX", "error r=-N NAME" or, after --cancel-after,
 * "cancelled pid=N gone" (or "... still-running" if the pinentry outlived the cancel by 3 s),
 * to stdout and, when --out is given, into FILE (written whole, then renamed into place, so a
 * poller never sees half a line). Exit status 0 for a PIN, 1 otherwise, 2 for a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ag-pinentry.h"
#include "pf-util.h"

struct probe {
	int calls;
	int r;
	char line[160];
	struct ag_pinentry *p;
	pid_t cancelled_pid;
};

static const char *
errno_name(int r)
{
	switch (-r) {
	case ECANCELED:
		return "cancelled";
	case ETIMEDOUT:
		return "timeout";
	case ENOENT:
		return "cannot-run";
	case E2BIG:
		return "pin-too-long";
	case EIO:
		return "protocol-error";
	default:
		return "other";
	}
}

static void
on_pin(int r, struct pf_secret *pin, void *data)
{
	struct probe *pr = data;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0, i;
	int n;

	pr->p = NULL; /* gone once it has answered */
	pr->calls++;
	pr->r = r;
	if (r < 0) {
		snprintf(pr->line, sizeof(pr->line), "error r=%d %s\n", r, errno_name(r));
		return;
	}
	if (EVP_Digest(pin->data, pin->len, md, &md_len, EVP_sha256(), NULL) != 1) {
		pr->r = -EIO;
		snprintf(pr->line, sizeof(pr->line), "error r=%d sha256-failed\n", -EIO);
		pf_secret_free(pin);
		return;
	}
	n = snprintf(pr->line, sizeof(pr->line), "ok len=%zu sha256=", pin->len);
	for (i = 0; i < md_len; i++)
		n += snprintf(pr->line + n, sizeof(pr->line) - (size_t)n, "%02x", md[i]);
	snprintf(pr->line + n, sizeof(pr->line) - (size_t)n, "\n");
	pf_secret_free(pin);
	explicit_bzero(md, sizeof(md));
}

static int
cancel_now(sd_event_source *s, uint64_t usec, void *data)
{
	struct probe *pr = data;

	if (pr->calls)
		return 0;
	pr->cancelled_pid = ag_pinentry_pid(pr->p);
	pr->p = ag_pinentry_cancel(pr->p);
	pr->calls++;
	pr->r = -ECANCELED;
	return 0;
}

static bool
pid_gone(pid_t pid)
{
	return kill(pid, 0) < 0 && errno == ESRCH;
}

static int
write_out(const char *path, const char *line)
{
	char tmp[PATH_MAX];
	size_t n = strlen(line);
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, line, n) != (ssize_t)n || fsync(fd) < 0) {
		int r = pf_negerrno();
		close(fd);
		return r;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0)
		return -errno;
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: pinentry-probe --program PATH [--tty PATH|auto] [--ttytype TERM]\n"
			"       [--lang LANG] [--description TEXT] [--prompt TEXT] [--error TEXT]\n"
			"       [--confirm TEXT] [--timeout SECONDS] [--cancel-after SECONDS]\n"
			"       [--out FILE]\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "program", required_argument, NULL, 'p' },
		{ "tty", required_argument, NULL, 't' },
		{ "ttytype", required_argument, NULL, 'T' },
		{ "lang", required_argument, NULL, 'l' },
		{ "description", required_argument, NULL, 'd' },
		{ "prompt", required_argument, NULL, 'P' },
		{ "error", required_argument, NULL, 'e' },
		{ "confirm", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 'w' },
		{ "out", required_argument, NULL, 'o' },
		{ "cancel-after", required_argument, NULL, 'C' },
		{}
	};
	struct ag_pin_dialog d = {
		.title = "paraf",
		.description = "paraf pinentry probe",
		.prompt = "PIN:",
		.ok_label = "Tanda tangani",
		.cancel_label = "Batal",
		.timeout = 60,
	};
	const char *tty = "auto", *out = NULL;
	struct probe pr = {};
	sd_event *e = NULL;
	sd_event_source *canceller = NULL;
	unsigned cancel_after = 0;
	sigset_t mask;
	char *end;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p': d.program = optarg; break;
		case 't': tty = optarg; break;
		case 'T': d.tty_type = optarg; break;
		case 'l': d.lang = optarg; break;
		case 'd': d.description = optarg; break;
		case 'P': d.prompt = optarg; break;
		case 'e': d.error = optarg; break;
		case 'c': d.confirm_text = optarg; break;
		case 'o': out = optarg; break;
		case 'w':
		case 'C':
			errno = 0;
			*(c == 'w' ? &d.timeout : &cancel_after) =
				(unsigned)strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg) {
				usage();
				return 2;
			}
			break;
		default:
			usage();
			return 2;
		}
	}
	if (!d.program || optind != argc) {
		usage();
		return 2;
	}
	d.tty = streq(tty, "auto") ? ttyname(STDIN_FILENO) : tty;
	if (!d.tty) {
		fprintf(stderr, "pinentry-probe: stdin is not a terminal: give --tty\n");
		return 2;
	}
	if (!d.tty_type)
		d.tty_type = getenv("TERM");

	/* As parafd runs: these blocked for sd-event, SIGPIPE ignored. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	r = sd_event_new(&e);
	if (r >= 0)
		r = ag_pinentry_ask(e, &d, on_pin, &pr, &pr.p);
	if (r >= 0 && cancel_after)
		r = sd_event_add_time_relative(e, &canceller, CLOCK_MONOTONIC,
			(uint64_t)cancel_after * 1000000, 0, cancel_now, &pr);
	if (r < 0) {
		pr.p = ag_pinentry_cancel(pr.p);
		snprintf(pr.line, sizeof(pr.line), "error r=%d cannot-ask\n", r);
		pr.r = r;
	}
	while (r >= 0 && pr.calls == 0) {
		r = sd_event_run(e, UINT64_MAX);
		if (r < 0) {
			pr.p = ag_pinentry_cancel(pr.p);
			snprintf(pr.line, sizeof(pr.line), "error r=%d event-loop\n", r);
			pr.r = r;
		}
	}
	canceller = sd_event_source_disable_unref(canceller);
	/* Let the reaper finish (BYE, exit) so no pinentry outlives the probe; bounded. */
	for (int i = 0; i < 150 && e && sd_event_run(e, 20 * 1000) > 0; i++)
		;
	if (pr.cancelled_pid > 0)
		snprintf(pr.line, sizeof(pr.line), "cancelled pid=%d %s\n", (int)pr.cancelled_pid,
			pid_gone(pr.cancelled_pid) ? "gone" : "still-running");
	sd_event_unref(e);

	fputs(pr.line, stdout);
	fflush(stdout);
	if (out && (r = write_out(out, pr.line)) < 0) {
		fprintf(stderr, "pinentry-probe: cannot write '%s': %s\n", out, strerror(-r));
		return 2;
	}
	return pr.r == 0 ? 0 : 1;
}
