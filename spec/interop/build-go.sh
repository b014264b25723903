#!/bin/sh
# Builds one Go program of spec/interop offline, in GOPATH mode, against
# Debian's packaged sources in /usr/share/gocode (go-qemu and go-libvirt).
#
#   spec/interop/build-go.sh PROGRAM BINARY [OUTDIR]   # default OUTDIR: <repo>/dist/interop/PROGRAM
#
# Compiles spec/interop/PROGRAM/main.go into OUTDIR/BINARY and prints its
# path. Needs the Debian packages golang-go and
# golang-github-digitalocean-go-qemu-dev; downloads nothing.
set -eu

[ $# -ge 2 ] || { echo "usage: build-go.sh PROGRAM BINARY [OUTDIR]" >&2; exit 2; }
program=$1
binary=$2
here=$(cd "$(dirname "$0")/$program" && pwd)
repo=$(cd "$here/../../.." && pwd)
outdir=${3:-$repo/dist/interop/$program}
gocode=/usr/share/gocode

die() { echo "$program build: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 ||
  die "'go' not found on PATH (install: apt-get install --no-install-recommends golang-go)"
for pkg in github.com/digitalocean/go-qemu/qmp github.com/digitalocean/go-libvirt golang.org/x/sys/unix; do
  [ -d "$gocode/src/$pkg" ] ||
    die "$gocode/src/$pkg missing (install: apt-get install --no-install-recommends golang-github-digitalocean-go-qemu-dev)"
done

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

# GOPATH mode, no network, no inherited module flags (-mod=... is an error here).
GO111MODULE=off
GOPATH=$gocode
GOFLAGS=
GOPROXY=off
GOWORK=off
CGO_ENABLED=0
export GO111MODULE GOPATH GOFLAGS GOPROXY GOWORK CGO_ENABLED
if [ -z "${GOCACHE:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ] && [ -z "${HOME:-}" ]; then
  GOCACHE=$outdir/.gocache
  export GOCACHE
fi

cd "$here"
go build -trimpath -o "$outdir/$binary" ./main.go ||
  die "go build failed ($(go version 2>&1))"
echo "$outdir/$binary"
