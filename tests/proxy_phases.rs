//! The proxy's phase pipeline and error handling, driven over loopback: phase order, local answers
//! from request_filter, header/body rewriting, pool reuse, retries, timeouts, hook panics, the
//! logging summary, and the fail_to_proxy / error_while_proxy hooks.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use proxy::error::{Error, ErrorKind, ErrorSource, Result};
use proxy::protocol::h1::{RequestHead, ResponseHead};
use proxy::proxy::{HttpProxy, Phases, ProxyHttp, Session, Summary};
use proxy::upstream::HttpPeer;
use support::client::{build_request, get, Conn};
use support::harness::Proxy;
use support::origin::{blackhole_listener, refused_addr, Origin};
use support::{eventually, within};

/// What the hooks saw, shared with the test.
#[derive(Default)]
struct Rec {
    /// Phase names in call order; body filters append `(eos)` on their end-of-stream call.
    phases: Arc<Mutex<Vec<&'static str>>>,
    /// `reused` as passed to connected_to_upstream, per call.
    reused: Mutex<Vec<bool>>,
    /// The summary at logging time, per request.
    summaries: Mutex<Vec<Summary>>,
    /// The error (kind, source) at logging time, per request.
    errors: Mutex<Vec<Option<(ErrorKind, ErrorSource)>>>,
    peer_calls: AtomicUsize,
    fail_to_connect: AtomicUsize,
    error_while_proxy: AtomicUsize,
}

impl Rec {
    fn push(&self, phase: &'static str) {
        self.phases.lock().unwrap().push(phase);
    }
    fn phases(&self) -> Vec<&'static str> {
        self.phases.lock().unwrap().clone()
    }
    fn logs(&self) -> usize {
        self.summaries.lock().unwrap().len()
    }
    fn summaries(&self) -> Vec<Summary> {
        self.summaries.lock().unwrap().clone()
    }
    fn errors(&self) -> Vec<Option<(ErrorKind, ErrorSource)>> {
        self.errors.lock().unwrap().clone()
    }
}

/// Which peer upstream_peer picks.
#[derive(Clone, Copy)]
enum Peers {
    /// Always this address.
    Always(SocketAddr),
    /// `first` on attempt 0, `then` on every retry.
    FirstThen(SocketAddr, SocketAddr),
}

/// One configurable set of hooks; every hook records itself in `rec`.
struct Hooks {
    rec: Arc<Rec>,
    peers: Peers,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    /// request_filter answers 401 unless `authorization: secret`.
    auth: bool,
    /// request_filter panics when `x-panic` is present.
    panic_on_header: bool,
    /// Header/body rewriting of test 3.
    rewrite: bool,
    /// fail_to_proxy answers 503 with a body of its own.
    custom_fail: bool,
    /// What `phases()` answers.
    phases: Phases,
}

impl Hooks {
    fn new(peers: Peers) -> (Hooks, Arc<Rec>) {
        let rec = Arc::new(Rec::default());
        (
            Hooks {
                rec: rec.clone(),
                peers,
                connect_timeout: None,
                read_timeout: None,
                auth: false,
                panic_on_header: false,
                rewrite: false,
                custom_fail: false,
                phases: Phases::ALL,
            },
            rec,
        )
    }
}

impl ProxyHttp for Hooks {
    type CTX = ();
    fn new_ctx(&self) {}

    fn phases(&self) -> Phases {
        self.phases
    }

    async fn early_request_filter(&self, _s: &mut Session, _c: &mut ()) -> Result<()> {
        self.rec.push("early_request_filter");
        Ok(())
    }

