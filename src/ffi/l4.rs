//! The TCP (L4) proxy from C: `proxy_l4_callbacks` turns a `proxy_service` into an L4 service,
//! and `proxy_l4_session` is what its callbacks see of a connection.
//!
//! The L4 callbacks are synchronous: `upstream_peer` runs once per connection, before any byte is
//! relayed, and must decide there (PENDING is refused as an ERROR, logged). The session handle
//! lives on the worker's stack for the callback's duration only.

use std::ffi::c_void;
use std::sync::Arc;

use super::error::fail;
use super::result::*;
use super::server::{Shared, PROXY_LOG_INFO, PROXY_LOG_WARN};
use super::types::*;
use crate::error::{Error, Result};
use crate::l4::{L4End, L4Hooks, L4Session};
use crate::upstream::HttpPeer;

/// An L4 callback: `user` is `proxy_l4_callbacks.user`, `session` the connection (borrowed, valid
/// until the callback returns). Called from any worker thread, concurrently for different
/// connections; must not block.
pub type proxy_l4_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, session: *mut proxy_l4_session) -> proxy_action>;

/// The callbacks of an L4 service (`proxy_service_set_l4_callbacks`). Set
/// `struct_size = sizeof(proxy_l4_callbacks)`; fields are only ever appended. Copied; `user`
/// must stay valid until the server is shut down.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct proxy_l4_callbacks {
    /// `sizeof(proxy_l4_callbacks)` as the host knows it.
    pub struct_size: u32,
    /// Passed as the first argument of every callback.
    pub user: *mut c_void,
    /// Required. Chooses the peer with `proxy_l4_session_set_peer` or `proxy_l4_session_pick` and
    /// returns PROXY_CONTINUE; PROXY_ERROR (or CONTINUE without a peer) closes the connection.
    pub upstream_peer: proxy_l4_fn,
    /// Once per connection after it ended (`proxy_l4_session_summary`); the return value is
    /// ignored.
    pub logging: proxy_l4_fn,
}

impl proxy_l4_callbacks {
    /// The smallest struct accepted: through `upstream_peer`.
    pub(crate) const MIN_SIZE: usize = std::mem::offset_of!(proxy_l4_callbacks, logging);
}

/// `proxy_l4_summary.end`: the connection is still open (never seen in `logging`).
pub const PROXY_L4_OPEN: u32 = 0;
/// `proxy_l4_summary.end`: both sides closed and everything was relayed.
pub const PROXY_L4_CLOSED: u32 = 1;
/// `proxy_l4_summary.end`: `upstream_peer` chose no peer.
pub const PROXY_L4_NO_PEER: u32 = 2;
/// `proxy_l4_summary.end`: connecting to the peer failed.
pub const PROXY_L4_CONNECT_FAILED: u32 = 3;
/// `proxy_l4_summary.end`: a read or write failed on either side.
pub const PROXY_L4_ERROR: u32 = 4;
/// `proxy_l4_summary.end`: closed by the idle timeout.
pub const PROXY_L4_IDLE_TIMEOUT: u32 = 5;
/// `proxy_l4_summary.end`: closed at the longest allowed life.
pub const PROXY_L4_MAX_DURATION: u32 = 6;
/// `proxy_l4_summary.end`: the server shut down.
pub const PROXY_L4_SHUTDOWN: u32 = 7;

/// What an L4 connection did (`proxy_l4_session_summary`). Set
/// `struct_size = sizeof(proxy_l4_summary)`; only that many bytes are written.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct proxy_l4_summary {
    /// `sizeof(proxy_l4_summary)` as the host knows it.
    pub struct_size: u32,
    /// A `PROXY_L4_*` end.
    pub end: u32,
    /// Bytes relayed from the client to the peer.
    pub bytes_up: u64,
    /// Bytes relayed from the peer to the client.
    pub bytes_down: u64,
    /// Time to connect to the peer in µs (0 when it did not connect).
    pub connect_us: u64,
    /// Time since the connection was accepted in µs.
    pub duration_us: u64,
}

