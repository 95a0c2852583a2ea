#!/usr/bin/env bash
# Instructions per proxied keep-alive request, counted by callgrind (deterministic, unlike time on a
# shared machine). Usage: bench/callgrind.sh [seconds]  → prints Ir/request and keeps the profile.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-4}
command -v valgrind >/dev/null && command -v wrk >/dev/null && command -v nginx >/dev/null || { apt-get update -qq; apt-get install -y -qq valgrind wrk nginx; }
cargo build --release --example rust_proxy >/dev/null 2>&1
DIR=$(mktemp -d); mkdir -p "$DIR/tmp"
cat > "$DIR/up.conf" <<CONF
worker_processes 1; daemon off; pid $DIR/up.pid; error_log $DIR/err warn;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000; client_body_temp_path $DIR/tmp; proxy_temp_path $DIR/tmp;
  fastcgi_temp_path $DIR/tmp; uwsgi_temp_path $DIR/tmp; scgi_temp_path $DIR/tmp;
  server { listen 127.0.0.1:18191; location / { return 200 "Hello, world\n"; } } }
CONF
nginx -c "$DIR/up.conf" -p "$DIR" & NG=$!
PROXY_QUIET=1 valgrind --tool=callgrind --callgrind-out-file="$DIR/cg.out" \
  ./target/release/examples/rust_proxy 127.0.0.1:18192 127.0.0.1:18191 >/dev/null 2>&1 & VG=$!
sleep 3
# Warm up (connections, pool, allocator), then count only the measured run.
wrk -t1 -c10 -d1s http://127.0.0.1:18192/ >/dev/null
callgrind_control -z $VG >/dev/null
n=$(wrk -t1 -c10 -d${DUR}s http://127.0.0.1:18192/ | awk '/requests in/{print $1}')
callgrind_control -d $VG >/dev/null
kill -INT $VG; wait $VG || true; kill $NG || true
dump=$(ls "$DIR"/cg.out.* 2>/dev/null | head -1)
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
echo "requests=$n instructions=$total per_request=$((total / n))"
mkdir -p bench/results; cp "$dump" bench/results/callgrind.out
rm -rf "$DIR"
