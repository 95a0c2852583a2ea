#!/usr/bin/env bash
# Added cost per request of one no-op Python hook (request_filter returning None = CONTINUE) against no
# hook, same run: both proxies have upstream_peer in Python (a proxy needs a peer), one worker each.
# Also the same pair with LIBPROXY_THREAD_STATE=off (ctypes' default: a new Python thread state per
# callback) to show what the per-worker thread state saves.
# Upstream: nginx, 1 worker, 13-byte body. wrk -t1 -c50 pinned to CPU 0, proxies and nginx to CPU 1.
# Metric: proxy process CPU-µs per request at saturation (bench-protocol §3), and req/s.
# Usage: bench/python/hook_cost.sh [seconds] [python]   (python must import libproxy; default:
#        bindings/python/.venv/bin/python from run-tests.sh, else python3 with PYTHONPATH)
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
DUR=${1:-5}
PY=${2:-bindings/python/.venv/bin/python}
[ -x "$PY" ] || { PY=python3; export PYTHONPATH=$PWD/bindings/python; }
for t in wrk nginx; do command -v $t >/dev/null || { apt-get update -qq; apt-get install -y -qq wrk nginx; }; done
[ -f target/release/libproxy.so ] || cargo build --release --lib >/dev/null
DIR=$(mktemp -d); mkdir -p "$DIR/logs" "$DIR/tmp"
# Free ports, chosen now (other services may run on this machine).
read -r UP P1 P2 P3 P4 < <(python3 -c 'import socket
ss=[socket.socket() for _ in range(5)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(*[s.getsockname()[1] for s in ss])')
ROUNDS=${ROUNDS:-3}
nginx_upstream "$DIR" $UP
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT
setsid taskset -c 1 nginx -c "$DIR/upstream.conf" -p "$DIR" </dev/null & pids+=($!)
declare -A PORT PID
PORTS=($P1 $P2 $P3 $P4); i=0
for v in nohook hook nohook-off hook-off; do
  port=${PORTS[$i]}; i=$((i + 1))
  mode=${v%-off}; ts=""; [ "$v" != "$mode" ] && ts=off
  LIBPROXY_THREAD_STATE=$ts setsid taskset -c 1 "$PY" bench/python/proxy.py "$mode" 127.0.0.1:$port 127.0.0.1:$UP </dev/null >/dev/null 2>"$DIR/logs/$v.err" &
  pids+=($!); PORT[$v]=$port; PID[$v]=$!
done
sleep 1.5
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
tck=$(getconf CLK_TCK)
for v in nohook hook nohook-off hook-off; do taskset -c 0 wrk -t1 -c50 -d1s http://127.0.0.1:${PORT[$v]}/ >/dev/null; done
# Interleaved rounds; the median of each variant is reported (the machine may be shared).
declare -A US RPS P50
for r in $(seq "$ROUNDS"); do
  for v in nohook hook nohook-off hook-off; do
    c0=$(cpu ${PID[$v]})
    out=$(taskset -c 0 wrk -t1 -c50 -d${DUR}s --latency http://127.0.0.1:${PORT[$v]}/)
    c1=$(cpu ${PID[$v]})
    reqs=$(awk '/requests in/{print $1}' <<<"$out")
    non2xx=$(awk '/Non-2xx/{print $NF}' <<<"$out"); [ -z "$non2xx" ] || { echo "$v: $non2xx non-2xx answers" >&2; exit 1; }
    US[$v]+="$(awk -v d=$((c1-c0)) -v n=$reqs -v t=$tck 'BEGIN{ printf "%.2f", d*1e6/t/n }') "
    RPS[$v]+="$(awk '/Requests\/sec/{print $2}' <<<"$out") "
    P50[$v]+="$(awk '$1=="50%"{print $2}' <<<"$out") "
  done
done
med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
echo "wrk -t1 -c50 -d${DUR}s, $ROUNDS interleaved rounds, medians; CPU-µs/req per round in brackets"
echo "| proxy | thread state | req/s | p50 | proxy CPU µs/req |"
echo "|---|---|---|---|---|"
declare -A M
for v in nohook hook nohook-off hook-off; do
  M[$v]=$(med <<<"${US[$v]}")
  ts=persistent; [ "${v%-off}" != "$v" ] && ts="per call (off)"
  echo "| ${v%-off} | $ts | $(med <<<"${RPS[$v]}") | $(echo ${P50[$v]} | cut -d' ' -f1) | ${M[$v]} [${US[$v]% }] |"
done
awk -v a=${M[nohook]} -v b=${M[hook]} -v c=${M[nohook-off]} -v d=${M[hook-off]} 'BEGIN{
  printf "\nadded cost of one no-op Python hook: %.2f µs/request (persistent thread state), %.2f µs/request (per-call thread state)\n", b-a, d-c }'
"$PY" -c 'import libproxy; print("thread state mode:", libproxy.THREAD_STATE_MODE, "| thread hooks in library:", libproxy.HAVE_THREAD_HOOKS)'
