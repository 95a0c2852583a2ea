//! From the marked YAML tree to a [`FileConf`]: every value checked where it stands, so an error
//! names the file, the line, the key and what was expected.

use std::path::PathBuf;

use super::yaml::{self, Node, Value};
use super::{Address, ConfError, FileConf, Limits, ListenerConf, ServiceConf, UpstreamConf, Warnings};
use crate::server::LogLevel;
use crate::upstream::{Algorithm, MAX_WEIGHT};

const TOP: &[&str] = &[
    "version",
    "daemon",
    "error_log",
    "pid_file",
    "upgrade_sock",
    "user",
    "group",
    "threads",
    "work_stealing",
    "grace_period_seconds",
    "graceful_shutdown_timeout_seconds",
    "upstream_keepalive_pool_size",
    "max_retries",
    "ca_file",
    "upgrade_sock_connect_accept_max_retries",
    "log_level",
    "limits",
    "services",
    "upstreams",
];
const LIMITS: &[&str] = &[
    "max_header_bytes",
    "max_headers",
    "max_uri_len",
    "max_connections",
    "header_timeout_ms",
    "keepalive_timeout_ms",
    "body_idle_timeout_ms",
    "write_timeout_ms",
    "h2_max_concurrent_streams",
    "h2_max_header_list_size",
    "pool_idle_timeout_ms",
];
const SERVICE: &[&str] = &["threads", "work_stealing", "h2_only", "limits", "listeners"];
const LISTENER: &[&str] = &["address", "tls"];
const TLS: &[&str] = &["cert_file", "key_file"];
const UPSTREAM: &[&str] = &["selection", "backends"];
const BACKEND: &[&str] = &["address", "weight"];

const LEVELS: &[(&str, LogLevel)] = &[
    ("error", LogLevel::Error),
    ("warn", LogLevel::Warn),
    ("info", LogLevel::Info),
    ("debug", LogLevel::Debug),
];
const ALGORITHMS: &[(&str, Algorithm)] = &[
    ("round_robin", Algorithm::RoundRobin),
    ("random", Algorithm::Random),
    ("least_outstanding", Algorithm::LeastOutstanding),
    ("ketama", Algorithm::Ketama),
    ("maglev", Algorithm::Maglev),
];

/// The configuration file's name of a log level.
pub(super) fn level_name(l: LogLevel) -> &'static str {
    LEVELS.iter().find(|(_, v)| *v == l).map_or("info", |(n, _)| n)
}

/// The configuration file's name of a selection algorithm.
pub(super) fn algorithm_name(a: Algorithm) -> &'static str {
    ALGORITHMS.iter().find(|(_, v)| *v == a).map_or("round_robin", |(n, _)| n)
}

type Result<T> = std::result::Result<T, ConfError>;

struct Decoder<'a> {
    file: &'a str,
    strict: bool,
    warnings: Warnings,
}

/// The entries of a mapping whose keys are all known (or warned about).
type Entries<'n> = Vec<(&'n str, &'n Node)>;

