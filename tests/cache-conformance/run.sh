#!/usr/bin/env bash
# HTTP cache conformance: mnot's cache-tests (the npm package http-cache-tests, the suite behind
# cache-tests.fyi) against libproxy's cache. Its test server is the origin; the Rust example proxy
# (examples/rust/proxy.rs with PROXY_CACHE_MB) sits in front of it; the suite's CLI sends every
# test through the proxy; tally.mjs counts the results as cache-tests.fyi shows them.
#   tests/cache-conformance/run.sh [OUT_DIR]     (needs node >= 18 and npm; not part of run-all.sh)
# Env: CACHE_TESTS_VERSION (default 0.4.5), ORIGIN_PORT (default 18001), PROXY_PORT (18002),
# CACHE_HEURISTIC=1 (heuristic freshness on; off by default, as in the library).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/cache-conformance}
version=${CACHE_TESTS_VERSION:-0.4.5}
origin_port=${ORIGIN_PORT:-18001}
proxy_port=${PROXY_PORT:-18002}
mkdir -p "$out"
command -v node >/dev/null || { echo "node is required (apt-get install nodejs npm)" >&2; exit 1; }
if [ ! -f "$out/node_modules/http-cache-tests/package.json" ]; then
  (cd "$out" && npm install --no-audit --no-fund --silent "http-cache-tests@$version")
fi
pkg="$out/node_modules/http-cache-tests"
(cd "$root" && cargo build --release --example rust_proxy)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
(cd "$pkg" && npm_config_port="$origin_port" npm_config_protocol=http npm_config_pidfile="$out/origin.pid" \
  exec node server/server.mjs) >"$out/origin.log" 2>&1 &
pids+=($!)
if [ "${CACHE_HEURISTIC:-0}" = 1 ]; then export PROXY_CACHE_HEURISTIC=1; fi
PROXY_QUIET=1 PROXY_CACHE_MB=64 "$root/target/release/examples/rust_proxy" \
  "127.0.0.1:$proxy_port" "127.0.0.1:$origin_port" >"$out/proxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  if curl -s -o /dev/null "http://127.0.0.1:$proxy_port/" 2>/dev/null; then break; fi
  sleep 0.1
done
# The CLI reads its settings from npm's config variables (an empty id: every test).
(cd "$pkg" && npm_config_base="http://127.0.0.1:$proxy_port" npm_config_id="" npm_package_config_id="" \
  node --no-warnings cli.mjs) >"$out/results.json"
node "$here/tally.mjs" "$pkg" <"$out/results.json" | tee "$out/summary.txt"
