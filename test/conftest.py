"""
Fixtures for paraf's integration tests: the real parafd on private SoftHSM tokens.

Run with Debian's interpreter (python3-pykcs11, python3-cryptography, python3-pytest):

    PARAF_BUILD=/abs/build /usr/bin/python3 -m pytest -v -p no:cacheprovider test

Everything a test makes lives under pytest's temporary directory: the SoftHSM configuration
and tokens, the CA, parafd's socket directory, configuration file, policy directory, PIN
dialog, HOME and XDG directories. parafd is always started with `--socket` (in a private 0700
directory), `--module` naming a PKCS#11 module explicitly (never the p11-kit registry: as root
p11-kit ignores user configuration), `--config` (a file written by the fixture),
`--foreground`, and by default `--policy DIR` (a private policy directory, see PolicyDir) and
`--pinentry WRAPPER` (the scripted test/fake-pinentry, see FakePinentry). The user's own
tokens, SoftHSM configuration, paraf configuration and /etc/paraf are never read or touched.
Works as root and as an ordinary user: the registered owner of every test certificate is the
account the tests run as (root's policy then needs `[owner] root_may_own = yes`, which the
fixture writes only when running as root).

Fixtures (see each one's docstring):

    build_dir        Path of the build ($PARAF_BUILD); the session is skipped without it
    parafd_bin       Path of parafd        paraf_bin    Path of the paraf CLI
    auditd_bin       Path of paraf-auditd
    auditd_factory   auditd_factory(directory=None, socket=None, extra_args=(), start=True,
                     run_as=(), argv_prefix=()) -> an AuditService (a paraf-auditd of the
                     test's own, see "Audit service" below)
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
                     agent_factory() if the fixture order is in doubt): the certificates on
                     the tokens when the agent starts are the ones registered to the test's
                     account (enrol later ones with agent.policy.register(ident))
    policy_factory   policy_factory(**policy options below) -> a PolicyDir not yet used by
                     any agent (to prepare one before parafd starts, or share one)
    signer           a token with .rsa and .ec identities and an .agent serving them
    run_paraf        run_paraf(agent, *args, input=None, timeout=60, env=None, cwd=None) ->
                     CompletedProcess of `paraf --socket <agent.socket> ARGS` (text)
    account          the name of the account the tests run as (pwd), the default owner

Provisioning fixtures (paraf admin / activate / renew; see the section at the end):

    shared_tmp       a fresh 0755 directory under /tmp that another account can traverse
    owner            OwnerAccount: the account of the owner's steps (R4): `nobody` through
                     setpriv as root, else the current account; .run(argv), .give(paths),
                     .env(), .mkdir(name), .prefix(), .other
    blank_softhsm    a pki.SoftHSM in shared_tmp with NO token initialised (one blank slot),
                     belonging to the owner
    owner_agent_factory  owner_agent_factory(owner, softhsm, policy, pinentry={…}) -> an
                     Agent: parafd run as the owner's account
    SharedPolicyDir  a PolicyDir as /etc/paraf is: dirs 0755, files 0644 (other accounts read)
    OwnerPinentry    a FakePinentry whose files belong to the owner (the dialog runs as it)

Agent (a running parafd):

    .auditd (its AuditService: every agent the fixtures start has a paraf-auditd of its own,
        started before it and named with --audit-socket, so every decision goes through the
        real audit path, R13; see agent_factory's auditd= and audit= options)
    .socket, .pid, .proc (subprocess.Popen), .dir (its private work dir), .config_path,
    .log_path / .stderr() (parafd's stderr), .spy_log (PKCS#11 spy output or None)
    .policy (its PolicyDir, or None when started without --policy), .pinentry (its
        FakePinentry, or None)
    .audit(since=0) -> the audit records parafd wrote to stderr ("parafd: audit {json}"
        lines), parsed, from the `since`-th on; .audit_count() -> how many so far
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
    policy=<PolicyDir>      use this policy directory as it is (prepared with policy_factory,
                            or another agent's); False: no --policy at all. Default (None): a
                            fresh private one made with the policy options below
    pinentry=True           the fake PIN dialog answering `pin`; a dict: the fake pinentry's
                            JSON configuration (e.g. {"action": "cancel"}; "log" is added);
                            a str: that program as --pinentry; False: no --pinentry
    pin=None                the PIN the fake dialog answers (default: the PIN of the first
                            token in `softhsm`, else "1234")
    modules=[paths]         PKCS#11 modules (default [SOFTHSM_MODULE]); each becomes --module
    spy=True                load OpenSC's pkcs11-spy in front of SoftHSM; agent.spy_log is
                            its output file (parse with spy_calls()); skips if not installed
    extra_args=[…]          more parafd arguments
    env={…}                 more environment variables for parafd
    socket_dir=Path         use this directory for the socket (default: a fresh 0700 dir)
    wait=True               wait until the socket accepts connections (fail with parafd's
                            stderr if it exits first); wait=False for tests of refusals
    check_exit=True         at teardown, fail if parafd had died by itself before the stop
    auditd=True             True: a fresh paraf-auditd (log in <agent dir>/audit); False: none
                            running, but --audit-socket still names its private socket path
                            (agent.auditd.start() starts it there later); an AuditService: that
                            one (shared between agents)
    audit=None              "required" | "spool" | "journal": writes `audit = …` into the
                            [agent] section of the configuration (default: parafd's default)
    argv_prefix=()          a command that execs parafd keeping its pid, put in front of it:
                            e.g. test/vcard.py's `nsenter -t PID -m` (parafd in the virtual
                            card's mount namespace, to reach its private pcscd)

Audit service (AuditService, a paraf-auditd started for one test; audit/aud.h):

    .dir (the log directory, made by the service), .socket, .pid, .proc, .argv,
    .log_path / .stderr()
    .records()           the stored records, parsed ({"seq","time","uid","pid","prev",
                         "record"}), in order over all files; .lines() the raw lines (file,
                         line number, bytes, complete); .files(); .checkpoint()
    .client(timeout=10)  an AuditClient: .append(dict | str | bytes) -> AuditAnswer (.ok,
                         .seq, .hash, .reason); .send(raw); .answer()
    .kill() (SIGKILL, a crash)  .stop() (SIGTERM)  .restart()  .start()  .alive()
    .check               when the test ends its log is checked link by link in Python
                         (check_chain(), independent of the C verifier) unless set to False

Policy options (agent_factory and policy_factory):

    policy_text=None        the whole policy.conf instead of the default (PolicyDir.default_text())
    policy_extra=""         INI text appended to policy.conf (sections may repeat; later keys win)
    register=True           True: register every certificate on the tokens of `softhsm` (as it is
                            when the directory is made) to `account`, type individual (or the
                            type it was issued with); False: none; a list of pki.Identity: those
    anchors=None            CAs (pki.CA) or certificates for anchors/ (default: [ca])
    crl=True                True: a current CRL (nothing revoked) from each anchor CA in crl/;
                            False: no CRL; a CRL or a list of CRLs (pki.CA.crl()) to write

PolicyDir (a private policy directory for `parafd --policy DIR`: the directory and its
subdirectories mode 0700, files 0600, all owned by the test's own uid; parafd reads it afresh
for every decision, so a test may change it while parafd runs):

    .path, .conf_path (policy.conf), .revoked_path (revoked.list), .account (default owner)
    .write_policy(text) / .add_policy(text) / .dropin(name, text)   policy.conf, policy.d/
    .register(ident_or_id, account=None, type=None, name=None, nip=…, **fields) -> the
        owners.d file (fields: nik, email, position, unit, decree, token); .unregister(ident)
    .register_all(softhsm)   every identity on its tokens not registered yet
    .add_anchor(ca_or_cert, name=None); .set_crl(crl, name="ca.crl", der=False);
        .remove_crls()
    .revoke(ident_or_id, reason="left-post", when=None, note=None)   appends to revoked.list
    .write(relative path, bytes or str, mode=0o600) -> Path

FakePinentry (the scripted PIN dialog, test/fake-pinentry, behind a wrapper script):

    .wrapper (what --pinentry names), .conf_path, .log_path
    .configure(**conf)   replaces its configuration: pin="…", pins=[…] (successive dialogs),
                         action="cancel" | "decline-confirm" | "hang" | "garbage" | "crash" | …
                         (see test/fake-pinentry); the log is kept
    .dialogs()           one dict per dialog shown, in order (options, title, description,
                         prompt, getpin_error, confirm, confirm_first, timeout, env, …)
    .clear()             forgets the dialogs logged so far

Set PARAF_TEST_WRAPPER (e.g. "valgrind --error-exitcode=99 -q") to run parafd under a tool.
PARAF_SANITIZE=1 (`make sanitize`) and PARAF_VALGRIND=1 (`make valgrind`) turn on the checks of
the memory tools: see "sanitizers and valgrind" below and doc/security.md.
"""

