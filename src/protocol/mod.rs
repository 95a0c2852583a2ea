//! Wire protocols (Pingora's `protocols/`): the byte stream abstraction, the
//! protocol-neutral HTTP layer, and the HTTP/1.1 and HTTP/2 codecs.

pub(crate) mod buffers;
pub mod h1;
pub mod h2;
pub mod http;
pub(crate) mod peek;
pub mod proxy_protocol;
pub mod stream;
pub(crate) mod timer;
