"""Benchmark proxy: one service, one worker thread, upstream_peer in Python, and with MODE=hook a
no-op request_filter (returns None = CONTINUE). Usage: proxy.py MODE(nohook|hook) LISTEN UPSTREAM"""
import sys

import libproxy


class NoHook(libproxy.Proxy):
    def __init__(self, upstream: str) -> None:
        self.peer = libproxy.Peer(upstream)

    def upstream_peer(self, s: libproxy.Session) -> None:
        s.set_peer(self.peer)


class Hook(NoHook):
    def request_filter(self, s: libproxy.Session) -> None:
        pass  # None = CONTINUE (returning libproxy.Action.CONTINUE adds an enum attribute lookup)


mode, listen, upstream = sys.argv[1:4]
with libproxy.Server() as srv:
    srv.add_service(libproxy.Service("bench", (Hook if mode == "hook" else NoHook)(upstream), listen=listen, threads=1))
    srv.run(signals=True)
