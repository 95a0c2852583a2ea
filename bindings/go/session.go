package proxy

/*
#include "lp.h"
*/
import "C"

import (
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"
)

// HeaderKind selects the header block an accessor works on (proxy_headers_kind).
type HeaderKind uint32

// Header blocks, mirroring PROXY_HEADERS_*.
const (
	// HeadersRequest is the downstream request (readable in every phase, writable up to
	// ConnectedToUpstream).
	HeadersRequest HeaderKind = C.PROXY_HEADERS_REQUEST
	// HeadersUpstreamRequest is the request about to go upstream (only in UpstreamRequestFilter).
	HeadersUpstreamRequest HeaderKind = C.PROXY_HEADERS_UPSTREAM_REQUEST
	// HeadersResponse is the response: writable in UpstreamResponseFilter / ResponseFilter,
	// readable afterwards.
	HeadersResponse HeaderKind = C.PROXY_HEADERS_RESPONSE
)

// Header is one header field (proxy_header), copied into Go memory.
type Header struct {
	Name, Value string
}

// Session mirrors proxy_session: one request/response exchange as a hook sees it. It is valid
// while the hook runs and, when the hook returned Pending, until Resume (or the goroutine of
// Async finished); afterwards every method answers ErrSessionDone without touching C. Strings
// and bytes returned are copies. Use a session from one goroutine at a time.
type Session struct {
	c     *C.proxy_session
	hk    *hooks
	phase Phase
	id    uint64 // cached by ID
	done  atomic.Bool
}

func (s *Session) ptr() (*C.proxy_session, error) {
	if s.done.Load() {
		return nil, ErrSessionDone
	}
	debugGC()
	return s.c, nil
}

func gostr(v C.proxy_str) string {
	if v.len == 0 || v.ptr == nil {
		return ""
	}
	return C.GoStringN(v.ptr, C.int(v.len))
}

// cstr passes a Go string's bytes to C for the duration of one call (no Go pointers inside, so
// cgo allows it; the C side copies).
func cstr(v string) (*C.char, C.size_t) {
	if len(v) == 0 {
		return nil, 0
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(v))), C.size_t(len(v))
}

