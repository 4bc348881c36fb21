"""
Abuse of parafd's socket (doc/security.md, "Abuse of the socket"): clients of another
account, socket directories that are not private, requests at and over the limits of
doc/protocol.md, JSON nested 10,000 deep, clients that trickle bytes or stop mid-message,
clients that never read, more connections than descriptors or than max_clients, and 10,000
clients that hang up in the middle of their answer.

Every scenario prints one line of figures ("FIGURES <scenario>: …"): the inputs tried;
whether parafd is alive (the same pid, and answering agent.status); its memory growth (VmRSS
of /proc/PID/status, before and after); its descriptors (entries of /proc/PID/fd: readable
as root only, parafd is not dumpable); and the latency of a *fresh* client's agent.status
(connect, ask, answer), p50 and max, measured in a thread while the abuse goes on. Time
bounds are generous sanity limits (2 cores shared with other work); the figures are the
point, and doc/security.md quotes them.

The limits tested are doc/protocol.md's: AG_REQUEST_MAX (1 MiB), AG_JSON_DEPTH_MAX (16),
AG_OUTPUT_MAX (16 MiB of unread answers), max_clients and idle_timeout, which also bounds
the time a request line may take to arrive (a client trickling bytes is dropped).
"""

import json
import os
import resource
import select
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import conftest
from conftest import Client

MiB = 1024 * 1024
AG_REQUEST_MAX = MiB
AG_OUTPUT_MAX = 16 * MiB
AG_JSON_DEPTH_MAX = 16
NOBODY = 65534
# Under AddressSanitizer (make sanitize) resident memory says nothing about parafd: the
# quarantine keeps freed memory and the shadow grows with use. The bounds are not checked there.
SANITIZE = getattr(conftest, "SANITIZE", False)


# --- measuring ---------------------------------------------------------------------------------

def rss_kib(pid):
    """VmRSS of /proc/PID/status in KiB (status is readable even for non-dumpable processes)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def fd_count(pid):
    """Open descriptors of pid, or None when /proc/PID/fd cannot be read (parafd is not
    dumpable: only root, with CAP_SYS_PTRACE, may list them)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except PermissionError:
        return None


