#!/usr/bin/env bash
# Builds libproxy if needed, makes the SONAME symlink, then runs go vet and go test -race for the
# Go binding (and builds the Go examples).
# Usage: bindings/go/run-tests.sh [go test flags...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lib="$root/target/release"
if [ ! -f "$lib/libproxy.so" ] || [ -n "$(find "$root/src" "$root/Cargo.toml" "$root/build.rs" -newer "$lib/libproxy.so" -print -quit 2>/dev/null)" ]; then
  echo "== cargo build --release"
  (cd "$root" && cargo build --release)
fi
# The library's SONAME is libproxy-rt.so.0 (Debian's unrelated libproxy owns libproxy.so.1);
# the dynamic loader looks for that name next to the -rpath.
ln -sf libproxy.so "$lib/libproxy-rt.so.0"
command -v go >/dev/null || { echo "go not found (need Go >= 1.22)" >&2; exit 1; }
cd "$here"
echo "== go vet (bindings/go)"
go vet ./...
echo "== go test -race (bindings/go)"
go test -race -count=1 "$@" ./...
echo "== go test -tags debug (GC inside every handle access)"
go test -tags debug -count=1 -run 'TestUseAfterClose|TestEveryPhase|TestRespond' ./...
if [ -d "$root/examples/go" ]; then
  echo "== go vet + build (examples/go)"
  (cd "$root/examples/go" && go vet ./... && go build -o /dev/null ./...)
fi
echo "== Go binding tests passed"
