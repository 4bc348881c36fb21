"""
Provisioning (issue 5): the operator's `paraf admin register | init-token | import-cert |
revoke | incident | transfer | list` and the owner's `paraf activate` and `paraf renew`,
end to end on a blank SoftHSM token, with the real parafd signing afterwards.

Who runs what (R4: issuance and activation by the applicant personally, never through a
proxy): the operator's steps run as the account running the tests (root in CI); the owner's
steps run as the owner's own account: as root, the existing unprivileged account `nobody`
through `setpriv` (conftest.OwnerAccount; nothing is created system-wide), and as an ordinary
user, the current account. The SoftHSM token directory is handed to the owner after each of
the operator's steps (OwnerAccount.give): the emulation of a USB token that both may open.

Secrets: the SO PIN comes from a 0600 file, the activation code from init-token's stdout (its
one print), the owner's passphrase only from the (fake) PIN dialog; none of them may appear
anywhere else.

Rules of ../shared/REGULATION.md that a test proves are in its name and its docstring.
"""

import json
import os
import pwd
import re
import stat
import subprocess
from pathlib import Path

import PyKCS11
import pytest

import pki
from conftest import SOFTHSM_MODULE, SharedPolicyDir, OwnerPinentry, FakePinentry

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

EXIT_OK, EXIT_USAGE, EXIT_NO_TOKEN, EXIT_REFUSED, EXIT_LOCAL = 0, 2, 3, 4, 5

# The applicant (R17): a valid NIK (digits 7-12 a birth date DDMMYY) and NIP (birth date
# YYYYMMDD, appointment YYYYMM, sex, serial), both for 15 March 1978.
NAME = "Budi Santoso"
NIK = "3201041503780001"
NIP = "197803152005011002"
EMAIL = "budi.santoso@contoh.go.id"
UNIT = "Dinas Komunikasi dan Informatika"
PHONE = "+62 812 3456 7890"
SO_PIN = "so-Pin-7391-8264"
PASSPHRASE = "Kopi tubruk di Kupang, pagi!"

AUDIT_PREFIX = "parafd: audit "
CODE_RE = re.compile(r"(?m)^ {4}([0-9][0-9-]{6,}[0-9])$")


# --- helpers --------------------------------------------------------------------------------------

def expect(r, code, stderr_re=None):
    """Checks a CompletedProcess's exit status (and a regex on stderr); shows both on failure."""
    assert r.returncode == code, (f"exit {r.returncode}, expected {code}\n--- argv ---\n"
        f"{r.args}\n--- stdout ---\n{r.stdout}\n--- stderr ---\n{r.stderr}")
    if stderr_re is not None:
        assert re.search(stderr_re, r.stderr), f"stderr does not match {stderr_re!r}:\n{r.stderr}"
    return r


def audit_records(text):
    """The audit records ("parafd: audit {json}" lines) in a command's stderr."""
    return [json.loads(line[len(AUDIT_PREFIX):]) for line in text.splitlines()
        if line.startswith(AUDIT_PREFIX)]


def last_audit(r):
    recs = audit_records(r.stderr)
    assert recs, f"no audit record in stderr:\n{r.stderr}"
    return recs[-1]


def tree_snapshot(path):
    """{relative path: bytes} of every file under path (what "nothing was written" compares)."""
    path = Path(path)
    out = {}
    for root, dirs, files in os.walk(path):
        for n in files:
            p = Path(root) / n
            out[str(p.relative_to(path))] = p.read_bytes()
    return out


def write_private(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        os.fchmod(fd, mode)
        f.write(text)
    return Path(path)


def openssl(*args, input=None):
    return subprocess.run(["openssl"] + [str(a) for a in args], capture_output=True, text=True,
        input=input)


def openssl_cms_verify(sig, content, ca_path):
    return openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", content,
        "-CAfile", ca_path, "-purpose", "any", "-out", "/dev/null")


