"""
The whole path on a real terminal, as an official at a text console meets it: `paraf sign`
runs in a tmux pane; parafd (started with `--pinentry /usr/bin/pinentry-tty`) opens the real
pinentry-tty on that same terminal, because paraf named it in the request and parafd checked
it belongs to the caller (R1); the test reads the dialog off the screen like a person, checks
that it names the document and its digest, types the PIN with `tmux send-keys`, and the
signature verifies with `openssl cms -verify`. The PIN never appears on the screen (R2).
Skips, saying why, without tmux or pinentry-tty.
"""

import hashlib
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

PINENTRY = "/usr/bin/pinentry-tty"


def tmux(sock, *args, check=True):
    return subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True,
                          check=check, timeout=10)


def screen(sock):
    r = tmux(sock, "capture-pane", "-p", "-J", "-t", "t", "-S", "-200", check=False)
    return r.stdout if r.returncode == 0 else ""


def wait_for(sock, text, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = screen(sock)
        if text in s:
            return s
        time.sleep(0.1)
    pytest.fail(f"{text!r} did not appear within {timeout} s; the pane shows:\n{screen(sock)}")


def test_R1_R2_sign_with_real_pinentry_on_the_callers_terminal(ca, token, agent_factory,
        paraf_bin, tmp_path):
    """R1: the dialog appears on the caller's own terminal and lists exactly the document
    being signed; R2: the PIN is typed into the trusted dialog, never echoed, never passed
    on the command line."""
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed (apt-get install tmux)")
    if not os.access(PINENTRY, os.X_OK):
        pytest.skip(f"{PINENTRY} is not installed (apt-get install pinentry-tty)")
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory(pinentry=PINENTRY)
    doc = tmp_path / "nota-dinas.txt"
    doc.write_bytes(b"Nota dinas nomor 7\n")
    digest = hashlib.sha256(doc.read_bytes()).hexdigest()
    sock = str(tmp_path / "tmux.sock")
    done = tmp_path / "paraf.status"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in agent.env.items()
                   if k in ("HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_STATE_HOME"))
    cmd = (f"cd {shlex.quote(str(tmp_path))} && env {env} TERM=xterm "
           f"{shlex.quote(str(paraf_bin))} --socket {shlex.quote(agent.socket)} sign "
           f"--cert {ident.cert_id} {doc.name}; echo $? > {shlex.quote(str(done))}; sleep 30")
    tmux(sock, "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "160", "-y", "50", cmd)
    try:
        s = wait_for(sock, "PIN:")
        # What the official reads before typing: the document and its digest's ends.
        assert "nota-dinas.txt" in s, s
        assert digest[:8] in s and digest[-8:] in s, s
        assert "individual" in s and "signature" in s, s
        tmux(sock, "send-keys", "-t", "t", "-l", token.pin)
        tmux(sock, "send-keys", "-t", "t", "Enter")
        deadline = time.monotonic() + 30
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        final = screen(sock)
        assert done.exists(), f"paraf did not finish; the pane shows:\n{final}"
        assert done.read_text().strip() == "0", final
        assert token.pin not in final, "the PIN was echoed on the terminal"
    finally:
        tmux(sock, "kill-server", check=False)
    sig = Path(str(doc) + ".p7s")
    r = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
                        str(sig), "-content", str(doc), "-CAfile", str(ca.cert_path),
                        "-purpose", "any", "-out", "/dev/null"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (rec,) = [a for a in agent.audit() if a.get("method") == "sign"]
    assert (rec["verdict"], rec["outcome"]) == ("allow", "signed"), rec