func cbytes(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// Phase is the phase whose hook this session was handed to.
func (s *Session) Phase() Phase { return s.phase }

// ID mirrors proxy_session_id: the id to pass to Server.Resume (unique for the server's life).
func (s *Session) ID() (uint64, error) {
	if s.id != 0 {
		return s.id, nil
	}
	p, err := s.ptr()
	if err != nil {
		return 0, err
	}
	var id C.uint64_t
	if err := check("proxy_session_id", C.proxy_session_id(p, &id)); err != nil {
		return 0, err
	}
	s.id = uint64(id)
	return s.id, nil
}

func (s *Session) str(op string, f func(*C.proxy_session, *C.proxy_str) C.proxy_result) (string, error) {
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

// Method mirrors proxy_session_method, e.g. "GET".
func (s *Session) Method() (string, error) {
	return s.str("proxy_session_method", func(p *C.proxy_session, o *C.proxy_str) C.proxy_result { return C.proxy_session_method(p, o) })
}

// URI mirrors proxy_session_uri: the request target as received.
func (s *Session) URI() (string, error) {
	return s.str("proxy_session_uri", func(p *C.proxy_session, o *C.proxy_str) C.proxy_result { return C.proxy_session_uri(p, o) })
}

// Path mirrors proxy_session_path: the path of the target, without the query.
func (s *Session) Path() (string, error) {
	return s.str("proxy_session_path", func(p *C.proxy_session, o *C.proxy_str) C.proxy_result { return C.proxy_session_path(p, o) })
}

// Query mirrors proxy_session_query (without '?'); ErrNotFound when the target has none.
func (s *Session) Query() (string, error) {
	return s.str("proxy_session_query", func(p *C.proxy_session, o *C.proxy_str) C.proxy_result { return C.proxy_session_query(p, o) })
}

// ClientAddr mirrors proxy_session_client_addr: "1.2.3.4:5678", "[::1]:5678" or "unix:/path".
func (s *Session) ClientAddr() (string, error) {
	return s.str("proxy_session_client_addr", func(p *C.proxy_session, o *C.proxy_str) C.proxy_result { return C.proxy_session_client_addr(p, o) })
}

// ServerAddr mirrors proxy_session_server_addr: the local address the request arrived on.
func (s *Session) ServerAddr() (string, error) {
	return s.str("proxy_session_server_addr", func(p *C.proxy_session, o *C.proxy_str) C.proxy_result { return C.proxy_session_server_addr(p, o) })
}

// ErrorText mirrors proxy_session_error: the current error in FailToConnect / ErrorWhileProxy
// / FailToProxy, the final one in Logging; ErrNotFound when the request did not fail.
func (s *Session) ErrorText() (string, error) {
	return s.str("proxy_session_error", func(p *C.proxy_session, o *C.proxy_str) C.proxy_result { return C.proxy_session_error(p, o) })
}

func (s *Session) u32(op string, f func(*C.proxy_session, *C.uint32_t) C.proxy_result) (uint32, error) {
	p, err := s.ptr()
	if err != nil {
		return 0, err
	}
	var out C.uint32_t
	if err := check(op, f(p, &out)); err != nil {
		return 0, err
	}
	return uint32(out), nil
}

// Version mirrors proxy_session_version: HTTP10, HTTP11 or HTTP20 (10, 11, 20).
func (s *Session) Version() (int, error) {
	v, err := s.u32("proxy_session_version", func(p *C.proxy_session, o *C.uint32_t) C.proxy_result { return C.proxy_session_version(p, o) })
	return int(v), err
}

// ResponseStatus mirrors proxy_session_response_status.
func (s *Session) ResponseStatus() (int, error) {
	v, err := s.u32("proxy_session_response_status", func(p *C.proxy_session, o *C.uint32_t) C.proxy_result { return C.proxy_session_response_status(p, o) })
	return int(v), err
}

// UpstreamReused mirrors proxy_session_upstream_reused (ConnectedToUpstream).
func (s *Session) UpstreamReused() (bool, error) {
	v, err := s.u32("proxy_session_upstream_reused", func(p *C.proxy_session, o *C.uint32_t) C.proxy_result { return C.proxy_session_upstream_reused(p, o) })
	return v == 1, err
}

// Retries mirrors proxy_session_retries: attempts beyond the first so far.
func (s *Session) Retries() (int, error) {
	v, err := s.u32("proxy_session_retries", func(p *C.proxy_session, o *C.uint32_t) C.proxy_result { return C.proxy_session_retries(p, o) })
	return int(v), err
}

// SetResponseStatus mirrors proxy_session_set_response_status (200..599; UpstreamResponseFilter
// / ResponseFilter).
func (s *Session) SetResponseStatus(status int) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	if status < 0 || status > 1<<31 {
		return &Error{Op: "proxy_session_set_response_status", Code: CodeInvalidParameter}
	}
	return check("proxy_session_set_response_status", C.proxy_session_set_response_status(p, C.uint32_t(status)))
}

// SetRetry mirrors proxy_session_set_retry (FailToConnect / ErrorWhileProxy).
func (s *Session) SetRetry(retry bool) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	var v C.uint32_t
	if retry {
		v = 1
	}
	return check("proxy_session_set_retry", C.proxy_session_set_retry(p, v))
}

// HeaderCount mirrors proxy_session_header_count.
func (s *Session) HeaderCount(kind HeaderKind) (int, error) {
	p, err := s.ptr()
	if err != nil {
		return 0, err
	}
	var n C.size_t
	if err := check("proxy_session_header_count", C.proxy_session_header_count(p, C.uint32_t(kind), &n)); err != nil {
		return 0, err
	}
	return int(n), nil
}

// HeaderGet mirrors proxy_session_header_get: the index-th value (0-based) of header name
// (case-insensitive) in block kind, and how many values name has. ErrNotFound (count still set)
// when there is no such value.
func (s *Session) HeaderGet(kind HeaderKind, name string, index int) (value string, count int, err error) {
	p, err := s.ptr()
	if err != nil {
		return "", 0, err
	}
	if index < 0 {
		return "", 0, &Error{Op: "proxy_session_header_get", Code: CodeInvalidParameter}
	}
	np, nl := cstr(name)
	var out C.proxy_str
	var n C.size_t
	r := C.lp_header_get(p, C.uint32_t(kind), np, nl, C.size_t(index), &out, &n)
	if err := check("proxy_session_header_get", r); err != nil {
		return "", int(n), err
	}
	return gostr(out), int(n), nil
}

// Header is the first value of name in block kind, and whether there is one.
func (s *Session) Header(kind HeaderKind, name string) (string, bool) {
	v, _, err := s.HeaderGet(kind, name, 0)
	return v, err == nil
}

