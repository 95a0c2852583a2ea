//! Starts a proxy service on 127.0.0.1:0 for a test and stops it on drop.

use std::net::SocketAddr;
use std::time::Duration;

use proxy::error::Result;
use proxy::protocol::stream::SocketAddr as Addr;
use proxy::proxy::{HttpProxy, ProxyHttp, Session};
use proxy::server::{Server, ServerConf, ServerHandle};
use proxy::service::ListeningService;
use proxy::upstream::HttpPeer;

/// Hooks that send every request to one address (`host:port` or a Unix socket path).
pub struct To(pub String);

impl ProxyHttp for To {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        Ok(HttpPeer::new(&self.0).unwrap())
    }
}

/// A running proxy.
pub struct Proxy {
    pub addr: SocketAddr,
    handle: Option<ServerHandle>,
}

impl Proxy {
    /// Starts `hooks` with default options (1 worker).
    pub fn start<H: ProxyHttp>(hooks: H) -> Proxy {
        Self::start_with(HttpProxy::new(hooks), |_| {})
    }

    /// Starts a configured proxy; `tweak` may change the service (threads, endpoints).
    pub fn start_with<H: ProxyHttp>(
        app: HttpProxy<H>,
        tweak: impl FnOnce(&mut ListeningService<HttpProxy<H>>),
    ) -> Proxy {
        let mut svc = ListeningService::new("proxy", app);
        let addr = match svc.add_tcp("127.0.0.1:0").unwrap() {
            Addr::Inet(a) => a,
            other => panic!("unexpected {other}"),
        };
        tweak(&mut svc);
        let mut server = Server::new(ServerConf::default());
        server.add_service(svc);
        Proxy { addr, handle: Some(server.start().unwrap()) }
    }

    /// Graceful shutdown with `grace`, blocking (run it on a blocking thread in async tests).
    pub fn shutdown(mut self, grace: Duration) {
        if let Some(h) = self.handle.take() {
            h.shutdown(grace);
        }
    }

    /// Takes the handle out (for tests that shut down by themselves).
    pub fn take_handle(&mut self) -> ServerHandle {
        self.handle.take().unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown_fast();
        }
    }
}
