"""L4 services and the PROXY protocol from Python, over loopback with real sockets: a half-closed
echo through an L4 service with the hooks' summary, and a chain where a client's PROXY v1 header
reaches an HTTP service, whose Peer(send_proxy=2) carries it to an L4 service requiring headers,
which relays to the origin; both hooks see the carried address, the HTTP hook a TLV; an L4 hook
reads the TLS facts (SNI, version, cipher, client certificate) of a terminated mTLS connection."""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import threading
from typing import Any

import pytest

import libproxy
from libproxy import L4Service, Peer, Server, Service, TlsSettings


def echo_server() -> socket.socket:
    """Echoes each connection until its EOF, then closes (a half-close comes back as EOF)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)

    def serve(c: socket.socket) -> None:
        with c:
            while data := c.recv(65536):
                c.sendall(data)

    def accept() -> None:
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return ls


class To:
    def __init__(self, addr: str) -> None:
        self.peer = Peer(addr)
        self.seen: "queue.Queue[tuple]" = queue.Queue()

    def upstream_peer(self, s: libproxy.L4Session) -> Peer:
        self.client = s.client_addr
        return self.peer

    def logging(self, s: libproxy.L4Session) -> None:
        self.seen.put((s.client_addr, s.summary()))


@pytest.mark.parametrize("splice", [0, 1])
def test_an_l4_service_relays_a_half_closed_echo_and_logs_the_bytes(splice: int) -> None:
    ls = echo_server()
    hooks = To("127.0.0.1:%d" % ls.getsockname()[1])
    with Server() as srv:
        svc = L4Service("l4", hooks, listen="127.0.0.1:0", threads=2, idle_timeout_ms=5000, splice=splice)
        port = svc.port
        srv.add_service(svc)
        srv.start()
        payload = bytes(range(256)) * 4096  # 1 MiB
        with socket.create_connection(("127.0.0.1", port)) as c:
            threading.Thread(target=lambda: (c.sendall(payload), c.shutdown(socket.SHUT_WR)), daemon=True).start()
            got = bytearray()
            while data := c.recv(65536):
                got += data
        assert bytes(got) == payload
        client, summary = hooks.seen.get(timeout=10)
        assert client.startswith("127.0.0.1:")
        assert (summary.end, summary.bytes_up, summary.bytes_down) == ("closed", len(payload), len(payload))
    ls.close()


class Front(libproxy.Proxy):
    def __init__(self, l4_port: int) -> None:
        self.peer = Peer("127.0.0.1:%d" % l4_port, send_proxy=2)
        self.seen: list = []

    def upstream_peer(self, s: libproxy.Session) -> None:
        self.seen.append((s.client_addr, libproxy.proxy_tlv(s, 0x02)))
        s.set_peer(self.peer)


def test_proxy_headers_in_and_out_carry_the_client_address(origin: str, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="libproxy")
    back = To(origin)
    with Server() as srv:
        l4 = L4Service("l4", back, listen="127.0.0.1:0", threads=2, idle_timeout_ms=300)
        l4.set_proxy_protocol("required", ["127.0.0.1/32"])
        front_hooks = Front(l4.port)
        front = Service("http", front_hooks, listen="127.0.0.1:0", threads=2)
        front.set_proxy_protocol("optional")
        srv.add_service(l4)
        srv.add_service(front)
        srv.start()
        req = b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", front.port)) as c:
            c.sendall(b"PROXY TCP4 198.51.100.7 127.0.0.1 999 80\r\n" + req)
            answer = b"".join(iter(lambda: c.recv(65536), b""))
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert front_hooks.seen == [("198.51.100.7:999", None)]
        client, summary = back.seen.get(timeout=10)
        assert client == "198.51.100.7:999"
        assert summary.bytes_up > 0 and summary.bytes_down > 0
        # A malformed header on the L4 endpoint: closed unanswered and logged.
        with socket.create_connection(("127.0.0.1", l4.port)) as c:
            c.sendall(b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n" + req)
            try:
                assert c.recv(100) == b""
            except ConnectionResetError:
                pass  # closed with our request unread: a reset, as good as EOF here
    assert any("malformed PROXY header" in r.getMessage() for r in caplog.records)


class Facts(To):
    def upstream_peer(self, s: libproxy.L4Session) -> Peer:
        self.seen.put(s.tls)
        return self.peer


def test_an_l4_hook_reads_the_tls_facts_of_a_terminated_connection(certs: Any) -> None:
    ls = echo_server()
    hooks = Facts("127.0.0.1:%d" % ls.getsockname()[1])
    client_ctx = ssl.create_default_context(cafile=certs.ca)
    client_ctx.load_cert_chain(certs.client, certs.client_key)
    settings = TlsSettings(cert=certs.server, key=certs.server_key, client_ca=certs.ca, client_auth="required")
    with Server() as srv, settings as tls:
        svc = L4Service("l4-tls", hooks)
        port = svc.add_tls("127.0.0.1:0", tls)
        srv.add_service(svc)
        srv.start()
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with client_ctx.wrap_socket(raw, server_hostname="localhost") as c:
                c.sendall(b"ping")
                assert c.recv(4) == b"ping"
                version = c.version()
        facts = hooks.seen.get(timeout=10)
        assert facts is not None
        assert (facts.sni, facts.version) == ("localhost", version)
        assert facts.cipher and facts.client_subject == "CN=proxy-client"
    ls.close()
