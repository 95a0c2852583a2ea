//go:build libproxy_pkgconfig

package proxy

// Build with `-tags libproxy_pkgconfig` to find libproxy through pkg-config (module `libproxy`,
// installed from libproxy.pc.in); set PKG_CONFIG_PATH when it lives outside the default path.

/*
#cgo pkg-config: libproxy
*/
import "C"
