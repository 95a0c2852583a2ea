//! The metrics endpoint (Pingora's Prometheus service): a background service of its own, with its
//! own listener and thread, answering `GET /metrics` with the registry's exposition. Scrapes are
//! rare and small, so each is one request on a connection closed after the answer; no request a
//! proxy service serves ever waits behind a scrape.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::registry::Registry;
use super::text::CONTENT_TYPE;
use crate::server::ShutdownWatch;
use crate::service::{background_service, BackgroundService, GenBackgroundService};

/// The longest request head a scraper may send.
const MAX_HEAD: usize = 8 * 1024;
/// How long a scraper may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `/metrics` on one TCP address.
#[derive(Debug)]
pub struct MetricsEndpoint {
    listener: Mutex<Option<std::net::TcpListener>>,
    registry: Arc<Registry>,
}

impl MetricsEndpoint {
    /// Binds `addr` now (so that a busy port fails here, and port 0 tells its number at once) and
    /// returns the service to add to the server with the address it listens on.
    pub fn bind(addr: &str, registry: Arc<Registry>) -> io::Result<(GenBackgroundService<Self>, SocketAddr)> {
        let l = std::net::TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        let local = l.local_addr()?;
        let ep = MetricsEndpoint { listener: Mutex::new(Some(l)), registry };
        Ok((background_service("metrics", ep), local))
    }
}

impl BackgroundService for MetricsEndpoint {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(l) = self.listener.lock().take() else { return };
        let Ok(l) = TcpListener::from_std(l) else { return };
        loop {
            let (conn, _) = tokio::select! {
                r = l.accept() => match r {
                    Ok(c) => c,
                    Err(_) => {
                        // Out of descriptors, say: wait rather than spin.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = shutdown.graceful() => return,
            };
            let registry = self.registry.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(HEAD_TIMEOUT * 2, answer(conn, &registry)).await;
            });
        }
    }
}

/// Reads one request head and answers it, then closes.
async fn answer(mut conn: TcpStream, registry: &Registry) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).await?;
            if n == 0 || head.len() + n > MAX_HEAD {
                return Err(io::ErrorKind::InvalidData.into());
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, io::Error>(())
    };
    tokio::time::timeout(HEAD_TIMEOUT, read).await??;
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split(|b| *b == b'?').next().unwrap_or_default();
    let (status, ctype, body) = match (method, path) {
        (b"GET", b"/metrics") => ("200 OK", CONTENT_TYPE, registry.render()),
        (_, b"/metrics") => ("405 Method Not Allowed", "text/plain", "only GET is served\n".to_string()),
        _ => ("404 Not Found", "text/plain", "metrics are at /metrics\n".to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await
}
