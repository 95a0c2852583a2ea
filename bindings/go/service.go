package proxy

/*
#include <stdlib.h>
#include "lp.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

// Service mirrors proxy_service: an HTTP proxy service being configured (endpoints, threads,
// limits, timeouts, handler). Server.AddService consumes it; otherwise Close frees it (a
// finalizer does so as a safety net). Configure it from one goroutine at a time.
type Service struct {
	mu  sync.Mutex
	p   *C.proxy_service
	hk  *hooks
	hkH cgo.Handle
}

// NewService mirrors proxy_service_new: one work-stealing worker thread, no endpoint, no
// handler, default limits. name is used for thread names.
func NewService(name string) (*Service, error) {
	if err := checkABI(); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, &Error{Op: "NewService", Code: CodeInvalidParameter, Detail: "empty service name (it names the service's threads)"}
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var p *C.proxy_service
	if err := check("proxy_service_new", C.proxy_service_new(cname, &p)); err != nil {
		return nil, err
	}
	s := &Service{p: p}
	runtime.SetFinalizer(s, (*Service).Close)
	return s, nil
}

// ptr returns the C handle with s.mu held; call s.mu.Unlock when done.
func (s *Service) ptr() (*C.proxy_service, error) {
	debugGC()
	s.mu.Lock()
	if s.p == nil {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	return s.p, nil
}

// take hands the C service and its hooks over to a server; s is consumed.
func (s *Service) take() (*C.proxy_service, *hooks, cgo.Handle, error) {
	p, err := s.ptr()
	if err != nil {
		return nil, nil, 0, err
	}
	hk, h := s.hk, s.hkH
	s.p, s.hk, s.hkH = nil, nil, 0
	s.mu.Unlock()
	runtime.SetFinalizer(s, nil)
	return p, hk, h, nil
}

// AddTCP mirrors proxy_service_add_tcp: binds a TCP endpoint now ("127.0.0.1:8080",
// "[::1]:0", ...) and returns the bound port (useful with port 0).
func (s *Service) AddTCP(addr string) (port int, err error) {
	p, err := s.ptr()
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	caddr := C.CString(addr)
	defer C.free(unsafe.Pointer(caddr))
	var out C.uint16_t
	// The cause ("address in use" vs "permission denied") is read on the thread that failed.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err = check("proxy_service_add_tcp", C.proxy_service_add_tcp(p, caddr, &out))
	runtime.KeepAlive(s)
	return int(out), err
}

// AddUDS mirrors proxy_service_add_uds: binds a Unix domain socket endpoint now.
func (s *Service) AddUDS(path string) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err = check("proxy_service_add_uds", C.proxy_service_add_uds(p, cpath))
	runtime.KeepAlive(s)
	return err
}

// SetThreads mirrors proxy_service_set_threads (1..1024).
func (s *Service) SetThreads(n int) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if n < 0 || n > 1<<31 {
		return &Error{Op: "proxy_service_set_threads", Code: CodeInvalidParameter}
	}
	err = check("proxy_service_set_threads", C.proxy_service_set_threads(p, C.uint32_t(n)))
	runtime.KeepAlive(s)
	return err
}

// SetWorkStealing mirrors proxy_service_set_work_stealing: true (default) runs one work-stealing
// runtime, false isolated single-thread runtimes.
func (s *Service) SetWorkStealing(on bool) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	var v C.uint32_t
	if on {
		v = 1
	}
	err = check("proxy_service_set_work_stealing", C.proxy_service_set_work_stealing(p, v))
	runtime.KeepAlive(s)
	return err
}

// Timeout selects a service timeout (PROXY_TIMEOUT_*).
type Timeout uint32

// Timeouts, mirroring PROXY_TIMEOUT_*.
const (
	TimeoutHeader    Timeout = C.PROXY_TIMEOUT_HEADER
	TimeoutKeepalive Timeout = C.PROXY_TIMEOUT_KEEPALIVE
	TimeoutBodyIdle  Timeout = C.PROXY_TIMEOUT_BODY_IDLE
	TimeoutWrite     Timeout = C.PROXY_TIMEOUT_WRITE
	// TimeoutPending: how long a session may stay Pending before it fails with 500.
	TimeoutPending Timeout = C.PROXY_TIMEOUT_PENDING
	// TimeoutBodyTotal: the whole request body, from the start of the request (408 past it).
	TimeoutBodyTotal Timeout = C.PROXY_TIMEOUT_BODY_TOTAL
	// TimeoutBodyRateGrace: how long a body may run before LimitBodyMinRate applies.
	TimeoutBodyRateGrace Timeout = C.PROXY_TIMEOUT_BODY_RATE_GRACE
)

// SetTimeout mirrors proxy_service_set_timeout (d rounded up to whole milliseconds, > 0).
func (s *Service) SetTimeout(which Timeout, d time.Duration) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	err = check("proxy_service_set_timeout", C.proxy_service_set_timeout(p, C.uint32_t(which), durationMS(d)))
	runtime.KeepAlive(s)
	return err
}

// Limit selects a service limit (PROXY_LIMIT_*).
type Limit uint32

// Limits, mirroring PROXY_LIMIT_*.
const (
	LimitMaxHeaderBytes Limit = C.PROXY_LIMIT_MAX_HEADER_BYTES
	LimitMaxHeaders     Limit = C.PROXY_LIMIT_MAX_HEADERS
	LimitMaxURILen      Limit = C.PROXY_LIMIT_MAX_URI_LEN
	LimitMaxRetries     Limit = C.PROXY_LIMIT_MAX_RETRIES
	LimitRetryBuffer    Limit = C.PROXY_LIMIT_RETRY_BUFFER
	LimitDrain          Limit = C.PROXY_LIMIT_DRAIN
	// LimitBodyMinRate: slowest request body accepted, bytes/s after the grace period (408
	// below it; 0: off).
	LimitBodyMinRate Limit = C.PROXY_LIMIT_BODY_MIN_RATE
	// LimitRequestBuffer: buffer whole request bodies up to this size before the peer is chosen
	// (413 past it; 0: stream them).
	LimitRequestBuffer Limit = C.PROXY_LIMIT_REQUEST_BUFFER
	// LimitMaxConnections caps the connections open at once across the service's endpoints
	// (0: no cap); past it a connection is accepted and closed unanswered.
	LimitMaxConnections Limit = C.PROXY_LIMIT_MAX_CONNECTIONS
	// LimitMaxConnectionsPerListener caps the connections open at once on each endpoint.
	LimitMaxConnectionsPerListener Limit = C.PROXY_LIMIT_MAX_CONNECTIONS_PER_LISTENER
)

// SetLimit mirrors proxy_service_set_limit.
func (s *Service) SetLimit(which Limit, value uint64) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	err = check("proxy_service_set_limit", C.proxy_service_set_limit(p, C.uint32_t(which), C.uint64_t(value)))
	runtime.KeepAlive(s)
	return err
}

// Option selects a service option (PROXY_OPTION_*) for SetOption.
type Option uint32

// Options, mirroring PROXY_OPTION_*.
const (
	// OptionUnderscoreFields: what becomes of request fields whose names contain '_'
	// (Content_Length, which CGI/WSGI-style origins read as Content-Length); an Underscore* value.
	OptionUnderscoreFields Option = C.PROXY_OPTION_UNDERSCORE_FIELDS
)

// Values of OptionUnderscoreFields, mirroring PROXY_UNDERSCORE_*.
const (
	// UnderscoreDrop removes such fields before any handler sees the request (default, like nginx).
	UnderscoreDrop uint32 = C.PROXY_UNDERSCORE_DROP
	// UnderscoreRefuse answers such a request with 400.
	UnderscoreRefuse uint32 = C.PROXY_UNDERSCORE_REFUSE
	// UnderscoreForward forwards such fields like any other.
	UnderscoreForward uint32 = C.PROXY_UNDERSCORE_FORWARD
)

// SetOption mirrors proxy_service_set_option: ErrInvalidParameter for an unknown option or value.
func (s *Service) SetOption(which Option, value uint32) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	err = check("proxy_service_set_option", C.proxy_service_set_option(p, C.uint32_t(which), C.uint32_t(value)))
	runtime.KeepAlive(s)
	return err
}

// AllowUpgrade mirrors proxy_service_allow_upgrade: requests offering protocol ("name" or
// "name/version") reach the upstream as upgrades; WebSocket is allowed by default. h2c and h2
// are refused (ErrInvalidParameter): they are never forwarded.
func (s *Service) AllowUpgrade(protocol string) error {
	return s.upgradeCall("proxy_service_allow_upgrade", protocol, true)
}

// DenyUpgrade mirrors proxy_service_deny_upgrade ("websocket" turns the default off).
func (s *Service) DenyUpgrade(protocol string) error {
	return s.upgradeCall("proxy_service_deny_upgrade", protocol, false)
}

func (s *Service) upgradeCall(name, protocol string, allow bool) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	cp := C.CString(protocol)
	defer C.free(unsafe.Pointer(cp))
	var rc C.proxy_result
	if allow {
		rc = C.proxy_service_allow_upgrade(p, cp)
	} else {
		rc = C.proxy_service_deny_upgrade(p, cp)
	}
	runtime.KeepAlive(s)
	return check(name, rc)
}

// SetHandler mirrors proxy_service_set_callbacks: h is any value; each phase interface it
// implements (RequestFilter, UpstreamPeer, ResponseFilter, Logging, ...) registers that phase,
// the others stay NULL. C receives a cgo.Handle, never a Go pointer; the server releases it
// after Close. INVALID_PARAMETER for nil or a value that implements no phase (a forgotten
// pointer receiver, say), which would otherwise fail every request with 500.
func (s *Service) SetHandler(h any) error {
	hk, mask := newHooks(h)
	if mask == 0 {
		return &Error{Op: "Service.SetHandler", Code: CodeInvalidParameter,
			Detail: fmt.Sprintf("%T implements no phase interface (RequestFilter, UpstreamPeer, ...)", h)}
	}
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	handle := cgo.NewHandle(hk)
	if err := check("proxy_service_set_callbacks", C.lp_set_callbacks(p, C.uintptr_t(handle), C.uint32_t(mask))); err != nil {
		handle.Delete()
		return err
	}
	if s.hkH != 0 {
		s.hkH.Delete()
	}
	s.hk, s.hkH = hk, handle
	runtime.KeepAlive(s)
	return nil
}

// Close mirrors proxy_service_free for a service that was not added to a server. Idempotent;
// a no-op after Server.AddService.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil {
		return nil
	}
	C.proxy_service_free(s.p)
	s.p = nil
	if s.hkH != 0 {
		s.hkH.Delete()
		s.hk, s.hkH = nil, 0
	}
	runtime.SetFinalizer(s, nil)
	return nil
}
