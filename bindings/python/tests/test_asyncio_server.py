"""`await Server.serve()`: the server runs without blocking the caller's asyncio loop, async hooks
run on that loop (not the binding's own thread), and cancelling the task shuts the server down."""

from __future__ import annotations

import asyncio
import http.client
import threading
from typing import Dict, Optional, Tuple

import pytest

from libproxy import Action, Peer, Proxy, Server, Service, Session


def _get(port: int, path: str) -> Tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class AsyncHooks(Proxy):
    def __init__(self, upstream: str) -> None:
        self.peer = Peer(upstream)
        self.seen: Dict[str, object] = {}
        self.lock: Optional[asyncio.Lock] = None

    async def request_filter(self, session: Session) -> Optional[Action]:
        self.seen["loop"] = asyncio.get_running_loop()
        self.seen["thread"] = threading.current_thread()
        # An object bound to the caller's loop works only on that loop.
        assert self.lock is not None
        async with self.lock:
            await asyncio.sleep(0.01)
        if session.path == "/deny":
            session.respond(403, None, "no\n")
            return Action.RESPONDED
        return None

    def upstream_peer(self, session: Session) -> None:
        session.set_peer(self.peer)


def test_serve_runs_async_hooks_on_the_callers_loop(origin: str) -> None:
    hooks = AsyncHooks(origin)

    async def main() -> Tuple[asyncio.AbstractEventLoop, int, bytes, int]:
        loop = asyncio.get_running_loop()
        hooks.lock = asyncio.Lock()
        async with Server() as srv:
            svc = Service("aio", hooks, listen="127.0.0.1:0")
            port = svc.port
            assert port is not None
            srv.add_service(svc)
            task = asyncio.create_task(srv.serve(grace_ms=1000))
            # The client on a thread of its own: this loop must stay free for the hooks.
            status, body = await loop.run_in_executor(None, _get, port, "/through")
            denied, _ = await loop.run_in_executor(None, _get, port, "/deny")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return loop, status, body, denied

    loop, status, body, denied = asyncio.run(main())
    assert status == 200 and b"/through" in body
    assert denied == 403
    assert hooks.seen["loop"] is loop
    assert hooks.seen["thread"] is threading.current_thread()


def test_serve_returns_when_the_server_is_shut_down(origin: str) -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        hooks = AsyncHooks(origin)
        hooks.lock = asyncio.Lock()
        srv = Server()
        svc = Service("aio", hooks, listen="127.0.0.1:0")
        port = svc.port
        assert port is not None
        srv.add_service(svc)
        task = asyncio.create_task(srv.serve())
        status, _ = await loop.run_in_executor(None, _get, port, "/one")
        await loop.run_in_executor(None, srv.shutdown, 0)
        await asyncio.wait_for(task, 20)  # returns, not cancelled
        srv.close()
        return status

    assert asyncio.run(main()) == 200
