"""TLS at runtime through the binding: the facts of the client's connection in hooks (SNI, ALPN,
version, cipher, the mTLS client certificate) over HTTP/1.1 (``ssl``) and HTTP/2 (httpx), routing
by SNI, certificates replaced under a handshake loop, and the certificate callback at once, async
and deferred to a thread."""

from __future__ import annotations

import dataclasses
import json
import socket
import ssl
import threading
from typing import Any, Iterator, List, Optional

import pytest

import libproxy
from libproxy import ClientHello, Peer, Proxy, TlsCert, TlsSettings


class FactsEcho(Proxy):
    """Answers every request with its TLS facts as JSON."""

    def request_filter(self, s: libproxy.Session) -> None:
        t = s.tls
        doc = None if t is None else dataclasses.asdict(t)
        if doc is not None:
            doc["client_chain"] = [len(c) for c in doc["client_chain"]]
        s.respond(200, body=json.dumps({"tls": doc, "sni": s.sni}))


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: List[libproxy.Server] = []

    def go(hooks: Any, tls: TlsSettings, plain: bool = False) -> Any:
        srv = libproxy.Server()
        svc = libproxy.Service("tls-runtime", hooks, threads=2)
        port = svc.add_tls("127.0.0.1:0", tls)
        plain_port = svc.add_tcp("127.0.0.1:0") if plain else None
        certs = svc.tls_certs(port)
        srv.add_service(svc)
        srv.start()
        servers.append(srv)
        return port, plain_port, certs

    yield go
    for s in servers:
        s.close()


def ctx(certs: Any, client_cert: bool = False, check_hostname: bool = True) -> ssl.SSLContext:
    c = ssl.create_default_context(cafile=certs.ca)
    c.check_hostname = check_hostname
    if client_cert:
        c.load_cert_chain(certs.client, certs.client_key)
    return c


