"""
Integration tests of parafd's signing policy (doc/policy.md) on SoftHSM tokens with the test
PKI: every refusal of the decision table answered with its documented code, `data.reason` and
`data.rule`, every valid case signed and verified by `openssl cms -verify`, the trusted PIN
dialog checked through the fake pinentry's log, and every decision's single audit record read
back from parafd's stderr.

Each test is named after the rule of REGULATION.md it proves (R1 … R13) and cites it.

The tokens here have a PIN that cannot turn up by chance (not "1234", which any hex digest or
pid may contain): the `start` fixture checks, for every agent it started, that the PIN never
reached parafd's stderr (logs and audit records) nor the PIN dialog's environment (R2).
"""

import base64
import datetime
import json
import os
import pty
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import pki
from conftest import FakePinentry
from test_agent import (_ANY, Files, assert_error, assert_result, make_docs, sign_params)

from cryptography.x509.oid import NameOID

PIN = "Rhs-4831-Pkx"          # the tokens' PIN here
WRONG_PIN = "Slh-9072-Qzw"    # a wrong one
ME = os.readlink("/proc/self/exe")  # the requesting executable parafd must show and audit
DAY = datetime.timedelta(days=1)
SUBJECT = dict(serial_number="NIP197803152005011002", organization="Pemerintah Kabupaten Contoh")


def now():
    return pki.utcnow()


def other_account():
    """An existing account that is not the tests' own."""
    name = "nobody" if os.getuid() != pwd.getpwnam("nobody").pw_uid else "root"
    return name


# --- fixtures ----------------------------------------------------------------------------------

@pytest.fixture
def tok(softhsm):
    """A fresh token with the distinctive PIN."""
    return softhsm.init_token("paraf-policy", pin=PIN, so_pin="87654321")


@pytest.fixture
def start(agent_factory):
    """start(**agent_factory options) -> Agent. At the end of the test: neither PIN appears in
    any started agent's stderr (its log and audit records) or in its PIN dialog's log, which
    holds the dialog's environment (R2: the PIN is never logged, never in the environment)."""
    agents = []

    def go(**kw):
        a = agent_factory(**kw)
        agents.append(a)
        return a

    yield go
    for a in agents:
        texts = {"stderr": a.stderr()}
        if a.pinentry is not None and a.pinentry.log_path.exists():
            texts["the PIN dialog's log"] = a.pinentry.log_path.read_text()
        for where, text in texts.items():
            for secret in (PIN, WRONG_PIN):
                assert secret not in text, f"a PIN appears in {where} of {a!r} (R2)"


@pytest.fixture
def files(tmp_path):
    return Files(tmp_path / "files")


# --- requests, answers and audit records -------------------------------------------------------

def request(agent, ident, docs, usage="signature", fmt="cms", client=None, **more):
    """Sends one sign request for `docs` [(name, bytes)]; returns (response, the audit records
    written while it was answered)."""
    since = agent.audit_count()
    c = client or agent.conn
    resp = c.call("sign", sign_params(ident, docs, "sha256", fmt, usage=usage, **more))
    return resp, agent.audit(since)


def check_audit(records, ident, docs, verdict, rule, reason, outcome, usage="signature",
        cert_type=_ANY, owner=_ANY):
    """Exactly one audit record for the request, with who asked (uid and pid from the socket,
    our executable), what (certificate, usage, each document's name and digest in hex) and
    the decision; never a PIN (STYLE 14; R1: every refusal is audited)."""
    assert len(records) == 1, f"expected one audit record for the decision, got {records}"
    r = records[0]
    assert r["method"] == "sign", r
    assert r["uid"] == os.getuid() and r["pid"] == os.getpid(), r
    assert r["exe"] == ME, f"audit exe {r['exe']!r}, expected {ME!r}"
    assert r["certificate"] == ident.cert_id, r
    assert r["usage"] == usage, r
    assert r["digest_algorithm"] == "sha256", r
    assert r["documents"] == [{"name": n, "digest": pki.digest(d).hex()} for n, d in docs], r
    assert (r["verdict"], r["rule"], r["reason"], r["outcome"]) == \
        (verdict, rule, reason, outcome), f"audit record {r}"
    if cert_type is not _ANY:
        assert r["certificate_type"] == cert_type, r
    if owner is not _ANY:
        assert r["owner"] == owner, r
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["time"] or ""), r
    assert not {k for k in r if "pin" in k.lower()}, f"a PIN field in the audit record: {r}"
    return r


def refused(agent, ident, docs, reason, rule, field=_ANY, usage="signature", client=None,
        **more):
    """A request the policy refuses: the documented error with `reason` and `rule`, one audit
    record 'deny' with the same rule and reason, and no PIN dialog opened. Returns data."""
    shown = len(agent.pinentry.dialogs()) if agent.pinentry else 0
    resp, recs = request(agent, ident, docs, usage, client=client, **more)
    data = assert_error(resp, reason, field=field, rule=rule)
    check_audit(recs, ident, docs, "deny", rule, reason, None, usage)
    if agent.pinentry:
        assert len(agent.pinentry.dialogs()) == shown, \
            "a PIN dialog was opened for a request the policy refuses"
    return data


def failed_after_allow(agent, ident, docs, reason, rule=_ANY, usage="signature", **more):
    """A request the policy allowed that failed later (the dialog, the token): the error, and
    one audit record. A refusal that enforces a rule of its own (the dialog's location, R1; an
    extractable key, R3) is a 'deny' naming that rule; any other failure is the outcome of an
    'allow'. Returns data."""
    resp, recs = request(agent, ident, docs, usage, **more)
    data = assert_error(resp, reason, rule=rule)
    if rule not in (None, _ANY):
        check_audit(recs, ident, docs, "deny", rule, reason, None, usage)
    else:
        check_audit(recs, ident, docs, "allow", None, "allowed", reason, usage)
    return data


def openssl_verify(files, der, content, ca_path, intermediates=()):
    """`openssl cms -verify` against ca_path (with intermediates added to the CA file:
    `cms -verify` builds no chain through -certfile)."""
    sig = files.put(der, ".p7s")
    doc = files.put(content, ".txt")
    if intermediates:
        ca_path = files.put(b"".join(Path(p).read_bytes() for p in (ca_path, *intermediates)),
            ".pem")
    argv = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(sig),
        "-content", str(doc), "-CAfile", str(ca_path), "-purpose", "any", "-out", "/dev/null"]
    return subprocess.run(argv, capture_output=True, text=True)


