//go:build libproxy_bench

package proxy

/*
#include "lp.h"
*/
import "C"

import "unsafe"

// goProxyBenchNop is the floor: a C->Go call that does nothing (bench only).
//
//export goProxyBenchNop
func goProxyBenchNop(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return C.PROXY_CONTINUE
}