class Prov:
    """One provisioning world: a blank SoftHSM, a shared policy directory (root's in CI, read
    by the owner's parafd), the test CA as anchor with a current CRL, the operator's SO PIN
    file and PIN dialog, and the owner's account with its own PIN dialog.

    Every command's CompletedProcess is kept in .runs (for the no-secret-anywhere check)."""

    def __init__(self, paraf, owner, softhsm, ca, shared_tmp, policy_extra=""):
        self.paraf = str(paraf)
        self.owner = owner
        self.softhsm = softhsm
        self.ca = ca
        self.dir = shared_tmp
        self.policy = SharedPolicyDir(shared_tmp / "policy", account=owner.name,
            extra=policy_extra)
        self.policy.add_anchor(ca)
        self.policy.set_crl(ca.crl(days=30))
        self.so_pin_file = write_private(shared_tmp / "so-pin", SO_PIN + "\n")
        self.admin_dialog = FakePinentry(shared_tmp / "admin-pinentry", pin="unused")
        self.owner_dialog = OwnerPinentry(owner, owner.dir / "pinentry", pin="unused")
        self.work = owner.mkdir("work")  # the owner's current directory: requests land here
        self.runs = []
        # The CLI's own audit records (R13) go to this world's socket, where nothing listens:
        # never to a real /run/paraf/audit.sock on the machine running the tests.
        self.config = shared_tmp / "paraf.conf"
        self.config.write_text(f"[agent]\naudit_socket = {shared_tmp / 'audit.sock'}\n")
        self.config.chmod(0o644)

    # -- the operator --

    def admin(self, *args, token=False, dialog=None):
        """`paraf admin ARGS --policy DIR` as the operator (the account running the tests);
        token=True adds --module (the commands that reach the token) and --pinentry; dialog:
        the operator-side dialog's configuration (e.g. {"pin": passphrase} for import-cert,
        where the owner types at the operator's desk). Hands the token back to the owner
        afterwards."""
        argv = [self.paraf, "admin"] + [str(a) for a in args] + ["--policy", str(self.policy.path)]
        if token:
            argv += ["--module", SOFTHSM_MODULE, "--pinentry", str(self.admin_dialog.wrapper)]
        if dialog is not None:
            self.admin_dialog.configure(**dialog)
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
        env.update(self.softhsm.env())
        env["PARAF_CONFIG"] = str(self.config)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env,
            stdin=subprocess.DEVNULL, cwd=self.dir, start_new_session=True)
        self.runs.append(r)
        self.owner.give(self.softhsm.dir)
        return r

    def register(self, account=None, type="individual", **fields):
        """`paraf admin register`: returns (CompletedProcess, application id or None)."""
        f = {"account": account or self.owner.name, "type": type, "name": NAME, "nik": NIK,
            "nip": NIP, "email": EMAIL, "phone": PHONE, "unit": UNIT}
        f.update(fields)
        args = ["register"]
        for k, v in f.items():
            if v is not None:
                args += [f"--{k}", v]
        r = self.admin(*args)
        app = r.stdout.strip() if r.returncode == 0 else None
        return r, app

    def init_token(self, app, so_pin_file=None):
        """`paraf admin init-token`: returns (CompletedProcess, the activation code as printed
        (grouped), or None)."""
        r = self.admin("init-token", "--application", app, "--so-pin-file",
            so_pin_file or self.so_pin_file, token=True)
        m = CODE_RE.search(r.stdout) if r.returncode == 0 else None
        return r, (m.group(1) if m else None)

    def import_cert(self, app, cert_path, passphrase=PASSPHRASE, *extra):
        return self.admin("import-cert", cert_path, *extra, "--application", app, token=True,
            dialog={"pin": passphrase})

    # -- the owner --

    def owner_paraf(self, *args, pins=None, env=None):
        """`paraf ARGS` as the owner (--module, --pinentry and --policy added for activate and
        renew), in the owner's work directory, no terminal. pins: the owner's dialog answers,
        in order."""
        argv = [self.paraf] + [str(a) for a in args]
        if args and args[0] in ("activate", "renew"):
            argv += ["--module", SOFTHSM_MODULE, "--pinentry", str(self.owner_dialog.wrapper),
                "--policy", str(self.policy.path)]
        if pins is not None:
            self.owner_dialog.clear()
            self.owner_dialog.configure(pins=list(pins))
        e = self.owner.env(**self.softhsm.env())
        e["PARAF_CONFIG"] = str(self.config)
        e.update(env or {})
        r = self.owner.run(argv, env=e, cwd=self.work, timeout=180)
        self.runs.append(r)
        return r

    def activate(self, app, pins, *extra):
        return self.owner_paraf("activate", "--application", app, *extra, pins=pins)

    # -- the CA --

    def issue(self, request, days=730, cert_type="individual", name="cert.pem", ca=None,
            **kw):
        """The test CA (or `ca`) certifies a PKCS#10 request: individual type,
        digitalSignature + nonRepudiation, 2 years (R7) unless told otherwise. Returns
        (certificate, its PEM path)."""
        cert = (ca or self.ca).issue_from_request(Path(request).read_bytes(), days=days,
            cert_type=cert_type, key_usage=("digitalSignature", "nonRepudiation"), **kw)
        path = self.dir / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert, path

    # -- what is where --

    def entry(self, app):
        """owners.d/<app>.conf as a dict."""
        text = (self.policy.path / "owners.d" / f"{app}.conf").read_text()
        return dict(re.findall(r"(?m)^(\w+) = (.*)$", text))

    def revoked(self):
        """revoked.list's entries: {cert id: (time, reason, note)}."""
        p = self.policy.revoked_path
        out = {}
        if p.exists():
            for line in p.read_text().splitlines():
                if line.strip() and not line.startswith("#"):
                    parts = line.split(None, 3)
                    out[parts[0]] = (parts[1], parts[2], parts[3] if len(parts) > 3 else None)
        return out

    def token(self, passphrase=PASSPHRASE):
        """A pki.Token for the token paraf initialised ("PARAF <name>"), for PyKCS11 checks."""
        labels = [t["label"] for t in self.softhsm.token_infos() if t["initialized"]]
        assert labels == [f"PARAF {NAME}"], labels
        self.owner.give(self.softhsm.dir)
        return pki.Token(self.softhsm, labels[0], passphrase, None)

    def token_objects(self, passphrase=PASSPHRASE):
        """The token's objects (pki.Token.objects, logged in), without the session's handles,
        in a stable order."""
        try:
            objs = self.token(passphrase).objects()
        finally:
            self.owner.give(self.softhsm.dir)
        for o in objs:
            o.pop("handle", None)
        return sorted(objs, key=lambda o: (o["class"], o.get("id") or b"", o.get("label") or ""))

    def secrets_leaked(self, secrets, allow_stdout_of=None, extra_texts=()):
        """Where any of `secrets` appears: every command's stdout (but the one allowed) and
        stderr, the files of the policy directory, of the owner's home and work directory
        and of the SoftHSM token, `extra_texts` ({name: text}). (Only the test's own
        scripted dialogs hold them, by construction.)"""
        found = []
        for i, r in enumerate(self.runs):
            for name, text in (("stdout", r.stdout), ("stderr", r.stderr)):
                if name == "stdout" and r is allow_stdout_of:
                    continue
                for s in secrets:
                    if s in text:
                        found.append(f"{s!r} in the {name} of {r.args[1:4]}")
        # the policy directory, the owner's home (XDG state, config, cache) and work
        # directory, the token's files
        for where in (self.policy.path, self.owner.home, self.work, self.softhsm.dir):
            for rel, data in tree_snapshot(where).items():
                for s in secrets:
                    if s.encode() in data:
                        found.append(f"{s!r} in {where / rel}")
        for name, text in dict(extra_texts).items():
            for s in secrets:
                if s in text:
                    found.append(f"{s!r} in {name}")
        return found


@pytest.fixture
def prov(paraf_bin, owner, blank_softhsm, ca, shared_tmp):
    return Prov(paraf_bin, owner, blank_softhsm, ca, shared_tmp)