// HeaderNth mirrors proxy_session_header_nth: the index-th field of block kind.
func (s *Session) HeaderNth(kind HeaderKind, index int) (Header, error) {
	p, err := s.ptr()
	if err != nil {
		return Header{}, err
	}
	if index < 0 {
		return Header{}, &Error{Op: "proxy_session_header_nth", Code: CodeInvalidParameter}
	}
	var h C.proxy_header
	if err := check("proxy_session_header_nth", C.proxy_session_header_nth(p, C.uint32_t(kind), C.size_t(index), &h)); err != nil {
		return Header{}, err
	}
	return Header{gostr(h.name), gostr(h.value)}, nil
}

// Headers mirrors proxy_session_headers: every field of block kind (names lowercase, grouped by
// name in first-arrival order).
func (s *Session) Headers(kind HeaderKind) ([]Header, error) {
	p, err := s.ptr()
	if err != nil {
		return nil, err
	}
	buf := make([]C.proxy_header, 32)
	for {
		var n C.size_t
		r := C.proxy_session_headers(p, C.uint32_t(kind), &buf[0], C.size_t(len(buf)), &n)
		if r == C.PROXY_TOO_SMALL {
			buf = make([]C.proxy_header, int(n))
			continue
		}
		if err := check("proxy_session_headers", r); err != nil {
			return nil, err
		}
		out := make([]Header, int(n))
		for i := range out {
			out[i] = Header{gostr(buf[i].name), gostr(buf[i].value)}
		}
		return out, nil
	}
}

// HeaderSet mirrors proxy_session_header_set: replaces every value of name with value.
// ErrHeaderInvalid (nothing changed) for a bad name or value, or Content-Length /
// Transfer-Encoding.
func (s *Session) HeaderSet(kind HeaderKind, name, value string) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	np, nl := cstr(name)
	vp, vl := cstr(value)
	return check("proxy_session_header_set", C.lp_header_set(p, C.uint32_t(kind), np, nl, vp, vl))
}

// HeaderAdd mirrors proxy_session_header_add: appends a value to name.
func (s *Session) HeaderAdd(kind HeaderKind, name, value string) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	np, nl := cstr(name)
	vp, vl := cstr(value)
	return check("proxy_session_header_add", C.lp_header_add(p, C.uint32_t(kind), np, nl, vp, vl))
}

// HeaderRemove mirrors proxy_session_header_remove; ErrNotFound when there was none.
func (s *Session) HeaderRemove(kind HeaderKind, name string) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	np, nl := cstr(name)
	return check("proxy_session_header_remove", C.lp_header_remove(p, C.uint32_t(kind), np, nl))
}

// PeerFlags are proxy_peer.flags bits.
type PeerFlags uint32

// Peer flags, mirroring PROXY_PEER_*.
const (
	// PeerTLS connects with TLS (SNI, verification against CAFile or the system roots).
	PeerTLS PeerFlags = C.PROXY_PEER_TLS
	// PeerTLSNoVerify (with PeerTLS) skips certificate verification (open to interception).
	PeerTLSNoVerify PeerFlags = C.PROXY_PEER_TLS_NO_VERIFY
	// PeerTLSNoVerifyHostname (with PeerTLS) verifies the chain but not the name.
	PeerTLSNoVerifyHostname PeerFlags = C.PROXY_PEER_TLS_NO_VERIFY_HOSTNAME
)

// ALPN is the HTTP version spoken to a peer (PROXY_ALPN_*).
type ALPN uint32

// Peer protocols.
const (
	// ALPNH1 speaks HTTP/1.1 (default).
	ALPNH1 ALPN = C.PROXY_ALPN_H1
	// ALPNH2 speaks HTTP/2 only (by ALPN over TLS, h2c by prior knowledge on plaintext).
	ALPNH2 ALPN = C.PROXY_ALPN_H2
	// ALPNH2ThenH1 speaks HTTP/2 when the TLS peer agrees, else HTTP/1.1.
	ALPNH2ThenH1 ALPN = C.PROXY_ALPN_H2THENH1
)

// HTTP versions as Session.Version reports them (PROXY_HTTP_*).
const (
	HTTP10 = C.PROXY_HTTP_10
	HTTP11 = C.PROXY_HTTP_11
	HTTP20 = C.PROXY_HTTP_20
)

