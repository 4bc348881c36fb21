#!/bin/sh
# paraf demo: an official's key generated on a (SoftHSM) token, a demo CA and its CRL, a demo
# policy directory registering the certificate to the account running the demo, parafd on a
# private socket with a scripted PIN dialog, an Indonesian official letter signed with
# `paraf sign` (the PIN typed in parafd's own dialog, never given to paraf), refusals by the
# policy and by paraf, and the signature verified with `paraf verify` and with OpenSSL; then the
# same letter as a PDF signed visibly with `paraf sign-pdf` (QR code, signature block and the
# regulation's footer, R10) and verified with `paraf verify` (and poppler's pdfsig). Run by
# `make demo` (PARAF_BUILD, PYTHON set), as root on CI machines: it needs no terminal and asks
# nothing.
#
# Everything it starts is stopped and its temporary directory removed on exit, also on failure
# or interruption. It exits non-zero if any step fails. The signed letter, its .p7s, the signed
# PDF letter with a PNG of its first page, and the demo CA certificate and CRL stay in demo-out/
# (git-ignored) for a person to look at.
#
# The CA, the certificate-policy OID and the PIN are demo material only (see test/pki.py):
# nothing here is BSrE's, and the user's own tokens and configuration are never touched.
#
# The PIN dialog is test/fake-pinentry, the tests' scripted pinentry, behind a wrapper in the
# temporary directory: it answers the demo token's PIN as the official would type it, and
# records what the dialog showed, which the demo then prints. The PIN stays in 0600 files in
# the 0700 temporary directory: never in argv, the environment or a log (R2).
set -eu
umask 022 # parafd refuses policy files that anyone but their owner can change (R13)

: "${PARAF_BUILD:?set PARAF_BUILD to the build directory (make demo does)}"
PYTHON=${PYTHON:-/usr/bin/python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/demo-out
MODULE=/usr/lib/softhsm/libsofthsm2.so
PARAFD=$PARAF_BUILD/parafd
PARAF=$PARAF_BUILD/paraf
FAKE_PINENTRY=$ROOT/test/fake-pinentry

step_no=0
step() {
	step_no=$((step_no + 1))
	printf '\n[%d] %s\n' "$step_no" "$*"
}
say() { printf '    %s\n' "$*"; }
die() {
	printf '\ndemo: FAILED: %s\n' "$*" >&2
	exit 1
}
# Shows a command, then runs it with its output indented (and nothing to read: the demo asks
# nothing).
run() {
	printf '    $ %s\n' "$*"
	if "$@" </dev/null >"$tmp/run.out" 2>&1; then run_rc=0; else run_rc=$?; fi
	sed 's/^/      /' "$tmp/run.out"
	[ "$run_rc" -eq 0 ] || say "(exit status $run_rc)"
	return "$run_rc"
}

tmp=
parafd_pid=
auditd_pid=

stop_parafd() {
	[ -n "$parafd_pid" ] || return 0
	if kill -0 "$parafd_pid" 2>/dev/null; then
		kill -TERM "$parafd_pid" 2>/dev/null || true
		i=0
		while kill -0 "$parafd_pid" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		if kill -0 "$parafd_pid" 2>/dev/null; then
			say "parafd did not stop on SIGTERM; killing it"
			kill -KILL "$parafd_pid" 2>/dev/null || true
		fi
	fi
	wait "$parafd_pid" 2>/dev/null || true
	parafd_pid=
}

stop_auditd() {
	[ -n "$auditd_pid" ] || return 0
	kill -TERM "$auditd_pid" 2>/dev/null || true
	wait "$auditd_pid" 2>/dev/null || true
	auditd_pid=
}

cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	stop_parafd
	stop_auditd
	if [ "$rc" -ne 0 ] && [ -n "$tmp" ] && [ -s "$tmp/parafd.log" ]; then
		printf '\n--- parafd log (last 40 lines) ---\n' >&2
		tail -n 40 "$tmp/parafd.log" >&2
	fi
	if [ -n "$tmp" ]; then
		rm -rf "$tmp"
	fi
	if [ "$rc" -eq 0 ]; then
		printf '\ndemo: all steps passed; temporary files removed\n'
	else
		printf '\ndemo: failed (exit %d); everything started was stopped\n' "$rc" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

AUDITD=$PARAF_BUILD/paraf-auditd
for f in "$PARAFD" "$PARAF" "$PARAF_BUILD/paraf-token-helper" "$AUDITD"; do
	[ -x "$f" ] || die "$f is missing: build first (make build)"
done
[ -r "$FAKE_PINENTRY" ] || die "$FAKE_PINENTRY is missing"
[ -r "$MODULE" ] || die "SoftHSM ($MODULE) is not installed (make deps)"
command -v openssl >/dev/null 2>&1 || die "openssl is not installed"
command -v pdftoppm >/dev/null 2>&1 || die "pdftoppm is not installed (poppler-utils: make deps)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/paraf-demo.XXXXXX")
chmod 700 "$tmp"
mkdir -p "$OUT"

