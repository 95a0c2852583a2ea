//! Replacing the error responses the proxy makes itself, from C: a per-service function called
//! with the status and what happened, for every such response, including the refusals of
//! malformed requests before any phase (when there is no session to hand a callback).

use std::ffi::c_void;

use bytes::Bytes;

use super::result::*;
use super::server::proxy_service;
use super::session_response::local_response;
use super::types::*;
use crate::protocol::http::ResponseHead;

/// The page a `proxy_error_response_fn` may fill with `proxy_error_page_set`; valid only during
/// that call.
pub struct proxy_error_page {
    page: Option<(ResponseHead, Bytes)>,
}

/// Called for each error response the proxy makes itself (`status` 4xx or 5xx; `what` the few
/// words its default body says, valid during the call). Fill `page` with `proxy_error_page_set`
/// and return `PROXY_RESPONDED` to send that instead; anything else keeps the default page. Runs
/// on worker threads, concurrently; must not block and must not call back into the server.
pub type proxy_error_response_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        status: u32,
        what: proxy_str,
        page: *mut proxy_error_page,
    ) -> proxy_action,
>;

/// The host's error response function and its user pointer.
#[derive(Clone, Copy)]
pub(crate) struct ErrorResponder {
    f: unsafe extern "C" fn(*mut c_void, u32, proxy_str, *mut proxy_error_page) -> proxy_action,
    user: *mut c_void,
}

// SAFETY: `user` and the function are the host's, usable from any worker thread by the header's
// contract.
unsafe impl Send for ErrorResponder {}
// SAFETY: as above.
unsafe impl Sync for ErrorResponder {}

impl ErrorResponder {
    /// The host's page for `status`, if it gave one.
    pub(crate) fn call(&self, status: u16, what: &str) -> Option<(ResponseHead, Bytes)> {
        let mut page = proxy_error_page { page: None };
        let what = proxy_str::from_bytes(what.as_bytes());
        // SAFETY: a host function pointer with its own user pointer; `page` outlives the call.
        let action = super::in_callback(|| unsafe { (self.f)(self.user, status.into(), what, &mut page) });
        if action == PROXY_RESPONDED {
            page.page
        } else {
            None
        }
    }
}

/// Sets (or, with `f` NULL, removes) the function that may replace the service's proxy-made
/// error responses: 400 for a malformed request, 404-like refusals, 502 / 503 / 504 for upstream
/// failures, 500 for failed callbacks. `user` must stay valid until the server is freed. Before
/// `proxy_server_add_service`, from one thread.
#[no_mangle]
pub extern "C" fn proxy_service_set_error_response(
    service: *mut proxy_service,
    f: proxy_error_response_fn,
    user: *mut c_void,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        svc.observe.error_response = f.map(|f| ErrorResponder { f, user });
        PROXY_OK
    }
}

/// Fills the error page handed to a `proxy_error_response_fn`: `status` (200..=599; usually the
/// one it was called with), `n_headers` headers and `body_len` bytes of body, all copied
/// (Content-Length is set by the proxy). A later call replaces an earlier one. HEADER_INVALID or
/// INVALID_PARAMETER (nothing stored) for a bad header or status.
#[no_mangle]
pub extern "C" fn proxy_error_page_set(
    page: *mut proxy_error_page,
    status: u32,
    headers: *const proxy_header,
    n_headers: usize,
    body: *const u8,
    body_len: usize,
) -> proxy_result {
    ffi_panic_boundary! {
        let page = try_mut!(page);
        let (mut head, body) = try_res!(local_response(status, headers, n_headers, body, body_len));
        crate::protocol::h1::framing::set_content_length(&mut head.headers, body.len() as u64);
        page.page = Some((head, body));
        PROXY_OK
    }
}
