"""
PIN hygiene of parafd and paraf-token-helper (doc/security.md, "PIN hygiene"; REGULATION.md
R2): neither can be ptraced by a process of the same account, neither writes a core file
when it aborts, a distinctive marker PIN used for a whole signing session appears in no log
and, once the operation is over, nowhere in either process's memory, and while a PIN is
held it sits in a page that is locked (never swapped) and excluded from core dumps.

What holds depends on who runs the tests, and each test says so:
- as an ordinary user, parafd's /proc/PID/mem, /smaps and /fd cannot be read at all
  (PR_SET_DUMPABLE 0), so the memory scan and the smaps check SKIP with that reason; the
  ptrace refusal and the logs are tested;
- as root with CAP_SYS_PTRACE, the kernel lets root attach to and read any process,
  dumpable or not (only Yama's ptrace_scope = 3 would stop it). The tests read memory
  as root, and model "a process of the same account" by dropping CAP_SYS_PTRACE from
  the bounding set of the attacking child (setpriv), which is then refused.

Every check that looks for something absent first proves that it can find it: the scanners
find a marker planted on purpose (a document name, a process's own memory), the core
check finds the core of a control process killed the same way, the ptrace check attaches
to a dumpable control process of its own.
"""

import glob
import json
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pki
from conftest import proc_state

IS_ROOT = os.geteuid() == 0
MARKER_PIN = "MARKER-7f3a9c-PIN-" + "4d2e8b61a09f3c75e1b4d806"   # 42 bytes: the right PIN
WRONG_MARKER = "WRONGPIN-5e1d2b-" + "c93a0f47b2e6d815a7f0c4e9"  # 40 bytes: a wrong PIN
PLANTED = "PLANTED-0ddba11-" + "e4c1b7a29d3f60"                 # in a document name
FRAGMENT = 12  # any 12 consecutive bytes of a marker count as a copy of it


# --- reading another process -------------------------------------------------------------------

def fragments(marker, size=FRAGMENT):
    b = marker.encode()
    return {b[i:i + size] for i in range(0, len(b) - size + 1)}


def regions(pid):
    """(start, end, perms, name) of every mapping of pid (/proc/PID/maps)."""
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            start, end = (int(x, 16) for x in parts[0].split("-"))
            out.append((start, end, parts[1], parts[5].strip() if len(parts) > 5 else ""))
    return out


def read_memory(pid):
    """[(start, name, bytes)] of every readable mapping of pid, through /proc/PID/mem.
    Raises PermissionError where the kernel refuses (not root, a non-dumpable process)."""
    out = []
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for start, end, perms, name in regions(pid):
            if "r" not in perms or name in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                continue
            chunks, addr = [], start
            while addr < end:
                n = min(end - addr, 1 << 20)
                try:
                    mem.seek(addr)
                    chunks.append(mem.read(n))
                except OSError:
                    chunks.append(b"\0" * n)
                addr += n
            out.append((start, name, b"".join(chunks)))
    return out


def scan_memory(pid, markers):
    """{marker: [(address, mapping name, "full"|"fragment"), …]} of every copy of each
    marker (the whole marker, or any FRAGMENT bytes of it) in pid's readable memory."""
    found = {m: [] for m in markers}
    for start, name, data in read_memory(pid):
        for m in markers:
            full = m.encode()
            for x in re.finditer(re.escape(full), data):
                found[m].append((hex(start + x.start()), name or "[anon]", "full"))
            for frag in fragments(m):
                i = data.find(frag)
                while i >= 0:
                    # a fragment inside a full copy already counted is not another copy
                    whole = data.find(full, max(0, i - len(full)), i + len(full) + len(frag))
                    if whole < 0 or not (whole <= i < whole + len(full)):
                        found[m].append((hex(start + i), name or "[anon]", "fragment"))
                        break
                    i = data.find(frag, i + 1)
    for m in found:
        found[m] = sorted(set(found[m]))
    return found


def scan_files(paths, markers, exclude=()):
    """{marker: [file, …]} of the files under `paths` holding a marker (or a fragment)."""
    found = {m: [] for m in markers}
    files = []
    for p in paths:
        p = Path(p)
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files += [f for f in p.rglob("*") if f.is_file()]
    n = 0
    for f in files:
        if any(str(f).startswith(str(x)) for x in exclude):
            continue
        try:
            data = f.read_bytes()
        except OSError:
            continue
        n += 1
        for m in markers:
            if m.encode() in data or any(fr in data for fr in fragments(m)):
                found[m].append(str(f))
    return found, n


