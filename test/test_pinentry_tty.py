"""
The trusted PIN dialog with a REAL pinentry on a real terminal: test/pinentry-probe (built from
test/pinentry-probe.c on agent/ag-pinentry.c) asks pinentry-tty (or, without it,
pinentry-curses) to draw on a tmux pane; the test reads the pane like a person, types with
`tmux send-keys`, and checks what the probe got back: the PIN's length and SHA-256, never the
PIN itself (R2). Each test runs with each of pinentry-tty and pinentry-curses that is
installed; skips, saying why, without tmux or the pinentry (Debian: `apt-get install tmux
pinentry-tty`, as scripts/install-deps.sh does).

Rules of REGULATION.md: R2 (the PIN goes from the person to the agent through the trusted
dialog, never echoed, never printed) and R1 (one dialog per signing act: each probe run is
one dialog and asks the person again).
"""

import hashlib
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

PINENTRIES = ("/usr/bin/pinentry-tty", "/usr/bin/pinentry-curses")
PROMPT = "PIN-PARAF:"
# What a person presses to cancel (pinentry-curses 1.2 ignores a lone Escape: Tab moves from
# the entry to OK, then to Cancel), and to agree to a CONFIRM whose OK reads "Tanda tangani".
CANCEL_KEYS = {"pinentry-tty": ["C-d"], "pinentry-curses": ["Tab", "Tab", "Enter"]}
CONFIRM_KEYS = {"pinentry-tty": ["t"], "pinentry-curses": ["Enter"]}


@pytest.fixture(scope="module")
def probe_bin(build_dir):
    p = build_dir / "test" / "pinentry-probe"
    if not os.access(p, os.X_OK):
        pytest.fail(f"{p} is missing: build first (`make build`)")
    return p


@pytest.fixture(scope="module", params=PINENTRIES, ids=lambda p: Path(p).name)
def pinentry(request):
    """Each terminal pinentry that is installed (pinentry-tty is the one install-deps.sh
    installs; pinentry-curses comes with gnupg)."""
    if not os.access(request.param, os.X_OK):
        name = Path(request.param).name
        pytest.skip(f"{request.param} is not installed (apt-get install {name})")
    return request.param


class Pane:
    """One tmux server on a private socket, with one pane running one command."""

    def __init__(self, workdir):
        self.sock = str(workdir / "tmux.sock")
        self.out = workdir / "probe.out"

    def tmux(self, *args, check=True):
        return subprocess.run(["tmux", "-S", self.sock, *args], capture_output=True, text=True,
                              check=check, timeout=10)

    def start(self, argv):
        # The pane's command ends with the probe; keep the pane a little so a failure can be
        # captured.
        cmd = shlex.join([str(a) for a in argv]) + "; sleep 5"
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "120", "-y", "40",
                  cmd)

    def screen(self):
        r = self.tmux("capture-pane", "-p", "-t", "t", check=False)
        return r.stdout if r.returncode == 0 else ""

    def wait_screen(self, text, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.screen()
            if text in s:
                return s
            time.sleep(0.1)
        pytest.fail(f"{text!r} did not appear on the pane within {timeout} s; it shows:\n"
                    f"{self.screen()}\nprobe: {self.result(0)!r}")

    def type(self, text):
        self.tmux("send-keys", "-t", "t", "-l", text)

    def key(self, *keys):
        self.tmux("send-keys", "-t", "t", *keys)

    def result(self, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            if self.out.exists():
                return self.out.read_text().strip()
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)

    def stop(self):
        self.tmux("kill-server", check=False)


@pytest.fixture
def pane(tmp_path):
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed (apt-get install tmux)")
    p = Pane(tmp_path)
    yield p
    p.stop()


def probe_argv(probe_bin, pinentry, pane, *extra, description="Tanda tangani 1 dokumen"):
    return [probe_bin, "--program", pinentry, "--prompt", PROMPT, "--description", description,
            "--out", pane.out, *extra]


def expected(pin):
    b = pin.encode("utf-8")
    return f"ok len={len(b)} sha256={hashlib.sha256(b).hexdigest()}"


def test_pin_typed_on_the_terminal(probe_bin, pinentry, pane):
    """R2: the person types the PIN into the pinentry; the agent's side gets exactly those
    bytes (spaces, %, UTF-8), the terminal never shows them, and the description arrives with
    its lines and its % intact."""
    pin = "12 34%é9"
    desc = "Tanda tangani 2 dokumen\n- surat-100%.pdf\n- lampiran.pdf"
    pane.start(probe_argv(probe_bin, pinentry, pane, "--error", "PIN salah", description=desc))
    screen = pane.wait_screen(PROMPT)
    for line in ("Tanda tangani 2 dokumen", "- surat-100%.pdf", "- lampiran.pdf", "PIN salah"):
        assert line in screen
    pane.type(pin)
    time.sleep(0.5)
    assert "12 34" not in pane.screen() and "%é9" not in pane.screen()
    pane.key("Enter")
    assert pane.result() == expected(pin)


def test_cancel_on_the_terminal(probe_bin, pinentry, pane):
    """The person cancels: the agent's side gets -ECANCELED, and no PIN."""
    pane.start(probe_argv(probe_bin, pinentry, pane))
    pane.wait_screen(PROMPT)
    pane.key(*CANCEL_KEYS[Path(pinentry).name])
    assert pane.result() == "error r=-125 cancelled"


def test_confirm_then_pin(probe_bin, pinentry, pane):
    """The last try before the token locks: first the person agrees explicitly, then types
    the PIN; both in the same pinentry."""
    pin = "2468"
    pane.start(probe_argv(probe_bin, pinentry, pane, "--confirm",
                          "PERINGATAN: percobaan PIN terakhir. Lanjutkan?"))
    pane.wait_screen("PERINGATAN: percobaan PIN terakhir")
    pane.key(*CONFIRM_KEYS[Path(pinentry).name])
    pane.wait_screen(PROMPT)
    pane.type(pin)
    pane.key("Enter")
    assert pane.result() == expected(pin)


def test_nobody_answers(probe_bin, pinentry, pane):
    """Nobody at the terminal: the pinentry's own timeout ends the dialog with -ETIMEDOUT."""
    pane.start(probe_argv(probe_bin, pinentry, pane, "--timeout", "2"))
    pane.wait_screen(PROMPT)
    start = time.monotonic()
    assert pane.result(timeout=20) == "error r=-110 timeout"
    assert time.monotonic() - start < 2 + 5 + 3  # within our own deadline


def test_client_goes_away(probe_bin, pinentry, pane):
    """The requesting client went away while the dialog was up: the agent kills the pinentry
    and reaps it (the probe checks the pid is gone)."""
    pane.start(probe_argv(probe_bin, pinentry, pane, "--cancel-after", "2"))
    pane.wait_screen(PROMPT)
    res = pane.result(timeout=15)
    assert res is not None and res.startswith("cancelled pid=") and res.endswith(" gone"), res