// Peer mirrors proxy_peer: where and how to connect upstream. Zero durations take the library
// defaults.
type Peer struct {
	// Address is "host:port", "1.2.3.4:80", "[::1]:80" or a Unix socket path.
	Address string
	// SNI is the TLS server name (empty: the host of Address; none for an IP address).
	SNI                    string
	Flags                  PeerFlags
	ConnectTimeout         time.Duration
	TotalConnectionTimeout time.Duration
	ReadTimeout            time.Duration
	WriteTimeout           time.Duration
	IdleTimeout            time.Duration
	// PoolGroup partitions the connection pool: peers in different groups never share one.
	PoolGroup uint64
	// CAFile is a PEM bundle to verify a TLS peer against (empty: the system roots).
	CAFile string
	// ClientCert and ClientKey are PEM files of a client certificate for a TLS peer.
	ClientCert, ClientKey string
	// ALPN selects HTTP/1.1, HTTP/2 or HTTP/2-then-1.1 towards the peer.
	ALPN ALPN
	// MaxH2Streams limits concurrent requests on one HTTP/2 connection (0: default).
	MaxH2Streams uint32
}

// SetPeer mirrors proxy_session_set_peer (only in UpstreamPeer).
func (s *Session) SetPeer(peer Peer) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	return check("proxy_session_set_peer", peer.set(p))
}

// Check mirrors proxy_peer_check: the library's own validation of peer (the one SetPeer makes),
// outside any session, to refuse a bad configured upstream at start-up rather than fail each
// request with 500. ErrInvalidParameter, with the reason in Error.Detail ("invalid port").
func (peer Peer) Check() error {
	// The reason is the calling thread's last error: read it on the thread that failed.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return check("proxy_peer_check", peer.set(nil))
}

// set hands peer to lp_set_peer: proxy_session_set_peer on p, or only proxy_peer_check (p nil).
func (peer Peer) set(p *C.proxy_session) C.proxy_result {
	ap, al := cstr(peer.Address)
	sp, sl := cstr(peer.SNI)
	cp, cl := cstr(peer.CAFile)
	ccp, ccl := cstr(peer.ClientCert)
	ckp, ckl := cstr(peer.ClientKey)
	return C.lp_set_peer(p, C.uint32_t(peer.Flags), ap, al, sp, sl,
		durationMS(peer.ConnectTimeout), durationMS(peer.TotalConnectionTimeout),
		durationMS(peer.ReadTimeout), durationMS(peer.WriteTimeout), durationMS(peer.IdleTimeout),
		C.uint64_t(peer.PoolGroup), cp, cl, ccp, ccl, ckp, ckl, C.uint32_t(peer.ALPN), C.uint32_t(peer.MaxH2Streams))
}

// Respond mirrors proxy_session_respond: answer locally with status (200..599), headers and
// body (Content-Length is set by the proxy), then return Responded (or resume with it).
// EarlyRequestFilter, RequestFilter and FailToProxy only. Nothing is stored when a header is
// invalid. Once per request: a second call is ErrAlready and the first response stands. A hook
// that responds and then returns Continue still gets its response sent, with a warning logged.
func (s *Session) Respond(status int, headers []Header, body []byte) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	if status < 0 || status > 1<<31 {
		return &Error{Op: "proxy_session_respond", Code: CodeInvalidParameter}
	}
	var hbuf []byte
	var lens []C.size_t
	if len(headers) > 0 {
		lens = make([]C.size_t, 0, 2*len(headers))
		for _, h := range headers {
			hbuf = append(hbuf, h.Name...)
			hbuf = append(hbuf, h.Value...)
			lens = append(lens, C.size_t(len(h.Name)), C.size_t(len(h.Value)))
		}
	}
	var hp *C.char
	if len(hbuf) > 0 {
		hp = (*C.char)(unsafe.Pointer(&hbuf[0]))
	}
	var lp *C.size_t
	if len(lens) > 0 {
		lp = &lens[0]
	}
	bp, bl := cbytes(body)
	return check("proxy_session_respond", C.lp_respond(p, C.uint32_t(status), hp, lp, C.size_t(len(headers)), bp, bl))
}

// Body mirrors proxy_session_body: a copy of the chunk in a body filter phase and whether it is
// the last one.
func (s *Session) Body() (data []byte, endOfStream bool, err error) {
	p, err := s.ptr()
	if err != nil {
		return nil, false, err
	}
	var out C.proxy_bytes
	var end C.uint32_t
	if err := check("proxy_session_body", C.proxy_session_body(p, &out, &end)); err != nil {
		return nil, false, err
	}
	if out.len > 0 {
		data = C.GoBytes(unsafe.Pointer(out.ptr), C.int(out.len))
	}
	return data, end == 1, nil
}

// SetBody mirrors proxy_session_set_body: replaces the chunk (empty drops it). For response
// bodies whose length changes, remove Content-Length in ResponseFilter first.
func (s *Session) SetBody(data []byte) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	dp, dl := cbytes(data)
	return check("proxy_session_set_body", C.proxy_session_set_body(p, dp, dl))
}

