"""A minimal caching, compressing reverse proxy: listen on argv[1] (default 127.0.0.1:8080) and
forward every request to argv[2]. Without argv[2] it also starts an embedded demo origin (a second
service answering every request itself, cacheable for a minute), so `python minimal_proxy.py` works
out of the box; the second curl is a cache hit (x-cache-status: HIT):

  python examples/python/minimal_proxy.py 127.0.0.1:8080 &  curl -i http://127.0.0.1:8080/hello; curl -i http://127.0.0.1:8080/hello

Stop with Ctrl-C (fast) or SIGTERM (graceful). Pingora's flags are the library's: -c FILE (YAML
configuration), -d (daemon), -t (test the configuration), -u (take the listening sockets over from
the running proxy, which SIGQUIT hands them to); SIGHUP reloads the file. Mirrors
examples/c/minimal_proxy.c."""
import logging
import sys
from typing import List

import libproxy


# What the cache did, by CacheStatus.
CACHE_NAMES = ["-", "HIT", "MISS", "STALE", "REVALIDATED", "EXPIRED", "BYPASS"]


class Config(libproxy.Proxy):
    def __init__(self, upstream: str) -> None:
        self.upstream = libproxy.Peer(upstream)

    # upstream_peer: every request goes to the configured upstream.
    def upstream_peer(self, s: libproxy.Session) -> None:
        s.set_peer(self.upstream)

    # logging: one access-log line per request, with what the cache did. A failed request says
    # why; one whose response was cut short (head sent, body incomplete) says so instead of
    # looking like a plain 200.
    def logging(self, s: libproxy.Session) -> None:
        sum_ = s.summary()
        cut = " TRUNCATED" if sum_.truncated else ""
        cached = CACHE_NAMES[s.cache_status]
        err = f", error: {s.error}" if s.error else ""
        print(f"{s.method} {s.path} -> {sum_.status}{cut}, {sum_.bytes_out} bytes, {sum_.total_us} us, cache {cached}{err}", flush=True)


class DemoOrigin(libproxy.Proxy):
    # The demo origin's request_filter: answer every request here, cacheable for a minute.
    def request_filter(self, s: libproxy.Session) -> None:
        body = f"hello from the libproxy demo origin, you asked for {s.path}\n"
        s.respond(200, {"content-type": "text/plain", "cache-control": "max-age=60"}, body)


def main(argv: List[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="libproxy[%(levelname)s]: %(message)s")
    # Takes -c/-d/-t/-u out of argv; the positional arguments stay.
    conf, argv = libproxy.Conf.from_args(argv)
    listen = argv[1] if len(argv) > 1 else "127.0.0.1:8080"
    # `import libproxy` already refused a library with another ABI major.
    with libproxy.Server() as server, conf:
        server.set_conf(conf)
        if len(argv) > 2:
            upstream = argv[2]
        else:
            origin = libproxy.Service("demo-origin", DemoOrigin(), listen="127.0.0.1:0")
            upstream = f"127.0.0.1:{origin.port}"
            server.add_service(origin)
            print(f"demo origin on {upstream}")

        svc = libproxy.Service("proxy", Config(upstream), threads=2)
        # threads, limits and listeners of services.proxy in the file, if any
        svc.apply_conf(conf)
        port = svc.add_tcp(listen)
        # gzip, brotli or zstd for text responses, as each client's Accept-Encoding asks.
        svc.set_compression(libproxy.Compression.ENABLED, 1)
        # A 64 MiB HTTP cache in front of the upstream; x-cache-status says what it did. The cache
        # stores what the upstream sent and each client gets its own coding of it.
        with libproxy.Cache(64 << 20, status_header=True) as cache:
            svc.set_cache(cache)
        server.add_service(svc)

        print(f"{libproxy.version()} proxying on port {port} to {upstream}", flush=True)
        server.run(signals=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
