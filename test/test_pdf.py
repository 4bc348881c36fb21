"""
End-to-end tests of PDF signing (`paraf sign-pdf`, doc/pdf.md) and PDF verification
(`paraf verify FILE.pdf`, doc/verification.md), with the real paraf against a real parafd on
private SoftHSM tokens, on PDFs made by test/pdfgen.py, and a local RFC 3161 timestamp server
(test/tsa.py).

Every signed file is checked by tools that share no code with paraf:
  - poppler's `pdfsig` with an NSS database holding the test CA: "Signature is Valid",
    "Certificate is Trusted", "Total document signed";
  - `qpdf --check`;
  - Python here: the ByteRange and /Contents are parsed from the bytes, the digest
    recomputed, the CMS taken apart (messageDigest, the signature over the signed attributes
    verified with python3-cryptography against the signer's certificate, no signingTime,
    signing-certificate-v2 naming the signer's certificate), the signature dictionary's
    /SubFilter ETSI.CAdES.detached, and the input's bytes an exact prefix of the output (an
    incremental update);
  - for visible signatures (R10): the page rendered by `pdftoppm`, the QR code decoded by
    `zbarimg` (the verification URL with the input's SHA-256), its size measured (3 x 3 cm),
    the block and footer text found by `pdftotext`;
  - for timestamps: `openssl ts -verify` over the signature value.

Rules of REGULATION.md a test proves are cited in its docstring: R10 (QR code, signature
block, footer), R11 (what verification shows), R12 (invisible signatures), R1 (one PIN for an
explicit, listed batch), R8 (revocation), R16 (standard formats: PAdES, CMS, RFC 3161).

A test that needs a tool that is not installed skips, naming it and its Debian package
(scripts/install-deps.sh installs them all).
"""

import datetime
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest

import pdfgen
import pki
from tsa import TSA

EXIT_OK, EXIT_NOT_VALID, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_AGENT, EXIT_LOCAL = range(6)

TOOL_PACKAGES = {"pdfsig": "poppler-utils", "pdftoppm": "poppler-utils",
    "pdftotext": "poppler-utils", "pdffonts": "poppler-utils", "certutil": "libnss3-tools",
    "zbarimg": "zbar-tools", "qpdf": "qpdf", "openssl": "openssl"}

# R10's footer, word for word (appearance.conf's default footer_text with issuer_name BSrE)
FOOTER = ("Dokumen ini telah ditandatangani secara elektronik menggunakan sertifikat "
    "elektronik yang diterbitkan oleh BSrE")
SIGNED_BY = "Ditandatangani secara elektronik oleh"
VERIFY_URL = "https://arsip.contoh.go.id/verifikasi/{id}"
# the italic issuer line of the block (doc/pdf.md): the CN of the certificate's issuer
ISSUER_LINE = "Sertifikat elektronik diterbitkan oleh {cn}"
QR_CM = 3.0
DPI = 150

OID_TST = "1.2.840.113549.1.9.16.2.14"  # id-aa-signatureTimeStampToken
OID_TSTINFO = "1.2.840.113549.1.9.16.1.4"
OID_NAMES = {v: k for k, v in pki.OID.items()}


# --- tools --------------------------------------------------------------------------------------

def need(*tools):
    """Skips the test unless every tool is installed, naming the missing ones' packages."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pkgs = sorted({TOOL_PACKAGES.get(t, t) for t in missing})
        pytest.skip(f"{', '.join(missing)} not installed (Debian: {' '.join(pkgs)}; "
            "scripts/install-deps.sh)")


def run(argv, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
        timeout=kw.pop("timeout", 120), **kw)


def expect(r, code, stderr_re=None):
    """Checks a CompletedProcess's exit status (and a regex on stderr); shows both."""
    ok = (r.returncode == code) if code is not None else (r.returncode != 0)
    assert ok, f"exit {r.returncode}, expected {'non-zero' if code is None else code}\n" \
        f"--- stdout ---\n{r.stdout}\n--- stderr ---\n{r.stderr}"
    if stderr_re is not None:
        assert re.search(stderr_re, r.stderr, re.I | re.M), \
            f"stderr does not match {stderr_re!r}:\n{r.stderr}"
    return r


def listing(d):
    """Every entry under d (names relative to d, hidden files included), with sizes."""
    d = Path(d)
    return sorted((str(p.relative_to(d)), p.stat().st_size if p.is_file() else None)
        for p in d.rglob("*"))


def sha256_file(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def cn(cert):
    return cert.subject.get_attributes_for_oid(pki.NameOID.COMMON_NAME)[0].value


@pytest.fixture(scope="session")
def nssdb(ca, tmp_path_factory):
    """An NSS database (for pdfsig) trusting the session's test CA only."""
    need("certutil")
    d = tmp_path_factory.mktemp("nssdb")
    expect(run(["certutil", "-N", "-d", f"sql:{d}", "--empty-password"]), 0)
    expect(run(["certutil", "-A", "-d", f"sql:{d}", "-n", "ca", "-t", "C,C,C", "-i",
        ca.cert_path]), 0)
    return d


def pdfsig(path, nssdb):
    """Runs pdfsig and returns (CompletedProcess, [one dict per signature]): text, valid,
    trusted, total (whole document signed), type (the SubFilter it shows), cn.

    Not with -no-ocsp: poppler 22.12 ignores CERT_PKIXVerifyCert's result and reads
    PORT_GetError() after it, and with OCSP disabled NSS leaves a stale
    SEC_ERROR_EXTENSION_NOT_FOUND behind a successful verification, so every certificate
    is "Unknown issue with Certificate or corrupted data". The test certificates name no
    OCSP responder, so nothing is fetched either way."""
    need("pdfsig")
    r = run(["pdfsig", "-nssdir", f"sql:{nssdb}", path])
    sigs = []
    for block in re.split(r"^Signature #\d+:\s*$", r.stdout, flags=re.M)[1:]:
        t = re.search(r"- Signature Type: (\S+)", block)
        c = re.search(r"- Signer Certificate Common Name: (.*)$", block, re.M)
        sigs.append({"text": block,
            "valid": "- Signature Validation: Signature is Valid." in block,
            "trusted": "- Certificate Validation: Certificate is Trusted." in block,
            "total": re.search(r"^\s*- Total document signed", block, re.M) is not None,
            "type": t.group(1) if t else None, "cn": c.group(1).strip() if c else None})
    return r, sigs


def assert_pdfsig_valid(path, nssdb, count=1, cns=None):
    """pdfsig finds `count` signatures, each valid and trusted, the last covering the whole
    document (earlier ones cover their own revision), all ETSI.CAdES.detached."""
    r, sigs = pdfsig(path, nssdb)
    assert len(sigs) == count, f"pdfsig found {len(sigs)} signatures, expected {count}:\n" \
        f"{r.stdout}{r.stderr}"
    for i, s in enumerate(sigs):
        assert s["valid"], f"signature #{i + 1} not valid:\n{r.stdout}{r.stderr}"
        assert s["trusted"], f"signature #{i + 1} not trusted:\n{r.stdout}{r.stderr}"
        assert s["type"] == "ETSI.CAdES.detached", r.stdout
    assert sigs[-1]["total"], f"the last signature does not cover the whole document:\n" \
        f"{r.stdout}"
    if cns is not None:
        assert [s["cn"] for s in sigs] == list(cns), r.stdout
    return sigs


def qpdf_check(path):
    need("qpdf")
    r = run(["qpdf", "--check", path])
    assert r.returncode == 0, f"qpdf --check {path}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    return r


# --- the signature, taken apart independently ------------------------------------------------------

_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")


def pdf_string_value(raw):
    """The text of a PDF string token: (literal) with escapes, or <hex>; UTF-16BE with a BOM
    or PDFDocEncoding (read as Latin-1)."""
    raw = raw.strip()
    if raw.startswith(b"<"):
        b = bytes.fromhex(raw[1:-1].decode())
    else:
        b, i, body = bytearray(), 0, raw[1:-1]
        esc = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}
        while i < len(body):
            c = body[i]
            if c == 0x5c and i + 1 < len(body):
                n = body[i + 1]
                if n in esc:
                    b.append(esc[n])
                    i += 2
                elif 0x30 <= n <= 0x37:
                    m = re.match(rb"[0-7]{1,3}", body[i + 1:])
                    b.append(int(m.group(0), 8) & 0xff)
                    i += 1 + len(m.group(0))
                elif n in b"\r\n":
                    i += 2
                else:
                    b.append(n)
                    i += 2
            else:
                b.append(c)
                i += 1
        b = bytes(b)
    if b.startswith(b"\xfe\xff"):
        return b[2:].decode("utf-16-be")
    if b.startswith(b"\xef\xbb\xbf"):
        return b[3:].decode("utf-8")
    return b.decode("latin-1")


