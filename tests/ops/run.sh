#!/usr/bin/env bash
# Operations against the example proxies as real processes (tests/ops/driver.rs): zero-downtime
# upgrade under load (20 busy H1 keep-alive, H1 one-shot and h2c connections; 0 failed requests,
# 0 refused connections, upstream count == client count), SIGTERM with 100 requests of 2 s in
# flight, daemon mode (-d, pid file, SIGTERM; as root also `user: nobody`) and systemd socket
# activation (LISTEN_FDS: tests/ops/systemd_socket.py). Each example is
# upgraded 10 times in a row. Run by tests/run-all.sh after the C examples, the Python venv and Go
# are set up; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
cargo build -q --example ops_driver
DRIVER=$ROOT/target/debug/examples/ops_driver
C_BIN=$ROOT/examples/c/build/debug/minimal_proxy
make -s -C examples/c PROFILE=debug "build/debug/minimal_proxy" # incremental: rebuilt when its source changed
PY=$ROOT/bindings/python/.venv/bin/python
if [ ! -x "$PY" ]; then
  PY=python3
  export PYTHONPATH=$ROOT/bindings/python LIBPROXY_PATH=$ROOT/target/debug/libproxy.so
fi
GO_BIN=$ROOT/target/ops-go-minimal-proxy
(cd examples/go && go build -o "$GO_BIN" ./minimal_proxy)

passed=0
check() {
  echo "-- $*"
  "$DRIVER" "$@"
  passed=$((passed + 1))
}
echo "== -t: the file and its certificates checked, exit 0 or 1 with a message"
T=$(mktemp -d)
printf 'threads: 2\nservices:\n  proxy:\n    listeners:\n      - address: 127.0.0.1:0\n' >"$T/good.yaml"
"$C_BIN" -t -c "$T/good.yaml" | grep -q "good.yaml: configuration OK"
printf 'services:\n  proxy:\n    listeners:\n      - address: 127.0.0.1:0\n        tls: {cert_file: %s/none.pem, key_file: %s/none.pem}\n' "$T" "$T" >"$T/cert.yaml"
printf 'threads: 2\nthread: 3\n' >"$T/unknown.yaml"
for bad in "cert.yaml:services.proxy.listeners.0.tls" "unknown.yaml:unknown.yaml:2:1: thread: unknown key"; do
  file=${bad%%:*} want=${bad#*:}
  if out=$("$C_BIN" -t -c "$T/$file" 2>&1); then echo "-t accepted $file"; exit 1; fi
  [[ "$out" == *"$want"* ]] || { echo "-t on $file said: $out"; exit 1; }
done
rm -rf "$T"
passed=$((passed + 1))
echo "-- ok: -t accepts a good file, refuses a missing certificate and an unknown key"

echo "== C example (examples/c/minimal_proxy)"
check upgrade 10 -- "$C_BIN"
check inflight 100 -- "$C_BIN"
check daemon -- "$C_BIN"
python3 tests/ops/systemd_socket.py "$C_BIN"
passed=$((passed + 1))
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
  check daemon nobody -- "$C_BIN" # user: nobody in the file: switched to after binding
fi
echo "== Python example (examples/python/minimal_proxy.py)"
check upgrade 10 -- "$PY" "$ROOT/examples/python/minimal_proxy.py"
check inflight 100 -- "$PY" "$ROOT/examples/python/minimal_proxy.py"
check daemon -- "$PY" "$ROOT/examples/python/minimal_proxy.py"
python3 tests/ops/systemd_socket.py "$PY" "$ROOT/examples/python/minimal_proxy.py"
passed=$((passed + 1))
echo "== Go example (examples/go/minimal_proxy)"
check upgrade 10 -- "$GO_BIN"
check inflight 100 -- "$GO_BIN"
check daemon -- "$GO_BIN"
python3 tests/ops/systemd_socket.py "$GO_BIN"
passed=$((passed + 1))
echo "ops: $passed passed, 0 failed"
