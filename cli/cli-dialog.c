/*
 * Where the PIN of a `paraf sign` comes from, and where the agent's trusted PIN dialog must
 * appear. The PIN of an individual or jabatan certificate never passes through paraf: parafd
 * asks the official in a pinentry it runs itself (R2), on the terminal or display this process
 * names and parafd checks to be the caller's own (R1). Only for the certificate types that
 * agent.status lists in pin_parameter_types (by default: system) does paraf read a PIN.
 */
#include "cli.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void
closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

int
cli_pin_in_request(json_object *status, json_object *cert, const char **ret_type)
{
	json_object *types = cli_json_obj(status, "pin_parameter_types", json_type_array);
	const char *type = cli_json_str(cert, "type");
	size_t i;

	*ret_type = type;
	/* An agent that does not list the types takes no PIN from clients: send none. */
	if (!type || !types)
		return 0;
	for (i = 0; i < json_object_array_length(types); i++) {
		json_object *t = json_object_array_get_idx(types, i);

		if (json_object_is_type(t, json_type_string) &&
		    streq(json_object_get_string(t), type))
			return 1;
	}
	return 0;
}

/* The /dev path of the terminal device dev: /dev/pts/N for a pseudo-terminal, else the entry
 * of /dev with that device number (a virtual console, a serial line). */
static int
tty_path_of_dev(dev_t dev, char *buf, size_t n)
{
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *e;
	struct stat st;

	/* UNIX98 pseudo-terminal slaves: majors 136-143, numbered across them. */
	if (major(dev) >= 136 && major(dev) <= 143) {
		snprintf(buf, n, "/dev/pts/%u", (major(dev) - 136) * 256 + minor(dev));
		if (stat(buf, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == dev)
			return 0;
	}
	d = opendir("/dev");
	if (!d)
		return -ENOTTY;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strlen(e->d_name) + 6 > n)
			continue;
		snprintf(buf, n, "/dev/%s", e->d_name);
		if (lstat(buf, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == dev)
			return 0;
	}
	return -ENOTTY;
}

/* The device number of the controlling terminal behind fd, an open /dev/tty. */
static int
tty_dev(int fd, dev_t *ret)
{
	unsigned int dev = 0;
	char buf[1024], *p;
	unsigned long nr;
	FILE *f;

	/* Both give the kernel's 32-bit encoding (major in bits 8-19, minor in 0-7 and 20-31),
	 * which glibc's major() and minor() read too. */
	if (ioctl(fd, TIOCGDEV, &dev) == 0 && dev) {
		*ret = makedev(major((dev_t)dev), minor((dev_t)dev));
		return 0;
	}
	/* Kernels without TIOCGDEV: field 7 of /proc/self/stat, tty_nr. */
	f = fopen("/proc/self/stat", "re");
	if (!f)
		return -ENOTTY;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p || !(p = strrchr(buf, ')')) ||
	    sscanf(p + 1, " %*c %*d %*d %*d %lu", &nr) != 1 || nr == 0)
		return -ENOTTY;
	*ret = makedev(major((dev_t)nr), minor((dev_t)nr));
	return 0;
}

int
cli_dialog_tty(char **ret)
{
	char buf[CLI_LOCATION_MAX + 1];
	_cleanup_close_ int fd = -1;
	dev_t dev;
	int r;

	if (isatty(STDIN_FILENO)) {
		r = ttyname_r(STDIN_FILENO, buf, sizeof(buf));
		if (r != 0)
			return r == ERANGE ? -ENAMETOOLONG : -ENOTTY;
	} else {
		/* The controlling terminal (paraf's input may be redirected in a terminal
		 * session). ttyname() of this fd says only "/dev/tty", which would name the
		 * agent's own terminal there: the device number gives the real path.
		 * O_NOCTTY: never acquire one. */
		fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
		if (fd < 0 || !isatty(fd))
			return -ENOTTY;
		r = tty_dev(fd, &dev);
		if (r >= 0)
			r = tty_path_of_dev(dev, buf, sizeof(buf));
		if (r < 0)
			return r;
	}
	if (strncmp(buf, "/dev/", 5) != 0 || streq(buf, "/dev/tty"))
		return -ENOTTY;
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

static int
location_put(json_object *params, const char *key, const char *value, const char *from)
{
	json_object *v;

	if (!value || !*value)
		return 0;
	if (strlen(value) > CLI_LOCATION_MAX) {
		cli_warn("%s is longer than %d bytes: not sent to the agent for the PIN dialog",
			from, CLI_LOCATION_MAX);
		return 0;
	}
	v = json_object_new_string(value);
	if (!v || json_object_object_add(params, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

int
cli_dialog_location_add(json_object *params)
{
	_cleanup_free_ char *tty = NULL;
	int r;

	r = cli_dialog_tty(&tty);
	if (r == -ENOMEM)
		return r;
	if (r == -ENAMETOOLONG)
		cli_warn("the terminal's name is longer than %d bytes: not sent to the agent",
			CLI_LOCATION_MAX);
	if (tty) {
		r = location_put(params, "tty", tty, "the terminal's name");
		/* TERM describes that terminal: without one it would describe nothing. */
		if (r >= 0)
			r = location_put(params, "tty_type", getenv("TERM"), "$TERM");
		if (r < 0)
			return r;
	}
	r = location_put(params, "display", getenv("DISPLAY"), "$DISPLAY");
	if (r >= 0)
		r = location_put(params, "xauthority", getenv("XAUTHORITY"), "$XAUTHORITY");
	if (r >= 0)
		r = location_put(params, "wayland_display", getenv("WAYLAND_DISPLAY"),
			"$WAYLAND_DISPLAY");
	return r;
}
