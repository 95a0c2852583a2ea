#!/usr/bin/env bash
# Throughput with the built-in metrics, request ids, error log and a combined access log on vs
# off, in the same run (issue 15's target: on >= 0.97x off). The proxy is bench/c/bench_proxy.c
# with one worker; wrk -t1 -c10 drives it against a local nginx, alternating off/on ROUNDS times
# so that machine drift hits both alike. The access log must have one line per request sent.
# Usage: bench/metrics.sh [seconds per run] (default 10)   Env: ROUNDS (3), CG_PORT (18191),
#   ON=all (default: metrics, request ids, error log and the access log) or ON=metrics (the
#   built-in metrics alone, what the issue's >= 0.97x is about)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DUR=${1:-10}
ROUNDS=${ROUNDS:-3}
ON=${ON:-all}
ensure_tools wrk nginx
UP=${CG_PORT:-18191}; PX=$((UP + 1))
cargo build --release >/dev/null 2>&1
ln -sf libproxy.so target/release/libproxy-rt.so.0; mkdir -p target/release/bench
cc -std=c99 -pedantic -Wall -Wextra -Werror -O2 -g -Iinclude bench/c/bench_proxy.c -o target/release/bench/bench_proxy \
  -Ltarget/release -lproxy -lpthread -Wl,-rpath,"$PWD/target/release"
DIR=$(mktemp -d); mkdir -p "$DIR/tmp"
nginx_upstream "$DIR" $UP
nginx -c "$DIR/upstream.conf" -p "$DIR" & NG=$!
PX_PID=
trap 'kill $PX_PID $NG 2>/dev/null || true; rm -rf "$DIR"' EXIT

# One run: starts the proxy (with $1 = "on" the observability switches), warms up, measures.
run() {
  local log="$DIR/access.log" n rps lines
  rm -f "$log"
  if [ "$1" = on ] && [ "$ON" = metrics ]; then
    BENCH_OBSERVE=1 PROXY_QUIET=1 target/release/bench/bench_proxy 127.0.0.1:$PX 127.0.0.1:$UP >/dev/null 2>&1 & PX_PID=$!
  elif [ "$1" = on ]; then
    BENCH_OBSERVE=7 BENCH_ACCESS_LOG=$log PROXY_QUIET=1 target/release/bench/bench_proxy 127.0.0.1:$PX 127.0.0.1:$UP >/dev/null 2>&1 & PX_PID=$!
  else
    PROXY_QUIET=1 target/release/bench/bench_proxy 127.0.0.1:$PX 127.0.0.1:$UP >/dev/null 2>&1 & PX_PID=$!
  fi
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PX/" && break; sleep 0.05; done
  wrk -t1 -c10 -d1s "http://127.0.0.1:$PX/" >/dev/null
  # The writer flushes as soon as it is idle; then only the measured requests' lines remain.
  sleep 0.5; [ -f "$log" ] && : >"$log"
  out=$(wrk -t1 -c10 -d"${DUR}s" "http://127.0.0.1:$PX/")
  kill -TERM $PX_PID; wait $PX_PID || true; PX_PID=
  n=$(awk '/requests in/{print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  if [ "$1" = on ] && [ "$ON" = all ]; then
    # wrk counts completed responses; up to its 10 requests in flight at the cut may add lines.
    lines=$(wc -l <"$log")
    echo "on  round=$2 requests=$n rps=$rps access_log_lines=$lines"
  elif [ "$1" = on ]; then
    echo "on  round=$2 requests=$n rps=$rps (metrics only)"
  else
    echo "off round=$2 requests=$n rps=$rps"
  fi
  echo "$1 $rps" >>"$DIR/rps"
}

for r in $(seq "$ROUNDS"); do
  run off "$r"
  run on "$r"
done
awk '{s[$1]+=$2; c[$1]++} END {off=s["off"]/c["off"]; on=s["on"]/c["on"];
  printf "ON=%s mean rps off=%.0f on=%.0f ratio on/off=%.3f (target >= 0.97)\n", mode, off, on, on/off}' mode="$ON" "$DIR/rps"
