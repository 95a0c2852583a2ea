package proxy

/*
#include "lp.h"
*/
import "C"

import (
	"fmt"
	"log/slog"
	"runtime/cgo"
	"runtime/debug"
	"sync/atomic"
	"unsafe"
)

// Action is what a hook tells the proxy to do next (proxy_action).
type Action int32

// Actions, mirroring PROXY_CONTINUE / _RESPONDED / _PENDING / _ERROR.
const (
	// Continue goes on with the next phase.
	Continue Action = C.PROXY_CONTINUE
	// Responded: the hook answered with Session.Respond (early_request_filter, request_filter,
	// fail_to_proxy); the upstream is not contacted.
	Responded Action = C.PROXY_RESPONDED
	// Pending: the hook decides later and resumes the session from any goroutine
	// (Session.Async makes this one line).
	Pending Action = C.PROXY_PENDING
	// Fail fails the request (PROXY_ERROR): 500 before the response head, a cut connection after.
	Fail Action = C.PROXY_ERROR
)

func (a Action) String() string {
	switch a {
	case Continue:
		return "Continue"
	case Responded:
		return "Responded"
	case Pending:
		return "Pending"
	case Fail:
		return "Fail"
	}
	return fmt.Sprintf("Action(%d)", int32(a))
}

// The optional interfaces of a handler (Service.SetHandler). Only the phases whose interface the
// handler implements are registered with libproxy; the others stay NULL and cost nothing. Hooks
// run on libproxy worker threads, concurrently for different requests, and must not block:
// return s.Async(func() proxy.Action { ... }) to decide in a goroutine. A panic in a hook is
// recovered, logged, and fails that request (500 before the response head).
//
// Order: EarlyRequestFilter → RequestFilter → UpstreamPeer → (connect) → ConnectedToUpstream →
// UpstreamRequestFilter → RequestBodyFilter* → UpstreamResponseFilter → ResponseFilter →
// UpstreamResponseBodyFilter* / ResponseBodyFilter* → Logging → RequestEnd. On a connect failure
// FailToConnect runs, on a later upstream failure ErrorWhileProxy, then UpstreamPeer again if a
// retry is allowed; when the request fails for good FailToProxy runs before Logging.
type (
	// EarlyRequestFilter runs before anything else looks at the request.
	EarlyRequestFilter interface {
		EarlyRequestFilter(s *Session) Action
	}
	// RequestFilter may answer by itself (Session.Respond + Responded).
	RequestFilter interface{ RequestFilter(s *Session) Action }
	// UpstreamPeer must choose the upstream with Session.SetPeer; called again for each retry.
	UpstreamPeer interface{ UpstreamPeer(s *Session) Action }
	// ConnectedToUpstream: an upstream connection is ready (Session.UpstreamReused).
	ConnectedToUpstream interface {
		ConnectedToUpstream(s *Session) Action
	}
	// UpstreamRequestFilter edits HeadersUpstreamRequest before it is sent.
	UpstreamRequestFilter interface {
		UpstreamRequestFilter(s *Session) Action
	}
	// RequestBodyFilter sees each request body chunk (Session.Body / SetBody).
	RequestBodyFilter interface{ RequestBodyFilter(s *Session) Action }
	// UpstreamResponseFilter sees the upstream response head as received.
	UpstreamResponseFilter interface {
		UpstreamResponseFilter(s *Session) Action
	}
	// ResponseFilter edits the response head about to go downstream.
	ResponseFilter interface{ ResponseFilter(s *Session) Action }
	// UpstreamResponseBodyFilter sees each upstream response body chunk as received.
	UpstreamResponseBodyFilter interface {
		UpstreamResponseBodyFilter(s *Session) Action
	}
	// ResponseBodyFilter edits each response body chunk about to go downstream.
	ResponseBodyFilter interface{ ResponseBodyFilter(s *Session) Action }
	// Logging runs once per request, last (Session.Summary, Session.ErrorText). Cannot wait.
	Logging interface{ Logging(s *Session) }
	// FailToConnect: connecting failed (Session.ErrorText, SetRetry). Cannot wait; Fail forbids
	// a retry.
	FailToConnect interface{ FailToConnect(s *Session) Action }
	// ErrorWhileProxy: proxying failed after connecting (Session.ErrorText, SetRetry). Cannot
	// wait.
	ErrorWhileProxy interface{ ErrorWhileProxy(s *Session) Action }
	// FailToProxy: the request failed for good; may answer with Session.Respond + Responded.
	FailToProxy interface{ FailToProxy(s *Session) Action }
	// RequestEnd runs after Logging, also when the request was cut short. Implementing it also
	// enables Session.SetUser (the value is released after RequestEnd).
	RequestEnd interface{ RequestEnd(s *Session) }
	// RequestCacheFilter: with a Cache on the service, for a GET or HEAD;
	// Session.SetCache(CacheBypass, 1) keeps it away from the cache. Cannot wait.
	RequestCacheFilter interface{ RequestCacheFilter(s *Session) Action }
	// CacheKeyCallback: Session.SetCacheKey replaces the default key (scheme, host, path and
	// query). Cannot wait.
	CacheKeyCallback interface{ CacheKeyCallback(s *Session) Action }
	// CacheHitFilter: a stored response was found; Session.SetCache(CacheExpire, 1) treats it as
	// expired. Cannot wait.
	CacheHitFilter interface{ CacheHitFilter(s *Session) Action }
	// ResponseCacheFilter: after UpstreamResponseFilter, Session.SetCache(CacheStore / CacheTTL)
	// decides whether the response is stored and for how long (preset to what RFC 9111 says).
	// Cannot wait.
	ResponseCacheFilter interface{ ResponseCacheFilter(s *Session) Action }
)

