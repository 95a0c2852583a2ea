// TLS on both sides, HTTP/2 upstream: listen with TLS on os.Args[4] (default 127.0.0.1:8443;
// certificate os.Args[1], key os.Args[2]; clients get h2 or http/1.1 by ALPN) and forward every
// request over TLS and HTTP/2 to os.Args[5], verified against the CA file os.Args[3] for the name
// "localhost". Without os.Args[5] it also starts an embedded demo origin (a second TLS service with
// the same certificate) that says which HTTP version it was reached with:
//
//	go run ./tls_h2_proxy cert.pem key.pem ca.pem &  curl --cacert ca.pem https://localhost:8443/hi
//
// Stop with Ctrl-C or SIGTERM (graceful). Same program: examples/c/tls_h2_proxy.c,
// examples/python/tls_h2_proxy.py.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

func check(err error) {
	if err != nil {
		log.Fatal(err) // err is a *proxy.Error naming the C call and its result code
	}
}

type config struct {
	upstream string
	caFile   string
}

// UpstreamPeer: TLS verified against the CA file, SNI "localhost", HTTP/2 only (ALPN h2).
func (cfg *config) UpstreamPeer(s *proxy.Session) proxy.Action {
	peer := proxy.Peer{Address: cfg.upstream, Flags: proxy.PeerTLS, SNI: "localhost", CAFile: cfg.caFile, ALPN: proxy.ALPNH2}
	if s.SetPeer(peer) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

type demoOrigin struct{}

// RequestFilter of the demo origin: answer here, naming the HTTP version the request came with.
func (demoOrigin) RequestFilter(s *proxy.Session) proxy.Action {
	path, err := s.Path()
	if err != nil {
		return proxy.Fail
	}
	version, err := s.Version()
	if err != nil {
		return proxy.Fail
	}
	name := "HTTP/1.1"
	if version == proxy.HTTP20 {
		name = "HTTP/2"
	}
	body := fmt.Sprintf("hello over %s from the demo origin, you asked for %s\n", name, path)
	if s.Respond(200, []proxy.Header{{Name: "content-type", Value: "text/plain"}}, []byte(body)) != nil {
		return proxy.Fail
	}
	return proxy.Responded
}

func main() {
	listen := "127.0.0.1:8443"
	if len(os.Args) > 4 {
		listen = os.Args[4]
	}
	if len(os.Args) < 4 {
		fmt.Fprintf(os.Stderr, "usage: %s CERT KEY CA [LISTEN] [UPSTREAM]\n", os.Args[0])
		os.Exit(2)
	}
	cfg := &config{caFile: os.Args[3]}

	// NewServer refuses a library whose ABI major differs from the header's.
	server, err := proxy.NewServer()
	check(err)
	defer server.Close()
	// One certificate for both TLS endpoints; ALPN offers h2, then http/1.1.
	tls, err := proxy.NewTLSSettings()
	check(err)
	check(tls.SetCertFiles(os.Args[1], os.Args[2]))

	if len(os.Args) > 5 {
		cfg.upstream = os.Args[5]
	} else {
		origin, err := proxy.NewService("demo-origin")
		check(err)
		port, err := origin.AddTLS("127.0.0.1:0", tls)
		check(err)
		check(origin.SetHandler(demoOrigin{}))
		check(server.AddService(origin))
		cfg.upstream = fmt.Sprintf("127.0.0.1:%d", port)
		fmt.Printf("demo origin on %s\n", cfg.upstream)
	}

	svc, err := proxy.NewService("proxy")
	check(err)
	port, err := svc.AddTLS(listen, tls)
	check(err)
	check(tls.Close())         // the endpoints keep copies
	check(svc.SetHandler(cfg)) // registers UpstreamPeer
	check(server.AddService(svc))

	fmt.Printf("%s proxying on port %d to %s over TLS and HTTP/2\n", proxy.Version(), port, cfg.upstream)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	check(server.Run(ctx))
	check(server.Close())
}
