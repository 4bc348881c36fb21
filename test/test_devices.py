"""
`paraf devices`: the built CLI against a private SoftHSM (the token helper spawned directly, no
agent) and injected USB device lists (--usb-list), since these machines have no USB bus.

SoftHSM's slot description is "SoftHSM slot ID 0x…": an injected device whose product string is
"SoftHSM slot" is therefore the device the token is in, which exercises the "token present"
path exactly as an OpenSC slot named after a pcscd reader would. Also: a reader with no token
(with and without permission, with and without pcscd's socket), a device that is no token,
`--all`, replaying the JSON output as a list, every kind of malformed list (the error names
the line or the field; exit 5), a module that cannot be loaded (exit 3, tokens unknown), and
the real USB bus through libusb: on a machine without one the command says so (exit 3) and
still lists the tokens it sees.
"""
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"

SOFTHSM_DEVICE = {"bus": 1, "address": 4, "vendor": "1234", "product": "0001",
                  "manufacturer": "SoftHSM project", "product_name": "SoftHSM slot",
                  "interfaces": ["0b0000"], "access": "ok"}
READER_DENIED = {"bus": 1, "address": 5, "vendor": "072f", "product": "b100",
                 "interfaces": ["0b0000"], "access": "denied"}
EPASS_OK = {"bus": 2, "address": 3, "vendor": "096e", "product": "0807",
            "interfaces": ["0b0000"], "access": "ok", "serial": "0123ABCD"}
MOUSE = {"bus": 2, "address": 9, "vendor": "046d", "product": "c077",
         "product_name": "USB Optical Mouse", "interfaces": ["030102"]}


@pytest.fixture
def run_devices(paraf_bin, softhsm, tmp_path):
    """run_devices(*args, devices=None, pcscd=False, module=True) -> (CompletedProcess,
    parsed JSON or None). devices: written to a --usb-list file; pcscd: a real socket at
    $PCSCLITE_CSOCK_NAME (else a path that does not exist)."""
    def run(*args, devices=None, pcscd=False, module=True, raw=None):
        argv = [str(paraf_bin), "devices"]
        if module:
            argv += ["--module", SOFTHSM_MODULE]
        if devices is not None or raw is not None:
            lst = tmp_path / "usb-list.json"
            lst.write_text(raw if raw is not None else json.dumps({"devices": devices}))
            argv += ["--usb-list", str(lst)]
        argv += list(args)
        env = dict(os.environ, **softhsm.env())
        sock_path = tmp_path / "pcscd.comm"
        env["PCSCLITE_CSOCK_NAME"] = str(sock_path)
        sock = None
        if pcscd:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(str(sock_path))
        try:
            r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        finally:
            if sock:
                sock.close()
                sock_path.unlink()
        out = None
        if "--json" in args and r.stdout.strip():
            out = json.loads(r.stdout)
        return r, out
    return run


def by_address(report):
    return {(d["bus"], d["address"]): d for d in report["devices"]}


def test_token_present(run_devices, token):
    r, rep = run_devices("--json", devices=[SOFTHSM_DEVICE, READER_DENIED, MOUSE])
    assert r.returncode == 0, r.stderr
    devs = by_address(rep)
    d = devs[(1, 4)]
    assert d["state"] == "token-present"
    assert d["kind"] == "ccid" and d["in_table"] is False
    assert [t["label"] for t in d["tokens"]] == ["paraf-test"]
    assert d["tokens"][0]["serial"] == token.info()["serial"]
    assert d["tokens"][0]["module"] == "libsofthsm2.so"
    assert d["tokens"][0]["slot"].startswith("SoftHSM slot ID 0x")
    assert d["hints"] == []
    assert rep["other_tokens"] == []
    assert rep["pkcs11"] == {"modules": [SOFTHSM_MODULE], "error": None}

    r, _ = run_devices(devices=[SOFTHSM_DEVICE])
    assert r.returncode == 0, r.stderr
    assert "001:004  1234:0001  ccid    SoftHSM project SoftHSM slot" in r.stdout
    serial = token.info()["serial"]
    assert f'token present: "paraf-test" (serial {serial}) via libsofthsm2.so' in r.stdout
    assert "PKCS#11: 1 token seen" in r.stdout


def test_reader_without_token(run_devices, token):
    r, rep = run_devices("--json", devices=[READER_DENIED, EPASS_OK])
    assert r.returncode == 0, r.stderr
    devs = by_address(rep)
    reader, epass = devs[(1, 5)], devs[(2, 3)]
    assert reader["name"] == "ACS ACR39U ICC Reader" and reader["kind"] == "reader"
    assert reader["state"] == "no-permission" and reader["tokens"] == []
    hints = " | ".join(reader["hints"])
    assert "udev rules (70-paraf.rules) are not installed" in hints
    assert "is a card inserted?" in hints
    assert "pcscd is not running" in hints
    assert epass["name"] == "Feitian ePass2003" and epass["kind"] == "token"
    assert epass["state"] == "no-token"
    hints = " | ".join(epass["hints"])
    assert "udev rules" not in hints
    assert "is its module installed" in hints
    assert "paraf's table says: BSrE's usual token" in hints
    # The SoftHSM token is in none of them: listed on its own.
    assert [t["label"] for t in rep["other_tokens"]] == ["paraf-test"]

    # With pcscd's socket present, no pcscd hint.
    r, rep = run_devices("--json", devices=[EPASS_OK], pcscd=True)
    assert r.returncode == 0, r.stderr
    assert rep["pcscd"]["present"] is True
    assert not any("pcscd" in h for h in rep["devices"][0]["hints"])

    r, _ = run_devices(devices=[READER_DENIED])
    assert r.returncode == 0, r.stderr
    assert "you may open it: no" in r.stdout
    assert "no token seen in it by any PKCS#11 module" in r.stdout
    assert "hint: you may not open it" in r.stdout
    assert 'tokens in no USB device listed' in r.stdout and '"paraf-test"' in r.stdout