import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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
FAKE_PINENTRY = REPO / "test" / "fake-pinentry"
AUDIT_PREFIX = "parafd: audit "

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
        # Chunks are kept apart and joined once: a long answer (1,000 CMS signatures are
        # 1.5 MB) is not copied and searched again with every chunk.
        parts = [self._buf]
        found = b"\n" in self._buf
        while not found:
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
                self._buf = b"".join(parts)
                if self._buf:
                    line, self._buf = self._buf, b""
                    raise AssertionError(f"response not ended by a newline: {line[:200]!r}")
                return None
            parts.append(chunk)
            found = b"\n" in chunk
        line, self._buf = b"".join(parts).split(b"\n", 1)
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


# --- the policy directory ----------------------------------------------------------------------

def current_account():
    """The name of the account the tests run as: the owner the test registry names."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        pytest.skip(f"uid {os.getuid()} has no passwd entry: the owners registry names accounts")


def _write_private(path, data, mode=0o600):
    """Writes path atomically (a reader sees the old or the new file, never half of one) with
    `mode`, owned by us. parafd reads the policy directory for every request, while tests
    change it."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, mode)  # whatever the umask
        f.write(data)
    os.replace(tmp, path)
    return path


class PolicyDir:
    """A private policy directory for `parafd --policy DIR` (see the module docstring).

    Made with mode 0700 (directories) and 0600 (files), owned by the test's own uid, which
    parafd accepts only with --policy (R13: otherwise root's own files only)."""

    SUBDIRS = ("anchors", "crl", "owners.d", "policy.d")

    def __init__(self, path, account=None, text=None, extra=""):
        self.path = Path(path)
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        for d in self.SUBDIRS:
            (self.path / d).mkdir(mode=0o700, exist_ok=True)
            os.chmod(self.path / d, 0o700)
        self.account = account or current_account()
        self.conf_path = self.path / "policy.conf"
        self.revoked_path = self.path / "revoked.list"
        self.write_policy((self.default_text() if text is None else text) + extra)

    def __repr__(self):
        return f"<PolicyDir {self.path}>"

    def default_text(self):
        """The tests' policy.conf: no logind in the CI, the trust directories of this policy
        directory, and (as root only) root may own certificates."""
        text = (
            "# The test policy, written by test/conftest.py.\n"
            "[session]\n"
            "# The CI machines run no logind, so login sessions cannot be checked (R1); the\n"
            "# default (deny) would refuse every individual and jabatan certificate there.\n"
            "without_logind = allow\n"
            "\n"
            "[trust]\n"
            f"anchors = {self.path / 'anchors'}\n"
            f"crl_dir = {self.path / 'crl'}\n")
        if os.getuid() == 0:
            text += (
                "\n[owner]\n"
                "# The tests run as root here, so root is the registered owner of the test\n"
                "# certificates, and R1 refuses root as an owner unless the policy says so.\n"
                "# Only for root: an ordinary user's test run keeps the default (no).\n"
                "root_may_own = yes\n")
        return text

    def write(self, rel, data, mode=0o600):
        """Writes a file of the directory (atomically); returns its path."""
        return _write_private(self.path / rel, data, mode)

    def write_policy(self, text):
        """Replaces policy.conf."""
        self.write("policy.conf", text)

    def add_policy(self, text):
        """Appends INI text to policy.conf (a repeated section adds to it; later keys win)."""
        self.write_policy(self.conf_path.read_text() + "\n" + text)

    def dropin(self, name, text):
        """policy.d/<name>.conf, read after policy.conf in name order."""
        return self.write(f"policy.d/{name}.conf", text)

    def owner_path(self, ident):
        return self.path / "owners.d" / f"{_cert_id_of(ident)[:16]}.conf"

    def register(self, ident, account=None, type=None, name=None, nip="196501011990031001",
            **fields):
        """Registers a certificate (a pki.Identity, or a certificate id with name= given) in
        owners.d: to `account` (default: the test's own), with `type` (default: the type the
        certificate was issued with, else individual), name (default: its subject's CN), nip
        and any of nik, email, position (required for jabatan: a default is given), unit,
        decree, token. None values are left out. Returns the file's path."""
        cid = _cert_id_of(ident)
        if type is None:
            type = getattr(ident, "registry_type", "individual")
        if name is None:
            name = _common_name(ident) or "Pejabat Uji"
        if type in ("jabatan", "position"):
            fields.setdefault("position", "Kepala Bidang Aplikasi Informatika")
            fields.setdefault("decree", "800/123/2026")
        fields.setdefault("unit", "Dinas Komunikasi dan Informatika")
        lines = ["[owner]", f"certificate = {cid}", f"account = {account or self.account}",
            f"type = {type}", f"name = {name}"]
        if nip is not None:
            lines.append(f"nip = {nip}")
        lines += [f"{k} = {v}" for k, v in fields.items() if v is not None]
        return self.write(self.owner_path(ident).relative_to(self.path), "\n".join(lines) + "\n")

    def unregister(self, ident):
        try:
            self.owner_path(ident).unlink()
        except FileNotFoundError:
            pass

    def registered(self, ident):
        return self.owner_path(ident).exists()

    def register_all(self, softhsm):
        """Registers every identity on the tokens of `softhsm` not registered yet."""
        for tok in softhsm.tokens:
            for ident in tok.identities:
                if not self.registered(ident):
                    self.register(ident)

    def add_anchor(self, ca, name=None):
        """Adds a CA (pki.CA) or certificate to anchors/ as PEM (self-signed: an anchor;
        otherwise an intermediate)."""
        cert = getattr(ca, "cert", ca)
        from cryptography.hazmat.primitives import serialization
        name = name or f"{pki.cert_id(cert)[:16]}.pem"
        return self.write(f"anchors/{name}", cert.public_bytes(serialization.Encoding.PEM))

    def set_crl(self, crl, name="ca.crl", der=False):
        """Writes a CRL (pki.CA.crl()) to crl/<name>, PEM or DER, replacing one of that name."""
        return self.write(f"crl/{name}", pki.crl_der(crl) if der else pki.crl_pem(crl))

    def remove_crls(self):
        for f in (self.path / "crl").iterdir():
            f.unlink()

    def revoke(self, ident, reason="left-post", when=None, note=None):
        """Appends '<id> <time> <reason> [note]' to revoked.list (R8; R9 for key-lost,
        key-damaged, key-compromise, incident)."""
        when = when or pki.iso(pki.utcnow())
        line = f"{_cert_id_of(ident)} {when} {reason}" + (f" {note}" if note else "") + "\n"
        old = self.revoked_path.read_text() if self.revoked_path.exists() else \
            "# <certificate id> <time> <reason> [note]\n"
        return self.write("revoked.list", old + line)


