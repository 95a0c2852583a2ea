// A TCP (L4) proxy: every connection on LISTEN is relayed to UPSTREAM byte for byte, and its
// logging hook prints the client (the address a PROXY header carried, when TRUSTED sends one),
// the bytes each way and how it ended:
//
//	tcp_proxy LISTEN UPSTREAM [TRUSTED]     e.g. TRUSTED = 127.0.0.1/32 (PROXY v1/v2 required)
//
// Mirrors examples/c/tcp_proxy.c and examples/python/tcp_proxy.py.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// How a connection ended, by its L4 end code.
var ends = []string{"open", "closed", "no peer", "connect failed", "error", "idle timeout", "max duration", "shutdown"}

type relay struct{ upstream string }

// UpstreamPeer: every connection goes to the upstream given on the command line.
func (r *relay) UpstreamPeer(s *proxy.L4Session) (proxy.Peer, error) {
	return proxy.Peer{Address: r.upstream}, nil
}

// L4Logging: once the connection ended.
func (r *relay) L4Logging(s *proxy.L4Session) {
	client, _ := s.ClientAddr()
	sum, err := s.Summary()
	if err != nil {
		return
	}
	end := "?"
	if int(sum.End) < len(ends) {
		end = ends[sum.End]
	}
	fmt.Printf("%s up=%d down=%d end=%s\n", client, sum.BytesUp, sum.BytesDown, end)
}

func main() {
	if len(os.Args) != 3 && len(os.Args) != 4 {
		fmt.Fprintf(os.Stderr, "usage: %s LISTEN UPSTREAM [TRUSTED]\n", os.Args[0])
		os.Exit(2)
	}
	srv, err := proxy.NewServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "setup failed:", err)
		os.Exit(1)
	}
	defer srv.Close()
	svc, err := proxy.NewService("tcp")
	var port int
	if err == nil {
		port, err = svc.AddTCP(os.Args[1])
	}
	if err == nil {
		err = svc.SetL4Handler(&relay{upstream: os.Args[2]})
	}
	if err == nil && len(os.Args) == 4 {
		err = svc.SetProxyProtocol(proxy.ProxyProtocolRequired, []string{os.Args[3]}, 0)
	}
	if err == nil {
		err = srv.AddService(svc)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "setup failed:", err)
		os.Exit(1)
	}
	fmt.Printf("relaying port %d to %s\n", port, os.Args[2])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	if srv.Close() != nil {
		os.Exit(1)
	}
}
