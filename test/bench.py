#!/usr/bin/python3
"""
paraf benchmark (`make bench`): parafd against direct PKCS#11 and against ssh-agent, its memory
and its start-up, in one run, on a private SoftHSM token. Results: doc/performance.md.

    PARAF_BUILD=/abs/build /usr/bin/python3 test/bench.py [-n 1000] [--only overhead,ssh,...]

1. Agent overhead (`overhead`), per key, ECDSA P-256 and RSA-2048:
  - direct:  C_Sign with PyKCS11 in this process, one login, N signatures over digests
             (CKM_ECDSA; CKM_RSA_PKCS over a DigestInfo): what the token itself allows;
  - batch:   N digests through parafd's `sign` under one PIN per request (at most
             AG_DOCUMENTS_MAX, 1,000, a request: N = 1,000 is one request, one PIN), format
             raw and format cms; the request line is encoded before the clock starts and the
             clock stops when the whole answer line is in (parsed and checked after);
  - single:  N requests of one document each, one after another on one connection (raw).
  Each row: signatures per second, the ratio to direct (goal for the batch: >= 0.9), and the
  CPU time per signature of parafd + its token helper (of this process for direct), which
  concurrent work on the machine does not inflate as it does the wall clock.
  `dialog`: requests of one document with an individual certificate, whose PIN the trusted
  PIN dialog gives (the scripted test/fake-pinentry: what parafd itself adds per signing act,
  without a person typing); at most --dialog-n requests.
2. Against the peer (`ssh`): ssh-agent (OpenSSH, `ssh-add -s` of the same SoftHSM module, the
  PIN given by an SSH_ASKPASS script) holding the same token keys, N signatures through its
  socket with a minimal client of the ssh-agent protocol (one SIGN_REQUEST per signature: it
  has no batch; RSA with SSH_AGENT_RSA_SHA2_256), against parafd's batch (raw) of N digests,
  and parafd's single requests.
3. Memory (`memory`): parafd's VmRSS idle, after the signing measurements, with --clients
  (256) idle connections, and after they closed.
4. Start-up (`startup`): `systemd-socket-activate -l SOCKET parafd ...` holds the socket; the
  time from connect() to the answer of the first agent.status (parafd started by the
  connection, the token helper started and the token enumerated), median of --startup-runs,
  against fork+exec of /bin/true.

The signing paths use electronic-system certificates (type `system` in the policy's owners
registry), the one type whose PIN the policy lets a request carry (`[pin] parameter_types`,
rule R2): that measures parafd and the token, not a dialog. parafd runs with a private policy
directory (`--policy`: the benchmark CA as anchor with a current CRL, the certificates
registered to the account running the benchmark; as root `root_may_own = yes`) and a private
paraf-auditd (`audit = required`, the default: every decision's record is stored, with
fdatasync, before the answer).

PDF signing with the `paraf` CLI (`paraf sign-pdf`, test/pdfgen.py's PDFs, an individual
ECDSA certificate whose PIN the fake PIN dialog gives):
  - size:    `paraf sign-pdf` of 1 MB, 10 MB and 100 MB PDFs (pages of incompressible
             images), each as a ratio to `sha256sum` of the same file in the same run (the
             file is read once before, so both find it in the page cache); the time of a
             one-page PDF is shown too: what every signing costs whatever the size (process
             start, the PIN dialog, the agent, the token);
  - batch:   100 one-page PDFs in one `paraf sign-pdf A.pdf B.pdf ...` under one PIN dialog,
             against 100 separate calls' estimate (100 x the one-page time).
--pdf-sizes and --pdf-batch change them (an empty list / 0 skips); --pdf-only (or --only pdf)
runs only these.

It prints numbers and ratios and asserts nothing about time. Everything lives in a temporary
directory that is removed at the end; parafd is stopped.
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pdfgen  # noqa: E402
import pki  # noqa: E402
from conftest import Agent, AuditService, Client, FakePinentry, make_policy  # noqa: E402

import PyKCS11  # noqa: E402

AG_DOCUMENTS_MAX = 1000
SECTIONS = ("overhead", "dialog", "ssh", "memory", "startup", "pdf")
# DER DigestInfo prefix for SHA-256 (RFC 8017 9.2 note 1)
SHA256_DIGESTINFO = bytes.fromhex("3031300d060960864801650304020105000420")


def digests(n, tag):
    return [hashlib.sha256(f"{tag} dokumen {i}".encode()).digest() for i in range(n)]


def cpu_ns(pids):
    """Time on a CPU so far of these processes, ns (/proc/PID/schedstat): a measure that other
    work on the machine does not stretch as it does the wall clock."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