def dict_entry(text, key):
    """The raw token of /key in a dictionary's bytes: a name, a string or a number."""
    m = re.search(rb"/" + key.encode() + rb"\s*(\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f\s]*>|/[^\s/<>\[\]()]+|"
        rb"-?[\d.]+)", text, re.S)
    return m.group(1) if m else None


class PdfSignature:
    """One signature found in a PDF's bytes: .byte_range (a, b, c, d), .der (the CMS, without
    the placeholder's padding), .dictionary (the bytes of the object holding it),
    .covered (the bytes the ByteRange covers), .end (c + d), .info (pki.cms_info),
    .signer_info (the SignerInfo's BER node), .unsigned ({oid: [value nodes]})."""

    def __init__(self, data, m):
        a, b, c, d = (int(x) for x in m.groups())
        self.byte_range = (a, b, c, d)
        self.end = c + d
        assert a == 0, f"ByteRange does not start at 0: {self.byte_range}"
        assert 0 < b < c <= self.end <= len(data), f"ByteRange out of the file {self.byte_range}"
        gap = data[b:c]
        assert gap[:1] == b"<" and gap[-1:] == b">", \
            f"the ByteRange gap is not exactly the /Contents hex string: {gap[:20]!r}…{gap[-20:]!r}"
        hexdigits = gap[1:-1]
        assert re.fullmatch(rb"[0-9A-Fa-f]*", hexdigits), "the /Contents gap is not hex"
        raw = bytes.fromhex(hexdigits.decode())
        _, n = pki.ber_parse(raw)
        assert raw[n:].strip(b"\0") == b"", "junk after the CMS in /Contents"
        self.der = raw[:n]
        self.placeholder = len(raw)
        self.covered = data[a:a + b] + data[c:c + d]
        lo = data.rfind(b" obj", 0, min(m.start(), b))
        hi = data.find(b"endobj", max(m.end(), c))
        assert lo >= 0 and hi > 0, "the signature dictionary is not in an object"
        self.dictionary = data[lo:b] + data[c:hi]
        self.info = pki.cms_info(self.der)
        ci, _ = pki.ber_parse(self.der)
        sd = ci[1][0]
        self.signer_info = sd.children[-1].children[0]
        self.unsigned = {}
        last = self.signer_info.children[-1]
        if last.tag == 0xa1:
            for attr in last.children:
                self.unsigned[attr[0].oid] = list(attr[1].children)

    def entry(self, key):
        return dict_entry(self.dictionary, key)

    def string(self, key):
        raw = self.entry(key)
        return pdf_string_value(raw) if raw is not None else None

    @property
    def signature_value(self):
        return self.info["signers"][0]["signature"]


def find_signatures(data):
    """The signatures in a PDF's bytes, in file order (one per distinct ByteRange)."""
    seen, out = set(), []
    for m in _BYTE_RANGE.finditer(data):
        if m.groups() in seen:
            continue
        seen.add(m.groups())
        out.append(PdfSignature(data, m))
    return out


def check_cms(sig, ident):
    """The CMS of a PDF signature, checked independently of paraf and OpenSSL (R16):
    detached SignedData with one SignerInfo by `ident`'s certificate (included), whose
    messageDigest is the digest of the bytes the ByteRange covers, whose signature over the
    signed attributes verifies with python3-cryptography, with contentType data,
    signing-certificate-v2 naming the signer's certificate, and no signingTime (PAdES
    baseline: the time is the dictionary's /M)."""
    info = sig.info
    assert info["content_type"] == pki.OID["signedData"]
    assert not info["econtent_present"], "the CMS is not detached"
    assert info["econtent_type"] == pki.OID["data"]
    assert len(info["signers"]) == 1, f"{len(info['signers'])} SignerInfos"
    si = info["signers"][0]
    alg = OID_NAMES[si["digest_algorithm"]]
    assert alg in ("sha256", "sha384", "sha512"), alg
    digest = hashlib.new(alg, sig.covered).digest()
    attrs = si["signed_attrs"]
    assert attrs[pki.OID["messageDigest"]][0].value == digest, \
        "messageDigest is not the digest of the ByteRange"
    assert attrs[pki.OID["contentType"]][0].oid == pki.OID["data"]
    assert pki.OID["signingTime"] not in attrs, "a signingTime attribute (PAdES wants none)"
    assert pki.OID["signingCertificateV2"] in attrs, "no signing-certificate-v2"
    hashes_ = pki.signing_certificate_v2_hashes(attrs[pki.OID["signingCertificateV2"]][0])
    assert any(hashlib.new(OID_NAMES[h_alg], ident.der).digest() == h
        for h_alg, h in hashes_), "signing-certificate-v2 does not name the signer's certificate"
    assert ident.der in info["certificates"], "the signer's certificate is not in the CMS"
    pad = "pss" if si["signature_algorithm"] == pki.OID["rsassaPss"] else "pkcs1"
    pki.verify_raw(ident.public_key, si["signature"],
        hashlib.new(alg, si["signed_attrs_der"]).digest(), alg, pad)  # raises if bad
    return digest