def activated(prov, **reg):
    """register → init-token → activate (activation code, passphrase, passphrase): returns
    (application id, activation code, path of the request)."""
    r, app = prov.register(**reg)
    expect(r, EXIT_OK)
    r, code = prov.init_token(app)
    expect(r, EXIT_OK)
    assert code, f"no activation code in init-token's output:\n{r.stdout}"
    r = prov.activate(app, [code, PASSPHRASE, PASSPHRASE])
    expect(r, EXIT_OK)
    req = prov.work / f"{app}.csr"
    assert req.exists(), (r.stdout, os.listdir(prov.work))
    return app, code, req


# --- the whole lifecycle --------------------------------------------------------------------------

def test_R4_R7_R8_R9_lifecycle(prov, owner_agent_factory):
    """The full lifecycle on a blank SoftHSM token:
    register (R17) → init-token (SO PIN from a 0600 file; a 0644 one is refused, R2; the
    one-time activation code printed once) → activate as the owner's own account (R4: the
    dialog asks the code, then the passphrase twice) → the CA issues an individual certificate
    (digitalSignature + nonRepudiation, 2 years, R7) from the request → import-cert (the
    owner's passphrase in the dialog) → parafd, as the owner, signs (`paraf sign`, the dialog)
    and `openssl cms -verify` accepts it → renew (R7: a new key and request on the same
    token) → import of the new certificate: the old one is `superseded` in revoked.list →
    sign with the new one → revoking the old one again is refused as already revoked (R8) →
    an incident on the token (R9) → every signature is refused (exit 4) under R8 (the
    superseded one) or R9 (the one revoked by the incident)."""
    owner = prov.owner
    # register (R17): the application id on stdout, a pending entry, mode 0644 (R13: read by
    # every user's parafd, written by root only)
    r, app = prov.register()
    expect(r, EXIT_OK)
    assert re.fullmatch(rf"{re.escape(owner.name)}-\d{{8}}-[0-9a-f]{{4}}", app), app
    entry_path = prov.policy.path / "owners.d" / f"{app}.conf"
    assert stat.S_IMODE(entry_path.stat().st_mode) == 0o644
    e = prov.entry(app)
    assert (e["account"], e["type"], e["name"], e["nik"], e["nip"], e["email"]) == \
        (owner.name, "individual", NAME, NIK, NIP, EMAIL)
    assert "certificate" not in e and "token" not in e
    rec = last_audit(r)
    assert rec["method"] == "admin.register" and rec["verdict"] == "allow", rec

    # init-token: a world-readable SO PIN file is refused (R2), nothing touched
    loose = write_private(prov.dir / "so-pin-loose", SO_PIN + "\n", mode=0o644)
    r, code = prov.init_token(app, so_pin_file=loose)
    expect(r, EXIT_REFUSED, r"SO PIN file .*0600")
    assert last_audit(r)["rule"] == "R2"
    assert [t["initialized"] for t in prov.softhsm.token_infos()] == [False]

    r, code = prov.init_token(app)
    expect(r, EXIT_OK)
    init_run = r
    assert code and r.stdout.count(code) == 1, r.stdout
    digits = code.replace("-", "")
    assert digits.isdigit() and len(digits) >= 8, code
    infos = [t for t in prov.softhsm.token_infos() if t["initialized"]]
    assert len(infos) == 1 and infos[0]["label"] == f"PARAF {NAME}", infos
    assert infos[0]["user_pin_initialized"], infos
    serial = infos[0]["serial"]
    assert prov.entry(app)["token"] == serial
    rec = last_audit(r)
    assert rec["method"] == "admin.init-token" and rec["verdict"] == "allow", rec

    # activate, as the owner: code, passphrase, passphrase (R2, R4); EC key on the token (R3)
    r = prov.activate(app, [code, PASSPHRASE, PASSPHRASE])
    expect(r, EXIT_OK)
    req = prov.work / f"{app}.csr"
    assert req.exists() and req.stat().st_uid == owner.uid
    dialogs = prov.owner_dialog.dialogs()
    assert len(dialogs) == 3 and all(d["getpin"] for d in dialogs), dialogs
    assert "aktivasi" in dialogs[0]["prompt"].lower(), dialogs[0]
    rec = last_audit(r)
    assert rec["method"] == "owner.activate" and rec["uid"] == owner.uid, rec
    assert rec["verdict"] == "allow" and rec["owner"] == owner.name, rec

    # the CA issues; import-cert with the owner's passphrase typed in the dialog
    cert, cert_path = prov.issue(req, name="cert1.pem")
    r = prov.import_cert(app, cert_path)
    expect(r, EXIT_OK)
    cid = pki.cert_id(cert)
    assert cid in r.stdout
    e = prov.entry(app)
    assert e["certificate"] == cid and e["token"] == serial, e
    (d,) = prov.admin_dialog.dialogs()
    assert d["getpin"] and cid[:16] in d["description"], d
    assert [o for o in prov.token_objects() if o["class"] == "CKO_CERTIFICATE"][0]["value"] \
        == cert.public_bytes(serialization.Encoding.DER)
    rec = last_audit(r)
    assert rec["method"] == "admin.import-cert" and rec["certificate"] == cid, rec

    # admin list: active
    r = prov.admin("list", "--json")
    expect(r, EXIT_OK)
    (row,) = json.loads(r.stdout)
    assert row["status"] == "active" and row["certificate"] == cid, row

    # parafd, as the owner, signs with it; openssl accepts the signature
    agent = owner_agent_factory(owner, prov.softhsm, prov.policy,
        pinentry={"pin": PASSPHRASE})
    doc = prov.work / "surat.txt"
    doc.write_text("Surat keputusan nomor 1\n")
    owner.give(doc)

    def sign(cert_id, name):
        f = prov.work / name
        f.write_text(f"Dokumen {name}\n")
        owner.give(f)
        r = prov.owner_paraf("--socket", agent.socket, "sign", "--cert", cert_id, f,
            env=agent.env)
        return r, f

    r, f = sign(cid, "surat1.txt")
    expect(r, EXIT_OK)
    v = openssl_cms_verify(f"{f}.p7s", f, prov.ca.cert_path)
    assert v.returncode == 0, v.stderr

    # renew (R7): the operator registers the renewal, the owner makes key and request
    r, app2 = prov.register(renews=cid, account=None, type=None, name=None, nik=None,
        nip=None, email=None, phone=None, unit=None)
    expect(r, EXIT_OK)
    assert prov.entry(app2)["renews"] == cid and prov.entry(app2)["token"] == serial
    r = prov.owner_paraf("renew", "--cert", cid, pins=[PASSPHRASE])
    expect(r, EXIT_OK)
    req2 = prov.work / f"{app2}.csr"
    assert req2.exists(), (r.stdout, os.listdir(prov.work))
    assert len(prov.owner_dialog.dialogs()) == 1
    cert2, cert2_path = prov.issue(req2, name="cert2.pem")
    assert cert2.public_key().public_numbers() != cert.public_key().public_numbers()
    r = prov.import_cert(app2, cert2_path)
    expect(r, EXIT_OK)
    cid2 = pki.cert_id(cert2)
    rev = prov.revoked()
    assert rev[cid][1] == "superseded" and cid2 not in rev, rev

    # sign with the new one; the old one is refused (R8: superseded)
    r, f = sign(cid2, "surat2.txt")
    expect(r, EXIT_OK)
    v = openssl_cms_verify(f"{f}.p7s", f, prov.ca.cert_path)
    assert v.returncode == 0, v.stderr
    r, f = sign(cid, "surat3.txt")
    expect(r, EXIT_REFUSED, r"\(reason revoked, rule R8\)")
    assert not Path(f"{f}.p7s").exists()

    # revoke the old one: already revoked (superseded), permanent (R8)
    before = prov.policy.revoked_path.read_bytes()
    r = prov.admin("revoke", "--cert", cid, "--reason", "left-post")
    expect(r, EXIT_REFUSED, r"already revoked .*superseded.*\(R8\)")
    assert prov.policy.revoked_path.read_bytes() == before
    rec = last_audit(r)
    assert rec["verdict"] == "deny" and rec["rule"] == "R8", rec

    # incident on the token (R9): the new certificate is revoked at once
    r = prov.admin("incident", "--token", serial, "--kind", "lost", "--note", "hilang di bus")
    expect(r, EXIT_OK)
    rev = prov.revoked()
    assert rev[cid2][1] == "key-lost" and rev[cid][1] == "superseded", rev
    assert serial in (prov.policy.path / "incidents.log").read_text()
    assert any(x["rule"] == "R9" and x["method"] == "admin.incident"
        for x in audit_records(r.stderr)), r.stderr

    # the registry says so
    r = prov.admin("list", "--json")
    expect(r, EXIT_OK)
    status = {row["certificate"]: row["status"] for row in json.loads(r.stdout)}
    assert status == {cid: "superseded", cid2: "revoked"}, status

    # every signature refused: R9 for the incident, R8 for the superseded one
    n = agent.audit_count()
    for c, rule in ((cid2, "R9"), (cid, "R8")):
        r, f = sign(c, f"surat-{rule}.txt")
        expect(r, EXIT_REFUSED, rf"sign refused by policy: .*\(reason revoked, rule {rule}\)")
        assert not Path(f"{f}.p7s").exists()
    recs = agent.audit(n)
    assert [(x["verdict"], x["reason"], x["rule"]) for x in recs] == \
        [("deny", "revoked", "R9"), ("deny", "revoked", "R8")], recs
    # every request parafd saw was the owner's own, from paraf (R1)
    assert {(x["method"], x["uid"], x["owner"]) for x in agent.audit()} == \
        {("sign", owner.uid, owner.name)}, agent.audit()
    assert [x["outcome"] for x in agent.audit() if x["verdict"] == "allow"] == ["signed"] * 2

    # a revoked certificate is not renewed either (R8): neither registration nor request
    before = tree_snapshot(prov.policy.path)
    r, _ = prov.register(renews=cid2, account=None, type=None, name=None, nik=None, nip=None,
        email=None, phone=None, unit=None)
    expect(r, EXIT_REFUSED, r"revoked .*\(key-lost\).*cannot be renewed")
    assert last_audit(r)["rule"] == "R8"
    r = prov.owner_paraf("renew", "--cert", cid2, pins=[PASSPHRASE])
    expect(r, EXIT_REFUSED, r"revoked .*\(key-lost\).*cannot be renewed")
    assert last_audit(r)["rule"] == "R8" and prov.owner_dialog.dialogs() == []
    assert tree_snapshot(prov.policy.path) == before

    # no secret anywhere but the code's one print (R2)
    leaks = prov.secrets_leaked([SO_PIN, PASSPHRASE, code, digits], allow_stdout_of=init_run,
        extra_texts={"parafd's stderr": agent.stderr(), "request 1": req.read_text(),
            "request 2": req2.read_text()})
    assert not leaks, leaks


