//go:build libproxy_bench

package proxy

/*
#include "lp.h" // guarded: proxy.h's proxy_str_from_cstr sits outside its include guard
*/
import "C"

import "unsafe"

// goProxyBenchNop is the floor: a C->Go call that does nothing (bench only).
//
//export goProxyBenchNop
func goProxyBenchNop(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return C.PROXY_CONTINUE
}
