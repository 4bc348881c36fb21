"""
parafd as a desktop and system service (doc/service.md): the systemd units, socket activation,
sd_notify and the watchdog, exit when idle and activation again, and the system mode for
electronic-system certificates (R1, R2, R5).

- Every unit in systemd/ is rendered with ExecStart pointing at this build's binaries and
  checked with `systemd-analyze verify` (user units with --user), and every service with
  `systemd-analyze security --offline=true --threshold=15`: an exposure of at most 1.5.
- parafd runs under `systemd-socket-activate` with a notify socket of the test's own: READY=1,
  repeated WATCHDOG=1, answers, STOPPING=1, and the socket it was given is left in place.
- Exit when idle (exit_idle / --exit-idle): not while a client is connected or a request is in
  progress; then status 0; and test/socket-activator (which, unlike systemd-socket-activate,
  starts the program again, as a .socket unit does) proves that a connection made during or
  after the exit is served by the next instance.
- System mode (--system): other accounts may connect; every request is checked against the
  certificate's registered owner (R1), individual certificates are refused (R1, R2), the PIN
  comes from $CREDENTIALS_DIRECTORY (R2) and a missing credential is named.
"""

import base64
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import REPO, Client, _short_dir  # noqa: E402
import pki  # noqa: E402

UNIT_DIR = REPO / "systemd"
ACTIVATOR = REPO / "test" / "socket-activator"
PYTHON = "/usr/bin/python3"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")
EXPOSURE_MAX = 1.5
WATCHDOG_USEC = 1000000
CREDENTIAL_PREFIX = "paraf-pin-"

# What systemd-socket-activate passes on (-E NAME): it gives the program PATH, TERM and HOME
# only, so each variable the fixtures set for parafd is named.
AGENT_ENV_NAMES = ["XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME",
    "XDG_RUNTIME_DIR", "SOFTHSM2_CONF", "PARAF_CONFIG", "HOME"]


def need(tool, name):
    if not tool:
        pytest.skip(f"{name} is not installed")


# --- the units ---------------------------------------------------------------------------------

def installed_units(build_dir):
    """{unit name: "user" | "system"} from meson's install plan: where each file of systemd/
    goes decides how systemd-analyze must look at it."""
    r = subprocess.run(["meson", "introspect", "--installed", str(build_dir)],
        capture_output=True, text=True)
    assert r.returncode == 0, f"meson introspect failed: {r.stderr}"
    units = {}
    for src, dest in json.loads(r.stdout).items():
        parts = Path(dest).parts
        if "systemd" in parts and parts[-2] in ("user", "system"):
            units[Path(dest).name] = parts[-2]
    return units


def render_units(build_dir, dest):
    """Every unit of systemd/ in dest, *.in with @bindir@ and @sbindir@ set to the build
    directory (the binaries must exist for the offline analysis). Returns {name: path}."""
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for src in sorted(UNIT_DIR.iterdir()):
        if src.name == "meson.build":
            continue
        text = src.read_text()
        name = src.name
        if name.endswith(".in"):
            name = name[:-3]
            text = text.replace("@bindir@", str(build_dir)).replace("@sbindir@", str(build_dir))
        left = re.findall(r"@[a-z_]+@", text)
        assert not left, f"{src.name}: {left} not substituted"
        (dest / name).write_text(text)
        out[name] = dest / name
    return out


def analyze(args, mode, runtime_dir, cwd):
    argv = [SYSTEMD_ANALYZE] + (["--user"] if mode == "user" else []) + args
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir), SYSTEMD_PAGER="", SYSTEMD_COLORS="0")
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


@pytest.fixture
def units(build_dir, tmp_path):
    need(SYSTEMD_ANALYZE, "systemd-analyze")
    kinds = installed_units(build_dir)
    rendered = render_units(build_dir, tmp_path / "units")
    missing = sorted(set(rendered) - set(kinds))
    assert not missing, f"units in systemd/ that meson does not install: {missing}"
    runtime = tmp_path / "xdg-run"
    runtime.mkdir(mode=0o700)
    return {name: (path, kinds[name]) for name, path in rendered.items()}, runtime


