//! The proxy's built-in figures for one service: plain atomics in fixed arrays, indexed by what a
//! request's summary says, so recording a request is a dozen relaxed additions and no lookup.
//! Labels are spelled out only when scraped.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::Method;

use super::registry::{Collect, DEFAULT_BUCKETS};
use super::text::{Exposition, Kind};
use crate::cache::CacheStatus;
use crate::connector::Connector;
use crate::error::{Error, ErrorKind, ErrorSource};

const METHODS: [&str; 10] =
    ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other"];
/// Status classes; "none" is a request that got no response head (the connection was cut).
const CLASSES: [&str; 6] = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"];
const SOURCES: [&str; 3] = ["upstream", "downstream", "internal"];
const KINDS: [&str; 15] = [
    "connect_refused",
    "connect_timeout",
    "connect_error",
    "tls_handshake",
    "read_timeout",
    "write_timeout",
    "read_error",
    "write_error",
    "connection_closed",
    "invalid_http",
    "http_status",
    "hook_panic",
    "pending_timeout",
    "shutting_down",
    "internal",
];
const TLS_FAILURES: [&str; 4] = ["timeout", "protocol", "closed", "io"];
const CACHE: [&str; 6] = ["hit", "miss", "stale", "revalidated", "expired", "bypass"];
const ENCODINGS: [&str; 3] = ["gzip", "br", "zstd"];

fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => 9,
    }
}

fn class_index(status: u16) -> usize {
    match status {
        100..=599 => (status / 100) as usize,
        _ => 0,
    }
}

fn kind_index(k: ErrorKind) -> usize {
    match k {
        ErrorKind::ConnectRefused => 0,
        ErrorKind::ConnectTimeout => 1,
        ErrorKind::ConnectError => 2,
        ErrorKind::TlsHandshake => 3,
        ErrorKind::ReadTimeout => 4,
        ErrorKind::WriteTimeout => 5,
        ErrorKind::ReadError => 6,
        ErrorKind::WriteError => 7,
        ErrorKind::ConnectionClosed => 8,
        ErrorKind::InvalidHttp(_) => 9,
        ErrorKind::HttpStatus(_) => 10,
        ErrorKind::HookPanic => 11,
        ErrorKind::PendingTimeout => 12,
        ErrorKind::ShuttingDown => 13,
        ErrorKind::Internal => 14,
    }
}

fn source_index(s: ErrorSource) -> usize {
    match s {
        ErrorSource::Upstream => 0,
        ErrorSource::Downstream => 1,
        ErrorSource::Internal => 2,
    }
}

fn cache_index(s: CacheStatus) -> usize {
    match s {
        CacheStatus::Hit => 0,
        CacheStatus::Miss => 1,
        CacheStatus::Stale => 2,
        CacheStatus::Revalidated => 3,
        CacheStatus::Expired => 4,
        CacheStatus::Bypass => 5,
    }
}

fn counters<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// A latency histogram over Prometheus' default buckets, kept in nanoseconds (integer atomics).
#[derive(Debug)]
struct Latency {
    counts: [AtomicU64; DEFAULT_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Latency {
    fn new() -> Self {
        Latency { counts: counters(), sum_ns: AtomicU64::new(0) }
    }

    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = DEFAULT_BUCKETS.iter().position(|b| s <= *b).unwrap_or(DEFAULT_BUCKETS.len());
        bump(&self.counts[i], 1);
        bump(&self.sum_ns, d.as_nanos() as u64);
    }

    fn render(&self, out: &mut Exposition, name: &str, labels: &[(&str, &str)]) {
        let counts: Vec<u64> = self.counts.iter().map(load).collect();
        out.histogram(name, labels, &DEFAULT_BUCKETS, &counts, load(&self.sum_ns) as f64 / 1e9);
    }
}

/// Requests per upstream group backend, by status class of the upstream's answer.
#[derive(Debug)]
struct BackendCounters {
    name: Arc<str>,
    by_class: [AtomicU64; CLASSES.len()],
}

/// A labelled counter family of fixed label values: name, help, label name, values, cells.
type Labelled<'a> = (&'a str, &'a str, &'a str, &'a [&'a str], &'a [AtomicU64]);

