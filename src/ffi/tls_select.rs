//! The certificate callback of a TLS endpoint (`proxy_tls_settings_set_cert_callback`) and the
//! `proxy_client_hello` it sees: the host picks a `proxy_tls_cert` per ClientHello, at once or
//! later (PENDING, then `proxy_client_hello_resume` from any thread).
//!
//! Pending hellos are found by id in one process-wide table: a TLS settings object is not tied to
//! a server, and ids come from one counter that is never reused, so a stale id can only miss
//! (GONE). The rules are those of `proxy_session_resume`: resume only signals the connection's
//! task, never runs a callback; a second resume answers ALREADY; one after the handshake gave up
//! (its timeout passed, the client left) answers GONE and releases the handle.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::error::fail;
use super::result::*;
use super::tls::proxy_tls_settings;
use super::tls_certs::proxy_tls_cert;
use super::types::*;
use crate::tls::{CertCallback, CertChoice, Hello, TlsCert};

/// A certificate callback: choose the certificate of the handshake `hello` describes. Return
/// `PROXY_CONTINUE` (serve the certificate set with `proxy_client_hello_set_cert`, or the
/// endpoint's own certificates if none was set), `PROXY_ERROR` (refuse: the connection is
/// closed), or `PROXY_PENDING` after `proxy_client_hello_id` (decide later with
/// `proxy_client_hello_resume`, within the endpoint's handshake timeout). Any other value refuses.
/// Runs on the service's worker threads, concurrently for different connections; must not block.
pub type proxy_cert_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, hello: *mut proxy_client_hello) -> proxy_action>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    InCallback,
    Pending,
    Done,
}

struct HelloState {
    phase: Phase,
    chosen: Option<TlsCert>,
    /// The decision was resumed (later resumes answer ALREADY).
    resumed: bool,
    /// A resume that arrived while the callback was still running.
    early: Option<proxy_action>,
    waker: Option<oneshot::Sender<proxy_action>>,
    /// A host thread may still hold the handle of an unresumed pending wait: the table keeps the
    /// cell until it resumes.
    host_holds: bool,
}

/// The ClientHello of one handshake, as a certificate callback sees it. Valid inside the callback
/// and, after PENDING, from the thread that resumes it until it calls `proxy_client_hello_resume`
/// (accessors answer GONE once the handshake gave up). Never free it.
///
/// Methods: proxy_client_hello_server_name, proxy_client_hello_alpn,
/// proxy_client_hello_signature_scheme, proxy_client_hello_set_cert, proxy_client_hello_id,
/// proxy_client_hello_resume.
pub struct proxy_client_hello {
    hello: Hello,
    state: Mutex<HelloState>,
    id: AtomicU64,
    me: Weak<proxy_client_hello>,
}

fn table() -> &'static Mutex<HashMap<u64, Arc<proxy_client_hello>>> {
    static T: OnceLock<Mutex<HashMap<u64, Arc<proxy_client_hello>>>> = OnceLock::new();
    T.get_or_init(Default::default)
}

impl proxy_client_hello {
    fn register(&self) -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = self.id.load(Ordering::Acquire);
        if id != 0 {
            return id;
        }
        let new = NEXT.fetch_add(1, Ordering::Relaxed);
        match self.id.compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                if let Some(me) = self.me.upgrade() {
                    table().lock().insert(new, me);
                }
                new
            }
            Err(won) => won,
        }
    }

    /// The handshake no longer waits for this hello: drop it from the table unless a host thread
    /// still holds it.
    fn finish(&self) {
        let keep = {
            let mut st = self.state.lock();
            st.phase = Phase::Done;
            st.waker = None;
            st.host_holds
        };
        let id = self.id.load(Ordering::Acquire);
        if id != 0 && !keep {
            let cell = table().lock().remove(&id);
            drop(cell);
        }
    }

    /// Runs `f` on the hello and its state while the callback runs or the hello is pending.
    fn with<R>(
        &self,
        f: impl FnOnce(&Hello, &mut HelloState) -> Result<R, proxy_result>,
    ) -> Result<R, proxy_result> {
        let mut st = self.state.lock();
        match st.phase {
            Phase::Done => Err(PROXY_GONE),
            _ => f(&self.hello, &mut st),
        }
    }
}

