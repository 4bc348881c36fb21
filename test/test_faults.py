"""
Token faults (issue 7): every error at every PKCS#11 call site of a request, a hang at each,
a token removed in the middle of a request, and a PIN retry counter running down to
FINAL_TRY and LOCKED, injected by test/faultp11.c (libparaf-faultp11.so, wrapping SoftHSM;
see test/faultp11.py). Each time: a clean JSON-RPC error with the documented code and reason
(doc/protocol.md), parafd alive, the token helper replaced when the token went (a fresh
PKCS#11 context, PLATFORM.md's libp11 lesson) or it hung (past helper_timeout, never longer),
and once the fault is cleared (the token reinserted) a signature that verifies.

R2 is at stake in the PIN tests: the PIN comes from the trusted dialog only, the final try
needs the official's confirmation, a locked token is not asked for a PIN, and nothing retries
a PIN by itself. R8 and R3 play no part here.
"""

import base64
import os
import signal
import time

import pytest

import pki
from conftest import proc_state
from faultp11 import FaultModule, wait_for
from test_agent import Files, assert_error, make_docs, openssl_cms_verify, sign_params

HELPER_TIMEOUT = 2
CONFIG = f"[agent]\nhelper_timeout = {HELPER_TIMEOUT}\n"
HANG_MARGIN = 3.0  # seconds over helper_timeout a hung request may take (list, dialog, reaping)

ERRORS = ["CKR_DEVICE_REMOVED", "CKR_TOKEN_NOT_PRESENT", "CKR_SESSION_HANDLE_INVALID",
    "CKR_DEVICE_ERROR", "CKR_PIN_LOCKED", "CKR_GENERAL_ERROR", "CKR_FUNCTION_FAILED"]
# The reason a sign gets when a call on the found token fails with this CK_RV
# (pkcs11/tok-err.c; "not present" after the token was found means removed meanwhile).
REASON_BY_RV = {
    "CKR_DEVICE_REMOVED": "token-removed",
    "CKR_TOKEN_NOT_PRESENT": "token-removed",
    "CKR_SESSION_HANDLE_INVALID": "token-removed",
    "CKR_DEVICE_ERROR": "token-error",
    "CKR_PIN_LOCKED": "pin-locked",
    "CKR_GENERAL_ERROR": "token-error",
    "CKR_FUNCTION_FAILED": "token-error",
}
REMOVAL = {"CKR_DEVICE_REMOVED", "CKR_TOKEN_NOT_PRESENT", "CKR_SESSION_HANDLE_INVALID"}

# A sign request's calls: LIST (C_GetSlotList, C_GetTokenInfo, C_GetSlotInfo, C_OpenSession,
# C_FindObjects*, C_GetAttributeValue, C_CloseSession), the PIN dialog, then SIGN
# (C_GetSlotList, C_GetTokenInfo, C_OpenSession, C_Login, C_FindObjects*, C_GetAttributeValue,
# C_SignInit, C_Sign, C_Logout, C_CloseSession). The qualifiers of test/faultp11.c aim a rule
# at one of them: `skip 1` passes LIST's call (one token), `login` only after C_Login.
SIGN_SITES = [
    ("C_OpenSession", "skip 1"),
    ("C_Login", ""),
    ("C_FindObjectsInit", "login"),
    ("C_FindObjects", "login"),
    ("C_GetAttributeValue", "login"),
    ("C_SignInit", "login"),
    ("C_Sign", "login"),
]
# Finding the token again for SIGN: a slot that fails is skipped, so the token is not there.
FIND_SITES = [("C_GetSlotList", "skip 1"), ("C_GetTokenInfo", "skip 1")]
# LIST: a failing slot or certificate is left out (PLATFORM.md: skip, do not give up), so the
# certificate is unknown; a "removed" answer leaves the whole token out.
LIST_SITES = [("C_GetSlotList", ""), ("C_GetTokenInfo", ""), ("C_OpenSession", "times 1"),
    ("C_FindObjectsInit", "times 1"), ("C_FindObjects", "times 1"),
    ("C_GetAttributeValue", "times 1")]


