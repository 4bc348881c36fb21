#!/usr/bin/python3
"""
Turns udev/tokens.tsv, the one table of the USB tokens and readers paraf knows, into what uses it:

    gen-tokens.py --rules TABLE          the udev rules (udev/70-paraf.rules), on stdout
    gen-tokens.py --c TABLE OUT.c        the C table of `paraf devices` (cli/cli-devices.h)

The table's format is described at its top. Anything malformed stops with "FILE:LINE: what".
Only the standard library: meson runs it at build time.
"""
import re
import sys

KINDS = ("token", "reader")
HEX4 = re.compile(r"[0-9a-f]{4}\Z")
# Names and notes go into C strings and udev comments: printable ASCII, no quote or backslash.
TEXT = re.compile(r"[ !#-\[\]-~]+\Z")
NAME_MAX = 63  # CK_SLOT_INFO.slotDescription holds 64 bytes: a longer name could never match

RULES_HEAD = """\
# paraf: access to USB tokens and smartcard readers for the user at the seat, and their agent.
# Generated from udev/tokens.tsv by udev/gen-tokens.py: edit the table, not this file.
#
# TAG+="uaccess" lets logind give the user of the active local session (the one at the seat)
# read and write access to the device node, and takes it away when the session changes.
# systemd's 73-seat-late.rules acts on the tag, so it must be set by a file that sorts before
# 73: hence 70. The tag "systemd" with SYSTEMD_USER_WANTS makes the user's service manager
# start paraf.service (the agent, parafd) when such a device appears; the agent then sees the
# token at once instead of at the first request. It needs paraf.socket (Requires=), so the
# socket comes up too. Removing the device stops nothing: the agent notices by itself.
#
# Only USB devices (not their interfaces) are looked at; a device of the table, or any device
# with an interface of class 0x0b (Chip/SmartCard, CCID) whatever its vendor, is tagged.
# ID_USB_INTERFACES is set by the usb_id builtin in 50-udev-default.rules.

ACTION=="remove", GOTO="paraf_end"
SUBSYSTEM!="usb", GOTO="paraf_end"
ENV{DEVTYPE}!="usb_device", GOTO="paraf_end"

"""

RULES_TAIL = """\
# Any CCID-class device (an interface of class 0x0b), of any vendor
ENV{ID_USB_INTERFACES}=="*:0b????:*", GOTO="paraf_device"
GOTO="paraf_end"

LABEL="paraf_device"
TAG+="uaccess", TAG+="systemd", ENV{SYSTEMD_USER_WANTS}+="paraf.service"

LABEL="paraf_end"
"""


def fail(path, lineno, msg):
    sys.exit("%s:%d: %s" % (path, lineno, msg))


def read_table(path):
    """[(vendor, product, kind, name, notes)], checked."""
    rows, seen = [], {}
    with open(path, encoding="ascii", errors="strict") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) not in (4, 5):
                fail(path, lineno, "%d fields, want 4 or 5 separated by tabs "
                     "(vendor, product, kind, name[, notes])" % len(fields))
            vendor, product, kind, name = fields[:4]
            notes = fields[4] if len(fields) == 5 else ""
            if not HEX4.match(vendor):
                fail(path, lineno, "vendor '%s' is not 4 lower-case hex digits" % vendor)
            if not HEX4.match(product):
                fail(path, lineno, "product '%s' is not 4 lower-case hex digits" % product)
            if kind not in KINDS:
                fail(path, lineno, "kind '%s' is not one of %s" % (kind, ", ".join(KINDS)))
            if not TEXT.match(name) or name != name.strip() or len(name) > NAME_MAX:
                fail(path, lineno, "name '%s': printable ASCII without quotes or backslashes, "
                     "no outer spaces, at most %d characters" % (name, NAME_MAX))
            if notes and not TEXT.match(notes):
                fail(path, lineno, "notes: printable ASCII without quotes or backslashes")
            key = (vendor, product)
            if key in seen:
                fail(path, lineno, "%s:%s is listed already on line %d" % (vendor, product,
                                                                           seen[key]))
            seen[key] = lineno
            rows.append((vendor, product, kind, name, notes))
    if not rows:
        fail(path, 0, "no devices")
    return rows


def rules(rows):
    out = [RULES_HEAD]
    for vendor, product, kind, name, _ in rows:
        out.append("# %s (%s)\n" % (name, kind))
        out.append('ATTR{idVendor}=="%s", ATTR{idProduct}=="%s", GOTO="paraf_device"\n'
                   % (vendor, product))
    out.append("\n")
    out.append(RULES_TAIL)
    return "".join(out)


def c_source(rows):
    out = ["/* Generated from udev/tokens.tsv by udev/gen-tokens.py: do not edit. */\n",
           '#include "cli-devices.h"\n\n',
           "const struct cli_usb_id cli_usb_ids[] = {\n"]
    for vendor, product, kind, name, notes in rows:
        out.append('\t{ 0x%s, 0x%s, CLI_USB_KIND_%s, "%s", "%s" },\n'
                   % (vendor, product, kind.upper(), name, notes))
    out.append("};\n\nconst size_t cli_usb_ids_n = %d;\n" % len(rows))
    return "".join(out)


def main(argv):
    if len(argv) == 3 and argv[1] == "--rules":
        sys.stdout.write(rules(read_table(argv[2])))
    elif len(argv) == 4 and argv[1] == "--c":
        text = c_source(read_table(argv[2]))
        with open(argv[3], "w", encoding="ascii") as f:
            f.write(text)
    else:
        sys.exit("usage: gen-tokens.py --rules TABLE | --c TABLE OUT.c")


if __name__ == "__main__":
    main(sys.argv)
