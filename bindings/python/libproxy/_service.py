"""Service: an HTTP proxy service being configured (``proxy_service``) and its hooks' registration."""

from __future__ import annotations

import ctypes
import os
from ctypes import byref, c_uint16, c_void_p
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Tuple, Union

from . import _ffi, _observe
from ._cache import Cache
from ._enums import Compression, Limit, Option, Timeout, Underscore
from ._errors import _err
from ._ffi import lib
from ._hooks import _Binding, _Held
from ._managed import _Managed
from ._threads import _THREAD_START, _THREAD_STOP, THREAD_STATE_MODE
from ._tls import TlsSettings

if TYPE_CHECKING:
    from ._tls_runtime import TlsCerts


class Service(_Managed):
    """An HTTP proxy service being configured (``proxy_service``): endpoints, threads, limits,
    timeouts and the hooks. Configure from one thread, then :meth:`Server.add_service`, which
    consumes it (the Service object is closed afterwards).

    ``Service("api", MyProxy(), listen="127.0.0.1:0", threads=2)`` does the common set-up in one
    call; :attr:`port` is the last bound TCP port."""

    _what = "service"

    def __init__(
        self,
        name: str = "proxy",
        hooks: Any = None,
        *,
        listen: Union[str, Sequence[str], None] = None,
        threads: Optional[int] = None,
        work_stealing: Optional[bool] = None,
        tls: Optional[TlsSettings] = None,
        listen_tls: Union[str, Sequence[str], None] = None,
        h2_only: Optional[bool] = None,
    ) -> None:
        self._binding: Optional[_Held] = None
        self.port: Optional[int] = None
        if not isinstance(name, str):
            raise TypeError(f"Service name must be a str, not {type(name).__name__}")
        if not name:
            raise ValueError("Service name must not be empty (it names the service's threads)")
        out = c_void_p()
        rc = lib.proxy_service_new(name.encode(), byref(out))
        if rc:
            raise _err(rc, "proxy_service_new")
        self._ptr = out.value
        if threads is not None:
            self.set_threads(threads)
        if work_stealing is not None:
            self.set_work_stealing(work_stealing)
        if isinstance(listen, str):
            listen = [listen]
        for a in listen or ():
            self.add_tcp(a)
        if isinstance(listen_tls, str):
            listen_tls = [listen_tls]
        if listen_tls and tls is None:
            raise ValueError("Service: listen_tls needs tls=TlsSettings(...)")
        for a in listen_tls or ():
            self.add_tls(a, tls)  # type: ignore[arg-type]
        if h2_only is not None:
            self.set_h2_only(h2_only)
        if hooks is not None:
            self.set_hooks(hooks)

    def add_tcp(self, addr: str) -> int:
        """Binds a TCP endpoint now (``127.0.0.1:0`` picks a port); returns the bound port."""
        port = c_uint16(0)
        rc = lib.proxy_service_add_tcp(self.ptr(), addr.encode(), byref(port))
        if rc:
            raise _err(rc, f"proxy_service_add_tcp({addr!r})")
        self.port = port.value
        return port.value

    def add_uds(self, path: str) -> None:
        """Binds a Unix domain socket endpoint now."""
        rc = lib.proxy_service_add_uds(self.ptr(), os.fsencode(path))
        if rc:
            raise _err(rc, f"proxy_service_add_uds({path!r})")

    def add_tls(self, addr: str, tls: TlsSettings) -> int:
        """Binds a TLS endpoint on TCP now with a copy of ``tls``; returns the bound port (and
        sets :attr:`port`). HTTP/2 is served to clients that negotiate ``h2`` by ALPN.
        ``ProxyError(TLS_INVALID)`` (with ``detail``) when the settings cannot make a server."""
        port = c_uint16(0)
        rc = lib.proxy_service_add_tls(self.ptr(), addr.encode(), tls.ptr(), byref(port))
        if rc:
            tls._check(rc, f"proxy_service_add_tls({addr!r})")
        self.port = port.value
        return port.value

    def tls_certs(self, port: int = 0) -> "TlsCerts":
        """The live certificates of this service's TLS endpoints on ``port`` (0: all of them), to
        :meth:`TlsCerts.replace` while the server runs. Take it before :meth:`Server.add_service`."""
        from ._tls_runtime import service_tls_certs

        return service_tls_certs(self.ptr(), port)

    def add_tls_uds(self, path: str, tls: TlsSettings) -> None:
        """Binds a TLS endpoint on a Unix domain socket now (see :meth:`add_tls`)."""
        rc = lib.proxy_service_add_tls_uds(self.ptr(), os.fsencode(path), tls.ptr())
        if rc:
            tls._check(rc, f"proxy_service_add_tls_uds({path!r})")

    def set_h2_only(self, on: bool = True) -> None:
        """True: serve only HTTP/2 (h2c by prior knowledge on plaintext endpoints); False
        (default): HTTP/1.x plus HTTP/2 for connections that start with its preface or negotiate
        ``h2`` by ALPN."""
        rc = lib.proxy_service_set_h2_only(self.ptr(), 1 if on else 0)
        if rc:
            raise _err(rc, "proxy_service_set_h2_only")

    def apply_conf(self, conf: Any) -> None:
        """``proxy_service_apply_conf``: this service's settings from the configuration file
        (``services.<name>``: threads, limits, listeners, bound now or taken over with ``-u``)."""
        rc = lib.proxy_service_apply_conf(self.ptr(), conf.ptr())
        if rc:
            raise _err(rc, "proxy_service_apply_conf")

    def set_threads(self, n: int) -> None:
        """Number of worker threads (1..=1024)."""
        rc = lib.proxy_service_set_threads(self.ptr(), n)
        if rc:
            raise _err(rc, "proxy_service_set_threads")

    def set_work_stealing(self, on: bool) -> None:
        """One work-stealing runtime (True, default) or isolated single-thread runtimes."""
        rc = lib.proxy_service_set_work_stealing(self.ptr(), 1 if on else 0)
        if rc:
            raise _err(rc, "proxy_service_set_work_stealing")

    def set_timeout(self, which: Union[Timeout, int], ms: int) -> None:
        """Sets a ``Timeout`` in milliseconds."""
        rc = lib.proxy_service_set_timeout(self.ptr(), int(which), ms)
        if rc:
            raise _err(rc, "proxy_service_set_timeout")
        if int(which) == _ffi.PROXY_TIMEOUT_PENDING:
            self._pending_ms = ms
            if isinstance(self._binding, _Binding):
                self._binding.pending_ms = ms

    def set_limit(self, which: Union[Limit, int], value: int) -> None:
        """Sets a ``Limit``."""
        rc = lib.proxy_service_set_limit(self.ptr(), int(which), value)
        if rc:
            raise _err(rc, "proxy_service_set_limit")

    def set_option(self, which: Union[Option, int], value: Union[Underscore, int]) -> None:
        """Sets an ``Option``, e.g. ``set_option(Option.UNDERSCORE_FIELDS, Underscore.REFUSE)``.
        ``ProxyError(INVALID_PARAMETER)`` for an unknown option or value."""
        rc = lib.proxy_service_set_option(self.ptr(), int(which), int(value))
        if rc:
            raise _err(rc, "proxy_service_set_option")

    def set_compression(self, which: Union[Compression, int], value: int) -> None:
        """Sets a ``Compression`` setting of the service, e.g.
        ``set_compression(Compression.ENABLED, 1)``; ``ProxyError(INVALID_PARAMETER)`` for an
        unknown setting or a value out of range, ``ProxyError(UNSUPPORTED)`` on a library older
        than ABI 0.6."""
        if not _ffi.HAVE_COMPRESSION:
            raise _err(_ffi.PROXY_UNSUPPORTED, "proxy_service_set_compression")
        rc = lib.proxy_service_set_compression(self.ptr(), int(which), int(value))
        if rc:
            raise _err(rc, "proxy_service_set_compression")

    def set_compression_types(self, types: str) -> None:
        """The media types compressed: a comma-separated list of ``type/subtype``, ``type/*`` or
        ``type/*+suffix``."""
        if not _ffi.HAVE_COMPRESSION:
            raise _err(_ffi.PROXY_UNSUPPORTED, "proxy_service_set_compression_types")
        rc = lib.proxy_service_set_compression_types(self.ptr(), types.encode())
        if rc:
            raise _err(rc, "proxy_service_set_compression_types")

    def set_cache(self, cache: "Cache") -> None:
        """Caches the service's GET and HEAD responses in ``cache`` (shared with any other service
        it is attached to)."""
        if not _ffi.HAVE_CACHE:
            raise _err(_ffi.PROXY_UNSUPPORTED, "proxy_service_set_cache")
        rc = lib.proxy_service_set_cache(self.ptr(), cache.ptr())
        if rc:
            raise _err(rc, "proxy_service_set_cache")

    def set_observe(self, flags: int) -> None:
        """Turns on the built-in metrics, request ids and error log (an OR of :class:`Observe`)."""
        _observe.set_observe(self, flags)

    def set_access_log(self, path: Optional[str], fmt: str = "combined") -> None:
        """One access line per request to ``path`` (None: the server's log callback) in ``fmt``:
        ``"combined"``, ``"json"`` or a ``$variable`` template."""
        _observe.set_access_log(self, path, fmt)

    def set_error_response(self, fn: "Callable[[int, str], Optional[Tuple[int, Sequence[Tuple[str, str]], bytes]]]") -> None:
        """Lets ``fn(status, what)`` replace the error responses the proxy makes itself (also the
        400s of malformed requests, before any hook): return ``(status, headers, body)``, or None
        for the default page. Runs on worker threads; an exception keeps the default page."""
        _observe.set_error_response(self, fn)

    def allow_upgrade(self, protocol: str) -> None:
        """Forwards upgrades to ``protocol`` (``"name"`` or ``"name/version"``); WebSocket is allowed
        by default, other offers go upstream as plain requests. ``ProxyError(INVALID_PARAMETER)``
        for a non-token and for ``h2c`` / ``h2``, which are never forwarded."""
        rc = lib.proxy_service_allow_upgrade(self.ptr(), protocol.encode())
        if rc:
            raise _err(rc, "proxy_service_allow_upgrade")

    def deny_upgrade(self, protocol: str) -> None:
        """Stops forwarding upgrades to ``protocol`` as it was allowed (``"websocket"`` turns the
        default off). ``ProxyError(NOT_FOUND)`` when it was not allowed."""
        rc = lib.proxy_service_deny_upgrade(self.ptr(), protocol.encode())
        if rc:
            raise _err(rc, "proxy_service_deny_upgrade")

    def set_hooks(self, hooks: Any) -> None:
        """Registers ``hooks`` (a :class:`Proxy` subclass instance, or any object with phase-named
        methods): each overridden phase gets its trampoline, the rest stay NULL. The object is kept
        alive as long as the server that runs the service."""
        p = self.ptr()
        b = _Binding(hooks)
        b.pending_ms = getattr(self, "_pending_ms", b.pending_ms)
        cbs = _ffi.proxy_http_callbacks()
        cbs.struct_size = ctypes.sizeof(cbs)
        cbs.user = b.key
        for i, name in enumerate(_ffi.PHASES):
            if b.fns[i] is not None:
                setattr(cbs, name, b.cfuncs[i])
        rc = lib.proxy_service_set_callbacks(p, byref(cbs))
        if rc:
            b.release()
            raise _err(rc, "proxy_service_set_callbacks")
        if THREAD_STATE_MODE == "hooks":
            rc = lib.proxy_service_set_thread_hooks(p, _THREAD_START, _THREAD_STOP, None)
            if rc:
                b.release()
                raise _err(rc, "proxy_service_set_thread_hooks")
        if self._binding is not None:
            self._binding.release()
        self._binding = b

    def _consumed(self) -> Optional[_Held]:
        b = self._binding
        self._binding = None
        self._ptr = None
        return b

    def close(self) -> None:
        """Frees the service if it was not added to a server. Idempotent."""
        p, self._ptr = self._ptr, None
        if p is not None:
            lib.proxy_service_free(p)
        b, self._binding = self._binding, None
        if b is not None:
            b.release()
