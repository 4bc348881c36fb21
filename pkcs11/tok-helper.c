/*
 * Starting paraf-token-helper from parafd (and from the CLI's provisioning commands, through
 * tok-link.c): a socketpair, fork, and exec with our end on fd 3, so vendor PKCS#11 code runs
 * in a process of its own (the ssh-pkcs11-helper pattern); and where to find it.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "paraf-config.h"
#include "pf-util.h"
#include "tok.h"

#define TOK_HELPER_ARGS_MAX 64

int
tok_helper_spawn(const char *path, char *const *modules, size_t n_modules, pid_t *ret_pid,
	int *ret_fd)
{
	const char *argv[3 + 2 * TOK_HELPER_ARGS_MAX];
	int sv[2];
	size_t i, k = 0;
	pid_t pid;

	if (n_modules > TOK_HELPER_ARGS_MAX)
		return -E2BIG;
	argv[k++] = "paraf-token-helper";
	argv[k++] = "--fd=3";
	for (i = 0; i < n_modules; i++) {
		argv[k++] = "--module";
		argv[k++] = modules[i];
	}
	argv[k] = NULL;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	if (pid == 0) {
		sigset_t all;

		/* parafd blocks signals for sd-event; the helper starts with none blocked. */
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		if (sv[1] == 3) {
			fcntl(3, F_SETFD, 0);
		} else if (dup2(sv[1], 3) < 0) {
			_exit(127);
		}
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(sv[1]);
	*ret_pid = pid;
	*ret_fd = sv[0];
	return 0;
}

char *
tok_helper_default_path(void)
{
	char self[PATH_MAX], *dir, *p = NULL;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = 0;
		dir = dirname(self);
		if (asprintf(&p, "%s/paraf-token-helper", dir) >= 0 && access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return strdup(PARAF_HELPER_PATH);
}
