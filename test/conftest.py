"""
Fixtures for paraf's integration tests: the real parafd on private SoftHSM tokens.

Run with Debian's interpreter (python3-pykcs11, python3-cryptography, python3-pytest):

    PARAF_BUILD=/abs/build /usr/bin/python3 -m pytest -v -p no:cacheprovider test

Everything a test makes lives under pytest's temporary directory: the SoftHSM configuration
and tokens, the CA, parafd's socket directory, configuration file, HOME and XDG directories.
parafd is always started with `--socket` (in a private 0700 directory), `--module` naming a
PKCS#11 module explicitly (never the p11-kit registry: as root p11-kit ignores user
configuration), `--config` (a file written by the fixture) and `--foreground`. The user's own
tokens, SoftHSM configuration and paraf configuration are never read or touched. Works as root
and as an ordinary user.

Fixtures (see each one's docstring):

    build_dir        Path of the build ($PARAF_BUILD); the session is skipped without it
    parafd_bin       Path of parafd        paraf_bin    Path of the paraf CLI
    ca               a session-wide test CA (pki.CA, EC P-256): .cert, .cert_path (ca.pem),
                     .issue(public_key, subject, ...)
    softhsm          a per-test private SoftHSM (pki.SoftHSM): .conf, .env(), .init_token()
    token            a fresh token "paraf-test" (PIN "1234") in `softhsm` (pki.Token):
                     token.enroll(ca, kind="rsa"|"ec", ...) -> pki.Identity with .cert_id,
                     .cert, .cert_path, .public_key, .pin, .key_id
    token_factory    token_factory(label=None, pin="1234") -> another pki.Token in `softhsm`
    agent_factory    agent_factory(**options) -> a started Agent (options below)
    agent            agent_factory() with defaults: sees the tokens of `softhsm`; make tokens
                     and keys BEFORE asking for it (request `token` first, enroll, then use
                     agent_factory() if the fixture order is in doubt)
    signer           a token with .rsa and .ec identities and an .agent serving them
    run_paraf        run_paraf(agent, *args, input=None, timeout=60, env=None, cwd=None) ->
                     CompletedProcess of `paraf --socket <agent.socket> ARGS` (text)

Agent (a running parafd):

    .socket, .pid, .proc (subprocess.Popen), .dir (its private work dir), .config_path,
    .log_path / .stderr() (parafd's stderr), .spy_log (PKCS#11 spy output or None)
    .call(method, params=None, id=None) -> the parsed response object (dict), on one
        persistent connection; the id defaults to a counter
    .result(method, params=None) -> response["result"], failing the test on an error
    .send_line(data: bytes) -> parsed response to one raw line (a b"\\n" is appended)
    .client(timeout=60) -> a new Client connection (closed when the test ends)
    .helper_pid(timeout=10) -> pid of the token helper (a child of parafd), or None
    .children() -> pids of all of parafd's children
    .env -> the environment parafd was started with (SOFTHSM2_CONF etc.: for the CLI too)
    .stop() -> parafd's exit status (SIGTERM, then SIGKILL after 5 s; also kills its group)

Client (one connection):

    .call(method, params=None, id=None) -> response dict (checks nothing about it)
    .request(method, params=None, id=None) -> the id used; sends without waiting
    .send(data: bytes) raw bytes (no newline added)   .send_line(data) -> send + recv
    .recv(timeout=None) -> next response (dict); raises EOFError when the agent closed
    .recv_line(timeout=None) -> raw bytes of the next line, or None at EOF
    .wait_closed(timeout) -> True if the agent closed the connection within timeout
    .close()

agent_factory options:

    softhsm=<pki.SoftHSM>   whose tokens the agent sees (default: the test's `softhsm`)
    config="…"              text of the INI config file (default "[agent]\\n")
    modules=[paths]         PKCS#11 modules (default [SOFTHSM_MODULE]); each becomes --module
    spy=True                load OpenSC's pkcs11-spy in front of SoftHSM; agent.spy_log is
                            its output file (parse with spy_calls()); skips if not installed
    extra_args=[…]          more parafd arguments
    env={…}                 more environment variables for parafd
    socket_dir=Path         use this directory for the socket (default: a fresh 0700 dir)
    wait=True               wait until the socket accepts connections (fail with parafd's
                            stderr if it exits first); wait=False for tests of refusals
    check_exit=True         at teardown, fail if parafd had died by itself before the stop

Set PARAF_TEST_WRAPPER (e.g. "valgrind --error-exitcode=99 -q") to run parafd under a tool.
"""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pki  # noqa: E402

