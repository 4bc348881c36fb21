"""
udev/70-paraf.rules and udev/tokens.tsv, its source.

- The rules are exactly what udev/gen-tokens.py makes of the table (one source, no drift).
- Syntax: `udevadm verify` when this systemd has it (253+; Debian 12's 252 has not), and always
  a checker written from udev(7): line continuations, comments, KEY[{attr}] OP "value" pairs
  separated by commas, known keys, operators allowed for each key (match keys ==/!=, assignment
  keys =/+=/-=/:=), quoting, every GOTO's LABEL present after it, every LABEL used, and
  TAG+="uaccess" only in a file that sorts before 73 (73-seat-late.rules acts on the tag).
  The checker is itself shown to refuse broken rules.
- Behaviour: an evaluator of the subset of udev the rules use runs them against synthetic
  devices (SUBSYSTEM, DEVTYPE, ACTION, ATTR{idVendor}/{idProduct}, ENV{ID_USB_INTERFACES}):
  every id of the table gets uaccess, the systemd tag and SYSTEMD_USER_WANTS=paraf.service; a
  CCID-class device of an unknown vendor too; a mouse, a mass-storage stick, a near miss of a
  known vendor, a token's interface (not the device) and a removal get nothing.
- The ids are real: each is in libccid's supported-readers list (Info.plist) or in usb.ids,
  and a name from the CCID driver's list is exactly its ifdFriendlyName (pcscd names readers so,
  and `paraf devices` matches slot descriptions against it).
"""
import fnmatch
import os
import plistlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent
RULES = SRC / "udev" / "70-paraf.rules"
TABLE = SRC / "udev" / "tokens.tsv"
GEN = SRC / "udev" / "gen-tokens.py"
PY = "/usr/bin/python3"
CCID_PLIST = Path("/usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist")
USB_IDS = [Path("/usr/share/misc/usb.ids"), Path("/var/lib/usbutils/usb.ids"),
           Path("/usr/share/hwdata/usb.ids")]

# udev(7): keys that only match, keys that only assign, keys that do both.
MATCH_KEYS = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "SUBSYSTEMS", "DRIVERS", "ATTRS",
              "TAGS", "TEST", "PROGRAM", "RESULT", "CONST", "SYSCTL", "SUBSYSTEM", "DRIVER"}
ASSIGN_KEYS = {"OWNER", "GROUP", "MODE", "SECLABEL", "RUN", "LABEL", "GOTO", "IMPORT",
               "OPTIONS"}
BOTH_KEYS = {"NAME", "SYMLINK", "ATTR", "ENV", "TAG", "SYSCTL"}
ATTR_KEYS = {"ATTR": True, "ATTRS": True, "ENV": True, "SYSCTL": True, "CONST": True,
             "TEST": False, "RUN": False, "IMPORT": True, "SECLABEL": True}  # True: {} required
MATCH_OPS = {"==", "!="}
ASSIGN_OPS = {"=", "+=", "-=", ":="}
PAIR = re.compile(
    r'\s*([A-Z]+)(?:\{([^{}]*)\})?\s*(==|!=|\+=|-=|:=|=)\s*(e?)"((?:[^"\\]|\\.)*)"\s*')


def logical_lines(text):
    """(first line number, text) of each rule, continuations joined, comments dropped."""
    out, buf, start = [], "", None
    for n, line in enumerate(text.split("\n"), 1):
        if buf == "" and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if start is None:
            start = n
        if line.endswith("\\"):
            buf += line[:-1]
            continue
        buf += line
        out.append((start, buf))
        buf, start = "", None
    if buf:
        out.append((start, buf))
    return out