# --- independent checks of what activation made -----------------------------------------------

def csr_subject_checks(req):
    """`openssl req -verify` accepts the request (its signature is the token key's, R3, R16)
    and `openssl req -subject` shows the registered subject (R17)."""
    v = openssl("req", "-verify", "-noout", "-in", req)
    assert v.returncode == 0 and "verify OK" in (v.stdout + v.stderr), v.stdout + v.stderr
    s = openssl("req", "-subject", "-noout", "-nameopt", "sep_comma_plus_space,sname,utf8",
        "-in", req)
    assert s.returncode == 0, s.stderr
    subject = s.stdout.strip()
    for want in (f"CN={NAME}", f"serialNumber=NIP{NIP}", f"emailAddress={EMAIL}",
            f"OU={UNIT}", "C=ID"):
        assert re.search(rf"(^subject=|, ){re.escape(want)}(,|$)", subject), (want, subject)
    return subject


def key_objects_checks(objects, key_type):
    """PyKCS11's view of the token after activation (R3): one key pair of key_type, the
    private key CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE,
    CKA_SIGN; no secret keys anywhere; the public key beside it with the same CKA_ID."""
    priv = [o for o in objects if o["class"] == "CKO_PRIVATE_KEY"]
    pub = [o for o in objects if o["class"] == "CKO_PUBLIC_KEY"]
    secret = [o for o in objects if o["class"] == "CKO_SECRET_KEY"]
    assert secret == [], secret
    assert len(priv) == 1 and len(pub) == 1, objects
    (k,) = priv
    assert k["key_type"] == key_type, k
    assert (k["sensitive"], k["extractable"], k["always_sensitive"], k["never_extractable"]) \
        == (True, False, True, True), k
    assert k["sign"] is True and k["token"] is True and k["private"] is True, k
    assert pub[0]["id"] == k["id"] and k["id"], (pub, k)
    return k