def smaps(pid):
    """[{start, end, perms, name, Size, Locked, VmFlags, …}] from /proc/PID/smaps."""
    out, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
            if m:
                cur = {"start": int(m.group(1), 16), "end": int(m.group(2), 16),
                    "perms": m.group(3), "name": m.group(4)}
                out.append(cur)
            elif ":" in line and cur is not None:
                k, v = line.split(":", 1)
                v = v.strip()
                cur[k] = v.split() if k == "VmFlags" else (int(v.split()[0]) if
                    v.endswith("kB") else v)
    return out


def memory_readable(pid):
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
            start = regions(pid)[0][0]
            mem.seek(start)
            mem.read(1)
        return True
    except (PermissionError, OSError):
        return False


def need_memory(pid, what):
    if not memory_readable(pid):
        pytest.skip(f"cannot read {what}'s memory (pid {pid}): it is not dumpable and we are "
            f"uid {os.geteuid()} without CAP_SYS_PTRACE (the point of PR_SET_DUMPABLE 0; "
            "run as root to scan it)")


def limits(pid):
    """{name: (soft, hard)} from /proc/PID/limits (readable by anyone)."""
    out = {}
    with open(f"/proc/{pid}/limits") as f:
        for line in f.readlines()[1:]:
            m = re.match(r"^(.*?)\s{2,}(\S+)\s+(\S+)", line)
            if m:
                out[m.group(1).strip()] = (m.group(2), m.group(3))
    return out


# --- a session with the marker PIN -------------------------------------------------------------

def make_docs(n, tag):
    return [(f"{tag}-{i:02d}.txt", f"Nomor {i} {secrets.token_hex(6)}\n".encode())
        for i in range(n)]


def sign_params(ident, docs, fmt="cms", pin=None, name_prefix=""):
    """sign's parameters; a `pin` parameter is put FIRST, so that json-c's tokener buffer,
    which holds one string at a time, has to grow for the longer strings after it (a realloc
    that must not leave the PIN behind)."""
    p = {}
    if pin is not None:
        p["pin"] = pin
    p.update({"certificate": ident.cert_id, "usage": "signature", "format": fmt,
        "digest_algorithm": "sha256",
        "documents": [{"name": name_prefix + n, "digest": pki.b64(pki.digest(d))}
            for n, d in docs]})
    return p


class MarkerSession:
    """A token whose user PIN is MARKER_PIN, an RSA (individual) and an EC (system)
    identity on it, and a parafd whose fake PIN dialog answers WRONG_MARKER once, then
    MARKER_PIN."""

    def __init__(self, ca, softhsm, agent_factory, **agent_options):
        self.token = softhsm.init_token("paraf-marker", pin=MARKER_PIN, so_pin="87654321")
        self.rsa = self.token.enroll(ca, kind="rsa")
        self.system = self.token.enroll(ca, kind="ec", cert_type="system")
        self.agent = agent_factory(pinentry={"pins": [WRONG_MARKER, MARKER_PIN]},
            **agent_options)

    def run(self):
        """The whole session: a wrong PIN in the dialog (pin-incorrect), then three signings
        with the right one from the dialog (one of 20 documents, one named with the planted
        marker), a wrong and a right PIN as a `pin` parameter for the system certificate, and
        a closed connection. Returns a list of what was done."""
        a = self.agent
        done = []
        c = a.client()
        r = c.call("sign", sign_params(self.rsa, make_docs(1, "salah")))
        assert r.get("error", {}).get("data", {}).get("reason") == "pin-incorrect", r
        done.append("dialog: wrong PIN -> pin-incorrect")
        for n, fmt, prefix in ((1, "cms", ""), (20, "raw", ""), (2, "cms", PLANTED + "-")):
            r = c.call("sign", sign_params(self.rsa, make_docs(n, "surat"), fmt,
                name_prefix=prefix))
            assert "result" in r, r
            done.append(f"dialog: {n} documents {fmt}")
        r = c.call("sign", sign_params(self.system, make_docs(1, "sistem"), "raw",
            pin=WRONG_MARKER))
        assert r.get("error", {}).get("data", {}).get("reason") == "pin-incorrect", r
        done.append("pin parameter: wrong PIN -> pin-incorrect")
        r = c.call("sign", sign_params(self.system, make_docs(3, "sistem"), "cms",
            pin=MARKER_PIN))
        assert "result" in r, r
        done.append("pin parameter: 3 documents cms")
        c.close()
        # let parafd see the hang-up and free the client (and its buffers)
        deadline = time.monotonic() + 10
        while a.result("agent.status")["clients"] > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        dialogs = a.pinentry.dialogs()
        assert len(dialogs) == 4, f"{len(dialogs)} PIN dialogs, expected 4"
        return done


