package proxy

// The //export trampoline of the certificate callback (registered by lp_set_cert_callback in
// lp.c). This file's preamble holds declarations only, as cgo requires for files with //export.

/*
#include "lp.h"
*/
import "C"

import "unsafe"

//export goProxyCertCallback
func goProxyCertCallback(user unsafe.Pointer, h *C.proxy_client_hello) C.proxy_action {
	return certCallback(user, h)
}
