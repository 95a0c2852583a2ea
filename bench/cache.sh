#!/usr/bin/env bash
# HTTP cache hits: libproxy's cache next to nginx's proxy_cache, both in front of the same nginx
# origin answering one cacheable BODY_KB-byte file (Cache-Control: max-age=3600). For each:
# one request to fill the cache, then wrk (1 thread, CACHE_CONNS connections) for DUR seconds on
# that URL, which is a hit every time:
#   req/s        hits per second
#   cpu_us/req   the proxy process's CPU time (user+sys, /proc/PID/stat) per hit
#   origin       requests that reached the origin during the run (0 when every one was a hit)
# Then memory per cached object: OBJECTS distinct URLs with BODY_KB bodies fetched through
# libproxy, its RSS growth minus the body bytes, per object (the cache's own bookkeeping:
# heads, keys, queue slots).
# Meaningful only on a quiet machine (see bench/README.md); a tiny run checks that it works:
#   DUR=1 OBJECTS=200 bench/cache.sh
#
# Knobs: BODY_KB (default 4), DUR (5), CACHE_CONNS (32), OBJECTS (20000), NO_BUILD=1 (skip the
# build), KEEP=1 (keep the temp dir), CACHE_PORT (28121; uses CACHE_PORT..CACHE_PORT+2). Every
# process started here is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=target/release/bench/bench_proxy
BODY_KB=${BODY_KB:-4}; DUR=${DUR:-5}; CONNS=${CACHE_CONNS:-32}; OBJECTS=${OBJECTS:-20000}
BASE=${CACHE_PORT:-28121}; UP=$BASE; LPX=$((BASE + 1)); NGX=$((BASE + 2))

ensure_tools nginx wrk curl
[ "${NO_BUILD:-0}" = 1 ] || build_bench_proxy $BIN

DIR=$(mktemp -d /tmp/libproxy-cache.XXXXXX); mkdir -p "$DIR/tmp" "$DIR/www" "$DIR/cache"
chmod 755 "$DIR" "$DIR/www" "$DIR/cache" # nginx's workers run as another user
chmod 777 "$DIR/cache" "$DIR/tmp"
PIDS=""
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

rss_kb() { awk '/^VmRSS/{print $2}' /proc/$1/status; }

head -c $((BODY_KB * 1024)) /dev/zero | tr '\0' 'x' > "$DIR/www/body.txt"
chmod 644 "$DIR/www/body.txt"
BYTES=$(stat -c %s "$DIR/www/body.txt")

# The origin: every path is the one file, cacheable for an hour, and counts what reaches it.
cat > "$DIR/upstream.conf" <<CONF
worker_processes 1; daemon off; pid $DIR/upstream.pid; error_log $DIR/upstream.err warn;
events { worker_connections 4096; }
http { $(nginx_common "$DIR")
  log_format hits "x";
  server { listen 127.0.0.1:$UP backlog=4096; root $DIR/www; default_type text/plain;
    access_log $DIR/origin.log hits;
    location / { add_header Cache-Control "max-age=3600"; try_files /body.txt =404; } } }
CONF
nginx_proxy "$DIR" "$NGX" "$UP"
# nginx's proxy_cache in memory-backed files (the page cache), keyed like libproxy's default key.
sed -i "s|upstream backend|proxy_cache_path $DIR/cache levels=1:2 keys_zone=bench:64m max_size=1g inactive=1h use_temp_path=off;\n  upstream backend|" "$DIR/nginx-proxy.conf"
sed -i "s|location / {|location / { proxy_cache bench; proxy_cache_key \$scheme\$host\$request_uri; proxy_cache_lock on;|" "$DIR/nginx-proxy.conf"

nginx -c "$DIR/upstream.conf" & PIDS="$PIDS $!"
nginx -c "$DIR/nginx-proxy.conf" & PIDS="$PIDS $!"; NGINX_PID=$!
PROXY_QUIET=1 BENCH_CACHE_MB=1024 $BIN 127.0.0.1:$LPX 127.0.0.1:$UP & PIDS="$PIDS $!"; LPX_PID=$!
wait_port $UP; wait_port $NGX; wait_port $LPX
NGINX_WORKER=$(worker_of $NGINX_PID)
HZ=$(getconf CLK_TCK)
origin_hits() { wc -l < "$DIR/origin.log" 2>/dev/null || echo 0; }

measure() { # NAME PID PORT
  local name=$1 pid=$2 port=$3 url="http://127.0.0.1:$3/hot" t0 t1 o0 o1 reqs
  curl -fsS -o /dev/null "$url"; curl -fsS -o /dev/null "$url"
  o0=$(origin_hits); t0=$(cpu_ticks "$pid")
  reqs=$(wrk -t1 -c"$CONNS" -d"${DUR}s" "$url" | awk '/requests in/{print $1}')
  t1=$(cpu_ticks "$pid"); o1=$(origin_hits)
  awk -v n="$name" -v r="$reqs" -v d="$DUR" -v dt=$((t1 - t0)) -v hz="$HZ" -v o=$((o1 - o0)) 'BEGIN {
    printf "%-9s cache hit %9.0f req/s  %7.2f cpu_us/req  origin %d\n", n, r / d, (r > 0 ? dt * 1e6 / hz / r : 0), o }'
}

echo "body ${BYTES} bytes, ${DUR}s per run, ${CONNS} connections"
measure nginx "$NGINX_WORKER" $NGX
measure libproxy "$LPX_PID" $LPX

# Memory per cached object: RSS growth over OBJECTS distinct cached URLs, less their bodies.
rss0=$(rss_kb "$LPX_PID")
seq "$OBJECTS" | sed "s|^|url = \"http://127.0.0.1:$LPX/obj/|; s|$|\"\noutput = /dev/null|" > "$DIR/urls.curl"
curl -fsS --no-progress-meter --parallel --parallel-max 16 -K "$DIR/urls.curl"
rss1=$(rss_kb "$LPX_PID")
awk -v a="$rss0" -v b="$rss1" -v n="$OBJECTS" -v body="$BYTES" 'BEGIN {
  per = (b - a) * 1024 / n
  printf "libproxy  %d objects: RSS +%.1f MiB, %.0f bytes per object, %.0f beyond the %d-byte body\n", n, (b - a) / 1024, per, per - body, body }'
