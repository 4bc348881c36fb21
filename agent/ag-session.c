/*
 * Where a request comes from: the peer's login session (logind), its executable, and whether
 * the terminal or display it names for the PIN dialog is its own (R1). Facts for the policy;
 * the decisions are pol_decide()'s.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-login.h>

#include "ag-session.h"
#include "pf-util.h"

bool
ag_logind_present(void)
{
	/* systemd runs (sd_booted), and logind has published its seats. A container image may
	 * carry a stale /run/systemd/seats without either. */
	return sd_booted() > 0 && access("/run/systemd/seats/", F_OK) == 0;
}

void
ag_session_facts(pid_t pid, struct pol_session *ret)
{
	_cleanup_free_ char *session = NULL;

	memset(ret, 0, sizeof(*ret));
	ret->logind = ag_logind_present();
	if (!ret->logind || sd_pid_get_session(pid, &session) < 0 || !session)
		return;
	ret->found = true;
	ret->remote = sd_session_is_remote(session) > 0;
	ret->active = sd_session_is_active(session) > 0;
}

char *
ag_peer_exe(pid_t pid)
{
	char link[64], buf[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	n = readlink(link, buf, sizeof(buf) - 1);
	if (n <= 0)
		return strdup("(unknown)");
	buf[n] = 0;
	return strdup(buf);
}

static int
owned_by(const char *path, uid_t uid, mode_t type, struct stat *st)
{
	if (lstat(path, st) < 0)
		return -errno;
	if ((st->st_mode & S_IFMT) != type)
		return -EINVAL;
	return st->st_uid == uid ? 0 : -EPERM;
}

int
ag_dialog_location_check(uid_t uid, pid_t pid, const struct ag_dialog_location *loc,
	char *err, size_t errsz, const char **ret_field)
{
	struct stat st;
	char path[PATH_MAX];

	if (loc->tty) {
		*ret_field = "tty";
		if (strncmp(loc->tty, "/dev/", 5) != 0 || strstr(loc->tty, "/../")) {
			snprintf(err, errsz, "'tty' must be a terminal device under /dev");
			return -EINVAL;
		}
		/* R1: the dialog appears on the caller's own terminal, nobody else's. */
		if (owned_by(loc->tty, uid, S_IFCHR, &st) < 0) {
			snprintf(err, errsz, "'%s' is not a terminal of the calling account", loc->tty);
			return -EPERM;
		}
	}
	if (loc->xauthority) {
		*ret_field = "xauthority";
		if (loc->xauthority[0] != '/' || owned_by(loc->xauthority, uid, S_IFREG, &st) < 0) {
			snprintf(err, errsz, "'xauthority' must be a file of the calling account");
			return -EPERM;
		}
	}
	if (loc->display) {
		_cleanup_free_ char *session = NULL, *sdisp = NULL;
		uid_t suid;

		*ret_field = "display";
		/* Only logind knows which X display belongs to whom. */
		if (!ag_logind_present() || sd_pid_get_session(pid, &session) < 0 ||
		    sd_session_get_uid(session, &suid) < 0 || suid != uid ||
		    sd_session_get_display(session, &sdisp) < 0 || !streq(sdisp, loc->display)) {
			snprintf(err, errsz,
				"display '%s' is not the display of the caller's login session",
				loc->display);
			return -EPERM;
		}
	}
	if (loc->wayland_display) {
		*ret_field = "wayland_display";
		if (strchr(loc->wayland_display, '/'))
			snprintf(path, sizeof(path), "%s", loc->wayland_display);
		else
			snprintf(path, sizeof(path), "/run/user/%u/%s", (unsigned)uid,
				loc->wayland_display);
		if (owned_by(path, uid, S_IFSOCK, &st) < 0) {
			snprintf(err, errsz, "wayland display '%s' is not a socket of the calling account",
				loc->wayland_display);
			return -EPERM;
		}
	}
	*ret_field = NULL;
	return 0;
}
