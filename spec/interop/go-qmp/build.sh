#!/bin/sh
# Build spec/interop/go-qmp (a QMP client on go-qemu's qmp package) offline,
# in GOPATH mode, against Debian's packaged sources in /usr/share/gocode.
#
#   spec/interop/go-qmp/build.sh [OUTDIR]     # default OUTDIR: <repo>/dist/interop/go-qmp
#
# Writes OUTDIR/go-qmp and prints its path. Needs the Debian packages
# golang-go and golang-github-digitalocean-go-qemu-dev; downloads nothing.
# (spec/interop/build-go.sh does the building.)
exec sh "$(dirname "$0")/../build-go.sh" go-qmp go-qmp "$@"
