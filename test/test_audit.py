"""
The tamper-evident audit service (issue 6; R13: "records are stored so that any change is
detectable; only authorised persons may enter or change data"): paraf-auditd and its log
(audit/aud.h), `paraf audit verify`, and parafd's way to it (`[agent] audit = required |
spool | journal`, the `audit-unavailable` refusal).

Every agent of the whole suite already runs through a paraf-auditd of its own (conftest.py:
agent.auditd, its chain checked in Python when each test ends). The tests here go further:

  * daemon level, on the raw socket: the stored uid and pid are the peer's (SO_PEERCRED),
    whatever a record claims; malformed and oversized lines are refused and not stored; the
    log's directory and files can be written by the service's account only;
  * `paraf audit verify` on logs made by the real service, then edited, cut, reordered,
    extended and truncated by hand: each fault named, at its file and line; rotation by size
    keeps the chain across files, and a broken join is reported;
  * crashes: paraf-auditd killed with SIGKILL at random instants while several clients
    append, dozens of times: no acknowledged record is ever lost, a torn final line is cut
    and recorded as a repair record, and the log verifies after every restart;
  * parafd: a full file system, a stopped service (fail closed: no signature without its
    stored record, `audit-unavailable`, R13), the spool (records kept, then forwarded without
    loss or duplication), the journal mode.

Record formats (stored lines, the repair record, the spool) are those of audit/aud.h,
audit/aud-log.c and agent/ag-audit.h. Run as root, the tests also act as `nobody` (setpriv)
and mount a tiny tmpfs in a private mount namespace; as an ordinary user those parts skip and
say why.
"""

import hashlib
import json
import os
import random
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import (AUDIT_ZERO_HASH, AuditClient, audit_line_hash, audit_log_lines,
    check_chain)
from test_agent import assert_error, make_docs, sign_params

NOBODY = 65534
FILE_RE = re.compile(r"^audit-(\d{6})-(\d{3})\.log$")
FAULTS = ("edited", "removed", "reordered", "inserted", "truncated", "malformed",
    "broken-join")


# --- helpers -----------------------------------------------------------------------------------

def verify(paraf_bin, directory, json_out=True):
    """Runs `paraf audit verify DIR [--json]`: (CompletedProcess, parsed JSON or None)."""
    argv = [str(paraf_bin), "audit", "verify", str(directory)] + (["--json"] if json_out else [])
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    doc = None
    if json_out and r.stdout.strip():
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            pytest.fail(f"`paraf audit verify --json` printed no JSON:\n{r.stdout}\n{r.stderr}")
    return r, doc


def assert_intact(paraf_bin, directory, records=None):
    r, doc = verify(paraf_bin, directory)
    assert r.returncode == 0 and doc and doc["intact"] is True, \
        f"the log in {directory} does not verify: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    if records is not None:
        assert doc["records"] == records, f"verify counted {doc['records']}, expected {records}"
    return doc


def append_n(svc, n, tag="rec", start=0, client=None, pad=0):
    """Appends n records {"method": "test", "tag", "n", "pad"} through one client; returns the
    answers (each one must be ok)."""
    c = client or svc.client()
    out = []
    for i in range(start, start + n):
        a = c.append({"method": "test", "tag": tag, "n": i, "pad": "x" * pad})
        assert a is not None and a.ok, f"record {i} not acknowledged: {a}"
        out.append(a)
    return out


def run_as_nobody(argv, **kw):
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
        "--clear-groups", "--"] + [str(a) for a in argv], capture_output=True, text=True,
        timeout=60, cwd="/", **kw)


_SEND_ONE = r"""
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
print(json.dumps({"pid": os.getpid(), "uid": os.getuid(), "answer": buf.decode()}))
"""


