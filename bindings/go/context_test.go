package proxy_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// ctxHandler hands out each request's context from RequestFilter and, with wait, holds the
// request in an Async function until that context is cancelled.
type ctxHandler struct {
	upstream string
	wait     bool
	got      chan context.Context
	peerCtx  chan context.Context
	gaveUp   chan error
}

func newCtxHandler(upstream string, wait bool) *ctxHandler {
	return &ctxHandler{upstream: upstream, wait: wait, got: make(chan context.Context, 4),
		peerCtx: make(chan context.Context, 4), gaveUp: make(chan error, 4)}
}

func (h *ctxHandler) RequestFilter(s *proxy.Session) proxy.Action {
	ctx := s.Context()
	h.got <- ctx
	if !h.wait {
		return proxy.Continue
	}
	return s.Async(func() proxy.Action {
		select {
		case <-ctx.Done():
			h.gaveUp <- ctx.Err()
			return proxy.Fail
		case <-time.After(20 * time.Second):
			return proxy.Continue
		}
	})
}

func (h *ctxHandler) UpstreamPeer(s *proxy.Session) proxy.Action {
	h.peerCtx <- s.Context()
	if s.SetPeer(proxy.Peer{Address: h.upstream}) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func waitDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the request's context was not cancelled", what)
	}
}

// One context per request, the same in every hook, cancelled once the request ended.
func TestSessionContextEndsWithTheRequest(t *testing.T) {
	o := newOrigin(t, "ctx")
	h := newCtxHandler(hostPort(o), false)
	_, url := startProxy(t, h)
	var prev context.Context
	for i := 0; i < 2; i++ {
		resp, err := client.Get(url + "/ctx")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		ctx := <-h.got
		if <-h.peerCtx != ctx {
			t.Fatal("UpstreamPeer saw another context than RequestFilter")
		}
		if ctx == prev {
			t.Fatal("two requests share a context")
		}
		waitDone(t, ctx, "request answered")
		prev = ctx
	}
}

// A request the library ends while an Async function still works on it (here: the pending
// deadline passes): the function waiting on the context is released.
func TestSessionContextCancelledWhenTheRequestEnds(t *testing.T) {
	o := newOrigin(t, "ctx")
	h := newCtxHandler(hostPort(o), true)
	_, url := startProxy(t, h, func(svc *proxy.Service) {
		must(t, svc.SetTimeout(proxy.TimeoutPending, 300*time.Millisecond))
	})
	resp, err := client.Get(url + "/late")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Fatalf("status %d, want 500 (pending deadline)", resp.StatusCode)
	}
	waitDone(t, <-h.got, "pending deadline")
	if err := <-h.gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("Async saw %v", err)
	}
}

// Close stops the server: contexts of requests still waiting are cancelled.
func TestSessionContextCancelledWhenTheServerStops(t *testing.T) {
	o := newOrigin(t, "ctx")
	h := newCtxHandler(hostPort(o), true)
	srv, url := startProxy(t, h)
	go func() {
		if resp, err := client.Get(url + "/stop"); err == nil {
			resp.Body.Close()
		}
	}()
	ctx := <-h.got
	must(t, srv.Close())
	waitDone(t, ctx, "server closed")
}

func TestBadArgumentsAreErrors(t *testing.T) {
	if _, err := proxy.NewService(""); !errors.Is(err, proxy.ErrInvalidParameter) {
		t.Fatalf(`NewService(""): %v`, err)
	}
	svc, err := proxy.NewService("args")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	for _, h := range []any{nil, 42, struct{}{}} {
		if err := svc.SetHandler(h); !errors.Is(err, proxy.ErrInvalidParameter) {
			t.Errorf("SetHandler(%#v): %v", h, err)
		}
	}
	must(t, svc.SetHandler(newCtxHandler("127.0.0.1:1", false)))
	// A peer is checked where it is written, with the library's reason.
	if err := (proxy.Peer{Address: "garbage"}).Check(); !errors.Is(err, proxy.ErrInvalidParameter) ||
		!strings.Contains(err.Error(), "host:port") {
		t.Errorf(`Peer{"garbage"}.Check(): %v`, err)
	}
	must(t, proxy.Peer{Address: "localhost:443", Flags: proxy.PeerTLS, ALPN: proxy.ALPNH2}.Check())
}

// A refused AddService leaves the service to the caller: it can still be configured and added to
// another server.
func TestRefusedAddServiceKeepsTheService(t *testing.T) {
	o := newOrigin(t, "again")
	started, _ := startProxy(t, newCtxHandler(hostPort(o), false))
	closed, err := proxy.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	must(t, closed.Close())
	svc, err := proxy.NewService("again")
	if err != nil {
		t.Fatal(err)
	}
	if err := started.AddService(svc); !errors.Is(err, proxy.ErrWrongState) {
		t.Fatalf("AddService to a started server: %v", err)
	}
	if err := closed.AddService(svc); !errors.Is(err, proxy.ErrClosed) {
		t.Fatalf("AddService to a closed server: %v", err)
	}
	port, err := svc.AddTCP("127.0.0.1:0")
	if err != nil {
		t.Fatalf("the refused service is no longer usable: %v", err)
	}
	must(t, svc.SetHandler(newCtxHandler(hostPort(o), false)))
	srv, err := proxy.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	must(t, srv.AddService(svc))
	must(t, srv.Start())
	resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/again")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