def test_R3_R16_R17_request_and_key_on_token(prov):
    """After activation, independent tools agree: `openssl req -verify` accepts the request,
    whose subject is the registration's (CN, serialNumber with the NIP, emailAddress, OU;
    R17) and whose public key is the token's; PyKCS11 (logged in with the passphrase) shows
    one EC P-256 key pair (the default), the private key sensitive, never extractable, always
    sensitive, never exposed (R3), and no secret-key object; the one-time activation code no
    longer opens the token (R4)."""
    app, code, req = activated(prov)
    csr_subject_checks(req)
    csr = pki.load_request(req)
    assert isinstance(csr.public_key(), ec.EllipticCurvePublicKey)
    assert csr.public_key().curve.name == "secp256r1"
    objects = prov.token_objects()
    k = key_objects_checks(objects, "CKK_EC")
    assert k["decrypt"] in (False, None) and k["derive"] in (False, None), k
    assert [o for o in objects if o["class"] not in ("CKO_PRIVATE_KEY", "CKO_PUBLIC_KEY")] \
        == [], objects
    # the public key object is the request's
    tok = prov.token()
    with tok.session() as s:
        (h,) = s.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY)])
        (point,) = s.getAttributeValue(h, [PyKCS11.CKA_EC_POINT], True)
    prov.owner.give(prov.softhsm.dir)
    point = bytes(point)
    if point[0] == 0x04 and point[1] == len(point) - 2:
        point = point[2:]
    assert point == csr.public_key().public_bytes(serialization.Encoding.X962,
        serialization.PublicFormat.UncompressedPoint)
    # the activation code was one-time: it is no longer the token's PIN
    with pytest.raises(PyKCS11.PyKCS11Error, match="CKR_PIN_INCORRECT"):
        prov.token(code.replace("-", "")).objects()
    prov.owner.give(prov.softhsm.dir)


def test_R3_rsa_3072_option(paraf_bin, owner, blank_softhsm, ca, shared_tmp):
    """`[keys] algorithm = rsa-3072`: activation generates an RSA 3072 key pair on the token
    (sensitive, never extractable, R3); the request, signed by it, verifies and carries the
    registered subject."""
    prov = Prov(paraf_bin, owner, blank_softhsm, ca, shared_tmp,
        policy_extra="\n[keys]\nalgorithm = rsa-3072\n")
    app, code, req = activated(prov)
    csr_subject_checks(req)
    csr = pki.load_request(req)
    assert isinstance(csr.public_key(), rsa.RSAPublicKey) and csr.public_key().key_size == 3072
    key_objects_checks(prov.token_objects(), "CKK_RSA")


# --- refusals -----------------------------------------------------------------------------------

def test_R4_activation_from_another_account(prov):
    """R4: activation only from the registered account itself, never through a proxy, root
    included. The application belongs to an account that is not the caller's (as root: the
    owner's `nobody`, and root tries; as an ordinary user: `nobody`'s application, and the
    user tries): refused (exit 4) naming the account and R4, audited, before any dialog; no
    request written, the token untouched (the activation code still opens it, no object)."""
    if os.getuid() == 0:
        other = prov.owner.name  # nobody's application; root (not nobody) tries
    else:
        # another existing, unprivileged account the registry can name: nobody, or the first
        # such account in passwd
        names = [p.pw_name for p in pwd.getpwall() if p.pw_uid not in (0, os.getuid())
            and re.fullmatch(r"[a-z_][a-z0-9_.-]{0,31}", p.pw_name)]
        names.sort(key=lambda n: n != "nobody")
        if not names:
            pytest.skip("no second account on this machine to register the application to")
        other = names[0]
    r, app = prov.register(account=other)
    expect(r, EXIT_OK)
    r, code = prov.init_token(app)
    expect(r, EXIT_OK)
    # the caller: the account running the tests (not `other`)
    prov.admin_dialog.configure(pins=[code, PASSPHRASE, PASSPHRASE])
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG")}
    env.update(prov.softhsm.env())
    r = subprocess.run([prov.paraf, "activate", "--application", app, "--module",
        SOFTHSM_MODULE, "--pinentry", str(prov.admin_dialog.wrapper), "--policy",
        str(prov.policy.path)], capture_output=True, text=True, env=env, cwd=prov.dir,
        stdin=subprocess.DEVNULL, start_new_session=True, timeout=60)
    prov.runs.append(r)
    prov.owner.give(prov.softhsm.dir)
    expect(r, EXIT_REFUSED, rf"belongs to the account '{other}'.*\(R4\)")
    rec = last_audit(r)
    assert (rec["verdict"], rec["rule"], rec["reason"], rec["uid"]) == \
        ("deny", "R4", "not-owner", os.getuid()), rec
    assert prov.admin_dialog.dialogs() == [], "a dialog was shown to the wrong account"
    assert not list(prov.dir.glob("*.csr"))
    assert prov.token(code.replace("-", "")).objects() == []
    prov.owner.give(prov.softhsm.dir)


