// TLS at runtime: facts of the client's connection in hooks over HTTP/1.1 and HTTP/2, routing by
// SNI, certificates replaced under a handshake loop, and the certificate callback (at once, Async).
package proxy_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// factsEcho answers every request with the TLS facts its hook sees, as JSON.
type factsEcho struct{}

func (factsEcho) RequestFilter(s *proxy.Session) proxy.Action {
	f, err := s.TLS()
	if err != nil {
		return proxy.Fail
	}
	sni, err := s.SNI()
	if err != nil {
		return proxy.Fail
	}
	b, _ := json.Marshal(map[string]any{"tls": f, "sni": sni})
	if s.Respond(200, nil, b) != nil {
		return proxy.Fail
	}
	return proxy.Responded
}

// tlsProxy starts h with one TLS endpoint configured by ts; returns its port and a handle on its
// certificates.
func tlsProxy(t *testing.T, h any, ts *proxy.TLSSettings) (string, *proxy.TLSCerts, string) {
	t.Helper()
	var port int
	var certs *proxy.TLSCerts
	_, plain := startProxy(t, h, func(s *proxy.Service) {
		var err error
		port, err = s.AddTLS("127.0.0.1:0", ts)
		must(t, err)
		certs, err = s.TLSCerts(port)
		must(t, err)
	})
	t.Cleanup(func() { certs.Close() })
	return strconv.Itoa(port), certs, plain
}

func getFacts(t *testing.T, c *http.Client, url string) (map[string]any, int) {
	t.Helper()
	res, err := c.Get(url)
	must(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return doc, res.ProtoMajor
}

func TestTLSFactsInHooksOverH1AndH2(t *testing.T) {
	p := newPKI(t)
	clientPEM, clientKey := p.issue(t, "go-client", x509.ExtKeyUsageClientAuth, "go-client.test")
	ts, err := proxy.NewTLSSettings()
	must(t, err)
	defer ts.Close()
	must(t, ts.SetCertFiles(p.cert, p.key))
	must(t, ts.SetClientAuthFile(p.caFile, proxy.ClientAuthOptional))
	port, _, plain := tlsProxy(t, factsEcho{}, ts)
	cc, err := tls.X509KeyPair(clientPEM, clientKey)
	must(t, err)

	for _, tc := range []struct {
		h2      bool
		max     uint16
		alpn    string
		version string
	}{{false, tls.VersionTLS13, "http/1.1", "TLSv1.3"}, {true, tls.VersionTLS12, "h2", "TLSv1.2"}} {
		cfg := &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{cc}, MaxVersion: tc.max}
		if !tc.h2 {
			cfg.NextProtos = []string{"http/1.1"} // a custom config offers no ALPN otherwise
		}
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: tc.h2}
		doc, major := getFacts(t, &http.Client{Transport: tr}, "https://localhost:"+port+"/")
		tr.CloseIdleConnections()
		f := doc["tls"].(map[string]any)
		if major != map[bool]int{false: 1, true: 2}[tc.h2] || doc["sni"] != "localhost" || f["SNI"] != "localhost" ||
			f["ALPN"] != tc.alpn || f["Version"] != tc.version || f["ClientSubject"] != "CN=go-client" ||
			f["ClientIssuer"] != "CN=go test CA" || len(f["ClientChain"].([]any)) != 1 {
			t.Fatalf("h2=%v: proto %d, %v", tc.h2, major, doc)
		}
		if sans := f["ClientSANs"].([]any); len(sans) != 1 || sans[0] != "DNS:go-client.test" {
			t.Fatalf("SANs %v", sans)
		}
		if !strings.HasPrefix(f["Cipher"].(string), "TLS") || f["ClientSerial"] == "" {
			t.Fatalf("cipher / serial: %v", f)
		}
	}
	doc, _ := getFacts(t, http.DefaultClient, plain+"/")
	if doc["tls"] != nil || doc["sni"] != "" {
		t.Fatalf("plaintext: %v", doc)
	}
}

// bySNI sends localhost to one origin and everything else to another.
type bySNI struct{ local, other string }