def check_signed_pdf(src_bytes, out_path, idents, nssdb=None, reason=None, location=None):
    """Everything an independent reader can check of a file signed (once or more) by paraf:
    pdfsig, qpdf --check, and for each signature: ByteRange, CMS, dictionary; the input an
    exact prefix of the output and each signature's revision a prefix of the next; the last
    signature covering the whole file. idents: the signers in signing order (those of the
    last len(idents) signatures), registered under their CN (conftest's default), which
    /Name must be. Returns the PdfSignatures."""
    data = Path(out_path).read_bytes()
    assert data.startswith(src_bytes), "the input is not an exact prefix of the output: " \
        "not an incremental update"
    assert len(data) > len(src_bytes)
    sigs = find_signatures(data)
    assert len(sigs) >= len(idents), f"{len(sigs)} signatures found, expected {len(idents)}"
    mine = sigs[-len(idents):]
    prev_end = len(src_bytes)
    for i, (s, ident) in enumerate(zip(mine, idents)):
        check_cms(s, ident)
        assert s.end > prev_end, "a signature does not end after the input (or the last one)"
        assert s.covered.startswith(src_bytes), "a signature does not cover the input"
        assert s.string("Name") == cn(ident.cert), s.dictionary[:300]
        assert dict_entry(s.dictionary, "Type") == b"/Sig", s.dictionary[:300]
        assert dict_entry(s.dictionary, "Filter") == b"/Adobe.PPKLite", s.dictionary[:300]
        assert dict_entry(s.dictionary, "SubFilter") == b"/ETSI.CAdES.detached", \
            s.dictionary[:300]
        m = s.string("M")
        assert m and re.match(r"D:\d{14}", m), f"no /M signing time: {m!r}"
        if reason is not None and i == len(mine) - 1:
            assert s.string("Reason") == reason
        if location is not None and i == len(mine) - 1:
            assert s.string("Location") == location
        prev_end = s.end
    for earlier, later in zip(sigs, sigs[1:]):
        assert later.covered.startswith(data[:earlier.end]), \
            "a later revision does not keep the earlier one's bytes"
    assert sigs[-1].end == len(data), \
        f"the last signature covers {sigs[-1].end} of {len(data)} bytes"
    qpdf_check(out_path)
    if nssdb is not None:
        assert_pdfsig_valid(out_path, nssdb, count=len(sigs))
    return sigs


def m_time(sig):
    """The /M of a signature dictionary as a UTC datetime."""
    m = re.match(r"D:(\d{14})(Z|[+-]\d\d'?\d\d'?)?", sig.string("M"))
    t = datetime.datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
    tz = m.group(2) or "Z"
    off = datetime.timedelta(0)
    if tz != "Z":
        h, mi = int(tz[1:3]), int(tz.replace("'", "")[3:5] or 0)
        off = datetime.timedelta(hours=h, minutes=mi) * (1 if tz[0] == "+" else -1)
    return (t - off).replace(tzinfo=datetime.timezone.utc)


def parse_time(text):
    """An ISO 8601 time as paraf writes it (…Z or with an offset) as a UTC datetime."""
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t.astimezone(datetime.timezone.utc)


# --- the rendered page: QR code and text ----------------------------------------------------------

def render(pdf, page, out_prefix, dpi=DPI, gray=False):
    """Renders one page with pdftoppm; returns the image's path (PNG, or PGM if gray)."""
    need("pdftoppm")
    args = ["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile"]
    args += ["-gray"] if gray else ["-png"]
    expect(run(args + [pdf, out_prefix]), 0)
    return Path(f"{out_prefix}.{'pgm' if gray else 'png'}")


def zbar(image):
    """The texts of the QR codes zbarimg decodes in an image."""
    need("zbarimg")
    r = run(["zbarimg", "--raw", "-q", "--nodbus", image])
    assert r.returncode in (0, 4), f"zbarimg failed ({r.returncode}): {r.stderr}"  # 4: none
    return [line for line in r.stdout.splitlines() if line.strip()]


def read_pgm(path):
    """(width, height, bytes of grey samples) of a binary PGM (P5, 8 bit)."""
    data = Path(path).read_bytes()
    m = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    w, h = int(m.group(1)), int(m.group(2))
    return w, h, data[m.end():m.end() + w * h]


_DARK = bytes(0x31 if v < 128 else 0x30 for v in range(256))


def finder_patterns(pgm):
    """The QR finder patterns in a grey image, found as a QR reader does: rows with dark,
    light, dark, light, dark runs in the proportions 1:1:3:1:1, stacked over about three
    modules. Returns (width, height, [(centre x, centre y, module size)] in pixels)."""
    w, h, px = read_pgm(pgm)
    bits = px.translate(_DARK)
    hits = []
    for y in range(h):
        row = bits[y * w:(y + 1) * w]
        if b"1" not in row:
            continue
        runs = [(m.start(), m.end() - m.start(), row[m.start()])
            for m in re.finditer(rb"1+|0+", row)]
        for i in range(len(runs) - 4):
            r = runs[i:i + 5]
            if r[0][2] != 0x31:
                continue
            lens = [x[1] for x in r]
            unit = sum(lens) / 7
            if unit >= 1.5 and all(abs(n - e * unit) <= max(1.0, 0.5 * unit)
                    for n, e in zip(lens, (1, 1, 3, 1, 1))):
                hits.append((r[2][0] + r[2][1] / 2, y, unit))
    clusters = []
    for x, y, u in hits:
        for c in clusters:
            if abs(c["x"] - x) <= 2 * u and 0 <= y - c["y1"] <= 2:
                c["xs"].append(x)
                c["us"].append(u)
                c["x"], c["y1"] = x, y
                break
        else:
            clusters.append({"x": x, "y0": y, "y1": y, "xs": [x], "us": [u]})
    out = []
    for c in clusters:
        u = sum(c["us"]) / len(c["us"])
        if c["y1"] - c["y0"] + 1 >= 2.2 * u:  # the centre square is 3 modules tall
            out.append((sum(c["xs"]) / len(c["xs"]), (c["y0"] + c["y1"]) / 2, u))
    return w, h, out


def finder_colours(pdf, page, tmp, dpi=DPI):
    """The RGB colour at the centre of each QR finder pattern on a page (rendered in
    colour, as a PPM)."""
    need("pdftoppm")
    _, _, finders = finder_patterns(render(pdf, page, tmp / f"fc-p{page}-g", dpi, gray=True))
    expect(run(["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile",
        pdf, tmp / f"fc-p{page}"]), 0)
    data = (tmp / f"fc-p{page}.ppm").read_bytes()
    m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    w = int(m.group(1))
    px = data[m.end():]
    out = []
    for x, y, _ in finders:
        i = 3 * (int(round(y)) * w + int(round(x)))
        out.append(tuple(px[i:i + 3]))
    return out