SOFTHSM_MODULE = pki.SOFTHSM_MODULE
SPY_MODULE = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so"
REPO = Path(__file__).resolve().parent.parent
PROTOCOL_MD = REPO / "doc" / "protocol.md"
SUN_PATH_MAX = 107

_PASS_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
_PASS_ENV_PREFIXES = ("ASAN_", "UBSAN_", "LSAN_", "MSAN_", "TSAN_", "VALGRIND_")


# --- one connection ----------------------------------------------------------------------------

class Client:
    """One connection to parafd's socket, speaking line-delimited JSON-RPC 2.0."""

    def __init__(self, path, timeout=60):
        self.path = str(path)
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(self.path)
        self._buf = b""
        self._eof = False
        self._next_id = 1

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send(self, data):
        """Sends raw bytes; no newline is added."""
        self.sock.sendall(data)

    def _new_id(self):
        i = self._next_id
        self._next_id += 1
        return i

    @staticmethod
    def encode(method, params=None, id=None):
        req = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            req["params"] = params
        return json.dumps(req, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"

    def request(self, method, params=None, id=None):
        """Sends one request without waiting for the answer; returns its id."""
        if id is None:
            id = self._new_id()
        self.send(self.encode(method, params, id))
        return id

    def recv_line(self, timeout=None):
        """The next response line (without its newline), or None if the agent closed."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\n" not in self._buf:
            if self._eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no response within {timeout or self.timeout} s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                raise TimeoutError(f"no response within {timeout or self.timeout} s") from None
            except ConnectionResetError:
                chunk = b""
            finally:
                if self.sock is not None:
                    self.sock.settimeout(self.timeout)
            if not chunk:
                self._eof = True
                if self._buf:
                    line, self._buf = self._buf, b""
                    raise AssertionError(f"response not ended by a newline: {line[:200]!r}")
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def recv(self, timeout=None):
        """The next response, parsed. Raises EOFError if the agent closed the connection."""
        line = self.recv_line(timeout)
        if line is None:
            raise EOFError("parafd closed the connection")
        try:
            return json.loads(line)
        except ValueError as e:
            raise AssertionError(f"parafd sent a line that is not JSON ({e}): {line[:300]!r}")

    def call(self, method, params=None, id=None, timeout=None):
        """Sends one request and returns the parsed response (whatever it is)."""
        self.request(method, params, id)
        return self.recv(timeout)

    def send_line(self, data, timeout=None):
        """Sends data + b"\\n" and returns the parsed response."""
        self.send(data + b"\n")
        return self.recv(timeout)

    def wait_closed(self, timeout):
        """True if the agent closes the connection within `timeout` seconds (responses that
        arrive meanwhile are discarded)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                if self.recv_line(left) is None:
                    return True
            except TimeoutError:
                return False


# --- a running parafd --------------------------------------------------------------------------

def _proc_starttime(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def proc_state(pid):
    """The state letter of /proc/<pid>/stat (R, S, T, Z, …) or None if there is no process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def children_of(pid):
    """Pids of the children of `pid` (from /proc/<pid>/task/*/children, else a /proc scan)."""
    kids = []
    tasks = Path(f"/proc/{pid}/task")
    try:
        for t in tasks.iterdir():
            try:
                kids += [int(x) for x in (t / "children").read_text().split()]
            except FileNotFoundError:
                raise
            except OSError:
                pass
        return sorted(set(kids))
    except FileNotFoundError:
        pass
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return sorted(kids)


class Agent:
    """A parafd started for one test. See the module docstring for the API."""

    def __init__(self, parafd, workdir, socket_dir, modules, config, env, extra_args,
            spy_log=None):
        self.parafd = Path(parafd)
        self.dir = Path(workdir)
        self.socket_dir = Path(socket_dir)
        self.socket = str(self.socket_dir / "agent.sock")
        self.config_path = self.dir / "paraf.conf"
        self.config_path.write_text(config)
        self.log_path = self.dir / "parafd.stderr"
        self.spy_log = spy_log
        self.modules = list(modules)
        self.env = env
        self.argv = [str(self.parafd), "--socket", self.socket, "--config", str(self.config_path),
            "--foreground"]
        for m in self.modules:
            self.argv += ["--module", str(m)]
        self.argv += list(extra_args)
        wrapper = shlex.split(os.environ.get("PARAF_TEST_WRAPPER", ""))
        self.proc = None
        self._clients = []
        self._conn = None
        self._seen = set()  # (pid, starttime) of helper processes seen, killed at the end
        self._stopped = False
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(wrapper + self.argv, stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, env=env, start_new_session=True, cwd=self.dir)
        self.pid = self.proc.pid

    def __repr__(self):
        return f"<parafd pid {self.pid} socket {self.socket}>"

    def stderr(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def wait_ready(self, timeout=20):
        """Waits until the socket accepts a connection; fails with parafd's stderr if parafd
        exits or the time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                pytest.fail(f"parafd exited with status {rc} before accepting connections; "
                    f"argv {self.argv}\n--- parafd stderr ---\n{self.stderr()}")
            if os.path.exists(self.socket):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(self.socket)
                    return self
                except OSError:
                    pass
                finally:
                    s.close()
            if time.monotonic() > deadline:
                pytest.fail(f"parafd did not accept connections on {self.socket} within "
                    f"{timeout} s\n--- parafd stderr ---\n{self.stderr()}")
            time.sleep(0.02)

    # -- requests --

    def client(self, timeout=60):
        """A new connection, closed when the test ends."""
        c = Client(self.socket, timeout)
        self._clients.append(c)
        return c

    @property
    def conn(self):
        """The persistent connection .call() and .send_line() use."""
        if self._conn is None or self._conn.sock is None:
            self._conn = self.client()
        return self._conn

    def call(self, method, params=None, id=None, timeout=None):
        return self.conn.call(method, params, id, timeout)

    def send_line(self, data, timeout=None):
        return self.conn.send_line(data, timeout)

    def result(self, method, params=None, timeout=None):
        """The result of a call; fails the test (showing the error) if it returned one."""
        r = self.call(method, params, timeout=timeout)
        if "result" not in r:
            pytest.fail(f"{method} failed: {json.dumps(r)}")
        return r["result"]

    # -- processes --

    def children(self):
        return children_of(self.pid)

    def helper_pid(self, timeout=10):
        """The token helper's pid (the child of parafd), waiting up to `timeout` s for one to
        exist; None if there is none by then. Fails if parafd has several children."""
        deadline = time.monotonic() + timeout
        while True:
            kids = [k for k in self.children() if proc_state(k) not in (None, "Z")]
            if len(kids) == 1:
                self._seen.add((kids[0], _proc_starttime(kids[0])))
                return kids[0]
            if len(kids) > 1:
                pytest.fail(f"parafd has {len(kids)} children {kids}, expected one helper")
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)

    def stop(self, timeout=5):
        """Stops parafd: SIGTERM, then SIGKILL after `timeout` s; then kills whatever is left
        of its process group and any helper seen. Returns parafd's exit status."""
        for c in self._clients:
            c.close()
        self._clients = []
        self._conn = None
        for k in self.children():  # helpers may outlive parafd: remember them first
            self._seen.add((k, _proc_starttime(k)))
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                killed = True
                self.proc.kill()
                self.proc.wait()
        self._stopped = True
        try:
            os.killpg(self.pid, signal.SIGKILL)  # the group started with start_new_session
        except (ProcessLookupError, PermissionError):
            pass
        for pid, st in self._seen:
            if st is not None and _proc_starttime(pid) == st:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if killed:
            warnings.warn(f"parafd did not exit within {timeout} s of SIGTERM; killed")
        return self.proc.returncode


# --- PKCS#11 spy -------------------------------------------------------------------------------

_SPY_CALL = re.compile(r"^\d+: (C_\w+)", re.M)
_SPY_RET = re.compile(r"^Returned:\s+\d+ (\w+)", re.M)


def spy_calls(text):
    """The PKCS#11 calls in a pkcs11-spy log, in order: a list of (name, return code name)."""
    out = []
    for block in re.split(r"\n(?=\d+: C_)", text):
        m = _SPY_CALL.search(block)
        if not m:
            continue
        r = _SPY_RET.search(block)
        out.append((m.group(1), r.group(1) if r else None))
    return out


# --- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def build_dir():
    """The meson build directory ($PARAF_BUILD, absolute). Skips when it is not set."""
    b = os.environ.get("PARAF_BUILD")
    if not b:
        pytest.skip("PARAF_BUILD is not set (run through `make integration`)")
    return Path(b).resolve()


def _binary(build_dir, name):
    p = build_dir / name
    if not os.access(p, os.X_OK):
        pytest.fail(f"{p} is missing or not executable: build first (`make build`)")
    return p


@pytest.fixture(scope="session")
def parafd_bin(build_dir):
    """Path of the built parafd (fails if missing: `make integration` builds it first)."""
    _binary(build_dir, "paraf-token-helper")
    return _binary(build_dir, "parafd")


@pytest.fixture(scope="session")
def paraf_bin(build_dir):
    """Path of the built paraf CLI."""
    return _binary(build_dir, "paraf")


@pytest.fixture(scope="session")
def ca(tmp_path_factory):
    """A test CA for the whole session (EC P-256 software key): .cert, .cert_path (ca.pem),
    .key, .issue(public_key, subject, not_before=, not_after=, days=, key_usage=,
    extended_key_usage=, cert_type=, policy_oids=, email=)."""
    return pki.CA(tmp_path_factory.mktemp("ca"), kind="ec")


@pytest.fixture
def softhsm(tmp_path):
    """A private SoftHSM (pki.SoftHSM) for this test: softhsm2.conf + token dir in tmp_path."""
    return pki.SoftHSM(tmp_path / "softhsm")


@pytest.fixture
def token(softhsm):
    """A fresh SoftHSM token labelled "paraf-test", user PIN "1234", SO PIN "12345678"."""
    return softhsm.init_token("paraf-test", pin="1234", so_pin="12345678")


@pytest.fixture
def token_factory(softhsm):
    """token_factory(label=None, pin="1234", so_pin="12345678") -> a new pki.Token in the
    test's `softhsm` (label defaults to paraf-test-2, -3, …)."""
    n = [1]

    def make(label=None, pin="1234", so_pin="12345678"):
        n[0] += 1
        return softhsm.init_token(label or f"paraf-test-{n[0]}", pin=pin, so_pin=so_pin)
    return make


def _short_dir(tmp_path_factory, name):
    """A fresh 0700 directory whose socket path fits in sun_path."""
    d = tmp_path_factory.mktemp(name)
    os.chmod(d, 0o700)
    if len(str(d / "agent.sock")) > SUN_PATH_MAX:
        pytest.skip(f"temporary directory {d} too long for a Unix socket path")
    return d


@pytest.fixture
def socket_dir(tmp_path_factory):
    """A fresh private (0700) directory with a short path, for a socket."""
    return _short_dir(tmp_path_factory, "run")


@pytest.fixture
def agent_factory(parafd_bin, softhsm, tmp_path, tmp_path_factory, request):
    """agent_factory(softhsm=None, config="[agent]\\n", modules=None, spy=False,
    extra_args=(), env=None, socket_dir=None, wait=True, check_exit=True) -> Agent.

    Starts parafd in the foreground on a private socket with the given SoftHSM, modules and
    configuration; every agent started is stopped (and its process group killed) when the
    test ends, and its stderr is printed (pytest shows it for failing tests)."""
    agents = []
    n = [0]

    def start(softhsm=softhsm, config="[agent]\n", modules=None, spy=False, extra_args=(),
            env=None, socket_dir=None, wait=True, check_exit=True):
        n[0] += 1
        work = tmp_path / f"agent{n[0]}"
        work.mkdir()
        home = work / "home"
        for d in (home, home / ".config", home / ".local/share", home / ".local/state",
                home / ".cache", work / "xdg-run"):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(work / "xdg-run", 0o700)
        e = {k: v for k, v in os.environ.items()
            if k in _PASS_ENV or k.startswith(_PASS_ENV_PREFIXES)}
        e.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local/share"),
            "XDG_STATE_HOME": str(home / ".local/state"),
            "XDG_CACHE_HOME": str(home / ".cache"), "XDG_RUNTIME_DIR": str(work / "xdg-run")})
        e.setdefault("PATH", "/usr/bin:/bin")
        if softhsm is not None:
            e.update(softhsm.env())
        spy_log = None
        if spy:
            if not os.path.exists(SPY_MODULE):
                pytest.skip(f"OpenSC's PKCS#11 spy {SPY_MODULE} is not installed")
            spy_log = work / "pkcs11-spy.log"
            e.update({"PKCS11SPY": SOFTHSM_MODULE, "PKCS11SPY_OUTPUT": str(spy_log)})
            modules = [SPY_MODULE]
        if env:
            e.update(env)
        if modules is None:
            modules = [SOFTHSM_MODULE]
        sdir = socket_dir if socket_dir is not None else _short_dir(tmp_path_factory, "run")
        a = Agent(parafd_bin, work, sdir, modules, config, e, extra_args, spy_log)
        a.check_exit = check_exit
        agents.append(a)
        if wait:
            a.wait_ready()
        return a

    yield start

    problems = []
    for a in agents:
        died = a.proc.poll()
        a.stop()
        print(f"--- {a!r} argv {a.argv} exit {a.proc.returncode}, stderr: ---")
        print(a.stderr())
        if a.check_exit and died is not None and died < 0:
            problems.append(f"parafd {a.pid} died by signal {-died} during the test")
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture
def agent(agent_factory):
    """A parafd with default options on the test's `softhsm` (see agent_factory)."""
    return agent_factory()


class Signer:
    """What `signer` yields: .agent, .token, .ca, .rsa and .ec (pki.Identity)."""

    def __init__(self, agent, token, ca, rsa, ec):
        self.agent, self.token, self.ca, self.rsa, self.ec = agent, token, ca, rsa, ec


@pytest.fixture
def signer(ca, token, agent_factory):
    """A token with an RSA-2048 and an EC P-256 identity (individual certificates,
    digitalSignature + nonRepudiation, issued by `ca`) and a parafd serving them (Signer)."""
    rsa = token.enroll(ca, kind="rsa")
    ec = token.enroll(ca, kind="ec")
    return Signer(agent_factory(), token, ca, rsa, ec)


@pytest.fixture
def run_paraf(paraf_bin):
    """run_paraf(agent, *args, input=None, timeout=60, env=None, cwd=None) ->
    subprocess.CompletedProcess (text mode): runs `paraf --socket <agent.socket> ARGS` with
    the agent's environment (private HOME/XDG dirs, SOFTHSM2_CONF) plus `env`. Pass
    agent=None to run without --socket."""
    def run(agent, *args, input=None, timeout=60, env=None, cwd=None):
        e = dict(agent.env) if agent is not None else {"PATH": os.environ.get("PATH", "")}
        e.update(env or {})
        argv = [str(paraf_bin)] + (["--socket", agent.socket] if agent is not None else [])
        argv += [str(a) for a in args]
        return subprocess.run(argv, input=input, capture_output=True, text=True,
            timeout=timeout, env=e, cwd=cwd)
    return run
