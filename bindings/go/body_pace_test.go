package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// slowBodyStatus POSTs a 1,000-byte body one byte every 50 ms and returns the status line the
// proxy answers with while the body is still trickling in.
func slowBodyStatus(t *testing.T, base string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	must(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	if _, err := c.Write([]byte("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

func TestSlowRequestBodyGets408(t *testing.T) {
	o := newOrigin(t, "o1")
	cases := map[string]func(*proxy.Service){
		"total": func(s *proxy.Service) { must(t, s.SetTimeout(proxy.TimeoutBodyTotal, 400*time.Millisecond)) },
		"min-rate": func(s *proxy.Service) {
			must(t, s.SetLimit(proxy.LimitBodyMinRate, 200))
			must(t, s.SetTimeout(proxy.TimeoutBodyRateGrace, 300*time.Millisecond))
		},
	}
	for name, configure := range cases {
		t.Run(name, func(t *testing.T) {
			_, base := startProxy(t, peerTo{hostPort(o)}, configure)
			started := time.Now()
			if line := slowBodyStatus(t, base); !strings.HasPrefix(line, "HTTP/1.1 408 ") {
				t.Fatalf("got %q", line)
			}
			if took := time.Since(started); took > 5*time.Second {
				t.Fatalf("took %v", took)
			}
			if r := do(t, "POST", base+"/echo", nil, strings.Repeat("y", 10000)); r.status != 200 {
				t.Fatalf("a body that keeps pace: %d", r.status)
			}
		})
	}
}

func TestRequestBuffering(t *testing.T) {
	o := newOrigin(t, "o1")
	_, base := startProxy(t, peerTo{hostPort(o)}, func(s *proxy.Service) {
		must(t, s.SetLimit(proxy.LimitRequestBuffer, 1000))
	})
	// An unknown-length body goes out chunked; the origin gets it whole with a Content-Length.
	req, err := http.NewRequest("POST", base+"/echo", io.MultiReader(strings.NewReader("hello"), strings.NewReader(" world")))
	must(t, err)
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	got, err := io.ReadAll(res.Body)
	res.Body.Close()
	must(t, err)
	if s := string(got); !strings.Contains(s, "content-length: 11\n") || !strings.HasSuffix(s, "body=hello world\n") {
		t.Fatalf("origin saw %q", s)
	}
	if r := do(t, "POST", base+"/echo", nil, strings.Repeat("y", 1001)); r.status != 413 {
		t.Fatalf("past the bound: %d", r.status)
	}
}