    async fn request_filter(&self, s: &mut Session, _c: &mut ()) -> Result<bool> {
        self.rec.push("request_filter");
        if self.panic_on_header && s.req.headers.contains_key("x-panic") {
            panic!("request_filter panics on purpose (x-panic)");
        }
        if self.auth {
            let ok = s.req.headers.get("authorization").is_some_and(|v| v.as_bytes() == b"secret");
            if !ok {
                s.respond_status(StatusCode::UNAUTHORIZED, "no entry\n");
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn upstream_peer(&self, s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        self.rec.push("upstream_peer");
        self.rec.peer_calls.fetch_add(1, Ordering::SeqCst);
        let addr = match self.peers {
            Peers::Always(a) => a,
            Peers::FirstThen(first, then) => {
                if s.retries() == 0 {
                    first
                } else {
                    then
                }
            }
        };
        let mut peer = HttpPeer::new(&addr.to_string()).unwrap();
        if let Some(t) = self.connect_timeout {
            peer.options.connect_timeout = Some(t);
        }
        if let Some(t) = self.read_timeout {
            peer.options.read_timeout = Some(t);
        }
        Ok(peer)
    }

    async fn connected_to_upstream(
        &self,
        _s: &mut Session,
        reused: bool,
        _peer: &HttpPeer,
        _c: &mut (),
    ) -> Result<()> {
        self.rec.push("connected_to_upstream");
        self.rec.reused.lock().unwrap().push(reused);
        Ok(())
    }

    async fn upstream_request_filter(
        &self,
        _s: &mut Session,
        up: &mut RequestHead,
        _c: &mut (),
    ) -> Result<()> {
        self.rec.push("upstream_request_filter");
        if self.rewrite {
            up.headers.insert("x-added", HeaderValue::from_static("by-proxy"));
            up.headers.remove("x-remove-me");
        }
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _s: &mut Session,
        _body: &mut Option<Bytes>,
        eos: bool,
        _c: &mut (),
    ) -> Result<()> {
        self.rec.push(if eos { "request_body_filter(eos)" } else { "request_body_filter" });
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _s: &mut Session,
        _h: &mut ResponseHead,
        _c: &mut (),
    ) -> Result<()> {
        self.rec.push("upstream_response_filter");
        Ok(())
    }

    async fn response_filter(&self, _s: &mut Session, h: &mut ResponseHead, _c: &mut ()) -> Result<()> {
        self.rec.push("response_filter");
        if self.rewrite {
            h.headers.insert("x-resp-added", HeaderValue::from_static("yes"));
            // The body changes below, so the length the origin sent no longer holds.
            h.headers.remove(http::header::CONTENT_LENGTH);
        }
        Ok(())
    }

    async fn upstream_response_body_filter(
        &self,
        _s: &mut Session,
        _body: &mut Option<Bytes>,
        eos: bool,
        _c: &mut (),
    ) -> Result<()> {
        self.rec.push(if eos {
            "upstream_response_body_filter(eos)"
        } else {
            "upstream_response_body_filter"
        });
        Ok(())
    }

    async fn response_body_filter(
        &self,
        _s: &mut Session,
        body: &mut Option<Bytes>,
        eos: bool,
        _c: &mut (),
    ) -> Result<()> {
        self.rec.push(if eos { "response_body_filter(eos)" } else { "response_body_filter" });
        if self.rewrite {
            if let Some(b) = body.as_mut() {
                *b = Bytes::from(b.to_ascii_uppercase());
            }
        }
        Ok(())
    }

    fn fail_to_connect(&self, _s: &mut Session, _peer: &HttpPeer, _c: &mut (), e: Box<Error>) -> Box<Error> {
        self.rec.push("fail_to_connect");
        self.rec.fail_to_connect.fetch_add(1, Ordering::SeqCst);
        e
    }

    fn error_while_proxy(
        &self,
        _peer: &HttpPeer,
        _s: &mut Session,
        e: Box<Error>,
        _c: &mut (),
        _client_reused: bool,
    ) -> Box<Error> {
        self.rec.push("error_while_proxy");
        self.rec.error_while_proxy.fetch_add(1, Ordering::SeqCst);
        e
    }

    async fn fail_to_proxy(&self, s: &mut Session, e: &Error, _c: &mut ()) -> u16 {
        self.rec.push("fail_to_proxy");
        if self.custom_fail {
            let mut head = ResponseHead::new(StatusCode::SERVICE_UNAVAILABLE);
            head.headers.insert("x-custom-error", HeaderValue::from_static("1"));
            s.respond(head, Bytes::from_static(b"custom: upstream is down\n"));
            return 503;
        }
        e.status()
    }

    fn logging(&self, s: &mut Session, e: Option<&Error>, _c: &mut ()) {
        self.rec.push("logging");
        self.rec.errors.lock().unwrap().push(e.map(|e| (e.kind, e.source)));
        self.rec.summaries.lock().unwrap().push(s.summary.clone());
    }
}

/// Waits until `n` requests have been logged.
async fn logged(rec: &Rec, n: usize) {
    assert!(eventually(|| rec.logs() >= n).await, "expected {n} logging calls, got {}", rec.logs());
}

fn base(p: &str) -> &str {
    p.strip_suffix("(eos)").unwrap_or(p)
}

// 1
#[tokio::test]
async fn phases_run_in_documented_order() {
    let origin = Origin::start().await;
    let (h, rec) = Hooks::new(Peers::Always(origin.addr));
    let p = Proxy::start(h);
    within(5, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let r = c.request("POST", "/echo", &[], b"hello phases").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().ends_with("hello phases"), "{}", r.text());
        logged(&rec, 1).await;
    })
    .await;
    let phases = rec.phases();

    // Order of first occurrences.
    let mut firsts: Vec<&str> = Vec::new();
    for p in &phases {
        let b = base(p);
        if !firsts.contains(&b) {
            firsts.push(b);
        }
    }
    assert_eq!(
        firsts,
        [
            "early_request_filter",
            "request_filter",
            "upstream_peer",
            "connected_to_upstream",
            "upstream_request_filter",
            "request_body_filter",
            "upstream_response_filter",
            "response_filter",
            "upstream_response_body_filter",
            "response_body_filter",
            "logging",
        ],
        "full sequence: {phases:?}"
    );
    // Each of the one-shot phases runs exactly once.
    for once in [
        "early_request_filter",
        "request_filter",
        "upstream_peer",
        "connected_to_upstream",
        "upstream_request_filter",
        "upstream_response_filter",
        "response_filter",
        "logging",
    ] {
        assert_eq!(phases.iter().filter(|p| **p == once).count(), 1, "{once} in {phases:?}");
    }
    // Each body filter: exactly one end-of-stream call, and it is that filter's last call.
    for f in ["request_body_filter", "upstream_response_body_filter", "response_body_filter"] {
        let calls: Vec<&str> = phases.iter().copied().filter(|p| base(p) == f).collect();
        assert_eq!(calls.iter().filter(|p| p.ends_with("(eos)")).count(), 1, "{f}: {phases:?}");
        assert!(calls.last().unwrap().ends_with("(eos)"), "{f}: {phases:?}");
    }
    // Response body filters run in pairs: upstream_response_body_filter then response_body_filter.
    let resp_body: Vec<&str> =
        phases.iter().copied().filter(|p| base(p).ends_with("response_body_filter")).collect();
    for pair in resp_body.chunks(2) {
        assert_eq!(pair.len(), 2, "{phases:?}");
        assert!(pair[0].starts_with("upstream_response_body_filter"), "{phases:?}");
        assert_eq!(base(pair[1]), "response_body_filter", "{phases:?}");
    }
    // Request body filtering is over before the response head is handled... at least its first
    // call is; everything response-side comes after upstream_response_filter; logging is last.
    let pos = |name: &str| phases.iter().position(|p| *p == name).unwrap();
    let urf = pos("upstream_response_filter");
    assert!(phases[urf..].iter().all(|p| base(p) != "upstream_peer" && base(p) != "connected_to_upstream"));
    assert!(phases[..urf].iter().all(|p| !base(p).ends_with("response_body_filter")));
    assert_eq!(*phases.last().unwrap(), "logging", "{phases:?}");
    assert!(rec.errors()[0].is_none());
}

#[tokio::test]
async fn phases_left_out_are_never_called() {
    let origin = Origin::start().await;
    let (mut h, rec) = Hooks::new(Peers::Always(origin.addr));
    h.phases = Phases::NONE.with(Phases::REQUEST_FILTER, true).with(Phases::RESPONSE_BODY_FILTER, true);
    let p = Proxy::start(h);
    within(5, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let r = c.request("POST", "/echo", &[], b"only two filters").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().ends_with("only two filters"), "{}", r.text());
        logged(&rec, 1).await;
    })
    .await;
    let mut seen: Vec<&str> = rec.phases().iter().map(|p| base(p)).collect();
    seen.dedup();
    // upstream_peer and logging are not optional; of the filters only the two listed run.
    assert_eq!(seen, ["request_filter", "upstream_peer", "response_body_filter", "logging"]);
}

