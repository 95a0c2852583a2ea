"""Round robin over several upstreams with retry on connect failure: upstream_peer picks the next
address on every call (a retry calls it again), fail_to_connect allows the retry.
Usage: round_robin.py LISTEN UPSTREAM1 [UPSTREAM2 ...]
Mirrors examples/c/round_robin.c."""
import itertools
import sys
from typing import List

import libproxy


class Pool(libproxy.Proxy):
    def __init__(self, addrs: List[str]) -> None:
        self.peers = [libproxy.Peer(a, connect_timeout_ms=1000) for a in addrs]
        self.next = itertools.count()  # next() is atomic under the GIL; hooks run concurrently

    def upstream_peer(self, s: libproxy.Session) -> None:
        s.set_peer(self.peers[next(self.next) % len(self.peers)])

    def fail_to_connect(self, s: libproxy.Session) -> None:
        print(f"connect failed: {s.error}; retrying", file=sys.stderr)
        s.set_retry(True)


def main(argv: List[str]) -> int:
    if len(argv) < 3:
        print(f"usage: {argv[0]} LISTEN UPSTREAM...", file=sys.stderr)
        return 2
    pool = Pool(argv[2:])
    with libproxy.Server() as srv:
        svc = libproxy.Service("round-robin", pool, listen=argv[1])
        svc.set_limit(libproxy.Limit.MAX_RETRIES, len(pool.peers))
        srv.add_service(svc)
        srv.run(signals=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
