//go:build !libproxy_pkgconfig

package proxy

// Default build: the header and library of this repository's `cargo build --release`.
// The library's SONAME is libproxy-rt.so.0, so target/release/libproxy-rt.so.0 must be a
// symlink to libproxy.so (run-tests.sh and `make -C examples/c` create it).
//
// Installed elsewhere? Either build with `-tags libproxy_pkgconfig` (uses libproxy.pc, see
// libproxy.pc.in) or add CGO_CFLAGS=-I<prefix>/include CGO_LDFLAGS="-L<prefix>/lib
// -Wl,-rpath,<prefix>/lib" to this default build.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lproxy -Wl,-rpath,${SRCDIR}/../../target/release
*/
import "C"
