// A minimal caching, compressing reverse proxy: listen on os.Args[1] (default 127.0.0.1:8080) and
// forward every request to os.Args[2]. Without os.Args[2] it also starts an embedded demo origin (a
// second service answering every request itself, cacheable for a minute), so `go run
// ./minimal_proxy` works out of the box; the second curl is a cache hit (x-cache-status: HIT):
//
//	go run ./minimal_proxy 127.0.0.1:8080 &  curl -i http://127.0.0.1:8080/hello; curl -i http://127.0.0.1:8080/hello
//
// Stop with Ctrl-C or SIGTERM (graceful). Mirrors examples/c/minimal_proxy.c.
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
}

// UpstreamPeer: every request goes to the configured upstream.
func (cfg *config) UpstreamPeer(s *proxy.Session) proxy.Action {
	if s.SetPeer(proxy.Peer{Address: cfg.upstream}) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

// What the cache did, by proxy.CacheStatus.
var cacheNames = []string{"-", "HIT", "MISS", "STALE", "REVALIDATED", "EXPIRED", "BYPASS"}

// Logging: one access-log line per request, with what the cache did. A failed request says why;
// one whose response was cut short (head sent, body incomplete) says so instead of looking like a
// plain 200.
func (cfg *config) Logging(s *proxy.Session) {
	method, err1 := s.Method()
	path, err2 := s.Path()
	sum, err3 := s.Summary()
	if err1 != nil || err2 != nil || err3 != nil {
		return
	}
	cut, reason := "", ""
	if sum.Truncated {
		cut = " TRUNCATED"
	}
	cached, err := s.CacheStatus()
	if err != nil || int(cached) >= len(cacheNames) {
		cached = proxy.CacheStatusNone
	}
	if e, err := s.ErrorText(); err == nil {
		reason = ", error: " + e
	}
	fmt.Printf("%s %s -> %d%s, %d bytes, %d us, cache %s%s\n", method, path, sum.Status, cut, sum.BytesOut,
		sum.Total.Microseconds(), cacheNames[cached], reason)
}

// demoOrigin's RequestFilter: answer every request here, cacheable for a minute.
type demoOrigin struct{}

func (demoOrigin) RequestFilter(s *proxy.Session) proxy.Action {
	path, err := s.Path()
	if err != nil {
		return proxy.Fail
	}
	body := fmt.Sprintf("hello from the libproxy demo origin, you asked for %s\n", path)
	h := []proxy.Header{{Name: "content-type", Value: "text/plain"}, {Name: "cache-control", Value: "max-age=60"}}
	if s.Respond(200, h, []byte(body)) != nil {
		return proxy.Fail
	}
	return proxy.Responded
}

// The library's diagnostics go to log/slog (slog.Default() unless Server.SetLogger says else).

func main() {
	listen := "127.0.0.1:8080"
	if len(os.Args) > 1 {
		listen = os.Args[1]
	}
	cfg := &config{}

	// NewServer refuses a library whose ABI major differs from the header's.
	server, err := proxy.NewServer()
	check(err)
	defer server.Close()

	if len(os.Args) > 2 {
		cfg.upstream = os.Args[2]
	} else {
		origin, err := proxy.NewService("demo-origin")
		check(err)
		port, err := origin.AddTCP("127.0.0.1:0")
		check(err)
		check(origin.SetHandler(demoOrigin{}))
		check(server.AddService(origin))
		cfg.upstream = fmt.Sprintf("127.0.0.1:%d", port)
		fmt.Printf("demo origin on %s\n", cfg.upstream)
	}

	svc, err := proxy.NewService("proxy")
	check(err)
	port, err := svc.AddTCP(listen)
	check(err)
	check(svc.SetThreads(2))
	// gzip, brotli or zstd for text responses, as each client's Accept-Encoding asks.
	check(svc.SetCompression(proxy.CompressionEnabled, 1))
	// A 64 MiB HTTP cache in front of the upstream; x-cache-status says what it did. The cache
	// stores what the upstream sent and each client gets its own coding of it.
	cache, err := proxy.NewCache(64 << 20)
	check(err)
	check(cache.Set(proxy.CacheStatusHeader, 1))
	check(svc.SetCache(cache))
	check(cache.Close())
	check(svc.SetHandler(cfg)) // registers UpstreamPeer and Logging
	check(server.AddService(svc))

	fmt.Printf("%s proxying on port %d to %s\n", proxy.Version(), port, cfg.upstream)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	check(server.Run(ctx))
	check(server.Close())
}