// Phase is the phase a hook runs in (proxy_phase).
type Phase uint32

// Phases, mirroring PROXY_PHASE_*.
const (
	PhaseNone                       Phase = C.PROXY_PHASE_NONE
	PhaseEarlyRequestFilter         Phase = C.PROXY_PHASE_EARLY_REQUEST_FILTER
	PhaseRequestFilter              Phase = C.PROXY_PHASE_REQUEST_FILTER
	PhaseUpstreamPeer               Phase = C.PROXY_PHASE_UPSTREAM_PEER
	PhaseConnectedToUpstream        Phase = C.PROXY_PHASE_CONNECTED_TO_UPSTREAM
	PhaseUpstreamRequestFilter      Phase = C.PROXY_PHASE_UPSTREAM_REQUEST_FILTER
	PhaseRequestBodyFilter          Phase = C.PROXY_PHASE_REQUEST_BODY_FILTER
	PhaseUpstreamResponseFilter     Phase = C.PROXY_PHASE_UPSTREAM_RESPONSE_FILTER
	PhaseResponseFilter             Phase = C.PROXY_PHASE_RESPONSE_FILTER
	PhaseUpstreamResponseBodyFilter Phase = C.PROXY_PHASE_UPSTREAM_RESPONSE_BODY_FILTER
	PhaseResponseBodyFilter         Phase = C.PROXY_PHASE_RESPONSE_BODY_FILTER
	PhaseLogging                    Phase = C.PROXY_PHASE_LOGGING
	PhaseFailToConnect              Phase = C.PROXY_PHASE_FAIL_TO_CONNECT
	PhaseErrorWhileProxy            Phase = C.PROXY_PHASE_ERROR_WHILE_PROXY
	PhaseFailToProxy                Phase = C.PROXY_PHASE_FAIL_TO_PROXY
	PhaseRequestEnd                 Phase = C.PROXY_PHASE_REQUEST_END
	PhaseRequestCacheFilter         Phase = C.PROXY_PHASE_REQUEST_CACHE_FILTER
	PhaseCacheKeyCallback           Phase = C.PROXY_PHASE_CACHE_KEY_CALLBACK
	PhaseCacheHitFilter             Phase = C.PROXY_PHASE_CACHE_HIT_FILTER
	PhaseResponseCacheFilter        Phase = C.PROXY_PHASE_RESPONSE_CACHE_FILTER
	numPhases                             = 20
)

// phaseNames and phaseMayPend are the library's phase table (proxy_phase_name,
// proxy_phase_may_pend), read once rather than copied here.
var phaseNames, phaseMayPend = loadPhases()

func loadPhases() (names [numPhases]string, mayPend [numPhases]bool) {
	for p := range names {
		if n := C.proxy_phase_name(C.proxy_phase(p)); n != nil {
			names[p] = C.GoString(n)
			mayPend[p] = C.proxy_phase_may_pend(C.proxy_phase(p)) != 0
		}
	}
	return names, mayPend
}

func (p Phase) String() string {
	if int(p) < len(phaseNames) && phaseNames[p] != "" {
		return phaseNames[p]
	}
	return fmt.Sprintf("Phase(%d)", uint32(p))
}

// canWait reports whether a hook of phase p may return Pending.
func (p Phase) canWait() bool {
	return int(p) < len(phaseMayPend) && phaseMayPend[p]
}

