#!/usr/bin/python3
"""
vpiv: a small PIV card emulator for paraf's tests, speaking vsmartcard's vpcd protocol.

vpcd (the PC/SC reader driver of vsmartcard, loaded by pcscd) listens on a TCP port; this
program is the card: it connects to that port, and while it is connected the reader holds a
card. Messages both ways are a 2-byte big-endian length and the bytes; from vpcd, a message of
length 1 is a control (0 power off, 1 power on, 2 reset, 4 get ATR: answered with the ATR),
anything longer a command APDU, answered with the response APDU.

What the card does (NIST SP 800-73-4, just enough for OpenSC 0.23's PIV driver):
  SELECT the PIV application (A0 00 00 03 08 ...)     the application property template
  GET DATA (00 CB 3F FF, 5C tag)                       CHUID (its GUID is the token serial
                                                       OpenSC shows), discovery object, the
                                                       certificate objects of 9A 9C 9D 9E
  VERIFY (00 20 00 80)                                 the PIN (ASCII, padded with FF to 8),
                                                       63Cx wrong (x tries left), 6983
                                                       blocked; empty: the status;
                                                       P1 FF: reset the security status
  GENERAL AUTHENTICATE (00 87 alg key, 7C{82,81})      RSA raw on the block OpenSC padded
                                                       (alg 07, 06), ECDSA of the hash
                                                       returning DER (alg 11 P-256, 14 P-384)
  GET RESPONSE (00 C0)                                 response chaining honouring Le
  command chaining (CLA 10)
Security status: 9A and 9D need the PIN verified since the last reset; 9C (digital
signature) needs a successful VERIFY *immediately* before each GENERAL AUTHENTICATE (any
other command in between cancels it), which is why OpenSC marks it CKA_ALWAYS_AUTHENTICATE;
9E needs nothing.

Usage:
    vpiv.py --port PORT --cards CARDS.json --control SOCKET [--log LOG] [--card NAME]
            [--absent] [--host 127.0.0.1]

CARDS.json: {"NAME": {"guid": "32 hex", "pin": "123456", "tries": 3,
                      "keys": {"9a": {"key": "k.pem", "cert": "c.der"}, "9c": {...}}}, ...}
The first card (or --card) is the one in the reader; --absent starts with the reader empty.

Control socket (Unix stream; one command line, one JSON answer line):
    remove           disconnect from vpcd: the reader shows no card (pcscd polls ~0.4 s)
    insert           connect again (the card is reset: nothing verified), but not sooner
                     than 1 s after the removal, so that pcscd sees the reader empty
    swap NAME        remove, become card NAME (another identity, its own PIN state), insert
    status           {"inserted", "connected", "card", "tries", "powered", "atr_requests",
                     "seen" (vpcd has talked to the current connection: the reader has it)}
    tries N          set the current card's remaining PIN tries (0 blocks it)
Every APDU is logged to --log as one JSON line: {"t", "card", "cla", "ins", "p1", "p2",
"lc", "sw", "what"} ("what": select, get-data 5fc105, verify-ok, verify-wrong,
verify-status, verify-reset, sign 9c, ...). Never the PIN.
"""

import argparse
import json
import os
import select
import socket
import struct
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils

PIV_AID = bytes.fromhex("a000000308000010000100")
# TS 3B, T0 8A (TD1, 10 historical bytes), TD1 80 (TD2, T=0), TD2 01 (T=1), TCK.
_HIST = b"paraf-vPIV"
_ATR_BODY = bytes([0x8A, 0x80, 0x01]) + _HIST

def _tck(body):
    x = 0
    for b in body:
        x ^= b
    return x


ATR = bytes([0x3B]) + _ATR_BODY + bytes([_tck(_ATR_BODY)])

SW_OK = b"\x90\x00"
SW_NOT_FOUND = b"\x6a\x82"
SW_INS = b"\x6d\x00"
SW_CLA = b"\x6e\x00"
SW_WRONG_DATA = b"\x6a\x80"
SW_WRONG_P1P2 = b"\x6a\x86"
SW_REF_NOT_FOUND = b"\x6a\x88"
SW_SECURITY = b"\x69\x82"
SW_BLOCKED = b"\x69\x83"
SW_NO_RESPONSE = b"\x69\x85"

ABSENT_MIN_S = 1.0  # a removed card stays out at least this long (see disconnect())

CERT_TAGS = {"9a": "5fc105", "9c": "5fc10a", "9d": "5fc10b", "9e": "5fc101"}
KEY_REFS = {0x9A: "9a", 0x9C: "9c", 0x9D: "9d", 0x9E: "9e"}


