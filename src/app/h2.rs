//! The HTTP/2 side of HttpServerApp: our HTTP/2 server connection, one task per stream, GOAWAY on
//! graceful shutdown (naming the last stream processed) and on idle timeout.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};

use super::HttpServerApp;
use crate::boxed::in_box;
use crate::protocol::h2::server;
use crate::protocol::stream::SocketAddr;
use crate::server::{ShutdownState, ShutdownWatch};
use crate::tls::TlsFacts;

/// The client's and our address, and the connection's TLS facts: what every stream is told.
type Conn = ((Option<SocketAddr>, Option<SocketAddr>), Option<Arc<TlsFacts>>);

/// Serves an HTTP/2 connection whose first bytes are in `rbuf`, until it closes.
pub(crate) async fn serve<A, S>(app: Arc<A>, io: S, rbuf: BytesMut, conn_info: Conn, shutdown: ShutdownWatch)
where
    A: HttpServerApp,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let opts = app.server_options();
    let graceful = shutdown.reached(ShutdownState::Graceful);
    let on_stream = |head, stream| {
        let (app, (addrs, tls), shutdown) = (app.clone(), conn_info.clone(), shutdown.clone());
        let counted = app.metrics().map(|m| m.h2_stream());
        // Boxed once here, and built in its box (see `in_box`): tokio moves a spawned future
        // through several frames on its way into the task cell.
        tokio::spawn(Box::into_pin(in_box(|| async move {
            app.process_h2_stream(head, stream, addrs, tls, &shutdown).await;
            drop(counted);
        })));
    };
    let (header_timeout, idle) = (opts.header_timeout, opts.keepalive_timeout);
    server::serve(io, rbuf, app.h2_options(), header_timeout, idle, graceful, on_stream).await;
}
