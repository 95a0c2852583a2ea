#!/usr/bin/env bash
# Where the proxy's CPU goes: user vs sys µs/request (utime / stime of the proxy process from
# /proc/PID/stat, pooled over the interleaved repetitions) for every path, nginx as the reference.
# A thin wrapper around bench/run.sh (same setup, pinning and results files):
#   bench/cpu_split.sh                 # ka13 (H1 keep-alive) and h2c, full-length loads
#   SCEN="ka13" QUICK=1 bench/cpu_split.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(ONLY="${SCEN:-ka13 h2c}" bench/run.sh)
awk '/^### Where the CPU goes/{p=1} p&&/^### /&&!/Where the CPU goes/{p=0} p' <<<"$out"
