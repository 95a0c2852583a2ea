"""gRPC through the proxy with grpcio on both sides (issue 10 item 2): a grpcio server as the origin
(h2c), the example proxy speaking h2c to it (PROXY_UPSTREAM_H2=1), grpcio clients on its cleartext
port. The statuses a server sends (in a Trailers-Only response or in trailers after messages), its
trailing metadata and a client deadline must reach the client as such, not as
`UNKNOWN: Stream removed`. Raw bytes as messages: no generated code needed."""

import os
import socket
import subprocess
import time
from concurrent import futures

import grpc
import pytest

BIN = os.environ.get("PROXY_BIN", "target/release/examples/rust_proxy")


def _unary(request: bytes, context: grpc.ServicerContext) -> bytes:
    if request == b"missing":
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    if request == b"slow":
        time.sleep(2)  # outlives the client's deadline
    context.set_trailing_metadata((("x-trail", "t1"),))
    return b"echo:" + request


def _stream(request: bytes, context: grpc.ServicerContext):
    yield b"one"
    yield b"two"
    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "out of " + request.decode())


class _Handler(grpc.GenericRpcHandler):
    def service(self, details):  # type: ignore[no-untyped-def]
        if details.method == "/t.T/Unary":
            return grpc.unary_unary_rpc_method_handler(_unary)
        if details.method == "/t.T/Stream":
            return grpc.unary_stream_rpc_method_handler(_stream)
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def channel():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((_Handler(),))
    origin = server.add_insecure_port("127.0.0.1:0")
    server.start()
    port = _free_port()
    proc = subprocess.Popen(
        [BIN, f"127.0.0.1:{port}", f"127.0.0.1:{origin}"],
        env={**os.environ, "PROXY_QUIET": "1", "PROXY_UPSTREAM_H2": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch
    finally:
        ch.close()
        proc.terminate()
        proc.wait(10)
        server.stop(0)


def test_unary_ok_with_trailing_metadata(channel) -> None:
    call = channel.unary_unary("/t.T/Unary")
    reply, c = call.with_call(b"hi", timeout=10)
    assert reply == b"echo:hi"
    assert c.code() == grpc.StatusCode.OK
    assert ("x-trail", "t1") in tuple(c.trailing_metadata())


def test_unary_error_status_and_details(channel) -> None:
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary("/t.T/Unary")(b"missing", timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND, e.value
    assert e.value.details() == "no such thing"


def test_unimplemented_method_is_trailers_only(channel) -> None:
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary("/t.T/Nope")(b"x", timeout=10)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, e.value


def test_server_stream_error_after_messages(channel) -> None:
    got = []
    with pytest.raises(grpc.RpcError) as e:
        for m in channel.unary_stream("/t.T/Stream")(b"quota", timeout=10):
            got.append(m)
    assert got == [b"one", b"two"]
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value
    assert e.value.details() == "out of quota"


def test_client_deadline(channel) -> None:
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary("/t.T/Unary")(b"slow", timeout=0.3)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value
