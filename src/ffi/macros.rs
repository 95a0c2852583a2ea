//! The shape every export shares: a panic boundary and NULL checks before the safe core.

/// The value an export returns when a panic was caught inside it, and what its return value does
/// on the way out.
pub(crate) trait PanicValue: Sized {
    fn panic_value() -> Self;

    /// Called with the value about to be returned: a failing `proxy_result` becomes this thread's
    /// last error (see `proxy_last_error`). Other return types pass through.
    fn finish(self) -> Self {
        self
    }
}

impl PanicValue for u32 {
    fn panic_value() -> Self {
        crate::ffi::result::PROXY_PANIC
    }

    fn finish(self) -> Self {
        crate::ffi::error::record(self);
        self
    }
}

impl PanicValue for u64 {
    fn panic_value() -> Self {
        0
    }
}

impl PanicValue for usize {
    fn panic_value() -> Self {
        0
    }
}

impl PanicValue for () {
    fn panic_value() -> Self {}
}

impl<T> PanicValue for *const T {
    fn panic_value() -> Self {
        std::ptr::null()
    }
}

impl<T> PanicValue for *mut T {
    fn panic_value() -> Self {
        std::ptr::null_mut()
    }
}

/// Runs the body; a panic becomes the return type's [`PanicValue`] (`PROXY_PANIC` for results)
/// instead of unwinding into C. A failing `proxy_result` (panics included) is recorded as the
/// thread's last error on the way out. `value:` first marks a `uint32_t` that is not a
/// `proxy_result` (`proxy_abi_version`), which must not be recorded.
macro_rules! ffi_panic_boundary {
    (value: $($body:tt)*) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(v) => v,
            Err(_) => <_ as $crate::ffi::macros::PanicValue>::panic_value(),
        }
    };
    ($($body:tt)*) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(v) => $crate::ffi::macros::PanicValue::finish(v),
            Err(payload) => {
                $crate::ffi::error::panicked(payload.as_ref());
                $crate::ffi::macros::PanicValue::finish(<_ as $crate::ffi::macros::PanicValue>::panic_value())
            }
        }
    };
}

/// `&T` from a `*const T`/`*mut T`, or return `PROXY_NULL_PARAMETER`.
macro_rules! try_ref {
    ($p:expr) => {
        // SAFETY: the caller passes NULL or a pointer it got from this library / to a live value,
        // as every function's doc requires.
        match unsafe { $p.as_ref() } {
            Some(r) => r,
            None => {
                return $crate::ffi::error::fail(
                    $crate::ffi::result::PROXY_NULL_PARAMETER,
                    concat!("`", stringify!($p), "` is NULL"),
                )
            }
        }
    };
}

/// `&mut T` from a `*mut T`, or return `PROXY_NULL_PARAMETER`.
macro_rules! try_mut {
    ($p:expr) => {
        // SAFETY: as for `try_ref!`; the caller gives us exclusive use for the call's duration.
        match unsafe { $p.as_mut() } {
            Some(r) => r,
            None => {
                return $crate::ffi::error::fail(
                    $crate::ffi::result::PROXY_NULL_PARAMETER,
                    concat!("`", stringify!($p), "` is NULL"),
                )
            }
        }
    };
}

/// Evaluates a `Result<T, proxy_result>`, returning the error code on `Err`.
macro_rules! try_res {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => return code,
        }
    };
}
