"""Header rewrite + auth: requests without `Authorization: Bearer letmein` get 401 from
request_filter; accepted ones lose the Authorization header, gain X-User upstream, and the
response gets X-Proxy. Usage: header_rewrite_auth.py LISTEN UPSTREAM
Mirrors examples/c/header_rewrite_auth.c."""
import sys
from typing import List

import libproxy


class AuthProxy(libproxy.Proxy):
    def __init__(self, upstream: str) -> None:
        self.upstream = libproxy.Peer(upstream)

    def request_filter(self, s: libproxy.Session) -> libproxy.Action:
        if s.request_headers.get("authorization") == "Bearer letmein":
            s.request_headers.remove("authorization")
            return libproxy.Action.CONTINUE
        s.respond(401, {"www-authenticate": "Bearer", "content-type": "text/plain"}, "missing or bad token\n")
        return libproxy.Action.RESPONDED

    def upstream_peer(self, s: libproxy.Session) -> None:
        s.set_peer(self.upstream)

    def upstream_request_filter(self, s: libproxy.Session) -> None:
        s.upstream_request_headers.set("x-user", "letmein-holder")

    def response_filter(self, s: libproxy.Session) -> None:
        s.response_headers.set("x-proxy", libproxy.version())


def main(argv: List[str]) -> int:
    if len(argv) < 3:
        print(f"usage: {argv[0]} LISTEN UPSTREAM", file=sys.stderr)
        return 2
    with libproxy.Server() as srv:
        srv.add_service(libproxy.Service("auth-proxy", AuthProxy(argv[2]), listen=argv[1]))
        srv.run(signals=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
