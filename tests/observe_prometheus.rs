//! The metrics endpoint scraped by a real Prometheus (Debian's `prometheus`, started here on
//! 127.0.0.1 with a one-second scrape interval): the request counter read back through its HTTP
//! API equals what the client sent, and `promtool check metrics` accepts the exposition.
//! Without the binaries the test says so and passes, unless LIBPROXY_REQUIRE_PROMETHEUS is set
//! (tests/run-all.sh sets it and installs the package).

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use proxy::error::Result;
use proxy::metrics::{Kind, MetricsEndpoint, Registry, Series, ServiceMetrics};
use proxy::protocol::stream::SocketAddr as Addr;
use proxy::proxy::{HttpProxy, Observer, ProxyHttp, Session};
use proxy::server::{Server, ServerConf};
use proxy::service::ListeningService;
use proxy::upstream::HttpPeer;
use support::client::{get, Conn};
use support::origin::Origin;
use support::within;

/// Counts requests per path in a host-defined labelled counter, as the C, Python and Go examples do.
struct Hooks {
    origin: SocketAddr,
    hits: [Arc<Series>; 2],
}

impl ProxyHttp for Hooks {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(&self, s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        let i = usize::from(s.req.uri.path() != "/a");
        self.hits[i].add(1.0).unwrap();
        Ok(HttpPeer::new(&self.origin.to_string()).unwrap())
    }
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have(bin: &str) -> bool {
    Command::new(bin).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_what_the_client_sent() {
    if !(have("prometheus") && have("promtool")) {
        assert!(std::env::var_os("LIBPROXY_REQUIRE_PROMETHEUS").is_none(), "prometheus is not installed");
        eprintln!("skipped: prometheus / promtool not installed (apt-get install prometheus)");
        return;
    }
    let origin = Origin::start().await;
    let registry = Arc::new(Registry::default());
    let family =
        registry.family(Kind::Counter, "app_path_hits", "Requests per path.", &["path"], &[]).unwrap();
    let hits = [family.with(&["/a"]).unwrap(), family.with(&["other"]).unwrap()];
    let mut app = HttpProxy::new(Hooks { origin: origin.addr, hits });
    let metrics = ServiceMetrics::new("web", Some(app.connector().clone()));
    registry.register(metrics.clone());
    app.options_mut().observe =
        Some(Arc::new(Observer { service: "web".into(), metrics: Some(metrics), ..Observer::default() }));
    let mut svc = ListeningService::new("web", app);
    let Addr::Inet(addr) = svc.add_tcp("127.0.0.1:0").unwrap() else { panic!() };
    let (endpoint, metrics_addr) = MetricsEndpoint::bind("127.0.0.1:0", registry).unwrap();
    let mut server = Server::new(ServerConf::default());
    server.add_service(svc);
    server.add_service(endpoint);
    let handle = server.start().unwrap();

    const SENT: usize = 37;
    let mut c = Conn::connect(addr).await.unwrap();
    for i in 0..SENT {
        let path = if i % 3 == 0 { "/a" } else { "/b" };
        assert_eq!(within(10, c.request("GET", path, &[], b"")).await.status, 200);
    }
    let exposition = within(10, get(metrics_addr, "/metrics")).await;
    assert_eq!(exposition.status, 200);
    let text = exposition.text();
    assert!(text.contains("app_path_hits_total{path=\"/a\"} 13\n"), "{text}");
    assert!(
        text.contains("libproxy_requests_total{service=\"web\",method=\"GET\",status=\"2xx\"} 37\n"),
        "{text}"
    );

    let mut check = Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).output_piped();
    check.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = std::env::temp_dir().join(format!("libproxy-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: libproxy\n    static_configs:\n      - targets: ['{metrics_addr}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let prom = Kill(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let api: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let query = "/api/v1/query?query=sum(libproxy_requests_total%7Bservice%3D%22web%22%7D)";
    let want = format!(",\"{SENT}\"]");
    let mut last = String::new();
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(mut c) = Conn::connect(api).await else { continue };
        let r = within(10, c.request("GET", query, &[("host", "127.0.0.1")], b"")).await;
        last = r.text();
        if last.contains(&want) {
            break;
        }
    }
    drop(prom);
    assert!(last.contains(&want), "Prometheus never read {SENT}: {last}");
    let _ = std::fs::remove_dir_all(&dir);
    tokio::task::spawn_blocking(move || handle.shutdown_fast()).await.unwrap();
}

trait Piped {
    fn output_piped(&mut self) -> Child;
}

impl Piped for Command {
    fn output_piped(&mut self) -> Child {
        self.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }
}
