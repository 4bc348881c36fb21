/*
 * parafd: the paraf signing agent. Parses its command line, finds or makes its socket, and
 * runs the event loop. Everything else is in the agent library.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
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

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#include "ag-audit.h"
#include "ag-policy.h"
#include "ag-server.h"
#include "paraf-config.h"
#include "pf-ini.h"
#include "pf-util.h"
#include "tok.h"

static bool foreground;

/* exit_idle: the timer that ends a socket-activated agent with nothing to do. */
static struct {
	sd_event_source *timer;
	uint64_t usec; /* 0: never */
} idle_exit;

#define AG_AUDIT_FLUSH_IDLE_SEC 10 /* how often a spool is offered to the service again */

static void _printf_(2, 3)
log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (foreground) {
		fputs("parafd: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	} else {
		sd_journal_printv(prio, fmt, ap);
	}
	va_end(ap);
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: parafd [--socket PATH] [--module PATH]... [--config FILE] [--policy DIR]\n"
		"              [--pinentry PATH] [--audit-socket PATH] [--exit-idle SECONDS]\n"
		"              [--system] [--foreground]\n"
		"\n"
		"The paraf signing agent: signs documents with keys on PKCS#11 tokens for desktop\n"
		"applications, over JSON-RPC on a Unix socket (see doc/protocol.md).\n"
		"\n"
		"  --socket PATH   listen on PATH (default: $XDG_RUNTIME_DIR/paraf/agent.sock, or the\n"
		"                  socket passed by systemd)\n"
		"  --module PATH   use this PKCS#11 module instead of the p11-kit registry (repeatable)\n"
		"  --config FILE   read the configuration from FILE (default: %s/parafd.conf if it\n"
		"                  exists)\n"
		"  --policy DIR    the policy directory (default: %s): policy.conf, policy.d/,\n"
		"                  owners.d/, revoked.list, anchors/, crl/; with this option files\n"
		"                  owned by the agent's own account are accepted (tests)\n"
		"  --pinentry PATH the PIN dialog program (default: the policy's, else\n"
		"                  /usr/bin/pinentry)\n"
		"  --audit-socket PATH  paraf-auditd's socket (default: the configuration's\n"
		"                  audit_socket, else " AG_AUDIT_SOCKET_DEFAULT ")\n"
		"  --exit-idle SECONDS  when socket-activated, exit after SECONDS with no client\n"
		"                  and no request in progress; systemd starts the agent again on\n"
		"                  the next connection (default: the configuration's exit_idle,\n"
		"                  else 0: never)\n"
		"  --system        system mode: serve electronic-system certificates to other\n"
		"                  accounts on the socket systemd passes (paraf-system.socket),\n"
		"                  each request checked against the registered owner, PINs from\n"
		"                  systemd credentials (doc/service.md)\n"
		"  --foreground    stay in the foreground and log to stderr\n"
		"  --version       print the version\n",
		PARAF_SYSCONFDIR, PARAF_SYSCONFDIR);
}

static int
default_socket(char **ret)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");

	if (!rt || rt[0] != '/')
		return -ENXIO;
	return asprintf(ret, "%s/paraf/agent.sock", rt) < 0 ? -ENOMEM : 0;
}

/* Offers the spool to the audit service: every AG_AUDIT_FLUSH_IDLE_SEC, or at once again
 * while it takes records and more are waiting. */
static int
audit_flush_timer(sd_event_source *s, uint64_t usec, void *data)
{
	size_t left = 0;
	int r = ag_audit_flush(AG_AUDIT_FLUSH_BATCH, &left);
	uint64_t next = r == 0 && left ? 100000 : (uint64_t)AG_AUDIT_FLUSH_IDLE_SEC * 1000000;

	if (r == -EBADMSG)
		log_msg(LOG_ERR, "audit: the spool is not a spool file; it is left alone");
	sd_event_source_set_time_relative(s, next);
	sd_event_source_set_enabled(s, SD_EVENT_ON);
	return 0;
}

/* exit_idle: the agent has been idle for exit_idle; exit unless something came meanwhile. A
 * connection that arrives from here on waits in the listening socket, which systemd holds,
 * and starts the next instance: nothing is lost. */