def test_units_installed_where_they_belong(units):
    """The user units go to lib/systemd/user, the system units to lib/systemd/system."""
    u, _ = units
    kinds = {name: kind for name, (_, kind) in u.items()}
    assert kinds == {
        "paraf.service": "user", "paraf.socket": "user",
        "paraf-expiry.service": "user", "paraf-expiry.timer": "user",
        "paraf-auditd.service": "system", "paraf-auditd.socket": "system",
        "paraf-system.service": "system", "paraf-system.socket": "system",
    }, kinds


def test_units_verify(units):
    """`systemd-analyze verify` accepts every unit, in its own manager's mode, and says
    nothing about any of them."""
    u, runtime = units
    problems = []
    for mode in ("system", "user"):
        paths = [str(p) for p, kind in u.values() if kind == mode]
        assert paths, f"no {mode} units"
        r = analyze(["verify", "--man=no"] + paths, mode, runtime, Path(paths[0]).parent)
        said = (r.stdout + r.stderr).strip()
        print(f"systemd-analyze {'--user ' if mode == 'user' else ''}verify "
            f"{' '.join(Path(p).name for p in paths)}: exit {r.returncode}"
            + (f"\n{said}" if said else ", nothing to report"))
        if r.returncode != 0 or said:
            problems.append(f"{mode}: exit {r.returncode}: {said}")
    assert not problems, problems


def test_units_security_exposure(units):
    """Every service scores an exposure of at most 1.5 in `systemd-analyze security
    --offline=true --threshold=15`; the figures are printed."""
    u, runtime = units
    services = {n: v for n, v in u.items() if n.endswith(".service")}
    assert len(services) == 4, services
    figures, problems = {}, []
    for name, (path, mode) in sorted(services.items()):
        r = analyze(["security", "--offline=true", "--threshold=15", "--no-pager", str(path)],
            mode, runtime, path.parent)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
        if not m:
            problems.append(f"{name}: no exposure figure (exit {r.returncode}): "
                f"{r.stdout}{r.stderr}")
            continue
        figures[name] = float(m.group(1))
        print(f"{name} ({mode}): exposure {m.group(1)}")
        left = [l for l in r.stdout.splitlines() if l.startswith("✗")]
        print("  not covered:\n    " + "\n    ".join(re.sub(r"\s{2,}", "  ", l) for l in left))
        if figures[name] > EXPOSURE_MAX or r.returncode != 0:
            problems.append(f"{name}: exposure {figures[name]} (exit {r.returncode})")
    assert not problems, problems


def test_security_threshold_is_a_gate(units, tmp_path):
    """The gate can fail: the same analysis of an unhardened service exits non-zero and
    scores above 1.5."""
    u, runtime = units
    path, _ = u["paraf-system.service"]
    bare = tmp_path / "bare.service"
    bare.write_text("[Service]\n" + next(l for l in path.read_text().splitlines()
        if l.startswith("ExecStart=")) + "\n")
    r = analyze(["security", "--offline=true", "--threshold=15", "--no-pager", str(bare)],
        "system", runtime, tmp_path)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    assert m and float(m.group(1)) > EXPOSURE_MAX and r.returncode != 0, (r.returncode, r.stdout)


def test_unit_lines_the_service_needs(units):
    """What the issue asks of the units, line by line: the user socket (0600 in a 0700
    directory), Type=notify with a watchdog and an idle exit, the system socket, credentials
    and a service account for system mode, a daily persistent timer."""
    u, _ = units

    def keys(name):
        out = {}
        for line in u[name][0].read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                out.setdefault(k, []).append(v)
        return out

    s = keys("paraf.socket")
    assert s["ListenStream"] == ["%t/paraf/agent.sock"] and s["SocketMode"] == ["0600"] \
        and s["DirectoryMode"] == ["0700"], s
    for name in ("paraf.service", "paraf-system.service"):
        k = keys(name)
        assert k["Type"] == ["notify"] and k["NotifyAccess"] == ["main"], (name, k)
        assert k["WatchdogSec"] and k["Restart"] == ["on-failure"], (name, k)
        assert re.search(r"/parafd .*--exit-idle \d+", k["ExecStart"][0]), (name, k)
        assert k["RestrictAddressFamilies"] == ["AF_UNIX"] and k["PrivateNetwork"] == ["yes"]
    k = keys("paraf-system.service")
    assert "--system" in k["ExecStart"][0] and k["DynamicUser"] == ["yes"], k
    assert "PrivateUsers" not in k, "PrivateUsers= would hide the peers' real uids (R1)"
    s = keys("paraf-system.socket")
    assert s["ListenStream"] == ["/run/paraf/system.sock"], s
    t = keys("paraf-expiry.timer")
    assert t["OnCalendar"] == ["daily"] and t["Persistent"] == ["true"], t


