/*
 * paraf-auditd: the audit log service (R13). Parses its command line, opens (and if need be
 * repairs) the log, finds or makes its socket, and runs the event loop; every checkpoint is
 * mirrored to the journal (stderr in the foreground). Everything else is in the audit library.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <json-c/json.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#include "aud-internal.h"
#include "aud-server.h"
#include "paraf-config.h"
#include "pf-util.h"

static bool foreground;

static void _printf_(2, 3)
log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (foreground) {
		fputs("paraf-auditd: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		fflush(stderr);
	} else {
		sd_journal_printv(prio, fmt, ap);
	}
	va_end(ap);
}

/* Every checkpoint also goes where the log's owner cannot quietly rewrite it. */
static void
mirror_checkpoint(const char *json, void *userdata)
{
	json_object *o, *v;
	const char *count = "", *head = "", *file = "", *offset = "";

	if (foreground) {
		fprintf(stderr, "paraf-auditd: checkpoint %s\n", json);
		fflush(stderr);
		return;
	}
	o = json_tokener_parse(json);
	if (o && json_object_object_get_ex(o, "count", &v))
		count = json_object_get_string(v);
	if (o && json_object_object_get_ex(o, "head", &v))
		head = json_object_get_string(v);
	if (o && json_object_object_get_ex(o, "file", &v))
		file = json_object_get_string(v);
	if (o && json_object_object_get_ex(o, "offset", &v))
		offset = json_object_get_string(v);
	sd_journal_send("MESSAGE=audit checkpoint: %s records, head %s", count, head,
		"PRIORITY=%i", LOG_INFO,
		"PARAF_AUDIT_CHECKPOINT=%s", json,
		"PARAF_AUDIT_COUNT=%s", count,
		"PARAF_AUDIT_HEAD=%s", head,
		"PARAF_AUDIT_FILE=%s", file,
		"PARAF_AUDIT_OFFSET=%s", offset,
		NULL);
	json_object_put(o);
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: paraf-auditd [--socket PATH] [--dir DIR] [--file-max BYTES]\n"
		"                    [--checkpoint-records N] [--checkpoint-seconds T] [--foreground]\n"
		"\n"
		"The paraf audit log service: stores each record sent to its socket in a hash-chained,\n"
		"crash-safe log, stamped with the sender's uid and pid (see doc/audit.md).\n"
		"\n"
		"  --socket PATH             listen on PATH (default: %s, or the socket\n"
		"                            passed by systemd)\n"
		"  --dir DIR                 the log directory (default: %s)\n"
		"  --file-max BYTES          start a new file past this size (default: %u)\n"
		"  --checkpoint-records N    a checkpoint every N records (default: %u)\n"
		"  --checkpoint-seconds T    … and every T seconds (default: %u)\n"
		"  --foreground              stay in the foreground and log to stderr\n"
		"  --version                 print the version\n",
		AUD_SOCKET_DEFAULT, AUD_DIR_DEFAULT, AUD_FILE_MAX_DEFAULT, AUD_CHECKPOINT_RECORDS,
		AUD_CHECKPOINT_SECONDS);
}

static int
parse_number(const char *s, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s[0] || s[0] == '-' || s[0] == '+')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v == 0 || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* Forks into the background; the parent exits 0 once the child is listening. */
static int
daemonize(int *ret_notify_fd)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		_exit(read(p[0], &c, 1) == 1 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	*ret_notify_fd = p[1];
	return 0;
}

static int
on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct aud_log *log = userdata;

	if (si->ssi_signo == SIGHUP) {
		(void)aud_log_checkpoint(log);
		return 0;
	}
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

