package proxy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// newOrigin is an httptest origin: /echo answers with the method, path and request headers in
// the body (one "name: value" line each, lowercase); /status/N answers N; /big/N sends N bytes;
// /cut sends a head promising 1000 bytes, then closes after 10; /slow/MS waits.
func newOrigin(t *testing.T, name string) *httptest.Server {
	t.Helper()
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Origin", name)
		switch {
		case strings.HasPrefix(r.URL.Path, "/status/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
			w.WriteHeader(n)
			return
		case strings.HasPrefix(r.URL.Path, "/big/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/big/"))
			w.Header().Set("Content-Length", strconv.Itoa(n))
			_, _ = w.Write([]byte(strings.Repeat("x", n)))
			return
		case r.URL.Path == "/cut":
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
			_ = buf.Flush()
			conn.Close()
			return
		case strings.HasPrefix(r.URL.Path, "/slow/"):
			ms, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/slow/"))
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		body, _ := io.ReadAll(r.Body)
		var lines []string
		for k, vs := range r.Header {
			for _, v := range vs {
				lines = append(lines, strings.ToLower(k)+": "+v)
			}
		}
		sort.Strings(lines)
		fmt.Fprintf(w, "%s %s\n%s\nbody=%s\n", r.Method, r.URL.RequestURI(), strings.Join(lines, "\n"), body)
	}))
	t.Cleanup(o.Close)
	return o
}

func hostPort(o *httptest.Server) string { return strings.TrimPrefix(o.URL, "http://") }

// startProxy runs handler h on one service with two threads on 127.0.0.1:0 and returns the
// server and the base URL; the server is closed when the test ends.
func startProxy(t *testing.T, h any, configure ...func(*proxy.Service)) (*proxy.Server, string) {
	t.Helper()
	srv, err := proxy.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	svc, err := proxy.NewService("test")
	if err != nil {
		t.Fatal(err)
	}
	port, err := svc.AddTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	must(t, svc.SetThreads(2))
	for _, f := range configure {
		f(svc)
	}
	must(t, svc.SetHandler(h))
	must(t, srv.AddService(svc))
	must(t, srv.Start())
	return srv, "http://127.0.0.1:" + strconv.Itoa(port)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var client = &http.Client{
	Timeout: 20 * time.Second,
	Transport: &http.Transport{
		MaxIdleConnsPerHost: 1000,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	},
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string, hdr map[string]string, body string) response {
	t.Helper()
	r, err := doErr(method, url, hdr, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func doErr(method, url string, hdr map[string]string, body string) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return response{}, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{status: res.StatusCode, header: res.Header, body: string(b)}, err
	}
	return response{status: res.StatusCode, header: res.Header, body: string(b)}, nil
}

// peerTo is a handler part that sends every request to addr.
type peerTo struct{ addr string }

func (p peerTo) UpstreamPeer(s *proxy.Session) proxy.Action {
	if err := s.SetPeer(proxy.Peer{Address: p.addr}); err != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

// logCapture is a slog.Handler that records messages.
type logCapture struct {
	mu   sync.Mutex
	recs []string
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.Key + "=" + a.Value.String()); return true })
	c.mu.Lock()
	c.recs = append(c.recs, b.String())
	c.mu.Unlock()
	return nil
}
func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCapture) WithGroup(string) slog.Handler      { return c }
func (c *logCapture) find(sub string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.recs {
		if strings.Contains(r, sub) {
			return true
		}
	}
	return false
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 400; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
