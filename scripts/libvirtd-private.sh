#!/usr/bin/env bash
# A private libvirtd (libvirt 9.0, Debian's libvirt-daemon-system) for tests and
# experiments, with its own configuration and state under DIR, the host's
# /etc/libvirt and running daemon untouched:
#
#   scripts/libvirtd-private.sh DIR        # runs in the foreground until killed
#   virsh -c "qemu:///system?socket=DIR/run/libvirt-sock" ...
#
# It runs in a mount namespace of its own (unshare -m) where DIR/etc,
# DIR/run, DIR/lib, DIR/cache and DIR/log are bind-mounted over /etc/libvirt,
# /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt; the
# mounts vanish with the daemon. Its qemu.conf is the one a root container
# needs (user/group root, no security driver, no cgroups, no per-domain mount
# namespace, QEMU's stdio to a file instead of virtlogd). Needs root.
set -euo pipefail
dir=${1:?usage: libvirtd-private.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
[ "$(id -u)" = 0 ] || { echo "libvirtd-private: needs root (a private mount namespace)" >&2; exit 2; }
command -v libvirtd >/dev/null || [ -x /usr/sbin/libvirtd ] || { echo "libvirtd-private: libvirtd not installed (Debian libvirt-daemon-system)" >&2; exit 2; }
mkdir -p "$dir/etc" "$dir/run" "$dir/lib" "$dir/cache" "$dir/log"
chmod 700 "$dir"
if [ ! -e "$dir/etc/qemu.conf" ]; then
  cp -a /etc/libvirt/. "$dir/etc/"
  # No default network: it would need dnsmasq and iptables, and no test needs it.
  rm -f "$dir/etc/qemu/networks/autostart/"*
  cat > "$dir/etc/qemu.conf" <<'EOF'
# memfabric's private test daemon (scripts/libvirtd-private.sh): a root container.
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
namespaces = [ ]
EOF
  cat > "$dir/etc/libvirtd.conf" <<'EOF'
# Only root reaches the socket (its directory is private); no authentication on it.
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
EOF
fi
mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
exec unshare -m --propagation private -- /bin/sh -ec '
  mount --bind "$1/etc" /etc/libvirt
  mount --bind "$1/run" /run/libvirt
  mount --bind "$1/lib" /var/lib/libvirt
  mount --bind "$1/cache" /var/cache/libvirt
  mount --bind "$1/log" /var/log/libvirt
  exec libvirtd -p "$1/libvirtd.pid"
' libvirtd-private "$dir"
