package proxy

/*
#include "lp.h"
*/
import "C"

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"time"
)

// Server mirrors proxy_server: it owns services, starts each on its own threads and stops them.
// Methods may be called from any goroutine. Close it when done (Close is idempotent; a finalizer
// closes a forgotten server as a safety net).
type Server struct {
	c *serverCore
}

// serverCore is what C reaches (through cgo.Handle values) and what Sessions keep; the Server
// wrapper stays collectable so that its finalizer can run.
type serverCore struct {
	mu      sync.RWMutex // read: any C call on p; write: freeing p
	p       *C.proxy_server
	closeMu sync.Mutex // serialises Close
	closed  chan struct{}
	logger  atomic.Pointer[slog.Logger]
	logH    cgo.Handle
	handles []cgo.Handle // hooks of added services, deleted after free (guarded by mu)
	grace   atomic.Int64 // Run's shutdown grace, ns
	// ctx is the parent of every Session.Context, cancelled (stop) once the server stopped.
	ctx  context.Context
	stop context.CancelFunc
	// addMu orders AddService against Start/Shutdown, so that AddService can refuse a started
	// server before C takes the service (C consumes it even when refusing it); started is
	// guarded by it.
	addMu   sync.Mutex
	started bool
}

// DefaultShutdownGrace is how long Run lets in-flight requests finish after ctx is cancelled.
const DefaultShutdownGrace = 10 * time.Second

