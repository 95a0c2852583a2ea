package proxy

// TCP (L4) services and the PROXY protocol: Service.SetL4Handler makes a service relay each
// connection to the peer its handler chooses; Service.SetProxyProtocol accepts PROXY headers on
// a service's endpoints; PeerSendProxyV1 / V2 send one to a peer; Session.ProxyTLV and
// L4Session.ProxyTLV read what a header carried.

/*
#include <stdlib.h>
#include "lp.h"
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"strings"
	"time"
	"unsafe"
)

// Peer flags: send a PROXY protocol header of that version first on each new connection,
// carrying the client's address.
const (
	PeerSendProxyV1 PeerFlags = C.PROXY_PEER_SEND_PROXY_V1
	PeerSendProxyV2 PeerFlags = C.PROXY_PEER_SEND_PROXY_V2
)

// ProxyProtocolMode is a proxy_service_set_proxy_protocol mode.
type ProxyProtocolMode uint32

// PROXY protocol modes of an endpoint.
const (
	ProxyProtocolOff      ProxyProtocolMode = C.PROXY_PP_OFF
	ProxyProtocolRequired ProxyProtocolMode = C.PROXY_PP_REQUIRED
	ProxyProtocolOptional ProxyProtocolMode = C.PROXY_PP_OPTIONAL
)

// TLV types of a PROXY v2 header (ProxyTLV).
const (
	PP2TypeALPN          = C.PROXY_PP2_TYPE_ALPN
	PP2TypeAuthority     = C.PROXY_PP2_TYPE_AUTHORITY
	PP2TypeUniqueID      = C.PROXY_PP2_TYPE_UNIQUE_ID
	PP2TypeSSL           = C.PROXY_PP2_TYPE_SSL
	PP2SubtypeSSLVersion = C.PROXY_PP2_SUBTYPE_SSL_VERSION
)

// L4Option is a proxy_service_set_l4_option setting.
type L4Option uint32

// L4 service options.
const (
	L4IdleTimeoutMS   L4Option = C.PROXY_L4_IDLE_TIMEOUT_MS
	L4MaxDurationMS   L4Option = C.PROXY_L4_MAX_DURATION_MS
	L4BufferSize      L4Option = C.PROXY_L4_BUFFER_SIZE
	L4PeekClientHello L4Option = C.PROXY_L4_PEEK_CLIENT_HELLO
	// L4Splice 1 relays TCP to TCP with splice(2): less CPU per byte, somewhat lower peak rate.
	L4Splice L4Option = C.PROXY_L4_SPLICE
)

// L4Handler chooses the peer of each connection of an L4 service: return a Peer, or call
// L4Session.Pick and return a zero Peer. An error (or a panic, recovered) closes the connection.
// It runs once per connection, before any byte is relayed, and must not block.
type L4Handler interface {
	UpstreamPeer(s *L4Session) (Peer, error)
}

// L4Logger is implemented by an L4Handler that wants L4Logging once each connection ended.
type L4Logger interface {
	L4Logging(s *L4Session)
}

// L4Summary mirrors proxy_l4_summary.
type L4Summary struct {
	End                uint32 // a PROXY_L4_* end: 1 closed, 5 idle timeout, 6 max duration, ...
	BytesUp, BytesDown uint64
	Connect, Duration  time.Duration
}

// L4 connection ends (L4Summary.End).
const (
	L4Closed      = C.PROXY_L4_CLOSED
	L4IdleTimeout = C.PROXY_L4_IDLE_TIMEOUT
	L4MaxDuration = C.PROXY_L4_MAX_DURATION
)

// L4Session mirrors proxy_l4_session: valid only while the handler method that got it runs.
type L4Session struct {
	c      *C.proxy_l4_session
	done   bool
	chosen bool
}

func (s *L4Session) ptr() (*C.proxy_l4_session, error) {
	if s.done {
		return nil, ErrSessionDone
	}
	return s.c, nil
}

func (s *L4Session) str(op string, f func(*C.proxy_l4_session, *C.proxy_str) C.proxy_result) (string, error) {
	p, err := s.ptr()
	if err != nil {
		return "", err
	}
	var out C.proxy_str
	if err := check(op, f(p, &out)); err != nil {
		return "", err
	}
	return gostr(out), nil
}

// TLS gathers what the TLS handshake settled on a TLS-terminating endpoint, as Session.TLS does
// for HTTP hooks (ClientNotAfter stays zero); nil (and no error) in plaintext or passthrough.
func (s *L4Session) TLS() (*TLSFacts, error) {
	return gatherTLS(func(fact C.uint32_t, index int) ([]byte, bool, error) {
		p, err := s.ptr()
		if err != nil {
			return nil, false, err
		}
		var out C.proxy_bytes
		r := C.proxy_l4_session_tls(p, fact, C.size_t(index), &out)
		if r == C.PROXY_NOT_FOUND {
			return nil, false, nil
		}
		if err := check("proxy_l4_session_tls", r); err != nil {
			return nil, false, err
		}
		return C.GoBytes(unsafe.Pointer(out.ptr), C.int(out.len)), true, nil
	})
}

// ClientAddr mirrors proxy_l4_session_client_addr (the PROXY header's address when there was one).
func (s *L4Session) ClientAddr() (string, error) {
	return s.str("proxy_l4_session_client_addr", func(p *C.proxy_l4_session, o *C.proxy_str) C.proxy_result {
		return C.proxy_l4_session_client_addr(p, o)
	})
}

// LocalAddr mirrors proxy_l4_session_local_addr.
func (s *L4Session) LocalAddr() (string, error) {
	return s.str("proxy_l4_session_local_addr", func(p *C.proxy_l4_session, o *C.proxy_str) C.proxy_result { return C.proxy_l4_session_local_addr(p, o) })
}

// SNI mirrors proxy_l4_session_sni (ErrNotFound without one).
func (s *L4Session) SNI() (string, error) {
	return s.str("proxy_l4_session_sni", func(p *C.proxy_l4_session, o *C.proxy_str) C.proxy_result { return C.proxy_l4_session_sni(p, o) })
}

// ProxyTLV mirrors proxy_l4_session_proxy_tlv (ErrNotFound without it).
func (s *L4Session) ProxyTLV(kind uint8) ([]byte, error) {
	v, err := s.str("proxy_l4_session_proxy_tlv", func(p *C.proxy_l4_session, o *C.proxy_str) C.proxy_result {
		return C.proxy_l4_session_proxy_tlv(p, C.uint8_t(kind), o)
	})
	return []byte(v), err
}

// Pick mirrors proxy_l4_session_pick: a backend of group (key for consistent hashing; nil: none).
func (s *L4Session) Pick(group *Group, key []byte) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	kp, kl := cbytes(key)
	has := C.int(0)
	if key != nil {
		has = 1
	}
	if err := check("proxy_l4_session_pick", C.lp_l4_pick(p, C.uint64_t(group.ID()), (*C.char)(unsafe.Pointer(kp)), kl, has)); err != nil {
		return err
	}
	s.chosen = true
	runtime.KeepAlive(key)
	return nil
}

// Summary mirrors proxy_l4_session_summary (complete in L4Logging).
func (s *L4Session) Summary() (L4Summary, error) {
	p, err := s.ptr()
	if err != nil {
		return L4Summary{}, err
	}
	var c C.proxy_l4_summary
	c.struct_size = C.uint32_t(unsafe.Sizeof(c))
	if err := check("proxy_l4_session_summary", C.proxy_l4_session_summary(p, &c)); err != nil {
		return L4Summary{}, err
	}
	return L4Summary{
		End: uint32(c.end), BytesUp: uint64(c.bytes_up), BytesDown: uint64(c.bytes_down),
		Connect: time.Duration(c.connect_us) * time.Microsecond, Duration: time.Duration(c.duration_us) * time.Microsecond,
	}, nil
}

func (s *L4Session) setPeer(peer Peer) error {
	ap, al := cstr(peer.Address)
	sp, sl := cstr(peer.SNI)
	cp, cl := cstr(peer.CAFile)
	ccp, ccl := cstr(peer.ClientCert)
	ckp, ckl := cstr(peer.ClientKey)
	return check("proxy_l4_session_set_peer", C.lp_l4_set_peer(s.c, C.uint32_t(peer.Flags), ap, al, sp, sl,
		durationMS(peer.ConnectTimeout), durationMS(peer.TotalConnectionTimeout),
		durationMS(peer.ReadTimeout), durationMS(peer.WriteTimeout), durationMS(peer.IdleTimeout),
		C.uint64_t(peer.PoolGroup), cp, cl, ccp, ccl, ckp, ckl, C.uint32_t(peer.ALPN), C.uint32_t(peer.MaxH2Streams)))
}

// SetL4Handler mirrors proxy_service_set_l4_callbacks: the service becomes a TCP proxy whose
// connections go to the peers h chooses (h may also implement L4Logger). C receives a
// cgo.Handle, never a Go pointer.
func (s *Service) SetL4Handler(h L4Handler) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	handle := cgo.NewHandle(h)
	logging := C.int(0)
	if _, ok := h.(L4Logger); ok {
		logging = 1
	}
	if err := check("proxy_service_set_l4_callbacks", C.lp_set_l4_callbacks(p, C.uintptr_t(handle), logging)); err != nil {
		handle.Delete()
		return err
	}
	if s.hkH != 0 {
		s.hkH.Delete()
	}
	s.hk, s.hkH = nil, handle
	runtime.KeepAlive(s)
	return nil
}

// SetL4Option mirrors proxy_service_set_l4_option (after SetL4Handler).
func (s *Service) SetL4Option(which L4Option, value uint64) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	return check("proxy_service_set_l4_option", C.proxy_service_set_l4_option(p, C.uint32_t(which), C.uint64_t(value)))
}

// SetProxyProtocol mirrors proxy_service_set_proxy_protocol: PROXY headers on every endpoint,
// accepted from the trusted source ranges only (none: any); timeout 0 is the default (10 s).
func (s *Service) SetProxyProtocol(mode ProxyProtocolMode, trusted []string, timeout time.Duration) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	ct := C.CString(strings.Join(trusted, ","))
	defer C.free(unsafe.Pointer(ct))
	return check("proxy_service_set_proxy_protocol", C.proxy_service_set_proxy_protocol(p, C.uint32_t(mode), ct, durationMS(timeout)))
}

// ProxyTLV mirrors proxy_session_proxy_tlv: TLV kind of the PROXY v2 header the client's
// (HTTP/1) connection began with; ErrNotFound without it.
func (s *Session) ProxyTLV(kind uint8) ([]byte, error) {
	v, err := s.str("proxy_session_proxy_tlv", func(p *C.proxy_session, o *C.proxy_str) C.proxy_result {
		return C.proxy_session_proxy_tlv(p, C.uint8_t(kind), o)
	})
	return []byte(v), err
}
