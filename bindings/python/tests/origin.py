"""The test origin: a small threaded HTTP/1.1 server (http.server) on 127.0.0.1:0 that answers
every request with a JSON echo of what it received (method, path, headers, body). Prints its port
on the first line of stdout, then serves until terminated."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else Nagle + delayed ACK cost 40 ms per keep-alive response

    def _answer(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        doc = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("latin-1"),
        }
        out = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-origin", "yes")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *a: Any) -> None:  # quiet
        pass


class _Origin(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024



if __name__ == "__main__":
    srv = _Origin(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), _Echo)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()
