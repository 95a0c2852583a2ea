//go:build !libproxy_pkgconfig

package proxy

// Default build: the header and library of this repository's `cargo build --release`.
// The library's SONAME is libproxy-rt.so.0, so target/release/libproxy-rt.so.0 must be a
// symlink to libproxy.so (build.rs leaves it; `make` at the root remakes it).
//
// Installed elsewhere? Build with `-tags libproxy_pkgconfig` (pkg-config module libproxy-rt,
// written by `make install`).

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lproxy -Wl,-rpath,${SRCDIR}/../../target/release
*/
import "C"