def cpu_seconds(pid):
    """utime + stime of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_of(sock_path, timeout=10):
    """agent.status on a fresh connection: the result, or raises."""
    r = status_call(sock_path, timeout=timeout)
    assert "result" in r, f"agent.status failed: {r}"
    return r["result"]


def wait_for(pred, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        time.sleep(step)


def check_growth(kib, bound_kib, what):
    """Fails if parafd grew by kib KiB or more than bound_kib (not under sanitizers)."""
    if SANITIZE:
        print(f"memory bound not checked under sanitizers: {what} grew by {kib} KiB")
        return
    assert kib < bound_kib, f"parafd grew by {kib} KiB ({what}; bound {bound_kib} KiB)"


def ms(x):
    return f"{x * 1000:.1f} ms"


class Prober(threading.Thread):
    """A fresh client, again and again while the abuse goes on: connect, agent.status,
    answer, close; every `every` seconds. .finish() stops it and returns its figures."""

    def __init__(self, sock_path, every=0.02, timeout=10):
        super().__init__(daemon=True)
        self.sock_path = sock_path
        self.every = every
        self.timeout = timeout
        self.lat = []
        self.errors = []
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            t0 = time.monotonic()
            try:
                status_of(self.sock_path, self.timeout)
                self.lat.append(time.monotonic() - t0)
            except Exception as e:  # noqa: BLE001 - every failure is a figure
                self.errors.append(f"{type(e).__name__}: {e}")
            self._halt.wait(self.every)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.finish()

    def finish(self):
        self._halt.set()
        if self.is_alive():
            self.join(self.timeout + 5)
        return self

    def summary(self):
        if not self.lat:
            return f"fresh client: no answer in {len(self.errors)} tries"
        return (f"fresh client agent.status n={len(self.lat)} p50={ms(statistics.median(self.lat))}"
            f" max={ms(max(self.lat))} failed={len(self.errors)}")

    def check(self, max_p50=1.0, max_latency=10.0):
        """Every probe answered; generous bounds on p50 and max (a sanity limit, not a
        benchmark)."""
        assert self.lat, f"the fresh client was never answered: {self.errors[:3]}"
        assert not self.errors, f"{len(self.errors)} fresh clients failed: {self.errors[:3]}"
        assert statistics.median(self.lat) < max_p50, self.summary()
        assert max(self.lat) < max_latency, self.summary()


class Vitals:
    """parafd's pid, RSS and descriptors when made; .report(scenario, inputs, …) checks it
    is alive (same pid, answering) and prints the figures line."""

    def __init__(self, agent):
        self.agent = agent
        self.pid = agent.pid
        st = status_of(agent.socket)
        assert st["pid"] == self.pid
        self.clients0 = st["clients"]
        self.rss0 = rss_kib(self.pid)
        self.fds0 = fd_count(self.pid)
        self.cpu0 = cpu_seconds(self.pid)
        self.t0 = time.monotonic()

    def alive(self):
        """Same process, answering on a fresh connection; returns agent.status."""
        assert self.agent.proc.poll() is None, \
            f"parafd exited with {self.agent.proc.returncode}\n{self.agent.stderr()[-3000:]}"
        st = status_of(self.agent.socket)
        assert st["pid"] == self.pid, f"agent.status from pid {st['pid']}, not {self.pid}"
        return st

    def settle(self, timeout=20):
        """Waits until parafd serves no more clients than at the start (the abusers' are
        freed) and, where they can be counted, its descriptors are back to what they were."""
        def settled():
            assert self.agent.proc.poll() is None, \
                f"parafd exited with {self.agent.proc.returncode}\n{self.agent.stderr()[-3000:]}"
            r = status_call(self.agent.socket, timeout=10)
            if r.get("error", {}).get("data", {}).get("reason") == "too-many-clients":
                return False  # connections already gone, their end not read yet: draining
            assert "result" in r, f"agent.status failed: {r}"
            st = r["result"]
            assert st["pid"] == self.pid, f"agent.status from pid {st['pid']}, not {self.pid}"
            fds = fd_count(self.pid)
            return st["clients"] <= self.clients0 + 1 and (fds is None or self.fds0 is None
                or fds <= self.fds0)
        return wait_for(settled, timeout, 0.1)

    def fds_now(self, timeout=3):
        """parafd's descriptors, given `timeout` s to reach the starting count (the last
        probe's connection may still be closing); None where they cannot be counted."""
        fds = fd_count(self.pid)
        deadline = time.monotonic() + timeout
        while fds is not None and self.fds0 is not None and fds > self.fds0 \
                and time.monotonic() < deadline:
            time.sleep(0.05)
            fds = fd_count(self.pid)
        return fds

    def report(self, scenario, inputs, prober=None, extra=""):
        st = self.alive()
        rss = rss_kib(self.pid)
        fds = self.fds_now()
        cpu = cpu_seconds(self.pid) - self.cpu0
        fd_text = (f"fds {self.fds0}->{fds}" if fds is not None and self.fds0 is not None
            else "fds n/a (not root: parafd is not dumpable)")
        line = (f"FIGURES {scenario}: inputs={inputs}; alive=yes (pid {self.pid}, "
            f"clients {st['clients']}); RSS {self.rss0}->{rss} KiB ({rss - self.rss0:+d}); "
            f"{fd_text}; parafd CPU {cpu:.2f} s in {time.monotonic() - self.t0:.1f} s")
        if prober is not None:
            line += "; " + prober.summary()
        if extra:
            line += "; " + extra
        print(line)
        self.rss1, self.fds1 = rss, fds
        return st

    def check_fds_flat(self):
        if self.fds0 is not None and self.fds1 is not None:
            assert self.fds1 <= self.fds0, f"descriptors leaked: {self.fds0} -> {self.fds1}"


def req(method="agent.status", id=1, params=None):
    return Client.encode(method, params, id)


def fionread(s):
    """Bytes waiting in the receive queue of socket s."""
    import fcntl
    import termios
    return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0" * 4))[0]


def rst_close(s):
    """Closes s with an RST (SO_LINGER 0) rather than an orderly shutdown."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def raw_connect(path, timeout=10):
    """A connection made as a blocking client makes it: connect() waits while parafd's listen
    backlog is full (a non-blocking one would get EAGAIN)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(timeout)
    return s


def fresh_client(path, timeout=10):
    """A conftest Client whose connect() blocks while the backlog is full."""
    c = Client.__new__(Client)
    c.path, c.timeout = str(path), timeout
    c.sock = raw_connect(path, timeout)
    c._buf, c._eof, c._next_id = b"", False, 1
    return c


