"""Small proxies and helpers the binding's tests share."""

from __future__ import annotations

import json
from typing import Any

import libproxy
from libproxy import Peer, Proxy


def echo(body: bytes) -> Any:
    """The origin's JSON echo of a request (see origin.py)."""
    return json.loads(body)


class ToOrigin(Proxy):
    """Sends every request to the test origin."""

    def __init__(self, origin: str) -> None:
        self.peer = Peer(origin)

    def upstream_peer(self, session: libproxy.Session) -> None:
        session.set_peer(self.peer)
