package proxy

/*
#include <stdlib.h>
#include "lp.h"
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Algorithm is how a Group chooses among its backends (PROXY_GROUP_*).
type Algorithm uint32

// Algorithms, mirroring PROXY_GROUP_*.
const (
	// RoundRobin is nginx's smooth weighted round robin.
	RoundRobin Algorithm = C.PROXY_GROUP_ROUND_ROBIN
	// Random is weighted random.
	Random Algorithm = C.PROXY_GROUP_RANDOM
	// LeastOutstanding takes the less loaded of two random backends.
	LeastOutstanding Algorithm = C.PROXY_GROUP_LEAST_OUTSTANDING
	// Ketama hashes the key as nginx's `hash $key consistent` does.
	Ketama Algorithm = C.PROXY_GROUP_KETAMA
	// Maglev hashes the key through a Maglev table.
	Maglev Algorithm = C.PROXY_GROUP_MAGLEV
)

// GroupSetting selects a setting for Group.Set (PROXY_GROUP_*).
type GroupSetting uint32

// Group settings, mirroring PROXY_GROUP_MAX_IN_FLIGHT and PROXY_GROUP_EJECT_*.
const (
	// MaxInFlight caps requests in flight per backend (0: none); all full is a 503.
	MaxInFlight GroupSetting = C.PROXY_GROUP_MAX_IN_FLIGHT
	// MaxConnections caps HTTP/1 connections per backend, busy or pooled (0: none); a backend
	// with that many open and all busy is skipped, all so is a 503.
	MaxConnections GroupSetting = C.PROXY_GROUP_MAX_CONNECTIONS
	// EjectFailures is the failures in a row that eject a backend (0: passive health off).
	EjectFailures GroupSetting = C.PROXY_GROUP_EJECT_FAILURES
	// EjectBaseMS is the first ejection's length; the n-th in a row lasts n times as long.
	EjectBaseMS GroupSetting = C.PROXY_GROUP_EJECT_BASE_MS
	// EjectMaxMS is the longest ejection.
	EjectMaxMS GroupSetting = C.PROXY_GROUP_EJECT_MAX_MS
	// EjectMaxPercent is the most of the group ejected at once (one backend always may be).
	EjectMaxPercent GroupSetting = C.PROXY_GROUP_EJECT_MAX_PERCENT
)

// HealthEvent is what a health listener hears (PROXY_HEALTH_*).
type HealthEvent uint32

// Health events, mirroring PROXY_HEALTH_*.
const (
	HealthUp         HealthEvent = C.PROXY_HEALTH_UP
	HealthDown       HealthEvent = C.PROXY_HEALTH_DOWN
	HealthEjected    HealthEvent = C.PROXY_HEALTH_EJECTED
	HealthReadmitted HealthEvent = C.PROXY_HEALTH_READMITTED
)

// BackendFigures is one backend's figures at one moment.
type BackendFigures struct {
	Name                                                         string
	Weight, Requests, Failures, Ejections, InFlight, Connections uint64
	Healthy, Ejected                                             bool
}

// Group is an upstream group (proxy_group): backends chosen by an algorithm, with passive and
// active health. Safe for concurrent use. The library names it by an id, so calls after Close
// answer ErrGone rather than touching freed memory. Pick from it in UpstreamPeer with
// Session.Pick.
type Group struct {
	mu     sync.Mutex
	id     uint64
	closed bool
	fn     atomic.Pointer[func(string, HealthEvent)]
	self   cgo.Handle // what the C listener gets; made by the first OnHealth, deleted by Close
}

// NewGroup mirrors proxy_group_new.
func NewGroup(name string, alg Algorithm) (*Group, error) {
	if err := checkABI(); err != nil {
		return nil, err
	}
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	var id C.uint64_t
	if err := check("proxy_group_new", C.proxy_group_new(cs, C.uint32_t(alg), &id)); err != nil {
		return nil, err
	}
	g := &Group{id: uint64(id)}
	runtime.SetFinalizer(g, func(g *Group) { _ = g.Close() })
	return g, nil
}

// ID is the group's id in the C ABI.
func (g *Group) ID() uint64 { return g.id }

// AddBackend mirrors proxy_group_add_backend: peer with weight 1..256, named name ("" for the
// address; Ketama and Maglev hash the name).
func (g *Group) AddBackend(peer Peer, weight uint32, name string) error {
	cp, free := peer.toC()
	defer free()
	var cn *C.char
	if name != "" {
		cn = C.CString(name)
		defer C.free(unsafe.Pointer(cn))
	}
	err := check("proxy_group_add_backend", C.proxy_group_add_backend(C.uint64_t(g.id), cn, &cp, C.uint32_t(weight)))
	runtime.KeepAlive(g)
	return err
}

// RemoveBackend mirrors proxy_group_remove_backend.
func (g *Group) RemoveBackend(name string) error {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	err := check("proxy_group_remove_backend", C.proxy_group_remove_backend(C.uint64_t(g.id), cn))
	runtime.KeepAlive(g)
	return err
}

// SetBackends mirrors proxy_group_set_backends: replaces every backend at once with plaintext
// ones at addrs (weights nil: all 1).
func (g *Group) SetBackends(addrs []string, weights []uint32) error {
	if weights != nil && len(weights) != len(addrs) {
		return &Error{Op: "proxy_group_set_backends", Code: CodeInvalidParameter, Detail: "one weight per address"}
	}
	n := len(addrs)
	arr := (*[1 << 20]*C.char)(C.malloc(C.size_t(max(n, 1)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))[:max(n, 1):max(n, 1)]
	defer C.free(unsafe.Pointer(&arr[0]))
	for i, a := range addrs {
		arr[i] = C.CString(a)
		defer C.free(unsafe.Pointer(arr[i]))
	}
	var wp *C.uint32_t
	if weights != nil && n > 0 {
		w := (*[1 << 20]C.uint32_t)(C.malloc(C.size_t(n) * 4))[:n:n]
		defer C.free(unsafe.Pointer(&w[0]))
		for i, x := range weights {
			w[i] = C.uint32_t(x)
		}
		wp = &w[0]
	}
	err := check("proxy_group_set_backends", C.proxy_group_set_backends(C.uint64_t(g.id), &arr[0], wp, C.size_t(n)))
	runtime.KeepAlive(g)
	return err
}

// Set mirrors proxy_group_set.
func (g *Group) Set(which GroupSetting, value uint64) error {
	err := check("proxy_group_set", C.proxy_group_set(C.uint64_t(g.id), C.uint32_t(which), C.uint64_t(value)))
	runtime.KeepAlive(g)
	return err
}

// Figures reads every backend's figures (proxy_group_backend_count, _figure, _name).
func (g *Group) Figures() ([]BackendFigures, error) {
	defer runtime.KeepAlive(g)
	id := C.uint64_t(g.id)
	var n C.size_t
	if err := check("proxy_group_backend_count", C.proxy_group_backend_count(id, &n)); err != nil {
		return nil, err
	}
	out := make([]BackendFigures, 0, int(n))
	buf := (*[256]byte)(C.malloc(256))
	defer C.free(unsafe.Pointer(buf))
	for i := C.size_t(0); i < n; i++ {
		var l C.size_t
		r := C.proxy_group_backend_name(id, i, (*C.char)(unsafe.Pointer(buf)), 256, &l)
		if r == C.PROXY_NOT_FOUND {
			break // the list shrank meanwhile
		}
		if err := check("proxy_group_backend_name", r); err != nil {
			return nil, err
		}
		f := BackendFigures{Name: string(buf[:l])}
		for _, x := range []struct {
			which C.uint32_t
			to    *uint64
		}{
			{C.PROXY_BACKEND_WEIGHT, &f.Weight}, {C.PROXY_BACKEND_REQUESTS, &f.Requests},
			{C.PROXY_BACKEND_FAILURES, &f.Failures}, {C.PROXY_BACKEND_EJECTIONS, &f.Ejections},
			{C.PROXY_BACKEND_IN_FLIGHT, &f.InFlight}, {C.PROXY_BACKEND_CONNECTIONS, &f.Connections},
		} {
			var v C.uint64_t
			if err := check("proxy_group_backend_figure", C.proxy_group_backend_figure(id, i, x.which, &v)); err != nil {
				return nil, err
			}
			*x.to = uint64(v)
		}
		var h, e C.uint64_t
		if err := check("proxy_group_backend_figure", C.proxy_group_backend_figure(id, i, C.PROXY_BACKEND_HEALTHY, &h)); err != nil {
			return nil, err
		}
		if err := check("proxy_group_backend_figure", C.proxy_group_backend_figure(id, i, C.PROXY_BACKEND_EJECTED, &e)); err != nil {
			return nil, err
		}
		f.Healthy, f.Ejected = h != 0, e != 0
		out = append(out, f)
	}
	return out, nil
}

// OnHealth mirrors proxy_group_set_health_callback: fn(backend, event) on each health change,
// from library threads (it must not block); nil removes it. A panic in fn is recovered.
func (g *Group) OnHealth(fn func(backend string, ev HealthEvent)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return &Error{Op: "proxy_group_set_health_callback", Code: CodeGone}
	}
	if fn == nil {
		g.fn.Store(nil)
		return check("proxy_group_set_health_callback", C.lp_group_set_health(C.uint64_t(g.id), 0))
	}
	g.fn.Store(&fn)
	if g.self == 0 {
		g.self = cgo.NewHandle(g)
	}
	return check("proxy_group_set_health_callback", C.lp_group_set_health(C.uint64_t(g.id), C.uintptr_t(g.self)))
}

//export goProxyHealth
func goProxyHealth(user unsafe.Pointer, backend C.proxy_str, event C.uint32_t) {
	// A listener that panics, or a call racing Close (whose handle is gone), must not take the
	// process down.
	defer func() { _ = recover() }()
	g := cgo.Handle(uintptr(user)).Value().(*Group)
	if fn := g.fn.Load(); fn != nil {
		(*fn)(gostr(backend), HealthEvent(event))
	}
}

// Close mirrors proxy_group_free. Idempotent. Requests and services still using the group
// finish; its health listener is removed first.
func (g *Group) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	runtime.SetFinalizer(g, nil)
	if g.self != 0 {
		_ = C.lp_group_set_health(C.uint64_t(g.id), 0)
		g.self.Delete()
		g.self = 0
	}
	return check("proxy_group_free", C.proxy_group_free(C.uint64_t(g.id)))
}

// Pick mirrors proxy_session_pick: chooses this attempt's backend from g (UpstreamPeer only,
// instead of SetPeer); key (nil: none) feeds Ketama and Maglev. ErrUnavailable when no backend
// can take the request: returning Continue then fails it with 503 or 502.
func (s *Session) Pick(g *Group, key []byte) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	var k C.proxy_str
	if key != nil {
		k.ptr, k.len = emptyKey, 0
		if len(key) > 0 {
			kp, kl := cbytes(key)
			k.ptr, k.len = (*C.char)(unsafe.Pointer(kp)), kl
		}
	}
	err = check("proxy_session_pick", C.proxy_session_pick(p, C.uint64_t(g.id), k))
	runtime.KeepAlive(key)
	runtime.KeepAlive(g)
	return err
}

// emptyKey is a non-NULL pointer for an empty key (NULL means "no key").
var emptyKey = C.CString("")

// Backend mirrors proxy_session_backend: the name of the group backend the last attempt went
// to; ErrNotFound when the peer did not come from a group.
func (s *Session) Backend() (string, error) {
	p, err := s.ptr()
	if err != nil {
		return "", err
	}
	var out C.proxy_str
	if err := check("proxy_session_backend", C.proxy_session_backend(p, &out)); err != nil {
		return "", err
	}
	return gostr(out), nil
}

// toC is the peer as a proxy_peer whose strings are C copies, freed by the returned function.
func (peer Peer) toC() (C.proxy_peer, func()) {
	var cp C.proxy_peer
	var frees []unsafe.Pointer
	str := func(v string) C.proxy_str {
		if v == "" {
			return C.proxy_str{}
		}
		c := C.CString(v)
		frees = append(frees, unsafe.Pointer(c))
		return C.proxy_str{ptr: c, len: C.size_t(len(v))}
	}
	cp.struct_size = C.uint32_t(unsafe.Sizeof(cp))
	cp.flags = C.uint32_t(peer.Flags)
	cp.address = str(peer.Address)
	cp.sni = str(peer.SNI)
	cp.connect_timeout_ms = durationMS(peer.ConnectTimeout)
	cp.total_connection_timeout_ms = durationMS(peer.TotalConnectionTimeout)
	cp.read_timeout_ms = durationMS(peer.ReadTimeout)
	cp.write_timeout_ms = durationMS(peer.WriteTimeout)
	cp.idle_timeout_ms = durationMS(peer.IdleTimeout)
	cp.pool_group = C.uint64_t(peer.PoolGroup)
	cp.ca_file = str(peer.CAFile)
	cp.client_cert = str(peer.ClientCert)
	cp.client_key = str(peer.ClientKey)
	cp.alpn = C.uint32_t(peer.ALPN)
	cp.max_h2_streams = C.uint32_t(peer.MaxH2Streams)
	return cp, func() {
		for _, p := range frees {
			C.free(p)
		}
	}
}
