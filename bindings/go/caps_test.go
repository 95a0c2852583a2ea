package proxy_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// keptRequest sends one request on a kept-alive connection and returns the status.
func keptRequest(t *testing.T, c net.Conn, r *bufio.Reader) int {
	t.Helper()
	must(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	if _, err := c.Write([]byte("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// A connection past LimitMaxConnections / LimitMaxConnectionsPerListener is closed unanswered;
// the connections already open keep being served.
func TestConnectionCaps(t *testing.T) {
	o := newOrigin(t, "o")
	for _, cap := range []proxy.Limit{proxy.LimitMaxConnections, proxy.LimitMaxConnectionsPerListener} {
		_, base := startProxy(t, peerTo{hostPort(o)}, func(s *proxy.Service) { must(t, s.SetLimit(cap, 2)) })
		addr := strings.TrimPrefix(base, "http://")
		var open []net.Conn
		var readers []*bufio.Reader
		for i := 0; i < 2; i++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			open, readers = append(open, c), append(readers, bufio.NewReader(c))
			if st := keptRequest(t, c, readers[i]); st != 200 {
				t.Fatalf("cap %d: open connection %d got %d", cap, i, st)
			}
		}
		extra, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		must(t, extra.SetDeadline(time.Now().Add(5*time.Second)))
		_, _ = extra.Write([]byte("GET /a HTTP/1.1\r\nHost: a\r\n\r\n"))
		if n, err := extra.Read(make([]byte, 100)); n != 0 || err == nil {
			t.Fatalf("cap %d: connection past the cap: %d bytes, %v (want closed unanswered)", cap, n, err)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("cap %d: connection past the cap was not closed", cap)
		}
		extra.Close()
		for i, c := range open {
			if st := keptRequest(t, c, readers[i]); st != 200 {
				t.Fatalf("cap %d: open connection %d then got %d", cap, i, st)
			}
		}
	}
}
