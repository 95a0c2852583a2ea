//! The configuration file (Pingora's `ServerConf` in YAML) and the command line (Pingora's `Opt`).
//!
//! Pingora's keys keep Pingora's meanings: `version`, `daemon`, `error_log`, `pid_file`,
//! `upgrade_sock`, `user`, `group`, `threads`, `work_stealing`, `grace_period_seconds` (how long
//! in-flight requests get after a graceful shutdown or upgrade begins),
//! `graceful_shutdown_timeout_seconds` (the final step: how long the runtimes get to stop after
//! that), `upstream_keepalive_pool_size`, `max_retries`, `ca_file` and
//! `upgrade_sock_connect_accept_max_retries`. libproxy adds `log_level`, `limits` (head sizes,
//! timeouts, H2 settings, the upstream pool's idle time), `services` (threads, limits and listeners
//! per service, by the name the host gives `proxy_service_new`) and `upstreams` (groups of
//! backends, changeable by reload).
//!
//! A bad file fails with its path, the line, the key and what was expected; an unknown key is a
//! warning naming it, and an error under `-t`. [`FileConf::entries`] lists every effective value,
//! which is what `proxy_conf_get` reads.

mod args;
mod decode;
mod reload;
mod startup;
mod yaml;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use args::{parse_args, Args};
pub use reload::{reload_plan, ReloadPlan};
pub use startup::{startup, Startup, StartupError};

use crate::server::LogLevel;
use crate::upstream::Algorithm;

/// A configuration error: where, which key, and what was expected instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError {
    /// The file (as given), or `<command line>` / `<text>`.
    pub file: String,
    /// 1-based line of the offending value (0 when the file could not be read).
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// Dotted path of the key (`services.proxy.listeners.0.address`).
    pub key: String,
    /// What was expected, and what was found.
    pub message: String,
}

impl std::fmt::Display for ConfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.key.is_empty()) {
            (0, _) => write!(f, "{}: {}", self.file, self.message),
            (_, true) => write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message),
            (_, false) => {
                write!(f, "{}:{}:{}: {}: {}", self.file, self.line, self.col, self.key, self.message)
            }
        }
    }
}

impl std::error::Error for ConfError {}

/// Limits and timeouts of a service (libproxy's own keys, under `limits:`). The defaults are the
/// core's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head in bytes.
    pub max_header_bytes: usize,
    /// Most request header fields.
    pub max_headers: usize,
    /// Longest request target.
    pub max_uri_len: usize,
    /// Most connections open at once on the service (0: no cap).
    pub max_connections: usize,
    /// The whole request head must arrive within this.
    pub header_timeout_ms: u64,
    /// How long an idle keep-alive connection waits for its next request.
    pub keepalive_timeout_ms: u64,
    /// Longest pause between two reads of a request body.
    pub body_idle_timeout_ms: u64,
    /// Longest time one write to the client may take.
    pub write_timeout_ms: u64,
    /// SETTINGS_MAX_CONCURRENT_STREAMS announced to HTTP/2 clients.
    pub h2_max_concurrent_streams: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE announced to HTTP/2 clients.
    pub h2_max_header_list_size: u32,
    /// How long an idle pooled upstream connection is kept (backends of `upstreams`).
    pub pool_idle_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        let http = crate::app::HttpServerOptions::default();
        let h2 = crate::protocol::h2::H2Options::default();
        let peer = crate::upstream::PeerOptions::default();
        Limits {
            max_header_bytes: http.limits.max_header_bytes,
            max_headers: http.limits.max_headers,
            max_uri_len: http.limits.max_uri_len,
            max_connections: 0,
            header_timeout_ms: http.header_timeout.as_millis() as u64,
            keepalive_timeout_ms: http.keepalive_timeout.as_millis() as u64,
            body_idle_timeout_ms: http.body_idle_timeout.as_millis() as u64,
            write_timeout_ms: http.write_timeout.as_millis() as u64,
            h2_max_concurrent_streams: h2.max_concurrent_streams,
            h2_max_header_list_size: h2.max_header_list_size,
            pool_idle_timeout_ms: peer.idle_timeout.map_or(0, |d| d.as_millis() as u64),
        }
    }
}

impl Limits {
    /// Applies these limits to a service's downstream and HTTP/2 settings.
    pub fn apply(&self, http: &mut crate::app::HttpServerOptions, h2: &mut crate::protocol::h2::H2Options) {
        http.limits.max_header_bytes = self.max_header_bytes;
        http.limits.max_headers = self.max_headers;
        http.limits.max_uri_len = self.max_uri_len;
        http.header_timeout = Duration::from_millis(self.header_timeout_ms);
        http.keepalive_timeout = Duration::from_millis(self.keepalive_timeout_ms);
        http.body_idle_timeout = Duration::from_millis(self.body_idle_timeout_ms);
        http.write_timeout = Duration::from_millis(self.write_timeout_ms);
        h2.max_concurrent_streams = self.h2_max_concurrent_streams;
        h2.max_header_list_size = self.h2_max_header_list_size;
    }
}

