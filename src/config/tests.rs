//! Every key round-trips from the file to its effective value; malformed files fail at their line.

use super::*;

/// A file setting every key to a value other than its default.
pub(crate) const FULL: &str = "\
version: 1
daemon: true
error_log: /tmp/lp-error.log
pid_file: /tmp/lp.pid
upgrade_sock: /tmp/lp-upgrade.sock
user: nobody
group: nogroup
threads: 3
work_stealing: false
grace_period_seconds: 7
graceful_shutdown_timeout_seconds: 2
upstream_keepalive_pool_size: 64
max_retries: 5
ca_file: /etc/ssl/certs/ca-certificates.crt
upgrade_sock_connect_accept_max_retries: 20
log_level: debug
limits:
  max_header_bytes: 16384
  max_headers: 50
  max_uri_len: 4096
  max_connections: 1000
  header_timeout_ms: 5000
  keepalive_timeout_ms: 20000
  body_idle_timeout_ms: 15000
  write_timeout_ms: 12000
  h2_max_concurrent_streams: 64
  h2_max_header_list_size: 32768
  pool_idle_timeout_ms: 30000
services:
  proxy:
    threads: 2
    work_stealing: true
    h2_only: true
    limits:
      max_headers: 60
    listeners:
      - address: 127.0.0.1:0
      - address: unix:/tmp/lp.sock
      - address: '[::1]:8443'
        tls:
          cert_file: /tmp/cert.pem
          key_file: /tmp/key.pem
upstreams:
  backend:
    selection: ketama
    backends:
      - 127.0.0.1:9000
      - address: 127.0.0.1:9001
        weight: 3
";

/// Every effective value FULL must produce, key by key.
pub(crate) const EXPECTED: &[(&str, &str)] = &[
    ("version", "1"),
    ("daemon", "true"),
    ("error_log", "/tmp/lp-error.log"),
    ("pid_file", "/tmp/lp.pid"),
    ("upgrade_sock", "/tmp/lp-upgrade.sock"),
    ("user", "nobody"),
    ("group", "nogroup"),
    ("threads", "3"),
    ("work_stealing", "false"),
    ("grace_period_seconds", "7"),
    ("graceful_shutdown_timeout_seconds", "2"),
    ("upstream_keepalive_pool_size", "64"),
    ("max_retries", "5"),
    ("ca_file", "/etc/ssl/certs/ca-certificates.crt"),
    ("upgrade_sock_connect_accept_max_retries", "20"),
    ("log_level", "debug"),
    ("limits.max_header_bytes", "16384"),
    ("limits.max_headers", "50"),
    ("limits.max_uri_len", "4096"),
    ("limits.max_connections", "1000"),
    ("limits.header_timeout_ms", "5000"),
    ("limits.keepalive_timeout_ms", "20000"),
    ("limits.body_idle_timeout_ms", "15000"),
    ("limits.write_timeout_ms", "12000"),
    ("limits.h2_max_concurrent_streams", "64"),
    ("limits.h2_max_header_list_size", "32768"),
    ("limits.pool_idle_timeout_ms", "30000"),
    ("services.proxy.threads", "2"),
    ("services.proxy.work_stealing", "true"),
    ("services.proxy.h2_only", "true"),
    // The service's limits start from the top-level ones, key by key.
    ("services.proxy.limits.max_header_bytes", "16384"),
    ("services.proxy.limits.max_headers", "60"),
    ("services.proxy.limits.max_uri_len", "4096"),
    ("services.proxy.limits.max_connections", "1000"),
    ("services.proxy.limits.header_timeout_ms", "5000"),
    ("services.proxy.limits.keepalive_timeout_ms", "20000"),
    ("services.proxy.limits.body_idle_timeout_ms", "15000"),
    ("services.proxy.limits.write_timeout_ms", "12000"),
    ("services.proxy.limits.h2_max_concurrent_streams", "64"),
    ("services.proxy.limits.h2_max_header_list_size", "32768"),
    ("services.proxy.limits.pool_idle_timeout_ms", "30000"),
    ("services.proxy.listeners.0.address", "127.0.0.1:0"),
    ("services.proxy.listeners.1.address", "unix:/tmp/lp.sock"),
    ("services.proxy.listeners.2.address", "[::1]:8443"),
    ("services.proxy.listeners.2.tls.cert_file", "/tmp/cert.pem"),
    ("services.proxy.listeners.2.tls.key_file", "/tmp/key.pem"),
    ("upstreams.backend.selection", "ketama"),
    ("upstreams.backend.backends.0.address", "127.0.0.1:9000"),
    ("upstreams.backend.backends.0.weight", "1"),
    ("upstreams.backend.backends.1.address", "127.0.0.1:9001"),
    ("upstreams.backend.backends.1.weight", "3"),
];

#[test]
fn every_key_round_trips() {
    let (c, warnings) = FileConf::parse("full.yaml", FULL, true).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let got = c.entries();
    let want: Vec<(String, String)> = EXPECTED.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(got, want);
    // And every value differs from the default (but the version, which has one value), so none
    // passes by accident.
    let defaults = FileConf::default();
    for (k, v) in EXPECTED.iter().filter(|(k, _)| *k != "version") {
        if let Some(d) = defaults.get(k) {
            assert_ne!(&d, v, "{k} is set to its default in FULL");
        }
    }
}

#[test]
fn defaults_without_a_file() {
    let (c, _) = FileConf::parse("empty.yaml", "", true).unwrap();
    assert_eq!(c, FileConf::default());
    assert_eq!(c.get("limits.header_timeout_ms").as_deref(), Some("10000"));
    assert_eq!(c.get("threads").as_deref(), Some("1"));
}

