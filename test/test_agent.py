"""
Integration tests of parafd against its contract, doc/protocol.md: JSON-RPC 2.0 over a Unix
socket, driven on private SoftHSM tokens made per test, and checked with independent tools
(OpenSSL's `cms -verify`, python3-cryptography, OpenSC's PKCS#11 spy, a DER reader of our own).

Rules of doc/protocol.md and of REGULATION.md that a test proves are cited in its docstring.
"""

import base64
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import pki
from conftest import PROTOCOL_MD, REPO, Client, proc_state, spy_calls

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding

DIGEST_ALGS = ("sha256", "sha384", "sha512")
KEY_CASES = [("rsa", "pkcs1"), ("rsa", "pss"), ("ec", None)]
KEY_IDS = ["rsa-pkcs1", "rsa-pss", "ecdsa-p256"]
METHODS = ("rpc.discover", "agent.status", "tokens.list", "certificates.list", "events.subscribe",
    "sign")
AG_REQUEST_MAX = 1048576
AG_JSON_DEPTH_MAX = 16
AG_DOCUMENTS_MAX = 1000
AG_NAME_MAX = 255

_ANY = object()


def protocol_errors():
    """{reason: code} from the error table of doc/protocol.md (the contract, not the code)."""
    table = {}
    for m in re.finditer(r"^\|\s*(-32\d{3})\s*\|\s*`([a-z-]+)`\s*\|", PROTOCOL_MD.read_text(),
            re.M):
        table[m.group(2)] = int(m.group(1))
    assert len(table) >= 17, f"could not read the error table of {PROTOCOL_MD}: {table}"
    return table


ERROR_CODES = protocol_errors()


def assert_error(resp, reason, field=_ANY, rule=_ANY, id=_ANY):
    """Checks one JSON-RPC error response: code and data.reason as documented; data holds
    reason, rule and field; optionally the field, rule and id. Returns data."""
    assert isinstance(resp, dict), resp
    assert "error" in resp and "result" not in resp, f"expected error {reason!r}, got {resp}"
    assert resp.get("jsonrpc") == "2.0", resp
    e = resp["error"]
    assert e.get("code") == ERROR_CODES[reason] and (e.get("data") or {}).get("reason") == reason, \
        f"expected {ERROR_CODES[reason]} {reason!r}, got {e}"
    assert isinstance(e.get("message"), str) and e["message"], e
    data = e["data"]
    for k in ("reason", "rule", "field"):
        assert k in data, f"error data lacks {k!r}: {e}"
    if field is not _ANY:
        assert data["field"] == field, f"expected field {field!r}, got {data['field']!r}: {e}"
    if rule is not _ANY:
        assert data["rule"] == rule, f"expected rule {rule!r}, got {data['rule']!r}: {e}"
    if id is not _ANY:
        assert "id" in resp and resp["id"] == id, f"expected id {id!r}: {resp}"
    return data


def assert_result(resp, id=_ANY):
    assert isinstance(resp, dict) and "result" in resp and "error" not in resp, \
        f"expected a result, got {resp}"
    assert resp.get("jsonrpc") == "2.0", resp
    if id is not _ANY:
        assert resp.get("id") == id, f"expected id {id!r}: {resp}"
    return resp["result"]


def make_docs(n, tag="surat"):
    """n small distinct documents as (name, bytes)."""
    return [(f"{tag}-{i:03d}.txt",
        f"Nomor: {i:03d}/DISKOMINFO/XI/2026\nPerihal: uji tanda tangan {secrets.token_hex(8)}\n"
        .encode()) for i in range(n)]


_DEFAULT = object()


def sign_params(ident, docs, alg="sha256", fmt="cms", pad=None, pin=None, usage="signature",
        **more):
    """sign's parameters for `docs` [(name, bytes)]. No `pin` by default: the PIN of an
    individual or jabatan certificate comes from the trusted dialog (the fixtures' fake
    pinentry), never from the request (R2); pin=_DEFAULT puts the identity's own PIN in."""
    p = {"certificate": ident.cert_id, "usage": usage, "format": fmt, "digest_algorithm": alg,
        "documents": [{"name": n, "digest": pki.b64(pki.digest(d, alg))} for n, d in docs]}
    if pad is not None:
        p["padding"] = pad
    if pin is _DEFAULT:
        pin = ident.pin
    if pin is not None:
        p["pin"] = pin
    p.update(more)
    return p


class Files:
    """Numbered files in a directory, for the command-line tools."""

    def __init__(self, d):
        self.d = Path(d)
        self.d.mkdir(exist_ok=True)
        self.n = 0

    def put(self, data, suffix=""):
        self.n += 1
        p = self.d / f"f{self.n:04d}{suffix}"
        p.write_bytes(data)
        return p


def openssl_cms_verify(files, cms_der, content, ca_path):
    sig = files.put(cms_der, ".p7s")
    doc = files.put(content, ".txt")
    return subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
        str(sig), "-content", str(doc), "-CAfile", str(ca_path), "-purpose", "any", "-out",
        "/dev/null"], capture_output=True, text=True)