step "A private SoftHSM token with the official's key, and a demo CA"
say "temporary directory: $tmp"
"$PYTHON" "$ROOT/test/pki.py" demo-token "$tmp/pki" >"$tmp/setup.json" ||
	die "could not make the demo token"
get() {
	"$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
		"$tmp/setup.json" "$1"
}
SOFTHSM2_CONF=$(get softhsm2_conf)
CERT_ID=$(get cert_id)
PIN_FILE=$(get pin_file)
CA=$(get ca_cert)
CA_KEY=$(dirname "$CA")/ca.key
[ -r "$CA_KEY" ] || die "the demo CA's key is not at $CA_KEY"
say "token:        $(get token_label) (SoftHSM, tokens in $tmp/pki/softhsm/tokens)"
say "key:          $(get key) generated ON the token: sensitive, never extractable (R3)"
say "certificate:  $(get subject)"
say "issuer:       $(get issuer)"
say "type:         $(get certificate_type) (demo policy OID $(get certificate_policy)) (R5)"
say "key usage:    digitalSignature, nonRepudiation; valid $(get not_before) .. $(get not_after) (R7)"
say "id:           $CERT_ID"
cp "$CA" "$OUT/demo-ca.pem"
cp "$(get cert)" "$OUT/budi-santoso.pem"

step "A policy directory: the registry, the trust anchor and its CRL (R1, R5-R8, R13)"
ME=$(id -un)
POLICY=$tmp/policy
mkdir "$POLICY" "$POLICY/owners.d" "$POLICY/anchors" "$POLICY/crl"
# The session rules (R1) as this machine allows the demo to run unattended. An official signs
# at their own desk: in a local, active login session, which logind vouches for.
# logind is present as parafd sees it: systemd runs (sd_booted(): /run/systemd/system) and
# logind has published its seats (/run/systemd/seats).
session_rules=
if [ ! -d /run/systemd/system ] || [ ! -e /run/systemd/seats ]; then
	session_rules="$session_rules
# This machine has no logind (a container, a CI runner): login sessions cannot be checked.
# A real desk's policy keeps the default, deny (R1).
without_logind = allow"
else
	session=$(sed -n 's|.*/session-\([^/]*\)\.scope$|\1|p' /proc/self/cgroup | head -n 1)
	if [ -z "$session" ]; then
		session_rules="$session_rules
# This demo runs in no login session (a CI job, a service). A real policy keeps the
# default and refuses that for individual and jabatan certificates (R1).
allow_inactive = yes"
	elif command -v loginctl >/dev/null 2>&1; then
		if [ "$(loginctl show-session "$session" -p Remote --value 2>/dev/null)" = yes ]; then
			session_rules="$session_rules
# This demo runs in a remote login session (ssh). A real policy keeps the default and
# refuses remote sessions (R1).
allow_remote = yes"
		fi
		if [ "$(loginctl show-session "$session" -p Active --value 2>/dev/null)" = no ]; then
			session_rules="$session_rules
# This demo runs in a login session that is not the active one. A real policy keeps the
# default and refuses it (R1).
allow_inactive = yes"
		fi
	fi
