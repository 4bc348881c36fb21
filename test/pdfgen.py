#!/usr/bin/python3
"""
Test PDFs for paraf's PDF tests, benchmark and demo, made here without any PDF library: the
bytes of a classic PDF are written by hand (objects, a classic cross-reference table with
exact offsets, a trailer), and the `qpdf` command line turns them into the other variants.

Library use:

    data = simple_pdf(pages=1, title="…", lines=["…", …])   # bytes: PDF 1.4, classic xref
    letter_pdf(name="Budi Santoso", nip="…", …)              # an official letter (kop surat)
    large_pdf(path, size)                                    # about `size` bytes (images)
    make(kind, path)                                         # one of KINDS, written to path

KINDS (make() writes each to a path; the ones made with qpdf skip nothing themselves: the
caller checks `have_qpdf()`):

    minimal        one page, PDF 1.4, classic xref, some text
    multipage      three pages, classic xref, text on each
    objstm         multipage rewritten by `qpdf --object-streams=generate` (object streams
                   and a cross-reference stream, compressed content)
    incremental    minimal with one incremental update appended by hand (a new /Info and a
                   page's new content stream: a second xref section with /Prev)
    pdf13          one page with a %PDF-1.3 header
    pdf20          minimal rewritten by `qpdf --force-version=2.0`
    encrypted      minimal encrypted by `qpdf --encrypt user owner 256` (AES-256)
    truncated      the first 60 % of minimal's bytes
    notpdf         a text file named .pdf
    zeropages      `qpdf --empty`: a catalog and a page tree with /Count 0 (hand-made if
                   qpdf is missing)
    damaged        minimal with 64 bytes inserted after the header and startxref moved
                   with the table, so that the tail is well-formed but every xref entry is
                   wrong: qpdf repairs it (with warnings), a careful signer refuses

Command line (scripts/demo.sh, test/bench.py):

    pdfgen.py letter OUT.pdf [--name N] [--nip NIP] [--position P] [--number NO] ...
    pdfgen.py kind KIND OUT.pdf
    pdfgen.py large OUT.pdf SIZE_BYTES
"""

import argparse
import datetime
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

A4 = (595, 842)
PRODUCER = "paraf test/pdfgen.py"

KINDS = ("minimal", "multipage", "objstm", "incremental", "pdf13", "pdf20", "libreoffice",
    "encrypted", "truncated", "notpdf", "zeropages", "damaged")
# the kinds a signer must accept, and those it must refuse
GOOD_KINDS = ("minimal", "multipage", "objstm", "incremental", "pdf13", "pdf20",
              "libreoffice")
BAD_KINDS = ("encrypted", "truncated", "notpdf", "zeropages", "damaged")
QPDF_KINDS = ("objstm", "pdf20", "encrypted")

USER_PASSWORD = "user"
OWNER_PASSWORD = "owner"


def have_qpdf():
    return shutil.which("qpdf") is not None


# --- PDF syntax ----------------------------------------------------------------------------------

def pdf_string(text):
    """A PDF literal string in WinAnsiEncoding (Latin-1 here) with (, ) and \\ escaped."""
    b = text.encode("latin-1", errors="replace")
    out = bytearray(b"(")
    for c in b:
        if c in b"()\\":
            out += b"\\" + bytes([c])
        elif c < 0x20 or c > 0x7e:
            out += b"\\%03o" % c
        else:
            out.append(c)
    return bytes(out + b")")


def pdf_date(t=None):
    t = t or datetime.datetime.now(datetime.timezone.utc)
    return "D:" + t.astimezone(datetime.timezone.utc).strftime("%Y%m%d%H%M%S") + "Z"


