//! Test-only HTTP/1.1 origin and raw client used to drive the proxy over loopback.
//!
//! Deliberately independent of the `proxy` crate: it is the judge of what the proxy puts on the
//! wire, so sharing the proxy's codec would let a codec bug pass its own tests.

// Each integration test binary compiles this module separately and uses only part of it.
#![allow(dead_code)]

pub mod cache;
pub mod client;
pub mod daemons;
pub mod example;
pub mod gen;
pub mod h2origin;
pub mod harness;
pub mod origin;
pub mod pp_corpus;
pub mod switch;
pub mod wire;

use std::time::Duration;

/// Polls `cond` every 10 ms for up to 5 s; returns whether it became true.
///
/// Counters such as `Origin::requests()` are updated by other tasks, so a test that has just read
/// the proxy's response may otherwise race the origin's bookkeeping.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `fut` with a limit so a misbehaving proxy fails the test instead of hanging it.
pub async fn within<F: std::future::Future>(secs: u64, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("operation did not finish within {secs} s"))
}
