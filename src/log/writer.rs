//! A log writer thread: workers hand it records over a bounded channel and never touch the file.
//! It formats, buffers, and flushes whenever the channel runs dry, so a quiet proxy's lines are on
//! disk at once and a busy one writes in large blocks. Reopening (log rotation) is a message in
//! the same channel: every line sent before it goes to the old file, every line after to the new
//! one, and none is lost.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use super::access::{AccessFormat, AccessRecord};
use crate::server::{LogLevel, Logger};

/// How long the writer naps after running dry before it waits on the channel again. While it naps
/// a sender hands over a record without waking it (a futex call per request otherwise, once the
/// writer keeps up); a line reaches the file at most this much later.
const NAP: Duration = Duration::from_millis(10);

/// Records waiting for the writer before senders block: a burst of this many requests costs the
/// workers nothing; past it they wait for the disk, as nginx's workers do on their own writes.
const QUEUE: usize = 16 * 1024;

/// Where lines go.
#[derive(Debug, Clone)]
pub enum LogTarget {
    /// Appended to a file (created if missing), reopened on request.
    File(PathBuf),
    /// Each line to a log sink at a level.
    Logger(Logger, LogLevel),
}

enum Msg {
    Access(Box<AccessRecord>),
    Text(String),
    Reopen(SyncSender<io::Result<()>>),
    Flush(SyncSender<()>),
}

/// The sending side of a writer thread; dropping the last one drains the queue and joins it.
pub struct LogWriter {
    tx: Option<SyncSender<Msg>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    target: LogTarget,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter").field("target", &self.target).finish()
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl LogWriter {
    /// Opens `target` (a file that cannot be opened fails here) and starts the thread; access
    /// records are written in `format`.
    pub fn start(target: LogTarget, format: AccessFormat) -> io::Result<Arc<Self>> {
        let file = match &target {
            LogTarget::File(p) => Some(open(p)?),
            LogTarget::Logger(..) => None,
        };
        let (tx, rx) = sync_channel(QUEUE);
        let t = target.clone();
        let thread =
            std::thread::Builder::new().name("proxy-log".into()).spawn(move || run(rx, t, file, format))?;
        Ok(Arc::new(LogWriter { tx: Some(tx), thread: Mutex::new(Some(thread)), target }))
    }

    fn send(&self, m: Msg) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(m);
        }
    }

    /// Queues an access record (blocks only while the queue is full).
    pub fn access(&self, r: AccessRecord) {
        self.send(Msg::Access(Box::new(r)));
    }

    /// Queues a finished line (without its newline).
    pub fn text(&self, line: String) {
        self.send(Msg::Text(line));
    }

    /// Reopens the file after the lines queued so far were written to the old one (log
    /// rotation: rename the file, then call this). Blocks until done; call it from a thread of
    /// the host's or a signal task, never from a request.
    pub fn reopen(&self) -> io::Result<()> {
        let (tx, rx) = sync_channel(1);
        self.send(Msg::Reopen(tx));
        rx.recv().unwrap_or(Ok(()))
    }

    /// Waits until every line queued so far is written out.
    pub fn flush(&self) {
        let (tx, rx) = sync_channel(1);
        self.send(Msg::Flush(tx));
        let _ = rx.recv();
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

fn run(rx: Receiver<Msg>, target: LogTarget, file: Option<File>, format: AccessFormat) {
    let mut out = file.map(|f| BufWriter::with_capacity(64 * 1024, f));
    let mut line = String::with_capacity(512);
    let mut napped = false;
    loop {
        let msg = match rx.try_recv() {
            Ok(m) => m,
            Err(TryRecvError::Empty) => {
                // Dry: what is buffered goes out, then a nap, and only a second dry spell in a
                // row waits on the channel (see NAP).
                if let Some(o) = &mut out {
                    let _ = o.flush();
                }
                if !napped {
                    napped = true;
                    std::thread::sleep(NAP);
                    continue;
                }
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        napped = false;
        line.clear();
        match msg {
            Msg::Access(r) => format.write(&r, &mut line),
            Msg::Text(t) => line = t,
            Msg::Reopen(ack) => {
                let r = match (&mut out, &target) {
                    (Some(o), LogTarget::File(p)) => o.flush().and_then(|()| open(p)).map(|f| {
                        *o = BufWriter::with_capacity(64 * 1024, f);
                    }),
                    _ => Ok(()),
                };
                let _ = ack.send(r);
                continue;
            }
            Msg::Flush(ack) => {
                if let Some(o) = &mut out {
                    let _ = o.flush();
                }
                let _ = ack.send(());
                continue;
            }
        }
        match (&mut out, &target) {
            (Some(o), _) => {
                line.push('\n');
                let _ = o.write_all(line.as_bytes());
            }
            (None, LogTarget::Logger(l, level)) => l.log(*level, &line),
            (None, LogTarget::File(_)) => {}
        }
    }
    if let Some(o) = &mut out {
        let _ = o.flush();
    }
}
