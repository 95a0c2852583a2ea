"""The binding proper: handles (Server, Service), the hook base class (Proxy), the per-callback
Session with its header views, Peer, deferral (Deferred) and the asyncio bridge.

Mechanics, in the order a request sees them:

* Every phase has one module-level ``CFUNCTYPE`` trampoline; ``proxy_http_callbacks.user`` is a
  small integer indexing ``_SLAB`` (never a Python pointer). Only phases whose method a subclass
  overrides are registered; the others stay NULL and are never crossed.
* A trampoline wraps the borrowed ``proxy_session*`` in a :class:`Session`, calls the hook, and
  turns its result into an action. The Session is invalidated when the hook returns (unless it was
  deferred), so a stored Session raises :class:`ClosedError` instead of touching freed memory.
* Any exception is logged through :mod:`logging` (logger ``"libproxy"``) and fails the request
  (``PROXY_ERROR``: 500 before the response head) -- never a silent CONTINUE.
* A hook returning an awaitable (``async def``) is run on an asyncio loop the binding owns (a daemon
  thread); the trampoline answers ``PROXY_PENDING`` and the loop thread resumes the session when
  the coroutine finishes. That thread is also the only one using the session meanwhile, which is
  what the C API allows.
* Worker threads keep one Python thread state for their whole life (``proxy_service_set_thread_hooks``
  when the library has it, else pinned lazily on the first callback), so a callback does not pay
  for creating and destroying a thread state each time.
* ``atexit`` shuts every live server down before the interpreter finalises.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import enum
import inspect
import logging
import os
import sys
import threading
import weakref
from ctypes import byref, c_size_t, c_uint16, c_uint32, c_uint64, c_void_p, string_at
from dataclasses import dataclass, field
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _ffi
from ._ffi import lib

__all__ = [
    "Action",
    "ClosedError",
    "Deferred",
    "Headers",
    "Limit",
    "Peer",
    "Phase",
    "Proxy",
    "ProxyError",
    "Server",
    "Service",
    "Session",
    "Summary",
    "Timeout",
    "TlsSettings",
    "abi_version",
    "features",
    "version",
]

log = logging.getLogger("libproxy")

StrOrBytes = Union[str, bytes]
HeaderList = Union[Mapping[str, StrOrBytes], Iterable[Tuple[StrOrBytes, StrOrBytes]], None]


# ---- errors and enums ---------------------------------------------------------------------------
class ProxyError(Exception):
    """A libproxy call failed. ``code`` is the ``proxy_result`` (e.g. ``ProxyError.GONE``),
    ``message`` the library's description of it."""

    OK = _ffi.PROXY_OK
    NULL_PARAMETER = _ffi.PROXY_NULL_PARAMETER
    INVALID_PARAMETER = _ffi.PROXY_INVALID_PARAMETER
    PANIC = _ffi.PROXY_PANIC
    IO = _ffi.PROXY_IO
    WRONG_PHASE = _ffi.PROXY_WRONG_PHASE
    GONE = _ffi.PROXY_GONE
    ALREADY = _ffi.PROXY_ALREADY
    HEADER_INVALID = _ffi.PROXY_HEADER_INVALID
    NOT_FOUND = _ffi.PROXY_NOT_FOUND
    BUSY = _ffi.PROXY_BUSY
    TOO_SMALL = _ffi.PROXY_TOO_SMALL
    WRONG_STATE = _ffi.PROXY_WRONG_STATE
    UNSUPPORTED = _ffi.PROXY_UNSUPPORTED
    TLS_INVALID = _ffi.PROXY_TLS_INVALID

    def __init__(
        self, code: int, where: str = "", message: Optional[str] = None, detail: Optional[str] = None
    ) -> None:
        self.code = int(code)
        self.message = message if message is not None else _ffi.result_message(code)
        #: The library's specific reason when it gives one (``proxy_tls_settings_last_error`` for
        #: ``TLS_INVALID``, e.g. ``"key file /x.pem: No such file or directory"``), else None.
        self.detail = detail
        self.where = where
        text = self.message + (f": {detail}" if detail else "")
        super().__init__(f"{where + ': ' if where else ''}{text} ({self.code})")


class ClosedError(ProxyError):
    """The handle was closed (server/service freed, or a session used after its callback
    returned or after it was resumed)."""

    def __init__(self, what: str) -> None:
        super().__init__(_ffi.PROXY_WRONG_STATE, what, f"{what} is closed")


def _err(rc: int, where: str) -> ProxyError:
    return ProxyError(rc, where)


class Action(enum.IntEnum):
    """What a hook tells the proxy to do next (``PROXY_CONTINUE`` ... ``PROXY_ERROR``).
    Returning ``None`` from a hook means CONTINUE, or RESPONDED after :meth:`Session.respond`."""

    CONTINUE = _ffi.PROXY_CONTINUE
    RESPONDED = _ffi.PROXY_RESPONDED
    PENDING = _ffi.PROXY_PENDING
    ERROR = _ffi.PROXY_ERROR


class Phase(enum.IntEnum):
    """``PROXY_PHASE_*``: the phase a callback runs in."""

    NONE = 0
    EARLY_REQUEST_FILTER = 1
    REQUEST_FILTER = 2
    UPSTREAM_PEER = 3
    CONNECTED_TO_UPSTREAM = 4
    UPSTREAM_REQUEST_FILTER = 5
    REQUEST_BODY_FILTER = 6
    UPSTREAM_RESPONSE_FILTER = 7
    RESPONSE_FILTER = 8
    UPSTREAM_RESPONSE_BODY_FILTER = 9
    RESPONSE_BODY_FILTER = 10
    LOGGING = 11
    FAIL_TO_CONNECT = 12
    ERROR_WHILE_PROXY = 13
    FAIL_TO_PROXY = 14
    REQUEST_END = 15


class Timeout(enum.IntEnum):
    """``PROXY_TIMEOUT_*`` for :meth:`Service.set_timeout`."""

    HEADER = _ffi.PROXY_TIMEOUT_HEADER
    KEEPALIVE = _ffi.PROXY_TIMEOUT_KEEPALIVE
    BODY_IDLE = _ffi.PROXY_TIMEOUT_BODY_IDLE
    WRITE = _ffi.PROXY_TIMEOUT_WRITE
    PENDING = _ffi.PROXY_TIMEOUT_PENDING


