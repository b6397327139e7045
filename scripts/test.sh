#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, builds, and
# runs every test under node's test runner (real QEMU, real guests, real
# virt-xml-validate: nothing that can run here is mocked).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Two files at a time: the guest boots want both cores.
exec node --test --test-concurrency=2 out/test/
