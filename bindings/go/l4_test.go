package proxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// l4To relays every connection to addr and reports what it saw.
type l4To struct {
	addr    string
	mu      sync.Mutex
	clients []string
	tlvs    []string
	done    chan proxy.L4Summary
}

func (h *l4To) UpstreamPeer(s *proxy.L4Session) (proxy.Peer, error) {
	c, err := s.ClientAddr()
	if err != nil {
		return proxy.Peer{}, err
	}
	tlv, _ := s.ProxyTLV(proxy.PP2TypeAuthority)
	h.mu.Lock()
	h.clients, h.tlvs = append(h.clients, c), append(h.tlvs, string(tlv))
	h.mu.Unlock()
	return proxy.Peer{Address: h.addr}, nil
}

func (h *l4To) L4Logging(s *proxy.L4Session) {
	sum, err := s.Summary()
	if err == nil {
		h.done <- sum
	}
}

// echoOrigin echoes each connection until its EOF, then closes it.
func echoOrigin(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return l.Addr().String()
}

// startL4 runs h as an L4 service on 127.0.0.1:0 (configure runs before it is added).
func startL4(t *testing.T, srv *proxy.Server, h proxy.L4Handler, configure func(*proxy.Service)) int {
	svc, err := proxy.NewService("l4")
	must(t, err)
	port, err := svc.AddTCP("127.0.0.1:0")
	must(t, err)
	must(t, svc.SetL4Handler(h))
	must(t, svc.SetL4Option(proxy.L4IdleTimeoutMS, 2000))
	if configure != nil {
		configure(svc)
	}
	must(t, srv.AddService(svc))
	return port
}

// v2Header is a PROXY v2 header from 203.0.113.9:777 with an authority TLV "db.example".
func v2Header() []byte {
	h := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x19")
	h = append(h, 203, 0, 113, 9, 127, 0, 0, 1, 0x03, 0x09, 0, 80)
	return append(h, append([]byte{0x02, 0, 10}, "db.example"...)...)
}

func TestL4RelaysAHalfClosedEchoWithTheProxyHeadersAddress(t *testing.T) {
	srv, err := proxy.NewServer()
	must(t, err)
	defer srv.Close()
	h := &l4To{addr: echoOrigin(t), done: make(chan proxy.L4Summary, 4)}
	port := startL4(t, srv, h, func(s *proxy.Service) {
		must(t, s.SetProxyProtocol(proxy.ProxyProtocolRequired, []string{"127.0.0.1/32"}, 0))
		must(t, s.SetL4Option(proxy.L4Splice, 1)) // a Proxied stream: the buffered copy all the same
	})
	must(t, srv.Start())

	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	must(t, err)
	payload := strings.Repeat("0123456789abcdef", 64*1024) // 1 MiB
	go func() {
		c.Write(v2Header())
		c.Write([]byte(payload))
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	must(t, err)
	c.Close()
	if string(got) != payload {
		t.Fatalf("echo: got %d bytes, want %d", len(got), len(payload))
	}
	sum := <-h.done
	if sum.End != proxy.L4Closed || sum.BytesUp != uint64(len(payload)) || sum.BytesDown != uint64(len(payload)) {
		t.Fatalf("summary %+v", sum)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.clients[0] != "203.0.113.9:777" || h.tlvs[0] != "db.example" {
		t.Fatalf("hook saw %v %v", h.clients, h.tlvs)
	}
}

// front sends each request on to the L4 service with a v2 header, noting the client it saw.
type front struct {
	l4   string
	mu   sync.Mutex
	seen []string
}

func (f *front) UpstreamPeer(s *proxy.Session) proxy.Action {
	c, _ := s.ClientAddr()
	if _, err := s.ProxyTLV(proxy.PP2TypeAuthority); !errors.Is(err, proxy.ErrNotFound) {
		return proxy.Fail
	}
	f.mu.Lock()
	f.seen = append(f.seen, c)
	f.mu.Unlock()
	if err := s.SetPeer(proxy.Peer{Address: f.l4, Flags: proxy.PeerSendProxyV2}); err != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func TestProxyHeadersInAndOutCarryTheClientAddress(t *testing.T) {
	origin := newOrigin(t, "o")
	srv, err := proxy.NewServer()
	must(t, err)
	defer srv.Close()
	back := &l4To{addr: hostPort(origin), done: make(chan proxy.L4Summary, 4)}
	l4port := startL4(t, srv, back, func(s *proxy.Service) {
		must(t, s.SetProxyProtocol(proxy.ProxyProtocolRequired, []string{"127.0.0.1/32"}, time.Second))
		must(t, s.SetL4Option(proxy.L4IdleTimeoutMS, 200))
	})
	f := &front{l4: net.JoinHostPort("127.0.0.1", strconv.Itoa(l4port))}
	svc, err := proxy.NewService("http")
	must(t, err)
	port, err := svc.AddTCP("127.0.0.1:0")
	must(t, err)
	must(t, svc.SetHandler(f))
	must(t, svc.SetProxyProtocol(proxy.ProxyProtocolOptional, nil, 0))
	must(t, srv.AddService(svc))
	must(t, srv.Start())

	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	must(t, err)
	defer c.Close()
	_, err = c.Write([]byte("PROXY TCP4 198.51.100.7 127.0.0.1 999 80\r\nGET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"))
	must(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	must(t, err)
	if !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("answer %q", line)
	}
	<-back.done // the pooled connection to the L4 service ends at its idle timeout
	f.mu.Lock()
	back.mu.Lock()
	defer f.mu.Unlock()
	defer back.mu.Unlock()
	if f.seen[0] != "198.51.100.7:999" || back.clients[0] != "198.51.100.7:999" {
		t.Fatalf("front saw %v, L4 saw %v", f.seen, back.clients)
	}
}