@pytest.fixture
def fault(tmp_path, build_dir):
    return FaultModule(tmp_path / "fault", build_dir)


class Bench:
    """An EC identity on a SoftHSM token behind the fault module, and a parafd using it."""

    def __init__(self, ca, token, fault, agent_factory, config=CONFIG):
        self.ca, self.token, self.fault = ca, token, fault
        self.ident = token.enroll(ca, kind="ec")
        self.base = f"token {token.label}"
        fault.write(self.base)
        self.agent = agent_factory(modules=[fault.path], env=fault.env(), config=config)
        self.files = Files(fault.dir / "files")

    def set(self, *rules):
        self.fault.write(self.base, *rules)

    def clear(self):
        self.fault.write(self.base)

    def sign(self, fmt="raw", timeout=60):
        docs = make_docs(1)
        resp = self.agent.call("sign", sign_params(self.ident, docs, "sha256", fmt),
            timeout=timeout)
        return docs[0][1], resp

    def check_signs(self, fmt="raw"):
        """A sign that must work, verified: cryptography for raw, openssl cms -verify for
        cms."""
        content, resp = self.sign(fmt)
        assert "result" in resp, f"sign after clearing the fault failed: {resp}"
        s = resp["result"]["signatures"][0]
        if fmt == "raw":
            pki.verify_raw(self.ident.public_key, base64.b64decode(s["signature"]),
                pki.digest(content))
        else:
            r = openssl_cms_verify(self.files, base64.b64decode(s["cms"]), content,
                self.ca.cert_path)
            assert r.returncode == 0, f"openssl cms -verify: {r.stderr}"

    def helper(self):
        return self.agent.helper_pid(timeout=0)


def kill_helper(bench, pid):
    """SIGKILLs the helper and waits until parafd has reaped it (so the next request goes to
    a new one, not to the dead one's socket)."""
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: proc_state(pid) is None, 10), f"helper {pid} not reaped"


def run_errors(bench, site, qual, expect, replaced):
    """Injects each error of ERRORS at site (with qualifiers), signs, checks the reason
    expect(rv), parafd alive, the helper replaced iff replaced(rv); then clears and signs.
    Returns a list of problems (all errors are tried before the test fails)."""
    problems = []
    for rv in ERRORS:
        bench.check_signs()  # the helper is up and the token works
        before = bench.helper()
        mark = bench.fault.n_calls()
        bench.set(f"fail {site} {rv} {qual}".strip())
        _, resp = bench.sign()
        want = expect(rv)
        got = (resp.get("error") or {}).get("data", {}).get("reason")
        hit = [c for c in bench.fault.calls(mark) if c[1] == site and c[2] == rv]
        if not hit:
            problems.append(f"{site} {rv}: the fault never fired ({qual or 'no qualifier'})")
        if got != want:
            problems.append(f"{site} {rv}: expected {want}, got {resp}")
        else:
            assert_error(resp, want)
        if not bench.agent.alive():
            pytest.fail(f"parafd died after {site} {rv}:\n{bench.agent.stderr()}")
        now = bench.helper()
        if replaced(rv) and now == before:
            problems.append(f"{site} {rv}: the helper {before} was not replaced")
        if not replaced(rv) and now != before:
            problems.append(f"{site} {rv}: the helper was replaced ({before} -> {now})")
        bench.clear()
    return problems


