package proxy_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// newCountingOrigin answers every request with Cache-Control from the request's x-cc field and
// a body "n=K", K the requests that reached it so far.
func newCountingOrigin(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := n.Add(1)
		if cc := r.Header.Get("x-cc"); cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		fmt.Fprintf(w, "n=%d", k)
	}))
	t.Cleanup(o.Close)
	return o, &n
}

// cacheHooks: "?skip" bypasses, "?expire" expires a hit, "?force" stores for 60 s, "?shared"
// uses one key; Logging records each request's cache status.
type cacheHooks struct {
	peerTo
	mu       sync.Mutex
	statuses []proxy.CacheStatus
}

func query(s *proxy.Session) string { q, _ := s.Query(); return q }

func (h *cacheHooks) RequestCacheFilter(s *proxy.Session) proxy.Action {
	if query(s) == "skip" && s.SetCache(proxy.CacheBypass, 1) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func (h *cacheHooks) CacheKeyCallback(s *proxy.Session) proxy.Action {
	if query(s) == "shared" && s.SetCacheKey("shared") != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func (h *cacheHooks) CacheHitFilter(s *proxy.Session) proxy.Action {
	if query(s) == "expire" && s.SetCache(proxy.CacheExpire, 1) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func (h *cacheHooks) ResponseCacheFilter(s *proxy.Session) proxy.Action {
	if query(s) == "force" && (s.SetCache(proxy.CacheStore, 1) != nil || s.SetCache(proxy.CacheTTL, 60) != nil) {
		return proxy.Fail
	}
	return proxy.Continue
}

func (h *cacheHooks) Logging(s *proxy.Session) {
	st, _ := s.CacheStatus()
	h.mu.Lock()
	h.statuses = append(h.statuses, st)
	h.mu.Unlock()
}

func newTestCache(t *testing.T) *proxy.Cache {
	t.Helper()
	c, err := proxy.NewCache(1 << 20)
	must(t, err)
	must(t, c.Set(proxy.CacheStatusHeader, 1))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestCacheHooksAndStatus(t *testing.T) {
	o, _ := newCountingOrigin(t)
	cache := newTestCache(t)
	h := &cacheHooks{peerTo: peerTo{hostPort(o)}}
	_, base := startProxy(t, h, func(svc *proxy.Service) { must(t, svc.SetCache(cache)) })
	if err := cache.Set(proxy.CacheAllowSetCookie, 1); !errors.Is(err, proxy.ErrWrongPhase) {
		t.Errorf("Set after SetCache: %v", err)
	}
	maxAge := map[string]string{"x-cc": "max-age=60"}
	status := func(path string, hdr map[string]string) (string, string) {
		r := do(t, "GET", base+path, hdr, "")
		return r.header.Get("x-cache-status"), r.body
	}
	steps := []struct {
		path string
		hdr  map[string]string
		want string
	}{
		{"/a", maxAge, "MISS"},
		{"/a", maxAge, "HIT"},
		{"/a?skip", maxAge, "BYPASS"},
		{"/e?expire", maxAge, "MISS"},
		{"/e?expire", maxAge, "EXPIRED"},
		{"/f?force", nil, "MISS"},
		{"/f?force", nil, "HIT"},
		{"/one?shared", maxAge, "MISS"},
		{"/two?shared", nil, "HIT"},
	}
	for _, s := range steps {
		if got, body := status(s.path, s.hdr); got != s.want {
			t.Errorf("%s: %s (%s), want %s", s.path, got, body, s.want)
		}
	}
	if _, objects, err := cache.Usage(); err != nil || objects != 4 {
		t.Errorf("usage: %d objects, %v", objects, err)
	}
	key := "http://" + hostPortOf(base) + "/a"
	if ok, err := cache.Purge(key); !ok || err != nil {
		t.Errorf("purge %s: %v %v", key, ok, err)
	}
	if ok, err := cache.Purge("http://nothing/"); ok || err != nil {
		t.Errorf("purge of nothing: %v %v", ok, err)
	}
	if got, _ := status("/a", maxAge); got != "MISS" {
		t.Errorf("after purge: %s", got)
	}
	eventually(t, "logging", func() bool { h.mu.Lock(); defer h.mu.Unlock(); return len(h.statuses) == len(steps)+1 })
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.statuses[0] != proxy.CacheStatusMiss || h.statuses[1] != proxy.CacheStatusHit {
		t.Errorf("statuses %v", h.statuses)
	}
}

func hostPortOf(base string) string { return strings.TrimPrefix(base, "http://") }

func TestCacheConcurrentMissesMakeOneUpstreamRequest(t *testing.T) {
	o, n := newCountingOrigin(t)
	cache := newTestCache(t)
	_, base := startProxy(t, peerTo{hostPort(o)}, func(svc *proxy.Service) { must(t, svc.SetCache(cache)) })
	var wg sync.WaitGroup
	bodies := make([]string, 50)
	for i := range bodies {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest("GET", base+"/stampede", nil)
			req.Header.Set("x-cc", "max-age=60")
			res, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
			if err != nil {
				t.Errorf("GET: %v", err)
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			bodies[i] = string(b)
		}(i)
	}
	wg.Wait()
	for i, b := range bodies {
		if b != "n=1" {
			t.Errorf("client %d got %q", i, b)
		}
	}
	if n.Load() != 1 {
		t.Errorf("%d upstream requests", n.Load())
	}
}

func TestCacheCloseIsIdempotent(t *testing.T) {
	if _, err := proxy.NewCache(0); !errors.Is(err, proxy.ErrInvalidParameter) {
		t.Errorf("NewCache(0): %v", err)
	}
	c, err := proxy.NewCache(1 << 10)
	must(t, err)
	must(t, c.Close())
	must(t, c.Close())
	if err := c.Set(proxy.CacheMaxObject, 1); !errors.Is(err, proxy.ErrClosed) {
		t.Errorf("Set after Close: %v", err)
	}
}
