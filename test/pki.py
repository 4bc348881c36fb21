#!/usr/bin/python3
"""
A small test PKI for paraf: private SoftHSM tokens, key pairs generated ON the token, a software
test CA that certifies the token keys, and the certificate imported back onto the token. Also a
minimal BER/DER reader for looking inside the CMS signatures parafd returns.

Run it with Debian's interpreter (/usr/bin/python3): it needs python3-pykcs11 and
python3-cryptography.

Library use (test/conftest.py wraps these in fixtures):

    hsm = SoftHSM(tmpdir / "softhsm")                 # softhsm2.conf + a private token dir
    tok = hsm.init_token("paraf-test", pin="1234")    # softhsm2-util --init-token --free
    ca = CA(tmpdir / "ca")                            # ca.pem, ca.key (software key)
    ident = tok.enroll(ca, kind="rsa", common_name="Budi Santoso")
    ident.cert_id                                     # sha256 hex of the DER: parafd's id
    crl = ca.crl(revoked=[ident], next_update=...)    # a CRL (R8); crl_pem(crl), crl_der(crl)
    sub = CA(tmpdir / "sub", parent=root)             # an intermediate (root: path_length=1)
    cert = ca.issue_from_request(csr_pem, days=730)    # a PKCS#10 request certified
    tok = hsm.adopt("label", pin=…)                    # a token paraf initialised
    tok.objects()                                     # every object and its attributes

Command line (used by scripts/demo.sh):

    pki.py demo-token DIR [--key rsa|ec]     prints a JSON object with the paths and ids
    pki.py cms-info FILE.p7s                 prints what is inside a DER CMS SignedData

Nothing here touches the user's own tokens or configuration: every SoftHSM call runs with
SOFTHSM2_CONF pointing at a softhsm2.conf in a directory the caller chose, and slots are found
by token label, never by number (SoftHSM's slot ids are random).

Certificate types (rule R5) are carried as certificatePolicies OIDs. The OIDs below are
DEMO/TEST OIDs under the UUID arc 2.25 (ITU-T X.667), fixed once for this project; they are
not BSrE's policy OIDs and mean nothing outside paraf's tests and demo.
"""

import argparse
import base64
import contextlib
import datetime
import hashlib
import json
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path

import PyKCS11
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import NameOID

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"

# Demo/test certificate-policy OIDs for the certificate types of rule R5 (see module docstring).
CERT_TYPE_OIDS = {
    "individual": "2.25.288437233808201889182003567309362975498",
    "position": "2.25.61683584462636705352621256647066030926",
    "system": "2.25.62433777556965621867762623771570425094",
}

# The owners.d `type` (doc/policy.md) of each certificate type above.
REGISTRY_TYPES = {"individual": "individual", "position": "jabatan", "system": "system"}

KEY_USAGE_NAMES = (
    "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment",
    "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly",
)
_KU_ARGS = {
    "digitalSignature": "digital_signature", "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment", "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement", "keyCertSign": "key_cert_sign", "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only", "decipherOnly": "decipher_only",
}
EKU_OIDS = {
    "serverAuth": "1.3.6.1.5.5.7.3.1",
    "clientAuth": "1.3.6.1.5.5.7.3.2",
    "codeSigning": "1.3.6.1.5.5.7.3.3",
    "emailProtection": "1.3.6.1.5.5.7.3.4",
    "timeStamping": "1.3.6.1.5.5.7.3.8",
    "OCSPSigning": "1.3.6.1.5.5.7.3.9",
    "documentSigning": "1.3.6.1.5.5.7.3.36",  # RFC 9336
}

DIGESTS = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}

# A few OIDs the tests look for inside CMS.
OID = {
    "data": "1.2.840.113549.1.7.1",
    "signedData": "1.2.840.113549.1.7.2",
    "contentType": "1.2.840.113549.1.9.3",
    "messageDigest": "1.2.840.113549.1.9.4",
    "signingTime": "1.2.840.113549.1.9.5",
    "signingCertificateV2": "1.2.840.113549.1.9.16.2.47",
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2",
    "sha512": "2.16.840.1.101.3.4.2.3",
    "rsaEncryption": "1.2.840.113549.1.1.1",
    "rsassaPss": "1.2.840.113549.1.1.10",
    "sha256WithRSAEncryption": "1.2.840.113549.1.1.11",
    "sha384WithRSAEncryption": "1.2.840.113549.1.1.12",
    "sha512WithRSAEncryption": "1.2.840.113549.1.1.13",
    "ecdsa-with-SHA256": "1.2.840.10045.4.3.2",
    "ecdsa-with-SHA384": "1.2.840.10045.4.3.3",
    "ecdsa-with-SHA512": "1.2.840.10045.4.3.4",
    "mgf1": "1.2.840.113549.1.1.8",
}

