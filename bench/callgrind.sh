#!/usr/bin/env bash
# Instructions per proxied keep-alive request, counted by callgrind (deterministic, unlike time on a
# shared machine). Usage: bench/callgrind.sh [seconds]  → prints Ir/request and keeps the profile.
#   CG_CMD   the proxy (started as CMD LISTEN UPSTREAM); default: bench/c/bench_proxy.c (the measured
#            libproxy of bench/run.sh, built first); e.g. CG_CMD="target/release/bench/bench_proxy --hooks"
#   MODE     h1 (wrk -c10, default) or h2c (h2load $H2LOAD on the same port)
#   H2LOAD   h2load's connections and streams for MODE=h2c (default "-c10 -m10"; bench/run.sh's
#            h2c scenario is "-c50 -m2")
#   CG_PORT  upstream port (default 18191; the proxy listens on the next one), so two runs can share a machine
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DUR=${1:-4}
ensure_tools valgrind wrk nginx h2load=nghttp2-client
UP=${CG_PORT:-18191}; PX=$((UP + 1))
CG_CMD=${CG_CMD:-target/release/bench/bench_proxy}
MODE=${MODE:-h1}
cargo build --release >/dev/null 2>&1 && make -C examples/c >/dev/null 2>&1
ln -sf libproxy.so target/release/libproxy-rt.so.0; mkdir -p target/release/bench
cc -std=c99 -pedantic -Wall -Wextra -Werror -O2 -g -Iinclude bench/c/bench_proxy.c -o target/release/bench/bench_proxy \
  -Ltarget/release -lproxy -lpthread -Wl,-rpath,"$PWD/target/release"
DIR=$(mktemp -d); mkdir -p "$DIR/tmp"
nginx_upstream "$DIR" $UP
nginx -c "$DIR/upstream.conf" -p "$DIR" & NG=$!
VG=
# Whatever happens below, nothing is left listening.
trap 'kill -INT $VG 2>/dev/null; kill $NG 2>/dev/null; rm -rf "$DIR"' EXIT
PROXY_QUIET=1 valgrind --tool=callgrind --callgrind-out-file="$DIR/cg.out" \
  $CG_CMD 127.0.0.1:$PX 127.0.0.1:$UP >/dev/null 2>&1 & VG=$!
sleep 3
# Warm up (connections, pool, allocator), then count only the measured run.
if [ "$MODE" = h2c ]; then
  h2load -t1 ${H2LOAD:--c10 -m10} -D 1 http://127.0.0.1:$PX/ >/dev/null
  callgrind_control -z $VG >/dev/null
  n=$(h2load -t1 ${H2LOAD:--c10 -m10} -D "$DUR" http://127.0.0.1:$PX/ | awk '/^requests:/{print $8}')
else
  wrk -t1 -c10 -d1s http://127.0.0.1:$PX/ >/dev/null
  callgrind_control -z $VG >/dev/null
  n=$(wrk -t1 -c10 -d${DUR}s http://127.0.0.1:$PX/ | awk '/requests in/{print $1}')
fi
callgrind_control -d $VG >/dev/null
kill -INT $VG; wait $VG || true; kill $NG || true
dump=$(ls "$DIR"/cg.out.* 2>/dev/null | head -1)
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
mkdir -p bench/results; cp "$dump" bench/results/callgrind.out
echo "mode=$MODE cmd=$CG_CMD requests=$n instructions=$total per_request=$((total / n))"
echo "top functions by exclusive instructions per request:"
callgrind_annotate --inclusive=no --threshold=100 "$dump" 2>/dev/null | grep -v "PROGRAM TOTALS\|(100.0%)" | awk -v n="$n" '/^-+$/{s++} s>=2 && $1 ~ /^[0-9,]+$/ {v=$1; gsub(",","",v); $1=""; $2=""; printf "%8.0f %s\n", v/n, $0; if (++k==20) exit}' || true
rm -rf "$DIR"