class Writer:
    """Writes a PDF with a classic cross-reference table. Objects are numbered in the order
    they are reserved; add(num, body) gives one its bytes (without `N 0 obj`/`endobj`), or a
    function put -> None that writes them in pieces."""

    def __init__(self, version="1.4"):
        self.version = version
        self.bodies = {}
        self.next = 1

    def reserve(self):
        n = self.next
        self.next += 1
        return n

    def add(self, num, body):
        if isinstance(body, str):
            body = body.encode("latin-1")
        self.bodies[num] = body
        return num

    def new(self, body):
        return self.add(self.reserve(), body)

    def stream(self, data, extra=b""):
        """The body of a stream object holding `data` (uncompressed)."""
        return b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"

    def write(self, out, root, info=None, file_id=None):
        """Writes the whole file to `out` (a binary file object); returns the bytes written."""
        pos = 0

        def put(b):
            nonlocal pos
            out.write(b)
            pos += len(b)

        # a binary comment after the header, as the standard recommends (7.5.2)
        put(b"%%PDF-%s\n%%\xe2\xe3\xcf\xd3\n" % self.version.encode())
        offsets = {}
        for num in range(1, self.next):
            offsets[num] = pos
            put(b"%d 0 obj\n" % num)
            body = self.bodies[num]
            if callable(body):
                body(put)  # a large body written in pieces
            else:
                put(body)
            put(b"\nendobj\n")
        xref = pos
        size = self.next
        rows = [b"0000000000 65535 f\r\n"]
        rows += [b"%010d 00000 n\r\n" % offsets[n] for n in range(1, size)]
        put(b"xref\n0 %d\n" % size + b"".join(rows))
        if file_id is None:
            file_id = hashlib.md5(b"%d" % xref + repr(sorted(offsets.items())).encode()
                ).hexdigest()
        trailer = b"/Size %d /Root %d 0 R" % (size, root)
        if info:
            trailer += b" /Info %d 0 R" % info
        trailer += b" /ID [<%s> <%s>]" % (file_id.encode(), file_id.encode())
        put(b"trailer\n<< " + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref)
        return pos

    def bytes(self, root, info=None):
        import io
        b = io.BytesIO()
        self.write(b, root, info)
        return b.getvalue()


def text_ops(lines, x=72, y=770, size=11, leading=15, font="F1"):
    """Content-stream operators that show `lines` from (x, y) downwards. A line is a str, a
    (font, size, str) tuple, or a list of (dx, str) cells, each shown dx points right of the
    line's start (for "Nomor : …" columns)."""
    ops = [b"BT", b"/%s %d Tf" % (font.encode(), size), b"%d TL" % leading,
        b"%d %d Td" % (x, y)]
    for line in lines:
        if isinstance(line, list):
            for dx, text in line:
                ops.append(b"%d 0 Td " % dx + pdf_string(text) + b" Tj %d 0 Td" % -dx)
            ops.append(b"T*")
        elif isinstance(line, tuple):
            f, s, text = line
            ops.append(b"/%s %d Tf" % (f.encode(), s))
            ops.append(pdf_string(text) + b" Tj T*")
            ops.append(b"/%s %d Tf" % (font.encode(), size))
        else:
            ops.append(pdf_string(line) + b" Tj T*")
    ops.append(b"ET")
    return b"\n".join(ops) + b"\n"


def _fonts(w):
    regular = w.new(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
        b"/Encoding /WinAnsiEncoding >>")
    bold = w.new(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold "
        b"/Encoding /WinAnsiEncoding >>")
    return regular, bold


def _document(w, page_contents, title, media_box=A4, extra_resources=b""):
    """Adds a catalog, a page tree with one page per content stream, fonts and /Info; returns
    (root, info)."""
    catalog = w.reserve()
    pages = w.reserve()
    regular, bold = _fonts(w)
    kids = []
    for content in page_contents:
        c = w.new(w.stream(content))
        kids.append(w.new(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] "
            b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> %s>> /Contents %d 0 R >>"
            % (pages, media_box[0], media_box[1], regular, bold, extra_resources, c)))
    w.add(pages, b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % k for k in kids), len(kids)))
    w.add(catalog, b"<< /Type /Catalog /Pages %d 0 R >>" % pages)
    info = w.new(b"<< /Title " + pdf_string(title) + b" /Producer " + pdf_string(PRODUCER)
        + b" /CreationDate " + pdf_string(pdf_date()) + b" >>")
    return catalog, info


def simple_pdf(pages=1, title="Dokumen uji paraf", lines=None, version="1.4"):
    """A PDF with `pages` A4 pages of text, a classic xref, Helvetica (WinAnsiEncoding)."""
    w = Writer(version)
    contents = []
    for p in range(pages):
        body = lines if lines is not None else [
            f"{title}",
            "",
            f"Halaman {p + 1} dari {pages}.",
            "Dokumen ini dibuat oleh test/pdfgen.py untuk menguji penandatanganan PDF.",
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
        ]
        contents.append(text_ops([("F2", 14, body[0])] + list(body[1:])))
    root, info = _document(w, contents, title)
    return w.bytes(root, info)