_P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")  # DER OID prime256v1

# PyKCS11 binds to one SoftHSM instance per process; SoftHSM reads SOFTHSM2_CONF when it is
# initialised. Each use loads the module with the wanted configuration and unloads it after,
# one at a time.
_p11_lock = threading.RLock()


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def iso(t):
    """ISO 8601 UTC as parafd writes it: 2026-11-21T08:30:00Z."""
    if t.tzinfo is not None:
        t = t.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def b64(data):
    return base64.b64encode(data).decode("ascii")


def digest(data, algorithm="sha256"):
    return hashlib.new(algorithm, data).digest()


def cert_id(cert):
    """parafd's certificate id: lower-case hex SHA-256 of the DER."""
    der = cert if isinstance(cert, bytes) else cert.public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def verify_raw(public_key, signature, message_digest, algorithm="sha256", pad="pkcs1"):
    """Checks a `format: raw` signature over a digest with python3-cryptography (Prehashed).
    pad is 'pkcs1' or 'pss' for RSA (PSS: MGF1 with the same digest, salt = digest length),
    ignored for EC (a DER ECDSA-Sig-Value). Raises cryptography's InvalidSignature on failure."""
    h = DIGESTS[algorithm]()
    pre = utils.Prehashed(h)
    if isinstance(public_key, rsa.RSAPublicKey):
        if pad == "pss":
            p = padding.PSS(mgf=padding.MGF1(DIGESTS[algorithm]()), salt_length=h.digest_size)
        else:
            p = padding.PKCS1v15()
        public_key.verify(signature, message_digest, p, pre)
    else:
        public_key.verify(signature, message_digest, ec.ECDSA(pre))


# --- names and certificates ---------------------------------------------------------------------

def make_name(common_name, serial_number=None, organization=None, organizational_unit=None,
        country="ID", email=None, title=None):
    """An X.509 name like BSrE's: CN=<name>, serialNumber=NIP<nip>, O=<organisation>, C=ID."""
    attrs = []
    if country:
        attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if organizational_unit:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organizational_unit))
    if title:
        attrs.append(x509.NameAttribute(NameOID.TITLE, title))
    if serial_number:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_number))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    if email:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    return x509.Name(attrs)


def rfc2253(name):
    """An RFC 2253 string the way OpenSSL prints it (last RDN first, serialNumber by name)."""
    return name.rfc4514_string({NameOID.SERIAL_NUMBER: "serialNumber",
        NameOID.EMAIL_ADDRESS: "emailAddress", NameOID.TITLE: "title"})


