package proxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// testPKI is a CA and a server certificate for localhost / 127.0.0.1, as PEM files in a temp dir.
type testPKI struct {
	dir               string
	caFile, cert, key string
	certPEM, keyPEM   []byte
	pool              *x509.CertPool
	ca                *x509.Certificate
	caKey             *ecdsa.PrivateKey
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "go test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := testPKI{dir: t.TempDir(), pool: x509.NewCertPool(), ca: ca, caKey: caKey}
	p.pool.AddCert(ca)
	p.certPEM, p.keyPEM = p.issue(t, "localhost", x509.ExtKeyUsageServerAuth, "localhost", "127.0.0.1")
	p.caFile = p.write(t, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	p.cert = p.write(t, "server.pem", p.certPEM)
	p.key = p.write(t, "server.key", p.keyPEM)
	return p
}

// issue signs a certificate for cn and names (DNS names or IP addresses) with usage; PEM chain
// and PKCS#8 key.
func (p testPKI) issue(t *testing.T, cn string, usage x509.ExtKeyUsage, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	leaf := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, n)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func (p testPKI) write(t *testing.T, name string, b []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTLSConfigErrors(t *testing.T) {
	ts, err := proxy.NewTLSSettings()
	must(t, err)
	defer ts.Close()
	svc, err := proxy.NewService("cfg")
	must(t, err)
	defer svc.Close()
	_, err = svc.AddTLS("127.0.0.1:0", ts)
	var pe *proxy.Error
	if !errors.Is(err, proxy.ErrTLSInvalid) || !errors.As(err, &pe) || !strings.Contains(pe.Detail, "no certificate") {
		t.Fatalf("AddTLS without a certificate: %v", err)
	}
	err = ts.SetCertFiles("/nonexistent/cert.pem", "/nonexistent/key.pem")
	if !errors.Is(err, proxy.ErrTLSInvalid) || !strings.Contains(err.Error(), "/nonexistent/cert.pem") {
		t.Fatalf("missing file: %v", err)
	}
	if err := ts.SetCertPEM([]byte("junk"), []byte("junk")); !errors.Is(err, proxy.ErrTLSInvalid) {
		t.Fatalf("junk PEM: %v", err)
	}
	if err := ts.SetVersions(0); !errors.Is(err, proxy.ErrInvalidParameter) {
		t.Fatalf("no versions: %v", err)
	}
	p := newPKI(t)
	if err := ts.AddSNICertPEM([]string{"not-covered.test"}, p.certPEM, p.keyPEM); !errors.Is(err, proxy.ErrTLSInvalid) {
		t.Fatalf("uncovered SNI name: %v", err)
	}
	must(t, ts.Close())
	must(t, ts.Close())
	if err := ts.SetALPN("h2"); !errors.Is(err, proxy.ErrClosed) {
		t.Fatalf("use after Close: %v", err)
	}
}

// startTLSOrigin starts o over TLS (HTTP/2 and HTTP/1.1 by ALPN) with p's server certificate
// (httptest's own is a self-signed CA, which rustls refuses as an end-entity certificate).
func startTLSOrigin(t *testing.T, o *httptest.Server, p testPKI) {
	t.Helper()
	cert, err := tls.X509KeyPair(p.certPEM, p.keyPEM)
	must(t, err)
	o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	o.EnableHTTP2 = true
	o.StartTLS()
	t.Cleanup(o.Close)
}

// frontHandler proxies to a TLS origin over HTTP/2 (ALPN) and tells it the downstream version.
type frontHandler struct {
	origin, caFile string
	alpn           proxy.ALPN
}

func (h frontHandler) UpstreamPeer(s *proxy.Session) proxy.Action {
	err := s.SetPeer(proxy.Peer{Address: h.origin, Flags: proxy.PeerTLS, SNI: "localhost",
		CAFile: h.caFile, ALPN: h.alpn, MaxH2Streams: 16})
	if err != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func (h frontHandler) UpstreamRequestFilter(s *proxy.Session) proxy.Action {
	v, err := s.Version()
	if err != nil {
		return proxy.Fail
	}
	if s.HeaderSet(proxy.HeadersUpstreamRequest, "x-front-version", strconv.Itoa(v)) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func TestTLSEndpointsAndTLSPeers(t *testing.T) {
	p := newPKI(t)
	// The origin: Go's TLS test server with HTTP/2; its certificate covers example.com.
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "origin %s front=%s", r.Proto, r.Header.Get("x-front-version"))
	}))
	startTLSOrigin(t, origin, p)
	originCA := p.caFile
	originAddr := strings.TrimPrefix(origin.URL, "https://")

	ts, err := proxy.NewTLSSettings()
	must(t, err)
	defer ts.Close()
	must(t, ts.SetCertFiles(p.cert, p.key))
	must(t, ts.SetVersions(proxy.TLS12|proxy.TLS13))
	must(t, ts.SetHandshakeTimeout(5*time.Second))
	var tlsPort int
	_, plain := startProxy(t, frontHandler{origin: originAddr, caFile: originCA, alpn: proxy.ALPNH2}, func(s *proxy.Service) {
		var err error
		tlsPort, err = s.AddTLS("127.0.0.1:0", ts)
		must(t, err)
	})

	get := func(c *http.Client, url string) (string, int) {
		t.Helper()
		res, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b), res.ProtoMajor
	}

	// h2 over TLS by ALPN in, h2 over TLS out.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	body, major := get(&http.Client{Transport: tr}, "https://localhost:"+strconv.Itoa(tlsPort)+"/x")
	if major != 2 || body != "origin HTTP/2.0 front=20" {
		t.Fatalf("h2 over TLS: proto %d, body %q", major, body)
	}
	// HTTP/1.1 over TLS in.
	tr1 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	defer tr1.CloseIdleConnections()
	body, major = get(&http.Client{Transport: tr1}, "https://localhost:"+strconv.Itoa(tlsPort)+"/x")
	if major != 1 || body != "origin HTTP/2.0 front=11" {
		t.Fatalf("h1 over TLS: proto %d, body %q", major, body)
	}
	// h2c by prior knowledge on the plaintext endpoint (curl; net/http needs Go 1.24 for it):
	// Version() says 20.
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("the h2c check needs curl on PATH (apt-get install curl): %v", err)
	}
	out, err := exec.Command("curl", "-sS", "--max-time", "10", "--http2-prior-knowledge",
		"-w", " proto=%{http_version}", plain+"/x").CombinedOutput()
	if err != nil || string(out) != "origin HTTP/2.0 front=20 proto=2" {
		t.Fatalf("h2c: %v %q", err, out)
	}
}

func TestTLSPeerALPNAndVerification(t *testing.T) {
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "origin %s", r.Proto)
	}))
	p := newPKI(t)
	startTLSOrigin(t, origin, p)
	originCA := p.caFile
	addr := strings.TrimPrefix(origin.URL, "https://")
	for _, c := range []struct {
		alpn proxy.ALPN
		want string
	}{{proxy.ALPNH1, "origin HTTP/1.1"}, {proxy.ALPNH2, "origin HTTP/2.0"}, {proxy.ALPNH2ThenH1, "origin HTTP/2.0"}} {
		_, base := startProxy(t, frontHandler{origin: addr, caFile: originCA, alpn: c.alpn})
		if r := do(t, "GET", base+"/", nil, ""); r.status != 200 || r.body != c.want {
			t.Fatalf("alpn %d: %d %q", c.alpn, r.status, r.body)
		}
	}
	// Untrusted CA (system roots): 502.
	_, base := startProxy(t, frontHandler{origin: addr, alpn: proxy.ALPNH1})
	if r := do(t, "GET", base+"/", nil, ""); r.status != 502 {
		t.Fatalf("untrusted origin: %d", r.status)
	}
}