def parse_rule(lineno, line):
    """[(key, attr, op, value)] of one rule; raises ValueError naming the line and the fault."""
    pairs, pos = [], 0
    while True:
        m = PAIR.match(line, pos)
        if not m:
            raise ValueError(f"line {lineno}: cannot parse at {line[pos:]!r}")
        key, attr, op, _, value = m.groups()
        known = key in MATCH_KEYS | ASSIGN_KEYS | BOTH_KEYS
        if not known:
            raise ValueError(f"line {lineno}: unknown key {key!r}")
        if key in ATTR_KEYS and ATTR_KEYS[key] and attr is None:
            raise ValueError(f"line {lineno}: {key} needs {{attribute}}")
        if key not in ATTR_KEYS and attr is not None:
            raise ValueError(f"line {lineno}: {key} takes no {{attribute}}")
        if op in MATCH_OPS and key in ASSIGN_KEYS:
            raise ValueError(f"line {lineno}: {key} cannot be matched ({op})")
        if op in ASSIGN_OPS and key in MATCH_KEYS:
            raise ValueError(f"line {lineno}: {key} cannot be assigned ({op})")
        if key in ("LABEL", "GOTO") and op != "=":
            raise ValueError(f"line {lineno}: {key} takes only '='")
        if op == "-=" and key not in ("SYMLINK", "TAG", "RUN", "ENV", "OPTIONS"):
            raise ValueError(f"line {lineno}: {key} cannot be removed from (-=)")
        pairs.append((key, attr, op, value))
        pos = m.end()
        if pos == len(line):
            return pairs
        if line[pos] != ",":
            raise ValueError(f"line {lineno}: expected ',' at {line[pos:]!r}")
        pos += 1


def check_rules(text, filename):
    """The rules of a file as [(lineno, pairs)], or ValueError for the first fault."""
    rules = [(n, parse_rule(n, line)) for n, line in logical_lines(text)]
    labels, gotos = {}, []
    for i, (n, pairs) in enumerate(rules):
        if not any(op in ASSIGN_OPS for _, _, op, _ in pairs):
            raise ValueError(f"line {n}: a rule that assigns nothing")
        for key, _, op, value in pairs:
            if key == "LABEL":
                if value in labels:
                    raise ValueError(f"line {n}: LABEL {value!r} twice")
                labels[value] = i
            if key == "GOTO":
                gotos.append((n, i, value))
            if key == "TAG" and value == "uaccess" and op in ("+=", "="):
                num = re.match(r"(\d+)-", filename)
                if not num or int(num.group(1)) >= 73:
                    raise ValueError(f"line {n}: uaccess is acted on by 73-seat-late.rules: "
                                     f"{filename} sorts after it")
    for n, i, target in gotos:
        if target not in labels:
            raise ValueError(f"line {n}: GOTO {target!r} has no LABEL")
        if labels[target] <= i:
            raise ValueError(f"line {n}: GOTO {target!r} jumps backwards")
    for label in labels:
        if not any(t == label for _, _, t in gotos):
            raise ValueError(f"LABEL {label!r} is never used")
    return rules


def glob_match(pattern, value):
    """udev's patterns: shell globs, alternatives separated by '|'."""
    return any(fnmatch.fnmatchcase(value, p) for p in pattern.split("|"))


def evaluate(rules, dev):
    """Runs the rules on dev (dict: SUBSYSTEM, ACTION, ATTR{…}, ENV{…}); returns (tags, env)."""
    tags, env = set(), dict(dev.get("ENV", {}))
    i = 0
    while i < len(rules):
        _, pairs = rules[i]
        i += 1
        ok = True
        for key, attr, op, value in pairs:
            if op not in MATCH_OPS:
                continue
            if key in ("SUBSYSTEM", "ACTION"):
                actual = dev.get(key, "")
            elif key == "ATTR":
                actual = dev.get("ATTR", {}).get(attr, "")
            elif key == "ENV":
                actual = env.get(attr, "")
            elif key == "TAG":
                actual = None
                m = any(glob_match(value, t) for t in tags)
                if m != (op == "=="):
                    ok = False
                continue
            else:
                raise AssertionError(f"the evaluator does not know how to match {key}")
            if glob_match(value, actual) != (op == "=="):
                ok = False
        if not ok:
            continue
        jump = None
        for key, attr, op, value in pairs:
            if op in MATCH_OPS:
                continue
            if key == "TAG":
                if op in ("+=", "="):
                    tags.add(value)
                elif op == "-=":
                    tags.discard(value)
            elif key == "ENV":
                if op == "+=" and env.get(attr):
                    env[attr] = env[attr] + " " + value
                else:
                    env[attr] = value
            elif key == "GOTO":
                jump = value
            elif key == "LABEL":
                pass
            else:
                raise AssertionError(f"the evaluator does not know how to assign {key}")
        if jump is not None:
            i = next(k for k, (_, p) in enumerate(rules)
                     if any(key == "LABEL" and v == jump for key, _, _, v in p))
    return tags, env


def table():
    rows = []
    for line in TABLE.read_text(encoding="ascii").splitlines():
        if line.strip() and not line.startswith("#"):
            f = line.split("\t")
            rows.append({"vendor": f[0], "product": f[1], "kind": f[2], "name": f[3]})
    return rows


