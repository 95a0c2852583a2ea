//! The socket handover of an upgrade, in one process through the core API: a server hands its
//! listening sockets (TCP on port 0 and a Unix socket) to a receiver on `upgrade_sock`; binding
//! the same endpoints then takes them over (same port, no second bind), the old server stops, and
//! the new one answers on them. Also: nobody waiting makes the handover fail and the old server
//! keeps serving.

mod support;

use std::time::Duration;

use proxy::listener::{inherited, TransportStack};
use proxy::protocol::stream::SocketAddr as Addr;
use proxy::proxy::HttpProxy;
use proxy::server::{upgrade, Server, ServerConf};
use proxy::service::ListeningService;

use support::client::Conn;
use support::harness::To;
use support::origin::Origin;
use support::within;

/// A server proxying to `origin` on a TCP and a Unix endpoint, bound (or taken over) now.
fn server(origin: &Origin, uds: &std::path::Path) -> (Server, std::net::SocketAddr) {
    let mut svc = ListeningService::new("proxy", HttpProxy::new(To(origin.addr.to_string())));
    let tcp = match svc.add_tcp("127.0.0.1:0").unwrap() {
        Addr::Inet(a) => a,
        other => panic!("unexpected {other}"),
    };
    svc.add_uds(uds).unwrap();
    let mut server = Server::new(ServerConf::default());
    server.add_service(svc);
    (server, tcp)
}

async fn get_ok(conn: &mut Conn) {
    conn.send(b"GET /echo HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n").await.unwrap();
    assert_eq!(conn.read_response().await.unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_move_to_the_new_server_which_binds_nothing_twice() {
    let origin = Origin::start().await;
    let dir = std::env::temp_dir().join(format!("lp-handover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (uds, sock) = (dir.join("proxy.sock"), dir.join("upgrade.sock"));

    let (old, port) = server(&origin, &uds);
    let old = old.start().unwrap();
    let keys: Vec<String> = old.listeners().iter().map(|s| s.key().to_owned()).collect();
    assert_eq!(keys, ["127.0.0.1:0".to_owned(), format!("unix:{}", uds.display())]);

    // No new process yet: the handover fails within its retries and the old server serves on.
    let old = within(
        10,
        tokio::task::spawn_blocking({
            let sock = sock.clone();
            move || match old.upgrade(&sock, 2, Duration::from_secs(5)) {
                Ok(_) => panic!("a handover with nobody listening succeeded"),
                Err((old, e)) => {
                    assert!(e.to_string().contains("no new process listens"), "{e}");
                    old
                }
            }
        }),
    )
    .await
    .unwrap();
    get_ok(&mut Conn::connect(port).await.unwrap()).await;

    // The receiver waits on the upgrade socket; the old server hands over and stops.
    let receiver = tokio::task::spawn_blocking({
        let sock = sock.clone();
        move || upgrade::receive_listeners(&sock, 100)
    });
    let old_done = tokio::task::spawn_blocking({
        let sock = sock.clone();
        move || old.upgrade(&sock, 100, Duration::from_secs(5)).map_err(|(_, e)| e)
    });
    assert_eq!(within(20, receiver).await.unwrap().unwrap(), 2);
    assert_eq!(within(20, old_done).await.unwrap().unwrap(), 2);
    assert_eq!(inherited::unclaimed(), 2);

    // The same endpoints again: the inherited sockets, the same port, the socket file kept.
    let (new, new_port) = server(&origin, &uds);
    assert_eq!(new_port, port);
    assert_eq!(inherited::unclaimed(), 0);
    assert!(uds.exists(), "the old server removed the socket file it handed over");
    let new = new.start().unwrap();
    get_ok(&mut Conn::connect(port).await.unwrap()).await;
    get_ok(&mut Conn::connect_unix(&uds).await.unwrap()).await;
    assert!(!sock.exists(), "the upgrade socket is removed after use");

    // A stack bound afresh is not taken from the table.
    assert!(TransportStack::bind_tcp("127.0.0.1:0".parse().unwrap()).is_ok());
    tokio::task::spawn_blocking(move || new.shutdown(Duration::from_secs(1))).await.unwrap();
    assert!(!uds.exists(), "the new server removes its socket file at the end");
    let _ = std::fs::remove_dir_all(&dir);
}
