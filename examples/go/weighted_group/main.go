// A weighted, health-checked upstream group: UpstreamPeer picks from the group (a retry gets a
// backend not tried yet), passive health ejects a backend after 3 failures in a row, an HTTP
// check (GET / every 2 s, fall 2, rise 2) takes it down and brings it back, and health changes
// are printed.
// Usage: weighted_group LISTEN UPSTREAM=WEIGHT [UPSTREAM=WEIGHT ...]
// Mirrors examples/c/weighted_group.c.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

var events = []string{"", "up", "down", "ejected", "readmitted"}

type toGroup struct{ group *proxy.Group }

func (h toGroup) UpstreamPeer(s *proxy.Session) proxy.Action {
	if s.Pick(h.group, nil) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func health(backend string, ev proxy.HealthEvent) {
	fmt.Fprintf(os.Stderr, "backend %s: %s\n", backend, events[min(int(ev), 4)])
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintf(os.Stderr, "usage: %s LISTEN UPSTREAM=WEIGHT...\n", os.Args[0])
		os.Exit(2)
	}
	group, err := proxy.NewGroup("backends", proxy.RoundRobin)
	if err != nil {
		os.Exit(1)
	}
	for _, arg := range os.Args[2:] {
		address, weight, _ := strings.Cut(arg, "=")
		w, _ := strconv.Atoi(weight)
		if err := group.AddBackend(proxy.Peer{Address: address, ConnectTimeout: time.Second}, uint32(max(w, 1)), ""); err != nil {
			fmt.Fprintln(os.Stderr, "bad backend", arg, err)
			os.Exit(1)
		}
	}
	_ = group.Set(proxy.EjectFailures, 3)
	_ = group.OnHealth(health)
	check := proxy.HealthCheck{Probe: proxy.ProbeHTTP, Interval: 2 * time.Second, Rise: 2, Fall: 2}
	srv, err := proxy.NewServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "setup failed:", err)
		os.Exit(1)
	}
	defer srv.Close()
	svc, err := proxy.NewService("weighted-group")
	if err == nil {
		_, err = svc.AddTCP(os.Args[1])
	}
	if err == nil {
		err = svc.SetLimit(proxy.LimitMaxRetries, uint64(len(os.Args)-2))
	}
	if err == nil {
		err = svc.SetHandler(toGroup{group})
	}
	if err == nil {
		err = srv.AddService(svc)
	}
	if err == nil {
		err = srv.AddHealthCheck(group, check)
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
	if srv.Close() != nil || group.Close() != nil {
		os.Exit(1)
	}
}