@pytest.mark.parametrize("site,qual", SIGN_SITES, ids=[s for s, _ in SIGN_SITES])
def test_error_at_sign_call(site, qual, ca, token, fault, agent_factory):
    """Each error at a call on the token found for signing: the reason of its class
    (removed -> token-removed, locked -> pin-locked, others -> token-error), the helper
    replaced exactly when the token went, and after clearing a sign that verifies (raw with
    cryptography, then CMS with openssl cms -verify)."""
    bench = Bench(ca, token, fault, agent_factory)
    problems = run_errors(bench, site, qual, REASON_BY_RV.get, lambda rv: rv in REMOVAL)
    bench.check_signs("cms")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("site,qual", FIND_SITES, ids=[s for s, _ in FIND_SITES])
def test_error_finding_the_token_again(site, qual, ca, token, fault, agent_factory):
    """Each error while the helper finds the token again for signing (after the PIN dialog):
    token-not-present, whatever the error; the next sign works."""
    bench = Bench(ca, token, fault, agent_factory)
    problems = run_errors(bench, site, qual, lambda rv: "token-not-present", lambda rv: False)
    bench.check_signs("cms")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("site,qual", LIST_SITES, ids=[s for s, _ in LIST_SITES])
def test_error_while_listing(site, qual, ca, token, fault, agent_factory):
    """Each error while the tokens and certificates are listed: the certificate is not
    listed, so the sign is unknown-certificate (no PIN asked); a token that vanished from the
    list (its slot failed, or it answered "removed") retires the helper as a removal does;
    tokens.list answers meanwhile; the next sign works."""
    bench = Bench(ca, token, fault, agent_factory)
    dialogs = len(bench.agent.pinentry.dialogs())
    problems = run_errors(bench, site, qual, lambda rv: "unknown-certificate",
        lambda rv: rv in REMOVAL or site in ("C_GetSlotList", "C_GetTokenInfo"))
    # the dialog came only for the checking signs, never for a failed listing
    assert len(bench.agent.pinentry.dialogs()) - dialogs == len(ERRORS)
    bench.set(f"fail {site} CKR_DEVICE_ERROR {qual}".strip())
    assert "result" in bench.agent.call("tokens.list"), "tokens.list failed during a fault"
    bench.clear()
    bench.check_signs("cms")
    assert not problems, "\n".join(problems)


def test_logout_failure_still_answers(ca, token, fault, agent_factory):
    """C_Logout failing after the signature was made: the signature is answered (it exists)
    and verifies; the helper closed every session instead (which ends the login: no login
    left behind, R1)."""
    bench = Bench(ca, token, fault, agent_factory)
    for rv in ERRORS:
        mark = fault.n_calls()
        bench.set(f"fail C_Logout {rv} login")
        bench.check_signs()
        calls = [c[1:] for c in fault.calls(mark)]
        assert ("C_Logout", rv) in calls, calls
        # C_CloseAllSessions; p11-kit's managed module closes each session it tracks itself
        after = calls[calls.index(("C_Logout", rv)) + 1:]
        assert after and after[0] in (("C_CloseAllSessions", "CKR_OK"),
            ("C_CloseSession", "CKR_OK")), calls
    bench.clear()
    bench.check_signs("cms")


def test_error_at_initialize(ca, token, fault, agent_factory):
    """C_Initialize failing in a fresh helper: tokens.list and sign give token-error; once
    cleared, the same helper initialises the module on the next request (no restart)."""
    bench = Bench(ca, token, fault, agent_factory)
    bench.check_signs()
    for rv in ERRORS:
        bench.set(f"fail C_Initialize {rv}")
        old = bench.helper()
        kill_helper(bench, old)  # a new helper, which must initialise again
        assert_error(bench.agent.call("tokens.list"), "token-error")
        _, resp = bench.sign()
        assert_error(resp, "token-error")
        h = bench.helper()
        assert h and h != old, (old, h)
        bench.clear()
        bench.check_signs()
        assert bench.helper() == h, "the helper was replaced instead of initialising again"
        assert bench.agent.alive()
    bench.check_signs("cms")


HANG_SITES = [("C_Initialize", ""), ("C_GetSlotList", ""), ("C_FindObjects", ""),
    ("C_Login", ""), ("C_Sign", "login"), ("C_Logout", "login")]


