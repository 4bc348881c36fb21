#!/usr/bin/python3
"""
A virtual smartcard for paraf's tests: a private pcscd with vsmartcard's vpcd reader and the
PIV card emulator test/vpiv.py, all in namespaces of their own, so that the machine's own
pcscd, readers and /run are never touched.

    vc = VirtualCard(workdir, cards)        # cards: {name: CardSpec}, the first one inserted
    vc.start()                              # raises Unavailable(reason) if it cannot be made
    vc.prefix()                             # argv prefix running a program in the mount
                                            # namespace (parafd: agent_factory(argv_prefix=…))
    vc.remove(); vc.insert(); vc.swap(name); vc.set_tries(n); vc.status()
    vc.apdus(since=0) / vc.mark()           # the card's APDU log (vpiv.py), parsed
    vc.stop()

The layout (doc/testing.md):
  holder     `vcard.py holder`: unshare(2) of a mount namespace and a network namespace (and,
             for an ordinary user, a user namespace mapping only the user's own uid and gid
             to themselves, so files and peer credentials keep their owners); the mounts are
             made private, a tmpfs is mounted over /run (pcscd's socket and pid file go to
             /run/pcscd), loopback is brought up. Then it waits for its stdin to close.
  pcscd      `pcscd --foreground -c DIR` run with nsenter in both namespaces; DIR holds one
             reader.conf naming vpcd's driver (LIBPATH) and `DEVICENAME /dev/null:PORT`, so
             vpcd listens on loopback PORT (and PORT+1 for its second slot) of the private
             network namespace: no port can clash with anything else on the machine.
  vpiv.py    the card, run with nsenter in both namespaces, connecting to vpcd; its control
             socket (a file under workdir) removes, inserts and swaps the card.
  parafd     run with prefix(): nsenter into the mount namespace only (and the user namespace
             for an ordinary user), so OpenSC finds the private pcscd at /run/pcscd/pcscd.comm.
Teardown kills the emulator, pcscd and the holder; the namespaces go with their last process.
"""

import ctypes
import errno
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VPIV = HERE / "vpiv.py"
PYTHON = "/usr/bin/python3"
PCSCD = "/usr/sbin/pcscd"
VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
OPENSC_MODULE = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
P11KIT_PROXY = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so"
NSENTER = "/usr/bin/nsenter"
VPCD_PORT = 35963  # vpcd's default (0x8C7B); private to the network namespace
READER_NAME = "Virtual PCD 00 00"  # FRIENDLYNAME "Virtual PCD", reader 0, slot 0

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x4000, 1 << 18
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """preexec_fn: SIGTERM when the test process goes away (it survives nsenter's exec)."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Unavailable(Exception):
    """The virtual card cannot be set up here; str() says why."""


def missing_programs():
    """What the virtual card needs and is not installed (empty: all there)."""
    need = [PCSCD, VPCD_DRIVER, OPENSC_MODULE, NSENTER, PYTHON]
    return [p for p in need if not os.path.exists(p)]


# --- the namespace holder (runs as `vcard.py holder`) -------------------------------------------

def _libc_call(libc, name, *args):
    if getattr(libc, name)(*args) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{name}: {os.strerror(e)}")


def _loopback_up():
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, ifr))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    finally:
        s.close()


def holder_main():
    """Makes the namespaces, reports "ready" (or "error: …") on stdout, and waits for EOF."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    uid, gid = os.getuid(), os.getgid()
    try:
        if uid == 0:
            _libc_call(libc, "unshare", CLONE_NEWNS | CLONE_NEWNET)
        else:
            _libc_call(libc, "unshare", CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET)
            with open("/proc/self/setgroups", "w") as f:
                f.write("deny")
            with open("/proc/self/uid_map", "w") as f:
                f.write(f"{uid} {uid} 1")
            with open("/proc/self/gid_map", "w") as f:
                f.write(f"{gid} {gid} 1")
        # Nothing mounted here may propagate back to the machine.
        _libc_call(libc, "mount", b"none", b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE),
            None)
        _libc_call(libc, "mount", b"tmpfs", b"/run", b"tmpfs",
            ctypes.c_ulong(MS_NOSUID | MS_NODEV), b"mode=0755")
        _loopback_up()
    except OSError as e:
        print(f"error: {e}", flush=True)
        return 1
    print("ready", flush=True)
    sys.stdin.read()
    return 0


# --- card identities ----------------------------------------------------------------------------

