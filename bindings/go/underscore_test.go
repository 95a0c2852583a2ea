package proxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// A Content_Length field (read as Content-Length by CGI/WSGI-style origins) never reaches the
// origin by default or with UnderscoreDrop, is a 400 with UnderscoreRefuse, and goes on as sent
// with UnderscoreForward.
func TestUnderscoreFieldsOption(t *testing.T) {
	o := newOrigin(t, "o")
	const req = "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent_Length: 40\r\n" +
		"Transfer_Encoding: chunked\r\nX-Keep: k\r\nConnection: close\r\n\r\nhello"
	for _, tc := range []struct {
		name   string
		mode   *uint32
		status int
		fwd    bool
	}{
		{"default", nil, 200, false},
		{"drop", ptr(proxy.UnderscoreDrop), 200, false},
		{"refuse", ptr(proxy.UnderscoreRefuse), 400, false},
		{"forward", ptr(proxy.UnderscoreForward), 200, true},
	} {
		_, base := startProxy(t, peerTo{hostPort(o)}, func(s *proxy.Service) {
			if tc.mode != nil {
				must(t, s.SetOption(proxy.OptionUnderscoreFields, *tc.mode))
			}
		})
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		must(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		c.Close()
		if res.StatusCode != tc.status {
			t.Fatalf("%s: status %d (want %d): %s", tc.name, res.StatusCode, tc.status, body)
		}
		if tc.status != 200 {
			continue
		}
		dump := string(body)
		if !strings.Contains(dump, "x-keep: k\n") || !strings.HasSuffix(dump, "body=hello\n") {
			t.Fatalf("%s: origin saw %q", tc.name, dump)
		}
		for _, f := range []string{"content_length: 40\n", "transfer_encoding: chunked\n"} {
			if strings.Contains(dump, f) != tc.fwd {
				t.Fatalf("%s: %q forwarded = %v (want %v): %q", tc.name, f, !tc.fwd, tc.fwd, dump)
			}
		}
	}
}

func TestSetOptionRefusesUnknownOptionsAndValues(t *testing.T) {
	svc, err := proxy.NewService("t")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := svc.SetOption(999, 0); !errors.Is(err, proxy.ErrInvalidParameter) {
		t.Fatalf("unknown option: %v", err)
	}
	if err := svc.SetOption(proxy.OptionUnderscoreFields, 3); !errors.Is(err, proxy.ErrInvalidParameter) {
		t.Fatalf("unknown value: %v", err)
	}
	must(t, svc.SetOption(proxy.OptionUnderscoreFields, proxy.UnderscoreForward))
}

func ptr(v uint32) *uint32 { return &v }
