#!/usr/bin/python3
"""
A local RFC 3161 timestamp server for paraf's tests: http.server in a thread on 127.0.0.1 (a
random free port) that answers each POSTed TimeStampReq with a TimeStampResp made by
`openssl ts -reply`, signed by a TSA key and certificate issued here by a test CA (pki.CA):
extendedKeyUsage timeStamping, critical, as RFC 3161 2.3 requires.

    tsa = TSA(tmpdir, ca)            # makes tsa.key, tsa.pem, tsa.cnf; not started
    tsa.start(); tsa.url             # "http://127.0.0.1:PORT/"
    tsa.mode = "ok" | "garbage" | "http500" | "wrong-imprint" | "hang"
    tsa.delay = 2.0                  # seconds to wait before stamping (the token's genTime
                                     # is then later than the moment of the request)
    tsa.requests                     # [Request]: .query (DER TimeStampReq), .headers,
                                     # .response (DER TimeStampResp or what was sent),
                                     # .gen_time (datetime, UTC, from the token) or None
    tsa.stop()

Also usable as a context manager (with TSA(...) as tsa:). Nothing leaves the loopback
interface; the TSA's files live in the directory given.

Command line (by hand):  tsa.py DIR   (makes a CA and serves until interrupted)
"""

import datetime
import http.server
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pki  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

TSA_POLICY = "1.3.6.1.4.1.55555.1.1"  # a test policy OID; means nothing outside the tests
QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MODES = ("ok", "garbage", "http500", "wrong-imprint", "hang")


def issue_tsa_certificate(ca, key, name="Paraf Test TSA", days=730):
    """A TSA certificate for `key` issued by `ca` (pki.CA): digitalSignature +
    nonRepudiation, extendedKeyUsage timeStamping only, critical (RFC 3161 2.3)."""
    now = pki.utcnow()
    b = (x509.CertificateBuilder()
        .subject_name(pki.make_name(name, organization="Paraf Test PKI"))
        .issuer_name(ca.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.ObjectIdentifier(
            pki.EKU_OIDS["timeStamping"])]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
            critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca.key.public_key()), critical=False))
    return b.sign(ca.key, hashes.SHA256())


class Request:
    def __init__(self, query, headers):
        self.query = query
        self.headers = headers
        self.response = None
        self.status = None
        self.gen_time = None

    def __repr__(self):
        return f"<TSA request {len(self.query)} bytes -> {self.status} {self.gen_time}>"


class TSA:
    def __init__(self, directory, ca, mode="ok", delay=0.0):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = ca
        self.mode = mode
        self.delay = delay
        self.requests = []
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = issue_tsa_certificate(ca, self.key)
        self.key_path = self.dir / "tsa.key"
        self.cert_path = self.dir / "tsa.pem"
        self.chain_path = self.dir / "chain.pem"
        self.conf_path = self.dir / "tsa.cnf"
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key.private_bytes(serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.chain_path.write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
        (self.dir / "serial").write_text("01\n")
        self.conf_path.write_text(
            "# openssl ts -reply configuration of the tests' TSA (test/tsa.py)\n"
            "[ tsa ]\n"
            "default_tsa = tsa_config\n"
            "\n"
            "[ tsa_config ]\n"
            f"dir = {self.dir}\n"
            "serial = $dir/serial\n"
            "crypto_device = builtin\n"
            "signer_cert = $dir/tsa.pem\n"
            "certs = $dir/chain.pem\n"
            "signer_key = $dir/tsa.key\n"
            "signer_digest = sha256\n"
            f"default_policy = {TSA_POLICY}\n"
            "digests = sha256, sha384, sha512\n"
            "accuracy = secs:1\n"
            "ordering = yes\n"
            "tsa_name = yes\n"
            "ess_cert_id_chain = no\n"
            "ess_cert_id_alg = sha256\n")
        self._lock = threading.Lock()
        self._server = None
        self._thread = None
        self._n = 0

    # -- serving --

    @property
    def url(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def port(self):
        return self._server.server_address[1]

    def start(self):
        tsa = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, fmt, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                query = self.rfile.read(n)
                req = Request(query, dict(self.headers))
                with tsa._lock:
                    tsa.requests.append(req)
                status, ctype, body = tsa._answer(req)
                req.status, req.response = status, body
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def do_GET(self):
                self.send_error(405, "POST a TimeStampReq")

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- answers --

    def _answer(self, req):
        mode = self.mode
        if self.delay:
            time.sleep(self.delay)
        if mode == "http500":
            return 500, "text/plain", b"internal server error\n"
        if mode == "garbage":
            return 200, REPLY_TYPE, b"\x30\x82\x01\x00 this is not a TimeStampResp" * 4
        if mode == "hang":
            time.sleep(3600)
        query = req.query
        if mode == "wrong-imprint":
            query = self._other_imprint(query)
        with self._lock:
            self._n += 1
            n = self._n
        qpath = self.dir / f"req{n}.tsq"
        rpath = self.dir / f"resp{n}.tsr"
        qpath.write_bytes(query)
        r = subprocess.run(["openssl", "ts", "-reply", "-config", str(self.conf_path),
            "-queryfile", str(qpath), "-out", str(rpath)], capture_output=True, text=True)
        if r.returncode != 0 or not rpath.exists():
            return 500, "text/plain", f"openssl ts -reply failed: {r.stderr}".encode()
        body = rpath.read_bytes()
        req.gen_time = self.gen_time(rpath)
        return 200, REPLY_TYPE, body

    @staticmethod
    def _other_imprint(query):
        """The same TimeStampReq with the last byte of its hashedMessage changed (a TSA that
        stamps something else)."""
        node, _ = pki.ber_parse(query)
        hashed = node[1][1]  # messageImprint.hashedMessage
        i = query.index(hashed.raw) + len(hashed.raw) - 1
        return query[:i] + bytes([query[i] ^ 0xff]) + query[i + 1:]

    @staticmethod
    def gen_time(response_path):
        """The genTime of a TimeStampResp file (UTC datetime), via `openssl ts -reply -text`."""
        r = subprocess.run(["openssl", "ts", "-reply", "-in", str(response_path), "-text"],
            capture_output=True, text=True)
        m = re.search(r"^Time stamp: (.+)$", r.stdout, re.M)
        if not m:
            return None
        text = re.sub(r"\.\d+", "", m.group(1).strip())  # fractions with accuracy
        return datetime.datetime.strptime(text, "%b %d %H:%M:%S %Y GMT").replace(
            tzinfo=datetime.timezone.utc)


def main(argv=None):
    argv = argv if argv is not None else sys.argv[1:]
    if len(argv) != 1:
        print("usage: tsa.py DIR", file=sys.stderr)
        return 2
    d = Path(argv[0])
    ca = pki.CA(d / "ca")
    with TSA(d / "tsa", ca) as tsa:
        print(f"TSA at {tsa.url}; CA {ca.cert_path}; TSA certificate {tsa.cert_path}",
            flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
