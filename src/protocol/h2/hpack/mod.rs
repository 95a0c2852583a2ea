//! HPACK (RFC 7541) for our HTTP/2 server codec: a decoder with the full dynamic table for request
//! headers, and an encoder for responses that never indexes (so it keeps no table, sends no size
//! updates, and spends no CPU on Huffman).

mod decoder;
mod encoder;
mod huffman;
mod table;
#[cfg(test)]
mod tests;

pub use decoder::{DecodeError, Decoder};
pub use encoder::Encoder;
