/*
 * `paraf devices`: the first thing support asks when "my token is not detected". Lists the USB
 * tokens and smartcard readers present (libusb, or an injected list), named from paraf's table
 * (udev/tokens.tsv), whether this user may open each (did udev's uaccess work?), and whether a
 * PKCS#11 module sees a token in it, with a hint for what to do when not. The token list comes
 * from paraf-token-helper spawned here, with parafd's module selection (--module or the p11-kit
 * registry): no agent is needed. doc/cli.md describes the output and the injected list.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libusb.h>

#include "cli-devices.h"
#include "cli.h"
#include "tok.h"

#define CLI_DEVICES_MODULES_MAX 16       /* --module options */
#define CLI_DEVICES_TIMEOUT_MS 60000     /* for the helper's token list (OpenSC and pcscd) */
#define CLI_DEVICES_HINTS_MAX 6
#define CLI_DEVICES_PORTS_MAX 7          /* USB 3: at most 7 tiers of hubs */
#define CLI_DEVICES_PCSCD_SOCKET "/run/pcscd/pcscd.comm"

static const char devices_usage[] =
	"Usage: paraf devices [--module PATH]... [--all] [--usb-list FILE] [--json]\n"
	"\n"
	"Lists the USB tokens and smartcard readers present, named from paraf's table, whether\n"
	"you may open each (the udev rules' uaccess), and whether a PKCS#11 module sees a token\n"
	"in it, with what to check when not. The agent is not needed.\n"
	"\n"
	"  --module PATH    PKCS#11 module to ask (repeatable); default the p11-kit registry\n"
	"  --all            list every USB device, not only tokens and readers\n"
	"  --usb-list FILE  take the USB devices from FILE (JSON, see doc/cli.md; the output of\n"
	"                   'paraf devices --json' will do) instead of the USB bus: for tests\n"
	"                   and for looking at another machine's devices\n"
	"  --json           print the report as JSON\n"
	"\n"
	"Exit status: 0 listed; 2 usage error; 3 the USB bus cannot be read (none here, or\n"
	"libusb fails) or the token helper cannot list the tokens: what could be found is\n"
	"still printed; 5 the --usb-list file cannot be read or is malformed.\n";

enum dev_state {
	DEV_TOKEN_PRESENT,
	DEV_NO_TOKEN,
	DEV_NO_PERMISSION,
	DEV_UNKNOWN,     /* the token list could not be read */
	DEV_NOT_A_TOKEN, /* kind other, shown with --all */
};

static const char *const state_names[] = {
	[DEV_TOKEN_PRESENT] = "token-present",
	[DEV_NO_TOKEN] = "no-token",
	[DEV_NO_PERMISSION] = "no-permission",
	[DEV_UNKNOWN] = "unknown",
	[DEV_NOT_A_TOKEN] = "not-a-token",
};

struct devices {
	/* options */
	char *modules[CLI_DEVICES_MODULES_MAX];
	size_t n_modules;
	const char *usb_list;
	bool all;
	/* what was found */
	struct cli_usb_list usb;
	char usb_error[512]; /* "" when the bus was read */
	struct tok_list toks;
	char tok_error[512]; /* "" when the token list was read */
	const char *pcscd_socket;
	bool pcscd_present;
	bool *match; /* usb.n x toks.n_tokens */
};

static void
devices_release(struct devices *s)
{
	cli_usb_list_release(&s->usb);
	tok_list_release(&s->toks);
	free(s->match);
}

/* --- the USB side -------------------------------------------------------------------------- */