/// What a request's logging summary tells the metrics (filled by the proxy).
#[derive(Debug, Default)]
pub struct RequestFigures<'a> {
    /// The request method.
    pub method: Option<&'a Method>,
    /// The status sent downstream (0: none).
    pub status: u16,
    /// Request body bytes received.
    pub bytes_in: u64,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// From the request's first byte to the end of the response.
    pub total: Duration,
    /// To the first byte of the upstream response, when one came.
    pub upstream_response: Option<Duration>,
    /// The time to open the last upstream connection, and whether it came from the pool.
    pub upstream_connect: Option<(Duration, bool)>,
    /// Attempts beyond the first.
    pub retries: usize,
    /// The group backend of the last attempt and the status it answered (0: none).
    pub backend: Option<(&'a Arc<str>, u16)>,
    /// What the cache did.
    pub cache: Option<CacheStatus>,
    /// The response's content coding, when the proxy compresses.
    pub encoding: Option<&'a [u8]>,
}

/// The built-in figures of one proxy service.
#[derive(Debug)]
pub struct ServiceMetrics {
    service: String,
    requests: [[AtomicU64; CLASSES.len()]; METHODS.len()],
    duration: Latency,
    upstream_response: Latency,
    upstream_connect: Latency,
    retries: AtomicU64,
    errors: [[AtomicU64; SOURCES.len()]; KINDS.len()],
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    connections: AtomicI64,
    connections_total: AtomicU64,
    h2_streams: AtomicI64,
    tls_handshakes: AtomicU64,
    tls_failures: [AtomicU64; TLS_FAILURES.len()],
    pool: [AtomicU64; 2],
    cache: [AtomicU64; CACHE.len()],
    encoded: [AtomicU64; ENCODINGS.len()],
    /// Swapped whole when a new backend shows up (rare); read per request without a lock.
    backends: ArcSwap<Vec<Arc<BackendCounters>>>,
    connector: Option<Connector>,
}

impl ServiceMetrics {
    /// Figures for the service `name`; `connector` (its pool) adds the idle-connection gauge.
    pub fn new(name: &str, connector: Option<Connector>) -> Arc<Self> {
        Arc::new(ServiceMetrics {
            service: name.to_string(),
            requests: std::array::from_fn(|_| counters()),
            duration: Latency::new(),
            upstream_response: Latency::new(),
            upstream_connect: Latency::new(),
            retries: AtomicU64::new(0),
            errors: std::array::from_fn(|_| counters()),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            connections: AtomicI64::new(0),
            connections_total: AtomicU64::new(0),
            h2_streams: AtomicI64::new(0),
            tls_handshakes: AtomicU64::new(0),
            tls_failures: counters(),
            pool: counters(),
            cache: counters(),
            encoded: counters(),
            backends: ArcSwap::default(),
            connector,
        })
    }

