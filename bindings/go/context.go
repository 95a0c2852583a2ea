package proxy

/*
#include "lp.h"
*/
import "C"

import (
	"context"
	"runtime/cgo"
)

// reqState is what the binding keeps per request in the session's user slot
// (proxy_session_set_user): the value of SetUser and the request's context. It is released, and
// the context cancelled, in request_end, which the binding registers for every service (lp.c
// crosses into Go there only for requests that have a reqState).
type reqState struct {
	user   any
	ctx    context.Context
	cancel context.CancelFunc
}

// doneCtx is what Context returns for a session that may no longer be used.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// Context returns the request's context, like net/http's Request.Context: the same value in
// every hook of one request, cancelled when the library ends the request (answered, failed, the
// client gone, the pending deadline passed: after request_end) or the server stops (Shutdown or
// Close returned). Pass it to the work an Async function starts, so that work stops when nobody
// waits for its answer any more. The library does not watch a client's connection while a hook
// is Pending, so a client that disconnects then is seen at the pending deadline, not at once. A
// Session used after its hook returned gives an already cancelled context.
func (s *Session) Context() context.Context {
	p, err := s.ptr()
	if err != nil {
		return doneCtx
	}
	st, err := requestState(p, true)
	if err != nil {
		return doneCtx
	}
	if st.ctx == nil {
		parent := context.Background()
		if core := s.hk.core.Load(); core != nil {
			parent = core.ctx
		}
		st.ctx, st.cancel = context.WithCancel(parent)
	}
	return st.ctx
}

// requestState returns the reqState of the request of cs, or (create) a new one stored there.
func requestState(cs *C.proxy_session, create bool) (*reqState, error) {
	if h := C.lp_get_user(cs); h != 0 {
		return cgo.Handle(h).Value().(*reqState), nil
	}
	if !create {
		return nil, nil
	}
	st := &reqState{}
	h := cgo.NewHandle(st)
	if err := check("proxy_session_set_user", C.lp_set_user(cs, C.uintptr_t(h))); err != nil {
		h.Delete()
		return nil, err
	}
	return st, nil
}

// releaseState (request_end) deletes the request's reqState and cancels its context.
func releaseState(cs *C.proxy_session) {
	if h := C.lp_get_user(cs); h != 0 {
		C.lp_set_user(cs, 0)
		st := cgo.Handle(h).Value().(*reqState)
		cgo.Handle(h).Delete()
		if st.cancel != nil {
			st.cancel()
		}
	}
}
