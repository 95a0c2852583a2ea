// Round robin over several upstreams with retry on connect failure: UpstreamPeer picks the next
// address on every call (a retry calls it again), FailToConnect allows the retry.
// Usage: round_robin LISTEN UPSTREAM1 [UPSTREAM2 ...]
// Mirrors examples/c/round_robin.c.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

type pool struct {
	addrs []string
	next  atomic.Uint32 // hooks run concurrently
}

func (p *pool) UpstreamPeer(s *proxy.Session) proxy.Action {
	i := (p.next.Add(1) - 1) % uint32(len(p.addrs))
	peer := proxy.Peer{Address: p.addrs[i], ConnectTimeout: time.Second}
	if s.SetPeer(peer) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func (p *pool) FailToConnect(s *proxy.Session) proxy.Action {
	if e, err := s.ErrorText(); err == nil {
		fmt.Fprintf(os.Stderr, "connect failed: %s; retrying\n", e)
	}
	_ = s.SetRetry(true)
	return proxy.Continue
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintf(os.Stderr, "usage: %s LISTEN UPSTREAM...\n", os.Args[0])
		os.Exit(2)
	}
	p := &pool{addrs: os.Args[2:]}
	srv, err := proxy.NewServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "setup failed:", err)
		os.Exit(1)
	}
	defer srv.Close()
	svc, err := proxy.NewService("round-robin")
	if err == nil {
		_, err = svc.AddTCP(os.Args[1])
	}
	if err == nil {
		err = svc.SetLimit(proxy.LimitMaxRetries, uint64(len(p.addrs)))
	}
	if err == nil {
		err = svc.SetHandler(p)
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