static int
usb_list_load(struct devices *s)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *text = NULL;
	char err[512] = "";
	struct stat st;
	size_t n = 0;
	int r;

	fd = open(s->usb_list, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		cli_error("devices: cannot read '%s': %s", s->usb_list, strerror(errno));
		return CLI_EXIT_LOCAL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CLI_USB_LIST_FILE_MAX) {
		cli_error("devices: '%s': %s", s->usb_list,
			S_ISREG(st.st_mode) ? "too large for a device list" : "not a regular file");
		return CLI_EXIT_LOCAL;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text)
		return CLI_EXIT_LOCAL;
	while (n < (size_t)st.st_size) {
		ssize_t k = read(fd, text + n, (size_t)st.st_size - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			cli_error("devices: cannot read '%s': %s", s->usb_list, strerror(errno));
			return CLI_EXIT_LOCAL;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	text[n] = 0;
	r = cli_usb_list_parse(text, n, &s->usb, err, sizeof(err));
	if (r < 0) {
		cli_error("devices: '%s': %s", s->usb_list, err);
		return CLI_EXIT_LOCAL;
	}
	return CLI_EXIT_OK;
}

/* A string read from a device, made printable; NULL when empty. */
static char *
usb_string_clean(const char *s)
{
	char *c;
	size_t n;

	if (!s)
		return NULL;
	c = cli_sanitize(s);
	if (!c)
		return NULL;
	n = strlen(c);
	while (n && (c[n - 1] == ' ' || c[n - 1] == '\n'))
		c[--n] = 0;
	if (n > CLI_USB_STRING_MAX)
		c[CLI_USB_STRING_MAX] = 0;
	if (!*c) {
		free(c);
		return NULL;
	}
	return c;
}

/* The string attribute of the device in sysfs (readable without opening the device). */
static char *
usb_sysfs_string(libusb_device *dev, const char *attr)
{
	uint8_t ports[CLI_DEVICES_PORTS_MAX];
	char path[256], buf[CLI_USB_STRING_MAX + 1];
	_cleanup_close_ int fd = -1;
	int n, o;
	ssize_t k;

	n = libusb_get_port_numbers(dev, ports, (int)sizeof(ports));
	if (n <= 0)
		return NULL; /* a root hub */
	o = snprintf(path, sizeof(path), "/sys/bus/usb/devices/%u-",
		libusb_get_bus_number(dev));
	for (int i = 0; i < n; i++)
		o += snprintf(path + o, sizeof(path) - (size_t)o, "%s%u", i ? "." : "", ports[i]);
	snprintf(path + o, sizeof(path) - (size_t)o, "/%s", attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	k = read(fd, buf, sizeof(buf) - 1);
	if (k <= 0)
		return NULL;
	buf[k] = 0;
	return usb_string_clean(buf);
}

static char *
usb_descriptor_string(libusb_device_handle *h, uint8_t index)
{
	unsigned char buf[CLI_USB_STRING_MAX + 1];
	int k;

	if (!h || index == 0)
		return NULL;
	k = libusb_get_string_descriptor_ascii(h, index, buf, sizeof(buf) - 1);
	if (k <= 0)
		return NULL;
	buf[k] = 0;
	return usb_string_clean((const char *)buf);
}

static void
usb_interfaces_read(libusb_device *dev, const struct libusb_device_descriptor *dd,
	struct cli_usb_dev *d)
{
	struct libusb_config_descriptor *cfg = NULL;

	if (dd->bDeviceClass != 0 && dd->bDeviceClass != 0xef)
		d->interfaces[d->n_interfaces++] = (uint32_t)dd->bDeviceClass << 16 |
						   (uint32_t)dd->bDeviceSubClass << 8 |
						   dd->bDeviceProtocol;
	if (libusb_get_active_config_descriptor(dev, &cfg) != 0 &&
	    libusb_get_config_descriptor(dev, 0, &cfg) != 0)
		return;
	for (int i = 0; i < cfg->bNumInterfaces; i++) {
		const struct libusb_interface *itf = &cfg->interface[i];

		if (itf->num_altsetting < 1 || d->n_interfaces >= CLI_USB_INTERFACES_MAX)
			continue;
		d->interfaces[d->n_interfaces++] =
			(uint32_t)itf->altsetting[0].bInterfaceClass << 16 |
			(uint32_t)itf->altsetting[0].bInterfaceSubClass << 8 |
			itf->altsetting[0].bInterfaceProtocol;
	}
	libusb_free_config_descriptor(cfg);
}

static int
usb_enumerate(struct devices *s)
{
	libusb_context *ctx = NULL;
	libusb_device **list = NULL;
	ssize_t n;
	int r;

	r = libusb_init(&ctx);
	if (r != 0) {
		snprintf(s->usb_error, sizeof(s->usb_error), "libusb cannot start: %s",
			libusb_strerror(r));
		return 0;
	}
	(void)libusb_set_option(ctx, LIBUSB_OPTION_LOG_LEVEL, LIBUSB_LOG_LEVEL_NONE);
	n = libusb_get_device_list(ctx, &list);
	if (n < 0) {
		snprintf(s->usb_error, sizeof(s->usb_error), "libusb cannot list the devices: %s",
			libusb_strerror((int)n));
		libusb_exit(ctx);
		return 0;
	}
	if (n == 0) {
		/* Every machine with a USB controller has its root hubs. */
		snprintf(s->usb_error, sizeof(s->usb_error),
			"no USB bus: libusb finds no USB device, not even a root hub%s",
			access("/sys/bus/usb/devices", F_OK) < 0
				? " (no /sys/bus/usb/devices: a container or virtual machine "
				  "without USB?)"
				: "");
	}
	for (ssize_t i = 0; i < n; i++) {
		struct libusb_device_descriptor dd;
		struct cli_usb_dev d = {};
		libusb_device_handle *h = NULL;

		if (libusb_get_device_descriptor(list[i], &dd) != 0)
			continue;
		d.bus = libusb_get_bus_number(list[i]);
		d.address = libusb_get_device_address(list[i]);
		d.vendor = dd.idVendor;
		d.product = dd.idProduct;
		usb_interfaces_read(list[i], &dd, &d);
		/* Opening a device claims nothing; it tells whether uaccess gave us the node. */
		if (s->all || cli_usb_dev_kind(&d, NULL) != CLI_USB_KIND_OTHER) {
			r = libusb_open(list[i], &h);
			d.access = r == 0			   ? CLI_USB_ACCESS_OK
				   : r == LIBUSB_ERROR_ACCESS ? CLI_USB_ACCESS_DENIED
							      : CLI_USB_ACCESS_UNKNOWN;
		}
		d.manufacturer = usb_descriptor_string(h, dd.iManufacturer);
		d.product_name = usb_descriptor_string(h, dd.iProduct);
		d.serial = usb_descriptor_string(h, dd.iSerialNumber);
		if (h)
			libusb_close(h);
		if (!d.manufacturer)
			d.manufacturer = usb_sysfs_string(list[i], "manufacturer");
		if (!d.product_name)
			d.product_name = usb_sysfs_string(list[i], "product");
		if (!d.serial)
			d.serial = usb_sysfs_string(list[i], "serial");
		r = cli_usb_list_add(&s->usb, &d);
		free(d.manufacturer);
		free(d.product_name);
		free(d.serial);
		if (r < 0)
			break; /* more than CLI_USB_DEVICES_MAX: the first ones */
	}
	libusb_free_device_list(list, 1);
	libusb_exit(ctx);
	return 0;
}

/* --- the PKCS#11 side ---------------------------------------------------------------------- */

static void
tokens_read(struct devices *s)
{
	_cleanup_free_ char *helper = tok_helper_default_path();
	struct tok_link *link = NULL;
	struct pf_buf frame, body;
	uint32_t type = 0;
	int r;

	if (!helper) {
		snprintf(s->tok_error, sizeof(s->tok_error), "out of memory");
		return;
	}
	signal(SIGPIPE, SIG_IGN); /* a helper that dies is an error return, not our death */
	r = tok_link_open(helper, s->modules, s->n_modules, &link);
	if (r < 0) {
		snprintf(s->tok_error, sizeof(s->tok_error),
			"cannot start the token helper '%s': %s", helper, strerror(-r));
		return;
	}
	pf_buf_init(&frame);
	pf_buf_init(&body);
	tok_frame_begin(&frame, TOK_MSG_LIST);
	r = tok_frame_end(&frame);
	if (r >= 0)
		r = tok_link_call(link, &frame, CLI_DEVICES_TIMEOUT_MS, &type, &body);
	if (r >= 0 && type != TOK_MSG_LIST_REPLY)
		r = -EBADMSG;
	if (r >= 0)
		r = tok_list_decode(body.data, body.len, &s->toks);
	pf_buf_release(&frame);
	pf_buf_release(&body);
	link = tok_link_close(link);
	if (r == -ETIMEDOUT)
		snprintf(s->tok_error, sizeof(s->tok_error),
			"the token helper did not answer within %d seconds",
			CLI_DEVICES_TIMEOUT_MS / 1000);
	else if (r == -ECONNRESET)
		snprintf(s->tok_error, sizeof(s->tok_error),
			"the token helper stopped: a PKCS#11 module that cannot be loaded, or "
			"that crashed");
	else if (r < 0)
		snprintf(s->tok_error, sizeof(s->tok_error), "the token helper failed: %s",
			strerror(-r));
	else if (s->toks.err)
		snprintf(s->tok_error, sizeof(s->tok_error), "the tokens cannot be listed: %s",
			tok_err_to_string(s->toks.err));
}

/* --- the report ---------------------------------------------------------------------------- */

struct dev_view {
	const struct cli_usb_dev *d;
	const struct cli_usb_id *id;
	enum cli_usb_kind kind;
	char name[2 * CLI_USB_STRING_MAX + 2];
	bool shown;
	size_t n_tokens; /* tokens in it */
	enum dev_state state;
	const char *hints[CLI_DEVICES_HINTS_MAX];
	char hint_buf[CLI_DEVICES_HINTS_MAX][320];
	size_t n_hints;
};

static void _printf_(2, 3)
hint_add(struct dev_view *v, const char *fmt, ...)
{
	va_list ap;

	if (v->n_hints == CLI_DEVICES_HINTS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(v->hint_buf[v->n_hints], sizeof(v->hint_buf[0]), fmt, ap);
	va_end(ap);
	v->hints[v->n_hints] = v->hint_buf[v->n_hints];
	v->n_hints++;
}

static bool
token_in(const struct devices *s, size_t i, size_t j)
{
	return s->match && s->match[i * s->toks.n_tokens + j];
}

/* How many devices token j is put in. */
static size_t
token_devices(const struct devices *s, size_t j)
{
	size_t c = 0;

	for (size_t i = 0; i < s->usb.n; i++)
		c += token_in(s, i, j);
	return c;
}

static void
dev_view_fill(const struct devices *s, size_t i, struct dev_view *v)
{
	const struct cli_usb_dev *d = &s->usb.devs[i];
	bool ambiguous = false;

	memset(v, 0, sizeof(*v));
	v->d = d;
	v->kind = cli_usb_dev_kind(d, &v->id);
	cli_usb_dev_name(d, v->name, sizeof(v->name));
	for (size_t j = 0; j < s->toks.n_tokens; j++)
		if (token_in(s, i, j)) {
			v->n_tokens++;
			ambiguous |= token_devices(s, j) > 1;
		}
	v->shown = s->all || v->kind != CLI_USB_KIND_OTHER || v->n_tokens > 0;
	if (v->n_tokens > 0)
		v->state = DEV_TOKEN_PRESENT;
	else if (v->kind == CLI_USB_KIND_OTHER)
		v->state = DEV_NOT_A_TOKEN;
	else if (s->tok_error[0])
		v->state = DEV_UNKNOWN;
	else if (d->access == CLI_USB_ACCESS_DENIED)
		v->state = DEV_NO_PERMISSION;
	else
		v->state = DEV_NO_TOKEN;

	if (ambiguous)
		hint_add(v, "devices of the same name are present: a token shown here may be in "
			    "another of them");
	if (v->state == DEV_TOKEN_PRESENT || v->state == DEV_NOT_A_TOKEN)
		return;
	if (v->state == DEV_UNKNOWN)
		hint_add(v, "whether a token is in it is unknown: %s", s->tok_error);
	if (d->access == CLI_USB_ACCESS_DENIED)
		hint_add(v, "you may not open it: the udev rules (70-paraf.rules) are not "
			    "installed, or your session is not the active one at this machine's "
			    "seat (uaccess; see loginctl). pcscd does not need it, modules that "
			    "open the device themselves do");
	if (v->kind == CLI_USB_KIND_VENDOR)
		hint_add(v, "not in paraf's table (udev/tokens.tsv) and not a CCID device: the "
			    "udev rules give no access to it; if it is a token, add it to the table");
	if (v->state == DEV_NO_TOKEN || v->state == DEV_NO_PERMISSION) {
		if (v->kind == CLI_USB_KIND_TOKEN)
			hint_add(v, "no PKCS#11 module sees a token in it: is its module installed "
				    "and registered with p11-kit (OpenSC's opensc-pkcs11.so, or the "
				    "vendor's)? a token never initialised is not listed");
		else
			hint_add(v, "no PKCS#11 module sees a token in it: is a card inserted? is "
				    "OpenSC (opensc-pkcs11.so) or the card's module installed and "
				    "registered with p11-kit?");
	}
	if (!s->pcscd_present)
		hint_add(v, "pcscd is not running: its socket %s is missing (systemctl start "
			    "pcscd.socket)", s->pcscd_socket);
	if (v->id && v->id->notes[0])
		hint_add(v, "paraf's table says: %s", v->id->notes);
}

static json_object *
json_str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *
token_json(const struct tok_token *t)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_str_or_null(t->id));
	json_object_object_add(o, "label", json_str_or_null(t->label));
	json_object_object_add(o, "serial", json_str_or_null(t->serial));
	json_object_object_add(o, "manufacturer", json_str_or_null(t->manufacturer));
	json_object_object_add(o, "model", json_str_or_null(t->model));
	json_object_object_add(o, "module", json_str_or_null(t->module));
	json_object_object_add(o, "slot", json_str_or_null(t->slot));
	return o;
}

static int
report_json(const struct devices *s)
{
	_cleanup_(json_object_putp) json_object *root = json_object_new_object();
	json_object *devs = json_object_new_array(), *others = json_object_new_array();
	json_object *usb = json_object_new_object(), *p11 = json_object_new_object();
	json_object *pcscd = json_object_new_object(), *mods = json_object_new_array();
	size_t hidden = 0;
	char hex[8];

	json_object_object_add(usb, "source", json_object_new_string(s->usb_list ? "list"
										 : "libusb"));
	json_object_object_add(usb, "file", json_str_or_null(s->usb_list));
	json_object_object_add(usb, "error", json_str_or_null(s->usb_error[0] ? s->usb_error
									       : NULL));
	for (size_t m = 0; m < s->n_modules; m++)
		json_object_array_add(mods, json_object_new_string(s->modules[m]));
	json_object_object_add(p11, "modules", s->n_modules ? mods
							     : (json_object_put(mods),
								json_object_new_string("p11-kit")));
	json_object_object_add(p11, "error", json_str_or_null(s->tok_error[0] ? s->tok_error
									      : NULL));
	json_object_object_add(pcscd, "socket", json_object_new_string(s->pcscd_socket));
	json_object_object_add(pcscd, "present", json_object_new_boolean(s->pcscd_present));

	for (size_t i = 0; i < s->usb.n; i++) {
		struct dev_view v;
		json_object *o, *a, *toks;

		dev_view_fill(s, i, &v);
		if (!v.shown) {
			hidden++;
			continue;
		}
		o = json_object_new_object();
		json_object_object_add(o, "bus", json_object_new_int(v.d->bus));
		json_object_object_add(o, "address", json_object_new_int(v.d->address));
		snprintf(hex, sizeof(hex), "%04x", v.d->vendor);
		json_object_object_add(o, "vendor", json_object_new_string(hex));
		snprintf(hex, sizeof(hex), "%04x", v.d->product);
		json_object_object_add(o, "product", json_object_new_string(hex));
		json_object_object_add(o, "manufacturer", json_str_or_null(v.d->manufacturer));
		json_object_object_add(o, "product_name", json_str_or_null(v.d->product_name));
		json_object_object_add(o, "serial", json_str_or_null(v.d->serial));
		a = json_object_new_array();
		for (size_t k = 0; k < v.d->n_interfaces; k++) {
			snprintf(hex, sizeof(hex), "%06x", v.d->interfaces[k]);
			json_object_array_add(a, json_object_new_string(hex));
		}
		json_object_object_add(o, "interfaces", a);
		json_object_object_add(o, "access",
			json_object_new_string(v.d->access == CLI_USB_ACCESS_OK	    ? "ok"
					       : v.d->access == CLI_USB_ACCESS_DENIED ? "denied"
										: "unknown"));
		json_object_object_add(o, "name", json_object_new_string(v.name));
		json_object_object_add(o, "kind", json_object_new_string(cli_usb_kind_name(v.kind)));
		json_object_object_add(o, "in_table", json_object_new_boolean(v.id != NULL));
		json_object_object_add(o, "state", json_object_new_string(state_names[v.state]));
		toks = json_object_new_array();
		for (size_t j = 0; j < s->toks.n_tokens; j++)
			if (token_in(s, i, j))
				json_object_array_add(toks, token_json(&s->toks.tokens[j]));
		json_object_object_add(o, "tokens", toks);
		a = json_object_new_array();
		for (size_t k = 0; k < v.n_hints; k++)
			json_object_array_add(a, json_object_new_string(v.hints[k]));
		json_object_object_add(o, "hints", a);
		json_object_array_add(devs, o);
	}
	for (size_t j = 0; j < s->toks.n_tokens; j++) {
		bool in_shown = false;

		for (size_t i = 0; i < s->usb.n && !in_shown; i++) {
			struct dev_view v;

			if (!token_in(s, i, j))
				continue;
			dev_view_fill(s, i, &v);
			in_shown = v.shown;
		}
		if (!in_shown)
			json_object_array_add(others, token_json(&s->toks.tokens[j]));
	}
	json_object_object_add(root, "usb", usb);
	json_object_object_add(root, "pkcs11", p11);
	json_object_object_add(root, "pcscd", pcscd);
	json_object_object_add(root, "devices", devs);
	json_object_object_add(root, "other_devices", json_object_new_int((int32_t)hidden));
	json_object_object_add(root, "other_tokens", others);
	return cli_json_print(root) < 0 ? -EIO : 0;
}

static void
token_print(FILE *f, const char *prefix, const struct tok_token *t)
{
	_cleanup_free_ char *label = cli_sanitize(t->label);
	_cleanup_free_ char *serial = cli_sanitize(t->serial);
	_cleanup_free_ char *module = cli_sanitize(t->module);
	_cleanup_free_ char *slot = cli_sanitize(t->slot);

	fprintf(f, "%s\"%s\" (serial %s) via %s, slot \"%s\"\n", prefix, label ? label : "?",
		serial && *serial ? serial : "none", module ? module : "?", slot ? slot : "?");
}

static int
report_text(const struct devices *s)
{
	size_t shown = 0, hidden = 0, others = 0;
	FILE *f = stdout;

	for (size_t i = 0; i < s->usb.n; i++) {
		struct dev_view v;
		_cleanup_free_ char *name = NULL;
		const char *access_word;

		dev_view_fill(s, i, &v);
		if (!v.shown) {
			hidden++;
			continue;
		}
		if (shown++ == 0)
			fprintf(f, "USB tokens and readers (%s):\n",
				s->usb_list ? s->usb_list : "libusb");
		name = cli_sanitize(v.name);
		access_word = v.d->access == CLI_USB_ACCESS_OK	   ? "yes"
			      : v.d->access == CLI_USB_ACCESS_DENIED ? "no"
								     : "unknown";
		fprintf(f, "\n%03u:%03u  %04x:%04x  %-6s  %s\n", v.d->bus, v.d->address,
			v.d->vendor, v.d->product, cli_usb_kind_name(v.kind), name ? name : "?");
		fprintf(f, "  you may open it: %s\n", access_word);
		switch (v.state) {
		case DEV_TOKEN_PRESENT:
			for (size_t j = 0; j < s->toks.n_tokens; j++)
				if (token_in(s, i, j))
					token_print(f, "  token present: ", &s->toks.tokens[j]);
			break;
		case DEV_NO_TOKEN:
		case DEV_NO_PERMISSION:
			fprintf(f, "  no token seen in it by any PKCS#11 module\n");
			break;
		case DEV_UNKNOWN:
			fprintf(f, "  tokens: unknown\n");
			break;
		case DEV_NOT_A_TOKEN:
			fprintf(f, "  not a token or reader paraf knows\n");
			break;
		}
		for (size_t k = 0; k < v.n_hints; k++)
			fprintf(f, "  hint: %s\n", v.hints[k]);
	}
	if (shown == 0 && !s->usb_error[0])
		fprintf(f, "no USB token or reader present\n");
	for (size_t j = 0; j < s->toks.n_tokens; j++) {
		bool in_shown = false;

		for (size_t i = 0; i < s->usb.n && !in_shown; i++) {
			struct dev_view v;

			if (!token_in(s, i, j))
				continue;
			dev_view_fill(s, i, &v);
			in_shown = v.shown;
		}
		if (in_shown)
			continue;
		if (others++ == 0)
			fprintf(f, "\ntokens in no USB device listed (software tokens, other "
				   "readers):\n");
		token_print(f, "  ", &s->toks.tokens[j]);
	}
	if (hidden)
		fprintf(f, "\n%zu other USB device%s (hubs, keyboards, storage...) not shown: "
			   "--all lists them\n", hidden, hidden == 1 ? "" : "s");
	fprintf(f, "%spcscd:   %s (%s)\n", shown || others || hidden ? "\n" : "",
		s->pcscd_present ? "running" : "not running", s->pcscd_socket);
	if (s->tok_error[0])
		fprintf(f, "PKCS#11: unknown: %s\n", s->tok_error);
	else
		fprintf(f, "PKCS#11: %zu token%s seen (modules: %s)\n", s->toks.n_tokens,
			s->toks.n_tokens == 1 ? "" : "s",
			s->n_modules ? "given with --module" : "the p11-kit registry");
	if (s->usb_error[0])
		fprintf(f, "USB:     %s\n", s->usb_error);
	return fflush(f) == 0 ? 0 : -EIO;
}

static int
devices_run(struct cli_ctx *ctx, int argc, char **argv)
{
	enum { OPT_MODULE = 0x200, OPT_ALL, OPT_USB_LIST };
	static const struct option opts[] = {
		{ "module", required_argument, NULL, OPT_MODULE },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "usb-list", required_argument, NULL, OPT_USB_LIST },
		CLI_COMMON_OPTIONS,
		{},
	};
	const struct cli_cmd *cmd = &cli_cmd_devices;
	struct devices s = {};
	struct stat st;
	int c, r;

	r = cli_opts_exact(cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_MODULE:
			if (!*optarg)
				return cli_usage_error(cmd, "devices: '--module' needs a path");
			if (s.n_modules == CLI_DEVICES_MODULES_MAX)
				return cli_usage_error(cmd, "devices: at most %d '--module' options",
					CLI_DEVICES_MODULES_MAX);
			s.modules[s.n_modules++] = optarg;
			break;
		case OPT_ALL:
			s.all = true;
			break;
		case OPT_USB_LIST:
			if (!*optarg)
				return cli_usage_error(cmd, "devices: '--usb-list' needs a file name");
			s.usb_list = optarg;
			break;
		default:
			r = cli_opt_common(ctx, cmd, c, argv);
			if (r != CLI_OPT_CONTINUE)
				return r;
		}
	}
	if (optind < argc)
		return cli_usage_error(cmd, "devices: unexpected argument '%s'", argv[optind]);

	if (s.usb_list) {
		r = usb_list_load(&s);
		if (r != CLI_EXIT_OK)
			goto out;
	} else {
		usb_enumerate(&s);
	}
	s.pcscd_socket = getenv("PCSCLITE_CSOCK_NAME");
	if (!s.pcscd_socket || !*s.pcscd_socket)
		s.pcscd_socket = CLI_DEVICES_PCSCD_SOCKET;
	s.pcscd_present = stat(s.pcscd_socket, &st) == 0 && S_ISSOCK(st.st_mode);
	tokens_read(&s);
	if (s.usb.n && s.toks.n_tokens) {
		s.match = calloc(s.usb.n * s.toks.n_tokens, sizeof(*s.match));
		if (!s.match) {
			r = CLI_EXIT_LOCAL;
			goto out;
		}
		cli_usb_match(&s.usb, s.toks.tokens, s.toks.n_tokens, s.match);
	}
	if (s.usb_error[0])
		cli_error("devices: %s", s.usb_error);
	if (s.tok_error[0])
		cli_error("devices: %s", s.tok_error);
	r = ctx->json ? report_json(&s) : report_text(&s);
	if (r < 0)
		r = CLI_EXIT_LOCAL;
	else if (s.usb_error[0] || s.tok_error[0])
		r = CLI_EXIT_UNREACHABLE;
	else
		r = CLI_EXIT_OK;
out:
	devices_release(&s);
	return r;
}

const struct cli_cmd cli_cmd_devices = {
	.name = "devices",
	.summary = "USB tokens and readers present, and whether a PKCS#11 module sees a token",
	.usage = devices_usage,
	.run = devices_run,
};