def _cert_id_of(x):
    if isinstance(x, str):
        return x
    return getattr(x, "cert_id", None) or pki.cert_id(x)


def _common_name(ident):
    from cryptography.x509.oid import NameOID
    cert = getattr(ident, "cert", None)
    if cert is None:
        return None
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return cns[0].value if cns else None


def make_policy(path, softhsm=None, account=None, policy_text=None, policy_extra="",
        register=True, anchors=(), crl=True):
    """A PolicyDir at path (see the module docstring's policy options)."""
    pol = PolicyDir(path, account=account, text=policy_text, extra=policy_extra)
    for a in anchors:
        pol.add_anchor(a)
    if crl is True:
        for i, a in enumerate(anchors):
            if hasattr(a, "crl"):
                pol.set_crl(a.crl(), name=f"ca{i}.crl")
    elif crl:
        for i, c in enumerate(crl if isinstance(crl, (list, tuple)) else [crl]):
            pol.set_crl(c, name=f"ca{i}.crl")
    if register is True:
        if softhsm is not None:
            pol.register_all(softhsm)
    elif register:
        for ident in register:
            pol.register(ident)
    return pol


# --- the PIN dialog ----------------------------------------------------------------------------

class FakePinentry:
    """test/fake-pinentry behind a wrapper script (parafd runs pinentry programs without
    arguments): see the module docstring."""

    def __init__(self, directory, **conf):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        if not os.access(FAKE_PINENTRY, os.R_OK):
            pytest.fail(f"{FAKE_PINENTRY} is missing")
        self.conf_path = self.dir / "pinentry.json"
        self.log_path = self.dir / "pinentry.log"
        self.wrapper = self.dir / "pinentry"
        self.wrapper.write_text("#!/bin/sh\n"
            f"exec /usr/bin/python3 {FAKE_PINENTRY} --conf {self.conf_path} \"$@\"\n")
        os.chmod(self.wrapper, 0o755)
        self.configure(**conf)

    def __repr__(self):
        return f"<FakePinentry {self.wrapper}>"

    def configure(self, **conf):
        """Replaces the configuration (pin, pins, action, …; see test/fake-pinentry). The log
        is kept, and a `pins` sequence starts again from its first PIN."""
        conf.setdefault("log", str(self.log_path))
        _write_private(self.conf_path, json.dumps(conf))
        try:
            os.unlink(f"{self.conf_path}.state")
        except FileNotFoundError:
            pass
        self.conf = conf

    def records(self):
        try:
            text = self.log_path.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def dialogs(self):
        """The dialogs shown so far, in order (one dict each, as test/fake-pinentry logs)."""
        return [r for r in self.records() if r.get("event") == "dialog"]

    def clear(self):
        try:
            self.log_path.unlink()
        except FileNotFoundError:
            pass


# --- a running parafd --------------------------------------------------------------------------

def _proc_starttime(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


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
            spy_log=None, policy=None, pinentry=None, run_as=()):
        self.parafd = Path(parafd)
        self.auditd = None  # its AuditService (set by the fixtures), or None
        self.policy = policy
        self.pinentry = pinentry if isinstance(pinentry, FakePinentry) else None
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
        if policy is not None:
            self.argv += ["--policy", str(getattr(policy, "path", policy))]
        if pinentry is not None:
            self.argv += ["--pinentry", str(getattr(pinentry, "wrapper", pinentry))]
        self.argv += list(extra_args)
        wrapper = shlex.split(os.environ.get("PARAF_TEST_WRAPPER", "")) + \
            valgrind_prefix(self.dir / "valgrind")
        self.proc = None
        self._clients = []
        self._conn = None
        self._seen = set()  # (pid, starttime) of helper processes seen, killed at the end
        self._stopped = False
        with open(self.log_path, "wb") as log:
            # run_as: a prefix such as `setpriv --reuid=U ...` (OwnerAccount.prefix()) that
            # execs parafd as another account, keeping the pid
            self.proc = subprocess.Popen(list(run_as) + wrapper + self.argv,
                stdin=subprocess.DEVNULL,
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

    def audit(self, since=0):
        """The audit records parafd has written to stderr so far ("parafd: audit {json}"),
        parsed, from the `since`-th on (since = an earlier audit_count())."""
        out = []
        for line in self.stderr().splitlines():
            if line.startswith(AUDIT_PREFIX):
                try:
                    out.append(json.loads(line[len(AUDIT_PREFIX):]))
                except ValueError as e:
                    pytest.fail(f"an audit line is not JSON ({e}): {line!r}")
        return out[since:]

    def audit_count(self):
        return len(self.audit())

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
        """The token helper's pid (the child of parafd running paraf-token-helper; PIN
        dialogs are parafd's children too, for a moment), waiting up to `timeout` s for one
        to exist; None if there is none by then. Fails if parafd has several helpers."""
        deadline = time.monotonic() + timeout
        while True:
            kids = [k for k in self.children() if proc_state(k) not in (None, "Z")
                and b"paraf-token-helper" in _proc_cmdline(k)]
            if len(kids) == 1:
                self._seen.add((kids[0], _proc_starttime(kids[0])))
                return kids[0]
            if len(kids) > 1:
                pytest.fail(f"parafd has {len(kids)} token helpers {kids}, expected one")
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)

    def stop(self, timeout=5):
        """Stops parafd: SIGTERM, then SIGKILL after `timeout` s; then kills whatever is left
        of its process group and any helper seen. Returns parafd's exit status."""
        if VALGRIND or SANITIZE:  # the exit runs the leak check (and, for the helper, its own)
            timeout = max(timeout, 60 if VALGRIND else 20)
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


# --- the audit service (paraf-auditd) ----------------------------------------------------------
#
# Every agent the fixtures start gets a paraf-auditd of its own (audit/aud.h): started before
# parafd on a private socket and log directory, and named to parafd with --audit-socket, so
# that every decision of every test goes through the real audit path (R13). Its log is
# checked link by link in Python (check_chain, independent of the C verifier) when the test
# ends, unless the test set `auditd.check = False` (a test that tampers with the log).

AUDIT_ZERO_HASH = "0" * 64
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
AUDIT_RECORD_KEYS = ["seq", "time", "uid", "pid", "prev", "record"]