fi
{
	echo "# The demo's policy: what is not set here keeps parafd's defaults (R1-R8)."
	if [ "$(id -u)" -eq 0 ]; then
		echo "[owner]"
		echo "# Only because this demo runs as root (make demo on CI machines). A real policy"
		echo "# lets root own certificates only for services' system certificates (R1)."
		echo "root_may_own = yes"
	fi
	if [ -n "$session_rules" ]; then
		echo "[session]$session_rules"
	fi
} >"$POLICY/policy.conf"
{
	echo "# The registry entry security staff write when they hand the token over (R1, R5, R17)."
	echo "[owner]"
	echo "certificate = $CERT_ID"
	echo "account = $ME"
	echo "type = individual"
	echo "name = Budi Santoso"
	echo "nip = 197803152005011002"
	echo "position = Kepala Dinas Komunikasi dan Informatika"
	echo "unit = Dinas Komunikasi dan Informatika, Pemerintah Kabupaten Contoh"
	echo "email = budi.santoso@contoh.go.id"
} >"$POLICY/owners.d/budi-santoso.conf"
echo "# <certificate id> <time> <reason> [note]: permanent (R8). None yet." >"$POLICY/revoked.list"
cp "$CA" "$POLICY/anchors/demo-ca.pem"
# A current CRL from the demo CA, as BSrE publishes one for each of its CAs: without a current
# CRL parafd refuses to sign, since revocation could not be checked (R8).
"$PYTHON" -c 'import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
ca = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
key = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), password=None)
now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
crl = (x509.CertificateRevocationListBuilder()
    .issuer_name(ca.subject)
    .last_update(now - datetime.timedelta(minutes=5))
    .next_update(now + datetime.timedelta(days=7))
    .add_extension(x509.CRLNumber(1), critical=False)
    .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
        critical=False)
    .sign(key, hashes.SHA256()))
open(sys.argv[3], "wb").write(crl.public_bytes(serialization.Encoding.PEM))' \
	"$CA" "$CA_KEY" "$POLICY/crl/demo-ca.crl" || die "could not make the demo CRL"
say "$POLICY/policy.conf:"
sed 's/^/      /' "$POLICY/policy.conf"
say "$POLICY/owners.d/budi-santoso.conf:"
sed 's/^/      /' "$POLICY/owners.d/budi-santoso.conf"
say "$POLICY/anchors/demo-ca.pem: the demo CA"
say "$POLICY/crl/demo-ca.crl: no certificate revoked, $(openssl crl -in "$POLICY/crl/demo-ca.crl" -noout -nextupdate)"

step "The PIN dialog: a scripted pinentry that answers as the official would"
PINENTRY=$tmp/pinentry
PINENTRY_LOG=$tmp/pinentry.log
(
	umask 077
	# The PIN goes from the token's PIN file to the pinentry's configuration through stdin.
	"$PYTHON" -c 'import json, sys
json.dump({"pin": sys.stdin.readline().rstrip("\r\n"), "log": sys.argv[2]},
    open(sys.argv[1], "w"))' "$tmp/pinentry.json" "$PINENTRY_LOG" <"$PIN_FILE" ||
		die "could not configure the scripted PIN dialog"
	{
		echo "#!/bin/sh"
		echo "# The demo's PIN dialog (parafd runs it with no arguments and a clean environment)."
		echo "exec '$PYTHON' '$FAKE_PINENTRY' --conf '$tmp/pinentry.json' \"\$@\""
	} >"$PINENTRY"
	chmod 700 "$PINENTRY"
)
say "$PINENTRY runs test/fake-pinentry; a real desk runs /usr/bin/pinentry (GTK, Qt or curses)"

step "Start paraf-auditd: no signature leaves parafd before its record is on disk (R13)"
mkdir -m 700 "$tmp/run" "$tmp/home" "$tmp/xdg-run" "$tmp/audit-run"
AUDIT_SOCK=$tmp/audit-run/audit.sock
AUDIT_DIR=$tmp/audit-log
say "\$ paraf-auditd --socket $AUDIT_SOCK --dir $AUDIT_DIR --foreground &"
"$AUDITD" --socket "$AUDIT_SOCK" --dir "$AUDIT_DIR" --foreground \
	</dev/null >>"$tmp/auditd.log" 2>&1 &
