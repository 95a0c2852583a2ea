// A proxy whose RequestFilter counts requests by method in a labelled counter of its own,
// exposed with the built-in figures on a metrics endpoint for Prometheus:
//
//	metrics_counter LISTEN UPSTREAM METRICS_LISTEN
//	curl http://METRICS_LISTEN/metrics | grep app_requests_by_method_total
//
// Mirrors examples/c/metrics_counter.c and examples/python/metrics_counter.py.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

type counted struct {
	upstream string
	requests *proxy.Metric
}

// RequestFilter counts the request under its method. Labels finds the series once per method
// and keeps it; the add itself takes no lock in the library.
func (c *counted) RequestFilter(s *proxy.Session) proxy.Action {
	method, err := s.Method()
	if err != nil {
		return proxy.Fail
	}
	series, err := c.requests.Labels(method)
	if err != nil || series.Add(1) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func (c *counted) UpstreamPeer(s *proxy.Session) proxy.Action {
	if s.SetPeer(proxy.Peer{Address: c.upstream}) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintf(os.Stderr, "usage: %s LISTEN UPSTREAM METRICS_LISTEN\n", os.Args[0])
		os.Exit(2)
	}
	srv, err := proxy.NewServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "setup failed:", err)
		os.Exit(1)
	}
	defer srv.Close()
	requests, err := srv.NewMetric(proxy.Counter, "app_requests_by_method", "Requests seen, by method.", []string{"method"}, nil)
	var svc *proxy.Service
	if err == nil {
		svc, err = proxy.NewService("counted")
	}
	if err == nil {
		_, err = svc.AddTCP(os.Args[1])
	}
	if err == nil {
		err = svc.SetHandler(&counted{upstream: os.Args[2], requests: requests})
	}
	if err == nil {
		err = svc.SetObserve(proxy.ObserveMetrics | proxy.ObserveRequestIDs)
	}
	if err == nil {
		err = srv.AddService(svc)
	}
	var port uint16
	if err == nil {
		port, err = srv.AddMetrics(os.Args[3])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "setup failed:", err)
		os.Exit(1)
	}
	fmt.Printf("metrics on port %d\n", port)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	if srv.Close() != nil {
		os.Exit(1)
	}
}