class Limit(enum.IntEnum):
    """``PROXY_LIMIT_*`` for :meth:`Service.set_limit`."""

    MAX_HEADER_BYTES = _ffi.PROXY_LIMIT_MAX_HEADER_BYTES
    MAX_HEADERS = _ffi.PROXY_LIMIT_MAX_HEADERS
    MAX_URI_LEN = _ffi.PROXY_LIMIT_MAX_URI_LEN
    MAX_RETRIES = _ffi.PROXY_LIMIT_MAX_RETRIES
    RETRY_BUFFER = _ffi.PROXY_LIMIT_RETRY_BUFFER
    DRAIN = _ffi.PROXY_LIMIT_DRAIN


def version() -> str:
    """``proxy_version()``, e.g. ``"libproxy/0.1.0"``."""
    return lib.proxy_version().decode()


def abi_version() -> Tuple[int, int]:
    """``proxy_abi_version()`` as ``(major, minor)``."""
    v = lib.proxy_abi_version()
    return v >> 16, v & 0xFFFF


def features() -> int:
    """``proxy_features()``: an OR of ``PROXY_FEATURE_*`` bits."""
    return lib.proxy_features()


def _enc(v: StrOrBytes) -> bytes:
    return v if isinstance(v, bytes) else v.encode("latin-1")


_VERSIONS = {_ffi.PROXY_HTTP_10: "HTTP/1.0", _ffi.PROXY_HTTP_11: "HTTP/1.1", _ffi.PROXY_HTTP_20: "HTTP/2"}

_PENDABLE = frozenset(
    i
    for i, n in enumerate(_ffi.PHASES)
    if n not in ("fail_to_connect", "error_while_proxy", "logging", "request_end")
)
_VALID_ACTIONS = (1, 2, 3, 4)


# ---- Peer, Summary ------------------------------------------------------------------------------
_ALPN = {
    "h1": _ffi.PROXY_ALPN_H1,
    "http/1.1": _ffi.PROXY_ALPN_H1,
    "h2": _ffi.PROXY_ALPN_H2,
    "h2-then-h1": _ffi.PROXY_ALPN_H2THENH1,
}


def _view(v: Union[str, bytes, "os.PathLike[str]", None]) -> "_ffi.proxy_str_in":
    b = os.fsencode(v) if v else b""
    return _ffi.proxy_str_in(b or None, len(b))


@dataclass(frozen=True)
class Peer:
    """Where and how to connect upstream (``proxy_peer``). ``address`` is ``host:port``,
    ``1.2.3.4:80``, ``[::1]:80`` or a Unix socket path. Timeouts of 0 take the library default.
    The C struct is built (and validated) once per Peer, so reusing Peer objects is cheapest.

    TLS (``tls=True``): ``sni`` is the server name sent and checked (default: the host of
    ``address``; none for an IP address); the certificate is verified against ``ca_file`` (a PEM
    bundle) or the system roots; ``verify=False`` skips verification altogether (tests, private
    networks), ``verify_hostname=False`` checks the chain but not the name; ``client_cert`` /
    ``client_key`` (PEM files) authenticate the proxy to the peer. TLS files are read when
    connecting: a missing one fails that request with 502.

    ``alpn``: the HTTP version spoken to the peer: ``"h1"`` (default), ``"h2"`` (over TLS by ALPN,
    or h2c by prior knowledge on plaintext) or ``"h2-then-h1"`` (HTTP/2 when the TLS peer agrees,
    else HTTP/1.1). ``max_h2_streams``: most concurrent requests on one HTTP/2 connection
    (0 = library default)."""

    address: str
    connect_timeout_ms: int = 0
    total_connection_timeout_ms: int = 0
    read_timeout_ms: int = 0
    write_timeout_ms: int = 0
    idle_timeout_ms: int = 0
    pool_group: int = 0
    tls: bool = False
    sni: str = ""
    ca_file: Optional[str] = None
    client_cert: Optional[str] = None
    client_key: Optional[str] = None
    verify: bool = True
    verify_hostname: bool = True
    alpn: str = "h1"
    max_h2_streams: int = 0
    _c: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        alpn = _ALPN.get(self.alpn) if isinstance(self.alpn, str) else None
        if alpn is None:
            raise ValueError(f"Peer.alpn must be 'h1', 'h2' or 'h2-then-h1', not {self.alpn!r}")
        flags = 0
        if self.tls:
            flags |= _ffi.PROXY_PEER_TLS
            if not self.verify:
                flags |= _ffi.PROXY_PEER_TLS_NO_VERIFY
            if not self.verify_hostname:
                flags |= _ffi.PROXY_PEER_TLS_NO_VERIFY_HOSTNAME
        elif not self.verify or not self.verify_hostname or self.ca_file or self.client_cert:
            raise ValueError("Peer: verify / verify_hostname / ca_file / client_cert need tls=True")
        if bool(self.client_cert) != bool(self.client_key):
            raise ValueError("Peer: client_cert and client_key go together")
        a = _enc(self.address)
        c = _ffi.proxy_peer(
            ctypes.sizeof(_ffi.proxy_peer),
            flags,
            _ffi.proxy_str_in(a, len(a)),
            _view(_enc(self.sni)),
            self.connect_timeout_ms,
            self.total_connection_timeout_ms,
            self.read_timeout_ms,
            self.write_timeout_ms,
            self.idle_timeout_ms,
            self.pool_group,
            _view(self.ca_file),
            _view(self.client_cert),
            _view(self.client_key),
            alpn,
            self.max_h2_streams,
        )
        object.__setattr__(self, "_c", c)


@dataclass(frozen=True)
class Summary:
    """What the proxy knows about a request (``proxy_summary``; complete in ``logging``)."""

    status: int
    bytes_in: int
    bytes_out: int
    upstream_connect_us: int
    time_to_first_byte_us: int
    total_us: int
    retries: int
    reused: bool