class CA:
    """A test CA with a software key in `directory` (ca.pem, ca.key). kind: 'rsa' or 'ec'.

    issue() certifies any public key (normally one generated on a token)."""

    def __init__(self, directory, kind="ec", name="Paraf Test CA", organization="Paraf Test PKI",
            parent=None, path_length=0):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        if kind == "rsa":
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = make_name(name, organization=organization)
        self.parent = parent
        self._crl_number = 0
        now = utcnow()
        ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        signer = parent if parent is not None else self
        b = (x509.CertificateBuilder()
            .subject_name(self.name).issuer_name(signer.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
                critical=True)
            .add_extension(ski, critical=False))
        if parent is not None:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                parent.key.public_key()), critical=False)
        self.cert = b.sign(signer.key, hashes.SHA256())
        self.cert_path = self.dir / "ca.pem"
        self.key_path = self.dir / "ca.key"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key.private_bytes(serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    def crl(self, revoked=(), this_update=None, next_update=None, days=7, number=None):
        """A CRL signed by this CA (X.509 v2, with cRLNumber and authorityKeyIdentifier).

        revoked: certificates to list, each a serial number (int), an x509.Certificate, an
        Identity, or a tuple (one of those, revocation date, reason) where reason is an
        x509.ReasonFlags member or its name ("key_compromise", "affiliation_changed"…).
        this_update defaults to now - 1 h; next_update to this_update + `days` (give a
        next_update in the past for a stale CRL). Returns a cryptography
        x509.CertificateRevocationList; crl_pem()/crl_der() encode it."""
        this_update = this_update or (utcnow() - datetime.timedelta(hours=1))
        next_update = next_update or (this_update + datetime.timedelta(days=days))
        if number is None:
            self._crl_number += 1
            number = self._crl_number
        b = (x509.CertificateRevocationListBuilder()
            .issuer_name(self.name)
            .last_update(this_update).next_update(next_update)
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False))
        for item in revoked:
            when, reason = this_update - datetime.timedelta(minutes=5), None
            if isinstance(item, tuple):
                item, when, *rest = item
                reason = rest[0] if rest else None
            rb = (x509.RevokedCertificateBuilder().serial_number(serial_of(item))
                .revocation_date(when))
            if reason is not None:
                if isinstance(reason, str):
                    reason = x509.ReasonFlags[reason]
                rb = rb.add_extension(x509.CRLReason(reason), critical=False)
            b = b.add_revoked_certificate(rb.build())
        return b.sign(self.key, hashes.SHA256())

    def issue(self, public_key, subject, not_before=None, not_after=None, days=730,
            key_usage=("digitalSignature", "nonRepudiation"), extended_key_usage=None,
            cert_type="individual", policy_oids=None, serial=None, email=None):
        """Issues an end-entity certificate.

        subject: an x509.Name or a common name string. Validity: not_before (default now - 1 h)
        to not_after (default not_before + `days`, 2 years as rule R7 says). key_usage: names
        (KEY_USAGE_NAMES) or None for no extension. extended_key_usage: names (EKU_OIDS) or
        dotted OIDs, or None. cert_type: a key of CERT_TYPE_OIDS or None; policy_oids adds more
        certificatePolicies OIDs. email: an rfc822Name subjectAltName."""
        if isinstance(subject, str):
            subject = make_name(subject)
        not_before = not_before or (utcnow() - datetime.timedelta(hours=1))
        not_after = not_after or (not_before + datetime.timedelta(days=days))
        b = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.name)
            .public_key(public_key)
            .serial_number(serial or x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False))
        if key_usage is not None:
            unknown = set(key_usage) - set(KEY_USAGE_NAMES)
            if unknown:
                raise ValueError(f"unknown key usage {sorted(unknown)}")
            kw = {v: (k in key_usage) for k, v in _KU_ARGS.items()}
            b = b.add_extension(x509.KeyUsage(**kw), critical=True)
        if extended_key_usage is not None:
            oids = [x509.ObjectIdentifier(EKU_OIDS.get(e, e)) for e in extended_key_usage]
            b = b.add_extension(x509.ExtendedKeyUsage(oids), critical=False)
        policies = []
        if cert_type is not None:
            policies.append(CERT_TYPE_OIDS[cert_type])
        policies += list(policy_oids or ())
        if policies:
            # Encoded by hand: python3-cryptography 38 cannot represent OID arcs of 2^32 or
            # more, and the 2.25.<uuid> arcs are 128-bit. (Consequence: cryptography cannot
            # read such a certificate's extensions; OpenSSL and parafd can.)
            b = b.add_extension(x509.UnrecognizedExtension(
                x509.ObjectIdentifier("2.5.29.32"), der_certificate_policies(policies)),
                critical=False)
        if email:
            b = b.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]),
                critical=False)
        return b.sign(self.key, hashes.SHA256())


    def issue_from_request(self, request, subject=None, public_key=None, **issue_args):
        """Issues a certificate from a PKCS#10 request (PEM or DER bytes, a path, or a
        cryptography CertificateSigningRequest), as a CA would: the request's signature must
        verify (ValueError otherwise); the certificate certifies the request's public key for
        the request's subject, unless `subject` (an x509.Name or a CN string) or `public_key`
        say otherwise (to make certificates that do NOT match a registration or a token).
        issue_args go to issue(): days=, not_before=, not_after=, key_usage=,
        extended_key_usage=, cert_type=, policy_oids=, email=. The subject is copied as DER,
        so attributes python3-cryptography cannot name pass through unchanged."""
        csr = load_request(request)
        if not csr.is_signature_valid:
            raise ValueError("the certificate request's signature does not verify")
        return self.issue(public_key if public_key is not None else csr.public_key(),
            subject if subject is not None else csr.subject, **issue_args)

def serial_of(item):
    """The serial number of an int, an x509.Certificate or an Identity."""
    if isinstance(item, int):
        return item
    cert = getattr(item, "cert", item)
    return cert.serial_number


def crl_pem(crl):
    return crl.public_bytes(serialization.Encoding.PEM)


def crl_der(crl):
    return crl.public_bytes(serialization.Encoding.DER)


def load_request(request):
    """A cryptography CertificateSigningRequest from PEM or DER bytes, a path or itself."""
    if isinstance(request, x509.CertificateSigningRequest):
        return request
    if isinstance(request, (str, Path)):
        request = Path(request).read_bytes()
    if request.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_csr(request)
    return x509.load_der_x509_csr(request)


