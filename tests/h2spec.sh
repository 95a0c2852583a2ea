#!/usr/bin/env bash
# Runs h2spec (HTTP/2 conformance, h2c with prior knowledge) against the Rust example proxy with
# its embedded demo origin. Prints passed/total and the failing test ids. Exits non-zero only when
# the run itself fails (build, install, proxy start, h2spec crash), not for failing cases.
#
# Usage: tests/h2spec.sh [extra h2spec args, e.g. -S for strict or a spec id like http2/6.5]
set -euo pipefail

cd "$(dirname "$0")/.."

GOBIN_DIR="$(go env GOPATH 2>/dev/null)/bin"
H2SPEC="$(command -v h2spec || true)"
if [[ -z "$H2SPEC" && -x "$GOBIN_DIR/h2spec" ]]; then
    H2SPEC="$GOBIN_DIR/h2spec"
fi
if [[ -z "$H2SPEC" ]]; then
    echo "installing h2spec..." >&2
    go install github.com/summerwind/h2spec/cmd/h2spec@latest
    H2SPEC="$GOBIN_DIR/h2spec"
fi

cargo build --release --example rust_proxy >&2
BIN=target/release/examples/rust_proxy

# A free port: bind :0, read it back, release it.
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"

LOG="$(mktemp)"
OUT="$(mktemp)"
# H2SPEC_SHARED=1 runs against a port that also serves HTTP/1.1 (the default configuration): there
# an invalid preface is answered as a bad HTTP/1 request (400) rather than closed, which h2spec
# counts as one failure (http2/3.5/2). By default the port serves HTTP/2 only.
if [[ -n "${H2SPEC_SHARED:-}" ]]; then H2ONLY=(); else H2ONLY=(PROXY_H2_ONLY=1); fi
env PROXY_QUIET=1 "${H2ONLY[@]}" "$BIN" "127.0.0.1:$PORT" >"$LOG" 2>&1 &
PROXY_PID=$!
cleanup() {
    kill "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
    rm -f "$LOG" "$OUT"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        break
    fi
    if ! kill -0 "$PROXY_PID" 2>/dev/null; then
        echo "proxy exited:" >&2
        cat "$LOG" >&2
        exit 1
    fi
    sleep 0.1
done

set +e
"$H2SPEC" -h 127.0.0.1 -p "$PORT" -o 3 "$@" >"$OUT" 2>&1
RC=$?
set -e

if ! kill -0 "$PROXY_PID" 2>/dev/null; then
    echo "the proxy died during the run:" >&2
    cat "$LOG" >&2
    exit 1
fi

SUMMARY="$(grep -E '^[0-9]+ tests, [0-9]+ passed' "$OUT" | tail -n 1 || true)"
if [[ -z "$SUMMARY" ]]; then
    echo "h2spec did not produce a summary (exit $RC):" >&2
    cat "$OUT" >&2
    exit 1
fi

# The "Failures:" section repeats each failing case with its id ("6.5.3. ..." under its section,
# "  2: ..." for the case) and the expected/actual lines.
echo "== h2spec failures =="
sed -n '/^Failures:/,$p' "$OUT" | sed '/^Finished in/,$d'
TOTAL="$(echo "$SUMMARY" | sed -E 's/^([0-9]+) tests.*/\1/')"
PASSED="$(echo "$SUMMARY" | sed -E 's/^[0-9]+ tests, ([0-9]+) passed.*/\1/')"
echo "== $SUMMARY =="
echo "h2spec: $PASSED/$TOTAL passed"
exit 0
