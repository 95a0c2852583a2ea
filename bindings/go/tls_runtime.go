package proxy

/*
#include <stdlib.h>
#include "lp.h"
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

// TLSFacts is what the TLS handshake of a request's connection settled (proxy_session_tls): the
// same for every request on the connection, HTTP/1.1 or HTTP/2. Client fields are empty without
// a client certificate.
type TLSFacts struct {
	SNI     string
	ALPN    string
	Version string // "TLSv1.2" or "TLSv1.3"
	Cipher  string // IANA name, e.g. "TLS13_AES_128_GCM_SHA256"
	// The client certificate of mutual TLS.
	ClientSubject  string   // "CN=alice, O=Example"
	ClientIssuer   string   // the same form
	ClientSerial   string   // upper-case hex
	ClientSANs     []string // "DNS:a.example", "IP:127.0.0.1", "URI:spiffe://x/y", "email:a@example"
	ClientNotAfter time.Time
	ClientChain    [][]byte // DER, the client's own certificate first
}

// tlsFact reads one fact; ok is false when the connection lacks it (NOT_FOUND).
func (s *Session) tlsFact(fact C.uint32_t, index int) (b []byte, ok bool, err error) {
	p, err := s.ptr()
	if err != nil {
		return nil, false, err
	}
	var out C.proxy_bytes
	r := C.proxy_session_tls(p, fact, C.size_t(index), &out)
	if r == C.PROXY_NOT_FOUND {
		return nil, false, nil
	}
	if err := check("proxy_session_tls", r); err != nil {
		return nil, false, err
	}
	return C.GoBytes(unsafe.Pointer(out.ptr), C.int(out.len)), true, nil
}

// SNI mirrors proxy_session_tls(PROXY_TLS_FACT_SNI): the server name the client asked for over
// TLS, "" without one (plaintext, or no SNI). One crossing: cheap enough for routing.
func (s *Session) SNI() (string, error) {
	b, _, err := s.tlsFact(C.PROXY_TLS_FACT_SNI, 0)
	return string(b), err
}

// TLS gathers the facts of the request's connection; nil (and no error) on a plaintext one.
func (s *Session) TLS() (*TLSFacts, error) {
	f, err := gatherTLS(s.tlsFact)
	if err != nil || f == nil || len(f.ClientChain) == 0 {
		return f, err
	}
	p, err := s.ptr()
	if err != nil {
		return nil, err
	}
	var secs C.int64_t
	if err := check("proxy_session_tls_client_not_after", C.proxy_session_tls_client_not_after(p, &secs)); err != nil {
		return nil, err
	}
	f.ClientNotAfter = time.Unix(int64(secs), 0).UTC()
	return f, nil
}

// gatherTLS reads every fact through read (proxy_session_tls or proxy_l4_session_tls); nil
// without a TLS version, which is a plaintext (or passed-through) connection.
func gatherTLS(read func(fact C.uint32_t, index int) ([]byte, bool, error)) (*TLSFacts, error) {
	var f TLSFacts
	text := func(fact C.uint32_t, dst *string) (bool, error) {
		b, ok, err := read(fact, 0)
		*dst = string(b)
		return ok, err
	}
	ok, err := text(C.PROXY_TLS_FACT_VERSION, &f.Version)
	if err != nil || !ok {
		return nil, err
	}
	for _, x := range []struct {
		fact C.uint32_t
		dst  *string
	}{
		{C.PROXY_TLS_FACT_SNI, &f.SNI}, {C.PROXY_TLS_FACT_ALPN, &f.ALPN}, {C.PROXY_TLS_FACT_CIPHER, &f.Cipher},
		{C.PROXY_TLS_FACT_CLIENT_SUBJECT, &f.ClientSubject}, {C.PROXY_TLS_FACT_CLIENT_ISSUER, &f.ClientIssuer},
		{C.PROXY_TLS_FACT_CLIENT_SERIAL, &f.ClientSerial},
	} {
		if _, err := text(x.fact, x.dst); err != nil {
			return nil, err
		}
	}
	list := func(fact C.uint32_t, add func([]byte)) error {
		for i := 0; ; i++ {
			b, ok, err := read(fact, i)
			if err != nil || !ok {
				return err
			}
			add(b)
		}
	}
	if err := list(C.PROXY_TLS_FACT_CLIENT_SAN, func(b []byte) { f.ClientSANs = append(f.ClientSANs, string(b)) }); err != nil {
		return nil, err
	}
	if err := list(C.PROXY_TLS_FACT_CLIENT_CERT, func(b []byte) { f.ClientChain = append(f.ClientChain, b) }); err != nil {
		return nil, err
	}
	return &f, nil
}

// TLSCert mirrors proxy_tls_cert: a certificate chain and its key, checked to form a pair, for a
// certificate callback to serve (CertUse). Close frees it (a finalizer does so as a safety net);
// handshakes that chose it keep their copy.
type TLSCert struct {
	mu sync.Mutex
	p  *C.proxy_tls_cert
}

func newTLSCert(op string, f func(**C.proxy_tls_cert) C.proxy_result) (*TLSCert, error) {
	if err := checkABI(); err != nil {
		return nil, err
	}
	var p *C.proxy_tls_cert
	if err := check(op, f(&p)); err != nil {
		return nil, err
	}
	c := &TLSCert{p: p}
	runtime.SetFinalizer(c, (*TLSCert).Close)
	return c, nil
}

// NewTLSCertFiles mirrors proxy_tls_cert_new_files (PEM chain and key files); errors.Is(err,
// ErrTLSInvalid) for a bad pair.
func NewTLSCertFiles(certPath, keyPath string) (*TLSCert, error) {
	c, k := C.CString(certPath), C.CString(keyPath)
	defer C.free(unsafe.Pointer(c))
	defer C.free(unsafe.Pointer(k))
	return newTLSCert("proxy_tls_cert_new_files", func(out **C.proxy_tls_cert) C.proxy_result {
		return C.proxy_tls_cert_new_files(c, k, out)
	})
}

// NewTLSCertPEM mirrors proxy_tls_cert_new_pem (PEM documents in memory, copied).
func NewTLSCertPEM(certPEM, keyPEM []byte) (*TLSCert, error) {
	c, cl := cbytes(certPEM)
	k, kl := cbytes(keyPEM)
	return newTLSCert("proxy_tls_cert_new_pem", func(out **C.proxy_tls_cert) C.proxy_result {
		return C.proxy_tls_cert_new_pem(c, cl, k, kl, out)
	})
}

// Close mirrors proxy_tls_cert_free. Idempotent.
func (c *TLSCert) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p != nil {
		C.proxy_tls_cert_free(c.p)
		c.p = nil
	}
	return nil
}

// TLSCerts mirrors proxy_tls_certs: the live certificate sets of TLS endpoints of a service, to
// Replace while the server runs. Safe for concurrent use.
type TLSCerts struct {
	mu sync.Mutex
	p  *C.proxy_tls_certs
}

// TLSCerts mirrors proxy_service_tls_certs: a handle on the certificates of the service's TLS
// endpoints on port (0: all of them). Take it before Server.AddService; ErrNotFound when no TLS
// endpoint matches.
func (s *Service) TLSCerts(port int) (*TLSCerts, error) {
	p, err := s.ptr()
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out *C.proxy_tls_certs
	err = check("proxy_service_tls_certs", C.proxy_service_tls_certs(p, C.uint16_t(port), &out))
	runtime.KeepAlive(s)
	if err != nil {
		return nil, err
	}
	c := &TLSCerts{p: out}
	runtime.SetFinalizer(c, (*TLSCerts).Close)
	return c, nil
}

// Replace mirrors proxy_tls_certs_replace: the endpoints serve the default and SNI certificates
// of tls from their next handshake on (its other settings do not apply); connections already
// established keep theirs. ErrTLSInvalid (nothing changes) when tls has no certificate.
func (c *TLSCerts) Replace(tls *TLSSettings) error {
	tp, err := tls.lock()
	if err != nil {
		return err
	}
	defer tls.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p == nil {
		return ErrClosed
	}
	err = tls.result("proxy_tls_certs_replace", C.proxy_tls_certs_replace(c.p, tp))
	runtime.KeepAlive(tls)
	return err
}

// Close mirrors proxy_tls_certs_free (the endpoints keep their certificates). Idempotent.
func (c *TLSCerts) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p != nil {
		C.proxy_tls_certs_free(c.p)
		c.p = nil
	}
	return nil
}

// ClientHello is what the client offered, as a certificate callback sees it (copied when the
// callback starts): the server name (SNI), ALPN protocols in its order, and signature schemes
// (IANA numbers: 0x0403 ecdsa_secp256r1_sha256, 0x0804 rsa_pss_rsae_sha256, ...).
type ClientHello struct {
	ServerName       string
	ALPN             []string
	SignatureSchemes []uint16
	c                *C.proxy_client_hello
}

// CertDecision is a certificate callback's answer: CertUse(cert), CertEndpoint (the endpoint's
// own certificates), CertRefuse, or what ClientHello.Async returns. The zero value refuses.
type CertDecision struct {
	action C.proxy_action
	cert   *TLSCert
}

var (
	// CertEndpoint serves the endpoint's own certificates (default and SNI map).
	CertEndpoint = CertDecision{action: C.PROXY_CONTINUE}
	// CertRefuse refuses the handshake (the connection is closed).
	CertRefuse = CertDecision{action: C.PROXY_ERROR}
)

// CertUse serves cert on this handshake.
func CertUse(cert *TLSCert) CertDecision { return CertDecision{action: C.PROXY_CONTINUE, cert: cert} }

// apply hands d's certificate to the hello and returns the action to answer.
func (h *ClientHello) apply(d CertDecision) C.proxy_action {
	if d.cert == nil || d.action != C.PROXY_CONTINUE {
		return d.action
	}
	d.cert.mu.Lock()
	defer d.cert.mu.Unlock()
	if d.cert.p == nil || C.proxy_client_hello_set_cert(h.c, d.cert.p) != C.PROXY_OK {
		return C.PROXY_ERROR
	}
	return C.PROXY_CONTINUE
}

// Async decides in a new goroutine: it returns at once (the handshake waits, PENDING), runs f
// there and resumes the handshake with f's decision (proxy_client_hello_resume). A panic in f
// refuses the handshake. Use it as the callback's last statement:
//
//	return h.Async(func() proxy.CertDecision { ... })
func (h *ClientHello) Async(f func() CertDecision) CertDecision {
	var id C.uint64_t
	if C.proxy_client_hello_id(h.c, &id) != C.PROXY_OK {
		return CertRefuse
	}
	go func() {
		d := CertRefuse
		defer func() {
			_ = recover()
			a := C.proxy_action(C.PROXY_ERROR)
			if d.action != C.PROXY_PENDING {
				a = h.apply(d)
			}
			C.proxy_client_hello_resume(id, a) // GONE: the handshake gave up meanwhile
		}()
		d = f()
	}()
	return CertDecision{action: C.PROXY_PENDING}
}

// CertCallback chooses the certificate of each handshake (see TLSSettings.SetCertCallback).
type CertCallback func(h *ClientHello) CertDecision

// SetCertCallback mirrors proxy_tls_settings_set_cert_callback: fn chooses the certificate of
// each handshake on endpoints added with these settings (which then need no certificate of
// their own), on libproxy's worker threads; it must not block (use ClientHello.Async). A panic
// refuses the handshake. nil removes it. The callback stays registered for the life of the
// process: endpoints copy the settings and may call it after they are closed.
func (t *TLSSettings) SetCertCallback(fn CertCallback) error {
	var user C.uintptr_t
	if fn != nil {
		user = C.uintptr_t(cgo.NewHandle(fn))
	}
	return t.call("proxy_tls_settings_set_cert_callback", func(p *C.proxy_tls_settings) C.proxy_result {
		return C.lp_set_cert_callback(p, user)
	})
}

// certCallback runs the host's callback for goProxyCertCallback.
func certCallback(user unsafe.Pointer, c *C.proxy_client_hello) (ret C.proxy_action) {
	ret = C.PROXY_ERROR
	defer func() { _ = recover() }() // a panicking callback refuses the handshake
	fn := cgo.Handle(uintptr(user)).Value().(CertCallback)
	h := &ClientHello{c: c}
	var s C.proxy_str
	if C.proxy_client_hello_server_name(c, &s) == C.PROXY_OK {
		h.ServerName = gostr(s)
	}
	for i := 0; C.proxy_client_hello_alpn(c, C.size_t(i), &s) == C.PROXY_OK; i++ {
		h.ALPN = append(h.ALPN, gostr(s))
	}
	var scheme C.uint16_t
	for i := 0; C.proxy_client_hello_signature_scheme(c, C.size_t(i), &scheme) == C.PROXY_OK; i++ {
		h.SignatureSchemes = append(h.SignatureSchemes, uint16(scheme))
	}
	d := fn(h)
	if d.action == C.PROXY_PENDING {
		return d.action
	}
	return h.apply(d)
}