def name_attributes(name):
    """{attribute short name: [values]} of an x509.Name (CN, serialNumber, emailAddress, OU,
    O, C, title, …; unknown OIDs by dotted string)."""
    short = {NameOID.COMMON_NAME: "CN", NameOID.SERIAL_NUMBER: "serialNumber",
        NameOID.EMAIL_ADDRESS: "emailAddress", NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
        NameOID.ORGANIZATION_NAME: "O", NameOID.COUNTRY_NAME: "C", NameOID.TITLE: "title",
        NameOID.LOCALITY_NAME: "L", NameOID.STATE_OR_PROVINCE_NAME: "ST"}
    out = {}
    for a in name:
        out.setdefault(short.get(a.oid, a.oid.dotted_string), []).append(a.value)
    return out


# --- SoftHSM tokens ----------------------------------------------------------------------------

class SoftHSM:
    """A private SoftHSM installation: `directory`/softhsm2.conf naming `directory`/tokens.

    All its tokens live in that one token directory, so a parafd started with env() sees all
    of them (and nothing of the user's own SoftHSM tokens)."""

    def __init__(self, directory, module=SOFTHSM_MODULE):
        self.dir = Path(directory)
        self.tokendir = self.dir / "tokens"
        self.tokendir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.conf = self.dir / "softhsm2.conf"
        self.conf.write_text(
            f"directories.tokendir = {self.tokendir}\n"
            "objectstore.backend = file\n"
            "log.level = ERROR\n"
            "slots.removable = false\n")
        self.module = module
        self.tokens = []

    def env(self):
        """The environment entries a process needs to see these tokens (and only these)."""
        return {"SOFTHSM2_CONF": str(self.conf)}

    def init_token(self, label="paraf-test", pin="1234", so_pin="12345678"):
        """Initialises a new token with softhsm2-util in the next free slot; returns a Token."""
        if any(t.label == label for t in self.tokens):
            raise ValueError(f"token label {label!r} already used")
        env = dict(os.environ, **self.env())
        r = subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label,
            "--so-pin", so_pin, "--pin", pin], env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"softhsm2-util failed ({r.returncode}): {r.stdout}{r.stderr}")
        tok = Token(self, label, pin, so_pin)
        self.tokens.append(tok)
        return tok

    def adopt(self, label, pin=None, so_pin=None):
        """A Token for a token of this SoftHSM that something else initialised (paraf admin
        init-token: C_InitToken on a blank slot), found by its label; pin is the user PIN
        (the owner's passphrase) when known, for logged-in sessions. Appended to tokens."""
        tok = Token(self, label, pin, so_pin)
        self.tokens.append(tok)
        return tok

    def token_infos(self):
        """CK_TOKEN_INFO of every slot with a token: a list of dicts label, serial,
        initialized (CKF_TOKEN_INITIALIZED), user_pin_initialized (CKF_USER_PIN_INITIALIZED).
        A fresh SoftHSM (no --init-token) shows one blank slot; each token initialised adds
        another blank one."""
        out = []
        with self.library() as lib:
            for s in lib.getSlotList(tokenPresent=True):
                ti = lib.getTokenInfo(s)
                out.append({"label": ti.label.strip(), "serial": ti.serialNumber.strip(),
                    "initialized": bool(ti.flags & PyKCS11.CKF_TOKEN_INITIALIZED),
                    "user_pin_initialized": bool(ti.flags & PyKCS11.CKF_USER_PIN_INITIALIZED)})
        return out

    @contextlib.contextmanager
    def library(self):
        """Yields a PyKCS11Lib bound to this SoftHSM configuration; unloads it afterwards."""
        with _p11_lock:
            saved = os.environ.get("SOFTHSM2_CONF")
            os.environ["SOFTHSM2_CONF"] = str(self.conf)
            lib = PyKCS11.PyKCS11Lib()
            try:
                lib.load(self.module)
                yield lib
            finally:
                lib.lib.Unload()
                del lib
                if saved is None:
                    os.environ.pop("SOFTHSM2_CONF", None)
                else:
                    os.environ["SOFTHSM2_CONF"] = saved


def _find_slot(lib, label):
    found = [s for s in lib.getSlotList(tokenPresent=True)
        if lib.getTokenInfo(s).label.strip() == label]
    if len(found) != 1:
        raise RuntimeError(f"{len(found)} tokens labelled {label!r}")
    return found[0]