auditd_pid=$!
i=0
until [ -S "$AUDIT_SOCK" ]; do
	kill -0 "$auditd_pid" 2>/dev/null || die "paraf-auditd exited before listening"
	i=$((i + 1))
	[ $i -le 200 ] || die "paraf-auditd did not listen within 20 s"
	sleep 0.1
done
say "paraf-auditd is running (pid $auditd_pid); its log: $AUDIT_DIR"

step "Start parafd on a private socket, with the policy and the PIN dialog"
SOCK=$tmp/run/agent.sock
printf '[agent]\naudit = required\naudit_socket = %s\n' "$AUDIT_SOCK" >"$tmp/paraf.conf"
say "\$ parafd --socket $SOCK --module $MODULE --config $tmp/paraf.conf \\"
say "         --policy $POLICY --pinentry $PINENTRY --foreground &"
env HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/.config" XDG_RUNTIME_DIR="$tmp/xdg-run" \
	SOFTHSM2_CONF="$SOFTHSM2_CONF" \
	"$PARAFD" --socket "$SOCK" --module "$MODULE" --config "$tmp/paraf.conf" \
	--policy "$POLICY" --pinentry "$PINENTRY" --foreground \
	</dev/null >>"$tmp/parafd.log" 2>&1 &
parafd_pid=$!
i=0
until "$PYTHON" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])' "$SOCK" 2>/dev/null; do
	kill -0 "$parafd_pid" 2>/dev/null || {
		wait "$parafd_pid" && rc=0 || rc=$?
		parafd_pid=
		die "parafd exited (status $rc) before accepting connections"
	}
	i=$((i + 1))
	[ $i -le 200 ] || die "parafd did not accept connections within 20 s"
	sleep 0.1
done
say "parafd is running (pid $parafd_pid); socket mode $(stat -c %a "$SOCK"), directory mode $(stat -c %a "$tmp/run")"

# paraf names this terminal and this desktop for the PIN dialog, and parafd shows it there only
# if they are the caller's own (R1). The demo's scripted dialog needs no display, so none is
# named; and a terminal of another account (sudo make demo) is left out, or parafd would
# rightly refuse to show the dialog on it.
PARAF_RUN="env -u DISPLAY -u XAUTHORITY -u WAYLAND_DISPLAY"
if (: </dev/tty) 2>/dev/null; then
	term=$(ps -o tty= -p $$ | tr -d ' ')
	if [ -n "$term" ] && [ "$term" != "?" ] && [ -e "/dev/$term" ] &&
		[ "$(stat -c %u "/dev/$term")" != "$(id -u)" ]; then
		say "this terminal (/dev/$term) belongs to another account: paraf runs without it"
		PARAF_RUN="$PARAF_RUN setsid -w"
	fi
fi

step "paraf status"
run $PARAF_RUN "$PARAF" --socket "$SOCK" status || die "paraf status failed"
grep -q "^policy: .*: valid" "$tmp/run.out" || die "parafd finds the demo policy invalid"

step "paraf certs: type (R5), owner (R1), status (R7, R8), days left, allowed usages (R6)"
run $PARAF_RUN "$PARAF" --socket "$SOCK" certs || die "paraf certs failed"
grep -Eq "individual +Budi Santoso +valid " "$tmp/run.out" ||
	die "paraf certs does not show Budi Santoso's individual certificate as valid"

step "Write an official letter"
LETTER=$OUT/surat-undangan-rapat.txt
rm -f "$LETTER" "$LETTER.p7s"
YEAR=$(date +%Y)
cat >"$LETTER" <<EOF
PEMERINTAH KABUPATEN CONTOH
DINAS KOMUNIKASI DAN INFORMATIKA
Jalan Merdeka Nomor 17, Contoh 12345, Telepon (0123) 456789
Laman: diskominfo.contoh.go.id, Pos-el: diskominfo@contoh.go.id

