/*
 * `paraf devices` (cli-devices.c): the USB tokens and readers present, named from udev/tokens.tsv
 * (the table cli_usb_ids[], generated from it at build time), and for each whether a PKCS#11
 * module sees a token in it. The pure pieces (cli-devices-match.c) are here for the unit tests:
 * the table, the injected device list (--usb-list) and how a token is matched to a device.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tok.h"

/* Limits, each checked before what it bounds is stored. */
#define CLI_USB_DEVICES_MAX 512          /* devices in a list (libusb's or --usb-list) */
#define CLI_USB_LIST_FILE_MAX (1024u * 1024) /* a --usb-list file */
#define CLI_USB_STRING_MAX 255           /* a manufacturer, product or serial string, bytes */
#define CLI_USB_INTERFACES_MAX 32        /* interfaces of one device */
#define CLI_USB_NAME_MIN 3               /* shorter names never match a slot description */

enum cli_usb_kind {
	CLI_USB_KIND_OTHER = 0,  /* not a token or reader paraf knows */
	CLI_USB_KIND_TOKEN,      /* in the table, kind token */
	CLI_USB_KIND_READER,     /* in the table, kind reader */
	CLI_USB_KIND_CCID,       /* not in the table, but an interface of class 0x0b */
	CLI_USB_KIND_VENDOR,     /* not in the table, not CCID, from a vendor of the table */
};

/* One line of udev/tokens.tsv. */
struct cli_usb_id {
	uint16_t vendor, product;
	enum cli_usb_kind kind; /* TOKEN or READER */
	const char *name;       /* the CCID driver's name for it (what pcscd calls the reader) */
	const char *notes;      /* "" when none */
};
extern const struct cli_usb_id cli_usb_ids[]; /* generated: cli-devices-table.c */
extern const size_t cli_usb_ids_n;

const struct cli_usb_id *cli_usb_id_find(uint16_t vendor, uint16_t product);
bool cli_usb_vendor_known(uint16_t vendor);
/* "token", "reader", "ccid", "vendor", "other": the JSON's words. */
const char *cli_usb_kind_name(enum cli_usb_kind k);

enum cli_usb_access {
	CLI_USB_ACCESS_UNKNOWN = 0, /* not tried, or failed for another reason */
	CLI_USB_ACCESS_OK,          /* this user can open the device */
	CLI_USB_ACCESS_DENIED,      /* EACCES: no uaccess, no rule */
};

struct cli_usb_dev {
	uint8_t bus, address;
	uint16_t vendor, product;
	char *manufacturer, *product_name, *serial; /* string descriptors; NULL when unread */
	uint32_t interfaces[CLI_USB_INTERFACES_MAX]; /* class << 16 | subclass << 8 | protocol */
	size_t n_interfaces;
	enum cli_usb_access access;
};

struct cli_usb_list {
	struct cli_usb_dev *devs;
	size_t n;
};
void cli_usb_list_release(struct cli_usb_list *l);
/* Appends a copy of *d whose strings the list takes over (d's are cleared). -E2BIG beyond
 * CLI_USB_DEVICES_MAX, -ENOMEM. */
int cli_usb_list_add(struct cli_usb_list *l, struct cli_usb_dev *d);
/*
 * Parses an injected device list (doc/cli.md, `--usb-list`): a JSON object {"devices": [...]}
 * whose entries have bus, address, vendor, product (required), manufacturer, product_name,
 * serial, interfaces, access (optional); the keys `paraf devices --json` adds are ignored, so
 * its output can be given back. 0; -EBADMSG with err naming the line or the field
 * ("devices[2].vendor: ..."); -E2BIG beyond CLI_USB_DEVICES_MAX; -ENOMEM.
 */
int cli_usb_list_parse(const char *text, size_t n, struct cli_usb_list *ret, char *err,
	size_t errsz);

bool cli_usb_dev_is_ccid(const struct cli_usb_dev *d);
/* The device's kind, and its table entry (NULL when not in the table). */
enum cli_usb_kind cli_usb_dev_kind(const struct cli_usb_dev *d, const struct cli_usb_id **ret_id);
/* The name to show: the table's, else "manufacturer product", else the product string, else
 * "unknown". Into buf. */
void cli_usb_dev_name(const struct cli_usb_dev *d, char *buf, size_t n);

/*
 * The matching rule. A PKCS#11 slot description names a device when, compared without case and
 * with runs of spaces as one, it starts with one of the device's names followed by the end, a
 * space, '[' or '(': the table's name, "manufacturer product" and the product string (names
 * shorter than CLI_USB_NAME_MIN are not used). pcscd names a reader by the CCID driver's name
 * for it, then " [interface]", " (serial)" and " 00 00"; OpenSC's slot description is that name.
 */
bool cli_usb_name_matches(const char *slot, const char *name);
/* 0: the token is not in the device; 1: its slot names the device; 2: and the slot also holds
 * "(serial)" with the device's serial (pcscd adds it), which tells two alike readers apart. */
int cli_usb_token_score(const struct cli_usb_dev *d, const struct tok_token *t);
/*
 * Puts each token in the devices that score best for it (ties: in each of them). ret is an
 * n_devs x n_tokens matrix, ret[i * n_tokens + j] true when token j is in device i.
 */
void cli_usb_match(const struct cli_usb_list *l, const struct tok_token *tokens, size_t n_tokens,
	bool *ret);