/// Where a listener listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `127.0.0.1:8080`, `[::1]:0`.
    Tcp(std::net::SocketAddr),
    /// `unix:/run/proxy.sock`.
    Unix(PathBuf),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "{a}"),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// One listener of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConf {
    /// Where it listens.
    pub address: Address,
    /// Certificate chain and key files (PEM) of a TLS listener.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// One service's settings, by the name the host gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConf {
    /// The service's name.
    pub name: String,
    /// Worker threads (default: the top-level `threads`).
    pub threads: usize,
    /// Work-stealing runtime (default: the top-level `work_stealing`).
    pub work_stealing: bool,
    /// Only HTTP/2 on plaintext listeners (h2c by prior knowledge); default: HTTP/1.1 and h2c.
    pub h2_only: bool,
    /// Limits (default: the top-level `limits`, key by key).
    pub limits: Limits,
    /// Listeners bound (or inherited) when the host applies the configuration to the service.
    pub listeners: Vec<ListenerConf>,
}

/// An upstream group of backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConf {
    /// The group's name.
    pub name: String,
    /// How a backend is chosen.
    pub selection: Algorithm,
    /// Backends: address and weight.
    pub backends: Vec<(String, u32)>,
}

/// The whole configuration, every key with its effective value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileConf {
    /// The file it was read from (None: defaults only).
    pub path: Option<PathBuf>,
    /// The configuration format's version: 1.
    pub version: u64,
    /// Run in the background.
    pub daemon: bool,
    /// Where a daemon's stdout and stderr go (None: /dev/null once detached).
    pub error_log: Option<PathBuf>,
    /// The pid file written when the server starts (in daemon mode, or when the file names one),
    /// removed on exit.
    pub pid_file: PathBuf,
    /// The Unix socket the listening sockets are handed over on during an upgrade.
    pub upgrade_sock: PathBuf,
    /// The user to run as once the listeners are bound.
    pub user: Option<String>,
    /// The group to run as once the listeners are bound.
    pub group: Option<String>,
    /// Worker threads per service.
    pub threads: usize,
    /// Work-stealing runtimes.
    pub work_stealing: bool,
    /// How long in-flight requests get after a graceful shutdown or upgrade begins.
    pub grace_period_seconds: u64,
    /// After the grace period, how long the runtimes get to stop.
    pub graceful_shutdown_timeout_seconds: u64,
    /// Idle upstream connections kept per service.
    pub upstream_keepalive_pool_size: usize,
    /// Most retries of a request whose attempt failed in a retryable way.
    pub max_retries: usize,
    /// CA certificates (PEM) trusted for TLS upstreams instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// How many times (one per 100 ms) the old process tries the upgrade socket, and how many
    /// 100 ms periods the new one waits on it.
    pub upgrade_sock_connect_accept_max_retries: usize,
    /// Most detailed log level produced.
    pub log_level: LogLevel,
    /// Default limits of every service.
    pub limits: Limits,
    /// Per-service settings.
    pub services: Vec<ServiceConf>,
    /// Upstream groups.
    pub upstreams: Vec<UpstreamConf>,
}

impl Default for FileConf {
    fn default() -> Self {
        FileConf {
            path: None,
            version: 1,
            daemon: false,
            error_log: None,
            pid_file: PathBuf::from("/tmp/libproxy.pid"),
            upgrade_sock: PathBuf::from("/tmp/libproxy_upgrade.sock"),
            user: None,
            group: None,
            threads: 1,
            work_stealing: true,
            grace_period_seconds: 30,
            graceful_shutdown_timeout_seconds: 1,
            upstream_keepalive_pool_size: crate::connector::ConnectionPool::DEFAULT_MAX_IDLE,
            max_retries: crate::proxy::ProxyOptions::default().max_retries,
            ca_file: None,
            upgrade_sock_connect_accept_max_retries: 50,
            log_level: LogLevel::Info,
            limits: Limits::default(),
            services: Vec::new(),
            upstreams: Vec::new(),
        }
    }
}

/// What loading found besides the configuration: unknown keys (warnings).
pub type Warnings = Vec<String>;

