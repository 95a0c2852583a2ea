package proxy

/*
#include <stdlib.h>
#include "lp.h"
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"time"
	"unsafe"
)

// Probe is what a HealthCheck does (PROXY_PROBE_*).
type Probe uint32

// Probes, mirroring PROXY_PROBE_*.
const (
	ProbeTCP  Probe = C.PROXY_PROBE_TCP
	ProbeTLS  Probe = C.PROXY_PROBE_TLS
	ProbeHTTP Probe = C.PROXY_PROBE_HTTP
)

// HealthCheck mirrors proxy_health_check; zero fields take the library defaults (every 2 s,
// 1 s to answer, rise 2, fall 3; HTTP: GET /, the backend's host, any 200..399).
type HealthCheck struct {
	Probe                     Probe
	Interval, Timeout, Jitter time.Duration
	Rise, Fall                uint32
	StatusMin, StatusMax      uint32
	Method, Path, Host        string
	Body                      []byte
}

// AddHealthCheck mirrors proxy_server_add_health_check (before Start).
func (s *Server) AddHealthCheck(g *Group, hc HealthCheck) error {
	p, err := s.c.ptr()
	if err != nil {
		return err
	}
	defer s.c.mu.RUnlock()
	var c C.proxy_health_check
	var frees []unsafe.Pointer
	defer func() {
		for _, f := range frees {
			C.free(f)
		}
	}()
	str := func(b []byte) C.proxy_str {
		if len(b) == 0 {
			return C.proxy_str{}
		}
		m := C.CBytes(b)
		frees = append(frees, m)
		return C.proxy_str{ptr: (*C.char)(m), len: C.size_t(len(b))}
	}
	c.struct_size = C.uint32_t(unsafe.Sizeof(c))
	c.probe = C.uint32_t(hc.Probe)
	c.interval_ms = durationMS(hc.Interval)
	c.timeout_ms = durationMS(hc.Timeout)
	c.jitter_ms = durationMS(hc.Jitter)
	c.rise, c.fall = C.uint32_t(hc.Rise), C.uint32_t(hc.Fall)
	c.status_min, c.status_max = C.uint32_t(hc.StatusMin), C.uint32_t(hc.StatusMax)
	c.method, c.path, c.host = str([]byte(hc.Method)), str([]byte(hc.Path)), str([]byte(hc.Host))
	c.body = str(hc.Body)
	err = check("proxy_server_add_health_check", C.proxy_server_add_health_check(p, C.uint64_t(g.id), &c))
	runtime.KeepAlive(g)
	return err
}

// AddDNSDiscovery mirrors proxy_server_add_dns_discovery: g follows what host resolves to,
// every interval (0: 30 s), before Start.
func (s *Server) AddDNSDiscovery(g *Group, host string, port uint16, weight uint32, interval time.Duration) error {
	p, err := s.c.ptr()
	if err != nil {
		return err
	}
	defer s.c.mu.RUnlock()
	ch := C.CString(host)
	defer C.free(unsafe.Pointer(ch))
	err = check("proxy_server_add_dns_discovery", C.proxy_server_add_dns_discovery(p, C.uint64_t(g.id), ch,
		C.uint32_t(port), C.uint32_t(weight), durationMS(interval)))
	runtime.KeepAlive(g)
	return err
}

// Shutdown is the stop signal a background service watches (proxy_shutdown).
type Shutdown struct{ p *C.proxy_shutdown }

// Wait mirrors proxy_shutdown_wait: waits up to d for the server to begin shutting down and
// reports whether it has.
func (s Shutdown) Wait(d time.Duration) bool {
	return C.proxy_shutdown_wait(s.p, durationMS(d)) != 0
}

// AddBackground mirrors proxy_server_add_background: fn(stop) runs on a thread of its own
// while the server runs, and should return soon after stop.Wait reports true; a graceful
// shutdown waits for it. A panic in fn is recovered. Before Start.
func (s *Server) AddBackground(name string, fn func(stop Shutdown)) error {
	p, err := s.c.ptr()
	if err != nil {
		return err
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	h := cgo.NewHandle(fn)
	err = check("proxy_server_add_background", C.lp_server_add_background(p, cn, C.uintptr_t(h)))
	s.c.mu.RUnlock()
	if err != nil {
		h.Delete()
		return err
	}
	// Deleted with the server's other handles, after it is freed.
	s.c.mu.Lock()
	s.c.handles = append(s.c.handles, h)
	s.c.mu.Unlock()
	runtime.KeepAlive(s)
	return nil
}

//export goProxyBackground
func goProxyBackground(user unsafe.Pointer, stop *C.proxy_shutdown) {
	defer func() { _ = recover() }() // a broken service must not take the process down
	fn := cgo.Handle(uintptr(user)).Value().(func(Shutdown))
	fn(Shutdown{p: stop})
}
