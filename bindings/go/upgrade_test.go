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

// An "Upgrade: foo/1" offer reaches the origin only once AllowUpgrade("foo"); without it the
// request goes up plain. h2c and HTTP2-Settings never do.
func TestUpgradeAllowlist(t *testing.T) {
	o := newOrigin(t, "o")
	const req = "GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n" +
		"Upgrade: h2c, foo/1\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
	for _, allow := range []bool{false, true} {
		_, base := startProxy(t, peerTo{hostPort(o)}, func(s *proxy.Service) {
			if allow {
				must(t, s.AllowUpgrade("foo"))
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
			t.Fatalf("allow=%v: %v", allow, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		c.Close()
		dump := strings.ToLower(string(body))
		if res.StatusCode != 200 || strings.Contains(dump, "http2-settings") || strings.Contains(dump, "h2c") {
			t.Fatalf("allow=%v: %d, origin saw %q", allow, res.StatusCode, dump)
		}
		if strings.Contains(dump, "upgrade: foo/1\n") != allow {
			t.Fatalf("allow=%v: origin saw %q", allow, dump)
		}
	}
}

func TestAllowUpgradeRefusesH2cAndNonTokens(t *testing.T) {
	svc, err := proxy.NewService("t")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	for _, bad := range []string{"h2c", "H2", "not a token", ""} {
		if err := svc.AllowUpgrade(bad); !errors.Is(err, proxy.ErrInvalidParameter) {
			t.Fatalf("AllowUpgrade(%q): %v", bad, err)
		}
	}
	must(t, svc.DenyUpgrade("websocket"))
	if err := svc.DenyUpgrade("websocket"); !errors.Is(err, proxy.ErrNotFound) {
		t.Fatalf("second DenyUpgrade: %v", err)
	}
}
