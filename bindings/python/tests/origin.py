"""The test origin: a small threaded HTTP/1.1 server (http.server) on 127.0.0.1:0 that answers
every request with a JSON echo of what it received (method, path, headers, body), except
``GET /gen/N``: N bytes of :func:`gen_body` as text/plain, written in 64 KiB pieces, and
``/cache/...``: the response fields named by the request's ``x-res-*`` fields with a body ``n=K``,
K the requests to that target so far. Prints its port on the first line of stdout, then serves
until terminated."""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict


def _gen_block() -> bytes:
    words = [b"proxy", b"stream", b"header", b"chunk", b"origin", b"client", b"window", b"frame"]
    out = bytearray()
    x = 2463534242
    while len(out) < 1 << 16:
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out += words[x % len(words)] + (b"\n" if x % 11 == 0 else b" ")
    return bytes(out[: 1 << 16])


_BLOCK = _gen_block()


def gen_body(n: int) -> bytes:
    """The body of ``/gen/N``: 64 KiB of text from a fixed pseudo-random word sequence, repeated."""
    reps = n // len(_BLOCK) + 1
    return (_BLOCK * reps)[:n]


_counts: Dict[str, int] = {}
_counts_lock = threading.Lock()


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else Nagle + delayed ACK cost 40 ms per keep-alive response

    def _gen(self, n: int) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(n))
        self.end_headers()
        body = gen_body(n)
        for i in range(0, n, 1 << 16):
            self.wfile.write(body[i : i + (1 << 16)])

    def _cache(self) -> None:
        # For the cache tests: the response fields the request names in x-res-* fields, and a
        # body counting the requests that reached this path (so a cached answer shows an old count).
        with _counts_lock:
            _counts[self.path] = _counts.get(self.path, 0) + 1
            body = f"n={_counts[self.path]}".encode()
        self.send_response(200)
        for k, v in self.headers.items():
            if k.lower().startswith("x-res-"):
                self.send_header(k[6:], v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _answer(self) -> None:
        if self.command == "GET" and self.path.startswith("/gen/"):
            return self._gen(int(self.path[5:].split("?")[0]))
        if self.path.startswith("/cache/"):
            return self._cache()
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        doc = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("latin-1"),
        }
        getpeercert = getattr(self.connection, "getpeercert", None)
        if getpeercert is not None:  # TLS origin: who the client (the proxy) said it was
            cert = getpeercert() or {}
            doc["tls"] = {"client_cn": dict(x[0] for x in cert.get("subject", ())).get("commonName")}
        out = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-origin", "yes")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def log_message(self, *a: Any) -> None:  # quiet
        pass


class _Origin(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024



if __name__ == "__main__":
    # origin.py [port] [--tls CERT KEY [--client-ca CA]]: with --tls, HTTPS (HTTP/1.1 by ALPN);
    # with --client-ca, client certificates signed by CA are required.
    args = sys.argv[1:]
    tls = None
    if "--tls" in args:
        i = args.index("--tls")
        tls = args[i + 1 : i + 3]
        del args[i : i + 3]
    client_ca = None
    if "--client-ca" in args:
        i = args.index("--client-ca")
        client_ca = args[i + 1]
        del args[i : i + 2]
    srv = _Origin(("127.0.0.1", int(args[0]) if args else 0), _Echo)
    if tls:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        ctx.set_alpn_protocols(["http/1.1"])
        if client_ca:
            ctx.load_verify_locations(client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()
