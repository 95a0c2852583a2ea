//! `Server::run_forever` through the example binary: SIGTERM drains in-flight requests, SIGINT
//! stops at once.

mod support;

use std::process::Child;
use std::time::{Duration, Instant};

use support::client::Conn;
use support::example::{self, Options};
use support::origin::Origin;
use support::{eventually, within};

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's PID has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

async fn wait_exit(child: &mut Child, within_secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(within_secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "the proxy did not exit in {within_secs} s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    // Building the example can take longer than the whole test may (under load): not inside `within`.
    let bin = example::binary();
    within(30, async {
        let origin = Origin::start().await;
        let mut ex = example::start(&bin, origin.addr, Options::default()).await;
        let addr = ex.addr;
        let mut c = Conn::connect(addr).await.unwrap();
        c.send(b"GET /delay/800 HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        // The origin has the request (and answers 800 ms later): it is in flight.
        assert!(eventually(|| origin.requests() == 1).await, "the request did not reach the origin");
        signal(&ex.child, libc::SIGTERM);
        let r = c.read_response().await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), Some("close"));
        let status = wait_exit(&mut ex.child, 10).await;
        assert!(status.success(), "{status:?}");
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting after exit");
    })
    .await;
}

#[tokio::test]
async fn sigint_stops_at_once() {
    let bin = example::binary();
    within(30, async {
        let origin = Origin::start().await;
        let mut ex = example::start(&bin, origin.addr, Options::default()).await;
        let addr = ex.addr;
        let mut c = Conn::connect(addr).await.unwrap();
        c.send(b"GET /hang HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        assert!(eventually(|| origin.requests() == 1).await, "the request did not reach the origin");
        let t = Instant::now();
        signal(&ex.child, libc::SIGINT);
        let status = wait_exit(&mut ex.child, 5).await;
        assert!(status.success(), "{status:?}");
        assert!(t.elapsed() < Duration::from_secs(3), "fast shutdown took {:?}", t.elapsed());
        assert!(
            c.closed_within(Duration::from_secs(2)).await,
            "the hanging request's connection stayed open"
        );
    })
    .await;
}
