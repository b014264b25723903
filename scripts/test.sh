#!/usr/bin/env bash
# The whole test suite on a fresh Debian bookworm (as root): setup, then every
# spec against real QEMU, qemu-ga, virsh, libvirt-python, go-qemu and socat.
# Ends with one line `N passed, N failed`; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
node scripts/run-specs.mjs "$@"
