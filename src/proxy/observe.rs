//! What a service records of each request once it ends: the built-in metrics, an access log
//! record for the writer thread, and an error log line for a 5xx the proxy made itself. A service
//! without an [`Observer`] pays one branch per request.

use std::sync::Arc;
use std::time::SystemTime;

use http::header::{CONTENT_ENCODING, REFERER, USER_AGENT};
use http::HeaderValue;

use super::Session;
use crate::error::{Error, ErrorKind, ErrorSource};
use crate::log::{AccessRecord, ErrorLog, LogWriter};
use crate::metrics::{RequestFigures, ServiceMetrics};
use crate::server::LogLevel;

/// A service's observability settings: each part is optional and costs nothing when absent.
#[derive(Debug, Default)]
pub struct Observer {
    /// The service's name in log lines and metric labels.
    pub service: Arc<str>,
    /// The built-in figures (registered in the server's metrics registry by whoever made them).
    pub metrics: Option<Arc<ServiceMetrics>>,
    /// The access log's writer.
    pub access_log: Option<Arc<LogWriter>>,
    /// The error log for the 5xx responses the proxy makes itself.
    pub error_log: Option<Arc<ErrorLog>>,
    /// Whether requests get an `X-Request-Id` (kept when valid, made otherwise) and a W3C
    /// `traceparent` for the upstream (see [`super::request_id`]).
    pub request_ids: bool,
}

impl Observer {
    /// Records a finished request. `e` is the error it failed with, if any.
    pub(crate) fn record(&self, session: &mut Session, e: Option<&Error>) {
        let s = &session.summary;
        if let Some(m) = &self.metrics {
            // Read in the heads' borrowed form: `get` (through `Deref`) would build a map.
            let encoding = session.response.as_ref().and_then(|h| h.headers.value(&CONTENT_ENCODING));
            let figures = RequestFigures {
                method: Some(&session.req.method),
                status: s.status,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                total: s.total,
                upstream_response: s.time_to_first_byte,
                upstream_connect: s.upstream_connect.map(|d| (d, s.reused)),
                retries: s.retries,
                backend: s.backend.as_ref().map(|b| (b, s.upstream_status)),
                cache: s.cache,
                encoding,
            };
            m.request(&figures, e);
        }
        if let (Some(log), Some(e)) = (&self.error_log, e) {
            if e.status() >= 500 && !s.truncated {
                let level = if e.source == ErrorSource::Internal { LogLevel::Error } else { LogLevel::Warn };
                log.log(level, || {
                    let id = session.request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-");
                    format!(
                        "{} {}: {} {} answered {} (request id {id}): {e}",
                        self.service,
                        session.client_addr().map_or("-".to_string(), |a| a.to_string()),
                        session.req.method,
                        session.req.uri,
                        s.status,
                    )
                });
            }
        }
        if let Some(w) = &self.access_log {
            let h = &session.req.headers;
            w.access(AccessRecord {
                time: SystemTime::now(),
                service: self.service.clone(),
                client: session.client_addr().cloned(),
                method: session.req.method.clone(),
                target: session.req.uri.clone(),
                version: session.req.version,
                status: s.status,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                total: s.total,
                upstream_response: s.time_to_first_byte,
                upstream_connect: s.upstream_connect,
                upstream: s.peer.clone(),
                upstream_status: s.upstream_status,
                tries: if s.peer.is_some() { s.retries + 1 } else { 0 },
                error: s.error.clone(),
                request_id: session.request_id.clone(),
                tls: session.downstream.tls_shared(),
                referer: h.value(&REFERER).and_then(|v| HeaderValue::from_bytes(v).ok()),
                user_agent: h.value(&USER_AGENT).and_then(|v| HeaderValue::from_bytes(v).ok()),
                cache: s.cache,
            });
        }
    }
}

/// What a proxy-made error response says happened, in a few words for its body.
pub(crate) fn describe(e: &Error) -> &'static str {
    match (e.kind, e.source) {
        (ErrorKind::ConnectRefused | ErrorKind::ConnectError, _) => "could not connect to the upstream",
        (ErrorKind::ConnectTimeout, _) => "timed out connecting to the upstream",
        (ErrorKind::TlsHandshake, _) => "the TLS handshake with the upstream failed",
        (ErrorKind::ReadTimeout | ErrorKind::WriteTimeout, ErrorSource::Upstream) => {
            "the upstream did not answer in time"
        }
        (ErrorKind::ConnectionClosed, ErrorSource::Upstream) => "the upstream closed the connection",
        (_, ErrorSource::Upstream) => "the upstream sent an invalid response",
        (ErrorKind::ReadTimeout, ErrorSource::Downstream) => "the request did not arrive in time",
        (ErrorKind::HttpStatus(413), _) => "the request body is too large",
        (_, ErrorSource::Downstream) => "the request could not be read",
        (ErrorKind::ShuttingDown, _) => "the proxy is shutting down",
        (ErrorKind::PendingTimeout, _) => "a request handler did not decide in time",
        (ErrorKind::HookPanic, _) | (ErrorKind::HttpStatus(500..), _) => "a request handler failed",
        (ErrorKind::HttpStatus(_), _) => "the request was refused",
        _ => "the request could not be handled",
    }
}
