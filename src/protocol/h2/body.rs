//! Body I/O on upstream H2 streams (the `h2` crate's client side) with flow control.

use std::future::poll_fn;

use bytes::Bytes;
use h2::{RecvStream, SendStream};
use http::HeaderMap;

/// The next piece of a received body (`None` at its end), releasing its flow-control window so
/// the peer may send more: the window is what bounds our buffering.
pub async fn recv_data(body: &mut RecvStream) -> Result<Option<Bytes>, h2::Error> {
    match body.data().await {
        Some(Ok(d)) => {
            let _ = body.flow_control().release_capacity(d.len());
            Ok(Some(d))
        }
        Some(Err(e)) => Err(e),
        None => Ok(None),
    }
}

/// The trailers after a received body, if any.
pub async fn recv_trailers(body: &mut RecvStream) -> Result<Option<HeaderMap>, h2::Error> {
    body.trailers().await
}

/// Sends `data`, waiting for the peer's window as needed (backpressure rather than buffering).
pub async fn send_data(send: &mut SendStream<Bytes>, mut data: Bytes, end: bool) -> Result<(), h2::Error> {
    if data.is_empty() {
        if end {
            send.send_data(data, true)?;
        }
        return Ok(());
    }
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let granted = match poll_fn(|cx| send.poll_capacity(cx)).await {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(e),
            None => return Err(h2::Error::from(h2::Reason::CANCEL)),
        };
        if granted == 0 {
            continue;
        }
        let piece = data.split_to(granted.min(data.len()));
        send.send_data(piece, end && data.is_empty())?;
    }
    Ok(())
}