fn end_code(e: L4End) -> u32 {
    match e {
        L4End::Open => PROXY_L4_OPEN,
        L4End::Closed => PROXY_L4_CLOSED,
        L4End::NoPeer => PROXY_L4_NO_PEER,
        L4End::ConnectFailed => PROXY_L4_CONNECT_FAILED,
        L4End::Error => PROXY_L4_ERROR,
        L4End::IdleTimeout => PROXY_L4_IDLE_TIMEOUT,
        L4End::MaxDuration => PROXY_L4_MAX_DURATION,
        L4End::Shutdown => PROXY_L4_SHUTDOWN,
    }
}

/// One L4 connection, borrowed by a callback for its duration. Never free it.
///
/// Methods: proxy_l4_session_client_addr, proxy_l4_session_local_addr, proxy_l4_session_sni,
/// proxy_l4_session_alpn, proxy_l4_session_proxy_tlv, proxy_l4_session_set_peer,
/// proxy_l4_session_pick, proxy_l4_session_summary.
pub struct proxy_l4_session {
    session: *mut L4Session,
    /// Whether `upstream_peer` is running (the only callback that may choose a peer).
    choosing: bool,
    peer: Option<HttpPeer>,
    client_addr: Option<String>,
    local_addr: Option<String>,
}

impl proxy_l4_session {
    fn get(&self) -> &L4Session {
        // SAFETY: points to the live session for the callback's duration (see `call`).
        unsafe { &*self.session }
    }
    /// Only while `choosing` (upstream_peer got the session by `&mut`).
    fn get_mut(&mut self) -> &mut L4Session {
        debug_assert!(self.choosing);
        // SAFETY: as above; in upstream_peer the handle is the only way to the session.
        unsafe { &mut *self.session }
    }
}

/// The adapter: `L4Hooks` by calling the host's function pointers.
pub(crate) struct FfiL4Hooks {
    pub(crate) cbs: proxy_l4_callbacks,
    pub(crate) shared: Arc<Shared>,
}

// SAFETY: `user` is the host's, valid from any thread by the header's contract.
unsafe impl Send for FfiL4Hooks {}
// SAFETY: as above.
unsafe impl Sync for FfiL4Hooks {}

impl FfiL4Hooks {
    /// Runs callback `f` on a handle over `s`, then hands back the handle's chosen peer.
    fn call(
        &self,
        f: unsafe extern "C" fn(*mut c_void, *mut proxy_l4_session) -> proxy_action,
        s: *mut L4Session,
        choosing: bool,
    ) -> (proxy_action, Option<HttpPeer>) {
        let mut h =
            proxy_l4_session { session: s, choosing, peer: None, client_addr: None, local_addr: None };
        // SAFETY: a host function pointer with its own user pointer; `h` outlives the call.
        let action = super::in_callback(|| unsafe { f(self.cbs.user, &mut h) });
        (action, h.peer.take())
    }
}

impl L4Hooks for FfiL4Hooks {
    async fn upstream_peer(&self, s: &mut L4Session) -> Result<HttpPeer> {
        let Some(f) = self.cbs.upstream_peer else {
            return Err(Error::internal("the L4 service has no upstream_peer callback"));
        };
        match self.call(f, s as *mut L4Session, true) {
            (PROXY_CONTINUE, Some(peer)) => Ok(peer),
            (PROXY_CONTINUE, None) => {
                Err(Error::internal("upstream_peer returned CONTINUE without choosing a peer"))
            }
            (PROXY_PENDING, _) => {
                self.shared.log(
                    PROXY_LOG_WARN,
                    "L4 upstream_peer returned PENDING, which L4 callbacks cannot: closed",
                );
                Err(Error::internal("L4 upstream_peer cannot be PENDING"))
            }
            _ => Err(Error::internal("upstream_peer failed the connection")),
        }
    }