// Summary mirrors proxy_summary: what the proxy knows about a request (complete in Logging).
type Summary struct {
	Status          int
	BytesIn         uint64
	BytesOut        uint64
	UpstreamConnect time.Duration
	TimeToFirstByte time.Duration
	Total           time.Duration
	Retries         int
	Reused          bool
	// ErrorStatus is 0 when the request succeeded, else the status its error maps to (502 for an
	// upstream fault), even when the client already got another Status (see Truncated).
	ErrorStatus int
	// Truncated: the head went out but the response did not reach its end; the client got
	// Status with an incomplete body of BytesOut bytes. Session.ErrorText says why.
	Truncated bool
}

// Summary mirrors proxy_session_summary.
func (s *Session) Summary() (Summary, error) {
	p, err := s.ptr()
	if err != nil {
		return Summary{}, err
	}
	var c C.proxy_summary
	c.struct_size = C.uint32_t(unsafe.Sizeof(c))
	if err := check("proxy_session_summary", C.proxy_session_summary(p, &c)); err != nil {
		return Summary{}, err
	}
	return Summary{
		Status:          int(c.status),
		BytesIn:         uint64(c.bytes_in),
		BytesOut:        uint64(c.bytes_out),
		UpstreamConnect: time.Duration(c.upstream_connect_us) * time.Microsecond,
		TimeToFirstByte: time.Duration(c.time_to_first_byte_us) * time.Microsecond,
		Total:           time.Duration(c.total_us) * time.Microsecond,
		Retries:         int(c.retries),
		Reused:          c.reused == 1,
		ErrorStatus:     int(c.error_status),
		Truncated:       c.truncated == 1,
	}, nil
}

// SetUser mirrors proxy_session_set_user: attaches any Go value to the request (kept in a
// cgo.Handle, released after RequestEnd). The handler must implement RequestEnd, otherwise
// nothing would release it: ErrWrongState then.
func (s *Session) SetUser(v any) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	if !s.hk.hasEnd {
		return &Error{Op: "Session.SetUser (handler has no RequestEnd)", Code: CodeWrongState}
	}
	st, err := requestState(p, v != nil)
	if err != nil {
		return err
	}
	if st != nil {
		st.user = v
	}
	return nil
}

// User mirrors proxy_session_get_user: the value set with SetUser, or nil.
func (s *Session) User() any {
	p, err := s.ptr()
	if err != nil {
		return nil
	}
	if st, _ := requestState(p, false); st != nil {
		return st.user
	}
	return nil
}

// Resume ends a Pending hook from any goroutine: the session continues with a (Continue,
// Responded after Respond, or Fail) on its worker (proxy_session_resume). The session must not
// be used afterwards. ErrGone when the request ended meanwhile (e.g. the pending deadline
// passed), ErrAlready the second time.
func (s *Session) Resume(a Action) error {
	id, err := s.ID()
	if err != nil {
		return err
	}
	if !s.done.CompareAndSwap(false, true) {
		return &Error{Op: "proxy_session_resume", Code: CodeAlready}
	}
	return s.hk.core.Load().resume(id, a)
}

// Async decides in a new goroutine: it returns Pending at once, runs f there (f may use s, e.g.
// to read headers or Respond) and resumes the session with f's result. A panic in f, or f
// returning Pending, fails the request. Use it as a hook's last statement:
//
//	return s.Async(func() proxy.Action { ... })
//
// In phases that cannot wait (FailToConnect, ErrorWhileProxy, Logging, RequestEnd) it returns
// Fail without running f.
func (s *Session) Async(f func() Action) Action {
	if !s.phase.canWait() {
		s.hk.core.Load().log(slog.LevelError, "libproxy: Session.Async in a phase that cannot wait", "phase", s.phase.String())
		return Fail
	}
	if _, err := s.ID(); err != nil {
		return Fail
	}
	go func() {
		a := Fail
		defer func() {
			if r := recover(); r != nil {
				s.hk.core.Load().log(slog.LevelError, "libproxy: panic in Async function; failing the request",
					"phase", s.phase.String(), "panic", fmt.Sprint(r))
				a = Fail
			}
			if a == Pending {
				a = Fail
			}
			if err := s.Resume(a); err != nil {
				s.hk.core.Load().log(slog.LevelDebug, "libproxy: resume after Async", "phase", s.phase.String(), "err", err)
			}
		}()
		a = f()
	}()
	return Pending
}
