"""
End-to-end tests of the `paraf` command line (doc/cli.md) against a real parafd on private
SoftHSM tokens, and of `paraf verify` offline against independent tools (OpenSSL's
`cms -verify`, python3-cryptography). A few tests use a scripted fake agent on a socket to
produce the broken answers a real parafd never gives.

Rules of REGULATION.md that a test proves are cited in its docstring.
"""

import base64
import datetime
import json
import os
import pty
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
    "trusted", "trust_error", "conclusion", "reason"}


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
    m = re.search(r"every \*\.pem in (\S+)", r.stdout)
    assert m, r.stdout
    return Path(m.group(1))


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
    """`paraf status`: version, pid, uptime, tokens present, helper state; --json prints the
    agent.status result, before or after the command."""
    token.enroll(ca, kind="ec")
    agent = agent_factory()
    st = agent.result("agent.status")
    r = expect(run_paraf(agent, "status"), EXIT_OK)
    assert f"parafd {st['version']}" in r.stdout and f"pid {agent.pid}" in r.stdout, r.stdout
    assert re.search(r"tokens:\s+1 present: [0-9a-f]{16}", r.stdout), r.stdout
    assert st["tokens"][0] in r.stdout
    assert re.search(r"helper:\s+running, pid \d+", r.stdout), r.stdout
    for args in (("--json", "status"), ("status", "--json")):
        j = json.loads(expect(run_paraf(agent, *args), EXIT_OK).stdout)
        assert j["pid"] == agent.pid and j["tokens"] == st["tokens"], j


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


def test_certs(ca, token, agent_factory, run_paraf):
    """`paraf certs`: id (first 16 hex), token, subject CN, issuer CN, not_after, key and key
    usage of every certificate; --json prints certificates.list with full ids."""
    rsa = token.enroll(ca, kind="rsa")
    ecid = token.enroll(ca, kind="ec", key_usage=("digitalSignature",))
    agent = agent_factory()
    r = expect(run_paraf(agent, "certs"), EXIT_OK)
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "TOKEN", "SUBJECT"], lines
    assert len(lines) == 3, lines
    for ident, key, usage in ((rsa, "rsa 2048", "digitalSignature,nonRepudiation"),
            (ecid, "ec prime256v1", "digitalSignature")):
        row = next(l for l in lines if l.startswith(ident.cert_id[:16] + " "))
        assert ident.cert_id[16:] not in row
        for v in (cn(ident.cert), cn(ca.cert), pki.iso(ident.cert.not_valid_after), key, usage):
            assert v in row, (v, row)
    j = json.loads(expect(run_paraf(agent, "--json", "certs"), EXIT_OK).stdout)
    assert sorted(c["id"] for c in j["certificates"]) == sorted([rsa.cert_id, ecid.cert_id])


