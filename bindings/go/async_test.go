// Deciding later: Session.Async and a manual PENDING resumed from another goroutine.
package proxy_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// asyncAuth mirrors examples/c/async_auth.c, with Session.Async.
type asyncAuth struct{ peerTo }

func (asyncAuth) RequestFilter(s *proxy.Session) proxy.Action {
	return s.Async(func() proxy.Action {
		time.Sleep(20 * time.Millisecond) // an auth service round trip
		if tok, _ := s.Header(proxy.HeadersRequest, "x-token"); tok == "secret" {
			_ = s.HeaderSet(proxy.HeadersRequest, "x-decided-by", "goroutine")
			return proxy.Continue
		}
		if s.Respond(403, nil, []byte("forbidden\n")) != nil {
			return proxy.Fail
		}
		return proxy.Responded
	})
}

func TestAsyncHook(t *testing.T) {
	o := newOrigin(t, "o1")
	_, base := startProxy(t, asyncAuth{peerTo{hostPort(o)}})
	var wg sync.WaitGroup
	var bad atomic.Int32
	start := time.Now()
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			hdr := map[string]string{}
			want := 403
			if i%2 == 0 {
				hdr["X-Token"] = "secret"
				want = 200
			}
			r, err := doErr("GET", base+"/echo", hdr, "")
			if err != nil || r.status != want || (want == 200 && !strings.Contains(r.body, "x-decided-by: goroutine")) ||
				(want == 403 && r.body != "forbidden\n") {
				bad.Add(1)
				t.Logf("request %d: %v %d %q", i, err, r.status, r.body)
			}
		}(i)
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d bad answers", bad.Load())
	}
	// 100 requests that each wait 20 ms on 2 worker threads: only possible if nothing blocks.
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("async requests took %v: workers blocked?", d)
	}
}

// manualPending returns Pending and resumes through Server.Resume, checking ALREADY and GONE.
type manualPending struct {
	peerTo
	srv   atomic.Pointer[proxy.Server]
	ids   chan uint64
	extra chan error
}

func (h *manualPending) RequestFilter(s *proxy.Session) proxy.Action {
	id, err := s.ID()
	if err != nil {
		return proxy.Fail
	}
	switch p, _ := s.Path(); p {
	case "/never":
		h.ids <- id
		return proxy.Pending // never resumed: the pending deadline fails it
	case "/async-panic":
		return s.Async(func() proxy.Action { panic("boom in Async") })
	case "/early":
		// Resumed before the hook returned: kept until it returns Pending; twice is ALREADY.
		err1 := h.srv.Load().Resume(id, proxy.Continue)
		err2 := h.srv.Load().Resume(id, proxy.Continue)
		h.ids <- id
		h.extra <- errors.Join(err1, wantErr(err2, proxy.ErrAlready))
		return proxy.Pending
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		h.ids <- id
		h.extra <- h.srv.Load().Resume(id, proxy.Continue)
	}()
	return proxy.Pending
}

func wantErr(err, want error) error {
	if errors.Is(err, want) {
		return nil
	}
	return fmt.Errorf("got %v, want %v", err, want)
}

func TestManualPendingResume(t *testing.T) {
	o := newOrigin(t, "o1")
	logs := &logCapture{}
	h := &manualPending{peerTo: peerTo{hostPort(o)}, ids: make(chan uint64, 4), extra: make(chan error, 4)}
	srv, base := startProxy(t, h, func(s *proxy.Service) { must(t, s.SetTimeout(proxy.TimeoutPending, 200*time.Millisecond)) })
	must(t, srv.SetLogger(slog.New(logs)))
	h.srv.Store(srv)

	if r := do(t, "GET", base+"/echo", nil, ""); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	id := <-h.ids
	must(t, <-h.extra)
	// The client may see the response before the session is torn down (WRONG_PHASE until then).
	eventually(t, "GONE after the end", func() bool { return errors.Is(srv.Resume(id, proxy.Continue), proxy.ErrGone) })
	if r := do(t, "GET", base+"/early", nil, ""); r.status != 200 {
		t.Fatalf("early resume: %d", r.status)
	}
	<-h.ids
	must(t, <-h.extra)
	if err := srv.Resume(id, proxy.Pending); err == nil {
		t.Fatal("resume with Pending accepted")
	}
	if r := do(t, "GET", base+"/never", nil, ""); r.status != 500 {
		t.Fatalf("deadline: %d", r.status)
	}
	if err := srv.Resume(<-h.ids, proxy.Continue); !errors.Is(err, proxy.ErrGone) {
		t.Fatalf("resume after deadline: %v", err)
	}
	// libproxy's own diagnostic reached slog.
	eventually(t, "deadline warning in slog", func() bool { return logs.find("WARN") && logs.find("pending deadline") })
	if r := do(t, "GET", base+"/async-panic", nil, ""); r.status != 500 {
		t.Fatalf("panic in Async: %d", r.status)
	}
	eventually(t, "Async panic in slog", func() bool { return logs.find("boom in Async") })
}
