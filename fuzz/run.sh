#!/usr/bin/env bash
# Runs each cargo-fuzz target for a given time and prints its executions and coverage.
#   fuzz/run.sh [seconds-per-target] [target...]     (default: 60 s, every target)
# FUZZ_ARGS adds libFuzzer flags (the test command pins -seed and -runs so that it is repeatable).
# Needs the nightly toolchain and cargo-fuzz; installs them when missing. Crashes are kept in
# fuzz/artifacts/<target>/ and make the script fail. Each run first rewrites the seed-* files of
# fuzz/corpus/<target>/ from the test tables (fuzz/seed.py: the parser, chunked and smuggling
# tables' heads and bodies); the corpus then grows there (nothing in it is committed: the seeds
# are derived, the rest is found).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
command -v rustup >/dev/null || { echo "rustup is required" >&2; exit 1; }
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install --locked cargo-fuzz
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo +nightly fuzz list); fi
command -v python3 >/dev/null || { echo "python3 is required (fuzz/seed.py)" >&2; exit 1; }
python3 seed.py corpus
cargo +nightly fuzz build
rc=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  if cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    rc=1
    tail -40 "$log"
  fi
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "$t: $status, ${execs:-?} executions in ${secs} s; ${done_line:-no final stats}"
  rm -f "$log"
done
exit $rc
