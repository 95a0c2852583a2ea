//! Access log records and their formats: nginx's `combined`, one JSON object per line, or a
//! template with `$variables`. A worker only fills an [`AccessRecord`] (moves and reference
//! counts); the writer thread formats it.

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method, Uri, Version};

use super::time::{write_clf, write_iso};
use crate::cache::CacheStatus;
use crate::protocol::stream::SocketAddr;
use crate::upstream::PeerAddress;

/// One request, as the access log sees it.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    /// When the response ended.
    pub time: SystemTime,
    /// The service's name.
    pub service: Arc<str>,
    /// The client.
    pub client: Option<SocketAddr>,
    /// Method, target and version of the request as received.
    pub method: Method,
    /// The request target.
    pub target: Uri,
    /// The HTTP version.
    pub version: Version,
    /// Status sent (0: none).
    pub status: u16,
    /// Request body bytes received.
    pub bytes_in: u64,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// From the request's first byte to the end of its response.
    pub total: Duration,
    /// To the first byte of the upstream's response.
    pub upstream_response: Option<Duration>,
    /// Time to open the last upstream connection (zero when reused).
    pub upstream_connect: Option<Duration>,
    /// The last peer tried.
    pub upstream: Option<PeerAddress>,
    /// The status of the upstream's last response head (0: none).
    pub upstream_status: u16,
    /// Upstream attempts (0: the upstream was not contacted).
    pub tries: usize,
    /// What went wrong.
    pub error: Option<String>,
    /// The request id.
    pub request_id: Option<HeaderValue>,
    /// The TLS facts of the connection.
    pub tls: Option<Arc<crate::tls::TlsFacts>>,
    /// `Referer`.
    pub referer: Option<HeaderValue>,
    /// `User-Agent`.
    pub user_agent: Option<HeaderValue>,
    /// What the cache did.
    pub cache: Option<CacheStatus>,
}

thread_local! {
    /// The writer thread's last `$time` text and the second it shows.
    static CLF: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
}

/// The variables a template may use (`$name` or `${name}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Time,
    TimeIso,
    Service,
    RemoteAddr,
    Method,
    Target,
    Protocol,
    Request,
    Status,
    BytesIn,
    BytesOut,
    Duration,
    UpstreamResponseTime,
    UpstreamConnectTime,
    Upstream,
    UpstreamStatus,
    Tries,
    Error,
    RequestId,
    TlsVersion,
    TlsCipher,
    Sni,
    Referer,
    UserAgent,
    Cache,
}

const VARS: [(&str, Var); 25] = [
    ("time", Var::Time),
    ("time_iso", Var::TimeIso),
    ("service", Var::Service),
    ("remote_addr", Var::RemoteAddr),
    ("method", Var::Method),
    ("target", Var::Target),
    ("protocol", Var::Protocol),
    ("request", Var::Request),
    ("status", Var::Status),
    ("bytes_in", Var::BytesIn),
    ("bytes_out", Var::BytesOut),
    ("duration", Var::Duration),
    ("upstream_response_time", Var::UpstreamResponseTime),
    ("upstream_connect_time", Var::UpstreamConnectTime),
    ("upstream", Var::Upstream),
    ("upstream_status", Var::UpstreamStatus),
    ("tries", Var::Tries),
    ("error", Var::Error),
    ("request_id", Var::RequestId),
    ("tls_version", Var::TlsVersion),
    ("tls_cipher", Var::TlsCipher),
    ("sni", Var::Sni),
    ("referer", Var::Referer),
    ("user_agent", Var::UserAgent),
    ("cache", Var::Cache),
];

/// nginx's `combined` format.
pub const COMBINED: &str =
    "$remote_addr - - [$time] \"$request\" $status $bytes_out \"$referer\" \"$user_agent\"";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Var),
}

/// How access records become lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessFormat(Shape);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// A template; `combined` is one.
    Template(Vec<Piece>),
    /// One JSON object per line with every variable (null when unknown).
    Json,
}

