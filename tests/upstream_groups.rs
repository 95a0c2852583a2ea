//! Upstream groups behind a real proxy: passive ejection, active checks, readmission, retries,
//! DNS discovery.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use proxy::error::Result;
use proxy::proxy::{ProxyHttp, Session};
use proxy::server::ShutdownWatch;
use proxy::service::BackgroundService;
use proxy::upstream::{
    Algorithm, Backend, Discovery, HealthCheck, HealthChecker, HealthEvent, HttpPeer, HttpProbe,
    OutlierDetection, PeerOptions, Probe, ResolveFuture, Resolved, Resolver, Source, SystemResolver,
    UpstreamGroup,
};
use support::client::Conn;
use support::harness::Proxy;
use support::switch::SwitchOrigin;
use support::within;

struct ToGroup(UpstreamGroup);

impl ProxyHttp for ToGroup {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(&self, s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        s.pick_from(&self.0, None)
    }
}

/// Waits for `event` on backend `name`, skipping other events.
fn wait_for(rx: &mpsc::Receiver<(String, HealthEvent)>, name: &str, event: HealthEvent) {
    loop {
        let (n, e) = rx.recv_timeout(Duration::from_secs(10)).expect("health event");
        if n == name && e == event {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_backend_is_ejected_unused_and_readmitted() {
    let mut origins = Vec::new();
    for n in ["backend-a", "backend-b", "backend-c"] {
        origins.push(SwitchOrigin::start(n).await);
    }
    let group = UpstreamGroup::new("web", Algorithm::RoundRobin);
    group
        .set_backends(origins.iter().map(|o| Backend::new(&o.addr.to_string(), 1).unwrap()).collect())
        .unwrap();
    group.set_outlier_detection(OutlierDetection {
        consecutive_failures: 2,
        base_ejection: Duration::from_secs(3600),
        max_ejected_percent: 50,
        ..OutlierDetection::default()
    });
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    group.set_health_listener(Some(std::sync::Arc::new(move |name: &str, e| {
        let _ = tx.lock().unwrap().send((name.to_owned(), e));
    })));
    let checker = HealthChecker::new(
        group.clone(),
        HealthCheck {
            probe: Probe::Http(HttpProbe {
                path: "/health".into(),
                body: Some(b"backend-".to_vec()),
                ..HttpProbe::default()
            }),
            interval: Duration::from_millis(20),
            timeout: Duration::from_millis(500),
            jitter: Duration::from_millis(5),
            rise: 2,
            fall: 2,
        },
    );
    let checks = tokio::spawn(async move { checker.start(ShutdownWatch::never()).await });
    let p = Proxy::start(ToGroup(group.clone()));
    let name_b = origins[1].addr.to_string();

    let mut c = Conn::connect(p.addr).await.unwrap();
    let mut bodies = Vec::new();
    for _ in 0..30 {
        let r = within(10, c.request("GET", "/", &[], b"")).await;
        assert_eq!(r.status, 200);
        bodies.push(r.text());
    }
    for n in ["backend-a", "backend-b", "backend-c"] {
        assert_eq!(bodies.iter().filter(|b| *b == n).count(), 10, "{bodies:?}");
    }

    // b goes away: the requests that meet it retry on another backend, and none fails.
    origins[1].stop().await;
    let before = group.figures()[1].requests;
    for _ in 0..30 {
        let r = within(10, c.request("GET", "/", &[], b"")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_ne!(r.text(), "backend-b");
    }
    wait_for(&rx, &name_b, HealthEvent::Ejected);
    let f = group.figures();
    assert!(f[1].ejected && f[1].ejections == 1 && f[1].failures >= 2, "{f:?}");
    assert!(f[1].requests - before <= 3, "{f:?}");
    // While it is ejected no request is sent to it.
    let ejected_at = group.figures()[1].requests;
    for _ in 0..60 {
        let r = within(10, c.request("GET", "/", &[], b"")).await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(group.figures()[1].requests, ejected_at);

    // b recovers: its probes pass `rise` times, it is up and readmitted, and it serves again.
    origins[1].restart().await;
    wait_for(&rx, &name_b, HealthEvent::Readmitted);
    let bodies: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..30 {
            v.push(within(10, c.request("GET", "/", &[], b"")).await.text());
        }
        v
    };
    assert!(bodies.iter().filter(|b| *b == "backend-b").count() >= 9, "{bodies:?}");
    let f = group.figures();
    assert!(f.iter().all(|f| !f.ejected && f.healthy), "{f:?}");
    // The last attempt ends just after its response went out.
    assert!(support::eventually(|| group.figures().iter().all(|f| f.in_flight == 0)).await);
    checks.abort();
}

/// A group whose one backend is `o`.
fn group_of_one(name: &str, algorithm: Algorithm, o: &SwitchOrigin) -> UpstreamGroup {
    let group = UpstreamGroup::new(name, algorithm);
    group.set_backends(vec![Backend::new(&o.addr.to_string(), 1).unwrap()]).unwrap();
    group
}

#[tokio::test]
async fn every_backend_at_its_cap_answers_503() {
    let o = SwitchOrigin::start("a").await;
    let group = group_of_one("capped", Algorithm::LeastOutstanding, &o);
    group.set_max_in_flight(1);
    let held = group.pick(None, &mut Default::default()).unwrap();
    let p = Proxy::start(ToGroup(group.clone()));
    let r = support::client::get(p.addr, "/").await;
    assert_eq!(r.status, 503);
    drop(held);
    let r = support::client::get(p.addr, "/").await;
    assert_eq!((r.status, r.text().as_str()), (200, "a"));
}

/// A resolver whose answer the test sets.
#[derive(Default)]
struct TestResolver(std::sync::Mutex<Vec<std::net::IpAddr>>);

impl Resolver for TestResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        assert_eq!(host, "svc.test");
        let addrs = self.0.lock().unwrap().clone();
        Box::pin(async move { Ok(Resolved { addrs, ttl: Some(Duration::from_secs(5)) }) })
    }
}

#[tokio::test]
async fn a_changed_dns_answer_moves_new_requests_and_drains_old_ones() {
    let mut old = SwitchOrigin::start("old").await;
    let new = SwitchOrigin::start_at("new", ([127, 0, 0, 2], old.addr.port()).into()).await;
    let resolver = std::sync::Arc::new(TestResolver::default());
    *resolver.0.lock().unwrap() = vec![[127, 0, 0, 1].into()];
    let group = UpstreamGroup::new("dns", Algorithm::RoundRobin);
    let source = Source::Dns {
        host: "svc.test".into(),
        port: old.addr.port(),
        weight: 1,
        options: PeerOptions::default(),
    };
    let discovery = Discovery::new(group.clone(), vec![source], resolver.clone(), Duration::from_secs(60));
    // The answer's TTL (5 s) is sooner than the interval.
    assert_eq!(discovery.round().await, Duration::from_secs(5));
    let p = Proxy::start(ToGroup(group.clone()));

    let mut first = Conn::connect(p.addr).await.unwrap();
    assert_eq!(first.request("GET", "/", &[], b"").await.text(), "old");
    // A request in flight on the old address...
    first.send(&support::client::build_request("GET", "/hold", &[], b"")).await.unwrap();
    assert!(support::eventually(|| old.hits() == 2).await);

    // ...while the name moves: new connections and requests go to the new address.
    *resolver.0.lock().unwrap() = vec![[127, 0, 0, 2].into()];
    discovery.round().await;
    assert_eq!(group.backends()[0].name, new.addr.to_string());
    let mut second = Conn::connect(p.addr).await.unwrap();
    for _ in 0..5 {
        assert_eq!(second.request("GET", "/", &[], b"").await.text(), "new");
    }
    assert_eq!((old.hits(), new.hits()), (2, 5));

    // The old request finishes where it started, whole.
    old.release();
    let r = within(10, first.read_response()).await.unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "old"));
    // The client's next request on that connection goes to the new address.
    assert_eq!(first.request("GET", "/", &[], b"").await.text(), "new");
    old.stop().await;
}

