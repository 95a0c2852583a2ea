//! Ketama against nginx itself: the same five weighted servers under `hash $arg_k consistent`
//! map 10,000 keys exactly as an UpstreamGroup does, and removing one server moves only its keys,
//! in both. nginx is installed with apt when it is missing (the bench needs it too).

mod support;

use proxy::upstream::{Algorithm, Backend, Tried, UpstreamGroup};
use support::client::Conn;
use support::daemons::{free_ports, nginx_http_common, Daemon};

/// Starts nginx with five servers answering their own port, and two proxies: `/all` over the
/// five with `weights`, `/less` over all but server `removed`.
async fn start_nginx(ports: &[u16], weights: &[u32], removed: usize, listen: u16) -> Daemon {
    let servers = |skip: Option<usize>| -> String {
        ports
            .iter()
            .zip(weights)
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .map(|(_, (p, w))| format!("server 127.0.0.1:{p} weight={w};"))
            .collect()
    };
    let origins: String = ports
        .iter()
        .map(|p| format!("server {{ listen 127.0.0.1:{p}; location / {{ return 200 \"{p}\"; }} }}\n"))
        .collect();
    support::daemons::nginx("ketama-nginx", listen, |dir| {
        format!(
            "http {{ access_log off; keepalive_requests 100000; {}
  upstream all {{ hash $arg_k consistent; {} keepalive 8; }}
  upstream less {{ hash $arg_k consistent; {} keepalive 8; }}
  proxy_http_version 1.1; proxy_set_header Connection \"\";
  server {{ listen 127.0.0.1:{listen};
    location /all {{ proxy_pass http://all; }}
    location /less {{ proxy_pass http://less; }} }}
  {origins} }}
",
            nginx_http_common(dir),
            servers(None),
            servers(Some(removed)),
        )
    })
    .await
}

/// The port nginx sends each key to, through `path`.
async fn nginx_map(listen: u16, path: &str, keys: &[String]) -> Vec<u16> {
    let mut c = Conn::connect(([127, 0, 0, 1], listen).into()).await.unwrap();
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let r = c.request("GET", &format!("{path}?k={k}"), &[], b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        out.push(r.text().parse().unwrap());
    }
    out
}

fn group_map(g: &UpstreamGroup, keys: &[String]) -> Vec<u16> {
    keys.iter()
        .map(|k| {
            let p = g.pick(Some(k.as_bytes()), &mut Tried::default()).unwrap();
            p.name().rsplit_once(':').unwrap().1.parse().unwrap()
        })
        .collect()
}

fn group(ports: &[u16], weights: &[u32], skip: Option<usize>) -> UpstreamGroup {
    let g = UpstreamGroup::new("ketama", Algorithm::Ketama);
    let list = ports
        .iter()
        .zip(weights)
        .enumerate()
        .filter(|(i, _)| Some(*i) != skip)
        .map(|(_, (p, &w))| Backend::new(&format!("127.0.0.1:{p}"), w).unwrap())
        .collect();
    g.set_backends(list).unwrap();
    g
}

#[tokio::test]
async fn ketama_maps_keys_as_nginx_consistent_hash_does() {
    let ports = free_ports(6);
    let (listen, ports) = (ports[5], &ports[..5]);
    let weights = [1, 2, 3, 1, 5];
    let removed = 2;
    let _nginx = start_nginx(ports, &weights, removed, listen).await;
    // Keys of the shapes caches use: ids, paths, mixed case, digits only.
    let keys: Vec<String> = (0..10_000u32)
        .map(|i| match i % 4 {
            0 => format!("user{i}"),
            1 => format!("{}", i.wrapping_mul(2_654_435_761)),
            2 => format!("Img-{i:05}.png"),
            _ => format!("s{i}x{}", i % 7),
        })
        .collect();

    let ours = group_map(&group(ports, &weights, None), &keys);
    let theirs = nginx_map(listen, "/all", &keys).await;
    let differ = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
    assert_eq!(differ, 0, "{differ} of 10,000 keys map elsewhere than nginx's");
    // Every server gets keys, roughly by weight.
    for (p, w) in ports.iter().zip(&weights) {
        let n = ours.iter().filter(|x| *x == p).count();
        assert!(n > 0 && n.abs_diff(10_000 * *w as usize / 12) < 900, "port {p}: {n}");
    }

    let ours_less = group_map(&group(ports, &weights, Some(removed)), &keys);
    let theirs_less = nginx_map(listen, "/less", &keys).await;
    assert_eq!(ours_less, theirs_less);
    for ((before, after), k) in ours.iter().zip(&ours_less).zip(&keys) {
        if *before != ports[removed] {
            assert_eq!(before, after, "key {k} moved though its server stayed");
        } else {
            assert_ne!(*after, ports[removed]);
        }
    }
}