def handshake(port: int, c: ssl.SSLContext, host: str) -> str:
    """A TLS handshake with SNI ``host``; returns the CN of the certificate served."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with c.wrap_socket(raw, server_hostname=host) as s:
            return dict(x[0] for x in s.getpeercert()["subject"])["commonName"]


def get_json(port: int, c: ssl.SSLContext, host: str = "localhost") -> Any:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with c.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return json.loads(body)


def test_hooks_see_tls_facts_over_http11_and_http2(serve: Any, certs: Any) -> None:
    import httpx

    tls = TlsSettings(cert=certs.server, key=certs.server_key, client_ca=certs.ca, client_auth="optional")
    port, plain, _ = serve(FactsEcho(), tls, plain=True)
    c = ctx(certs, client_cert=True)
    c.set_alpn_protocols(["http/1.1"])
    c.maximum_version = ssl.TLSVersion.TLSv1_3
    doc = get_json(port, c)
    t = doc["tls"]
    assert (doc["sni"], t["sni"], t["alpn"], t["version"]) == ("localhost", "localhost", "http/1.1", "TLSv1.3")
    assert t["cipher"].startswith("TLS13_")
    assert t["client_subject"] == "CN=proxy-client" and t["client_issuer"] == "CN=libproxy test CA"
    # OpenSSL sends the chain up to the CA it trusts: the client's own certificate comes first.
    assert t["client_sans"] == [] and len(t["client_chain"]) >= 1 and t["client_chain"][0] > 100
    assert t["client_serial"] and t["client_not_after"] > 0

    h2 = ctx(certs, client_cert=True)
    h2.maximum_version = ssl.TLSVersion.TLSv1_2
    with httpx.Client(http2=True, verify=h2, timeout=10) as hc:
        r = hc.get(f"https://localhost:{port}/")
        assert r.http_version == "HTTP/2"
        t = r.json()["tls"]
        assert (t["alpn"], t["version"], t["client_subject"]) == ("h2", "TLSv1.2", "CN=proxy-client")
        assert t["cipher"].startswith("TLS_ECDHE_")

    with httpx.Client(timeout=10) as hc:
        assert hc.get(f"http://127.0.0.1:{plain}/").json() == {"tls": None, "sni": None}


class BySni(Proxy):
    """localhost goes to the origin; any other name to a port nobody listens on (502)."""

    def __init__(self, origin: str, dead: str) -> None:
        self.origin, self.dead = origin, dead

    def upstream_peer(self, s: libproxy.Session) -> None:
        s.set_peer(Peer(self.origin if s.sni == "localhost" else self.dead))


def test_a_hook_routes_by_sni(serve: Any, certs: Any, origin: str) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{free.getsockname()[1]}"
    tls = TlsSettings(cert=certs.server, key=certs.server_key, sni={"other.test": (certs.other, certs.other_key)})
    port, _, _ = serve(BySni(origin, dead), tls)
    assert get_json(port, ctx(certs), "localhost")["path"] == "/"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx(certs).wrap_socket(raw, server_hostname="other.test") as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 502")


def test_certificates_rotate_under_a_handshake_loop(serve: Any, certs: Any, origin: str) -> None:
    tls = TlsSettings(cert=certs.server, key=certs.server_key)
    port, _, live = serve(FactsEcho(), tls)
    sets = [TlsSettings(cert=certs.other, key=certs.other_key), TlsSettings(cert=certs.server, key=certs.server_key)]
    stop = threading.Event()
    seen: List[str] = []
    failures: List[BaseException] = []
    c = ctx(certs, check_hostname=False)  # the chain is verified; the name changes with the set

    def loop() -> None:
        while not stop.is_set():
            try:
                seen.append(handshake(port, c, "localhost"))
            except BaseException as e:  # noqa: BLE001
                failures.append(e)

    clients = [threading.Thread(target=loop) for _ in range(2)]
    for t in clients:
        t.start()
    try:
        for i in range(6):
            before = len(seen)
            live.replace(sets[i % 2])
            want = "other.test" if i % 2 == 0 else "localhost"
            assert handshake(port, c, "localhost") == want
            while len(seen) < before + 20 and not failures:
                threading.Event().wait(0.01)
    finally:
        stop.set()
        for t in clients:
            t.join(10)
    assert failures == [] and len(seen) >= 120
    assert {"localhost", "other.test"} <= set(seen)
    with pytest.raises(libproxy.ProxyError) as e:
        live.replace(TlsSettings())
    assert e.value.code == libproxy.ProxyError.TLS_INVALID
    live.close()


def test_cert_callback_at_once_async_and_deferred(serve: Any, certs: Any) -> None:
    other = TlsCert(cert=certs.other, key=certs.other_key)
    server = TlsCert(cert=certs.server, key=certs.server_key)
    hellos: List[ClientHello] = []
    deciders: List[threading.Thread] = []

    async def later() -> Optional[TlsCert]:
        return other

    def choose(h: ClientHello) -> Any:
        hellos.append(h)
        if h.server_name == "other.test":
            return other  # at once
        if h.server_name == "async.test":
            return later()  # an awaitable: PENDING until it finishes
        if h.server_name == "thread.test":
            d = h.defer()
            t = threading.Thread(target=d.resume, args=(server,))
            deciders.append(t)
            t.start()
            return d
        return False  # refuse

    tls = TlsSettings(cert=certs.server, key=certs.server_key)
    tls.set_cert_callback(choose)
    port, _, _ = serve(FactsEcho(), tls)
    c = ctx(certs, check_hostname=False)
    c.set_alpn_protocols(["h2", "http/1.1"])
    assert handshake(port, c, "other.test") == "other.test"
    assert handshake(port, c, "async.test") == "other.test"
    assert handshake(port, c, "thread.test") == "localhost"
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(port, c, "refuse.test")
    for t in deciders:
        t.join(10)
    assert [h.server_name for h in hellos] == ["other.test", "async.test", "thread.test", "refuse.test"]
    assert hellos[0].alpn == ["h2", "http/1.1"] and 0x0403 in hellos[0].signature_schemes
    # Requests on a connection whose certificate the callback chose see the usual facts.
    assert get_json(port, ctx(certs, check_hostname=False), "other.test")["tls"]["sni"] == "other.test"
