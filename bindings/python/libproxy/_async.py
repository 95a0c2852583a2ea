"""Deferred decisions and the asyncio bridge.

A hook returning an awaitable (``async def``) is run on an asyncio loop: the caller's, when the
server runs through ``await Server.serve()``, else one the binding owns (a daemon thread); the
trampoline answers ``PROXY_PENDING`` and the loop thread resumes the session when the coroutine
finishes. That thread is also the only one using the session meanwhile, which is what the C API
allows.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Awaitable, Dict, Optional, Union

from . import _ffi
from ._enums import Action
from ._errors import ClosedError, ProxyError
from ._log import log

if TYPE_CHECKING:
    from ._server import Server
    from ._session import Session


class Deferred:
    """A session waiting for a decision (see :meth:`Session.defer`). :meth:`resume` may be
    called from any thread, exactly once; it never runs a hook itself."""

    __slots__ = ("session", "id", "_lock", "_done")

    def __init__(self, session: Session, session_id: int) -> None:
        #: The deferred session: usable from the thread that will resume, until it does.
        self.session = session
        #: ``proxy_session_id`` of the session.
        self.id = session_id
        self._lock = threading.Lock()
        self._done = False

    @property
    def done(self) -> bool:
        """True once resumed (or cancelled because the hook raised)."""
        return self._done

    def resume(self, action: Optional[Union[Action, int]] = None) -> None:
        """Lets the request go on with ``action`` (default: RESPONDED if :meth:`Session.respond`
        was called, else CONTINUE). Raises ``ProxyError`` with ``GONE`` when the request ended
        (pending deadline, client gone, server shut down) and ``ALREADY`` on a second call
        (``WRONG_STATE`` would mean the library saw nothing pending: a binding bug)."""
        with self._lock:
            if self._done:
                raise ProxyError(_ffi.PROXY_ALREADY, "Deferred.resume")
            self._done = True
        s = self.session
        if action is None:
            action = _ffi.PROXY_RESPONDED if s._responded else _ffi.PROXY_CONTINUE
        s._ptr = None
        server = s._b.server
        if server is None:
            raise ClosedError("server")
        server.resume(self.id, int(action))

    def _cancel(self) -> None:
        with self._lock:
            self._done = True
        self.session._ptr = None


class _Loop:
    """The binding's own asyncio loop on a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.thread: Optional[threading.Thread] = None
        self.tasks: Dict["asyncio.Task[None]", Deferred] = {}

    def get(self) -> asyncio.AbstractEventLoop:
        loop = self.loop
        if loop is not None:
            return loop
        with self._lock:
            if self.loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                t = threading.Thread(target=run, name="libproxy-asyncio", daemon=True)
                t.start()
                ready.wait()
                self.thread, self.loop = t, loop
            return self.loop

    def stop(self) -> None:
        loop, t = self.loop, self.thread
        if loop is None or t is None or not t.is_alive():
            return

        def cancel_all() -> None:
            for task in list(self.tasks):
                if task.get_loop() is loop:  # a caller's loop cancels its own (Server.serve)
                    task.cancel()
            loop.call_soon(loop.stop)

        loop.call_soon_threadsafe(cancel_all)
        t.join(timeout=2)


_LOOP = _Loop()


def loop() -> asyncio.AbstractEventLoop:
    """The asyncio loop async hooks run on (started on first use; a daemon thread)."""
    return _LOOP.get()


def _schedule(coro: Awaitable[Any], s: Session) -> None:
    d = s.defer()
    server = s._b.server
    own = server._loop if server is not None else None
    ms = s._b.pending_ms
    # Finish before libproxy's pending deadline, so the coroutine never holds an expired session.
    timeout = max(ms - min(200, ms // 10), 1) / 1000.0
    if own is not None:
        try:
            own.call_soon_threadsafe(_start_task, own, coro, d, timeout)
            return
        except RuntimeError:  # the caller's loop closed while the server still runs
            pass
    lp = _LOOP.get()
    lp.call_soon_threadsafe(_start_task, lp, coro, d, timeout)


def _start_task(lp: asyncio.AbstractEventLoop, coro: Awaitable[Any], d: Deferred, timeout: float) -> None:
    task = lp.create_task(_drive(coro, d, timeout))
    _LOOP.tasks[task] = d
    task.add_done_callback(_forget_task)


def _forget_task(task: "asyncio.Task[None]") -> None:
    _LOOP.tasks.pop(task, None)


def _cancel_sessions_of(server: "Server") -> None:
    """Invalidates (and cancels) the async hooks still holding sessions of ``server``, on the
    thread of each loop they run on (the binding's, the one ``serve`` runs on), so none touches a
    session after the server dropped it."""
    _on_loop(_LOOP.loop, _LOOP.thread, server)
    _on_loop(server._loop, server._loop_thread, server)


def _on_loop(
    lp: Optional[asyncio.AbstractEventLoop], t: Optional[threading.Thread], server: "Server"
) -> None:
    if lp is None or t is None or not t.is_alive():
        return

    def run() -> None:
        for task, d in list(_LOOP.tasks.items()):
            if task.get_loop() is lp and d.session._b.server is server:
                d._cancel()
                task.cancel()

    if threading.current_thread() is t:
        run()
        return
    done = threading.Event()

    def run_and_signal() -> None:
        try:
            run()
        finally:
            done.set()

    try:
        lp.call_soon_threadsafe(run_and_signal)
    except RuntimeError:  # loop closed
        return
    done.wait(5)


async def _drive(coro: Awaitable[Any], d: Deferred, timeout: float) -> None:
    s = d.session
    action: int
    try:
        r = await asyncio.wait_for(coro, timeout)
        if r is None:
            action = _ffi.PROXY_RESPONDED if s._responded else _ffi.PROXY_CONTINUE
        elif isinstance(r, int) and r in (1, 2, 4):
            action = int(r)
        else:
            log.error("libproxy: async hook returned %r, not an Action; failing the request", r)
            action = _ffi.PROXY_ERROR
    except asyncio.TimeoutError:
        log.error("libproxy: async hook did not finish within the pending deadline; failing it")
        action = _ffi.PROXY_ERROR
    except asyncio.CancelledError:
        d._cancel()
        raise
    except BaseException:
        log.exception("libproxy: exception in async hook; failing the request (500)")
        action = _ffi.PROXY_ERROR
    if d.done:
        return
    try:
        d.resume(action)
    except ProxyError as e:
        # GONE: the request ended meanwhile (client gone, deadline, shutdown) -- nothing to do.
        # ALREADY / WRONG_STATE: someone else decided (or nothing was pending) -- worth a warning.
        if e.code != _ffi.PROXY_GONE:
            log.warning("libproxy: resume failed: %s", e)