def status_call(path, method="agent.status", timeout=10):
    """The whole response to one call on a fresh connection."""
    c = fresh_client(path, timeout)
    try:
        return c.call(method)
    finally:
        c.close()


def read_reason(c, timeout=10):
    """data.reason of the next response on Client c (or "result", or None at EOF)."""
    line = c.recv_line(timeout)
    if line is None:
        return None
    r = json.loads(line)
    if "result" in r:
        return "result"
    return r["error"]["data"]["reason"]


# --- another account ---------------------------------------------------------------------------

_OTHER_UID_FLOOD = r"""
import json, os, socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
got = {}
t0 = time.monotonic()
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    try:
        s.connect(path)
    except OSError as e:
        got["connect " + e.__class__.__name__] = got.get("connect " + e.__class__.__name__, 0) + 1
        s.close()
        continue
    try:
        s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"agent.status"}\n')
    except OSError:
        pass
    buf = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError:
        pass
    s.close()
    lines = [l for l in buf.split(b"\n") if l]
    key = "empty"
    if lines:
        r = json.loads(lines[0])
        key = r.get("error", {}).get("data", {}).get("reason", "result")
        key += "/" + str(r.get("error", {}).get("data", {}).get("rule"))
        if len(lines) > 1:
            key += "+more"
    got[key] = got.get(key, 0) + 1
print(json.dumps({"uid": os.getuid(), "got": got, "seconds": time.monotonic() - t0}))
"""


def test_other_account_flood_refused_and_audited(agent_factory):
    """R1: 1,000 connections, one after another, from a process that setuid()s to `nobody`
    (let through the file permissions on purpose): each gets one peer-refused error (rule
    R1) and is closed, each is recorded by the agent's paraf-auditd (method connect, uid
    65534, deny, R1), and a fresh client of the agent's own account is served meanwhile.
    Needs root (to run a process as another account); an ordinary user cannot make one."""
    if os.geteuid() != 0:
        pytest.skip("running a client as another account needs root")
    n = 1000
    # the other account must reach the socket: pytest's base directory is 0700
    sdir = Path(tempfile.mkdtemp(prefix="paraf-abuse-", dir="/tmp"))
    try:
        agent = agent_factory(socket_dir=sdir)
        os.chmod(sdir, 0o711)
        os.chmod(agent.socket, 0o666)
        v = Vitals(agent)
        before = len(agent.auditd.records())
        with Prober(agent.socket) as p:
            r = subprocess.run([sys.executable, "-c", _OTHER_UID_FLOOD, agent.socket, str(n)],
                user=NOBODY, group=NOBODY, extra_groups=[], capture_output=True, text=True,
                timeout=300, cwd="/")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        v.settle()
        v.report("other-account", f"{n} connections from uid {out['uid']}", p,
            f"{out['seconds'] / n * 1000:.1f} ms per refusal (with its audit record); "
            f"answers {out['got']}")
        assert out["uid"] == NOBODY
        assert out["got"] == {"peer-refused/R1": n}, out["got"]
        recs = [x["record"] for x in agent.auditd.records()[before:]]
        refused = [x for x in recs if x.get("method") == "connect"]
        assert len(refused) == n, f"{len(refused)} connect records for {n} refusals"
        for x in refused:
            assert x["uid"] == NOBODY and x["verdict"] == "deny" and x["rule"] == "R1" \
                and x["reason"] == "peer-refused", x
        p.check()
        v.check_fds_flat()
    finally:
        shutil.rmtree(sdir, ignore_errors=True)


# --- the socket directory ----------------------------------------------------------------------

def _dir_0755(base):
    d = base / "open"
    d.mkdir()
    os.chmod(d, 0o755)
    return d / "agent.sock", d


def _dir_symlink(base):
    real = base / "real"
    real.mkdir()
    os.chmod(real, 0o700)
    link = base / "link"
    link.symlink_to(real)
    return link / "agent.sock", link


def _dir_other_owner(base):
    if os.geteuid() != 0:
        pytest.skip("making a directory owned by another account needs root")
    d = base / "theirs"
    d.mkdir()
    os.chmod(d, 0o700)
    os.chown(d, NOBODY, NOBODY)
    return d / "agent.sock", d


def _dir_group_writable_other_group(base):
    d = base / "grp"
    d.mkdir()
    os.chmod(d, 0o770)
    return d / "agent.sock", d


def _socket_is_file(base):
    d = base / "ok"
    d.mkdir()
    os.chmod(d, 0o700)
    (d / "agent.sock").write_text("not a socket\n")
    return d / "agent.sock", d / "agent.sock"


