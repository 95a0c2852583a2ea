//! Arbitrary bytes after a valid preface and SETTINGS, read by our HTTP/2 server connection
//! (`protocol::h2::server::serve`), whose streams read their request bodies and answer with a
//! head, a body and, on odd streams, trailers.
//! Invariants: nothing panics, and the connection ends once the client's bytes end and its
//! streams are answered or time out (a virtual-time deadline would catch a hang; tokio's paused
//! clock jumps ahead whenever every task waits).
#![no_main]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;
use proxy::protocol::h2::server::{encode_head, encode_trailers, serve};
use proxy::protocol::h2::{H2Options, PREFACE};
use proxy::protocol::http::Headers;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    rt.block_on(async {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let mut rbuf = BytesMut::from(PREFACE);
        // An empty SETTINGS frame: the connection's first frame must be one.
        rbuf.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        rbuf.extend_from_slice(data);
        // The client has said everything; what the server writes is read and dropped.
        client.shutdown().await.unwrap();
        tokio::spawn(async move {
            let mut sink = vec![0u8; 16 * 1024];
            while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        let opts = H2Options { max_concurrent_streams: 8, ..H2Options::default() };
        let on_stream = |head: Result<_, _>, mut stream: proxy::protocol::h2::server::StreamHandle| {
            // Bounded as the proxy's own writes are (its write timeout): a client that grants
            // no window must not hold a stream forever.
            tokio::spawn(tokio::time::timeout(Duration::from_secs(30), async move {
                let odd = head.is_ok();
                while let Some(Ok(_)) = stream.data().await {}
                let _ = stream.take_trailers();
                let block = encode_head(StatusCode::OK, &Headers::new());
                if stream.send_block(&block, false, false).is_err() {
                    return;
                }
                if stream.send_data(Bytes::from_static(&[b'x'; 40_000]), !odd).await.is_err() || !odd {
                    return;
                }
                let mut t = HeaderMap::new();
                t.insert("grpc-status", HeaderValue::from_static("0"));
                let _ = stream.send_block(&encode_trailers(&t), true, false);
            }));
        };
        let graceful = std::future::pending::<()>();
        let run = serve(server, rbuf, &opts, Duration::from_secs(5), Duration::from_secs(5), graceful, on_stream);
        tokio::time::timeout(Duration::from_secs(3600), run).await.expect("the connection did not end");
    });
});
