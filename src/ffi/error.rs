//! The per-thread last error: every export that answers an error code leaves a message with its
//! cause here (`proxy_last_error`), like errno + strerror but with the specific reason ("bind
//! 127.0.0.1:80: Permission denied (os error 13)"), in the manner of hyper's `hyper_error_print`.
//!
//! Recording costs nothing on success: only the failure path touches the thread-local. A site
//! that knows the cause calls [`fail`] as it returns the code; the export boundary
//! ([`ffi_panic_boundary!`]) then keeps that detail, or records the bare code when no site gave one.

use std::cell::RefCell;
use std::ffi::c_char;

use super::result::*;

struct LastError {
    code: proxy_result,
    detail: Option<String>,
    /// `fail` put `detail` here for the export that is returning now: the boundary keeps it
    /// instead of replacing it with the bare code.
    staged: bool,
}

thread_local! {
    static LAST: RefCell<LastError> = const { RefCell::new(LastError { code: PROXY_OK, detail: None, staged: false }) };
}

/// Records `code` with its cause as this thread's last error and returns `code`; use it where the
/// error is returned (`return fail(PROXY_IO, format_args!("bind {a}: {e}"))`).
pub(crate) fn fail(code: proxy_result, cause: impl std::fmt::Display) -> proxy_result {
    LAST.with_borrow_mut(|l| {
        l.code = code;
        l.detail = Some(cause.to_string());
        l.staged = true;
    });
    code
}

/// `Err(fail(code, cause))`, for the safe core's `Result<_, proxy_result>` paths.
pub(crate) fn err<T>(code: proxy_result, cause: impl std::fmt::Display) -> Result<T, proxy_result> {
    Err(fail(code, cause))
}

/// The detail of this thread's last error (for a message logged rather than returned).
pub(crate) fn last_detail() -> String {
    LAST.with_borrow(|l| l.detail.clone().unwrap_or_else(|| super::result::message(l.code).to_owned()))
}

/// The export boundary's half: a failing result becomes the last error (keeping the detail a
/// [`fail`] staged for this very code); success leaves the last error as it was.
pub(crate) fn record(code: proxy_result) {
    if code == PROXY_OK {
        return;
    }
    LAST.with_borrow_mut(|l| {
        if !(l.staged && l.code == code) {
            l.code = code;
            l.detail = None;
        }
        l.staged = false;
    });
}

/// A panic was caught at the boundary: its message is the detail of the PROXY_PANIC.
pub(crate) fn panicked(payload: &(dyn std::any::Any + Send)) {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    fail(PROXY_PANIC, msg);
}

/// The text of this thread's last error: `proxy_result_message(code)`, then `": "` and the cause
/// when there is one. Empty when no call on this thread has failed.
fn text() -> String {
    LAST.with_borrow(|l| {
        if l.code == PROXY_OK {
            return String::new();
        }
        let generic = super::result::message(l.code);
        match &l.detail {
            Some(d) => format!("{generic}: {d}"),
            None => generic.to_owned(),
        }
    })
}

/// Copies the message of the last error on the calling thread into `buf` (NUL-terminated,
/// truncated to `len - 1` bytes) and returns its full length without the NUL, so a return value
/// `>= len` means it was truncated (snprintf's convention). `buf` may be NULL when `len` is 0 (to
/// ask for the length). Returns 0 (and writes an empty string) when no call on this thread failed.
///
/// Every function that returns an error code other than PROXY_OK sets it, with the cause when the
/// library knows one: `"operating system error: bind 127.0.0.1:8080: Address already in use (os
/// error 98)"`. It is per thread (a failure on another thread never changes it), is left as it
/// was by calls that succeed, and is replaced by the next failing call on the thread — read it
/// right after the call that failed. Reading it changes nothing. (ABI 0.4)
#[no_mangle]
pub extern "C" fn proxy_last_error(buf: *mut c_char, len: usize) -> usize {
    ffi_panic_boundary! {
        let t = text();
        if len > 0 && !buf.is_null() {
            let n = t.len().min(len - 1);
            // SAFETY: the caller gives `len` writable bytes at `buf`; n + 1 <= len.
            unsafe {
                std::ptr::copy_nonoverlapping(t.as_ptr(), buf.cast::<u8>(), n);
                *buf.add(n) = 0;
            }
        }
        t.len()
    }
}

/// The code of the last error on the calling thread (the one `proxy_last_error` describes), or
/// PROXY_OK when no call on this thread failed. Lets a binding check that the message belongs to
/// the failure it is reporting. (ABI 0.4)
#[no_mangle]
pub extern "C" fn proxy_last_error_code() -> proxy_result {
    ffi_panic_boundary! { value: LAST.with_borrow(|l| l.code) }
}