def audit_line_hash(line):
    """SHA-256 of a stored line without its newline (bytes or str), as lower-case hex."""
    import hashlib
    if isinstance(line, str):
        line = line.encode()
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def audit_log_files(directory):
    """The record files of an audit log directory, oldest first (audit-YYYYMM-NNN.log sorts in
    order)."""
    return sorted(p for p in Path(directory).glob("audit-*.log") if p.is_file())


def audit_log_lines(directory):
    """Every line of the log, in order: a list of (file Path, 1-based line number, bytes
    without the newline, complete) where complete is False for a final line without its
    newline (a torn write)."""
    out = []
    for f in audit_log_files(directory):
        data = f.read_bytes()
        parts = data.split(b"\n")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last and part == b"":
                break
            out.append((f, i + 1, part, not last))
    return out


def audit_log_records(directory):
    """The stored records of the log (complete lines only), parsed, in order."""
    out = []
    for f, n, line, complete in audit_log_lines(directory):
        if not complete:
            continue
        try:
            out.append(json.loads(line))
        except ValueError as e:
            raise AssertionError(f"{f.name}:{n} is not JSON ({e}): {line[:200]!r}")
    return out


def check_chain(directory):
    """Checks the stored log as audit/aud.h describes it, independently of the C code: one JSON
    object per line with the keys seq, time, uid, pid, prev, record in that order and no
    spaces outside strings; seq counting up by one from the first record; each prev the
    SHA-256 of the line before it (the first one 64 zeros), across rotated files too; every
    line complete; the checkpoint, if any, naming a record of the log. Returns a list of
    problems (empty: the chain holds)."""
    problems = []
    prev_hash, prev_seq = AUDIT_ZERO_HASH, None
    by_count = {}
    for f, n, line, complete in audit_log_lines(directory):
        where = f"{f.name}:{n}"
        if not complete:
            problems.append(f"{where}: a final line without its newline (torn)")
            continue
        try:
            rec = json.loads(line, object_pairs_hook=lambda kv: kv)
        except ValueError as e:
            problems.append(f"{where}: not JSON ({e})")
            continue
        keys = [k for k, _ in rec]
        if keys != AUDIT_RECORD_KEYS:
            problems.append(f"{where}: keys {keys}, expected {AUDIT_RECORD_KEYS}")
            continue
        d = dict(rec)
        if re.search(rb"\s", _JSON_STRING.sub(b'""', line)):
            problems.append(f"{where}: whitespace outside strings")
        if d["prev"] != prev_hash:
            problems.append(f"{where}: prev {d['prev'][:16]}… is not the hash of the line "
                f"before ({prev_hash[:16]}…)")
        if not isinstance(d["seq"], int) or d["seq"] != (1 if prev_seq is None else prev_seq + 1):
            problems.append(f"{where}: seq {d['seq']} after {prev_seq}")
        prev_seq = d["seq"] if isinstance(d["seq"], int) else prev_seq
        prev_hash = audit_line_hash(line)
        by_count[d["seq"]] = prev_hash
    cp = Path(directory) / "checkpoint"
    if cp.exists():
        try:
            c = json.loads(cp.read_text())
        except ValueError as e:
            problems.append(f"checkpoint is not JSON ({e})")
        else:
            count = c.get("count")
            want = AUDIT_ZERO_HASH if count == 0 else by_count.get(count)
            if want is None or c.get("head") != want:
                problems.append(f"checkpoint (count {count}, head "
                    f"{str(c.get('head'))[:16]}…) names no record of the log")
    return problems


class AuditAnswer:
    """One answer of paraf-auditd: .ok (bool), .seq and .hash (ok), .reason (error), .raw."""

    def __init__(self, raw):
        self.raw = raw
        parts = raw.decode(errors="replace").split(" ")
        self.ok = parts[0] == "ok"
        self.seq = self.hash = self.reason = None
        if self.ok:
            if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != 64:
                raise AssertionError(f"a malformed answer from paraf-auditd: {raw!r}")
            self.seq, self.hash = int(parts[1]), parts[2]
        elif parts[0] == "error" and len(parts) == 2:
            self.reason = parts[1]
        else:
            raise AssertionError(f"a malformed answer from paraf-auditd: {raw!r}")

    def __repr__(self):
        return self.raw.decode(errors="replace")


class AuditClient:
    """One connection to paraf-auditd's socket (the wire protocol of audit/aud.h).

    .append(record) -> AuditAnswer: record a dict (sent as one compact JSON line), a str or
    bytes (sent as it is, with a newline added); .send(raw bytes) without waiting;
    .answer(timeout) -> the next AuditAnswer, or None when the service closed the connection."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.timeout = timeout
        self._buf = b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def encode(record):
        if isinstance(record, dict):
            record = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        if isinstance(record, str):
            record = record.encode()
        return record + b"\n"

    def send(self, data):
        self.sock.sendall(data)

    def answer(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from paraf-auditd")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no answer from paraf-auditd") from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return AuditAnswer(line)

    def append(self, record, timeout=None):
        self.send(self.encode(record))
        return self.answer(timeout)


class AuditService:
    """A paraf-auditd for one test (see the module docstring): .dir (its log directory),
    .socket, .proc / .pid, .log_path / .stderr(), .argv.

    .start(wait=True)   starts it (the log directory is made by the service itself)
    .kill()             SIGKILL (a crash); .stop() SIGTERM, then SIGKILL after 5 s
    .restart()          kill() if running, then start()
    .records()          the stored records, parsed (complete lines only)
    .lines()            (file, line number, bytes, complete) of every line
    .files()            the record files; .checkpoint() the parsed checkpoint or None
    .client(timeout=10) a new AuditClient (closed when the test ends)
    .check              check the chain when the test ends (default True)"""

    def __init__(self, binary, directory, socket_path, extra_args=(), run_as=(), env=None,
            log_path=None, argv_prefix=()):
        self.bin = Path(binary)
        self.dir = Path(directory)
        self.socket = str(socket_path)
        self.extra_args = list(extra_args)
        self.run_as = list(run_as)
        self.argv_prefix = list(argv_prefix)
        self.env = env if env is not None else {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **tool_env()}
        self.log_path = Path(log_path) if log_path else self.dir.with_name(
            self.dir.name + ".stderr")
        self.proc = None
        self.pid = None
        self.check = True
        self.killed = 0
        self.starts = 0
        self._clients = []

    def __repr__(self):
        return f"<paraf-auditd pid {self.pid} socket {self.socket} dir {self.dir}>"

    @property
    def argv(self):
        return [str(self.bin), "--socket", self.socket, "--dir", str(self.dir),
            "--foreground"] + self.extra_args

    def stderr(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait=True, timeout=20):
        assert not self.alive(), "paraf-auditd is already running"
        wrapper = shlex.split(os.environ.get("PARAF_TEST_WRAPPER", ""))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.run_as + self.argv_prefix + wrapper + self.argv,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env,
                start_new_session=True)
        self.pid = self.proc.pid
        self.starts += 1
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                pytest.fail(f"paraf-auditd exited with status {rc} before accepting "
                    f"connections; argv {self.argv}\n--- its stderr ---\n{self.stderr()}")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.socket)
                return self
            except OSError:
                pass
            finally:
                s.close()
            if time.monotonic() > deadline:
                pytest.fail(f"paraf-auditd did not accept connections on {self.socket} within "
                    f"{timeout} s\n--- its stderr ---\n{self.stderr()}")
            time.sleep(0.01)

    def _close_clients(self):
        for c in self._clients:
            c.close()
        self._clients = []

    def kill(self):
        """SIGKILL, as a crash; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.killed += 1
            self.proc.kill()
        self.proc.wait()
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self.proc.returncode

    def stop(self, timeout=5):
        """SIGTERM, then SIGKILL after `timeout` s; returns the exit status."""
        self._close_clients()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                warnings.warn(f"paraf-auditd did not exit within {timeout} s of SIGTERM")
                self.kill()
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self.proc.returncode

    def restart(self, wait=True):
        self.kill()
        return self.start(wait=wait)

    def client(self, timeout=10):
        c = AuditClient(self.socket, timeout)
        self._clients.append(c)
        return c

    def files(self):
        return audit_log_files(self.dir)

    def lines(self):
        return audit_log_lines(self.dir)

    def records(self):
        return audit_log_records(self.dir)

    def checkpoint(self):
        try:
            return json.loads((self.dir / "checkpoint").read_text())
        except FileNotFoundError:
            return None


