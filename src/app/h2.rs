//! The HTTP/2 side of HttpServerApp: handshake, then one task per stream, with GOAWAY on graceful
//! shutdown (h2 sends the last processed stream id) and on idle timeout.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::HttpServerApp;
use crate::boxed::in_box;
use crate::protocol::stream::SocketAddr;
use crate::server::{ShutdownState, ShutdownWatch};
use crate::tls::TlsFacts;

/// The client's and our address, and the connection's TLS facts: what every stream is told.
type Conn = ((Option<SocketAddr>, Option<SocketAddr>), Option<Arc<TlsFacts>>);

/// Serves an HTTP/2 connection until it closes.
pub(crate) async fn serve<A, S>(app: Arc<A>, io: S, conn_info: Conn, shutdown: ShutdownWatch)
where
    A: HttpServerApp,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let opts = app.server_options();
    let handshake = app.h2_options().server().handshake::<_, bytes::Bytes>(io);
    let mut conn = match tokio::time::timeout(opts.header_timeout, handshake).await {
        Ok(Ok(c)) => c,
        _ => return,
    };
    let idle = opts.keepalive_timeout;
    let mut going_away = false;
    // Made once: a fresh one per accepted stream would subscribe to the watch (and drop the
    // subscription) for every request.
    let mut graceful = std::pin::pin!(shutdown.reached(ShutdownState::Graceful));
    loop {
        let accepted = tokio::select! {
            biased;
            r = conn.accept() => r,
            _ = &mut graceful, if !going_away => {
                conn.graceful_shutdown();
                going_away = true;
                continue;
            }
            // Lazy: select! builds every branch's future even when its condition is false, and a
            // timer read the clock and the runtime's handle for each accepted stream.
            _ = async { tokio::time::sleep(idle).await }, if !going_away && !conn.has_streams() => {
                conn.graceful_shutdown();
                going_away = true;
                continue;
            }
        };
        match accepted {
            Some(Ok((req, respond))) => {
                let (app, (addrs, tls), shutdown) = (app.clone(), conn_info.clone(), shutdown.clone());
                let stream = app.metrics().map(|m| m.h2_stream());
                // Boxed once here, and built in its box (see `in_box`): tokio moves a spawned
                // future through several frames on its way into the task cell.
                tokio::spawn(Box::into_pin(in_box(|| async move {
                    app.process_h2_stream(req, respond, addrs, tls, &shutdown).await;
                    drop(stream);
                })));
            }
            // A protocol error ends the connection (h2 already sent GOAWAY); EOF ends it too.
            Some(Err(_)) | None => break,
        }
    }
}