def qr_geometry(pdf, page, tmp, dpi=DPI):
    """The QR codes on a rendered page: (texts zbarimg decodes, [(width_cm, height_cm,
    centre as fractions (x, y) of the page from its top left)] of each symbol found by its
    three finder patterns: the dark modules' extent, without the quiet zone)."""
    texts = zbar(render(pdf, page, tmp / f"qr-p{page}"))
    w, h, finders = finder_patterns(render(pdf, page, tmp / f"qr-p{page}-g", gray=True))
    symbols = []
    left = sorted(finders, key=lambda f: (f[1], f[0]))
    while len(left) >= 3:
        f0 = left.pop(0)
        near = sorted((f for f in left if abs(f[2] - f0[2]) < 0.25 * f0[2]),
            key=lambda f: (f[0] - f0[0]) ** 2 + (f[1] - f0[1]) ** 2)[:2]
        if len(near) < 2:
            continue
        for f in near:
            left.remove(f)
        group = [f0] + near
        u = sum(f[2] for f in group) / 3
        xs, ys = [f[0] for f in group], [f[1] for f in group]
        bw, bh = max(xs) - min(xs) + 7 * u, max(ys) - min(ys) + 7 * u
        symbols.append((bw / dpi * 2.54, bh / dpi * 2.54,
            ((max(xs) + min(xs)) / 2 / w, (max(ys) + min(ys)) / 2 / h)))
    return texts, symbols


def page_text(pdf, page=None):
    """pdftotext of one page (or all), whitespace collapsed to single spaces."""
    need("pdftotext")
    args = ["pdftotext"]
    if page is not None:
        args += ["-f", str(page), "-l", str(page)]
    r = expect(run(args + [pdf, "-"]), 0)
    return re.sub(r"\s+", " ", r.stdout)


def page_count(pdf):
    need("qpdf")
    return int(expect(run(["qpdf", "--show-npages", pdf]), 0).stdout)


# --- running paraf -----------------------------------------------------------------------------------

@pytest.fixture
def run_detached(paraf_bin):
    """run_detached(agent, *args, env=None, cwd=None): `paraf [--socket S] ARGS` without any
    terminal (stdin /dev/null, a new session), whatever terminal pytest runs in: parafd's
    (fake) PIN dialog answers."""
    def go(agent, *args, env=None, cwd=None, timeout=120):
        e = dict(agent.env) if agent is not None else {"PATH": os.environ.get("PATH", "")}
        e.update(env or {})
        argv = [str(paraf_bin)] + (["--socket", agent.socket] if agent is not None else [])
        argv += [str(a) for a in args]
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=timeout, env=e, cwd=cwd, start_new_session=True)
    return go


@pytest.fixture
def appearance(tmp_path):
    """An appearance.conf (doc/pdf.md) with the tests' verification URL, issuer and footer
    (R10). Returns its path."""
    p = tmp_path / "appearance.conf"
    p.write_text(
        "# paraf PDF appearance for the tests (R10); footer_text: the default\n"
        "[appearance]\n"
        f"verify_url = {VERIFY_URL}\n"
        "issuer_name = BSrE\n"
        f"signed_by_text = {SIGNED_BY} :\n")
    return p


def verify_pdf(run_detached, *args, code=None):
    """`paraf verify --json ARGS` -> (CompletedProcess, report dict). Exit 0 exactly when the
    conclusion is VALID."""
    r = run_detached(None, "verify", "--json", *args)
    assert r.returncode in (EXIT_OK, EXIT_NOT_VALID), \
        f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    rep = json.loads(r.stdout)
    assert (r.returncode == EXIT_OK) == (rep["conclusion"] == "VALID"), (r.returncode, rep)
    if code is not None:
        assert r.returncode == code, (r.returncode, rep)
    return r, rep


def current_crl(ca, tmp_path, name="ca.crl", revoked=()):
    p = tmp_path / name
    p.write_bytes(pki.crl_pem(ca.crl(revoked=revoked)))
    return p


# --- signing each kind of PDF ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", pdfgen.GOOD_KINDS)
def test_sign_each_kind(kind, signer, nssdb, appearance, run_detached, tmp_path):
    """R12, R10, R16: each kind of PDF (classic xref; three pages; object streams with a
    cross-reference stream; already incrementally updated; PDF 1.3; PDF 2.0; a real
    LibreOffice Writer export from test/data) signed
    invisibly (EC key) and visibly (RSA key). Each output: an incremental update of the
    input (its exact prefix), accepted by pdfsig (valid, trusted, whole document), qpdf
    --check and the independent ByteRange/CMS checks. The invisible one has a zero-size
    widget and renders exactly like the input; the visible one's QR code decodes to the
    verification URL with the input's SHA-256."""
    if kind in pdfgen.QPDF_KINDS:
        need("qpdf")
    src = pdfgen.make(kind, tmp_path / f"{kind}.pdf")
    src_bytes = src.read_bytes()
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)

    inv = tmp_path / f"{kind}-invisible.pdf"
    r = expect(run_detached(signer.agent, "sign-pdf", src, "-o", inv, "--cert",
        signer.ec.cert_id, "--reason", "Menyetujui isi dokumen", "--location", "Contoh"), 0)
    assert str(inv) in r.stdout, r.stdout
    (s,) = check_signed_pdf(src_bytes, inv, [signer.ec], nssdb,
        reason="Menyetujui isi dokumen", location="Contoh")
    assert before - datetime.timedelta(seconds=2) <= m_time(s) <= \
        datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    assert src.read_bytes() == src_bytes, "the input was changed"
    # R12: nothing drawn: the widget has no area and the page looks as before
    rects = widget_rects(inv.read_bytes()[len(src_bytes):])
    assert rects and all(r_[2] - r_[0] == 0 or r_[3] - r_[1] == 0 for r_ in rects), rects
    if shutil.which("pdftoppm"):
        assert render_all(src, tmp_path / "orig") == render_all(inv, tmp_path / "inv"), \
            "an invisible signature changed how a page looks"

    vis = tmp_path / f"{kind}-visible.pdf"
    expect(run_detached(signer.agent, "sign-pdf", src, "-o", vis, "--cert",
        signer.rsa.cert_id, "--visible", "--appearance", appearance), 0)
    check_signed_pdf(src_bytes, vis, [signer.rsa], nssdb)
    rects = widget_rects(vis.read_bytes()[len(src_bytes):])
    assert any(r_[2] - r_[0] > 0 and r_[3] - r_[1] > 0 for r_ in rects), rects
    need("pdftoppm", "zbarimg")
    last = page_count(src)  # --page defaults to the last page
    codes = zbar(render(vis, last, tmp_path / "vis"))
    assert codes == [VERIFY_URL.format(id=hashlib.sha256(src_bytes).hexdigest())], codes
    assert FOOTER in page_text(vis, last)


def render_all(pdf, prefix):
    """Every page of a PDF rendered small and grey: [bytes of each page's PGM]."""
    expect(run(["pdftoppm", "-r", "30", "-gray", pdf, prefix]), 0)
    return [p.read_bytes() for p in sorted(prefix.parent.glob(prefix.name + "-*.pgm"))]


def widget_rects(update):
    """The /Rect of each signature field widget (/FT /Sig) in the bytes of an update."""
    rects = []
    for m in re.finditer(rb"\d+\s+\d+\s+obj\b(.*?)endobj", update, re.S):
        body = m.group(1)
        if re.search(rb"/FT\s*/Sig\b", body) and b"/Rect" in body:
            r = re.search(rb"/Rect\s*\[\s*([-\d.\s]+)\]", body)
            rects.append(tuple(float(x) for x in r.group(1).split()))
    return rects