// hooks is the per-service state that C reaches through a cgo.Handle.
type hooks struct {
	fns    [numPhases]func(*Session) Action
	hasEnd bool
	core   atomic.Pointer[serverCore] // set when the service is added to a server
}

// newHooks collects the phases h implements and the bit mask for lp_set_callbacks.
func newHooks(h any) (*hooks, uint32) {
	hk := &hooks{}
	set := func(p Phase, f func(*Session) Action) { hk.fns[p] = f }
	if v, ok := h.(EarlyRequestFilter); ok {
		set(PhaseEarlyRequestFilter, v.EarlyRequestFilter)
	}
	if v, ok := h.(RequestFilter); ok {
		set(PhaseRequestFilter, v.RequestFilter)
	}
	if v, ok := h.(UpstreamPeer); ok {
		set(PhaseUpstreamPeer, v.UpstreamPeer)
	}
	if v, ok := h.(ConnectedToUpstream); ok {
		set(PhaseConnectedToUpstream, v.ConnectedToUpstream)
	}
	if v, ok := h.(UpstreamRequestFilter); ok {
		set(PhaseUpstreamRequestFilter, v.UpstreamRequestFilter)
	}
	if v, ok := h.(RequestBodyFilter); ok {
		set(PhaseRequestBodyFilter, v.RequestBodyFilter)
	}
	if v, ok := h.(UpstreamResponseFilter); ok {
		set(PhaseUpstreamResponseFilter, v.UpstreamResponseFilter)
	}
	if v, ok := h.(ResponseFilter); ok {
		set(PhaseResponseFilter, v.ResponseFilter)
	}
	if v, ok := h.(UpstreamResponseBodyFilter); ok {
		set(PhaseUpstreamResponseBodyFilter, v.UpstreamResponseBodyFilter)
	}
	if v, ok := h.(ResponseBodyFilter); ok {
		set(PhaseResponseBodyFilter, v.ResponseBodyFilter)
	}
	if v, ok := h.(Logging); ok {
		set(PhaseLogging, func(s *Session) Action { v.Logging(s); return Continue })
	}
	if v, ok := h.(FailToConnect); ok {
		set(PhaseFailToConnect, v.FailToConnect)
	}
	if v, ok := h.(ErrorWhileProxy); ok {
		set(PhaseErrorWhileProxy, v.ErrorWhileProxy)
	}
	if v, ok := h.(FailToProxy); ok {
		set(PhaseFailToProxy, v.FailToProxy)
	}
	if v, ok := h.(RequestEnd); ok {
		set(PhaseRequestEnd, func(s *Session) Action { v.RequestEnd(s); return Continue })
		hk.hasEnd = true
	}
	if v, ok := h.(RequestCacheFilter); ok {
		set(PhaseRequestCacheFilter, v.RequestCacheFilter)
	}
	if v, ok := h.(CacheKeyCallback); ok {
		set(PhaseCacheKeyCallback, v.CacheKeyCallback)
	}
	if v, ok := h.(CacheHitFilter); ok {
		set(PhaseCacheHitFilter, v.CacheHitFilter)
	}
	if v, ok := h.(ResponseCacheFilter); ok {
		set(PhaseResponseCacheFilter, v.ResponseCacheFilter)
	}
	var mask uint32
	for p, f := range hk.fns {
		if f != nil {
			mask |= 1 << p
		}
	}
	return hk, mask
}

// dispatch runs the hook of phase p for C session cs; called by the //export trampolines.
func dispatch(user unsafe.Pointer, cs *C.proxy_session, p Phase) (ret C.proxy_action) {
	ret = C.PROXY_ERROR
	var hk *hooks
	var s *Session
	defer func() {
		if p == PhaseRequestEnd {
			releaseState(cs)
		}
		if r := recover(); r != nil {
			ret = C.PROXY_ERROR
			if s != nil {
				s.done.Store(true)
			}
			var core *serverCore
			if hk != nil {
				core = hk.core.Load()
			}
			core.log(slog.LevelError, "libproxy: panic in hook; failing the request",
				"phase", p.String(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	hk = cgo.Handle(uintptr(user)).Value().(*hooks)
	s = &Session{c: cs, hk: hk, phase: p}
	a := Continue
	if f := hk.fns[p]; f != nil { // nil: request_end registered only to release reqState
		a = f(s)
	}
	if a != Pending || !p.canWait() {
		s.done.Store(true)
	}
	return C.proxy_action(a)
}