Nomor    : 005/123/DISKOMINFO/$YEAR
Sifat    : Penting
Lampiran : -
Perihal  : Undangan Rapat Koordinasi Penerapan Tanda Tangan Elektronik

Yth. Kepala Perangkat Daerah
di Lingkungan Pemerintah Kabupaten Contoh

Dalam rangka pelaksanaan Peraturan Bupati tentang Penggunaan Sertifikat
Elektronik di Lingkungan Pemerintah Kabupaten Contoh, dengan hormat kami
mengundang Saudara untuk hadir pada rapat koordinasi yang akan dilaksanakan
pada:

    hari, tanggal : Senin, 7 Desember $YEAR
    pukul         : 09.00 WIB s.d. selesai
    tempat        : Ruang Rapat Diskominfo, Lantai 2
    acara         : Penerapan tanda tangan elektronik pada naskah dinas

Mengingat pentingnya acara tersebut, kehadiran Saudara sangat kami harapkan.
Demikian undangan ini kami sampaikan. Atas perhatian dan kehadiran Saudara,
kami ucapkan terima kasih.

Kepala Dinas Komunikasi dan Informatika
Kabupaten Contoh,

Ditandatangani secara elektronik oleh:
Budi Santoso
NIP 19780315 200501 1 002
EOF
say "$LETTER ($(wc -c <"$LETTER") bytes), sha256 $(sha256sum "$LETTER" | cut -d' ' -f1)"

step "paraf sign: the PIN typed in parafd's own dialog (R2), for exactly this letter (R1)"
say "no PIN is given to paraf; the key never leaves the token (R3)"
run $PARAF_RUN "$PARAF" --socket "$SOCK" sign --cert "$CERT_ID" --usage signature \
	--digest sha256 --format cms "$LETTER" || die "paraf sign failed"
[ -s "$LETTER.p7s" ] || die "paraf sign did not write $LETTER.p7s"
say "wrote $LETTER.p7s ($(wc -c <"$LETTER.p7s") bytes)"
[ -s "$PINENTRY_LOG" ] || die "parafd showed no PIN dialog"
printf '\n    What the official saw in the PIN dialog:\n\n'
"$PYTHON" -c 'import json, sys
dialogs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
d = [x for x in dialogs if x.get("event") == "dialog"][-1]
def show(text=""):
    for line in text.split("\n"):
        print("      | " + line)
show(d["title"] or "")
show("-" * 66)
if d.get("getpin_error"):
    show("! " + d["getpin_error"])
show(d["description"] or "")
show()
show("%s ______      [ %s ]  [ %s ]" % (d["prompt"] or "", d["ok"] or "OK", d["cancel"] or "Cancel"))
tty = d["options"].get("ttyname")
print()
print("      " + ("(on the terminal %s, which paraf named and parafd found to be the " % tty +
    "caller\x27s own: R1)" if tty else "(no terminal named: the demo runs without one)"))
if "SETKEYINFO" not in d["commands"] and "allow-external-password-cache" not in d["options"]:
    print("      (and no offer to remember the PIN: it is asked for every signing act, R1)")' \
	"$PINENTRY_LOG" || die "cannot read what the PIN dialog showed"

step "What is refused, with its reason and rule"
echo "server hello" >"$tmp/server-hello.txt"
say "by the policy: the individual certificate for a TLS server (R6: usages by certificate type)"
if run $PARAF_RUN "$PARAF" --socket "$SOCK" sign --cert "$CERT_ID" --usage tls-server \
	"$tmp/server-hello.txt"; then
	die "parafd signed for tls-server with an individual certificate"
fi
[ "$run_rc" -eq 4 ] || die "paraf sign exited $run_rc, not 4 (a refusal by the agent)"
grep -q "sign refused by policy: .*(reason usage-not-allowed, rule R6)" "$tmp/run.out" ||
	die "the refusal does not give its reason and rule"