class Cpu:
    """CPU time of parafd and its token helper (or of this process, pids=None) over a block."""

    def __init__(self, pids=None):
        self.pids = pids

    def now(self):
        return time.process_time_ns() if self.pids is None else cpu_ns(self.pids)

    def __enter__(self):
        self.t0 = self.now()
        return self

    def __exit__(self, *exc):
        self.ns = self.now() - self.t0


def direct(ident, n, cpu=None):
    """N signatures with C_Sign over digests, one login; returns seconds (and the CPU time of
    the signing loop in cpu, a Cpu(), when given)."""
    P = PyKCS11
    ds = digests(n, "direct")
    with ident.token.session() as s:
        (key,) = s.findObjects([(P.CKA_CLASS, P.CKO_PRIVATE_KEY), (P.CKA_ID, ident.key_id)])
        if ident.kind == "ec":
            mech = P.Mechanism(P.CKM_ECDSA, None)
            data = ds
        else:
            mech = P.Mechanism(P.CKM_RSA_PKCS, None)
            data = [SHA256_DIGESTINFO + d for d in ds]
        for d in data[:10]:
            s.sign(key, d, mech)  # warm up
        with cpu or Cpu():
            t0 = time.perf_counter()
            for d in data:
                s.sign(key, d, mech)
            return time.perf_counter() - t0


def params(ident, ds, fmt, tag, pin=True):
    p = {"certificate": ident.cert_id, "usage": "signature", "format": fmt,
        "digest_algorithm": "sha256",
        "documents": [{"name": f"{tag}-{i:04d}.pdf", "digest": base64.b64encode(d).decode()}
            for i, d in enumerate(ds)]}
    if pin:
        p["pin"] = ident.pin  # a system certificate's PIN may come in the request (R2)
    return p


def check(resp, count):
    if "result" not in resp:
        raise SystemExit(f"bench: parafd refused: {resp}")
    got = len(resp["result"]["signatures"])
    if got != count:
        raise SystemExit(f"bench: {got} signatures for {count} documents")


def batch(client, ident, n, fmt, cpu=None):
    """N digests in requests of at most AG_DOCUMENTS_MAX; returns (seconds, requests). The
    request lines are encoded before the clock starts (direct's inputs are prepared before its
    clock too) and the clock stops when the whole answer line has arrived: the client's JSON
    parsing is its own speed, not parafd's; every answer is then parsed and checked."""
    ds = digests(n, f"batch-{fmt}")
    chunks = [ds[i:i + AG_DOCUMENTS_MAX] for i in range(0, n, AG_DOCUMENTS_MAX)]
    lines = [client.encode("sign", params(ident, c, fmt, f"b{k}"), 100 + k)
        for k, c in enumerate(chunks)]
    check(client.call("sign", params(ident, ds[:2], fmt, "warm")), 2)
    answers = []
    with cpu or Cpu():
        t0 = time.perf_counter()
        for line in lines:
            client.send(line)
            answers.append(client.recv_line(timeout=600))
        t = time.perf_counter() - t0
    for a, c in zip(answers, chunks):
        check(json.loads(a), len(c))
    return t, len(chunks)


