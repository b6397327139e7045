#!/usr/bin/env bash
# Installs what memfabric needs on a fresh Debian machine, then builds it.
#  - Debian packages: QEMU 7.2 (and 10.0 from bookworm-backports, unpacked into
#    the cache by qemu10-setup.sh) (ground truth and runtime), libvirt's schema
#    validator, kmod's depmod (guest image), and helpers the tests use.
#  - npm packages from package-lock.json, then the TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have qemu-system-x86_64 || need+=(qemu-system-x86)
have qemu-system-aarch64 || need+=(qemu-system-arm)
have virt-xml-validate || need+=(libvirt-clients)
have xmllint || need+=(libxml2-utils)
have depmod || need+=(kmod)     # depmod and modinfo (guest images: 6.12's modules are .ko.xz)
have mke2fs || need+=(e2fsprogs)   # the tests' "user's own disk image" (test/support/user-disk.ts)
have dpkg-deb || need+=(dpkg)
have nvim || need+=(neovim)
# libvirt's QEMU driver, embedded in virsh by the tests, and libvirtd itself: the
# tests start a private one (scripts/libvirtd-private.sh: own qemu.conf for a root
# container, own state, stopped after the tests); the host's is never touched.
[ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] || need+=(libvirt-daemon-driver-qemu)
[ -x /usr/sbin/libvirtd ] || need+=(libvirt-daemon-system)
# Other hosts, tested over ssh on the loopback address (a private sshd the tests start and stop):
# the server, and the netcat libvirt's ssh transport runs on the far side.
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
have nc || need+=(netcat-openbsd)
if [ ${#need[@]} -gt 0 ]; then
  echo "memfabric setup: installing Debian packages: ${need[*]}"
  SUDO=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then SUDO=(sudo); else
      echo "memfabric setup: need root (or sudo) to install: ${need[*]}" >&2; exit 1
    fi
  fi
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "memfabric setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
else
  npx tsc -p .
fi
# QEMU 10.0 (bookworm-backports) with its SeaBIOS 1.16.3 beside the system's 7.2,
# unpacked into the cache (nothing of the system replaced): the second QEMU the
# tests judge every rule and layout against.
bash scripts/qemu10-setup.sh >/dev/null
# The real VS Code workbench (code-server + Debian chromium) for the end-to-end tests.
bash scripts/workbench-setup.sh >/dev/null