def _socket_is_symlink(base):
    d = base / "ok"
    d.mkdir()
    os.chmod(d, 0o700)
    (d / "agent.sock").symlink_to("/dev/null")
    return d / "agent.sock", d / "agent.sock"


@pytest.mark.parametrize("make", [_dir_0755, _dir_symlink, _dir_other_owner,
    _dir_group_writable_other_group, _socket_is_file, _socket_is_symlink],
    ids=["dir-0755", "dir-symlink", "dir-other-owner", "dir-0770", "socket-path-a-file",
        "socket-path-a-symlink"])
def test_socket_directory_not_private(make, agent_factory, tmp_path_factory):
    """parafd refuses to start when its socket directory is not private (mode 0755 or 0770,
    owned by another account, a symlink to a private directory) or the socket's path is
    taken by something that is not a socket: it exits non-zero, names the path in its
    message, and binds nothing there. (test_agent.py covers 0750, 0705, 0777, 1777.)"""
    base = tmp_path_factory.mktemp("sdir")
    os.chmod(base, 0o700)
    sock, named = make(base)
    before = os.lstat(sock) if os.path.lexists(sock) else None
    a = agent_factory(extra_args=["--socket", str(sock)], wait=False, check_exit=False)
    try:
        rc = a.proc.wait(15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"parafd started with socket {sock}\n{a.stderr()}")
    err = a.stderr()
    print(f"FIGURES socket-dir {sock.parent.name}: exit {rc}; message: "
        f"{err.strip().splitlines()[-1] if err.strip() else '(none)'}")
    assert rc != 0
    assert str(named) in err, f"the message does not name {named}: {err}"
    after = os.lstat(sock) if os.path.lexists(sock) else None
    if before is None:
        assert after is None, f"parafd created {sock} anyway"
    else:
        assert after is not None and after.st_ino == before.st_ino, f"parafd replaced {sock}"


# --- sizes and nesting -------------------------------------------------------------------------

def _status_padded(total, id):
    """An agent.status request line of exactly `total` bytes (newline excluded)."""
    line = req("agent.status", id)[:-1]
    return line[:-1] + b" " * (total - len(line)) + b"}"


def test_request_sizes_at_and_over_the_limit(agent_factory):
    """AG_REQUEST_MAX on one connection, while a fresh client is served meanwhile: a line of
    1 MiB - 1 and of exactly 1 MiB is answered; 1 MiB + 1 gets request-too-large (id null,
    data.limit) and the connection goes on; a 16 MiB line gets one request-too-large, is
    discarded up to its newline and the same connection's next request is answered; parafd's
    memory grows by a bounded amount (its read buffer holds at most a line, not 16 MiB), and
    so does a 16 MiB line with no newline followed by a hang-up."""
    agent = agent_factory()
    v = Vitals(agent)
    c = agent.client()
    tried = 0
    with Prober(agent.socket) as p:
        for size, want in ((AG_REQUEST_MAX - 1, "result"), (AG_REQUEST_MAX, "result"),
                (AG_REQUEST_MAX + 1, "request-too-large"), (2 * AG_REQUEST_MAX,
                "request-too-large"), (16 * MiB, "request-too-large")):
            tried += 1
            c.send(_status_padded(size, tried) + b"\n")
            line = c.recv_line(60)
            assert line is not None, f"closed after a {size}-byte line"
            r = json.loads(line)
            if want == "result":
                assert r.get("id") == tried and "result" in r, f"{size} bytes: {r}"
            else:
                assert r["error"]["data"]["reason"] == want and r["id"] is None, r
                assert r["error"]["data"]["limit"] == AG_REQUEST_MAX, r
            # the same connection goes on
            r = c.call("agent.status", id=f"after-{size}")
            assert r.get("id") == f"after-{size}" and "result" in r, r
        peak = rss_kib(agent.pid)
        # a 16 MiB line without its newline, then the client goes away
        s = raw_connect(agent.socket, 60)
        chunk = b"[" * MiB
        for _ in range(16):
            s.sendall(chunk)
        tried += 1
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
        s.close()
        lines = got.splitlines()
        assert len(lines) == 1 and b"request-too-large" in lines[0], got[:300]
    c.close()
    v.settle()
    v.report("request-sizes", f"{tried} lines of 1 MiB-1 .. 16 MiB", p,
        f"RSS peak during {peak} KiB")
    p.check()
    check_growth(v.rss1 - v.rss0, 8 * 1024, "lines bounded at 1 MiB")
    v.check_fds_flat()