def _config_with_audit(config, mode):
    """The INI text `config` with `audit = mode` in its [agent] section."""
    if mode is None:
        return config
    line = f"audit = {mode}\n"
    m = re.search(r"(?m)^\[agent\][ \t]*\n?", config)
    if m:
        head = config[:m.end()]
        if not head.endswith("\n"):
            head += "\n"
        return head + line + config[m.end():]
    return config + ("" if config.endswith("\n") or not config else "\n") + "[agent]\n" + line


def _cli_audit_config(work, socket_path, mode):
    """A configuration for the paraf CLI ($PARAF_CONFIG: it reads the [agent] audit settings
    of parafd's configuration) naming the test's audit service, so that its records never
    reach a system-wide /run/paraf/audit.sock."""
    path = Path(work) / "paraf-cli.conf"
    path.write_text(_config_with_audit(f"[agent]\naudit_socket = {socket_path}\n", mode))
    os.chmod(path, 0o644)
    return path


def finish_auditd(svc, problems):
    """Teardown of one AuditService: stops it, prints its stderr, and adds to `problems` a
    death by a signal the test did not send, or a broken chain (unless svc.check is False)."""
    died = svc.proc.poll() if svc.proc is not None else None
    svc.stop()
    print(f"--- {svc!r} argv {svc.argv} exit {svc.proc.returncode if svc.proc else None}, "
        f"stderr: ---")
    print(svc.stderr())
    if died is not None and died < 0 and died != -signal.SIGKILL:
        problems.append(f"paraf-auditd {svc.pid} died by signal {-died} during the test")
    problems += sanitizer_stderr_problems(svc.stderr(), f"paraf-auditd {svc.pid}")
    if svc.check and svc.dir.is_dir() and os.access(svc.dir, os.R_OK | os.X_OK):
        bad = check_chain(svc.dir)
        if bad:
            problems.append(f"the audit log {svc.dir} does not hold: " + "; ".join(bad[:5]))


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


# --- sanitizers and valgrind (doc/security.md, "Sanitizers and valgrind") ----------------------
#
# PARAF_SANITIZE=1 (`make sanitize`, with PARAF_BUILD an ASan + UBSan build): before any process
# starts, log_path is added to ASAN_OPTIONS and UBSAN_OPTIONS (and LeakSanitizer's suppressions
# of third-party frames to LSAN_OPTIONS), so that every program the tests start, parafd, its
# token helper, paraf-auditd and the paraf CLI, writes its sanitizer reports as files into one
# directory. After each test, a report that appeared there fails that test (the report is
# shown); one that appears later fails the session. The stderr of parafd and paraf-auditd is
# searched for reports too (gcc's UBSan runtime ignores log_path).
#
# PARAF_VALGRIND=1 (`make valgrind`): parafd runs under memcheck, and its token helper with it
# (--trace-children; the PIN dialog and other programs outside the build run natively). When
# the test ends, every memcheck log is read: an error or a definite leak fails the test (a
# process killed before memcheck's summary, e.g. a helper a test kills, is counted as not
# checked). A summary is printed at the end of the session.
#
# Tests that cannot work under one of the tools are skipped with a printed reason: marked
# @pytest.mark.not_under_sanitizers("why") / @pytest.mark.not_under_valgrind("why"), or listed
# in NOT_UNDER_SANITIZERS / NOT_UNDER_VALGRIND (file::test -> why). Keep both lists short.

SANITIZE = os.environ.get("PARAF_SANITIZE", "") not in ("", "0")
VALGRIND = os.environ.get("PARAF_VALGRIND", "") not in ("", "0")
SANITIZER_DIR = REPO / "test" / "sanitizers"

NOT_UNDER_SANITIZERS = {
    "test_faults.py::test_fault_module_sessions": "loads the fault module, built with the "
        "sanitizers, into Python's own uninstrumented interpreter (PyKCS11)",
    "test_pin_hygiene.py::test_marker_pin_not_in_memory": "reads every mapping of parafd and "
        "its helper, and under ASan they include the shadow memory: terabytes of address "
        "space (the run is killed for want of memory)",
    "test_pin_hygiene.py::test_pin_page_locked_and_not_dumped": "ASan marks mappings of its "
        "own MADV_DONTDUMP, which the test would take for the PIN's page",
}
NOT_UNDER_VALGRIND = {
}

_SAN_STDERR = re.compile(r"^(==\d+==ERROR: \w+Sanitizer.*|SUMMARY: \w+Sanitizer.*|.*: runtime error: .*)$",
    re.M)
_VG_ERROR = re.compile(r"^==\d+== (Invalid (?:read|write|free)|Conditional jump|Use of uninitialised|"
    r"Syscall param|Mismatched free|Source and destination overlap|Argument '.*' of function|"
    r"Process terminating with default action|.*definitely lost in loss record).*$", re.M)
_VG_SUMMARY = re.compile(r"^==\d+== ERROR SUMMARY: ([\d,]+) errors", re.M)
_VG_DEFINITE = re.compile(r"^==\d+==\s+definitely lost: ([\d,]+) bytes", re.M)
_VG_COMMAND = re.compile(r"^==\d+== Command: (\S+)", re.M)


class _Tools:
    """Session-wide state of the memory tools."""
    report_dir = None   # where sanitizer reports go (PARAF_SANITIZE)
    seen = set()        # report files already attributed to a test
    reports = 0         # sanitizer reports found
    vg_checked = {}     # program name -> processes whose memcheck summary was read
    vg_errors = 0
    vg_definite = 0     # bytes definitely lost
    vg_problems = 0     # tests failed by memcheck
    vg_unchecked = {}   # program name -> processes killed before memcheck's summary
    late = []           # sanitizer reports found after the last test


def tool_env():
    """The sanitizer and valgrind variables of the environment, for a child's clean env."""
    return {k: v for k, v in os.environ.items() if k.startswith(_PASS_ENV_PREFIXES)}