/* Says why the log cannot be opened, as precisely as the library can tell. */
static void
explain_open_error(const char *dir, int r)
{
	char why[256] = "";
	struct aud_report rep;
	int dfd;

	switch (r) {
	case -EPERM:
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			(void)aud_dir_check(dfd, why, sizeof(why));
			close(dfd);
		}
		log_msg(LOG_ERR, "refusing the log directory '%s': %s", dir,
			why[0] ? why : "it or a file in it may be written by another user");
		break;
	case -EBUSY:
		log_msg(LOG_ERR, "another process has the log in '%s' open", dir);
		break;
	case -EUCLEAN:
		if (aud_verify(dir, &rep) == 0 && rep.fault != AUD_OK)
			log_msg(LOG_ERR, "the audit log in '%s' is damaged: %s at %s line %" PRIu64
				" (seq %" PRIu64 "): %s; nothing is appended until it is restored or "
				"moved aside", dir, aud_fault_to_string(rep.fault), rep.file, rep.line,
				rep.seq, rep.detail);
		else
			log_msg(LOG_ERR, "the audit log in '%s' does not match its checkpoint; "
				"nothing is appended until it is restored or moved aside", dir);
		break;
	default:
		log_msg(LOG_ERR, "cannot open the audit log in '%s': %s", dir, strerror(-r));
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "dir", required_argument, NULL, 'd' },
		{ "file-max", required_argument, NULL, 'm' },
		{ "checkpoint-records", required_argument, NULL, 'n' },
		{ "checkpoint-seconds", required_argument, NULL, 't' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	struct aud_log_options lo = { .dir = AUD_DIR_DEFAULT, .on_checkpoint = mirror_checkpoint };
	const char *socket_path = NULL;
	struct aud_log *log = NULL;
	struct aud_server *srv = NULL;
	sd_event *event = NULL;
	struct rlimit no_core = { 0, 0 }, nofile;
	char why[512];
	sigset_t mask;
	uint64_t v;
	int listen_fd = -1, notify_fd = -1, c, r, ret = 1;
	bool under_systemd, owned = false;

	/* Nobody, the service's own account included, reads its memory or its core. */
	prctl(PR_SET_DUMPABLE, 0);
	setrlimit(RLIMIT_CORE, &no_core);
	/* Many clients at once: take the hard limit of descriptors (poll is not used on them). */
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &nofile);
	}
	umask(0077);

	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		switch (c) {
		case 's':
			socket_path = optarg;
			break;
		case 'd':
			if (optarg[0] != '/') {
				fprintf(stderr, "paraf-auditd: --dir needs an absolute path, not '%s'\n",
					optarg);
				return 2;
			}
			lo.dir = optarg;
			break;
		case 'm':
			if (parse_number(optarg, UINT64_MAX, &v) < 0) {
				fprintf(stderr, "paraf-auditd: --file-max needs a positive number of "
						"bytes, not '%s'\n", optarg);
				return 2;
			}
			lo.file_max = v;
			break;
		case 'n':
			if (parse_number(optarg, 1000000000, &v) < 0) {
				fprintf(stderr, "paraf-auditd: --checkpoint-records needs a positive "
						"number, not '%s'\n", optarg);
				return 2;
			}
			lo.checkpoint_records = (unsigned)v;
			break;
		case 't':
			if (parse_number(optarg, 366u * 24 * 3600, &v) < 0) {
				fprintf(stderr, "paraf-auditd: --checkpoint-seconds needs a positive "
						"number, not '%s'\n", optarg);
				return 2;
			}
			lo.checkpoint_seconds = (unsigned)v;
			break;
		case 'f':
			foreground = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("paraf-auditd %s\n", PARAF_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "paraf-auditd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	/* Under systemd: no fork (Type=notify), and checkpoints to the journal as fields. */
	under_systemd = getenv("NOTIFY_SOCKET") || getenv("LISTEN_FDS") || getenv("INVOCATION_ID");

	/* The log first: repaired and checked before any client can connect. */
	r = aud_log_open(&lo, &log);
	if (r < 0) {
		explain_open_error(lo.dir, r);
		goto out;
	}

	r = sd_listen_fds(1);
	if (r > 1) {
		log_msg(LOG_ERR, "systemd passed %d sockets, expected one", r);
		goto out;
	} else if (r == 1) {
		listen_fd = SD_LISTEN_FDS_START;
		if (sd_is_socket_unix(listen_fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
			log_msg(LOG_ERR, "the socket passed by systemd is not a listening Unix stream "
					 "socket");
			goto out;
		}
		fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
		fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
		socket_path = NULL;
	} else {
		if (!socket_path)
			socket_path = AUD_SOCKET_DEFAULT;
		if (aud_socket_listen(socket_path, &listen_fd, why, sizeof(why)) < 0) {
			log_msg(LOG_ERR, "%s", why);
			goto out;
		}
		owned = true;
	}

	if (!foreground && !under_systemd && daemonize(&notify_fd) < 0) {
		log_msg(LOG_ERR, "cannot go to the background: %s", strerror(errno));
		goto out;
	}

	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN); /* a file size limit is a full disk (EFBIG), not a reason to die */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	r = sd_event_default(&event);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGTERM, on_signal, log);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGINT, on_signal, log);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGHUP, on_signal, log);
	if (r >= 0)
		r = aud_server_new(event, log, listen_fd, owned ? socket_path : NULL,
			lo.checkpoint_seconds, &srv);
	if (r < 0) {
		log_msg(LOG_ERR, "cannot start: %s", strerror(-r));
		goto out;
	}
	listen_fd = -1; /* the server owns it */
	log_msg(LOG_INFO, "storing records from %s in %s (pid %d)",
		socket_path ? socket_path : "the socket from systemd", lo.dir, (int)getpid());
	sd_notify(0, "READY=1\nSTATUS=storing records");
	if (notify_fd >= 0) {
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
			close(devnull);
		}
		(void)!write(notify_fd, "1", 1);
		close(notify_fd);
	}
	r = sd_event_loop(event);
	sd_notify(0, "STOPPING=1");
	/* Stop taking records, then the final checkpoint. */
	srv = aud_server_free(srv);
	if (aud_log_checkpoint(log) < 0)
		log_msg(LOG_WARNING, "cannot write the final checkpoint in '%s'", lo.dir);
	ret = r < 0 ? 1 : 0;
out:
	srv = aud_server_free(srv);
	log = aud_log_close(log);
	if (listen_fd >= 0)
		close(listen_fd);
	sd_event_unref(event);
	return ret;
}