def usb_device(vendor, product, interfaces=":030000:", action="add", devtype="usb_device"):
    return {"SUBSYSTEM": "usb", "ACTION": action,
            "ATTR": {"idVendor": vendor, "idProduct": product},
            "ENV": {"DEVTYPE": devtype, "MAJOR": "189", "ID_USB_INTERFACES": interfaces}}


@pytest.fixture(scope="module")
def rules():
    return check_rules(RULES.read_text(encoding="ascii"), RULES.name)


def test_rules_are_generated_from_the_table():
    r = subprocess.run([PY, str(GEN), "--rules", str(TABLE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == RULES.read_text(encoding="ascii"), \
        "udev/70-paraf.rules differs from the table: run udev/gen-tokens.py --rules"


def test_every_id_line_is_commented_with_its_product(rules):
    lines = RULES.read_text(encoding="ascii").split("\n")
    rows = {(r["vendor"], r["product"]): r for r in table()}
    seen = set()
    for i, line in enumerate(lines):
        m = re.match(r'ATTR\{idVendor\}=="([0-9a-f]{4})", ATTR\{idProduct\}=="([0-9a-f]{4})"',
                     line)
        if not m:
            continue
        row = rows[m.groups()]
        assert lines[i - 1] == f"# {row['name']} ({row['kind']})", f"line {i + 1}"
        seen.add(m.groups())
    assert seen == set(rows)


def test_udevadm_verify():
    udevadm = shutil.which("udevadm") or (os.path.exists("/usr/bin/udevadm")
                                          and "/usr/bin/udevadm")
    if not udevadm:
        pytest.skip("no udevadm here (package udev); the checker of this file still runs")
    r = subprocess.run([udevadm, "verify", "--help"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("this udevadm has no 'verify' (systemd < 253)")
    r = subprocess.run([udevadm, "verify", str(RULES)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_syntax(rules):
    # check_rules (the fixture) raised nothing; the structure is the one the design wants.
    keys = [(k, v) for _, pairs in rules for k, _, _, v in pairs if k in ("LABEL", "GOTO")]
    assert ("LABEL", "paraf_device") in keys and ("LABEL", "paraf_end") in keys
    first = rules[0][1]
    assert first[0][:3] == ("ACTION", None, "==") and first[0][3] == "remove"


@pytest.mark.parametrize("text,filename,fault", [
    ('SUBSYSTEM=="usb", TAG+="uaccess"\n', "80-late.rules", "73-seat-late"),
    ('SUBSYSTEM=="usb", TAG+="uaccess"\n', "local.rules", "73-seat-late"),
    ('SUBSYSTM=="usb", TAG+="x"\n', "70-x.rules", "unknown key 'SUBSYSTM'"),
    ('SUBSYSTEM=="usb", TAG+="x\n', "70-x.rules", "cannot parse"),
    ('SUBSYSTEM=="usb" TAG+="x"\n', "70-x.rules", "expected ','"),
    ('SUBSYSTEM="usb", TAG+="x"\n', "70-x.rules", "SUBSYSTEM cannot be assigned"),
    ('GOTO=="a"\nLABEL="a"\n', "70-x.rules", "GOTO cannot be matched"),
    ('ATTR=="x", TAG+="x"\n', "70-x.rules", "ATTR needs {attribute}"),
    ('SUBSYSTEM{x}=="usb", TAG+="x"\n', "70-x.rules", "takes no {attribute}"),
    ('SUBSYSTEM=="usb", GOTO="nowhere"\n', "70-x.rules", "has no LABEL"),
    ('LABEL="a"\nSUBSYSTEM=="usb", GOTO="a"\n', "70-x.rules", "jumps backwards"),
    ('SUBSYSTEM=="usb", GOTO="a"\nLABEL="a"\nLABEL="b"\n', "70-x.rules", "never used"),
    ('SUBSYSTEM=="usb"\n', "70-x.rules", "assigns nothing"),
    ('SUBSYSTEM=="usb", \\\n  TAG+="x",\n', "70-x.rules", "cannot parse"),
])
def test_checker_refuses_broken_rules(text, filename, fault):
    with pytest.raises(ValueError, match=re.escape(fault)):
        check_rules(text, filename)


def test_checker_accepts_continuations():
    rules = check_rules('# c\nSUBSYSTEM=="usb", \\\n  TAG+="uaccess"\n', "70-x.rules")
    assert rules == [(2, [("SUBSYSTEM", None, "==", "usb"), ("TAG", None, "+=", "uaccess")])]


def test_every_table_id_gets_access_and_the_agent(rules):
    rows = table()
    assert len(rows) >= 40
    for row in rows:
        # Interfaces of another class: the id alone must do it, not the CCID catch-all.
        tags, env = evaluate(rules, usb_device(row["vendor"], row["product"]))
        where = f"{row['vendor']}:{row['product']} {row['name']}"
        assert "uaccess" in tags, where
        assert "systemd" in tags, where
        assert env.get("SYSTEMD_USER_WANTS", "").split() == ["paraf.service"], where


def test_ccid_class_device_of_any_vendor(rules):
    for interfaces in (":0b0000:", ":030000:0b0000:", ":0b0101:ff0000:"):
        tags, env = evaluate(rules, usb_device("1234", "5678", interfaces))
        assert {"uaccess", "systemd"} <= tags, interfaces
        assert env["SYSTEMD_USER_WANTS"] == "paraf.service"


@pytest.mark.parametrize("what,dev", [
    ("mouse", usb_device("046d", "c077", ":030102:")),
    ("mass-storage stick", usb_device("0781", "5567", ":080650:")),
    ("keyboard with class 0x0b as subclass", usb_device("1234", "0001", ":030b01:")),
    ("Feitian HID dongle (a known vendor, not a token)", usb_device("096e", "0006")),
    ("ePass2003 removed", usb_device("096e", "0807", action="remove")),
    ("ePass2003's interface, not the device", usb_device("096e", "0807",
                                                          devtype="usb_interface")),
    ("a hub", usb_device("1d6b", "0002", ":090000:")),
])
def test_unrelated_devices_get_nothing(rules, what, dev):
    tags, env = evaluate(rules, dev)
    assert tags == set(), what
    assert "SYSTEMD_USER_WANTS" not in env, what


def test_other_subsystems_get_nothing(rules):
    dev = usb_device("096e", "0807")
    dev["SUBSYSTEM"] = "hidraw"
    assert evaluate(rules, dev) == (set(), dev["ENV"])


def load_ccid():
    if not CCID_PLIST.exists():
        return None
    p = plistlib.loads(CCID_PLIST.read_bytes())
    out = {}
    for v, d, name in zip(p["ifdVendorID"], p["ifdProductID"], p["ifdFriendlyName"]):
        out.setdefault((int(v, 16), int(d, 16)), []).append(name)
    return out


def load_usb_ids():
    path = next((p for p in USB_IDS if p.exists()), None)
    if not path:
        return None
    ids, vendor = set(), None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("C "):
            break  # device classes follow the vendors
        if not line.startswith("\t"):
            vendor = int(line[:4], 16)
        elif not line.startswith("\t\t"):
            ids.add((vendor, int(line[1:5], 16)))
    return ids


def test_ids_are_real():
    ccid, usb_ids = load_ccid(), load_usb_ids()
    if ccid is None and usb_ids is None:
        pytest.skip("neither libccid's Info.plist nor usb.ids is installed "
                    "(packages libccid, usb.ids: make deps)")
    unverified = []
    for row in table():
        key = (int(row["vendor"], 16), int(row["product"], 16))
        if ccid is not None and key in ccid:
            assert row["name"] in ccid[key], \
                f"{row['vendor']}:{row['product']}: the CCID driver calls it {ccid[key]}"
        elif usb_ids is None or key not in usb_ids:
            unverified.append(f"{row['vendor']}:{row['product']} {row['name']}")
    assert not unverified, "ids found neither in libccid's list nor in usb.ids: " + \
        ", ".join(unverified)


def test_generator_refuses_a_bad_table(tmp_path):
    cases = [
        ("096e\t0807\ttoken\n", ":1: 3 fields"),
        ("096E\t0807\ttoken\tX Y Z\n", "vendor '096E'"),
        ("096e\t0807\tdongle\tX Y Z\n", "kind 'dongle'"),
        ('096e\t0807\ttoken\tX "Y"\n', "name"),
        ("096e\t0807\ttoken\tA B C\n096e\t0807\ttoken\tD E F\n", ":2: 096e:0807 is listed already"),
    ]
    for text, want in cases:
        t = tmp_path / "t.tsv"
        t.write_text(text)
        r = subprocess.run([PY, str(GEN), "--rules", str(t)], capture_output=True, text=True)
        assert r.returncode != 0 and want in r.stderr, (text, r.stderr)