# --- the visible signature: QR code, block, footer (R10) -------------------------------------------

def test_visible_letter(signer, nssdb, appearance, run_detached, tmp_path):
    """R10: a visible signature on an official letter draws a black QR code of 3 x 3 cm at
    the bottom of the page with the block, linking to the verification URL with the input's
    SHA-256 (what pdfsig, zbarimg and pdftotext see, not what paraf says); the block says
    "Ditandatangani secara elektronik oleh", the signer's name and NIP and the issuer line in
    an italic font; the mandatory footer is on the page. pdfsig accepts it. --json reports
    what was written (document id = the input's SHA-256)."""
    need("pdftoppm", "zbarimg", "pdftotext", "pdffonts")
    src = tmp_path / "surat.pdf"
    src.write_bytes(pdfgen.letter_pdf(name="Siti Rahayu", nip="19650101 199003 1 001"))
    out = tmp_path / "surat-ttd.pdf"
    r = expect(run_detached(signer.agent, "sign-pdf", src, "-o", out, "--cert",
        signer.ec.cert_id, "--visible", "--appearance", appearance, "--reason",
        "Penandatanganan naskah dinas", "--location", "Kabupaten Contoh", "--json"), 0)
    j = json.loads(r.stdout)
    assert j["certificate"] == signer.ec.cert_id, j
    (w,) = j["signed"]
    assert w["input"] == str(src) and w["output"] == str(out), w
    assert w["document_id"] == sha256_file(src), w
    assert w["page"] == 1 and w["visible"] is True and w["timestamp"] is False, w
    check_signed_pdf(src.read_bytes(), out, [signer.ec], nssdb,
        reason="Penandatanganan naskah dinas", location="Kabupaten Contoh")

    url = VERIFY_URL.format(id=sha256_file(src))
    texts, symbols = qr_geometry(out, 1, tmp_path)
    assert texts == [url]
    ((w_cm, h_cm, centre),) = symbols
    # the symbol (its modules, without the quiet zone: doc/pdf.md) is 3 x 3 cm, within a
    # pixel or two at 150 dpi
    assert abs(w_cm - QR_CM) <= 0.1 and abs(h_cm - QR_CM) <= 0.1, (w_cm, h_cm)
    assert centre[1] > 0.5, f"the QR code is not in the lower half of the page: {centre}"
    colours = finder_colours(out, 1, tmp_path)
    assert len(colours) == 3 and all(c == (0, 0, 0) for c in colours), \
        f"the QR code is not black: {colours}"

    text = page_text(out, 1)
    issuer_line = ISSUER_LINE.format(cn=cn(signer.ca.cert))
    for want in (SIGNED_BY, cn(signer.ec.cert), issuer_line, FOOTER):
        assert want in text, f"{want!r} not on the page:\n{text}"
    # the NIP of the registry (conftest registers 196501011990031001)
    assert re.search(r"NIP\.? ?19650101 ?199003 ?1 ?001", text), text
    fonts = expect(run(["pdffonts", "-f", "1", "-l", "1", out]), 0).stdout
    assert re.search(r"Oblique|Italic", fonts), f"no italic font for the issuer line:\n{fonts}"


def test_visible_page_and_position(signer, nssdb, appearance, run_detached, tmp_path):
    """R10: --page N and --page last put the block (QR code, text) on that page, and the
    footer on it; --at X,Y moves it; a page out of range is refused before signing."""
    need("pdftoppm", "zbarimg", "pdftotext", "qpdf")
    src = pdfgen.make("multipage", tmp_path / "tiga.pdf")
    src_bytes = src.read_bytes()
    url = VERIFY_URL.format(id=sha256_file(src))
    for page, want in (("2", 2), ("last", 3)):
        out = tmp_path / f"p{page}.pdf"
        expect(run_detached(signer.agent, "sign-pdf", src, "-o", out, "--cert",
            signer.ec.cert_id, "--visible", "--page", page, "--appearance", appearance), 0)
        check_signed_pdf(src_bytes, out, [signer.ec], nssdb)
        for p in (1, 2, 3):
            codes = zbar(render(out, p, tmp_path / f"p{page}-{p}"))
            assert codes == ([url] if p == want else []), (page, p, codes)
        assert SIGNED_BY in page_text(out, want) and FOOTER in page_text(out, want)
        for p in {1, 2, 3} - {want}:
            assert FOOTER not in page_text(out, p) and SIGNED_BY not in page_text(out, p)

    # --at moves the block: the QR code is elsewhere on the page
    at = {}
    for pos in ("40,80", "280,400"):
        out = tmp_path / f"at-{pos.replace(',', '-')}.pdf"
        expect(run_detached(signer.agent, "sign-pdf", src, "-o", out, "--cert",
            signer.ec.cert_id, "--visible", "--page", "1", "--at", pos, "--appearance",
            appearance), 0)
        check_signed_pdf(src_bytes, out, [signer.ec], nssdb)
        texts, symbols = qr_geometry(out, 1, tmp_path)
        assert texts == [url] and len(symbols) == 1, (texts, symbols)
        at[pos] = symbols[0][2]
    (x1, y1), (x2, y2) = at["40,80"], at["280,400"]
    # 240 pt right and 320 pt up on A4 (595 x 842 pt); the image's y grows downwards
    assert abs((x2 - x1) - 240 / 595) < 0.01 and abs((y1 - y2) - 320 / 842) < 0.01, at
    # and --at is the block's lower-left corner: the QR code (its quiet zone inside the
    # block) starts a little right of and above it
    qx, qy = 40 / 595, 1 - 80 / 842
    assert qx < x1 - QR_CM / 2 / 21.0 + 0.02 and qy > y1 + QR_CM / 2 / 29.7 - 0.02, at


# --- several signers --------------------------------------------------------------------------------

