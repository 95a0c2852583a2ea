"""Upstream groups (``proxy_group_*``, ABI 0.7): backends with weights and per-backend options,
chosen by an algorithm, with passive health, active checks, DNS discovery, host background
services, and per-backend figures. A group is an id, not a pointer: after :meth:`Group.close`
the library answers GONE for it, never touching freed memory."""

from __future__ import annotations

import ctypes
import enum
import threading
from ctypes import byref, c_char_p, c_size_t, c_uint32, c_uint64, create_string_buffer
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

from . import _ffi
from ._errors import ProxyError, _err
from ._ffi import lib
from ._managed import _Managed
from ._peer import Peer
from ._types import _enc


class Algorithm(enum.IntEnum):
    """``PROXY_GROUP_*``: how a group chooses among its backends."""

    ROUND_ROBIN = _ffi.PROXY_GROUP_ROUND_ROBIN
    RANDOM = _ffi.PROXY_GROUP_RANDOM
    LEAST_OUTSTANDING = _ffi.PROXY_GROUP_LEAST_OUTSTANDING
    #: nginx's ``hash $key consistent``: same names and weights, same mapping.
    KETAMA = _ffi.PROXY_GROUP_KETAMA
    MAGLEV = _ffi.PROXY_GROUP_MAGLEV


class HealthEvent(enum.IntEnum):
    """``PROXY_HEALTH_*``: what a health listener hears."""

    UP = _ffi.PROXY_HEALTH_UP
    DOWN = _ffi.PROXY_HEALTH_DOWN
    EJECTED = _ffi.PROXY_HEALTH_EJECTED
    READMITTED = _ffi.PROXY_HEALTH_READMITTED


@dataclass(frozen=True)
class BackendFigures:
    """One backend's figures at one moment (``proxy_group_backend_figure``)."""

    name: str
    weight: int
    requests: int
    failures: int
    ejections: int
    in_flight: int
    connections: int
    healthy: bool
    ejected: bool


@dataclass(frozen=True)
class HealthCheck:
    """``proxy_health_check``: ``probe`` is ``"tcp"``, ``"tls"`` or ``"http"``; 0 / empty take
    the library defaults (every 2000 ms, 1000 ms to answer, rise 2, fall 3, ``GET /``, the
    backend's host, any 200..399). ``status`` is the passing range, ``body`` a substring the
    response body must contain."""

    probe: str = "tcp"
    interval_ms: int = 0
    timeout_ms: int = 0
    jitter_ms: int = 0
    rise: int = 0
    fall: int = 0
    method: str = ""
    path: str = ""
    host: str = ""
    status: Tuple[int, int] = (0, 0)
    body: bytes = b""

    def _c(self) -> "_ffi.proxy_health_check":
        probes = {"tcp": _ffi.PROXY_PROBE_TCP, "tls": _ffi.PROXY_PROBE_TLS, "http": _ffi.PROXY_PROBE_HTTP}
        if self.probe not in probes:
            raise ValueError(f"HealthCheck.probe must be 'tcp', 'tls' or 'http', not {self.probe!r}")

        def view(v: Union[str, bytes]) -> "_ffi.proxy_str_in":
            b = _enc(v) if v else b""
            return _ffi.proxy_str_in(b or None, len(b))

        return _ffi.proxy_health_check(
            ctypes.sizeof(_ffi.proxy_health_check),
            probes[self.probe],
            self.interval_ms,
            self.timeout_ms,
            self.jitter_ms,
            self.rise,
            self.fall,
            self.status[0],
            self.status[1],
            view(self.method),
            view(self.path),
            view(self.host),
            view(self.body),
        )


def _need_groups() -> None:
    if not _ffi.HAVE_GROUPS:
        raise ProxyError(_ffi.PROXY_UNSUPPORTED, "upstream groups need libproxy ABI 0.7")