// NewServer mirrors proxy_server_new. It checks the library's ABI major version, and sends the
// library's diagnostics to slog.Default() (see SetLogger).
func NewServer() (*Server, error) {
	if err := checkABI(); err != nil {
		return nil, err
	}
	var p *C.proxy_server
	if err := check("proxy_server_new", C.proxy_server_new(&p)); err != nil {
		return nil, err
	}
	c := &serverCore{p: p, closed: make(chan struct{})}
	c.ctx, c.stop = context.WithCancel(context.Background())
	c.grace.Store(int64(DefaultShutdownGrace))
	c.logH = cgo.NewHandle(c)
	s := &Server{c: c}
	runtime.SetFinalizer(s, (*Server).Close)
	if err := s.SetLogger(slog.Default()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// ptr returns the C handle with c.mu read-locked; call c.mu.RUnlock when done.
func (c *serverCore) ptr() (*C.proxy_server, error) {
	debugGC()
	c.mu.RLock()
	if c.p == nil {
		c.mu.RUnlock()
		return nil, ErrClosed
	}
	return c.p, nil
}

var slogLevels = [...]slog.Level{
	C.PROXY_LOG_ERROR: slog.LevelError,
	C.PROXY_LOG_WARN:  slog.LevelWarn,
	C.PROXY_LOG_INFO:  slog.LevelInfo,
	C.PROXY_LOG_DEBUG: slog.LevelDebug,
}

// SetLogger mirrors proxy_server_set_log: libproxy's messages go to l at the matching slog level
// (ERROR, WARN, INFO, DEBUG); levels l does not enable are not even produced. nil silences the
// library. Panics recovered in hooks are reported to the same logger.
func (s *Server) SetLogger(l *slog.Logger) error {
	p, err := s.c.ptr()
	if err != nil {
		return err
	}
	defer s.c.mu.RUnlock()
	s.c.logger.Store(l)
	var user C.uintptr_t
	max := C.uint32_t(0)
	if l != nil {
		user = C.uintptr_t(s.c.logH)
		for lvl := C.PROXY_LOG_ERROR; lvl <= C.PROXY_LOG_DEBUG; lvl++ {
			if l.Enabled(context.Background(), slogLevels[lvl]) {
				max = C.uint32_t(lvl)
			}
		}
		if max == 0 {
			user = 0
		}
	}
	err = check("proxy_server_set_log", C.lp_set_log(p, user, max))
	runtime.KeepAlive(s)
	return err
}

// log reports a binding-side diagnostic (e.g. a recovered panic).
func (c *serverCore) log(level slog.Level, msg string, args ...any) {
	var l *slog.Logger
	if c != nil {
		l = c.logger.Load()
	}
	if l == nil {
		l = slog.Default()
	}
	l.Log(context.Background(), level, msg, args...)
}

// AddService mirrors proxy_server_add_service: on success it consumes svc (afterwards svc's
// methods answer ErrClosed). A refused service stays the caller's, to add elsewhere or Close:
// ErrClosed for a closed server, WRONG_STATE once the server was started or shut down. (Only a
// listener the library cannot take over, an I/O error, still consumes it, as in C.)
func (s *Server) AddService(svc *Service) error {
	if svc == nil {
		return &Error{Op: "proxy_server_add_service", Code: CodeNullParameter}
	}
	// Every refusal the binding can see comes before svc.take, so that the service stays the
	// caller's (C would consume it even when refusing it).
	p, err := s.c.ptr()
	if err != nil {
		return err
	}
	s.c.addMu.Lock()
	if s.c.started {
		s.c.addMu.Unlock()
		s.c.mu.RUnlock()
		return &Error{Op: "proxy_server_add_service (server already started)", Code: CodeWrongState}
	}
	sp, hk, h, err := svc.take()
	if err != nil {
		s.c.addMu.Unlock()
		s.c.mu.RUnlock()
		return err
	}
	if hk != nil {
		hk.core.Store(s.c)
	}
	err = check("proxy_server_add_service", C.proxy_server_add_service(p, sp))
	s.c.addMu.Unlock()
	s.c.mu.RUnlock()
	if h != 0 {
		if err == nil {
			s.c.mu.Lock()
			s.c.handles = append(s.c.handles, h)
			s.c.mu.Unlock()
		} else {
			h.Delete()
		}
	}
	runtime.KeepAlive(s)
	return err
}

// Start mirrors proxy_server_start: starts every service on its own threads and returns at once.
func (s *Server) Start() error {
	p, err := s.c.ptr()
	if err != nil {
		return err
	}
	s.c.addMu.Lock()
	err = check("proxy_server_start", C.proxy_server_start(p))
	if err == nil || errorsIsCode(err, CodeWrongState) {
		s.c.started = true
	}
	s.c.addMu.Unlock()
	s.c.mu.RUnlock()
	runtime.KeepAlive(s)
	return err
}

// SetShutdownGrace sets how long Run lets in-flight requests finish once ctx is cancelled
// (default DefaultShutdownGrace; 0 stops at once).
func (s *Server) SetShutdownGrace(d time.Duration) { s.c.grace.Store(int64(d)) }

// Run starts the server (unless Start was called) and blocks until ctx is cancelled, then shuts
// it down gracefully (see SetShutdownGrace) and returns nil; it also returns when the server is
// closed. It is the Go form of proxy_server_run: cancel ctx from a signal.NotifyContext to stop
// on SIGTERM. Call Close afterwards.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(); err != nil && !errorsIsCode(err, CodeWrongState) {
		return err
	}
	select {
	case <-ctx.Done():
	case <-s.c.closed:
		return nil
	}
	return s.Shutdown(time.Duration(s.c.grace.Load()))
}

// Shutdown mirrors proxy_server_shutdown: stop accepting, let in-flight requests finish for up
// to grace, then stop every worker. It blocks until no hook runs any more. BUSY from inside a
// hook.
func (s *Server) Shutdown(grace time.Duration) error {
	p, err := s.c.ptr()
	if err != nil {
		return err
	}
	s.c.addMu.Lock()
	s.c.started = true // a server shut down takes no service either
	s.c.addMu.Unlock()
	err = check("proxy_server_shutdown", C.proxy_server_shutdown(p, durationMS(grace)))
	s.c.mu.RUnlock()
	if err == nil {
		s.c.stop()
	}
	runtime.KeepAlive(s)
	return err
}

