"""
End-to-end tests of the `paraf` command line (doc/cli.md) against a real parafd on private
SoftHSM tokens, and of `paraf verify` offline against independent tools (OpenSSL's
`cms -verify`, python3-cryptography). A few tests use a scripted fake agent on a socket to
produce the broken answers a real parafd never gives.

Rules of REGULATION.md that a test proves are cited in its docstring.
"""

import base64
import datetime
import fcntl
import json
import os
import pwd
import re
import select
import socket
import stat
import subprocess
import termios
import threading
import time
from pathlib import Path

import pytest

import pki
from conftest import REPO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

EXIT_OK, EXIT_NOT_VALID, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_AGENT, EXIT_LOCAL = range(6)
REPORT_KEYS = {"signer", "signer_cn", "issuer", "serial", "signing_time", "integrity",
    "trusted", "trust_error", "conclusion", "reason", "indication", "sub_indication", "nip",
    "signing_time_source", "timestamp", "verified", "valid_at_signing_time", "revocation",
    "coverage", "pdf"}


# --- helpers --------------------------------------------------------------------------------------

def write(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def pin_file(tmp_path, pin, name="pin", ending="\n"):
    p = tmp_path / name
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", newline="") as f:
        f.write(pin + ending)
    return p


def cn(cert):
    return cert.subject.get_attributes_for_oid(pki.NameOID.COMMON_NAME)[0].value


def expect(r, code, stderr_re=None):
    """Checks a CompletedProcess's exit status (and a regex on stderr); shows both on failure."""
    assert r.returncode == code, \
        f"exit {r.returncode}, expected {code}\n--- stdout ---\n{r.stdout}\n--- stderr ---\n{r.stderr}"
    if stderr_re is not None:
        assert re.search(stderr_re, r.stderr), f"stderr does not match {stderr_re!r}:\n{r.stderr}"
    return r


def openssl_verify(sig, content, ca_path):
    return subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
        str(sig), "-content", str(content), "-CAfile", str(ca_path), "-purpose", "any",
        "-out", "/dev/null"], capture_output=True, text=True)


def verify_json(run_paraf, *args):
    r = run_paraf(None, "verify", "--json", *args)
    assert r.returncode in (EXIT_OK, EXIT_NOT_VALID), \
        f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    rep = json.loads(r.stdout)
    assert (r.returncode == EXIT_OK) == (rep["conclusion"] == "VALID"), (r.returncode, rep)
    for s in rep["signatures"]:
        assert REPORT_KEYS <= set(s), f"report lacks {REPORT_KEYS - set(s)}: {s}"
    return rep


def anchors_dir(run_paraf):
    """The default trust anchor directory, as `paraf verify --help` names it."""
    r = expect(run_paraf(None, "verify", "--help"), EXIT_OK)
    m = re.search(r"every certificate file in (\S+)", r.stdout)
    assert m, r.stdout
    return Path(m.group(1))


def ca_crl(ca, tmp_path, revoked=(), name="ca.crl", **kw):
    """A CRL of `ca` (current unless kw says otherwise) in tmp_path: without a current CRL,
    revocation is unknown and verify does not conclude VALID (R8)."""
    return write(tmp_path / name, pki.crl_pem(ca.crl(revoked=revoked, **kw)))


