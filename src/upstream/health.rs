//! Active health checks (Pingora's `TcpHealthCheck` / `HttpHealthCheck`), run as a background
//! service of the server: every interval (plus jitter, so checks of many proxies do not beat in
//! step) each backend of a group is probed; `fall` failures in a row mark it down, `rise`
//! successes in a row up again (an up verdict also ends a passive ejection).

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use super::selection::rand_below;
use super::{Backend, UpstreamGroup};
use crate::server::ShutdownWatch;
use crate::service::BackgroundService;

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A TCP (or Unix socket) connect, without TLS even for a TLS backend.
    Tcp,
    /// A connect with the backend's full handshake (TLS with its options, verification
    /// included); the same as `Tcp` for a plaintext backend.
    Tls,
    /// An HTTP/1.1 request over a connect like `Tls`'s.
    Http(HttpProbe),
}

/// An HTTP probe: the response's status must fall in `status`, and its body (as received, up to
/// 64 KiB) contain `body` when set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProbe {
    /// Request method.
    pub method: String,
    /// Request target.
    pub path: String,
    /// Host header; the backend's default host when empty.
    pub host: String,
    /// Statuses that pass.
    pub status: RangeInclusive<u16>,
    /// A substring the body must contain.
    pub body: Option<Vec<u8>>,
}

impl Default for HttpProbe {
    /// `GET /`, any 2xx or 3xx.
    fn default() -> Self {
        HttpProbe {
            method: "GET".into(),
            path: "/".into(),
            host: String::new(),
            status: 200..=399,
            body: None,
        }
    }
}

/// A health check for every backend of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The probe.
    pub probe: Probe,
    /// Time between rounds.
    pub interval: Duration,
    /// Longest a probe may take; a slower one fails.
    pub timeout: Duration,
    /// Up to this much is added to each interval at random.
    pub jitter: Duration,
    /// Successes in a row that bring a down backend up.
    pub rise: u32,
    /// Failures in a row that take an up backend down.
    pub fall: u32,
}

impl Default for HealthCheck {
    /// HAProxy's defaults: a TCP connect every 2 s, 1 s to answer, rise 2, fall 3.
    fn default() -> Self {
        HealthCheck {
            probe: Probe::Tcp,
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            jitter: Duration::ZERO,
            rise: 2,
            fall: 3,
        }
    }
}

/// The background service that checks a group (add it to the server with
/// [`crate::service::background_service`]).
#[derive(Debug)]
pub struct HealthChecker {
    group: UpstreamGroup,
    check: HealthCheck,
}

impl HealthChecker {
    /// Checks `group`'s backends with `check`.
    pub fn new(group: UpstreamGroup, check: HealthCheck) -> Self {
        HealthChecker { group, check }
    }

    /// One round: probes every backend at once, then applies the verdicts. `streaks` holds each
    /// backend's run of equal results (positive: successes), by name.
    pub async fn round(&self, streaks: &mut HashMap<String, i64>) {
        let backends = self.group.backends();
        let mut probes = JoinSet::new();
        for b in backends.iter().cloned() {
            let (probe, timeout) = (self.check.probe.clone(), self.check.timeout);
            probes.spawn(async move {
                let ok = matches!(tokio::time::timeout(timeout, probe_once(&probe, &b)).await, Ok(true));
                (b.name, ok)
            });
        }
        let mut seen = HashMap::with_capacity(backends.len());
        while let Some(r) = probes.join_next().await {
            if let Ok((name, ok)) = r {
                let s = streaks.get(&name).copied().unwrap_or(0);
                let s = match (ok, s) {
                    (true, s) if s > 0 => s + 1,
                    (true, _) => 1,
                    (false, s) if s < 0 => s - 1,
                    (false, _) => -1,
                };
                if s >= i64::from(self.check.rise.max(1)) {
                    self.group.set_healthy(&name, true);
                } else if -s >= i64::from(self.check.fall.max(1)) {
                    self.group.set_healthy(&name, false);
                }
                seen.insert(name, s);
            }
        }
        // Backends that left the group leave the table.
        *streaks = seen;
    }
}

impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut streaks = HashMap::new();
        loop {
            self.round(&mut streaks).await;
            let jitter = Duration::from_nanos(rand_below(self.check.jitter.as_nanos() as u64 + 1));
            tokio::select! {
                () = tokio::time::sleep(self.check.interval + jitter) => {}
                () = shutdown.graceful() => return,
            }
        }
    }
}

/// One probe of `b`: whether it passed.
async fn probe_once(probe: &Probe, b: &Backend) -> bool {
    match probe {
        Probe::Tcp => {
            let mut peer = b.peer.clone();
            peer.options.tls = None;
            crate::connector::connect(&peer).await.is_ok()
        }
        Probe::Tls => crate::connector::connect(&b.peer).await.is_ok(),
        Probe::Http(h) => http_probe(h, b).await.unwrap_or(false),
    }
}

/// Most of a probe's response read: a health page, not a download.
const MAX_RESPONSE: usize = 64 * 1024;

async fn http_probe(h: &HttpProbe, b: &Backend) -> std::io::Result<bool> {
    let mut stream = crate::connector::connect(&b.peer).await.map_err(std::io::Error::other)?;
    let host = if h.host.is_empty() { b.peer.default_host() } else { h.host.clone() };
    let req = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: libproxy-health\r\nConnection: close\r\n\r\n",
        h.method, h.path
    );
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(4096);
    // Connection: close, so the response ends with the connection (or at the read cap).
    while buf.len() < MAX_RESPONSE {
        if stream.read_buf(&mut buf).await? == 0 {
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(head_len)) = resp.parse(&buf) else {
        return Ok(false);
    };
    let status_ok = resp.code.is_some_and(|c| h.status.contains(&c));
    let body = &buf[head_len..];
    let body_ok =
        h.body.as_ref().is_none_or(|want| want.is_empty() || body.windows(want.len()).any(|w| w == want));
    Ok(status_ok && body_ok)
}
