mod support;

use support::client::{get, Conn};
use support::harness::{Proxy, To};
use support::origin::Origin;

#[tokio::test]
async fn get_through_proxy() {
    let origin = Origin::start().await;
    let p = Proxy::start(To(origin.addr.to_string()));
    let r = get(p.addr, "/echo").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().starts_with("GET /echo HTTP/1.1"), "{}", r.text());
    let mut c = Conn::connect(p.addr).await.unwrap();
    for _ in 0..3 {
        let r = c.request("POST", "/echo", &[], b"hello").await;
        assert_eq!(r.status, 200);
        assert!(r.text().ends_with("hello"), "{}", r.text());
    }
    assert_eq!(origin.accepts(), 1);
}
