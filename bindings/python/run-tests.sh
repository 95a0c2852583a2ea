#!/usr/bin/env bash
# Python binding tests: a fresh venv, `pip install` of the package (which runs cargo build --release
# and bundles libproxy.so), pytest + httpx (with brotli and zstandard), mypy --strict on the package
# and examples/python, then the suite against the installed package.
#   bindings/python/run-tests.sh [pytest args...]
# Env: VENV (default bindings/python/.venv), PYTHON (default python3).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON=${PYTHON:-python3}
VENV=${VENV:-$HERE/.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/python" -m pip install -q "$HERE"
"$VENV/bin/python" -m pip install -q pytest || { echo "pytest is required" >&2; exit 1; }
"$VENV/bin/python" -m pip install -q 'httpx[http2]' || { echo "httpx[http2] is required" >&2; exit 1; }
# httpx decodes br and zstd responses only with these installed (tests/test_compression.py).
"$VENV/bin/python" -m pip install -q brotli zstandard || { echo "brotli and zstandard are required" >&2; exit 1; }
# The package and the examples type-check strictly (the documented async-hook pattern included).
"$VENV/bin/python" -m pip install -q mypy || { echo "mypy is required" >&2; exit 1; }
echo "== mypy --strict (bindings/python/libproxy, examples/python)"
"$VENV/bin/python" -m mypy --strict --no-incremental "$HERE/libproxy" "$HERE/../../examples/python"
command -v openssl >/dev/null || { echo "the TLS tests need the openssl CLI (apt-get install openssl)" >&2; exit 1; }
# Run from the tests directory so that `import libproxy` is the installed package, not the source tree.
cd "$HERE/tests"
unset LIBPROXY_PATH
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@" .
