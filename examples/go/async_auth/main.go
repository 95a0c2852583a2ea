// Async auth: RequestFilter hands the decision to a goroutine and returns Pending (s.Async); the
// goroutine "checks" the token (sleeps 20 ms), answers 403 or lets the request through, and the
// session resumes with its result. No libproxy worker is blocked meanwhile.
// Usage: async_auth LISTEN UPSTREAM
// Mirrors examples/c/async_auth.c (where a pthread calls proxy_session_resume).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

type handler struct {
	upstream string
}

// decide runs in its own goroutine; s stays usable there until it returns.
func decide(s *proxy.Session) proxy.Action {
	time.Sleep(20 * time.Millisecond) // an auth service round trip
	if tok, ok := s.Header(proxy.HeadersRequest, "x-token"); ok && tok == "secret" {
		return proxy.Continue
	}
	if s.Respond(403, nil, []byte("forbidden\n")) != nil {
		return proxy.Fail
	}
	return proxy.Responded
}

func (h handler) RequestFilter(s *proxy.Session) proxy.Action {
	return s.Async(func() proxy.Action { return decide(s) })
}

func (h handler) UpstreamPeer(s *proxy.Session) proxy.Action {
	if s.SetPeer(proxy.Peer{Address: h.upstream}) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintf(os.Stderr, "usage: %s LISTEN UPSTREAM\n", os.Args[0])
		os.Exit(2)
	}
	srv, err := proxy.NewServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "setup failed:", err)
		os.Exit(1)
	}
	defer srv.Close()
	svc, err := proxy.NewService("async-auth")
	if err == nil {
		_, err = svc.AddTCP(os.Args[1])
	}
	if err == nil {
		err = svc.SetTimeout(proxy.TimeoutPending, 2*time.Second)
	}
	if err == nil {
		err = svc.SetHandler(handler{upstream: os.Args[2]})
	}
	if err == nil {
		err = srv.AddService(svc)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "setup failed:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	if srv.Close() != nil {
		os.Exit(1)
	}
}
