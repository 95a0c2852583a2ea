"""TLS on both sides, HTTP/2 upstream: listen with TLS on argv[4] (default 127.0.0.1:8443;
certificate argv[1], key argv[2]; clients get h2 or http/1.1 by ALPN) and forward every request
over TLS and HTTP/2 to argv[5], verified against the CA file argv[3] for the name "localhost".
Without argv[5] it also starts an embedded demo origin (a second TLS service with the same
certificate) that says which HTTP version it was reached with:

  python examples/python/tls_h2_proxy.py cert.pem key.pem ca.pem &  curl --cacert ca.pem https://localhost:8443/hi

Stop with Ctrl-C (fast) or SIGTERM (graceful). Same program: examples/c/tls_h2_proxy.c,
examples/go/tls_h2_proxy."""
import sys
from typing import List

import libproxy


class Config(libproxy.Proxy):
    def __init__(self, upstream: str, ca_file: str) -> None:
        # TLS verified against the CA file, SNI "localhost", HTTP/2 only (ALPN h2).
        self.upstream = libproxy.Peer(upstream, tls=True, sni="localhost", ca_file=ca_file, alpn="h2")

    # upstream_peer: every request goes to the configured upstream.
    def upstream_peer(self, s: libproxy.Session) -> None:
        s.set_peer(self.upstream)


class DemoOrigin(libproxy.Proxy):
    # The demo origin's request_filter: answer here, naming the HTTP version the request came with.
    def request_filter(self, s: libproxy.Session) -> None:
        body = f"hello over {s.version} from the demo origin, you asked for {s.path}\n"
        s.respond(200, {"content-type": "text/plain"}, body)


def main(argv: List[str]) -> int:
    listen = argv[4] if len(argv) > 4 else "127.0.0.1:8443"
    if len(argv) < 4:
        print(f"usage: {argv[0]} CERT KEY CA [LISTEN] [UPSTREAM]", file=sys.stderr)
        return 2
    # `import libproxy` already refused a library with another ABI major.
    with libproxy.Server() as server:
        # One certificate for both TLS endpoints; ALPN offers h2, then http/1.1.
        with libproxy.TlsSettings(cert=argv[1], key=argv[2]) as tls:
            if len(argv) > 5:
                upstream = argv[5]
            else:
                origin = libproxy.Service("demo-origin", DemoOrigin(), listen_tls="127.0.0.1:0", tls=tls)
                upstream = f"127.0.0.1:{origin.port}"
                server.add_service(origin)
                print(f"demo origin on {upstream}")

            svc = libproxy.Service("proxy", Config(upstream, argv[3]), listen_tls=listen, tls=tls)
        port = svc.port  # the endpoints keep copies of the TLS settings
        server.add_service(svc)

        print(f"{libproxy.version()} proxying on port {port} to {upstream} over TLS and HTTP/2", flush=True)
        server.run(signals=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