    fn logging(&self, s: &L4Session) {
        // The limits that close a busy connection are worth a line of the server's log too.
        if matches!(s.end, L4End::IdleTimeout | L4End::MaxDuration) {
            let client = s.client_addr().map(|a| a.to_string()).unwrap_or_default();
            self.shared
                .log(PROXY_LOG_INFO, &format!("L4 connection from {client} closed: {}", s.end.as_str()));
        }
        if let Some(f) = self.cbs.logging {
            // The hook only reads: with `choosing` false no accessor writes through the pointer
            // (the handle's field is `*mut` because upstream_peer's may).
            self.call(f, (s as *const L4Session).cast_mut(), false);
        }
    }
}

fn addr_text(
    slot: &mut Option<String>,
    a: Option<&crate::protocol::stream::SocketAddr>,
) -> Result<proxy_str, proxy_result> {
    let a = a.ok_or(PROXY_NOT_FOUND)?;
    Ok(proxy_str::from_bytes(slot.get_or_insert_with(|| a.to_string()).as_bytes()))
}

/// The client's address as text (`1.2.3.4:5678`, `[::1]:5678`, `unix:`): the one a PROXY header
/// carried, when the endpoint accepts them. `*out` is valid until the callback returns.
#[no_mangle]
pub extern "C" fn proxy_l4_session_client_addr(
    s: *mut proxy_l4_session,
    out: *mut proxy_str,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_mut!(s);
        let out = try_mut!(out);
        let a = s.get().client_addr().cloned();
        *out = try_res!(addr_text(&mut s.client_addr, a.as_ref()));
        PROXY_OK
    }
}

/// The address the client connected to (likewise).
#[no_mangle]
pub extern "C" fn proxy_l4_session_local_addr(s: *mut proxy_l4_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_mut!(s);
        let out = try_mut!(out);
        let a = s.get().local_addr().cloned();
        *out = try_res!(addr_text(&mut s.local_addr, a.as_ref()));
        PROXY_OK
    }
}

/// The TLS server name: from the handshake on a TLS endpoint, from the peeked ClientHello with
/// `PROXY_L4_PEEK_CLIENT_HELLO`. NOT_FOUND without one.
#[no_mangle]
pub extern "C" fn proxy_l4_session_sni(s: *mut proxy_l4_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        let Some(sni) = s.get().sni() else { return PROXY_NOT_FOUND };
        *out = proxy_str::from_bytes(sni.as_bytes());
        PROXY_OK
    }
}

/// One fact of the TLS handshake on a TLS-terminating L4 endpoint, as `proxy_session_tls` gives
/// them to HTTP hooks (`fact` a `PROXY_TLS_FACT_*`; SNI, ALPN, version, cipher, the client
/// certificate of mutual TLS). The view stays valid for the connection's callbacks. NOT_FOUND on
/// a plaintext or passthrough connection (use `proxy_l4_session_sni` / `_alpn` there) and for a
/// fact the handshake did not settle; INVALID_PARAMETER for an unknown fact or a misplaced index.
/// (ABI 0.8)
#[no_mangle]
pub extern "C" fn proxy_l4_session_tls(
    s: *mut proxy_l4_session,
    fact_id: u32,
    index: usize,
    out: *mut proxy_bytes,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        if !super::session_tls::valid_fact(fact_id, index) {
            return PROXY_INVALID_PARAMETER;
        }
        let Some(facts) = s.get().tls_facts() else { return PROXY_NOT_FOUND };
        *out = proxy_bytes::from_bytes(try_res!(super::session_tls::fact(facts, fact_id, index)));
        PROXY_OK
    }
}

/// ALPN protocol number `index`: the one negotiated on a TLS endpoint (index 0 only), or those
/// the peeked ClientHello offered, in order. NOT_FOUND past the last.
#[no_mangle]
pub extern "C" fn proxy_l4_session_alpn(
    s: *mut proxy_l4_session,
    index: usize,
    out: *mut proxy_str,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        let Some(p) = s.get().alpn().get(index) else { return PROXY_NOT_FOUND };
        *out = proxy_str::from_bytes(p);
        PROXY_OK
    }
}

