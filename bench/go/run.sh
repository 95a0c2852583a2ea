#!/usr/bin/env bash
# Added per-request cost of one no-op Go hook vs none (bench/go/main.go), same process, same run.
# nginx (1 worker, 13-byte body) and wrk -t1 -c50 on CPU 0, the Go proxy on CPU 1.
# Usage: bench/go/run.sh [seconds-per-run] [rounds]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/bench/lib.sh"
DUR=${1:-5}; ROUNDS=${2:-3}
for t in wrk nginx; do command -v $t >/dev/null || { apt-get update -qq; apt-get install -y -qq wrk nginx; }; done
[ -f "$root/target/release/libproxy.so" ] || (cd "$root" && cargo build --release)
ln -sf libproxy.so "$root/target/release/libproxy-rt.so.0"
DIR=$(mktemp -d); mkdir -p "$DIR/logs" "$DIR/tmp"
UP=$(python3 -c "import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])")
nginx_upstream "$DIR" $UP
setsid taskset -c 0 nginx -c "$DIR/upstream.conf" -p "$DIR" </dev/null & NGINX=$!
trap 'kill $NGINX 2>/dev/null || true; rm -rf "$DIR"' EXIT
(cd "$here" && go build -tags libproxy_bench -o "$DIR/gobench" .)
sleep 0.5
echo "go $(go env GOVERSION), $(nproc) CPUs; proxy on CPU 1, nginx + wrk on CPU 0"
taskset -c 1 "$DIR/gobench" -upstream 127.0.0.1:$UP -d "$DUR" -rounds "$ROUNDS" -wrk-cpu 0