/// (file text, expected line, expected text in the message).
const MALFORMED: &[(&str, usize, &str)] = &[
    ("threads: 2\npid_file: \"/tmp/x\n", 2, "invalid YAML"),
    ("- a\n- b\n", 1, "expected a mapping of keys to values, found a list"),
    ("version: 1\nthreads: two\n", 2, "threads: expected a whole number from 1 to 1024, found \"two\""),
    ("threads: 0\n", 1, "threads: expected a whole number from 1 to 1024, found \"0\""),
    ("daemon: maybe\n", 1, "daemon: expected true or false, found \"maybe\""),
    ("version: 2\n", 1, "version: expected a whole number from 1 to 1, found \"2\""),
    ("\n\ngrace_period_seconds: -5\n", 3, "grace_period_seconds: expected a whole number from 0 to 86400"),
    (
        "services:\n  proxy:\n    listeners:\n      - address: nonsense\n",
        4,
        "services.proxy.listeners.0.address: expected an IP address with a port",
    ),
    (
        "services:\n  proxy:\n    listeners:\n      - address: 127.0.0.1:0\n        tls:\n          cert_file: c.pem\n",
        6,
        "services.proxy.listeners.0.tls.key_file: missing",
    ),
    (
        "upstreams:\n  b:\n    selection: fastest\n",
        3,
        "upstreams.b.selection: expected one of round_robin, random, least_outstanding, ketama, maglev",
    ),
    ("threads: 1\nthreads: 2\n", 2, "threads: duplicate key"),
    ("log_level: loud\n", 1, "log_level: expected one of error, warn, info, debug"),
    ("limits:\n  header_timeout_ms: 0\n", 2, "limits.header_timeout_ms: expected a whole number from 1"),
    ("services:\n  proxy:\n    listeners: 127.0.0.1:80\n", 3, "services.proxy.listeners: expected a list of listeners"),
    ("upstreams:\n  b:\n    backends:\n      - address: 1.2.3.4:80\n        weight: 0\n", 5, "weight: expected a whole number from 1"),
    // Strict (as under -t): an unknown key is an error.
    ("threads: 1\nthreds: 2\n", 2, "threds: unknown key"),
];

#[test]
fn malformed_files_name_the_line_and_key() {
    for (text, line, msg) in MALFORMED {
        let e = FileConf::parse("bad.yaml", text, true).unwrap_err();
        let shown = e.to_string();
        assert_eq!(e.line, *line, "{text:?}: {shown}");
        assert!(shown.starts_with(&format!("bad.yaml:{line}:")), "{text:?}: {shown}");
        assert!(shown.contains(msg), "{text:?}: {shown:?} lacks {msg:?}");
    }
}

#[test]
fn an_unknown_key_is_a_warning_unless_strict() {
    let (c, warnings) =
        FileConf::parse("w.yaml", "threads: 2\nthreds: 3\nlimits:\n  max_hdrs: 1\n", false).unwrap();
    assert_eq!(c.threads, 2);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("w.yaml:2:1: threds: unknown key"), "{warnings:?}");
    assert!(warnings[1].starts_with("w.yaml:4:3: limits.max_hdrs: unknown key"), "{warnings:?}");
}

#[test]
fn reload_takes_groups_and_log_level_and_refuses_listener_changes() {
    let (cur, _) = FileConf::parse("a", FULL, true).unwrap();
    let changed =
        FULL.replace("log_level: debug", "log_level: warn").replace("127.0.0.1:9001", "127.0.0.1:9002");
    let (new, _) = FileConf::parse("a", &changed, true).unwrap();
    let plan = reload_plan(&cur, &new).unwrap();
    assert_eq!(plan.log_level, LogLevel::Warn);
    assert_eq!(plan.upstreams[0].backends[1].0, "127.0.0.1:9002");

    for (from, to, key) in [
        ("- address: 127.0.0.1:0", "- address: 127.0.0.1:1", "services.proxy.listeners.0.address"),
        ("threads: 3", "threads: 4", "threads"),
        ("selection: ketama", "selection: maglev", "upstream groups"),
    ] {
        let (new, _) = FileConf::parse("a", &FULL.replace(from, to), true).unwrap();
        let e = reload_plan(&cur, &new).unwrap_err();
        assert!(e.contains(key) && e.contains("upgrade"), "{e}");
    }
}

#[test]
fn reload_takes_new_certificate_files_but_not_a_listener_gaining_tls() {
    let (cur, _) = FileConf::parse("a", FULL, true).unwrap();
    let (new, _) =
        FileConf::parse("a", &FULL.replace("cert_file: /tmp/cert.pem", "cert_file: /tmp/renewed.pem"), true)
            .unwrap();
    let plan = reload_plan(&cur, &new).unwrap();
    let renewed: Vec<_> = plan.certificates.iter().filter(|(_, c, _)| c.ends_with("renewed.pem")).collect();
    assert_eq!(renewed.len(), 1, "{:?}", plan.certificates);
    assert_eq!(renewed[0].0, "services.proxy.listeners.2");

    let plain = cur.services[0].listeners.iter().position(|l| l.tls.is_none()).unwrap();
    let mut gained = cur.clone();
    gained.services[0].listeners[plain].tls = Some(("/tmp/c.pem".into(), "/tmp/k.pem".into()));
    let e = reload_plan(&cur, &gained).unwrap_err();
    assert!(e.contains("upgrade"), "{e}");
}
