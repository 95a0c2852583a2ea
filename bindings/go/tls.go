package proxy

/*
#include <stdlib.h>
#include "lp.h"
*/
import "C"

import (
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// ClientAuth selects client-certificate verification (mTLS) on a TLS endpoint
// (PROXY_TLS_CLIENT_AUTH_*).
type ClientAuth uint32

// Client-certificate modes.
const (
	// ClientAuthNone asks for no client certificate (default).
	ClientAuthNone ClientAuth = C.PROXY_TLS_CLIENT_AUTH_NONE
	// ClientAuthOptional asks for one; clients without one are let in, a bad one is refused.
	ClientAuthOptional ClientAuth = C.PROXY_TLS_CLIENT_AUTH_OPTIONAL
	// ClientAuthRequired refuses clients without a certificate signed by one of the CAs.
	ClientAuthRequired ClientAuth = C.PROXY_TLS_CLIENT_AUTH_REQUIRED
)

// TLSVersions is a set of TLS protocol versions (PROXY_TLS_VERSION_* bits).
type TLSVersions uint32

// TLS versions, combinable with |.
const (
	TLS12 TLSVersions = C.PROXY_TLS_VERSION_1_2
	TLS13 TLSVersions = C.PROXY_TLS_VERSION_1_3
)

// TLSSettings mirrors proxy_tls_settings: certificates (default and by SNI), client auth, ALPN,
// versions and handshake timeout of TLS endpoints. Every setter validates at once; errors carry
// libproxy's message (errors.Is(err, ErrTLSInvalid)). Service.AddTLS copies the settings, so one
// value may serve several endpoints; Close frees it (a finalizer does so as a safety net).
type TLSSettings struct {
	mu sync.Mutex
	p  *C.proxy_tls_settings
}

// NewTLSSettings mirrors proxy_tls_settings_new. Defaults: ALPN h2, http/1.1; TLS 1.2 and 1.3;
// no client auth; 10 s handshake timeout; no certificate yet.
func NewTLSSettings() (*TLSSettings, error) {
	if err := checkABI(); err != nil {
		return nil, err
	}
	var p *C.proxy_tls_settings
	if err := check("proxy_tls_settings_new", C.proxy_tls_settings_new(&p)); err != nil {
		return nil, err
	}
	t := &TLSSettings{p: p}
	runtime.SetFinalizer(t, (*TLSSettings).Close)
	return t, nil
}

// lock returns the handle with t.mu held, or ErrClosed.
func (t *TLSSettings) lock() (*C.proxy_tls_settings, error) {
	t.mu.Lock()
	if t.p == nil {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	return t.p, nil
}

// result turns a result code into an error carrying proxy_tls_settings_last_error. t.mu is held.
func (t *TLSSettings) result(op string, r C.proxy_result) error {
	err := check(op, r)
	if e, ok := err.(*Error); ok && e.Code == CodeTLSInvalid {
		var msg C.proxy_str
		if C.proxy_tls_settings_last_error(t.p, &msg) == C.PROXY_OK {
			e.Detail = gostr(msg)
		}
	}
	return err
}

func (t *TLSSettings) call(op string, f func(p *C.proxy_tls_settings) C.proxy_result) error {
	p, err := t.lock()
	if err != nil {
		return err
	}
	defer t.mu.Unlock()
	err = t.result(op, f(p))
	runtime.KeepAlive(t)
	return err
}

// SetCertFiles mirrors proxy_tls_settings_set_cert_files: the default certificate chain and key
// from PEM files.
func (t *TLSSettings) SetCertFiles(certPath, keyPath string) error {
	c, k := C.CString(certPath), C.CString(keyPath)
	defer C.free(unsafe.Pointer(c))
	defer C.free(unsafe.Pointer(k))
	return t.call("proxy_tls_settings_set_cert_files", func(p *C.proxy_tls_settings) C.proxy_result {
		return C.proxy_tls_settings_set_cert_files(p, c, k)
	})
}

// SetCertPEM mirrors proxy_tls_settings_set_cert_pem: the default certificate from memory.
func (t *TLSSettings) SetCertPEM(certPEM, keyPEM []byte) error {
	// PEM bytes hold no Go pointers: C may read them during the call (it copies them).
	c, cl := cbytes(certPEM)
	k, kl := cbytes(keyPEM)
	return t.call("proxy_tls_settings_set_cert_pem", func(p *C.proxy_tls_settings) C.proxy_result {
		return C.proxy_tls_settings_set_cert_pem(p, c, cl, k, kl)
	})
}

// AddSNICertFiles mirrors proxy_tls_settings_add_sni_cert_files: serve this certificate to
// clients asking by SNI for one of names (host names or "*.example.com").
func (t *TLSSettings) AddSNICertFiles(names []string, certPath, keyPath string) error {
	n, c, k := C.CString(strings.Join(names, ",")), C.CString(certPath), C.CString(keyPath)
	defer C.free(unsafe.Pointer(n))
	defer C.free(unsafe.Pointer(c))
	defer C.free(unsafe.Pointer(k))
	return t.call("proxy_tls_settings_add_sni_cert_files", func(p *C.proxy_tls_settings) C.proxy_result {
		return C.proxy_tls_settings_add_sni_cert_files(p, n, c, k)
	})
}

// AddSNICertPEM mirrors proxy_tls_settings_add_sni_cert_pem.
func (t *TLSSettings) AddSNICertPEM(names []string, certPEM, keyPEM []byte) error {
	n := C.CString(strings.Join(names, ","))
	defer C.free(unsafe.Pointer(n))
	c, cl := cbytes(certPEM)
	k, kl := cbytes(keyPEM)
	return t.call("proxy_tls_settings_add_sni_cert_pem", func(p *C.proxy_tls_settings) C.proxy_result {
		return C.proxy_tls_settings_add_sni_cert_pem(p, n, c, cl, k, kl)
	})
}

// SetClientAuthFile mirrors proxy_tls_settings_set_client_auth_file: verify client certificates
// against the CAs of a PEM bundle file (caPath may be empty with ClientAuthNone).
func (t *TLSSettings) SetClientAuthFile(caPath string, mode ClientAuth) error {
	var ca *C.char
	if caPath != "" {
		ca = C.CString(caPath)
		defer C.free(unsafe.Pointer(ca))
	}
	return t.call("proxy_tls_settings_set_client_auth_file", func(p *C.proxy_tls_settings) C.proxy_result {
		return C.proxy_tls_settings_set_client_auth_file(p, ca, C.uint32_t(mode))
	})
}

// SetClientAuthPEM mirrors proxy_tls_settings_set_client_auth_pem.
func (t *TLSSettings) SetClientAuthPEM(caPEM []byte, mode ClientAuth) error {
	c, cl := cbytes(caPEM)
	return t.call("proxy_tls_settings_set_client_auth_pem", func(p *C.proxy_tls_settings) C.proxy_result {
		return C.proxy_tls_settings_set_client_auth_pem(p, c, cl, C.uint32_t(mode))
	})
}

// SetALPN mirrors proxy_tls_settings_set_alpn: protocols offered, most preferred first
// (default "h2", "http/1.1"; []string{"http/1.1"} keeps the endpoint on HTTP/1.1; none disables
// ALPN).
func (t *TLSSettings) SetALPN(protocols ...string) error {
	l := C.CString(strings.Join(protocols, ","))
	defer C.free(unsafe.Pointer(l))
	return t.call("proxy_tls_settings_set_alpn", func(p *C.proxy_tls_settings) C.proxy_result {
		return C.proxy_tls_settings_set_alpn(p, l)
	})
}

// SetVersions mirrors proxy_tls_settings_set_versions (TLS12, TLS13 or both).
func (t *TLSSettings) SetVersions(v TLSVersions) error {
	return t.call("proxy_tls_settings_set_versions", func(p *C.proxy_tls_settings) C.proxy_result {
		return C.proxy_tls_settings_set_versions(p, C.uint32_t(v))
	})
}

// SetHandshakeTimeout mirrors proxy_tls_settings_set_handshake_timeout (> 0).
func (t *TLSSettings) SetHandshakeTimeout(d time.Duration) error {
	if d <= 0 {
		return &Error{Op: "proxy_tls_settings_set_handshake_timeout", Code: CodeInvalidParameter}
	}
	return t.call("proxy_tls_settings_set_handshake_timeout", func(p *C.proxy_tls_settings) C.proxy_result {
		return C.proxy_tls_settings_set_handshake_timeout(p, durationMS(d))
	})
}

// Close mirrors proxy_tls_settings_free. Idempotent; endpoints added with the settings keep
// their copy.
func (t *TLSSettings) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.p != nil {
		C.proxy_tls_settings_free(t.p)
		t.p = nil
		runtime.SetFinalizer(t, nil)
	}
	return nil
}

// AddTLS mirrors proxy_service_add_tls: binds a TLS endpoint on TCP now with a copy of tls and
// returns the bound port. HTTP/2 is served to clients that negotiate h2 by ALPN.
func (s *Service) AddTLS(addr string, tls *TLSSettings) (port int, err error) {
	tp, err := tls.lock()
	if err != nil {
		return 0, err
	}
	defer tls.mu.Unlock()
	p, err := s.ptr()
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	caddr := C.CString(addr)
	defer C.free(unsafe.Pointer(caddr))
	var out C.uint16_t
	err = tls.result("proxy_service_add_tls", C.proxy_service_add_tls(p, caddr, tp, &out))
	runtime.KeepAlive(s)
	runtime.KeepAlive(tls)
	return int(out), err
}

// AddTLSUDS mirrors proxy_service_add_tls_uds: a TLS endpoint on a Unix domain socket.
func (s *Service) AddTLSUDS(path string, tls *TLSSettings) error {
	tp, err := tls.lock()
	if err != nil {
		return err
	}
	defer tls.mu.Unlock()
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	err = tls.result("proxy_service_add_tls_uds", C.proxy_service_add_tls_uds(p, cpath, tp))
	runtime.KeepAlive(s)
	runtime.KeepAlive(tls)
	return err
}

// SetH2Only mirrors proxy_service_set_h2_only: serve only HTTP/2 (h2c by prior knowledge on
// plaintext endpoints).
func (s *Service) SetH2Only(on bool) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	v := C.uint32_t(0)
	if on {
		v = 1
	}
	err = check("proxy_service_set_h2_only", C.proxy_service_set_h2_only(p, v))
	runtime.KeepAlive(s)
	return err
}
