#!/usr/bin/env python3
"""Open N keep-alive connections, send one GET on each, read the response, hold them all.

Usage: idle.py HOST PORT N READY_FILE
       idle.py HOST PORT N --warm
Writes "<held>" to READY_FILE once every connection has had its answer, then holds the sockets until
it is sent SIGTERM/SIGINT (or stdin closes). The caller raises `ulimit -n` above N first.

`--warm` runs the same opening phase (same concurrency), then closes every connection and exits. The
callers run it before they take the "before" RSS, so that the bounded per-thread caches and the
upstream keep-alive pool that this concurrency fills are in both readings and only the held
connections are in the difference.
"""
import asyncio
import signal
import sys

REQ = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: idle.py\r\n\r\n"


async def one(host, port, sem, held):
    async with sem:
        try:
            r, w = await asyncio.open_connection(host, port)
            w.write(REQ)
            await w.drain()
            head = await r.readuntil(b"\r\n\r\n")
            n = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    n = int(line.split(b":", 1)[1])
            if n:
                await r.readexactly(n)
            held.append((r, w))
        except Exception as e:  # a refused/closed connection is counted as not held
            print(f"idle.py: {e!r}", file=sys.stderr)


async def main():
    host, port, n, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    held = []
    sem = asyncio.Semaphore(100)  # at most 100 requests in flight: the upstream pool stays small
    await asyncio.gather(*(one(host, port, sem, held) for _ in range(n)))
    if ready == "--warm":
        for _, w in held:
            w.close()
        await asyncio.gather(*(w.wait_closed() for _, w in held), return_exceptions=True)
        return
    await asyncio.sleep(0.5)
    # count the ones the server has not closed meanwhile
    alive = sum(1 for r, _ in held if not r.at_eof())
    with open(ready, "w") as f:
        f.write(f"{alive}\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    for _, w in held:
        w.close()


asyncio.run(main())
