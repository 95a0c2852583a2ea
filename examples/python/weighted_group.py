"""A weighted, health-checked upstream group: upstream_peer picks from the group (a retry gets a
backend not tried yet), passive health ejects a backend after 3 failures in a row, an HTTP
check (GET / every 2 s, fall 2, rise 2) takes it down and brings it back, and health changes
are printed.
Usage: weighted_group.py LISTEN UPSTREAM=WEIGHT [UPSTREAM=WEIGHT ...]
Mirrors examples/c/weighted_group.c."""
import sys
from typing import List

import libproxy


class ToGroup(libproxy.Proxy):
    def __init__(self, group: libproxy.Group) -> None:
        self.group = group

    def upstream_peer(self, s: libproxy.Session) -> None:
        s.pick(self.group)


def health(backend: str, event: libproxy.HealthEvent) -> None:
    print(f"backend {backend}: {event.name.lower()}", file=sys.stderr)


def main(argv: List[str]) -> int:
    if len(argv) < 3:
        print(f"usage: {argv[0]} LISTEN UPSTREAM=WEIGHT...", file=sys.stderr)
        return 2
    group = libproxy.Group("backends", libproxy.Algorithm.ROUND_ROBIN)
    for arg in argv[2:]:
        address, _, weight = arg.partition("=")
        group.add_backend(libproxy.Peer(address, connect_timeout_ms=1000), int(weight or 1))
    group.configure(eject_failures=3)
    group.on_health(health)
    check = libproxy.HealthCheck(probe="http", interval_ms=2000, rise=2, fall=2)
    with libproxy.Server() as srv:
        svc = libproxy.Service("weighted-group", ToGroup(group), listen=argv[1])
        svc.set_limit(libproxy.Limit.MAX_RETRIES, len(argv) - 2)
        srv.add_service(svc)
        srv.add_health_check(group, check)
        srv.run(signals=True)
    group.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