def letter_lines(name, nip, position, unit, regency, number, subject, year=None):
    """The text of an official letter (naskah dinas: kop surat, Nomor, Perihal, body)."""
    year = year or datetime.date.today().year
    return [
        ("F2", 13, f"PEMERINTAH {regency.upper()}"),
        ("F2", 15, unit.upper()),
        "Jalan Merdeka Nomor 17, Contoh 12345, Telepon (0123) 456789",
        "Laman: diskominfo.contoh.go.id, Pos-el: diskominfo@contoh.go.id",
        "",
        [(0, "Nomor"), (60, ":"), (70, number)],
        [(0, "Sifat"), (60, ":"), (70, "Penting")],
        [(0, "Lampiran"), (60, ":"), (70, "-")],
        [(0, "Perihal"), (60, ":"), (70, subject)],
        "",
        "Yth. Kepala Perangkat Daerah",
        f"di Lingkungan Pemerintah {regency}",
        "",
        "Dalam rangka pelaksanaan Peraturan Bupati tentang Penggunaan Sertifikat Elektronik",
        f"di Lingkungan Pemerintah {regency}, dengan hormat kami mengundang Saudara",
        "untuk hadir pada rapat koordinasi yang akan dilaksanakan pada:",
        "",
        [(30, "hari, tanggal"), (110, ":"), (120, f"Senin, 7 Desember {year}")],
        [(30, "pukul"), (110, ":"), (120, "09.00 WIB s.d. selesai")],
        [(30, "tempat"), (110, ":"), (120, "Ruang Rapat Diskominfo, Lantai 2")],
        [(30, "acara"), (110, ":"), (120, "Penerapan tanda tangan elektronik pada naskah dinas")],
        "",
        "Mengingat pentingnya acara tersebut, kehadiran Saudara sangat kami harapkan.",
        "Demikian undangan ini kami sampaikan. Atas perhatian dan kehadiran Saudara,",
        "kami ucapkan terima kasih.",
        "",
        f"{position}",
        f"{regency},",
        "",
        ("F2", 11, name),
        f"NIP {nip}",
    ]


def letter_pdf(name="Budi Santoso", nip="19780315 200501 1 002",
        position="Kepala Dinas Komunikasi dan Informatika",
        unit="Dinas Komunikasi dan Informatika", regency="Kabupaten Contoh",
        number=None, subject="Undangan Rapat Koordinasi Penerapan Tanda Tangan Elektronik",
        year=None):
    """A one-page official letter: the kop surat (regency, unit, address) above a rule, then
    Nomor, Sifat, Lampiran, Perihal, the addressee, the body and the official's position,
    name and NIP, leaving the lower part of the page free for the signature block."""
    year = year or datetime.date.today().year
    number = number or f"005/123/DISKOMINFO/{year}"
    lines = letter_lines(name, nip, position, unit, regency, number, subject, year)
    w = Writer("1.4")
    head = text_ops(lines[:4], x=150, y=790, size=10, leading=16)
    rule = b"1.5 w 72 722 m 523 722 l S 0.5 w 72 719 m 523 719 l S\n"
    body = text_ops(lines[4:], x=72, y=700, size=11, leading=15)
    root, info = _document(w, [head + rule + body], f"Surat {number}")
    return w.bytes(root, info)


# --- large PDFs (bench) -------------------------------------------------------------------------