def tlv(tag, value):
    """BER-TLV with a one- or multi-byte tag given as bytes or int."""
    t = bytes([tag]) if isinstance(tag, int) else tag
    n = len(value)
    if n < 0x80:
        ln = bytes([n])
    elif n < 0x100:
        ln = bytes([0x81, n])
    else:
        ln = bytes([0x82, n >> 8, n & 0xFF])
    return t + ln + value


def parse_tlvs(data):
    """Simple BER-TLV list: [(tag int, value bytes)]; tags of one or two bytes."""
    out, i = [], 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:
            tag = (tag << 8) | data[i]
            i += 1
        n = data[i]
        i += 1
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(data[i:i + k], "big")
            i += k
        out.append((tag, data[i:i + n]))
        i += n
    return out


class Card:
    def __init__(self, name, spec):
        self.name = name
        self.guid = bytes.fromhex(spec.get("guid") or os.urandom(16).hex())
        self.pin = spec.get("pin", "123456").encode()
        self.max_tries = int(spec.get("tries", 3))
        self.tries = self.max_tries
        self.keys, self.certs = {}, {}
        for ref, k in spec.get("keys", {}).items():
            with open(k["key"], "rb") as f:
                self.keys[ref] = serialization.load_pem_private_key(f.read(), None)
            with open(k["cert"], "rb") as f:
                self.certs[ref] = f.read()
        self.reset()

    def reset(self):
        self.selected = False
        self.verified = False
        self.just_verified = False  # VERIFY was the command right before this one
        self.chain = b""            # command chaining buffer
        self.pending = b""          # response chaining: bytes not yet fetched

    # -- objects --

    def chuid(self):
        fascn = bytes.fromhex("d4e739da739ced39ce739d836858210842108421c84210c3eb")
        return (tlv(0x30, fascn) + tlv(0x34, self.guid) + tlv(0x35, b"20351231")
            + tlv(0x3E, b"") + tlv(0xFE, b""))

    def get_object(self, tag):
        if tag == "7e":  # discovery object: PIV AID, PIN usage policy (PIV PIN only)
            return tlv(0x7E, tlv(0x4F, PIV_AID) + tlv(b"\x5f\x2f", b"\x40\x00"))
        if tag == "5fc102":
            return tlv(0x53, self.chuid())
        for ref, t in CERT_TAGS.items():
            if t == tag and ref in self.certs:
                return tlv(0x53, tlv(0x70, self.certs[ref]) + tlv(0x71, b"\x00")
                    + tlv(0xFE, b""))
        return None

    def apt(self):
        return tlv(0x61, tlv(0x4F, PIV_AID[5:]) + tlv(0x79, tlv(0x4F, PIV_AID[:5]))
            + tlv(0x50, b"paraf virtual PIV")
            + tlv(0xAC, tlv(0x80, b"\x07") + tlv(0x80, b"\x11") + tlv(0x06, b"\x00")))

    # -- the signature --

    def sign(self, alg, ref, challenge):
        key = self.keys.get(ref)
        if key is None:
            return None
        if isinstance(key, rsa.RSAPrivateKey):
            if alg not in (0x06, 0x07) or len(challenge) != key.key_size // 8:
                return None
            n = key.private_numbers()
            m = int.from_bytes(challenge, "big")
            if m >= n.public_numbers.n:
                return None
            s = pow(m, n.d, n.public_numbers.n)
            return s.to_bytes(key.key_size // 8, "big")
        if isinstance(key, ec.EllipticCurvePrivateKey):
            size = (key.curve.key_size + 7) // 8
            if (alg, key.curve.name) not in ((0x11, "secp256r1"), (0x14, "secp384r1")):
                return None
            h = challenge[:size].rjust(size, b"\x00")
            algo = hashes.SHA256() if size == 32 else hashes.SHA384()
            return key.sign(h, ec.ECDSA(utils.Prehashed(algo)))
        return None

    # -- APDUs --

    def respond(self, data, le):
        """Response chaining: at most le bytes now (le 0 = 256), the rest by GET RESPONSE."""
        le = 256 if le in (None, 0) else le
        if len(data) <= le:
            self.pending = b""
            return data + SW_OK
        self.pending = data[le:]
        left = len(self.pending)
        return data[:le] + bytes([0x61, left if left < 256 else 0])

    def apdu(self, cmd, log):
        if len(cmd) < 4:
            return SW_WRONG_DATA
        cla, ins, p1, p2 = cmd[:4]
        body = cmd[4:]
        data, le = b"", None
        if len(body) == 1:
            le = body[0] or 256
        elif len(body) > 1 and body[0] == 0 and len(body) >= 3:  # extended
            if len(body) == 3:
                le = int.from_bytes(body[1:3], "big") or 65536
            else:
                lc = int.from_bytes(body[1:3], "big")
                data = body[3:3 + lc]
                rest = body[3 + lc:]
                if rest:
                    le = int.from_bytes(rest[-2:], "big") or 65536
        elif body:
            lc = body[0]
            data = body[1:1 + lc]
            rest = body[1 + lc:]
            if rest:
                le = rest[0] or 256
        rec = {"t": round(time.time(), 3), "card": self.name, "cla": f"{cla:02x}",
            "ins": f"{ins:02x}", "p1": f"{p1:02x}", "p2": f"{p2:02x}", "lc": len(data)}
        just_verified, self.just_verified = self.just_verified, False
        if ins != 0xC0:
            self.pending = b""
        what, resp = self.dispatch(cla, ins, p1, p2, data, le, just_verified)
        rec["sw"] = resp[-2:].hex()
        rec["what"] = what
        log(rec)
        return resp

    def dispatch(self, cla, ins, p1, p2, data, le, just_verified):
        if cla & 0xEF != 0x00:
            return "bad-cla", SW_CLA
        if cla & 0x10:  # command chaining: keep the part, answer 9000
            self.chain += data
            self.just_verified = just_verified  # the chain's parts are one command
            return "chain", SW_OK
        if self.chain:
            data, self.chain = self.chain + data, b""
        if ins == 0xA4:
            if p1 == 0x04 and data and PIV_AID.startswith(data):
                self.selected = True
                return "select", self.respond(self.apt(), le)
            self.selected = False if p1 == 0x04 else self.selected
            return "select-other", SW_NOT_FOUND
        if ins == 0xC0:
            if not self.pending:
                return "get-response-none", SW_NO_RESPONSE
            return "get-response", self.respond(self.pending, le)
        if not self.selected:
            return f"ins-{ins:02x}-unselected", SW_INS
        if ins == 0xCB:
            if p1 != 0x3F or p2 != 0xFF:
                return "get-data-bad-p1p2", SW_WRONG_P1P2
            tags = parse_tlvs(data)
            if not tags or tags[0][0] != 0x5C:
                return "get-data-bad", SW_WRONG_DATA
            tag = tags[0][1].hex()
            obj = self.get_object(tag)
            if obj is None:
                return f"get-data {tag}", SW_NOT_FOUND
            return f"get-data {tag}", self.respond(obj, le)
        if ins == 0x20:
            if p2 != 0x80:
                return f"verify-ref-{p2:02x}", SW_REF_NOT_FOUND
            if p1 == 0xFF:
                self.verified = False
                return "verify-reset", SW_OK
            if p1 != 0x00:
                return "verify-bad-p1", SW_WRONG_P1P2
            if not data:
                if self.tries == 0:
                    return "verify-status", SW_BLOCKED
                if self.verified:
                    return "verify-status", SW_OK
                return "verify-status", bytes([0x63, 0xC0 | self.tries])
            if self.tries == 0:
                return "verify-blocked", SW_BLOCKED
            if len(data) != 8:
                return "verify-bad-length", SW_WRONG_DATA
            if data.rstrip(b"\xff") == self.pin:
                self.tries = self.max_tries
                self.verified = True
                self.just_verified = True
                return "verify-ok", SW_OK
            self.verified = False
            self.tries -= 1
            if self.tries == 0:
                return "verify-wrong", SW_BLOCKED
            return "verify-wrong", bytes([0x63, 0xC0 | self.tries])
        if ins == 0x87:
            ref = KEY_REFS.get(p2)
            if ref is None or ref not in self.keys:
                return f"sign-no-key-{p2:02x}", SW_REF_NOT_FOUND
            what = f"sign {ref}"
            if ref in ("9a", "9d") and not self.verified:
                return what + " refused", SW_SECURITY
            if ref == "9c" and not (self.verified and just_verified):
                return what + " refused", SW_SECURITY
            outer = parse_tlvs(data)
            if not outer or outer[0][0] != 0x7C:
                return what + " bad", SW_WRONG_DATA
            inner = dict(parse_tlvs(outer[0][1]))
            if 0x81 not in inner or 0x82 not in inner:
                return what + " bad", SW_WRONG_DATA
            sig = self.sign(p1, ref, inner[0x81])
            if sig is None:
                return what + " bad-alg", SW_WRONG_DATA
            return what, self.respond(tlv(0x7C, tlv(0x82, sig)), le)
        return f"ins-{ins:02x}", SW_INS


class Emulator:
    def __init__(self, args):
        with open(args.cards) as f:
            specs = json.load(f)
        self.cards = {n: Card(n, s) for n, s in specs.items()}
        self.card = self.cards[args.card or next(iter(specs))]
        self.host, self.port = args.host, args.port
        self.inserted = not args.absent
        self.conn = None
        self.buf = b""
        self.powered = False
        self.atr_requests = 0
        self.seen = False
        self.logf = open(args.log, "a", buffering=1) if args.log else None
        if os.path.exists(args.control):
            os.unlink(args.control)
        self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ctl.bind(args.control)
        self.ctl.listen(8)
        self.clients = {}
        self.next_connect = 0.0

    def log(self, rec):
        if self.logf:
            self.logf.write(json.dumps(rec) + "\n")

    def event(self, what):
        self.log({"t": round(time.time(), 3), "card": self.card.name, "event": what})

    # -- the link to vpcd --

    def connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(1)
        try:
            s.connect((self.host, self.port))
        except OSError:
            s.close()
            return False
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(None)
        self.conn, self.buf = s, b""
        self.seen = False  # vpcd has talked to this connection (it accepted it)
        self.card.reset()
        self.event("connected")
        return True

    def disconnect(self):
        if self.conn is not None:
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.conn.close()
            self.conn = None
            self.event("disconnected")
            # vpcd must see the reader empty at least once (pcscd polls it every 0.4 s), or
            # a quick reconnection looks to pcscd like the same card never left
            self.next_connect = time.monotonic() + ABSENT_MIN_S
        self.card.reset()
        self.powered = False

    def send(self, data):
        self.conn.sendall(struct.pack(">H", len(data)) + data)

    def from_vpcd(self):
        try:
            chunk = self.conn.recv(65536)
            # vpcd writes the length and the APDU separately: acknowledge at once, or its
            # Nagle and our delayed ACK cost 40 ms per APDU
            self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:
            chunk = b""
        if not chunk:
            self.disconnect()
            return
        self.buf += chunk
        while len(self.buf) >= 2:
            n = struct.unpack(">H", self.buf[:2])[0]
            if len(self.buf) < 2 + n:
                break
            msg, self.buf = self.buf[2:2 + n], self.buf[2 + n:]
            self.seen = True
            if n == 1:
                c = msg[0]
                if c == 0:
                    self.powered = False
                    self.card.reset()
                    self.event("power-off")
                elif c in (1, 2):
                    self.powered = True
                    self.card.reset()
                    self.event("power-on" if c == 1 else "reset")
                elif c == 4:
                    self.atr_requests += 1
                    self.send(ATR)
            else:
                self.send(self.card.apdu(msg, self.log))

    # -- control --

    def status(self):
        return {"inserted": self.inserted, "connected": self.conn is not None,
            "card": self.card.name, "tries": self.card.tries, "powered": self.powered,
            "atr_requests": self.atr_requests, "seen": self.conn is not None and self.seen}

    def command(self, line):
        words = line.split()
        if not words:
            return {"error": "empty"}
        cmd = words[0]
        if cmd == "remove":
            self.inserted = False
            self.disconnect()
        elif cmd == "insert":
            self.inserted = True
            self.card.reset()
        elif cmd == "swap":
            if len(words) != 2 or words[1] not in self.cards:
                return {"error": f"no card {words[1:]}"}
            self.disconnect()
            self.card = self.cards[words[1]]
            self.inserted = True
        elif cmd == "tries":
            self.card.tries = int(words[1])
        elif cmd != "status":
            return {"error": f"unknown command {cmd}"}
        return self.status()

    def run(self):
        while True:
            if self.inserted and self.conn is None and time.monotonic() >= self.next_connect:
                if not self.connect():
                    self.next_connect = time.monotonic() + 0.1
            rl = [self.ctl] + list(self.clients) + ([self.conn] if self.conn else [])
            r, _, _ = select.select(rl, [], [], 0.1)
            for s in r:
                if s is self.ctl:
                    c, _ = self.ctl.accept()
                    self.clients[c] = b""
                elif s is self.conn:
                    self.from_vpcd()
                elif s in self.clients:
                    try:
                        chunk = s.recv(4096)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        del self.clients[s]
                        s.close()
                        continue
                    self.clients[s] += chunk
                    while b"\n" in self.clients[s]:
                        line, self.clients[s] = self.clients[s].split(b"\n", 1)
                        ans = self.command(line.decode(errors="replace"))
                        s.sendall(json.dumps(ans).encode() + b"\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description="a PIV card for vsmartcard's vpcd")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--cards", required=True)
    ap.add_argument("--card")
    ap.add_argument("--control", required=True)
    ap.add_argument("--log")
    ap.add_argument("--absent", action="store_true")
    args = ap.parse_args(argv)
    Emulator(args).run()


if __name__ == "__main__":
    sys.exit(main())
