package proxy

// The //export trampolines of L4 services (registered by lp_set_l4_callbacks in lp.c). This
// file's preamble holds declarations only, as cgo requires for files with //export.

/*
#include "lp.h"
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

//export goL4UpstreamPeer
func goL4UpstreamPeer(user unsafe.Pointer, c *C.proxy_l4_session) (action C.proxy_action) {
	s := &L4Session{c: c}
	defer func() {
		s.done = true
		if recover() != nil {
			action = C.PROXY_ERROR // a panicking handler closes the connection, never the process
		}
	}()
	h := cgo.Handle(user).Value().(L4Handler)
	peer, err := h.UpstreamPeer(s)
	if err != nil {
		return C.PROXY_ERROR
	}
	if peer.Address != "" {
		if s.setPeer(peer) != nil {
			return C.PROXY_ERROR
		}
		s.chosen = true
	}
	if !s.chosen {
		return C.PROXY_ERROR
	}
	return C.PROXY_CONTINUE
}

//export goL4Logging
func goL4Logging(user unsafe.Pointer, c *C.proxy_l4_session) C.proxy_action {
	s := &L4Session{c: c}
	defer func() {
		s.done = true
		_ = recover()
	}()
	if l, ok := cgo.Handle(user).Value().(L4Logger); ok {
		l.L4Logging(s)
	}
	return C.PROXY_CONTINUE
}