# --- ptrace ---------------------------------------------------------------------------------

_ATTACHER = r"""
import ctypes, json, os, signal, subprocess, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_ATTACH, PTRACE_DETACH, WALL = 16, 17, 0x40000000

def attach(pid):
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) != 0:
        return os.strerror(ctypes.get_errno())
    os.waitpid(pid, WALL)
    libc.ptrace(PTRACE_DETACH, pid, None, None)
    return "attached"

def read_mem(pid):
    try:
        with open(f"/proc/{pid}/maps") as f:
            start = int(f.readline().split("-")[0], 16)
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as m:
            m.seek(start)
            m.read(16)
        return "read"
    except OSError as e:
        return os.strerror(e.errno)

with open("/proc/self/status") as f:
    capeff = [l.split()[1] for l in f if l.startswith("CapEff:")][0]
ptrace_cap = bool(int(capeff, 16) & (1 << 19))
control = subprocess.Popen(["sleep", "60"])   # dumpable, ours: the attach must work on it
time.sleep(0.1)
out = {"uid": os.geteuid(), "cap_sys_ptrace": ptrace_cap, "control": attach(control.pid),
       "control_mem": read_mem(control.pid)}
control.kill()
for pid in map(int, sys.argv[1:]):
    out[str(pid)] = attach(pid)
    out[str(pid) + "_mem"] = read_mem(pid)
print(json.dumps(out))
"""


def attach_from(pids, drop_cap):
    """Runs the attacher as this account, without CAP_SYS_PTRACE if drop_cap (setpriv drops
    it from the bounding set, so the exec'd interpreter never has it)."""
    argv = [sys.executable, "-c", _ATTACHER] + [str(p) for p in pids]
    if drop_cap:
        argv = ["setpriv", "--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace", "--"] + argv
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_ptrace_refused_for_the_same_account(ca, token, agent_factory):
    """ptrace(PTRACE_ATTACH) and /proc/PID/mem by a process of the same account without
    CAP_SYS_PTRACE are refused (EPERM / EACCES) for parafd and for the token helper, while
    the same attacher can attach to and read a dumpable process of its own (control). As
    root, without Yama, an attacher WITH CAP_SYS_PTRACE can attach to both (printed, and
    checked, so that doc/security.md states what is true)."""
    token.enroll(ca, kind="ec")
    agent = agent_factory()
    agent.result("certificates.list")
    helper = agent.helper_pid()
    assert helper, "no token helper"
    if IS_ROOT and shutil.which("setpriv") is None:
        pytest.skip("setpriv is needed to drop CAP_SYS_PTRACE as root")
    same = attach_from([agent.pid, helper], drop_cap=IS_ROOT)
    yama = Path("/proc/sys/kernel/yama/ptrace_scope")
    scope = yama.read_text().strip() if yama.exists() else "absent"
    print(f"FIGURES ptrace: Yama ptrace_scope {scope}; uid {same['uid']} without "
        f"CAP_SYS_PTRACE: parafd {same[str(agent.pid)]}, /proc/PID/mem "
        f"{same[str(agent.pid) + '_mem']}; helper {same[str(helper)]}, /proc/PID/mem "
        f"{same[str(helper) + '_mem']}; control (dumpable) {same['control']}, "
        f"{same['control_mem']}")
    assert not same["cap_sys_ptrace"], same
    assert same["control"] == "attached" and same["control_mem"] == "read", \
        f"the attacher cannot even attach to its own child: {same}"
    for pid in (agent.pid, helper):
        assert same[str(pid)] == os.strerror(1), f"attach to {pid}: {same[str(pid)]}"
        assert same[str(pid) + "_mem"] in (os.strerror(1), os.strerror(13)), same
    gdb = shutil.which("gdb")
    assert gdb, "gdb is missing: scripts/install-deps.sh installs it"
    if gdb:
        argv = [gdb, "-nx", "-batch", "-p", str(agent.pid), "-ex", "detach"]
        if IS_ROOT:
            argv = ["setpriv", "--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace",
                "--"] + argv
        g = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        text = g.stdout + g.stderr
        print(f"FIGURES ptrace: gdb -p parafd: "
            f"{[x for x in text.splitlines() if 'ptrace' in x.lower()][:1]}")
        assert "Operation not permitted" in text, text[-800:]
    if IS_ROOT:
        full = attach_from([agent.pid, helper], drop_cap=False)
        print(f"FIGURES ptrace: root WITH CAP_SYS_PTRACE: parafd {full[str(agent.pid)]}, "
            f"helper {full[str(helper)]} (Yama ptrace_scope {scope})")
        if scope == "3":
            assert full[str(agent.pid)] == os.strerror(1)
        elif full["cap_sys_ptrace"]:
            # what doc/security.md says: root with CAP_SYS_PTRACE is not kept out
            assert full[str(agent.pid)] == "attached", full
    assert agent.alive() and agent.result("agent.status")["pid"] == agent.pid


