#!/usr/bin/env bash
# RSS per idle HTTP/1.1 keep-alive connection of libproxy alone: run.sh's `idle` scenario without the
# other systems or any load, so it can be re-run after each change on a shared machine.
#
#   bench/idle.sh            build (as run.sh does), then measure with IDLE_N connections
#   NO_BUILD=1 bench/idle.sh measure the binary already built
#
# Prints "held=N rss_before=KB rss_after=KB kb_per_conn=X". Listens on 127.0.0.1:28101 (proxy) and
# 28102 (nginx upstream); every process started here is stopped by its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROOT=$PWD
BIN=target/release/bench/bench_proxy
IDLE_N=${IDLE_N:-9000}
LPX=28101; UP=28102

if [ "${NO_BUILD:-0}" != 1 ]; then
  cargo build --release >&2 && make -C examples/c >/dev/null
  ln -sf libproxy.so target/release/libproxy-rt.so.0 && mkdir -p target/release/bench
  cc -std=c99 -pedantic -Wall -Wextra -Werror -O2 -g -Iinclude bench/c/bench_proxy.c -o $BIN \
    -Ltarget/release -lproxy -lpthread -Wl,-rpath,"$ROOT/target/release"
fi

DIR=$(mktemp -d /tmp/libproxy-idle.XXXXXX); mkdir -p "$DIR/tmp"
NG=""; PX=""; IP=""
cleanup() {
  set +e
  for p in $IP $PX $NG; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kb() { awk '/^VmRSS/{print $2}' /proc/$1/status; }

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
nginx_upstream "$DIR" $UP
nginx -c "$DIR/upstream.conf" -p "$DIR" </dev/null >"$DIR/nginx.out" 2>&1 & NG=$!
PROXY_QUIET=1 $BIN 127.0.0.1:$LPX 127.0.0.1:$UP </dev/null >"$DIR/proxy.out" 2>&1 & PX=$!
wait_port $UP && wait_port $LPX
python3 "$ROOT/bench/idle.py" 127.0.0.1 $LPX 300 --warm 2>"$DIR/warm.err"
sleep 0.5
before=$(rss_kb $PX)
python3 "$ROOT/bench/idle.py" 127.0.0.1 $LPX "$IDLE_N" "$DIR/ready" 2>"$DIR/idle.err" & IP=$!
for _ in $(seq 600); do [ -s "$DIR/ready" ] && break; kill -0 $IP 2>/dev/null || break; sleep 0.1; done
sleep 0.5
after=$(rss_kb $PX)
held=$(cat "$DIR/ready" 2>/dev/null || echo 0)
[ "$held" -gt 0 ] || { echo "no connection held:" >&2; head -5 "$DIR/idle.err" >&2; exit 1; }
awk -v b="$before" -v a="$after" -v h="$held" \
  'BEGIN { printf "held=%d rss_before=%d rss_after=%d kb_per_conn=%.2f\n", h, b, a, (a - b) / h }'