class CardIdentity:
    """A key and certificate in a PIV slot of a virtual card: what parafd signs with.
    .slot ('9a', '9c', …), .kind ('rsa' | 'ec'), .key (cryptography private key: the card's,
    never parafd's), .cert, .der, .cert_id, .public_key, .pin, .registry_type ('individual'),
    .key_path, .cert_path (DER)."""

    def __init__(self, card, slot, kind, key, cert, directory):
        from cryptography.hazmat.primitives import serialization
        sys.path.insert(0, str(HERE))
        import pki
        self.card, self.slot, self.kind, self.key, self.cert = card, slot, kind, key, cert
        self.der = cert.public_bytes(serialization.Encoding.DER)
        self.cert_id = pki.cert_id(self.der)
        self.public_key = cert.public_key()
        self.pin = card.pin
        self.cert_type = "individual"
        self.registry_type = "individual"
        d = Path(directory)
        self.key_path = d / f"{card.name}-{slot}.key.pem"
        self.cert_path = d / f"{card.name}-{slot}.cert.der"
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.cert_path.write_bytes(self.der)

    def __repr__(self):
        return f"<CardIdentity {self.card.name}/{self.slot} {self.kind} {self.cert_id[:16]}>"


class CardSpec:
    """One virtual PIV card: .name, .pin, .tries, .guid (hex: OpenSC's token serial),
    .ids {slot: CardIdentity}."""

    def __init__(self, ca, directory, name, pin="123456", tries=3, slots=None,
            common_name=None):
        import pki
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        self.name, self.pin, self.tries = name, pin, tries
        self.guid = os.urandom(16).hex()
        self.ids = {}
        for slot, kind in (slots or {"9a": "rsa", "9c": "ec"}).items():
            if kind == "rsa":
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            else:
                key = ec.generate_private_key(ec.SECP256R1())
            subject = pki.make_name(common_name or f"Pejabat Kartu {name} {slot.upper()}",
                serial_number="NIP196501011990031001",
                organization="Pemerintah Kabupaten Contoh")
            cert = ca.issue(key.public_key(), subject)
            self.ids[slot] = CardIdentity(self, slot, kind, key, cert, directory)

    def json(self):
        return {"guid": self.guid, "pin": self.pin, "tries": self.tries,
            "keys": {s: {"key": str(i.key_path), "cert": str(i.cert_path)}
                for s, i in self.ids.items()}}


# --- the whole setup ----------------------------------------------------------------------------