# ---- Session ------------------------------------------------------------------------------------
class Headers:
    """One header block of a session (request, upstream request or response). Names are
    case-insensitive; values are ``str`` (bytes decoded as Latin-1) and may be given as ``str`` or
    ``bytes``. Reads copy; the view itself is only usable while its session is."""

    __slots__ = ("_s", "_kind")

    def __init__(self, session: "Session", kind: int) -> None:
        self._s = session
        self._kind = kind

    def get(self, name: StrOrBytes, default: Optional[str] = None) -> Optional[str]:
        """The first value of ``name``, or ``default``."""
        nb = _enc(name)
        out = _ffi.proxy_str()
        rc = lib.proxy_session_header_get(
            self._s._p(), self._kind, _ffi.proxy_str_in(nb, len(nb)), 0, byref(out), None
        )
        if rc:
            if rc == _ffi.PROXY_NOT_FOUND:
                return default
            raise _err(rc, "proxy_session_header_get")
        return string_at(out.ptr, out.len).decode("latin-1") if out.len else ""

    def get_all(self, name: StrOrBytes) -> List[str]:
        """Every value of ``name`` in order (empty when absent)."""
        nb = _enc(name)
        key = _ffi.proxy_str_in(nb, len(nb))
        out = _ffi.proxy_str()
        n = c_size_t(0)
        vals: List[str] = []
        i = 0
        while True:
            rc = lib.proxy_session_header_get(self._s._p(), self._kind, key, i, byref(out), byref(n))
            if rc == _ffi.PROXY_NOT_FOUND:
                return vals
            if rc:
                raise _err(rc, "proxy_session_header_get")
            vals.append(string_at(out.ptr, out.len).decode("latin-1") if out.len else "")
            i += 1
            if i >= n.value:
                return vals

    def set(self, name: StrOrBytes, value: StrOrBytes) -> None:
        """Replaces every value of ``name`` (``ProxyError(HEADER_INVALID)`` for bad input)."""
        nb, vb = _enc(name), _enc(value)
        rc = lib.proxy_session_header_set(
            self._s._p(), self._kind, _ffi.proxy_str_in(nb, len(nb)), _ffi.proxy_str_in(vb, len(vb))
        )
        if rc:
            raise _err(rc, "proxy_session_header_set")

    def add(self, name: StrOrBytes, value: StrOrBytes) -> None:
        """Appends a value to ``name``."""
        nb, vb = _enc(name), _enc(value)
        rc = lib.proxy_session_header_add(
            self._s._p(), self._kind, _ffi.proxy_str_in(nb, len(nb)), _ffi.proxy_str_in(vb, len(vb))
        )
        if rc:
            raise _err(rc, "proxy_session_header_add")

    def remove(self, name: StrOrBytes) -> bool:
        """Removes every value of ``name``; False when there was none."""
        nb = _enc(name)
        rc = lib.proxy_session_header_remove(self._s._p(), self._kind, _ffi.proxy_str_in(nb, len(nb)))
        if rc == _ffi.PROXY_NOT_FOUND:
            return False
        if rc:
            raise _err(rc, "proxy_session_header_remove")
        return True

    def items(self) -> List[Tuple[str, str]]:
        """Every field as ``(name, value)``, names lowercase, grouped by name (one bulk read)."""
        p = self._s._p()
        n = c_size_t(0)
        cap = 32
        while True:
            arr = (_ffi.proxy_header * cap)()
            rc = lib.proxy_session_headers(p, self._kind, arr, cap, byref(n))
            if rc == _ffi.PROXY_TOO_SMALL:
                cap = n.value
                continue
            if rc:
                raise _err(rc, "proxy_session_headers")
            return [
                (_ffi.to_str(h.name).decode("latin-1"), _ffi.to_str(h.value).decode("latin-1"))
                for h in arr[: n.value]
            ]

    def __len__(self) -> int:
        n = c_size_t(0)
        rc = lib.proxy_session_header_count(self._s._p(), self._kind, byref(n))
        if rc:
            raise _err(rc, "proxy_session_header_count")
        return n.value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, (str, bytes)) and self.get(name) is not None

    def __getitem__(self, name: StrOrBytes) -> str:
        v = self.get(name)
        if v is None:
            raise KeyError(name)
        return v

    def __setitem__(self, name: StrOrBytes, value: StrOrBytes) -> None:
        self.set(name, value)

    def __delitem__(self, name: StrOrBytes) -> None:
        if not self.remove(name):
            raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        seen: List[str] = []
        for k, _ in self.items():
            if k not in seen:
                seen.append(k)
        return iter(seen)

    def __repr__(self) -> str:
        try:
            return f"Headers({self.items()!r})"
        except ProxyError:
            return "Headers(<unavailable>)"


