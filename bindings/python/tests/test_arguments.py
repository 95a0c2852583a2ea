"""Bad arguments fail where they are written, with TypeError or ValueError, not later as an
AttributeError or a 500 at request time."""

from __future__ import annotations

from typing import Any

import pytest

from libproxy import Peer, Proxy, Service, Session


class Hooks(Proxy):
    def upstream_peer(self, session: Session) -> None:
        pass


def test_service_name_and_hooks_are_checked() -> None:
    bad_name: Any = None
    with pytest.raises(TypeError, match="name must be a str"):
        Service(bad_name, Hooks())
    with pytest.raises(ValueError, match="must not be empty"):
        Service("", Hooks())
    with pytest.raises(TypeError, match="object has none"):
        Service("a", object())
    with Service("a", Hooks()):
        pass
    # Any object with a phase method will do, not only Proxy subclasses.
    duck = type("Duck", (), {"request_filter": lambda self, s: None})()
    with Service("b", duck):
        pass


@pytest.mark.parametrize(
    "address, why",
    [
        ("garbage", "host:port"),
        ("example.com:http", "invalid port"),
        ("example.com:70000", "invalid port"),
        (":80", "invalid host"),
        ("unix:", "empty unix socket path"),
    ],
)
def test_peer_address_is_checked_by_the_library(address: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Peer(address)


def test_peer_accepts_every_documented_address_form() -> None:
    for a in ("127.0.0.1:80", "[::1]:8080", "example.com:443", "/run/x.sock", "unix:/run/x.sock"):
        assert Peer(a).address == a
    bad: Any = None
    with pytest.raises(TypeError, match="must be a str"):
        Peer(bad)
    with pytest.raises(ValueError, match="alpn"):
        Peer("127.0.0.1:80", alpn="h3")
