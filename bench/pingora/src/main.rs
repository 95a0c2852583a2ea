//! Pingora as a plain forwarding proxy, the bench peer: `pingora-bench LISTEN UPSTREAM`, 1 thread.
use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

struct Forward(String);

#[async_trait]
impl ProxyHttp for Forward {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.0.as_str(), false, String::new())))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8084".into());
    let upstream = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    let conf = ServerConf { threads: 1, ..Default::default() };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut svc = http_proxy_service(&server.configuration, Forward(upstream));
    svc.add_tcp(&listen);
    server.add_service(svc);
    server.run_forever();
}