def check_cms(files, der, content, alg, ident, pad, ca_path):
    """Everything the protocol says about a `format: cms` signature, checked with OpenSSL and
    with our own DER reader + python3-cryptography."""
    r = openssl_cms_verify(files, der, content, ca_path)
    assert r.returncode == 0, f"openssl cms -verify failed: {r.stdout}{r.stderr}"
    assert "Verification successful" in r.stderr
    r = openssl_cms_verify(files, der, content + b"x", ca_path)
    assert r.returncode != 0, "openssl accepted the signature over altered content"

    info = pki.cms_info(der)
    assert info["content_type"] == pki.OID["signedData"]
    assert info["econtent_type"] == pki.OID["data"], "content type must be id-data"
    assert not info["econtent_present"], "the signature must be detached"
    assert ident.der in info["certificates"], "the signer certificate must be included"
    assert len(info["signers"]) == 1
    s = info["signers"][0]
    assert s["digest_algorithm"] == pki.OID[alg]
    assert pki.OID[alg] in info["digest_algorithms"]
    attrs = s["signed_attrs"]
    for name in ("contentType", "messageDigest", "signingTime", "signingCertificateV2"):
        assert pki.OID[name] in attrs, f"signed attribute {name} missing: {list(attrs)}"
    assert attrs[pki.OID["contentType"]][0].oid == pki.OID["data"]
    assert attrs[pki.OID["messageDigest"]][0].octets == pki.digest(content, alg), \
        "messageDigest is not the document's digest"
    (h_alg, h), *_ = pki.signing_certificate_v2_hashes(attrs[pki.OID["signingCertificateV2"]][0])
    name = {v: k for k, v in pki.OID.items()}[h_alg]
    assert h == pki.digest(ident.der, name), "signing-certificate-v2 does not hash the signer cert"

    # The signature over the signed attributes, checked without OpenSSL.
    key = ident.public_key
    sa = s["signed_attrs_der"]
    h_obj = pki.DIGESTS[alg]()
    if ident.kind == "ec":
        assert s["signature_algorithm"] in (pki.OID["ecdsa-with-" + alg.upper()],), \
            s["signature_algorithm"]
        key.verify(s["signature"], sa, ec.ECDSA(h_obj))
    elif pad == "pss":
        assert s["signature_algorithm"] == pki.OID["rsassaPss"], s["signature_algorithm"]
        params = s["signature_parameters"]
        assert params is not None and params.tag == 0x30
        fields = {c.tag: c for c in params.children}
        assert fields[0xa0][0][0].oid == pki.OID[alg], "PSS hashAlgorithm"
        mgf = fields[0xa1][0]
        assert mgf[0].oid == pki.OID["mgf1"] and mgf[1][0].oid == pki.OID[alg], "PSS MGF1 hash"
        assert int.from_bytes(fields[0xa2][0].value, "big") == h_obj.digest_size, "PSS salt"
        key.verify(s["signature"], sa, padding.PSS(mgf=padding.MGF1(pki.DIGESTS[alg]()),
            salt_length=h_obj.digest_size), h_obj)
        printed = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER",
            "-in", str(files.put(der, ".p7s"))], capture_output=True, text=True)
        assert printed.returncode == 0, printed.stderr
        assert re.search(r"signatureAlgorithm:\s*\n\s*algorithm: rsassaPss", printed.stdout), \
            "openssl cms -print does not show rsassaPss as the signature algorithm"
    else:
        assert s["signature_algorithm"] in (pki.OID["rsaEncryption"],
            pki.OID[alg + "WithRSAEncryption"]), s["signature_algorithm"]
        key.verify(s["signature"], sa, padding.PKCS1v15(), h_obj)


# --- signing ------------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", DIGEST_ALGS)
@pytest.mark.parametrize("kind,pad", KEY_CASES, ids=KEY_IDS)
def test_sign_cms_verifies_with_openssl(kind, pad, alg, ca, token, agent_factory, tmp_path):
    """`sign` format cms: a detached CAdES-BES SignedData (content type id-data, signer
    certificate included, signed attributes contentType, messageDigest = the document's digest,
    signingTime, signing-certificate-v2 with the certificate's hash) that
    `openssl cms -verify -binary -content DOC` accepts, for RSA PKCS#1 v1.5, RSA-PSS (MGF1 same
    digest, salt = digest length, algorithm rsassaPss) and ECDSA P-256, with each digest."""
    ident = token.enroll(ca, kind=kind)
    agent = agent_factory()
    docs = make_docs(2)
    res = agent.result("sign", sign_params(ident, docs, alg, "cms", pad))
    assert res["certificate"] == ident.cert_id
    assert [s["name"] for s in res["signatures"]] == [n for n, _ in docs]
    files = Files(tmp_path / "files")
    for (name, content), s in zip(docs, res["signatures"]):
        assert "signature" not in s, s
        der = base64.b64decode(s["cms"], validate=True)
        check_cms(files, der, content, alg, ident, pad, ca.cert_path)


@pytest.mark.parametrize("kind,pad", KEY_CASES, ids=KEY_IDS)
def test_sign_raw_verifies_with_cryptography(kind, pad, ca, token, agent_factory):
    """`sign` format raw: the bare signature over the digest (PKCS#1 v1.5, PSS with salt =
    digest length, or a DER ECDSA-Sig-Value), verified with cryptography's Prehashed."""
    ident = token.enroll(ca, kind=kind)
    agent = agent_factory()
    for alg in DIGEST_ALGS:
        docs = make_docs(3)
        res = agent.result("sign", sign_params(ident, docs, alg, "raw", pad))
        assert res["certificate"] == ident.cert_id
        assert [s["name"] for s in res["signatures"]] == [n for n, _ in docs]
        for (name, content), s in zip(docs, res["signatures"]):
            assert "cms" not in s, s
            sig = base64.b64decode(s["signature"], validate=True)
            d = pki.digest(content, alg)
            pki.verify_raw(ident.public_key, sig, d, alg, pad or "pkcs1")
            with pytest.raises(InvalidSignature):
                pki.verify_raw(ident.public_key, sig, pki.digest(content + b"x", alg), alg,
                    pad or "pkcs1")
            if kind == "ec":
                node, end = pki.ber_parse(sig)
                assert end == len(sig) and node.tag == 0x30 and [c.tag for c in node] == [2, 2]
            else:
                assert len(sig) == 256


def test_sign_batch_one_login(ca, token, agent_factory, tmp_path):
    """One PIN authorises exactly the listed documents (protocol `sign`; rules R1, R2): 20
    documents give 20 signatures in order (each verified by OpenSSL) with ONE C_Login, 20
    C_SignInit, and C_Logout after the last signature and before the answer; the next
    request logs in again (nothing cached). Counted with OpenSC's pkcs11-spy between parafd's
    helper and SoftHSM."""
    ident = token.enroll(ca, kind="rsa")
    agent = agent_factory(spy=True)
    agent.result("certificates.list")
    files = Files(tmp_path / "files")

    def signed_calls(docs):
        start = agent.spy_log.stat().st_size if agent.spy_log.exists() else 0
        res = agent.result("sign", sign_params(ident, docs, "sha256", "cms"))
        # read at once: the helper must have logged out BEFORE parafd answered (the spy
        # flushes its log after every call)
        with open(agent.spy_log, "rb") as f:
            f.seek(start)
            return res, spy_calls(f.read().decode(errors="replace"))

    docs = make_docs(20)
    res, calls = signed_calls(docs)
    assert [s["name"] for s in res["signatures"]] == [n for n, _ in docs]
    for (name, content), s in zip(docs, res["signatures"]):
        r = openssl_cms_verify(files, base64.b64decode(s["cms"]), content, ca.cert_path)
        assert r.returncode == 0, f"{name}: {r.stderr}"
    names = [c for c, _ in calls]
    logins = [(c, rv) for c, rv in calls if c == "C_Login"]
    assert logins == [("C_Login", "CKR_OK")], f"expected one C_Login, got {logins}"
    sign_inits = [i for i, (c, rv) in enumerate(calls) if c == "C_SignInit" and rv == "CKR_OK"]
    assert len(sign_inits) == 20, f"expected 20 C_SignInit, got {len(sign_inits)}"
    assert names.index("C_Login") < sign_inits[0]
    last_sign = max(i for i, c in enumerate(names) if c in ("C_Sign", "C_SignFinal"))
    assert "C_Logout" in names[last_sign:], \
        f"no C_Logout after the last signature before the answer; calls after it: " \
        f"{names[last_sign:]}"

    # the next request is authorised by its own PIN again: a fresh login
    res, calls = signed_calls(make_docs(1, "lampiran"))
    assert [c for c, _ in calls].count("C_Login") == 1, calls
    assert "C_Logout" in [c for c, _ in calls], calls


