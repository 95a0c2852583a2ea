#!/usr/bin/env bash
# Response compression throughput: libproxy's gzip, br and zstd next to nginx's gzip, all at the
# same level, each proxying the same text file from one nginx origin. For each system and coding:
# wrk (1 thread, COMP_CONNS connections, `Accept-Encoding: <coding>`) for DUR seconds, then
#   MB/s       identity bytes compressed per second (requests x body size)
#   cpu_ms/MB  the proxy process's CPU time (user+sys, /proc/PID/stat) per MB compressed
# Meaningful only on a quiet machine (see bench/README.md); a tiny run checks that it works:
#   DUR=1 BODY_KB=16 bench/compression.sh
#
# Knobs: LEVEL (default 6), BODY_KB (256), DUR (5), COMP_CONNS (8), NO_BUILD=1 (skip the build),
# KEEP=1 (keep the temp dir with the configs and logs),
# COMP_PORT (28111; uses COMP_PORT..COMP_PORT+2). Every process started here is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=target/release/bench/bench_proxy
LEVEL=${LEVEL:-6}; BODY_KB=${BODY_KB:-256}; DUR=${DUR:-5}; CONNS=${COMP_CONNS:-8}
BASE=${COMP_PORT:-28111}; UP=$BASE; LPX=$((BASE + 1)); NGX=$((BASE + 2))

ensure_tools nginx wrk curl
[ "${NO_BUILD:-0}" = 1 ] || build_bench_proxy $BIN

DIR=$(mktemp -d /tmp/libproxy-compress.XXXXXX); mkdir -p "$DIR/tmp" "$DIR/www"
chmod 755 "$DIR" "$DIR/www" # nginx's workers run as another user
PIDS=""
trap bench_cleanup EXIT
trap 'exit 130' INT TERM


# The body: the project's own source text, a realistic mix of words and symbols, repeated as needed
# and cut to BODY_KB.
find src -name '*.rs' -print0 | sort -z | xargs -0 cat > "$DIR/src.txt"
while [ "$(stat -c %s "$DIR/www/body.txt" 2>/dev/null || echo 0)" -lt $((BODY_KB * 1024)) ]; do
  cat "$DIR/src.txt" >> "$DIR/www/body.txt"
done
truncate -s $((BODY_KB * 1024)) "$DIR/www/body.txt"
chmod 644 "$DIR/www/body.txt"
BYTES=$(stat -c %s "$DIR/www/body.txt")

cat > "$DIR/upstream.conf" <<CONF
worker_processes 1; daemon off; pid $DIR/upstream.pid; error_log $DIR/upstream.err warn;
events { worker_connections 4096; }
http { $(nginx_common "$DIR")
  server { listen 127.0.0.1:$UP backlog=4096; root $DIR/www; default_type text/plain; } }
CONF
nginx_proxy "$DIR" "$NGX" "$UP"
# nginx's own gzip at the same level, on proxied responses of any kind.
sed -i "s|location / {|gzip on; gzip_comp_level $LEVEL; gzip_types text/plain; gzip_proxied any; gzip_min_length 256;\n    location / {|" "$DIR/nginx-proxy.conf"

nginx -c "$DIR/upstream.conf" & PIDS="$PIDS $!"
nginx -c "$DIR/nginx-proxy.conf" & PIDS="$PIDS $!"; NGINX_PID=$!
PROXY_QUIET=1 BENCH_COMPRESS_LEVEL=$LEVEL $BIN 127.0.0.1:$LPX 127.0.0.1:$UP & PIDS="$PIDS $!"; LPX_PID=$!
wait_port $UP; wait_port $NGX; wait_port $LPX

NGINX_WORKER=$(worker_of $NGINX_PID)
HZ=$(getconf CLK_TCK)

measure() { # NAME PID PORT CODING
  local name=$1 pid=$2 port=$3 coding=$4 got
  got=$(curl -fsS -H "Accept-Encoding: $coding" -D - -o /dev/null "http://127.0.0.1:$port/body.txt" | tr -d '\r' |
    awk -F': ' 'tolower($1)=="content-encoding"{print $2}')
  [ "$got" = "$coding" ] || { echo "$name: asked for $coding, got '${got:-identity}'" >&2; return 1; }
  local t0 t1 reqs
  t0=$(cpu_ticks "$pid")
  reqs=$(wrk -t1 -c"$CONNS" -d"${DUR}s" -H "Accept-Encoding: $coding" "http://127.0.0.1:$port/body.txt" |
    awk '/requests in/{print $1}')
  t1=$(cpu_ticks "$pid")
  awk -v n="$name" -v c="$coding" -v r="$reqs" -v b="$BYTES" -v d="$DUR" -v dt=$((t1 - t0)) -v hz="$HZ" -v l="$LEVEL" 'BEGIN {
    mb = r * b / 1e6
    printf "%-9s %-5s level %-2s %8d req  %9.1f MB/s  %8.2f cpu_ms/MB\n", n, c, l, r, mb / d, (mb > 0 ? dt * 1000 / hz / mb : 0) }'
}

echo "body ${BYTES} bytes, ${DUR}s per run, ${CONNS} connections"
measure nginx "$NGINX_WORKER" $NGX gzip
for c in gzip br zstd; do measure libproxy "$LPX_PID" $LPX "$c"; done