def _der_length(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der_oid(dotted):
    """DER OBJECT IDENTIFIER for any arcs (including 128-bit 2.25.<uuid> ones)."""
    arcs = [int(a) for a in dotted.split(".")]
    body = b""
    for n in [40 * arcs[0] + arcs[1]] + arcs[2:]:
        chunk = [n & 0x7f]
        n >>= 7
        while n:
            chunk.append(0x80 | (n & 0x7f))
            n >>= 7
        body += bytes(reversed(chunk))
    return b"\x06" + _der_length(len(body)) + body


def _der_seq(*items):
    body = b"".join(items)
    return b"\x30" + _der_length(len(body)) + body


def der_certificate_policies(oids):
    """certificatePolicies extension value: SEQUENCE OF PolicyInformation { policyIdentifier }."""
    return _der_seq(*(_der_seq(der_oid(o)) for o in oids))


def der_integer(n):
    """DER INTEGER (what CKA_SERIAL_NUMBER holds)."""
    b = n.to_bytes(n.bit_length() // 8 + 1, "big", signed=True)
    return b"\x02" + _der_length(len(b)) + b


class Identity:
    """A key pair on a token with its certificate: what parafd signs with.

    token, key_id (bytes, the CKA_ID shared by key and certificate), kind ('rsa' | 'ec'),
    cert (cryptography x509), der, cert_id (parafd's id), cert_path (PEM file), public_key,
    pin (the token's user PIN), extractable (True for the deliberately bad R3 key), label
    (the certificate object's CKA_LABEL), cert_type (the R5 type it was issued with:
    'individual', 'position', 'system' or None), registry_type (the owners.d `type` for it:
    individual, jabatan or system; individual when the certificate names none)."""

    def __init__(self, token, key_id, kind, cert, extractable=False, label=None,
            cert_type="individual"):
        self.token = token
        self.cert_type = cert_type
        self.registry_type = REGISTRY_TYPES.get(cert_type, "individual")
        self.key_id = key_id
        self.label = label
        self.kind = kind
        self.cert = cert
        self.der = cert.public_bytes(serialization.Encoding.DER)
        self.cert_id = cert_id(self.der)
        self.public_key = cert.public_key()
        self.pin = token.pin
        self.extractable = extractable
        self.cert_path = token.softhsm.dir / f"cert-{self.cert_id[:16]}.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def __repr__(self):
        return f"<Identity {self.kind} {self.cert_id[:16]} on {self.token.label!r}>"


class Token:
    """One SoftHSM token, found by its label. Key generation and certificate import log in
    with the user PIN."""

    def __init__(self, softhsm, label, pin, so_pin):
        self.softhsm = softhsm
        self.label = label
        self.pin = pin
        self.so_pin = so_pin
        self.identities = []

    @contextlib.contextmanager
    def session(self, login=True):
        """A read-write PyKCS11 session on this token (logged in as the user by default)."""
        with self.softhsm.library() as lib:
            slot = _find_slot(lib, self.label)
            s = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
            try:
                if login:
                    s.login(self.pin)
                yield s
            finally:
                if login:
                    with contextlib.suppress(PyKCS11.PyKCS11Error):
                        s.logout()
                s.closeSession()

    def info(self):
        """The token's CK_TOKEN_INFO strings: label, serial, manufacturer, model (stripped)."""
        with self.softhsm.library() as lib:
            ti = lib.getTokenInfo(_find_slot(lib, self.label))
            return {"label": ti.label.strip(), "serial": ti.serialNumber.strip(),
                "manufacturer": ti.manufacturerID.strip(), "model": ti.model.strip()}

    def objects(self, login=True):
        """Every object on the token (logged in with the user PIN by default, so private
        objects are seen too), each a dict: class (CKO_ name), id (CKA_ID bytes), label, and
        for keys key_type (CKK_ name), and for private and secret keys sensitive, extractable,
        always_sensitive, never_extractable, sign, decrypt, unwrap, derive (bools, None when
        the token does not say), and for certificates value (the DER)."""
        P = PyKCS11
        bools = {"sensitive": P.CKA_SENSITIVE, "extractable": P.CKA_EXTRACTABLE,
            "always_sensitive": P.CKA_ALWAYS_SENSITIVE,
            "never_extractable": P.CKA_NEVER_EXTRACTABLE, "sign": P.CKA_SIGN,
            "decrypt": P.CKA_DECRYPT, "unwrap": P.CKA_UNWRAP, "derive": P.CKA_DERIVE,
            "token": P.CKA_TOKEN, "private": P.CKA_PRIVATE}
        out = []
        with self.session(login=login) as s:
            for h in s.findObjects([]):
                (cls,) = s.getAttributeValue(h, [P.CKA_CLASS])
                o = {"class": P.CKO[cls], "handle": h.value()}
                try:
                    cka_id, label = s.getAttributeValue(h, [P.CKA_ID, P.CKA_LABEL])
                    o["id"] = bytes(cka_id or b"")
                    o["label"] = label.strip() if isinstance(label, str) else label
                except P.PyKCS11Error:
                    o["id"], o["label"] = None, None
                if cls in (P.CKO_PRIVATE_KEY, P.CKO_PUBLIC_KEY, P.CKO_SECRET_KEY):
                    (kt,) = s.getAttributeValue(h, [P.CKA_KEY_TYPE])
                    o["key_type"] = P.CKK.get(kt, kt)
                if cls in (P.CKO_PRIVATE_KEY, P.CKO_SECRET_KEY):
                    for name, attr in bools.items():
                        try:
                            (v,) = s.getAttributeValue(h, [attr])
                            o[name] = bool(v)
                        except P.PyKCS11Error:
                            o[name] = None
                if cls == P.CKO_CERTIFICATE:
                    (v,) = s.getAttributeValue(h, [P.CKA_VALUE], True)
                    o["value"] = bytes(v)
                out.append(o)
        return out

    def generate_key(self, kind="rsa", key_id=None, label=None, bits=2048, extractable=False):
        """Generates a key pair on the token and returns (key_id, cryptography public key).

        The private key is CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_SIGN
        (rule R3). extractable=True makes the deliberately bad key (CKA_SENSITIVE false,
        CKA_EXTRACTABLE true) that parafd must refuse with key-extractable."""
        key_id = key_id or secrets.token_bytes(8)
        label = label or f"{kind}-{key_id.hex()}"
        P = PyKCS11
        pub = [(P.CKA_CLASS, P.CKO_PUBLIC_KEY), (P.CKA_TOKEN, True), (P.CKA_PRIVATE, False),
            (P.CKA_VERIFY, True), (P.CKA_ENCRYPT, False), (P.CKA_WRAP, False),
            (P.CKA_ID, key_id), (P.CKA_LABEL, label)]
        priv = [(P.CKA_CLASS, P.CKO_PRIVATE_KEY), (P.CKA_TOKEN, True), (P.CKA_PRIVATE, True),
            (P.CKA_SENSITIVE, not extractable), (P.CKA_EXTRACTABLE, extractable),
            (P.CKA_SIGN, True), (P.CKA_DECRYPT, False), (P.CKA_UNWRAP, False),
            (P.CKA_DERIVE, False), (P.CKA_ID, key_id), (P.CKA_LABEL, label)]
        if kind == "rsa":
            pub += [(P.CKA_KEY_TYPE, P.CKK_RSA), (P.CKA_MODULUS_BITS, bits),
                (P.CKA_PUBLIC_EXPONENT, (0x01, 0x00, 0x01))]
            priv += [(P.CKA_KEY_TYPE, P.CKK_RSA)]
            mech = P.Mechanism(P.CKM_RSA_PKCS_KEY_PAIR_GEN, None)
        elif kind == "ec":
            pub += [(P.CKA_KEY_TYPE, P.CKK_EC), (P.CKA_EC_PARAMS, _P256_PARAMS)]
            priv += [(P.CKA_KEY_TYPE, P.CKK_EC)]
            mech = P.Mechanism(P.CKM_EC_KEY_PAIR_GEN, None)
        else:
            raise ValueError(f"unknown key kind {kind!r}")
        with self.session() as s:
            hpub, _hpriv = s.generateKeyPair(pub, priv, mech)
            if kind == "rsa":
                n, e = s.getAttributeValue(hpub, [P.CKA_MODULUS, P.CKA_PUBLIC_EXPONENT], True)
                public_key = rsa.RSAPublicNumbers(int.from_bytes(bytes(e), "big"),
                    int.from_bytes(bytes(n), "big")).public_key()
            else:
                (point,) = s.getAttributeValue(hpub, [P.CKA_EC_POINT], True)
                point = bytes(point)
                if point[0] == 0x04 and len(point) > 2 and point[1] == len(point) - 2:
                    point = point[2:]  # unwrap the DER OCTET STRING
                public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        return key_id, public_key

    def import_certificate(self, cert, key_id, label=None):
        """Stores an X.509 certificate on the token (CKO_CERTIFICATE, CKC_X_509) with CKA_ID,
        CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER, CKA_VALUE and CKA_LABEL (default: the
        subject's CN). Returns the label."""
        P = PyKCS11
        der = cert.public_bytes(serialization.Encoding.DER)
        label = label or cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        tmpl = [(P.CKA_CLASS, P.CKO_CERTIFICATE), (P.CKA_CERTIFICATE_TYPE, P.CKC_X_509),
            (P.CKA_TOKEN, True), (P.CKA_PRIVATE, False), (P.CKA_LABEL, label),
            (P.CKA_ID, key_id), (P.CKA_SUBJECT, cert.subject.public_bytes()),
            (P.CKA_ISSUER, cert.issuer.public_bytes()),
            (P.CKA_SERIAL_NUMBER, der_integer(cert.serial_number)), (P.CKA_VALUE, der)]
        with self.session() as s:
            s.createObject(tmpl)
        return label

    def enroll(self, ca, kind="rsa", subject=None, common_name=None, key_id=None,
            label=None, extractable=False, **issue_args):
        """Generates a key on the token, has `ca` certify it (issue_args go to CA.issue) and
        imports the certificate with the same CKA_ID. Returns an Identity."""
        key_id, public_key = self.generate_key(kind, key_id=key_id, label=label,
            extractable=extractable)
        if subject is None:
            subject = make_name(common_name or f"Test Signer {kind.upper()} {key_id.hex()[:6]}",
                serial_number="NIP196501011990031001",
                organization="Pemerintah Kabupaten Contoh")
        cert = ca.issue(public_key, subject, **issue_args)
        label = self.import_certificate(cert, key_id, label)
        ident = Identity(self, key_id, kind, cert, extractable, label,
            cert_type=issue_args.get("cert_type", "individual"))
        self.identities.append(ident)
        return ident


# --- a minimal BER/DER reader for CMS ----------------------------------------------------------

class Node:
    """One BER element: tag (the identifier byte), constructed, value (content octets, for
    primitive elements), children (for constructed ones), raw (the whole encoding)."""

    def __init__(self, tag, constructed, value, children, raw):
        self.tag, self.constructed, self.value, self.children, self.raw = \
            tag, constructed, value, children, raw

    def __getitem__(self, i):
        return self.children[i]

    def __len__(self):
        return len(self.children or ())

    @property
    def oid(self):
        assert self.tag == 0x06, f"not an OID (tag {self.tag:#x})"
        return decode_oid(self.value)

    @property
    def octets(self):
        """The content of an OCTET STRING, primitive or constructed (BER)."""
        if not self.constructed:
            return self.value
        return b"".join(c.octets for c in self.children)


def decode_oid(b):
    parts, n = [], 0
    for byte in b:
        n = (n << 7) | (byte & 0x7f)
        if not byte & 0x80:
            parts.append(n)
            n = 0
    first = min(parts[0] // 40, 2)
    return ".".join(str(x) for x in [first, parts[0] - 40 * first] + parts[1:])


def ber_parse(data, pos=0):
    """Parses one BER element at pos; returns (Node, next position). Handles indefinite
    lengths (OpenSSL writes CMS SignedData that way) and single-byte tags only."""
    start = pos
    tag = data[pos]
    if tag & 0x1f == 0x1f:
        raise ValueError("multi-byte tags are not supported")
    constructed = bool(tag & 0x20)
    pos += 1
    first = data[pos]
    pos += 1
    if first == 0x80:
        if not constructed:
            raise ValueError("indefinite length on a primitive element")
        children = []
        while data[pos:pos + 2] != b"\x00\x00":
            child, pos = ber_parse(data, pos)
            children.append(child)
        pos += 2
        return Node(tag, True, None, children, data[start:pos]), pos
    if first & 0x80:
        k = first & 0x7f
        length = int.from_bytes(data[pos:pos + k], "big")
        pos += k
    else:
        length = first
    end = pos + length
    if end > len(data):
        raise ValueError("element runs past the end of the data")
    if constructed:
        children, p = [], pos
        while p < end:
            child, p = ber_parse(data, p)
            children.append(child)
        return Node(tag, True, None, children, data[start:end]), end
    return Node(tag, False, data[pos:end], None, data[start:end]), end


def cms_info(der):
    """Takes a CMS ContentInfo (SignedData) apart. Returns a dict:

    content_type, econtent_type, econtent_present, digest_algorithms [oid], certificates
    [DER], signers [{version, digest_algorithm, signature_algorithm, signature_parameters
    (Node or None), signed_attrs {oid: [value Node]}, signed_attr_order [oid],
    signed_attrs_der (the bytes the signature covers), signature}]."""
    ci, end = ber_parse(der)
    if end != len(der):
        raise ValueError(f"{len(der) - end} bytes after the ContentInfo")
    info = {"content_type": ci[0].oid}
    sd = ci[1][0]
    kids = list(sd.children)
    info["version"] = int.from_bytes(kids[0].value, "big")
    info["digest_algorithms"] = [a[0].oid for a in kids[1].children]
    eci = kids[2]
    info["econtent_type"] = eci[0].oid
    info["econtent_present"] = len(eci) > 1
    info["certificates"] = []
    i = 3
    while kids[i].tag in (0xa0, 0xa1):
        if kids[i].tag == 0xa0:
            info["certificates"] = [c.raw for c in kids[i].children]
        i += 1
    signers = []
    for si in kids[i].children:
        parts = list(si.children)
        s = {"version": int.from_bytes(parts[0].value, "big"), "sid": parts[1].raw,
            "digest_algorithm": parts[2][0].oid, "signed_attrs": {}, "signed_attr_order": []}
        j = 3
        s["signed_attrs_der"] = None
        if parts[j].tag == 0xa0:
            # what the signature covers: the attributes re-tagged as a DER SET OF (RFC 5652 5.4)
            s["signed_attrs_der"] = b"\x31" + parts[j].raw[1:]
            for attr in parts[j].children:
                oid = attr[0].oid
                s["signed_attrs"][oid] = list(attr[1].children)
                s["signed_attr_order"].append(oid)
            j += 1
        s["signature_algorithm"] = parts[j][0].oid
        s["signature_parameters"] = parts[j][1] if len(parts[j]) > 1 else None
        s["signature"] = parts[j + 1].octets
        signers.append(s)
    info["signers"] = signers
    return info


def signing_certificate_v2_hashes(value):
    """(hash algorithm oid, certHash) of each ESSCertIDv2 in a SigningCertificateV2 value."""
    out = []
    for cid in value[0].children:
        alg = OID["sha256"]  # DEFAULT
        k = 0
        if cid[0].tag == 0x30:
            alg = cid[0][0].oid
            k = 1
        out.append((alg, cid[k].octets))
    return out


# --- command line ------------------------------------------------------------------------------

DEMO_SUBJECT = dict(common_name="Budi Santoso", serial_number="NIP197803152005011002",
    organization="Pemerintah Kabupaten Contoh", organizational_unit="Dinas Komunikasi dan Informatika",
    country="ID")


def demo_token(directory, kind="rsa"):
    """Makes everything the demo needs under `directory` and returns a dict of paths and ids."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    pin = "".join(secrets.choice("0123456789") for _ in range(6))
    so_pin = secrets.token_hex(8)
    hsm = SoftHSM(d / "softhsm")
    tok = hsm.init_token("Token Budi Santoso", pin=pin, so_pin=so_pin)
    ca = CA(d / "ca", kind="rsa", name="Demo CA Paraf (bukan BSrE)",
        organization="Paraf Demo PKI")
    ident = tok.enroll(ca, kind=kind, subject=make_name(**DEMO_SUBJECT),
        label="Budi Santoso", cert_type="individual",
        key_usage=("digitalSignature", "nonRepudiation"), email="budi.santoso@contoh.go.id")
    pin_file = d / "pin"
    fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pin + "\n")
    return {
        "softhsm2_conf": str(hsm.conf),
        "module": hsm.module,
        "token_label": tok.label,
        "pin_file": str(pin_file),
        "ca_cert": str(ca.cert_path),
        "cert": str(ident.cert_path),
        "cert_id": ident.cert_id,
        "key_id": ident.key_id.hex(),
        "key": kind,
        "subject": rfc2253(ident.cert.subject),
        "issuer": rfc2253(ident.cert.issuer),
        "certificate_type": "individual",
        "certificate_policy": CERT_TYPE_OIDS["individual"],
        "not_before": iso(ident.cert.not_valid_before),
        "not_after": iso(ident.cert.not_valid_after),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description="paraf test PKI (SoftHSM tokens, test CA)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("demo-token", help="make a SoftHSM token with an official's key and "
        "certificate and a demo CA under DIR; print a JSON object with paths and ids")
    p.add_argument("dir")
    p.add_argument("--key", choices=("rsa", "ec"), default="rsa")
    p = sub.add_parser("cms-info", help="print what is inside a DER CMS SignedData")
    p.add_argument("file")
    args = ap.parse_args(argv)
    if args.cmd == "demo-token":
        json.dump(demo_token(args.dir, args.key), sys.stdout, indent=2)
        print()
    elif args.cmd == "cms-info":
        info = cms_info(Path(args.file).read_bytes())
        for s in info["signers"]:
            s["signed_attrs"] = {k: [v.raw.hex() for v in vs] for k, vs in s["signed_attrs"].items()}
            s["signature"] = s["signature"].hex()
            s["sid"] = s["sid"].hex()
            s["signed_attrs_der"] = (s["signed_attrs_der"] or b"").hex()
            s["signature_parameters"] = (s["signature_parameters"].raw.hex()
                if s["signature_parameters"] is not None else None)
        info["certificates"] = [cert_id(c) for c in info["certificates"]]
        json.dump(info, sys.stdout, indent=2)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
