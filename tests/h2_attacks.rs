//! HTTP/2 abuse with raw frames (bounded loops): rapid reset, CONTINUATION flood, HPACK bomb. The
//! proxy must cut the abuser off and keep serving others, with bounded memory. The proxy runs in
//! this process, so the figure is this process's VmRSS before/after (printed for the report).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::client::get;
use support::h2origin::raw;
use support::harness::{Proxy, To};
use support::origin::Origin;
use support::within;
use tokio::net::TcpStream;

/// Attacks run one at a time so each one's RSS figure is its own.
// The attacks run one at a time so each one's memory figures are its own.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Memory growth allowed per attack.
const RSS_BOUND: u64 = 64 * 1024 * 1024;

fn vm_rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

fn report_rss(name: &str, before: u64, after: u64) {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    eprintln!(
        "[{name}] VmRSS before {:.1} MiB, after {:.1} MiB, growth {:+.1} MiB",
        mib(before),
        mib(after),
        mib(after) - mib(before)
    );
    assert!(after.saturating_sub(before) < RSS_BOUND, "{name}: RSS grew by {} bytes", after - before);
}

/// A well-behaved client is still served, over H1 and over H2.
async fn still_serves(addr: SocketAddr) {
    let r = within(5, get(addr, "/echo")).await;
    assert_eq!(r.status, 200);
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.unwrap();
    let req = http::Request::builder().uri("http://ok.test/echo").body(()).unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    let resp = within(5, resp).await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// Opens a raw connection and sends the preface and SETTINGS.
async fn raw_conn(addr: SocketAddr) -> (tokio::net::tcp::OwnedReadHalf, tokio::net::tcp::OwnedWriteHalf) {
    let s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (rd, mut wr) = s.into_split();
    assert!(raw::write(&mut wr, &raw::client_start(), Duration::from_secs(2)).await);
    (rd, wr)
}

/// A well-behaved H1 client polling during an attack; returns (ok, failed) counts.
fn bystander(
    addr: SocketAddr,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<(usize, usize)>) {
    let (stop_tx, mut stop) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let (mut ok, mut failed) = (0, 0);
        loop {
            match tokio::time::timeout(Duration::from_secs(3), get(addr, "/echo")).await {
                Ok(r) if r.status == 200 => ok += 1,
                _ => failed += 1,
            }
            if stop.try_recv().is_ok() {
                return (ok, failed);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    (stop_tx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_flood_is_cut_off() {
    let _g = SERIAL.lock().await;
    let origin = Origin::start().await;
    let p = Proxy::start(To(origin.addr.to_string()));
    still_serves(p.addr).await;
    let warmup = origin.requests();
    let before = vm_rss();
    let (stop, watcher) = bystander(p.addr);

    let (rd, mut wr) = raw_conn(p.addr).await;
    let reader = tokio::spawn(raw::read_all(rd, Duration::from_secs(10)));
    let block = raw::get_block("/echo", "attack.test");
    let t0 = Instant::now();
    let mut sent = 0u32;
    let mut closed_early = false;
    // 10,000 HEADERS(END_STREAM) + RST_STREAM(CANCEL) pairs, written 100 pairs at a time.
    'flood: for batch in 0..100u32 {
        let mut buf = Vec::with_capacity(100 * (9 + block.len() + 13));
        for i in 0..100u32 {
            let id = 1 + 2 * (batch * 100 + i);
            raw::frame_into(&mut buf, raw::HEADERS, raw::END_STREAM | raw::END_HEADERS, id, &block);
            raw::frame_into(&mut buf, raw::RST_STREAM, 0, id, &raw::CANCEL.to_be_bytes());
        }
        if !raw::write(&mut wr, &buf, Duration::from_secs(5)).await {
            closed_early = true;
            break 'flood;
        }
        sent += 100;
    }
    let flood_time = t0.elapsed();
    let seen = within(15, reader).await.unwrap();
    drop(wr);
    let (ok, failed) = {
        let _ = stop.send(());
        within(10, watcher).await.unwrap()
    };
    let after = vm_rss();
    eprintln!(
        "[rapid reset] sent {sent} pairs in {flood_time:?} (write failed early: {closed_early}); \
         server frames {}, GOAWAY {:?}, closed {}; origin saw {} requests on {} connections; \
         bystander ok {ok} failed {failed}",
        seen.frames,
        seen.goaway,
        seen.closed,
        origin.requests() - warmup - ok,
        origin.accepts()
    );
    assert!(seen.goaway.is_some() || seen.closed, "the abuser was neither sent GOAWAY nor closed: {seen:?}");
    if let Some((_, code)) = seen.goaway {
        assert_ne!(code, 0, "GOAWAY for abuse should carry an error code (ENHANCE_YOUR_CALM)");
    }
    let proxied = origin.requests() - warmup - ok;
    assert!(proxied < 1000, "{proxied} of the reset streams were proxied to the origin");
    assert_eq!(failed, 0, "a bystander request failed during the flood");
    still_serves(p.addr).await;
    report_rss("rapid reset", before, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_flood_is_cut_off() {
    let _g = SERIAL.lock().await;
    let origin = Origin::start().await;
    let p = Proxy::start(To(origin.addr.to_string()));
    still_serves(p.addr).await;
    let warmup = origin.requests();
    let before = vm_rss();
    let (stop, watcher) = bystander(p.addr);

    let (rd, mut wr) = raw_conn(p.addr).await;
    let reader = tokio::spawn(raw::read_all(rd, Duration::from_secs(10)));
    // HEADERS without END_HEADERS, then CONTINUATION frames (never END_HEADERS) each carrying
    // ~16 KB of literal fields: up to 10,000 frames = 160 MB of header block if nothing stops it.
    let mut first = raw::get_block("/echo", "attack.test");
    raw::hpack_literal(&mut first, b"x-first", b"1");
    let mut piece = Vec::new();
    while piece.len() < 16_000 {
        raw::hpack_literal(&mut piece, b"x-flood", &[b'a'; 1000]);
    }
    let t0 = Instant::now();
    let mut frames = 0usize;
    let mut closed_early = false;
    if raw::write(&mut wr, &raw::frame(raw::HEADERS, raw::END_STREAM, 1, &first), Duration::from_secs(2))
        .await
    {
        let one = raw::frame(raw::CONTINUATION, 0, 1, &piece);
        'flood: for _ in 0..1000 {
            let mut buf = Vec::with_capacity(10 * one.len());
            for _ in 0..10 {
                buf.extend_from_slice(&one);
            }
            if !raw::write(&mut wr, &buf, Duration::from_secs(5)).await {
                closed_early = true;
                break 'flood;
            }
            frames += 10;
        }
    } else {
        closed_early = true;
    }
    let flood_time = t0.elapsed();
    let seen = within(15, reader).await.unwrap();
    drop(wr);
    let (ok, failed) = {
        let _ = stop.send(());
        within(10, watcher).await.unwrap()
    };
    let after = vm_rss();
    eprintln!(
        "[continuation flood] wrote {frames} CONTINUATION frames ({} MB) in {flood_time:?} \
         (write failed early: {closed_early}); server frames {}, GOAWAY {:?}, closed {}; \
         origin got {} attack requests; bystander ok {ok} failed {failed}",
        frames * piece.len() / 1_000_000,
        seen.frames,
        seen.goaway,
        seen.closed,
        origin.requests() - warmup - ok
    );
    assert!(seen.closed, "the connection should be closed: {seen:?}");
    assert!(closed_early, "the server read the whole 160 MB flood without closing");
    assert_eq!(
        origin.requests(),
        warmup + ok,
        "only the bystanders' and the warm-up requests reach the origin"
    );
    assert_eq!(failed, 0, "a bystander request failed during the flood");
    still_serves(p.addr).await;
    report_rss("continuation flood", before, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpack_bomb_is_refused() {
    let _g = SERIAL.lock().await;
    let origin = Origin::start().await;
    let p = Proxy::start(To(origin.addr.to_string()));
    still_serves(p.addr).await;
    let warmup = origin.requests();
    let before = vm_rss();

    let (rd, mut wr) = raw_conn(p.addr).await;
    let reader = tokio::spawn(raw::read_all(rd, Duration::from_secs(5)));
    // Stream 1 puts a 4,000-byte field in the dynamic table (entry size 4,038 ≤ 4,096) and
    // references it ~16,000 times: 16 KB on the wire decoding to ~64 MB, 1,000× the 64 KiB
    // header-list limit. Later streams reuse the entry (index 62) with one-byte references.
    let mut block = raw::get_block("/echo", "bomb.test");
    raw::hpack_literal_indexing(&mut block, b"x-bomb", &[b'b'; 4000]);
    while block.len() < 16_000 {
        raw::hpack_indexed(&mut block, 62);
    }
    let mut again = raw::get_block("/echo", "bomb.test");
    while again.len() < 16_000 {
        raw::hpack_indexed(&mut again, 62);
    }
    let t0 = Instant::now();
    let mut streams = 0u32;
    let mut closed_early = false;
    for i in 0..200u32 {
        let b = if i == 0 { &block } else { &again };
        let f = raw::frame(raw::HEADERS, raw::END_STREAM | raw::END_HEADERS, 1 + 2 * i, b);
        if !raw::write(&mut wr, &f, Duration::from_secs(5)).await {
            closed_early = true;
            break;
        }
        streams += 1;
    }
    let flood_time = t0.elapsed();
    let seen = within(10, reader).await.unwrap();
    drop(wr);
    let after = vm_rss();
    eprintln!(
        "[hpack bomb] sent {streams} bomb streams ({} MB decoded nominal) in {flood_time:?} \
         (write failed early: {closed_early}); server frames {}, HEADERS {}, RST_STREAM {}, \
         GOAWAY {:?}, closed {}; origin requests {}",
        streams as u64 * 16_000 * 4038 / 1_000_000,
        seen.frames,
        seen.headers,
        seen.rst_streams,
        seen.goaway,
        seen.closed,
        origin.requests() - warmup
    );
    assert_eq!(origin.requests(), warmup, "a bomb stream reached the origin");
    assert!(
        seen.headers + seen.rst_streams > 0 || seen.goaway.is_some() || seen.closed,
        "the bomb was neither refused nor cut off: {seen:?}"
    );
    still_serves(p.addr).await;
    report_rss("hpack bomb", before, after);
}