def signed(agent, ident, docs, files, ca_path, usage="signature", intermediates=(), **more):
    """A request the policy allows: signed, each CMS verified by `openssl cms -verify`
    against `ca_path` (and not over altered content), one audit record 'allow' with outcome
    'signed'. Returns the result."""
    resp, recs = request(agent, ident, docs, usage, **more)
    res = assert_result(resp)
    assert [s["name"] for s in res["signatures"]] == [n for n, _ in docs]
    for (name, content), s in zip(docs, res["signatures"]):
        der = base64.b64decode(s["cms"], validate=True)
        r = openssl_verify(files, der, content, ca_path, intermediates)
        assert r.returncode == 0 and "Verification successful" in r.stderr, \
            f"{name}: openssl cms -verify failed: {r.stdout}{r.stderr}"
        r = openssl_verify(files, der, content + b"x", ca_path, intermediates)
        assert r.returncode != 0, f"{name}: openssl accepted the signature over altered content"
    check_audit(recs, ident, docs, "allow", None, "allowed", "signed", usage,
        owner=agent.policy.account)
    return res


def enroll(tok, ca, **kw):
    """An EC identity (fast to make on SoftHSM) with a BSrE-like subject."""
    kw.setdefault("kind", "ec")
    if "subject" not in kw:
        kw["subject"] = pki.make_name(kw.pop("common_name", "Budi Santoso"), **SUBJECT)
    return tok.enroll(ca, **kw)


def certificate(agent, ident):
    """The certificates.list entry of ident."""
    certs = agent.result("certificates.list")["certificates"]
    found = [c for c in certs if c["id"] == ident.cert_id]
    assert len(found) == 1, f"{ident} listed {len(found)} times: {certs}"
    return found[0]


# --- R7: validity ------------------------------------------------------------------------------

def test_R7_expired_refused(ca, tok, start, files):
    """R7 (validity is 2 years; expired certificates are refused): a certificate past its
    notAfter is refused with `expired` (rule R7), audited, without a PIN dialog; a valid
    one on the same token signs."""
    old = enroll(tok, ca, not_before=now() - 800 * DAY, not_after=now() - 70 * DAY)
    good = enroll(tok, ca)
    agent = start()
    refused(agent, old, make_docs(1), "expired", "R7", field="certificate")
    signed(agent, good, make_docs(1), files, ca.cert_path)


def test_R7_not_yet_valid_refused(ca, tok, start):
    """R7: a certificate before its notBefore is refused with `not-yet-valid` (rule R7)."""
    early = enroll(tok, ca, not_before=now() + 2 * DAY, days=730)
    agent = start()
    refused(agent, early, make_docs(1), "not-yet-valid", "R7", field="certificate")


def test_R7_three_year_validity_non_compliant(ca, tok, start, files):
    """R7 (validity is 2 years): a certificate valid for 3 years is `non-compliant` (rule R7;
    max_validity_days 731 by default); 731 days is still compliant; `[validity]
    allow_long_validity = yes` lets the 3-year one sign."""
    long = enroll(tok, ca, days=1095)
    edge = enroll(tok, ca, days=731)
    agent = start()
    data = refused(agent, long, make_docs(1), "non-compliant", "R7", field="certificate")
    assert "1095" in agent.call("sign", sign_params(long, make_docs(1)))["error"]["message"], \
        data
    signed(agent, edge, make_docs(1), files, ca.cert_path)
    agent.policy.add_policy("[validity]\nallow_long_validity = yes\n")
    signed(agent, long, make_docs(1), files, ca.cert_path)


# --- trust -------------------------------------------------------------------------------------

def test_trust_untrusted_issuer_refused(ca, tok, start, tmp_path):
    """Trust (doc/policy.md; no rule of its own, so data.rule is null): a certificate from a
    CA that is not among the policy's anchors is refused with `untrusted`, even registered
    to its owner and with a current CRL of that CA at hand."""
    rogue = pki.CA(tmp_path / "rogue", kind="ec", name="Bukan BSrE CA")
    ident = enroll(tok, rogue)
    agent = start(crl=[ca.crl(), rogue.crl()])
    data = refused(agent, ident, make_docs(1), "untrusted", None, field="certificate")
    assert data["rule"] is None


def test_trust_chain_through_intermediate(tok, start, files, tmp_path):
    """Trust (doc/policy.md: in anchors/ self-signed certificates are anchors, others
    intermediates): a certificate of an intermediate CA placed in anchors/ beside its root
    chains and signs (R8: with the intermediate's current CRL); without that CRL it is
    revocation-unknown (R8); without the intermediate it is untrusted."""
    root = pki.CA(tmp_path / "root", kind="ec", name="Root CA Uji", path_length=1)
    sub = pki.CA(tmp_path / "sub", kind="ec", name="Sub CA Uji", parent=root)
    ident = enroll(tok, sub)
    agent = start(anchors=[root, sub], crl=[root.crl(), sub.crl()])
    signed(agent, ident, make_docs(2), files, root.cert_path, intermediates=[sub.cert_path])
    agent.policy.remove_crls()
    agent.policy.set_crl(root.crl(), "root.crl")
    refused(agent, ident, make_docs(1), "revocation-unknown", "R8")
    for f in (agent.policy.path / "anchors").iterdir():
        if "Sub CA" in f.read_text() or f.read_bytes() == sub.cert_path.read_bytes():
            f.unlink()
    refused(agent, ident, make_docs(1), "untrusted", None)


# --- R8 / R9: revocation -----------------------------------------------------------------------

def test_R8_revoked_by_crl_refused(ca, tok, start, files):
    """R8 (a revoked certificate can never be used again): a certificate listed on its
    issuer's current CRL (reason keyCompromise) is refused with `revoked` (rule R8), while
    another certificate of the same CA signs."""
    bad = enroll(tok, ca)
    good = enroll(tok, ca)
    agent = start(crl=False)
    agent.policy.set_crl(ca.crl(revoked=[(bad, now() - DAY, "key_compromise")]))
    refused(agent, bad, make_docs(1), "revoked", "R8", field="certificate")
    signed(agent, good, make_docs(1), files, ca.cert_path)


