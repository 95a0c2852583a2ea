#!/usr/bin/env bash
# Quick keep-alive baseline: wrk through libproxy (1 worker, no hooks) next to nginx as a proxy
# (1 worker, upstream keepalive) and direct, in the same run.
# Upstream: nginx, 1 worker, 13-byte body. Load generator pinned to CPU 0, servers to CPU 1.
# Usage: bench/quick.sh [seconds]   (installs wrk and nginx with apt when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DUR=${1:-5}
ensure_tools wrk nginx
cargo build --release --example rust_proxy >/dev/null
DIR=$(mktemp -d); mkdir -p "$DIR/logs" "$DIR/tmp"
UP=18081; PX=18082; NX=18083
nginx_upstream "$DIR" $UP
nginx_proxy "$DIR" $NX $UP
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT
setsid taskset -c 1 nginx -c "$DIR/upstream.conf" -p "$DIR" </dev/null & pids+=($!)
PROXY_QUIET=1 setsid taskset -c 1 ./target/release/examples/rust_proxy 127.0.0.1:$PX 127.0.0.1:$UP </dev/null 2>/dev/null & pids+=($!)
PROXY_PID=$!
setsid taskset -c 1 nginx -c "$DIR/nginx-proxy.conf" -p "$DIR" </dev/null & pids+=($!)
sleep 1
NGINX_PID=$(pgrep -P "$(cat "$DIR/proxy.pid")" | head -1)
for p in $UP $NX $PX; do taskset -c 0 wrk -t1 -c50 -d1s http://127.0.0.1:$p/ >/dev/null; done
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
echo "| path | req/s | p50 | p99 | proxy CPU µs/req |"
echo "|---|---|---|---|---|"
for p in $UP $NX $PX; do
  pid=$PROXY_PID; [ $p = $NX ] && pid=$NGINX_PID
  c0=$(cpu $pid)
  out=$(taskset -c 0 wrk -t1 -c50 -d${DUR}s --latency http://127.0.0.1:$p/)
  c1=$(cpu $pid)
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  p50=$(awk '$1=="50%"{print $2}' <<<"$out"); p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  tck=$(getconf CLK_TCK)
  us=$(awk -v d=$((c1-c0)) -v n=$reqs -v t=$tck 'BEGIN{ if (n>0) printf "%.1f", d*1e6/t/n; else print "-" }')
  name=direct; [ $p = $PX ] && name=libproxy; [ $p = $NX ] && name=nginx-proxy
  [ $name = direct ] && us="-"
  echo "| $name | $rps | $p50 | $p99 | $us |"
done
