#!/usr/bin/env bash
# Two libproxy builds side by side with nginx, in one run: for reporting a change's before/after as
# ratios measured together (the machine is shared and noisy, so separate runs do not compare).
#
#   bench/ab.sh BEFORE_CMD AFTER_CMD [seconds] [reps]
#   e.g. git worktree add /tmp/base <commit> && (cd /tmp/base && <build the bench proxy as bench/run.sh does>)
#        bench/ab.sh /tmp/base/target/release/bench/bench_proxy target/release/bench/bench_proxy 5 3
#
# Each command is started as `CMD LISTEN UPSTREAM` with PROXY_QUIET=1 (one worker, foreground).
# H1 keep-alive, wrk -t1 -c50, 13-byte body from an nginx upstream (1 worker); wrk on CPU 0, the
# proxies and the upstream on CPU 1; the three paths are interleaved `reps` times. Prints req/s and
# CPU µs/request (utime+stime from /proc) per run, then pooled over the runs. Ports 18781-18785 on
# 127.0.0.1; everything started here is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
[ $# -ge 2 ] || { sed -n '2,13p' "$0"; exit 2; }
BEFORE=$1 AFTER=$2 DUR=${3:-5} REPS=${4:-3}
ensure_tools wrk nginx
DIR=$(mktemp -d); mkdir -p "$DIR/tmp"
UP=18781; NX=18783; PB=18784; PA=18785
nginx_upstream "$DIR" $UP
nginx_proxy "$DIR" $NX $UP
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT
setsid taskset -c 1 nginx -c "$DIR/upstream.conf" -p "$DIR" </dev/null & pids+=($!)
PROXY_QUIET=1 setsid taskset -c 1 $BEFORE 127.0.0.1:$PB 127.0.0.1:$UP </dev/null >/dev/null 2>&1 & pids+=($!)
BEFORE_PID=$!
PROXY_QUIET=1 setsid taskset -c 1 $AFTER 127.0.0.1:$PA 127.0.0.1:$UP </dev/null >/dev/null 2>&1 & pids+=($!)
AFTER_PID=$!
setsid taskset -c 1 nginx -c "$DIR/nginx-proxy.conf" -p "$DIR" </dev/null & pids+=($!)
sleep 1
NGINX_PID=$(pgrep -P "$(cat "$DIR/proxy.pid")" | head -1)
declare -A PIDOF=([$NX]=$NGINX_PID [$PB]=$BEFORE_PID [$PA]=$AFTER_PID) NAME=([$NX]=nginx [$PB]=before [$PA]=after)
declare -A REQ TCK
for p in $NX $PB $PA; do taskset -c 0 wrk -t1 -c50 -d1s http://127.0.0.1:$p/ >/dev/null; done
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
for r in $(seq "$REPS"); do
  for p in $NX $PB $PA; do
    c0=$(ticks "${PIDOF[$p]}")
    out=$(taskset -c 0 wrk -t1 -c50 -d"${DUR}"s http://127.0.0.1:$p/)
    c1=$(ticks "${PIDOF[$p]}")
    n=$(awk '/requests in/{print $1}' <<<"$out"); rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
    REQ[$p]=$(( ${REQ[$p]:-0} + n )); TCK[$p]=$(( ${TCK[$p]:-0} + c1 - c0 ))
    awk -v r="$r" -v name="${NAME[$p]}" -v rps="$rps" -v t=$((c1 - c0)) -v n="$n" -v hz="$tck" \
      'BEGIN{printf "run %d %-6s %8.0f req/s %6.1f CPU µs/req\n", r, name, rps, t*1e6/hz/n}'
  done
done
for p in $NX $PB $PA; do
  awk -v name="${NAME[$p]}" -v t="${TCK[$p]}" -v n="${REQ[$p]}" -v hz="$tck" -v secs=$((DUR * REPS)) \
    'BEGIN{printf "pooled %-6s %8.0f req/s %6.1f CPU µs/req (%d requests)\n", name, n/secs, t*1e6/hz/n, n}'
done
