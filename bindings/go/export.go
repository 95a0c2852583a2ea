package proxy

// The //export trampolines libproxy calls (registered by lp_set_callbacks in lp.c). This file's
// preamble holds declarations only, as cgo requires for files with //export.

/*
#include "lp.h"
*/
import "C"

import (
	"context"
	"runtime/cgo"
	"unsafe"
)

//export goProxyEarlyRequestFilter
func goProxyEarlyRequestFilter(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseEarlyRequestFilter)
}

//export goProxyRequestFilter
func goProxyRequestFilter(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseRequestFilter)
}

//export goProxyUpstreamPeer
func goProxyUpstreamPeer(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseUpstreamPeer)
}

//export goProxyConnectedToUpstream
func goProxyConnectedToUpstream(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseConnectedToUpstream)
}

//export goProxyUpstreamRequestFilter
func goProxyUpstreamRequestFilter(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseUpstreamRequestFilter)
}

//export goProxyRequestBodyFilter
func goProxyRequestBodyFilter(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseRequestBodyFilter)
}

//export goProxyUpstreamResponseFilter
func goProxyUpstreamResponseFilter(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseUpstreamResponseFilter)
}

//export goProxyResponseFilter
func goProxyResponseFilter(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseResponseFilter)
}

//export goProxyUpstreamResponseBodyFilter
func goProxyUpstreamResponseBodyFilter(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseUpstreamResponseBodyFilter)
}

//export goProxyResponseBodyFilter
func goProxyResponseBodyFilter(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseResponseBodyFilter)
}

//export goProxyLogging
func goProxyLogging(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseLogging)
}

//export goProxyFailToConnect
func goProxyFailToConnect(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseFailToConnect)
}

//export goProxyErrorWhileProxy
func goProxyErrorWhileProxy(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseErrorWhileProxy)
}

//export goProxyFailToProxy
func goProxyFailToProxy(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseFailToProxy)
}

//export goProxyRequestEnd
func goProxyRequestEnd(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseRequestEnd)
}

//export goProxyRequestCacheFilter
func goProxyRequestCacheFilter(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseRequestCacheFilter)
}

//export goProxyCacheKeyCallback
func goProxyCacheKeyCallback(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseCacheKeyCallback)
}

//export goProxyCacheHitFilter
func goProxyCacheHitFilter(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseCacheHitFilter)
}

//export goProxyResponseCacheFilter
func goProxyResponseCacheFilter(user unsafe.Pointer, s *C.proxy_session) C.proxy_action {
	return dispatch(user, s, PhaseResponseCacheFilter)
}

//export goProxyLog
func goProxyLog(user unsafe.Pointer, level C.uint32_t, msg C.proxy_str) {
	defer func() { _ = recover() }() // a broken logger must not take the process down
	c := cgo.Handle(uintptr(user)).Value().(*serverCore)
	l := c.logger.Load()
	if l == nil {
		return
	}
	lvl := slogLevels[C.PROXY_LOG_ERROR]
	if level >= C.PROXY_LOG_ERROR && int(level) < len(slogLevels) {
		lvl = slogLevels[level]
	}
	l.Log(context.Background(), lvl, gostr(msg), "source", "libproxy")
}
