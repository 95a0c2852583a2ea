// Failures and lifetimes: a panicking hook, handles used after Close, Close from a hook, and
// a thousand concurrent requests.
package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// panicky panics in RequestFilter for /panic.
type panicky struct {
	peerTo
}

func (panicky) RequestFilter(s *proxy.Session) proxy.Action {
	if p, _ := s.Path(); p == "/panic" {
		var m map[string]int
		m["boom"]++ // nil map write: a runtime panic
	}
	return proxy.Continue
}

func (panicky) ResponseFilter(s *proxy.Session) proxy.Action {
	if p, _ := s.Path(); p == "/panic-late" {
		panic("late panic")
	}
	return proxy.Continue
}

func TestPanicFailsOnlyThatRequest(t *testing.T) {
	o := newOrigin(t, "o1")
	logs := &logCapture{}
	srv, base := startProxy(t, panicky{peerTo{hostPort(o)}})
	must(t, srv.SetLogger(slog.New(logs)))
	var wg sync.WaitGroup
	var bad atomic.Int32
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			path, want := "/echo", 200
			if i%4 == 0 {
				path, want = "/panic", 500
			}
			r, err := doErr("GET", base+path, nil, "")
			if err != nil || r.status != want {
				bad.Add(1)
				t.Logf("%s: %v %d", path, err, r.status)
			}
		}(i)
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d wrong answers", bad.Load())
	}
	if r := do(t, "GET", base+"/panic-late", nil, ""); r.status != 500 {
		t.Fatalf("panic in ResponseFilter: %d", r.status)
	}
	if !logs.find("panic in hook") || !logs.find("assignment to entry in nil map") || !logs.find("phase=request_filter") {
		t.Fatalf("panic not logged: %v", logs.recs)
	}
}

// keeper keeps the session past its hook (a bug the binding must survive).
type keeper struct {
	peerTo
	kept chan *proxy.Session
}

func (k keeper) RequestFilter(s *proxy.Session) proxy.Action {
	k.kept <- s
	return proxy.Continue
}

func TestUseAfterClose(t *testing.T) {
	o := newOrigin(t, "o1")
	k := keeper{peerTo{hostPort(o)}, make(chan *proxy.Session, 1)}
	srv, base := startProxy(t, k)
	if r := do(t, "GET", base+"/echo", nil, ""); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	s := <-k.kept
	if _, err := s.Path(); !errors.Is(err, proxy.ErrSessionDone) {
		t.Fatalf("kept session: %v", err)
	}
	if err := s.Resume(proxy.Continue); err == nil {
		t.Fatal("Resume of a finished session succeeded")
	}
	if s.Async(func() proxy.Action { return proxy.Continue }) != proxy.Fail {
		t.Fatal("Async on a finished session")
	}

	must(t, srv.Close())
	must(t, srv.Close()) // idempotent
	for name, err := range map[string]error{
		"Start":     srv.Start(),
		"Shutdown":  srv.Shutdown(0),
		"Resume":    srv.Resume(1, proxy.Continue),
		"SetLogger": srv.SetLogger(nil),
		"Run":       srv.Run(context.Background()),
	} {
		if name == "Run" {
			if !errors.Is(err, proxy.ErrClosed) {
				t.Errorf("Run after Close: %v", err)
			}
			continue
		}
		if !errors.Is(err, proxy.ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
	svc, err := proxy.NewService("late")
	must(t, err)
	if err := srv.AddService(svc); !errors.Is(err, proxy.ErrClosed) {
		t.Errorf("AddService after Close: %v", err)
	}
	// A refused service stays the caller's.
	if _, err := svc.AddTCP("127.0.0.1:0"); err != nil {
		t.Errorf("service after a refused AddService: %v", err)
	}
	must(t, svc.Close())

	// A consumed service answers ErrClosed; a closed one too; Close twice is fine.
	srv2, err := proxy.NewServer()
	must(t, err)
	defer srv2.Close()
	svc2, err := proxy.NewService("x")
	must(t, err)
	must(t, svc2.SetHandler(k))
	must(t, srv2.AddService(svc2))
	if err := svc2.SetThreads(1); !errors.Is(err, proxy.ErrClosed) {
		t.Errorf("consumed service: %v", err)
	}
	svc3, err := proxy.NewService("y")
	must(t, err)
	must(t, svc3.SetHandler(k))
	must(t, svc3.Close())
	must(t, svc3.Close())
	if err := svc3.SetHandler(k); !errors.Is(err, proxy.ErrClosed) {
		t.Errorf("closed service: %v", err)
	}
	if err := srv2.AddService(svc3); !errors.Is(err, proxy.ErrClosed) {
		t.Errorf("AddService(closed): %v", err)
	}
	// Errors from C are *Error values with the code.
	svc4, err := proxy.NewService("z")
	must(t, err)
	defer svc4.Close()
	_, err = svc4.AddTCP("not an address")
	var pe *proxy.Error
	if !errors.As(err, &pe) || pe.Code != proxy.CodeInvalidParameter || pe.Op != "proxy_service_add_tcp" {
		t.Errorf("bad address: %#v", err)
	}
	if err := svc4.SetThreads(0); !errors.Is(err, proxy.ErrInvalidParameter) {
		t.Errorf("SetThreads(0): %v", err)
	}
	must(t, srv2.Start())
	if err := srv2.Start(); !errors.Is(err, proxy.ErrWrongState) {
		t.Errorf("Start twice: %v", err)
	}
}

// closeInHook calls Close from inside a hook: BUSY, nothing freed.
type closeInHook struct {
	peerTo
	srv atomic.Pointer[proxy.Server]
	err chan error
}

func (h *closeInHook) RequestFilter(s *proxy.Session) proxy.Action {
	h.err <- h.srv.Load().Close()
	return proxy.Continue
}

func TestCloseFromHookIsBusy(t *testing.T) {
	o := newOrigin(t, "o1")
	h := &closeInHook{peerTo: peerTo{hostPort(o)}, err: make(chan error, 1)}
	srv, base := startProxy(t, h)
	h.srv.Store(srv)
	if r := do(t, "GET", base+"/echo", nil, ""); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if err := <-h.err; !errors.Is(err, proxy.ErrBusy) {
		t.Fatalf("Close in hook: %v", err)
	}
}

// counting goes through three hooks per request.
type counting struct {
	peerTo
	n atomic.Int64
}

func (c *counting) RequestFilter(s *proxy.Session) proxy.Action {
	c.n.Add(1)
	if s.HeaderSet(proxy.HeadersRequest, "x-seen", "1") != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func (c *counting) ResponseFilter(s *proxy.Session) proxy.Action {
	if s.HeaderSet(proxy.HeadersResponse, "x-hooked", "1") != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func TestThousandConcurrentRequests(t *testing.T) {
	o := newOrigin(t, "o1")
	h := &counting{peerTo: peerTo{hostPort(o)}}
	_, base := startProxy(t, h)
	const n = 1000
	var wg sync.WaitGroup
	var bad atomic.Int32
	startGate := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-startGate
			r, err := doErr("GET", fmt.Sprintf("%s/echo?i=%d", base, i), nil, "")
			if err != nil || r.status != 200 || r.header.Get("X-Hooked") != "1" || !strings.Contains(r.body, "x-seen: 1") ||
				!strings.Contains(r.body, fmt.Sprintf("/echo?i=%d\n", i)) {
				if bad.Add(1) < 5 {
					t.Logf("request %d: %v %d", i, err, r.status)
				}
			}
		}(i)
	}
	close(startGate)
	wg.Wait()
	if bad.Load() != 0 || h.n.Load() != n {
		t.Fatalf("%d bad answers, %d hook calls", bad.Load(), h.n.Load())
	}
}

func TestRunUntilCancelled(t *testing.T) {
	// The origin reports when the slow request has reached it, so the shutdown starts while that
	// request is known to be in flight.
	arrived := make(chan struct{}, 1)
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			time.Sleep(300 * time.Millisecond) // still answering when the shutdown begins
		}
		fmt.Fprint(w, "ok")
	}))
	defer o.Close()
	srv, err := proxy.NewServer()
	must(t, err)
	defer srv.Close()
	svc, err := proxy.NewService("run")
	must(t, err)
	port, err := svc.AddTCP("127.0.0.1:0")
	must(t, err)
	must(t, svc.SetHandler(peerTo{hostPort(o)}))
	must(t, srv.AddService(svc))
	srv.SetShutdownGrace(2 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	eventually(t, "server up", func() bool { r, err := doErr("GET", base+"/echo", nil, ""); return err == nil && r.status == 200 })
	// An in-flight request finishes during the graceful shutdown.
	slow := make(chan response, 1)
	go func() { r, _ := doErr("GET", base+"/slow", nil, ""); slow <- r }()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request did not reach the origin")
	}
	cancel()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if r := <-slow; r.status != 200 {
		t.Fatalf("in-flight request during graceful shutdown: %d", r.status)
	}
	if _, err := doErr("GET", base+"/echo", nil, ""); err == nil {
		t.Fatal("server still answers after Run returned")
	}
	must(t, srv.Close())
}