def test_unrelated_device_hidden_unless_all(run_devices, token):
    r, rep = run_devices("--json", devices=[MOUSE, READER_DENIED])
    assert r.returncode == 0, r.stderr
    assert list(by_address(rep)) == [(1, 5)]
    assert rep["other_devices"] == 1
    r, rep = run_devices("--json", "--all", devices=[MOUSE, READER_DENIED])
    assert r.returncode == 0, r.stderr
    mouse = by_address(rep)[(2, 9)]
    assert mouse["kind"] == "other" and mouse["state"] == "not-a-token"
    assert mouse["name"] == "USB Optical Mouse" and mouse["hints"] == []
    assert rep["other_devices"] == 0
    r, _ = run_devices(devices=[MOUSE])
    assert r.returncode == 0, r.stderr
    assert "no USB token or reader present" in r.stdout
    assert "1 other USB device (hubs, keyboards, storage...) not shown" in r.stdout


def test_json_output_replays_as_a_list(run_devices, token, tmp_path):
    r, rep = run_devices("--json", devices=[SOFTHSM_DEVICE, READER_DENIED, EPASS_OK])
    assert r.returncode == 0, r.stderr
    r2, rep2 = run_devices("--json", raw=r.stdout)
    assert r2.returncode == 0, r2.stderr
    assert rep2["devices"] == rep["devices"]


@pytest.mark.parametrize("raw,fault", [
    ('{"devices": [\n  {"bus": 1,\n   "address": }\n]}', "line 3: not valid JSON"),
    ('{"devices": [{"bus": 1, "address": 2, "product": "0807"}]}',
     "devices[0].vendor: missing"),
    ('{"devices": [{"bus": 1, "address": 2, "vendor": "96e", "product": "0807"}]}',
     "devices[0].vendor: not 4 hex digits"),
    ('{"devices": [{"bus": 1, "address": 2, "vendor": "096e", "product": "0807",'
     ' "interfaces": ["0b"]}]}', "devices[0].interfaces[0]: not 6 hex digits"),
    ('{"devices": [{"bus": 1, "address": 2, "vendor": "096e", "product": "0807",'
     ' "acces": "ok"}]}', "devices[0].acces: unknown key"),
    ('{"devices": [{"bus": 300, "address": 2, "vendor": "096e", "product": "0807"}]}',
     "devices[0].bus: not a number from 1 to 255"),
    ('{"device": []}', "device: unknown key"),
    ('', "not valid JSON"),
])
def test_bad_list(run_devices, raw, fault):
    r, _ = run_devices(raw=raw)
    assert r.returncode == 5, (r.returncode, r.stdout, r.stderr)
    assert fault in r.stderr
    assert "usb-list.json" in r.stderr
    assert r.stdout == ""


def test_list_file_missing_and_usage(paraf_bin, tmp_path):
    r = subprocess.run([str(paraf_bin), "devices", "--usb-list", str(tmp_path / "none.json")],
                       capture_output=True, text=True)
    assert r.returncode == 5 and "cannot read" in r.stderr and "none.json" in r.stderr
    r = subprocess.run([str(paraf_bin), "devices", "extra"], capture_output=True, text=True)
    assert r.returncode == 2 and "unexpected argument 'extra'" in r.stderr
    r = subprocess.run([str(paraf_bin), "devices", "--usb-lis", "x"], capture_output=True,
                       text=True)
    assert r.returncode == 2
    r = subprocess.run([str(paraf_bin), "devices", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--usb-list FILE" in r.stdout


def test_module_that_cannot_load(run_devices, tmp_path):
    r, rep = run_devices("--json", "--module", str(tmp_path / "missing.so"), module=False,
                         devices=[READER_DENIED])
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "no PKCS#11 module could be loaded" in r.stderr
    d = rep["devices"][0]
    assert d["state"] == "unknown"
    assert any("whether a token is in it is unknown" in h for h in d["hints"])
    assert rep["pkcs11"]["error"]


def test_real_usb_bus(run_devices, token):
    """Without --usb-list: libusb. Here there is no USB bus; elsewhere there is one."""
    r, rep = run_devices("--json")
    if not Path("/sys/bus/usb/devices").exists():
        assert r.returncode == 3, (r.stdout, r.stderr)
        assert "no USB bus" in r.stderr
        assert rep["usb"]["source"] == "libusb"
        assert rep["usb"]["error"].startswith("no USB bus")
        assert rep["devices"] == []
        # The tokens PKCS#11 sees are still reported.
        assert [t["label"] for t in rep["other_tokens"]] == ["paraf-test"]
        r, _ = run_devices()
        assert r.returncode == 3
        assert "USB:     no USB bus" in r.stdout and '"paraf-test"' in r.stdout
        assert "Traceback" not in r.stderr and "Segmentation" not in r.stderr
    else:
        assert r.returncode == 0, r.stderr
        assert rep["usb"]["error"] is None
        for d in rep["devices"]:
            assert d["kind"] in ("token", "reader", "ccid", "vendor") or d["tokens"]
