#!/usr/bin/env bash
# libproxy side by side with nginx, HAProxy and Pingora on this machine, in the same run (issue 6).
#
#   bench/run.sh              full run (5 s loads, 3 interleaved repetitions of the key scenarios; < 10 min)
#   QUICK=1 bench/run.sh      smoke run (2 s loads, 1 repetition)
#
# Writes bench/results/<timestamp>.md and .json and prints the table. See bench/README.md.
# Everything listens on 127.0.0.1 only, on fixed ports 28080-28099 / 28441-28444. The load generator
# runs on CPU 0; the proxy under test and the upstream share CPU 1 (layout A of the protocol).
# Every process started here is stopped by its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# ---- the systems under test ---------------------------------------------------------------------
# Each command is started as `$CMD LISTEN_ADDR UPSTREAM_ADDR` with PROXY_QUIET=1 in the environment,
# must run one worker and must stay in the foreground. Default: bench/c/bench_proxy.c, the C example
# examples/c/minimal_proxy.c's proxy service with 1 worker and no access-log line (the example itself
# hard-codes 2 worker threads and prints a line per request); built against the release libproxy.so
# after `cargo build --release` and `make -C examples/c` (which also makes the libproxy-rt.so.0 SONAME
# link). Its plain port answers HTTP/1.1 and h2c (prior knowledge); with PROXY_TLS_LISTEN/CERT/KEY in
# its environment it adds a TLS+h2 endpoint via proxy_service_add_tls.
BENCH_BIN=target/release/bench/bench_proxy
PROXY_CMD=${PROXY_CMD:-$BENCH_BIN}
PROXY_BUILD=${PROXY_BUILD:-"cargo build --release && make -C examples/c && ln -sf libproxy.so target/release/libproxy-rt.so.0 && mkdir -p target/release/bench && cc -std=c99 -pedantic -Wall -Wextra -Werror -O2 -g -Iinclude bench/c/bench_proxy.c -o $BENCH_BIN -Ltarget/release -lproxy -lpthread -Wl,-rpath,$ROOT/target/release"}
# The same program with a C callback on every phase. Empty = path skipped.
HOOKED_CMD=${HOOKED_CMD-"$BENCH_BIN --hooks"}
HOOKED_BUILD=${HOOKED_BUILD:-}
# 1: libproxy's plain port answers h2c (prior knowledge); 1: the commands take PROXY_TLS_* (TLS+h2).
PROXY_H2C=${PROXY_H2C:-1}
PROXY_TLS=${PROXY_TLS:-1}
export PROXY_QUIET=1
PINGORA_DIR=bench/pingora
PINGORA_BIN=$PINGORA_DIR/target/release/pingora-bench

# ---- knobs ----------------------------------------------------------------------------------------
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then DUR=${DUR:-2}; REPS=${REPS:-1}; H2_N=${H2_N:-0}
else DUR=${DUR:-5}; REPS=${REPS:-3}; H2_N=${H2_N:-60000}; fi
H2_REPS=${H2_REPS:-$REPS}      # interleaved repetitions of h2c and tls
ONLY=${ONLY:-}                  # e.g. ONLY="ka13 idle": run only these scenarios
WARM=${WARM:-1}                 # seconds of warm-up load before every measured load
IDLE_N=${IDLE_N:-9000}          # idle keep-alive connections (fits under RLIMIT_NOFILE 20000)
CONC=50                         # wrk/oha connections
LOADCPU=0; SUTCPU=1

UP=28081; UP_H2C=28091; UP_TLS=28441; UP_STATUS=28089
NGX=28082; NGX_H2C=28092; NGX_TLS=28443
HAP=28083; HAP_H2C=28093; HAP_TLS=28444
PGR=28084; LPX=28085; HKD=28086; LPX_TLS=28445; HKD_TLS=28446

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES=$ROOT/bench/results
mkdir -p "$RES"
DIR=$(mktemp -d /tmp/libproxy-bench.XXXXXX)
mkdir -p "$DIR/logs" "$DIR/tmp" "$DIR/www" "$DIR/raw"
REC=$DIR/records.jsonl; : > "$REC"
NOTES=$DIR/notes.txt; : > "$NOTES"
T_START=$(date +%s)

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
note() { echo "$*" >> "$NOTES"; log "note: $*"; }
rec() { python3 "$ROOT/bench/report.py" rec "$REC" "$@"; }