# --- sign -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,digest", [("rsa", "sha256"), ("ec", "sha384"), ("rsa", "sha512")])
def test_sign_cms_then_verify(kind, digest, ca, token, agent_factory, run_paraf, tmp_path):
    """`paraf sign` (format cms): one FILE.p7s per file, mode 0644, DER CMS that
    `openssl cms -verify -binary -content FILE` accepts; one line printed per file; no
    temporary files left. `paraf verify` then reports VALID with signer, issuer, serial,
    signing time, integrity and trust (R11)."""
    ident = token.enroll(ca, kind=kind)
    agent = agent_factory()
    docs = tmp_path / "docs"
    files = [write(docs / "surat.pdf", os.urandom(300_000)),
        write(docs / "lampiran satu.txt", "isi lampiran\n"),
        write(docs / "empty", b"")]
    pf = pin_file(tmp_path, ident.pin)
    r = expect(run_paraf(agent, "sign", "--cert", ident.cert_id[:8], "--digest", digest,
        "--pin-file", pf, *files), EXIT_OK)
    assert len(r.stdout.splitlines()) == len(files), r.stdout
    assert sorted(os.listdir(docs)) == sorted([f.name for f in files] +
        [f.name + ".p7s" for f in files]), os.listdir(docs)
    before = datetime.datetime.now(datetime.timezone.utc)
    for f in files:
        sig = Path(str(f) + ".p7s")
        assert str(sig) in r.stdout
        assert stat.S_IMODE(sig.stat().st_mode) == 0o644
        assert sig.read_bytes()[0] == 0x30, "not DER"
        v = openssl_verify(sig, f, ca.cert_path)
        assert v.returncode == 0, v.stderr
        info = pki.cms_info(sig.read_bytes())
        assert info["signers"][0]["digest_algorithm"] == pki.OID[digest]

        rep = verify_json(run_paraf, "--ca", ca.cert_path, sig)
        assert rep["file"] == str(sig) and rep["content"] == str(f)
        assert rep["conclusion"] == "VALID"
        (s,) = rep["signatures"]
        assert s["conclusion"] == "VALID" and s["reason"] is None
        assert s["integrity"] is True and s["trusted"] is True and s["trust_error"] is None
        assert s["signer"] == pki.rfc2253(ident.cert.subject)
        assert s["signer_cn"] == cn(ident.cert)
        assert s["issuer"] == pki.rfc2253(ca.cert.subject)
        assert int(s["serial"], 16) == ident.cert.serial_number
        st = datetime.datetime.strptime(s["signing_time"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        assert abs((before - st).total_seconds()) < 120, s["signing_time"]

    text = expect(run_paraf(None, "verify", "--ca", ca.cert_path, str(files[0]) + ".p7s"),
        EXIT_OK).stdout
    for v in (cn(ident.cert), cn(ca.cert), "VALID", "integrity:", "signing time:"):
        assert v in text, (v, text)


@pytest.mark.parametrize("kind,pad", [("rsa", None), ("rsa", "pss"), ("ec", None)],
    ids=["rsa-pkcs1", "rsa-pss", "ecdsa"])
def test_sign_raw(kind, pad, ca, token, agent_factory, run_paraf, tmp_path):
    """`paraf sign --format raw`: FILE.sig holds the bare signature over the file's digest
    (checked with python3-cryptography)."""
    ident = token.enroll(ca, kind=kind)
    agent = agent_factory()
    f = write(tmp_path / "nota.txt", os.urandom(70_000))  # more than one 64 KiB read
    args = ["--padding", pad] if pad else []
    expect(run_paraf(agent, "sign", "--cert", ident.cert_id, "--format", "raw",
        "--digest", "sha512", *args, "--pin-file", pin_file(tmp_path, ident.pin), f), EXIT_OK)
    sig = Path(str(f) + ".sig").read_bytes()
    pki.verify_raw(ident.public_key, sig, pki.digest(f.read_bytes(), "sha512"), "sha512",
        pad or "pkcs1")


def test_sign_cert_id_forms(ca, token, agent_factory, run_paraf, tmp_path):
    """--cert takes the full 64-hex id, or a prefix of at least 8 hex digits, in either case;
    a prefix that matches nothing is a clear error (exit 4) and nothing is written."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory()
    pf = pin_file(tmp_path, ident.pin)
    for i, cert in enumerate((ident.cert_id, ident.cert_id[:8].upper(), ident.cert_id[:20])):
        f = write(tmp_path / f"doc{i}", b"x")
        expect(run_paraf(agent, "sign", "--cert", cert, "--pin-file", pf, f), EXIT_OK)
    other = "0123456789abcdef"
    if ident.cert_id.startswith(other[:8]):
        other = "fedcba9876543210"
    f = write(tmp_path / "unknown", b"x")
    expect(run_paraf(agent, "sign", "--cert", other, "--pin-file", pf, f), EXIT_AGENT,
        rf"no certificate .*'{other}'")
    assert not Path(str(f) + ".p7s").exists()


def test_sign_refuses_existing_output_before_asking(ca, token, agent_factory, run_paraf,
        tmp_path):
    """An existing output is refused (exit 5) before the agent is asked: with a WRONG PIN the
    exit status is still 5, not the agent's 4, and no output of the batch is written.
    --force replaces it atomically."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory()
    a, b = write(tmp_path / "a.txt", b"a"), write(tmp_path / "b.txt", b"b")
    old = write(tmp_path / "b.txt.p7s", b"old")
    bad = pin_file(tmp_path, "999999", "badpin")
    expect(run_paraf(agent, "sign", "--cert", ident.cert_id, "--pin-file", bad, a, b),
        EXIT_LOCAL, r"b\.txt\.p7s' exists")
    assert old.read_bytes() == b"old" and not Path(str(a) + ".p7s").exists()
    # and the token's retry counter was not touched: the agent never saw the wrong PIN
    toks = agent.result("tokens.list")["tokens"]
    assert not any(t["pin_status"]["count_low"] for t in toks), toks

    good = pin_file(tmp_path, ident.pin)
    expect(run_paraf(agent, "sign", "--force", "--cert", ident.cert_id, "--pin-file", good,
        a, b), EXIT_OK)
    assert openssl_verify(old, b, ca.cert_path).returncode == 0
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == [], "temporary file left"


def test_sign_wrong_pin(ca, token, agent_factory, run_paraf, tmp_path):
    """A wrong PIN: exit 4 with the agent's reason (`sign refused: pin-incorrect`) and field;
    nothing written."""
    ident = token.enroll(ca, kind="rsa")
    agent = agent_factory()
    f = write(tmp_path / "doc.txt", b"x")
    r = run_paraf(agent, "sign", "--cert", ident.cert_id, "--pin-file",
        pin_file(tmp_path, "0000"), f)
    expect(r, EXIT_AGENT, r"paraf: sign refused: pin-incorrect \(")
    assert not Path(str(f) + ".p7s").exists()


def test_sign_pin_sources(ca, token_factory, agent_factory, run_paraf, tmp_path):
    """R2: the PIN comes from --pin-file (first line; "\\n" or "\\r\\n" removed; later lines
    ignored) or the terminal, never from the environment; without a terminal and without
    --pin-file, sign fails with a clear message (exit 2) before asking the agent. A PIN with
    JSON's special characters reaches the token intact (the CLI escapes it itself)."""
    pin = 'a"b\\c/d é'
    tok = token_factory("Token Khusus", pin=pin)
    ident = tok.enroll(ca, kind="ec")
    agent = agent_factory()
    f = write(tmp_path / "doc.txt", b"x")
    for i, (content, ending) in enumerate(((pin, "\n"), (pin, "\r\n"), (pin, ""),
            (pin, "\nsecond line\n"))):
        pf = pin_file(tmp_path, content, f"pin{i}", ending)
        expect(run_paraf(agent, "sign", "--force", "--cert", ident.cert_id, "--pin-file", pf,
            f), EXIT_OK)

    r = run_paraf(agent, "sign", "--force", "--cert", ident.cert_id, f, input=pin + "\n",
        env={"PARAF_PIN": pin, "PIN": pin})
    expect(r, EXIT_USAGE, r"not a terminal.*--pin-file")

    expect(run_paraf(agent, "sign", "--force", "--cert", ident.cert_id, "--pin-file",
        pin_file(tmp_path, "", "empty"), f), EXIT_LOCAL, r"PIN file '.*empty' is empty")
    expect(run_paraf(agent, "sign", "--force", "--cert", ident.cert_id, "--pin-file",
        pin_file(tmp_path, "1" * 300, "long"), f), EXIT_LOCAL, r"longer than 256")
    expect(run_paraf(agent, "sign", "--force", "--cert", ident.cert_id, "--pin-file",
        tmp_path / "missing", f), EXIT_LOCAL, r"cannot read PIN file")


def test_sign_pin_prompt_on_terminal(ca, token, agent_factory, paraf_bin, tmp_path):
    """R2: on a terminal the PIN is asked as `PIN for <subject CN>: ` with echo off, and the
    typed PIN signs."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory()
    f = write(tmp_path / "doc.txt", b"x")
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(tmp_path)
        os.execve(str(paraf_bin), [str(paraf_bin), "--socket", agent.socket, "sign", "--cert",
            ident.cert_id, "doc.txt"], agent.env)
    out, echo, sent = b"", None, False
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if not r:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if not sent and out.endswith(b": "):
                echo = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
                os.write(fd, ident.pin.encode() + b"\n")
                sent = True
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = out.decode(errors="replace")
    prompt = f"PIN for {cn(ident.cert)}: "
    assert prompt in text, text
    assert echo is False, "echo was on while the PIN was typed"
    assert text.split(prompt, 1)[1].startswith("\r\n"), f"the PIN was echoed: {text!r}"
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert openssl_verify(Path(str(f) + ".p7s"), f, ca.cert_path).returncode == 0


def test_sign_batch_500_and_limit(ca, token, agent_factory, run_paraf, tmp_path):
    """R1: one `sign` request, one PIN, for 500 files; 501 files are refused before the agent
    is contacted (exit 2 even with an unreachable socket)."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory()
    d = tmp_path / "batch"
    files = [write(d / f"surat-{i:03}.txt", f"surat nomor {i}\n") for i in range(500)]
    r = expect(run_paraf(agent, "sign", "--cert", ident.cert_id, "--pin-file",
        pin_file(tmp_path, ident.pin), *[f.name for f in files], cwd=d), EXIT_OK)
    assert len(r.stdout.splitlines()) == 500
    for f in files[::97]:
        assert openssl_verify(Path(str(f) + ".p7s"), f, ca.cert_path).returncode == 0
    extra = write(d / "surat-500.txt", b"x")
    r = run_paraf(None, "--socket", tmp_path / "none.sock", "sign", "--force", "--cert",
        ident.cert_id, *[f.name for f in files], extra.name, cwd=d)
    expect(r, EXIT_USAGE, r"501 files given, at most 500")


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


def test_sign_agent_refusals(ca, token, agent_factory, run_paraf, tmp_path):
    """The agent's reason, field and rule are printed with exit 4: here pin-parameter-refused
    (rule R2) from an agent that takes no PIN from clients; without --pin-file the CLI then
    asks for no PIN and sends none."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory(config="[agent]\nallow_pin_parameter = no\n")
    f = write(tmp_path / "doc.txt", b"x")
    r = run_paraf(agent, "sign", "--cert", ident.cert_id, "--pin-file",
        pin_file(tmp_path, ident.pin), f)
    expect(r, EXIT_AGENT, r"sign refused: pin-parameter-refused \(.*rule R2")
    # without --pin-file the CLI does not ask for a PIN the agent would refuse: it sends none
    r = run_paraf(agent, "sign", "--cert", ident.cert_id, f)
    expect(r, EXIT_AGENT, r"sign refused: pin-required")
    assert not Path(str(f) + ".p7s").exists()


# --- verify ---------------------------------------------------------------------------------------

@pytest.fixture
def signed(ca, tmp_path):
    """A document signed (detached CMS, DER) with a software key certified by `ca`."""
    cert, cp, kp = software_signer(ca, tmp_path, "Siti Rahayu")
    doc = write(tmp_path / "keputusan.pdf", os.urandom(200_000))
    sig = openssl_sign(doc, [(cp, kp)], tmp_path / "keputusan.pdf.p7s")
    return {"cert": cert, "cert_path": cp, "key_path": kp, "doc": doc, "sig": sig}


def test_verify_is_offline(run_paraf, ca, signed):
    """verify needs no agent: no socket, no XDG_RUNTIME_DIR."""
    r = run_paraf(None, "verify", "--ca", ca.cert_path, signed["sig"],
        env={"XDG_RUNTIME_DIR": "", "PARAF_SOCKET": ""})
    expect(r, EXIT_OK)
    assert "VALID" in r.stdout


def test_verify_tampered_content_is_invalid(run_paraf, ca, signed, tmp_path):
    """R11: a changed document: integrity false, INVALID with a reason, exit 1. A signature
    whose own bytes were changed is INVALID too."""
    changed = write(tmp_path / "changed.pdf", signed["doc"].read_bytes() + b"x")
    rep = verify_json(run_paraf, "--ca", ca.cert_path, signed["sig"], changed)
    (s,) = rep["signatures"]
    assert rep["conclusion"] == "INVALID" and s["conclusion"] == "INVALID"
    assert s["integrity"] is False and s["trusted"] is True and s["reason"]
    assert rep["content"] == str(changed)

    der = bytearray(signed["sig"].read_bytes())
    der[-3] ^= 1  # inside the signature value, at the end of the SignerInfo
    bad = write(tmp_path / "bad.pdf.p7s", bytes(der))
    rep = verify_json(run_paraf, "--ca", ca.cert_path, bad, signed["doc"])
    assert rep["conclusion"] == "INVALID" and rep["signatures"][0]["integrity"] is False


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

    # several certificates in one --ca file, and several --ca options
    both = write(tmp_path / "both.pem", other.cert_path.read_bytes() + ca.cert_path.read_bytes())
    assert verify_json(run_paraf, "--ca", both, signed["sig"])["conclusion"] == "VALID"
    assert verify_json(run_paraf, "--ca", other.cert_path, "--ca", ca.cert_path,
        signed["sig"])["conclusion"] == "VALID"

    if anchors_dir(run_paraf).exists():
        pytest.skip(f"{anchors_dir(run_paraf)} exists on this machine")
    rep = verify_json(run_paraf, signed["sig"])
    (s,) = rep["signatures"]
    assert s["conclusion"] == "INDETERMINATE" and s["reason"] == "no trust anchors configured"


def test_verify_expired_signer_is_indeterminate(run_paraf, ca, tmp_path):
    """R7/R11: a signer certificate that has expired is reported, not trusted now."""
    now = pki.utcnow()
    cert, cp, kp = software_signer(ca, tmp_path, "Pejabat Lama",
        not_before=now - datetime.timedelta(days=800), not_after=now - datetime.timedelta(days=70))
    doc = write(tmp_path / "lama.txt", b"lama")
    sig = openssl_sign(doc, [(cp, kp)], tmp_path / "lama.txt.p7s")
    rep = verify_json(run_paraf, "--ca", ca.cert_path, sig)
    (s,) = rep["signatures"]
    assert s["integrity"] is True and s["conclusion"] == "INDETERMINATE"
    assert "expired" in s["trust_error"], s
    assert s.get("not_after") == pki.iso(cert.not_valid_after)


def test_verify_formats_and_signers(run_paraf, ca, signed, tmp_path):
    """PEM input is detected; CONTENT may be named explicitly; a signature without
    signingTime reports null; every SignerInfo is reported and the worst conclusion wins."""
    pem = tmp_path / "sig.pem"
    r = subprocess.run(["openssl", "cms", "-cmsout", "-inform", "DER", "-in", str(signed["sig"]),
        "-outform", "PEM", "-out", str(pem)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert verify_json(run_paraf, "--ca", ca.cert_path, pem, signed["doc"])["conclusion"] == \
        "VALID"

    noattr = openssl_sign(signed["doc"], [(signed["cert_path"], signed["key_path"])],
        tmp_path / "noattr.p7s", "-noattr")
    rep = verify_json(run_paraf, "--ca", ca.cert_path, noattr, signed["doc"])
    assert rep["conclusion"] == "VALID" and rep["signatures"][0]["signing_time"] is None

    other = pki.CA(tmp_path / "other", kind="ec", name="Other CA")
    _, cp2, kp2 = software_signer(other, tmp_path, "Orang Lain")
    two = openssl_sign(signed["doc"], [(signed["cert_path"], signed["key_path"]), (cp2, kp2)],
        tmp_path / "two.p7s")
    rep = verify_json(run_paraf, "--ca", ca.cert_path, two, signed["doc"])
    # SignerInfos are a SET: their order in the file is the DER order, not the signing order
    assert sorted((s["signer_cn"], s["conclusion"]) for s in rep["signatures"]) == \
        [("Orang Lain", "INDETERMINATE"), ("Siti Rahayu", "VALID")]
    assert rep["conclusion"] == "INDETERMINATE"

    nocerts = openssl_sign(signed["doc"], [(signed["cert_path"], signed["key_path"])],
        tmp_path / "nocerts.p7s", "-nocerts")
    rep = verify_json(run_paraf, "--ca", ca.cert_path, nocerts, signed["doc"])
    (s,) = rep["signatures"]
    assert s["conclusion"] == "INVALID" and s["signer"] is None
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


def _fake_cert_entry(ca, tmp_path, name="Dewi Lestari"):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca.issue(key.public_key(), name)
    der = cert.public_bytes(serialization.Encoding.DER)
    entry = {"id": pki.cert_id(der), "token": "00112233aabbccdd",
        "subject": pki.rfc2253(cert.subject), "issuer": pki.rfc2253(cert.issuer),
        "serial": format(cert.serial_number, "x"), "not_before": pki.iso(cert.not_valid_before),
        "not_after": pki.iso(cert.not_valid_after),
        "key": {"algorithm": "ec", "size": 256, "curve": "prime256v1"},
        "key_usage": ["digitalSignature", "nonRepudiation"], "extended_key_usage": None,
        "certificate": pki.b64(der)}
    return key, cert, entry


def test_sign_request_and_answer_checked(fake_agent, ca, run_paraf, tmp_path):
    """What `paraf sign` sends (one request: full certificate id, usage, format, digest
    algorithm, documents named by basename with the files' digests, and the PIN exactly as in
    the PIN file, escaped by the CLI) and what it accepts back: a signature that does not
    verify over the file's digest with the certificate, names out of order, or a certificate
    whose id is not its SHA-256 are refused (exit 4) and nothing is written. An error about
    documents[i] says which FILE that is."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import utils

    key, cert, entry = _fake_cert_entry(ca, tmp_path)
    status = {"version": "0.1.0", "uptime_seconds": 1, "pid": 1, "tokens_present": 1,
        "tokens": [entry["token"]], "helper": {"running": True, "pid": 2, "restarts": 0},
        "pin_parameter": True}
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

    expect(run_paraf(None, *args), EXIT_OK)
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
        expect(run_paraf(None, *args), EXIT_AGENT, pattern)
        assert not Path(str(a) + ".sig").exists() and not Path(str(b) + ".sig").exists()

    mode.clear()
    mode["entry"] = dict(entry, id=entry["id"][:12] + "0" * 52)
    expect(run_paraf(None, *args), EXIT_AGENT, r"does not match its id")