class Session:
    """One request/response exchange as a hook sees it (``proxy_session``, borrowed).

    Usable inside the hook it was passed to and, after :meth:`defer` (or in an ``async def``
    hook), until it is resumed -- from the one thread that resumes it. Afterwards every accessor
    raises :class:`ClosedError`. Properties return copies (``str``); absent optional values
    (query, client address, error) are ``None``."""

    __slots__ = ("_ptr", "_b", "_responded", "_deferred")

    def __init__(self, ptr: int, binding: "_Binding") -> None:
        self._ptr = ptr
        self._b = binding
        self._responded = False
        self._deferred: Optional[Deferred] = None

    def _p(self) -> int:
        p = self._ptr
        if p is None:
            raise ClosedError("session")
        return p

    def _str(self, fn: Callable, where: str, optional: bool = False) -> Optional[str]:
        out = _ffi.proxy_str()
        rc = fn(self._p(), byref(out))
        if rc:
            if optional and rc == _ffi.PROXY_NOT_FOUND:
                return None
            raise _err(rc, where)
        return string_at(out.ptr, out.len).decode("latin-1") if out.len else ""

    def _u32(self, fn: Callable, where: str) -> int:
        out = c_uint32(0)
        rc = fn(self._p(), byref(out))
        if rc:
            raise _err(rc, where)
        return out.value

    @property
    def closed(self) -> bool:
        """True once the session may no longer be used."""
        return self._ptr is None

    @property
    def id(self) -> int:
        """``proxy_session_id``: unique for the server's life (for :meth:`Server.resume`)."""
        out = c_uint64(0)
        rc = lib.proxy_session_id(self._p(), byref(out))
        if rc:
            raise _err(rc, "proxy_session_id")
        return out.value

    @property
    def phase(self) -> Phase:
        """The phase whose callback is running."""
        return Phase(self._u32(lib.proxy_session_phase, "proxy_session_phase"))

    @property
    def method(self) -> str:
        """The request method, e.g. ``"GET"``."""
        return self._str(lib.proxy_session_method, "proxy_session_method")  # type: ignore[return-value]

    @property
    def uri(self) -> str:
        """The request target as received (``/a?b``)."""
        return self._str(lib.proxy_session_uri, "proxy_session_uri")  # type: ignore[return-value]

    @property
    def path(self) -> str:
        """The path of the request target, without the query."""
        return self._str(lib.proxy_session_path, "proxy_session_path")  # type: ignore[return-value]

    @property
    def query(self) -> Optional[str]:
        """The query string without ``?``; ``None`` when the target has no ``?``."""
        return self._str(lib.proxy_session_query, "proxy_session_query", True)

    @uri.setter
    def uri(self, value: StrOrBytes) -> None:
        """``proxy_session_set_uri``: an origin-form target (``/path?query``); in the request
        phases it rewrites the request, in ``upstream_request_filter`` only what goes upstream."""
        b = _enc(value)
        rc = lib.proxy_session_set_uri(self._p(), _ffi.proxy_str_in(b, len(b)))
        if rc:
            raise _err(rc, "proxy_session_set_uri")

    @property
    def version(self) -> str:
        """The downstream request's HTTP version: ``"HTTP/1.0"``, ``"HTTP/1.1"`` or ``"HTTP/2"``
        (HTTP/2 over TLS by ALPN, or h2c by prior knowledge)."""
        v = self._u32(lib.proxy_session_version, "proxy_session_version")
        return _VERSIONS.get(v) or f"HTTP/{v // 10}.{v % 10}"

    @property
    def client_addr(self) -> Optional[str]:
        """The client's address (``1.2.3.4:5678``, ``[::1]:5678``, ``unix:/path``) or None."""
        return self._str(lib.proxy_session_client_addr, "proxy_session_client_addr", True)

    @property
    def server_addr(self) -> Optional[str]:
        """The local address the request arrived on, or None."""
        return self._str(lib.proxy_session_server_addr, "proxy_session_server_addr", True)

    @property
    def request_headers(self) -> Headers:
        """The downstream request headers (writable up to ``connected_to_upstream``)."""
        return Headers(self, _ffi.PROXY_HEADERS_REQUEST)

    @property
    def upstream_request_headers(self) -> Headers:
        """The request about to go upstream (only in ``upstream_request_filter``)."""
        return Headers(self, _ffi.PROXY_HEADERS_UPSTREAM_REQUEST)

    @property
    def response_headers(self) -> Headers:
        """The response headers (writable in ``upstream_response_filter`` / ``response_filter``)."""
        return Headers(self, _ffi.PROXY_HEADERS_RESPONSE)

    @property
    def status(self) -> int:
        """The response status (settable in ``upstream_response_filter`` / ``response_filter``)."""
        return self._u32(lib.proxy_session_response_status, "proxy_session_response_status")

    @status.setter
    def status(self, value: int) -> None:
        rc = lib.proxy_session_set_response_status(self._p(), value)
        if rc:
            raise _err(rc, "proxy_session_set_response_status")

    def respond(self, status: int, headers: HeaderList = None, body: StrOrBytes = b"") -> None:
        """Answers the request locally (``early_request_filter``, ``request_filter``,
        ``fail_to_proxy``, or while deferred). A hook that then returns ``None`` answers
        RESPONDED. ``body`` as ``str`` is UTF-8 encoded; Content-Length is set by the proxy."""
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers or ())
        arr = (_ffi.proxy_header_in * len(pairs))()
        for i, (k, v) in enumerate(pairs):
            kb, vb = _enc(k), _enc(v)
            arr[i].name = _ffi.proxy_str_in(kb, len(kb))
            arr[i].value = _ffi.proxy_str_in(vb, len(vb))
        b = body.encode() if isinstance(body, str) else bytes(body)
        rc = lib.proxy_session_respond(self._p(), status, arr, len(pairs), b, len(b))
        if rc:
            raise _err(rc, "proxy_session_respond")
        self._responded = True

    def set_peer(self, peer: Union[Peer, str]) -> None:
        """Chooses the upstream (only in ``upstream_peer``)."""
        if not isinstance(peer, Peer):
            peer = Peer(peer)
        rc = lib.proxy_session_set_peer(self._p(), byref(peer._c))
        if rc:
            raise _err(rc, "proxy_session_set_peer")

    @property
    def body(self) -> bytes:
        """The body chunk in a body filter phase (``b""`` when none)."""
        out = _ffi.proxy_str()
        rc = lib.proxy_session_body(self._p(), byref(out), None)
        if rc:
            raise _err(rc, "proxy_session_body")
        return _ffi.to_str(out)

    @property
    def end_of_stream(self) -> bool:
        """True on the last body filter call for this body."""
        out = _ffi.proxy_str()
        eos = c_uint32(0)
        rc = lib.proxy_session_body(self._p(), byref(out), byref(eos))
        if rc:
            raise _err(rc, "proxy_session_body")
        return bool(eos.value)

    def set_body(self, data: StrOrBytes) -> None:
        """Replaces the body chunk in a body filter phase (``b""`` drops it)."""
        b = data.encode() if isinstance(data, str) else bytes(data)
        rc = lib.proxy_session_set_body(self._p(), b, len(b))
        if rc:
            raise _err(rc, "proxy_session_set_body")

    @property
    def upstream_reused(self) -> bool:
        """In ``connected_to_upstream``: whether the connection came from the pool."""
        return bool(self._u32(lib.proxy_session_upstream_reused, "proxy_session_upstream_reused"))

    @property
    def error(self) -> Optional[str]:
        """The current/final error as text, or None when the request did not fail."""
        return self._str(lib.proxy_session_error, "proxy_session_error", True)

    def set_retry(self, retry: bool) -> None:
        """In ``fail_to_connect`` / ``error_while_proxy``: allow or forbid another attempt."""
        rc = lib.proxy_session_set_retry(self._p(), 1 if retry else 0)
        if rc:
            raise _err(rc, "proxy_session_set_retry")

    @property
    def retries(self) -> int:
        """Attempts beyond the first so far."""
        return self._u32(lib.proxy_session_retries, "proxy_session_retries")

    def summary(self) -> Summary:
        """The request's summary (complete in ``logging``)."""
        s = _ffi.proxy_summary()
        s.struct_size = ctypes.sizeof(s)
        rc = lib.proxy_session_summary(self._p(), byref(s))
        if rc:
            raise _err(rc, "proxy_session_summary")
        return Summary(
            s.status,
            s.bytes_in,
            s.bytes_out,
            s.upstream_connect_us,
            s.time_to_first_byte_us,
            s.total_us,
            s.retries,
            bool(s.reused),
        )

    def defer(self) -> "Deferred":
        """Decides later: the hook returns (its return value is ignored; the proxy gets
        ``PENDING``) and any thread calls :meth:`Deferred.resume` once. The session stays usable
        from that thread until then. Not allowed in ``fail_to_connect``, ``error_while_proxy``,
        ``logging`` and ``request_end``."""
        if self._deferred is None:
            self._deferred = Deferred(self, self.id)
        return self._deferred

    def __repr__(self) -> str:
        return f"<libproxy.Session {'closed' if self._ptr is None else hex(self._ptr)}>"


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


