"""
What security staff get out of the audit log and the registry (issue 6): the yearly
evaluation report (R14: "supervision and evaluation at least once a year, reported upward"),
the expiry warning (R7: owners are warned ahead of expiry), and backup and restore of the
certificate-management system (R15, never keys).

The report is checked against a synthetic year: about 2,000 records, written through the real
paraf-auditd, spread over the twelve months of last year (UTC) with different units,
certificate types, usages, verdicts, rules and outcomes, plus records just outside the year, a
resent record (the same record_id twice), a long record split in continuation parts, incident
and revocation records; and a policy directory with owners.d, certs/, revoked.list and
incidents.log made with the test PKI. Every field of `paraf audit report --format json` is
compared with what the generator counted by itself; then the HTML page is rendered by headless
Chromium (Debian's `chromium`) and checked to have been drawn, with inline SVG charts and no
outside reference.
"""

import datetime
import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import tarfile
import zlib
from collections import Counter, defaultdict
from pathlib import Path

import pytest

import pki
from conftest import (AuditService, PolicyDir, SharedPolicyDir, _short_dir,
    check_chain, current_account, finish_auditd)

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

DAY = 86400
UNITS = ["Dinas Komunikasi dan Informatika", "Badan Kepegawaian Daerah", "Sekretariat Daerah",
    "Dinas Kesehatan"]
USAGES = {"individual": ["signature", "email", "document-protection", "tls-client"],
    "jabatan": ["signature", "email", "document-protection"],
    "system": ["tls-server", "tls-client", "signature"]}
DENIALS = [("R1", "not-owner"), ("R1", "remote-session"), ("R6", "usage-not-allowed"),
    ("R6", "usage-not-in-certificate"), ("R7", "expired"), ("R8", "revoked"),
    ("R9", "revoked"), ("R13", "policy-invalid"), ("R2", "pin-parameter-refused")]
UNFINISHED = ["pin-cancelled", "wrong-pin", "audit-unavailable", "token-removed"]
PKI_TYPE = {"individual": "individual", "jabatan": "position", "system": "system"}


def utc(y, m=1, d=1, hh=0, mm=0, ss=0):
    return datetime.datetime(y, m, d, hh, mm, ss, tzinfo=datetime.timezone.utc)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def ts(t):
    return int(t.timestamp())


def parse_iso(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


# --- the synthetic world -----------------------------------------------------------------------

class Cert:
    """A certificate of the world: a software key certified by the test CA."""

    def __init__(self, ca, name, type, unit, not_before, not_after, account, register=True,
            in_certs=True):
        key = ec.generate_private_key(ec.SECP256R1())
        self.cert = ca.issue(key.public_key(), name, not_before=not_before,
            not_after=not_after, cert_type=PKI_TYPE[type])
        self.id = pki.cert_id(self.cert)
        self.name, self.type, self.unit, self.account = name, type, unit, account
        self.not_before, self.not_after = not_before, not_after
        self.register, self.in_certs = register, in_certs

    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)