// 2
#[tokio::test]
async fn request_filter_answers_by_itself() {
    let origin = Origin::start().await;
    let (mut h, rec) = Hooks::new(Peers::Always(origin.addr));
    h.auth = true;
    let p = Proxy::start(h);
    within(5, async {
        let r = get(p.addr, "/echo").await;
        assert_eq!(r.status, 401);
        assert_eq!(r.text(), "no entry\n");
        assert_eq!(r.header("content-length"), Some("9"));
        logged(&rec, 1).await;
        assert!(origin.received().is_empty(), "{:?}", origin.received_text());
        assert_eq!(origin.requests(), 0);
        assert_eq!(origin.accepts(), 0);
        assert_eq!(rec.peer_calls.load(Ordering::SeqCst), 0);
        let phases = rec.phases();
        assert_eq!(
            phases,
            ["early_request_filter", "request_filter", "logging"],
            "a local answer skips every upstream phase"
        );
        assert_eq!(rec.summaries()[0].status, 401);

        let mut c = Conn::connect(p.addr).await.unwrap();
        let r = c.request("GET", "/echo", &[("authorization", "secret")], b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("authorization: secret"), "{}", r.text());
        logged(&rec, 2).await;
        assert_eq!(origin.requests(), 1);
        assert_eq!(rec.summaries()[1].status, 200);
    })
    .await;
}