@pytest.mark.parametrize("site,qual", HANG_SITES, ids=[s for s, _ in HANG_SITES])
def test_hang(site, qual, ca, token, fault, agent_factory):
    """A call that hangs: the request fails with token-helper-failed after helper_timeout
    (2 s) and not much later, other clients are answered meanwhile, the hung helper is killed
    and replaced, and once cleared a sign verifies."""
    bench = Bench(ca, token, fault, agent_factory)
    bench.check_signs()
    old = bench.helper()
    bench.set(f"hang {site} 60 {qual}".strip())
    if site == "C_Initialize":
        kill_helper(bench, old)
    c = bench.agent.client()
    t0 = time.monotonic()
    rid = c.request("sign", sign_params(bench.ident, make_docs(1), "sha256", "raw"))
    assert "result" in bench.agent.client().call("rpc.discover")
    resp = c.recv(60)
    elapsed = time.monotonic() - t0
    print(f"\nhang at {site}: answered after {elapsed:.2f} s (helper_timeout {HELPER_TIMEOUT})")
    assert_error(resp, "token-helper-failed", id=rid)
    assert HELPER_TIMEOUT - 0.2 <= elapsed <= HELPER_TIMEOUT + HANG_MARGIN, elapsed
    assert bench.agent.alive()
    bench.clear()
    bench.check_signs()
    assert bench.helper() not in (None, old)
    bench.check_signs("cms")


@pytest.mark.parametrize("site,qual", [("C_Login", ""), ("C_FindObjects", "login"),
    ("C_Sign", "login")], ids=["C_Login", "C_FindObjects", "C_Sign"])
def test_removed_during_request(site, qual, ca, token, fault, agent_factory):
    """The token pulled out when the request reaches site: token-removed; while it is out,
    tokens.list lacks it and a sign is unknown-certificate; reinserted, the next sign works
    in a fresh helper (new process, new C_Initialize) with a new PIN from the dialog, and no
    session of the old context is used again (R2: no PIN is cached)."""
    bench = Bench(ca, token, fault, agent_factory)
    bench.check_signs()
    old = bench.helper()
    bench.set(f"remove_at {site} {qual}".strip())
    _, resp = bench.sign()
    assert_error(resp, "token-removed")
    assert fault.state().get("removed") == "1", fault.state()
    assert bench.agent.result("tokens.list")["tokens"] == []
    _, resp = bench.sign()
    assert_error(resp, "unknown-certificate")
    assert bench.helper() != old, "the helper outlived the removal"

    dialogs = len(bench.agent.pinentry.dialogs())
    mark = fault.n_calls()
    bench.fault.write(bench.base, "present 1")  # reinserted
    bench.check_signs("cms")
    assert len(bench.agent.pinentry.dialogs()) == dialogs + 1, "no new PIN was asked"
    after = fault.calls(mark)
    pids = {p for p, fn, _ in after if fn == "C_Sign"}
    assert old not in pids, "the old helper signed after the reinsertion"
    assert not [c for c in after if c[2] == "CKR_SESSION_HANDLE_INVALID"], after