// Close mirrors proxy_server_free: shuts the server down at once if it runs, frees it, and
// releases the handler handles. Idempotent; later calls (and every other method) are harmless.
// BUSY (and nothing freed) when called from inside a hook.
func (s *Server) Close() error {
	c := s.c
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	c.mu.RLock()
	p := c.p
	c.mu.RUnlock()
	if p == nil {
		return nil
	}
	// Stop first without the write lock: hooks still running may call Resume (read lock).
	if err := check("proxy_server_shutdown", C.proxy_server_shutdown(p, 0)); err != nil {
		return err
	}
	c.stop()
	c.mu.Lock()
	err := check("proxy_server_free", C.proxy_server_free(p))
	if err != nil {
		c.mu.Unlock()
		return err
	}
	c.p = nil
	handles := c.handles
	c.handles = nil
	c.mu.Unlock()
	for _, h := range handles {
		h.Delete()
	}
	c.logH.Delete()
	close(c.closed)
	runtime.SetFinalizer(s, nil)
	return nil
}

// Resume mirrors proxy_session_resume: continues a session whose hook returned Pending, with
// Continue, Responded or Fail. Any goroutine; never blocks on the request and never runs a hook
// itself. ErrGone after the session ended, ErrAlready the second time. Most code uses
// Session.Async or Session.Resume instead.
func (s *Server) Resume(id uint64, a Action) error {
	err := s.c.resume(id, a)
	runtime.KeepAlive(s)
	return err
}

func (c *serverCore) resume(id uint64, a Action) error {
	if c == nil {
		return ErrClosed
	}
	p, err := c.ptr()
	if err != nil {
		return err
	}
	err = check("proxy_session_resume", C.proxy_session_resume(p, C.uint64_t(id), C.int32_t(a)))
	c.mu.RUnlock()
	return err
}

func errorsIsCode(err error, code Code) bool {
	e, ok := err.(*Error)
	return ok && e.Code == code
}

func durationMS(d time.Duration) C.uint32_t {
	if d <= 0 {
		return 0
	}
	ms := d.Milliseconds()
	if ms == 0 {
		ms = 1
	}
	if ms > 1<<32-1 {
		ms = 1<<32 - 1
	}
	return C.uint32_t(ms)
}

// Version is the library version string (proxy_version), e.g. "libproxy/0.1.0".
func Version() string { return C.GoString(C.proxy_version()) }

// ABIVersion is the library's ABI version (proxy_abi_version).
func ABIVersion() (major, minor int) {
	v := uint32(C.proxy_abi_version())
	return int(v >> 16), int(v & 0xffff)
}

// HeaderABIMajor is the ABI major version this binding was compiled against.
const HeaderABIMajor = C.PROXY_ABI_VERSION_MAJOR

// Feature is a bit of proxy_features.
type Feature uint64

// Features of a build (PROXY_FEATURE_*).
const (
	FeatureUDS         Feature = C.PROXY_FEATURE_UDS
	FeaturePending     Feature = C.PROXY_FEATURE_PENDING
	FeatureBodyFilters Feature = C.PROXY_FEATURE_BODY_FILTERS
	FeatureTLS         Feature = C.PROXY_FEATURE_TLS
	FeatureH2          Feature = C.PROXY_FEATURE_H2
)

// Features returns the OR of the features of the loaded library.
func Features() Feature { return Feature(C.proxy_features()) }

// minABIMinor is the oldest ABI minor version the binding works with: 0.4 changed the _free
// signatures (they return a proxy_result) and added proxy_last_error (0.5 only retyped
// proxy_session_body's view as proxy_bytes, the same layout, so 0.4 still works). The major comes
// from the header; tests/abi_version.rs checks this number against src/ffi/result.rs.
const minABIMinor = 4

var abiErr = sync.OnceValue(func() error {
	if major, minor := ABIVersion(); major != HeaderABIMajor || minor < minABIMinor {
		return fmt.Errorf("libproxy: library ABI %d.%d, binding needs %d.x with x >= %d: refusing to run", major, minor, HeaderABIMajor, minABIMinor)
	}
	return nil
})

func checkABI() error { return abiErr() }