say "by paraf, before anything is sent: the PIN of an individual certificate in a file (R2)"
if run $PARAF_RUN "$PARAF" --socket "$SOCK" sign --cert "$CERT_ID" --pin-file "$PIN_FILE" \
	"$tmp/server-hello.txt"; then
	die "paraf sent the PIN of an individual certificate"
fi
grep -q "in the trusted PIN dialog, not on the command line (R2)" "$tmp/run.out" ||
	die "paraf did not refuse --pin-file for an individual certificate"
[ ! -e "$tmp/server-hello.txt.p7s" ] || die "a refused request wrote a signature"

step "paraf verify (R11: signer, time, integrity, trust, validity, issuer, conclusion)"
run $PARAF_RUN "$PARAF" --socket "$SOCK" verify --ca "$CA" --crl "$POLICY/crl/demo-ca.crl" "$LETTER.p7s" "$LETTER" ||
	die "paraf verify did not conclude VALID"

step "Independent check with OpenSSL"
run openssl cms -verify -binary -inform DER -in "$LETTER.p7s" -content "$LETTER" \
	-CAfile "$CA" -purpose any -out /dev/null || die "openssl cms -verify failed"

step "An altered copy of the letter must not verify"
sed 's/pukul         : 09.00/pukul         : 13.00/' "$LETTER" >"$tmp/altered.txt"
cmp -s "$LETTER" "$tmp/altered.txt" && die "could not alter the letter"
say "changed the meeting time from 09.00 to 13.00"
if "$PARAF" --socket "$SOCK" verify --ca "$CA" --crl "$POLICY/crl/demo-ca.crl" "$LETTER.p7s" "$tmp/altered.txt" \
	>"$tmp/altered.out" 2>&1; then
	sed 's/^/      /' "$tmp/altered.out"
	die "paraf verify accepted an altered letter"
fi
sed 's/^/      /' "$tmp/altered.out"
say "paraf verify refused it (exit non-zero), as it must"
if openssl cms -verify -binary -inform DER -in "$LETTER.p7s" -content "$tmp/altered.txt" \
	-CAfile "$CA" -purpose any -out /dev/null 2>/dev/null; then
	die "openssl accepted an altered letter"
fi
say "openssl cms -verify refused it too"

step "The letter as a PDF, signed visibly: QR code, signature block and footer (R10)"
PDF=$OUT/surat-undangan-rapat.pdf
SIGNED_PDF=$OUT/surat-undangan-rapat-ttd.pdf
PNG=$OUT/surat-undangan-rapat-ttd-halaman-1.png
rm -f "$PDF" "$SIGNED_PDF" "$PNG"
"$PYTHON" "$ROOT/test/pdfgen.py" letter "$PDF" --name "Budi Santoso" \
	--nip "19780315 200501 1 002" --position "Kepala Dinas Komunikasi dan Informatika" \
	--number "005/123/DISKOMINFO/$YEAR" || die "could not make the PDF letter"
say "$PDF ($(wc -c <"$PDF") bytes): kop surat, Nomor, Perihal, body, the official's name"
# The organisation's appearance template: where the QR code leads (the archive's verification
# page; {id} is the SHA-256 of the unsigned PDF) and the issuer named in the block and footer.
{
	echo "# The demo's appearance template (doc/pdf.md). The URL is an example, not a real archive."
	echo "[appearance]"
	echo "verify_url = https://arsip.contoh.go.id/verifikasi/{id}"
	echo "issuer_name = BSrE"
} >"$tmp/appearance.conf"
say "$tmp/appearance.conf:"
sed 's/^/      /' "$tmp/appearance.conf"
say "one PIN dialog, as for the .p7s; the PDF's bytes stay as they were and the signature is"
say "appended to them as an incremental update (PAdES, R16)"
run $PARAF_RUN "$PARAF" --socket "$SOCK" sign-pdf "$PDF" -o "$SIGNED_PDF" --cert "$CERT_ID" \
	--visible --appearance "$tmp/appearance.conf" \
	--reason "Undangan rapat koordinasi" --location "Kabupaten Contoh" ||
	die "paraf sign-pdf failed"