def test_R8_der_crl(ca, tok, start, files):
    """R8 with a CRL in DER (doc/policy.md: crl/ holds CRLs, PEM or DER, as CAs publish
    them): a current DER CRL counts for "not revoked" (signs), and one that lists the
    certificate refuses it (`revoked`, R8)."""
    ident = enroll(tok, ca)
    agent = start(crl=False)
    agent.policy.set_crl(ca.crl(), der=True)
    signed(agent, ident, make_docs(1), files, ca.cert_path)
    agent.policy.set_crl(ca.crl(revoked=[ident]), der=True)
    refused(agent, ident, make_docs(1), "revoked", "R8", field="certificate")


def test_R8_stale_crl_revocation_unknown(ca, tok, start, files):
    """R8: when the issuer's only CRL is past its nextUpdate, revocation cannot be checked:
    refused with `revocation-unknown` (rule R8) under the default `revocation = require`;
    with `best-effort` it signs; a stale CRL that lists the certificate still refuses it
    (`revoked`, R8), best effort or not."""
    ident = enroll(tok, ca)
    listed = enroll(tok, ca)
    stale = ca.crl(revoked=[listed], this_update=now() - 10 * DAY, next_update=now() - DAY)
    agent = start(crl=stale)
    refused(agent, ident, make_docs(1), "revocation-unknown", "R8", field="certificate")
    refused(agent, listed, make_docs(1), "revoked", "R8")
    agent.policy.add_policy("[trust]\nrevocation = best-effort\n")
    signed(agent, ident, make_docs(1), files, ca.cert_path)
    refused(agent, listed, make_docs(1), "revoked", "R8")


def test_R8_missing_crl_require_and_best_effort(ca, tok, start, files):
    """R8: with no CRL from the issuer at all, `revocation = require` (the default) refuses
    with `revocation-unknown` (rule R8), and `revocation = best-effort` signs."""
    ident = enroll(tok, ca)
    agent = start(crl=False)
    refused(agent, ident, make_docs(1), "revocation-unknown", "R8", field="certificate")
    agent.policy.add_policy("[trust]\nrevocation = best-effort\n")
    signed(agent, ident, make_docs(1), files, ca.cert_path)


def test_R8_crl_not_signed_by_the_issuer_ignored(ca, tok, start, tmp_path):
    """R8: a CRL that names the issuer but is not signed by its key (here a rogue CA with
    the same name) is worth nothing either way: it neither revokes the certificate it lists
    nor stands in for the issuer's missing CRL (`revocation-unknown`, R8)."""
    ident = enroll(tok, ca)
    forger = pki.CA(tmp_path / "forger", kind="ec", name="Paraf Test CA",
        organization="Paraf Test PKI")
    assert forger.name == ca.name
    agent = start(crl=forger.crl(revoked=[ident]))
    refused(agent, ident, make_docs(1), "revocation-unknown", "R8", field="certificate")


def test_R8_revoked_locally(ca, tok, start, files):
    """R8: a certificate in the local revocation list (revoked.list: '<id> <time> <reason>
    [note]', here a transfer) is refused with `revoked` (rule R8) although its CRL is clean
    and current; others sign."""
    ident = enroll(tok, ca)
    good = enroll(tok, ca)
    agent = start()
    agent.policy.revoke(ident, "transferred", "2026-11-01T09:00:00Z", "SK mutasi 800/77/2026")
    data = refused(agent, ident, make_docs(1), "revoked", "R8", field="certificate")
    assert "transferred" in agent.call("sign", sign_params(ident, make_docs(1)))["error"][
        "message"], data
    signed(agent, good, make_docs(1), files, ca.cert_path)


@pytest.mark.parametrize("reason", ["key-lost", "key-damaged", "key-compromise", "incident"])
def test_R9_key_incident_revoked_locally(reason, ca, tok, start):
    """R9 (lost, damaged or inaccessible keys are a security incident: revoke at once): a
    revoked.list entry with an incident reason is refused with `revoked` under rule R9."""
    ident = enroll(tok, ca)
    agent = start()
    agent.policy.revoke(ident, reason, note="laporan insiden 2026-11")
    refused(agent, ident, make_docs(1), "revoked", "R9", field="certificate")


def test_R8_revocation_appended_while_running(ca, tok, start, files):
    """R8: a revocation that security staff append to revoked.list while parafd runs takes
    effect on the very next request, without a restart (the same parafd process)."""
    ident = enroll(tok, ca)
    agent = start()
    pid = agent.result("agent.status")["pid"]
    signed(agent, ident, make_docs(1), files, ca.cert_path)
    agent.policy.revoke(ident, "key-lost")
    refused(agent, ident, make_docs(1), "revoked", "R9")
    refused(agent, ident, make_docs(1), "revoked", "R9", client=agent.client())
    assert agent.result("agent.status")["pid"] == pid == agent.pid and agent.alive()


def test_R8_revocation_is_permanent(ca, tok, start, tmp_path):
    """R8 (revocation is permanent): once parafd has seen a certificate on a CRL, a later
    current CRL without it does not make it usable again, nor does removing the CRLs, nor a
    restart of parafd (remembered in $XDG_STATE_HOME/paraf/revoked-seen)."""
    ident = enroll(tok, ca)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    agent = start(crl=ca.crl(revoked=[ident]), env={"XDG_STATE_HOME": str(state)})
    refused(agent, ident, make_docs(1), "revoked", "R8")
    agent.policy.set_crl(ca.crl(), name="ca0.crl")  # a newer, current CRL without it
    refused(agent, ident, make_docs(1), "revoked", "R8")
    agent.policy.remove_crls()
    agent.policy.add_policy("[trust]\nrevocation = best-effort\n")
    refused(agent, ident, make_docs(1), "revoked", "R8")
    policy = agent.policy
    agent.stop()
    again = start(policy=policy, env={"XDG_STATE_HOME": str(state)})
    policy.set_crl(ca.crl(), name="ca0.crl")
    refused(again, ident, make_docs(1), "revoked", "R8")
    assert certificate(again, ident)["status"] == "revoked"


# --- R6: usage ---------------------------------------------------------------------------------

def test_R6_no_key_usage_refused(ca, tok, start):
    """R6: a certificate without a keyUsage extension is refused for every usage with
    `usage-not-in-certificate` (rule R6, field usage), and lists no allowed usage."""
    ident = enroll(tok, ca, key_usage=None)
    agent = start()
    refused(agent, ident, make_docs(1), "usage-not-in-certificate", "R6", field="usage")
    refused(agent, ident, make_docs(1), "usage-not-in-certificate", "R6", field="usage",
        usage="document-protection")
    assert certificate(agent, ident)["allowed_usages"] == []