impl AccessFormat {
    /// nginx's combined format.
    pub fn combined() -> Self {
        Self::template(COMBINED).expect("the combined template parses")
    }

    /// Parses `"combined"`, `"json"`, or a template: text with `$name` / `${name}` variables
    /// (`$$` is a `$`). An unknown variable is an error naming it.
    pub fn parse(spec: &str) -> Result<Self, String> {
        match spec {
            "combined" => Ok(Self::combined()),
            "json" => Ok(AccessFormat(Shape::Json)),
            t => Self::template(t),
        }
    }

    fn template(t: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = t;
        while let Some(i) = rest.find('$') {
            text.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(r) = rest.strip_prefix('$') {
                text.push('$');
                rest = r;
                continue;
            }
            let (name, after) = match rest.strip_prefix('{') {
                Some(r) => {
                    let end = r.find('}').ok_or("unclosed ${ in the access log template")?;
                    (&r[..end], &r[end + 1..])
                }
                None => {
                    let end =
                        rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
                    (&rest[..end], &rest[end..])
                }
            };
            let var = VARS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
                format!("unknown access log variable ${name} (known: {})", VARS.map(|(n, _)| n).join(", "))
            })?;
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Var(var.1));
            rest = after;
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(AccessFormat(Shape::Template(pieces)))
    }

    /// Writes `r` as one line (without the newline).
    pub fn write(&self, r: &AccessRecord, out: &mut String) {
        let mut scratch = String::new();
        match &self.0 {
            Shape::Template(pieces) => {
                for p in pieces {
                    match p {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Var(v) => {
                            scratch.clear();
                            match value(*v, r, &mut scratch) {
                                Value::Missing => out.push('-'),
                                _ => escape_text(&scratch, out),
                            }
                        }
                    }
                }
            }
            Shape::Json => {
                out.push('{');
                for (i, (name, v)) in
                    VARS.iter().filter(|(_, v)| !matches!(v, Var::Time | Var::Request)).enumerate()
                {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "\"{name}\":");
                    scratch.clear();
                    match value(*v, r, &mut scratch) {
                        Value::Missing => out.push_str("null"),
                        Value::Number => out.push_str(&scratch),
                        Value::Text => escape_json(&scratch, out),
                    }
                }
                out.push('}');
            }
        }
    }
}

enum Value {
    Missing,
    Number,
    Text,
}

fn seconds(out: &mut String, d: Duration) -> Value {
    let _ = write!(out, "{:.3}", d.as_secs_f64());
    Value::Number
}

fn header(out: &mut String, h: &Option<HeaderValue>) -> Value {
    match h {
        Some(v) => {
            out.push_str(&String::from_utf8_lossy(v.as_bytes()));
            Value::Text
        }
        None => Value::Missing,
    }
}

fn text(out: &mut String, s: Option<&str>) -> Value {
    match s {
        Some(s) => {
            out.push_str(s);
            Value::Text
        }
        None => Value::Missing,
    }
}

fn shown(out: &mut String, v: std::fmt::Arguments<'_>) -> Value {
    let _ = out.write_fmt(v);
    Value::Text
}

fn number(out: &mut String, n: u64, known: bool) -> Value {
    if !known {
        return Value::Missing;
    }
    let _ = write!(out, "{n}");
    Value::Number
}