def software_signer(ca, tmp_path, name, **issue):
    """A software EC key certified by `ca` (for verify tests that need no token)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca.issue(key.public_key(), name, **issue)
    kp = write(tmp_path / f"{name}.key", key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cp = write(tmp_path / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM))
    return cert, cp, kp


def openssl_sign(content, signers, out, *extra):
    """A detached CMS signature by `signers` [(cert path, key path)] with `openssl cms`."""
    argv = ["openssl", "cms", "-sign", "-binary", "-in", str(content), "-outform", "DER",
        "-out", str(out)]
    for c, k in signers:
        argv += ["-signer", str(c), "-inkey", str(k)]
    r = subprocess.run(argv + list(extra), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


class FakeAgent:
    """A scripted agent on a Unix socket: answers each request line of each connection with
    `reply(request_line) -> bytes` (None: close the connection without answering). Records
    the request lines it received."""

    def __init__(self, path, reply):
        self.path = str(path)
        self.reply = reply
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                self._serve_one(c)

    def _serve_one(self, c):
        buf = b""
        while True:
            while b"\n" not in buf:
                chunk = c.recv(65536)
                if not chunk:
                    return
                buf += chunk
            line, buf = buf.split(b"\n", 1)
            self.requests.append(line)
            out = self.reply(line)
            if out is None:
                return
            try:
                c.sendall(out)
            except OSError:
                return

    def close(self):
        self.sock.close()


@pytest.fixture
def fake_agent(socket_dir):
    agents = []

    def start(reply):
        a = FakeAgent(socket_dir / f"fake{len(agents)}.sock", reply)
        agents.append(a)
        return a
    yield start
    for a in agents:
        a.close()


# --- usage and help -------------------------------------------------------------------------------

def test_help_version_and_exit_codes_documented(run_paraf):
    """`paraf --help` lists every command and the exit statuses; every command has --help;
    --version prints the version. doc/cli.md documents the same exit statuses."""
    r = expect(run_paraf(None, "--help"), EXIT_OK)
    for cmd in ("status", "tokens", "certs", "sign", "verify"):
        assert re.search(rf"^\s+{cmd}\s", r.stdout, re.M), r.stdout
        h = expect(run_paraf(None, cmd, "--help"), EXIT_OK)
        assert h.stdout.startswith(f"Usage: paraf {cmd}"), h.stdout
    for code in range(6):
        assert re.search(rf"^\s+{code}\s+\S", r.stdout, re.M), f"exit {code} not in --help"
    doc = (REPO / "doc" / "cli.md").read_text()
    for code in range(6):
        assert re.search(rf"^\|\s*{code}\s*\|", doc, re.M), f"exit {code} not in doc/cli.md"
    v = expect(run_paraf(None, "--version"), EXIT_OK)
    assert re.fullmatch(r"paraf \d+\.\d+\.\d+\n", v.stdout), v.stdout


@pytest.mark.parametrize("args,pattern", [
    ((), r"missing COMMAND"),
    (("frobnicate",), r"unknown command 'frobnicate'"),
    (("--frob", "status"), r"unknown option '--frob'"),
    (("status", "extra"), r"unexpected argument 'extra'"),
    (("status", "--frob"), r"unknown option '--frob'"),
    (("--socket",), r"'--socket' needs an argument"),
    (("sign", "f"), r"missing '--cert ID'"),
    (("sign", "--cert"), r"'--cert' needs an argument"),
    (("sign", "--cert", "abc1234", "f"), r"'--cert abc1234' must be a certificate id"),
    (("sign", "--cert", "xyz12345", "f"), r"'--cert xyz12345' must be a certificate id"),
    (("sign", "--cert", "a" * 65, "f"), r"must be a certificate id"),
    (("sign", "--cert", "abcd1234"), r"missing FILE"),
    (("sign", "--cert", "abcd1234", "--digest", "md5", "f"), r"'--digest md5' must be sha256"),
    (("sign", "--cert", "abcd1234", "--format", "pdf", "f"), r"'--format pdf' must be cms or raw"),
    (("sign", "--cert", "abcd1234", "--padding", "oaep", "f"), r"'--padding oaep' must be"),
    (("sign", "--cert", "abcd1234", "--usage", "love", "f"), r"'--usage love' must be"),
    (("sign", "--cert", "abcd1234", "--pin", "1234", "f"), r"unknown option '--pin'"),
    (("verify",), r"missing SIGFILE"),
    (("verify", "a.p7s", "a", "b"), r"unexpected argument 'b'"),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else None)
def test_usage_errors(run_paraf, tmp_path, args, pattern):
    """Bad options and arguments exit 2 and say which argument is wrong and what was
    expected; a PIN is never taken from argv (R2: there is no --pin option)."""
    r = run_paraf(None, *args, cwd=tmp_path)
    expect(r, EXIT_USAGE, pattern)
    assert r.stdout == ""
    assert re.search(r"Try 'paraf( \w+)? --help'", r.stderr), r.stderr


# --- finding the agent ----------------------------------------------------------------------------

def test_socket_unreachable(run_paraf, tmp_path):
    """No socket: exit 3 with the path tried; no XDG_RUNTIME_DIR and no PARAF_SOCKET: exit 3
    suggesting --socket; a path that is not a listening socket: exit 3."""
    r = run_paraf(None, "--socket", tmp_path / "none.sock", "status")
    expect(r, EXIT_UNREACHABLE, r"none\.sock")
    r = run_paraf(None, "status", env={"XDG_RUNTIME_DIR": "", "PARAF_SOCKET": ""})
    expect(r, EXIT_UNREACHABLE, r"XDG_RUNTIME_DIR.*--socket")
    write(tmp_path / "plain", b"")
    expect(run_paraf(None, "--socket", tmp_path / "plain", "tokens"), EXIT_UNREACHABLE)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(tmp_path / "dead.sock"))  # bound, never listening: connection refused
    try:
        expect(run_paraf(None, "--socket", tmp_path / "dead.sock", "certs"), EXIT_UNREACHABLE)
    finally:
        s.close()


def test_socket_from_environment(run_paraf, agent_factory, tmp_path_factory):
    """--socket, else $PARAF_SOCKET, else $XDG_RUNTIME_DIR/paraf/agent.sock."""
    xdg = tmp_path_factory.mktemp("xdg")
    os.chmod(xdg, 0o700)
    (xdg / "paraf").mkdir(mode=0o700)
    agent = agent_factory(socket_dir=xdg / "paraf")
    assert agent.socket == str(xdg / "paraf" / "agent.sock")
    r = run_paraf(None, "status", env={"XDG_RUNTIME_DIR": str(xdg)})
    expect(r, EXIT_OK)
    r = run_paraf(None, "status", env={"PARAF_SOCKET": agent.socket,
        "XDG_RUNTIME_DIR": "/nonexistent"})
    expect(r, EXIT_OK)
    # --socket wins over both
    r = run_paraf(None, "--socket", agent.socket, "status",
        env={"PARAF_SOCKET": "/nonexistent/a.sock", "XDG_RUNTIME_DIR": "/nonexistent"})
    expect(r, EXIT_OK)


# --- status, tokens, certs ------------------------------------------------------------------------

def test_status(ca, token, agent_factory, run_paraf):
    """`paraf status`: version, pid, uptime, tokens present, helper state, the policy
    directory (valid, its registry and revocation counts, test mode), how PINs are asked (the
    pinentry program; the types whose PIN a client may send, R2) and logind (R1); --json
    prints the agent.status result, before or after the command. An invalid policy is shown
    with its error (R13), and `paraf status` still exits 0."""
    token.enroll(ca, kind="ec")
    agent = agent_factory()
    st = agent.result("agent.status")
    r = expect(run_paraf(agent, "status"), EXIT_OK)
    assert f"parafd {st['version']}" in r.stdout and f"pid {agent.pid}" in r.stdout, r.stdout
    assert re.search(r"tokens:\s+1 present: [0-9a-f]{16}", r.stdout), r.stdout
    assert st["tokens"][0] in r.stdout
    assert re.search(r"helper:\s+running, pid \d+", r.stdout), r.stdout
    assert re.search(rf"^policy:\s+{re.escape(str(agent.policy.path))}: valid, "
        r"1 registered certificate, 0 revoked$", r.stdout, re.M), r.stdout
    assert re.search(r"^\s+test mode: --policy given", r.stdout, re.M), r.stdout
    assert re.search(rf"^PIN:\s+asked in the agent's PIN dialog "
        rf"\({re.escape(str(agent.pinentry.wrapper))}\); a client may send it for system "
        r"certificates$", r.stdout, re.M), r.stdout
    assert re.search(r"^logind:\s+(present|absent)", r.stdout, re.M), r.stdout
    assert ("logind:  present" in r.stdout) == st["logind"], (st["logind"], r.stdout)
    for args in (("--json", "status"), ("status", "--json")):
        j = json.loads(expect(run_paraf(agent, *args), EXIT_OK).stdout)
        assert j["pid"] == agent.pid and j["tokens"] == st["tokens"], j
        assert j["policy"]["valid"] is True and j["pin_parameter_types"] == ["system"], j

    # R13: parafd reads the policy afresh; a broken one is shown, and refuses every signature
    agent.policy.write_policy("[pin]\nparameter_types = everybody\n")
    r = expect(run_paraf(agent, "status"), EXIT_OK)
    assert re.search(r"^policy:\s+.*: INVALID, every signature is refused: .*policy\.conf:2: "
        r".*parameter_types", r.stdout, re.M), r.stdout


def test_tokens(token, token_factory, agent_factory, run_paraf):
    """`paraf tokens`: an aligned table with id, label, serial, manufacturer, model and PIN
    status of every token present; --json prints tokens.list."""
    second = token_factory("Token Kedua")
    agent = agent_factory()
    listed = agent.result("tokens.list")["tokens"]
    r = expect(run_paraf(agent, "tokens"), EXIT_OK)
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "LABEL", "SERIAL", "MANUFACTURER", "MODEL", "PIN"], lines
    assert len(lines) == 1 + len(listed) == 3, lines
    for tok in (token, second):
        info = tok.info()
        row = next(l for l in lines if info["label"] in l)
        entry = next(t for t in listed if t["label"] == info["label"])
        for v in (entry["id"], info["serial"], info["manufacturer"], info["model"]):
            assert v in row, (v, row)
        assert row.rstrip().endswith("ok"), row
    # columns are aligned: every row has the LABEL column where the header has it
    col = lines[0].index("LABEL")
    assert all(l[col - 2:col] == "  " and l[col] != " " for l in lines), lines
    assert json.loads(expect(run_paraf(agent, "tokens", "--json"), EXIT_OK).stdout) == \
        {"tokens": listed}


def _table(text):
    """The rows of an aligned table (header first) as lists of cells, cut at the header's
    column starts."""
    lines = [l for l in text.splitlines()]
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"(?:(?<=  )|^)\S", header)]
    rows = []
    for l in lines:
        if not l.strip():
            break
        rows.append([l[a:b].strip() for a, b in zip(starts, starts[1:] + [None])])
    return rows, lines[len(rows):]


def test_certs(ca, token, agent_factory, run_paraf):
    """`paraf certs`: as the agent's policy sees each certificate: id (first 16 hex), type
    (R5), the registered owner's name (R1), status and days left (R7, R8), the usages it may
    sign for (R6) and the subject's CN; below the table, why each certificate that is not
    valid is not. --long adds token, issuer CN, not_after, key and key usage; --json prints
    certificates.list with full ids."""
    rsa = token.enroll(ca, kind="rsa")
    ecid = token.enroll(ca, kind="ec", key_usage=("digitalSignature",), days=20)
    sysid = token.enroll(ca, kind="ec", cert_type="system", common_name="Server Surat")
    gone = token.enroll(ca, kind="ec", common_name="Pegawai Pindah")
    stray = token.enroll(ca, kind="ec", common_name="Tanpa Registrasi")
    agent = agent_factory()
    agent.policy.register(rsa, name="Dr. Siti Rahayu, M.Si.")  # the registry's name, not the CN
    agent.policy.revoke(gone, reason="left-post")
    agent.policy.unregister(stray)
    listed = {c["id"]: c for c in agent.result("certificates.list")["certificates"]}

    r = expect(run_paraf(agent, "certs"), EXIT_OK)
    rows, rest = _table(r.stdout)
    assert rows[0] == ["ID", "TYPE", "OWNER", "STATUS", "DAYS", "USAGES", "SUBJECT"], rows
    assert len(rows) == 6, r.stdout
    by_id = {row[0]: row for row in rows[1:]}
    want = {
        rsa: ["individual", "Dr. Siti Rahayu, M.Si.", "valid"],
        ecid: ["individual", cn(ecid.cert), "expiring"],
        sysid: ["system", "Server Surat", "valid"],
        gone: ["individual", cn(gone.cert), "revoked"],
        stray: [None, "-", "unregistered"],  # no owner, and a type only if [types] says
    }
    for ident, (typ, owner, status) in want.items():
        row = by_id[ident.cert_id[:16]]
        entry = listed[ident.cert_id]
        assert row[1:4] == [typ or entry["type"] or "-", owner, status], row
        assert row[4] == str(entry["days_left"]), (row, entry)
        assert row[5] == (",".join(entry["allowed_usages"]) or "none"), (row, entry)
        assert row[6] == cn(ident.cert), row
    assert by_id[rsa.cert_id[:16]][5].split(",")[0] == "signature"
    assert 18 <= int(by_id[ecid.cert_id[:16]][4]) <= 20
    # the reasons, one line each, for the certificates that are not valid
    notes = [l for l in rest if l.strip()]
    assert sorted(notes) == sorted(f"{i.cert_id[:16]}: {listed[i.cert_id]['status']}: "
        f"{listed[i.cert_id]['status_reason']}" for i in (ecid, gone, stray)), r.stdout
    assert any("R8" in n for n in notes) and any("R7" in n for n in notes), notes

    r = expect(run_paraf(agent, "certs", "--long"), EXIT_OK)
    rows, _ = _table(r.stdout)
    assert rows[0][7:] == ["TOKEN", "ISSUER", "NOT AFTER", "KEY", "KEY USAGE"], rows
    for ident, key, usage in ((rsa, "rsa 2048", "digitalSignature,nonRepudiation"),
            (ecid, "ec prime256v1", "digitalSignature")):
        row = next(x for x in rows if x[0] == ident.cert_id[:16])
        assert ident.cert_id[16:] not in " ".join(row)
        assert row[7:] == [listed[ident.cert_id]["token"], cn(ca.cert),
            pki.iso(ident.cert.not_valid_after), key, usage], row

    j = json.loads(expect(run_paraf(agent, "--json", "certs"), EXIT_OK).stdout)
    assert {c["id"]: c for c in j["certificates"]} == listed
    expect(run_paraf(agent, "certs", "--frob"), EXIT_USAGE, r"unknown option '--frob'")


def test_certs_policy_invalid(ca, token, agent_factory, run_paraf):
    """When the policy cannot be read, every certificate's status is unknown, with the
    policy's error as its reason (R13)."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory()
    agent.policy.write_policy("[session]\nwithout_logind = sometimes\n")
    r = expect(run_paraf(agent, "certs"), EXIT_OK)
    rows, rest = _table(r.stdout)
    assert rows[1][:4] == [ident.cert_id[:16], "-", "-", "unknown"], rows
    assert any(re.match(rf"{ident.cert_id[:16]}: unknown: .*without_logind", l)
        for l in rest), r.stdout


