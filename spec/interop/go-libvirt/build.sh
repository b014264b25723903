#!/bin/sh
# Build spec/interop/go-libvirt (a libvirt RPC client on go-libvirt and go-qemu) offline,
# in GOPATH mode, against Debian's packaged sources in /usr/share/gocode.
#
#   spec/interop/go-libvirt/build.sh [OUTDIR]     # default OUTDIR: <repo>/dist/interop/go-libvirt
#
# Writes OUTDIR/go-libvirt-client and prints its path. Needs the Debian packages
# golang-go and golang-github-digitalocean-go-qemu-dev; downloads nothing.
# (spec/interop/build-go.sh does the building.)
exec sh "$(dirname "$0")/../build-go.sh" go-libvirt go-libvirt-client "$@"