class VirtualCard:
    """A private pcscd + vpcd reader + vpiv.py card (see the module docstring)."""

    def __init__(self, workdir, cards, port=VPCD_PORT):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cards = {c.name: c for c in cards}
        self.port = port
        self.reader = READER_NAME
        self.holder = self.pcscd = self.emu = None
        self.control_path = self.dir / "vpiv.ctl"
        self.apdu_log = self.dir / "vpiv.log"
        self.pcscd_log = self.dir / "pcscd.log"
        self.emu_log = self.dir / "vpiv.stderr"
        self.conf_dir = self.dir / "reader.conf.d"
        self.opensc_conf = self.dir / "opensc.conf"
        self.unprivileged = os.getuid() != 0

    # -- setup --

    def prefix(self, net=False):
        """argv prefix running a program in the card's namespaces: the mount namespace (and
        for an ordinary user the user namespace, keeping the uid), and the network one with
        net=True. nsenter execs the program without forking, so the pid is the program's."""
        p = [NSENTER, "-t", str(self.holder.pid), "-m"]
        if net:
            p.append("-n")
        if self.unprivileged:
            p += ["-U", "--preserve-credentials"]
        return p

    def env(self):
        """Environment for parafd / OpenSC tools: a private opensc.conf (no file cache)."""
        return {"OPENSC_CONF": str(self.opensc_conf)}

    def start(self, timeout=15):
        missing = missing_programs()
        if missing:
            raise Unavailable(f"not installed: {', '.join(missing)} "
                "(scripts/install-deps.sh installs pcscd, vsmartcard-vpcd, opensc)")
        if len(str(self.control_path)) > 107:
            raise Unavailable(f"{self.control_path} is too long for a Unix socket")
        self.conf_dir.mkdir(exist_ok=True)
        (self.conf_dir / "vpcd").write_text(
            "FRIENDLYNAME \"Virtual PCD\"\n"
            f"DEVICENAME   /dev/null:{self.port}\n"
            f"LIBPATH      {VPCD_DRIVER}\n"
            f"CHANNELID    {self.port}\n")
        self.opensc_conf.write_text(
            "# written by test/vcard.py: no file cache, so a swapped card is read afresh\n"
            "app default {\n"
            "\tuse_file_caching = no;\n"
            "\tframework pkcs15 {\n\t\tuse_file_caching = no;\n\t}\n"
            "}\n")
        (self.dir / "cards.json").write_text(json.dumps(
            {n: c.json() for n, c in self.cards.items()}, indent=1))
        self.holder = subprocess.Popen([PYTHON, str(Path(__file__).resolve()), "holder"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True)
        line = self.holder.stdout.readline().decode(errors="replace").strip()
        if line != "ready":
            self.stop()
            why = line or "the namespace holder exited"
            if self.unprivileged:
                raise Unavailable(f"cannot make a user + mount + network namespace as uid "
                    f"{os.getuid()}: {why} (unprivileged user namespaces disabled?)")
            raise RuntimeError(f"cannot make a mount + network namespace as root: {why}")
        try:
            with open(self.pcscd_log, "wb") as log:
                self.pcscd = subprocess.Popen(self.prefix(net=True) + [PCSCD, "--foreground",
                    "-c", str(self.conf_dir)], stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                    preexec_fn=_die_with_parent)
            sock = Path(f"/proc/{self.holder.pid}/root/run/pcscd/pcscd.comm")
            self._wait(lambda: sock.exists(), timeout, "pcscd's socket")
            with open(self.emu_log, "wb") as log:
                self.emu = subprocess.Popen(self.prefix(net=True) + [PYTHON, str(VPIV),
                    "--port", str(self.port), "--cards", str(self.dir / "cards.json"),
                    "--control", str(self.control_path), "--log", str(self.apdu_log)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, preexec_fn=_die_with_parent)
            self._wait(lambda: self.control_path.exists(), timeout, "the card's control socket")
            self.wait_present(True, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while not cond():
            for name, p in (("pcscd", self.pcscd), ("vpiv.py", self.emu)):
                if p is not None and p.poll() is not None:
                    raise RuntimeError(f"{name} exited with {p.returncode} while waiting for "
                        f"{what}\n{self.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {what} within {timeout} s\n{self.logs()}")
            time.sleep(0.02)

    def wait_present(self, present=True, timeout=10):
        """Waits until vpcd has taken the emulator's connection (present: vpcd asked for
        the ATR on it; pcscd sees the card at that poll) or the emulator is disconnected."""
        def ok():
            st = self.status()
            return st["seen"] if present else not st["connected"]
        self._wait(ok, timeout, f"the card {'present' if present else 'absent'}")

    def logs(self):
        out = []
        for p in (self.pcscd_log, self.emu_log):
            try:
                out.append(f"--- {p.name} ---\n" + p.read_text(errors="replace")[-4000:])
            except OSError:
                pass
        return "\n".join(out)

    # -- control --

    def control(self, command, timeout=10):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(str(self.control_path))
            s.sendall(command.encode() + b"\n")
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    raise RuntimeError(f"vpiv.py closed the control socket on {command!r}")
                buf += chunk
        finally:
            s.close()
        ans = json.loads(buf)
        if "error" in ans:
            raise RuntimeError(f"vpiv.py: {command!r}: {ans['error']}")
        return ans

    def status(self):
        return self.control("status")

    def remove(self):
        return self.control("remove")

    def insert(self):
        return self.control("insert")

    def swap(self, name):
        return self.control(f"swap {name}")

    def set_tries(self, n):
        return self.control(f"tries {n}")

    def apdus(self, since=0):
        """The card's log from the `since`-th line (APDUs and connection events), parsed."""
        try:
            lines = self.apdu_log.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(x) for x in lines[since:] if x.strip()]

    def mark(self):
        try:
            return len(self.apdu_log.read_text().splitlines())
        except FileNotFoundError:
            return 0

    # -- teardown --

    def stop(self):
        for p in (self.emu, self.pcscd):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.holder is not None:
            if self.holder.poll() is None:
                try:
                    self.holder.stdin.close()
                except OSError:
                    pass
                try:
                    self.holder.wait(5)
                except subprocess.TimeoutExpired:
                    self.holder.kill()
                    self.holder.wait()
            self.holder.stdout.close()
        self.emu = self.pcscd = None


def main(argv):
    if argv[1:2] == ["holder"]:
        return holder_main()
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
