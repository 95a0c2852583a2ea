// Package proxy is the Go binding of libproxy, a programmable HTTP reverse proxy runtime
// (include/proxy.h, libproxy.so with SONAME libproxy-rt.so.0).
//
// The binding is mechanical: one Go type per C handle (Server ↔ proxy_server, Service ↔
// proxy_service, Session ↔ proxy_session, Peer ↔ proxy_peer), one method per C function, and
// errors as values (*Error carrying the C result code; compare with errors.Is(err, ErrNotFound)).
//
//	srv, _ := proxy.NewServer()
//	defer srv.Close()
//	svc, _ := proxy.NewService("proxy")
//	svc.AddTCP("127.0.0.1:8080")
//	svc.SetHandler(myHandler{}) // implements proxy.UpstreamPeer, maybe proxy.RequestFilter, ...
//	srv.AddService(svc)
//	srv.Run(ctx) // until ctx is cancelled, then a graceful shutdown
//
// A handler is any value; the phase interfaces it implements (RequestFilter, UpstreamPeer,
// ResponseFilter, Logging, ...) are the phases registered with libproxy. Hooks run on libproxy's
// worker threads through //export trampolines; C only ever holds cgo.Handle values. A panic in a
// hook is recovered, logged through log/slog and fails that request with 500. A hook that must
// wait returns s.Async(func() proxy.Action { ... }): the function runs in a goroutine and the
// request resumes with its result.
//
// Building: by default cgo uses ../../include and ../../target/release of this repository (run
// `cargo build --release`, which also leaves the SONAME link target/release/libproxy-rt.so.0). For an installed library use `-tags libproxy_pkgconfig` (pkg-config module
// libproxy-rt, from `make install`) or CGO_CFLAGS / CGO_LDFLAGS.
package proxy