    /// Records one finished request.
    pub fn request(&self, r: &RequestFigures<'_>, error: Option<&Error>) {
        let m = r.method.map_or(METHODS.len() - 1, method_index);
        bump(&self.requests[m][class_index(r.status)], 1);
        self.duration.observe(r.total);
        if let Some(d) = r.upstream_response {
            self.upstream_response.observe(d);
        }
        if let Some((d, reused)) = r.upstream_connect {
            bump(&self.pool[usize::from(!reused)], 1);
            if !reused {
                self.upstream_connect.observe(d);
            }
        }
        if r.retries > 0 {
            bump(&self.retries, r.retries as u64);
        }
        if let Some(e) = error {
            bump(&self.errors[kind_index(e.kind)][source_index(e.source)], 1);
        }
        bump(&self.bytes_in, r.bytes_in);
        bump(&self.bytes_out, r.bytes_out);
        if let Some((name, status)) = r.backend {
            self.backend(name).by_class[class_index(status)].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(c) = r.cache {
            bump(&self.cache[cache_index(c)], 1);
        }
        if let Some(i) = r.encoding.and_then(|e| ENCODINGS.iter().position(|n| n.as_bytes() == e)) {
            bump(&self.encoded[i], 1);
        }
    }

    fn backend(&self, name: &Arc<str>) -> Arc<BackendCounters> {
        if let Some(b) = self.backends.load().iter().find(|b| b.name == *name) {
            return b.clone();
        }
        let fresh = Arc::new(BackendCounters { name: name.clone(), by_class: counters() });
        let mut added = fresh.clone();
        self.backends.rcu(|list| {
            if let Some(b) = list.iter().find(|b| b.name == *name) {
                added = b.clone();
                return list.clone();
            }
            let mut l = Vec::clone(list);
            l.push(fresh.clone());
            Arc::new(l)
        });
        added
    }

    /// A downstream connection opened; it counts as active until the guard drops.
    pub fn connection(self: &Arc<Self>) -> ActiveGuard {
        bump(&self.connections_total, 1);
        ActiveGuard::new(self.clone(), |m| &m.connections)
    }

    /// An HTTP/2 stream started; it counts as active until the guard drops.
    pub fn h2_stream(self: &Arc<Self>) -> ActiveGuard {
        ActiveGuard::new(self.clone(), |m| &m.h2_streams)
    }

    /// A downstream TLS handshake ended: `Ok` or the error it failed with.
    pub fn tls_handshake(&self, r: Result<(), &std::io::Error>) {
        match r {
            Ok(()) => bump(&self.tls_handshakes, 1),
            Err(e) => {
                let i = match e.kind() {
                    std::io::ErrorKind::TimedOut => 0,
                    std::io::ErrorKind::InvalidData => 1,
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => 2,
                    _ => 3,
                };
                bump(&self.tls_failures[i], 1);
            }
        }
    }
}

/// Keeps a gauge (active connections, H2 streams) up by one while alive.
#[derive(Debug)]
pub struct ActiveGuard {
    metrics: Arc<ServiceMetrics>,
    gauge: fn(&ServiceMetrics) -> &AtomicI64,
}

impl ActiveGuard {
    fn new(metrics: Arc<ServiceMetrics>, gauge: fn(&ServiceMetrics) -> &AtomicI64) -> Self {
        gauge(&metrics).fetch_add(1, Ordering::Relaxed);
        ActiveGuard { metrics, gauge }
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        (self.gauge)(&self.metrics).fetch_sub(1, Ordering::Relaxed);
    }
}

impl Collect for ServiceMetrics {
    fn collect(&self, out: &mut Exposition) {
        let svc = ("service", self.service.as_str());
        out.family(
            "libproxy_requests_total",
            "Requests answered, by method and status class.",
            Kind::Counter,
        );
        for (m, row) in METHODS.iter().zip(&self.requests) {
            for (c, n) in CLASSES.iter().zip(row) {
                if load(n) > 0 {
                    out.sample_u64("libproxy_requests_total", &[svc, ("method", m), ("status", c)], load(n));
                }
            }
        }
        let latencies = [
            (
                "libproxy_request_duration_seconds",
                "From a request's first byte to the end of its response.",
                &self.duration,
            ),
            (
                "libproxy_upstream_response_seconds",
                "From a request's start to the upstream response's first byte.",
                &self.upstream_response,
            ),
            (
                "libproxy_upstream_connect_seconds",
                "Time to open a new upstream connection.",
                &self.upstream_connect,
            ),
        ];
        for (name, help, h) in latencies {
            out.family(name, help, Kind::Histogram);
            h.render(out, name, &[svc]);
        }
        let totals = [
            ("libproxy_upstream_retries_total", "Upstream attempts beyond the first.", &self.retries),
            (
                "libproxy_request_body_bytes_total",
                "Request body bytes received from clients.",
                &self.bytes_in,
            ),
            ("libproxy_response_body_bytes_total", "Response body bytes sent to clients.", &self.bytes_out),
            (
                "libproxy_downstream_connections_total",
                "Downstream connections accepted.",
                &self.connections_total,
            ),
            ("libproxy_tls_handshakes_total", "Downstream TLS handshakes completed.", &self.tls_handshakes),
        ];
        for (name, help, n) in totals {
            out.family(name, help, Kind::Counter);
            out.sample_u64(name, &[svc], load(n));
        }
        out.family(
            "libproxy_errors_total",
            "Failed requests, by error kind and the side that failed.",
            Kind::Counter,
        );
        for (k, row) in KINDS.iter().zip(&self.errors) {
            for (s, n) in SOURCES.iter().zip(row) {
                if load(n) > 0 {
                    out.sample_u64("libproxy_errors_total", &[svc, ("kind", k), ("source", s)], load(n));
                }
            }
        }
        let labelled: [Labelled<'_>; 4] = [
            (
                "libproxy_tls_handshake_failures_total",
                "Downstream TLS handshakes that failed, by reason.",
                "reason",
                &TLS_FAILURES,
                &self.tls_failures,
            ),
            (
                "libproxy_upstream_pool_total",
                "Upstream connections taken from the pool (hit) or opened (miss).",
                "result",
                &["hit", "miss"],
                &self.pool,
            ),
            (
                "libproxy_cache_requests_total",
                "What the cache did for requests.",
                "status",
                &CACHE,
                &self.cache,
            ),
            (
                "libproxy_compressed_responses_total",
                "Responses sent compressed, by coding.",
                "encoding",
                &ENCODINGS,
                &self.encoded,
            ),
        ];
        for (name, help, label, values, cells) in labelled {
            out.family(name, help, Kind::Counter);
            for (v, n) in values.iter().zip(cells) {
                out.sample_u64(name, &[svc, (label, v)], load(n));
            }
        }
        let gauges = [
            ("libproxy_downstream_connections", "Downstream connections open.", &self.connections),
            ("libproxy_h2_streams", "Downstream HTTP/2 streams in flight.", &self.h2_streams),
        ];
        for (name, help, n) in gauges {
            out.family(name, help, Kind::Gauge);
            out.sample(name, &[svc], n.load(Ordering::Relaxed) as f64);
        }
        if let Some(c) = &self.connector {
            out.family("libproxy_upstream_pool_idle", "Idle upstream connections in the pool.", Kind::Gauge);
            out.sample_u64("libproxy_upstream_pool_idle", &[svc], c.pool().stats().idle as u64);
        }
        let name = "libproxy_upstream_backend_requests_total";
        out.family(
            name,
            "Upstream attempts per group backend, by the status class it answered.",
            Kind::Counter,
        );
        for b in self.backends.load().iter() {
            for (c, n) in CLASSES.iter().zip(&b.by_class) {
                if load(n) > 0 {
                    out.sample_u64(name, &[svc, ("backend", &b.name), ("status", c)], load(n));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_renders() {
        let m = ServiceMetrics::new("web", None);
        let backend: Arc<str> = "b1".into();
        let get = Method::GET;
        let r = RequestFigures {
            method: Some(&get),
            status: 502,
            total: Duration::from_millis(3),
            retries: 1,
            backend: Some((&backend, 0)),
            ..Default::default()
        };
        let e = Error::upstream(ErrorKind::ConnectRefused, "connecting");
        m.request(&r, Some(&e));
        let g = m.connection();
        let mut out = Exposition::default();
        m.collect(&mut out);
        let text = out.finish();
        for want in [
            "libproxy_requests_total{service=\"web\",method=\"GET\",status=\"5xx\"} 1\n",
            "libproxy_errors_total{service=\"web\",kind=\"connect_refused\",source=\"upstream\"} 1\n",
            "libproxy_upstream_retries_total{service=\"web\"} 1\n",
            "libproxy_request_duration_seconds_bucket{service=\"web\",le=\"0.005\"} 1\n",
            "libproxy_downstream_connections{service=\"web\"} 1\n",
            "libproxy_upstream_backend_requests_total{service=\"web\",backend=\"b1\",status=\"none\"} 1\n",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
        drop(g);
        assert_eq!(m.connections.load(Ordering::Relaxed), 0);
    }
}
