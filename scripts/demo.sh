#!/bin/sh
# paraf demo: an official's key generated on a (SoftHSM) token, a demo CA, parafd on a private
# socket, an Indonesian official letter signed with `paraf sign` and verified with
# `paraf verify` and with OpenSSL. Run by `make demo` (PARAF_BUILD, PYTHON set).
#
# Everything it starts is stopped and its temporary directory removed on exit, also on failure
# or interruption. It exits non-zero if any step fails. The signed letter, its .p7s and the
# demo CA certificate stay in demo-out/ (git-ignored) for a person to look at.
#
# The CA, the certificate-policy OID and the PIN are demo material only (see test/pki.py):
# nothing here is BSrE's, and the user's own tokens and configuration are never touched.
set -eu

: "${PARAF_BUILD:?set PARAF_BUILD to the build directory (make demo does)}"
PYTHON=${PYTHON:-/usr/bin/python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/demo-out
MODULE=/usr/lib/softhsm/libsofthsm2.so
PARAFD=$PARAF_BUILD/parafd
PARAF=$PARAF_BUILD/paraf

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
# Shows a command, then runs it with its output indented.
run() {
	printf '    $ %s\n' "$*"
	if "$@" >"$tmp/run.out" 2>&1; then run_rc=0; else run_rc=$?; fi
	sed 's/^/      /' "$tmp/run.out"
	[ "$run_rc" -eq 0 ] || say "(exit status $run_rc)"
	return "$run_rc"
}

tmp=
parafd_pid=

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

cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	stop_parafd
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

for f in "$PARAFD" "$PARAF" "$PARAF_BUILD/paraf-token-helper"; do
	[ -x "$f" ] || die "$f is missing: build first (make build)"
done
[ -r "$MODULE" ] || die "SoftHSM ($MODULE) is not installed (make deps)"
command -v openssl >/dev/null 2>&1 || die "openssl is not installed"

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
say "token:        $(get token_label) (SoftHSM, tokens in $tmp/pki/softhsm/tokens)"
say "key:          $(get key) generated ON the token: sensitive, never extractable (R3)"
say "certificate:  $(get subject)"
say "issuer:       $(get issuer)"
say "type:         $(get certificate_type) (demo policy OID $(get certificate_policy)) (R5)"
say "key usage:    digitalSignature, nonRepudiation; valid $(get not_before) .. $(get not_after) (R7)"
say "id:           $CERT_ID"
cp "$CA" "$OUT/demo-ca.pem"
cp "$(get cert)" "$OUT/budi-santoso.pem"

step "Start parafd on a private socket"
mkdir -m 700 "$tmp/run" "$tmp/home" "$tmp/xdg-run"
SOCK=$tmp/run/agent.sock
printf '[agent]\nallow_pin_parameter = yes\n' >"$tmp/paraf.conf"
say "\$ parafd --socket $SOCK --module $MODULE --config $tmp/paraf.conf --foreground &"
env HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/.config" XDG_RUNTIME_DIR="$tmp/xdg-run" \
	SOFTHSM2_CONF="$SOFTHSM2_CONF" \
	"$PARAFD" --socket "$SOCK" --module "$MODULE" --config "$tmp/paraf.conf" --foreground \
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

step "paraf status"
run "$PARAF" --socket "$SOCK" status || die "paraf status failed"

step "paraf certs"
run "$PARAF" --socket "$SOCK" certs || die "paraf certs failed"

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

step "paraf sign: one PIN for exactly this document (R1); the key never leaves the token (R3)"
run "$PARAF" --socket "$SOCK" sign --cert "$CERT_ID" --usage signature --digest sha256 \
	--format cms --pin-file "$PIN_FILE" "$LETTER" || die "paraf sign failed"
[ -s "$LETTER.p7s" ] || die "paraf sign did not write $LETTER.p7s"
say "wrote $LETTER.p7s ($(wc -c <"$LETTER.p7s") bytes)"

step "paraf verify (R11: signer, time, integrity, trust, validity, issuer, conclusion)"
run "$PARAF" --socket "$SOCK" verify --ca "$CA" "$LETTER.p7s" "$LETTER" ||
	die "paraf verify did not conclude VALID"

step "Independent check with OpenSSL"
run openssl cms -verify -binary -inform DER -in "$LETTER.p7s" -content "$LETTER" \
	-CAfile "$CA" -purpose any -out /dev/null || die "openssl cms -verify failed"

step "An altered copy of the letter must not verify"
sed 's/pukul         : 09.00/pukul         : 13.00/' "$LETTER" >"$tmp/altered.txt"
cmp -s "$LETTER" "$tmp/altered.txt" && die "could not alter the letter"
say "changed the meeting time from 09.00 to 13.00"
if "$PARAF" --socket "$SOCK" verify --ca "$CA" "$LETTER.p7s" "$tmp/altered.txt" \
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
printf 'Check it yourself with:\n'
printf '  paraf verify --ca %s %s.p7s %s\n' "$OUT/demo-ca.pem" "$LETTER" "$LETTER"
printf '  openssl cms -verify -binary -inform DER -in %s.p7s -content %s -CAfile %s -purpose any -out /dev/null\n' \
	"$LETTER" "$LETTER" "$OUT/demo-ca.pem"
printf '  openssl cms -cmsout -print -inform DER -in %s.p7s\n' "$LETTER"