// userData: SetUser needs RequestEnd.
type noEnd struct {
	peerTo
	err chan error
}

func (h noEnd) RequestFilter(s *proxy.Session) proxy.Action {
	h.err <- s.SetUser("x")
	return proxy.Continue
}

func TestSetUserNeedsRequestEnd(t *testing.T) {
	o := newOrigin(t, "o1")
	h := noEnd{peerTo{hostPort(o)}, make(chan error, 1)}
	_, base := startProxy(t, h)
	do(t, "GET", base+"/echo", nil, "")
	if err := <-h.err; !errors.Is(err, proxy.ErrWrongState) {
		t.Fatalf("SetUser without RequestEnd: %v", err)
	}
}

// Every failed call's error carries the library's cause: an address in use and a permission
// refusal are told apart by the OS error text, not only by CodeIO.
func TestErrorsCarryTheirCause(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer busy.Close()
	svc, err := proxy.NewService("errors")
	must(t, err)
	defer svc.Close()
	addr := busy.Addr().String()
	_, err = svc.AddTCP(addr)
	var pe *proxy.Error
	if !errors.As(err, &pe) || pe.Code != proxy.CodeIO {
		t.Fatalf("AddTCP(in use): %#v", err)
	}
	inUse := syscall.EADDRINUSE.Error()
	if !strings.Contains(pe.Detail, addr) || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(inUse)) {
		t.Errorf("AddTCP(in use): %q lacks %q / %q", err.Error(), addr, inUse)
	}
	_, err = svc.AddTCP("not an address")
	if !errors.As(err, &pe) || !strings.Contains(pe.Detail, "not an address") {
		t.Errorf("AddTCP(bad): %#v", err)
	}
	if os.Geteuid() != 0 { // root may bind anywhere
		ro := filepath.Join(t.TempDir(), "ro")
		must(t, os.Mkdir(ro, 0o500))
		err = svc.AddUDS(filepath.Join(ro, "s.sock"))
		denied := strings.ToLower(syscall.EACCES.Error())
		if !errors.As(err, &pe) || pe.Code != proxy.CodeIO || !strings.Contains(strings.ToLower(pe.Detail), denied) {
			t.Errorf("AddUDS(unwritable dir): %#v", err)
		}
	}
}