# --- notify socket, activator ------------------------------------------------------------------

class NotifySocket:
    """The NOTIFY_SOCKET of a service manager: a datagram socket collecting sd_notify
    messages as (time, {KEY: VALUE})."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def close(self):
        self.sock.close()

    def pump(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return
            kv = dict(l.split("=", 1) for l in data.decode().splitlines() if "=" in l)
            self.messages.append((time.monotonic(), kv))

    def wait_for(self, key, value, timeout):
        deadline = time.monotonic() + timeout
        while not any(m.get(key) == value for _, m in self.messages):
            if time.monotonic() > deadline:
                return False
            self.pump(0.05)
        return True

    def times(self, key, value):
        return [t for t, m in self.messages if m.get(key) == value]


def wait_path(path, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert proc.poll() is None, f"exited with {proc.returncode} before making {path}"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)


def connect(agent, timeout=20):
    """agent.client(), retried while the socket exists but does not listen yet (bind()
    makes the file before listen())."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return agent.client()
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class Activator:
    """test/socket-activator in front of parafd (agent_factory(argv_prefix=…)): holds the
    listening socket, starts parafd on a pending connection and again after it exited."""

    def __init__(self, socket_path, events_path, mode="0600"):
        self.socket = str(socket_path)
        self.events_path = Path(events_path)
        self.prefix = [PYTHON, str(ACTIVATOR), "-l", self.socket, "--mode", mode,
            "--events", str(self.events_path), "--"]

    def events(self, kind=None):
        try:
            lines = self.events_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        ev = [json.loads(l) for l in lines if l.strip()]
        return [e for e in ev if kind is None or e["event"] == kind]

    def wait_event(self, kind, count, timeout):
        deadline = time.monotonic() + timeout
        while len(self.events(kind)) < count:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)
        return self.events(kind)[count - 1]


def call_once(socket_path, method, params=None, timeout=30):
    """One request on a connection of its own, closed after the answer."""
    c = Client(socket_path, timeout=timeout)
    try:
        return c.call(method, params)
    finally:
        c.close()


def activated_agent(agent_factory, tmp_path_factory, mode="0600", socket_dir=None, **opts):
    sdir = socket_dir or _short_dir(tmp_path_factory, "act")
    act = Activator(Path(sdir) / "agent.sock", Path(sdir) / "events", mode)
    agent = agent_factory(socket_dir=sdir, argv_prefix=act.prefix, wait=False, **opts)
    wait_path(act.socket, agent.proc)
    assert act.wait_event("listening", 1, 20), agent.stderr()  # after listen()
    return agent, act


# --- socket activation, sd_notify, watchdog ------------------------------------------------------

