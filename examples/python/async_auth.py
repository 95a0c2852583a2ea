"""Async auth: request_filter is a coroutine on the binding's asyncio loop; the request is PENDING
meanwhile. It "checks" the token (sleeps 20 ms), answers 403 or lets the request through, and the
binding resumes the session. No libproxy worker is blocked meanwhile.
Usage: async_auth.py LISTEN UPSTREAM
Mirrors examples/c/async_auth.c (a pthread there, an asyncio task here)."""
import asyncio
import sys
from typing import List

import libproxy


class AsyncAuth(libproxy.Proxy):
    def __init__(self, upstream: str) -> None:
        self.upstream = libproxy.Peer(upstream)

    async def request_filter(self, s: libproxy.Session) -> libproxy.Action:
        await asyncio.sleep(0.020)  # an auth service round trip
        if s.request_headers.get("x-token") == "secret":
            return libproxy.Action.CONTINUE
        s.respond(403, None, "forbidden\n")
        return libproxy.Action.RESPONDED

    def upstream_peer(self, s: libproxy.Session) -> None:
        s.set_peer(self.upstream)


def main(argv: List[str]) -> int:
    if len(argv) < 3:
        print(f"usage: {argv[0]} LISTEN UPSTREAM", file=sys.stderr)
        return 2
    with libproxy.Server() as srv:
        svc = libproxy.Service("async-auth", AsyncAuth(argv[2]), listen=argv[1])
        svc.set_timeout(libproxy.Timeout.PENDING, 2000)
        srv.add_service(svc)
        srv.run(signals=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