def test_R6_email_usage_needs_email_protection(ca, tok, start, files):
    """R6: usage `email` with a certificate whose extendedKeyUsage lacks emailProtection is
    refused with `usage-not-in-certificate` (rule R6); with emailProtection and an e-mail
    address it signs; an extendedKeyUsage with no document-signing purpose (clientAuth only)
    refuses `signature` the same way."""
    plain = enroll(tok, ca, extended_key_usage=["clientAuth"],
        email="budi.santoso@contoh.go.id")
    mail = enroll(tok, ca, extended_key_usage=["emailProtection"],
        email="budi.santoso@contoh.go.id")
    agent = start()
    refused(agent, plain, make_docs(1), "usage-not-in-certificate", "R6", field="usage",
        usage="email")
    refused(agent, plain, make_docs(1), "usage-not-in-certificate", "R6", field="usage")
    signed(agent, mail, make_docs(1), files, ca.cert_path, usage="email")
    assert certificate(agent, mail)["allowed_usages"] == ["signature", "email"]


def test_R6_tls_server_not_allowed_for_individual(ca, tok, start, files):
    """R6 (the type x usage matrix): `tls-server` with an individual certificate, even one
    whose extensions allow it, is refused with `usage-not-allowed` (rule R6, field usage); a
    system certificate with serverAuth signs for tls-server (its PIN in the request, which
    R2 allows for system certificates)."""
    ext = dict(key_usage=("digitalSignature", "keyEncipherment"),
        extended_key_usage=["serverAuth", "clientAuth"])
    person = enroll(tok, ca, **ext)
    server = enroll(tok, ca, cert_type="system", common_name="sign.contoh.go.id", **ext)
    agent = start()
    refused(agent, person, make_docs(1), "usage-not-allowed", "R6", field="usage",
        usage="tls-server")
    signed(agent, server, make_docs(1), files, ca.cert_path, usage="tls-server", pin=PIN)
    assert agent.pinentry.dialogs() == []
    assert certificate(agent, person)["allowed_usages"] == ["tls-client", "document-protection"]
    assert certificate(agent, server)["allowed_usages"] == ["tls-client", "tls-server"]


# --- R3: the key -------------------------------------------------------------------------------

def test_R3_extractable_key_refused(ca, tok, start):
    """R3 (the private key stays secret): a key that is extractable and not sensitive is
    refused with `key-extractable` (rule R3). The policy allowed the request and the token
    tells only after login; the refusal enforces R3, so the audit record is a deny naming R3."""
    ident = enroll(tok, ca, extractable=True)
    agent = start()
    failed_after_allow(agent, ident, make_docs(1), "key-extractable", rule="R3")


# --- R1: no delegation -------------------------------------------------------------------------

_PEER_CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(sys.argv[1])
try:
    s.sendall(sys.argv[2].encode() + b"\n")
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
    pass