class World:
    """Last year's records and the policy directory they refer to, with what the report must
    say, counted here independently of paraf."""

    def __init__(self, ca, base, auditd_bin, sock_dir):
        self.now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        self.year = self.now.year - 1
        Y = self.year
        self.ys, self.ye = utc(Y), utc(Y + 1)
        self.rng = random.Random(Y * 7919 + 14)
        rng = self.rng
        me = current_account()
        long_ago, far = utc(Y - 1, 3, 1), self.now + datetime.timedelta(days=500)
        now = self.now
        c = {}

        def add(key, type, unit, nb=long_ago, na=far, **kw):
            c[key] = Cert(ca, f"Pejabat {key}", type, unit, nb, na, me, **kw)
        add("ind1", "individual", UNITS[0])
        add("ind2", "individual", UNITS[1])
        add("jab1", "jabatan", UNITS[2])
        add("sys1", "system", None)                      # registered without a unit
        add("unused_denied", "individual", UNITS[0])      # only refusals in the year
        add("unused_plain", "jabatan", UNITS[3])          # nothing in the year
        add("revoked_before", "individual", UNITS[1])     # revoked before the year: not unused
        add("expired_before", "individual", UNITS[2], nb=utc(Y - 3), na=utc(Y - 1, 6, 1))
        add("exp10", "individual", UNITS[3], na=now + datetime.timedelta(days=10, hours=1))
        add("exp89", "jabatan", UNITS[0], na=now + datetime.timedelta(days=89, hours=1))
        add("exp91", "individual", UNITS[1], na=now + datetime.timedelta(days=91, hours=1))
        add("exp_revoked", "individual", UNITS[2], na=now + datetime.timedelta(days=20))
        add("expired_now", "individual", UNITS[3], na=now - datetime.timedelta(days=5))
        add("stranger", "individual", None, register=False, in_certs=False)
        self.certs = c

        # revoked.list: (cert, time, reason)
        self.revoked = [
            (c["revoked_before"], utc(Y - 1, 11, 1, 9), "left-post"),
            (c["ind2"], utc(Y, 7, 15, 10), "transferred"),
            (c["exp_revoked"], utc(Y, 9, 1, 8, 30), "key-lost"),
        ]
        # incidents.log lines: (time, token, kind); records: (time, token, kind)
        self.incident_lines = [
            (utc(Y - 1, 12, 20, 9), "TOK-OLD-1", "lost"),
            (utc(Y, 3, 4, 10, 0, 0), "6eb3ed4e4f2be4f7", "lost"),
            (utc(Y, 9, 1, 8, 29, 0), "TOK 77 A", "damaged"),       # a serial with spaces
            (utc(Y, 11, 30, 16, 0, 0), "TOK-ONLY-LOG", "inaccessible"),
        ]
        self.incident_records = [
            (utc(Y, 3, 4, 10, 4, 0), "6eb3ed4e4f2be4f7", "lost"),      # 4 min later: same
            (utc(Y, 9, 1, 8, 29, 30), "TOK 77 A", "damaged"),
            (utc(Y, 5, 5, 5, 5, 5), "TOK-ONLY-AUDIT", "suspected-misuse"),
            (utc(Y, 11, 30, 16, 20, 0), "TOK-ONLY-LOG", "inaccessible"),  # 20 min: not it
        ]

        # the records
        recs = []
        signing = ["ind1", "ind2", "jab1", "sys1", "exp10", "exp89", "exp91", "stranger"]
        for i in range(1940):
            month = rng.randint(1, 12)
            day = rng.randint(1, 28)
            t = utc(Y, month, day, rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))
            key = rng.choice(signing)
            if key == "ind2" and t >= utc(Y, 7, 15, 10):
                key = "ind1"
            ce = c[key]
            usage = rng.choice(USAGES[ce.type])
            ndocs = rng.choice([1, 1, 1, 2, 3, 5])
            roll = rng.random()
            if roll < 0.72:
                recs.append(self.sign_record(t, ce, usage, ndocs, "allow", outcome="signed",
                    with_type=rng.random() < 0.85 and key != "stranger"))
            elif roll < 0.80:
                recs.append(self.sign_record(t, ce, usage, ndocs, "allow",
                    outcome=rng.choice(UNFINISHED)))
            else:
                rule, reason = rng.choice(DENIALS)
                recs.append(self.sign_record(t, ce, usage, ndocs, "deny", rule=rule,
                    reason=reason))
        for i in range(40):   # refusals of the certificate that never signs in the year
            t = utc(Y, rng.randint(1, 12), rng.randint(1, 28), 12)
            recs.append(self.sign_record(t, c["unused_denied"], "signature", 1, "deny",
                rule="R1", reason="not-owner"))
        # the same certificate signed the year before, and the one after: not this year's use
        recs.append(self.sign_record(utc(Y - 1, 12, 31, 23, 59, 59), c["unused_denied"],
            "signature", 2, "allow", outcome="signed"))
        recs.append(self.sign_record(utc(Y + 1, 1, 1, 0, 0, 0), c["unused_plain"],
            "signature", 2, "allow", outcome="signed"))
        # the year's first and last second count
        recs.append(self.sign_record(utc(Y, 1, 1, 0, 0, 0), c["ind1"], "signature", 4,
            "allow", outcome="signed"))
        recs.append(self.sign_record(utc(Y, 12, 31, 23, 59, 59), c["jab1"], "email", 3,
            "allow", outcome="signed"))
        # provisioning refusals (another method)
        for i in range(7):
            t = utc(Y, 2 + i, 10, 9)
            recs.append({"time": iso(t), "method": "admin.register", "uid": 0, "pid": 4242,
                "exe": "/usr/bin/paraf", "certificate": None, "certificate_type": None,
                "owner": None, "usage": None, "digest_algorithm": None, "documents": [],
                "verdict": "deny", "rule": "R17", "reason": "email-domain",
                "message": "the e-mail domain is not an official one", "outcome": None,
                "record_id": self.rid()})
        # a long record: 120 documents in three parts (continuations first)
        t = utc(Y, 6, 6, 6, 6, 6)
        big = self.sign_record(t, c["jab1"], "signature", 120, "allow", outcome="signed",
            with_type=True)
        docs = big["documents"]
        for part, chunk in ((2, docs[40:80]), (3, docs[80:])):
            recs.append({"record_id": self.rid(), "continues": big["record_id"], "part": part,
                "parts": 3, "time": big["time"], "method": "sign", "documents": chunk})
        big["documents"] = docs[:40]
        big["documents_total"] = 120
        big["parts"] = 3
        recs.append(big)
        # incidents and revocations recorded by paraf admin
        for t, tok, kind in self.incident_records:
            recs.append({"time": iso(t), "method": "admin.incident", "uid": 0, "pid": 777,
                "exe": "/usr/bin/paraf", "certificate": None, "certificate_type": None,
                "owner": None, "usage": None, "digest_algorithm": None, "documents": [],
                "verdict": "allow", "rule": "R9", "reason": "incident",
                "message": f"security incident: token {tok} {kind}; 1 certificate(s) "
                f"registered with it are revoked as key-lost", "outcome": "recorded",
                "record_id": self.rid()})
        recs.append({"time": iso(utc(Y, 7, 15, 10)), "method": "admin.revoke", "uid": 0,
            "pid": 778, "exe": "/usr/bin/paraf", "certificate": c["ind2"].id,
            "certificate_type": "individual", "owner": me, "usage": None,
            "digest_algorithm": None, "documents": [], "verdict": "allow", "rule": "R8",
            "reason": "transferred", "message": "certificate revoked locally: transferred",
            "outcome": "revoked", "record_id": self.rid()})
        recs.sort(key=lambda r: r["time"])
        # a record resent after a lost acknowledgement: the same record twice, later on
        dups = [recs[100], recs[500], recs[900]]
        recs += [dict(r) for r in dups]
        self.records = recs

        # the policy directory
        self.policy = PolicyDir(base / "policy")
        (self.policy.path / "certs").mkdir(mode=0o700)
        for ce in c.values():
            if ce.register:
                fields = {"unit": ce.unit}
                self.policy.register(ce.id, account=me, type=ce.type, name=ce.name, **fields)
            if ce.in_certs:
                self.policy.write(f"certs/{ce.id}.pem", ce.pem())
        for ce, t, reason in self.revoked:
            self.policy.revoke(ce.id, reason=reason, when=iso(t))
        lines = [f"{iso(t)} token {tok} {kind} by root (uid 0): 1 certificate(s) registered\n"
            for t, tok, kind in self.incident_lines]
        self.policy.write("incidents.log", "".join(lines), mode=0o644)

        # the log, through the real service
        self.svc = AuditService(auditd_bin, base / "audit", sock_dir / "audit.sock")
        self.svc.start()
        self.seqs = []
        with self.svc.client() as cl:
            for r in recs:
                a = cl.append(r)
                assert a is not None and a.ok, a
                self.seqs.append(a.seq)
        self.svc.stop()

    def rid(self):
        return "%032x" % self.rng.getrandbits(128)

    def sign_record(self, t, ce, usage, ndocs, verdict, outcome=None, rule=None, reason=None,
            with_type=True):
        docs = [{"name": f"surat-{k:03d}.pdf",
            "digest": hashlib.sha256(f"{t}{ce.id}{k}{self.rng.random()}".encode()).hexdigest()}
            for k in range(ndocs)]
        return {"time": iso(t), "method": "sign", "uid": 1000, "pid": self.rng.randint(2, 99999),
            "exe": "/usr/bin/libreoffice", "certificate": ce.id,
            "certificate_type": ce.type if with_type else None,
            "owner": ce.account if ce.register else None, "usage": usage,
            "digest_algorithm": "sha256", "documents": docs, "verdict": verdict,
            "rule": rule, "reason": reason if verdict == "deny" else "allowed",
            "message": None if verdict == "allow" else f"refused: {reason}",
            "outcome": outcome, "record_id": self.rid()}

    # -- what the report must say, counted here --

    def expected(self, now):
        ys, ye = ts(self.ys), ts(self.ye)
        reg = {ce.id: ce for ce in self.certs.values() if ce.register}
        seen_ids = set()
        e = {"requests": 0, "documents": 0, "month": defaultdict(lambda: [0, 0, 0]),
            "unit": defaultdict(lambda: [0, 0]), "type": defaultdict(lambda: [0, 0]),
            "usage": defaultdict(lambda: [0, 0]), "unfinished": Counter(), "rules": Counter(),
            "reasons": Counter(), "methods": Counter(), "refusals": 0, "used": set(),
            "in_year": 0, "dups": 0, "conts": 0, "revoke_recorded": set(), "inc_recs": []}
        for r, seq in zip(self.records, self.seqs):
            if r["record_id"] in seen_ids:
                e["dups"] += 1
                continue
            seen_ids.add(r["record_id"])
            if r.get("continues"):
                e["conts"] += 1
                continue
            if r["method"] == "admin.revoke" and r["verdict"] == "allow":
                e["revoke_recorded"].add(r["certificate"])
            t = ts(parse_iso(r["time"]))
            if not ys <= t < ye:
                continue
            e["in_year"] += 1
            m = parse_iso(r["time"]).month
            n = r.get("documents_total", len(r["documents"]))
            if r["verdict"] == "deny":
                e["refusals"] += 1
                e["month"][m][2] += 1
                e["rules"][r["rule"]] += 1
                e["reasons"][(r["reason"], r["rule"])] += 1
                e["methods"][r["method"]] += 1
                continue
            if r["method"] == "sign":
                if r["outcome"] != "signed":
                    e["unfinished"][r["outcome"]] += 1
                    continue
                e["requests"] += 1
                e["documents"] += n
                e["month"][m][0] += 1
                e["month"][m][1] += n
                o = reg.get(r["certificate"])
                unit = (o.unit or "(no unit)") if o else "(not registered)"
                typ = r["certificate_type"] or (o.type if o else None) or "(unknown)"
                for k, v in (("unit", unit), ("type", typ), ("usage", r["usage"])):
                    e[k][v][0] += 1
                    e[k][v][1] += n
                e["used"].add(r["certificate"])
            elif r["method"] == "admin.incident":
                e["inc_recs"].append((t, r, seq))
        # incidents: the year's log lines, each joined with one record of the same token
        # and kind within 10 minutes; records left over on their own
        incidents, matched = [], set()
        for lt, tok, kind in self.incident_lines:
            if not ys <= ts(lt) < ye:
                continue
            item = {"time": iso(lt), "token": tok, "kind": kind, "seq": None,
                "sources": ["incidents.log"]}
            for i, (rt, r, seq) in enumerate(e["inc_recs"]):
                rtok, rkind = self._tok_kind(r["message"])
                if i in matched or (rtok, rkind) != (tok, kind) or abs(rt - ts(lt)) > 600:
                    continue
                matched.add(i)
                item["seq"] = seq
                item["sources"] = ["incidents.log", "audit"]
                break
            incidents.append(item)
        for i, (rt, r, seq) in enumerate(e["inc_recs"]):
            if i not in matched:
                tok, kind = self._tok_kind(r["message"])
                incidents.append({"time": iso(datetime.datetime.fromtimestamp(rt,
                    datetime.timezone.utc)), "token": tok, "kind": kind, "seq": seq,
                    "sources": ["audit"]})
        revoked_ids = {ce.id for ce, _, _ in self.revoked}
        revocations = {ce.id: {"time": iso(t), "reason": reason, "unit": ce.unit,
            "type": ce.type, "account": ce.account, "name": ce.name,
            "in_audit_log": ce.id in e["revoke_recorded"]}
            for ce, t, reason in self.revoked if ys <= ts(t) < ye}
        nowt = ts(now)
        expiring = sorted(((ce.id, (ts(ce.not_after) - nowt) // DAY)
            for ce in self.certs.values() if ce.in_certs and ce.id not in revoked_ids
            and nowt <= ts(ce.not_after) <= nowt + 90 * DAY), key=lambda x: (x[1], x[0]))
        unused = set()
        for ce in self.certs.values():
            if not ce.register or ce.id in e["used"]:
                continue
            rv = [t for x, t, _ in self.revoked if x is ce]
            if rv and ts(rv[0]) < ys:
                continue
            if ce.in_certs and (ts(ce.not_after) < ys or ts(ce.not_before) >= ye):
                continue
            unused.add(ce.id)
        e.update(incidents=incidents, revocations=revocations, expiring=expiring,
            unused=unused)
        return e

    @staticmethod
    def _tok_kind(msg):
        m = re.match(r"security incident: token (.+) (\S+);", msg)
        return m.group(1), m.group(2)


@pytest.fixture(scope="module")
def world(ca, tmp_path_factory, build_dir):
    base = tmp_path_factory.mktemp("report-world")
    sock = _short_dir(tmp_path_factory, "aud")
    w = World(ca, base, build_dir / "paraf-auditd", sock)
    yield w
    problems = []
    finish_auditd(w.svc, problems)
    assert not problems, problems


def report(paraf_bin, world, fmt, out=None):
    argv = [str(paraf_bin), "audit", "report", "--year", str(world.year), "--dir",
        str(world.svc.dir), "--policy", str(world.policy.path), "--format", fmt]
    if out:
        argv += ["-o", str(out)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[:2000]}\n{r.stderr}"
    return r


def _by(items, key, *vals):
    out = {}
    for it in items:
        k = tuple(it[x] for x in key) if isinstance(key, tuple) else it[key]
        assert k not in out, f"{k} listed twice: {items}"
        out[k] = tuple(it[v] for v in vals) if len(vals) > 1 else it[vals[0]]
    return out


def _sorted_desc(items, count_key, key):
    order = [(-it[count_key], it[key]) for it in items]
    return order == sorted(order)


# --- the report --------------------------------------------------------------------------------

def test_R14_report_json_counts_the_year(world, paraf_bin):
    """R14: `paraf audit report --year Y --format json` on the synthetic year says, field by
    field, what the generator counted: signatures (requests and documents) per month, per unit
    (from the registry; "(no unit)", "(not registered)"), per certificate type (the record's,
    else the registry's) and per usage; allowed requests that did not sign, by outcome;
    refusals by rule, by reason with its rule and by method, and per month; the year's first
    and last second included, the seconds around it not; a resent record (same record_id)
    counted once; a 120-document record in three parts counted once with its 120 documents;
    incidents from incidents.log joined with the audit's records of the same token and kind
    within 10 minutes (and each side's leftovers); revocations dated in the year, and whether
    the audit log recorded them; certificates expiring within 90 days (not revoked, not
    expired); registered certificates that signed nothing in the year (not those revoked
    before it or not valid in it). The log is verified first and said to be intact."""
    r = report(paraf_bin, world, "json")
    doc = json.loads(r.stdout)
    now = parse_iso(doc["generated"])
    assert abs((now - world.now).total_seconds()) < 600
    e = world.expected(now)
    assert doc["schema"] == "paraf-audit-report/1" and doc["year"] == world.year
    log = doc["log"]
    assert log["checked"] is True and log["intact"] is True and log["fault"] is None, log
    assert log["records"] == len(world.records) == log["records_read"], log
    assert (log["records_in_year"], log["duplicates"], log["continuations"]) == \
        (e["in_year"], e["dups"], e["conts"]) == (log["records_in_year"], 3, 2), (log, e)

    s = doc["signatures"]
    assert (s["requests"], s["documents"]) == (e["requests"], e["documents"]), s
    months = s["by_month"]
    assert [m["month"] for m in months] == [f"{world.year}-{m:02d}" for m in range(1, 13)]
    for m in months:
        want = e["month"][int(m["month"][5:])]
        assert (m["requests"], m["documents"], m["refusals"]) == tuple(want), (m, want)
    assert all(e["month"][k][0] > 0 for k in range(1, 13)), "every month has signatures"
    for name, key in (("by_unit", "unit"), ("by_type", "type"), ("by_usage", "usage")):
        got = _by(s[name], key, "requests", "documents")
        want = {k: tuple(v) for k, v in e[key].items()}
        assert got == want, f"{name}: {got} != {want}"
        assert _sorted_desc(s[name], "requests", key), f"{name} not largest first"
    assert {"(no unit)", "(not registered)"} <= set(_by(s["by_unit"], "unit", "requests"))
    assert "(unknown)" in _by(s["by_type"], "type", "requests")

    u = doc["unfinished"]
    assert u["total"] == sum(e["unfinished"].values())
    assert _by(u["by_outcome"], "outcome", "count") == dict(e["unfinished"])

    f = doc["refusals"]
    assert f["total"] == e["refusals"] == sum(m["refusals"] for m in months)
    assert _by(f["by_rule"], "rule", "count") == dict(e["rules"])
    assert _by(f["by_reason"], ("reason", "rule"), "count") == dict(e["reasons"])
    assert _by(f["by_method"], "method", "count") == dict(e["methods"])
    assert _sorted_desc(f["by_rule"], "count", "rule")

    got = sorted(((i["time"], i["token"], i["kind"], i["seq"], tuple(i["sources"]))
        for i in doc["incidents"]), key=str)
    want = sorted(((i["time"], i["token"], i["kind"], i["seq"], tuple(i["sources"]))
        for i in e["incidents"]), key=str)
    assert got == want, f"incidents:\n{got}\n!=\n{want}"

    rv = {x["certificate"]: {k: x[k] for k in ("time", "reason", "unit", "type", "account",
        "name", "in_audit_log")} for x in doc["revocations"]}
    assert rv == e["revocations"], f"revocations:\n{rv}\n!=\n{e['revocations']}"

    assert doc["expiring_window_days"] == 90
    exp = [(x["certificate"], x["days_left"]) for x in doc["expiring"]]
    assert exp == e["expiring"], f"expiring {exp} != {e['expiring']}"
    c = world.certs
    assert [x[0] for x in exp] == [c["exp10"].id, c["exp89"].id]
    for x in doc["expiring"]:
        ce = next(v for v in c.values() if v.id == x["certificate"])
        assert (x["unit"], x["type"], x["account"], x["subject"]) == \
            (ce.unit, ce.type, ce.account, ce.name), x
        assert x["not_after"] == iso(ce.not_after)

    unused = {x["certificate"] for x in doc["unused"]}
    assert unused == e["unused"], (unused, e["unused"])
    assert {c["unused_denied"].id, c["unused_plain"].id} <= unused
    assert not {c["revoked_before"].id, c["expired_before"].id, c["stranger"].id} & unused


def _png_colours(path):
    """The number of distinct colours of an 8-bit RGB or RGBA PNG (Chromium's screenshots),
    decoded here with zlib alone; and its size."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, ihdr
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    colours = set()
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) \
                    & 255
        if y % 2 == 0:  # every other row is plenty to count colours
            colours.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp * 2))
        prev = line
    return len(colours), (w, h)


def test_R14_report_html_renders(world, paraf_bin, tmp_path):
    """R14: `--format html -o FILE` writes one self-contained page: inline <svg> charts, no
    script, stylesheet, image or link fetched from anywhere (no http:// or https:// except
    the SVG namespace name), the year's figures in it (total signatures, every unit); headless
    Chromium renders it to a PNG with many distinct colours (a drawn page, not a blank one).
    Skips when chromium is not installed (scripts/install-deps.sh installs it)."""
    out = tmp_path / "report.html"
    report(paraf_bin, world, "html", out)
    html = out.read_text()
    assert html.lstrip().lower().startswith("<!doctype html"), html[:200]
    assert html.count("<svg") >= 2, "no inline SVG charts"
    outside = re.sub(r'xmlns(:\w+)?="http://www\.w3\.org/[^"]*"', "", html)
    refs = re.findall(r"https?://[^\s\"'<>)]*", outside)
    assert not refs, f"the page refers outside itself: {refs[:5]}"
    assert not re.search(r"<(script|link|iframe|img)\b[^>]*\b(src|href)=", html, re.I), \
        "the page loads something"
    assert not re.search(r"@import|url\(", html), "the style loads something"
    doc = json.loads(report(paraf_bin, world, "json").stdout)
    assert str(doc["signatures"]["requests"]) in html
    for unit in UNITS:
        assert unit in html, unit
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium is not installed (Debian package chromium, see "
            "scripts/install-deps.sh): the page was checked but not rendered")
    png = tmp_path / "report.png"
    p = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'chr'}",
        f"--screenshot={png}", "--window-size=1280,2000", out.as_uri()],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    assert png.exists() and png.stat().st_size > 10000, \
        f"chromium wrote no screenshot: exit {p.returncode}\n{p.stderr[-2000:]}"
    n, size = _png_colours(png)
    print(f"report.png: {size[0]}x{size[1]}, {n} distinct colours")
    assert size == (1280, 2000), size
    assert n >= 40, f"the rendered page has {n} distinct colours: nothing drawn?"


def test_R14_report_says_when_the_log_is_not_intact(world, paraf_bin, tmp_path):
    """R14 with R13: a report over a log that was edited still comes out, but says the log is
    not intact, with the fault and where (the count cannot be trusted as it is)."""
    d = tmp_path / "audit"
    shutil.copytree(world.svc.dir, d)
    f = sorted(d.glob("audit-*.log"))[0]
    lines = f.read_bytes().split(b"\n")
    k = next(i for i in range(50, len(lines)) if b'"verdict":"allow"' in lines[i])
    lines[k] = lines[k].replace(b'"verdict":"allow"', b'"verdict":"deny"', 1)
    f.write_bytes(b"\n".join(lines))
    r = subprocess.run([str(paraf_bin), "audit", "report", "--year", str(world.year), "--dir",
        str(d), "--policy", str(world.policy.path), "--format", "json"], capture_output=True,
        text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    log = json.loads(r.stdout)["log"]
    assert log["intact"] is False and log["fault"] == "edited" and log["line"] == k + 1, log
    assert "not intact" in r.stderr, r.stderr


def test_R14_audit_show_filters(world, paraf_bin):
    """R14 (supervision): `paraf audit show --json` lists the stored records themselves, and
    its filters select exactly what the generator says: refusals of one month (--verdict deny
    --since/--until, by the decision's own time; a date alone as --until includes that whole
    day), one certificate by a 16-digit prefix, one owner account; the table has its
    header."""
    Y = world.year

    def show(*args):
        r = subprocess.run([str(paraf_bin), "audit", "show", "--dir", str(world.svc.dir),
            *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r

    got = json.loads(show("--json", "--verdict", "deny", "--since", f"{Y}-03-01",
        "--until", f"{Y}-03-31").stdout)
    want = [seq for r, seq in zip(world.records, world.seqs) if r.get("verdict") == "deny"
        and f"{Y}-03-01T00:00:00Z" <= r["time"] <= f"{Y}-03-31T23:59:59Z"]
    assert [x["seq"] for x in got] == want and want
    assert all(set(x) == {"seq", "time", "uid", "pid", "prev", "record"} for x in got)
    ind1 = world.certs["ind1"].id
    got = json.loads(show("--json", "--cert", ind1[:16]).stdout)
    assert [x["seq"] for x in got] == [seq for r, seq in zip(world.records, world.seqs)
        if r.get("certificate") == ind1]
    me = current_account()
    got = json.loads(show("--json", "--owner", me).stdout)
    assert len(got) == sum(1 for r in world.records if r.get("owner") == me) > 0
    t = show("--cert", ind1[:16], "--verdict", "allow")
    assert t.stdout.split("\n")[0].split()[:4] == ["SEQ", "TIME", "METHOD", "VERDICT"], t.stdout


# --- expiry (R7) -------------------------------------------------------------------------------

def test_R7_expiry_warns_the_owner_only(ca, shared_tmp, owner, paraf_bin):
    """R7 ("owners are warned ahead of expiry"): `paraf expiry` run by a certificate's owner
    lists that certificate, expiring in 10 days (days_left 10, status expiring), and not the
    owner's certificate valid for 200 more days, nor a revoked one, nor another account's that
    also expires in 10 days. As root (the owner is `nobody`): `daemon`, the other account,
    sees its own certificate only, `bin` (no certificate) is told that nothing expires, and
    root sees every owner's (documented: root runs it for everyone)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    pol = SharedPolicyDir(shared_tmp / "policy", account=owner.name)
    pol.add_anchor(ca)
    (pol.path / "certs").mkdir(mode=0o755)
    other_account = "root" if not owner.other else "daemon"
    made = {}
    for key, account, days, revoked in (("mine10", owner.name, 10, False),
            ("mine200", owner.name, 200, False), ("mine_revoked", owner.name, 10, True),
            ("theirs10", other_account, 10, False)):
        key_ = ec.generate_private_key(ec.SECP256R1())
        cert = ca.issue(key_.public_key(), f"Pejabat {key}", not_before=now -
            datetime.timedelta(days=300), not_after=now + datetime.timedelta(days=days, hours=1))
        cid = pki.cert_id(cert)
        pol.register(cid, account=account, name=f"Pejabat {key}")
        pol.write(f"certs/{cid}.pem", cert.public_bytes(serialization.Encoding.PEM))
        if revoked:
            pol.revoke(cid, reason="left-post")
        made[key] = cid

    def expiry(run, *extra):
        r = run([paraf_bin, "expiry", "--policy", pol.path, "--no-notify", *extra])
        assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    r = expiry(owner.run, "--json")
    doc = json.loads(r.stdout)
    assert [(c["certificate"], c["days_left"], c["status"], c["account"])
        for c in doc["certificates"]] == [(made["mine10"], 10, "expiring", owner.name)], doc
    t = expiry(owner.run)
    assert made["mine10"][:16] in t.stdout and made["theirs10"][:16] not in t.stdout, t.stdout
    assert made["mine200"][:16] not in t.stdout and made["mine_revoked"][:16] not in t.stdout
    if not owner.other:
        return  # an ordinary user: another account's certificate was not listed above
    r = subprocess.run(["setpriv", "--reuid=daemon", "--regid=daemon", "--clear-groups", "--",
        str(paraf_bin), "expiry", "--policy", str(pol.path), "--no-notify", "--json"],
        capture_output=True, text=True, timeout=60, cwd="/")
    # daemon owns theirs10 here: it sees that one only
    assert r.returncode == 0, r.stderr
    assert [c["certificate"] for c in json.loads(r.stdout)["certificates"]] == \
        [made["theirs10"]], r.stdout
    r = subprocess.run(["setpriv", "--reuid=bin", "--regid=bin", "--clear-groups", "--",
        str(paraf_bin), "expiry", "--policy", str(pol.path), "--no-notify"],
        capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    assert "no certificate expires within 30 days" in r.stdout, r.stdout
    assert not any(cid[:16] in r.stdout for cid in made.values()), r.stdout
    r = subprocess.run([str(paraf_bin), "expiry", "--policy", str(pol.path), "--no-notify",
        "--json"], capture_output=True, text=True, timeout=60)
    doc = json.loads(r.stdout)
    assert doc["all_owners"] is True
    assert {c["certificate"] for c in doc["certificates"]} == {made["mine10"],
        made["theirs10"]}, doc


# --- backup and restore (R15) ------------------------------------------------------------------

def _tree(path):
    """{relative path: sha256} of every file under path."""
    path = Path(path)
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*")) if p.is_file()}


def _backup_world(ca, token, agent_factory, tmp_path):
    """An agent that signed (so its audit log holds real records), with a policy directory
    holding the registry, certs/, revoked.list, incidents.log, policy.d, and the key material
    a policy directory may hold beside them (pins/<id>.pin, a private key in a *.key file)
    that must never be archived."""
    from test_agent import make_docs, sign_params
    ident = token.enroll(ca, kind="ec")
    agent = agent_factory()
    for i in range(3):
        assert "result" in agent.call("sign", sign_params(ident, make_docs(2, f"b{i}")))
    pol = agent.policy
    # the tests' policy.conf names its trust directories by absolute path; a restored copy
    # must use its own (the defaults: <dir>/anchors, <dir>/crl)
    pol.write_policy(re.sub(r"(?m)^(anchors|crl_dir) = .*\n", "", pol.conf_path.read_text()))
    (pol.path / "certs").mkdir(mode=0o700, exist_ok=True)
    pol.write(f"certs/{ident.cert_id}.pem", ident.cert.public_bytes(serialization.Encoding.PEM))
    pol.revoke("ab" * 32, reason="left-post")
    pol.write("incidents.log", "2026-01-05T10:00:00Z token T1 lost by root (uid 0): 0 "
        "certificate(s) registered\n")
    pol.dropin("50-local", "[validity]\nrenew_warning_days = 45\n")
    (pol.path / "pins").mkdir(mode=0o700)
    pol.write(f"pins/{ident.cert_id}.pin", "1234\n")
    key = ec.generate_private_key(ec.SECP256R1())
    pol.write("certs/operator.key", key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return agent, ident


def test_R15_backup_restore_round_trip(ca, token, agent_factory, auditd_factory, paraf_bin,
        tmp_path):
    """R15: `paraf admin backup FILE` of a live system (paraf-auditd running) writes a tar
    archive with SHA256SUMS for every member, no key material (no pins/, *.pin, *.key, no
    private key anywhere in it), prints the manifest's SHA-256 and records the backup in the
    audit log; `paraf admin restore FILE` into fresh directories writes every archived file
    with the same checksums, the restored audit log verifies with the archived number of
    records, and the policy directory files equal the originals; the restored log is
    writable by its owner only, and a paraf-auditd started on it continues its chain."""
    agent, ident = _backup_world(ca, token, agent_factory, tmp_path)
    archive = tmp_path / "backup.tar"
    r = subprocess.run([str(paraf_bin), "admin", "backup", str(archive), "--policy",
        str(agent.policy.path), "--audit-dir", str(agent.auditd.dir), "--json"],
        capture_output=True, text=True, timeout=120, env=agent.env)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    res = json.loads(r.stdout)
    assert (archive.stat().st_mode & 0o777) == 0o600
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    sums = members["SHA256SUMS"].decode()
    assert hashlib.sha256(members["SHA256SUMS"]).hexdigest() == res["manifest_sha256"]
    listed = {}
    for line in sums.splitlines():
        digest, name = line.split(None, 1)
        listed[name.lstrip("*")] = digest
    assert set(listed) == set(members) - {"SHA256SUMS"}, (sorted(listed), sorted(members))
    for name, digest in listed.items():
        assert hashlib.sha256(members[name]).hexdigest() == digest, name
    for name, data in members.items():
        assert not name.endswith((".pin", ".key")) and "/pins/" not in f"/{name}", name
        assert b"PRIVATE KEY" not in data, name
        assert b"1234\n" != data, name
    assert f"policy/owners.d/{ident.cert_id[:16]}.conf" in members
    assert f"policy/certs/{ident.cert_id}.pem" in members
    assert {"policy/revoked.list", "policy/incidents.log", "policy/policy.conf",
        "policy/policy.d/50-local.conf", "audit/checkpoint"} <= set(members), sorted(members)
    # the backup is itself on record, with its fingerprint
    recs = [x["record"] for x in agent.auditd.records()]
    assert any(x.get("method") == "admin.backup" and res["manifest_sha256"] in
        (x.get("message") or "") for x in recs), recs[-3:]

    # fresh, empty directories (with --policy, their owner counts as the operator)
    new_pol, new_aud = tmp_path / "restored" / "policy", tmp_path / "restored" / "audit"
    new_pol.mkdir(parents=True, mode=0o700)
    r = subprocess.run([str(paraf_bin), "admin", "restore", str(archive), "--policy",
        str(new_pol), "--audit-dir", str(new_aud), "--json"], capture_output=True, text=True,
        timeout=120, env=agent.env)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    restored = {**{f"policy/{k}": v for k, v in _tree(new_pol).items()},
        **{f"audit/{k}": v for k, v in _tree(new_aud).items()}}
    differ = [name for name, digest in listed.items()
        if name.startswith(("policy/", "audit/")) and restored.get(name) != digest]
    original = _tree(agent.policy.path)
    differ += [f"policy/{name} (from the original)" for name, digest in _tree(new_pol).items()
        if original.get(name) != digest]
    assert not (new_pol / "pins").exists() and not (new_pol / "certs" / "operator.key").exists()
    v = subprocess.run([str(paraf_bin), "audit", "verify", str(new_aud), "--json"],
        capture_output=True, text=True, timeout=60)
    assert v.returncode == 0, v.stdout + v.stderr
    assert json.loads(v.stdout)["records"] == res["audit_records"] > 0
    assert check_chain(new_aud) == []
    # R13 holds for the restored log too: nobody else may write it, and paraf-auditd takes it
    # up where the archive left it
    for p in [new_aud] + list(new_aud.iterdir()):
        assert p.stat().st_uid == os.geteuid() and not p.stat().st_mode & 0o022, \
            f"{p}: mode {p.stat().st_mode & 0o7777:04o}"
    svc = auditd_factory(directory=new_aud)
    with svc.client() as cl:
        a = cl.append({"method": "test", "note": "after the restore"})
    assert a.ok and a.seq == res["audit_records"] + 1, a
    svc.stop()
    v = subprocess.run([str(paraf_bin), "audit", "verify", str(new_aud), "--json"],
        capture_output=True, text=True, timeout=60)
    assert v.returncode == 0 and json.loads(v.stdout)["records"] == res["audit_records"] + 1
    assert not differ, f"restored into empty directories, these differ from the archive: " \
        f"{differ}\n--- revoked.list archived ---\n" \
        f"{members.get('policy/revoked.list', b'').decode()}--- restored ---\n" \
        f"{(new_pol / 'revoked.list').read_text() if (new_pol / 'revoked.list').exists() else ''}"


@pytest.mark.parametrize("where", ["audit-log", "owners", "manifest"])
def test_R15_tampered_archive_refused_nothing_written(where, ca, token, agent_factory,
        paraf_bin, tmp_path):
    """R15: an archive with one byte flipped (in an audit log file, in a registry file, or in
    SHA256SUMS itself) is refused whole by `paraf admin restore` (exit 4, rule R15), and
    nothing is written: the target directories stay as they were (absent, or unchanged)."""
    agent, ident = _backup_world(ca, token, agent_factory, tmp_path)
    archive = tmp_path / "backup.tar"
    r = subprocess.run([str(paraf_bin), "admin", "backup", str(archive), "--policy",
        str(agent.policy.path), "--audit-dir", str(agent.auditd.dir)], capture_output=True,
        text=True, timeout=120, env=agent.env)
    assert r.returncode == 0, r.stderr
    data = bytearray(archive.read_bytes())
    with tarfile.open(archive) as tar:
        pick = {"audit-log": lambda n: n.startswith("audit/audit-"),
            "owners": lambda n: n.startswith("policy/owners.d/"),
            "manifest": lambda n: n == "SHA256SUMS"}[where]
        m = next(m for m in tar.getmembers() if pick(m.name))
        off = m.offset_data + m.size // 2
    data[off] ^= 0x01
    archive.write_bytes(bytes(data))
    target = tmp_path / "target"
    (target / "policy").mkdir(parents=True)
    (target / "policy" / "keep.txt").write_text("here before\n")
    before = _tree(target)
    r = subprocess.run([str(paraf_bin), "admin", "restore", str(archive), "--policy",
        str(target / "policy"), "--audit-dir", str(target / "audit")], capture_output=True,
        text=True, timeout=120, env=agent.env)
    assert r.returncode == 4, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert "refused" in r.stderr, r.stderr
    assert _tree(target) == before, "a refused restore wrote something"
    assert not (target / "audit").exists()
    assert sorted(p.name for p in target.iterdir()) == ["policy"]


def test_R15_backup_refuses_a_private_key(ca, token, agent_factory, paraf_bin, tmp_path):
    """R15 with R3: a private key (PEM) lying among the files a backup takes stops the backup
    (exit 4, naming key material) and no archive is left behind."""
    agent, ident = _backup_world(ca, token, agent_factory, tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    agent.policy.write("certs/leaked.pem", key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    archive = tmp_path / "backup.tar"
    r = subprocess.run([str(paraf_bin), "admin", "backup", str(archive), "--policy",
        str(agent.policy.path), "--audit-dir", str(agent.auditd.dir)], capture_output=True,
        text=True, timeout=120, env=agent.env)
    assert r.returncode == 4, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert "key" in r.stderr.lower(), r.stderr
    assert not archive.exists() and not list(tmp_path.glob("backup.tar*")), \
        list(tmp_path.iterdir())