# ---- process bookkeeping: every PID we start, stopped on exit ---------------------------------------
declare -A PID=()        # name -> pid of the process we started
declare -A STOPSIG=()    # name -> signal for a fast stop
cleanup() {
  set +e
  for n in "${!PID[@]}"; do stop "$n"; done
  [ "${KEEP:-0}" = 1 ] && log "kept $DIR" || rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() {  # start NAME SIGNAL cmd...   (pinned to the SUT core, stdin closed, output to logs/NAME)
  local name=$1 sig=$2; shift 2
  taskset -c $SUTCPU "$@" </dev/null >"$DIR/logs/$name.out" 2>&1 &
  PID[$name]=$!; STOPSIG[$name]=$sig
}
stop() {
  local name=$1 p=${PID[$1]:-}
  [ -n "$p" ] || return 0
  if kill -0 "$p" 2>/dev/null; then
    kill -"${STOPSIG[$name]}" "$p" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  fi
  wait "$p" 2>/dev/null || true
  unset "PID[$name]"
}
wait_port() {  # wait_port PORT [secs]
  local i
  for i in $(seq $((${2:-10} * 10))); do
    (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
cpu_ticks() { [ -n "${1:-}" ] && [ -r /proc/$1/stat ] && awk '{print $14+$15}' /proc/$1/stat || echo 0; }
cpu_us_sy() { [ -n "${1:-}" ] && [ -r /proc/$1/stat ] && awk '{print $14, $15}' /proc/$1/stat || echo 0 0; }  # utime stime
rss_kb() { awk '/^VmRSS/{print $2}' /proc/$1/status; }
nginx_worker() {  # the (single) worker of an nginx master: CPU and RSS are measured there
  local w=""
  for _ in $(seq 50); do w=$(pgrep -P "$1" | head -1 || true); [ -n "$w" ] && break; sleep 0.1; done
  echo "$w"
}
up_accepts() { curl -s --max-time 2 http://127.0.0.1:$UP_STATUS/ | awk 'NR==3{print $1}' || echo 0; }
# TIME_WAIT sockets created during the last $2 seconds on the ports in filter $1 (reuse check): the
# TIME_WAIT timer starts at 60 s and ss shows whole seconds, so with a 2 s pause between warm-up and
# load, "remaining > 60 - elapsed - 1.5" counts exactly those created during the load. Sampled just
# before the load ends, so the generator's own final close is not counted.
tw_new() {
  ss -Htan -o state time-wait "$1" |
    awk -v w="$2" '{ if (match($0, /timewait,[0-9.]+(ms|sec|min)/)) { t = substr($0, RSTART + 9, RLENGTH - 9);
      v = t + 0; if (t ~ /ms$/) v /= 1000; else if (t ~ /min$/) v *= 60; if (v > 60 - w - 1.5) { n++; print "time-wait: " $0 > "/dev/stderr" } } }
      END { print n + 0 }'
}

# ---- tools ------------------------------------------------------------------------------------------
install_tools() {
  export PATH=$HOME/.cargo/bin:$PATH
  local need=()
  [ "${NO_INSTALL:-0}" = 1 ] && need=(skip)
  command -v nginx >/dev/null || need+=(nginx)
  command -v haproxy >/dev/null || need+=(haproxy)
  command -v wrk >/dev/null || need+=(wrk)
  command -v h2load >/dev/null || need+=(nghttp2-client)
  command -v openssl >/dev/null || need+=(openssl)
  command -v curl >/dev/null || need+=(curl)
  command -v cmake >/dev/null || need+=(cmake)   # Pingora's build needs it
  if [ ${#need[@]} -gt 0 ] && [ "${need[0]}" != skip ]; then
    log "apt-get install ${need[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >"$DIR/logs/apt.log" 2>&1 \
      || log "apt-get failed (see below); scenarios needing the missing tools are skipped"
  fi
  if [ "${NO_INSTALL:-0}" != 1 ] && ! command -v oha >/dev/null; then
    log "cargo install oha --locked (about 4 min, once)"
    cargo install oha --locked >"$DIR/logs/oha-install.log" 2>&1 || log "oha did not install"
  fi
  for t in nginx haproxy wrk h2load oha openssl curl; do
    command -v $t >/dev/null || note "$t is not installed: its scenarios/paths are skipped"
  done
  command -v nginx >/dev/null && command -v curl >/dev/null || { log "nginx (the upstream) and curl are required"; exit 1; }
}

# ---- builds (never during measurements) -------------------------------------------------------------
build_all() {
  log "building libproxy: $PROXY_BUILD"
  if ! bash -c "$PROXY_BUILD" >"$DIR/logs/build-proxy.log" 2>&1 || [ ! -x "${PROXY_CMD%% *}" ]; then
    tail -20 "$DIR/logs/build-proxy.log" >&2; note "libproxy did not build ($PROXY_BUILD)"; PROXY_CMD=""
  fi
  if [ -n "$HOOKED_CMD" ]; then
    [ -z "$HOOKED_BUILD" ] || bash -c "$HOOKED_BUILD" >"$DIR/logs/build-hooked.log" 2>&1 || { note "hooked libproxy did not build"; HOOKED_CMD=""; }
  fi
  if [ "${SKIP_PINGORA:-0}" = 1 ]; then note "Pingora skipped (SKIP_PINGORA=1)"; PINGORA_BIN=""; return; fi
  if command -v cmake >/dev/null; then
    log "building Pingora (bench-only crate $PINGORA_DIR; first build takes a few minutes)"
    if ! (cd "$PINGORA_DIR" && timeout "${PINGORA_BUILD_TIMEOUT:-900}" cargo build --release) >"$DIR/logs/build-pingora.log" 2>&1; then
      tail -5 "$DIR/logs/build-pingora.log" >&2; note "Pingora did not build: path skipped"; PINGORA_BIN=""
    fi
  else
    note "cmake missing: Pingora not built, path skipped"; PINGORA_BIN=""
  fi
}

# ---- configs ------------------------------------------------------------------------------------------
write_configs() {
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$DIR/key.pem" -out "$DIR/cert.pem" -days 30 \
    -subj "/CN=localhost" >/dev/null 2>&1
  cat "$DIR/cert.pem" "$DIR/key.pem" > "$DIR/combined.pem"
  head -c 16384 /dev/urandom > "$DIR/www/16k"
  head -c 1048576 /dev/urandom > "$DIR/www/1m"
  # the workers must read $DIR/www and write $DIR/tmp (mktemp makes $DIR 0700): run them as us
  local user=""; [ "$(id -u)" = 0 ] && user="user root;"
  local common="access_log off; keepalive_requests 1000000; keepalive_timeout 300s;
  client_body_temp_path $DIR/tmp; proxy_temp_path $DIR/tmp; fastcgi_temp_path $DIR/tmp;
  uwsgi_temp_path $DIR/tmp; scgi_temp_path $DIR/tmp;"
  cat > "$DIR/upstream.conf" <<CONF
$user worker_processes 1; worker_rlimit_nofile 20000; daemon off; pid $DIR/upstream.pid; error_log $DIR/logs/upstream.err warn;
events { worker_connections 19000; }
http { $common
  server { listen 127.0.0.1:$UP reuseport backlog=4096; listen 127.0.0.1:$UP_H2C http2;
           listen 127.0.0.1:$UP_TLS ssl http2;
           ssl_certificate $DIR/cert.pem; ssl_certificate_key $DIR/key.pem;
           root $DIR/www; sendfile on; tcp_nopush on;
           location = / { default_type text/plain; return 200 "Hello, world\n"; }
           location / { default_type application/octet-stream; } }
  server { listen 127.0.0.1:$UP_STATUS; location / { stub_status; } } }
CONF
  cat > "$DIR/nginx-proxy.conf" <<CONF
$user worker_processes 1; worker_rlimit_nofile 20000; daemon off; pid $DIR/nginx-proxy.pid; error_log $DIR/logs/nginx-proxy.err warn;
events { worker_connections 19000; }
http { $common
  upstream backend { server 127.0.0.1:$UP; keepalive 128; keepalive_requests 1000000; }
  server { listen 127.0.0.1:$NGX reuseport backlog=4096; listen 127.0.0.1:$NGX_H2C http2;
           listen 127.0.0.1:$NGX_TLS ssl http2;
           ssl_certificate $DIR/cert.pem; ssl_certificate_key $DIR/key.pem;
           location / { proxy_pass http://backend; proxy_http_version 1.1;
                        proxy_set_header Connection ""; proxy_buffering on; } } }
CONF
  cat > "$DIR/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 9500
  log stderr format raw local0 err
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:$HAP
  bind 127.0.0.1:$HAP_H2C proto h2
  bind 127.0.0.1:$HAP_TLS ssl crt $DIR/combined.pem alpn h2,http/1.1
  default_backend be
backend be
  server up1 127.0.0.1:$UP
CONF
}

# ---- starting the servers ---------------------------------------------------------------------------
declare -A PORT=([direct]=$UP [nginx]=$NGX [haproxy]=$HAP [pingora]=$PGR [libproxy]=$LPX [libproxy-hooked]=$HKD)
declare -A H2C=([direct]=$UP_H2C [nginx]=$NGX_H2C [haproxy]=$HAP_H2C)
declare -A TLS=([direct]=$UP_TLS [nginx]=$NGX_TLS [haproxy]=$HAP_TLS)
if [ "$PROXY_H2C" = 1 ]; then H2C[libproxy]=$LPX; H2C[libproxy-hooked]=$HKD; fi
if [ "$PROXY_TLS" = 1 ]; then TLS[libproxy]=$LPX_TLS; TLS[libproxy-hooked]=$HKD_TLS; fi
tls_env() { [ "$PROXY_TLS" = 1 ] && echo "PROXY_TLS_LISTEN=127.0.0.1:$1 PROXY_TLS_CERT=$DIR/cert.pem PROXY_TLS_KEY=$DIR/key.pem"; }
declare -A MPID=()       # path -> pid whose CPU/RSS is measured (nginx: the worker)
declare -A SKIP=()       # path -> why it is skipped
PATHS=(direct nginx haproxy pingora libproxy libproxy-hooked)

start_path() {  # start_path NAME -> starts it fresh, fills MPID, or SKIP on failure
  local n=$1
  case $n in
    direct)
      start upstream QUIT nginx -c "$DIR/upstream.conf" -p "$DIR"
      wait_port $UP && MPID[direct]=$(nginx_worker "${PID[upstream]}") ;;
    nginx)
      command -v nginx >/dev/null || { SKIP[nginx]="nginx not installed"; return; }
      start nginx TERM nginx -c "$DIR/nginx-proxy.conf" -p "$DIR"
      wait_port $NGX && MPID[nginx]=$(nginx_worker "${PID[nginx]}") ;;
    haproxy)
      command -v haproxy >/dev/null || { SKIP[haproxy]="haproxy not installed"; return; }
      start haproxy TERM haproxy -db -f "$DIR/haproxy.cfg"
      wait_port $HAP && MPID[haproxy]=${PID[haproxy]} ;;
    pingora)
      [ -n "$PINGORA_BIN" ] && [ -x "$PINGORA_BIN" ] || { SKIP[pingora]="Pingora did not build"; return; }
      start pingora INT "$PINGORA_BIN" 127.0.0.1:$PGR 127.0.0.1:$UP
      wait_port $PGR && MPID[pingora]=${PID[pingora]} ;;
    libproxy)
      [ -n "$PROXY_CMD" ] || { SKIP[libproxy]="libproxy did not build"; return; }
      start libproxy INT env PROXY_QUIET=1 $(tls_env $LPX_TLS) $PROXY_CMD 127.0.0.1:$LPX 127.0.0.1:$UP
      wait_port $LPX && MPID[libproxy]=${PID[libproxy]} ;;
    libproxy-hooked)
      [ -n "$HOOKED_CMD" ] || { SKIP[libproxy-hooked]="HOOKED_CMD is empty"; return; }
      start libproxy-hooked INT env PROXY_QUIET=1 $(tls_env $HKD_TLS) $HOOKED_CMD 127.0.0.1:$HKD 127.0.0.1:$UP
      wait_port $HKD && MPID[libproxy-hooked]=${PID[libproxy-hooked]} ;;
  esac
  if [ -z "${MPID[$n]:-}" ]; then
    SKIP[$n]="did not start (see its log)"; tail -5 "$DIR/logs/$n.out" >&2 || true
  else
    # each path must answer 200 before it is measured
    local code; code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://127.0.0.1:${PORT[$n]}/ || true)
    [ "$code" = 200 ] || { SKIP[$n]="answered $code instead of 200"; return; }
    local size; size=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 5 http://127.0.0.1:${PORT[$n]}/1m || true)
    [ "$size" = "200 1048576" ] || SKIP[$n]="/1m answered '$size' instead of '200 1048576'"
  fi
}

