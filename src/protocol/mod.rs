//! Wire protocols (Pingora's `protocols/`): the byte stream abstraction and the HTTP/1.1 codec.

pub mod h1;
pub mod h2;
pub mod rewind;
pub mod stream;