# ---- the hook base class ------------------------------------------------------------------------
class Proxy:
    """Base class of a service's hooks: one method per phase, in the order they run. Override
    the ones you need; only overridden methods are registered with libproxy (the others stay NULL
    and cost nothing). Each gets the :class:`Session` and returns an :class:`Action` or ``None``
    (CONTINUE, or RESPONDED after :meth:`Session.respond`). A method may be ``async def`` (except
    the four that cannot wait: fail_to_connect, error_while_proxy, logging, request_end).

    Hooks run concurrently on libproxy worker threads (never concurrently for one session) and
    must not block: defer (:meth:`Session.defer`) or use ``async def`` instead. An exception fails
    the request with 500 and is logged."""

    def early_request_filter(self, session: Session) -> Optional[Action]:
        """Before anything else looks at the request; may respond."""

    def request_filter(self, session: Session) -> Optional[Action]:
        """May answer by itself (:meth:`Session.respond`)."""

    def upstream_peer(self, session: Session) -> Optional[Action]:
        """Must choose the upstream with :meth:`Session.set_peer`; called again per retry."""

    def connected_to_upstream(self, session: Session) -> Optional[Action]:
        """An upstream connection is ready (:attr:`Session.upstream_reused`)."""

    def upstream_request_filter(self, session: Session) -> Optional[Action]:
        """Edit :attr:`Session.upstream_request_headers` before they are sent."""

    def request_body_filter(self, session: Session) -> Optional[Action]:
        """Each request body chunk (:attr:`Session.body`, :meth:`Session.set_body`)."""

    def upstream_response_filter(self, session: Session) -> Optional[Action]:
        """The upstream response head as received."""

    def response_filter(self, session: Session) -> Optional[Action]:
        """The response head about to go downstream."""

    def upstream_response_body_filter(self, session: Session) -> Optional[Action]:
        """Each upstream response body chunk as received."""

    def response_body_filter(self, session: Session) -> Optional[Action]:
        """Each response body chunk about to go downstream."""

    def logging(self, session: Session) -> None:
        """Once per request, last (:meth:`Session.summary`, :attr:`Session.error`)."""

    def fail_to_connect(self, session: Session) -> Optional[Action]:
        """Connecting failed (:attr:`Session.error`, :meth:`Session.set_retry`)."""

    def error_while_proxy(self, session: Session) -> Optional[Action]:
        """Proxying failed after connecting (:meth:`Session.set_retry`)."""

    def fail_to_proxy(self, session: Session) -> Optional[Action]:
        """The request failed for good; may answer with :meth:`Session.respond`."""

    def request_end(self, session: Session) -> None:
        """After logging, also when the request was cut short (only :attr:`Session.phase`)."""


# ---- per-service registration (slab) and the trampolines ----------------------------------------
_SLAB: Dict[int, "_Binding"] = {}
_slab_lock = threading.Lock()
_slab_next = 1


class _Binding:
    """What ``proxy_http_callbacks.user`` (a slab key) stands for: the hook object, its methods
    per phase, and the server that owns the service once it was added."""

    __slots__ = ("key", "hooks", "fns", "server", "pending_ms", "free", "pyfuncs", "cfuncs", "__weakref__")

    def __init__(self, hooks: Any) -> None:
        global _slab_next
        self.hooks = hooks
        fns: List[Optional[Callable[[Session], Any]]] = []
        for i, name in enumerate(_ffi.PHASES):
            fn = getattr(hooks, name, None)
            if fn is None or not callable(fn):
                fns.append(None)
                continue
            if isinstance(hooks, Proxy) and getattr(type(hooks), name, None) is getattr(Proxy, name):
                fns.append(None)  # not overridden: stays NULL
                continue
            if i not in _PENDABLE and inspect.iscoroutinefunction(fn):
                raise TypeError(f"{name} cannot be async: that phase cannot wait (PENDING)")
            fns.append(fn)
        self.fns = tuple(fns)
        self.server: Optional[Server] = None
        self.pending_ms = 30_000
        #: Session objects nobody holds any more, reused by this binding's trampolines.
        self.free: List[Session] = []
        #: Per overridden phase: the Python trampoline (hook method bound in) and its CFUNCTYPE,
        #: kept alive with the binding, which lives until the server is freed.
        self.pyfuncs = tuple(_make_trampoline(i, fn, self) if fn is not None else None for i, fn in enumerate(fns))
        self.cfuncs = tuple(_ffi.proxy_phase_fn(f) if f is not None else None for f in self.pyfuncs)
        with _slab_lock:
            self.key = _slab_next
            _slab_next += 1
            _SLAB[self.key] = self

    def release(self) -> None:
        _SLAB.pop(self.key, None)


