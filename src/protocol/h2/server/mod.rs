//! Our own server side of HTTP/2 (RFC 9113): one driver task per connection that reads frames
//! and writes the streams' output, and a handle per stream for the request's task. The h2
//! crate served this before; it spent about as many instructions per request as the rest of the
//! proxy (frames moved by value through queues, a `HeaderMap` built for every request head and
//! another for every response), where here a request's fields go from the HPACK decoder straight
//! into the borrowed form an HTTP/1 upstream gets, and a response head is encoded straight from
//! ours into the connection's output.
//!
//! The upstream (client) side stays on h2.

mod conn;
mod frame;
mod request;
mod state;
mod stream;

pub use conn::serve;
pub use frame::Reason;
pub use request::{Intake, Refusal};
pub use stream::{encode_head, encode_trailers, StreamError, StreamHandle};