/// Ends the wait of a pending hello wherever its future goes: resumed, or dropped by the
/// handshake timeout or a client that left.
struct Finish(Arc<proxy_client_hello>);

impl Drop for Finish {
    fn drop(&mut self) {
        self.0.finish();
    }
}

fn decide(action: proxy_action, chosen: Option<TlsCert>) -> CertChoice {
    match (action, chosen) {
        (PROXY_CONTINUE, Some(c)) => CertChoice::Use(c),
        (PROXY_CONTINUE, None) => CertChoice::Endpoint,
        _ => CertChoice::Refuse,
    }
}

/// The host's callback and its user pointer.
struct HostCertCallback {
    f: unsafe extern "C" fn(*mut c_void, *mut proxy_client_hello) -> proxy_action,
    user: *mut c_void,
}

// SAFETY: `user` is the host's, valid from any thread by the header's contract.
unsafe impl Send for HostCertCallback {}
// SAFETY: as above.
unsafe impl Sync for HostCertCallback {}

impl CertCallback for HostCertCallback {
    fn choose(&self, hello: Hello) -> CertChoice {
        let cell = Arc::new_cyclic(|me| proxy_client_hello {
            hello,
            state: Mutex::new(HelloState {
                phase: Phase::InCallback,
                chosen: None,
                resumed: false,
                early: None,
                waker: None,
                host_holds: false,
            }),
            id: AtomicU64::new(0),
            me: me.clone(),
        });
        // A panic in the host's function (a Rust host) must not unwind into the handshake.
        let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: the host's function with its user pointer; the cell outlives the call.
            unsafe { (self.f)(self.user, Arc::as_ptr(&cell).cast_mut()) }
        }));
        let action = call.unwrap_or(PROXY_ERROR);
        let mut st = cell.state.lock();
        if action != PROXY_PENDING || st.early.is_some() {
            // The callback's own answer wins over a resume that raced it; PENDING takes the resume.
            let action = if action == PROXY_PENDING { st.early.take().unwrap_or(action) } else { action };
            let chosen = st.chosen.take();
            drop(st);
            cell.finish();
            return decide(action, chosen);
        }
        let (tx, rx) = oneshot::channel();
        st.phase = Phase::Pending;
        st.waker = Some(tx);
        st.host_holds = true;
        drop(st);
        cell.register();
        let guard = Finish(cell);
        CertChoice::Later(Box::pin(async move {
            let action = rx.await.unwrap_or(PROXY_ERROR);
            let chosen = guard.0.state.lock().chosen.take();
            decide(action, chosen)
        }))
    }
}

/// Lets `f` choose the certificate of each handshake on endpoints built from `tls` (see
/// `proxy_cert_fn`); NULL removes it. `user` must stay valid while such endpoints run. With a
/// callback, `tls` needs no certificate of its own (a callback that answers CONTINUE without
/// choosing one then fails the handshake). The ClientHello is read before the handshake starts,
/// so an endpoint with a callback spends one more allocation and a configuration copy per
/// handshake where the callback chose a certificate.
#[no_mangle]
pub extern "C" fn proxy_tls_settings_set_cert_callback(
    tls: *mut proxy_tls_settings,
    f: proxy_cert_fn,
    user: *mut c_void,
) -> proxy_result {
    ffi_panic_boundary! {
        let t = try_mut!(tls);
        match f {
            Some(f) => t.inner.set_cert_callback(Arc::new(HostCertCallback { f, user })),
            None => t.inner.clear_cert_callback(),
        };
        PROXY_OK
    }
}

/// The server name the client asked for (SNI). NOT_FOUND without one; GONE once the handshake
/// gave up.
#[no_mangle]
pub extern "C" fn proxy_client_hello_server_name(
    hello: *const proxy_client_hello,
    out: *mut proxy_str,
) -> proxy_result {
    ffi_panic_boundary! {
        let h = try_ref!(hello);
        let out = try_mut!(out);
        let r = h.with(|hello, _| hello.server_name.as_deref().map(|n| proxy_str::from_bytes(n.as_bytes())).ok_or(PROXY_NOT_FOUND));
        super::session::put(out, r)
    }
}