/// The value of the first TLV of type `kind` (a `PROXY_PP2_TYPE_*`, or a `PROXY_PP2_SUBTYPE_SSL_*`
/// inside the SSL TLV) of the PROXY v2 header the connection began with. NOT_FOUND without one.
#[no_mangle]
pub extern "C" fn proxy_l4_session_proxy_tlv(
    s: *mut proxy_l4_session,
    kind: u8,
    out: *mut proxy_str,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        *out = try_res!(super::proxy_protocol::tlv_view(s.get().proxy_header(), kind));
        PROXY_OK
    }
}

/// Chooses the peer (copied; `proxy_peer` as for HTTP, its `PROXY_PEER_SEND_PROXY_V*` flags
/// included). Only in `upstream_peer` (WRONG_PHASE elsewhere).
#[no_mangle]
pub extern "C" fn proxy_l4_session_set_peer(
    s: *mut proxy_l4_session,
    peer: *const proxy_peer,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_mut!(s);
        if peer.is_null() {
            return fail(PROXY_NULL_PARAMETER, "`peer` is NULL");
        }
        if !s.choosing {
            return fail(PROXY_WRONG_PHASE, "proxy_l4_session_set_peer outside upstream_peer");
        }
        // SAFETY: non-NULL; `struct_size` bytes readable as documented.
        let p = try_res!(unsafe { copy_sized(peer, proxy_peer::MIN_SIZE) });
        s.peer = Some(try_res!(p.to_peer()));
        PROXY_OK
    }
}

/// Chooses a backend of upstream group `group_id` (`key` feeds the consistent-hash algorithms;
/// `{NULL, 0}` for none). Whether connecting to it works goes to the group's passive health.
/// Only in `upstream_peer`. GONE for an unknown group, UNAVAILABLE when no backend can take it.
#[no_mangle]
pub extern "C" fn proxy_l4_session_pick(
    s: *mut proxy_l4_session,
    group_id: u64,
    key: proxy_str,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_mut!(s);
        if !s.choosing {
            return fail(PROXY_WRONG_PHASE, "proxy_l4_session_pick outside upstream_peer");
        }
        let key = if key.ptr.is_null() { None } else { Some(try_res!(key.bytes())) };
        let g = try_res!(super::upstream::group(group_id));
        match s.get_mut().pick_from(&g, key) {
            Ok(peer) => {
                s.peer = Some(peer);
                PROXY_OK
            }
            Err(e) => fail(PROXY_UNAVAILABLE, &e),
        }
    }
}

/// What the connection did so far (complete in `logging`). Writes `out->struct_size` bytes.
#[no_mangle]
pub extern "C" fn proxy_l4_session_summary(
    s: *mut proxy_l4_session,
    out: *mut proxy_l4_summary,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        if out.is_null() {
            return fail(PROXY_NULL_PARAMETER, "`out` is NULL");
        }
        // SAFETY: non-NULL; the host's struct has `struct_size` bytes.
        let size = unsafe { out.cast::<u32>().read_unaligned() } as usize;
        if size < 8 {
            return fail(PROXY_INVALID_PARAMETER, "proxy_l4_summary.struct_size is too small");
        }
        let l = s.get();
        let sum = proxy_l4_summary {
            struct_size: size.min(std::mem::size_of::<proxy_l4_summary>()) as u32,
            end: end_code(l.end),
            bytes_up: l.bytes_up,
            bytes_down: l.bytes_down,
            connect_us: l.connect_time.map_or(0, |d| d.as_micros() as u64),
            duration_us: l.elapsed().as_micros() as u64,
        };
        let n = size.min(std::mem::size_of::<proxy_l4_summary>());
        // SAFETY: `n` bytes fit both structs.
        unsafe { std::ptr::copy_nonoverlapping((&sum as *const proxy_l4_summary).cast::<u8>(), out.cast::<u8>(), n) };
        PROXY_OK
    }
}