def test_socket_activation_notify_and_watchdog(token, ca, agent_factory, tmp_path_factory):
    """Under `systemd-socket-activate -l PATH` parafd starts on the first connection, takes
    the socket passed to it, says READY=1 on NOTIFY_SOCKET, pings WATCHDOG=1 at less than
    WATCHDOG_USEC apart while it runs, answers, says STOPPING=1 when stopped and exits 0, and
    leaves the socket it did not create where it is."""
    need(SOCKET_ACTIVATE, "systemd-socket-activate")
    token.enroll(ca, kind="ec")
    sdir = _short_dir(tmp_path_factory, "act")
    sock = sdir / "agent.sock"
    notify = NotifySocket(sdir / "notify")
    env = {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    prefix = [SOCKET_ACTIVATE, "-l", str(sock)]
    for name in AGENT_ENV_NAMES + list(env):
        prefix += ["-E", name]
    try:
        agent = agent_factory(socket_dir=sdir, env=env, argv_prefix=prefix, wait=False)
        wait_path(sock, agent.proc)
        notify.pump(0.5)
        assert not notify.messages and "listening on" not in agent.stderr(), \
            "parafd ran before the first connection"
        c = connect(agent)  # the first connection starts parafd
        assert notify.wait_for("READY", "1", 20), (notify.messages, agent.stderr())
        assert "the socket from systemd" in agent.stderr(), agent.stderr()
        toks = c.call("tokens.list")
        assert [t["label"] for t in toks["result"]["tokens"]] == [token.label], toks
        status = c.call("agent.status")["result"]
        assert status["pid"] == agent.pid, status  # systemd-socket-activate execs parafd
        notify.pump(3.0)
        pings = notify.times("WATCHDOG", "1")
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        print(f"{len(pings)} WATCHDOG=1 in {pings[-1] - pings[0] if pings else 0:.2f} s, "
            f"largest gap {max(gaps) if gaps else 0:.3f} s (WATCHDOG_USEC {WATCHDOG_USEC})")
        assert len(pings) >= 4, notify.messages
        assert max(gaps) < WATCHDOG_USEC / 1e6, gaps
        assert c.call("agent.status")["result"]["pid"] == agent.pid
        assert agent.stop() == 0, agent.stderr()
        notify.pump(0.3)
        assert any(m.get("STOPPING") == "1" for _, m in notify.messages), notify.messages
        assert sock.exists(), "parafd removed a socket systemd had passed to it"
    finally:
        notify.close()


def test_no_watchdog_without_watchdog_usec(agent_factory, tmp_path_factory):
    """Without WATCHDOG_USEC (no WatchdogSec=), READY=1 and nothing else: the pings are the
    watchdog's, not noise."""
    need(SOCKET_ACTIVATE, "systemd-socket-activate")
    sdir = _short_dir(tmp_path_factory, "act")
    sock = sdir / "agent.sock"
    notify = NotifySocket(sdir / "notify")
    prefix = [SOCKET_ACTIVATE, "-l", str(sock)]
    for name in AGENT_ENV_NAMES + ["NOTIFY_SOCKET"]:
        prefix += ["-E", name]
    try:
        agent = agent_factory(socket_dir=sdir, env={"NOTIFY_SOCKET": notify.path},
            argv_prefix=prefix, wait=False)
        wait_path(sock, agent.proc)
        c = connect(agent)
        assert notify.wait_for("READY", "1", 20), (notify.messages, agent.stderr())
        assert "result" in c.call("agent.status")
        notify.pump(1.0)
        assert not notify.times("WATCHDOG", "1"), notify.messages
    finally:
        notify.close()


# --- exit when idle -----------------------------------------------------------------------------

def test_exit_idle_not_while_busy_then_activated_again(token, ca, agent_factory,
        tmp_path_factory):
    """exit_idle = 1 (the configuration key): parafd stays while a client is connected, even
    silent for longer than that, and while a request waits for its PIN dialog; once the last
    client has gone it exits with status 0 after exit_idle, not before; the next connection
    starts a new instance that answers."""
    ident = token.enroll(ca, kind="ec")
    agent, act = activated_agent(agent_factory, tmp_path_factory,
        config="[agent]\nexit_idle = 1\n", pinentry={"pin": ident.pin, "delay": 2.5})
    c = agent.client()
    first = c.call("agent.status")["result"]["pid"]
    assert [e["pid"] for e in act.events("spawn")] == [first]
    time.sleep(2.5)  # connected and silent, longer than exit_idle
    assert not act.events("exit"), (act.events(), agent.stderr())
    digest = pki.b64(pki.digest(b"surat", "sha256"))
    t0 = time.monotonic()
    r = c.call("sign", {"certificate": ident.cert_id, "usage": "signature", "format": "cms",
        "digest_algorithm": "sha256", "documents": [{"name": "surat.txt", "digest": digest}]})
    assert "result" in r, r
    assert time.monotonic() - t0 >= 2.4  # the dialog took its time, and parafd stayed
    assert not act.events("exit"), (act.events(), agent.stderr())
    closed = time.monotonic()
    c.close()
    ev = act.wait_event("exit", 1, 15)
    assert ev and ev["pid"] == first and ev["status"] == 0, (act.events(), agent.stderr())
    assert ev["time"] - closed >= 0.9, f"exited {ev['time'] - closed:.2f} s after the last client"
    assert "idle for 1 s, exiting" in agent.stderr(), agent.stderr()
    c2 = agent.client()
    second = c2.call("agent.status")["result"]["pid"]
    assert second != first and [e["pid"] for e in act.events("spawn")] == [first, second]


def test_R13_exit_idle_waits_for_the_audit_spool(token, ca, agent_factory, tmp_path_factory):
    """audit = spool with the audit service away: the signature's record goes to the spool
    (R13). Once the service is back, the idle agent does not exit before the spool has been
    forwarded: when the exit comes, the service holds the record."""
    ident = token.enroll(ca, kind="ec")
    agent, act = activated_agent(agent_factory, tmp_path_factory,
        config="[agent]\nexit_idle = 1\n", audit="spool", auditd=False,
        pinentry={"pin": ident.pin})
    c = connect(agent)
    r = c.call("sign", sign_request(ident))
    assert "result" in r, r
    agent.auditd.start()
    c.close()
    ev = act.wait_event("exit", 1, 60)
    assert ev and ev["status"] == 0, (act.events(), agent.stderr())
    stored = [x["record"] for x in agent.auditd.records()]
    assert [(x.get("method"), x.get("certificate"), x.get("outcome")) for x in stored] == \
        [("sign", ident.cert_id, "signed")], stored


def test_exit_idle_loses_no_connection(agent_factory, tmp_path_factory):
    """--exit-idle 1: a connection made the moment parafd decides to exit waits in the
    listening socket, which parafd leaves to its activator, and is answered by the next
    instance; three times over."""
    agent, act = activated_agent(agent_factory, tmp_path_factory, extra_args=["--exit-idle", "1"])
    first = call_once(act.socket, "agent.status")["result"]
    assert first["exit_idle"] == 1 and first["mode"] == "user", first
    pids = [first["pid"]]
    during = 0
    for k in range(1, 4):
        deadline = time.monotonic() + 15
        while agent.stderr().count("idle for 1 s, exiting") < k:
            assert time.monotonic() < deadline, agent.stderr()
            time.sleep(0.002)
        c = Client(act.socket, timeout=30)
        during += len(act.events("exit")) < k
        r = c.call("agent.status")
        c.close()
        assert "result" in r, r
        pids.append(r["result"]["pid"])
        assert pids[-1] != pids[-2], pids
    print(f"{during} of 3 connections arrived while the exiting instance was still running")
    assert [e["pid"] for e in act.events("spawn")] == pids
    assert all(e["status"] == 0 for e in act.events("exit")), act.events()


def test_exit_idle_needs_a_socket_from_systemd(agent_factory):
    """On a socket parafd made itself, exiting would leave clients nobody to talk to: the
    option is ignored, with a warning."""
    agent = agent_factory(extra_args=["--exit-idle", "1"])
    time.sleep(2.5)
    assert agent.alive()
    st = agent.result("agent.status")
    assert st["exit_idle"] == 0 and st["mode"] == "user", st
    assert "exit_idle applies to a socket passed by systemd only; ignored" in agent.stderr()


@pytest.mark.parametrize("config, args, message, status", [
    ("[agent]\nexit_idle = soon\n", [], "bad value 'soon' for 'exit_idle'", 1),
    ("[agent]\nexit_idle = 90000\n", [], "bad value '90000' for 'exit_idle'", 1),
    ("[agent]\nmode = desktop\n", [], "bad value 'desktop' for 'mode'", 1),
    ("[agent]\n", ["--exit-idle", "-1"], "--exit-idle needs seconds from 0 to 86400", 2),
])
def test_exit_idle_and_mode_values(agent_factory, config, args, message, status):
    agent = agent_factory(config=config, extra_args=args, wait=False)
    assert agent.proc.wait(20) == status, agent.stderr()
    assert message in agent.stderr(), agent.stderr()


# --- system mode ---------------------------------------------------------------------------------

def sign_request(ident, content=b"nota dinas"):
    return {"certificate": ident.cert_id, "usage": "signature", "format": "cms",
        "digest_algorithm": "sha256",
        "documents": [{"name": "nota.txt", "digest": pki.b64(pki.digest(content, "sha256"))}]}


def cms_verifies(tmp_path, cms_b64, content, ca):
    sig, doc = tmp_path / "sig.p7s", tmp_path / "doc.txt"
    sig.write_bytes(base64.b64decode(cms_b64))
    doc.write_bytes(content)
    r = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(sig),
        "-content", str(doc), "-CAfile", str(ca.cert_path), "-purpose", "any", "-out",
        "/dev/null"], capture_output=True, text=True)
    return r.returncode == 0, r.stderr