# Thread-state persistence. ctypes wraps every callback in PyGILState_Ensure/Release; on a thread
# Python did not create that makes and destroys a thread state per call. One extra Ensure per
# worker (released when the worker stops) keeps the state alive so later callbacks only take the
# GIL. Modes: "hooks" (proxy_service_set_thread_hooks), "lazy" (pinned on a worker's first
# callback, kept for the thread's life), "off" (ctypes default; for measurements).
_api = ctypes.pythonapi
_api.PyGILState_Ensure.argtypes = []
_api.PyGILState_Ensure.restype = ctypes.c_int
_api.PyGILState_Release.argtypes = [ctypes.c_int]
_api.PyGILState_Release.restype = None
_tls = threading.local()
#: How worker threads keep their Python thread state: "hooks" (default: the library's
#: ``proxy_service_set_thread_hooks``), "lazy" or "off" (``LIBPROXY_THREAD_STATE``, for measurements).
THREAD_STATE_MODE = os.environ.get("LIBPROXY_THREAD_STATE") or "hooks"
if THREAD_STATE_MODE not in ("hooks", "lazy", "off"):
    THREAD_STATE_MODE = "hooks"
_lazy_pin = THREAD_STATE_MODE == "lazy"
#: Worker threads whose start hook ran / whose stop hook ran (diagnostics and tests).
thread_hook_counts = [0, 0]


def _pin_current_thread() -> None:
    # A thread-local survives only as long as the thread state: when it is missing, this callback
    # runs on a state ctypes made for it alone, and one more Ensure (never released) keeps it.
    # (Thread ids are not used: a new worker may reuse a dead one's id.)
    if not getattr(_tls, "pinned", False):
        _api.PyGILState_Ensure()
        _tls.pinned = True


def _thread_start(user: Optional[int]) -> None:
    try:
        _tls.gstate = _api.PyGILState_Ensure()
        thread_hook_counts[0] += 1
    except BaseException:  # never let an exception cross into C
        log.exception("libproxy: worker thread start hook failed")


def _thread_stop(user: Optional[int]) -> None:
    try:
        g = getattr(_tls, "gstate", None)
        if g is not None:
            del _tls.gstate
            thread_hook_counts[1] += 1
            _api.PyGILState_Release(g)
    except BaseException:
        log.exception("libproxy: worker thread stop hook failed")


_THREAD_START = _ffi.proxy_thread_fn(_thread_start)
_THREAD_STOP = _ffi.proxy_thread_fn(_thread_stop)


# Hook results the fast path understands; IntEnum members hash like their ints.
_RESULTS: Dict[Any, int] = {1: 1, 2: 2, 3: 3, 4: 4}
_getrefcount = sys.getrefcount
# References to a Session that only the trampoline holds: its local plus getrefcount's argument.
_UNSHARED = 2


def _make_trampoline(idx: int, fn: Callable[[Session], Any], b: "_Binding") -> Callable[[Optional[int], Optional[int]], int]:
    """The callback of phase ``idx`` for one binding, with the hook method bound in (no slab
    lookup, no method lookup per call). Hot path: take a Session from the binding's free list (or
    make one), call the hook, map None / an Action to the result, and give the Session back when
    nobody else holds a reference to it -- a hook that kept it (or a Headers view of it) keeps an
    invalidated object that raises ClosedError, and the next call gets a fresh one."""
    name = _ffi.PHASES[idx]
    pendable = idx in _PENDABLE
    CONTINUE, RESPONDED, PENDING, ERROR = 1, 2, 3, 4
    results_get = _RESULTS.get
    free = b.free
    pop, push = free.pop, free.append
    getrefcount = _getrefcount
    unshared = _UNSHARED
    new = Session.__new__
    lazy_pin = _lazy_pin
    tls = _tls
    api_ensure = _api.PyGILState_Ensure

    def slow_result(s: Session, r: Any) -> int:
        if inspect.isawaitable(r):
            if not pendable:
                if inspect.iscoroutine(r):
                    r.close()  # type: ignore[union-attr]
                raise TypeError(f"{name} cannot be async: that phase cannot wait")
            _schedule(r, s)
            return PENDING
        s._ptr = None
        log.error("libproxy: %s returned %r, not an Action; failing the request", name, r)
        return ERROR

    def trampoline(user: Optional[int], sp: Optional[int]) -> int:
        s = None
        try:
            if lazy_pin and not getattr(tls, "pinned", False):
                api_ensure()  # see _pin_current_thread
                tls.pinned = True
            try:
                s = pop()
            except IndexError:
                s = new(Session)
                s._b = b
                s._responded = False
                s._deferred = None
            s._ptr = sp
            r = fn(s)
            if s._deferred is None:
                if r is None:
                    a = RESPONDED if s._responded else CONTINUE
                else:
                    a = results_get(r, -1)
                    if a < 0:
                        return slow_result(s, r)
                s._ptr = None
                if getrefcount(s) == unshared:
                    s._responded = False
                    push(s)
                return a
            if not pendable:
                raise RuntimeError(f"{name} cannot defer: that phase cannot wait")
            if r is not None:
                raise TypeError(f"{name}: a deferring hook returns None, got {r!r}")
            return PENDING
        except BaseException:
            try:
                if s is not None:
                    if s._deferred is not None:
                        s._deferred._cancel()
                    s._ptr = None
                log.exception("libproxy: exception in %s hook; failing the request (500)", name)
            except BaseException:
                pass
            return ERROR

    trampoline.__name__ = f"_trampoline_{name}"
    return trampoline


_LOG_LEVELS = {
    _ffi.PROXY_LOG_ERROR: logging.ERROR,
    _ffi.PROXY_LOG_WARN: logging.WARNING,
    _ffi.PROXY_LOG_INFO: logging.INFO,
    _ffi.PROXY_LOG_DEBUG: logging.DEBUG,
}


def _log_sink(user: Optional[int], level: int, msg: _ffi.proxy_str) -> None:
    try:
        log.log(_LOG_LEVELS.get(level, logging.INFO), "%s", _ffi.to_str(msg).decode("utf-8", "replace"))
    except BaseException:
        pass


_LOG_SINK = _ffi.proxy_log_fn(_log_sink)