fn value(v: Var, r: &AccessRecord, out: &mut String) -> Value {
    let tls = r.tls.as_deref();
    match v {
        Var::Time => {
            // The same second for thousands of lines: formatted once per second.
            CLF.with_borrow_mut(|(sec, text)| {
                let now = r.time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                if *sec != now || text.is_empty() {
                    text.clear();
                    write_clf(text, r.time);
                    *sec = now;
                }
                out.push_str(text);
            });
            Value::Text
        }
        Var::TimeIso => {
            write_iso(out, r.time);
            Value::Text
        }
        Var::Service => text(out, Some(&r.service)),
        Var::RemoteAddr => match &r.client {
            Some(SocketAddr::Inet(a)) => shown(out, format_args!("{}", a.ip())),
            Some(a) => shown(out, format_args!("{a}")),
            None => Value::Missing,
        },
        Var::Method => text(out, Some(r.method.as_str())),
        Var::Target => shown(out, format_args!("{}", r.target)),
        Var::Protocol => shown(out, format_args!("{:?}", r.version)),
        Var::Request => shown(out, format_args!("{} {} {:?}", r.method, r.target, r.version)),
        Var::Status => number(out, r.status.into(), true),
        Var::BytesIn => number(out, r.bytes_in, true),
        Var::BytesOut => number(out, r.bytes_out, true),
        Var::Duration => seconds(out, r.total),
        Var::UpstreamResponseTime => r.upstream_response.map_or(Value::Missing, |d| seconds(out, d)),
        Var::UpstreamConnectTime => r.upstream_connect.map_or(Value::Missing, |d| seconds(out, d)),
        Var::Upstream => text(out, r.upstream.as_ref().map(|p| p.to_string()).as_deref()),
        Var::UpstreamStatus => number(out, r.upstream_status.into(), r.upstream_status != 0),
        Var::Tries => number(out, r.tries as u64, true),
        Var::Error => text(out, r.error.as_deref()),
        Var::RequestId => header(out, &r.request_id),
        Var::TlsVersion => text(out, tls.and_then(|t| t.version_name())),
        Var::TlsCipher => text(out, tls.and_then(|t| t.cipher())),
        Var::Sni => text(out, tls.and_then(|t| t.sni())),
        Var::Referer => header(out, &r.referer),
        Var::UserAgent => header(out, &r.user_agent),
        Var::Cache => text(out, r.cache.map(CacheStatus::as_str)),
    }
}

/// Like nginx: `"`, `\` and control bytes as `\xHH`, so a value cannot break a quoted field or
/// start a new line.
fn escape_text(s: &str, out: &mut String) {
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b)) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        if c == '"' || c == '\\' || c.is_control() {
            let _ = write!(out, "\\x{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
}

fn escape_json(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn record() -> AccessRecord {
        AccessRecord {
            time: UNIX_EPOCH + Duration::from_secs(971_186_136),
            service: "web".into(),
            client: Some(SocketAddr::Inet("127.0.0.1:5000".parse().unwrap())),
            method: Method::GET,
            target: Uri::from_static("/a?b=c"),
            version: Version::HTTP_11,
            status: 502,
            bytes_in: 0,
            bytes_out: 12,
            total: Duration::from_millis(1500),
            upstream_response: None,
            upstream_connect: None,
            upstream: Some(PeerAddress::Inet("127.0.0.1:1".parse().unwrap())),
            upstream_status: 0,
            tries: 2,
            error: Some("connect refused\n".into()),
            request_id: Some(HeaderValue::from_static("abc")),
            tls: None,
            referer: None,
            user_agent: Some(HeaderValue::from_static("curl/8 \"x\"")),
            cache: None,
        }
    }

    #[test]
    fn combined_json_and_templates() {
        let r = record();
        let mut line = String::new();
        AccessFormat::combined().write(&r, &mut line);
        assert_eq!(
            line,
            "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=c HTTP/1.1\" 502 12 \"-\" \"curl/8 \\x22x\\x22\""
        );
        line.clear();
        AccessFormat::parse("json").unwrap().write(&r, &mut line);
        assert!(line.starts_with("{\"time_iso\":\"2000-10-10T13:55:36.000Z\",\"service\":\"web\""), "{line}");
        assert!(line.contains("\"status\":502,") && line.contains("\"upstream_status\":null,"), "{line}");
        assert!(line.contains("\"error\":\"connect refused\\n\"") && line.contains("\"tries\":2,"), "{line}");
        line.clear();
        AccessFormat::parse("${status}$$ $request_id $tls_version $duration").unwrap().write(&r, &mut line);
        assert_eq!(line, "502$ abc - 1.500");
        assert!(AccessFormat::parse("$nope").unwrap_err().contains("$nope"));
        assert!(AccessFormat::parse("${status").is_err());
    }
}
