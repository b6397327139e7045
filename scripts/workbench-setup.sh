#!/usr/bin/env bash
# Sets up the real VS Code workbench that the end-to-end tests drive
# (test/support/workbench.ts): code-server from the npm registry (its bundled
# VS Code served on loopback) and Debian's chromium (driven by playwright-core).
# VS Code's own desktop build cannot be downloaded here; code-server's can.
#
# Idempotent. code-server goes into a versioned cache directory outside the
# repository; a marker file is written only when the install is complete, so an
# interrupted install is redone from scratch on the next run.
#   MEMFABRIC_CODE_SERVER_DIR  overrides the directory
#                              (default ${XDG_CACHE_HOME:-~/.cache}/memfabric/code-server-4.100.3)
# Prints the directory on its last line.
set -euo pipefail

VERSION=4.100.3   # the last code-server whose engine is Node 20
DIR="${MEMFABRIC_CODE_SERVER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/memfabric/code-server-$VERSION}"
MARKER="$DIR/.memfabric-complete"
say() { echo "memfabric workbench setup: $*" >&2; }

# Debian packages: the browser, Kerberos headers for VS Code's `kerberos`
# addon, ripgrep in place of @vscode/ripgrep's downloaded binary, and the
# toolchain node-gyp needs.
need=()
have() { command -v "$1" >/dev/null 2>&1; }
[ -x /usr/bin/chromium ] || need+=(chromium)  # the harness runs /usr/bin/chromium
have rg || need+=(ripgrep)
dpkg-query -W -f='${Status}' libkrb5-dev 2>/dev/null | grep -q 'ok installed' || need+=(libkrb5-dev)
have g++ || need+=(g++)
have make || need+=(make)
have python3 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  SUDO=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then SUDO=(sudo); else
      say "need root (or sudo) to install: ${need[*]}"; exit 1
    fi
  fi
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$VERSION" ]; then
  echo "$DIR"
  exit 0
fi

start=$(date +%s)
say "installing code-server $VERSION into $DIR (a few minutes: native modules are compiled)"
rm -rf "$DIR"
mkdir -p "$DIR"
cd "$DIR"
log="$DIR/install.log"
: >"$log"
run() { # run a step, its output to the log; on failure show the log's tail
  if ! "$@" >>"$log" 2>&1; then
    say "failed: $* (in $(pwd)); the end of $log:"
    tail -n 40 "$log" >&2
    exit 1
  fi
}
# node-gyp builds against Node's own headers (no download) when they are here.
GYP_ARGS=()
[ -e /usr/include/node/common.gypi ] && GYP_ARGS=(--nodedir=/usr)
NODE_GYP="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
[ -f "$NODE_GYP" ] || { say "npm's node-gyp not found at $NODE_GYP"; exit 1; }
NPM=(npm --no-audit --no-fund --loglevel=error)

echo '{ "name": "memfabric-code-server", "private": true }' >package.json
# code-server's postinstall (refuses as root without unsafe-perm, and lets
# @vscode/ripgrep download a binary) is replaced by the steps below.
run "${NPM[@]}" install --ignore-scripts --omit=dev "code-server@$VERSION"
CS="$DIR/node_modules/code-server"
# argon2 (password hashing, loaded at start) is built from source: its
# prebuilt binary would be downloaded from outside the npm registry.
run "${NPM[@]}" rebuild argon2 --build-from-source

cd "$CS/lib/vscode"
run "${NPM[@]}" install --omit=dev --ignore-scripts
# What code-server's postinstall.sh does besides installing.
ln -sfn node_modules node_modules.asar
ln -sfn code-linux.sh bin/remote-cli/code-server
ln -sfn browser-linux.sh bin/helpers/browser.sh
# VS Code's native addons (Linux ones; @parcel/watcher ships a prebuilt package).
for m in kerberos @vscode/spdlog @vscode/deviceid native-watchdog node-pty; do
  (cd "node_modules/$m" && run node "$NODE_GYP" rebuild "${GYP_ARGS[@]}")
done
# Debian's ripgrep where @vscode/ripgrep's postinstall would put its download.
mkdir -p node_modules/@vscode/ripgrep/bin
ln -sfn "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg

cd "$CS/lib/vscode/extensions"
run "${NPM[@]}" install --omit=dev --ignore-scripts

# The install is usable only if code-server starts and its native modules load.
cd "$DIR"
node "$CS/out/node/entry.js" --version >>"$log" 2>&1 || { say "code-server --version failed; see $log"; exit 1; }
node -e '
  const m = ["kerberos", "@vscode/spdlog", "@vscode/deviceid", "native-watchdog", "node-pty"];
  for (const n of m) require(require.resolve(n, { paths: [process.argv[1]] }));
  require(require.resolve("argon2", { paths: [process.argv[2]] }));
' "$CS/lib/vscode" "$CS" >>"$log" 2>&1 || { say "a native module does not load; see $log"; tail -n 20 "$log" >&2; exit 1; }

echo "$VERSION" >"$MARKER"
say "code-server $VERSION installed in $(( $(date +%s) - start )) s"
echo "$DIR"