# ---- one measured load --------------------------------------------------------------------------------
# measure SCENARIO PATH REP KIND FRONT_PORT cmd...    (the command runs on the load CPU)
measure() {
  local scen=$1 path=$2 rep=$3 kind=$4 fport=$5; shift 5
  local raw="$DIR/raw/$scen-$path-$rep.txt" upw=${MPID[direct]}
  local pid=${MPID[$path]}
  local c0 u0 a0 c1 u1 a1 tw lp t0 rc=0 us0 sy0 us1 sy1
  [ "$kind" = h2load ] || sleep 2     # keeps the warm-up's TIME_WAITs out of tw_new's window
  read -r us0 sy0 < <(cpu_us_sy "$pid")
  c0=$(cpu_ticks "$pid"); u0=$(cpu_ticks "$upw"); a0=$(up_accepts)
  t0=$(date +%s.%N)
  timeout $((DUR + 30)) taskset -c $LOADCPU "$@" >"$raw" 2>&1 & lp=$!
  sleep "$(awk -v d=$DUR 'BEGIN{print (d > 1.5 ? d - 0.4 : d * 0.7)}')"
  # keep-alive runs: the proxy<->upstream connections (wrk's own probe connection to the front would
  # count otherwise); newconn: both sides. Direct keep-alive runs have no proxy<->upstream hop.
  local twf="( sport = :$UP or dport = :$UP )"
  [ "$scen" = newconn ] && twf="( sport = :$fport or dport = :$fport or sport = :$UP or dport = :$UP )"
  tw=$(tw_new "$twf" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{print b - a}')" 2>"$raw.tw")
  wait $lp || rc=$?
  [ $rc = 0 ] || echo "exit=$rc" >>"$raw"
  head -5 "$raw.tw" >>"$raw"
  c1=$(cpu_ticks "$pid"); u1=$(cpu_ticks "$upw"); a1=$(up_accepts)
  read -r us1 sy1 < <(cpu_us_sy "$pid")
  rec scenario="$scen" path="$path" rep="$rep" kind="$kind" raw="$raw" \
      cpu_ticks=$((c1 - c0)) user_ticks=$((us1 - us0)) sys_ticks=$((sy1 - sy0)) up_ticks=$((u1 - u0)) up_accepts=$((a1 - a0 - 1)) \
      tw_delta="$([ "$path" = direct ] && [ "$scen" != newconn ] && echo - || echo "$tw")"
  if ! kill -0 "$pid" 2>/dev/null; then   # a path that died is not measured again
    local rc2=0; [ -n "${PID[$path]:-}" ] && { wait "${PID[$path]}" 2>/dev/null || rc2=$?; }
    note "$path died during $scen rep $rep (exit $rc2; log: $(tail -c 300 "$DIR/logs/$path.out" 2>/dev/null | tr '\n' ' '))"
    SKIP[$path]="died during $scen (exit $rc2)"; unset "PID[$path]"
  fi
}
warm() { timeout 20 taskset -c $LOADCPU "$@" >/dev/null 2>&1 || true; }
skip_all() { local scen=$1 why=$2 p; for p in "${PATHS[@]}"; do rec scenario="$scen" path="$p" status=skip note="$why"; done; }
live() { [ -z "${SKIP[$1]:-}" ]; }
skip_rec() { rec scenario="$1" path="$2" status=skip note="${SKIP[$2]}"; }

# wrk closed-loop scenarios
sc_wrk() {  # sc_wrk SCEN URLPATH CONNS REPS [extra wrk args]
  local scen=$1 urlp=$2 c=$3 reps=$4; shift 4
  command -v wrk >/dev/null || { skip_all "$scen" "wrk not installed"; return; }
  local rep p
  for rep in $(seq "$reps"); do
    for p in "${PATHS[@]}"; do
      live "$p" || { [ "$rep" = 1 ] && skip_rec "$scen" "$p"; continue; }
      local u=http://127.0.0.1:${PORT[$p]}$urlp
      warm wrk -t1 -c"$c" -d${WARM}s "$@" "$u"
      measure "$scen" "$p" "$rep" wrk "${PORT[$p]}" wrk -t1 -c"$c" -d${DUR}s --latency "$@" "$u"
    done
  done
}

# oha fixed-rate, latency-corrected
sc_rate() {  # sc_rate SCEN QPS REPS
  local scen=$1 q=$2 reps=$3 rep p
  command -v oha >/dev/null || { skip_all "$scen" "oha not installed"; return; }
  for rep in $(seq "$reps"); do
    for p in "${PATHS[@]}"; do
      live "$p" || { [ "$rep" = 1 ] && skip_rec "$scen" "$p"; continue; }
      local u=http://127.0.0.1:${PORT[$p]}/
      warm wrk -t1 -c$CONC -d${WARM}s "$u"
      measure "$scen" "$p" "$rep" oha "${PORT[$p]}" \
        oha --no-tui --output-format json -z ${DUR}s -c $CONC -q "$q" --latency-correction "$u"
    done
  done
}

# h2load, 50 connections x 2 streams = 100 streams
sc_h2() {  # sc_h2 SCEN h2c|tls
  local scen=$1 mode=$2 p port url rep
  local -A URL=()
  command -v h2load >/dev/null || { skip_all "$scen" "h2load not installed"; return; }
  for p in "${PATHS[@]}"; do
    live "$p" || { skip_rec "$scen" "$p"; continue; }
    if [ "$mode" = h2c ]; then
      port=${H2C[$p]:-}
      url=http://127.0.0.1:$port/
    else
      port=${TLS[$p]:-}
      url=https://127.0.0.1:$port/
    fi
    if [ -z "$port" ]; then
      local why="no h2c front configured"
      case $p in libproxy|libproxy-hooked) why="PROXY_H2C=0";;
                 pingora) why="not configured in the bench crate";; esac
      [ "$mode" = tls ] && [ "$p" != pingora ] && why="PROXY_TLS=0"
      [ "$mode" = tls ] && [ "$p" = pingora ] && why="the bench crate is built without TLS"
      rec scenario="$scen" path="$p" status=n/a note="$why"; continue
    fi
    URL[$p]=$url
  done
  # interleaved repetitions; full mode: a fixed request count (H2_N) so CPU/req has >= 50k requests
  local len="-D $DUR"; [ "$H2_N" -gt 0 ] && len="-n $H2_N"
  for rep in $(seq "$H2_REPS"); do
    for p in "${PATHS[@]}"; do
      [ -n "${URL[$p]:-}" ] || continue
      warm h2load -t1 -c$CONC -m2 -D $WARM "${URL[$p]}"
      port=${URL[$p]%/}; port=${port##*:}
      measure "$scen" "$p" "$rep" h2load "$port" h2load -t1 -c$CONC -m2 $len "${URL[$p]}"
    done
  done
}

