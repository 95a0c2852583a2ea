package proxy_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// countedHandler mirrors examples/go/metrics_counter: a labelled counter of requests by method.
type countedHandler struct {
	peerTo
	requests *proxy.Metric
}

func (c *countedHandler) RequestFilter(s *proxy.Session) proxy.Action {
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

func TestLabelledCounterOnMetrics(t *testing.T) {
	o := newOrigin(t, "o1")
	srv, err := proxy.NewServer()
	must(t, err)
	logFile := filepath.Join(t.TempDir(), "server.log")
	must(t, srv.SetLogFile(logFile, 3))
	t.Cleanup(func() {
		must(t, srv.Close())
		b, err := os.ReadFile(logFile)
		if err != nil || !strings.Contains(string(b), "[info] service counted: listening on 127.0.0.1:") {
			t.Errorf("server log file: %v %q", err, b)
		}
	})
	requests, err := srv.NewMetric(proxy.Counter, "app_requests_by_method", "Requests seen, by method.", []string{"method"}, nil)
	must(t, err)
	svc, err := proxy.NewService("counted")
	must(t, err)
	port, err := svc.AddTCP("127.0.0.1:0")
	must(t, err)
	must(t, svc.SetThreads(2))
	must(t, svc.SetHandler(&countedHandler{peerTo{hostPort(o)}, requests}))
	must(t, svc.SetObserve(proxy.ObserveMetrics|proxy.ObserveRequestIDs))
	must(t, srv.AddService(svc))
	mport, err := srv.AddMetrics("127.0.0.1:0")
	must(t, err)
	must(t, srv.Start())
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	// Concurrent updates of one series from several goroutines (and worker threads).
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				if r, err := doErr("GET", base+"/x", nil, ""); err != nil || r.status != 200 {
					t.Errorf("GET: %v %v", r.status, err)
				}
			}
		}()
	}
	wg.Wait()
	do(t, "DELETE", base+"/y", nil, "")
	res, err := http.Get("http://127.0.0.1:" + strconv.Itoa(int(mport)) + "/metrics")
	must(t, err)
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	must(t, err)
	text := string(b)
	for _, want := range []string{
		`app_requests_by_method_total{method="GET"} 20` + "\n",
		`app_requests_by_method_total{method="DELETE"} 1` + "\n",
		`libproxy_requests_total{service="counted",method="GET",status="2xx"} 20` + "\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in\n%s", want, text)
		}
	}
	// The same definition gives the same family; another kind under that name is refused.
	if _, err := srv.NewMetric(proxy.Gauge, "app_requests_by_method_total", "x", nil, nil); err == nil {
		t.Error("a gauge under a counter's name was accepted")
	}
}

// requestIDHandler reads the request id in a hook and sends it back.
type requestIDHandler struct{ peerTo }

func (requestIDHandler) ResponseFilter(s *proxy.Session) proxy.Action {
	id, err := s.RequestID()
	if err != nil || s.HeaderSet(proxy.HeadersResponse, "x-seen-id", id) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func TestRequestIDFromHooks(t *testing.T) {
	o := newOrigin(t, "o1")
	_, base := startProxy(t, requestIDHandler{peerTo{hostPort(o)}}, func(s *proxy.Service) {
		must(t, s.SetObserve(proxy.ObserveRequestIDs))
	})
	r := do(t, "GET", base+"/", map[string]string{"X-Request-Id": "go-client-7"}, "")
	if got := r.header.Get("x-seen-id"); got != "go-client-7" {
		t.Errorf("x-seen-id %q", got)
	}
	r = do(t, "GET", base+"/", nil, "")
	if got := r.header.Get("x-seen-id"); len(got) != 32 {
		t.Errorf("made id %q", got)
	}
}

func TestErrorResponseReplacesProxyPages(t *testing.T) {
	dead := newOrigin(t, "dead")
	addr := hostPort(dead)
	dead.Close() // nothing listens there now: every request ends in a proxy-made 502
	_, base := startProxy(t, peerTo{addr}, func(s *proxy.Service) {
		must(t, s.SetErrorResponse(func(status int, what string) (proxy.ErrorPage, bool) {
			if status != 502 {
				return proxy.ErrorPage{}, false
			}
			return proxy.ErrorPage{Status: 503, Headers: []proxy.Header{{Name: "x-custom", Value: "go"}},
				Body: []byte("go: " + what + "\n")}, true
		}))
	})
	r := do(t, "GET", base+"/x", nil, "")
	if r.status != 503 || r.header.Get("x-custom") != "go" || r.body != "go: could not connect to the upstream\n" {
		t.Fatalf("got %d %q %q", r.status, r.header.Get("x-custom"), r.body)
	}
}