def test_R4_wrong_activation_code(prov):
    """A wrong activation code is refused by the token (exit 4, 'activation code is wrong',
    rule R4), a code that is not digits before the token sees it; nothing changes: no key, no
    request, and the right code then activates."""
    r, app = prov.register()
    expect(r, EXIT_OK)
    r, code = prov.init_token(app)
    expect(r, EXIT_OK)
    digits = code.replace("-", "")
    wrong = ("1" if digits[0] != "1" else "2") + digits[1:]
    r = prov.activate(app, [wrong, PASSPHRASE, PASSPHRASE])
    expect(r, EXIT_REFUSED, r"activation code is wrong.*nothing was changed")
    rec = last_audit(r)
    assert (rec["verdict"], rec["rule"], rec["reason"]) == ("deny", "R4", "pin-incorrect"), rec
    r = prov.activate(app, ["abcd-efgh-ijkl", PASSPHRASE, PASSPHRASE])
    expect(r, EXIT_REFUSED, r"activation code is digits only")
    assert last_audit(r)["reason"] == "activation-code-invalid"
    assert len(prov.owner_dialog.dialogs()) == 1, "asked on after an invalid code"
    assert not list(prov.work.glob("*.csr"))
    assert prov.token(digits).objects() == []
    prov.owner.give(prov.softhsm.dir)
    r = prov.activate(app, [code, PASSPHRASE, PASSPHRASE])
    expect(r, EXIT_OK)
    assert (prov.work / f"{app}.csr").exists()


def test_R4_init_token_gives_one_code_only(prov):
    """R4: the operator must never hold a working PIN for the owner's key. init-token run
    again for the same application (before or after activation) does not issue a new code: the
    token's PIN is set already (exit 4, rule R4, 'has its PIN set already'); the first code
    still activates, and after activation the passphrase stays the owner's."""
    r, app = prov.register()
    expect(r, EXIT_OK)
    r, code = prov.init_token(app)
    expect(r, EXIT_OK)
    for when in ("before activation", "after activation"):
        r, again = prov.init_token(app)
        expect(r, EXIT_REFUSED, r"has its PIN set already.*\(R1, R4\)")
        assert again is None and not CODE_RE.search(r.stdout), (when, r.stdout)
        rec = last_audit(r)
        assert (rec["verdict"], rec["rule"], rec["reason"]) == ("deny", "R4", "pin-set"), rec
        if when == "before activation":
            expect(prov.activate(app, [code, PASSPHRASE, PASSPHRASE]), EXIT_OK)
    assert len(prov.token_objects()) == 2  # the key pair, opened with the passphrase


WEAK = [
    ("too short", "Ab1-xyz", r"at least 8 characters"),
    ("the NIK", f"nik {NIK}", r"must not contain the NIK or the NIP"),
    ("the NIP", f"NIP{NIP}!", r"must not contain the NIK or the NIP"),
    ("birth date YYYYMMDD", "lahir 19780315 ok", r"must not contain the birth date"),
    ("birth date DDMMYYYY", "15031978-kopi", r"must not contain the birth date"),
    ("birth date DDMMYY", "pagi-150378-sore", r"must not contain the birth date"),
    ("one repeated character", "aaaaaaaaaaaaaaaa", r"one character repeated"),
]


def test_R2_R4_weak_passphrases(prov):
    """The passphrase the owner chooses (R2, R4) is refused, each with its own message, exit
    4, rule R2, before the token is touched: too short, containing the NIK, the NIP, the
    birth date (YYYYMMDD, DDMMYYYY, DDMMYY), the activation code, one character repeated; two
    entries that differ.
    The refused passphrase is not echoed. Nothing changes: the code then activates.
    (The code as printed, with its hyphens: test_R4_passphrase_not_the_printed_code.)"""
    r, app = prov.register()
    expect(r, EXIT_OK)
    r, code = prov.init_token(app)
    expect(r, EXIT_OK)
    digits = code.replace("-", "")
    cases = WEAK + [
        ("the activation code", f"kode{digits}x", r"must not contain the activation code"),
    ]
    r = prov.activate(app, [code, PASSPHRASE, PASSPHRASE + "."])
    expect(r, EXIT_REFUSED, r"two passphrases differ")
    assert last_audit(r)["reason"] == "passphrase-mismatch"
    failures = []
    for what, weak, msg in cases:
        r = prov.activate(app, [code, weak, weak])
        if r.returncode != EXIT_REFUSED or not re.search(msg, r.stderr):
            failures.append(f"{what} ({weak!r}): exit {r.returncode}, stdout {r.stdout!r}, "
                f"stderr {r.stderr!r}")
            break  # accepted: the token's PIN is that passphrase now
        rec = last_audit(r)
        assert (rec["verdict"], rec["rule"], rec["reason"]) == \
            ("deny", "R2", "weak-passphrase"), rec
        assert len(prov.owner_dialog.dialogs()) == 2, f"{what}: asked to repeat a weak one"
        assert weak not in r.stderr and weak not in r.stdout, f"{what}: echoed"
    assert not failures, "weak passphrases accepted or mis-reported:\n" + "\n".join(failures)
    assert not list(prov.work.glob("*.csr"))
    assert prov.token(digits).objects() == []
    prov.owner.give(prov.softhsm.dir)
    expect(prov.activate(app, [code, PASSPHRASE, PASSPHRASE]), EXIT_OK)