# idle memory: a fresh process per proxy, a warm-up of 300 connections opened, answered and closed at the
# hold phase's concurrency (idle.py --warm), then IDLE_N held keep-alive connections
sc_idle() {
  local p held before after
  for p in nginx haproxy pingora libproxy libproxy-hooked; do
    live "$p" || { skip_rec idle "$p"; continue; }
    stop "$p"; unset "MPID[$p]"; sleep 0.3
    start_path "$p"
    live "$p" || { skip_rec idle "$p"; continue; }
    taskset -c $LOADCPU python3 "$ROOT/bench/idle.py" 127.0.0.1 "${PORT[$p]}" 300 --warm \
      2>"$DIR/logs/idle-warm-$p.err"
    sleep 0.5
    before=$(rss_kb "${MPID[$p]}")
    rm -f "$DIR/idle.ready"
    taskset -c $LOADCPU python3 "$ROOT/bench/idle.py" 127.0.0.1 "${PORT[$p]}" "$IDLE_N" "$DIR/idle.ready" \
      2>"$DIR/logs/idle-$p.err" & local ip=$!
    for _ in $(seq 600); do [ -s "$DIR/idle.ready" ] && break; kill -0 $ip 2>/dev/null || break; sleep 0.1; done
    sleep 0.5
    after=$(rss_kb "${MPID[$p]}")
    held=$(cat "$DIR/idle.ready" 2>/dev/null || echo 0)
    local est; est=$(ss -Htn state established "( sport = :${PORT[$p]} )" | wc -l)
    kill -TERM $ip 2>/dev/null; wait $ip 2>/dev/null || true
    rec scenario=idle path="$p" rep=1 kind=idle rss_before="$before" rss_after="$after" held="$held" established="$est"
    # leave a fresh-enough process behind (nothing runs after this scenario anyway)
  done
  rec scenario=idle path=direct status=n/a note="the upstream is not a fresh process here; protocol notes measured nginx as origin at 0.46 KB/conn"
}

