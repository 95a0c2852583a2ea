//! Where compression meets the phases: an upstream body in a coding is decoded before the
//! response filters (so they see identity bytes), and the response is encoded after them (so the
//! client gets what it accepts). None of this runs while the service leaves compression off and no
//! hook asked for it: the exchange checks one flag and one pointer.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_ENCODING};
use http::{Method, StatusCode};

use super::{HttpProxy, ProxyHttp, Session};
use crate::compression::{
    compressible, mark_decoded, mark_encoded, merge_vary, negotiate, Algorithm, BombError,
    CompressionOverride, Decoder, Encoder,
};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::http::server::BodyHint;
use crate::protocol::http::{has_token, list_elements, ResponseHead};

/// One request's compression state: what hooks asked for, and the coders of its response.
#[derive(Debug, Default)]
pub(crate) struct Coding {
    pub(crate) wish: CompressionOverride,
    decoder: Option<Decoder>,
    encoder: Option<Encoder>,
    /// The head of a response being decoded, held until its first decoded bytes: a bomb found in
    /// them is then still answered with a 502 instead of a cut response.
    held: Option<(ResponseHead, BodyHint)>,
}

fn bomb(e: BombError) -> Box<Error> {
    Error::upstream(ErrorKind::InvalidHttp(502), "decoding the upstream response body").with_cause(e)
}

/// A coder that could not be set up or could not encode (out of memory inside zstd): the
/// proxy's fault, not the upstream's.
fn coder_failed(e: std::io::Error) -> Box<Error> {
    Error::internal("compressing or decompressing the response body").with_cause(e)
}

impl<H: ProxyHttp> HttpProxy<H> {
    /// Whether compression takes part in this response at all.
    pub(super) fn codes(&self, session: &Session) -> bool {
        self.options.compression.active() || session.coding.is_some()
    }

    /// Before the response filters: sets up decoding of a body in one coding we can undo.
    pub(super) fn decode_head(&self, session: &mut Session, h: &mut ResponseHead) -> Result<()> {
        // A retried attempt (a hook may allow one while a decoded head is still held) starts
        // with fresh coders: the new response may be coded differently or not at all.
        if let Some(c) = session.coding.as_mut() {
            (c.decoder, c.encoder, c.held) = (None, None, None);
        }
        let s = &self.options.compression;
        let no_body = session.req.method == Method::HEAD
            || h.status == StatusCode::NO_CONTENT
            || h.status == StatusCode::NOT_MODIFIED;
        // A range of a coded body is no stream a decoder can start on, and no-transform forbids
        // handing on anything but the origin's bytes (RFC 9111 §5.2.2.6).
        let untouchable =
            h.status == StatusCode::PARTIAL_CONTENT || has_token(&h.headers, &CACHE_CONTROL, "no-transform");
        if !s.decompress_upstream || no_body || untouchable {
            return Ok(());
        }
        // Only a single coding: a stack of them (`gzip, br`) is rare enough to pass as it is.
        let a = {
            let mut codings = list_elements(&h.headers, &CONTENT_ENCODING).filter(|c| !c.is_empty());
            match (codings.next().and_then(Algorithm::from_token), codings.next()) {
                (Some(a), None) => a,
                _ => return Ok(()),
            }
        };
        let d = Decoder::new(a, s.max_ratio, s.max_decoded).map_err(coder_failed)?;
        mark_decoded(&mut h.headers);
        session.coding.get_or_insert_default().decoder = Some(d);
        Ok(())
    }

    /// After the response filters: chooses the coding for the client and rewrites the head.
    pub(super) fn encode_head(&self, session: &mut Session, h: &mut ResponseHead) -> Result<()> {
        let s = &self.options.compression;
        let wish = session.coding.as_ref().map(|c| c.wish).unwrap_or_default();
        if !wish.enabled(s) || compressible(&session.req, h, s).is_err() {
            return Ok(());
        }
        // Whether or not this client gets a coding, the next one may: caches must key on it.
        merge_vary(&mut h.headers);
        let Some(a) = negotiate(&session.req.headers, wish.algorithms(s)) else { return Ok(()) };
        let e = Encoder::new(a, wish.level(s, a)).map_err(coder_failed)?;
        mark_encoded(&mut h.headers, a);
        session.coding.get_or_insert_default().encoder = Some(e);
        Ok(())
    }

    /// Sends the head, or holds it while the body is being decoded.
    pub(super) async fn send_coded_head(
        &self,
        session: &mut Session,
        h: ResponseHead,
        hint: BodyHint,
    ) -> Result<()> {
        match &mut session.coding {
            Some(c) if c.decoder.is_some() && hint != BodyHint::None => {
                c.held = Some((h, hint));
                Ok(())
            }
            _ => session.send_head(h, hint).await,
        }
    }

    /// Before the body filters: the decoded bytes of an upstream piece, and at the end what the
    /// decoder still held. `None` when a piece decoded to nothing yet.
    pub(super) fn decode_body(
        &self,
        session: &mut Session,
        data: Option<Bytes>,
        end: bool,
    ) -> Result<Option<Bytes>> {
        let Some(c) = session.coding.as_mut() else { return Ok(data) };
        let Some(d) = c.decoder.as_mut() else { return Ok(data) };
        let mut out = match &data {
            Some(piece) => d.decode(piece).map_err(bomb)?,
            None => Bytes::new(),
        };
        if end {
            let tail = c.decoder.take().map_or(Ok(Bytes::new()), Decoder::finish).map_err(bomb)?;
            out = join(out, tail);
        }
        Ok((!out.is_empty()).then_some(out))
    }

    /// After the body filters: the encoded, flushed bytes of a piece (and the coding's end with
    /// the last one); sends a held head first.
    pub(super) async fn encode_body(
        &self,
        session: &mut Session,
        data: Option<Bytes>,
        end: bool,
    ) -> Result<Option<Bytes>> {
        let Some(c) = session.coding.as_mut() else { return Ok(data) };
        let held = if data.as_ref().is_some_and(|d| !d.is_empty()) || end { c.held.take() } else { None };
        let out = match c.encoder.as_mut() {
            Some(e) => {
                let mut out = match &data {
                    Some(piece) => e.encode(piece).map_err(coder_failed)?,
                    None => Bytes::new(),
                };
                if end {
                    let tail =
                        c.encoder.take().map_or(Ok(Bytes::new()), Encoder::finish).map_err(coder_failed)?;
                    out = join(out, tail);
                }
                Some(out)
            }
            None => data,
        };
        if let Some((h, hint)) = held {
            session.send_head(h, hint).await?;
        }
        Ok(out)
    }
}

fn join(a: Bytes, b: Bytes) -> Bytes {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => a,
        (true, _) => b,
        _ => [a, b].concat().into(),
    }
}

impl Session {
    /// This request's compression, for a hook to change before the response head goes out (in
    /// `response_filter` at the latest): enable or disable it, the codings offered, their levels.
    /// Unset fields keep the service's settings.
    pub fn compression_mut(&mut self) -> &mut CompressionOverride {
        &mut self.coding.get_or_insert_default().wish
    }
}