def test_R4_passphrase_not_the_printed_code(prov):
    """R2, R4: the operator saw the activation code as init-token printed it
    ("1234-5678-9012"), and the owner may type it so (the dialog strips the hyphens); a
    passphrase that IS that printed code, or holds it with spaces, would be known to the
    operator: refused like the bare digits (exit 4, rule R2, 'must not contain the
    activation code'), nothing changed."""
    r, app = prov.register()
    expect(r, EXIT_OK)
    r, code = prov.init_token(app)
    expect(r, EXIT_OK)
    accepted = []
    for weak in (code, code.replace("-", " ")):
        r = prov.activate(app, [code, weak, weak])
        if r.returncode != EXIT_REFUSED:
            accepted.append(f"{weak!r}: exit {r.returncode}: {r.stdout.strip()[:80]!r}")
            break  # it is the token's PIN now
        expect(r, EXIT_REFUSED, r"must not contain the activation code")
        assert last_audit(r)["reason"] == "weak-passphrase"
    assert not accepted, ("a passphrase the operator knows was accepted as the owner's: "
        + "; ".join(accepted))
    assert not list(prov.work.glob("*.csr"))


REGISTRATION_REFUSALS = [
    ("nik", {"nik": "320104150378000"}, "R17"),          # 15 digits
    ("nik", {"nik": "3201049913780001"}, "R17"),         # day 99, month 13
    ("nip", {"nip": "19780315200501100"}, "R17"),        # 17 digits
    ("nip", {"nip": "197803152005013002"}, "R17"),       # sex digit 3
    ("email", {"email": "budi.santoso@gmail.com"}, "R17"),
    ("email", {"email": "budi@contoh-go.id"}, "R17"),    # not a subdomain of go.id
    ("email", {"email": "budi@contoh.go.id.example.com"}, "R17"),
    ("name", {"name": "Dr. Budi Santoso"}, "R17"),
    ("name", {"name": "Budi Santoso, S.Kom"}, "R17"),
    ("name", {"name": "Ir Budi Santoso"}, "R17"),
    ("name", {"name": "Budi Santoso SKom"}, "R17"),
    ("account", {"account": "no-such-account-paraf"}, "R1"),
]


@pytest.mark.parametrize("field,fields,rule", REGISTRATION_REFUSALS,
    ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(REGISTRATION_REFUSALS)])
def test_R17_registration_refusals(field, fields, rule, prov):
    """R17: the applicant's data are checked before anything is written: a NIK that is not 16
    digits with a birth date, a NIP that is not 18 digits with birth date, appointment and
    sex, an e-mail address off the policy's government domains (look-alikes included), a
    name with titles ("Dr.", ", S.Kom", "Ir", "SKom"), an account that does not exist (R1).
    Each: exit 2, stderr names the field (`--<field>:`), a deny audit record with the rule,
    owners.d stays empty."""
    before = tree_snapshot(prov.policy.path)
    r, app = prov.register(**fields)
    expect(r, EXIT_USAGE, rf"(?m)^paraf: admin register: --{field}: ")
    rec = last_audit(r)
    assert (rec["verdict"], rec["rule"], rec["reason"]) == \
        ("deny", rule, "invalid-registration"), rec
    assert tree_snapshot(prov.policy.path) == before


def test_R18_jabatan_registration_needs_position_and_decree(prov):
    """R18: a jabatan (position) registration without the position, or without the
    appointment decree, is refused naming the field (exit 2, rule R18), nothing written; with
    both it is registered."""
    before = tree_snapshot(prov.policy.path)
    for missing in ("position", "decree"):
        f = {"position": "Kepala Bidang Aplikasi Informatika", "decree": "800/123/2026"}
        f[missing] = None
        r, app = prov.register(type="jabatan", **f)
        expect(r, EXIT_USAGE, rf"--{missing}: .*\(R18\)")
        rec = last_audit(r)
        assert (rec["verdict"], rec["rule"]) == ("deny", "R18"), rec
        assert tree_snapshot(prov.policy.path) == before
    r, app = prov.register(type="jabatan", position="Kepala Bidang Aplikasi Informatika",
        decree="800/123/2026")
    expect(r, EXIT_OK)
    e = prov.entry(app)
    assert (e["type"], e["position"], e["decree"]) == \
        ("jabatan", "Kepala Bidang Aplikasi Informatika", "800/123/2026"), e


def test_R3_R5_R7_R17_import_cert_refusals(prov, tmp_path):
    """import-cert checks the certificate before anything is written (R3, R5, R7, R17): a
    certificate for another key than the token's (public key, R3); a subject that is not the
    registration's (the CN, the NIP in serialNumber, the e-mail address; R17); the policy OID
    of another type while [types] is configured (R5); valid for 3 years (R7); issued by a CA
    that is not a trust anchor. Each: exit 4, stderr names the field or problem, a deny audit
    record, no dialog shown, the registration, the policy directory and the token unchanged.
    A wrong passphrase typed for the right certificate is refused by the token (R2), nothing
    written. Then the right certificate imports."""
    prov.policy.add_policy("[types]\n"
        f"individual = {pki.CERT_TYPE_OIDS['individual']}\n"
        f"jabatan = {pki.CERT_TYPE_OIDS['position']}\n")
    app, code, req = activated(prov)
    other_key = ec.generate_private_key(ec.SECP256R1())
    unknown_ca = pki.CA(tmp_path / "unknown-ca", kind="ec", name="Unknown CA")

    def name(cn=NAME, nip=NIP, email=EMAIL):
        return pki.make_name(cn, serial_number=f"NIP{nip}", organizational_unit=UNIT,
            email=email)

    cases = [
        ("key", dict(public_key=other_key.public_key()), r"public key: .*not the key", "R3"),
        ("cn", dict(subject=name(cn="Budi Santosa")), r"name: .*CN is 'Budi Santosa'", "R17"),
        ("nip", dict(subject=name(nip="198001012005011001")), r"nip: .*NIP", "R17"),
        ("email", dict(subject=name(email="budi@contoh.go.id")), r"email: ", "R17"),
        ("type", dict(cert_type="position"), r"type: .*jabatan.*\(R5\)", "R5"),
        ("3 years", dict(days=1095), r"validity: .*1095 days.*\(R7\)", "R7"),
        ("unknown CA", dict(ca=unknown_ca), r"issuer: .*does not chain", None),
    ]
    before = tree_snapshot(prov.policy.path)
    objects = prov.token_objects()
    for what, kw, msg, rule in cases:
        cert, path = prov.issue(req, name=f"bad-{what.replace(' ', '-')}.pem", **kw)
        r = prov.import_cert(app, path)
        expect(r, EXIT_REFUSED, msg)
        rec = last_audit(r)
        assert (rec["verdict"], rec["rule"]) == ("deny", rule), (what, rec)
        assert prov.admin_dialog.dialogs() == [], f"{what}: the passphrase was asked"
        assert tree_snapshot(prov.policy.path) == before, what
    assert prov.token_objects() == objects
    # the right certificate, but a wrong passphrase typed: the token refuses, nothing written
    cert, path = prov.issue(req, name="good.pem")
    r = prov.import_cert(app, path, passphrase=PASSPHRASE + "?")
    expect(r, EXIT_REFUSED, r"nothing was written")
    rec = last_audit(r)
    assert (rec["verdict"], rec["rule"], rec["reason"]) == ("deny", "R2", "pin-incorrect"), rec
    assert tree_snapshot(prov.policy.path) == before
    assert prov.token_objects() == objects
    expect(prov.import_cert(app, path), EXIT_OK)
    assert prov.entry(app)["certificate"] == pki.cert_id(cert)