@pytest.mark.parametrize("count", [2, 3])
def test_several_signers(count, ca, token, token_factory, agent_factory, nssdb, appearance,
        run_detached, tmp_path):
    """Two and three signatures by different certificates (RSA and EC keys on one token,
    and a key on a second token), one after the other, the later ones visible on the same
    (last) page: every signature is valid for pdfsig and for `paraf verify` (the earlier
    ones changed only by later signatures), each revision is an exact prefix of the next,
    the last covers the whole file; the visible blocks do not overlap (each QR code decodes,
    to the URL of the document it signed) and the page has one footer."""
    need("qpdf")
    idents = [token.enroll(ca, kind="rsa", common_name="Pejabat Pertama"),
        token.enroll(ca, kind="ec", common_name="Pejabat Kedua")]
    if count == 3:
        idents.append(token_factory("Token Ketiga").enroll(ca, kind="ec",
            common_name="Pejabat Ketiga"))
    agent = agent_factory()
    src = pdfgen.make("multipage", tmp_path / "bersama.pdf")
    src_bytes = src.read_bytes()
    cur, urls = src, []
    for i, ident in enumerate(idents):
        out = tmp_path / f"ttd{i + 1}.pdf"
        extra = []
        if i >= 1:
            extra = ["--visible", "--appearance", appearance]
            urls.append(VERIFY_URL.format(id=sha256_file(cur)))
        expect(run_detached(agent, "sign-pdf", cur, "-o", out, "--cert", ident.cert_id,
            *extra), 0)
        assert out.read_bytes().startswith(cur.read_bytes())
        cur = out
    sigs = check_signed_pdf(src_bytes, cur, idents)
    assert len(sigs) == count
    assert_pdfsig_valid(cur, nssdb, count=count, cns=[cn(i.cert) for i in idents])

    crl = current_crl(ca, tmp_path)
    _, rep = verify_pdf(run_detached, "--ca", ca.cert_path, "--crl", crl, cur, code=EXIT_OK)
    assert len(rep["signatures"]) == count
    assert [s["conclusion"] for s in rep["signatures"]] == ["VALID"] * count, rep
    assert [s["signer_cn"] for s in rep["signatures"]] == [cn(i.cert) for i in idents], rep
    for k, s in enumerate(rep["signatures"]):
        later = count - 1 - k
        assert s["coverage"]["appended"] == ("signatures" if later else "none"), s
        assert s["coverage"]["later_signatures"] == later, s

    if shutil.which("pdftoppm") and shutil.which("zbarimg"):
        texts, symbols = qr_geometry(cur, 3, tmp_path)
        assert sorted(texts) == sorted(urls) and len(symbols) == len(urls), (texts, urls)
        text = page_text(cur, 3)
        assert text.count(FOOTER) == 1, text
        for ident in idents[1:]:
            assert cn(ident.cert) in text, text


# --- verification: the report (R11), tampering, trust, revocation -------------------------------------

@pytest.fixture
def signed(signer, run_detached, tmp_path):
    """A one-page PDF signed invisibly with signer.ec (reason and location given):
    (src Path, out Path, Identity)."""
    src = pdfgen.make("minimal", tmp_path / "nota.pdf")
    out = tmp_path / "nota-ttd.pdf"
    expect(run_detached(signer.agent, "sign-pdf", src, "-o", out, "--cert", signer.ec.cert_id,
        "--reason", "Menyetujui", "--location", "Kota Contoh"), 0)
    return src, out, signer.ec


def test_verify_report(signed, ca, run_detached, tmp_path):
    """R11: `paraf verify FILE.pdf` shows signer, NIP, signing time, integrity and coverage,
    trusted, verified, valid at signing time, issuer, reason, location and the conclusion
    VALID, in text and JSON (exit 0)."""
    src, out, ident = signed
    crl = current_crl(ca, tmp_path)
    (sig,) = find_signatures(out.read_bytes())
    _, rep = verify_pdf(run_detached, "--ca", ca.cert_path, "--crl", crl, out, code=EXIT_OK)
    (s,) = rep["signatures"]
    assert s["conclusion"] == "VALID" and rep["conclusion"] == "VALID", rep
    assert s["signer_cn"] == cn(ident.cert), s
    assert s["signer"] == pki.rfc2253(ident.cert.subject), s
    assert "196501011990031001" in json.dumps(s["nip"]), s  # from serialNumber=NIP…
    assert s["issuer"] == pki.rfc2253(ca.cert.subject), s
    assert abs((parse_time(s["signing_time"]) - m_time(sig)).total_seconds()) < 1, s
    assert s["integrity"] is True and s["trusted"] is True, s
    assert s["verified"] is True and s["valid_at_signing_time"] is True, s
    assert s["reason"] is None and s["indication"] == "TOTAL_PASSED", s
    assert s["pdf"]["reason"] == "Menyetujui" and s["pdf"]["location"] == "Kota Contoh", s
    assert s["pdf"]["sub_filter"] in ("ETSI.CAdES.detached", "/ETSI.CAdES.detached"), s
    assert list(s["pdf"]["byte_range"]) == list(sig.byte_range), s
    assert s["coverage"]["whole_file"] is True and s["coverage"]["appended_bytes"] == 0, s
    assert s["signing_time_source"] == "claimed" and s["timestamp"] is None, s
    assert s["certificate_status"] == "valid" and s["revocation"] == "good", s

    r = expect(run_detached(None, "verify", "--ca", ca.cert_path, "--crl", crl, out), 0)
    for want in (cn(ident.cert), "196501011990031001", cn(ca.cert), "Menyetujui",
            "Kota Contoh", "VALID"):
        assert want in r.stdout, (want, r.stdout)


def test_tampered_byte(signed, ca, nssdb, run_detached, tmp_path):
    """One byte flipped inside the signed range (the page's text): `paraf verify` says
    INVALID (exit 1), and pdfsig does not say valid. One hex digit of the signature value
    changed: INVALID too."""
    src, out, _ = signed
    data = out.read_bytes()
    (sig,) = find_signatures(data)
    i = data.index(b"Halaman 1")
    assert i < sig.byte_range[1]
    bad = tmp_path / "ubah.pdf"
    bad.write_bytes(data[:i] + b"J" + data[i + 1:])  # "Halaman" -> "Jalaman"
    crl = current_crl(ca, tmp_path)
    _, rep = verify_pdf(run_detached, "--ca", ca.cert_path, "--crl", crl, bad,
        code=EXIT_NOT_VALID)
    assert rep["conclusion"] == "INVALID", rep
    assert rep["signatures"][0]["integrity"] is False, rep
    r, sigs = pdfsig(bad, nssdb)
    assert sigs and not sigs[0]["valid"], r.stdout

    # a digit inside the signature value: the gap is not covered, the signature no longer
    # verifies
    sv = sig.signature_value.hex().encode()
    j = data.lower().index(sv, sig.byte_range[1]) + 10
    flipped = b"0" if data[j:j + 1] != b"0" else b"1"
    bad2 = tmp_path / "ubah2.pdf"
    bad2.write_bytes(data[:j] + flipped + data[j + 1:])
    _, rep = verify_pdf(run_detached, "--ca", ca.cert_path, "--crl", crl, bad2,
        code=EXIT_NOT_VALID)
    assert rep["conclusion"] == "INVALID", rep


def test_appended_after_signing(signed, ca, nssdb, run_detached, tmp_path):
    """Bytes appended after signing (an incremental update changing /Info and the page's
    content): the signature still verifies over its range, but `paraf verify` reports that
    it does not cover the whole file and what was added, and does not conclude VALID."""
    src, out, _ = signed
    data = out.read_bytes()
    (sig,) = find_signatures(data)
    t = pdfgen.trailer_dict(data)
    size = int(re.search(rb"/Size\s+(\d+)", t).group(1))
    text = pdfgen.text_ops(["Isi yang ditambahkan setelah ditandatangani."], y=500)
    added = pdfgen.append_update(data, {size: b"<< /Length %d >>\nstream\n" % len(text)
        + text + b"\nendstream"})
    later = tmp_path / "ditambah.pdf"
    later.write_bytes(added)
    crl = current_crl(ca, tmp_path)
    r, rep = verify_pdf(run_detached, "--ca", ca.cert_path, "--crl", crl, later)
    (s,) = rep["signatures"]
    assert s["integrity"] is True, s  # the signed range itself is intact
    cov = s["coverage"]
    assert cov["whole_file"] is False and cov["appended"] == "other", s
    assert cov["signed_end"] == sig.end and cov["file_size"] == len(added), cov
    assert cov["appended_bytes"] == len(added) - sig.end, cov
    assert cov["appended_detail"], cov
    assert rep["conclusion"] == "INDETERMINATE", rep
    assert s["sub_indication"] == "MODIFIED_AFTER_SIGNING", s
    r = run_detached(None, "verify", "--ca", ca.cert_path, "--crl", crl, later)
    assert r.returncode == EXIT_NOT_VALID
    assert re.search(r"changed after signing:\s+YES", r.stdout), r.stdout
    assert f"the first {sig.end} of {len(added)} bytes" in r.stdout, r.stdout
    # pdfsig agrees: valid signature, but not the whole document
    r, sigs = pdfsig(later, nssdb)
    assert sigs[0]["valid"] and not sigs[0]["total"], r.stdout


