"""Server: owns services, starts and stops them (``proxy_server``). ``atexit`` shuts every live
server down before the interpreter finalises."""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from ctypes import byref, c_void_p
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Union

from . import _ffi, _group, _observe
from ._async import _LOOP, _cancel_sessions_of
from ._enums import Action
from ._errors import ClosedError, _err
from ._ffi import lib
from ._hooks import _Held
from ._log import _LOG_SINK, _max_level_for, log
from ._managed import _Managed
from ._service import Service

if TYPE_CHECKING:
    from ._conf import Conf
    from ._observe import Metric, MetricKind
    from ._group import Group, HealthCheck, Shutdown


def _ignore_signal(*_: Any) -> None:
    pass


_live_servers: "weakref.WeakSet[Server]" = weakref.WeakSet()


class Server(_Managed):
    """The server (``proxy_server``): owns services, starts them on their own threads, stops them.

    ``with Server() as srv: srv.add_service(svc); srv.start(); ...`` -- leaving the block (or
    :meth:`close`, or interpreter exit) shuts it down and frees it. Library diagnostics go to the
    ``"libproxy"`` logger."""

    _what = "server"

    def __init__(self, *, log_level: Optional[int] = None) -> None:
        self._lock = threading.Lock()
        self._bindings: List[_Held] = []
        # The caller's loop (and its thread) once `serve` ran: async hooks run there.
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread: Optional[threading.Thread] = None
        # Groups and callbacks the server's background services use, kept until it is freed.
        self._keep: List[Any] = []
        out = c_void_p()
        rc = lib.proxy_server_new(byref(out))
        if rc:
            raise _err(rc, "proxy_server_new")
        self._ptr = out.value
        lvl = _max_level_for(log) if log_level is None else log_level
        rc = lib.proxy_server_set_log(self._ptr, _LOG_SINK, None, lvl)
        if rc:
            lib.proxy_server_free(self._ptr)
            self._ptr = None
            raise _err(rc, "proxy_server_set_log")
        _live_servers.add(self)

    def add_service(self, service: Service) -> None:
        """Adds (and consumes) ``service``; it starts with the server."""
        p = self.ptr()
        sp = service.ptr()
        b = service._consumed()
        rc = lib.proxy_server_add_service(p, sp)
        if b is not None:
            b.server = self
            self._bindings.append(b)
        if rc:
            raise _err(rc, "proxy_server_add_service")

    def add_health_check(self, group: "Group", check: "HealthCheck") -> None:
        """Checks ``group``'s backends while the server runs (before :meth:`start`)."""
        _group._add_health_check(self, group, check)

    def add_dns_discovery(self, group: "Group", host: str, port: int, weight: int = 1, interval_ms: int = 0) -> None:
        """Keeps ``group`` to what ``host`` resolves to, re-resolved every ``interval_ms``
        (default 30 s; before :meth:`start`)."""
        _group._add_dns_discovery(self, group, host, port, weight, interval_ms)

    def add_metrics(self, listen: str) -> int:
        """Adds the metrics endpoint (``GET /metrics``, Prometheus text format) on ``listen``
        (port 0 picks one); returns its port (before :meth:`start`)."""
        return _observe.add_metrics(self, listen)

    def metric(
        self, kind: "MetricKind", name: str, help: str, labels: "Sequence[str]" = (), buckets: "Sequence[float]" = ()
    ) -> "Metric":
        """Defines a counter, gauge or histogram on the metrics endpoint (any time, any thread)."""
        return _observe.new_metric(self, kind, name, help, labels, buckets)

    def set_log_file(self, path: Optional[str], max_level: int = 3) -> None:
        """Also writes the server's log messages up to ``max_level`` (1 error .. 4 debug; default
        info) to the file ``path``, one timestamped line each; None stops."""
        _observe.set_log_file(self, path, max_level)

    def reopen_logs(self) -> None:
        """Reopens the access log files (log rotation: rename them first); no line is lost."""
        _observe.reopen_logs(self)

    def add_background(self, name: str, fn: "Callable[[Shutdown], None]") -> None:
        """Runs ``fn(shutdown)`` on a thread of its own while the server runs: the host's own
        service (discovery, metrics). It should return soon after ``shutdown.wait(ms)`` is True
        (before :meth:`start`)."""
        _group._add_background(self, name, fn)

    def set_conf(self, conf: "Conf") -> None:
        """``proxy_server_set_conf``: grace period, log level, pid file, user/group, and what
        SIGQUIT (upgrade) and SIGHUP (reload) do under ``run(signals=True)`` (before :meth:`start`)."""
        rc = lib.proxy_server_set_conf(self.ptr(), conf.ptr())
        if rc:
            raise _err(rc, "proxy_server_set_conf")

    def reload(self) -> None:
        """``proxy_server_reload``: re-reads the configuration file; upstream groups, log level and
        grace period change, anything else raises ``ProxyError(RELOAD_REFUSED)`` (an upgrade is
        needed) and nothing is applied."""
        rc = lib.proxy_server_reload(self.ptr())
        if rc:
            raise _err(rc, "proxy_server_reload")

    def upgrade(self) -> None:
        """``proxy_server_upgrade``: hands the listening sockets to the new process started with
        ``-u``, then shuts down gracefully; returns once stopped. ``ProxyError(UPGRADE_FAILED)``
        (still serving) when no new process took them."""
        rc = lib.proxy_server_upgrade(self.ptr())
        if rc:
            raise _err(rc, "proxy_server_upgrade")

    def start(self) -> None:
        """Starts every service on its own threads and returns at once."""
        rc = lib.proxy_server_start(self.ptr())
        if rc:
            raise _err(rc, "proxy_server_start")

    def run(self, signals: bool = False) -> None:
        """Starts if needed and blocks until stopped (:meth:`shutdown` from another thread or,
        with ``signals=True``, SIGTERM/SIGINT -- libproxy then owns those signals; after
        :meth:`set_conf` also SIGHUP (reload) and SIGQUIT (upgrade))."""
        p = self.ptr()
        if not signals:
            rc = lib.proxy_server_run(p, 0)
        else:
            # libproxy's handler chains to Python's C-level SIGINT handler, which would raise
            # KeyboardInterrupt once run() returns: the stop is libproxy's, so swallow it here.
            import signal as _signal

            main = threading.current_thread() is threading.main_thread()
            prev = _signal.signal(_signal.SIGINT, _ignore_signal) if main else None
            try:
                rc = lib.proxy_server_run(p, _ffi.PROXY_RUN_SIGNALS)
            finally:
                if main:
                    _ignore_signal()  # a Python-level call: pending handlers run here
                    _signal.signal(_signal.SIGINT, prev)
        if rc:
            raise _err(rc, "proxy_server_run")

    async def serve(self, grace_ms: int = 0) -> None:
        """Runs the server without blocking the running asyncio loop, and runs the ``async def``
        hooks of its services on that loop rather than the binding's own loop thread, so they
        may share the application's clients, locks and tasks. Returns when :meth:`shutdown` or
        :meth:`close` stops the server; cancelling the task shuts the server down (in-flight
        requests get up to ``grace_ms``) and re-raises::

            async with Server() as srv:
                srv.add_service(Service("api", MyProxy(), listen="127.0.0.1:8080"))
                await srv.serve()
        """
        loop = asyncio.get_running_loop()
        p = self.ptr()
        self._loop, self._loop_thread = loop, threading.current_thread()
        try:
            # proxy_server_run blocks until the server stops: on an executor thread (ctypes
            # releases the GIL meanwhile), while this loop keeps running the hooks.
            rc = await loop.run_in_executor(None, lib.proxy_server_run, p, 0)
        except asyncio.CancelledError:
            _cancel_sessions_of(self)
            await loop.run_in_executor(None, lib.proxy_server_shutdown, p, grace_ms)
            raise
        if rc:
            raise _err(rc, "proxy_server_run")

    async def __aenter__(self) -> "Server":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        # close() waits for running hooks; off the loop, so that hooks on it can finish.
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def shutdown(self, grace_ms: int = 0) -> None:
        """Stops accepting, lets in-flight requests finish for up to ``grace_ms``, stops the
        workers; returns when no hook runs any more. Pending sessions are dropped."""
        rc = lib.proxy_server_shutdown(self.ptr(), grace_ms)
        if rc:
            raise _err(rc, "proxy_server_shutdown")

    def resume(self, session_id: int, action: Union[Action, int] = Action.CONTINUE) -> None:
        """``proxy_session_resume``: any thread, never blocks. Raises ``ProxyError``: ``GONE``
        after the session ended (or its pending deadline passed), ``ALREADY`` for a second resume
        of the same decision, ``WRONG_STATE`` when the session is alive but nothing is pending,
        ``INVALID_PARAMETER`` for an action other than CONTINUE / RESPONDED / ERROR."""
        with self._lock:
            p = self._ptr
            if p is None:
                raise ClosedError("server")
            rc = lib.proxy_session_resume(p, session_id, int(action))
        if rc:
            raise _err(rc, "proxy_session_resume")

    def close(self) -> None:
        """Shuts down (grace 0) and frees the server, then releases the hooks. Idempotent.
        From inside a hook it raises ``ProxyError(BUSY)``."""
        p = self._ptr
        if p is None:
            return
        _cancel_sessions_of(self)
        self._loop = self._loop_thread = None
        rc = lib.proxy_server_shutdown(p, 0)
        if rc == _ffi.PROXY_BUSY:
            raise _err(rc, "proxy_server_shutdown")
        with self._lock:
            if self._ptr is None:
                return
            self._ptr = None
        rc = lib.proxy_server_free(p)
        bindings, self._bindings = self._bindings, []
        for b in bindings:
            b.release()
        self._keep = []
        _live_servers.discard(self)
        if rc:
            raise _err(rc, "proxy_server_free")


@atexit.register
def _shutdown_all() -> None:
    """Before the interpreter finalises: no worker may call into Python afterwards."""
    for srv in list(_live_servers):
        try:
            srv.close()
        except Exception:  # pragma: no cover
            log.exception("libproxy: closing a server at exit failed")
    _LOOP.stop()
