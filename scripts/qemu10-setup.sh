#!/usr/bin/env bash
# Makes QEMU 10.0 (Debian bookworm-backports) available beside the system's
# QEMU 7.2, as a second QEMU the tests and users can name in MEMFABRIC_QEMU.
#
# Nothing of the system is replaced: the packages qemu-system-x86,
# qemu-system-common, qemu-system-data and seabios of bookworm-backports are
# fetched with a private apt configuration (its own source list, lists and
# cache under the target directory) and unpacked there with dpkg-deb -x. The
# Debian binary looks for its firmware in /usr/share/seabios (SeaBIOS 1.16.2 on
# bookworm), so bin/qemu-system-x86_64 is a small wrapper that puts the
# unpacked SeaBIOS 1.16.3 and QEMU 10.0 data first (-L), and its own modules
# (QEMU_MODULE_DIR), as an installed bookworm-backports QEMU would find them.
#
# Idempotent; a marker file is written only when the install is complete.
#   MEMFABRIC_QEMU10_DIR  overrides the directory
#                         (default ${XDG_CACHE_HOME:-~/.cache}/memfabric/qemu-10.0)
# Prints the wrapper's path on its last line.
set -euo pipefail

SUITE=bookworm-backports
VERSION_PREFIX='1:10.0.'
DIR="${MEMFABRIC_QEMU10_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/memfabric/qemu-10.0}"
MARKER="$DIR/.memfabric-complete"
BIN="$DIR/bin/qemu-system-x86_64"
say() { echo "memfabric qemu 10.0 setup: $*" >&2; }

if [ -f "$MARKER" ] && [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

rm -rf "$DIR.partial"
mkdir -p "$DIR.partial"/{apt/lists/partial,apt/cache/archives/partial,debs,root,bin}
P="$DIR.partial"
# The mirror the system's own sources use.
mirror=$(grep -hE '^[[:space:]]*(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
  | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -1 | tr -d ' ' || true)
mirror=${mirror:-http://deb.debian.org/debian}
echo "deb ${mirror%/} $SUITE main" > "$P/apt/sources.list"
APT=(-o "Dir::Etc::SourceList=$P/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o "Dir::State::Lists=$P/apt/lists" -o "Dir::Cache=$P/apt/cache" -o Debug::NoLocking=1
     -o APT::Sandbox::User=root)
say "reading $SUITE's package list"
apt-get "${APT[@]}" update -qq
# The module packages too: the binary searches the system QEMU's module directory for any
# module missing from its own, and aborts on a module of another build.
pkgs=(qemu-system-x86 qemu-system-common qemu-system-data seabios qemu-system-modules-opengl qemu-system-modules-spice qemu-system-gui)
version=$(apt-cache "${APT[@]}" policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
case "$version" in
  "$VERSION_PREFIX"*) ;;
  *) say "no QEMU 10.0 in $SUITE (candidate: ${version:-none})"; exit 1 ;;
esac
say "fetching ${pkgs[*]} ($SUITE, qemu $version)"
(cd "$P/debs" && apt-get "${APT[@]}" download -qq "${pkgs[@]/%//$SUITE}")
for f in "$P"/debs/*.deb; do dpkg-deb -x "$f" "$P/root"; done

# Shared libraries the 10.0 binary needs that the system lacks (the 7.2 package
# brings nearly all of them): installed from the system's own sources.
missing=$(ldd "$P/root/usr/bin/qemu-system-x86_64" | awk '/not found/ {print $1}')
if [ -n "$missing" ]; then
  libpkgs=()
  for lib in $missing; do
    pkg=$(apt-cache search --names-only "^$(echo "$lib" | sed -E 's/\.so\.?([0-9]+).*/\1/; s/_/-/g' | tr 'A-Z' 'a-z')" 2>/dev/null | awk '{print $1}' | head -1)
    [ -n "$pkg" ] && libpkgs+=("$pkg")
  done
  say "installing libraries the binary needs: ${libpkgs[*]:-?} (for $missing)"
  [ ${#libpkgs[@]} -gt 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${libpkgs[@]}" >/dev/null
  if ldd "$P/root/usr/bin/qemu-system-x86_64" | grep -q 'not found'; then
    say "still missing: $(ldd "$P/root/usr/bin/qemu-system-x86_64" | grep 'not found')"; exit 1
  fi
fi

cat > "$P/bin/qemu-system-x86_64" <<'EOF'
#!/bin/sh
# QEMU 10.0 from Debian bookworm-backports, unpacked by memfabric's
# scripts/qemu10-setup.sh: its own SeaBIOS 1.16.3 and data files come first.
here=$(dirname "$(readlink -f "$0")")/..
# Its own modules, not the system QEMU's (which it refuses: "Only modules from the same build").
QEMU_MODULE_DIR="$here/root/usr/lib/x86_64-linux-gnu/qemu"
export QEMU_MODULE_DIR
exec "$here/root/usr/bin/qemu-system-x86_64" -L "$here/root/usr/share/seabios" -L "$here/root/usr/share/qemu" "$@"
EOF
chmod 755 "$P/bin/qemu-system-x86_64"
"$P/bin/qemu-system-x86_64" --version | head -1 >&2
rm -rf "$P/apt" "$P/debs"
echo "$version" > "$P/.memfabric-complete"
rm -rf "$DIR"
mv "$P" "$DIR"
echo "$BIN"