# --- sign -----------------------------------------------------------------------------------------

DIALOG_LINE = "paraf: Masukkan PIN di jendela PIN / enter the PIN in the PIN dialog"


@pytest.fixture
def run_detached(paraf_bin):
    """run_detached(agent, *args, env=None, cwd=None, input=None): `paraf --socket ... ARGS`
    with no terminal at all: standard input /dev/null (or the `input` text through a pipe)
    and a new session without a controlling terminal, whatever terminal pytest runs in."""
    def run(agent, *args, env=None, cwd=None, input=None, timeout=60):
        e = dict(agent.env) if agent is not None else {"PATH": os.environ.get("PATH", "")}
        e.update(env or {})
        argv = [str(paraf_bin)] + (["--socket", agent.socket] if agent is not None else [])
        argv += [str(a) for a in args]
        return subprocess.run(argv, input=input,
            stdin=subprocess.DEVNULL if input is None else None, capture_output=True,
            text=True, timeout=timeout, env=e, cwd=cwd, start_new_session=True)
    return run


def run_in_pty(paraf_bin, agent, *args, env=None, cwd=None, answer=None,
        stdin_devnull=False, timeout=30):
    """Runs `paraf --socket ... ARGS` in a new session whose controlling terminal is a new
    pseudo-terminal, on its standard output and error (and input, unless stdin_devnull: then
    /dev/null). answer: typed (with a newline) when the output ends with ": ". Returns (exit
    status, the terminal's output, the terminal's /dev/pts path, whether echo was on when
    answering)."""
    e = dict(agent.env)
    e.update(env or {})
    master, slave = os.openpty()
    name = os.ttyname(slave)
    argv = [str(paraf_bin), "--socket", agent.socket] + [str(a) for a in args]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL if stdin_devnull else slave,
            stdout=slave, stderr=slave, env=e, cwd=cwd, start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(1, termios.TIOCSCTTY, 0))
    finally:
        os.close(slave)
    out, echo, sent = b"", None, False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.1)
            if not r:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the last holder of the terminal closed it
                break
            if not chunk:
                break
            out += chunk
            if answer is not None and not sent and out.endswith(b": "):
                echo = bool(termios.tcgetattr(master)[3] & termios.ECHO)
                os.write(master, answer.encode() + b"\n")
                sent = True
        status = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return status, out.decode(errors="replace"), name, echo


