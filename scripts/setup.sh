#!/usr/bin/env bash
# Makes a fresh Debian bookworm ready to build, test and run qmpx: installs
# the Debian packages that are missing (as root), checks Node.js >= 20,
# installs the npm dependencies when package-lock.json changed, and builds.
# Nothing is downloaded from outside Debian's archive and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real peers and third-party clients (docs/design.md, Testing).
readonly DEBIAN_PACKAGES=(
  qemu-system-x86                        # qemu-system-x86_64: the monitor qmpx serves
  qemu-guest-agent                       # qemu-ga
  socat                                  # text sessions against the proxy
  tmux                                   # interactive CLI (qmpx shell) specs
  iproute2                               # ss: a stopped QEMU's socket queue, in the shutdown specs
  strace                                 # the system calls that bind a private socket, in the listen specs
  libvirt-clients                        # virsh, against the libvirt endpoint
  python3-libvirt                        # libvirt-python, against the libvirt endpoint
  golang-go                              # builds the go-qemu interop client
  golang-github-digitalocean-go-qemu-dev # go-qemu's qmp package
  nats-server                            # the broker of the fleet bridge (serve --nats)
)

fail() {
  echo "setup: $*" >&2
  exit 1
}

is_installed() {
  dpkg -s "$1" 2>/dev/null | grep -qx 'Status: install ok installed'
}

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  is_installed "$package" || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  [[ $(id -u) -eq 0 ]] || fail "must run as root to install: ${missing[*]}"
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 is still missing after installing qemu-system-x86"
command -v node >/dev/null || fail "node is missing: qmpx needs Node.js >= 20 (bookworm's own nodejs is 18)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  fail "Node.js $(node --version) is too old: qmpx needs >= 20"

# Go must never fetch modules: the interop client builds from Debian's packaged sources.
export GOPROXY=off GOSUMDB=off

stamp=node_modules/.qmpx-lock-sha256
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$lock_sum" ]]; then
  npm ci --no-audit --no-fund >&2
  echo "$lock_sum" >"$stamp"
fi
npm run --silent build >&2