def test_untrusted_signer(signed, ca, tmp_path, run_detached):
    """A signature by a certificate that does not chain to the anchors given (another CA):
    INDETERMINATE (exit 1), integrity intact, trusted false."""
    _, out, _ = signed
    other = pki.CA(tmp_path / "other-ca", name="Another CA")
    _, rep = verify_pdf(run_detached, "--ca", other.cert_path, out, code=EXIT_NOT_VALID)
    (s,) = rep["signatures"]
    assert rep["conclusion"] == "INDETERMINATE" and s["conclusion"] == "INDETERMINATE", rep
    assert s["integrity"] is True and s["trusted"] is False and s["trust_error"], s
    assert s["sub_indication"] == "NO_CERTIFICATE_CHAIN_FOUND", s


@pytest.mark.parametrize("how", ["crl", "crl-dir"])
def test_revoked_signer(how, signed, ca, tmp_path, run_detached):
    """R8: a CRL (given with --crl, or found in --crl-dir) revoking the signer's
    certificate two hours before it signed: INVALID (exit 1), revoked, not valid at the
    signing time, with the CRL's reason; with a CRL that does not list it, VALID."""
    _, out, ident = signed
    d = tmp_path / "crls"
    d.mkdir()
    crl = current_crl(ca, d, "revoked.crl", revoked=[(ident, pki.utcnow() -
        datetime.timedelta(hours=2), "key_compromise")])
    args = ["--crl", crl] if how == "crl" else ["--crl-dir", d]
    _, rep = verify_pdf(run_detached, "--ca", ca.cert_path, *args, out, code=EXIT_NOT_VALID)
    (s,) = rep["signatures"]
    assert s["conclusion"] == "INVALID" and s["integrity"] is True, s  # revoked before /M
    assert s["revocation"] == "revoked" and s["certificate_status"] == "revoked", s
    assert s["valid_at_signing_time"] is False, s
    assert s["revocation_reason"] and "compromise" in s["revocation_reason"].lower(), s
    good = current_crl(ca, tmp_path, "good.crl")
    verify_pdf(run_detached, "--ca", ca.cert_path, "--crl", good, out, code=EXIT_OK)


# --- bad inputs --------------------------------------------------------------------------------------

BAD_INPUT_ERRORS = {
    "encrypted": r"cannot sign '.*encrypted\.pdf': encrypted PDF",
    "truncated": r"cannot sign '.*truncated\.pdf': damaged or truncated PDF",
    "notpdf": r"cannot sign '.*notpdf\.pdf': not a PDF",
    "zeropages": r"cannot sign '.*zeropages\.pdf': the PDF has no pages",
    "damaged": r"cannot sign '.*damaged\.pdf': damaged PDF",
}


@pytest.mark.parametrize("kind", pdfgen.BAD_KINDS)
def test_bad_input_refused(kind, signer, appearance, run_detached, tmp_path):
    """An input that cannot be signed as it is (encrypted; truncated; not a PDF; no pages;
    damaged so that qpdf would have to repair it) is refused with an error naming the file
    and the problem, non-zero exit, before the agent is asked (no PIN dialog), and nothing is
    left behind (the directory is as it was)."""
    if kind in pdfgen.QPDF_KINDS or kind == "zeropages":
        need("qpdf")
    d = tmp_path / "in"
    src = pdfgen.make(kind, d / f"{kind}.pdf")
    before = listing(d)
    for extra in ([], ["--visible", "--appearance", appearance]):
        r = run_detached(signer.agent, "sign-pdf", src, "-o", d / "out.pdf", "--cert",
            signer.ec.cert_id, *extra)
        expect(r, EXIT_LOCAL, BAD_INPUT_ERRORS[kind])
        assert re.search(r"^paraf: nothing signed$", r.stderr, re.M), r.stderr
        assert listing(d) == before, "something was left behind"
    assert signer.agent.pinentry.dialogs() == [], "a PIN was asked for a file not signed"


def test_page_out_of_range(signer, appearance, run_detached, tmp_path):
    """--page beyond the last page is refused naming the page and the page count (exit 5),
    --page 0 is a usage error (exit 2); nothing written, no PIN asked."""
    d = tmp_path / "in"
    src = pdfgen.make("multipage", d / "tiga.pdf")
    before = listing(d)
    for page in ("4", "0"):
        r = run_detached(signer.agent, "sign-pdf", src, "-o", d / "out.pdf", "--cert",
            signer.ec.cert_id, "--visible", "--appearance", appearance, "--page", page)
        if page == "4":
            expect(r, EXIT_LOCAL, r"--page 4 does not exist, it has 3 pages")
        else:
            expect(r, EXIT_USAGE, r"'--page 0' must be a page number")
        assert listing(d) == before
    assert signer.agent.pinentry.dialogs() == []


def test_output_unwritable(signer, run_detached, tmp_path):
    """An output whose directory does not exist, or whose parent is a file (or, when not
    running as root, a read-only directory), is refused naming the path (exit 5), before
    the PIN is asked; nothing written."""
    d = tmp_path / "w"
    src = pdfgen.make("minimal", d / "in" / "a.pdf")
    before = listing(d)
    for out in (d / "no-such-dir" / "a.pdf", src / "a.pdf"):
        r = run_detached(signer.agent, "sign-pdf", src, "-o", out, "--cert",
            signer.ec.cert_id)
        expect(r, EXIT_LOCAL, r"cannot write '" + re.escape(str(out)) +
            r"': (its directory: No such file or directory|Not a directory)")
        assert listing(d) == before
    if os.getuid() != 0:  # root writes into a read-only directory anyway
        ro = d / "read-only"
        ro.mkdir(mode=0o500)
        r = run_detached(signer.agent, "sign-pdf", src, "-o", ro / "a.pdf", "--cert",
            signer.ec.cert_id)
        expect(r, EXIT_LOCAL, r"cannot write '" + re.escape(str(ro / "a.pdf")))
        assert list(ro.iterdir()) == []
    assert signer.agent.pinentry.dialogs() == []


