"""A proxy whose request_filter counts requests by method in a labelled counter of its own,
exposed with the built-in figures on a metrics endpoint for Prometheus:
  metrics_counter.py LISTEN UPSTREAM METRICS_LISTEN
  curl http://METRICS_LISTEN/metrics | grep app_requests_by_method_total
Mirrors examples/c/metrics_counter.c and examples/go/metrics_counter."""
import sys
from typing import List

import libproxy


class Counted(libproxy.Proxy):
    def __init__(self, upstream: str, requests: libproxy.Metric) -> None:
        self.peer = libproxy.Peer(upstream)
        self.requests = requests

    def request_filter(self, s: libproxy.Session) -> None:
        # labels() looks the series up once per method and keeps it: later adds take no lock.
        self.requests.labels(s.method).add(1)

    def upstream_peer(self, s: libproxy.Session) -> None:
        s.set_peer(self.peer)


def main(argv: List[str]) -> int:
    if len(argv) != 4:
        print(f"usage: {argv[0]} LISTEN UPSTREAM METRICS_LISTEN", file=sys.stderr)
        return 2
    with libproxy.Server() as srv:
        requests = srv.metric(libproxy.MetricKind.COUNTER, "app_requests_by_method", "Requests seen, by method.", ["method"])
        svc = libproxy.Service("counted", Counted(argv[2], requests), listen=argv[1])
        svc.set_observe(libproxy.Observe.METRICS | libproxy.Observe.REQUEST_IDS)
        srv.add_service(svc)
        port = srv.add_metrics(argv[3])
        print(f"metrics on port {port}", flush=True)
        srv.run(signals=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
