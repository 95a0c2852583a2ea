//! An origin that can be switched off (its port refuses connections, its open connections are
//! cut) and on again at the same address: a backend failing and recovering.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

pub struct SwitchOrigin {
    pub addr: SocketAddr,
    /// What every response body says.
    pub name: String,
    hits: Arc<AtomicUsize>,
    task: Option<JoinHandle<()>>,
}

impl SwitchOrigin {
    /// Starts answering every request with 200 and `name` as the body.
    pub async fn start(name: &str) -> SwitchOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut o = SwitchOrigin { addr, name: name.to_owned(), hits: Arc::default(), task: None };
        o.serve(listener);
        o
    }

    fn serve(&mut self, listener: TcpListener) {
        let (name, hits) = (self.name.clone(), self.hits.clone());
        self.task = Some(tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((s, _)) = listener.accept().await {
                conns.spawn(answer(s, name.clone(), hits.clone()));
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

    /// Requests answered so far (health probes included).
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
async fn answer(mut s: TcpStream, name: String, hits: Arc<AtomicUsize>) {
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
        let close = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase().contains("connection: close");
        buf.drain(..end);
        hits.fetch_add(1, Ordering::SeqCst);
        let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{name}", name.len());
        if s.write_all(resp.as_bytes()).await.is_err() || close {
            return;
        }
    }
}
