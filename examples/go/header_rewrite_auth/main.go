// Header rewrite + auth: requests without `Authorization: Bearer letmein` get 401 from
// RequestFilter; accepted ones lose the Authorization header, gain X-User upstream, and the
// response gets X-Proxy. Usage: header_rewrite_auth LISTEN UPSTREAM
// Mirrors examples/c/header_rewrite_auth.c.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

type handler struct {
	upstream string
}

func (h handler) RequestFilter(s *proxy.Session) proxy.Action {
	if v, ok := s.Header(proxy.HeadersRequest, "authorization"); ok && v == "Bearer letmein" {
		_ = s.HeaderRemove(proxy.HeadersRequest, "authorization")
		return proxy.Continue
	}
	hdrs := []proxy.Header{
		{Name: "www-authenticate", Value: "Bearer"},
		{Name: "content-type", Value: "text/plain"},
	}
	if s.Respond(401, hdrs, []byte("missing or bad token\n")) != nil {
		return proxy.Fail
	}
	return proxy.Responded
}

func (h handler) UpstreamPeer(s *proxy.Session) proxy.Action {
	if s.SetPeer(proxy.Peer{Address: h.upstream}) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func (h handler) UpstreamRequestFilter(s *proxy.Session) proxy.Action {
	if s.HeaderSet(proxy.HeadersUpstreamRequest, "x-user", "letmein-holder") != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func (h handler) ResponseFilter(s *proxy.Session) proxy.Action {
	_ = s.HeaderSet(proxy.HeadersResponse, "x-proxy", proxy.Version())
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
	svc, err := proxy.NewService("auth-proxy")
	if err == nil {
		_, err = svc.AddTCP(os.Args[1])
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