def test_output_exists_needs_force(signer, nssdb, run_detached, tmp_path):
    """An existing output is refused without --force (exit 5, the file untouched, no PIN
    asked); with --force it is replaced by the signed file (mode 0644); without -o the
    output is NAME-signed.pdf beside the input; --in-place signs the input itself (an
    incremental update of its old bytes). No temporary file is left."""
    d = tmp_path / "docs"
    src = pdfgen.make("minimal", d / "a.pdf")
    src_bytes = src.read_bytes()
    out = d / "a-ttd.pdf"
    out.write_bytes(b"old")
    r = run_detached(signer.agent, "sign-pdf", src, "-o", out, "--cert", signer.ec.cert_id)
    expect(r, EXIT_LOCAL, r"exists")
    assert "a-ttd.pdf" in r.stderr and out.read_bytes() == b"old"
    assert signer.agent.pinentry.dialogs() == []
    expect(run_detached(signer.agent, "sign-pdf", src, "-o", out, "--cert", signer.ec.cert_id,
        "--force"), 0)
    check_signed_pdf(src_bytes, out, [signer.ec], nssdb)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644

    # without -o: NAME-signed.pdf beside the input
    r = expect(run_detached(signer.agent, "sign-pdf", src, "--cert", signer.ec.cert_id), 0)
    check_signed_pdf(src_bytes, d / "a-signed.pdf", [signer.ec], nssdb)
    assert str(d / "a-signed.pdf") in r.stdout, r.stdout

    expect(run_detached(signer.agent, "sign-pdf", src, "--in-place", "--cert",
        signer.ec.cert_id), 0)
    check_signed_pdf(src_bytes, src, [signer.ec], nssdb)
    assert sorted(p.name for p in d.iterdir()) == ["a-signed.pdf", "a-ttd.pdf", "a.pdf"], \
        list(d.iterdir())


# --- batch: one PIN for a listed set of documents (R1) -----------------------------------------------

def test_batch_one_dialog(signer, nssdb, appearance, run_detached, tmp_path):
    """R1: three PDFs in one `paraf sign-pdf` call: exactly one PIN dialog, listing the
    three names; each written to the -o directory, each valid for pdfsig and the independent
    checks (one visible with the same appearance)."""
    need("qpdf")
    srcs = [pdfgen.make(k, tmp_path / "in" / f"{n}.pdf") for k, n in
        (("minimal", "surat-satu"), ("multipage", "surat-dua"), ("objstm", "surat-tiga"))]
    outdir = tmp_path / "out"
    outdir.mkdir()
    r = expect(run_detached(signer.agent, "sign-pdf", *srcs, "--cert", signer.ec.cert_id,
        "-o", outdir, "--visible", "--appearance", appearance), 0)
    (dialog,) = signer.agent.pinentry.dialogs()
    for s in srcs:
        assert s.name in dialog["description"], dialog["description"]
    outs = sorted(outdir.iterdir())
    assert [p.name for p in outs] == sorted(s.name for s in srcs), outs
    for s in srcs:
        check_signed_pdf(s.read_bytes(), outdir / s.name, [signer.ec], nssdb)
        assert str(outdir / s.name) in r.stdout, r.stdout


# --- timestamps (RFC 3161) --------------------------------------------------------------------------

@pytest.fixture
def tsa(ca, tmp_path):
    need("openssl")
    t = TSA(tmp_path / "tsa", ca)
    t.start()
    yield t
    t.stop()


def test_timestamp(signer, nssdb, tsa, ca, run_detached, tmp_path):
    """R16: --tsa URL stamps the signature (RFC 3161, the local test TSA): the CMS carries
    a signature-time-stamp token that `openssl ts -verify` accepts over the signature value
    (with the test CA and TSA certificate); pdfsig still says valid; `paraf verify --json`
    shows the timestamp's time (later than /M here: the TSA waits 2 s) as the signing
    time."""
    tsa.delay = 2.0
    src = pdfgen.make("minimal", tmp_path / "a.pdf")
    out = tmp_path / "a-ts.pdf"
    expect(run_detached(signer.agent, "sign-pdf", src, "-o", out, "--cert", signer.rsa.cert_id,
        "--tsa", tsa.url), 0)
    (s,) = check_signed_pdf(src.read_bytes(), out, [signer.rsa], nssdb)
    assert len(tsa.requests) == 1 and tsa.requests[0].status == 200, tsa.requests
    req = tsa.requests[0]
    assert req.headers.get("Content-Type") == "application/timestamp-query", req.headers
    assert OID_TST in s.unsigned, f"no signature-time-stamp token: {list(s.unsigned)}"
    token = s.unsigned[OID_TST][0].raw
    tok_path = tmp_path / "token.der"
    tok_path.write_bytes(token)
    v = run(["openssl", "ts", "-verify", "-digest", hashlib.sha256(s.signature_value).hexdigest(),
        "-in", tok_path, "-token_in", "-CAfile", ca.cert_path, "-untrusted", tsa.cert_path])
    assert v.returncode == 0 and "Verification: OK" in v.stdout, v.stdout + v.stderr
    gen = req.gen_time
    assert gen is not None and gen >= m_time(s) + datetime.timedelta(seconds=1), \
        (gen, m_time(s))

    crl = current_crl(ca, tmp_path)
    _, rep = verify_pdf(run_detached, "--ca", ca.cert_path, "--crl", crl, out, code=EXIT_OK)
    (sv,) = rep["signatures"]
    assert parse_time(sv["signing_time"]) == gen, (sv["signing_time"], gen, m_time(s))
    assert sv["signing_time_source"] == "timestamp", sv
    assert sv["timestamp"]["status"] == "valid" and parse_time(sv["timestamp"]["time"]) == gen
    assert parse_time(sv["claimed_signing_time"]) == m_time(s), sv
    assert "Paraf Test TSA" in sv["timestamp"]["tsa"], sv


TSA_ERRORS = {
    "garbage": r"timestamp server's reply is not a TimeStampResp",
    "http500": r"timestamp server answered HTTP 500",
    "wrong-imprint": r"timestamp server's reply is refused: message imprint",
    "unreachable": r"cannot reach the timestamp server: .*127\.0\.0\.1",
}


@pytest.mark.parametrize("mode", TSA_ERRORS)
def test_timestamp_failure(mode, signer, tsa, run_detached, tmp_path):
    """A TSA that answers garbage, HTTP 500, or a token over another digest, or none at
    all: a clear error saying what the timestamp server did (exit 5), and nothing
    written."""
    tsa.mode = mode if mode != "unreachable" else "ok"
    url = tsa.url
    if mode == "unreachable":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"  # bound, never listening
    else:
        s = None
    d = tmp_path / "in"
    src = pdfgen.make("minimal", d / "a.pdf")
    before = listing(d)
    try:
        r = run_detached(signer.agent, "sign-pdf", src, "-o", d / "a-ts.pdf", "--cert",
            signer.ec.cert_id, "--tsa", url)
    finally:
        if s:
            s.close()
    expect(r, EXIT_LOCAL, TSA_ERRORS[mode])
    assert re.search(r"a\.pdf'?: .*nothing written", r.stderr), r.stderr
    assert listing(d) == before, "something was written"