/// ALPN protocol `index` the client offered (in its order). NOT_FOUND past the last one.
#[no_mangle]
pub extern "C" fn proxy_client_hello_alpn(
    hello: *const proxy_client_hello,
    index: usize,
    out: *mut proxy_str,
) -> proxy_result {
    ffi_panic_boundary! {
        let h = try_ref!(hello);
        let out = try_mut!(out);
        let r = h.with(|hello, _| hello.alpn.get(index).map(|p| proxy_str::from_bytes(p)).ok_or(PROXY_NOT_FOUND));
        super::session::put(out, r)
    }
}

/// Signature scheme `index` the client accepts, as its IANA TLS SignatureScheme number
/// (0x0403 ecdsa_secp256r1_sha256, 0x0804 rsa_pss_rsae_sha256, ...): enough to choose between an
/// ECDSA and an RSA certificate. NOT_FOUND past the last one.
#[no_mangle]
pub extern "C" fn proxy_client_hello_signature_scheme(
    hello: *const proxy_client_hello,
    index: usize,
    out: *mut u16,
) -> proxy_result {
    ffi_panic_boundary! {
        let h = try_ref!(hello);
        let out = try_mut!(out);
        let r = h.with(|hello, _| hello.signature_schemes.get(index).copied().ok_or(PROXY_NOT_FOUND));
        super::session::put(out, r)
    }
}

/// Serves `cert` on this handshake if the callback (or the resume) answers CONTINUE; the last call
/// wins. `cert` is shared, not copied: free it whenever you like.
#[no_mangle]
pub extern "C" fn proxy_client_hello_set_cert(
    hello: *mut proxy_client_hello,
    cert: *const proxy_tls_cert,
) -> proxy_result {
    ffi_panic_boundary! {
        let h = try_ref!(hello);
        let c = try_ref!(cert);
        try_res!(h.with(|_, st| {
            st.chosen = Some(c.inner.clone());
            Ok(())
        }));
        PROXY_OK
    }
}

/// The id to pass to `proxy_client_hello_resume`; call it in the callback that returns
/// `PROXY_PENDING`. Ids are unique in the process and never reused. GONE once the handshake gave up.
#[no_mangle]
pub extern "C" fn proxy_client_hello_id(hello: *const proxy_client_hello, out_id: *mut u64) -> proxy_result {
    ffi_panic_boundary! {
        let h = try_ref!(hello);
        let out = try_mut!(out_id);
        try_res!(h.with(|_, _| Ok(())));
        *out = h.register();
        PROXY_OK
    }
}

/// Decides a pending hello from any thread: `PROXY_CONTINUE` (serve the certificate set with
/// `proxy_client_hello_set_cert`, else the endpoint's own) or `PROXY_ERROR` (refuse). Never runs
/// a callback; the handshake goes on in its connection's task. A resume that arrives before the
/// callback returned PENDING is kept until it does. Answers OK; ALREADY for a second resume; GONE
/// when the handshake gave up (timeout, client gone) or the id is unknown, which also releases
/// the handle; INVALID_PARAMETER for another action.
#[no_mangle]
pub extern "C" fn proxy_client_hello_resume(hello_id: u64, action: proxy_action) -> proxy_result {
    ffi_panic_boundary! {
        if !matches!(action, PROXY_CONTINUE | PROXY_ERROR) {
            return fail(PROXY_INVALID_PARAMETER, format_args!("action {action} cannot resume a hello (CONTINUE or ERROR)"));
        }
        let Some(cell) = table().lock().get(&hello_id).cloned() else { return PROXY_GONE };
        let mut st = cell.state.lock();
        let r = match st.phase {
            _ if st.resumed => PROXY_ALREADY,
            Phase::Done => PROXY_GONE,
            Phase::InCallback => {
                st.early = Some(action);
                PROXY_OK
            }
            Phase::Pending => match st.waker.take() {
                Some(tx) => {
                    let _ = tx.send(action);
                    PROXY_OK
                }
                None => PROXY_GONE,
            },
        };
        if r == PROXY_OK {
            st.resumed = true;
        }
        if r == PROXY_OK || r == PROXY_GONE {
            // The host gives its handle back with this call.
            st.host_holds = false;
        }
        let release = st.phase == Phase::Done && r == PROXY_GONE;
        drop(st);
        if release {
            let cell = table().lock().remove(&hello_id);
            drop(cell);
        }
        r
    }
}
