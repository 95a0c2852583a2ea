#!/usr/bin/env bash
# Runs the TLS + HTTP/2 upstream example in its three languages, which do the same thing line by
# line (examples/c/tls_h2_proxy.c, examples/python/tls_h2_proxy.py, examples/go/tls_h2_proxy):
# each listens with TLS and proxies to its embedded demo origin over TLS + HTTP/2 (verified
# against a test CA, SNI localhost). One request per language, over HTTP/2 from curl; the answer
# must say the origin was reached with HTTP/2; SIGTERM must stop the program cleanly.
# Needs: target/release/libproxy.so (+ its SONAME link), curl with HTTP/2, openssl, cc, go, python3.
# Usage: tests/examples_tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/libproxy-tls-examples.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A CA and a certificate for localhost signed by it.
(
  cd "$work"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout key.pem -out req.csr -subj /CN=localhost 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >ext.cnf
  openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 \
    -extfile ext.cnf 2>/dev/null
)

lib=$ROOT/target/release
make -s -C examples/c PROFILE=release "build/release/tls_h2_proxy" >/dev/null
# shellcheck source=tests/ensure-go.sh
. "$ROOT/tests/ensure-go.sh" >/dev/null
(cd examples/go && go build -o "$work/tls_h2_proxy_go" ./tls_h2_proxy)

# run_one NAME CMD...: starts `CMD cert key ca 127.0.0.1:0`, one HTTP/2 request, SIGTERM.
run_one() {
  local name=$1 log=$work/$1.log pid port="" body rc=0 i
  shift
  "$@" "$work/cert.pem" "$work/key.pem" "$work/ca.pem" 127.0.0.1:0 >"$log" 2>&1 &
  pid=$!
  for i in $(seq 600); do
    port=$(sed -n 's/.* on port \([0-9][0-9]*\).*/\1/p' "$log" 2>/dev/null | head -n1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$port" ]; then
    cat "$log" >&2; kill -KILL "$pid" 2>/dev/null || true; return 1
  fi
  body=$(curl -sS --http2 --max-time 20 --cacert "$work/ca.pem" --resolve "localhost:$port:127.0.0.1" \
    -w ' [client %{http_version}]' "https://localhost:$port/tls-h2/$name" || true)
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  if [ "$body" != "hello over HTTP/2 from the demo origin, you asked for /tls-h2/$name
 [client 2]" ] || [ $rc -ne 0 ]; then
    echo "$name: exit $rc, response '$body'" >&2; cat "$log" >&2; return 1
  fi
  echo "   $name: TLS + HTTP/2 both ways"
}

run_one c "$ROOT/examples/c/build/release/tls_h2_proxy"
LIBPROXY_PATH=$lib/libproxy.so PYTHONPATH=$ROOT/bindings/python run_one python python3 examples/python/tls_h2_proxy.py
run_one go "$work/tls_h2_proxy_go"
