//! The C ABI (`libproxy.so` + `include/proxy.h`): the only module with `extern "C"`, raw pointers
//! and `c_void`. A thin adapter over the safe core: handles for the server, its services and the
//! session a callback sees; a `ProxyHttp` implementation that calls C function pointers.
//!
//! Conventions (rustls-ffi's): every export runs inside [`ffi_panic_boundary!`], checks its pointers
//! for NULL first, returns a stable `proxy_result` number, and writes its out-parameters only on
//! success. Every exported symbol starts with `proxy_`.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::cell::Cell;

#[macro_use]
mod macros;
#[cfg(feature = "mimalloc")]
pub mod alloc;
pub mod cache;
pub mod callbacks;
pub mod compression;
mod crossing;
pub mod error;
pub mod error_page;
pub mod observe;
pub mod ops;
pub mod phase;
pub mod result;
pub mod server;
pub mod service_settings;
pub mod session;
pub mod session_headers;
pub mod session_request;
pub mod session_response;
pub mod session_tls;
pub mod tls;
pub mod tls_certs;
pub mod tls_select;
pub mod types;
pub mod upstream;
pub mod upstream_services;
// Declared last: cbindgen writes items in declaration order, so new modules append to the header.
pub mod l4;
pub mod proxy_protocol;

thread_local! {
    /// How many host callbacks outside the request phases (thread hooks, the log sink) are
    /// running on this thread.
    static IN_CALLBACK: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` (a call into the host outside the request phases) marked as "inside a callback", so
/// that the server's blocking functions can refuse to run from there instead of deadlocking.
pub(crate) fn in_callback<R>(f: impl FnOnce() -> R) -> R {
    struct Guard<'a>(&'a Cell<u32>);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            self.0.set(self.0.get() - 1);
        }
    }
    IN_CALLBACK.with(|c| {
        c.set(c.get() + 1);
        let _g = Guard(c);
        f()
    })
}

/// Whether the current thread is running a host callback: one marked by [`in_callback`], or a
/// request phase's, which runs only on a service's worker threads, inside their runtime. Asking
/// the runtime here, in the rarely called functions that care, spares every phase crossing a
/// thread-local update on each side (a `__tls_get_addr` call each in a cdylib). The host's own
/// threads are never inside this library's runtime.
pub(crate) fn inside_callback() -> bool {
    IN_CALLBACK.with(|c| c.get() > 0) || tokio::runtime::Handle::try_current().is_ok()
}
