//! What the command line asks of a process before it builds its server, in Pingora's order: load
//! the file; `-t` checks it; `-d` goes to the background; the background process detaches;
//! sockets from systemd and, with `-u`, from the running process are taken. A Rust host calls
//! [`startup`] itself; C, Python and Go hosts get it through `proxy_conf_from_args`.

use std::io;

use super::{Args, ConfError, FileConf, Warnings};
use crate::server::{daemon, upgrade};

/// What the process does next.
#[derive(Debug)]
pub enum Startup {
    /// Build and run the server with this configuration (boxed: the other answer is a number).
    Run(Box<FileConf>, Warnings),
    /// This is the foreground half of `-d`, or `-t` finished: exit with this status (the
    /// message for `-t` was printed).
    Exit(i32),
}

/// Why the process cannot go on.
#[derive(Debug)]
pub enum StartupError {
    /// The file: where and what.
    Config(ConfError),
    /// Starting the background process, or detaching in it.
    Daemon(io::Error),
    /// No listening sockets came from the running process (`-u`).
    Upgrade(io::Error),
    /// The sockets systemd passed could not be taken.
    Systemd(io::Error),
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartupError::Config(e) => write!(f, "{e}"),
            StartupError::Daemon(e) => write!(f, "daemon: {e}"),
            StartupError::Upgrade(e) => write!(f, "{e}"),
            StartupError::Systemd(e) => write!(f, "sockets from systemd: {e}"),
        }
    }
}

/// Does what `args` ask (see the module). `-t` prints its verdict (stdout when the file and its
/// certificates are good, stderr otherwise) and answers [`Startup::Exit`] with 0 or 1; the
/// foreground process of `-d` answers [`Startup::Exit`] with the background one's status once it
/// serves or failed.
pub fn startup(args: &Args) -> Result<Startup, StartupError> {
    let loaded = match &args.conf {
        Some(path) => FileConf::load(path, args.test),
        None => Ok((FileConf::default(), Vec::new())),
    };
    if args.test {
        return Ok(Startup::Exit(test(loaded)));
    }
    let (conf, warnings) = loaded.map_err(StartupError::Config)?;
    if (args.daemon || conf.daemon) && !daemon::is_daemon_child() {
        return daemon::spawn_and_wait().map(Startup::Exit).map_err(StartupError::Daemon);
    }
    if daemon::is_daemon_child() {
        daemon::detach(conf.error_log.as_deref()).map_err(StartupError::Daemon)?;
    }
    upgrade::inherit_systemd().map_err(StartupError::Systemd)?;
    if args.upgrade {
        upgrade::receive_listeners(&conf.upgrade_sock, conf.upgrade_sock_connect_accept_max_retries)
            .map_err(StartupError::Upgrade)?;
    }
    Ok(Startup::Run(Box::new(conf), warnings))
}

/// `-t`: prints the verdict and returns the exit status.
fn test(loaded: Result<(FileConf, Warnings), ConfError>) -> i32 {
    let verdict = loaded.map_err(|e| e.to_string()).and_then(|(c, _)| c.check_files().map(|()| c));
    match verdict {
        Ok(c) => {
            let file = c.path.as_ref().map_or("(no file: defaults)".into(), |p| p.display().to_string());
            println!("{file}: configuration OK");
            0
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("configuration test failed");
            1
        }
    }
}