def single(client, ident, n, cpu=None):
    ds = digests(n, "single")
    reqs = [params(ident, [d], "raw", "s") for d in ds]
    check(client.call("sign", reqs[0]), 1)
    with cpu or Cpu():
        t0 = time.perf_counter()
        for r in reqs:
            check(client.call("sign", r), 1)
        return time.perf_counter() - t0


def dialog(client, ident, n):
    """n requests of one document each whose PIN the (fake) PIN dialog gives."""
    ds = digests(n, "dialog")
    reqs = [params(ident, [d], "raw", "d", pin=False) for d in ds]
    check(client.call("sign", reqs[0]), 1)
    t0 = time.perf_counter()
    for r in reqs:
        check(client.call("sign", r), 1)
    return time.perf_counter() - t0


class PdfSigner:
    """Runs `paraf --socket S sign-pdf ...` as a desk application would: no terminal, the PIN
    typed in parafd's (fake) dialog."""

    def __init__(self, paraf, agent, ident):
        self.paraf, self.agent, self.ident = paraf, agent, ident

    def sign(self, *args):
        argv = [str(self.paraf), "--socket", self.agent.socket, "sign-pdf", "--force",
            "--cert", self.ident.cert_id] + [str(a) for a in args]
        t0 = time.perf_counter()
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            env=self.agent.env, start_new_session=True, timeout=3600)
        t = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"bench: paraf sign-pdf failed ({r.returncode}):\n{r.stderr}")
        return t


def timed(argv, repeat):
    """The best of `repeat` runs of a command, seconds."""
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        t = time.perf_counter() - t0
        best = t if best is None else min(best, t)
    return best


def pdf_bench(paraf, agent, ident, tmp, sizes_mb, batch_n):
    """Signing time of large PDFs against sha256sum, and a batch of one-page PDFs."""
    pdfs = tmp / "pdf"
    pdfs.mkdir()
    signer = PdfSigner(paraf, agent, ident)
    one = pdfs / "satu-halaman.pdf"
    one.write_bytes(pdfgen.simple_pdf())
    signer.sign(one, "-o", pdfs / "warm.pdf")  # warm up: the helper, the token login path
    t_one = min(signer.sign(one, "-o", pdfs / "satu-ttd.pdf") for _ in range(3))
    print("paraf sign-pdf (ECDSA P-256, individual certificate: one PIN dialog per call)\n")
    header = (f"{'PDF':<22} {'bytes':>11} {'sha256sum s':>12} {'sign-pdf s':>11} "
        f"{'ratio':>8} {'minus 1-page':>13}")
    print(header)
    print("-" * len(header))
    print(f"{'one page':<22} {one.stat().st_size:>11} {timed(['sha256sum', one], 3):>12.3f} "
        f"{t_one:>11.3f} {'':>8} {'':>13}")
    for mb in sizes_mb:
        src = pdfs / f"{mb}mb.pdf"
        size = pdfgen.large_pdf(src, mb * 1000 * 1000)
        repeat = 3 if mb <= 10 else 1
        t_sha = timed(["sha256sum", src], repeat + 1)  # the first run fills the page cache
        t_sign = min(signer.sign(src, "-o", pdfs / f"{mb}mb-ttd.pdf") for _ in range(repeat))
        extra = max(t_sign - t_one, 0.0)
        print(f"{f'{mb} MB (images)':<22} {size:>11} {t_sha:>12.3f} {t_sign:>11.3f} "
            f"{t_sign / t_sha:>7.1f}x {extra / t_sha:>12.1f}x")
        for p in (src, pdfs / f"{mb}mb-ttd.pdf"):
            p.unlink()
    print("\nratio = sign-pdf time / sha256sum time of the same file; minus 1-page = the same "
        "without\nthe one-page time (process start, PIN dialog, agent, token), which any "
        "size pays once")
    if batch_n > 0:
        bd = pdfs / "batch"
        od = pdfs / "batch-ttd"
        bd.mkdir()
        od.mkdir()
        files = []
        for i in range(batch_n):
            f = bd / f"surat-{i:03d}.pdf"
            f.write_bytes(pdfgen.simple_pdf(title=f"Surat nomor {i + 1}"))
            files.append(f)
        before = len(agent.pinentry.dialogs())
        t = signer.sign(*files, "-o", od)
        dialogs = len(agent.pinentry.dialogs()) - before
        written = len(list(od.iterdir()))
        print(f"\nbatch: {batch_n} one-page PDFs in one sign-pdf call: {t:.2f} s, "
            f"{1000 * t / batch_n:.1f} ms a document, {dialogs} PIN dialog(s), "
            f"{written} files written")
        print(f"       {batch_n} separate calls would take about {batch_n * t_one:.1f} s "
            f"({batch_n} dialogs): the batch is {batch_n * t_one / t:.1f}x faster")
        shutil.rmtree(bd)
        shutil.rmtree(od)