def test_pin_counter_final_try_and_lock(ca, token, fault, agent_factory):
    """A token with 3 PIN tries (SoftHSM never locks; the fault module counts): wrong PINs
    give pin-incorrect with pin_status count_low, then final_try; the dialog before the final
    try asks for confirmation (R2); the last wrong PIN locks (pin_status locked, tokens.list
    too); then pin-locked without a dialog or a C_Login, even for the right PIN."""
    bench = Bench(ca, token, fault, agent_factory)
    bench.set("pin_tries 3")
    pe = bench.agent.pinentry
    pe.configure(pin="9999")  # wrong
    pe.clear()
    steps = [({"count_low": True, "final_try": False, "locked": False}, "pin-incorrect"),
        ({"count_low": True, "final_try": True, "locked": False}, "pin-incorrect"),
        ({"locked": True}, "pin-incorrect")]
    for i, (status, reason) in enumerate(steps):
        _, resp = bench.sign()
        data = assert_error(resp, reason)
        for k, v in status.items():
            assert data["pin_status"][k] is v, (i, data)
        tok = bench.agent.result("tokens.list")["tokens"][0]
        for k, v in status.items():
            assert tok["pin_status"][k] is v, (i, tok)
    dialogs = pe.dialogs()
    assert len(dialogs) == 3, dialogs
    assert not dialogs[0]["confirm"] and not dialogs[1]["confirm"], dialogs
    assert dialogs[2]["confirm"] and dialogs[2]["confirm_first"], \
        "the final try was not confirmed first"
    assert "now locked" in resp["error"]["message"], resp

    pe.configure(pin=token.pin)  # the right PIN no longer helps
    mark = fault.n_calls()
    _, resp = bench.sign()
    assert_error(resp, "pin-locked")
    assert len(pe.dialogs()) == 3, "a dialog asked for the PIN of a locked token"
    assert "C_Login" not in {fn for _, fn, _ in fault.calls(mark)}


def test_pin_counter_reset_by_right_pin(ca, token, fault, agent_factory):
    """One wrong PIN (count_low), then the right one: signed, and the counter is full again
    (pin_status count_low false)."""
    bench = Bench(ca, token, fault, agent_factory)
    bench.set("pin_tries 3")
    bench.agent.pinentry.configure(pins=["9999", token.pin])
    _, resp = bench.sign()
    data = assert_error(resp, "pin-incorrect")
    assert data["pin_status"]["count_low"] is True
    bench.check_signs()
    tok = bench.agent.result("tokens.list")["tokens"][0]
    assert tok["pin_status"]["count_low"] is False and tok["pin_status"]["locked"] is False, tok


def test_fault_module_sessions(fault, token, tmp_path):
    """The fault module itself, through PyKCS11: a session dies with the token
    (CKR_DEVICE_REMOVED while out, CKR_SESSION_HANDLE_INVALID after reinsertion, as real
    modules do), the slot stays with CKF_TOKEN_PRESENT cleared, and a swap shows the other
    token's serial in the same slot."""
    import PyKCS11
    other = token.softhsm.init_token("paraf-other", pin="1234", so_pin="12345678")
    fault.write(f"token {token.label}")
    saved = {k: os.environ.get(k) for k in list(fault.env()) + ["SOFTHSM2_CONF"]}
    os.environ.update(fault.env())
    os.environ.update(token.softhsm.env())
    lib = PyKCS11.PyKCS11Lib()
    try:
        lib.load(str(fault.path))
        (slot,) = lib.getSlotList(tokenPresent=True)
        serial = lib.getTokenInfo(slot).serialNumber.strip()
        s = lib.openSession(slot)
        fault.write(f"token {token.label}", "present 0")
        assert lib.getSlotList(tokenPresent=True) == []
        assert lib.getSlotList(tokenPresent=False) == [slot]
        assert not lib.getSlotInfo(slot).flags & PyKCS11.CKF_TOKEN_PRESENT
        with pytest.raises(PyKCS11.PyKCS11Error) as e:
            s.getSessionInfo()
        assert e.value.value == PyKCS11.CKR_DEVICE_REMOVED
        fault.write(f"token {token.label}", "present 1")
        with pytest.raises(PyKCS11.PyKCS11Error) as e:
            s.getSessionInfo()
        assert e.value.value == PyKCS11.CKR_SESSION_HANDLE_INVALID
        fault.write(f"swap {other.label}")
        assert lib.getSlotList(tokenPresent=True) == [slot]
        assert lib.getTokenInfo(slot).label.strip() == other.label
        assert lib.getTokenInfo(slot).serialNumber.strip() != serial
    finally:
        lib.lib.Unload()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