print(json.dumps(buf.decode(errors="replace").split("\n")))
"""


def _as_nobody_sign(agent, ident):
    """Runs a sign request for ident as `nobody` (setpriv); returns the lines it got back."""
    req = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "sign",
        "params": sign_params(ident, make_docs(1))})
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
        "/usr/bin/python3", "-c", _PEER_CLIENT, agent.socket, req], capture_output=True,
        text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    return [x for x in json.loads(r.stdout) if x]


@pytest.fixture
def open_socket_dir():
    """A socket directory another account can reach (pytest's base directory is 0700):
    directly in /tmp, removed at the end."""
    d = Path(tempfile.mkdtemp(prefix="paraf-peer-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_R1_request_from_another_uid_refused(ca, tok, start, open_socket_dir):
    """R1 (no delegation; peer credentials): a sign request from another account (`nobody`,
    let through the file permissions on purpose) is refused at the connection with one
    `peer-refused` error (rule R1) and the connection closed; no dialog opens, nothing is
    signed, and the owner is still served."""
    if os.geteuid() != 0:
        pytest.skip("running a client as another user (setpriv --reuid=nobody) needs root")
    ident = enroll(tok, ca)
    agent = start(socket_dir=open_socket_dir)
    os.chmod(open_socket_dir, 0o711)
    os.chmod(agent.socket, 0o666)
    since = agent.audit_count()
    lines = _as_nobody_sign(agent, ident)
    assert lines, "closed without a peer-refused error"
    assert_error(json.loads(lines[0]), "peer-refused", rule="R1")
    assert lines[1:] == [], f"more than one line, or not closed after the error: {lines[1:]}"
    assert agent.pinentry.dialogs() == []
    assert not [r for r in agent.audit(since) if r["verdict"] == "allow"]
    assert_result(agent.call("agent.status"))


def test_R1_peer_refusal_audited(ca, tok, start, open_socket_dir):
    """R1 ('every refusal is audited'): the peer-refused connection of another account
    leaves an audit record naming that uid."""
    if os.geteuid() != 0:
        pytest.skip("running a client as another user needs root")
    ident = enroll(tok, ca)
    agent = start(socket_dir=open_socket_dir)
    os.chmod(open_socket_dir, 0o711)
    os.chmod(agent.socket, 0o666)
    since = agent.audit_count()
    _as_nobody_sign(agent, ident)
    recs = agent.audit(since)
    nobody = pwd.getpwnam("nobody").pw_uid
    assert [r for r in recs if r.get("uid") == nobody and r.get("verdict") == "deny"], recs


def test_R1_registered_to_another_account_not_owner(ca, tok, start):
    """R1: a certificate registered to another existing account is refused with `not-owner`
    (rule R1), naming that account, before any PIN dialog."""
    ident = enroll(tok, ca)
    agent = start()
    agent.policy.register(ident, account=other_account())
    refused(agent, ident, make_docs(1), "not-owner", "R1", field="certificate")
    msg = agent.call("sign", sign_params(ident, make_docs(1)))["error"]["message"]
    assert other_account() in msg, msg


def test_R1_owner_account_unknown_unregistered(ca, tok, start):
    """R1: a certificate registered to an account that does not exist here is refused with
    `unregistered` under rule R1."""
    ident = enroll(tok, ca)
    agent = start()
    agent.policy.register(ident, account="paraf-tidak-ada")
    refused(agent, ident, make_docs(1), "unregistered", "R1", field="certificate")


def test_R1_root_owner_needs_root_may_own(ca, tok, start, files):
    """R1: root as a certificate's registered owner is refused (`not-owner`, rule R1) unless
    the policy says `[owner] root_may_own = yes` (the test policy says so only when the tests
    run as root, which this test needs)."""
    if os.geteuid() != 0:
        pytest.skip("a request from root needs root")
    ident = enroll(tok, ca)
    agent = start()
    assert re.search(r"^root_may_own = yes$", agent.policy.conf_path.read_text(), re.M)
    signed(agent, ident, make_docs(1), files, ca.cert_path)
    agent.policy.add_policy("[owner]\nroot_may_own = no\n")
    refused(agent, ident, make_docs(1), "not-owner", "R1", field="certificate")


def test_R1_fixture_policy_root_may_own_only_as_root(policy_factory, account):
    """The fixtures' policy: owners are the tests' own account, and `root_may_own = yes`
    appears only when that account is root (R1 stays at its default for ordinary users)."""
    pol = policy_factory()
    text = pol.conf_path.read_text()
    assert pol.account == account == pwd.getpwuid(os.getuid()).pw_name
    assert ("root_may_own = yes" in text) == (os.getuid() == 0), text
    assert "without_logind = allow" in text
    assert os.stat(pol.path).st_mode & 0o777 == 0o700
    for f in pol.path.rglob("*"):
        want = 0o700 if f.is_dir() else 0o600
        assert os.stat(f).st_mode & 0o777 == want and os.stat(f).st_uid == os.getuid(), f


def test_R1_batch_over_limit_refused(ca, tok, start, files):
    """R1 (one PIN, an explicit and bounded list): with `[pin] max_batch = 3`, four documents
    are refused with `batch-too-large` (rule R1, field documents), three are signed under
    one dialog."""
    ident = enroll(tok, ca)
    agent = start(policy_extra="[pin]\nmax_batch = 3\n")
    data = refused(agent, ident, make_docs(4), "batch-too-large", "R1", field="documents")
    signed(agent, ident, make_docs(3), files, ca.cert_path)
    assert len(agent.pinentry.dialogs()) == 1, data


def test_R1_without_logind_refused_by_default(ca, tok, start, files):
    """R1 (requests from outside a local login session are refused by default): where
    logind does not run, the default `[session] without_logind = deny` refuses an individual
    certificate with `no-session` (rule R1); system certificates, which belong to services,
    are exempt."""
    ident = enroll(tok, ca)
    system = enroll(tok, ca, cert_type="system", common_name="Sistem Arsip Contoh")
    agent = start()
    if agent.result("agent.status")["logind"]:
        pytest.skip("logind runs here: the no-logind default cannot be observed")
    agent.policy.add_policy("[session]\nwithout_logind = deny\n")
    refused(agent, ident, make_docs(1), "no-session", "R1", field="certificate")
    signed(agent, system, make_docs(1), files, ca.cert_path, pin=PIN)


def test_R1_dialog_shows_who_what_and_which_documents(ca, tok, start, files):
    """R1 (the owner sees exactly what they sign): the PIN dialog shows the requesting
    executable's path and pid, the registered owner's name, the certificate's type, the
    usage, and each document's name with the first and last 8 hex digits of its digest; it
    offers no PIN caching; one dialog for the whole request."""
    ident = enroll(tok, ca, cert_type="position", common_name="Siti Rahayu")
    agent = start()
    agent.policy.register(ident, name="Siti Rahayu, Kepala Dinas")
    docs = [("Surat Keputusan 800-12.pdf", b"isi SK"), ("Lampiran I.pdf", b"lampiran"),
        ("nota dinas.txt", b"nota")]
    signed(agent, ident, docs, files, ca.cert_path)
    (d,) = agent.pinentry.dialogs()
    text = d["getpin_description"] or ""
    assert ME in text and f"pid {os.getpid()}" in text, text
    assert "Siti Rahayu, Kepala Dinas" in text and "jabatan" in text, text
    assert "signature" in text, text
    for name, content in docs:
        h = pki.digest(content).hex()
        line = next((ln for ln in text.splitlines() if name in ln), None)
        assert line is not None, f"document {name!r} not shown: {text}"
        assert h[:8] in line and h[-8:] in line, f"digest of {name} not shown: {line!r}"
    assert d["getpin"] is True and d["confirm"] is False and d["getpin_error"] is None, d
    assert d["title"] and d["prompt"], d
    assert not any(o.startswith("allow-external") for o in d["options"]), d["options"]
    assert d["timeout"] == 120, d


def test_R1_dialog_of_a_batch_shows_count_and_first_names(ca, tok, start, files):
    """R1: for a batch of 20 documents the dialog shows the count and the first names (each
    with its digest ends), within one dialog for one PIN."""
    ident = enroll(tok, ca)
    agent = start()
    docs = make_docs(20, "berkas")
    signed(agent, ident, docs, files, ca.cert_path)
    (d,) = agent.pinentry.dialogs()
    text = d["getpin_description"] or ""
    assert re.search(r"\b20\b", text), f"the count is not shown: {text}"
    for name, content in docs[:5]:
        h = pki.digest(content).hex()
        assert any(name in ln and h[:8] in ln and h[-8:] in ln for ln in text.splitlines()), \
            f"{name} not shown with its digest: {text}"
    assert len(text.splitlines()) < 20, f"a batch dialog should summarise, not list all: {text}"


def test_R1_pin_dialog_cancelled(ca, tok, start):
    """R1/R2: the official cancels the dialog: `pin-cancelled`, nothing signed, the token not
    touched; the policy's allow is audited with outcome pin-cancelled. A dialog that crashes
    or talks nonsense gives `pin-dialog-failed`."""
    ident = enroll(tok, ca)
    agent = start(pinentry={"action": "cancel"})
    failed_after_allow(agent, ident, make_docs(2), "pin-cancelled", rule=None)
    for action in ("crash", "garbage"):
        agent.pinentry.configure(action=action)
        failed_after_allow(agent, ident, make_docs(1), "pin-dialog-failed", rule=None)
    assert len(agent.pinentry.dialogs()) == 3


def _other_tty():
    """A terminal device that is not ours: as root a pty handed to nobody, else /dev/null
    (a character device of root's). Returns (path, fds to close)."""
    if os.getuid() == 0:
        master, slave = pty.openpty()
        path = os.ttyname(slave)
        os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)
        return path, [master, slave]
    return "/dev/null", []


def test_R1_dialog_location_must_be_the_callers(ca, tok, start, tmp_path):
    """R1: the PIN dialog appears only on the caller's own terminal or display. A `tty` that
    belongs to another account, is not a character device, or lies outside /dev is refused
    with `dialog-location-refused` (rule R1, field tty), as are an `xauthority` file of
    another account, a `wayland_display` that is not the caller's socket and an X `display`
    that is not the caller's session's (no logind here to vouch for it); the caller's own pty
    is accepted and handed to the dialog (OPTION ttyname, ttytype)."""
    ident = enroll(tok, ca)
    agent = start()
    tty, fds = _other_tty()
    plain = tmp_path / "not-a-tty"
    plain.write_text("")
    try:
        for field, value in (("tty", tty), ("tty", str(plain)), ("tty", "/dev/../" + str(plain)),
                ("xauthority", "/etc/passwd" if os.getuid() else _nobodys_file(tmp_path)),
                ("wayland_display", str(plain)), ("display", ":97")):
            data = failed_after_allow(agent, ident, make_docs(1), "dialog-location-refused",
                rule="R1", **{field: value})
            assert data["field"] == field, data
        assert agent.pinentry.dialogs() == []
    finally:
        for fd in fds:
            os.close(fd)
    master, slave = pty.openpty()
    try:
        mine = os.ttyname(slave)
        assert os.stat(mine).st_uid == os.getuid()
        resp, recs = request(agent, ident, make_docs(1), tty=mine, tty_type="xterm-256color")
        assert_result(resp)
        (d,) = agent.pinentry.dialogs()
        assert d["options"].get("ttyname") == mine and \
            d["options"].get("ttytype") == "xterm-256color", d["options"]
    finally:
        os.close(master)
        os.close(slave)


def _nobodys_file(tmp_path):
    p = tmp_path / "xauth-nobody"
    p.write_text("")
    os.chown(p, pwd.getpwnam("nobody").pw_uid, -1)
    return str(p)


# --- R5: certificate types ---------------------------------------------------------------------

def test_R5_unregistered_refused(ca, tok, start):
    """R5 (every certificate in use has a type): a certificate neither registered nor
    carrying a policy OID the policy knows is refused with `unregistered` (rule R5), listed
    as unregistered with type and owner null."""
    ident = enroll(tok, ca)
    agent = start(register=False)
    refused(agent, ident, make_docs(1), "unregistered", "R5", field="certificate")
    c = certificate(agent, ident)
    assert (c["status"], c["type"], c["owner"]) == ("unregistered", None, None), c


def test_R5_type_from_policy_oid(ca, tok, start, files):
    """R5: a certificatePolicies OID listed in `[types]` gives the type, before the
    registry's: a certificate carrying the system OID is of type system although registered
    as individual (so its PIN may come in the request, R2); a typed certificate without a
    registered owner is still refused, `unregistered` under rule R1."""
    oids = pki.CERT_TYPE_OIDS
    extra = (f"[types]\nindividual = {oids['individual']}\njabatan = {oids['position']}\n"
        f"system = {oids['system']}\n")
    sys_cert = enroll(tok, ca, cert_type="system", common_name="Sistem Persuratan")
    person = enroll(tok, ca)
    agent = start(policy_extra=extra, register=False)
    agent.policy.register(sys_cert, type="individual")
    assert certificate(agent, sys_cert)["type"] == "system"
    signed(agent, sys_cert, make_docs(1), files, ca.cert_path, pin=PIN)
    assert certificate(agent, person)["type"] == "individual"
    refused(agent, person, make_docs(1), "unregistered", "R1", field="certificate")


# --- R2: the PIN -------------------------------------------------------------------------------

def test_R2_pin_parameter_refused_for_individual_and_jabatan(ca, tok, start, files):
    """R2 (passphrase secrecy: the PIN goes from the trusted dialog to the token, not
    through the application): a `pin` parameter for an individual or a jabatan certificate
    is refused with `pin-parameter-refused` (rule R2, field pin), before any dialog; a system
    certificate takes one (default `[pin] parameter_types = system`); with `parameter_types
    = none` no type does. The PIN appears nowhere in parafd's output (checked by `start`)."""
    person = enroll(tok, ca)
    officer = enroll(tok, ca, cert_type="position", common_name="Kepala Dinas")
    system = enroll(tok, ca, cert_type="system", common_name="Sistem Arsip Contoh")
    agent = start()
    refused(agent, person, make_docs(1), "pin-parameter-refused", "R2", field="pin", pin=PIN)
    refused(agent, officer, make_docs(1), "pin-parameter-refused", "R2", field="pin", pin=PIN)
    signed(agent, system, make_docs(1), files, ca.cert_path, pin=PIN)
    assert agent.pinentry.dialogs() == []
    agent.policy.add_policy("[pin]\nparameter_types = none\n")
    assert agent.result("agent.status")["pin_parameter_types"] == []
    refused(agent, system, make_docs(1), "pin-parameter-refused", "R2", field="pin", pin=PIN)


def test_R2_wrong_pin_then_warned_dialog(ca, tok, start, files):
    """R2: the dialog answers a wrong PIN: `pin-incorrect` with data.pin_status (the token's
    tries), audited as the allowed request's outcome; the next request's dialog carries an
    error line (SETERROR) about the PIN tries, and with the right PIN it signs."""
    ident = enroll(tok, ca)
    agent = start(pin=WRONG_PIN)
    data = failed_after_allow(agent, ident, make_docs(1), "pin-incorrect", rule=None)
    ps = data.get("pin_status")
    assert isinstance(ps, dict) and set(ps) >= {"count_low", "final_try", "locked"}, data
    assert ps["locked"] is False, ps
    agent.pinentry.configure(pin=PIN)
    signed(agent, ident, make_docs(1), files, ca.cert_path)
    first, second = agent.pinentry.dialogs()
    assert first["getpin_error"] is None, first
    assert second["getpin_error"], \
        f"the dialog after a wrong PIN shows no error line: {second['getpin_error']!r} " \
        f"(token pin_status after the wrong PIN: {ps})"


def test_R2_repeated_wrong_pins_slow_down(ca, tok, start, files):
    """R2 (no program may drain the token's tries): after two wrong PINs for a certificate,
    the next dialog waits (2 s for the third); a right PIN resets it."""
    ident = enroll(tok, ca)
    agent = start(pin=WRONG_PIN)
    for _ in range(2):
        failed_after_allow(agent, ident, make_docs(1), "pin-incorrect", rule=None)
    agent.pinentry.configure(pin=PIN)
    t0 = time.monotonic()
    signed(agent, ident, make_docs(1), files, ca.cert_path)
    waited = time.monotonic() - t0
    assert waited >= 1.5, f"the dialog after two wrong PINs came after {waited:.2f} s"
    t0 = time.monotonic()
    signed(agent, ident, make_docs(1), files, ca.cert_path)
    assert time.monotonic() - t0 < 1.5, "still slowed down after a right PIN"


def test_R2_pinentry_gets_a_clean_environment(ca, tok, start):
    """R2 (the PIN never in the environment; the dialog is trusted): parafd starts the PIN
    dialog with no arguments and a scrubbed environment (none of parafd's own variables such
    as SOFTHSM2_CONF or HOME), and offers no caching."""
    ident = enroll(tok, ca)
    agent = start()
    assert_result(request(agent, ident, make_docs(1))[0])
    (d,) = agent.pinentry.dialogs()
    assert d["extra_args"] == [], d["extra_args"]
    allowed = {"PATH", "LANG", "LC_ALL", "DISPLAY", "XAUTHORITY", "WAYLAND_DISPLAY",
        "XDG_RUNTIME_DIR", "PWD", "SHLVL", "_"}  # the last three: added by /bin/sh
    assert set(d["env"]) <= allowed, f"unexpected environment: {sorted(set(d['env']) - allowed)}"


def test_R2_system_pin_from_credentials(ca, tok, start, files, tmp_path):
    """R2: a system certificate's PIN may come from systemd credentials
    ($CREDENTIALS_DIRECTORY/paraf-pin-<certificate id>): it signs with no `pin` parameter and
    no dialog; an individual certificate's credential file is ignored and its PIN is asked
    by the dialog (here cancelled)."""
    system = enroll(tok, ca, cert_type="system", common_name="Sistem Arsip Contoh")
    person = enroll(tok, ca)
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    for ident in (system, person):
        p = creds / f"paraf-pin-{ident.cert_id}"
        p.write_text(PIN + "\n")
        os.chmod(p, 0o400)
    agent = start(env={"CREDENTIALS_DIRECTORY": str(creds)}, pinentry={"action": "cancel"})
    signed(agent, system, make_docs(2), files, ca.cert_path)
    assert agent.pinentry.dialogs() == []
    failed_after_allow(agent, person, make_docs(1), "pin-cancelled", rule=None)
    assert len(agent.pinentry.dialogs()) == 1


def test_R2_system_pin_file_must_be_roots(ca, tok, start, files):
    """R2/R13: a system certificate's PIN in <policy>/pins/<id>.pin is used only when the
    file is root's own and readable by nobody else (then: signed without a dialog); mode
    0640 is refused (`policy-invalid`, R13) rather than ignored."""
    if os.geteuid() != 0:
        pytest.skip("a PIN file of root's needs root")
    system = enroll(tok, ca, cert_type="system", common_name="Sistem Arsip Contoh")
    agent = start(pinentry={"action": "cancel"})
    (agent.policy.path / "pins").mkdir(mode=0o700)
    pin_file = agent.policy.write(f"pins/{system.cert_id}.pin", PIN + "\n")
    signed(agent, system, make_docs(1), files, ca.cert_path)
    assert agent.pinentry.dialogs() == []
    os.chmod(pin_file, 0o640)
    resp, recs = request(agent, system, make_docs(1))
    assert_error(resp, "policy-invalid", rule="R13")
    assert agent.pinentry.dialogs() == []


def test_R2_pinentry_from_policy(ca, tok, start, files, tmp_path):
    """R2: without --pinentry, the policy's `[pin] pinentry` program is the dialog, and
    agent.status names it."""
    ident = enroll(tok, ca)
    fake = FakePinentry(tmp_path / "policy-pinentry", pin=PIN)
    agent = start(pinentry=False, policy_extra=f"[pin]\npinentry = {fake.wrapper}\n")
    assert agent.result("agent.status")["pinentry"] == str(fake.wrapper)
    resp, _ = request(agent, ident, make_docs(1))
    assert_result(resp)
    assert len(fake.dialogs()) == 1


# --- R13: who may change the policy ------------------------------------------------------------

def _r13_target(pol, which):
    if which == "owners.d file":
        return next((pol.path / "owners.d").iterdir())
    if which == "revoked.list":
        pol.revoke("0" * 64, "left-post")
        return pol.revoked_path
    if which == "crl file":
        return next((pol.path / "crl").iterdir())
    if which == "policy.d drop-in":
        return pol.dropin("50-local", "[pin]\nmax_batch = 100\n")
    return pol.path / which


@pytest.mark.parametrize("which,mode", [("policy.conf", 0o620), ("owners.d file", 0o660),
    ("revoked.list", 0o602), ("crl file", 0o620), ("policy.d drop-in", 0o660),
    ("anchors", 0o770), ("owners.d", 0o730), (".", 0o770)],
    ids=lambda x: x if isinstance(x, str) else f"{x:04o}")
def test_R13_writable_policy_refused_at_start(which, mode, ca, tok, policy_factory, start):
    """R13 (only authorised persons may change records): parafd refuses to start when a
    policy file or directory is writable by group or others, naming it and the rule."""
    enroll(tok, ca)
    pol = policy_factory()
    target = _r13_target(pol, which)
    os.chmod(target, mode)
    a = start(policy=pol, wait=False, check_exit=False)
    try:
        rc = a.proc.wait(15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"parafd started with {target} mode {mode:04o}")
    assert rc != 0
    err = a.stderr()
    assert str(target) in err, f"the refusal does not name {target}: {err}"
    assert "R13" in err, err
    assert not os.path.exists(a.socket)


def test_R13_policy_of_another_owner_refused_at_start(ca, tok, policy_factory, start):
    """R13: a policy file owned by another account (not root, not parafd's own) is refused
    at start, naming the file."""
    if os.geteuid() != 0:
        pytest.skip("giving a file to another account needs root")
    enroll(tok, ca)
    pol = policy_factory()
    target = next((pol.path / "owners.d").iterdir())
    os.chown(target, pwd.getpwnam("nobody").pw_uid, -1)
    a = start(policy=pol, wait=False, check_exit=False)
    assert a.proc.wait(15) != 0
    assert str(target) in a.stderr() and "R13" in a.stderr(), a.stderr()


def test_R13_policy_changed_unsafely_while_running(ca, tok, start, files):
    """R13: while a policy file is writable by others, no request is signed
    (`policy-invalid`, rule R13, the message naming the file) and agent.status reports the
    policy invalid with the same error; a malformed line is refused the same way, naming
    the file and line; once fixed, signing resumes."""
    ident = enroll(tok, ca)
    agent = start()
    owner_file = agent.policy.owner_path(ident)
    os.chmod(owner_file, 0o666)
    docs = make_docs(1)
    resp, recs = request(agent, ident, docs)
    assert_error(resp, "policy-invalid", rule="R13")
    assert str(owner_file) in resp["error"]["message"], resp
    check_audit(recs, ident, docs, "deny", "R13", "policy-invalid", None)
    st = agent.result("agent.status")["policy"]
    assert st["valid"] is False and str(owner_file) in (st["error"] or ""), st
    os.chmod(owner_file, 0o600)
    agent.policy.add_policy("[pin]\nmax_batchh = 3\n")
    resp, _ = request(agent, ident, make_docs(1))
    assert_error(resp, "policy-invalid", rule="R13")
    assert re.search(re.escape(str(agent.policy.conf_path)) + r":\d+", resp["error"]["message"]), \
        resp
    agent.policy.write_policy(agent.policy.default_text())
    signed(agent, ident, make_docs(1), files, ca.cert_path)


# --- what certificates.list and agent.status say ----------------------------------------------

def test_R5_R8_certificates_list_policy_fields(ca, tok, start, tmp_path, account):
    """R5-R8 in certificates.list: each certificate's type, registered owner, allowed usages
    (its type's, narrowed by its extensions), status (valid, expiring, expired,
    not-yet-valid, revoked, untrusted, unregistered, non-compliant), status_reason (null
    only when valid) and days_left (negative once expired)."""
    rogue = pki.CA(tmp_path / "rogue", kind="ec", name="Bukan BSrE CA")
    t = now()
    ids = {
        "valid": enroll(tok, ca, common_name="Sah", key_usage=("digitalSignature",
            "keyEncipherment"), extended_key_usage=["emailProtection", "clientAuth"],
            email="sah@contoh.go.id"),
        "expiring": enroll(tok, ca, common_name="Hampir Habis", not_before=t - 700 * DAY,
            not_after=t + 10 * DAY + datetime.timedelta(hours=12)),
        "expired": enroll(tok, ca, common_name="Kedaluwarsa", not_before=t - 800 * DAY,
            not_after=t - 70 * DAY + datetime.timedelta(hours=12)),
        "not-yet-valid": enroll(tok, ca, common_name="Belum Berlaku", not_before=t + 2 * DAY),
        "revoked": enroll(tok, ca, common_name="Dicabut"),
        "untrusted": enroll(tok, rogue, common_name="Tidak Dipercaya"),
        "unregistered": enroll(tok, ca, common_name="Tidak Terdaftar"),
        "non-compliant": enroll(tok, ca, common_name="Tiga Tahun", days=1095),
        "jabatan": enroll(tok, ca, common_name="Kepala Dinas", cert_type="position"),
        "system": enroll(tok, ca, common_name="Sistem", cert_type="system",
            key_usage=("digitalSignature", "keyEncipherment"),
            extended_key_usage=["serverAuth", "clientAuth"]),
    }
    agent = start(register=[i for k, i in ids.items() if k != "unregistered"])
    agent.policy.revoke(ids["revoked"], "retired")
    certs = {c["id"]: c for c in agent.result("certificates.list")["certificates"]}
    for k in ("type", "owner", "allowed_usages", "status", "status_reason", "days_left"):
        assert all(k in c for c in certs.values()), f"certificates.list lacks {k!r}"
    want_status = {"jabatan": "valid", "system": "valid"}
    for key, ident in ids.items():
        c = certs[ident.cert_id]
        status = want_status.get(key, key)
        assert c["status"] == status, f"{key}: {c['status']!r} ({c['status_reason']!r})"
        assert (c["status_reason"] is None) == (status == "valid"), f"{key}: {c}"
        if status != "valid":
            assert isinstance(c["status_reason"], str) and c["status_reason"], c
        exp = ident.cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
        left = (exp - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400
        assert isinstance(c["days_left"], int) and abs(c["days_left"] - left) <= 1, \
            f"{key}: days_left {c['days_left']}, expected about {left:.1f}"
        if key == "unregistered":
            assert c["type"] is None and c["owner"] is None, c
            continue
        assert c["type"] == ident.registry_type, f"{key}: {c['type']}"
        o = c["owner"]
        cn = ident.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert (o["account"], o["name"], o["nip"]) == (account, cn, "196501011990031001"), o
        assert set(o) >= {"account", "name", "nip", "position", "unit"}, o
    assert certs[ids["expired"].cert_id]["days_left"] < 0
    assert certs[ids["jabatan"].cert_id]["owner"]["position"], "a jabatan names its position"
    assert certs[ids["valid"].cert_id]["allowed_usages"] == \
        ["signature", "email", "tls-client", "document-protection"]
    assert certs[ids["expiring"].cert_id]["allowed_usages"] == ["signature"]
    assert certs[ids["jabatan"].cert_id]["allowed_usages"] == ["signature"]
    assert certs[ids["system"].cert_id]["allowed_usages"] == ["tls-client", "tls-server"]
    assert "R7" in certs[ids["expiring"].cert_id]["status_reason"]


def test_R1_R2_agent_status_policy_fields(ca, tok, start, account):
    """agent.status gives the policy's view: policy {directory, valid, error, test_mode
    (started with --policy), owners, revoked}, pin_parameter_types (R2: the types whose PIN
    may come in a request), pinentry (R2: the program the dialogs run, here --pinentry's),
    logind (R1: whether login sessions can be checked)."""
    a1 = enroll(tok, ca)
    a2 = enroll(tok, ca)
    agent = start(policy_extra="[pin]\nparameter_types = system, jabatan\n")
    agent.policy.revoke(a2, "retired")
    st = agent.result("agent.status")
    assert st["policy"] == {"directory": str(agent.policy.path), "valid": True, "error": None,
        "test_mode": True, "owners": 2, "revoked": 1}, st["policy"]
    assert st["pin_parameter_types"] == ["jabatan", "system"]
    assert isinstance(st["logind"], bool)
    if not os.path.exists("/run/systemd/seats"):
        assert st["logind"] is False
    assert "pin_parameter" not in st
    assert st["pinentry"] == str(agent.pinentry.wrapper), \
        f"agent.status names {st['pinentry']!r} while parafd runs --pinentry " \
        f"{agent.pinentry.wrapper}"
    assert certificate(agent, a1)["status"] == "valid"
