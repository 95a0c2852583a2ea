"""A TCP (L4) proxy: every connection on LISTEN is relayed to UPSTREAM byte for byte, and its
logging hook prints the client (the address a PROXY header carried, when TRUSTED sends one),
the bytes each way and how it ended:
  tcp_proxy.py LISTEN UPSTREAM [TRUSTED]     e.g. TRUSTED = 127.0.0.1/32 (PROXY v1/v2 required)
Mirrors examples/c/tcp_proxy.c and examples/go/tcp_proxy."""
import sys
from typing import List

import libproxy


class Relay:
    def __init__(self, upstream: str) -> None:
        self.peer = libproxy.Peer(upstream)

    # upstream_peer: every connection goes to the upstream given on the command line.
    def upstream_peer(self, s: libproxy.L4Session) -> libproxy.Peer:
        return self.peer

    # logging: once the connection ended.
    def logging(self, s: libproxy.L4Session) -> None:
        sum = s.summary()
        print(f"{s.client_addr} up={sum.bytes_up} down={sum.bytes_down} end={sum.end}", flush=True)


def main(argv: List[str]) -> int:
    if len(argv) not in (3, 4):
        print(f"usage: {argv[0]} LISTEN UPSTREAM [TRUSTED]", file=sys.stderr)
        return 2
    with libproxy.Server() as srv:
        svc = libproxy.L4Service("tcp", Relay(argv[2]), listen=argv[1])
        if len(argv) == 4:
            svc.set_proxy_protocol("required", [argv[3]])
        port = svc.port
        srv.add_service(svc)
        print(f"relaying port {port} to {argv[2]}", flush=True)
        srv.run(signals=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
