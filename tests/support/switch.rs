//! An origin that can be switched off (its port refuses connections, its open connections are
//! cut) and on again at the same address: a backend failing and recovering.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

pub struct SwitchOrigin {
    pub addr: SocketAddr,
    /// What every response body says.
    pub name: String,
    hits: Arc<AtomicUsize>,
    held: Arc<Notify>,
    task: Option<JoinHandle<()>>,
}

impl SwitchOrigin {
    /// Starts answering every request with 200 and `name` as the body; a request for `/hold`
    /// is answered only after [`SwitchOrigin::release`].
    pub async fn start(name: &str) -> SwitchOrigin {
        Self::start_at(name, "127.0.0.1:0".parse().unwrap()).await
    }

    /// [`SwitchOrigin::start`] at `addr` (any loopback address, a given port).
    pub async fn start_at(name: &str, addr: SocketAddr) -> SwitchOrigin {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut o = SwitchOrigin {
            addr,
            name: name.to_owned(),
            hits: Arc::default(),
            held: Arc::default(),
            task: None,
        };
        o.serve(listener);
        o
    }

    fn serve(&mut self, listener: TcpListener) {
        let (name, hits, held) = (self.name.clone(), self.hits.clone(), self.held.clone());
        self.task = Some(tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((s, _)) = listener.accept().await {
                conns.spawn(answer(s, name.clone(), hits.clone(), held.clone()));
                while conns.try_join_next().is_some() {}
            }
        }));
    }

    /// Stops listening and cuts every open connection.
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Listens again at the same address.
    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// Lets a held `/hold` request have its answer.
    pub fn release(&self) {
        self.held.notify_one();
    }

    /// Requests received so far (health probes included).
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for SwitchOrigin {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Answers bodiless requests on one connection until it closes.
async fn answer(mut s: TcpStream, name: String, hits: Arc<AtomicUsize>, held: Arc<Notify>) {
    let mut buf = Vec::new();
    loop {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let close = head.contains("connection: close");
        buf.drain(..end);
        hits.fetch_add(1, Ordering::SeqCst);
        if head.starts_with("get /hold ") {
            held.notified().await;
        }
        let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{name}", name.len());
        if s.write_all(resp.as_bytes()).await.is_err() || close {
            return;
        }
    }
}