// 2b: a local answer on a keep-alive connection leaves it usable.
#[tokio::test]
async fn request_filter_answer_keeps_connection() {
    let origin = Origin::start().await;
    let (mut h, _rec) = Hooks::new(Peers::Always(origin.addr));
    h.auth = true;
    let p = Proxy::start(h);
    within(5, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let r = c.request("POST", "/echo", &[], b"denied body").await;
        assert_eq!(r.status, 401);
        let r = c.request("GET", "/echo", &[("authorization", "secret")], b"").await;
        assert_eq!(r.status, 200);
        assert!(r.text().starts_with("GET /echo HTTP/1.1"), "{}", r.text());
        assert_eq!(origin.requests(), 1);
    })
    .await;
}

// 3
#[tokio::test]
async fn filters_rewrite_headers_and_body() {
    let origin = Origin::start().await;
    let (mut h, _rec) = Hooks::new(Peers::Always(origin.addr));
    h.rewrite = true;
    let p = Proxy::start(h);
    within(5, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let r = c.request("GET", "/echo", &[("x-remove-me", "1"), ("x-keep", "kept")], b"").await;
        assert_eq!(r.status, 200);
        assert!(r.complete);
        assert_eq!(r.header("x-resp-added"), Some("yes"));
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(r.header("content-length"), None);
        let text = r.text();
        // The echo dump, uppercased by response_body_filter.
        assert!(text.starts_with("GET /ECHO HTTP/1.1\n"), "{text}");
        assert!(text.contains("X-ADDED: BY-PROXY\n"), "{text}");
        assert!(text.contains("X-KEEP: KEPT\n"), "{text}");
        assert!(!text.contains("X-REMOVE-ME"), "{text}");
        assert_eq!(text, text.to_ascii_uppercase());
        // What the origin actually received.
        let got = origin.received_text();
        assert_eq!(got.len(), 1);
        let lower = got[0].to_ascii_lowercase();
        assert!(lower.contains("x-added: by-proxy\r\n"), "{}", got[0]);
        assert!(!lower.contains("x-remove-me"), "{}", got[0]);
        // The connection still works after a chunked response.
        let r = c.request("GET", "/status/200", &[], b"").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "STATUS 200\n");
    })
    .await;
}

