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
pub mod callbacks;
pub mod error;
pub mod result;
pub mod server;
pub mod session;
pub mod session_headers;
pub mod session_request;
pub mod session_response;
pub mod tls;
pub mod types;

thread_local! {
    /// How many host callbacks are running on this thread (they nest only through request_end
    /// from a drop inside another callback, which does not happen, but a counter costs nothing).
    static IN_CALLBACK: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` (a call into the host) marked as "inside a callback", so that the server's blocking
/// functions can refuse to run from there instead of deadlocking.
pub(crate) fn in_callback<R>(f: impl FnOnce() -> R) -> R {
    struct Guard<'a>(&'a Cell<u32>);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            self.0.set(self.0.get() - 1);
        }
    }
    // One thread-local lookup per crossing (in a cdylib each one is a __tls_get_addr call).
    IN_CALLBACK.with(|c| {
        c.set(c.get() + 1);
        let _g = Guard(c);
        f()
    })
}

/// Whether the current thread is running a host callback.
pub(crate) fn inside_callback() -> bool {
    IN_CALLBACK.with(|c| c.get() > 0)
}
