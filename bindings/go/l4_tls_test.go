package proxy_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strconv"
	"testing"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// l4Facts relays to addr and hands the TLS facts its hook saw to facts.
type l4Facts struct {
	addr  string
	facts chan *proxy.TLSFacts
}

func (h *l4Facts) UpstreamPeer(s *proxy.L4Session) (proxy.Peer, error) {
	f, err := s.TLS()
	if err != nil {
		return proxy.Peer{}, err
	}
	h.facts <- f
	return proxy.Peer{Address: h.addr}, nil
}

// An L4 hook on a TLS-terminating endpoint reads the facts of a mutual-TLS handshake as an HTTP
// hook does: SNI, version, cipher, the client certificate.
func TestL4HookReadsTheTLSFactsOfATerminatedConnection(t *testing.T) {
	p := newPKI(t)
	clientPEM, clientKey := p.issue(t, "go-l4-client", x509.ExtKeyUsageClientAuth, "go-l4-client.test")
	ts, err := proxy.NewTLSSettings()
	must(t, err)
	defer ts.Close()
	must(t, ts.SetCertFiles(p.cert, p.key))
	must(t, ts.SetClientAuthFile(p.caFile, proxy.ClientAuthRequired))

	srv, err := proxy.NewServer()
	must(t, err)
	defer srv.Close()
	h := &l4Facts{addr: echoOrigin(t), facts: make(chan *proxy.TLSFacts, 1)}
	svc, err := proxy.NewService("l4-tls")
	must(t, err)
	port, err := svc.AddTLS("127.0.0.1:0", ts)
	must(t, err)
	must(t, svc.SetL4Handler(h))
	must(t, srv.AddService(svc))
	must(t, srv.Start())

	cc, err := tls.X509KeyPair(clientPEM, clientKey)
	must(t, err)
	cfg := &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{cc}, ServerName: "localhost"}
	c, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cfg)
	must(t, err)
	defer c.Close()
	_, err = c.Write([]byte("ping"))
	must(t, err)
	got := make([]byte, 4)
	_, err = io.ReadFull(c, got)
	must(t, err)
	if string(got) != "ping" {
		t.Fatalf("echo: %q", got)
	}
	f := <-h.facts
	if f == nil || f.SNI != "localhost" || f.Version != "TLSv1.3" || f.Cipher == "" ||
		f.ClientSubject != "CN=go-l4-client" || len(f.ClientChain) == 0 {
		t.Fatalf("facts %+v", f)
	}
}
