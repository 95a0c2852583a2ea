//! Logs (nginx's `access_log` and `error_log`): one access line per request, written by a thread
//! of its own from records the workers queue ([`LogWriter`]), and the rate-limited error log of
//! the 5xx responses the proxy made itself ([`ErrorLog`]).

mod access;
mod error_log;
mod time;
mod writer;

pub use access::{AccessFormat, AccessRecord, COMBINED};
pub use error_log::{ErrorLog, RateLimit};
pub use time::write_iso;
pub use writer::{LogTarget, LogWriter};