# --- no core files -----------------------------------------------------------------------------

def _core_files(where, since):
    """Core files made since `since` in the directories `where`."""
    out = []
    for d in where:
        for f in glob.glob(os.path.join(d, "core*")):
            try:
                if os.stat(f).st_mtime >= since:
                    out.append(f)
            except OSError:
                pass
    return out


def test_no_core_file_on_abort(ca, token, agent_factory, tmp_path):
    """With `ulimit -c unlimited` in its environment and a writable working directory,
    parafd and the token helper set RLIMIT_CORE to 0 themselves (/proc/PID/limits) and leave
    no core file when killed with SIGABRT; a control process started the same way in the
    same directory does leave one (where core_pattern writes files at all)."""
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    suid = Path("/proc/sys/fs/suid_dumpable").read_text().strip()
    old = resource.getrlimit(resource.RLIMIT_CORE)
    if old[1] != resource.RLIM_INFINITY and not IS_ROOT:
        want = (old[1], old[1])
    else:
        want = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    token.enroll(ca, kind="ec")
    resource.setrlimit(resource.RLIMIT_CORE, want)
    try:
        agent = agent_factory(check_exit=False)
        agent.result("certificates.list")
        helper = agent.helper_pid()
        control = subprocess.Popen(["sleep", "60"], cwd=agent.dir)
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, old)
    where = [str(agent.dir)]
    if pattern.startswith("/"):
        where.append(os.path.dirname(pattern))
    lim = {p: limits(p)["Max core file size"] for p in (agent.pid, helper, control.pid)}
    t0 = time.time() - 1
    control.send_signal(signal.SIGABRT)
    control.wait(10)
    time.sleep(0.5)
    control_cores = _core_files(where, t0)
    os.kill(helper, signal.SIGABRT)
    deadline = time.monotonic() + 10
    while proc_state(helper) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    agent.result("certificates.list")  # a new helper; parafd goes on
    os.kill(agent.pid, signal.SIGABRT)
    rc = agent.proc.wait(20)
    time.sleep(0.5)
    cores = [f for f in _core_files(where, t0) if f not in control_cores]
    print(f"FIGURES core: core_pattern {pattern!r}, suid_dumpable {suid}; RLIMIT_CORE "
        f"(soft, hard) parafd {lim[agent.pid]}, helper {lim[helper]}, control "
        f"{lim[control.pid]}; after SIGABRT: parafd exit {rc}, cores {cores or 'none'}; "
        f"control's core {control_cores or 'none'}")
    for f in control_cores:
        os.unlink(f)
    assert rc == -signal.SIGABRT, f"parafd exit status {rc}"
    assert lim[agent.pid] == ("0", "0") and lim[helper] == ("0", "0"), lim
    assert lim[control.pid][0] != "0", f"the control did not get the raised limit: {lim}"
    assert not cores, f"core files left: {cores}"
    if pattern.startswith("|"):
        print(f"core_pattern pipes to {pattern.split()[0][1:]}: core files are not made "
            "here, so the control cannot prove the file check; the limits above are the "
            "evidence")
    else:
        assert control_cores, f"the control left no core with core_pattern {pattern!r}: " \
            "the check cannot see cores here"


# --- the marker PIN ----------------------------------------------------------------------------