# --- ssh-agent, the peer -----------------------------------------------------------------------

SSH_AGENTC_REQUEST_IDENTITIES = 11
SSH_AGENT_IDENTITIES_ANSWER = 12
SSH_AGENTC_SIGN_REQUEST = 13
SSH_AGENT_SIGN_RESPONSE = 14
SSH_AGENT_RSA_SHA2_256 = 2


def _ssh_string(b):
    return len(b).to_bytes(4, "big") + b


class SshAgentClient:
    """The least of the ssh-agent protocol (draft-miller-ssh-agent): list the identities, ask
    for one signature at a time."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(str(path))

    def close(self):
        self.sock.close()

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("ssh-agent closed the connection")
            buf += chunk
        return buf

    def _call(self, msg_type, payload):
        self.sock.sendall((len(payload) + 1).to_bytes(4, "big") + bytes([msg_type]) + payload)
        n = int.from_bytes(self._recv_exact(4), "big")
        body = self._recv_exact(n)
        return body[0], body[1:]

    def identities(self):
        """[(key blob, comment)]"""
        t, b = self._call(SSH_AGENTC_REQUEST_IDENTITIES, b"")
        if t != SSH_AGENT_IDENTITIES_ANSWER:
            raise SystemExit(f"bench: ssh-agent answered {t} to REQUEST_IDENTITIES")
        count, pos, out = int.from_bytes(b[:4], "big"), 4, []
        for _ in range(count):
            items = []
            for _ in range(2):
                ln = int.from_bytes(b[pos:pos + 4], "big")
                items.append(b[pos + 4:pos + 4 + ln])
                pos += 4 + ln
            out.append(tuple(items))
        return out

    def sign(self, blob, data, flags=0):
        t, b = self._call(SSH_AGENTC_SIGN_REQUEST,
            _ssh_string(blob) + _ssh_string(data) + flags.to_bytes(4, "big"))
        if t != SSH_AGENT_SIGN_RESPONSE:
            raise SystemExit(f"bench: ssh-agent refused to sign (message type {t})")
        return b


def ssh_blob(public_key):
    """The SSH wire encoding of a public key (what REQUEST_IDENTITIES lists)."""
    from cryptography.hazmat.primitives import serialization
    line = public_key.public_bytes(serialization.Encoding.OpenSSH,
        serialization.PublicFormat.OpenSSH)
    return base64.b64decode(line.split()[1])


class SshAgent:
    """ssh-agent in the foreground on a private socket, holding the keys of the benchmark's
    SoftHSM token (`ssh-add -s`, the PIN given by an SSH_ASKPASS script)."""

    def __init__(self, tmp, hsm, pin):
        self.dir = tmp / "ssh"
        self.dir.mkdir(mode=0o700)
        self.socket = self.dir / "agent.sock"
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.dir), **hsm.env()}
        # -P: the providers ssh-agent may load, matched against the module's real path
        self.proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(self.socket), "-P",
            os.path.realpath(pki.SOFTHSM_MODULE)], env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: ssh-agent did not start: "
                    f"{self.proc.stderr.read().decode(errors='replace')}")
            time.sleep(0.02)
        askpass = self.dir / "askpass"
        askpass.write_text(f"#!/bin/sh\necho '{pin}'\n")
        askpass.chmod(0o700)
        env = dict(self.env, SSH_AUTH_SOCK=str(self.socket), SSH_ASKPASS=str(askpass),
            SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
        r = subprocess.run(["ssh-add", "-s", pki.SOFTHSM_MODULE], env=env,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
            start_new_session=True)
        if r.returncode != 0:
            self.stop()
            raise SystemExit(f"bench: ssh-add -s failed ({r.returncode}): {r.stdout}{r.stderr}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its ssh-pkcs11-helper
        except (ProcessLookupError, PermissionError):
            pass


def ssh_bench(tmp, hsm, client, idents, n):
    """The same SoftHSM keys through ssh-agent (one request per signature: it has no batch)
    against parafd's batch of the same n digests."""
    agent = SshAgent(tmp, hsm, next(iter(idents.values())).pin)
    try:
        c = SshAgentClient(agent.socket)
        held = {blob for blob, _ in c.identities()}
        print(f"ssh-agent (OpenSSH, ssh-add -s {pki.SOFTHSM_MODULE}) against parafd, "
            f"the same token keys, {n} signatures each\n")
        header = (f"{'key':<12} {'ssh-agent sig/s':>16} {'parafd batch sig/s':>19} "
            f"{'parafd single sig/s':>20} {'batch / ssh-agent':>18}")
        print(header)
        print("-" * len(header))
        for name, ident in idents.items():
            blob = ssh_blob(ident.public_key)
            if blob not in held:
                raise SystemExit(f"bench: ssh-agent does not hold the {name} key of the token")
            flags = SSH_AGENT_RSA_SHA2_256 if ident.kind == "rsa" else 0
            ds = digests(n, f"ssh-{name}")
            for d in ds[:10]:
                c.sign(blob, d, flags)  # warm up
            t0 = time.perf_counter()
            for d in ds:
                c.sign(blob, d, flags)
            t_ssh = time.perf_counter() - t0
            t_batch, _ = batch(client, ident, n, "raw")
            t_single = single(client, ident, n)
            print(f"{name:<12} {n / t_ssh:>16.0f} {n / t_batch:>19.0f} {n / t_single:>20.0f} "
                f"{t_ssh / t_batch:>17.2f}x")
        c.close()
        print("\nssh-agent hashes the data it is given (SHA-256) and signs the hash on the "
            "token; paraf signs\nthe given digests. batch / ssh-agent > 1: paraf is faster.")
    finally:
        agent.stop()


