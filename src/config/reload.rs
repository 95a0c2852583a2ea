//! What a reload (SIGHUP, `proxy_server_reload`) may change in a running server, and what needs
//! an upgrade instead: listeners, threads and everything baked into a service when it started
//! take a new process (`-u`), which a reload refuses with an error saying so. A TLS listener's
//! certificate and key are reloadable (the files are read again on every reload, so a renewed
//! certificate at the same path is picked up); whether a listener has TLS is not.

use std::path::PathBuf;

use super::{FileConf, UpstreamConf};
use crate::server::LogLevel;

/// The changes a reload applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadPlan {
    /// The new log level.
    pub log_level: LogLevel,
    /// Every upstream group with its new backends (names and selection unchanged).
    pub upstreams: Vec<UpstreamConf>,
    /// The new grace period and final timeout, for the next shutdown or upgrade.
    pub grace_period_seconds: u64,
    /// See [`FileConf::graceful_shutdown_timeout_seconds`].
    pub graceful_shutdown_timeout_seconds: u64,
    /// Every TLS listener's certificate and key files, by `services.NAME.listeners.I`.
    pub certificates: Vec<(String, PathBuf, PathBuf)>,
}

/// Checks that `new` differs from `current` only in what a reload can change, and says what to
/// apply. The error names the keys that differ and says an upgrade is needed for them.
pub fn reload_plan(current: &FileConf, new: &FileConf) -> Result<ReloadPlan, String> {
    // Compare everything but the reloadable keys: copy those over from `current`.
    let mut probe = new.clone();
    probe.path = current.path.clone();
    probe.log_level = current.log_level;
    probe.grace_period_seconds = current.grace_period_seconds;
    probe.graceful_shutdown_timeout_seconds = current.graceful_shutdown_timeout_seconds;
    let same_groups = new.upstreams.len() == current.upstreams.len()
        && new
            .upstreams
            .iter()
            .zip(&current.upstreams)
            .all(|(n, c)| n.name == c.name && n.selection == c.selection);
    if same_groups {
        probe.upstreams = current.upstreams.clone();
    }
    let mut certificates = Vec::new();
    for (ps, cs) in probe.services.iter_mut().zip(&current.services) {
        for (i, (pl, cl)) in ps.listeners.iter_mut().zip(&cs.listeners).enumerate() {
            if let (Some(files), Some(old)) = (pl.tls.as_mut(), cl.tls.as_ref()) {
                certificates.push((
                    format!("services.{}.listeners.{i}", ps.name),
                    files.0.clone(),
                    files.1.clone(),
                ));
                *files = old.clone();
            }
        }
    }
    if probe != *current {
        let (old, new_entries) = (current.entries(), probe.entries());
        let mut changed: Vec<&str> = new_entries
            .iter()
            .filter(|e| !old.contains(e))
            .chain(old.iter().filter(|e| !new_entries.contains(e)))
            .map(|(k, _)| k.as_str())
            .collect();
        changed.dedup();
        changed.truncate(5);
        let what = if !same_groups {
            "upstream groups added, removed or given another selection".to_owned()
        } else {
            changed.join(", ")
        };
        return Err(format!(
            "reload refused: {what} changed; listeners, threads, limits and process settings need an \
             upgrade (start the new process with -u, then SIGQUIT the running one)"
        ));
    }
    Ok(ReloadPlan {
        log_level: new.log_level,
        upstreams: new.upstreams.clone(),
        grace_period_seconds: new.grace_period_seconds,
        graceful_shutdown_timeout_seconds: new.graceful_shutdown_timeout_seconds,
        certificates,
    })
}
