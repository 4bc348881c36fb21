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

It prints numbers and ratios and asserts nothing about time. Everything lives in a temporary
directory that is removed at the end; parafd is stopped.
"""

import argparse
import base64
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1000, help="signatures per measurement")
    ap.add_argument("--dialog-n", type=int, default=50,
        help="requests through the PIN dialog (each starts a pinentry process)")
    args = ap.parse_args()
    build = os.environ.get("PARAF_BUILD")
    if not build:
        raise SystemExit("bench: set PARAF_BUILD to the build directory (make bench does)")
    parafd = Path(build).resolve() / "parafd"
    if not os.access(parafd, os.X_OK):
        raise SystemExit(f"bench: {parafd} is missing: build first")
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
            print(f"paraf bench: {n} signatures per measurement, SoftHSM "
                f"({pki.SOFTHSM_MODULE}), {os.cpu_count()} CPUs, parafd pid {agent.pid}")
            print(f"(parafd takes at most {AG_DOCUMENTS_MAX} documents per request: the batch "
                f"is {-(-n // AG_DOCUMENTS_MAX)} request(s), each under its own PIN)\n")
            header = f"{'key':<12} {'path':<52} {'sig/s':>9} {'vs direct':>10}"
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
            if args.dialog_n > 0:
                t = dialog(client, person, args.dialog_n)
                label = f"parafd sign via the PIN dialog, {args.dialog_n} x 1 digest"
                print(f"{'ECDSA P-256':<12} {label:<52} {args.dialog_n / t:>9.0f}   "
                    f"({1000 * t / args.dialog_n:.0f} ms a request: individual certificate, "
                    "test/fake-pinentry)")
                print()
            print("vs direct = parafd's rate / direct C_Sign's rate (1.00x = no overhead)")
        finally:
            rc = agent.stop()
            if rc not in (0, -15):
                print(f"bench: parafd exited with status {rc}; its stderr:\n{agent.stderr()}",
                    file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
