//! Errors that remember where they came from and whether a retry is safe (Pingora's `pingora-error`).
//!
//! Every failure on a request path becomes an [`Error`]: its [`ErrorSource`] says which side of the
//! proxy failed (so the status and the log line blame the right party), and `retry` says whether the
//! request may be sent again to an upstream without risk of doing it twice.

use std::fmt;

/// Which side of the proxy an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The peer we proxy to (connect, read or write on the upstream connection, bad upstream framing).
    Upstream,
    /// The client (malformed request, client went away, client too slow).
    Downstream,
    /// Our own code or a host hook.
    Internal,
}

/// What went wrong. Kept coarse on purpose: each kind maps to one status code and one retry rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// TCP/UDS connect was refused or failed.
    ConnectRefused,
    /// Connect did not finish within the peer's connect timeout.
    ConnectTimeout,
    /// Other connect failure (address resolution, no such socket file, ...).
    ConnectError,
    /// The TLS handshake with the peer failed (bad or untrusted certificate, wrong name, protocol
    /// error); the cause says why. A timeout is a [`ErrorKind::ConnectTimeout`] instead.
    TlsHandshake,
    /// A read did not complete in time.
    ReadTimeout,
    /// A write did not complete in time.
    WriteTimeout,
    /// I/O error while reading.
    ReadError,
    /// I/O error while writing.
    WriteError,
    /// The other side closed the connection before the message was complete.
    ConnectionClosed,
    /// The message violated HTTP framing or syntax; carries the status to answer with
    /// (400, 413, 414, 431, 501, 505 for requests; 502 for upstream responses).
    InvalidHttp(u16),
    /// A hook asked to fail the request with this status.
    HttpStatus(u16),
    /// A hook panicked.
    HookPanic,
    /// A host callback did not resume a pending session before its deadline.
    PendingTimeout,
    /// The server is shutting down.
    ShuttingDown,
    /// Anything else that is our fault.
    Internal,
}

impl ErrorKind {
    /// A short stable name for logs and the C ABI.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect refused",
            ErrorKind::ConnectTimeout => "connect timeout",
            ErrorKind::ConnectError => "connect error",
            ErrorKind::TlsHandshake => "TLS handshake failed",
            ErrorKind::ReadTimeout => "read timeout",
            ErrorKind::WriteTimeout => "write timeout",
            ErrorKind::ReadError => "read error",
            ErrorKind::WriteError => "write error",
            ErrorKind::ConnectionClosed => "connection closed",
            ErrorKind::InvalidHttp(_) => "invalid http",
            ErrorKind::HttpStatus(_) => "http status",
            ErrorKind::HookPanic => "hook panicked",
            ErrorKind::PendingTimeout => "pending deadline exceeded",
            ErrorKind::ShuttingDown => "shutting down",
            ErrorKind::Internal => "internal error",
        }
    }
}

/// A proxy error: kind, source, retry safety and a human context.
#[derive(Debug, Clone)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Which side failed.
    pub source: ErrorSource,
    /// Whether sending the request again (possibly to another peer) is safe.
    pub retry: bool,
    /// Where it happened, for humans ("reading response head", "connecting to 10.0.0.1:80").
    pub context: std::borrow::Cow<'static, str>,
    /// The underlying cause as text (an io::Error message, a parse reason).
    pub cause: Option<String>,
}

/// Result alias used across the core.
pub type Result<T, E = Box<Error>> = std::result::Result<T, E>;

impl Error {
    /// A new boxed error with no cause and no retry.
    pub fn new(
        kind: ErrorKind,
        source: ErrorSource,
        context: impl Into<std::borrow::Cow<'static, str>>,
    ) -> Box<Self> {
        Box::new(Error { kind, source, retry: false, context: context.into(), cause: None })
    }

    /// Shorthand for a downstream error.
    pub fn downstream(kind: ErrorKind, context: &'static str) -> Box<Self> {
        Self::new(kind, ErrorSource::Downstream, context)
    }

