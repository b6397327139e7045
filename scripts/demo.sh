#!/usr/bin/env bash
# The main job on the built-in example cluster (installs and builds first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node scripts/demo.mjs