func (b bySNI) UpstreamPeer(s *proxy.Session) proxy.Action {
	sni, err := s.SNI()
	if err != nil {
		return proxy.Fail
	}
	to := b.other
	if sni == "localhost" {
		to = b.local
	}
	if s.SetPeer(proxy.Peer{Address: to}) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

// handshake connects with SNI name and returns the CN of the certificate served.
func handshake(port, name string, cfg *tls.Config) (string, error) {
	c := cfg.Clone()
	c.ServerName = name
	conn, err := tls.Dial("tcp", "127.0.0.1:"+port, c)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func TestRoutingBySNI(t *testing.T) {
	p := newPKI(t)
	oc, ok := p.issue(t, "other.test", x509.ExtKeyUsageServerAuth, "other.test")
	a, b := newOrigin(t, "a"), newOrigin(t, "b")
	ts, err := proxy.NewTLSSettings()
	must(t, err)
	defer ts.Close()
	must(t, ts.SetCertFiles(p.cert, p.key))
	must(t, ts.AddSNICertPEM([]string{"other.test"}, oc, ok))
	port, _, _ := tlsProxy(t, bySNI{hostPort(a), hostPort(b)}, ts)
	for name, want := range map[string]string{"localhost": "a", "other.test": "b"} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool, ServerName: name}}
		res, err := (&http.Client{Transport: tr}).Get("https://127.0.0.1:" + port + "/")
		must(t, err)
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		tr.CloseIdleConnections()
		if got := res.Header.Get("X-Origin"); got != want {
			t.Fatalf("%s went to %q", name, got)
		}
	}
}

func TestCertificatesRotateUnderAHandshakeLoop(t *testing.T) {
	p := newPKI(t)
	sets := make([]*proxy.TLSSettings, 2)
	for i, cn := range []string{"gen-a", "gen-b"} {
		c, k := p.issue(t, cn, x509.ExtKeyUsageServerAuth, "localhost")
		ts, err := proxy.NewTLSSettings()
		must(t, err)
		defer ts.Close()
		must(t, ts.SetCertPEM(c, k))
		sets[i] = ts
	}
	port, live, _ := tlsProxy(t, factsEcho{}, sets[0])
	cfg := &tls.Config{RootCAs: p.pool}
	var done, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := handshake(port, "localhost", cfg); err != nil {
					t.Error(err)
					failed.Add(1)
				} else {
					done.Add(1)
				}
			}
		}()
	}
	for i := 1; i <= 6; i++ {
		before := done.Load()
		must(t, live.Replace(sets[i%2]))
		if cn, err := handshake(port, "localhost", cfg); err != nil || cn != []string{"gen-a", "gen-b"}[i%2] {
			t.Fatalf("after replacement %d: %q %v", i, cn, err)
		}
		eventually(t, "handshakes go on", func() bool { return done.Load() >= before+30 })
	}
	close(stop)
	wg.Wait()
	t.Logf("%d handshakes during 6 replacements, %d failed", done.Load(), failed.Load())
	if failed.Load() != 0 || done.Load() < 180 {
		t.Fatalf("%d handshakes, %d failed", done.Load(), failed.Load())
	}
	empty, err := proxy.NewTLSSettings()
	must(t, err)
	defer empty.Close()
	if err := live.Replace(empty); !errors.Is(err, proxy.ErrTLSInvalid) {
		t.Fatalf("replace with no certificate: %v", err)
	}
}

func TestCertCallbackAtOnceAndAsync(t *testing.T) {
	p := newPKI(t)
	oc, ok := p.issue(t, "other.test", x509.ExtKeyUsageServerAuth, "other.test", "async.test")
	other, err := proxy.NewTLSCertPEM(oc, ok)
	must(t, err)
	defer other.Close()
	var mu sync.Mutex
	var hellos []proxy.ClientHello
	ts, err := proxy.NewTLSSettings()
	must(t, err)
	defer ts.Close()
	must(t, ts.SetCertFiles(p.cert, p.key))
	must(t, ts.SetCertCallback(func(h *proxy.ClientHello) proxy.CertDecision {
		mu.Lock()
		hellos = append(hellos, proxy.ClientHello{ServerName: h.ServerName, ALPN: h.ALPN, SignatureSchemes: h.SignatureSchemes})
		mu.Unlock()
		switch h.ServerName {
		case "other.test":
			return proxy.CertUse(other)
		case "async.test":
			return h.Async(func() proxy.CertDecision { return proxy.CertUse(other) })
		case "localhost":
			return proxy.CertEndpoint
		}
		return proxy.CertRefuse
	}))
	port, _, _ := tlsProxy(t, factsEcho{}, ts)
	cfg := &tls.Config{RootCAs: p.pool, NextProtos: []string{"h2", "http/1.1"}}
	for name, want := range map[string]string{"other.test": "other.test", "async.test": "other.test", "localhost": "localhost"} {
		if cn, err := handshake(port, name, cfg); err != nil || cn != want {
			t.Fatalf("%s: %q %v", name, cn, err)
		}
	}
	if _, err := handshake(port, "refuse.test", &tls.Config{InsecureSkipVerify: true}); err == nil {
		t.Fatal("refuse.test: handshake succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hellos) != 4 || len(hellos[0].ALPN) != 2 || hellos[0].ALPN[0] != "h2" || len(hellos[0].SignatureSchemes) == 0 {
		t.Fatalf("hellos %+v", hellos)
	}
}