def pytest_configure(config):
    config.addinivalue_line("markers",
        "not_under_sanitizers(reason): skipped in the ASan + UBSan run (make sanitize)")
    config.addinivalue_line("markers",
        "not_under_valgrind(reason): skipped when parafd runs under memcheck (make valgrind)")
    if SANITIZE and _Tools.report_dir is None:
        d = Path(tempfile.mkdtemp(prefix="paraf-san-", dir="/tmp"))
        os.chmod(d, 0o1777)  # the owner's steps run as another account (setpriv)
        _Tools.report_dir = d
        for var, name in (("ASAN_OPTIONS", "asan"), ("UBSAN_OPTIONS", "ubsan")):
            opts = os.environ.get(var, "")
            os.environ[var] = (opts + ":" if opts else "") + f"log_path={d}/{name}"
        lsan = os.environ.get("LSAN_OPTIONS", "")
        if "suppressions=" not in lsan:
            os.environ["LSAN_OPTIONS"] = ((lsan + ":") if lsan else "") + \
                f"suppressions={SANITIZER_DIR / 'lsan.supp'}:print_suppressions=0"


def pytest_collection_modifyitems(config, items):
    for item in items:
        for on, table, marker, tool in (
                (SANITIZE, NOT_UNDER_SANITIZERS, "not_under_sanitizers", "sanitizers"),
                (VALGRIND, NOT_UNDER_VALGRIND, "not_under_valgrind", "valgrind")):
            if not on:
                continue
            m = item.get_closest_marker(marker)
            reason = (m.args[0] if m.args else m.kwargs.get("reason", "")) if m else None
            key = f"{Path(str(item.fspath)).name}::{getattr(item, 'originalname', item.name)}"
            reason = reason or table.get(key)
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"under {tool}: {reason}"))


def _new_sanitizer_reports():
    """(name, text) of the report files written since the last call."""
    out = []
    d = _Tools.report_dir
    if d is None or not d.is_dir():
        return out
    for p in sorted(d.iterdir()):
        if p.name in _Tools.seen:
            continue
        _Tools.seen.add(p.name)
        out.append((p.name, p.read_text(errors="replace")))
    _Tools.reports += len(out)
    return out


def sanitizer_stderr_problems(text, who):
    """Sanitizer reports in a process's stderr (SANITIZE only): a list of problems."""
    if not SANITIZE:
        return []
    found = _SAN_STDERR.findall(text)
    if found:
        _Tools.reports += 1
        return [f"{who}: sanitizer report in its stderr: {found[0]}"]
    return []


@pytest.fixture(autouse=True)
def _memory_tool_reports():
    """Fails the test if a sanitizer wrote a report while it ran (PARAF_SANITIZE). Set up
    before, so torn down after, the fixtures that stop the test's processes."""
    yield
    new = _new_sanitizer_reports()
    if new:
        text = "\n".join(f"--- {name} ---\n{text[:20000]}" for name, text in new)
        print(f"sanitizer reports:\n{text}")  # shown even when another teardown failed first
        pytest.fail(f"sanitizer reports:\n{text}", pytrace=False)


def valgrind_prefix(logdir):
    """The memcheck command put in front of parafd (PARAF_VALGRIND), logging to logdir/vg.PID;
    [] otherwise."""
    if not VALGRIND:
        return []
    logdir = Path(logdir)
    logdir.mkdir(exist_ok=True)
    os.chmod(logdir, 0o777)  # parafd may run as the owner's account
    return ["valgrind", "--tool=memcheck", "--error-exitcode=99", "--leak-check=full",
        "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite", "--track-fds=no",
        "--num-callers=40", "--trace-children=yes",
        "--trace-children-skip=/usr/*,/bin/*,/sbin/*,*pinentry*,*python*",
        f"--suppressions={SANITIZER_DIR / 'valgrind.supp'}", f"--log-file={logdir}/vg.%p"]


def valgrind_problems(agent):
    """Reads the memcheck logs of an agent that has stopped (PARAF_VALGRIND): a list of
    problems (errors, definite leaks, a parafd or helper whose summary is missing)."""
    logdir = agent.dir / "valgrind"
    if not VALGRIND or not logdir.is_dir():
        return []
    problems = []
    for log in sorted(logdir.glob("vg.*")):
        text = log.read_text(errors="replace")
        cmd = _VG_COMMAND.search(text)
        prog = os.path.basename(cmd.group(1)) if cmd else "?"
        summary = _VG_SUMMARY.search(text)
        errors = _VG_ERROR.findall(text)
        if summary:
            _Tools.vg_checked[prog] = _Tools.vg_checked.get(prog, 0) + 1
            n = int(summary.group(1).replace(",", ""))
            lost = sum(int(x.replace(",", "")) for x in _VG_DEFINITE.findall(text))
            _Tools.vg_errors += n
            _Tools.vg_definite += lost
            if n or lost:
                problems.append(f"memcheck: {prog} ({log.name}): {n} errors, {lost} bytes "
                    f"definitely lost:\n{text[-20000:]}")
        elif errors:
            _Tools.vg_errors += len(errors)
            problems.append(f"memcheck: {prog} ({log.name}) reported {errors[0]!r} and "
                f"has no summary:\n{text[-20000:]}")
        elif prog == "paraf-token-helper" or log.name == f"vg.{agent.pid}":
            # killed by SIGKILL (a test kills the helper, or it missed a deadline): no errors
            # so far, and no leak check; counted in the summary as not checked
            _Tools.vg_unchecked[prog] = _Tools.vg_unchecked.get(prog, 0) + 1
        # else: a fork of parafd that exec'd a program memcheck does not trace (the dialog)
    if problems:
        _Tools.vg_problems += 1
    return problems


def pytest_sessionfinish(session, exitstatus):
    if SANITIZE:
        _Tools.late = _new_sanitizer_reports()
        if _Tools.late:
            session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    w = terminalreporter.write_line
    if SANITIZE:
        late = _Tools.late
        for name, text in late:
            w(f"--- sanitizer report {name}, written after its test ended ---\n{text[:20000]}")
        w(f"sanitizers: {_Tools.reports} reports ({len(late)} after their test ended); "
            f"report directory {_Tools.report_dir}")
    if VALGRIND:
        checked = ", ".join(f"{k} {v}" for k, v in sorted(_Tools.vg_checked.items()))
        killed = ", ".join(f"{k} {v}" for k, v in sorted(_Tools.vg_unchecked.items()))
        w(f"valgrind memcheck: {sum(_Tools.vg_checked.values())} processes checked ({checked}); "
            f"errors {_Tools.vg_errors}, definitely lost {_Tools.vg_definite} bytes; "
            f"{_Tools.vg_problems} tests failed by memcheck; killed before their summary, "
            f"not checked: {killed or 'none'}")


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
def auditd_bin(build_dir):
    """Path of the built paraf-auditd."""
    return _binary(build_dir, "paraf-auditd")


