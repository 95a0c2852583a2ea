//! Wire protocols (Pingora's `protocols/`): the byte stream abstraction and the HTTP/1.1 codec.

pub mod h1;
pub mod stream;
