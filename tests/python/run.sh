#!/usr/bin/env bash
# Python HTTP/2 client tests (httpx over TLS and h2c, the h2 library, grpcio) against the example proxy.
# Creates its own venv; installs httpx[http2], h2, grpcio and pytest from PyPI.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=target/venv-h2-tests
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q 'httpx[http2]==0.28.1' 'h2>=4.1' 'grpcio==1.68.1' pytest
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl; }
cargo build --release --example rust_proxy
PROXY_BIN=target/release/examples/rust_proxy "$VENV/bin/python" -m pytest -q tests/python "$@"