def test_sign_1000_documents_accepted(ca, token, agent_factory):
    """AG_DOCUMENTS_MAX: exactly 1,000 documents are signed; a 255-byte UTF-8 name is accepted
    (AG_NAME_MAX) and comes back unchanged."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory()
    docs = make_docs(AG_DOCUMENTS_MAX)
    long_name = "é" * 127 + "a"  # 255 bytes
    assert len(long_name.encode()) == AG_NAME_MAX
    docs[7] = (long_name, docs[7][1])
    res = agent.result("sign", sign_params(ident, docs, "sha256", "raw"))
    assert [s["name"] for s in res["signatures"]] == [n for n, _ in docs]
    for (name, content), s in list(zip(docs, res["signatures"]))[::50]:
        pki.verify_raw(ident.public_key, base64.b64decode(s["signature"]),
            pki.digest(content), "sha256")


def test_pin_never_cached(ca, token, agent_factory):
    """R1: the PIN is presented for every request. After a signed request, the next one, on
    the same and on another connection, opens the dialog again, and when the official cancels
    it nothing is signed (pin-cancelled): no PIN or login outlived the first request. The
    same for a system certificate whose PIN came in the request (R2 allows that type): a
    request without it is not signed with the earlier one."""
    ident = token.enroll(ca, kind="ec")
    system = token.enroll(ca, kind="ec", cert_type="system")
    agent = agent_factory()
    agent.result("sign", sign_params(ident, make_docs(1), "sha256", "raw"))
    assert len(agent.pinentry.dialogs()) == 1
    agent.pinentry.configure(action="cancel")
    r = agent.call("sign", sign_params(ident, make_docs(1), "sha256", "raw"))
    assert_error(r, "pin-cancelled")
    r = agent.client().call("sign", sign_params(ident, make_docs(1), "sha256", "raw"))
    assert_error(r, "pin-cancelled")
    assert len(agent.pinentry.dialogs()) == 3, "each request must ask for the PIN again"

    agent.result("sign", sign_params(system, make_docs(1), "sha256", "raw", pin=system.pin))
    assert len(agent.pinentry.dialogs()) == 3, "a PIN given in the request opened a dialog"
    r = agent.call("sign", sign_params(system, make_docs(1), "sha256", "raw"))
    assert_error(r, "pin-cancelled")
    assert len(agent.pinentry.dialogs()) == 4


def test_pin_parameter_refused_for_individual(ca, token, agent_factory):
    """R2: a `pin` parameter for an individual certificate is refused with
    pin-parameter-refused (rule R2, field pin) before any dialog or token work, while a
    system certificate (the policy's default [pin] parameter_types) may still take one;
    agent.status says which types may. The old configuration switch allow_pin_parameter is
    gone: parafd refuses to start with it (an unknown key), naming it."""
    ident = token.enroll(ca, kind="ec")
    system = token.enroll(ca, kind="ec", cert_type="system")
    agent = agent_factory()
    assert agent.result("agent.status")["pin_parameter_types"] == ["system"]
    r = agent.call("sign", sign_params(ident, make_docs(1), "sha256", "raw", pin=ident.pin))
    assert_error(r, "pin-parameter-refused", rule="R2", field="pin")
    assert agent.pinentry.dialogs() == [], "a dialog was opened for a refused request"
    docs = make_docs(1)
    res = agent.result("sign", sign_params(system, docs, "sha256", "raw", pin=system.pin))
    pki.verify_raw(system.public_key, base64.b64decode(res["signatures"][0]["signature"]),
        pki.digest(docs[0][1]))
    assert agent.pinentry.dialogs() == []

    for switch in ("yes", "no"):
        a = agent_factory(config=f"[agent]\nallow_pin_parameter = {switch}\n", wait=False,
            check_exit=False)
        try:
            rc = a.proc.wait(15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"parafd started with the removed key allow_pin_parameter = {switch}")
        assert rc != 0
        assert "allow_pin_parameter" in a.stderr(), a.stderr()
        assert not os.path.exists(a.socket)


def test_wrong_pin_then_right_pin(ca, token, agent_factory):
    """pin-incorrect (the dialog answered a wrong PIN) carries data.pin_status; the right PIN
    works afterwards."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory(pin="9999")
    r = agent.call("sign", sign_params(ident, make_docs(1), "sha256", "raw"))
    data = assert_error(r, "pin-incorrect")
    assert isinstance(data.get("pin_status"), dict), f"pin-incorrect without pin_status: {data}"
    agent.pinentry.configure(pin=ident.pin)
    agent.result("sign", sign_params(ident, make_docs(1), "sha256", "raw"))


# --- listing --------------------------------------------------------------------------------------

def test_tokens_list(token, token_factory, agent_factory):
    """tokens.list: one entry per initialised token (SoftHSM's blank free slot is not
    listed) with id (16 hex, stable across restarts), label, serial, manufacturer, model (as
    the token reports them, blanks trimmed), present, module (file name) and pin_status
    booleans; agent.status counts the same tokens."""
    t2 = token_factory("Token Kedua")
    agent = agent_factory()
    toks = agent.result("tokens.list")["tokens"]
    by_label = {}
    for t in toks:
        assert set(t) >= {"id", "label", "serial", "manufacturer", "model", "present", "module",
            "pin_status"}, t
        by_label.setdefault(t["label"], []).append(t)
    ids = {}
    for tok in (token, t2):
        info = tok.info()
        entries = by_label.get(tok.label, [])
        assert len(entries) == 1, f"expected one entry labelled {tok.label!r}: {toks}"
        entry = entries[0]
        assert re.fullmatch(r"[0-9a-f]{16}", entry["id"]), entry["id"]
        assert entry["serial"] == info["serial"]
        assert entry["manufacturer"] == info["manufacturer"] == "SoftHSM project"
        assert entry["model"] == info["model"]
        assert entry["present"] is True
        assert entry["module"] == "libsofthsm2.so"
        ps = entry["pin_status"]
        assert set(ps) == {"initialized", "count_low", "final_try", "locked", "to_be_changed"}, ps
        assert all(isinstance(v, bool) for v in ps.values()), ps
        assert ps["initialized"] is True and ps["locked"] is False and ps["final_try"] is False
        ids[tok.label] = entry["id"]
    assert len(set(ids.values())) == 2
    assert len(toks) == 2, f"expected exactly the two initialised tokens: {toks}"

    st = agent.result("agent.status")
    assert st["tokens_present"] == len(toks)
    assert sorted(st["tokens"]) == sorted(t["id"] for t in toks)

    agent.stop()
    again = agent_factory().result("tokens.list")["tokens"]
    assert {t["label"]: t["id"] for t in again if t["label"] in ids} == ids, \
        "token ids changed across an agent restart"


def test_certificates_list(ca, token, token_factory, agent_factory):
    """certificates.list: id = sha256 hex of the DER, token = its token's id, key_id (the
    CKA_ID, hex), label (CKA_LABEL), RFC 2253 subject/issuer, serial (lower-case hex), validity (ISO 8601 UTC), key algorithm/size/
    curve, key_usage and extended_key_usage names (null when the extension is absent), and
    the certificate itself."""
    rsa_id = token.enroll(ca, kind="rsa", label="Surat Keluar", extended_key_usage=[
        "emailProtection", "documentSigning", "1.3.6.1.4.1.99999.1"])
    ec_id = token.enroll(ca, kind="ec", key_usage=None, cert_type="position")
    t2 = token_factory("Token Kedua")
    other = t2.enroll(ca, kind="ec", key_usage=("digitalSignature",))
    agent = agent_factory()
    tokens = {t["label"]: t["id"] for t in agent.result("tokens.list")["tokens"]}
    certs = agent.result("certificates.list")["certificates"]
    by_id = {c["id"]: c for c in certs}
    assert len(by_id) == len(certs) == 3, certs

    expect = [
        (rsa_id, token, {"algorithm": "rsa", "size": 2048},
            ["digitalSignature", "nonRepudiation"],
            ["emailProtection", "documentSigning", "1.3.6.1.4.1.99999.1"]),
        (ec_id, token, {"algorithm": "ec", "size": 256, "curve": "prime256v1"}, None, None),
        (other, t2, {"algorithm": "ec", "size": 256, "curve": "prime256v1"},
            ["digitalSignature"], None),
    ]
    for ident, tok, key, ku, eku in expect:
        c = by_id.get(ident.cert_id)
        assert c is not None, f"{ident} not listed: {certs}"
        assert c["id"] == pki.cert_id(ident.der)
        assert c["token"] == tokens[tok.label]
        assert c["key_id"] == ident.key_id.hex()
        assert c["label"] == ident.label
        assert c["subject"] == pki.rfc2253(ident.cert.subject)
        assert c["issuer"] == pki.rfc2253(ca.cert.subject)
        assert re.fullmatch(r"[0-9a-f]+", c["serial"]) and \
            int(c["serial"], 16) == ident.cert.serial_number, c["serial"]
        assert c["not_before"] == pki.iso(ident.cert.not_valid_before)
        assert c["not_after"] == pki.iso(ident.cert.not_valid_after)
        assert c["key"] == key
        assert (sorted(c["key_usage"]) if c["key_usage"] is not None else None) == \
            (sorted(ku) if ku is not None else None)
        assert (sorted(c["extended_key_usage"]) if c["extended_key_usage"] is not None
            else None) == (sorted(eku) if eku is not None else None)
        assert base64.b64decode(c["certificate"], validate=True) == ident.der


def test_agent_status(ca, token, agent_factory):
    """agent.status: version (meson's project version), uptime, pid, tokens, helper (running,
    pid = parafd's child, restarts 0), clients, and the policy's view: policy (directory,
    valid, test_mode), pin_parameter_types (default ["system"]), pinentry, logind."""
    token.enroll(ca, kind="ec")
    agent = agent_factory()
    st = agent.result("agent.status")
    version = re.search(r"version:\s*'([^']+)'", (REPO / "meson.build").read_text()).group(1)
    assert st["version"] == version
    assert isinstance(st["uptime_seconds"], int) and 0 <= st["uptime_seconds"] < 600
    assert st["pid"] == agent.pid
    assert st["tokens_present"] >= 1
    assert all(re.fullmatch(r"[0-9a-f]{16}", t) for t in st["tokens"]), st["tokens"]
    h = st["helper"]
    assert set(h) >= {"running", "pid", "restarts"}, h
    assert h["restarts"] == 0
    assert h["running"] is True, h
    assert h["pid"] == agent.helper_pid()
    assert "pin_parameter" not in st, "pin_parameter belonged to the removed config switch"
    assert st["policy"]["directory"] == str(agent.policy.path)
    assert st["policy"]["valid"] is True and st["policy"]["test_mode"] is True, st["policy"]
    assert st["pin_parameter_types"] == ["system"]
    assert isinstance(st["logind"], bool)
    assert st["pinentry"] == str(agent.pinentry.wrapper), \
        f"agent.status names {st['pinentry']!r}, but parafd was started with --pinentry " \
        f"{agent.pinentry.wrapper}"
    assert isinstance(st["clients"], int) and st["clients"] >= 1
    # methods without parameters accept params absent, {} or []
    for params in ({}, []):
        assert_result(agent.call("agent.status", params))


def test_status_answers_without_a_usable_module(agent_factory):
    """With no PKCS#11 module reachable (the only --module is a library that is not one),
    agent.status still answers, with tokens_present null and no tokens; listing tokens is a
    token-error."""
    libz = next((p for p in ("/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/"
        "libz.so.1") if os.path.exists(p)), None)
    if libz is None:
        pytest.skip("no libz.so.1 to stand in for a broken PKCS#11 module")
    agent = agent_factory(modules=[libz])
    st = agent.result("agent.status")
    assert st["tokens_present"] is None and st["tokens"] == [], st
    assert_error(agent.call("tokens.list"), "token-error")
    assert_result(agent.call("agent.status"))


def _openrpc_errors(doc, node):
    """Every error object under node, with $ref resolved."""
    out = []
    if isinstance(node, dict):
        if "$ref" in node and isinstance(node["$ref"], str) and node["$ref"].startswith("#/"):
            target = doc
            for part in node["$ref"][2:].split("/"):
                target = target[part]
            return _openrpc_errors(doc, target)
        if isinstance(node.get("code"), int) and "message" in node:
            out.append(node)
        for v in node.values():
            out += _openrpc_errors(doc, v)
    elif isinstance(node, list):
        for v in node:
            out += _openrpc_errors(doc, v)
    return out


def test_rpc_discover_matches_protocol_doc(agent):
    """rpc.discover returns an OpenRPC document listing every method and every error code
    (each with code, message and data.reason, matching doc/protocol.md's table); every method
    and every reason in it is described in doc/protocol.md."""
    doc = agent.result("rpc.discover")
    assert isinstance(doc.get("openrpc"), str) and doc["openrpc"].startswith("1."), doc.get("openrpc")
    assert "info" in doc and "methods" in doc
    methods = {m["name"]: m for m in doc["methods"]}
    assert set(methods) == set(METHODS), sorted(methods)

    all_errors = _openrpc_errors(doc, doc)
    pairs = set()
    for e in all_errors:
        reason = (e.get("data") or {}).get("reason")
        assert isinstance(reason, str), f"error without data.reason: {e}"
        assert isinstance(e["message"], str) and e["message"], e
        pairs.add((e["code"], reason))
    assert pairs == {(c, r) for r, c in ERROR_CODES.items()}, \
        f"rpc.discover errors differ from protocol.md: only in discover " \
        f"{sorted(pairs - {(c, r) for r, c in ERROR_CODES.items()})}, only in protocol.md " \
        f"{sorted({(c, r) for r, c in ERROR_CODES.items()} - pairs)}"

    sign_errors = {(e.get("data") or {}).get("reason") for e in _openrpc_errors(doc,
        methods["sign"].get("errors", []))}
    for reason in ("invalid-params", "too-many-documents", "unknown-certificate",
            "token-not-present", "key-not-found", "key-extractable", "pin-required",
            "pin-parameter-refused", "pin-incorrect", "pin-locked", "pin-invalid",
            "unsupported-algorithm", "token-removed", "token-error", "token-helper-failed",
            "unregistered", "not-owner", "no-session", "remote-session", "inactive-session",
            "batch-too-large", "usage-not-allowed", "usage-not-in-certificate",
            "not-yet-valid", "expired", "non-compliant", "untrusted", "revoked",
            "revocation-unknown", "pin-cancelled", "pin-dialog-failed",
            "dialog-location-refused", "policy-invalid"):
        assert reason in sign_errors, f"sign's errors in rpc.discover lack {reason}"

    optional = ("padding", "profile", "pin", "tty", "tty_type", "display", "xauthority",
        "wayland_display")
    params = {p["name"]: p for p in methods["sign"]["params"]}
    assert set(params) == {"certificate", "usage", "format", "digest_algorithm", "documents",
        *optional}, sorted(params)
    for name in ("certificate", "usage", "format", "digest_algorithm", "documents"):
        assert params[name].get("required") is True, params[name]
    for name in optional:
        assert not params[name].get("required"), params[name]
    for name in ("rpc.discover", "agent.status", "tokens.list", "certificates.list"):
        assert not methods[name].get("params"), methods[name]

    text = PROTOCOL_MD.read_text()
    for name in methods:
        assert f"### `{name}`" in text, f"method {name} is not described in protocol.md"
    for _, reason in pairs:
        assert f"`{reason}`" in text, f"reason {reason} is not described in protocol.md"
    for name in params:
        assert f"| `{name}` |" in text, f"sign parameter {name} is not described in protocol.md"


# --- bad requests -------------------------------------------------------------------------------

def _req(method="sign", params=_DEFAULT, id=1, **top):
    r = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not _DEFAULT:
        r["params"] = params
    r.update(top)
    return json.dumps(r, ensure_ascii=False).encode()


def _nested(depth):
    """A request whose JSON nesting (the top-level object counted) is `depth`: agent.status
    with an unknown parameter holding depth - 2 nested arrays."""
    inner = "[" * (depth - 2) + "]" * (depth - 2)
    return ('{"jsonrpc":"2.0","id":9,"method":"agent.status","params":{"a":%s}}'
        % inner).encode()


def bad_request_cases(rsa, ec_ident, bad_key, no_key):
    """(label, line, reason, field, extra) for the table test. field _ANY = not checked."""
    def sp(ident=rsa, **changes):
        p = sign_params(ident, [("surat.pdf", b"isi surat"), ("lampiran.pdf", b"lampiran")])
        for k, v in changes.items():
            if v is None:
                p.pop(k, None)
            else:
                p[k] = v
        return p

    def doc(i=0, **changes):
        d = {"name": "surat.pdf", "digest": pki.b64(pki.digest(b"isi"))}
        for k, v in changes.items():
            if v is None:
                d.pop(k)
            else:
                d[k] = v
        docs = [{"name": "a.pdf", "digest": pki.b64(pki.digest(b"a"))}] * i + [d]
        return sp(documents=docs)

    ok = _req("agent.status", id=1)
    big = ok[:-1] + b',"params":{"x":"' + b"A" * AG_REQUEST_MAX + b'"}}'
    garbage = bytes(b for b in secrets.token_bytes(4096) if b != 0x0a)
    many = [{"name": f"d{i}", "digest": pki.b64(pki.digest(str(i).encode()))}
        for i in range(AG_DOCUMENTS_MAX + 1)]
    P = "invalid-params"
    return [
        # framing and JSON
        ("truncated JSON", ok[:-5], "parse-error", None, None),
        ("not JSON", b"tanda tangani ini", "parse-error", None, None),
        ("lone brace", b"{", "parse-error", None, None),
        ("trailing garbage", ok + b" x", "parse-error", None, None),
        ("two objects on one line", ok + ok, "parse-error", None, None),
        ("non-UTF-8 byte in a string", ok[:-1] + b',"params":{"\xff":1}}', "parse-error",
            None, None),
        ("overlong UTF-8", ok[:-1] + b',"params":{"\xc0\xaf":1}}', "parse-error", None, None),
        ("UTF-16 surrogate as UTF-8", ok[:-1] + b',"params":{"\xed\xa0\x80":1}}',
            "parse-error", None, None),
        ("binary garbage", garbage, "parse-error", None, None),
        ("NUL byte", ok[:10] + b"\x00" + ok[10:], "parse-error", None, None),
        ("oversized > 1 MiB", big, "request-too-large", _ANY,
            lambda d: d.get("limit") == AG_REQUEST_MAX),
        ("nested 10,000 deep", b'{"jsonrpc":"2.0","id":1,"method":"agent.status","params":'
            + b"[" * 10000 + b"]" * 10000 + b"}", "nesting-too-deep", _ANY, None),
        ("nested 17 deep", _nested(AG_JSON_DEPTH_MAX + 1), "nesting-too-deep", _ANY, None),
        # JSON-RPC envelope
        ("batch array", b"[" + ok + b"]", "invalid-request", _ANY, None),
        ("empty array", b"[]", "invalid-request", _ANY, None),
        ("top-level string", b'"agent.status"', "invalid-request", _ANY, None),
        ("top-level number", b"42", "invalid-request", _ANY, None),
        ("jsonrpc 1.0", _req("agent.status", jsonrpc="1.0"), "invalid-request", _ANY, None),
        ("jsonrpc missing", b'{"id":1,"method":"agent.status"}', "invalid-request", _ANY, None),
        ("method not a string", _req(5), "invalid-request", _ANY, None),
        ("method missing", b'{"jsonrpc":"2.0","id":1}', "invalid-request", _ANY, None),
        ("id missing (notification)", b'{"jsonrpc":"2.0","method":"agent.status"}',
            "invalid-request", _ANY, "id-null"),
        ("id null", _req("agent.status", id=None), "invalid-request", _ANY, "id-null"),
        ("id fractional", _req("agent.status", id=1.5), "invalid-request", _ANY, None),
        ("id object", _req("agent.status", id={"n": 1}), "invalid-request", _ANY, None),
        ("id boolean", _req("agent.status", id=True), "invalid-request", _ANY, None),
        ("unknown method", _req("sign.all", {}, id="m1"), "method-not-found", _ANY, "id"),
        ("empty method", _req("", id=2), "method-not-found", _ANY, "id"),
        # parameters
        ("unknown parameter of agent.status", _req("agent.status", {"verbose": True}, id=3),
            P, "verbose", "id"),
        ("unknown parameter of rpc.discover", _req("rpc.discover", {"x": 1}), P, "x", None),
        ("unknown parameter of sign", _req(params=sp(digest_algoritm="sha256"), id="s"), P,
            "digest_algoritm", "id"),
        ("missing usage", _req(params=sp(usage=None)), P, "usage", None),
        ("missing certificate", _req(params=sp(certificate=None)), P, "certificate", None),
        ("missing documents", _req(params=sp(documents=None)), P, "documents", None),
        ("usage unknown", _req(params=sp(usage="approval")), P, "usage", None),
        ("format wrong type", _req(params=sp(format=1)), P, "format", None),
        ("format unknown", _req(params=sp(format="pdf")), P, "format", None),
        ("digest_algorithm md5", _req(params=sp(digest_algorithm="md5")), P,
            "digest_algorithm", None),
        ("padding unknown", _req(params=sp(padding="oaep")), P, "padding", None),
        ("profile with raw format", _req(params=sp(format="raw", profile="pades")), P, "profile",
            None),
        ("profile unknown", _req(params=sp(profile="xades")), P, "profile", None),
        ("pin not a string", _req(params=sp(pin=1234)), P, "pin", None),
        ("certificate not hex", _req(params=sp(certificate="z" * 64)), P, "certificate", None),
        ("certificate 63 hex digits", _req(params=sp(certificate="a" * 63)), P, "certificate",
            None),
        ("certificate wrong type", _req(params=sp(certificate=["a" * 64])), P, "certificate",
            None),
        ("documents not an array", _req(params=sp(documents={"name": "a"})), P, "documents",
            None),
        ("documents empty", _req(params=sp(documents=[])), P, "documents", None),
        ("501 documents", _req(params=sp(documents=many)), "too-many-documents", _ANY,
            lambda d: d.get("limit") == AG_DOCUMENTS_MAX),
        ("document not an object", _req(params=sp(documents=["surat.pdf"])), P,
            "documents[0]", None),
        ("document digest missing", _req(params=doc(digest=None)), P, "documents[0].digest",
            None),
        ("document name missing", _req(params=doc(name=None)), P, "documents[0].name", None),
        ("document unknown key", _req(params=doc(size=10)), P, "documents[0].size", None),
        ("invalid base64", _req(params=doc(digest="!" * 44)), P, "documents[0].digest", None),
        ("base64 without padding", _req(params=doc(
            digest=pki.b64(pki.digest(b"x")).rstrip("="))), P, "documents[0].digest", None),
        ("base64 with a line break", _req(params=doc(
            digest=pki.b64(pki.digest(b"x"))[:20] + "\n" + pki.b64(pki.digest(b"x"))[20:])),
            P, "documents[0].digest", None),
        ("digest 20 bytes for sha256", _req(params=doc(digest=pki.b64(b"\x01" * 20))), P,
            "documents[0].digest", None),
        ("digest 32 bytes for sha512 (second document)", _req(params=sp(
            digest_algorithm="sha512", documents=[
                {"name": "a.pdf", "digest": pki.b64(pki.digest(b"a", "sha512"))},
                {"name": "b.pdf", "digest": pki.b64(pki.digest(b"b", "sha256"))}])), P,
            "documents[1].digest", None),
        ("name empty", _req(params=doc(name="")), P, "documents[0].name", None),
        ("name 256 bytes", _req(params=doc(name="é" * 128)), P, "documents[0].name", None),
        ("name with BEL", _req(params=doc(name="surat\u0007.pdf")), P, "documents[0].name",
            None),
        ("name with newline", _req(params=doc(name="surat\n.pdf")), P, "documents[0].name",
            None),
        ("name with NUL", _req(params=doc(name="surat\u0000.pdf")), P, "documents[0].name",
            None),
        ("name with DEL", _req(params=doc(name="surat\u007f.pdf")), P, "documents[0].name",
            None),
        ("name with C1 control", _req(params=doc(name="surat\u0085.pdf")), P,
            "documents[0].name", None),
        ("name with bidi override", _req(params=doc(name="surat\u202efdp.exe")), P,
            "documents[0].name", None),
        ("name with bidi isolate", _req(params=doc(name="surat\u2067x\u2069.pdf")), P,
            "documents[0].name", None),
        ("name not a string", _req(params=doc(name=7)), P, "documents[0].name", None),
        # the tokens
        ("unknown certificate", _req(params=sp(certificate="0" * 64), id=77),
            "unknown-certificate", _ANY, "id"),
        ("certificate without a private key", _req(params=sp(no_key)), "key-not-found", _ANY,
            None),
        ("PSS with an EC key", _req(params=sp(ec_ident, padding="pss")),
            "unsupported-algorithm", _ANY, None),
        ("PIN parameter for an individual certificate (R2)", _req(params=sp(pin="0000"),
            id=78), "pin-parameter-refused", "pin", lambda d: d["rule"] == "R2"),
        ("extractable key (R3)", _req(params=sp(bad_key), id=79), "key-extractable", _ANY,
            lambda d: d["rule"] == "R3"),
    ]


_PROTOCOL_LEVEL = ("parse-error", "invalid-request", "method-not-found", "invalid-params")


def test_bad_requests_table(ca, token, agent_factory):
    """At least 25 kinds of bad request, each answered with its documented code, data.reason
    and (for invalid-params) data.field, and rule null for protocol-level errors; parse
    errors and notifications get id null, parsed requests their own id. A second client
    connected at the same time is served between them (agent.status), and the same
    connection keeps working after each one. Includes R3 (key-extractable, after the dialog:
    the token tells only once logged in) and R2 (a PIN parameter for an individual
    certificate)."""
    rsa = token.enroll(ca, kind="rsa")
    ec_ident = token.enroll(ca, kind="ec")
    bad_key = token.enroll(ca, kind="rsa", extractable=True)
    # a certificate whose private key is not on the token
    lone = ca.issue(ec.generate_private_key(ec.SECP256R1()).public_key(), "Tanpa Kunci")
    token.import_certificate(lone, b"\x42" * 8, "no-key")
    no_key = pki.Identity(token, b"\x42" * 8, "ec", lone)
    cases = bad_request_cases(rsa, ec_ident, bad_key, no_key)
    assert len(cases) >= 25

    agent = agent_factory()
    agent.policy.register(no_key)  # allowed by the policy: the token's answer is the test
    main = agent.client()
    other = agent.client()
    assert_result(other.call("agent.status"))
    failures = []
    for label, line, reason, field, extra in cases:
        try:
            resp = main.send_line(line)
            data = assert_error(resp, reason, field=field)
            if reason in _PROTOCOL_LEVEL:
                assert data["rule"] is None, f"rule {data['rule']!r} on a protocol error"
            if reason in ("parse-error", "request-too-large") or extra == "id-null":
                assert "id" in resp and resp["id"] is None, f"id should be null: {resp}"
            elif reason == "nesting-too-deep":  # the id may or may not have been read
                sent_id = int(re.search(rb'"id":(\d+)', line).group(1))
                assert "id" in resp and resp["id"] in (None, sent_id), f"unexpected id: {resp}"
            elif extra == "id":
                assert resp.get("id") == json.loads(line)["id"], f"id not echoed: {resp}"
            elif callable(extra):
                assert extra(data), f"extra check failed on {data}"
        except (AssertionError, EOFError, TimeoutError, OSError) as e:
            failures.append(f"{label}: {e}")
            if main.sock is None or isinstance(e, (EOFError, OSError)):
                main = agent.client()
        # the other client is served between bad requests
        try:
            assert_result(other.call("agent.status", id=f"other-{label}"), id=f"other-{label}")
        except (AssertionError, EOFError, TimeoutError, OSError) as e:
            failures.append(f"{label}: second client not served afterwards: {e}")
            other = agent.client()
        # and the same connection still works
        try:
            assert_result(main.call("agent.status", id=f"after-{label}"), id=f"after-{label}")
        except (AssertionError, EOFError, TimeoutError, OSError) as e:
            failures.append(f"{label}: connection unusable afterwards: {e}")
            main = agent.client()
    assert agent.alive(), "parafd died"
    assert not failures, f"{len(failures)} of {len(cases)} bad requests mishandled:\n" + \
        "\n".join(failures)


def test_ids_echoed_exactly(agent):
    """The response carries the request's id exactly (a string or an integer), or, for an id
    the agent cannot represent (too big, a lone surrogate), invalid-request or parse-error
    with id null; never a different id."""
    failures = []
    for raw in (b'"surat-42"', b'0', b'-7', b'9007199254740993', b'9223372036854775807',
            b'123456789012345678901234567890', b'"\\u00fc\\u00e9"', b'"\\ud800"',
            b'"caf\xc3\xa9"'):
        line = b'{"jsonrpc":"2.0","id":' + raw + b',"method":"agent.status"}'
        resp = agent.send_line(line)
        sent = json.loads(raw)
        try:
            if "error" in resp:
                reason = resp["error"].get("data", {}).get("reason")
                assert_error(resp, "parse-error" if reason == "parse-error" else
                    "invalid-request", id=None)
            else:
                assert "id" in resp and resp["id"] == sent and type(resp["id"]) is type(sent), \
                    f"got back id {resp.get('id')!r}"
        except AssertionError as e:
            failures.append(f"sent id {raw!r}: {e}")
    assert not failures, "\n".join(failures)


def test_limits_at_the_boundary_are_accepted(agent_factory):
    """A request line of exactly AG_REQUEST_MAX bytes is processed; nesting of exactly
    AG_JSON_DEPTH_MAX is not refused as too deep (it gets invalid-params for its unknown
    parameter instead)."""
    agent = agent_factory()
    ok = _req("agent.status", id=5)
    exact = ok[:-1] + b" " * (AG_REQUEST_MAX - len(ok)) + b"}"
    assert len(exact) == AG_REQUEST_MAX
    assert_result(agent.send_line(exact), id=5)
    assert_error(agent.send_line(_nested(AG_JSON_DEPTH_MAX)), "invalid-params", field="a", id=9)
    assert_result(agent.call("agent.status"))


def test_pipelined_requests_answered_in_order(ca, token, agent_factory):
    """Several requests sent at once on one connection are answered in order, each once."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory()
    c = agent.client()
    enc = Client.encode
    c.send(enc("sign", sign_params(ident, make_docs(30), "sha256", "raw"), "a")
        + enc("agent.status", None, 2) + b"{oops\n" + enc("tokens.list", None, "c")
        + enc("no.such.method", {}, 4) + enc("certificates.list", {}, 5)
        + enc("sign", sign_params(ident, make_docs(1), "sha384", "cms"), 6))
    got = [c.recv() for _ in range(7)]
    assert [r.get("id") for r in got] == ["a", 2, None, "c", 4, 5, 6], got
    assert len(assert_result(got[0])["signatures"]) == 30
    assert_result(got[1])
    assert_error(got[2], "parse-error")
    assert_result(got[3])
    assert_error(got[4], "method-not-found")
    assert_result(got[5])
    assert_result(got[6])


def test_max_clients(agent_factory):
    """max_clients: the extra client gets too-many-clients and is disconnected; the others
    keep working, and a freed place can be taken again."""
    def status(c):
        """agent.status on c; the response, or None if the agent closed c without one."""
        try:
            c.request("agent.status")
        except OSError:
            pass  # refused and closed before we could send
        line = c.recv_line(10)
        return json.loads(line) if line is not None else None

    agent = agent_factory(config="[agent]\nmax_clients = 4\n")
    clients = []
    for _ in range(4):  # one at a time, so that each is surely counted
        clients.append(agent.client())
        assert_result(status(clients[-1]))
    extra = agent.client()
    r = status(extra)
    assert r is not None, "the extra client was closed without a too-many-clients error"
    assert_error(r, "too-many-clients")
    assert extra.wait_closed(10), "the extra client was not disconnected"
    for c in clients:
        assert_result(status(c))
    clients[0].close()
    deadline = time.monotonic() + 10
    while True:
        r = status(agent.client())
        if r is not None and "result" in r:
            break
        assert r is not None, "a client was closed without a too-many-clients error"
        assert_error(r, "too-many-clients")
        assert time.monotonic() < deadline, "a closed client's place was never freed"
        time.sleep(0.1)


def test_idle_connection_closed(agent_factory):
    """idle_timeout: a connection without requests (and nothing pending) is closed."""
    agent = agent_factory(config="[agent]\nidle_timeout = 2\n")
    c = agent.client()
    assert_result(c.call("agent.status"))
    t0 = time.monotonic()
    assert c.wait_closed(30), "idle connection not closed"
    assert time.monotonic() - t0 >= 1.0, "closed long before idle_timeout"
    assert_result(agent.client().call("agent.status"))


# --- the token helper ---------------------------------------------------------------------------

def _wait_gone(pid, timeout=10):
    deadline = time.monotonic() + timeout
    while proc_state(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_helper_killed_during_sign(ca, token, agent_factory):
    """The token helper SIGKILLed during a 1,000-document sign: the request fails cleanly with
    token-helper-failed, parafd (same pid) replaces the helper, reaps the old one, and the
    next request succeeds."""
    ident = token.enroll(ca, kind="rsa")
    agent = agent_factory()
    agent.result("sign", sign_params(ident, make_docs(1), "sha256", "raw"))
    params = sign_params(ident, make_docs(AG_DOCUMENTS_MAX), "sha256", "raw")
    resp = None
    for attempt in range(6):
        hp = agent.helper_pid()
        assert hp, "no token helper process"
        c = agent.client()
        shown = len(agent.pinentry.dialogs())
        rid = c.request("sign", params, f"big-{attempt}")
        # the PIN dialog first: the helper signs once it has been answered
        deadline = time.monotonic() + 20
        while len(agent.pinentry.dialogs()) == shown and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05 + 0.05 * attempt)
        os.kill(hp, signal.SIGKILL)
        resp = c.recv(60)
        if "error" in resp:
            break
        # the batch finished before the kill landed; let parafd notice the dead helper
        agent.result("agent.status")
    else:
        pytest.skip("every 1,000-document sign finished before SIGKILL landed")
    assert_error(resp, "token-helper-failed", id=rid)
    assert agent.alive(), "parafd died with its helper"
    assert _wait_gone(hp), f"old helper {hp} not reaped (state {proc_state(hp)})"
    docs = make_docs(3)
    res = agent.result("sign", sign_params(ident, docs, "sha256", "raw"))
    for (name, content), s in zip(docs, res["signatures"]):
        pki.verify_raw(ident.public_key, base64.b64decode(s["signature"]), pki.digest(content))
    st = agent.result("agent.status")
    assert st["pid"] == agent.pid
    assert st["helper"]["restarts"] >= 1, st["helper"]
    assert st["helper"]["pid"] != hp and st["helper"]["pid"] == agent.helper_pid()


def test_helper_stopped_times_out(ca, token, agent_factory):
    """helper_timeout: with the helper SIGSTOPped, a sign fails with token-helper-failed
    after about helper_timeout (2 s; bounds generous), other clients are served meanwhile,
    the stuck helper is killed and replaced, and the next request succeeds."""
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory(config="[agent]\nhelper_timeout = 2\n")
    agent.result("sign", sign_params(ident, make_docs(1), "sha256", "raw"))
    hp = agent.helper_pid()
    assert hp
    os.kill(hp, signal.SIGSTOP)
    try:
        c = agent.client()
        t0 = time.monotonic()
        rid = c.request("sign", sign_params(ident, make_docs(2), "sha256", "raw"), "stuck")
        assert_result(agent.client().call("rpc.discover"))  # served while the helper hangs
        resp = c.recv(60)
        elapsed = time.monotonic() - t0
    finally:
        if proc_state(hp) == "T":
            os.kill(hp, signal.SIGCONT)
    assert_error(resp, "token-helper-failed", id=rid)
    assert 1.5 <= elapsed <= 30, f"answered after {elapsed:.1f} s with helper_timeout = 2"
    assert _wait_gone(hp), f"stuck helper {hp} still there (state {proc_state(hp)})"
    assert agent.alive()
    agent.result("sign", sign_params(ident, make_docs(2), "sha256", "raw"))
    st = agent.result("agent.status")
    assert st["pid"] == agent.pid and st["helper"]["restarts"] >= 1


# --- the socket ---------------------------------------------------------------------------------

def test_socket_is_private(agent):
    """The socket is mode 0600 in a 0700 directory."""
    assert os.stat(agent.socket).st_mode & 0o7777 == 0o600, oct(os.stat(agent.socket).st_mode)
    assert os.stat(agent.socket_dir).st_mode & 0o7777 == 0o700


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o777, 0o1777], ids=lambda m: f"{m:04o}")
def test_refuses_open_socket_directory(mode, agent_factory, socket_dir):
    """parafd refuses to start when the socket's directory is group or world accessible:
    exits non-zero, names the directory, creates no socket."""
    os.chmod(socket_dir, mode)
    a = agent_factory(socket_dir=socket_dir, wait=False, check_exit=False)
    try:
        rc = a.proc.wait(15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"parafd started with socket directory mode {oct(mode)}")
    assert rc != 0
    assert str(socket_dir) in a.stderr(), f"message does not name the directory: {a.stderr()}"
    assert not os.path.exists(a.socket)


def test_refuses_socket_directory_of_another_owner(agent_factory, socket_dir):
    """parafd refuses a 0700 socket directory owned by another user (needs root to make)."""
    if os.geteuid() != 0:
        pytest.skip("making a directory owned by another user needs root")
    os.chown(socket_dir, 65534, 65534)
    a = agent_factory(socket_dir=socket_dir, wait=False, check_exit=False)
    try:
        rc = a.proc.wait(15)
    except subprocess.TimeoutExpired:
        pytest.fail("parafd started in a socket directory owned by another user")
    assert rc != 0
    assert str(socket_dir) in a.stderr(), a.stderr()


def test_creates_missing_socket_directory(agent_factory, socket_dir):
    """parafd creates a missing socket directory with mode 0700."""
    d = socket_dir / "paraf"
    a = agent_factory(socket_dir=d)
    assert os.stat(d).st_mode & 0o7777 == 0o700
    assert os.stat(a.socket).st_mode & 0o7777 == 0o600
    assert_result(a.call("agent.status"))


_PEER_CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(sys.argv[1])
try:
    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"agent.status"}\n')
except OSError:
    pass  # refused and closed before the request could be sent
buf = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
except ConnectionResetError:
    pass  # closed by the agent with our request unread: closed all the same
except OSError as e:
    buf += b"\nRECV-FAILED " + str(e).encode()
print(json.dumps(buf.decode(errors="replace").split("\n")))
"""


def test_other_user_refused(ca, token, agent_factory):
    """R1 (no delegation; peer credentials): a client running as another user, let through
    the file permissions on purpose, gets one peer-refused error (rule R1) and is closed."""
    if os.geteuid() != 0:
        pytest.skip("running a client as another user needs root")
    token.enroll(ca, kind="ec")
    # The other user must be able to reach the socket, and pytest's base directory is 0700:
    # this one socket directory lives directly in /tmp (removed at the end).
    sdir = Path(tempfile.mkdtemp(prefix="paraf-peer-", dir="/tmp"))
    try:
        agent = agent_factory(socket_dir=sdir)
        os.chmod(sdir, 0o711)
        os.chmod(agent.socket, 0o666)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            sys.executable, "-c", _PEER_CLIENT, agent.socket], capture_output=True, text=True,
            timeout=60, cwd="/")
        assert_result(agent.call("agent.status"))
        agent.stop()
    finally:
        shutil.rmtree(sdir, ignore_errors=True)
    assert r.returncode == 0, r.stderr
    lines = [x for x in json.loads(r.stdout) if x]
    assert lines, "closed without a peer-refused error"
    assert_error(json.loads(lines[0]), "peer-refused", rule="R1")
    assert lines[1:] == [], f"more than one line, or not closed after the error: {lines[1:]}"