@pytest.mark.parametrize("kind,digest", [("rsa", "sha256"), ("ec", "sha384"), ("rsa", "sha512")])
def test_sign_cms_then_verify(kind, digest, ca, token, agent_factory, run_detached, run_paraf,
        tmp_path):
    """`paraf sign` (format cms) of an individual certificate, no PIN given to paraf (R2):
    paraf says to look at the PIN dialog, parafd asks in its dialog once for the whole batch,
    listing each file (R1); one FILE.p7s per file, mode 0644, DER CMS that
    `openssl cms -verify -binary -content FILE` accepts; one line printed per file; no
    temporary files left. `paraf verify` then reports VALID with signer, issuer, serial,
    signing time, integrity and trust (R11)."""
    ident = token.enroll(ca, kind=kind)
    agent = agent_factory()
    docs = tmp_path / "docs"
    files = [write(docs / "surat.pdf", os.urandom(300_000)),
        write(docs / "lampiran satu.txt", "isi lampiran\n"),
        write(docs / "empty", b"")]
    r = expect(run_detached(agent, "sign", "--cert", ident.cert_id[:8], "--digest", digest,
        *files), EXIT_OK)
    assert r.stderr.splitlines() == [DIALOG_LINE], r.stderr
    (dialog,) = agent.pinentry.dialogs()
    assert dialog["getpin"] and "Dokumen (3):" in dialog["description"], dialog
    for f in files:
        assert f"  {f.name}  {digest} " in dialog["description"], dialog["description"]
    assert "ttyname" not in dialog["options"], "a terminal was named without one"
    assert len(r.stdout.splitlines()) == len(files), r.stdout
    assert sorted(os.listdir(docs)) == sorted([f.name for f in files] +
        [f.name + ".p7s" for f in files]), os.listdir(docs)
    before = datetime.datetime.now(datetime.timezone.utc)
    crl = ca_crl(ca, tmp_path)
    for f in files:
        sig = Path(str(f) + ".p7s")
        assert str(sig) in r.stdout
        assert stat.S_IMODE(sig.stat().st_mode) == 0o644
        assert sig.read_bytes()[0] == 0x30, "not DER"
        v = openssl_verify(sig, f, ca.cert_path)
        assert v.returncode == 0, v.stderr
        info = pki.cms_info(sig.read_bytes())
        assert info["signers"][0]["digest_algorithm"] == pki.OID[digest]

        rep = verify_json(run_paraf, "--ca", ca.cert_path, "--crl", crl, sig)
        assert rep["file"] == str(sig) and rep["content"] == str(f)
        assert rep["conclusion"] == "VALID"
        (s,) = rep["signatures"]
        assert s["conclusion"] == "VALID" and s["reason"] is None
        assert s["integrity"] is True and s["trusted"] is True and s["trust_error"] is None
        assert s["verified"] is True and s["valid_at_signing_time"] is True
        assert s["signing_time_source"] == "claimed" and s["revocation"] == "good"
        assert s["signer"] == pki.rfc2253(ident.cert.subject)
        assert s["signer_cn"] == cn(ident.cert)
        assert s["issuer"] == pki.rfc2253(ca.cert.subject)
        assert int(s["serial"], 16) == ident.cert.serial_number
        st = datetime.datetime.strptime(s["signing_time"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        assert abs((before - st).total_seconds()) < 120, s["signing_time"]

    text = expect(run_paraf(None, "verify", "--ca", ca.cert_path, "--crl", crl,
        str(files[0]) + ".p7s"), EXIT_OK).stdout
    for v in (cn(ident.cert), cn(ca.cert), "VALID", "integrity (keutuhan dokumen):",
            "signing time (waktu tanda tangan):"):
        assert v in text, (v, text)


@pytest.mark.parametrize("kind,pad", [("rsa", None), ("rsa", "pss"), ("ec", None)],
    ids=["rsa-pkcs1", "rsa-pss", "ecdsa"])
def test_sign_raw(kind, pad, ca, token, agent_factory, run_detached, tmp_path):
    """`paraf sign --format raw`: FILE.sig holds the bare signature over the file's digest
    (checked with python3-cryptography)."""
    ident = token.enroll(ca, kind=kind)
    agent = agent_factory()
    f = write(tmp_path / "nota.txt", os.urandom(70_000))  # more than one 64 KiB read
    args = ["--padding", pad] if pad else []
    expect(run_detached(agent, "sign", "--cert", ident.cert_id, "--format", "raw",
        "--digest", "sha512", *args, f), EXIT_OK)
    sig = Path(str(f) + ".sig").read_bytes()
    pki.verify_raw(ident.public_key, sig, pki.digest(f.read_bytes(), "sha512"), "sha512",
        pad or "pkcs1")


def test_sign_cert_id_forms(ca, token, agent_factory, run_detached, tmp_path):
    """--cert takes the full 64-hex id, or a prefix of at least 8 hex digits, in either case;
    a prefix that matches nothing is a clear error (exit 4) and nothing is written."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory()
    for i, cert in enumerate((ident.cert_id, ident.cert_id[:8].upper(), ident.cert_id[:20])):
        f = write(tmp_path / f"doc{i}", b"x")
        expect(run_detached(agent, "sign", "--cert", cert, f), EXIT_OK)
    other = "0123456789abcdef"
    if ident.cert_id.startswith(other[:8]):
        other = "fedcba9876543210"
    f = write(tmp_path / "unknown", b"x")
    expect(run_detached(agent, "sign", "--cert", other, f), EXIT_AGENT,
        rf"no certificate .*'{other}'")
    assert not Path(str(f) + ".p7s").exists()


def test_sign_refuses_existing_output_before_asking(ca, token, agent_factory, run_detached,
        tmp_path):
    """An existing output is refused (exit 5) before the agent is asked: no PIN dialog is
    shown (the dialog would answer a WRONG PIN here), no output of the batch is written, and
    the token's retry counter is untouched. --force replaces it atomically."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory(pin="999999")
    a, b = write(tmp_path / "a.txt", b"a"), write(tmp_path / "b.txt", b"b")
    old = write(tmp_path / "b.txt.p7s", b"old")
    expect(run_detached(agent, "sign", "--cert", ident.cert_id, a, b), EXIT_LOCAL,
        r"b\.txt\.p7s' exists")
    assert old.read_bytes() == b"old" and not Path(str(a) + ".p7s").exists()
    assert agent.pinentry.dialogs() == [] and agent.audit() == []
    toks = agent.result("tokens.list")["tokens"]
    assert not any(t["pin_status"]["count_low"] for t in toks), toks

    agent.pinentry.configure(pin=ident.pin)
    expect(run_detached(agent, "sign", "--force", "--cert", ident.cert_id, a, b), EXIT_OK)
    assert openssl_verify(old, b, ca.cert_path).returncode == 0
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == [], "temporary file left"


def test_sign_wrong_pin(ca, token, agent_factory, run_detached, tmp_path):
    """A wrong PIN typed in the dialog: exit 4 with the agent's reason
    (`sign refused: pin-incorrect`); nothing written."""
    ident = token.enroll(ca, kind="rsa")
    agent = agent_factory(pin="0000")
    f = write(tmp_path / "doc.txt", b"x")
    r = run_detached(agent, "sign", "--cert", ident.cert_id, f)
    expect(r, EXIT_AGENT, r"paraf: sign refused: pin-incorrect \(")
    assert len(agent.pinentry.dialogs()) == 1
    assert not Path(str(f) + ".p7s").exists()


def test_sign_dialog_cancelled(ca, token, agent_factory, run_detached, tmp_path):
    """The official cancels the PIN dialog: exit 4 (`sign refused: pin-cancelled`); nothing
    written."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory(pinentry={"action": "cancel"})
    f = write(tmp_path / "doc.txt", b"x")
    expect(run_detached(agent, "sign", "--cert", ident.cert_id, f), EXIT_AGENT,
        r"sign refused: pin-cancelled")
    assert not Path(str(f) + ".p7s").exists()


def test_sign_pin_file_refused_for_individual(ca, token, agent_factory, run_detached,
        tmp_path):
    """R2: the PIN of an individual (or jabatan) certificate is typed in the agent's trusted
    dialog only. --pin-file for one is refused (exit 2) before anything is sent: no sign
    request reaches the agent (no audit record, no dialog), and the PIN file is not even read
    (an unreadable one gives the same refusal)."""
    ind = token.enroll(ca, kind="ec")
    jab = token.enroll(ca, kind="ec", cert_type="position", common_name="Kepala Bidang")
    agent = agent_factory()
    f = write(tmp_path / "doc.txt", b"x")
    for ident, typ in ((ind, "an individual"), (jab, "a jabatan")):
        for pf in (pin_file(tmp_path, ident.pin), tmp_path / "no-such-pin-file"):
            r = run_detached(agent, "sign", "--cert", ident.cert_id, "--pin-file", pf, f)
            expect(r, EXIT_USAGE, rf"^paraf: the PIN of {typ} certificate is given in the "
                r"trusted PIN dialog, not on the command line \(R2\)$")
            assert DIALOG_LINE not in r.stderr and "cannot read" not in r.stderr
    assert agent.audit() == [] and agent.pinentry.dialogs() == []
    assert not Path(str(f) + ".p7s").exists()


def test_sign_pin_sources_system(ca, token_factory, agent_factory, run_detached, tmp_path):
    """R2: for a certificate type the agent lists in pin_parameter_types (system, by default)
    paraf reads the PIN: from --pin-file (first line; "\\n" or "\\r\\n" removed; later lines
    ignored), never from the environment; a PIN with JSON's special characters reaches the
    token intact (the CLI escapes it itself), and no dialog is shown. Without a terminal and
    without --pin-file, paraf sends no PIN and the agent asks in its dialog."""
    pin = 'a"b\\c/d é'
    tok = token_factory("Token Khusus", pin=pin)
    ident = tok.enroll(ca, kind="ec", cert_type="system", common_name="Server Surat")
    agent = agent_factory()
    assert agent.result("agent.status")["pin_parameter_types"] == ["system"]
    f = write(tmp_path / "doc.txt", b"x")
    for i, (content, ending) in enumerate(((pin, "\n"), (pin, "\r\n"), (pin, ""),
            (pin, "\nsecond line\n"))):
        pf = pin_file(tmp_path, content, f"pin{i}", ending)
        r = expect(run_detached(agent, "sign", "--force", "--cert", ident.cert_id,
            "--pin-file", pf, f), EXIT_OK)
        assert DIALOG_LINE not in r.stderr, r.stderr
    assert agent.pinentry.dialogs() == []

    r = run_detached(agent, "sign", "--force", "--cert", ident.cert_id, f, input=pin + "\n",
        env={"PARAF_PIN": "wrong", "PIN": "wrong"})
    expect(r, EXIT_OK)
    assert DIALOG_LINE in r.stderr
    assert len(agent.pinentry.dialogs()) == 1

    expect(run_detached(agent, "sign", "--force", "--cert", ident.cert_id, "--pin-file",
        pin_file(tmp_path, "", "empty"), f), EXIT_LOCAL, r"PIN file '.*empty' is empty")
    expect(run_detached(agent, "sign", "--force", "--cert", ident.cert_id, "--pin-file",
        pin_file(tmp_path, "1" * 300, "long"), f), EXIT_LOCAL, r"longer than 256")
    expect(run_detached(agent, "sign", "--force", "--cert", ident.cert_id, "--pin-file",
        tmp_path / "missing", f), EXIT_LOCAL, r"cannot read PIN file")


def test_sign_pin_prompt_on_terminal_system(ca, token, agent_factory, paraf_bin, tmp_path):
    """R2: for a system certificate on a terminal the PIN is asked as `PIN for <subject CN>: `
    with echo off, and the typed PIN signs; no dialog is shown."""
    ident = token.enroll(ca, kind="ec", cert_type="system", common_name="Server Surat")
    agent = agent_factory()
    f = write(tmp_path / "doc.txt", b"x")
    status, text, _, echo = run_in_pty(paraf_bin, agent, "sign", "--cert", ident.cert_id,
        "doc.txt", cwd=tmp_path, answer=ident.pin)
    prompt = f"PIN for {cn(ident.cert)}: "
    assert prompt in text, text
    assert echo is False, "echo was on while the PIN was typed"
    assert text.split(prompt, 1)[1].startswith("\r\n"), f"the PIN was echoed: {text!r}"
    assert status == 0, text
    assert agent.pinentry.dialogs() == []
    assert openssl_verify(Path(str(f) + ".p7s"), f, ca.cert_path).returncode == 0


@pytest.mark.parametrize("stdin_devnull", [False, True], ids=["stdin-tty", "stdin-devnull"])
def test_sign_dialog_on_terminal(stdin_devnull, ca, token, agent_factory, paraf_bin,
        tmp_path):
    """R1, R2: on a terminal, paraf asks for no PIN itself for an individual certificate: it
    says to look at the PIN dialog and sends the terminal's real path (`tty`: /dev/pts/N, not
    /dev/tty, also when standard input is not the terminal) and $TERM (`tty_type`), which
    parafd checks and hands to its pinentry (OPTION ttyname, ttytype)."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory()
    f = write(tmp_path / "doc.txt", b"x")
    status, text, slave, _ = run_in_pty(paraf_bin, agent, "sign", "--cert", ident.cert_id,
        "doc.txt", cwd=tmp_path, env={"TERM": "xterm-paraf"}, stdin_devnull=stdin_devnull)
    assert status == 0, text
    assert DIALOG_LINE in text and "PIN for" not in text, text
    assert slave and re.fullmatch(r"/dev/pts/\d+", slave), slave
    (dialog,) = agent.pinentry.dialogs()
    assert dialog["options"].get("ttyname") == slave, dialog["options"]
    assert dialog["options"].get("ttytype") == "xterm-paraf", dialog["options"]
    (rec,) = [a for a in agent.audit() if a.get("method") == "sign"]
    assert rec["verdict"] == "allow", rec
    assert openssl_verify(Path(str(f) + ".p7s"), f, ca.cert_path).returncode == 0


def test_sign_batch_1000_and_limit(ca, token, agent_factory, run_detached, tmp_path):
    """R1: one `sign` request, one PIN dialog, for 1,000 files; 1,001 files are refused before
    the agent is contacted (exit 2 even with an unreachable socket)."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory()
    d = tmp_path / "batch"
    files = [write(d / f"surat-{i:04}.txt", f"surat nomor {i}\n") for i in range(1000)]
    r = expect(run_detached(agent, "sign", "--cert", ident.cert_id,
        *[f.name for f in files], cwd=d), EXIT_OK)
    assert len(r.stdout.splitlines()) == 1000
    (dialog,) = agent.pinentry.dialogs()
    assert "Dokumen (1000):" in dialog["description"], dialog["description"]
    for f in files[::97]:
        assert openssl_verify(Path(str(f) + ".p7s"), f, ca.cert_path).returncode == 0
    extra = write(d / "surat-1000.txt", b"x")
    r = run_detached(None, "--socket", tmp_path / "none.sock", "sign", "--force", "--cert",
        ident.cert_id, *[f.name for f in files], extra.name, cwd=d)
    expect(r, EXIT_USAGE, r"1001 files given, at most 1000")


def test_sign_local_refusals_before_agent(run_paraf, tmp_path):
    """Inputs are checked before the agent is contacted (the socket here does not exist, so
    reaching it would exit 3): a missing file or a directory exits 5, the same file twice or a
    file name with control characters (the agent shows names to the official) exits 2."""
    sock = tmp_path / "none.sock"
    args = ("--socket", sock, "sign", "--cert", "abcdef12", "--pin-file", tmp_path / "pin")
    a = write(tmp_path / "a.txt", b"a")
    expect(run_paraf(None, *args, tmp_path / "missing.txt"), EXIT_LOCAL, r"missing\.txt")
    expect(run_paraf(None, *args, tmp_path), EXIT_LOCAL, r"not a regular file")
    expect(run_paraf(None, *args, a, tmp_path / "." / "a.txt"), EXIT_USAGE, r"same file")
    bad = write(tmp_path / "bad\x1b[2Jname.txt", b"x")
    r = expect(run_paraf(None, *args, bad), EXIT_USAGE, r"control")
    assert "\x1b" not in r.stderr, "a control character reached the terminal"


def test_sign_policy_refusals(ca, token, agent_factory, run_detached, tmp_path):
    """The agent's policy decides and paraf prints its decision plainly, exit 4, nothing
    written, no PIN dialog shown: `paraf: sign refused by policy: <message> (reason <reason>,
    rule <rule>)` — a usage the type may not sign for (R6), a certificate not registered to
    anyone (R1), one revoked in the local list (R8), one expired (R7), one that chains to no
    trust anchor (no rule); one registered to another account (R1)."""
    ident = token.enroll(ca, kind="ec")
    old = token.enroll(ca, kind="ec", common_name="Sertifikat Lama",
        not_before=pki.utcnow() - datetime.timedelta(days=800),
        not_after=pki.utcnow() - datetime.timedelta(days=70))
    other = pki.CA(tmp_path / "other", kind="ec", name="Other CA")
    alien = token.enroll(other, kind="ec", common_name="Dari CA Lain")
    agent = agent_factory()
    f = write(tmp_path / "doc.txt", b"x")
    other_account = next((p.pw_name for p in pwd.getpwall() if p.pw_uid != os.getuid()),
        None)
    if other_account is None:
        pytest.skip("no second account on this machine for the not-owner refusal")

    # the certificate's own policy OID says its type (R5), so an unregistered one is
    # refused for want of an owner (R1)
    agent.policy.add_policy(f"[types]\nindividual = {pki.CERT_TYPE_OIDS['individual']}\n")

    def refused(cert, reason, rule, *args):
        r = run_detached(agent, "sign", "--cert", cert.cert_id, *args, f)
        tail = rf"\(reason {reason}, rule {rule}\)$" if rule else rf"\(reason {reason}\)$"
        expect(r, EXIT_AGENT, rf"(?m)^paraf: sign refused by policy: \S.* {tail}")
        assert not Path(str(f) + ".p7s").exists()
        return r

    r = refused(ident, "usage-not-allowed", "R6", "--usage", "tls-server")
    assert "tls-server" in r.stderr
    refused(old, "expired", "R7")
    refused(alien, "untrusted", None)
    agent.policy.unregister(ident)
    refused(ident, "unregistered", "R1")
    agent.policy.register(ident, account=other_account)
    r = refused(ident, "not-owner", "R1")
    assert other_account in r.stderr
    agent.policy.register(ident)
    agent.policy.revoke(ident, reason="left-post")
    refused(ident, "revoked", "R8")
    assert agent.pinentry.dialogs() == []
    assert [a["verdict"] for a in agent.audit()] == ["deny"] * 6


# --- verify ---------------------------------------------------------------------------------------

@pytest.fixture
def signed(ca, tmp_path):
    """A document signed (detached CMS, DER) with a software key certified by `ca`."""
    cert, cp, kp = software_signer(ca, tmp_path, "Siti Rahayu")
    doc = write(tmp_path / "keputusan.pdf", os.urandom(200_000))
    sig = openssl_sign(doc, [(cp, kp)], tmp_path / "keputusan.pdf.p7s")
    return {"cert": cert, "cert_path": cp, "key_path": kp, "doc": doc, "sig": sig}


def test_verify_is_offline(run_paraf, ca, signed, tmp_path):
    """verify needs no agent: no socket, no XDG_RUNTIME_DIR."""
    r = run_paraf(None, "verify", "--ca", ca.cert_path, "--crl", ca_crl(ca, tmp_path),
        signed["sig"], env={"XDG_RUNTIME_DIR": "", "PARAF_SOCKET": ""})
    expect(r, EXIT_OK)
    assert "VALID" in r.stdout


def test_verify_tampered_content_is_invalid(run_paraf, ca, signed, tmp_path):
    """R11: a changed document: integrity false, INVALID with a reason, exit 1. A signature
    whose own bytes were changed is INVALID too."""
    changed = write(tmp_path / "changed.pdf", signed["doc"].read_bytes() + b"x")
    rep = verify_json(run_paraf, "--ca", ca.cert_path, signed["sig"], changed)
    (s,) = rep["signatures"]
    assert rep["conclusion"] == "INVALID" and s["conclusion"] == "INVALID"
    assert s["indication"] == "TOTAL_FAILED" and s["sub_indication"] == "HASH_FAILURE", s
    assert s["integrity"] is False and s["trusted"] is True and s["reason"]
    assert rep["content"] == str(changed)

    der = bytearray(signed["sig"].read_bytes())
    der[-3] ^= 1  # inside the signature value, at the end of the SignerInfo
    bad = write(tmp_path / "bad.pdf.p7s", bytes(der))
    rep = verify_json(run_paraf, "--ca", ca.cert_path, bad, signed["doc"])
    assert rep["conclusion"] == "INVALID" and rep["signatures"][0]["integrity"] is False
    assert rep["signatures"][0]["sub_indication"] == "SIG_CRYPTO_FAILURE", rep


def test_verify_untrusted_is_indeterminate(run_paraf, ca, signed, tmp_path):
    """R11: intact but not chaining to the given anchors: INDETERMINATE with OpenSSL's
    reason, exit 1. Without any anchors (and none installed): INDETERMINATE "no trust
    anchors configured"."""
    other = pki.CA(tmp_path / "other", kind="ec", name="Other CA")
    rep = verify_json(run_paraf, "--ca", other.cert_path, signed["sig"])
    (s,) = rep["signatures"]
    assert s["integrity"] is True and s["trusted"] is False
    assert s["conclusion"] == rep["conclusion"] == "INDETERMINATE"
    assert "unable to get local issuer certificate" in s["trust_error"], s
    assert s["trust_error"] in s["reason"]

    assert s["sub_indication"] == "NO_CERTIFICATE_CHAIN_FOUND", s

    # several certificates in one --ca file, and several --ca options
    crl = ca_crl(ca, tmp_path)
    both = write(tmp_path / "both.pem", other.cert_path.read_bytes() + ca.cert_path.read_bytes())
    assert verify_json(run_paraf, "--ca", both, "--crl", crl, signed["sig"])["conclusion"] == \
        "VALID"
    assert verify_json(run_paraf, "--ca", other.cert_path, "--ca", ca.cert_path, "--crl", crl,
        signed["sig"])["conclusion"] == "VALID"

    if anchors_dir(run_paraf).exists():
        pytest.skip(f"{anchors_dir(run_paraf)} exists on this machine")
    rep = verify_json(run_paraf, signed["sig"])
    (s,) = rep["signatures"]
    assert s["conclusion"] == "INDETERMINATE" and s["reason"] == "no trust anchors configured"


def test_verify_expired_signer_is_invalid(run_paraf, ca, tmp_path):
    """R7/R11: signed (by the signer's own clock, now) with a certificate that had expired:
    INVALID (EXPIRED), the chain itself trusted, the validity dates reported."""
    now = pki.utcnow()
    cert, cp, kp = software_signer(ca, tmp_path, "Pejabat Lama",
        not_before=now - datetime.timedelta(days=800), not_after=now - datetime.timedelta(days=70))
    doc = write(tmp_path / "lama.txt", b"lama")
    sig = openssl_sign(doc, [(cp, kp)], tmp_path / "lama.txt.p7s")
    rep = verify_json(run_paraf, "--ca", ca.cert_path, "--crl", ca_crl(ca, tmp_path), sig)
    (s,) = rep["signatures"]
    assert s["integrity"] is True and s["conclusion"] == "INVALID", s
    assert s["sub_indication"] == "EXPIRED" and s["trusted"] is True, s
    assert s["valid_at_signing_time"] is False and "expired" in s["certificate_error"], s
    assert s.get("not_after") == pki.iso(cert.not_valid_after)


def test_verify_revocation(run_paraf, ca, signed, tmp_path):
    """R8/R11: revocation from the CRLs given with --crl (PEM or DER) or found in --crl-dir:
    revoked before the signing time, INVALID (REVOKED) with the date and the reason; no CRL
    or only a stale one, INDETERMINATE (TRY_LATER): revocation unknown. A --crl that is not a
    CRL, or a --crl-dir that does not exist, exit 5 naming it."""
    sig = signed["sig"]
    when = pki.utcnow() - datetime.timedelta(hours=1)  # openssl signed it just now
    d = tmp_path / "crls"
    d.mkdir()
    write(d / "ca.crl", pki.crl_der(ca.crl(revoked=[(signed["cert"], when, "key_compromise")])))
    pem = ca_crl(ca, tmp_path, revoked=[(signed["cert"], when, "key_compromise")],
        name="revoked.pem")
    for args in (["--crl", d / "ca.crl"], ["--crl-dir", d], ["--crl", pem]):
        rep = verify_json(run_paraf, "--ca", ca.cert_path, *args, sig)
        (s,) = rep["signatures"]
        assert s["conclusion"] == "INVALID" and s["sub_indication"] == "REVOKED", (args, s)
        assert s["revocation"] == "revoked" and s["revocation_time"] == pki.iso(when), s
        assert s["revocation_reason"] == "keyCompromise" and s["valid_at_signing_time"] is False
        assert rep["crls"] == 1, rep

    now = pki.utcnow()
    stale = ca_crl(ca, tmp_path, name="stale.crl", this_update=now - datetime.timedelta(days=9),
        next_update=now - datetime.timedelta(days=2))
    rep = verify_json(run_paraf, "--ca", ca.cert_path, "--crl", stale, sig)
    (s,) = rep["signatures"]
    assert s["conclusion"] == "INDETERMINATE" and s["sub_indication"] == "TRY_LATER", s
    assert s["revocation"] == "crl-stale" and s["valid_at_signing_time"] is None, s
    empty = tmp_path / "no-crls"
    empty.mkdir()
    rep = verify_json(run_paraf, "--ca", ca.cert_path, "--crl-dir", empty, sig)
    (s,) = rep["signatures"]
    assert s["sub_indication"] == "TRY_LATER" and s["revocation"] == "crl-missing", s
    text = expect(run_paraf(None, "verify", "--ca", ca.cert_path, "--crl-dir", empty, sig),
        EXIT_NOT_VALID).stdout
    assert "INDETERMINATE" in text and "revocation (pencabutan):" in text, text

    expect(run_paraf(None, "verify", "--ca", ca.cert_path, "--crl", signed["doc"], sig),
        EXIT_LOCAL, r"--crl .*keputusan\.pdf.*not a CRL")
    expect(run_paraf(None, "verify", "--ca", ca.cert_path, "--crl-dir", tmp_path / "none", sig),
        EXIT_LOCAL, r"none")


def test_verify_formats_and_signers(run_paraf, ca, signed, tmp_path):
    """PEM input is detected; CONTENT may be named explicitly; a signature without
    signingTime reports null; every SignerInfo is reported and the worst conclusion wins; a
    signature without its certificate is INDETERMINATE (NO_SIGNING_CERTIFICATE_FOUND)."""
    crl = ca_crl(ca, tmp_path)
    pem = tmp_path / "sig.pem"
    r = subprocess.run(["openssl", "cms", "-cmsout", "-inform", "DER", "-in", str(signed["sig"]),
        "-outform", "PEM", "-out", str(pem)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert verify_json(run_paraf, "--ca", ca.cert_path, "--crl", crl, pem,
        signed["doc"])["conclusion"] == "VALID"

    noattr = openssl_sign(signed["doc"], [(signed["cert_path"], signed["key_path"])],
        tmp_path / "noattr.p7s", "-noattr")
    rep = verify_json(run_paraf, "--ca", ca.cert_path, "--crl", crl, noattr, signed["doc"])
    assert rep["conclusion"] == "VALID" and rep["signatures"][0]["signing_time"] is None
    assert rep["signatures"][0]["signing_time_source"] is None

    other = pki.CA(tmp_path / "other", kind="ec", name="Other CA")
    _, cp2, kp2 = software_signer(other, tmp_path, "Orang Lain")
    two = openssl_sign(signed["doc"], [(signed["cert_path"], signed["key_path"]), (cp2, kp2)],
        tmp_path / "two.p7s")
    rep = verify_json(run_paraf, "--ca", ca.cert_path, "--crl", crl, two, signed["doc"])
    # SignerInfos are a SET: their order in the file is the DER order, not the signing order
    assert sorted((s["signer_cn"], s["conclusion"]) for s in rep["signatures"]) == \
        [("Orang Lain", "INDETERMINATE"), ("Siti Rahayu", "VALID")]
    assert rep["conclusion"] == "INDETERMINATE"

    nocerts = openssl_sign(signed["doc"], [(signed["cert_path"], signed["key_path"])],
        tmp_path / "nocerts.p7s", "-nocerts")
    rep = verify_json(run_paraf, "--ca", ca.cert_path, "--crl", crl, nocerts, signed["doc"])
    (s,) = rep["signatures"]
    assert s["conclusion"] == "INDETERMINATE" and s["signer"] is None
    assert s["sub_indication"] == "NO_SIGNING_CERTIFICATE_FOUND", s
    assert int(s["serial"], 16) == signed["cert"].serial_number


def test_verify_not_a_signature(run_paraf, ca, tmp_path):
    """A file that is not CMS is INVALID (exit 1) with a reason, also in JSON."""
    junk = write(tmp_path / "junk.p7s", b"this is not a signature")
    write(tmp_path / "junk", b"x")
    rep = verify_json(run_paraf, "--ca", ca.cert_path, junk)
    assert rep["conclusion"] == "INVALID" and rep["signatures"] == []
    assert "not a CMS" in rep["reason"]


def test_verify_file_errors(run_paraf, ca, signed, tmp_path):
    """Unreadable inputs exit 5 naming the file; a SIGFILE whose content cannot be derived
    (no .p7s suffix) and no CONTENT exits 2."""
    expect(run_paraf(None, "verify", tmp_path / "none.p7s"), EXIT_LOCAL, r"none\.p7s")
    lone = write(tmp_path / "lone.pdf.p7s", signed["sig"].read_bytes())
    expect(run_paraf(None, "verify", "--ca", ca.cert_path, lone), EXIT_LOCAL, r"lone\.pdf'")
    expect(run_paraf(None, "verify", "--ca", tmp_path / "none.pem", signed["sig"]), EXIT_LOCAL,
        r"--ca .*none\.pem")
    expect(run_paraf(None, "verify", "--ca", signed["doc"], signed["sig"]), EXIT_LOCAL,
        r"no PEM certificate")
    sig = write(tmp_path / "x.sig", signed["sig"].read_bytes())
    expect(run_paraf(None, "verify", sig), EXIT_USAGE, r"name it as CONTENT")


# --- a broken or hostile agent --------------------------------------------------------------------

def _answer(obj):
    return json.dumps(obj).encode() + b"\n"


def test_agent_answers_checked(fake_agent, run_paraf):
    """Exit 3 when the agent closes without answering; exit 4 for an answer that is not
    JSON, answers another id, or is an error (reason, field and rule printed; an error with id
    null, as for too-many-clients, counts); exit 4 for an answer over 64 MiB. Agent text is
    made safe for the terminal."""
    def by_id(make):
        def reply(line):
            return make(json.loads(line)["id"])
        return reply

    cases = [
        (lambda line: None, EXIT_UNREACHABLE, r"closed the connection"),
        (lambda line: b"{not json\n", EXIT_AGENT, r"not a valid JSON-RPC response"),
        (by_id(lambda i: _answer({"jsonrpc": "2.0", "id": i + 1, "result": {}})), EXIT_AGENT,
            r"not a valid JSON-RPC response"),
        (by_id(lambda i: _answer({"jsonrpc": "2.0", "id": i, "result": {}, "error": {}})),
            EXIT_AGENT, r"not a valid JSON-RPC response"),
        (by_id(lambda i: _answer({"jsonrpc": "2.0", "id": i, "error": {"code": -32602,
            "message": "bad \x1b[31mthing", "data": {"reason": "invalid-params", "rule": "R6",
            "field": "usage"}}})), EXIT_AGENT,
            r"'tokens.list' failed: invalid-params \(bad \?\[31mthing; field 'usage'; rule R6\)"),
        (lambda line: _answer({"jsonrpc": "2.0", "id": None, "error": {"code": -32004,
            "message": "too many clients", "data": {"reason": "too-many-clients", "rule": None,
            "field": None}}}), EXIT_AGENT, r"too-many-clients"),
        (lambda line: b'{"jsonrpc":"2.0","id":1,"result":"' + b"a" * (64 * 1024 * 1024) +
            b'"}\n', EXIT_AGENT, r"longer than 64 MiB"),
    ]
    for reply, code, pattern in cases:
        agent = fake_agent(reply)
        r = run_paraf(None, "--socket", agent.path, "tokens")
        expect(r, code, pattern)
        assert "\x1b" not in r.stderr
        req = json.loads(agent.requests[0])
        assert req["jsonrpc"] == "2.0" and req["method"] == "tokens.list"
        assert isinstance(req["id"], int)


def _fake_cert_entry(ca, tmp_path, name="Dewi Lestari", type="system"):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca.issue(key.public_key(), name)
    der = cert.public_bytes(serialization.Encoding.DER)
    entry = {"id": pki.cert_id(der), "token": "00112233aabbccdd", "key_id": "01", "label": name,
        "type": type, "owner": {"account": "dewi", "name": name, "nip": None, "position": None,
            "unit": None},
        "allowed_usages": ["signature"], "status": "valid", "status_reason": None,
        "days_left": 729,
        "subject": pki.rfc2253(cert.subject), "issuer": pki.rfc2253(cert.issuer),
        "serial": format(cert.serial_number, "x"), "not_before": pki.iso(cert.not_valid_before),
        "not_after": pki.iso(cert.not_valid_after),
        "key": {"algorithm": "ec", "size": 256, "curve": "prime256v1"},
        "key_usage": ["digitalSignature", "nonRepudiation"], "extended_key_usage": None,
        "certificate": pki.b64(der)}
    return key, cert, entry


def _fake_status(entry, **fields):
    status = {"version": "0.1.0", "uptime_seconds": 1, "pid": 1, "tokens_present": 1,
        "tokens": [entry["token"]], "helper": {"running": True, "pid": 2, "restarts": 0},
        "clients": 1, "policy": {"directory": "/etc/paraf", "valid": True, "error": None,
            "test_mode": False, "owners": 1, "revoked": 0},
        "pin_parameter_types": ["system"], "pinentry": "/usr/bin/pinentry", "logind": True}
    status.update(fields)
    return status


def test_sign_request_and_answer_checked(fake_agent, ca, run_detached, tmp_path):
    """What `paraf sign` sends (one request: full certificate id, usage, format, digest
    algorithm, documents named by basename with the files' digests; for a system certificate
    the PIN exactly as in the PIN file, escaped by the CLI, and no dialog place) and what it
    accepts back: a signature that does not verify over the file's digest with the
    certificate, names out of order, or a certificate whose id is not its SHA-256 are refused
    (exit 4) and nothing is written. An error about documents[i] says which FILE that is."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import utils

    key, cert, entry = _fake_cert_entry(ca, tmp_path)
    status = _fake_status(entry)
    pin = 'x"\\y\té'.replace("\t", "")  # a quote, a backslash, non-ASCII
    docs = tmp_path / "docs"
    a = write(docs / "a.txt", os.urandom(100_000))
    b = write(tmp_path / "other" / "b.txt", b"bee")
    mode = {}

    def sign_answer(req):
        p = req["params"]
        sigs = []
        for d in p["documents"]:
            digest = base64.b64decode(d["digest"])
            if mode.get("wrong-digest"):
                digest = pki.digest(b"something else")
            sig = key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
            sigs.append({"name": d["name"], "signature": pki.b64(sig)})
        if mode.get("swap"):
            sigs.reverse()
        return {"certificate": p["certificate"], "signatures": sigs}

    def reply(line):
        req = json.loads(line)
        m = req["method"]
        if m == "agent.status":
            res = status
        elif m == "certificates.list":
            res = {"certificates": [mode.get("entry", entry)]}
        elif mode.get("error"):
            return _answer({"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32602,
                "message": "'documents[1].digest' must be 32 bytes",
                "data": {"reason": "invalid-params", "rule": None,
                    "field": "documents[1].digest"}}})
        else:
            res = sign_answer(req)
        return _answer({"jsonrpc": "2.0", "id": req["id"], "result": res})

    agent = fake_agent(reply)
    pf = pin_file(tmp_path, pin)
    args = ("--socket", agent.path, "sign", "--format", "raw", "--cert", entry["id"][:12],
        "--pin-file", pf, a, b)
    place = {"DISPLAY": ":7", "XAUTHORITY": "/run/user/1000/xauth", "TERM": "xterm",
        "WAYLAND_DISPLAY": "wayland-9"}

    r = expect(run_detached(None, *args, env=place), EXIT_OK)
    assert DIALOG_LINE not in r.stderr
    (sign_line,) = [l for l in agent.requests if b'"sign"' in l]
    req = json.loads(sign_line)
    assert req["params"] == {"certificate": entry["id"], "usage": "signature", "format": "raw",
        "digest_algorithm": "sha256", "pin": pin,
        "documents": [{"name": "a.txt", "digest": pki.b64(pki.digest(a.read_bytes()))},
            {"name": "b.txt", "digest": pki.b64(pki.digest(b"bee"))}]}, req
    for f in (a, b):
        sig = Path(str(f) + ".sig")
        key.public_key().verify(sig.read_bytes(), f.read_bytes(), ec.ECDSA(hashes.SHA256()))
        sig.unlink()

    for m, pattern in (("wrong-digest", r"unusable \(the signature does not verify"),
            ("swap", r"malformed: nothing written"),
            ("error", r"invalid-params .*field 'documents\[1\]\.digest'.*\n.*"
                r"documents\[1\] is '.*other/b\.txt'")):
        mode.clear()
        mode[m] = True
        expect(run_detached(None, *args), EXIT_AGENT, pattern)
        assert not Path(str(a) + ".sig").exists() and not Path(str(b) + ".sig").exists()

    mode.clear()
    mode["entry"] = dict(entry, id=entry["id"][:12] + "0" * 52)
    expect(run_detached(None, *args), EXIT_AGENT, r"does not match its id")


def test_sign_request_dialog_place(fake_agent, ca, run_detached, tmp_path):
    """R1, R2: for a certificate type the agent takes no PIN for (individual here, and any
    type when agent.status does not list pin_parameter_types) paraf sends no PIN and says
    where the dialog must appear: `display`, `xauthority`, `wayland_display` from the
    environment, each only when set, and no `tty` or `tty_type` without a terminal. With
    --json the answer alone is on standard output. A --pin-file is refused before any sign
    request is sent."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import utils

    key, cert, entry = _fake_cert_entry(ca, tmp_path, type="individual")
    state = {"status": _fake_status(entry)}

    def reply(line):
        req = json.loads(line)
        if req["method"] == "agent.status":
            res = state["status"]
        elif req["method"] == "certificates.list":
            res = {"certificates": [state.get("entry", entry)]}
        else:
            p = req["params"]
            res = {"certificate": p["certificate"], "signatures": [{"name": d["name"],
                "signature": pki.b64(key.sign(base64.b64decode(d["digest"]),
                    ec.ECDSA(utils.Prehashed(hashes.SHA256()))))} for d in p["documents"]]}
        return _answer({"jsonrpc": "2.0", "id": req["id"], "result": res})

    agent = fake_agent(reply)
    f = write(tmp_path / "doc.txt", b"x")
    args = ("--socket", agent.path, "sign", "--format", "raw", "--force", "--cert", entry["id"])

    def sign_params():
        lines = [json.loads(l) for l in agent.requests if b'"sign"' in l]
        agent.requests.clear()
        return [l["params"] for l in lines]

    env = {"DISPLAY": ":7", "XAUTHORITY": "/run/user/1000/xauth", "TERM": "xterm",
        "WAYLAND_DISPLAY": "wayland-9"}
    r = expect(run_detached(None, *args, "--json", f, env=env), EXIT_OK)
    assert r.stderr.splitlines() == [DIALOG_LINE], r.stderr
    assert json.loads(r.stdout)["certificate"] == entry["id"]
    (p,) = sign_params()
    assert "pin" not in p and "tty" not in p and "tty_type" not in p, p
    assert (p["display"], p["xauthority"], p["wayland_display"]) == \
        (":7", "/run/user/1000/xauth", "wayland-9"), p

    # unset or empty: not sent; longer than a sign parameter may be: left out with a warning
    r = expect(run_detached(None, *args, f, env={"DISPLAY": "", "XAUTHORITY": "/x" * 200}),
        EXIT_OK)
    assert "$XAUTHORITY is longer than 255 bytes" in r.stderr, r.stderr
    (p,) = sign_params()
    assert not {"display", "xauthority", "wayland_display", "pin"} & set(p), p

    pf = pin_file(tmp_path, "1234")
    expect(run_detached(None, *args, "--pin-file", pf, f), EXIT_USAGE,
        r"the PIN of an individual certificate is given in the trusted PIN dialog")
    assert sign_params() == []
    # an agent that lists no types takes no PIN from clients: none is sent, even for system
    state["entry"] = dict(entry, type="system")
    del state["status"]["pin_parameter_types"]
    expect(run_detached(None, *args, "--pin-file", pf, f), EXIT_USAGE,
        r"the PIN of a system certificate is given in the trusted PIN dialog")
    assert sign_params() == []
    expect(run_detached(None, *args, f), EXIT_OK)
    (p,) = sign_params()
    assert "pin" not in p, p
    # and a certificate without a type (unregistered): no PIN either
    state["entry"] = dict(entry, type=None)
    expect(run_detached(None, *args, "--pin-file", pf, f), EXIT_USAGE,
        r"the PIN of a certificate without a registered type is given in the trusted PIN")