def test_nesting_10000_deep(agent_factory):
    """JSON nested 10,000 deep (arrays, objects, inside a valid envelope's params, and 1 MiB
    of '[' with nothing closed) is answered with nesting-too-deep, without a stack overflow
    or memory growth, and the connection goes on."""
    agent = agent_factory()
    v = Vitals(agent)
    c = agent.client()
    deep = 10000
    lines = {
        "arrays": b"[" * deep + b"]" * deep,
        "objects": b'{"a":' * deep + b"1" + b"}" * deep,
        "params": (b'{"jsonrpc":"2.0","id":7,"method":"agent.status","params":{"a":'
            + b"[" * deep + b"]" * deep + b"}}"),
        "1 MiB of [": b"[" * AG_REQUEST_MAX,
        "mixed": b'[{"a":' * (deep // 2) + b"0" + b"}]" * (deep // 2),
    }
    with Prober(agent.socket) as p:
        for label, line in lines.items():
            r = c.send_line(line, timeout=60)
            assert r.get("error", {}).get("data", {}).get("reason") == "nesting-too-deep", \
                f"{label}: {str(r)[:300]}"
            r = c.call("agent.status", id=label)
            assert r.get("id") == label and "result" in r, r
    c.close()
    v.settle()
    v.report("nesting", f"{len(lines)} lines nested {deep} deep or more", p)
    p.check()
    check_growth(v.rss1 - v.rss0, 8 * 1024, "deep nesting")


# --- slow clients ------------------------------------------------------------------------------

class Slow:
    """One slow client: sends `script` (bytes) `step` bytes every `interval` s (never, for
    interval None: it sends its first step and falls silent), and notes when parafd
    closes the connection."""

    def __init__(self, path, kind, script, interval, step=1):
        self.kind = kind
        self.sock = raw_connect(path)
        self.sock.setblocking(False)
        self.script = script
        self.interval = interval
        self.step = step
        self.sent = 0
        self.t0 = time.monotonic()
        self.next = self.t0
        self.closed_after = None
        self.got = b""

    def tick(self, now):
        if self.closed_after is not None or now < self.next:
            return
        if self.sent < len(self.script) and (self.interval is not None or self.sent == 0):
            try:
                n = self.sock.send(self.script[self.sent:self.sent + self.step])
                self.sent += n
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self.dropped(now)
                return
        self.next = now + (self.interval or 3600)

    def readable(self, now):
        try:
            b = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            b = b""
        if not b:
            self.dropped(now)
        self.got += b

    def dropped(self, now):
        if self.closed_after is None:
            self.closed_after = now - self.t0
            self.sock.close()


def run_slow(clients, duration):
    """Drives the slow clients for up to `duration` s or until all are dropped."""
    end = time.monotonic() + duration
    while True:
        now = time.monotonic()
        live = [c for c in clients if c.closed_after is None]
        if not live or now > end:
            return
        for c in live:
            c.tick(now)
        live = [c for c in live if c.closed_after is None]
        r, _, _ = select.select([c.sock for c in live], [], [], 0.05) if live else ([], [], [])
        now = time.monotonic()
        for c in live:
            if c.sock in r:
                c.readable(now)


def test_slow_and_stalled_clients_dropped(agent_factory):
    """idle_timeout (2 s here) as the defence against slow clients: a client that connects
    and sends nothing, one that stops in the middle of a request, one that falls silent after
    an answer, and 30 that trickle a never-ending request one byte every 0.5 s (slowloris:
    always active, never finishing a line) are all dropped about idle_timeout after their
    line began; a fresh client is served meanwhile, and max_clients (40) is never exhausted
    for good."""
    idle = 2
    agent = agent_factory(config=f"[agent]\nidle_timeout = {idle}\nmax_clients = 40\n")
    v = Vitals(agent)
    endless = b'{"jsonrpc":"2.0","id":1,"method":"agent.status","params":{"a":"' + b"x" * 10000
    half = req("agent.status", 1)[:20]
    clients = [Slow(agent.socket, "silent", b"", None),
        Slow(agent.socket, "half a request", half, None, step=len(half)),
        Slow(agent.socket, "silent after an answer", req("agent.status", 1), None,
            step=1000)]
    clients += [Slow(agent.socket, "trickle 1 byte/0.5 s", endless, 0.5) for _ in range(30)]
    with Prober(agent.socket, every=0.1) as p:
        run_slow(clients, 6 * idle + 4)
    v.settle()
    by_kind = {}
    for c in clients:
        by_kind.setdefault(c.kind, []).append(c.closed_after)
    figures = []
    for kind, times in by_kind.items():
        done = [t for t in times if t is not None]
        figures.append(f"{kind}: {len(done)}/{len(times)} dropped"
            + (f" after {min(done):.2f}-{max(done):.2f} s" if done else ""))
    v.report("slow-clients", f"{len(clients)} slow clients, idle_timeout {idle} s", p,
        "; ".join(figures))
    answered = clients[2].got
    assert answered.count(b"\n") == 1 and b'"result"' in answered, answered[:200]
    for kind, times in by_kind.items():
        assert all(t is not None for t in times), \
            f"{kind}: {times.count(None)} of {len(times)} never dropped ({figures})"
        assert all(idle * 0.75 <= t <= idle * 3 + 2 for t in times), f"{kind}: {times}"
    p.check()
    v.check_fds_flat()


def test_clients_stopping_mid_message(agent_factory):
    """2,000 clients each send the first part of a request (cut at every length) and go:
    half close the connection, half reset it (RST); 200 more half-close after the part
    (shutdown SHUT_WR) and get exactly one answer (the cut line is still a request:
    parse-error) before parafd closes. parafd stays up, its descriptors and memory flat,
    and a fresh client is served meanwhile."""
    agent = agent_factory()
    v = Vitals(agent)
    full = req("sign", {"certificate": "0" * 64, "usage": "signature", "format": "cms",
        "digest_algorithm": "sha256", "documents": [{"name": "surat.pdf",
        "digest": "A" * 43 + "="}]}, 1)
    n, n_half = 2000, 200
    answers = {}
    after_round = []

    def one_round():
        for i in range(n // 2):
            s = raw_connect(agent.socket)
            s.sendall(full[:1 + i % (len(full) - 2)])
            if i % 2:
                rst_close(s)
            else:
                s.close()
            # in waves well under max_clients (512): a fresh client must find room (the limit
            # itself has a test of its own)
            if i % 250 == 249:
                v.settle()
        # parafd counts a connection until it reads its end: let the flood drain first, or
        # the next clients may find max_clients taken by connections already gone
        v.settle()
        for i in range(n_half // 2):
            c = fresh_client(agent.socket)
            c.send(full[:1 + (i * 7) % (len(full) - 2)])
            c.sock.shutdown(socket.SHUT_WR)
            lines = []
            while True:
                line = c.recv_line(10)
                if line is None:
                    break
                lines.append(json.loads(line))
            c.close()
            key = ",".join(x.get("error", {}).get("data", {}).get("reason", "result")
                for x in lines) or "nothing"
            answers[key] = answers.get(key, 0) + 1
        v.settle()
        after_round.append(rss_kib(agent.pid))

    with Prober(agent.socket) as p:
        one_round()
        one_round()
    v.report("stop-mid-message", f"{n} cut requests then close/RST, {n_half} cut then "
        "SHUT_WR, in two rounds", p, f"half-closed answers {answers}; RSS after each round "
        f"{after_round} KiB (the first round's growth is the allocator keeping the read "
        "buffers of the clients queued at once; the second round must not add to it)")
    assert answers == {"parse-error": n_half}, answers
    p.check()
    v.check_fds_flat()
    check_growth(after_round[1] - after_round[0], 8 * 1024, "the second round")
    check_growth(v.rss1 - v.rss0, 64 * 1024, "both rounds")


def test_clients_that_never_read(agent_factory):
    """Three clients pipeline rpc.discover far beyond AG_OUTPUT_MAX (64 MiB of answers each)
    and never read: parafd stops reading their requests once 16 MiB of answers wait for
    each, keeps them connected, its memory stays bounded (about 17 MiB a client: its unread
    answers plus one request line), and a fresh client is served meanwhile. Then one of them
    reads: it gets every answer it asked for, in order, none lost; the others hang up."""
    agent = agent_factory()
    v = Vitals(agent)
    one_answer = len(json.dumps(status_call(agent.socket, "rpc.discover"),
        separators=(",", ":"))) + 1
    want = (64 * MiB) // one_answer + 1
    # 2 KiB a request, so that the kernel's socket buffers cannot take them all
    payload = b"".join(req("rpc.discover", i)[:-2] + b" " * (2048 - len(req("rpc.discover",
        i))) + b"}\n" for i in range(want))
    hogs = []
    with Prober(agent.socket, every=0.05) as p:
        for _ in range(3):
            s = raw_connect(agent.socket)
            s.setblocking(False)
            hogs.append([s, 0])
        # send until parafd stops reading each one (nothing more accepted for 1 s)
        stalled_since = {}
        deadline = time.monotonic() + 60
        while len(stalled_since) < len(hogs) or \
                max(stalled_since.values()) > time.monotonic() - 1.0:
            assert time.monotonic() < deadline, "parafd never stopped reading"
            progressed = False
            for i, h in enumerate(hogs):
                assert h[1] < len(payload), "parafd read every request of a client that " \
                    "never reads"
                try:
                    h[1] += h[0].send(payload[h[1]:h[1] + 65536])
                    progressed = True
                    stalled_since.pop(i, None)
                except BlockingIOError:
                    stalled_since.setdefault(i, time.monotonic())
            if not progressed:
                time.sleep(0.05)
        held = rss_kib(agent.pid)
        st = status_of(agent.socket)
        queued = [fionread(h[0]) for h in hogs]
        # the first one now reads everything it asked for, while sending the rest
        s = hogs[0][0]
        got = [0, True]

        def reader():
            buf = b""
            s2 = socket.socket(fileno=os.dup(s.fileno()))
            s2.setblocking(True)
            s2.settimeout(60)
            try:
                while got[0] < want:
                    chunk = s2.recv(1 << 20)
                    if not chunk:
                        return
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        if not line.startswith(b'{"jsonrpc":"2.0","id":%d,"result"' % got[0]):
                            got[1] = False
                        got[0] += 1
            finally:
                s2.close()
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        s.setblocking(True)
        s.settimeout(60)
        s.sendall(payload[hogs[0][1]:])
        t.join(90)
        for h in hogs:
            h[0].close()
    v.settle()
    v.report("never-reading", f"3 clients pipelining {want} rpc.discover "
        f"({want * one_answer // MiB} MiB of answers) each", p,
        f"clients connected while held {st['clients']}; requests taken (by parafd and the "
        f"kernel) before parafd stopped reading {[h[1] // 2048 for h in hogs]} of {want}; "
        f"answers waiting in the kernel {[q // 1024 for q in queued]} KiB; "
        f"RSS while held {held} KiB (+{held - v.rss0}); the reader got {got[0]}/{want} "
        f"answers, in order: {got[1]}")
    assert got[0] == want and got[1], f"got {got[0]} of {want} answers, in order {got[1]}"
    assert st["clients"] >= 4, "parafd dropped a client that does not read"
    check_growth(held - v.rss0, 3 * 24 * 1024, "3 clients that never read")
    p.check()
    v.check_fds_flat()


# --- too many connections ----------------------------------------------------------------------

def test_more_connections_than_descriptors(agent_factory):
    """parafd's RLIMIT_NOFILE lowered to 64 (prlimit on the running process), then 150
    clients connect and stay: parafd takes what its descriptors allow and leaves the rest
    waiting in the listen backlog (accept fails with EMFILE) without spinning on the
    listening socket; a client connected before is served all along; once the crowd
    leaves, the waiting clients are served and a fresh client too (recovery)."""
    agent = agent_factory()
    limit = 64
    v = Vitals(agent)
    before = fresh_client(agent.socket)
    assert read_reason_call(before) == "result"
    old = resource.prlimit(agent.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(agent.pid, resource.RLIMIT_NOFILE, (limit, old[1]))
    crowd, n = [], 150
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(agent.socket)
            except BlockingIOError:  # the backlog is full: this one never got in
                s.close()
                continue
            s.sendall(req("agent.status", 1))
            crowd.append(s)
        time.sleep(0.5)
        # how many are served now, how many wait
        served = 0
        for s in crowd:
            if select.select([s], [], [], 0)[0] and s.recv(65536):
                served += 1
        cpu0, t0 = cpu_seconds(agent.pid), time.monotonic()
        lat = []
        while time.monotonic() - t0 < 2.0:
            t = time.monotonic()
            assert read_reason_call(before) == "result"
            lat.append(time.monotonic() - t)
            time.sleep(0.05)
        cpu = (cpu_seconds(agent.pid) - cpu0) / (time.monotonic() - t0)
        # the crowd goes; the ones still waiting in the backlog go too
        t_leave = time.monotonic()
        for s in crowd:
            s.close()
        resource.prlimit(agent.pid, resource.RLIMIT_NOFILE, old)
        st = wait_for(lambda: _try_status(agent.socket), 20)
        recovery = time.monotonic() - t_leave
    finally:
        for s in crowd:
            s.close()
        if agent.proc.poll() is None:
            resource.prlimit(agent.pid, resource.RLIMIT_NOFILE, old)
    before.close()
    v.settle()
    v.report("descriptors", f"RLIMIT_NOFILE {limit}, {len(crowd)} clients connected "
        f"({n - len(crowd)} found the backlog full)", None,
        f"served while crowded {served}; parafd CPU while the backlog waits {cpu * 100:.0f}% "
        f"of a core; connected client's agent.status p50={ms(statistics.median(lat))} "
        f"max={ms(max(lat))}; a fresh client served {recovery:.2f} s after the crowd left")
    assert st, "parafd did not recover once descriptors were free"
    assert 0 < served < len(crowd), f"{served} of {len(crowd)} served with {limit} descriptors"
    assert cpu < 0.5, f"parafd used {cpu * 100:.0f}% of a core while out of descriptors (a " \
        "busy loop on the listening socket)"
    v.check_fds_flat()


def read_reason_call(c):
    c.request("agent.status")
    return read_reason(c)


def _try_status(path):
    try:
        return status_of(path, timeout=2)
    except (OSError, AssertionError, TimeoutError, EOFError):
        return None


def test_max_clients_flood(agent_factory):
    """max_clients = 16 and 300 connections at once: 16 are served, every other one gets
    too-many-clients and is closed (none is left hanging), parafd keeps no descriptor of
    the refused ones, and the places are free again once the 16 leave."""
    agent = agent_factory(config="[agent]\nmax_clients = 16\n")
    v = Vitals(agent)
    n, conns = 300, []
    for _ in range(n):
        c = fresh_client(agent.socket)
        try:
            c.request("agent.status")
        except OSError:
            pass  # refused and closed before the request went
        conns.append(c)
    got = {}
    served = []
    for c in conns:
        try:
            reason = read_reason(c)
        except (ConnectionResetError, TimeoutError) as e:
            reason = type(e).__name__
        got[reason] = got.get(reason, 0) + 1
        if reason == "result":
            served.append(c)
        else:
            assert c.wait_closed(10), "a refused client was not closed"
            c.close()
    for c in served:
        c.close()
    v.settle()
    st = v.report("max-clients", f"{n} connections at once with max_clients 16", None,
        f"answers {got}")
    assert got == {"result": 16, "too-many-clients": n - 16}, got
    assert st["clients"] <= 1
    v.check_fds_flat()


def _hang_up_worker(path, count, errors):
    discover = req("rpc.discover", 1)
    for i in range(count):
        try:
            s = raw_connect(path)
            s.sendall(discover)
            if i % 3 == 1:
                s.recv(4096)  # part of the answer, then gone
            elif i % 3 == 2:
                s.sendall(discover * 4)  # more asked for, nothing read
            rst_close(s) if i % 2 else s.close()
        except OSError as e:
            errors.append(f"{type(e).__name__}: {e}")


def test_10000_clients_hang_up_mid_reply(agent_factory):
    """10,000 clients (4 threads of 2,500) ask for rpc.discover (a large answer) and hang up
    at once, after reading part of it, or after asking for more, half of them with an RST
    (SO_LINGER 0): parafd stays up, serves a fresh client meanwhile, and ends with the
    descriptors it started with and its memory flat."""
    agent = agent_factory()
    v = Vitals(agent)
    errors, threads, n, nthreads = [], [], 10000, 4
    t0 = time.monotonic()
    with Prober(agent.socket, every=0.05) as p:
        for _ in range(nthreads):
            t = threading.Thread(target=_hang_up_worker, args=(agent.socket, n // nthreads,
                errors), daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join(300)
    took = time.monotonic() - t0
    v.settle()
    v.report("hang-up-mid-reply", f"{n} clients in {took:.1f} s", p,
        f"client-side errors {len(errors)} {errors[:2]}")
    assert not any(t.is_alive() for t in threads), "the clients did not finish in 300 s"
    assert not errors, errors[:5]
    p.check()
    v.check_fds_flat()
    check_growth(v.rss1 - v.rss0, 16 * 1024, "10,000 hang-ups")
