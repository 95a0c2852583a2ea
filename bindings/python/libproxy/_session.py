"""Session: one request/response exchange as a hook sees it, its header views (Headers) and Summary."""

from __future__ import annotations

import ctypes
from ctypes import byref, c_size_t, c_uint32, c_uint64, string_at
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, List, Mapping, Optional, Tuple, Union

from . import _ffi
from ._async import Deferred
from ._enums import Phase
from ._errors import ClosedError, ProxyError, _err
from ._ffi import lib
from ._peer import Peer
from ._tls_runtime import TlsFacts, session_sni, session_tls
from ._types import HeaderList, StrOrBytes, _enc

if TYPE_CHECKING:
    from ._group import Group
    from ._hooks import _Binding


_VERSIONS = {_ffi.PROXY_HTTP_10: "HTTP/1.0", _ffi.PROXY_HTTP_11: "HTTP/1.1", _ffi.PROXY_HTTP_20: "HTTP/2"}


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
    #: 0 when the request succeeded, else the status its error maps to (502 for an upstream
    #: fault), even when the client already got another ``status`` (see ``truncated``).
    error_status: int = 0
    #: The head went out but the response did not reach its end: the client got ``status`` with
    #: an incomplete body of ``bytes_out`` bytes. :attr:`Session.error` says why.
    truncated: bool = False


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

    def __init__(self, ptr: Optional[int], binding: "_Binding") -> None:
        self._ptr = ptr
        self._b = binding
        self._responded = False
        self._deferred: Optional[Deferred] = None

    def _p(self) -> int:
        p = self._ptr
        if p is None:
            raise ClosedError("session")
        return p

    def _str(self, fn: Callable[..., int], where: str, optional: bool = False) -> Optional[str]:
        out = _ffi.proxy_str()
        rc = fn(self._p(), byref(out))
        if rc:
            if optional and rc == _ffi.PROXY_NOT_FOUND:
                return None
            raise _err(rc, where)
        return string_at(out.ptr, out.len).decode("latin-1") if out.len else ""

    def _u32(self, fn: Callable[..., int], where: str) -> int:
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
    def request_id(self) -> Optional[str]:
        """The request's ``X-Request-Id`` on a service with ``Observe.REQUEST_IDS``, else None."""
        return self._str(lib.proxy_session_request_id, "proxy_session_request_id", optional=True)

    @property
    def method(self) -> str:
        """The request method, e.g. ``"GET"``."""
        return self._str(lib.proxy_session_method, "proxy_session_method")  # type: ignore[return-value]

    @property
    def uri(self) -> str:
        """The request target as received (``/a?b``)."""
        return self._str(lib.proxy_session_uri, "proxy_session_uri")  # type: ignore[return-value]

    @uri.setter
    def uri(self, value: StrOrBytes) -> None:
        """``proxy_session_set_uri``: an origin-form target (``/path?query``); in the request
        phases it rewrites the request, in ``upstream_request_filter`` only what goes upstream."""
        b = _enc(value)
        rc = lib.proxy_session_set_uri(self._p(), _ffi.proxy_str_in(b, len(b)))
        if rc:
            raise _err(rc, "proxy_session_set_uri")

    @property
    def path(self) -> str:
        """The path of the request target, without the query."""
        return self._str(lib.proxy_session_path, "proxy_session_path")  # type: ignore[return-value]

    @property
    def query(self) -> Optional[str]:
        """The query string without ``?``; ``None`` when the target has no ``?``."""
        return self._str(lib.proxy_session_query, "proxy_session_query", True)

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
    def tls(self) -> Optional[TlsFacts]:
        """What the TLS handshake of the request's connection settled (SNI, ALPN, version, cipher,
        the client certificate of mTLS), or None on a plaintext connection."""
        return session_tls(self)

    @property
    def sni(self) -> Optional[str]:
        """The server name the client asked for over TLS (one crossing: cheap for routing)."""
        return session_sni(self)

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
        RESPONDED (one that returns ``Action.CONTINUE`` gets the response sent anyway, with a
        warning in the ``"libproxy"`` log). ``body`` as ``str`` is UTF-8 encoded; Content-Length
        is set by the proxy. Once per request: a second call raises ``ProxyError`` (``ALREADY``)
        and the first response stands."""
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

    def pick(self, group: "Group", key: Optional[StrOrBytes] = None) -> None:
        """Chooses this attempt's backend from ``group`` (only in ``upstream_peer``, instead of
        :meth:`set_peer`); a retry gets one not tried yet. ``key`` feeds Ketama and Maglev.
        Raises ``ProxyError(UNAVAILABLE)`` when no backend can take the request (returning then
        fails it with 503 or 502)."""
        k = _enc(key) if key is not None else None
        # A NULL pointer means "no key"; b"" is an empty key.
        view = _ffi.proxy_str_in(k, len(k) if k is not None else 0)
        rc = lib.proxy_session_pick(self._p(), group.id, view)
        if rc:
            raise _err(rc, "proxy_session_pick")

    @property
    def backend(self) -> Optional[str]:
        """The name of the group backend the last attempt went to (None when the peer was not
        picked from a group)."""
        out = _ffi.proxy_str()
        rc = lib.proxy_session_backend(self._p(), byref(out))
        if rc == _ffi.PROXY_NOT_FOUND:
            return None
        if rc:
            raise _err(rc, "proxy_session_backend")
        return _ffi.to_str(out).decode()

    @property
    def body(self) -> bytes:
        """The body chunk in a body filter phase (``b""`` when none)."""
        out = _ffi.proxy_bytes()
        rc = lib.proxy_session_body(self._p(), byref(out), None)
        if rc:
            raise _err(rc, "proxy_session_body")
        return _ffi.to_bytes(out)

    @property
    def end_of_stream(self) -> bool:
        """True on the last body filter call for this body."""
        out = _ffi.proxy_bytes()
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

    def set_compression(self, which: int, value: int) -> None:
        """``proxy_session_set_compression``: changes ``Compression.ENABLED``, ``ALGORITHMS`` or a
        ``LEVEL_*`` for this request only, before the response head goes out."""
        if not _ffi.HAVE_COMPRESSION:
            raise _err(_ffi.PROXY_UNSUPPORTED, "proxy_session_set_compression")
        rc = lib.proxy_session_set_compression(self._p(), int(which), int(value))
        if rc:
            raise _err(rc, "proxy_session_set_compression")

    def set_cache(self, which: int, value: int) -> None:
        """``proxy_session_set_cache``: a cache hook's ``CacheDecision`` (BYPASS in
        request_cache_filter, EXPIRE in cache_hit_filter, STORE / TTL in response_cache_filter)."""
        rc = lib.proxy_session_set_cache(self._p(), int(which), int(value))
        if rc:
            raise _err(rc, "proxy_session_set_cache")

    def set_cache_key(self, key: Union[str, bytes]) -> None:
        """In cache_key_callback: this request's cache key."""
        k = key.encode() if isinstance(key, str) else bytes(key)
        rc = lib.proxy_session_set_cache_key(self._p(), k, len(k))
        if rc:
            raise _err(rc, "proxy_session_set_cache_key")

    @property
    def cache_status(self) -> int:
        """What the cache did so far (a ``CacheStatus``; final in logging)."""
        return self._u32(lib.proxy_session_cache_status, "proxy_session_cache_status")

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
            s.error_status,
            bool(s.truncated),
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