    /// Shorthand for an upstream error.
    pub fn upstream(kind: ErrorKind, context: &'static str) -> Box<Self> {
        Self::new(kind, ErrorSource::Upstream, context)
    }

    /// Shorthand for an internal error.
    pub fn internal(context: impl Into<std::borrow::Cow<'static, str>>) -> Box<Self> {
        Self::new(ErrorKind::Internal, ErrorSource::Internal, context)
    }

    /// Attach the underlying cause.
    pub fn with_cause(mut self: Box<Self>, cause: impl fmt::Display) -> Box<Self> {
        self.cause = Some(cause.to_string());
        self
    }

    /// Set whether a retry is safe.
    pub fn with_retry(mut self: Box<Self>, retry: bool) -> Box<Self> {
        self.retry = retry;
        self
    }

    /// Builds an error from an I/O error, classifying timeouts and resets.
    pub fn from_io(
        e: &std::io::Error,
        source: ErrorSource,
        reading: bool,
        context: &'static str,
    ) -> Box<Self> {
        use std::io::ErrorKind as K;
        let kind = match e.kind() {
            K::TimedOut => {
                if reading {
                    ErrorKind::ReadTimeout
                } else {
                    ErrorKind::WriteTimeout
                }
            }
            K::UnexpectedEof | K::ConnectionReset | K::BrokenPipe | K::ConnectionAborted => {
                ErrorKind::ConnectionClosed
            }
            _ if reading => ErrorKind::ReadError,
            _ => ErrorKind::WriteError,
        };
        Self::new(kind, source, context).with_cause(e)
    }

    /// The status code a client should see for this error when no response head was sent yet.
    ///
    /// Upstream timeouts are 504, every other upstream fault 502 (nginx, HAProxy); a malformed
    /// request gets its specific 4xx; our own faults are 500.
    pub fn status(&self) -> u16 {
        match (self.kind, self.source) {
            (ErrorKind::HttpStatus(s), _) | (ErrorKind::InvalidHttp(s), ErrorSource::Downstream) => s,
            (
                ErrorKind::ConnectTimeout | ErrorKind::ReadTimeout | ErrorKind::WriteTimeout,
                ErrorSource::Upstream,
            ) => 504,
            (_, ErrorSource::Upstream) => 502,
            (ErrorKind::ReadTimeout, ErrorSource::Downstream) => 408,
            (ErrorKind::ShuttingDown, _) => 503,
            (_, ErrorSource::Downstream) => 400,
            (_, ErrorSource::Internal) => 500,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let src = match self.source {
            ErrorSource::Upstream => "upstream",
            ErrorSource::Downstream => "downstream",
            ErrorSource::Internal => "internal",
        };
        write!(f, "{src} {}", self.kind.as_str())?;
        if let ErrorKind::InvalidHttp(s) | ErrorKind::HttpStatus(s) = self.kind {
            write!(f, " ({s})")?;
        }
        write!(f, " while {}", self.context)?;
        if let Some(c) = &self.cause {
            write!(f, ": {c}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping_follows_source() {
        assert_eq!(Error::upstream(ErrorKind::ConnectRefused, "x").status(), 502);
        assert_eq!(Error::upstream(ErrorKind::ReadTimeout, "x").status(), 504);
        assert_eq!(Error::upstream(ErrorKind::InvalidHttp(400), "x").status(), 502);
        assert_eq!(Error::downstream(ErrorKind::InvalidHttp(431), "x").status(), 431);
        assert_eq!(Error::internal("x").status(), 500);
        assert_eq!(Error::upstream(ErrorKind::TlsHandshake, "x").status(), 502);
        let e = Error::upstream(ErrorKind::ConnectRefused, "connecting").with_cause("refused");
        assert_eq!(e.to_string(), "upstream connect refused while connecting: refused");
    }
}