def test_R17_import_cert_refuses_another_unit(prov):
    """R17: the request carries the registered unit (OU); a certificate whose subject names
    another unit differs from the registration and is refused (exit 4, naming the unit),
    nothing written. (The issue: "a certificate … whose subject differs from the
    registration".)"""
    app, code, req = activated(prov)
    before = tree_snapshot(prov.policy.path)
    subject = pki.make_name(NAME, serial_number=f"NIP{NIP}",
        organizational_unit="Badan Pendapatan Daerah", email=EMAIL)
    cert, path = prov.issue(req, name="other-unit.pem", subject=subject)
    r = prov.import_cert(app, path)
    expect(r, EXIT_REFUSED, r"(?i)unit|OU")
    assert tree_snapshot(prov.policy.path) == before


def test_R8_revocation_is_permanent(prov):
    """R8: revoking twice is refused ('already revoked on … (reason)', exit 4, rule R8) and
    revoked.list does not change; no command lifts a revocation: `paraf admin unrevoke` (and
    the like) are answered as permanent revocation (exit 4, R8, audited); the help names no
    such command."""
    cid = pki.cert_id(pki.CA(prov.dir / "x", kind="ec").cert)  # any certificate's id
    prov.policy.register(cid, name=NAME, nip=NIP)
    r = prov.admin("revoke", "--cert", cid, "--reason", "retired", "--note", "pensiun 2027")
    expect(r, EXIT_OK)
    assert prov.revoked()[cid][1:] == ("retired", "pensiun 2027")
    assert last_audit(r)["rule"] == "R8"
    after = prov.policy.revoked_path.read_bytes()
    assert stat.S_IMODE(prov.policy.revoked_path.stat().st_mode) == 0o644
    r = prov.admin("revoke", "--cert", cid[:12], "--reason", "violation")
    expect(r, EXIT_REFUSED, r"already revoked on \S+ \(retired\).*\(R8\)")
    assert (last_audit(r)["verdict"], last_audit(r)["rule"]) == ("deny", "R8")
    for word in ("unrevoke", "reinstate", "restore"):
        r = prov.admin(word, "--cert", cid)
        expect(r, EXIT_REFUSED, r"revocation is permanent \(R8\)")
        rec = last_audit(r)
        assert (rec["verdict"], rec["rule"], rec["reason"]) == \
            ("deny", "R8", "revocation-permanent"), rec
    assert prov.policy.revoked_path.read_bytes() == after
    h = subprocess.run([prov.paraf, "admin", "--help"], capture_output=True, text=True)
    assert h.returncode == 0 and "unrevoke" not in h.stdout and "permanent" in h.stdout


def test_R18_transfer_only_for_jabatan(prov):
    """R18: `paraf admin transfer` of an individual certificate is refused (exit 4, rule
    R18, 'only a jabatan'), nothing appended; a jabatan certificate is revoked as
    'transferred'."""
    ind = pki.cert_id(pki.CA(prov.dir / "x1", kind="ec").cert)
    jab = pki.cert_id(pki.CA(prov.dir / "x2", kind="ec").cert)
    prov.policy.register(ind, name=NAME, nip=NIP, type="individual")
    prov.policy.register(jab, name=NAME, nip=NIP, type="jabatan")
    r = prov.admin("transfer", "--cert", ind, "--note", "SK mutasi 800/77/2027")
    expect(r, EXIT_REFUSED, r"only a jabatan .*\(R18\)")
    rec = last_audit(r)
    assert (rec["verdict"], rec["rule"], rec["reason"]) == ("deny", "R18", "not-jabatan"), rec
    assert prov.revoked() == {}
    r = prov.admin("transfer", "--cert", jab, "--note", "SK mutasi 800/77/2027")
    expect(r, EXIT_OK)
    assert prov.revoked()[jab][1:] == ("transferred", "SK mutasi 800/77/2027")
    assert last_audit(r)["rule"] == "R18"


def test_R13_operator_steps_refused_to_the_owner(prov):
    """R13: only the security staff (root, the group paraf-admin) may change the registry:
    the owner's account running `paraf admin register` on root's policy directory is refused
    (exit 4, rule R13) and nothing is written. Root only (as an ordinary user the owner is
    the directory's owner, which --policy's test mode accepts as its staff)."""
    if not prov.owner.other:
        pytest.skip("needs root: the owner must be another account than the directory's")
    before = tree_snapshot(prov.policy.path)
    r = prov.owner_paraf("admin", "register", "--account", prov.owner.name, "--type",
        "individual", "--name", NAME, "--nik", NIK, "--nip", NIP, "--email", EMAIL, "--unit",
        UNIT, "--policy", prov.policy.path)
    expect(r, EXIT_REFUSED, r"R13")
    assert last_audit(r)["rule"] == "R13"
    assert tree_snapshot(prov.policy.path) == before