// 4
#[tokio::test]
async fn connected_to_upstream_reports_pool_reuse() {
    let origin = Origin::start().await;
    let (h, rec) = Hooks::new(Peers::Always(origin.addr));
    let p = Proxy::start(h);
    within(5, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let r1 = c.request("GET", "/echo", &[], b"").await;
        assert_eq!(r1.status, 200);
        logged(&rec, 1).await;
        let r2 = c.request("GET", "/echo", &[], b"").await;
        assert_eq!(r2.status, 200);
        logged(&rec, 2).await;
        assert_eq!(*rec.reused.lock().unwrap(), [false, true]);
        assert_eq!(origin.accepts(), 1);
        assert_eq!(r1.header("x-origin-conn"), r2.header("x-origin-conn"));
        let s = rec.summaries();
        assert!(!s[0].reused);
        assert!(s[1].reused);
        assert_eq!(s[1].upstream_connect, Some(Duration::ZERO));
    })
    .await;
}

// 5
#[tokio::test]
async fn retries_to_second_peer_after_refused_connect() {
    let origin = Origin::start().await;
    let refused = refused_addr().await;
    let (h, rec) = Hooks::new(Peers::FirstThen(refused, origin.addr));
    let p = Proxy::start(h);
    within(5, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let r = c.request("POST", "/echo", &[], b"replayed body").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().ends_with("replayed body"), "{}", r.text());
        logged(&rec, 1).await;
    })
    .await;
    assert_eq!(rec.fail_to_connect.load(Ordering::SeqCst), 1);
    assert_eq!(rec.peer_calls.load(Ordering::SeqCst), 2);
    assert_eq!(origin.requests(), 1);
    let s = &rec.summaries()[0];
    assert_eq!(s.retries, 1);
    assert_eq!(s.status, 200);
    assert_eq!(s.peer.as_ref().map(|p| p.to_string()), Some(origin.addr.to_string()));
    assert!(s.error.is_none(), "{:?}", s.error);
    assert!(rec.errors()[0].is_none());
    let phases = rec.phases();
    let pos = |n: &str| phases.iter().position(|p| *p == n).unwrap();
    assert!(pos("fail_to_connect") < pos("connected_to_upstream"), "{phases:?}");
}

// 6
#[tokio::test]
async fn retries_are_bounded() {
    let refused = refused_addr().await;
    let (h, rec) = Hooks::new(Peers::Always(refused));
    let mut app = HttpProxy::new(h);
    app.options_mut().max_retries = 2;
    let p = Proxy::start_with(app, |_| {});
    within(5, async {
        let r = get(p.addr, "/echo").await;
        assert_eq!(r.status, 502);
        logged(&rec, 1).await;
    })
    .await;
    assert_eq!(rec.peer_calls.load(Ordering::SeqCst), 3);
    assert_eq!(rec.fail_to_connect.load(Ordering::SeqCst), 3);
    let s = &rec.summaries()[0];
    assert_eq!(s.retries, 2);
    assert_eq!(s.status, 502);
    assert!(s.error.is_some());
    assert_eq!(rec.errors()[0], Some((ErrorKind::ConnectRefused, ErrorSource::Upstream)));
}

