//! curl `--compressed` decodes what the proxy encodes byte-identical to the origin's body: gzip,
//! br and zstd (this curl build has all three: `curl -V`), bodies of 1 B, 1 KiB, 1 MiB and
//! 50 MiB streamed by the independent test origin, over HTTP/1.1 and HTTP/2 by prior knowledge.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;

use proxy::compression::CompressionSettings;
use proxy::error::Result;
use proxy::proxy::{HttpProxy, ProxyHttp, Session};
use proxy::upstream::HttpPeer;
use support::gen::gen_body;
use support::harness::Proxy;
use support::origin::Origin;
use support::within;

struct To(SocketAddr);

impl ProxyHttp for To {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        Ok(HttpPeer::new(&self.0.to_string()).unwrap())
    }
}

/// Fetches `/gen/{n}` with curl offering only `coding`; the head curl saw and the decoded body.
async fn curl(proxy: SocketAddr, n: usize, coding: &str, h2: bool, out: &PathBuf) -> (String, Vec<u8>) {
    let url = format!("http://{proxy}/gen/{n}");
    let ae = format!("Accept-Encoding: {coding}");
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args(["-sS", "--compressed", "-H", &ae, "-D", "-", "--max-time", "120", "-o"]).arg(out).arg(&url);
    if h2 {
        cmd.arg("--http2-prior-knowledge");
    }
    let res = within(130, cmd.output()).await.expect("curl runs");
    let head = String::from_utf8_lossy(&res.stdout).into_owned();
    assert!(res.status.success(), "curl failed: {}\n{head}", String::from_utf8_lossy(&res.stderr));
    (head, std::fs::read(out).unwrap())
}

#[tokio::test]
async fn curl_decodes_byte_identical_bodies() {
    let origin = Origin::start().await;
    let mut app = HttpProxy::new(To(origin.addr));
    app.options_mut().compression =
        CompressionSettings { enabled: true, min_length: 0, ..Default::default() };
    let p = Proxy::start_with(app, |_| {});
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compression_curl.body");
    for n in [1, 1 << 10, 1 << 20, 50 << 20] {
        let want = gen_body(n);
        for h2 in [false, true] {
            // 50 MiB once per algorithm and protocol, like every size.
            for coding in ["gzip", "br", "zstd"] {
                let (head, body) = curl(p.addr, n, coding, h2, &out).await;
                let head = head.to_ascii_lowercase();
                let status = if h2 { "http/2 200" } else { "http/1.1 200" };
                assert!(head.starts_with(status), "{head}");
                assert!(head.contains(&format!("\ncontent-encoding: {coding}\r\n")), "{n} {coding}: {head}");
                assert!(!head.contains("\ncontent-length:"), "{head}");
                assert!(
                    body == want,
                    "{n} bytes, {coding}, h2 {h2}: curl decoded {} bytes that differ",
                    body.len()
                );
            }
        }
    }
    let _ = std::fs::remove_file(&out);
}
