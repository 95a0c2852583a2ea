#!/usr/bin/env bash
# Sourced by tests/run-all.sh: makes a Go >= 1.22 the `go` on PATH (the Go binding's go.mod needs
# it; h2spec is `go install`ed). A go already on PATH that is new enough is used as it is.
# Otherwise Debian's golang-go (1.19 on bookworm, too old to switch toolchains itself) fetches
# the Go toolchain as the module golang.org/toolchain through the Go module proxy, with the
# ordinary `go mod download`, and that toolchain's bin/ goes first on PATH.
GO_TOOLCHAIN_VERSION=${GO_TOOLCHAIN_VERSION:-1.22.12}

go_is_new_enough() {
  local v
  v=$(go env GOVERSION 2>/dev/null) || return 1 # go1.22.12
  v=${v#go}
  local major=${v%%.*} rest=${v#*.}
  local minor=${rest%%.*}
  [ "$major" -gt 1 ] || { [ "$major" -eq 1 ] && [ "${minor%%[!0-9]*}" -ge 22 ]; }
}

if ! go_is_new_enough; then
  if ! command -v go >/dev/null; then
    echo "== installing golang-go (Debian) to fetch a Go $GO_TOOLCHAIN_VERSION toolchain"
    ${SUDO:-} apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get install -y -qq golang-go
  fi
  arch=$(dpkg --print-architecture) # amd64, arm64
  mod="golang.org/toolchain@v0.0.1-go$GO_TOOLCHAIN_VERSION.linux-$arch"
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/libproxy-go"
  echo "== fetching $mod (go mod download)"
  dir=$(cd /tmp && GOPATH="$cache" GOFLAGS=-modcacherw GO111MODULE=on go mod download -json "$mod" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -f "$dir/bin/go" ] || { echo "no go binary in $mod ($dir)" >&2; exit 1; }
  # Module zips carry no file modes (the go command's own toolchain switch restores them too).
  chmod -R u+x "$dir/bin" "$dir/pkg/tool"
  export PATH="$dir/bin:$PATH"
  export GOTOOLCHAIN=local
  go_is_new_enough || { echo "$(go version) is still older than 1.22" >&2; exit 1; }
fi
echo "== using $(go version)"