# --- memory ------------------------------------------------------------------------------------

def rss_kib(pid):
    """VmRSS of a process, KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit(f"bench: no VmRSS for pid {pid}")


def memory_bench(agent, idle_kib, clients_n):
    """parafd's resident size: idle, with clients_n idle connections, and after they left."""
    print(f"parafd resident memory (VmRSS of pid {agent.pid}; the token helper is a separate "
        "process)\n")
    busy = rss_kib(agent.pid)
    conns = []
    for _ in range(clients_n):
        c = Client(agent.socket, timeout=60)
        conns.append(c)
        r = c.call("agent.status")  # answered once: accepted and fully set up
        if "result" not in r:
            raise SystemExit(f"bench: agent.status failed: {r}")
    st = conns[0].call("agent.status")["result"]
    with_clients = rss_kib(agent.pid)
    for c in conns:
        c.close()
    time.sleep(0.5)
    after = rss_kib(agent.pid)
    helper = agent.helper_pid(timeout=1)
    header = f"{'state':<58} {'VmRSS KiB':>10}"
    print(header)
    print("-" * len(header))
    print(f"{'idle, after start and one agent.status':<58} {idle_kib:>10}")
    print(f"{'idle, after the signing benchmarks above':<58} {busy:>10}")
    label = f"{clients_n} idle clients connected (agent.status: {st['clients']} clients)"
    print(f"{label:<58} {with_clients:>10}")
    print(f"{'those clients gone':<58} {after:>10}")
    if helper:
        print(f"{'(the token helper, pid ' + str(helper) + ')':<58} {rss_kib(helper):>10}")
    print(f"\nper idle client: {(with_clients - busy) / clients_n:.1f} KiB "
        f"({with_clients - busy} KiB for {clients_n}); with clients / idle = "
        f"{with_clients / busy:.2f}x")