impl FileConf {
    /// Reads and checks `path`. With `strict` (`-t`) an unknown key is an error, else a warning.
    pub fn load(path: &Path, strict: bool) -> Result<(FileConf, Warnings), ConfError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfError {
            file: name.clone(),
            line: 0,
            col: 0,
            key: String::new(),
            message: format!("cannot read the configuration file: {e}"),
        })?;
        let (mut conf, warnings) = Self::parse(&name, &text, strict)?;
        conf.path = Some(path.to_owned());
        Ok((conf, warnings))
    }

    /// Parses configuration text; `file` names it in errors.
    pub fn parse(file: &str, text: &str, strict: bool) -> Result<(FileConf, Warnings), ConfError> {
        decode::decode(file, text, strict)
    }

    /// The service named `name`, if the file configures one.
    pub fn service(&self, name: &str) -> Option<&ServiceConf> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The grace period.
    pub fn grace_period(&self) -> Duration {
        Duration::from_secs(self.grace_period_seconds)
    }

    /// Every key with its effective value as text, in a fixed order: the defaults filled in,
    /// per-service values resolved. Paths as optional values are empty when unset.
    pub fn entries(&self) -> Vec<(String, String)> {
        fn opt(p: &Option<impl std::fmt::Display>) -> String {
            p.as_ref().map(|v| v.to_string()).unwrap_or_default()
        }
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        let mut out: Vec<(String, String)> = vec![
            ("version".into(), self.version.to_string()),
            ("daemon".into(), self.daemon.to_string()),
            ("error_log".into(), path(&self.error_log)),
            ("pid_file".into(), self.pid_file.display().to_string()),
            ("upgrade_sock".into(), self.upgrade_sock.display().to_string()),
            ("user".into(), opt(&self.user)),
            ("group".into(), opt(&self.group)),
            ("threads".into(), self.threads.to_string()),
            ("work_stealing".into(), self.work_stealing.to_string()),
            ("grace_period_seconds".into(), self.grace_period_seconds.to_string()),
            ("graceful_shutdown_timeout_seconds".into(), self.graceful_shutdown_timeout_seconds.to_string()),
            ("upstream_keepalive_pool_size".into(), self.upstream_keepalive_pool_size.to_string()),
            ("max_retries".into(), self.max_retries.to_string()),
            ("ca_file".into(), path(&self.ca_file)),
            (
                "upgrade_sock_connect_accept_max_retries".into(),
                self.upgrade_sock_connect_accept_max_retries.to_string(),
            ),
            ("log_level".into(), decode::level_name(self.log_level).into()),
        ];
        limits_entries("limits", &self.limits, &mut out);
        for s in &self.services {
            let p = format!("services.{}", s.name);
            out.push((format!("{p}.threads"), s.threads.to_string()));
            out.push((format!("{p}.work_stealing"), s.work_stealing.to_string()));
            out.push((format!("{p}.h2_only"), s.h2_only.to_string()));
            limits_entries(&format!("{p}.limits"), &s.limits, &mut out);
            for (i, l) in s.listeners.iter().enumerate() {
                out.push((format!("{p}.listeners.{i}.address"), l.address.to_string()));
                if let Some((cert, key)) = &l.tls {
                    out.push((format!("{p}.listeners.{i}.tls.cert_file"), cert.display().to_string()));
                    out.push((format!("{p}.listeners.{i}.tls.key_file"), key.display().to_string()));
                }
            }
        }
        for u in &self.upstreams {
            let p = format!("upstreams.{}", u.name);
            out.push((format!("{p}.selection"), decode::algorithm_name(u.selection).into()));
            for (i, (addr, weight)) in u.backends.iter().enumerate() {
                out.push((format!("{p}.backends.{i}.address"), addr.clone()));
                out.push((format!("{p}.backends.{i}.weight"), weight.to_string()));
            }
        }
        out
    }

    /// What `-t` checks beyond the syntax: every TLS listener's certificate and key load and
    /// match, and the CA file holds certificates. The error names the key and the file.
    pub fn check_files(&self) -> Result<(), String> {
        for s in &self.services {
            for (i, l) in s.listeners.iter().enumerate() {
                if let Some((cert, key)) = &l.tls {
                    crate::tls::TlsSettings::from_pem_files(cert, key)
                        .and_then(|t| t.build())
                        .map_err(|e| format!("services.{}.listeners.{i}.tls: {e}", s.name))?;
                }
            }
        }
        if let Some(ca) = &self.ca_file {
            use rustls_pki_types::pem::PemObject;
            let pem = std::fs::read(ca).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
            let n = rustls_pki_types::CertificateDer::pem_slice_iter(&pem).filter(|c| c.is_ok()).count();
            if n == 0 {
                return Err(format!("ca_file {}: no PEM certificate in it", ca.display()));
            }
        }
        Ok(())
    }

    /// The effective value of `key` (a dotted path as [`Self::entries`] names it).
    pub fn get(&self, key: &str) -> Option<String> {
        self.entries().into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

fn limits_entries(prefix: &str, l: &Limits, out: &mut Vec<(String, String)>) {
    let items: [(&str, u64); 11] = [
        ("max_header_bytes", l.max_header_bytes as u64),
        ("max_headers", l.max_headers as u64),
        ("max_uri_len", l.max_uri_len as u64),
        ("max_connections", l.max_connections as u64),
        ("header_timeout_ms", l.header_timeout_ms),
        ("keepalive_timeout_ms", l.keepalive_timeout_ms),
        ("body_idle_timeout_ms", l.body_idle_timeout_ms),
        ("write_timeout_ms", l.write_timeout_ms),
        ("h2_max_concurrent_streams", l.h2_max_concurrent_streams as u64),
        ("h2_max_header_list_size", l.h2_max_header_list_size as u64),
        ("pool_idle_timeout_ms", l.pool_idle_timeout_ms),
    ];
    out.extend(items.iter().map(|(k, v)| (format!("{prefix}.{k}"), v.to_string())));
}

#[cfg(test)]
pub(crate) mod tests;
