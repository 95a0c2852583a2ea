#!/usr/bin/env bash
# TCP (L4) proxy throughput: libproxy's L4 service next to HAProxy (mode tcp) and nginx `stream`
# (Debian's libnginx-mod-stream), each with one worker, relaying L4_BYTES from a client to a sink
# over L4_STREAMS connections on loopback (bench/c/l4_pump.c on both ends).
#
#   bench/l4.sh                    build, then measure (L4_BYTES=8G, L4_STREAMS=4)
#   L4_BYTES=1G NO_BUILD=1 bench/l4.sh   a quick smoke run with the binaries already built
#
# libproxy runs twice: copying through its buffers, and with splice(2) (PROXY_L4_SPLICE).
# Prints, per system: seconds, GB/s, and the proxy's CPU seconds per GB (user + sys, from
# /proc/PID/stat). Ports 28201 (sink), 28202 (libproxy), 28205 (libproxy, splice), 28203 (HAProxy),
# 28204 (nginx); every
# process started here is stopped by its PID on exit. A wall-clock figure: run it on a quiet
# machine (bench/bench-protocol notes).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROOT=$PWD
BYTES=${L4_BYTES:-8G}
STREAMS=${L4_STREAMS:-4}
SINK=28201; LPX=28202; HAP=28203; NGX=28204; LPS=28205
BIN=target/release/bench

ensure_tools haproxy nginx cc=gcc
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || { apt-get update -qq; apt-get install -y -qq libnginx-mod-stream; }
bytes=$(numfmt --from=iec "$BYTES")

if [ "${NO_BUILD:-0}" != 1 ]; then
  cargo build --release >&2
  ln -sf libproxy.so target/release/libproxy-rt.so.0 && mkdir -p $BIN
  for p in l4_proxy l4_pump; do
    cc -std=c99 -pedantic -Wall -Wextra -Werror -O2 -g -Iinclude bench/c/$p.c -o $BIN/$p \
      -Ltarget/release -lproxy -lpthread -Wl,-rpath,"$ROOT/target/release"
  done
fi

DIR=$(mktemp -d /tmp/libproxy-l4.XXXXXX); mkdir -p "$DIR/tmp"
PIDS=""
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

cat > "$DIR/haproxy.cfg" <<CONF
global
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen l4
  bind 127.0.0.1:$HAP
  server sink 127.0.0.1:$SINK
CONF
cat > "$DIR/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1; daemon off; pid $DIR/nginx.pid; error_log $DIR/nginx.err warn;
events { worker_connections 1024; }
stream { server { listen 127.0.0.1:$NGX; proxy_pass 127.0.0.1:$SINK; proxy_buffer_size 64k; } }
CONF

$BIN/l4_pump sink $SINK & PIDS="$PIDS $!"
$BIN/l4_proxy 127.0.0.1:$LPX 127.0.0.1:$SINK >"$DIR/l4_proxy.out" 2>&1 & LP=$!; PIDS="$PIDS $LP"
L4_SPLICE=1 $BIN/l4_proxy 127.0.0.1:$LPS 127.0.0.1:$SINK >"$DIR/l4_splice.out" 2>&1 & LS=$!; PIDS="$PIDS $LS"
haproxy -db -f "$DIR/haproxy.cfg" >"$DIR/haproxy.out" 2>&1 & HP=$!; PIDS="$PIDS $HP"
nginx -c "$DIR/nginx.conf" -p "$DIR" </dev/null >"$DIR/nginx.out" 2>&1 & NM=$!; PIDS="$PIDS $NM"
for p in $SINK $LPX $LPS $HAP $NGX; do wait_port $p; done
NW=$(worker_of $NM)
[ -n "$NW" ] || NW=$NM

hz=$(getconf CLK_TCK)
printf '%-10s %8s %8s %12s   (%s over %s connections)\n' system seconds GB/s cpu_s/GB "$BYTES" "$STREAMS"
for sys in libproxy:$LPX:$LP lp-splice:$LPS:$LS haproxy:$HAP:$HP nginx:$NGX:$NW; do
  IFS=: read -r name port pid <<<"$sys"
  before=$(cpu_ticks "$pid")
  secs=$($BIN/l4_pump send "$port" "$bytes" "$STREAMS")
  after=$(cpu_ticks "$pid")
  awk -v n="$name" -v s="$secs" -v b="$bytes" -v c=$((after - before)) -v hz="$hz" \
    'BEGIN { gb = b / 1e9; printf "%-10s %8.2f %8.2f %12.3f\n", n, s, gb / s, c / hz / gb }'
done
