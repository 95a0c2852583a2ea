#!/usr/bin/env bash
# What choosing from an upstream group costs per proxied request: the bench proxy with a fixed peer
# against the same proxy picking from a round-robin group of 3 (one upstream under three names, so
# both share one connection pool and differ only in the pick).
#
#   bench/groups.sh            wall clock: bench/ab.sh (fixed vs group, nginx alongside), 5 s x 3
#   bench/groups.sh callgrind  instructions per request of each (bench/callgrind.sh, deterministic)
#   bench/groups.sh smoke      builds, starts both against an nginx upstream, one request each
#
# Ports: ab.sh's 18781-18785, callgrind.sh's CG_PORT (default 18191) and the next one; smoke
# 18791-18793. Target (issue 13): group throughput >= 0.97x the fixed peer's.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=target/release/bench/bench_proxy
cargo build --release >/dev/null 2>&1
ln -sf libproxy.so target/release/libproxy-rt.so.0; mkdir -p target/release/bench
cc -std=c99 -pedantic -Wall -Wextra -Werror -O2 -g -Iinclude bench/c/bench_proxy.c -o $BIN \
  -Ltarget/release -lproxy -lpthread -Wl,-rpath,"$PWD/target/release"
case "${1:-ab}" in
  ab) exec bench/ab.sh "$BIN" "$BIN --group 3" "${DUR:-5}" "${REPS:-3}" ;;
  callgrind)
    # callgrind.sh's exit trap can leave a non-zero status after a good run: its output decides.
    echo "== fixed peer"; CG_CMD="$BIN" bench/callgrind.sh "${DUR:-4}" | grep '^mode=' || true
    echo "== group of 3"; CG_CMD="$BIN --group 3" bench/callgrind.sh "${DUR:-4}" | grep '^mode=' || true ;;
  smoke)
    DIR=$(mktemp -d); UP=18791
    nginx_upstream "$DIR" $UP
    pids=()
    trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"' EXIT
    nginx -c "$DIR/upstream.conf" -p "$DIR" </dev/null & pids+=($!)
    PROXY_QUIET=1 $BIN 127.0.0.1:18792 127.0.0.1:$UP </dev/null >/dev/null 2>&1 & pids+=($!)
    PROXY_QUIET=1 $BIN --group 3 127.0.0.1:18793 127.0.0.1:$UP </dev/null >/dev/null 2>&1 & pids+=($!)
    wait_port $UP && wait_port 18792 && wait_port 18793
    for p in 18792 18793; do
      body=$(curl -sf http://127.0.0.1:$p/) && [ "$body" = "Hello, world" ] || { echo "port $p: bad answer" >&2; exit 1; }
    done
    echo "smoke ok: fixed peer and group of 3 both answer" ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
