"""HTTP/2 through the proxy with Python clients: httpx (HTTP/2 over TLS via ALPN, and h2c with
prior knowledge) and the `h2` library driving frames itself. The proxy is the Rust example with its
embedded demo origin; PROXY_BIN points at it."""

import os
import socket
import ssl
import subprocess
import tempfile
import time

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

BIN = os.environ.get("PROXY_BIN", "target/release/examples/rust_proxy")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen) -> None:
    deadline = time.time() + 10
    while time.time() < deadline:
        assert proc.poll() is None, "proxy exited early"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("proxy did not start")


@pytest.fixture(scope="module")
def certs():
    d = tempfile.mkdtemp()
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def h2c_proxy():
    port = free_port()
    proc = subprocess.Popen([BIN, f"127.0.0.1:{port}"], env={**os.environ, "PROXY_QUIET": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port, proc)
    yield port
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def tls_proxy(certs):
    cert, key = certs
    port = free_port()
    env = {**os.environ, "PROXY_QUIET": "1", "PROXY_TLS_CERT": cert, "PROXY_TLS_KEY": key}
    proc = subprocess.Popen([BIN, f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port, proc)
    yield port, cert
    proc.terminate()
    proc.wait(10)


def test_httpx_http2_over_tls(tls_proxy):
    port, cert = tls_proxy
    with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=cert)) as c:
        for _ in range(3):
            r = c.get(f"https://localhost:{port}/hello")
            assert r.status_code == 200
            assert r.http_version == "HTTP/2"
            assert b"demo origin" in r.content


def test_httpx_http1_over_tls_still_served(tls_proxy):
    port, cert = tls_proxy
    with httpx.Client(http2=False, verify=ssl.create_default_context(cafile=cert)) as c:
        r = c.post(f"https://localhost:{port}/x", content=b"abc")
        assert r.status_code == 200
        assert r.http_version == "HTTP/1.1"


def test_httpx_h2c_prior_knowledge(h2c_proxy):
    with httpx.Client(http1=False, http2=True) as c:
        r = c.get(f"http://127.0.0.1:{h2c_proxy}/prior")
        assert r.status_code == 200
        assert r.http_version == "HTTP/2"


def test_h2_library_many_streams_on_one_connection(h2c_proxy):
    """Frames by hand with the h2 library: 50 concurrent streams, all answered on one connection."""
    sock = socket.create_connection(("127.0.0.1", h2c_proxy), timeout=5)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    ids = []
    for i in range(50):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":path", f"/s{i}"), (":scheme", "http"),
                                (":authority", "localhost")], end_stream=True)
        ids.append(sid)
    sock.sendall(conn.data_to_send())
    statuses, ended = {}, set()
    deadline = time.time() + 10
    while len(ended) < len(ids) and time.time() < deadline:
        data = sock.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                statuses[ev.stream_id] = dict(ev.headers)[b":status"]
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                ended.add(ev.stream_id)
        sock.sendall(conn.data_to_send())
    sock.close()
    assert ended == set(ids)
    assert all(s == b"200" for s in statuses.values()) and len(statuses) == 50