static int
idle_exit_timer(sd_event_source *s, uint64_t usec, void *data)
{
	struct ag_server *srv = data;
	struct pollfd pfd = { .fd = srv->listen_fd, .events = POLLIN };

	if (ag_server_busy(srv)) {
		/* A client or a request; on_idle arms the timer again once they are done. */
		sd_event_source_set_enabled(s, SD_EVENT_OFF);
		return 0;
	}
	if (poll(&pfd, 1, 0) > 0) {
		/* A connection waits to be accepted: serve it, the idle time starts afresh. */
		sd_event_source_set_time_relative(s, idle_exit.usec);
		sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
		return 0;
	}
	if (ag_audit_mode() != AG_AUDIT_JOURNAL && ag_audit_spool_pending() && ag_audit_check() == 0) {
		/* The audit service is taking the spool: let the flush timer finish it. A spool
		 * the service cannot take stays on disk for the next instance. */
		sd_event_source_set_time_relative(s, (uint64_t)AG_AUDIT_FLUSH_IDLE_SEC * 1000000);
		sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
		return 0;
	}
	log_msg(LOG_INFO, "idle for %llu s, exiting; systemd starts the agent again on the next "
		"connection", (unsigned long long)(idle_exit.usec / 1000000));
	sd_event_source_set_enabled(srv->listen_src, SD_EVENT_OFF);
	sd_notify(0, "STOPPING=1\nSTATUS=idle, exiting");
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void
idle_exit_arm(struct ag_server *srv)
{
	if (!idle_exit.timer)
		return;
	sd_event_source_set_time_relative(idle_exit.timer, idle_exit.usec);
	sd_event_source_set_enabled(idle_exit.timer, SD_EVENT_ONESHOT);
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

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "module", required_argument, NULL, 'm' },
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "policy", required_argument, NULL, 'p' },
		{ "pinentry", required_argument, NULL, 'e' },
		{ "audit-socket", required_argument, NULL, 'a' },
		{ "exit-idle", required_argument, NULL, 'i' },
		{ "system", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	struct ag_config cfg;
	struct ag_server *srv = NULL;
	sd_event *event = NULL;
	_cleanup_free_ char *socket_path = NULL, *config_path = NULL, *helper = NULL;
	_cleanup_free_ char *policy_dir = NULL, *pinentry = NULL, *audit_socket = NULL;
	struct ag_audit_options audit = { .program = "parafd" };
	struct ag_policy *policy = NULL;
	_cleanup_free_ char **modules = NULL; /* freed on every return, the early ones too */
	size_t n_modules = 0;
	struct rlimit no_core = { 0, 0 };
	char errbuf[512];
	sigset_t mask;
	int listen_fd = -1, notify_fd = -1, c, r, ret = 1;
	bool owned = false, system_mode = false, exit_idle_given = false;
	unsigned exit_idle = 0;

	/* R2: PINs pass through this process: no ptrace by the same user, no core dumps. */
	prctl(PR_SET_DUMPABLE, 0);
	setrlimit(RLIMIT_CORE, &no_core);

	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		switch (c) {
		case 's':
			free(socket_path);
			socket_path = strdup(optarg);
			break;
		case 'm': {
			char **m = realloc(modules, (n_modules + 1) * sizeof(*m));
			if (!m)
				return 1;
			modules = m;
			modules[n_modules++] = optarg;
			break;
		}
		case 'c':
			free(config_path);
			config_path = strdup(optarg);
			break;
		case 'f':
			foreground = true;
			break;
		case 'p':
			free(policy_dir);
			policy_dir = strdup(optarg);
			break;
		case 'e':
			if (optarg[0] != '/' || access(optarg, X_OK) < 0) {
				fprintf(stderr, "parafd: --pinentry needs an absolute path to a program, "
						"not '%s'\n", optarg);
				return 2;
			}
			free(pinentry);
			pinentry = strdup(optarg);
			break;
		case 'a':
			if (optarg[0] != '/' || strlen(optarg) >= AG_AUDIT_SOCKET_PATH_MAX) {
				fprintf(stderr, "parafd: --audit-socket needs an absolute path shorter "
						"than %d bytes, not '%s'\n", AG_AUDIT_SOCKET_PATH_MAX, optarg);
				return 2;
			}
			free(audit_socket);
			audit_socket = strdup(optarg);
			break;
		case 'i':
			if (pf_parse_uint(optarg, 0, AG_EXIT_IDLE_MAX, &exit_idle) < 0) {
				fprintf(stderr, "parafd: --exit-idle needs seconds from 0 to %d, not "
						"'%s'\n", AG_EXIT_IDLE_MAX, optarg);
				return 2;
			}
			exit_idle_given = true;
			break;
		case 'S':
			system_mode = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("parafd %s\n", PARAF_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "parafd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	/* Under systemd (a unit's stderr goes to the journal) stay in the foreground. */
	if (getenv("NOTIFY_SOCKET") || getenv("LISTEN_FDS") || getenv("INVOCATION_ID"))
		foreground = true;

	ag_config_init(&cfg);
	if (!config_path) {
		char *def = NULL;
		if (asprintf(&def, "%s/parafd.conf", PARAF_SYSCONFDIR) >= 0 && access(def, F_OK) == 0)
			config_path = def;
		else
			free(def);
	}
	if (config_path && ag_config_load(&cfg, config_path, errbuf, sizeof(errbuf)) < 0) {
		fprintf(stderr, "parafd: %s\n", errbuf);
		goto out;
	}
	if (n_modules) {
		/* --module replaces the configuration's modules and the registry (only those: the
		 * rest of the configuration, the audit socket among it, stays). */
		for (size_t i = 0; i < cfg.n_modules; i++)
			free(cfg.modules[i]);
		cfg.n_modules = 0;
		for (size_t i = 0; i < n_modules; i++) {
			if (access(modules[i], R_OK) < 0) {
				fprintf(stderr, "parafd: cannot read PKCS#11 module '%s': %s\n", modules[i],
					strerror(errno));
				goto out;
			}
			if (ag_config_add_module(&cfg, modules[i]) < 0) {
				fprintf(stderr, "parafd: too many modules\n");
				goto out;
			}
		}
	}

	if (exit_idle_given)
		cfg.exit_idle = exit_idle;
	if (system_mode)
		cfg.system_mode = true;
	if (audit_socket && ag_config_set_audit_socket(&cfg, audit_socket) < 0) {
		fprintf(stderr, "parafd: out of memory\n");
		goto out;
	}
	/* R13: where every decision's record goes; `required` unless configured otherwise. */
	audit.mode = cfg.audit_mode;
	audit.socket_path = cfg.audit_socket;
	audit.timeout_ms = cfg.audit_timeout * 1000;
	if (ag_audit_setup(&audit) < 0) {
		fprintf(stderr, "parafd: out of memory\n");
		goto out;
	}

	/* R13: refuse to start on a policy anyone but root could have written, and say which
	 * file; it is read again for every decision. */
	if (ag_policy_load(policy_dir ? policy_dir : PARAF_SYSCONFDIR,
		    policy_dir && !streq(policy_dir, PARAF_SYSCONFDIR), &policy,
		    errbuf, sizeof(errbuf)) < 0) {
		fprintf(stderr, "parafd: %s\n", errbuf);
		goto out;
	}
	policy = ag_policy_free(policy);

	r = sd_listen_fds(1);
	if (r > 1) {
		fprintf(stderr, "parafd: systemd passed %d sockets, expected one\n", r);
		goto out;
	} else if (r == 1) {
		listen_fd = SD_LISTEN_FDS_START;
		if (sd_is_socket_unix(listen_fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
			fprintf(stderr, "parafd: the socket passed by systemd is not a listening Unix "
					"stream socket\n");
			goto out;
		}
		fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
		fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
	} else if (cfg.system_mode) {
		/* Other accounts must reach it, and ag_socket_listen() makes private sockets only:
		 * the system socket is systemd's (paraf-system.socket, /run/paraf/system.sock). */
		fprintf(stderr, "parafd: system mode serves the socket systemd passes "
				"(paraf-system.socket); start it through systemd or "
				"systemd-socket-activate\n");
		goto out;
	} else {
		if (!socket_path && default_socket(&socket_path) < 0) {
			fprintf(stderr, "parafd: XDG_RUNTIME_DIR is not set; give --socket PATH\n");
			goto out;
		}
		if (ag_socket_listen(socket_path, &listen_fd, errbuf, sizeof(errbuf)) < 0) {
			fprintf(stderr, "parafd: %s\n", errbuf);
			goto out;
		}
		owned = true;
	}
	helper = tok_helper_default_path();
	if (!helper || access(helper, X_OK) < 0) {
		fprintf(stderr, "parafd: cannot find the token helper '%s'\n", helper ? helper : "");
		goto out;
	}

	if (!foreground && daemonize(&notify_fd) < 0) {
		fprintf(stderr, "parafd: cannot go to the background: %s\n", strerror(errno));
		goto out;
	}

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	r = sd_event_default(&event);
	/* WATCHDOG=1 every half WatchdogSec while the loop turns (WATCHDOG_USEC); a hung loop
	 * stops the pings and systemd restarts the agent. */
	if (r >= 0 && sd_event_set_watchdog(event, true) < 0)
		log_msg(LOG_WARNING, "cannot set up the watchdog");
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGHUP, NULL, NULL);
	if (r >= 0)
		r = ag_server_new(event, &cfg, helper, listen_fd, owned, socket_path, &srv);
	if (r < 0) {
		log_msg(LOG_ERR, "cannot start: %s", strerror(-r));
		goto out;
	}
	listen_fd = -1; /* the server owns it */
	srv->log_stderr = foreground;
	srv->policy_dir = policy_dir ? TAKE_PTR(policy_dir) : strdup(PARAF_SYSCONFDIR);
	srv->policy_dir_given = srv->policy_dir && !streq(srv->policy_dir, PARAF_SYSCONFDIR);
	srv->pinentry = TAKE_PTR(pinentry);
	if (!srv->policy_dir) {
		log_msg(LOG_ERR, "out of memory");
		goto out;
	}
	log_msg(LOG_INFO, "listening on %s (pid %d, %s)",
		owned ? socket_path : "the socket from systemd", (int)getpid(),
		cfg.n_modules ? "modules given" : "p11-kit module registry");
	if (cfg.system_mode)
		log_msg(LOG_INFO, "system mode: serving electronic-system certificates to their "
			"registered owners' accounts; PINs from credentials in %s",
			getenv("CREDENTIALS_DIRECTORY") ? getenv("CREDENTIALS_DIRECTORY")
							: "(no $CREDENTIALS_DIRECTORY)");
	if (cfg.exit_idle && owned) {
		/* Exiting would take the socket with it and leave clients nobody to talk to. */
		log_msg(LOG_WARNING, "exit_idle applies to a socket passed by systemd only; ignored");
	} else if (cfg.exit_idle) {
		idle_exit.usec = (uint64_t)cfg.exit_idle * 1000000;
		r = sd_event_add_time_relative(event, &idle_exit.timer, CLOCK_MONOTONIC,
			idle_exit.usec, 0, idle_exit_timer, srv);
		if (r < 0) {
			log_msg(LOG_ERR, "cannot set up exit_idle: %s", strerror(-r));
			goto out;
		}
		srv->on_idle = idle_exit_arm;
	}
	if (cfg.audit_mode == AG_AUDIT_JOURNAL)
		log_msg(LOG_WARNING, "decision records go to the %s only, not to the "
			"tamper-evident audit service (audit = journal; R13): for development and "
			"tests", foreground ? "standard error" : "journal");
	else if (ag_audit_check() < 0)
		log_msg(cfg.audit_mode == AG_AUDIT_REQUIRED ? LOG_ERR : LOG_WARNING,
			"audit: paraf-auditd at '%s' is not reachable: %s", ag_audit_socket_path(),
			cfg.audit_mode == AG_AUDIT_REQUIRED
				? "signing is refused (audit-unavailable) until it is (audit = required)"
				: "records are spooled until it is (audit = spool)");
	if (cfg.audit_mode != AG_AUDIT_JOURNAL) {
		/* A spool left from before is forwarded once the loop runs, then kept offered. */
		r = sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC, 0, 0, audit_flush_timer,
			NULL);
		if (r < 0)
			log_msg(LOG_WARNING, "audit: cannot schedule forwarding the spool: %s",
				strerror(-r));
	}
	sd_notify(0, cfg.system_mode ? "READY=1\nSTATUS=listening (system mode)"
				     : "READY=1\nSTATUS=listening");
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
	ret = r < 0 ? 1 : 0;
out:
	if (srv)
		srv->on_idle = NULL;
	idle_exit.timer = sd_event_source_disable_unref(idle_exit.timer);
	srv = ag_server_free(srv);
	if (listen_fd >= 0)
		close(listen_fd);
	sd_event_unref(event);
	ag_audit_shutdown();
	ag_config_release(&cfg);
	return ret;
}