SYSTEM_PIN = "582913"


@pytest.fixture
def system_setup(ca, token_factory, tmp_path):
    """A token (PIN SYSTEM_PIN) with two system certificates and an individual one, all
    registered to the test's account; a credentials directory holding the first system
    certificate's PIN only."""
    tok = token_factory(label="sistem", pin=SYSTEM_PIN)
    sys_ec = tok.enroll(ca, kind="ec", cert_type="system", common_name="Aplikasi Surat")
    person = tok.enroll(ca, kind="ec", common_name="Budi Santoso")
    sys_rsa = tok.enroll(ca, kind="rsa", cert_type="system", common_name="Aplikasi Gaji")
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    cred = creds / (CREDENTIAL_PREFIX + sys_ec.cert_id)
    cred.write_text(SYSTEM_PIN + "\n")
    os.chmod(cred, 0o400)
    return sys_ec, person, sys_rsa, creds


def system_agent(agent_factory, tmp_path_factory, creds, socket_dir=None):
    return activated_agent(agent_factory, tmp_path_factory, mode="0666", socket_dir=socket_dir,
        extra_args=["--system"], env={"CREDENTIALS_DIRECTORY": str(creds)})


def test_R1_R2_system_mode(ca, system_setup, agent_factory, tmp_path_factory, tmp_path):
    """parafd --system: a system certificate registered to the caller signs with the PIN from
    its credential (R2: no dialog, nothing in the request), an individual certificate is
    refused (type-not-served, R1), a system certificate without a credential is refused
    naming the credential expected; every decision is recorded, and the PIN never appears in
    the agent's output."""
    sys_ec, person, sys_rsa, creds = system_setup
    agent, act = system_agent(agent_factory, tmp_path_factory, creds)
    c = agent.client()
    st = c.call("agent.status")["result"]
    assert st["mode"] == "system", st
    assert "system mode: serving electronic-system certificates" in agent.stderr()
    r = c.call("sign", sign_request(sys_ec))
    assert "result" in r, r
    ok, why = cms_verifies(tmp_path, r["result"]["signatures"][0]["cms"], b"nota dinas", ca)
    assert ok, why

    r = c.call("sign", sign_request(person))
    assert r["error"]["data"]["reason"] == "type-not-served", r
    assert r["error"]["data"]["rule"] == "R1", r
    assert "individual" in r["error"]["message"], r

    r = c.call("sign", sign_request(sys_rsa))
    name = CREDENTIAL_PREFIX + sys_rsa.cert_id
    assert r["error"]["data"]["reason"] == "pin-required", r
    assert r["error"]["data"]["credential"] == name and name in r["error"]["message"], r

    recs = [x for x in agent.audit() if x.get("method") == "sign"]
    got = [(x["certificate"], x["verdict"], x["rule"], x["reason"], x.get("outcome"))
        for x in recs]
    assert got == [
        (sys_ec.cert_id, "allow", None, "allowed", "signed"),
        (person.cert_id, "deny", "R1", "type-not-served", None),
        (sys_rsa.cert_id, "allow", None, "allowed", "pin-required"),
    ], recs
    assert all(x["uid"] == os.getuid() for x in recs), recs
    assert agent.pinentry.dialogs() == [], "system mode opened a PIN dialog"
    assert SYSTEM_PIN not in agent.stderr()
    assert SYSTEM_PIN.encode() not in b"".join(l[2] for l in agent.auditd.lines())


