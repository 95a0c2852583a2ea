"""Configuration file and command line through the binding: sys.argv keeps the host's arguments,
keys round-trip, a bad file names its line and key, a group from the file serves requests and
follows a reload, a listener change is refused with a word about upgrades, and a reload swaps a TLS listener's
certificate (a bad one leaves the old in place)."""

from __future__ import annotations

import http.client
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest

import libproxy
from libproxy import ProxyError

pytestmark = pytest.mark.skipif(not libproxy._ffi.HAVE_CONF, reason="library without proxy_conf")


def conf_text(backend: str, level: str = "info", listen: str = "127.0.0.1:0") -> str:
    return (
        "grace_period_seconds: 4\n"
        f"log_level: {level}\n"
        "limits:\n  keepalive_timeout_ms: 7000\n"
        f"services:\n  proxy:\n    threads: 2\n    listeners:\n      - address: {listen}\n"
        f"upstreams:\n  app:\n    selection: random\n    backends:\n      - {backend}\n"
    )


class ToGroup(libproxy.Proxy):
    def __init__(self, group: libproxy.Group) -> None:
        self.group = group

    def upstream_peer(self, s: libproxy.Session) -> None:
        s.pick(self.group)


class Answer(libproxy.Proxy):
    def __init__(self, name: str) -> None:
        self.name = name

    def request_filter(self, s: libproxy.Session) -> None:
        s.respond(200, {"cache-control": "no-store"}, self.name)


def get(port: int) -> bytes:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/")
        r = c.getresponse()
        assert r.status == 200
        return r.read()
    finally:
        c.close()


def test_args_values_group_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "proxy.yaml"
    with libproxy.Server() as server:
        one = libproxy.Service("one", Answer("one"), listen="127.0.0.1:0")
        two = libproxy.Service("two", Answer("two"), listen="127.0.0.1:0")
        backends = [f"127.0.0.1:{one.port}", f"127.0.0.1:{two.port}"]
        server.add_service(one)
        server.add_service(two)
        path.write_text(conf_text(backends[0]))

        conf, rest = libproxy.Conf.from_args(["prog", "--conf", str(path), "pos", "-v"])
        assert rest == ["prog", "pos", "-v"]
        assert conf.flags == 0
        assert conf.get("grace_period_seconds") == "4"
        assert conf.get("services.proxy.limits.keepalive_timeout_ms") == "7000"
        assert conf.get("services.proxy.listeners.0.address") == "127.0.0.1:0"
        assert conf.get("upstreams.app.selection") == "random"
        with pytest.raises(ProxyError) as e:
            conf.get("nope")
        assert e.value.code == ProxyError.NOT_FOUND

        group = conf.group("app")
        server.set_conf(conf)
        svc = libproxy.Service("proxy", ToGroup(group))
        svc.apply_conf(conf)  # binds 127.0.0.1:0 from the file
        port = svc.add_tcp("127.0.0.1:0")
        server.add_service(svc)
        server.start()
        assert get(port) == b"one"

        path.write_text(conf_text(backends[1], level="debug"))
        server.reload()
        assert get(port) == b"two"
        assert conf.get("log_level") == "debug"

        path.write_text(conf_text(backends[1], listen="127.0.0.1:1"))
        with pytest.raises(ProxyError) as e:
            server.reload()
        assert e.value.code == ProxyError.RELOAD_REFUSED
        assert "services.proxy.listeners.0.address" in str(e.value) and "upgrade" in str(e.value)
        assert get(port) == b"two"
        conf.close()
        group.close()


@pytest.mark.parametrize(
    "text,where",
    [
        ("threads: two\n", ":1:10: threads: expected a whole number from 1 to 1024"),
        ("services:\n  p:\n    listeners:\n      - address: nowhere\n", ":4:18: services.p.listeners.0.address"),
    ],
)
def test_bad_file_names_line_and_key(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ProxyError) as e:
        libproxy.Conf.from_args(["prog", "-c", str(path)])
    assert e.value.code == ProxyError.CONFIG_INVALID
    assert f"{path}{where}" in str(e.value)


def test_without_flags_defaults(tmp_path: Any) -> None:
    conf, rest = libproxy.Conf.from_args(["prog", "--", "-c", "x"])
    assert rest == ["prog", "--", "-c", "x"]
    assert conf.get("threads") == "1"
    conf.close()
    conf.close()


def served_cert(port: int) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return der


def pem_der(path: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(Path(path).read_text())


def test_reload_swaps_a_tls_listener_certificate(tmp_path: Path, certs: Any) -> None:
    with socket.socket() as probe:  # a free port for the listener the file names
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def tls_conf(cert: str, key: str) -> str:
        return (
            f"services:\n  edge:\n    listeners:\n      - address: 127.0.0.1:{port}\n"
            f"        tls:\n          cert_file: {cert}\n          key_file: {key}\n"
        )

    path = tmp_path / "tls.yaml"
    path.write_text(tls_conf(certs.server, certs.server_key))
    conf, _ = libproxy.Conf.from_args(["prog", "-c", str(path)])
    with libproxy.Server() as server:
        server.set_conf(conf)
        svc = libproxy.Service("edge", Answer("edge"))
        svc.apply_conf(conf)
        server.add_service(svc)
        server.start()
        assert served_cert(port) == pem_der(certs.server)

        path.write_text(tls_conf(certs.other, certs.other_key))
        server.reload()
        assert served_cert(port) == pem_der(certs.other)

        path.write_text(tls_conf(str(tmp_path / "missing.pem"), certs.other_key))
        with pytest.raises(ProxyError) as e:
            server.reload()
        assert e.value.code == ProxyError.CONFIG_INVALID
        assert "services.edge.listeners.0.tls" in str(e.value)
        assert served_cert(port) == pem_der(certs.other)
    conf.close()
