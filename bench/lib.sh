# Shared by the small bench scripts (sourced): nginx configurations. bench/run.sh writes its own,
# with the larger bodies and stub_status its scenarios need.

# nginx_upstream DIR PORT: writes DIR/upstream.conf, an origin on 127.0.0.1:PORT answering every
# path with the 13-byte "Hello, world\n" (1 worker, connections kept for good; pid DIR/upstream.pid).
nginx_upstream() {
  mkdir -p "$1/tmp"
  cat > "$1/upstream.conf" <<CONF
worker_processes 1; daemon off; pid $1/upstream.pid; error_log $1/upstream.err warn;
events { worker_connections 4096; }
http { $(nginx_common "$1")
  server { listen 127.0.0.1:$2 backlog=4096; location / { default_type text/plain; return 200 "Hello, world\n"; } } }
CONF
}

# nginx_proxy DIR PORT UPSTREAM_PORT: writes DIR/nginx-proxy.conf, nginx as a reverse proxy on
# 127.0.0.1:PORT (1 worker, upstream keep-alive pool of 128; pid DIR/proxy.pid).
nginx_proxy() {
  mkdir -p "$1/tmp"
  cat > "$1/nginx-proxy.conf" <<CONF
worker_processes 1; daemon off; pid $1/proxy.pid; error_log $1/proxy.err warn;
events { worker_connections 4096; }
http { $(nginx_common "$1")
  upstream backend { server 127.0.0.1:$3; keepalive 128; keepalive_requests 1000000; }
  server { listen 127.0.0.1:$2 backlog=4096;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
}

nginx_common() {
  echo "access_log off; keepalive_requests 1000000; keepalive_timeout 300s;
  client_body_temp_path $1/tmp; proxy_temp_path $1/tmp; fastcgi_temp_path $1/tmp;
  uwsgi_temp_path $1/tmp; scgi_temp_path $1/tmp;"
}

# wait_port PORT: waits up to 10 s for 127.0.0.1:PORT to accept.
wait_port() {
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 never opened" >&2; return 1
}

# build_bench_proxy BIN: builds the library and bench/c/bench_proxy.c into BIN, as run.sh does
# (run from the repository root).
build_bench_proxy() {
  cargo build --release >&2
  ln -sf libproxy.so target/release/libproxy-rt.so.0 && mkdir -p "$(dirname "$1")"
  cc -std=c99 -pedantic -Wall -Wextra -Werror -O2 -g -Iinclude bench/c/bench_proxy.c -o "$1" \
    -Ltarget/release -lproxy -lpthread -Wl,-rpath,"$PWD/target/release"
}

# The EXIT trap of a bench script: stops every process in $PIDS (by PID) and removes $DIR unless
# KEEP=1.
bench_cleanup() {
  set +e
  for p in $PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$DIR"
}

# cpu_ticks PID: the process's CPU time (user + sys) in clock ticks, from /proc/PID/stat.
cpu_ticks() { awk '{print $14 + $15}' /proc/$1/stat; }

# worker_of PID: nginx's one worker (its master only forks; the worker does the work).
worker_of() { pgrep -P "$1" | head -1; }

# ensure_tools TOOL[=PACKAGE]...: installs (apt) the Debian packages of the tools missing from PATH,
# so that each script runs on a fresh machine. PACKAGE defaults to the tool's name.
ensure_tools() {
  local missing=() t
  for t in "$@"; do command -v "${t%%=*}" >/dev/null || missing+=("${t#*=}"); done
  [ ${#missing[@]} -eq 0 ] || { apt-get update -qq; apt-get install -y -qq "${missing[@]}"; }
}