@pytest.fixture
def open_dir():
    """A directory directly in /tmp (0755) that another account can traverse, for a socket or
    a log directory (pytest's temporary directories are private to the account running the
    tests)."""
    d = Path(tempfile.mkdtemp(prefix="paraf-aud-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# --- daemon level: who wrote a record ----------------------------------------------------------

def test_R13_stored_uid_pid_are_the_peers_not_the_records_claims(auditd_factory, open_dir):
    """R13: a stored record's uid and pid come from SO_PEERCRED of the connection that sent it,
    never from the record. Records that claim uid 0 / pid 1 (and a whole forged envelope) are
    stored with the sender's real uid and pid, the claims kept inside "record" where they mean
    nothing; the answer `ok <seq> <hash>` names the stored line's seq and SHA-256. As root the
    sender is also `nobody` (setpriv), whose records carry uid 65534."""
    svc = auditd_factory(socket=open_dir / "audit.sock")
    claim = {"method": "sign", "uid": 0, "pid": 1, "owner": "root", "verdict": "allow"}
    forged = {"seq": 999, "time": "2000-01-01T00:00:00Z", "uid": 0, "pid": 1,
        "prev": AUDIT_ZERO_HASH, "record": {"method": "sign"}}
    c = svc.client()
    answers = [c.append(claim), c.append(forged)]
    for a in answers:
        assert a.ok, a
    # another process of ours: its own pid, not ours
    r = subprocess.run([sys.executable, "-c", _SEND_ONE, svc.socket, json.dumps(claim)],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    child = json.loads(r.stdout)
    answers.append(_answer_of(child))
    senders = [(os.getuid(), os.getpid()), (os.getuid(), os.getpid()),
        (os.getuid(), child["pid"])]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("setpriv (util-linux) is not installed")
        r = run_as_nobody([sys.executable, "-c", _SEND_ONE, svc.socket, json.dumps(claim)])
        assert r.returncode == 0, f"nobody could not reach paraf-auditd's socket: {r.stderr}"
        other = json.loads(r.stdout)
        assert other["uid"] == NOBODY
        answers.append(_answer_of(other))
        senders.append((NOBODY, other["pid"]))
    lines = [(f, n, line) for f, n, line, complete in svc.lines() if complete]
    recs = svc.records()
    assert len(recs) == len(senders), recs
    for (uid, pid), a, rec, (f, n, line) in zip(senders, answers, recs, lines):
        assert (rec["uid"], rec["pid"]) == (uid, pid), \
            f"record {rec['seq']} stored as uid {rec['uid']} pid {rec['pid']}, sent by " \
            f"uid {uid} pid {pid}: {rec}"
        assert a.seq == rec["seq"] and a.hash == audit_line_hash(line), (a, line)
    assert recs[0]["record"] == claim and recs[1]["record"] == forged, \
        "the record's own content must be stored as sent (claims and all)"
    assert recs[1]["seq"] == 2 and recs[1]["prev"] == audit_line_hash(lines[0][2])
    assert recs[0]["prev"] == AUDIT_ZERO_HASH and recs[0]["seq"] == 1


def _answer_of(child):
    from conftest import AuditAnswer
    return AuditAnswer(child["answer"].rstrip("\n").encode())


def test_R13_refuses_lines_that_are_not_records(auditd_factory):
    """R13 (the wire protocol of audit/aud.h): a line that is not JSON, JSON that is not an
    object, and a line over AUD_RECORD_MAX (64 KiB) are answered `error not-json` /
    `error too-large` and stored nowhere; the service goes on taking good records on the same
    connection, and the stored record is compacted (no whitespace outside strings)."""
    svc = auditd_factory()
    c = svc.client()
    a = c.append(b"this is not json")
    assert not a.ok and a.reason == "not-json", a
    for bad in (b"[1,2,3]", b'"a string"', b"42", b'{"a":1} {"b":2}', b'{"a":'):
        a = c.append(bad)
        assert a is not None and not a.ok and a.reason == "not-json", (bad, a)
    big = json.dumps({"method": "test", "pad": "x" * (64 * 1024)}).encode()
    c.send(big + b"\n")
    a = c.answer(timeout=20)
    if a is not None:  # the service may also close a connection that overran the limit
        assert not a.ok and a.reason == "too-large", a
    else:
        c = svc.client()
    a = c.append(b'{ "method" : "test",  "text": "a  b" }')
    assert a.ok, a
    (rec,) = svc.records()
    assert rec["record"] == {"method": "test", "text": "a  b"} and rec["seq"] == 1
    (_, _, line, _), = svc.lines()
    assert b'"record":{"method":"test","text":"a  b"}' in line, line


def test_R13_last_line_without_newline_is_a_record(auditd_factory):
    """audit/aud.h's protocol (doc/audit.md): a last line without its newline, sent before the
    client shuts down its sending side, is still a record, answered and stored."""
    svc = auditd_factory()
    c = svc.client()
    c.send(b'{"method":"test","n":1}\n{"method":"test","n":2}')
    c.sock.shutdown(socket.SHUT_WR)
    a1, a2 = c.answer(), c.answer()
    assert a1.ok and a2.ok and (a1.seq, a2.seq) == (1, 2), (a1, a2)
    assert c.answer() is None, "the connection stays open after the client's end"
    assert [r["record"]["n"] for r in svc.records()] == [1, 2]


def test_R13_socket_activation(auditd_factory, tmp_path_factory):
    """paraf-auditd takes its listening socket from systemd (sd_listen_fds), as the socket
    unit runs it: under `systemd-socket-activate -l PATH` it is started by the first
    connection and stores that client's records with the client's uid and pid."""
    from conftest import _short_dir
    if not shutil.which("systemd-socket-activate"):
        pytest.skip("systemd-socket-activate is not installed")
    sock = _short_dir(tmp_path_factory, "act") / "audit.sock"
    svc = auditd_factory(socket=sock, start=False,
        argv_prefix=["systemd-socket-activate", "-l", str(sock)])
    svc.start()  # its readiness probe is the first connection, which starts the service
    append_n(svc, 3)
    recs = svc.records()
    assert [(r["seq"], r["uid"], r["pid"]) for r in recs] == \
        [(i, os.getuid(), os.getpid()) for i in (1, 2, 3)], recs
    assert "the socket from systemd" in svc.stderr(), svc.stderr()


def test_R13_one_service_per_log(auditd_factory):
    """R13: one process appends to a log at a time (flock on the directory): a second
    paraf-auditd on the same directory refuses to start and says so; the first goes on."""
    svc = auditd_factory()
    append_n(svc, 2)
    second = auditd_factory(directory=svc.dir, start=False)
    second.start(wait=False)
    try:
        rc = second.proc.wait(20)
    except subprocess.TimeoutExpired:
        pytest.fail("a second paraf-auditd started on the same log directory")
    assert rc != 0 and "another process has the log" in second.stderr(), second.stderr()
    append_n(svc, 1, start=2)
    assert [r["seq"] for r in svc.records()] == [1, 2, 3]


# --- daemon level: who may write the files -----------------------------------------------------

def test_R13_log_writable_by_the_service_account_only(auditd_factory, paraf_bin,
        open_dir):
    """R13 ("only authorised persons may enter or change data"): the service makes its log
    directory 0700 and its files (records, checkpoint) 0600, owned by its own account, none of
    them writable by group or others. As root, `nobody` (setpriv), on the running service's
    own log (its parent directory made traversable), can neither append to a log file nor
    create, replace, rename or remove one, nor read or list the records; the service goes on
    and the log verifies. As an ordinary user the modes and owner are checked."""
    # the log's parent is traversable by everyone; the log directory is the service's
    svc = auditd_factory(directory=open_dir / "log",
        extra_args=["--checkpoint-records", "2"])
    append_n(svc, 5)
    d = svc.dir
    st = d.stat()
    assert st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o700, \
        f"log directory {d}: uid {st.st_uid} mode {stat.S_IMODE(st.st_mode):04o}"
    files = [p for p in d.iterdir()]
    assert svc.files() and (d / "checkpoint").exists(), files
    for p in files:
        st = p.lstat()
        assert stat.S_ISREG(st.st_mode), f"{p} is not a regular file"
        assert st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o600, \
            f"{p}: uid {st.st_uid} mode {stat.S_IMODE(st.st_mode):04o}"
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("setpriv (util-linux) is not installed: cannot act as another account")
        first = svc.files()[0].name
        script = (
            "import os, sys\n"
            "d = sys.argv[1]; f = os.path.join(d, sys.argv[2]); done = []\n"
            "def t(name, fn):\n"
            "    try:\n"
            "        fn(); done.append(name)\n"
            "    except OSError:\n"
            "        pass\n"
            "t('append', lambda: os.close(os.open(f, os.O_WRONLY | os.O_APPEND)))\n"
            "t('truncate', lambda: os.truncate(f, 0))\n"
            "t('read', lambda: open(f, 'rb').read())\n"
            "t('create', lambda: os.close(os.open(os.path.join(d, 'audit-209912-001.log'),"
            " os.O_WRONLY | os.O_CREAT, 0o666)))\n"
            "t('remove', lambda: os.unlink(f))\n"
            "t('rename', lambda: os.rename(os.path.join(d, 'checkpoint'),"
            " os.path.join(d, 'x')))\n"
            "t('list', lambda: os.listdir(d))\n"
            "t('replace-dir', lambda: os.rename(d, d + '.old'))\n"
            "print(','.join(done))\n")
        r = run_as_nobody([sys.executable, "-c", script, d, first])
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "", f"nobody could {r.stdout.strip()} in the audit log"
    append_n(svc, 1, start=5)
    svc.stop()
    assert_intact(paraf_bin, d, records=6)


def test_R13_service_refuses_a_log_others_can_write(auditd_factory):
    """R13: paraf-auditd will not append to a log whose directory or files another account
    could have written (it names the file); it starts once the modes are right again."""
    svc = auditd_factory()
    append_n(svc, 3)
    svc.stop()
    f = svc.files()[0]
    os.chmod(f, 0o666)
    svc.start(wait=False)
    try:
        svc.proc.wait(20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"paraf-auditd started on a world-writable log file {f}")
    assert svc.proc.returncode != 0
    assert f.name in svc.stderr(), f"the refusal does not name {f.name}:\n{svc.stderr()}"
    os.chmod(f, 0o600)
    svc.start()
    append_n(svc, 1, start=3)
    assert [r["seq"] for r in svc.records()] == [1, 2, 3, 4]


# --- parafd's records through the service ------------------------------------------------------

def test_R13_every_decision_stored_before_the_answer(ca, token, agent_factory, paraf_bin):
    """R13: parafd stores each decision's record with paraf-auditd before it answers: after a
    signature (allow, signed) and a refusal (deny), the log holds exactly those records, the
    same as parafd's own copy on stderr (same record_id), stored as sent by parafd's pid; the
    signed record names the document digests that were signed; the log verifies."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory()
    docs = make_docs(2)
    r = agent.call("sign", sign_params(ident, docs))
    assert "result" in r, r
    stored = agent.auditd.records()  # read at once: the record is there before the answer
    assert len(stored) == 1 and stored[0]["record"]["outcome"] == "signed", stored
    r2 = agent.call("sign", sign_params(ident, docs, usage="tls-server"))
    assert "error" in r2, r2
    stored = agent.auditd.records()
    copies = agent.audit()
    assert len(stored) == len(copies) == 2, (stored, copies)
    for s, c in zip(stored, copies):
        assert s["record"]["record_id"] == c["record_id"], (s, c)
        assert {k: v for k, v in s["record"].items() if k != "time"} == \
            {k: v for k, v in c.items() if k != "time"}, (s, c)
        assert s["uid"] == os.getuid() and s["pid"] == agent.pid, s
    a, d = stored[0]["record"], stored[1]["record"]
    assert (a["verdict"], a["outcome"], a["method"]) == ("allow", "signed", "sign"), a
    assert [x["digest"] for x in a["documents"]] == \
        [hashlib.sha256(b).hexdigest() for _, b in docs], a
    assert d["verdict"] == "deny" and d["rule"] == "R6", d
    assert len({x["record"]["record_id"] for x in stored}) == 2
    assert_intact(paraf_bin, agent.auditd.dir, records=2)


# --- paraf audit verify on tampered logs ---------------------------------------------------------

def _stopped_log(auditd_factory, n=30, checkpoint_records=5):
    """A log of n records made by the real service, the service stopped after."""
    svc = auditd_factory(extra_args=["--checkpoint-records", str(checkpoint_records)])
    append_n(svc, n, pad=40)
    svc.stop()
    svc.check = False  # the tests below damage it on purpose
    (f,) = svc.files()
    return svc, f


def _lines(f):
    return f.read_bytes().split(b"\n")[:-1]


def _write_lines(f, lines):
    f.write_bytes(b"".join(x + b"\n" for x in lines))


def _edit(f):
    lines = _lines(f)
    rec = json.loads(lines[9])
    old = json.dumps(rec["record"], separators=(",", ":")).encode()
    assert old in lines[9]
    lines[9] = lines[9].replace(b'"tag":"rec"', b'"tag":"REC"')
    assert lines[9] != _lines(f)[9]
    _write_lines(f, lines)
    return 10, 10  # line, seq of the record that was changed


def _remove(f):
    lines = _lines(f)
    del lines[9]
    _write_lines(f, lines)
    return 10, 10  # the line where seq 10 should be; seq 11 is there


def _reorder(f):
    lines = _lines(f)
    lines[9], lines[10] = lines[10], lines[9]
    _write_lines(f, lines)
    return 10, 10


def _insert(f):
    lines = _lines(f)
    # a forged record that links to line 10 correctly and claims seq 11: the real seq 11
    # follows it
    forged = json.loads(lines[9])
    forged["seq"] = 11
    forged["prev"] = audit_line_hash(lines[9])
    forged["record"] = {"method": "sign", "verdict": "allow", "outcome": "signed",
        "note": "forged"}
    lines.insert(10, json.dumps(forged, separators=(",", ":")).encode())
    _write_lines(f, lines)
    return 11, 11  # the forged record: the real seq 11 after it links to seq 10, not to it


def _duplicate(f):
    lines = _lines(f)
    lines.insert(10, lines[9])
    _write_lines(f, lines)
    return (10, 11), 10  # two identical lines: either may be named


def _truncate(f):
    lines = _lines(f)
    _write_lines(f, lines[:20])
    return 21, 21  # where seq 21 should be, which the checkpoint counts


def _truncate_mid_line(f):
    data = f.read_bytes()
    lines = _lines(f)
    keep = sum(len(x) + 1 for x in lines[:20]) + len(lines[20]) // 2
    f.write_bytes(data[:keep])
    return 21, 21


TAMPER = {
    "edited": (_edit, "edited"),
    "removed": (_remove, "removed"),
    "reordered": (_reorder, "reordered"),
    "inserted": (_insert, "inserted"),
    "inserted-duplicate": (_duplicate, "inserted"),
    "truncated": (_truncate, "truncated"),
    "truncated-mid-line": (_truncate_mid_line, "truncated"),
}


@pytest.mark.parametrize("case", list(TAMPER))
def test_R13_verify_detects_tampering(case, auditd_factory, paraf_bin):
    """R13 ("any change is detectable"): on a log of 30 records made by the real paraf-auditd
    (checkpoints every 5), `paraf audit verify` passes; after one change by hand it fails
    (exit 1) and names the fault (edited, removed, reordered, inserted, truncated) and where:
    the file and the line of the first bad record, and its seq. A log truncated at a record
    boundary is caught by the checkpoint (no link is broken); one cut mid-line too. The text
    form says NOT INTACT with file:line. The service itself then refuses to append to it."""
    svc, f = _stopped_log(auditd_factory)
    assert_intact(paraf_bin, svc.dir, records=30)
    cp = svc.checkpoint()
    assert cp and cp["count"] >= 25, f"no recent checkpoint: {cp}"
    fn, fault = TAMPER[case]
    line, seq = fn(f)
    r, doc = verify(paraf_bin, svc.dir)
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert doc["intact"] is False and doc["fault"] == fault, \
        f"{case}: expected fault {fault!r}, got {doc}"
    lines = line if isinstance(line, tuple) else (line,)
    assert doc["file"] == f.name and doc["line"] in lines and doc["seq"] == seq, \
        f"{case}: expected {f.name}:{line} seq {seq}, got {doc}"
    assert doc["detail"], doc
    t, _ = verify(paraf_bin, svc.dir, json_out=False)
    assert t.returncode == 1 and "NOT INTACT" in t.stdout and fault in t.stdout, t.stdout
    assert f"{f.name}:{doc['line']}: seq {seq}: {fault}" in t.stdout, t.stdout
    # The service checks the log's tail against its checkpoint when it starts: a change
    # there (records removed, inserted or cut away) stops it; a change further back does not
    # (it does not read the whole log), but appending after it never hides it.
    svc.start(wait=False)
    deadline = time.monotonic() + 20
    while svc.proc.poll() is None and time.monotonic() < deadline:
        try:
            socket.socket(socket.AF_UNIX).connect(svc.socket)
            break
        except OSError:
            time.sleep(0.02)
    if case in ("removed", "inserted", "inserted-duplicate", "truncated",
            "truncated-mid-line"):
        try:
            svc.proc.wait(20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"paraf-auditd started on a log whose checkpointed tail was changed "
                f"({case})")
        assert svc.proc.returncode != 0, svc.stderr()
        assert "damaged" in svc.stderr() or "checkpoint" in svc.stderr(), svc.stderr()
    elif svc.proc.poll() is None:
        append_n(svc, 5, tag="later", start=100)
        svc.stop()
        r, after = verify(paraf_bin, svc.dir)
        assert r.returncode == 1 and (after["fault"], after["file"], after["line"]) == \
            (doc["fault"], doc["file"], doc["line"]), f"appending hid the fault: {after}"


def test_R13_verify_names_a_malformed_line(auditd_factory, paraf_bin):
    """R13: a line that is not a stored record (spaces added to the envelope) is malformed,
    named by file and line."""
    svc, f = _stopped_log(auditd_factory, n=10)
    lines = _lines(f)
    lines[4] = lines[4].replace(b'{"seq":5,', b'{ "seq": 5, ', 1)
    _write_lines(f, lines)
    r, doc = verify(paraf_bin, svc.dir)
    assert r.returncode == 1 and doc["fault"] in ("malformed", "edited"), doc
    assert (doc["file"], doc["line"]) == (f.name, 5), doc


def test_R13_verify_empty_and_missing_log(auditd_factory, paraf_bin, tmp_path):
    """`paraf audit verify` on a fresh log (no record yet) passes with 0 records; on a
    directory that does not exist it exits 5 (cannot read), not 0."""
    svc = auditd_factory()
    svc.stop()
    assert_intact(paraf_bin, svc.dir, records=0)
    r, _ = verify(paraf_bin, tmp_path / "no-such-dir")
    assert r.returncode == 5, (r.returncode, r.stdout, r.stderr)


# --- rotation ------------------------------------------------------------------------------------

def test_R13_rotation_by_size_keeps_the_chain(auditd_factory, paraf_bin):
    """R13: with --file-max 4096 the service starts a new audit-YYYYMM-NNN.log whenever the
    next record would pass the size; each new file's first record links to the previous
    file's last record (prev), seq runs on across files, no file exceeds the limit, and
    `paraf audit verify` passes over all of them. A restart continues the newest file."""
    svc = auditd_factory(extra_args=["--file-max", "4096", "--checkpoint-records", "7"])
    append_n(svc, 40, pad=200)
    svc.restart()
    append_n(svc, 20, start=40, pad=200)
    svc.stop()
    files = svc.files()
    assert len(files) >= 5, [f.name for f in files]
    month = time.strftime("%Y%m", time.gmtime())
    for i, f in enumerate(files):
        m = FILE_RE.match(f.name)
        assert m and m.group(1) == month and int(m.group(2)) == i + 1, [x.name for x in files]
        assert f.stat().st_size <= 4096, f"{f.name} is {f.stat().st_size} bytes"
    assert check_chain(svc.dir) == []
    prev_last = None
    for f in files:
        lines = _lines(f)
        if prev_last is not None:
            assert json.loads(lines[0])["prev"] == audit_line_hash(prev_last), f.name
        prev_last = lines[-1]
    assert_intact(paraf_bin, svc.dir, records=60)
    assert [r["seq"] for r in svc.records()] == list(range(1, 61))


@pytest.mark.parametrize("how", ["prev-rewritten", "file-removed", "file-swapped"])
def test_R13_verify_reports_a_broken_join(how, auditd_factory, paraf_bin, tmp_path):
    """R13: a rotated file that does not start from the previous file's head is reported:
    the first record of the third file re-linked to another hash (broken-join at its line 1),
    a whole middle file removed, or the third file replaced by the third file of another log
    (not intact, naming that file)."""
    svc = auditd_factory(extra_args=["--file-max", "4096"])
    append_n(svc, 40, pad=200)
    svc.stop()
    svc.check = False
    files = svc.files()
    assert len(files) >= 4, [f.name for f in files]
    third = files[2]
    if how == "prev-rewritten":
        lines = _lines(third)
        rec = json.loads(lines[0])
        lines[0] = lines[0].replace(rec["prev"].encode(), b"f" * 64)
        _write_lines(third, lines)
        expect_fault, expect_file, expect_line = "broken-join", third.name, 1
    elif how == "file-removed":
        files[1].unlink()
        expect_fault, expect_file, expect_line = "removed", third.name, 1
    else:
        other = auditd_factory(extra_args=["--file-max", "4096"])
        append_n(other, 40, tag="oth", pad=200)  # same sizes, other content
        other.stop()
        shutil.copyfile(other.files()[2], third)
        expect_fault, expect_file, expect_line = None, third.name, 1
    r, doc = verify(paraf_bin, svc.dir)
    assert r.returncode == 1 and doc["intact"] is False, (r.stdout, r.stderr)
    assert doc["fault"] in FAULTS, doc
    if expect_fault:
        assert doc["fault"] == expect_fault, doc
    assert (doc["file"], doc["line"]) == (expect_file, expect_line), doc


# --- crashes -------------------------------------------------------------------------------------

CRASH_ROUNDS = int(os.environ.get("PARAF_CRASH_ROUNDS", "50"))
CRASH_APPENDS = 2000
CRASH_CLIENTS = 4


class _Appender(threading.Thread):
    """One client of the crash test: appends records {"method":"crash-test","round","client",
    "n"} one at a time while there are numbers left, and keeps every acknowledgement (seq,
    hash, n) it received; stops at the first broken connection."""

    def __init__(self, path, rnd, idx, take):
        super().__init__(daemon=True)
        self.path, self.rnd, self.idx, self.take = path, rnd, idx, take
        self.acked = []
        self.errors = []

    def run(self):
        try:
            c = AuditClient(self.path, timeout=10)
        except OSError:
            return
        try:
            while True:
                n = self.take()
                if n is None:
                    return
                rec = {"method": "crash-test", "round": self.rnd, "client": self.idx, "n": n,
                    "pad": "p" * (n % 97)}
                try:
                    a = c.append(rec)
                except (OSError, TimeoutError):
                    return
                if a is None:
                    return
                if a.ok:
                    self.acked.append((a.seq, a.hash, n))
                else:
                    self.errors.append(a.reason)
                    return
        finally:
            c.close()


def _run_round(svc, rnd, kill_after):
    """CRASH_CLIENTS concurrent appenders share CRASH_APPENDS record numbers; paraf-auditd gets
    SIGKILL after kill_after seconds (None: no kill). Returns (acked, errors, seconds,
    killed)."""
    lock = threading.Lock()
    counter = [0]

    def take():
        with lock:
            if counter[0] >= CRASH_APPENDS:
                return None
            counter[0] += 1
            return counter[0] - 1
    threads = [_Appender(svc.socket, rnd, i, take) for i in range(CRASH_CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    killed = False
    if kill_after is not None:
        deadline = t0 + kill_after
        while time.monotonic() < deadline and any(t.is_alive() for t in threads):
            time.sleep(min(0.002, max(0, deadline - time.monotonic())))
        if any(t.is_alive() for t in threads):
            svc.kill()
            killed = True
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "an appender hung after the service was killed"
    took = time.monotonic() - t0
    acked = [a for t in threads for a in t.acked]
    errors = [e for t in threads for e in t.errors]
    return acked, errors, took, killed


def _read_from(svc, cursor):
    """The complete lines after cursor (file name, byte offset), and the new cursor: {seq:
    (hash, parsed)}."""
    out = {}
    name, off = cursor
    for f in svc.files():
        if name and f.name < name:
            continue
        data = f.read_bytes()
        start = off if f.name == name else 0
        pos = start
        while True:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break
            line = data[pos:nl]
            rec = json.loads(line)
            out[rec["seq"]] = (audit_line_hash(line), rec)
            pos = nl + 1
        cursor = (f.name, pos)
    return out, cursor


def test_R13_kill9_during_appends_loses_no_acknowledged_record(auditd_factory, paraf_bin):
    """R13 (crash safety), the service's promise of audit/aud.h ("ok" only once the record is
    on disk): 4 clients append up to 2,000 records concurrently while paraf-auditd is killed
    with SIGKILL at a random instant; this is repeated 50 times on the same log (seed printed;
    PARAF_CRASH_SEED repeats a run). After every restart: every (seq, hash) a client was
    answered `ok` for is in the log, holding that client's record; no record is stored twice;
    a torn final line, if the kill left one, is cut and recorded by exactly one repair record
    (none otherwise); `paraf audit verify` passes. A first round without a kill measures how
    long 2,000 appends take, so the kills fall inside the appends. Files of 256 KiB and a
    checkpoint every 50 records put rotations and checkpoint writes among the kill points."""
    seed = int(os.environ.get("PARAF_CRASH_SEED", str(random.randrange(1 << 30))))
    print(f"crash test seed {seed} (PARAF_CRASH_SEED={seed} repeats it)")
    rng = random.Random(seed)
    # small files and frequent checkpoints, so that kills also land in rotations and
    # checkpoint writes
    svc = auditd_factory(extra_args=["--checkpoint-records", "50", "--file-max", "262144"])
    every_ack = {}
    seen_keys = set()
    cursor = (None, 0)
    stats = {"kills": 0, "acked": 0, "torn": 0, "repairs": 0, "restart_s": 0.0,
        "verify_s": 0.0}
    acked, errors, full, _ = _run_round(svc, 0, None)
    assert not errors and len(acked) == CRASH_APPENDS, (errors, len(acked))
    t_start = time.monotonic()
    for rnd in range(0, CRASH_ROUNDS + 1):
        if rnd > 0:
            # a kill within the appends, and at most 0.8 s in: bounded on a slow machine
            acked, errors, took, killed = _run_round(svc, rnd, rng.uniform(0, min(full, 0.8)))
            assert not errors, f"round {rnd}: the service answered errors {set(errors)}"
            stats["kills"] += killed
            if not killed:
                svc.kill()  # the appends finished first: a kill at the end, all the same
                stats["kills"] += 1
            tail = svc.lines()[-1:] if svc.files() else []
            torn = bool(tail) and not tail[0][3]
            stats["torn"] += torn
            t = time.monotonic()
            svc.start()
            stats["restart_s"] += time.monotonic() - t
        new, cursor = _read_from(svc, cursor)
        repairs = [s for s, (h, r) in new.items() if r["record"].get("event") == "repair"]
        stats["repairs"] += len(repairs)
        if rnd > 0:
            assert len(repairs) == (1 if torn else 0), \
                f"round {rnd}: torn tail {torn}, repair records {repairs}"
            for s in repairs:
                r = new[s][1]
                assert r["record"]["reason"] == "torn-final-line" and r["uid"] == os.geteuid()
        for seq, h, n in acked:
            assert seq in new, f"round {rnd}: acknowledged seq {seq} (n {n}) is not in the log"
            assert new[seq][0] == h, f"round {rnd}: seq {seq} in the log is not the one acked"
            rec = new[seq][1]["record"]
            assert (rec.get("round"), rec.get("n")) == (rnd, n), rec
            every_ack[seq] = h
        for s, (h, r) in new.items():
            rec = r["record"]
            if rec.get("method") == "crash-test":
                key = (rec["round"], rec["n"])
                assert key not in seen_keys, f"record {key} stored twice (seq {s})"
                seen_keys.add(key)
        stats["acked"] += len(acked)
        t = time.monotonic()
        assert_intact(paraf_bin, svc.dir)
        stats["verify_s"] += time.monotonic() - t
    # the whole log once more, from the start: nothing acknowledged went missing meanwhile
    everything, _ = _read_from(svc, (None, 0))
    missing = [s for s, h in every_ack.items() if everything.get(s, (None,))[0] != h]
    assert not missing, f"acknowledged records lost later: seqs {missing[:20]}"
    assert check_chain(svc.dir) == []
    assert stats["kills"] >= CRASH_ROUNDS
    print(f"crash test: {CRASH_ROUNDS} rounds in {time.monotonic() - t_start:.1f} s, first "
        f"round (2,000 appends, no kill) {full:.2f} s; {stats}; {len(everything)} records in "
        f"{len(svc.files())} files")
    svc.stop()


def test_R13_torn_final_line_repaired_and_recorded(auditd_factory, paraf_bin):
    """R13: a log whose last line was cut mid-write (what a crash during a write leaves) is
    repaired when the service opens it: the torn bytes are cut away, a repair record
    {"event":"repair","reason":"torn-final-line",...} with their offset, length, SHA-256 and
    bytes is appended, stored with the service's own uid and pid, the next record follows it,
    and the log verifies. Every complete record before it is kept."""
    svc = auditd_factory()
    append_n(svc, 10, pad=30)
    svc.stop()
    (f,) = svc.files()
    good = f.read_bytes()
    torn = b'{"seq":11,"time":"2026-01-01T00:00:00Z","uid":0,"pid":1,"prev":"' + b"a" * 20
    with open(f, "ab") as fh:
        fh.write(torn)
    r, doc = verify(paraf_bin, svc.dir)
    assert r.returncode != 0, "a torn final line must not verify as intact"
    svc.start()
    append_n(svc, 1, tag="after", start=100)
    svc.stop()
    data = f.read_bytes()
    assert data.startswith(good), "the complete records before the torn line were changed"
    recs = svc.records()
    assert [r["seq"] for r in recs] == list(range(1, 13))
    rep = recs[10]
    assert rep["record"]["event"] == "repair" and rep["record"]["reason"] == "torn-final-line"
    assert rep["record"]["bytes"] == len(torn) and rep["record"]["offset"] == len(good)
    assert rep["record"]["sha256"] == hashlib.sha256(torn).hexdigest()
    assert bytes.fromhex(rep["record"]["data"]) == torn
    assert rep["uid"] == os.geteuid() and rep["pid"] == svc.pid
    assert recs[11]["record"]["tag"] == "after"
    assert_intact(paraf_bin, svc.dir, records=12)


# --- parafd: fail closed, full disk, spool, journal ----------------------------------------------

def _sign(agent, ident, docs):
    return agent.call("sign", sign_params(ident, docs), timeout=60)


def _stored_signed_digests(records):
    """{document digest hex: record} of the stored sign records with outcome signed."""
    out = {}
    for r in records:
        rec = r["record"] if "record" in r else r
        if rec.get("method") == "sign" and rec.get("outcome") == "signed":
            for d in rec.get("documents") or []:
                out[d["digest"]] = rec
    return out


def test_R13_service_stopped_refuses_signing(ca, token, agent_factory, paraf_bin):
    """R13 (fail closed, `audit = required`, the default): with paraf-auditd stopped, a sign
    request is refused with `audit-unavailable` (rule R13) and a message naming the audit
    service, no signature is in the answer, and no PIN is asked for a signature that could not
    be released; parafd's own copy of the record says so. Once the service runs again, the
    next request signs, and only the released signatures have records."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory()
    assert "result" in _sign(agent, ident, make_docs(1, "before"))
    agent.auditd.stop()
    dialogs = len(agent.pinentry.dialogs())
    refused_docs = make_docs(1, "while-down")
    r = _sign(agent, ident, refused_docs)
    assert_error(r, "audit-unavailable", rule="R13")
    assert "result" not in r
    msg = r["error"]["message"]
    assert "audit" in msg and agent.auditd.socket in msg, msg
    assert len(agent.pinentry.dialogs()) == dialogs, \
        "the PIN was asked for a signature that could not be released (service down)"
    agent.auditd.start()
    after = make_docs(1, "after")
    assert "result" in _sign(agent, ident, after)
    stored = _stored_signed_digests(agent.auditd.records())
    assert hashlib.sha256(refused_docs[0][1]).hexdigest() not in stored
    assert hashlib.sha256(after[0][1]).hexdigest() in stored
    assert_intact(paraf_bin, agent.auditd.dir)


def test_R13_no_service_at_start_refuses_signing(ca, token, agent_factory, run_paraf,
        tmp_path):
    """R13: parafd started while no paraf-auditd listens (audit = required) starts, says on
    stderr that signing is refused until the service is reachable, and refuses every sign
    request with `audit-unavailable` before any PIN dialog; `paraf sign` reports the refusal
    with a clear message and a non-zero exit, and writes no signature file."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory(auditd=False)
    assert "not reachable" in agent.stderr() and agent.auditd.socket in agent.stderr(), \
        agent.stderr()
    r = _sign(agent, ident, make_docs(2))
    assert_error(r, "audit-unavailable", rule="R13")
    assert agent.pinentry.dialogs() == []
    doc = tmp_path / "surat.txt"
    doc.write_text("Nomor: 001/DISKOMINFO/XI/2026\n")
    p = run_paraf(agent, "sign", "--cert", ident.cert_id, str(doc))
    assert p.returncode != 0, p
    assert "audit" in p.stderr.lower(), p.stderr
    assert not [x for x in tmp_path.iterdir() if x.name.startswith("surat.txt.")], \
        list(tmp_path.iterdir())
    assert not agent.auditd.dir.exists() or agent.auditd.records() == []


def _tmpfs_auditd(auditd_factory, size="64k"):
    """A paraf-auditd in a private mount namespace whose log directory lies on a tmpfs of
    `size` (root only). Its files are read through /proc/PID/root. Returns (svc, view)."""
    if os.geteuid() != 0:
        pytest.skip("a full file system needs a tmpfs mount, which needs root")
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is not installed")
    base = Path(tempfile.mkdtemp(prefix="paraf-full-", dir="/tmp"))
    mnt = base / "mnt"
    mnt.mkdir()
    prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c",
        f'mount -t tmpfs -o size={size},mode=0755 paraf-audit-test "$0" && exec "$@"', str(mnt)]
    svc = auditd_factory(directory=mnt / "log", argv_prefix=prefix, start=False)
    svc.start()
    view = Path(f"/proc/{svc.pid}/root") / str(mnt / "log").lstrip("/")
    return svc, view, base


def test_R13_full_filesystem_refuses_signing(ca, token, agent_factory, auditd_factory,
        paraf_bin):
    """R13 on a full disk (root: the log on a 64 KiB tmpfs in a private mount namespace): the
    service answers `error disk-full` and stores nothing; parafd refuses to sign with
    `audit-unavailable` (rule R13) and a message naming the audit service; every signature a
    client was given has its record in the log (none is released without one); the refused
    request's copy on stderr says outcome audit-unavailable; nothing half-written is left
    (the log verifies), and once space is freed signing works again."""
    svc, view, base = _tmpfs_auditd(auditd_factory)
    try:
        ident = token.enroll(ca, kind="ec")
        agent = agent_factory(auditd=svc)
        assert "result" in _sign(agent, ident, make_docs(1, "first"))
        # fill the file system, then give back a few pages
        filler = view.parent / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096) == 4096:
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        os.truncate(filler, max(0, filler.stat().st_size - 3 * 4096))
        given, refused = [], []
        for i in range(60):
            docs = make_docs(3, f"full{i}")
            r = _sign(agent, ident, docs)
            if "result" in r:
                assert r["result"]["signatures"], r
                given += docs
            else:
                assert_error(r, "audit-unavailable", rule="R13")
                assert "audit" in r["error"]["message"], r
                refused += docs
                if len(refused) >= 6:
                    break
        print(f"full file system: {len(given)} documents signed and released, "
            f"{len(refused)} refused")
        assert refused, "the log's file system filled up and signing still went on"
        with svc.client() as c:
            a = c.append({"method": "test", "pad": "x" * 8000})
            assert a is not None and not a.ok and a.reason == "disk-full", a
        lines = [json.loads(line) for f, n, line, complete in audit_log_lines(view) if complete]
        stored = _stored_signed_digests(lines)
        for name, body in given:
            assert hashlib.sha256(body).hexdigest() in stored, \
                f"a signature for {name} was released without its record in the log"
        for name, body in refused:
            assert hashlib.sha256(body).hexdigest() not in stored, name
        copies = [c for c in agent.audit() if c.get("outcome") == "audit-unavailable"]
        assert copies, "parafd's copy of a refused record does not say audit-unavailable"
        assert check_chain(view) == []
        r, doc = verify(paraf_bin, view)
        assert r.returncode == 0 and doc["intact"], (r.stdout, r.stderr)
        os.unlink(filler)
        assert "result" in _sign(agent, ident, make_docs(1, "space-again"))
        assert check_chain(view) == []
        agent.stop()
        svc.stop()
        svc.check = False  # the tmpfs is gone with the service's namespace
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _spool(agent):
    return Path(agent.env["XDG_STATE_HOME"]) / "paraf" / "audit-spool"


def _spooled_records(agent):
    p = _spool(agent)
    if not p.exists():
        return []
    head = p.read_bytes().split(b"\n", 1)[0]
    m = re.match(rb"^paraf-audit-spool 1 sent=(\d+)$", head)
    assert m, f"not a spool header: {head!r}"
    sent = int(m.group(1))
    data = p.read_bytes()[sent:]
    return [json.loads(x) for x in data.split(b"\n") if x.strip()]


def test_R13_spool_keeps_records_and_forwards_them_once(ca, token, agent_factory, paraf_bin):
    """R13 with `audit = spool`: while paraf-auditd is down, parafd signs and keeps each
    decision's record in its spool ($XDG_STATE_HOME/paraf/audit-spool, 0600); once the service
    is back the spooled records reach the log in order, ahead of newer ones, each exactly once
    (count and record_id uniqueness), and the spool is empty; the log verifies."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory(auditd=False, audit="spool")
    docs = [make_docs(1, f"spool{i}") for i in range(5)]
    for d in docs:
        r = _sign(agent, ident, d)
        assert "result" in r, r
    spooled = _spooled_records(agent)
    assert len(spooled) == 5, spooled
    assert stat.S_IMODE(_spool(agent).stat().st_mode) == 0o600
    ids = [r["record_id"] for r in spooled]
    assert ids == [c["record_id"] for c in agent.audit()], "spool and stderr copies differ"
    agent.auditd.start()
    later = make_docs(1, "later")
    assert "result" in _sign(agent, ident, later)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        stored = [r["record"] for r in agent.auditd.records()]
        if len(stored) >= 6:
            break
        time.sleep(0.1)
    stored = [r["record"] for r in agent.auditd.records()]
    stored_ids = [r["record_id"] for r in stored]
    assert len(stored_ids) == len(set(stored_ids)) == 6, stored_ids
    assert stored_ids[:5] == ids, "the spooled records were not forwarded first, in order"
    assert stored[5]["documents"][0]["digest"] == hashlib.sha256(later[0][1]).hexdigest()
    assert _spooled_records(agent) == []
    assert_intact(paraf_bin, agent.auditd.dir, records=6)


def test_R13_spool_forwarded_when_service_returns_without_new_requests(ca, token,
        agent_factory, paraf_bin):
    """R13 with `audit = spool`: records spooled while the service was down reach it after
    it is back without any new request (parafd offers the spool again by itself), once."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory(auditd=False, audit="spool")
    for i in range(3):
        assert "result" in _sign(agent, ident, make_docs(1, f"s{i}"))
    agent.auditd.start()
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and len(agent.auditd.records()) < 3:
        time.sleep(0.2)
    time.sleep(0.3)  # anything sent twice would be here by now
    ids = [r["record"]["record_id"] for r in agent.auditd.records()]
    assert len(ids) == 3 == len(set(ids)), ids
    assert ids == [c["record_id"] for c in agent.audit()]
    assert _spooled_records(agent) == []
    assert_intact(paraf_bin, agent.auditd.dir, records=3)


def test_R13_journal_mode_signs_without_service(ca, token, agent_factory):
    """`audit = journal` (development, tests): parafd signs with no audit service, warns on
    stderr that records are not tamper-evident (R13), keeps its copy on stderr, and never
    creates the log."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory(auditd=False, audit="journal")
    assert "audit = journal" in agent.stderr(), agent.stderr()
    r = _sign(agent, ident, make_docs(1))
    assert "result" in r, r
    (rec,) = agent.audit()
    assert rec["outcome"] == "signed" and rec["record_id"]
    assert not agent.auditd.dir.exists()
    assert not _spool(agent).exists()
