//go:build libproxy_pkgconfig

package proxy

// Build with `-tags libproxy_pkgconfig` to use an installed libproxy (`make install` at the
// repository root) through pkg-config's module `libproxy-rt`; set PKG_CONFIG_PATH to
// <prefix>/lib/pkgconfig when the prefix is not one pkg-config searches.

/*
#cgo pkg-config: libproxy-rt
*/
import "C"