impl Decoder<'_> {
    fn error(&self, node: &Node, key: &str, message: impl Into<String>) -> ConfError {
        ConfError {
            file: self.file.to_owned(),
            line: node.mark.line,
            col: node.mark.col,
            key: key.to_owned(),
            message: message.into(),
        }
    }

    fn expected(&self, node: &Node, key: &str, what: &str) -> ConfError {
        self.error(node, key, format!("expected {what}, found {}", node.kind()))
    }

    /// The entries of mapping `node` at `path`: duplicates refused, unknown keys warned about
    /// (refused when strict).
    fn map<'n>(&mut self, node: &'n Node, path: &str, known: &[&str]) -> Result<Entries<'n>> {
        let Value::Map(entries) = &node.value else {
            return Err(self.expected(node, path, "a mapping of keys to values"));
        };
        let mut out: Entries<'n> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let Value::Scalar { text, .. } = &k.value else {
                return Err(self.expected(k, path, "a plain key"));
            };
            let full = join(path, text);
            if out.iter().any(|(seen, _)| seen == text) {
                return Err(self.error(k, &full, "duplicate key"));
            }
            if !known.is_empty() && !known.contains(&text.as_str()) {
                let msg = format!("unknown key (known here: {})", known.join(", "));
                if self.strict {
                    return Err(self.error(k, &full, msg));
                }
                self.warnings.push(self.error(k, &full, format!("{msg}; ignored")).to_string());
                continue;
            }
            out.push((text.as_str(), v));
        }
        Ok(out)
    }

    fn scalar<'n>(&self, node: &'n Node, key: &str, what: &str) -> Result<(&'n str, bool)> {
        match &node.value {
            Value::Scalar { text, quoted } if !text.is_empty() || *quoted => Ok((text, *quoted)),
            _ => Err(self.expected(node, key, what)),
        }
    }

    fn uint(&self, node: &Node, key: &str, min: u64, max: u64) -> Result<u64> {
        let what = format!("a whole number from {min} to {max}");
        let (text, quoted) = self.scalar(node, key, &what)?;
        match text.parse::<u64>() {
            Ok(n) if !quoted && (min..=max).contains(&n) => Ok(n),
            _ => Err(self.expected(node, key, &what)),
        }
    }

    fn boolean(&self, node: &Node, key: &str) -> Result<bool> {
        match self.scalar(node, key, "true or false")? {
            ("true", false) => Ok(true),
            ("false", false) => Ok(false),
            _ => Err(self.expected(node, key, "true or false")),
        }
    }

    fn string(&self, node: &Node, key: &str) -> Result<String> {
        let (text, _) = self.scalar(node, key, "a non-empty string")?;
        if text.is_empty() {
            return Err(self.expected(node, key, "a non-empty string"));
        }
        Ok(text.to_owned())
    }

    fn path(&self, node: &Node, key: &str) -> Result<PathBuf> {
        self.string(node, key).map(PathBuf::from)
    }

    fn choice<T: Copy>(&self, node: &Node, key: &str, table: &[(&str, T)]) -> Result<T> {
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        let what = format!("one of {}", names.join(", "));
        let (text, _) = self.scalar(node, key, &what)?;
        table.iter().find(|(n, _)| *n == text).map(|(_, v)| *v).ok_or_else(|| self.expected(node, key, &what))
    }

    fn limits(&mut self, node: &Node, path: &str, base: &Limits) -> Result<Limits> {
        let mut l = base.clone();
        for (k, v) in self.map(node, path, LIMITS)? {
            let key = join(path, k);
            let size = |d: &Self| d.uint(v, &key, 1, u32::MAX as u64);
            let ms = |d: &Self| d.uint(v, &key, 1, 86_400_000);
            match k {
                "max_header_bytes" => l.max_header_bytes = size(self)? as usize,
                "max_headers" => l.max_headers = size(self)? as usize,
                "max_uri_len" => l.max_uri_len = size(self)? as usize,
                "max_connections" => l.max_connections = self.uint(v, &key, 0, u32::MAX as u64)? as usize,
                "header_timeout_ms" => l.header_timeout_ms = ms(self)?,
                "keepalive_timeout_ms" => l.keepalive_timeout_ms = ms(self)?,
                "body_idle_timeout_ms" => l.body_idle_timeout_ms = ms(self)?,
                "write_timeout_ms" => l.write_timeout_ms = ms(self)?,
                "h2_max_concurrent_streams" => l.h2_max_concurrent_streams = size(self)? as u32,
                "h2_max_header_list_size" => l.h2_max_header_list_size = size(self)? as u32,
                "pool_idle_timeout_ms" => l.pool_idle_timeout_ms = ms(self)?,
                _ => unreachable!("map() let only known keys through"),
            }
        }
        Ok(l)
    }

    fn listener(&mut self, node: &Node, path: &str) -> Result<ListenerConf> {
        let mut address = None;
        let mut tls = None;
        for (k, v) in self.map(node, path, LISTENER)? {
            let key = join(path, k);
            match k {
                "address" => address = Some(self.address(v, &key)?),
                "tls" => {
                    let mut files = (None, None);
                    for (tk, tv) in self.map(v, &key, TLS)? {
                        let p = self.path(tv, &join(&key, tk))?;
                        if tk == "cert_file" {
                            files.0 = Some(p)
                        } else {
                            files.1 = Some(p)
                        }
                    }
                    match files {
                        (Some(c), Some(k)) => tls = Some((c, k)),
                        (None, _) => {
                            return Err(self.error(
                                v,
                                &join(&key, "cert_file"),
                                "missing (a PEM certificate chain)",
                            ))
                        }
                        (_, None) => {
                            return Err(self.error(v, &join(&key, "key_file"), "missing (a PEM private key)"))
                        }
                    }
                }
                _ => unreachable!("map() let only known keys through"),
            }
        }
        match address {
            Some(address) => Ok(ListenerConf { address, tls }),
            None => Err(self.error(
                node,
                &join(path, "address"),
                "missing (an IP address with a port, or unix:/path)",
            )),
        }
    }

    fn address(&self, node: &Node, key: &str) -> Result<Address> {
        const WHAT: &str = "an IP address with a port (127.0.0.1:8080, [::1]:0) or unix:/path";
        let text = self.string(node, key).map_err(|_| self.expected(node, key, WHAT))?;
        if let Some(p) = text.strip_prefix("unix:") {
            if !p.is_empty() {
                return Ok(Address::Unix(PathBuf::from(p)));
            }
        } else if let Ok(a) = text.parse() {
            return Ok(Address::Tcp(a));
        }
        Err(self.expected(node, key, WHAT))
    }

    fn service(&mut self, name: &str, node: &Node, path: &str, top: &FileConf) -> Result<ServiceConf> {
        let mut s = ServiceConf {
            name: name.to_owned(),
            threads: top.threads,
            work_stealing: top.work_stealing,
            h2_only: false,
            limits: top.limits.clone(),
            listeners: Vec::new(),
        };
        for (k, v) in self.map(node, path, SERVICE)? {
            let key = join(path, k);
            match k {
                "threads" => s.threads = self.uint(v, &key, 1, 1024)? as usize,
                "work_stealing" => s.work_stealing = self.boolean(v, &key)?,
                "h2_only" => s.h2_only = self.boolean(v, &key)?,
                "limits" => s.limits = self.limits(v, &key, &top.limits)?,
                "listeners" => {
                    let Value::Seq(items) = &v.value else {
                        return Err(self.expected(v, &key, "a list of listeners"));
                    };
                    for (i, item) in items.iter().enumerate() {
                        s.listeners.push(self.listener(item, &format!("{key}.{i}"))?);
                    }
                }
                _ => unreachable!("map() let only known keys through"),
            }
        }
        Ok(s)
    }

    fn upstream(&mut self, name: &str, node: &Node, path: &str) -> Result<UpstreamConf> {
        let mut u =
            UpstreamConf { name: name.to_owned(), selection: Algorithm::RoundRobin, backends: Vec::new() };
        for (k, v) in self.map(node, path, UPSTREAM)? {
            let key = join(path, k);
            match k {
                "selection" => u.selection = self.choice(v, &key, ALGORITHMS)?,
                "backends" => {
                    let Value::Seq(items) = &v.value else {
                        return Err(self.expected(v, &key, "a list of backends"));
                    };
                    for (i, item) in items.iter().enumerate() {
                        u.backends.push(self.backend(item, &format!("{key}.{i}"))?);
                    }
                }
                _ => unreachable!("map() let only known keys through"),
            }
        }
        Ok(u)
    }

    /// A backend: `"host:port"`, or `{address: "host:port", weight: N}`.
    fn backend(&mut self, node: &Node, path: &str) -> Result<(String, u32)> {
        const WHAT: &str = "an address with a port";
        let check = |d: &Self, n: &Node, key: &str| -> Result<String> {
            let a = d.string(n, key).map_err(|_| d.expected(n, key, WHAT))?;
            crate::upstream::Backend::new(&a, 1).map_err(|e| d.error(n, key, format!("{e}: {a:?}")))?;
            Ok(a)
        };
        if let Value::Scalar { .. } = node.value {
            return Ok((check(self, node, &join(path, "address"))?, 1));
        }
        let (mut address, mut weight) = (None, 1);
        for (k, v) in self.map(node, path, BACKEND)? {
            let key = join(path, k);
            match k {
                "address" => address = Some(check(self, v, &key)?),
                "weight" => weight = self.uint(v, &key, 1, MAX_WEIGHT as u64)? as u32,
                _ => unreachable!("map() let only known keys through"),
            }
        }
        let address = address.ok_or_else(|| self.error(node, &join(path, "address"), "missing"))?;
        Ok((address, weight))
    }

    /// Named children (`services:`, `upstreams:`): a mapping from name to settings.
    fn named<'n>(&mut self, node: &'n Node, key: &str) -> Result<Entries<'n>> {
        self.map(node, key, &[])
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn decode(file: &str, text: &str, strict: bool) -> Result<(FileConf, Warnings)> {
    let root = yaml::parse(text).map_err(|e| ConfError {
        file: file.to_owned(),
        line: e.mark.line,
        col: e.mark.col,
        key: String::new(),
        message: format!("invalid YAML: {}", e.message),
    })?;
    let mut d = Decoder { file, strict, warnings: Vec::new() };
    let entries = d.map(&root, "", TOP)?;
    let mut c = FileConf::default();
    // Scalars first, whatever their order in the file: services inherit threads and limits.
    let mut later = Vec::new();
    for (k, v) in entries {
        match k {
            "version" => c.version = d.uint(v, k, 1, 1)?,
            "daemon" => c.daemon = d.boolean(v, k)?,
            "error_log" => c.error_log = Some(d.path(v, k)?),
            "pid_file" => c.pid_file = d.path(v, k)?,
            "upgrade_sock" => c.upgrade_sock = d.path(v, k)?,
            "user" => c.user = Some(d.string(v, k)?),
            "group" => c.group = Some(d.string(v, k)?),
            "threads" => c.threads = d.uint(v, k, 1, 1024)? as usize,
            "work_stealing" => c.work_stealing = d.boolean(v, k)?,
            "grace_period_seconds" => c.grace_period_seconds = d.uint(v, k, 0, 86_400)?,
            "graceful_shutdown_timeout_seconds" => {
                c.graceful_shutdown_timeout_seconds = d.uint(v, k, 0, 3_600)?
            }
            "upstream_keepalive_pool_size" => {
                c.upstream_keepalive_pool_size = d.uint(v, k, 0, 1 << 20)? as usize
            }
            "max_retries" => c.max_retries = d.uint(v, k, 0, 100)? as usize,
            "ca_file" => c.ca_file = Some(d.path(v, k)?),
            "upgrade_sock_connect_accept_max_retries" => {
                c.upgrade_sock_connect_accept_max_retries = d.uint(v, k, 1, 10_000)? as usize
            }
            "log_level" => c.log_level = d.choice(v, k, LEVELS)?,
            "limits" => c.limits = d.limits(v, k, &Limits::default())?,
            _ => later.push((k, v)),
        }
    }
    for (k, v) in later {
        for (name, node) in d.named(v, k)? {
            let path = join(k, name);
            if k == "services" {
                let s = d.service(name, node, &path, &c)?;
                c.services.push(s);
            } else {
                let u = d.upstream(name, node, &path)?;
                c.upstreams.push(u);
            }
        }
    }
    Ok((c, d.warnings))
}
