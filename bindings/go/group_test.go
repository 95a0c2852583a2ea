package proxy_test

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// deadAddr is a loopback port nobody listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

type toGroup struct {
	g        *proxy.Group
	mu       sync.Mutex
	backends []string
	logged   chan struct{}
}

func (h *toGroup) UpstreamPeer(s *proxy.Session) proxy.Action {
	path, _ := s.Path()
	if err := s.Pick(h.g, []byte(path)); err != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func (h *toGroup) Logging(s *proxy.Session) {
	name, _ := s.Backend()
	h.mu.Lock()
	h.backends = append(h.backends, name)
	h.mu.Unlock()
	h.logged <- struct{}{}
}

type event struct {
	name string
	ev   proxy.HealthEvent
}

func TestGroupRetriesAroundADeadBackendAndEjectsIt(t *testing.T) {
	o := hostPort(newOrigin(t, "a"))
	dead := deadAddr(t)
	g, err := proxy.NewGroup("web", proxy.RoundRobin)
	must(t, err)
	defer g.Close()
	must(t, g.AddBackend(proxy.Peer{Address: o}, 3, ""))
	must(t, g.AddBackend(proxy.Peer{Address: dead, ConnectTimeout: 500 * time.Millisecond}, 1, ""))
	if err := g.AddBackend(proxy.Peer{Address: o}, 1, ""); !errors.Is(err, proxy.ErrInvalidParameter) {
		t.Fatalf("a second backend with one name: %v", err)
	}
	must(t, g.Set(proxy.EjectFailures, 1))
	must(t, g.Set(proxy.EjectMaxPercent, 50))
	must(t, g.Set(proxy.MaxConnections, 4))
	events := make(chan event, 16)
	must(t, g.OnHealth(func(name string, ev proxy.HealthEvent) { events <- event{name, ev} }))
	h := &toGroup{g: g, logged: make(chan struct{}, 64)}
	_, url := startProxy(t, h)
	for i := 0; i < 20; i++ {
		if r := do(t, "GET", url+"/echo", nil, ""); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		<-h.logged // the attempt ended before logging ran
	}
	if e := <-events; e != (event{dead, proxy.HealthEjected}) {
		t.Fatalf("event %+v", e)
	}
	figs, err := g.Figures()
	must(t, err)
	byName := map[string]proxy.BackendFigures{}
	for _, f := range figs {
		byName[f.Name] = f
	}
	if f := byName[dead]; !f.Ejected || f.Ejections != 1 || f.Failures != 1 {
		t.Fatalf("dead backend: %+v", f)
	}
	if f := byName[o]; f.Requests != 20 || f.InFlight != 0 || !f.Healthy {
		t.Fatalf("origin: %+v", f)
	}
	// Sequential requests reuse pooled connections, within the cap.
	if f := byName[o]; f.Connections < 1 || f.Connections > 4 || byName[dead].Connections != 0 {
		t.Fatalf("connections: origin %+v, dead %+v", f, byName[dead])
	}
	for _, b := range h.backends {
		if b != o {
			t.Fatalf("logged backends %v", h.backends)
		}
	}
}

func TestGroupCheckBackgroundAndStaleID(t *testing.T) {
	o := hostPort(newOrigin(t, "a"))
	dead := deadAddr(t)
	g, err := proxy.NewGroup("checked", proxy.Ketama)
	must(t, err)
	must(t, g.SetBackends([]string{o, dead}, []uint32{2, 1}))
	events := make(chan event, 16)
	must(t, g.OnHealth(func(name string, ev proxy.HealthEvent) { events <- event{name, ev} }))
	srv, err := proxy.NewServer()
	must(t, err)
	must(t, srv.AddHealthCheck(g, proxy.HealthCheck{Probe: proxy.ProbeHTTP, Interval: 50 * time.Millisecond,
		Fall: 1, Path: "/echo", Body: []byte("GET /echo")}))
	started, stopped := make(chan struct{}), make(chan struct{})
	must(t, srv.AddBackground("bg", func(stop proxy.Shutdown) {
		close(started)
		for !stop.Wait(time.Second) {
		}
		close(stopped)
	}))
	must(t, srv.Start())
	if err := srv.AddBackground("late", func(proxy.Shutdown) {}); !errors.Is(err, proxy.ErrWrongState) {
		t.Fatalf("AddBackground after Start: %v", err)
	}
	<-started
	if e := <-events; e != (event{dead, proxy.HealthDown}) {
		t.Fatalf("event %+v", e)
	}
	must(t, srv.Shutdown(2*time.Second))
	select {
	case <-stopped:
	default:
		t.Fatal("the background service had not returned when Shutdown did")
	}
	must(t, srv.Close())

	// Concurrent replacement and figures, then a closed group's id answers ErrGone.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				must(t, g.SetBackends([]string{o, dead}, nil))
				if _, err := g.Figures(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	must(t, g.Close())
	must(t, g.Close())
	if err := g.Set(proxy.MaxInFlight, 1); !errors.Is(err, proxy.ErrGone) {
		t.Fatalf("Set on a closed group: %v", err)
	}
	if _, err := g.Figures(); !errors.Is(err, proxy.ErrGone) {
		t.Fatalf("Figures on a closed group: %v", err)
	}
}

func TestDNSDiscoveryFillsTheGroupTheProxyPicksFrom(t *testing.T) {
	o := hostPort(newOrigin(t, "a"))
	_, portText, err := net.SplitHostPort(o)
	must(t, err)
	port, err := strconv.Atoi(portText)
	must(t, err)
	g, err := proxy.NewGroup("discovered", proxy.RoundRobin)
	must(t, err)
	defer g.Close()
	srv, err := proxy.NewServer()
	must(t, err)
	defer srv.Close()
	svc, err := proxy.NewService("dns")
	must(t, err)
	lport, err := svc.AddTCP("127.0.0.1:0")
	must(t, err)
	must(t, svc.SetHandler(&toGroup{g: g, logged: make(chan struct{}, 64)}))
	must(t, srv.AddService(svc))
	must(t, srv.AddDNSDiscovery(g, "localhost", uint16(port), 1, 50*time.Millisecond))
	must(t, srv.Start())
	// The first round of discovery runs on the server's own thread: wait for its answer.
	want := "127.0.0.1:" + portText
	found := false
	for deadline := time.Now().Add(10 * time.Second); !found && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		figs, err := g.Figures()
		must(t, err)
		for _, f := range figs {
			found = found || f.Name == want
		}
	}
	if !found {
		t.Fatalf("no backend %s after discovery", want)
	}
	// localhost may also name ::1, where nobody listens: retried around.
	for i := 0; i < 4; i++ {
		if r := do(t, "GET", "http://127.0.0.1:"+strconv.Itoa(lport)+"/echo", nil, ""); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	}
}
