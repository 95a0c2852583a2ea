// A minimal caching, compressing reverse proxy: listen on os.Args[1] (default 127.0.0.1:8080) and
// forward every request to os.Args[2]. Without os.Args[2] it also starts an embedded demo origin (a
// second service answering every request itself, cacheable for a minute), so `go run
// ./minimal_proxy` works out of the box; the second curl is a cache hit (x-cache-status: HIT):
//
//	go run ./minimal_proxy 127.0.0.1:8080 &  curl -i http://127.0.0.1:8080/hello; curl -i http://127.0.0.1:8080/hello
//
// Stop with Ctrl-C or SIGTERM (graceful). Pingora's flags are the library's: -c FILE (YAML
// configuration), -d (daemon), -t (test the configuration), -u (take the listening sockets over
// from the running proxy, which SIGQUIT hands them to); SIGHUP reloads the file. Mirrors
// examples/c/minimal_proxy.c.
package main

import (
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

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
	// Takes -c/-d/-t/-u out of the command line; the positional arguments stay (a program with
	// flags of its own hands args[1:] to flag.CommandLine.Parse).
	conf, args, err := proxy.ConfFromArgs(os.Args)
	check(err)
	listen := "127.0.0.1:8080"
	if len(args) > 1 {
		listen = args[1]
	}
	cfg := &config{}

	// NewServer refuses a library whose ABI major differs from the header's.
	server, err := proxy.NewServer()
	check(err)
	defer server.Close()
	check(server.SetConf(conf))

	if len(args) > 2 {
		cfg.upstream = args[2]
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
	check(svc.SetThreads(2))
	// threads, limits and listeners of services.proxy in the file, if any
	check(svc.ApplyConf(conf))
	port, err := svc.AddTCP(listen)
	check(err)
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

	grace, err := conf.Get("grace_period_seconds")
	check(err)
	seconds, err := strconv.Atoi(grace)
	check(err)
	check(conf.Close())

	fmt.Printf("%s proxying on port %d to %s\n", proxy.Version(), port, cfg.upstream)
	check(server.Start())
	// Go owns the process's signals: SIGTERM and Ctrl-C stop (gracefully), SIGHUP reloads the
	// configuration, SIGQUIT hands the sockets to the new process started with -u and stops.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			if err := server.Reload(); err != nil {
				log.Print(err)
			}
			continue
		case syscall.SIGQUIT:
			if err := server.Upgrade(); err != nil {
				log.Print(err) // still serving
				continue
			}
		default:
			check(server.Shutdown(time.Duration(seconds) * time.Second))
		}
		break
	}
	check(server.Close())
}
