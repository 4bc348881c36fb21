#!/bin/sh
# Installs the Debian 12 packages paraf needs to build, test and run its demo, and only those
# that are missing. Idempotent: a second run installs nothing and touches no package lists.
set -eu

PACKAGES="
meson ninja-build pkg-config gcc libc6-dev
libssl-dev libp11-kit-dev libsystemd-dev libjson-c-dev libcmocka-dev
openssl p11-kit p11-kit-modules softhsm2 opensc opensc-pkcs11
python3 python3-pytest python3-pykcs11 python3-cryptography
procps util-linux systemd pinentry-tty pinentry-curses tmux
libqpdf-dev qpdf libqrencode-dev libcurl4-openssl-dev
poppler-utils libnss3-tools zbar-tools
chromium
libusb-1.0-0-dev pcscd vsmartcard-vpcd libpcsclite-dev
libccid usb.ids
clang libclang-rt-14-dev valgrind gdb openssh-client
"

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "install-deps: missing packages:$missing" >&2
		echo "install-deps: run 'make deps' as root, or install them with apt-get" >&2
		exit 1
	fi
else
	SUDO=
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Lists may be absent or stale on a fresh machine; try the install first, update on failure.
if ! $SUDO apt-get install -y --no-install-recommends $missing; then
	$SUDO apt-get update
	$SUDO apt-get install -y --no-install-recommends $missing
fi
