#!/usr/bin/env bash
# Operations against the example proxies as real processes (tests/ops/driver.rs): zero-downtime
# upgrade under load (20 busy H1 keep-alive, H1 one-shot and h2c connections; 0 failed requests,
# 0 refused connections, upstream count == client count), SIGTERM with 100 requests of 2 s in
# flight, and daemon mode (-d, pid file, SIGTERM; as root also `user: nobody`). Each example is
# upgraded 10 times in a row. Run by tests/run-all.sh after the C examples, the Python venv and Go
# are set up; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
cargo build -q --example ops_driver
DRIVER=$ROOT/target/debug/examples/ops_driver
C_BIN=$ROOT/examples/c/build/debug/minimal_proxy
[ -x "$C_BIN" ] || make -C examples/c PROFILE=debug "build/debug/minimal_proxy"
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
echo "== C example (examples/c/minimal_proxy)"
check upgrade 10 -- "$C_BIN"
check inflight 100 -- "$C_BIN"
check daemon -- "$C_BIN"
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
  check daemon nobody -- "$C_BIN" # user: nobody in the file: switched to after binding
fi
echo "== Python example (examples/python/minimal_proxy.py)"
check upgrade 10 -- "$PY" "$ROOT/examples/python/minimal_proxy.py"
check inflight 100 -- "$PY" "$ROOT/examples/python/minimal_proxy.py"
check daemon -- "$PY" "$ROOT/examples/python/minimal_proxy.py"
echo "== Go example (examples/go/minimal_proxy)"
check upgrade 10 -- "$GO_BIN"
check inflight 100 -- "$GO_BIN"
check daemon -- "$GO_BIN"
echo "ops: $passed passed, 0 failed"
