#!/usr/bin/env bash
# The C ABI's overhead, not a timed test: the same one-worker C proxy (bench/c/bench_proxy.c, shared with bench/run.sh)
# with a C callback on every phase ("all": trivial ones returning PROXY_CONTINUE, upstream_peer
# setting the peer) vs. only upstream_peer ("peer"), in the same run. Keep-alive load from
# `wrk -t1 -c50` pinned to CPU 0; both proxies and the upstream (nginx, 1 worker, 13-byte body)
# pinned to CPU 1. Rounds alternate between the two so drift hits both alike.
# Reports req/s and proxy CPU µs/request (utime+stime from /proc) per round and in total, and the
# ratio all/peer of req/s (goal >= 0.95).
# Usage: bench/ffi/run.sh [seconds per round] [rounds]   (installs wrk, nginx, gcc when missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
ROOT=$(pwd)
DUR=${1:-10}
ROUNDS=${2:-3}
for t in wrk nginx cc; do
  command -v $t >/dev/null || { apt-get update -qq; apt-get install -y -qq wrk nginx gcc; break; }
done
cargo build --release --lib >/dev/null 2>&1
ln -sf libproxy.so target/release/libproxy-rt.so.0
DIR=$(mktemp -d); mkdir -p "$DIR/logs" "$DIR/tmp"
cc -std=c99 -Wall -Wextra -Werror -O2 -g -Iinclude bench/c/bench_proxy.c -o "$DIR/bench_proxy" \
  -Ltarget/release -lproxy -Wl,-rpath,"$ROOT/target/release"
UP=18281; ALL=18282; PEER=18283
nginx_upstream "$DIR" $UP
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$DIR"; }
trap cleanup EXIT
setsid taskset -c 1 nginx -c "$DIR/upstream.conf" -p "$DIR" </dev/null & pids+=($!)
setsid taskset -c 1 "$DIR/bench_proxy" --hooks 127.0.0.1:$ALL 127.0.0.1:$UP </dev/null & pids+=($!)
ALL_PID=$!
setsid taskset -c 1 "$DIR/bench_proxy" 127.0.0.1:$PEER 127.0.0.1:$UP </dev/null & pids+=($!)
PEER_PID=$!
sleep 1
for p in $ALL $PEER; do
  curl -fsS http://127.0.0.1:$p/ >/dev/null
  taskset -c 0 wrk -t1 -c50 -d2s http://127.0.0.1:$p/ >/dev/null # warm-up: pools, caches
done
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
TCK=$(getconf CLK_TCK)
declare -A REQS TICKS SECS
REQS[all]=0; REQS[peer]=0; TICKS[all]=0; TICKS[peer]=0; SECS[all]=0; SECS[peer]=0
echo "| round | callbacks | req/s | proxy CPU µs/req |"
echo "|---|---|---|---|"
for r in $(seq "$ROUNDS"); do
  for mode in all peer; do
    port=$ALL; pid=$ALL_PID
    [ $mode = peer ] && { port=$PEER; pid=$PEER_PID; }
    c0=$(cpu $pid)
    out=$(taskset -c 0 wrk -t1 -c50 -d"${DUR}"s http://127.0.0.1:$port/)
    c1=$(cpu $pid)
    if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then echo "errors in $mode run:"; echo "$out"; exit 1; fi
    n=$(awk '/requests in/{print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
    REQS[$mode]=$((REQS[$mode] + n)); TICKS[$mode]=$((TICKS[$mode] + c1 - c0))
    SECS[$mode]=$(awk -v a="${SECS[$mode]}" -v n="$n" -v r="$rps" 'BEGIN{print a + n / r}')
    us=$(awk -v d=$((c1 - c0)) -v n="$n" -v t="$TCK" 'BEGIN{printf "%.2f", d * 1e6 / t / n}')
    echo "| $r | $mode | $rps | $us |"
  done
done
tot() { awk -v n="${REQS[$1]}" -v s="${SECS[$1]}" 'BEGIN{printf "%.0f", n / s}'; }
cpuus() { awk -v d="${TICKS[$1]}" -v n="${REQS[$1]}" -v t="$TCK" 'BEGIN{printf "%.2f", d * 1e6 / t / n}'; }
echo
echo "| callbacks | req/s | proxy CPU µs/req |"
echo "|---|---|---|"
echo "| every phase (15) | $(tot all) | $(cpuus all) |"
echo "| upstream_peer only | $(tot peer) | $(cpuus peer) |"
awk -v a="$(tot all)" -v p="$(tot peer)" -v ca="$(cpuus all)" -v cp="$(cpuus peer)" \
  'BEGIN{printf "\nratio req/s all/peer = %.3f (goal >= 0.95); CPU per request all/peer = %.3f\n", a / p, ca / cp}'