class Group(_Managed):
    """An upstream group (``proxy_group``). Thread-safe; changes apply to new requests at once.
    Pick from it in ``upstream_peer`` with :meth:`Session.pick`. Keep the object alive while
    servers use it (its health listener lives here); :meth:`close` frees the id."""

    _what = "group"

    def __init__(self, name: str, algorithm: Algorithm = Algorithm.ROUND_ROBIN) -> None:
        _need_groups()
        self._lock = threading.Lock()
        self._listener: Any = None
        out = c_uint64()
        rc = lib.proxy_group_new(_enc(name), int(algorithm), byref(out))
        if rc:
            raise _err(rc, "proxy_group_new")
        self._ptr = out.value

    @classmethod
    def _adopt(cls, group_id: int) -> "Group":
        """A Group owning the id a C call made (``proxy_conf_group``)."""
        g = cls.__new__(cls)
        g._lock = threading.Lock()
        g._listener = None
        g._ptr = group_id
        return g

    @property
    def id(self) -> int:
        """The group's id (what :meth:`Session.pick` passes)."""
        return self.ptr()

    def add_backend(self, peer: Union[Peer, str], weight: int = 1, name: Optional[str] = None) -> None:
        """Adds a backend: ``peer`` (or an address) with ``weight`` 1..256, named ``name``
        (default: the address; Ketama and Maglev hash the name)."""
        if not isinstance(peer, Peer):
            peer = Peer(peer)
        rc = lib.proxy_group_add_backend(self.ptr(), _enc(name) if name else None, byref(peer._c), weight)
        if rc:
            raise _err(rc, "proxy_group_add_backend")

    def remove_backend(self, name: str) -> None:
        """Removes the backend named ``name`` (requests on it finish there)."""
        rc = lib.proxy_group_remove_backend(self.ptr(), _enc(name))
        if rc:
            raise _err(rc, "proxy_group_remove_backend")

    def set_backends(self, backends: Sequence[Union[str, Tuple[str, int]]]) -> None:
        """Replaces every backend at once with plaintext ones: addresses, or (address, weight)."""
        pairs = [(b, 1) if isinstance(b, str) else b for b in backends]
        n = len(pairs)
        addrs = (c_char_p * max(n, 1))(*[_enc(a) for a, _ in pairs])
        weights = (c_uint32 * max(n, 1))(*[w for _, w in pairs])
        rc = lib.proxy_group_set_backends(self.ptr(), addrs, weights, n)
        if rc:
            raise _err(rc, "proxy_group_set_backends")

    def configure(
        self,
        *,
        max_in_flight: Optional[int] = None,
        max_connections: Optional[int] = None,
        eject_failures: Optional[int] = None,
        eject_base_ms: Optional[int] = None,
        eject_max_ms: Optional[int] = None,
        eject_max_percent: Optional[int] = None,
    ) -> None:
        """``proxy_group_set`` for each setting given: the per-backend in-flight and HTTP/1
        connection caps (503 when all are full) and passive health (failures in a row that eject, first and longest ejection,
        most of the group ejected at once)."""
        for which, value in (
            (_ffi.PROXY_GROUP_MAX_IN_FLIGHT, max_in_flight),
            (_ffi.PROXY_GROUP_MAX_CONNECTIONS, max_connections),
            (_ffi.PROXY_GROUP_EJECT_FAILURES, eject_failures),
            (_ffi.PROXY_GROUP_EJECT_BASE_MS, eject_base_ms),
            (_ffi.PROXY_GROUP_EJECT_MAX_MS, eject_max_ms),
            (_ffi.PROXY_GROUP_EJECT_MAX_PERCENT, eject_max_percent),
        ):
            if value is not None:
                rc = lib.proxy_group_set(self.ptr(), which, value)
                if rc:
                    raise _err(rc, "proxy_group_set")

    def figures(self) -> List[BackendFigures]:
        """Each backend's figures now."""
        g = self.ptr()
        n = c_size_t()
        rc = lib.proxy_group_backend_count(g, byref(n))
        if rc:
            raise _err(rc, "proxy_group_backend_count")
        out = []
        for i in range(n.value):
            size = c_size_t()
            buf = create_string_buffer(256)
            rc = lib.proxy_group_backend_name(g, i, buf, 256, byref(size))
            if rc == _ffi.PROXY_TOO_SMALL:
                buf = create_string_buffer(size.value)
                rc = lib.proxy_group_backend_name(g, i, buf, size.value, byref(size))
            if rc == _ffi.PROXY_NOT_FOUND:
                break  # the list shrank meanwhile
            if rc:
                raise _err(rc, "proxy_group_backend_name")
            v = {}
            for key, which in (
                ("weight", _ffi.PROXY_BACKEND_WEIGHT),
                ("requests", _ffi.PROXY_BACKEND_REQUESTS),
                ("failures", _ffi.PROXY_BACKEND_FAILURES),
                ("ejections", _ffi.PROXY_BACKEND_EJECTIONS),
                ("in_flight", _ffi.PROXY_BACKEND_IN_FLIGHT),
                ("connections", _ffi.PROXY_BACKEND_CONNECTIONS),
                ("healthy", _ffi.PROXY_BACKEND_HEALTHY),
                ("ejected", _ffi.PROXY_BACKEND_EJECTED),
            ):
                x = c_uint64()
                rc = lib.proxy_group_backend_figure(g, i, which, byref(x))
                if rc:
                    raise _err(rc, "proxy_group_backend_figure")
                v[key] = x.value
            out.append(
                BackendFigures(
                    name=buf.raw[: size.value].decode(),
                    weight=v["weight"],
                    requests=v["requests"],
                    failures=v["failures"],
                    ejections=v["ejections"],
                    in_flight=v["in_flight"],
                    connections=v["connections"],
                    healthy=bool(v["healthy"]),
                    ejected=bool(v["ejected"]),
                )
            )
        return out

    def on_health(self, fn: Optional[Callable[[str, HealthEvent], None]]) -> None:
        """Calls ``fn(backend_name, event)`` on each health change (from library threads; it must
        not block). An exception in ``fn`` is logged and dropped. ``None`` removes it."""
        from ._log import log

        if fn is None:
            c = _ffi.proxy_health_fn()
        else:

            def trampoline(_user: Any, name: "_ffi.proxy_str", event: int) -> None:
                try:
                    fn(_ffi.to_str(name).decode(errors="replace"), HealthEvent(event))
                except BaseException:  # never unwind into the library
                    log.exception("libproxy: health listener failed")

            c = _ffi.proxy_health_fn(trampoline)
        rc = lib.proxy_group_set_health_callback(self.ptr(), c, None)
        if rc:
            raise _err(rc, "proxy_group_set_health_callback")
        # Kept for as long as the library may call it: replaced, or the group object dropped.
        self._listener = c

    def close(self) -> None:
        """Frees the group's id (idempotent). Requests and services still using it finish."""
        with self._lock:
            g, self._ptr = self._ptr, None
        if g is not None:
            lib.proxy_group_free(g)