def _max_level_for(logger: logging.Logger) -> int:
    lvl = logger.getEffectiveLevel()
    if lvl <= logging.DEBUG:
        return _ffi.PROXY_LOG_DEBUG
    if lvl <= logging.INFO:
        return _ffi.PROXY_LOG_INFO
    if lvl <= logging.WARNING:
        return _ffi.PROXY_LOG_WARN
    return _ffi.PROXY_LOG_ERROR


# ---- asyncio bridge ----------------------------------------------------------------------------
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
            return self.loop  # type: ignore[return-value]

    def stop(self) -> None:
        loop, t = self.loop, self.thread
        if loop is None or t is None or not t.is_alive():
            return

        def cancel_all() -> None:
            for task in list(self.tasks):
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
    lp = _LOOP.get()
    ms = s._b.pending_ms
    # Finish before libproxy's pending deadline, so the coroutine never holds an expired session.
    timeout = max(ms - min(200, ms // 10), 1) / 1000.0
    lp.call_soon_threadsafe(_start_task, lp, coro, d, timeout)


def _start_task(lp: asyncio.AbstractEventLoop, coro: Awaitable[Any], d: Deferred, timeout: float) -> None:
    task = lp.create_task(_drive(coro, d, timeout))
    _LOOP.tasks[task] = d
    task.add_done_callback(_forget_task)


def _forget_task(task: "asyncio.Task[None]") -> None:
    _LOOP.tasks.pop(task, None)


def _cancel_sessions_of(server: "Server") -> None:
    """Invalidates (and cancels) the async hooks still holding sessions of ``server``, on the loop
    thread, so none touches a session after the server dropped it."""
    lp, t = _LOOP.loop, _LOOP.thread
    if lp is None or t is None or not t.is_alive():
        return

    def run() -> None:
        for task, d in list(_LOOP.tasks.items()):
            if d.session._b.server is server:
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


# ---- handles ------------------------------------------------------------------------------------
class _Managed:
    """A C handle: ``_ptr`` is the pointer or None once closed; :meth:`ptr` raises on a closed
    handle; :meth:`close` is idempotent; context manager; ``__del__`` closes as a safety net."""

    _ptr: Optional[int] = None
    _what = "handle"

    def ptr(self) -> int:
        """The raw pointer; raises :class:`ClosedError` when closed."""
        p = self._ptr
        if p is None:
            raise ClosedError(self._what)
        return p

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._ptr is None

    def close(self) -> None:  # pragma: no cover - overridden
        self._ptr = None

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


PathOrBytes = Union[str, bytes, "os.PathLike[str]"]
_CLIENT_AUTH = {
    "none": _ffi.PROXY_TLS_CLIENT_AUTH_NONE,
    "optional": _ffi.PROXY_TLS_CLIENT_AUTH_OPTIONAL,
    "required": _ffi.PROXY_TLS_CLIENT_AUTH_REQUIRED,
}
_TLS_VERSIONS = {"1.2": _ffi.PROXY_TLS_VERSION_1_2, "1.3": _ffi.PROXY_TLS_VERSION_1_3}


def _pem(v: Union[str, bytes]) -> bytes:
    return v.encode() if isinstance(v, str) else bytes(v)


class TlsSettings(_Managed):
    """How a TLS endpoint serves (``proxy_tls_settings``): pass it to :meth:`Service.add_tls`,
    which copies it (one object may configure several endpoints). Defaults: ALPN ``h2`` then
    ``http/1.1``, TLS 1.2 and 1.3, no client authentication, 10 s handshake timeout.

    Everything can be given to the constructor::

        TlsSettings(cert="cert.pem", key="key.pem")                 # PEM files
        TlsSettings(cert_pem=chain_bytes, key_pem=key_bytes)        # PEM in memory
        TlsSettings(cert="a.pem", key="a.key",
                    sni={"b.example,*.b.example": ("b.pem", "b.key")},
                    client_ca="clients-ca.pem", client_auth="required",
                    alpn=["http/1.1"], versions=["1.3"], handshake_timeout_ms=5000)

    A bad or missing certificate / key / CA raises :class:`ProxyError` with code ``TLS_INVALID``
    at configuration time; its ``detail`` (and message) carries the library's reason."""

    _what = "TLS settings"

    def __init__(
        self,
        cert: Optional[PathOrBytes] = None,
        key: Optional[PathOrBytes] = None,
        *,
        cert_pem: Union[str, bytes, None] = None,
        key_pem: Union[str, bytes, None] = None,
        sni: Optional[Mapping[str, Tuple[Any, Any]]] = None,
        sni_pem: Optional[Mapping[str, Tuple[Union[str, bytes], Union[str, bytes]]]] = None,
        client_ca: Optional[PathOrBytes] = None,
        client_ca_pem: Union[str, bytes, None] = None,
        client_auth: Optional[str] = None,
        alpn: Union[str, Sequence[str], None] = None,
        versions: Optional[Sequence[str]] = None,
        handshake_timeout_ms: Optional[int] = None,
    ) -> None:
        out = c_void_p()
        rc = lib.proxy_tls_settings_new(byref(out))
        if rc:
            raise _err(rc, "proxy_tls_settings_new")
        self._ptr = out.value
        try:
            if cert is not None or key is not None:
                self.set_cert_files(cert, key)  # type: ignore[arg-type]
            if cert_pem is not None or key_pem is not None:
                self.set_cert_pem(cert_pem or b"", key_pem or b"")
            for names, (c, k) in (sni or {}).items():
                self.add_sni_cert_files(names, c, k)
            for names, (c, k) in (sni_pem or {}).items():
                self.add_sni_cert_pem(names, c, k)
            if client_ca is not None or client_ca_pem is not None or client_auth is not None:
                self.set_client_auth(client_auth or "required", ca_file=client_ca, ca_pem=client_ca_pem)
            if alpn is not None:
                self.set_alpn(alpn)
            if versions is not None:
                self.set_versions(versions)
            if handshake_timeout_ms is not None:
                self.set_handshake_timeout(handshake_timeout_ms)
        except BaseException:
            self.close()
            raise

    @property
    def last_error(self) -> str:
        """``proxy_tls_settings_last_error``: the reason of the last ``TLS_INVALID`` ("" if none)."""
        out = _ffi.proxy_str()
        rc = lib.proxy_tls_settings_last_error(self.ptr(), byref(out))
        if rc:
            raise _err(rc, "proxy_tls_settings_last_error")
        return _ffi.to_str(out).decode("utf-8", "replace")

    def _check(self, rc: int, where: str) -> None:
        if rc:
            detail = None
            if rc == _ffi.PROXY_TLS_INVALID and self._ptr is not None:
                detail = self.last_error or None
            raise ProxyError(rc, where, detail=detail)

    def set_cert_files(self, cert: PathOrBytes, key: PathOrBytes) -> None:
        """The default certificate: a PEM chain file and its PEM private key file."""
        if cert is None or key is None:
            raise ValueError("TlsSettings: cert and key go together")
        rc = lib.proxy_tls_settings_set_cert_files(self.ptr(), os.fsencode(cert), os.fsencode(key))
        self._check(rc, "proxy_tls_settings_set_cert_files")

    def set_cert_pem(self, cert_pem: Union[str, bytes], key_pem: Union[str, bytes]) -> None:
        """The default certificate from PEM documents in memory."""
        c, k = _pem(cert_pem), _pem(key_pem)
        rc = lib.proxy_tls_settings_set_cert_pem(self.ptr(), c, len(c), k, len(k))
        self._check(rc, "proxy_tls_settings_set_cert_pem")

    def add_sni_cert_files(self, names: Union[str, Sequence[str]], cert: PathOrBytes, key: PathOrBytes) -> None:
        """Serves ``cert`` to clients asking by SNI for one of ``names`` (host names or
        ``*.example.com`` wildcards, a list or a comma-separated string)."""
        n = names if isinstance(names, str) else ",".join(names)
        rc = lib.proxy_tls_settings_add_sni_cert_files(
            self.ptr(), n.encode(), os.fsencode(cert), os.fsencode(key)
        )
        self._check(rc, "proxy_tls_settings_add_sni_cert_files")

    def add_sni_cert_pem(
        self, names: Union[str, Sequence[str]], cert_pem: Union[str, bytes], key_pem: Union[str, bytes]
    ) -> None:
        """Like :meth:`add_sni_cert_files` from PEM documents in memory."""
        n = names if isinstance(names, str) else ",".join(names)
        c, k = _pem(cert_pem), _pem(key_pem)
        rc = lib.proxy_tls_settings_add_sni_cert_pem(self.ptr(), n.encode(), c, len(c), k, len(k))
        self._check(rc, "proxy_tls_settings_add_sni_cert_pem")

    def set_client_auth(
        self,
        mode: str = "required",
        *,
        ca_file: Optional[PathOrBytes] = None,
        ca_pem: Union[str, bytes, None] = None,
    ) -> None:
        """Client certificates (mTLS): ``mode`` is ``"none"``, ``"optional"`` (clients without
        one are let in, a bad one is refused) or ``"required"``; the CAs come from ``ca_file``
        or ``ca_pem``."""
        m = _CLIENT_AUTH.get(mode)
        if m is None:
            raise ValueError(f"client_auth must be 'none', 'optional' or 'required', not {mode!r}")
        if ca_pem is not None:
            b = _pem(ca_pem)
            rc = lib.proxy_tls_settings_set_client_auth_pem(self.ptr(), b, len(b), m)
            self._check(rc, "proxy_tls_settings_set_client_auth_pem")
        else:
            p = os.fsencode(ca_file) if ca_file is not None else None
            rc = lib.proxy_tls_settings_set_client_auth_file(self.ptr(), p, m)
            self._check(rc, "proxy_tls_settings_set_client_auth_file")

    def set_alpn(self, protocols: Union[str, Sequence[str]]) -> None:
        """ALPN protocols offered, most preferred first: ``["h2", "http/1.1"]`` (default),
        ``["http/1.1"]`` to keep the endpoint on HTTP/1.1, ``[]`` to disable ALPN."""
        p = protocols if isinstance(protocols, str) else ",".join(protocols)
        rc = lib.proxy_tls_settings_set_alpn(self.ptr(), p.encode())
        self._check(rc, "proxy_tls_settings_set_alpn")

    def set_versions(self, versions: Sequence[str]) -> None:
        """TLS versions accepted: a subset of ``("1.2", "1.3")`` (default both)."""
        bits = 0
        for v in versions:
            b = _TLS_VERSIONS.get(v)
            if b is None:
                raise ValueError(f"TLS version must be '1.2' or '1.3', not {v!r}")
            bits |= b
        rc = lib.proxy_tls_settings_set_versions(self.ptr(), bits)
        self._check(rc, "proxy_tls_settings_set_versions")

    def set_handshake_timeout(self, ms: int) -> None:
        """How long a client may take to complete its handshake (milliseconds, > 0)."""
        rc = lib.proxy_tls_settings_set_handshake_timeout(self.ptr(), ms)
        self._check(rc, "proxy_tls_settings_set_handshake_timeout")

    def close(self) -> None:
        """Frees the settings (endpoints added with them keep their copy). Idempotent."""
        p, self._ptr = self._ptr, None
        if p is not None:
            lib.proxy_tls_settings_free(p)


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
        self._binding: Optional[_Binding] = None
        self.port: Optional[int] = None
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
            if self._binding is not None:
                self._binding.pending_ms = ms

    def set_limit(self, which: Union[Limit, int], value: int) -> None:
        """Sets a ``Limit``."""
        rc = lib.proxy_service_set_limit(self.ptr(), int(which), value)
        if rc:
            raise _err(rc, "proxy_service_set_limit")

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

    def _consumed(self) -> Optional[_Binding]:
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
        self._bindings: List[_Binding] = []
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

    def start(self) -> None:
        """Starts every service on its own threads and returns at once."""
        rc = lib.proxy_server_start(self.ptr())
        if rc:
            raise _err(rc, "proxy_server_start")

    def run(self, signals: bool = False) -> None:
        """Starts if needed and blocks until stopped (:meth:`shutdown` from another thread or,
        with ``signals=True``, SIGTERM/SIGINT -- libproxy then owns those signals)."""
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