@pytest.fixture
def auditd_factory(auditd_bin, tmp_path, tmp_path_factory):
    """auditd_factory(directory=None, socket=None, extra_args=(), start=True, run_as=(),
    argv_prefix=(), env=None) -> an AuditService: a paraf-auditd on a private socket (default:
    a fresh 0700 short directory) and log directory (default: a new path under tmp_path, made
    by the service). start=False returns it unstarted. Each one is stopped when the test
    ends, its stderr printed, and its chain checked (unless .check was set to False)."""
    services = []
    n = [0]

    def make(directory=None, socket=None, extra_args=(), start=True, run_as=(),
            argv_prefix=(), env=None):
        n[0] += 1
        if directory is None:
            directory = tmp_path / f"audit{n[0]}" / "log"
            directory.parent.mkdir(mode=0o700)
        if socket is None:
            socket = _short_dir(tmp_path_factory, "aud") / "audit.sock"
        svc = AuditService(auditd_bin, directory, socket, extra_args, run_as=run_as, env=env,
            argv_prefix=argv_prefix)
        services.append(svc)
        if start:
            svc.start()
        return svc

    yield make
    problems = []
    for svc in services:
        finish_auditd(svc, problems)
    if problems:
        pytest.fail("; ".join(problems))


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


@pytest.fixture(scope="session")
def account():
    """The name of the account the tests run as: the registered owner of test certificates."""
    return current_account()


@pytest.fixture
def policy_factory(softhsm, ca, tmp_path):
    """policy_factory(softhsm=None, account=None, policy_text=None, policy_extra="",
    register=True, anchors=None, crl=True) -> a new PolicyDir in tmp_path (see the module
    docstring): to prepare a policy before parafd starts (agent_factory(policy=…))."""
    n = [0]

    def make(softhsm=softhsm, account=None, policy_text=None, policy_extra="", register=True,
            anchors=None, crl=True):
        n[0] += 1
        return make_policy(tmp_path / f"policy{n[0]}", softhsm, account, policy_text,
            policy_extra, register, [ca] if anchors is None else anchors, crl)
    return make


def _default_pin(softhsm):
    toks = getattr(softhsm, "tokens", None) or []
    return toks[0].pin if toks else "1234"


@pytest.fixture
def agent_factory(parafd_bin, softhsm, ca, tmp_path, tmp_path_factory, request,
        auditd_factory):
    """agent_factory(softhsm=None, config="[agent]\\n", modules=None, spy=False,
    extra_args=(), env=None, socket_dir=None, wait=True, check_exit=True, policy=None,
    pinentry=True, pin=None, policy_text=None, policy_extra="", register=True, anchors=None,
    crl=True, auditd=True, audit=None, argv_prefix=()) -> Agent.

    Starts parafd in the foreground on a private socket with the given SoftHSM, modules and
    configuration, a private policy directory (by default: the test CA as anchor, its current
    CRL, every certificate on the tokens registered to the test's account) and the fake PIN
    dialog answering the token's PIN; every agent started is stopped (and its process group
    killed) when the test ends, and its stderr is printed (pytest shows it for failing
    tests)."""
    agents = []
    n = [0]

    def start(softhsm=softhsm, config="[agent]\n", modules=None, spy=False, extra_args=(),
            env=None, socket_dir=None, wait=True, check_exit=True, policy=None, pinentry=True,
            pin=None, policy_text=None, policy_extra="", register=True, anchors=None,
            crl=True, auditd=True, audit=None, argv_prefix=()):
        n[0] += 1
        work = tmp_path / f"agent{n[0]}"
        work.mkdir()
        if isinstance(auditd, AuditService):
            svc = auditd
        else:
            svc = auditd_factory(directory=work / "audit", start=bool(auditd))
        config = _config_with_audit(config, audit)
        extra_args = ["--audit-socket", svc.socket] + list(extra_args)
        if policy is None:
            policy = make_policy(work / "policy", softhsm, None, policy_text, policy_extra,
                register, [ca] if anchors is None else anchors, crl)
        elif policy is False:
            policy = None
        if pinentry is True:
            pinentry = FakePinentry(work / "pinentry",
                pin=pin if pin is not None else _default_pin(softhsm))
        elif isinstance(pinentry, dict):
            pinentry = FakePinentry(work / "pinentry", **pinentry)
        elif pinentry is False:
            pinentry = None
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
        # the paraf CLI's own records (provisioning, backup) go where parafd's go
        e["PARAF_CONFIG"] = str(_cli_audit_config(work, svc.socket, audit))
        if env:
            e.update(env)
        if modules is None:
            modules = [SOFTHSM_MODULE]
        sdir = socket_dir if socket_dir is not None else _short_dir(tmp_path_factory, "run")
        a = Agent(parafd_bin, work, sdir, modules, config, e, extra_args, spy_log, policy,
            pinentry, run_as=argv_prefix)
        a.auditd = svc
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
        problems += sanitizer_stderr_problems(a.stderr(), f"parafd {a.pid}")
        problems += valgrind_problems(a)
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
        e = dict(agent.env) if agent is not None else {"PATH": os.environ.get("PATH", ""),
            **tool_env()}
        e.update(env or {})
        argv = [str(paraf_bin)] + (["--socket", agent.socket] if agent is not None else [])
        argv += [str(a) for a in args]
        return subprocess.run(argv, input=input, capture_output=True, text=True,
            timeout=timeout, env=e, cwd=cwd)
    return run


# --- provisioning: the owner's own account, shared directories, blank tokens -------------------
#
# The provisioning commands (paraf admin ..., paraf activate, paraf renew) split the operator's
# steps from the owner's (R4): the owner's run only from the registered account itself. As
# root, the tests run the owner's steps as another real account (an existing unprivileged one:
# `nobody`), through `setpriv --reuid --regid --init-groups`; as an ordinary user the owner is
# the current account. Nothing is created system-wide. Everything both accounts use lives in
# `shared_tmp`, a directory under /tmp that the other account can traverse (pytest's own
# temporary directories are private to the account running the tests).

OWNER_ACCOUNT_AS_ROOT = "nobody"


class SharedPolicyDir(PolicyDir):
    """A PolicyDir as /etc/paraf is in production: directories 0755 and files 0644, so the
    per-user parafd and paraf of another account can read it, and writable by its owner only
    (R13: root's files are accepted always; with --policy, the caller's own too)."""

    def __init__(self, path, account=None, text=None, extra=""):
        super().__init__(path, account=account, text=text, extra=extra)
        for d in [self.path] + [self.path / x for x in self.SUBDIRS]:
            os.chmod(d, 0o755)

    def write(self, rel, data, mode=0o644):
        return super().write(rel, data, mode)