// 7
#[tokio::test]
async fn upstream_read_timeout_is_504() {
    let origin = Origin::start().await;
    let (mut h, rec) = Hooks::new(Peers::Always(origin.addr));
    h.read_timeout = Some(Duration::from_millis(300));
    let p = Proxy::start(h);
    let started = Instant::now();
    let r = within(5, get(p.addr, "/hang")).await;
    let took = started.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_millis(1200), "{took:?}");
    within(5, logged(&rec, 1)).await;
    let (kind, source) = rec.errors()[0].expect("logging sees the error");
    assert_eq!(source, ErrorSource::Upstream);
    assert_eq!(kind, ErrorKind::ReadTimeout);
    assert_eq!(rec.error_while_proxy.load(Ordering::SeqCst), 1);
    assert_eq!(rec.summaries()[0].status, 504);
}

// 8
#[tokio::test]
async fn upstream_connect_timeout_is_504() {
    // blackhole_listener panics when it cannot make connects stall (the kernel does not drop SYNs
    // to a full accept queue, e.g. net.ipv4.tcp_abort_on_overflow=1): this test then fails rather
    // than pass without having produced a connect timeout.
    let (_listener, hole) = blackhole_listener();
    let (mut h, rec) = Hooks::new(Peers::Always(hole));
    h.connect_timeout = Some(Duration::from_millis(300));
    // Should the connect succeed after all, fail fast instead of waiting 60 s.
    h.read_timeout = Some(Duration::from_secs(2));
    let mut app = HttpProxy::new(h);
    app.options_mut().max_retries = 0;
    let p = Proxy::start_with(app, |_| {});
    let started = Instant::now();
    let r = within(5, get(p.addr, "/echo")).await;
    let took = started.elapsed();
    within(5, logged(&rec, 1)).await;
    assert_eq!(
        rec.errors()[0],
        Some((ErrorKind::ConnectTimeout, ErrorSource::Upstream)),
        "the black hole must make the connect itself time out"
    );
    assert_eq!(r.status, 504);
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_millis(1200), "{took:?}");
    assert_eq!(rec.fail_to_connect.load(Ordering::SeqCst), 1);
}

// 9
#[tokio::test]
async fn refused_connect_without_retries_is_502() {
    let refused = refused_addr().await;
    let (h, rec) = Hooks::new(Peers::Always(refused));
    let mut app = HttpProxy::new(h);
    app.options_mut().max_retries = 0;
    let p = Proxy::start_with(app, |_| {});
    within(5, async {
        let r = get(p.addr, "/echo").await;
        assert_eq!(r.status, 502);
        logged(&rec, 1).await;
    })
    .await;
    assert_eq!(rec.peer_calls.load(Ordering::SeqCst), 1);
    assert_eq!(rec.fail_to_connect.load(Ordering::SeqCst), 1);
    assert_eq!(rec.errors()[0], Some((ErrorKind::ConnectRefused, ErrorSource::Upstream)));
    let phases = rec.phases();
    assert_eq!(&phases[phases.len() - 2..], ["fail_to_proxy", "logging"], "{phases:?}");
    assert!(!phases.contains(&"connected_to_upstream"));
}

// 10
#[tokio::test]
async fn panicking_hook_fails_only_its_request() {
    let origin = Origin::start().await;
    let (mut h, rec) = Hooks::new(Peers::Always(origin.addr));
    h.panic_on_header = true;
    let p = Proxy::start(h);
    within(8, async {
        let panicking = async {
            let mut c = Conn::connect(p.addr).await.unwrap();
            c.send(&build_request("GET", "/echo", &[("x-panic", "1")], b"")).await.unwrap();
            c.read_response().await
        };
        let normal = async {
            let mut c = Conn::connect(p.addr).await.unwrap();
            c.request("GET", "/echo", &[], b"").await
        };
        let (bad, good) = tokio::join!(panicking, normal);
        let bad = bad.expect("a 500, not a dropped connection");
        assert_eq!(bad.status, 500);
        assert_eq!(good.status, 200);
        // And the worker still serves afterwards.
        let after = get(p.addr, "/echo").await;
        assert_eq!(after.status, 200);
        logged(&rec, 3).await;
    })
    .await;
    let errors = rec.errors();
    let panics: Vec<_> = errors.iter().filter(|e| matches!(e, Some((ErrorKind::HookPanic, _)))).collect();
    assert_eq!(panics.len(), 1, "{errors:?}");
    assert_eq!(errors.iter().filter(|e| e.is_none()).count(), 2, "{errors:?}");
    assert_eq!(origin.requests(), 2);
    let statuses: Vec<u16> = rec.summaries().iter().map(|s| s.status).collect();
    assert!(statuses.contains(&500), "{statuses:?}");
}

