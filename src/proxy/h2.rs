//! HTTP/2 streams entering the proxy: each becomes a session exactly like an HTTP/1 request (the
//! phases see `version == HTTP/2`), with `Host` taken from `:authority`.

use std::sync::Arc;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::RecvStream;
use http::{Method, Response, StatusCode};

use super::downstream::Downstream;
use super::{error_page, underscore_fields, HttpProxy, ProxyHttp, Session};
use crate::protocol::h1::framing::{declared_length, set_content_length};
use crate::protocol::h1::BodyFraming;
use crate::protocol::h2::request_head;
use crate::protocol::stream::SocketAddr;
use crate::server::ShutdownWatch;

impl<H: ProxyHttp> HttpProxy<H> {
    pub(crate) async fn serve_h2_stream(
        self: &Arc<Self>,
        req: http::Request<RecvStream>,
        mut respond: SendResponse<Bytes>,
        (client, local): (Option<SocketAddr>, Option<SocketAddr>),
        shutdown: &ShutdownWatch,
    ) {
        let (parts, body) = req.into_parts();
        let head_request = parts.method == Method::HEAD;
        let mut head = match request_head(parts) {
            Ok(h) => h,
            Err(e) => return reject(&mut respond, e.status, head_request),
        };
        if head.method == Method::CONNECT && !self.server.allow_connect {
            return reject(&mut respond, 405, false);
        }
        if let Err(e) = underscore_fields(self.server.underscore_fields, &mut head.headers) {
            return reject(&mut respond, e.status, head_request);
        }
        // h2 has already checked Content-Length against the DATA frames it announces, and that
        // all its values are one number; `03` and `3` still go upstream as one canonical value.
        let declared = declared_length(&head.headers);
        if let Some(n) = declared {
            set_content_length(&mut head.headers, n);
        }
        let framing = if body.is_end_stream() {
            BodyFraming::Empty
        } else {
            match declared {
                Some(n) => BodyFraming::Length(n),
                None => BodyFraming::Chunked,
            }
        };
        let mut session = Session::new(head, framing, client, local, true);
        let mut ds = Downstream::h2(body, respond);
        self.handle(&mut session, &mut ds, shutdown).await;
    }
}

/// Answers a stream we will not process with an error page (no body for HEAD).
fn reject(respond: &mut SendResponse<Bytes>, status: u16, head_request: bool) {
    let (head, body) = error_page(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST));
    let mut resp = Response::new(());
    *resp.status_mut() = head.status;
    *resp.headers_mut() = head.headers.into_map();
    if head_request {
        let _ = respond.send_response(resp, true);
        return;
    }
    resp.headers_mut().insert(http::header::CONTENT_LENGTH, body.len().into());
    if let Ok(mut send) = respond.send_response(resp, false) {
        let _ = send.send_data(body, true);
    }
}