# ---- main -----------------------------------------------------------------------------------------------
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
install_tools
build_all
write_configs
for p in "${PATHS[@]}"; do start_path "$p"; done
for p in "${PATHS[@]}"; do [ -z "${SKIP[$p]:-}" ] || note "$p skipped: ${SKIP[$p]}"; done
# The unmodified C example must proxy too (it is not the measured binary: 2 worker threads and an
# access-log line per request are hard-coded in it; bench/c/bench_proxy.c is its service with 1 worker).
EX=examples/c/build/release/minimal_proxy
if [ -x "$EX" ]; then
  start example INT "$EX" 127.0.0.1:28087 127.0.0.1:$UP
  if wait_port 28087 && [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://127.0.0.1:28087/)" = 200 ]; then
    note "smoke: the unmodified examples/c/minimal_proxy proxied GET / with 200 (not measured: 2 threads + access log are hard-coded; the measured libproxy is the same service with 1 worker, bench/c/bench_proxy.c)"
  else note "smoke: examples/c/minimal_proxy did not answer 200 through the upstream"; fi
  stop example
else note "examples/c/build/release/minimal_proxy was not built"; fi
[ -z "${SKIP[direct]:-}" ] || { log "the upstream did not start"; cat "$DIR/logs/upstream.out" "$DIR/logs/upstream.err" >&2; exit 1; }
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log "mode: $([ "$QUICK" = 1 ] && echo QUICK || echo full), ${DUR}s loads, $REPS reps; paths: ${PATHS[*]}"

want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }
want ka13 && sc_wrk ka13 / $CONC "$REPS"
want ka16k && sc_wrk ka16k /16k $CONC 1
want stream1m && sc_wrk stream1m /1m 10 1
want rate1k && sc_rate rate1k 1000 1
want rate10k && sc_rate rate10k 10000 "$REPS"
want h2c && sc_h2 h2c h2c
want tls && sc_h2 tls tls
want newconn && sc_wrk newconn / $CONC 1 -H "Connection: close"
want idle && sc_idle