def test_R2_system_mode_request_pin_as_policy_allows(system_setup, agent_factory,
        tmp_path_factory):
    """The credential is where system mode looks when the request brings no PIN; a policy
    that lists no type for PINs from outside the dialog leaves system mode without any, and
    the error says why rather than naming a credential that would not be read."""
    sys_ec, person, sys_rsa, creds = system_setup
    agent, act = system_agent(agent_factory, tmp_path_factory, creds)
    agent.policy.add_policy("[pin]\nparameter_types = none\n")
    r = call_once(act.socket, "sign", sign_request(sys_ec))
    assert r["error"]["data"]["reason"] == "pin-required", r
    assert "parameter_types" in r["error"]["message"], r


@pytest.mark.parametrize("config, args", [
    ("[agent]\n", ["--system"]),
    ("[agent]\nmode = system\n", []),
])
def test_system_mode_needs_a_socket_from_systemd(agent_factory, config, args):
    """--system (or `mode = system`) never makes its own socket: ag_socket_listen() makes
    private ones only, and the system socket must be reachable by other accounts
    (paraf-system.socket)."""
    agent = agent_factory(config=config, extra_args=args, wait=False)
    assert agent.proc.wait(20) == 1, agent.stderr()
    assert "system mode serves the socket systemd passes" in agent.stderr()