class OwnerAccount:
    """The account that runs the owner's steps (R1, R4): as root, `nobody` (through setpriv);
    otherwise the current account.

    .name, .uid, .gid, .other (True when it is not the account running the tests), .dir (its
    private work directory in shared_tmp, owned by it, 0700), .home (HOME with XDG
    directories, .runtime_dir among them)
    .prefix()          the argv prefix that runs a program as the owner ([] when .other is
                       False)
    .env(**extra)      a clean environment for the owner: PATH, LANG, HOME, XDG_* (+ extra)
    .give(*paths)      hands files over to the owner (chown -R, when .other): the emulation
                       of a token device both the operator (root) and the owner may open
    .mkdir(name)       a directory in .dir, owned by the owner
    .run(argv, input=None, env=None, timeout=120, cwd=None)  runs argv as the owner, in a new
                       session without a terminal, stdin /dev/null unless input (text) is given;
                       returns a CompletedProcess (text)
    """

    def __init__(self, base):
        if os.getuid() == 0:
            try:
                pw = pwd.getpwnam(OWNER_ACCOUNT_AS_ROOT)
            except KeyError:
                pytest.skip(f"running as root, and there is no account "
                    f"'{OWNER_ACCOUNT_AS_ROOT}' to run the owner's steps as (R4)")
            if pw.pw_uid == 0:
                pytest.skip(f"'{OWNER_ACCOUNT_AS_ROOT}' is uid 0")
            if not shutil.which("setpriv"):
                pytest.skip("setpriv (util-linux) is not installed: cannot run the owner's "
                    "steps as another account")
        else:
            pw = pwd.getpwuid(os.getuid())
        self.name, self.uid, self.gid = pw.pw_name, pw.pw_uid, pw.pw_gid
        self.other = self.uid != os.getuid()
        self.dir = Path(base) / f"owner-{self.name}"
        self.dir.mkdir(mode=0o700)
        self.home = self.dir / "home"
        self.runtime_dir = self.dir / "xdg-run"
        for d in (self.home, self.home / ".config", self.home / ".local/share",
                self.home / ".local/state", self.home / ".cache", self.runtime_dir):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.runtime_dir, 0o700)
        self.give(self.dir)

    def __repr__(self):
        return f"<OwnerAccount {self.name} uid {self.uid}>"

    def prefix(self):
        if not self.other:
            return []
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--"]

    def env(self, **extra):
        e = {k: v for k, v in os.environ.items()
            if k in _PASS_ENV or k.startswith(_PASS_ENV_PREFIXES)}
        e.setdefault("PATH", "/usr/bin:/bin")
        e.update({"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name,
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_DATA_HOME": str(self.home / ".local/share"),
            "XDG_STATE_HOME": str(self.home / ".local/state"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_RUNTIME_DIR": str(self.runtime_dir)})
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def give(self, *paths):
        if not self.other:
            return
        for path in paths:
            path = Path(path)
            os.chown(path, self.uid, self.gid, follow_symlinks=False)
            if path.is_dir() and not path.is_symlink():
                for root, dirs, files in os.walk(path):
                    for n in dirs + files:
                        os.chown(os.path.join(root, n), self.uid, self.gid,
                            follow_symlinks=False)

    def mkdir(self, name, mode=0o700):
        d = self.dir / name
        d.mkdir(mode=mode, parents=True)
        os.chmod(d, mode)
        self.give(d)
        return d

    def run(self, argv, input=None, env=None, timeout=120, cwd=None):
        return subprocess.run(self.prefix() + [str(a) for a in argv], input=input,
            stdin=subprocess.DEVNULL if input is None else None, capture_output=True,
            text=True, timeout=timeout, env=env if env is not None else self.env(),
            cwd=cwd if cwd is not None else self.dir, start_new_session=True)


class OwnerPinentry(FakePinentry):
    """A FakePinentry whose files belong to the owner's account (the dialog runs as the owner:
    it writes its log and its `pins` counter there); configure() keeps it so."""

    def __init__(self, owner, directory, **conf):
        self.owner = owner
        super().__init__(directory, **conf)

    def configure(self, **conf):
        super().configure(**conf)
        self.owner.give(self.dir)


@pytest.fixture
def shared_tmp():
    """A fresh directory under /tmp (mode 0755, so another account can traverse it, with a
    short path for sockets), removed when the test ends."""
    d = Path(tempfile.mkdtemp(prefix="paraf-t-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def owner(shared_tmp):
    """The account of the owner's steps (OwnerAccount): `nobody` as root, else the current
    account (skips as root without `nobody` or setpriv)."""
    return OwnerAccount(shared_tmp)


@pytest.fixture
def blank_softhsm(shared_tmp, owner):
    """A private SoftHSM with NO token initialised (pki.SoftHSM without init_token): its one
    slot holds a blank token, as a new USB token comes from the vendor, for `paraf admin
    init-token` (C_InitToken). Lives in shared_tmp and belongs to the owner (see
    OwnerAccount.give: call owner.give(softhsm.dir) again after the operator's steps)."""
    hsm = pki.SoftHSM(shared_tmp / "softhsm")
    owner.give(hsm.dir)
    return hsm


@pytest.fixture
def owner_agent_factory(parafd_bin, shared_tmp, auditd_factory):
    """owner_agent_factory(owner, softhsm, policy, pinentry=None (a dict: FakePinentry
    configuration), config="[agent]\n", extra_args=(), wait=True, auditd=True, audit=None)
    -> an Agent: parafd run AS the owner's account (a per-user agent serves its own account
    only, R1), on the given SoftHSM and (shared) policy directory, with the fake PIN dialog;
    its work directory, socket directory and dialog belong to the owner. Its audit service
    (agent.auditd, as agent_factory's) runs as the account running the tests, as the system
    service runs as its own account, on a socket in a directory the owner can traverse.
    Stopped when the test ends."""
    agents = []

    def start(owner, softhsm, policy, pinentry=None, config="[agent]\n", extra_args=(),
            wait=True, auditd=True, audit=None):
        k = len(agents) + 1
        if isinstance(auditd, AuditService):
            svc = auditd
        else:
            adir = shared_tmp / f"audit{k}"
            adir.mkdir(mode=0o700)
            asock = shared_tmp / f"audsock{k}"
            asock.mkdir(mode=0o755)
            os.chmod(asock, 0o755)
            svc = auditd_factory(directory=adir / "log", socket=asock / "audit.sock",
                start=bool(auditd))
        config = _config_with_audit(config, audit)
        extra_args = ["--audit-socket", svc.socket] + list(extra_args)
        work = owner.mkdir(f"agent{k}")
        sdir = owner.mkdir(f"run{k}")
        if len(str(sdir / "agent.sock")) > SUN_PATH_MAX:
            pytest.skip(f"{sdir} too long for a Unix socket path")
        fake = OwnerPinentry(owner, work / "pinentry", **(pinentry or {"pin": "unused"}))
        e = owner.env()
        e.update(softhsm.env())
        e["PARAF_CONFIG"] = str(_cli_audit_config(work, svc.socket, audit))
        (work / "paraf.conf").write_text(config)
        owner.give(work)
        a = Agent(parafd_bin, work, sdir, [SOFTHSM_MODULE], config, e, extra_args,
            None, policy, fake, run_as=owner.prefix())
        a.auditd = svc
        agents.append(a)
        if wait:
            # not Agent.wait_ready(): a connection from this account would be another
            # account's, refused and audited (R1); parafd says when it listens
            deadline = time.monotonic() + 20
            while "parafd: listening on" not in a.stderr():
                if a.proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"parafd (as {owner.name}) did not start: exit "
                        f"{a.proc.poll()}\n--- parafd stderr ---\n{a.stderr()}")
                time.sleep(0.02)
        return a

    yield start
    problems = []
    for a in agents:
        died = a.proc.poll()
        a.stop()
        print(f"--- {a!r} argv {a.argv} exit {a.proc.returncode} (died early: {died}), "
            f"stderr: ---")
        print(a.stderr())
        problems += sanitizer_stderr_problems(a.stderr(), f"parafd {a.pid}")
        problems += valgrind_problems(a)
    if problems:
        pytest.fail("; ".join(problems))