// 11
#[tokio::test]
async fn logging_summary_fields() {
    let origin = Origin::start().await;
    let (h, rec) = Hooks::new(Peers::Always(origin.addr));
    let p = Proxy::start(h);
    let body = b"0123456789abcdefghij";
    let r = within(5, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let r = c.request("POST", "/echo", &[], body).await;
        logged(&rec, 1).await;
        r
    })
    .await;
    assert_eq!(r.status, 200);
    let s = &rec.summaries()[0];
    assert_eq!(s.status, 200);
    assert_eq!(s.bytes_in, body.len() as u64);
    assert_eq!(s.bytes_out, r.body.len() as u64);
    assert_eq!(s.peer.as_ref().map(|p| p.to_string()), Some(origin.addr.to_string()));
    assert!(!s.reused);
    assert!(s.upstream_connect.is_some());
    let ttfb = s.time_to_first_byte.expect("time_to_first_byte");
    assert!(s.total > Duration::ZERO);
    assert!(ttfb <= s.total, "{ttfb:?} > {:?}", s.total);
    assert_eq!(s.retries, 0);
    assert!(s.error.is_none(), "{:?}", s.error);
    assert!(rec.errors()[0].is_none());
}

// 12
#[tokio::test]
async fn fail_to_proxy_sends_custom_response() {
    let refused = refused_addr().await;
    let (mut h, rec) = Hooks::new(Peers::Always(refused));
    h.custom_fail = true;
    let mut app = HttpProxy::new(h);
    app.options_mut().max_retries = 0;
    let p = Proxy::start_with(app, |_| {});
    within(5, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let r = c.request("GET", "/echo", &[], b"").await;
        assert_eq!(r.status, 503);
        assert_eq!(r.text(), "custom: upstream is down\n");
        assert_eq!(r.header("x-custom-error"), Some("1"));
        assert!(r.complete);
        logged(&rec, 1).await;
        // The request was read to its end, so the connection may carry another one.
        let r = c.request("GET", "/echo", &[], b"").await;
        assert_eq!(r.status, 503);
        logged(&rec, 2).await;
    })
    .await;
    let s = &rec.summaries()[0];
    assert_eq!(s.status, 503);
    assert_eq!(s.bytes_out, "custom: upstream is down\n".len() as u64);
    assert!(s.error.is_some());
}

// 13
#[tokio::test]
async fn truncated_upstream_body_reaches_error_while_proxy() {
    let origin = Origin::start().await;
    let (h, rec) = Hooks::new(Peers::Always(origin.addr));
    let p = Proxy::start(h);
    within(5, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.send(&build_request("GET", "/truncate-cl", &[], b"")).await.unwrap();
        let r = c.read_response().await.expect("the head went out");
        assert_eq!(r.status, 200);
        assert!(!r.complete, "a truncated body must not look complete");
        assert_eq!(r.body, b"0123456789");
        assert!(c.closed_within(Duration::from_secs(2)).await);
        logged(&rec, 1).await;
    })
    .await;
    assert_eq!(rec.error_while_proxy.load(Ordering::SeqCst), 1);
    let (kind, source) = rec.errors()[0].expect("logging sees the error");
    assert_eq!(source, ErrorSource::Upstream);
    assert_eq!(kind, ErrorKind::ConnectionClosed);
    // The head was out: no fail_to_proxy answer and no retry.
    assert_eq!(rec.summaries()[0].retries, 0);
    assert_eq!(rec.peer_calls.load(Ordering::SeqCst), 1);
}
