/*
 * What this agent has seen and must not forget: certificates it once saw revoked by a CRL
 * (R8: revoked means refused for ever, even if the certificate is later seen without a CRL,
 * or with a CRL that dropped it). Kept in the agent's own state directory; security staff's
 * authoritative list is the policy directory's revoked.list.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ag-state.h"
#include "ag.h"
#include "pf-util.h"

#define AG_STATE_FILE_MAX (1024 * 1024)

static char *
state_path(bool create_dir)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char *dir = NULL, *path = NULL;

	if (xdg && xdg[0] == '/') {
		if (asprintf(&dir, "%s/paraf", xdg) < 0)
			return NULL;
	} else if (home && home[0] == '/') {
		if (asprintf(&dir, "%s/.local/state/paraf", home) < 0)
			return NULL;
	} else {
		return NULL;
	}
	if (create_dir) {
		char *p = dir;
		/* mkdir -p, private */
		while ((p = strchr(p + 1, '/'))) {
			*p = 0;
			mkdir(dir, 0700);
			*p = '/';
		}
		mkdir(dir, 0700);
	}
	if (asprintf(&path, "%s/revoked-seen", dir) < 0)
		path = NULL;
	free(dir);
	return path;
}

bool
ag_state_revoked(const char *cert_id)
{
	_cleanup_free_ char *path = state_path(false);
	char line[256];
	FILE *f;
	bool found = false;

	if (!path || !(f = fopen(path, "re")))
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strncmp(line, cert_id, 64) == 0 && (line[64] == ' ' || line[64] == '\n');
	fclose(f);
	return found;
}

int
ag_state_remember_revoked(const char *cert_id)
{
	_cleanup_free_ char *path = NULL, *now = NULL;
	struct stat st;
	int fd, r = 0;

	if (strlen(cert_id) != 64 || ag_state_revoked(cert_id))
		return 0;
	path = state_path(true);
	if (!path)
		return -ENOENT;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && st.st_size > AG_STATE_FILE_MAX) {
		close(fd);
		return -EFBIG;
	}
	now = ag_time_iso8601(time(NULL));
	if (dprintf(fd, "%s %s\n", cert_id, now ? now : "-") < 0)
		r = -errno;
	if (fsync(fd) < 0 && r == 0)
		r = -errno;
	close(fd);
	return r;
}