def journal_text(since):
    """The journal's text since `since` (epoch seconds), or None if there is no journal."""
    if not shutil.which("journalctl"):
        return None, "journalctl is not installed"
    if not os.path.exists("/run/systemd/journal/socket"):
        return None, "no journald running here (/run/systemd/journal/socket absent)"
    r = subprocess.run(["journalctl", "--no-pager", "-o", "cat", f"--since=@{int(since)}"],
        capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or "No journal files were found" in r.stderr + r.stdout:
        return None, f"no journal here ({(r.stderr or r.stdout).strip()[:80] or r.returncode})"
    return r.stdout, f"{len(r.stdout.splitlines())} journal lines"


def test_marker_pin_not_in_logs(ca, softhsm, agent_factory):
    """A session with the marker PIN (a wrong PIN, then the right one, through the dialog and
    as a `pin` parameter) leaves the PIN in none of: parafd's stderr (its log and audit
    copies), the audit service's log files and stderr, the agent's work, home and state
    directories, the SoftHSM token files, the journal (where there is one). The PIN dialog's
    own configuration and log are excluded (they ARE the dialog). The planted document name is
    found in the audit log, so the scan can find what is there."""
    t0 = time.time()
    s = MarkerSession(ca, softhsm, agent_factory)
    done = s.run()
    a = s.agent
    a.stop()
    a.auditd.stop()
    markers = [MARKER_PIN, WRONG_MARKER, PLANTED]
    found, n = scan_files([a.dir, a.auditd.dir, a.auditd.log_path, softhsm.path if hasattr(
        softhsm, "path") else a.env["SOFTHSM2_CONF"], Path(a.env["SOFTHSM2_CONF"]).parent],
        markers, exclude=[a.pinentry.dir])
    journal, jnote = journal_text(t0)
    jfound = [m for m in markers if journal is not None and m in journal]
    print(f"FIGURES marker-logs: session {done}; {n} files scanned (the PIN dialog's "
        f"excluded); PIN found in {found[MARKER_PIN] or 'none'}; wrong PIN found in "
        f"{found[WRONG_MARKER] or 'none'}; planted name found in "
        f"{len(found[PLANTED])} files; journal: {jnote}, markers in it {jfound or 'none'}")
    assert found[PLANTED], "the scan did not find the planted document name: it is blind"
    assert not found[MARKER_PIN], f"the PIN is in {found[MARKER_PIN]}"
    assert not found[WRONG_MARKER], f"the wrong PIN is in {found[WRONG_MARKER]}"
    assert MARKER_PIN not in a.stderr() and WRONG_MARKER not in a.stderr()
    assert MARKER_PIN not in jfound and WRONG_MARKER not in jfound


def test_marker_pin_not_in_memory(ca, softhsm, agent_factory):
    """After the marker session, neither parafd's nor the token helper's readable memory
    (every mapping of /proc/PID/maps, read through /proc/PID/mem) holds the PIN or the wrong
    PIN, whole or any 12 bytes of them: not json-c's parse buffers, not the client's read
    buffer, not the Assuan line buffer, not the helper's frame buffer, not SoftHSM. The
    same scan finds the planted document name in parafd and a marker this test process
    keeps in its own memory, so it can find what is there. Root only: parafd's memory cannot
    be read by its own account (not dumpable)."""
    s = MarkerSession(ca, softhsm, agent_factory)
    a = s.agent
    need_memory(a.pid, "parafd")
    done = s.run()
    helper = a.helper_pid()
    markers = [MARKER_PIN, WRONG_MARKER, PLANTED]
    t0 = time.monotonic()
    in_parafd = scan_memory(a.pid, markers)
    in_helper = scan_memory(helper, markers) if helper else {m: [] for m in markers}
    took = time.monotonic() - t0
    keep = ("SELF-" + secrets.token_hex(16)).encode()  # noqa: F841 - a copy in our memory
    in_self = scan_memory(os.getpid(), [keep.decode()])
    print(f"FIGURES marker-memory: session {done}; scanned parafd {a.pid} and helper "
        f"{helper} in {took:.1f} s; PIN: parafd {in_parafd[MARKER_PIN] or 'none'}, helper "
        f"{in_helper[MARKER_PIN] or 'none'}; wrong PIN: parafd "
        f"{in_parafd[WRONG_MARKER] or 'none'}, helper {in_helper[WRONG_MARKER] or 'none'}; "
        f"planted name in parafd: {len(in_parafd[PLANTED])} places")
    assert in_self[keep.decode()], "the scanner did not find a marker in our own memory"
    assert in_parafd[PLANTED], "the scanner did not find the planted document name in parafd"
    assert not in_parafd[MARKER_PIN], f"the PIN is in parafd: {in_parafd[MARKER_PIN]}"
    assert not in_parafd[WRONG_MARKER], f"the wrong PIN is in parafd: {in_parafd[WRONG_MARKER]}"
    assert not in_helper[MARKER_PIN], f"the PIN is in the helper: {in_helper[MARKER_PIN]}"
    assert not in_helper[WRONG_MARKER], \
        f"the wrong PIN is in the helper: {in_helper[WRONG_MARKER]}"


# --- the PIN's page ----------------------------------------------------------------------------

def secret_pages(pid):
    """The mappings of pid marked dontdump (VmFlags "dd"), but the kernel's own ([vvar]…):
    pf_secret's pages."""
    return [m for m in smaps(pid) if "dd" in m.get("VmFlags", [])
        and not m["name"].startswith("[")]


def page_holds(pid, m, marker):
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        mem.seek(m["start"])
        return marker.encode() in mem.read(m["end"] - m["start"])


def test_pin_page_locked_and_not_dumped(ca, softhsm, agent_factory):
    """While a PIN is held, it is in a page of its own that /proc/PID/smaps shows locked
    (Locked: equal to its Size: mlock) and excluded from core dumps (VmFlags dd:
    MADV_DONTDUMP): in parafd while the dialog's answer arrives (the fake dialog sends half
    the PIN, then waits), and in the helper while it signs 300 documents; the page is gone
    once the operation is over. Root only: smaps of a non-dumpable process cannot be read
    by its own account."""
    s = MarkerSession(ca, softhsm, agent_factory,
        config="[agent]\nhelper_timeout = 60\n")
    a = s.agent
    need_memory(a.pid, "parafd")
    # parafd holds the PIN from the dialog's first D line until the frame to the helper is
    # written: the dialog sends the first half of the PIN, then waits 3 s
    half = MARKER_PIN[:len(MARKER_PIN) // 2]
    a.pinentry.configure(pin=MARKER_PIN, d_chunk=len(half), d_delay=3)
    a.result("certificates.list")
    helper = a.helper_pid()
    assert secret_pages(a.pid) == [], "parafd holds a secret page before any PIN"
    c = a.client()
    rid = c.request("sign", sign_params(s.rsa, make_docs(1, "tahan")))
    deadline = time.monotonic() + 30
    pages = []
    while time.monotonic() < deadline and not pages:
        pages = [m for m in secret_pages(a.pid) if page_holds(a.pid, m, half)]
        time.sleep(0.02)
    a.pinentry.configure(pin=MARKER_PIN)
    r = c.recv(60)
    assert r.get("id") == rid and "result" in r, r
    after = [m for m in secret_pages(a.pid) if page_holds(a.pid, m, half)]
    # the helper: catch its page while it signs 300 documents
    hpages, tries = [], 0
    rid = c.request("sign", sign_params(s.rsa, make_docs(300, "banyak"), "raw"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not hpages:
        tries += 1
        try:
            cand = secret_pages(helper)
        except (FileNotFoundError, ProcessLookupError):
            break
        if cand:
            os.kill(helper, signal.SIGSTOP)
            try:
                hpages = [m for m in secret_pages(helper) if page_holds(helper, m, MARKER_PIN)]
            finally:
                os.kill(helper, signal.SIGCONT)
        if c.sock is not None and _answered(c):
            break
    r = c.recv(60)
    assert "result" in r, r
    hafter = [m for m in secret_pages(helper) if page_holds(helper, m, MARKER_PIN)]
    show = lambda ms: [f"{m['end'] - m['start']} B Size {m.get('Size')} kB Locked " \
        f"{m.get('Locked')} kB VmFlags {' '.join(m.get('VmFlags', []))}" for m in ms]
    print(f"FIGURES pin-page: parafd while holding: {show(pages)}; after: {len(after)} "
        f"pages with the PIN; helper while signing ({tries} looks): {show(hpages)}; after: "
        f"{len(hafter)}; RLIMIT_MEMLOCK parafd {limits(a.pid)['Max locked memory']}")
    for who, ms in (("parafd", pages), ("helper", hpages)):
        assert ms, f"no dontdump page holding the PIN found in {who}"
        for m in ms:
            assert m["Size"] == 4 and m["Locked"] == m["Size"], f"{who}: {m}"
            assert "dd" in m["VmFlags"] and "lo" in m["VmFlags"], f"{who}: {m}"
    assert not after and not hafter, "a page still holds the PIN after the operation"


def _answered(c):
    import select
    return bool(c._buf) or bool(select.select([c.sock], [], [], 0)[0])
