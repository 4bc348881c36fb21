#!/usr/bin/python3
"""
paraf benchmark (`make bench`): signatures per second through parafd's socket against direct
C_Sign with PyKCS11 on the same SoftHSM key, in the same run, for ECDSA P-256 and RSA-2048.

    PARAF_BUILD=/abs/build /usr/bin/python3 test/bench.py [-n 1000]

Measured, per key:
  - direct:  C_Sign with PyKCS11 in this process, one login, N signatures over digests
             (CKM_ECDSA; CKM_RSA_PKCS over a DigestInfo): what the token itself allows;
  - batch:   N digests through parafd's `sign` under one PIN per request. One request may
             carry at most AG_DOCUMENTS_MAX (500) documents, so N = 1,000 is 2 requests of
             500; format raw and format cms;
  - single:  N requests of one document each, one after another on one connection (raw);
  - dialog:  requests of one document with an individual certificate, whose PIN the trusted
             PIN dialog gives (the scripted test/fake-pinentry: what parafd itself adds per
             signing act, without a person typing); at most --dialog-n requests.

The batch and single paths use electronic-system certificates (type `system` in the policy's
owners registry), the one type whose PIN the policy lets a request carry (`[pin]
parameter_types`, rule R2): that measures parafd and the token, not a dialog. parafd runs with
a private policy directory (`--policy`: the benchmark CA as anchor with a current CRL, the
certificates registered to the account running the benchmark; as root `root_may_own = yes`).

PDF signing with the `paraf` CLI (`paraf sign-pdf`, test/pdfgen.py's PDFs, an individual
ECDSA certificate whose PIN the fake PIN dialog gives):
  - size:    `paraf sign-pdf` of 1 MB, 10 MB and 100 MB PDFs (pages of incompressible
             images), each as a ratio to `sha256sum` of the same file in the same run (the
             file is read once before, so both find it in the page cache); the time of a
             one-page PDF is shown too: what every signing costs whatever the size (process
             start, the PIN dialog, the agent, the token);
  - batch:   100 one-page PDFs in one `paraf sign-pdf A.pdf B.pdf ...` under one PIN dialog,
             against 100 separate calls' estimate (100 x the one-page time).
--pdf-sizes and --pdf-batch change them (an empty list / 0 skips); --pdf-only skips the
digest measurements above.

It prints numbers and ratios and asserts nothing about time. Everything lives in a temporary
directory that is removed at the end; parafd is stopped.
"""

import argparse
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pdfgen  # noqa: E402
import pki  # noqa: E402
from conftest import Agent, FakePinentry, make_policy  # noqa: E402

import PyKCS11  # noqa: E402

AG_DOCUMENTS_MAX = 500
# DER DigestInfo prefix for SHA-256 (RFC 8017 9.2 note 1)
SHA256_DIGESTINFO = bytes.fromhex("3031300d060960864801650304020105000420")


def digests(n, tag):
    return [hashlib.sha256(f"{tag} dokumen {i}".encode()).digest() for i in range(n)]


def direct(ident, n):
    """N signatures with C_Sign over digests, one login; returns seconds."""
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


def batch(client, ident, n, fmt):
    ds = digests(n, f"batch-{fmt}")
    chunks = [ds[i:i + AG_DOCUMENTS_MAX] for i in range(0, n, AG_DOCUMENTS_MAX)]
    reqs = [params(ident, c, fmt, f"b{k}") for k, c in enumerate(chunks)]
    check(client.call("sign", params(ident, ds[:2], fmt, "warm")), 2)
    t0 = time.perf_counter()
    for r, c in zip(reqs, chunks):
        check(client.call("sign", r, timeout=600), len(c))
    return time.perf_counter() - t0, len(chunks)


def single(client, ident, n):
    ds = digests(n, "single")
    reqs = [params(ident, [d], "raw", "s") for d in ds]
    check(client.call("sign", reqs[0]), 1)
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
        help="only the PDF measurements")
    args = ap.parse_args()
    sizes_mb = [int(x) for x in args.pdf_sizes.split(",") if x.strip()]
    build = os.environ.get("PARAF_BUILD")
    if not build:
        raise SystemExit("bench: set PARAF_BUILD to the build directory (make bench does)")
    parafd = Path(build).resolve() / "parafd"
    paraf = Path(build).resolve() / "paraf"
    for b in (parafd, paraf):
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
        agent = Agent(parafd, work, work / "run", [pki.SOFTHSM_MODULE],
            "[agent]\nhelper_timeout = 600\n", env, [], policy=policy, pinentry=pinentry)
        try:
            try:
                agent.wait_ready()
            except BaseException as e:  # pytest's Failed is a BaseException
                raise SystemExit(f"bench: {e}")
            client = agent.client(timeout=600)
            if args.pdf_only:
                print(f"paraf bench: PDF signing, SoftHSM ({pki.SOFTHSM_MODULE}), "
                    f"{os.cpu_count()} CPUs, parafd pid {agent.pid}")
            else:
                print(f"paraf bench: {n} signatures per measurement, SoftHSM "
                    f"({pki.SOFTHSM_MODULE}), {os.cpu_count()} CPUs, parafd pid {agent.pid}")
                print(f"(parafd takes at most {AG_DOCUMENTS_MAX} documents per request: the "
                    f"batch is {-(-n // AG_DOCUMENTS_MAX)} request(s), each under its own "
                    "PIN)\n")
            header = f"{'key':<12} {'path':<52} {'sig/s':>9} {'vs direct':>10}"
            if args.pdf_only:
                idents = {}
            else:
                print(header)
                print("-" * len(header))
            for name, ident in idents.items():
                t_direct = direct(ident, n)
                rows = [("direct C_Sign (PyKCS11, one login)", t_direct)]
                t, k = batch(client, ident, n, "raw")
                rows.append((f"parafd sign, {k} x {min(n, AG_DOCUMENTS_MAX)} digests, raw", t))
                t, k = batch(client, ident, n, "cms")
                rows.append((f"parafd sign, {k} x {min(n, AG_DOCUMENTS_MAX)} digests, cms", t))
                t = single(client, ident, n)
                rows.append((f"parafd sign, {n} requests x 1 digest, raw", t))
                for i, (label, secs) in enumerate(rows):
                    rate = n / secs
                    ratio = t_direct / secs
                    print(f"{name if i == 0 else '':<12} {label:<52} {rate:>9.0f} "
                        f"{ratio:>9.2f}x")
                print()
            if args.dialog_n > 0 and not args.pdf_only:
                t = dialog(client, person, args.dialog_n)
                label = f"parafd sign via the PIN dialog, {args.dialog_n} x 1 digest"
                print(f"{'ECDSA P-256':<12} {label:<52} {args.dialog_n / t:>9.0f}   "
                    f"({1000 * t / args.dialog_n:.0f} ms a request: individual certificate, "
                    "test/fake-pinentry)")
                print()
            if not args.pdf_only:
                print("vs direct = parafd's rate / direct C_Sign's rate (1.00x = no overhead)")
            if sizes_mb or args.pdf_batch > 0:
                if not args.pdf_only:
                    print()
                pdf_bench(paraf, agent, person, tmp, sizes_mb, args.pdf_batch)
        finally:
            rc = agent.stop()
            if rc not in (0, -15):
                print(f"bench: parafd exited with status {rc}; its stderr:\n{agent.stderr()}",
                    file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