#[tokio::test]
async fn the_system_resolver_finds_localhost() {
    let group = UpstreamGroup::new("localhost", Algorithm::Random);
    let source =
        Source::Dns { host: "localhost".into(), port: 8080, weight: 2, options: PeerOptions::default() };
    let d = Discovery::new(
        group.clone(),
        vec![source],
        std::sync::Arc::new(SystemResolver),
        Duration::from_secs(7),
    );
    // getaddrinfo gives no TTL: the next round comes after the interval.
    assert_eq!(d.round().await, Duration::from_secs(7));
    let names: Vec<String> = group.backends().into_iter().map(|b| b.name).collect();
    assert!(names.iter().any(|n| n == "127.0.0.1:8080"), "{names:?}");
    assert!(group.backends().iter().all(|b| b.weight == 2));
}

#[tokio::test]
async fn a_backend_at_its_connection_cap_reuses_its_connection_and_answers_503_when_busy() {
    let o = SwitchOrigin::start("a").await;
    let group = group_of_one("conn-capped", Algorithm::RoundRobin, &o);
    group.set_max_connections(1);
    let p = Proxy::start(ToGroup(group.clone()));
    // One connection opened, then reused from the pool: the cap never bites sequential requests.
    for _ in 0..3 {
        let r = support::client::get(p.addr, "/").await;
        assert_eq!((r.status, r.text().as_str()), (200, "a"));
    }
    assert_eq!(group.figures()[0].connections, 1);
    // The last attempt ends as its session does, just after the client has the response.
    assert!(support::eventually(|| group.figures()[0].in_flight == 0).await);
    // Its one connection busy (a request held in flight): the next request would need a second.
    let held = group.pick(None, &mut Default::default()).unwrap();
    let r = support::client::get(p.addr, "/").await;
    assert_eq!(r.status, 503);
    drop(held);
    let r = support::client::get(p.addr, "/").await;
    assert_eq!((r.status, r.text().as_str()), (200, "a"));
    assert_eq!(group.figures()[0].connections, 1);
    // The count goes with the connection: the proxy gone, nothing is open.
    drop(p);
    assert!(support::eventually(|| group.figures()[0].connections == 0).await);
}