class Shutdown:
    """The stop signal a background service watches (``proxy_shutdown``)."""

    def __init__(self, p: int) -> None:
        self._p = p

    def wait(self, timeout_ms: int = 0) -> bool:
        """Waits up to ``timeout_ms`` for the server to begin shutting down; True once it has.
        The GIL is released while waiting."""
        return bool(lib.proxy_shutdown_wait(self._p, timeout_ms) != 0)


def _add_health_check(server: Any, group: Group, check: HealthCheck) -> None:
    c = check._c()
    rc = lib.proxy_server_add_health_check(server.ptr(), group.id, byref(c))
    if rc:
        raise _err(rc, "proxy_server_add_health_check")
    server._keep.append(group)


def _add_dns_discovery(server: Any, group: Group, host: str, port: int, weight: int, interval_ms: int) -> None:
    rc = lib.proxy_server_add_dns_discovery(server.ptr(), group.id, _enc(host), port, weight, interval_ms)
    if rc:
        raise _err(rc, "proxy_server_add_dns_discovery")
    server._keep.append(group)


def _add_background(server: Any, name: str, fn: Callable[[Shutdown], None]) -> None:
    from ._log import log

    def trampoline(_user: Any, shutdown: int) -> None:
        try:
            fn(Shutdown(shutdown))
        except BaseException:  # never unwind into the library
            log.exception("libproxy: background service %r failed", name)

    c = _ffi.proxy_background_fn(trampoline)
    rc = lib.proxy_server_add_background(server.ptr(), _enc(name), c, None)
    if rc:
        raise _err(rc, "proxy_server_add_background")
    server._keep.append(c)