# --- start-up ----------------------------------------------------------------------------------

def startup_bench(parafd, tmp, env, policy, auditd, runs):
    """Socket activation to first answer: systemd-socket-activate holds the socket, the first
    connection starts parafd (LISTEN_FDS), the time runs from connect() to the answer of
    agent.status (which starts the token helper and enumerates the token)."""
    if not shutil.which("systemd-socket-activate"):
        print("start-up: systemd-socket-activate is not installed; skipped")
        return
    d = tmp / "activate"
    d.mkdir(mode=0o700)
    sock = d / "agent.sock"
    conf = d / "parafd.conf"
    conf.write_text("[agent]\n")
    argv = ["systemd-socket-activate", "-l", str(sock)]
    for k in env:
        argv += ["-E", k]
    argv += [str(parafd), "--config", str(conf), "--module", pki.SOFTHSM_MODULE,
        "--policy", str(policy.path), "--audit-socket", auditd.socket]
    firsts, seconds = [], []
    for _ in range(runs):
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            deadline = time.monotonic() + 10
            while not sock.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("bench: systemd-socket-activate did not listen: "
                        + proc.stderr.read().decode(errors="replace"))
                time.sleep(0.005)
            time.sleep(0.05)  # listening for sure, nothing started yet
            t0 = time.perf_counter()
            c = Client(sock, timeout=30)
            r = c.call("agent.status")
            t1 = time.perf_counter()
            r2 = c.call("agent.status")
            t2 = time.perf_counter()
            c.close()
            if "result" not in r or "result" not in r2 or r["result"]["tokens_present"] != 1:
                raise SystemExit(f"bench: socket-activated parafd answered {r}")
            firsts.append(t1 - t0)
            seconds.append(t2 - t1)
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its token helper
            except (ProcessLookupError, PermissionError):
                pass
            sock.unlink(missing_ok=True)
    trues = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(["/bin/true"], check=True)
        trues.append(time.perf_counter() - t0)
    m_first, m_second, m_true = (statistics.median(x) for x in (firsts, seconds, trues))
    print(f"start-up by socket activation (systemd-socket-activate -l SOCKET parafd ...), "
        f"median of {runs}\n")
    header = f"{'measurement':<62} {'ms':>8} {'vs true':>8}"
    print(header)
    print("-" * len(header))
    print(f"{'connect() to the first agent.status answer (parafd started)':<62} "
        f"{1000 * m_first:>8.1f} {m_first / m_true:>7.1f}x")
    print(f"{'the second agent.status on that connection':<62} {1000 * m_second:>8.1f} "
        f"{m_second / m_true:>7.1f}x")
    print(f"{'fork+exec of /bin/true from this process (baseline)':<62} {1000 * m_true:>8.1f} "
        f"{1.0:>7.1f}x")
    print(f"\n(first answer: range {1000 * min(firsts):.1f}-{1000 * max(firsts):.1f} ms; it "
        "includes starting the token helper and SoftHSM's C_Initialize)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1000, help="signatures per measurement")
    ap.add_argument("--dialog-n", type=int, default=50,
        help="requests through the PIN dialog (each starts a pinentry process)")
    ap.add_argument("--pdf-sizes", default="1,10,100",
        help="sizes in MB of the PDFs signed with paraf sign-pdf (comma-separated; empty: none)")
    ap.add_argument("--pdf-batch", type=int, default=100,
        help="one-page PDFs signed in one paraf sign-pdf call (0: none)")
    ap.add_argument("--pdf-only", action="store_true",
        help="only the PDF measurements (the same as --only pdf)")
    ap.add_argument("--only", default=",".join(SECTIONS),
        help=f"the measurements to run, comma-separated, of {','.join(SECTIONS)} "
        "(default: all)")
    ap.add_argument("--repeat", type=int, default=3,
        help="runs of the direct and batch measurements (the best is shown)")
    ap.add_argument("--clients", type=int, default=256,
        help="idle connections for the memory measurement")
    ap.add_argument("--startup-runs", type=int, default=10,
        help="socket activations measured (the median is shown)")
    args = ap.parse_args()
    only = {"pdf"} if args.pdf_only else {x.strip() for x in args.only.split(",") if x.strip()}
    if only - set(SECTIONS):
        ap.error(f"unknown measurement(s) {', '.join(sorted(only - set(SECTIONS)))}")
    sizes_mb = [int(x) for x in args.pdf_sizes.split(",") if x.strip()]
    build = os.environ.get("PARAF_BUILD")
    if not build:
        raise SystemExit("bench: set PARAF_BUILD to the build directory (make bench does)")
    parafd = Path(build).resolve() / "parafd"
    paraf = Path(build).resolve() / "paraf"
    auditd_bin = Path(build).resolve() / "paraf-auditd"
    for b in (parafd, paraf, auditd_bin):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"bench: {b} is missing: build first")
    n = args.n

    with tempfile.TemporaryDirectory(prefix="paraf-bench.") as tmp:
        tmp = Path(tmp)
        hsm = pki.SoftHSM(tmp / "softhsm")
        tok = hsm.init_token("paraf-bench", pin="1234")
        ca = pki.CA(tmp / "ca", kind="ec")
        idents = {"ECDSA P-256": tok.enroll(ca, kind="ec", cert_type="system"),
            "RSA-2048": tok.enroll(ca, kind="rsa", cert_type="system")}
        person = tok.enroll(ca, kind="ec")  # individual: its PIN only from the dialog

        work = tmp / "agent"
        (work / "run").mkdir(parents=True, mode=0o700)
        (work / "home").mkdir()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work / "home"),
            "XDG_RUNTIME_DIR": str(work / "run"), "XDG_CONFIG_HOME": str(work / "home"),
            "XDG_STATE_HOME": str(work / "home")}
        env.update(hsm.env())
        # registered as their types say: the two system certificates and the individual one
        policy = make_policy(tmp / "policy", hsm, anchors=[ca])
        pinentry = FakePinentry(tmp / "pinentry", pin=tok.pin)
        # the real audit path (R13, audit = required): a paraf-auditd of the benchmark's own,
        # which stores every decision's record before parafd answers
        (tmp / "aud").mkdir(mode=0o700)
        auditd = AuditService(auditd_bin, tmp / "aud" / "log", tmp / "aud" / "audit.sock",
            env={"PATH": env["PATH"]})
        auditd.start()
        agent = Agent(parafd, work, work / "run", [pki.SOFTHSM_MODULE],
            "[agent]\nhelper_timeout = 600\n", env, ["--audit-socket", auditd.socket],
            policy=policy, pinentry=pinentry)
        try:
            try:
                agent.wait_ready()
            except BaseException as e:  # pytest's Failed is a BaseException
                raise SystemExit(f"bench: {e}")
            client = agent.client(timeout=600)
            if "result" not in client.call("agent.status"):
                raise SystemExit("bench: agent.status failed")
            idle_kib = rss_kib(agent.pid)
            print(f"paraf bench: {n} signatures per measurement, SoftHSM "
                f"({pki.SOFTHSM_MODULE}), {os.cpu_count()} CPUs, parafd pid {agent.pid}, "
                f"audit: paraf-auditd (required)\n")
            if "overhead" in only:
                print(f"1. agent overhead (parafd takes at most {AG_DOCUMENTS_MAX} documents "
                    f"per request: the batch is {-(-n // AG_DOCUMENTS_MAX)} request(s), each "
                    "under its own PIN)\n")
                header = (f"{'key':<12} {'path':<46} {'sig/s':>7} {'vs direct':>10} "
                    f"{'CPU us/sig':>11}")
                print(header)
                print("-" * len(header))
                pids = [agent.pid, agent.helper_pid()]
                k = -(-n // AG_DOCUMENTS_MAX)
                for name, ident in idents.items():
                    # direct and batch in turns, --repeat times; the best of each is kept
                    best = {}
                    for _ in range(args.repeat):
                        cpu = Cpu()
                        t = direct(ident, n, cpu)
                        best.setdefault("direct", []).append((t, cpu.ns))
                        for fmt in ("raw", "cms"):
                            cpu = Cpu(pids)
                            t, _k = batch(client, ident, n, fmt, cpu)
                            best.setdefault(fmt, []).append((t, cpu.ns))
                    best = {key: (min(x[0] for x in v), min(x[1] for x in v))
                        for key, v in best.items()}
                    t_direct = best["direct"][0]
                    rows = [("direct C_Sign (PyKCS11, one login)", *best["direct"])]
                    for fmt in ("raw", "cms"):
                        rows.append((f"parafd sign, {k} x {min(n, AG_DOCUMENTS_MAX)} digests, "
                            f"{fmt}", *best[fmt]))
                    cpu = Cpu(pids)
                    t = single(client, ident, n, cpu)
                    rows.append((f"parafd sign, {n} requests x 1 digest, raw", t, cpu.ns))
                    for i, (label, secs, ns) in enumerate(rows):
                        print(f"{name if i == 0 else '':<12} {label:<46} {n / secs:>7.0f} "
                            f"{t_direct / secs:>9.2f}x {ns / n / 1000:>11.1f}")
                    print()
                print(f"direct and batch: the best of {args.repeat} runs taken in turns; "
                    "single: one run.\n"
                    "vs direct = parafd's rate / direct C_Sign's rate in this run (1.00x = "
                    "no overhead; goal for the batch:\n>= 0.90x). CPU us/sig: CPU time per "
                    "signature of this process (direct) or of parafd\nand its token helper "
                    "(parafd rows; the client's own is not counted), which other work on\nthe "
                    "machine does not inflate as it does the wall clock.\n")
            if "dialog" in only and args.dialog_n > 0:
                t = dialog(client, person, args.dialog_n)
                label = f"parafd sign via the PIN dialog, {args.dialog_n} x 1 digest"
                print(f"{'ECDSA P-256':<12} {label:<52} {args.dialog_n / t:>9.0f}   "
                    f"({1000 * t / args.dialog_n:.0f} ms a request: individual certificate, "
                    "test/fake-pinentry)\n")
            if "ssh" in only:
                if shutil.which("ssh-agent") and shutil.which("ssh-add"):
                    print("2. ", end="")
                    ssh_bench(tmp, hsm, client, idents, n)
                else:
                    print("2. ssh-agent / ssh-add are not installed (openssh-client): skipped")
                print()
            if "memory" in only:
                print("3. ", end="")
                memory_bench(agent, idle_kib, args.clients)
                print()
            if "startup" in only:
                print("4. ", end="")
                startup_bench(parafd, tmp, env, policy, auditd, args.startup_runs)
                print()
            if "pdf" in only and (sizes_mb or args.pdf_batch > 0):
                pdf_bench(paraf, agent, person, tmp, sizes_mb, args.pdf_batch)
        finally:
            rc = agent.stop()
            if rc not in (0, -15):
                print(f"bench: parafd exited with status {rc}; its stderr:\n{agent.stderr()}",
                    file=sys.stderr)
            auditd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