T_END=$(date +%s)
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
META=$(python3 - "$QUICK" "$DUR" "$REPS" "$IDLE_N" "$((T_END - T_START))" "$PROXY_CMD" "$HOOKED_CMD" "$LOAD0" "$LOAD1" <<'PY'
import json, sys, subprocess, os
q, dur, reps, idle, secs, pcmd, hcmd, l0, l1 = sys.argv[1:]
def v(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip() or subprocess.run(c, shell=True, capture_output=True, text=True).stderr.strip()
    except Exception: return ""
print(json.dumps({"quick": q == "1", "duration_s": int(dur), "reps": int(reps), "idle_connections": int(idle),
  "runtime_s": int(secs), "loadavg_start": l0, "loadavg_end": l1, "proxy_cmd": pcmd, "hooked_cmd": hcmd or None,
  "git": v("git rev-parse --short HEAD"), "kernel": v("uname -r"), "cpus": os.cpu_count(),
  "nginx": v("nginx -v 2>&1"), "haproxy": v("haproxy -v | head -1"), "wrk": v("wrk -v 2>&1 | head -1"),
  "oha": v("oha --version"), "h2load": v("h2load --version | head -1")}))
PY
)
python3 "$ROOT/bench/report.py" render "$REC" "$NOTES" "$META" "$RES/$STAMP"
log "wrote bench/results/$STAMP.md and .json in $((T_END - T_START)) s"
