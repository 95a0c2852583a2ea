//! libproxy: a programmable HTTP reverse proxy runtime with Pingora's architecture.
//!
//! A [`server::Server`] spawns [`service`]s; each service owns its own tokio runtime and listens on
//! several endpoints ([`listener`]); a task per downstream connection runs the [`app`] layer, which
//! hands each request to the [`proxy::HttpProxy`] phase pipeline; [`tls`] holds the rustls configs of
//! TLS endpoints and TLS peers; upstream connections come from the
//! [`connector`] and its pool; [`upstream`] describes peers and picks among them. [`ffi`] is the C ABI.

#![warn(missing_docs)]

pub mod app;
mod boxed;
pub mod cache;
pub mod compression;
pub mod config;
pub mod connector;
pub mod error;
pub mod ffi;
pub mod l4;
pub mod listener;
pub mod log;
pub mod metrics;
pub mod protocol;
pub mod proxy;
pub mod server;
pub mod service;
pub mod tls;
pub mod upstream;

/// Release builds allocate with mimalloc. A proxied request makes a dozen short-lived allocations
/// (heads, the request's state machine, the FFI session cell), several of them over glibc's
/// per-thread cache limit; mimalloc serves them all from thread-local free lists (C bench proxy:
/// 31.5k -> 30.0k instructions per request). It replaces the allocator of this library's Rust code
/// only, never the host's `malloc`. Debug builds keep the system allocator so that valgrind and the
/// sanitizers in the test suite see every allocation. The adapter is ours (see [`ffi::alloc`]).
#[cfg(all(feature = "mimalloc", not(debug_assertions)))]
#[global_allocator]
static ALLOCATOR: ffi::alloc::MiMalloc = ffi::alloc::MiMalloc;