def other_account():
    if os.getuid() != 0:
        pytest.skip("making a client of a second account needs root (setuid); as an "
            "ordinary user only the owner's own requests can be shown")
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no account 'nobody' to run a second client as")
    if pw.pw_uid == 0:
        pytest.skip("'nobody' is uid 0")
    return pw


def call_as(pw, socket_path, requests):
    """Runs requests [(method, params)] on one connection from a forked child that became
    account pw; returns the responses."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            out = []
            try:
                c = Client(socket_path, timeout=30)
                for method, params in requests:
                    out.append(c.call(method, params))
            except Exception as e:  # reported to the parent
                out.append({"exception": repr(e)})
            os.write(wfd, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(wfd)
    data = b""
    while True:
        chunk = os.read(rfd, 1 << 20)
        if not chunk:
            break
        data += chunk
    os.close(rfd)
    os.waitpid(pid, 0)
    return json.loads(data)


def test_R1_system_mode_checks_every_request_peer(shared_tmp, system_setup, agent_factory,
        tmp_path_factory):
    """System mode accepts connections from other accounts (the user-mode agent refuses them
    at accept time, peer-refused) and checks each request: another account's request for a
    system certificate registered to the test's account is refused (not-owner, R1) and
    recorded with that account's uid, while the owner's own request on the same agent signs."""
    pw = other_account()
    sys_ec, person, sys_rsa, creds = system_setup
    sdir = shared_tmp / "s"
    sdir.mkdir(mode=0o755)
    agent, act = system_agent(agent_factory, tmp_path_factory, creds, socket_dir=sdir)
    got = call_as(pw, act.socket, [("certificates.list", None), ("sign", sign_request(sys_ec))])
    assert "result" in got[0], got  # connected and served: no peer-refused in system mode
    assert sys_ec.cert_id in [x["id"] for x in got[0]["result"]["certificates"]], got
    assert got[1]["error"]["data"]["reason"] == "not-owner", got
    assert got[1]["error"]["data"]["rule"] == "R1", got
    r = call_once(act.socket, "sign", sign_request(sys_ec))
    assert "result" in r, r
    recs = [(x["uid"], x["verdict"], x["reason"]) for x in agent.audit()
        if x.get("method") == "sign"]
    assert recs == [(pw.pw_uid, "deny", "not-owner"), (os.getuid(), "allow", "allowed")], recs


def test_R1_user_mode_still_refuses_other_accounts(shared_tmp, agent_factory, tmp_path_factory):
    """The same connection to a user-mode agent on a socket anyone could reach is refused at
    accept time (peer-refused, R1): the per-request check is system mode's only."""
    pw = other_account()
    sdir = shared_tmp / "u"
    sdir.mkdir(mode=0o755)
    agent, act = activated_agent(agent_factory, tmp_path_factory, mode="0666", socket_dir=sdir)
    got = call_as(pw, act.socket, [("agent.status", None)])
    assert got[0].get("error", {}).get("data", {}).get("reason") == "peer-refused", got
