//! A minimal reverse proxy: `proxy [listen-addr] [upstream-addr]`.
//!
//! Without an upstream it also starts an embedded demo origin (a second service that answers every
//! request itself), so it works out of the box: `curl -v http://127.0.0.1:8080/`.
//! SIGTERM shuts down gracefully, SIGINT at once. `PROXY_QUIET=1` turns the access log off;
//! `PROXY_H2_ONLY=1` serves only HTTP/2 (prior knowledge) on the listening port;
//! `PROXY_TLS_CERT` and `PROXY_TLS_KEY` (PEM files) make it a TLS endpoint (ALPN h2, http/1.1);
//! `PROXY_MAX_CONNECTIONS=n` caps the connections open at once; `PROXY_UPSTREAM_H2=1` speaks
//! HTTP/2 with prior knowledge (h2c) to the upstream; `PROXY_CACHE_MB=n` puts an n MiB HTTP cache
//! in front of it (with `x-cache-status`; `PROXY_CACHE_HEURISTIC=1` adds heuristic freshness).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use proxy::cache::HttpCache;
use proxy::error::Result;
use proxy::protocol::http::ResponseHead;
use proxy::proxy::{HttpProxy, Phases, ProxyHttp, Session};
use proxy::server::{Server, ServerConf};
use proxy::service::ListeningService;
use proxy::tls::TlsSettings;
use proxy::upstream::HttpPeer;

/// Forwards everything to one peer; logs one line per request unless `quiet`.
struct Forward {
    peer: HttpPeer,
    quiet: bool,
}

impl ProxyHttp for Forward {
    type CTX = ();
    fn new_ctx(&self) {}

    // No optional filter: the proxy skips them all (the C, Python and Go bindings do this for
    // every callback the host leaves out).
    fn phases(&self) -> Phases {
        Phases::NONE
    }

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<HttpPeer> {
        Ok(self.peer.clone())
    }

    fn logging(&self, session: &mut Session, _e: Option<&proxy::error::Error>, _ctx: &mut ()) {
        if self.quiet {
            return;
        }
        let s = &session.summary;
        eprintln!(
            "{} {} -> {} {}{} in={} out={} reused={} total={:?}{}",
            session.req.method,
            session.req.uri,
            s.peer.as_ref().map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            s.status,
            if s.truncated { " TRUNCATED" } else { "" },
            s.bytes_in,
            s.bytes_out,
            s.reused,
            s.total,
            // The summary's text, which says when a response was cut short.
            s.error.as_ref().map(|e| format!(" error: {e}")).unwrap_or_default()
        );
    }
}

/// The embedded demo origin: answers every request from request_filter.
struct Demo;

impl ProxyHttp for Demo {
    type CTX = ();
    fn new_ctx(&self) {}

    fn phases(&self) -> Phases {
        Phases::NONE.with(Phases::REQUEST_FILTER, true)
    }

    async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<bool> {
        let mut head = ResponseHead::new(StatusCode::OK);
        head.headers.insert("content-type", HeaderValue::from_static("text/plain"));
        session.respond(head, Bytes::from_static(b"Hello from the libproxy demo origin\n"));
        Ok(true)
    }

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<HttpPeer> {
        Err(proxy::error::Error::internal("the demo origin has no upstream"))
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let upstream = args.next();
    let mut server = Server::new(ServerConf { grace_period: Duration::from_secs(10), ..Default::default() });

    let upstream = match upstream {
        Some(u) => u,
        None => {
            let mut demo = ListeningService::new("demo", HttpProxy::new(Demo));
            let addr = demo.add_tcp("127.0.0.1:0")?;
            server.add_service(demo);
            eprintln!("no upstream given: demo origin on {addr}");
            addr.to_string()
        }
    };
    let mut peer =
        HttpPeer::new(&upstream).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    if std::env::var_os("PROXY_UPSTREAM_H2").is_some() {
        peer.options.alpn = proxy::upstream::Alpn::H2;
    }
    let mut app = HttpProxy::new(Forward { peer, quiet: std::env::var_os("PROXY_QUIET").is_some() });
    app.server_options_mut().h2_only = std::env::var_os("PROXY_H2_ONLY").is_some();
    if let Some(mb) = std::env::var("PROXY_CACHE_MB").ok().and_then(|v| v.parse::<usize>().ok()) {
        let mut cache = HttpCache::new(mb << 20);
        cache.settings.status_header = true;
        cache.settings.policy.heuristic_freshness = std::env::var_os("PROXY_CACHE_HEURISTIC").is_some();
        app.options_mut().cache = Some(Arc::new(cache));
    }
    let mut svc = ListeningService::new("proxy", app);
    if let Some(max) = std::env::var("PROXY_MAX_CONNECTIONS").ok().and_then(|v| v.parse().ok()) {
        svc.set_max_connections(max);
    }
    let addr = match (std::env::var_os("PROXY_TLS_CERT"), std::env::var_os("PROXY_TLS_KEY")) {
        (Some(cert), Some(key)) => svc.add_tls(&listen, &TlsSettings::from_pem_files(cert, key)?)?,
        _ => svc.add_tcp(&listen)?,
    };
    server.add_service(svc);
    eprintln!("proxy listening on {addr}, forwarding to {upstream}");
    server.run_forever()
}