[ -s "$SIGNED_PDF" ] || die "paraf sign-pdf did not write $SIGNED_PDF"
cmp -s -n "$(wc -c <"$PDF")" "$PDF" "$SIGNED_PDF" ||
	die "the signed PDF does not begin with the unsigned one (not an incremental update)"
say "wrote $SIGNED_PDF ($(wc -c <"$SIGNED_PDF") bytes)"

step "paraf verify of the PDF (R11: signer, NIP, time, integrity and coverage, trust, conclusion)"
cp "$POLICY/crl/demo-ca.crl" "$OUT/demo-ca.crl"
run $PARAF_RUN "$PARAF" verify --ca "$CA" --crl "$OUT/demo-ca.crl" "$SIGNED_PDF" ||
	die "paraf verify did not conclude VALID for the signed PDF"
if command -v pdfsig >/dev/null 2>&1 && command -v certutil >/dev/null 2>&1; then
	say "and independently, with poppler's pdfsig trusting the demo CA (an NSS database):"
	mkdir "$tmp/nssdb"
	certutil -N -d "sql:$tmp/nssdb" --empty-password >/dev/null 2>&1 &&
		certutil -A -d "sql:$tmp/nssdb" -n demo-ca -t C,C,C -i "$CA" >/dev/null 2>&1 ||
		die "could not make an NSS database for pdfsig"
	run pdfsig -nssdir "sql:$tmp/nssdb" "$SIGNED_PDF" || true
	grep -q "Signature is Valid" "$tmp/run.out" || die "pdfsig does not find the signature valid"
	grep -q "Certificate is Trusted" "$tmp/run.out" || die "pdfsig does not trust the certificate"
	grep -q "Total document signed" "$tmp/run.out" || die "pdfsig: not the whole document signed"
fi
pdftoppm -png -r 100 -f 1 -l 1 -singlefile "$SIGNED_PDF" "${PNG%.png}" ||
	die "pdftoppm could not render the signed PDF"
say "its first page, rendered: $PNG"
if command -v zbarimg >/dev/null 2>&1; then
	say "its QR code (zbarimg) leads to: $(zbarimg --raw -q --nodbus "$PNG" 2>/dev/null | head -n 1)"
fi

step "The audit log: one record per decision, hash-chained (R13)"
run "$PARAF" audit show --dir "$AUDIT_DIR" || die "paraf audit show failed"
run "$PARAF" audit verify "$AUDIT_DIR" || die "the audit log does not verify"

step "Stop parafd"
kill -TERM "$parafd_pid"
if wait "$parafd_pid"; then rc=0; else rc=$?; fi
parafd_pid=
say "parafd exited with status $rc"
case $rc in
0 | 143) ;;
*) die "parafd did not exit cleanly on SIGTERM (status $rc)" ;;
esac

printf '\nThe signed letter is kept for you to look at:\n'
printf '  %s\n  %s.p7s\n  %s (demo CA)\n' "$LETTER" "$LETTER" "$OUT/demo-ca.pem"
printf 'The PDF letter, signed visibly, and a picture of its first page:\n'
printf '  %s\n  %s\n' "$SIGNED_PDF" "$PNG"
printf 'Check it yourself with:\n'
printf '  paraf verify --ca %s --crl %s %s.p7s %s\n' "$OUT/demo-ca.pem" "$OUT/demo-ca.crl" "$LETTER" "$LETTER"
printf '  openssl cms -verify -binary -inform DER -in %s.p7s -content %s -CAfile %s -purpose any -out /dev/null\n' \
	"$LETTER" "$LETTER" "$OUT/demo-ca.pem"
printf '  openssl cms -cmsout -print -inform DER -in %s.p7s\n' "$LETTER"
printf '  paraf verify --ca %s --crl %s %s\n' "$OUT/demo-ca.pem" "$OUT/demo-ca.crl" "$SIGNED_PDF"
printf '  pdfsig %s   (after adding the demo CA to an NSS database)\n' "$SIGNED_PDF"