def large_pdf(path, size, page_image=1 << 20, seed=b"paraf"):
    """Writes a PDF of about `size` bytes to `path`: pages each showing one grey image
    XObject of about `page_image` bytes of pseudo-random (incompressible) samples, as a
    scanned document is. Streams to the file; returns the number of bytes written."""
    side = max(16, int(page_image ** 0.5))
    per_page = side * side
    n_pages = max(1, round(size / per_page))
    w = Writer("1.4")
    catalog = w.reserve()
    pages = w.reserve()
    regular, bold = _fonts(w)
    kids = []
    images = []
    for p in range(n_pages):
        img = w.reserve()
        images.append(img)
        content = text_ops([("F2", 14, f"Lampiran {p + 1} dari {n_pages}"),
            "Hasil pindaian dokumen (data uji)."], y=800) + \
            b"q 451 0 0 451 72 300 cm /Im0 Do Q\n"
        c = w.new(w.stream(content))
        kids.append(w.new(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> /XObject << /Im0 %d 0 R >> >> "
            b"/Contents %d 0 R >>" % (pages, regular, bold, img, c)))
    w.add(pages, b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % k for k in kids), len(kids)))
    w.add(catalog, b"<< /Type /Catalog /Pages %d 0 R >>" % pages)
    info = w.new(b"<< /Title (Lampiran besar) /Producer " + pdf_string(PRODUCER) + b" >>")

    head = (b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Length %d >>\nstream\n" % (side, side, per_page))
    for i, img in enumerate(images):
        def body(put, i=i):  # the samples are made while writing, a page at a time
            put(head)
            put(_pseudo_random(per_page, seed + b"%d" % i))
            put(b"\nendstream")
        w.add(img, body)
    with open(path, "wb") as f:
        return w.write(f, catalog, info)


def _pseudo_random(n, seed):
    """n pseudo-random bytes, fast (SHAKE-256), reproducible from seed."""
    return hashlib.shake_256(seed).digest(n)


# --- incremental updates -------------------------------------------------------------------------

def startxref(data):
    """The offset after the last `startxref` of a PDF's bytes."""
    m = list(re.finditer(rb"startxref\s+(\d+)\s+%%EOF", data[-2048:]))
    if not m:
        raise ValueError("no startxref at the end of the file")
    return int(m[-1].group(1))


def trailer_dict(data):
    """The text of the last classic trailer dictionary (between `trailer` and `startxref`)."""
    i = data.rfind(b"trailer")
    if i < 0:
        raise ValueError("no classic trailer")
    j = data.find(b"startxref", i)
    return data[i + len(b"trailer"):j]


def append_update(data, objects):
    """Appends an incremental update to a PDF with a classic xref: `objects` is {number:
    body bytes} (new or replacing), written after the end of `data` with an xref section of
    their own and a trailer whose /Prev is the previous startxref. Returns the new bytes."""
    prev = startxref(data)
    t = trailer_dict(data)
    size = int(re.search(rb"/Size\s+(\d+)", t).group(1))
    root = re.search(rb"/Root\s+(\d+\s+\d+\s+R)", t).group(1)
    info = re.search(rb"/Info\s+(\d+\s+\d+\s+R)", t)
    fid = re.search(rb"/ID\s*\[\s*<([0-9a-fA-F]+)>", t)
    out = bytearray(data)
    if not out.endswith(b"\n"):
        out += b"\n"
    offsets = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objects[num] + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n"
    for num in sorted(objects):  # one subsection per object: simple and always valid
        out += b"%d 1\n%010d 00000 n\r\n" % (num, offsets[num])
    size = max([size] + [n + 1 for n in objects])
    tr = b"/Size %d /Root %s /Prev %d" % (size, root, prev)
    if info:
        tr += b" /Info " + info.group(1)
    if fid:
        new = hashlib.md5(bytes(out)).hexdigest().encode()
        tr += b" /ID [<%s> <%s>]" % (fid.group(1), new)
    out += b"trailer\n<< " + tr + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def incremental_pdf():
    """minimal, then an update (by hand) that replaces /Info and the page's content stream."""
    base = simple_pdf(title="Dokumen dengan pembaruan inkremental")
    t = trailer_dict(base)
    info = int(re.search(rb"/Info\s+(\d+)", t).group(1))
    size = int(re.search(rb"/Size\s+(\d+)", t).group(1))
    page = int(re.search(rb"(\d+) 0 obj\n<< /Type /Page /Parent", base).group(1))
    page_body = re.search(rb"%d 0 obj\n(.*?)\nendobj" % page, base, re.S).group(1)
    content = size  # a new object number
    new_page = re.sub(rb"/Contents \d+ 0 R", b"/Contents %d 0 R" % content, page_body)
    text = text_ops([("F2", 14, "Dokumen dengan pembaruan inkremental"), "",
        "Revisi kedua: isi halaman ini diganti oleh pembaruan inkremental."])
    stream = b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream"
    return append_update(base, {
        info: b"<< /Title (Dokumen revisi 2) /Producer " + pdf_string(PRODUCER)
            + b" /ModDate " + pdf_string(pdf_date()) + b" >>",
        page: new_page,
        content: stream,
    })


# --- the kinds -----------------------------------------------------------------------------------

def qpdf(*args):
    """Runs qpdf; exit 0 and 3 (warnings) are success. Raises on other statuses."""
    r = subprocess.run(["qpdf"] + [str(a) for a in args], capture_output=True, text=True)
    if r.returncode not in (0, 3):
        raise RuntimeError(f"qpdf {' '.join(map(str, args))} failed ({r.returncode}): "
            f"{r.stderr}")
    return r


def zero_page_pdf():
    """Hand-made: a catalog and an empty page tree."""
    w = Writer("1.4")
    pages = w.reserve()
    w.add(pages, b"<< /Type /Pages /Kids [] /Count 0 >>")
    root = w.new(b"<< /Type /Catalog /Pages %d 0 R >>" % pages)
    return w.bytes(root)


def make(kind, path):
    """Writes a test PDF of `kind` (see KINDS) to path; returns the Path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.src")
    if kind == "minimal":
        path.write_bytes(simple_pdf(title="Dokumen uji satu halaman"))
    elif kind == "multipage":
        path.write_bytes(simple_pdf(pages=3, title="Dokumen uji tiga halaman"))
    elif kind == "objstm":
        tmp.write_bytes(simple_pdf(pages=3, title="Dokumen dengan object stream"))
        qpdf("--object-streams=generate", "--compress-streams=y", tmp, path)
    elif kind == "incremental":
        path.write_bytes(incremental_pdf())
    elif kind == "pdf13":
        path.write_bytes(simple_pdf(title="Dokumen PDF 1.3", version="1.3"))
    elif kind == "pdf20":
        tmp.write_bytes(simple_pdf(title="Dokumen PDF 2.0"))
        qpdf("--force-version=2.0", tmp, path)
    elif kind == "libreoffice":
        # A real export from LibreOffice Writer, kept in test/data (see its README).
        path.write_bytes((Path(__file__).parent / "data" / "libreoffice-nota-dinas.pdf")
                         .read_bytes())
    elif kind == "encrypted":
        tmp.write_bytes(simple_pdf(title="Dokumen terenkripsi"))
        qpdf("--encrypt", USER_PASSWORD, OWNER_PASSWORD, "256", "--", tmp, path)
    elif kind == "truncated":
        data = simple_pdf(title="Dokumen terpotong")
        path.write_bytes(data[:len(data) * 6 // 10])
    elif kind == "notpdf":
        path.write_bytes(b"Ini bukan PDF, hanya teks biasa.\n" * 20)
    elif kind == "zeropages":
        if have_qpdf():
            qpdf("--empty", path)
        else:
            path.write_bytes(zero_page_pdf())
    elif kind == "damaged":
        data = simple_pdf(title="Dokumen rusak")
        cut = data.index(b"\n", data.index(b"\n") + 1) + 1  # after the two header lines
        pad = b"%" + b"x" * 62 + b"\n"  # 64 bytes: every object is now 64 bytes later
        data = data[:cut] + pad + data[cut:]
        # startxref is moved with the table (the file's tail is well-formed), the table's
        # entries are not: a reader must reconstruct the object map (qpdf: "file is damaged")
        old = startxref(data)
        tail = data.rindex(b"startxref")
        data = data[:tail] + b"startxref\n%d\n%%%%EOF\n" % (old + len(pad))
        path.write_bytes(data)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    if tmp.exists():
        tmp.unlink()
    return path


# --- command line --------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description="test PDFs for paraf")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("letter", help="a one-page official letter (kop surat)")
    p.add_argument("out")
    p.add_argument("--name", default="Budi Santoso")
    p.add_argument("--nip", default="19780315 200501 1 002")
    p.add_argument("--position", default="Kepala Dinas Komunikasi dan Informatika")
    p.add_argument("--unit", default="Dinas Komunikasi dan Informatika")
    p.add_argument("--regency", default="Kabupaten Contoh")
    p.add_argument("--number")
    p.add_argument("--subject", default="Undangan Rapat Koordinasi Penerapan Tanda Tangan "
        "Elektronik")
    p = sub.add_parser("kind", help="one of the test kinds: " + ", ".join(KINDS))
    p.add_argument("kind", choices=KINDS)
    p.add_argument("out")
    p = sub.add_parser("large", help="a PDF of about SIZE bytes (pages of images)")
    p.add_argument("out")
    p.add_argument("size", type=int)
    args = ap.parse_args(argv)
    if args.cmd == "letter":
        Path(args.out).write_bytes(letter_pdf(name=args.name, nip=args.nip,
            position=args.position, unit=args.unit, regency=args.regency,
            number=args.number, subject=args.subject))
    elif args.cmd == "kind":
        make(args.kind, args.out)
    elif args.cmd == "large":
        large_pdf(args.out, args.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
