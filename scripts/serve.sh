#!/usr/bin/env bash
# The main job on a fresh Debian bookworm (as root): setup, then `qmpx serve`
# in front of a guest-less QEMU it launches itself, or in front of the monitor
# given as QMPX_UPSTREAM. Downstream sockets go to QMPX_RUN_DIR (default
# /run/qmpx, or ./run when not root). Extra arguments go to `qmpx serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

if [[ $(id -u) -eq 0 ]]; then default_dir=/run/qmpx; else default_dir=$PWD/run; fi
run_dir=${QMPX_RUN_DIR:-$default_dir}
mkdir -p -m 0700 "$run_dir"

if [[ -n ${QMPX_UPSTREAM:-} ]]; then source_args=(--upstream "$QMPX_UPSTREAM"); else source_args=(--launch); fi
echo "qmpx: QMP on $run_dir/qmp.sock, HMP on $run_dir/hmp.sock; try: ./qmpx exec $run_dir/qmp.sock query-status" >&2
exec node dist/lib/cli/main.js serve "${source_args[@]}" --qmp "$run_dir/qmp.sock" --hmp "$run_dir/hmp.sock" \
  --read-only "$run_dir/qmp-ro.sock" --libvirt "$run_dir/libvirt.sock" "$@"
