package proxy_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// logBuffer collects what the library logs, as slog text lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond for up to 5 s.
func waitFor(cond func() bool) bool {
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

func captureWarnings(t *testing.T, srv *proxy.Server) *logBuffer {
	t.Helper()
	b := &logBuffer{}
	must(t, srv.SetLogger(slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	return b
}

// misuse answers per path: /twice responds twice, /continue responds then returns Continue,
// /nopeer chooses no peer; it records the second Respond's error and each request's summary.
type misuse struct {
	origin string
	mu     sync.Mutex
	second error
	sums   []proxy.Summary
	errs   []string
}

func (h *misuse) RequestFilter(s *proxy.Session) proxy.Action {
	path, _ := s.Path()
	switch path {
	case "/twice":
		if err := s.Respond(401, nil, []byte("first\n")); err != nil {
			return proxy.Fail
		}
		err := s.Respond(200, nil, []byte("second\n"))
		h.mu.Lock()
		h.second = err
		h.mu.Unlock()
		return proxy.Responded
	case "/continue":
		if err := s.Respond(403, nil, []byte("denied\n")); err != nil {
			return proxy.Fail
		}
		return proxy.Continue
	}
	return proxy.Continue
}

func (h *misuse) UpstreamPeer(s *proxy.Session) proxy.Action {
	if path, _ := s.Path(); path == "/nopeer" {
		return proxy.Continue
	}
	if s.SetPeer(proxy.Peer{Address: h.origin}) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func (h *misuse) Logging(s *proxy.Session) {
	sum, _ := s.Summary()
	e, _ := s.ErrorText()
	h.mu.Lock()
	h.sums = append(h.sums, sum)
	h.errs = append(h.errs, e)
	h.mu.Unlock()
}

func (h *misuse) logged() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sums)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, readAll(t, res)
}

func TestSecondRespondIsAlready(t *testing.T) {
	h := &misuse{origin: hostPort(newOrigin(t, "o"))}
	_, base := startProxy(t, h)
	st, body := get(t, base+"/twice")
	if st != 401 || body != "first\n" {
		t.Fatalf("got %d %q, want the first response", st, body)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !errors.Is(h.second, proxy.ErrAlready) {
		t.Fatalf("second Respond: %v, want ErrAlready", h.second)
	}
}

func TestRespondThenContinueSendsTheResponseAndWarns(t *testing.T) {
	h := &misuse{origin: hostPort(newOrigin(t, "o"))}
	srv, base := startProxy(t, h)
	logs := captureWarnings(t, srv)
	st, body := get(t, base+"/continue")
	if st != 403 || body != "denied\n" {
		t.Fatalf("got %d %q, want the response the hook set", st, body)
	}
	if !waitFor(func() bool { return strings.Contains(logs.String(), "after proxy_session_respond") }) {
		t.Fatalf("no warning; log: %q", logs.String())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "request_filter") {
		t.Fatalf("log: %q", logs.String())
	}
}

func TestNoPeerIs500WithPageAndWarning(t *testing.T) {
	h := &misuse{origin: hostPort(newOrigin(t, "o"))}
	srv, base := startProxy(t, h)
	logs := captureWarnings(t, srv)
	res, err := client.Get(base + "/nopeer")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, res)
	if res.StatusCode != 500 || body != "500 Internal Server Error: the request could not be handled\n" || res.ContentLength != int64(len(body)) {
		t.Fatalf("got %d %q (length %d)", res.StatusCode, body, res.ContentLength)
	}
	if !waitFor(func() bool { return strings.Contains(logs.String(), "without proxy_session_set_peer") }) {
		t.Fatalf("no warning; log: %q", logs.String())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "upstream_peer") {
		t.Fatalf("log: %q", logs.String())
	}
}

func TestCutResponseIsTruncatedInTheSummary(t *testing.T) {
	h := &misuse{origin: hostPort(newOrigin(t, "o"))}
	_, base := startProxy(t, h)
	res, err := client.Get(base + "/cut")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	res.Body.Close()
	if !waitFor(func() bool { return h.logged() == 1 }) {
		t.Fatal("Logging was not called")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	sum, e := h.sums[0], h.errs[0]
	if sum.Status != 200 || sum.BytesOut != 10 || !sum.Truncated || sum.ErrorStatus != 502 {
		t.Fatalf("summary %+v", sum)
	}
	if !strings.HasPrefix(e, "response truncated (200 sent, 10 body bytes)") {
		t.Fatalf("error %q", e)
	}
}
