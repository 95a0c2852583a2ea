"""TCP (L4) services and the PROXY protocol: :class:`L4Service` relays each connection to the
peer its hooks' ``upstream_peer`` returns; :meth:`L4Service.set_proxy_protocol` (and
:meth:`libproxy.Service.set_proxy_protocol`) accepts PROXY headers on a service's endpoints; a
:class:`Peer` with ``send_proxy=1`` or ``2`` sends one upstream.

L4 hooks are synchronous (no ``async def``, no defer): ``upstream_peer`` runs once per connection
before any byte is relayed. Its :class:`L4Session` is valid only during the call."""

from __future__ import annotations

import ctypes
from ctypes import CFUNCTYPE, POINTER, Structure, byref, c_char_p, c_int32, c_size_t, c_uint8, c_uint32, c_uint64, c_void_p, string_at
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence

from . import _ffi
from ._errors import ClosedError, _err
from ._ffi import (
    PROXY_L4_BUFFER_SIZE,
    PROXY_L4_IDLE_TIMEOUT_MS,
    PROXY_L4_MAX_DURATION_MS,
    PROXY_L4_PEEK_CLIENT_HELLO,
    PROXY_L4_SPLICE,
    PROXY_PP_OFF,
    PROXY_PP_OPTIONAL,
    PROXY_PP_REQUIRED,
    _decl,
    lib,
)
from ._log import log
from ._peer import Peer
from ._service import Service
from ._threads import _THREAD_START, _THREAD_STOP, THREAD_STATE_MODE

if TYPE_CHECKING:
    from ._tls_runtime import TlsFacts

#: TLV types readable with ``proxy_tlv`` (the header's ``PROXY_PP2_*``).
PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY = _ffi.PROXY_PP2_TYPE_ALPN, _ffi.PROXY_PP2_TYPE_AUTHORITY
PP2_TYPE_UNIQUE_ID, PP2_TYPE_SSL = _ffi.PROXY_PP2_TYPE_UNIQUE_ID, _ffi.PROXY_PP2_TYPE_SSL
PP2_SUBTYPE_SSL_VERSION, PP2_SUBTYPE_SSL_CN = _ffi.PROXY_PP2_SUBTYPE_SSL_VERSION, _ffi.PROXY_PP2_SUBTYPE_SSL_CN
PP2_SUBTYPE_SSL_CIPHER = _ffi.PROXY_PP2_SUBTYPE_SSL_CIPHER
#: How an L4 connection ended (``L4Summary.end``).
L4_ENDS = ("open", "closed", "no peer", "connect failed", "error", "idle timeout", "max duration", "shutdown")

_L4S = c_void_p  # proxy_l4_session*
proxy_l4_fn = CFUNCTYPE(c_int32, c_void_p, _L4S)


class proxy_l4_callbacks(Structure):
    _fields_ = [("struct_size", c_uint32), ("user", c_void_p), ("upstream_peer", proxy_l4_fn), ("logging", proxy_l4_fn)]


class proxy_l4_summary(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("end", c_uint32),
        ("bytes_up", c_uint64),
        ("bytes_down", c_uint64),
        ("connect_us", c_uint64),
        ("duration_us", c_uint64),
    ]


_decl("proxy_service_set_l4_callbacks", _ffi._R, c_void_p, POINTER(proxy_l4_callbacks))
_decl("proxy_service_set_l4_option", _ffi._R, c_void_p, c_uint32, c_uint64)
_decl("proxy_service_set_proxy_protocol", _ffi._R, c_void_p, c_uint32, c_char_p, c_uint32)
_decl("proxy_session_proxy_tlv", _ffi._R, _ffi._S, c_uint8, POINTER(_ffi.proxy_str))
for _n in ("client_addr", "local_addr", "sni"):
    _decl("proxy_l4_session_" + _n, _ffi._R, _L4S, POINTER(_ffi.proxy_str))
_decl("proxy_l4_session_alpn", _ffi._R, _L4S, c_size_t, POINTER(_ffi.proxy_str))
_decl("proxy_l4_session_tls", _ffi._R, _L4S, c_uint32, c_size_t, POINTER(_ffi.proxy_bytes))
_decl("proxy_l4_session_proxy_tlv", _ffi._R, _L4S, c_uint8, POINTER(_ffi.proxy_str))
_decl("proxy_l4_session_set_peer", _ffi._R, _L4S, POINTER(_ffi.proxy_peer))
_decl("proxy_l4_session_pick", _ffi._R, _L4S, c_uint64, _ffi.proxy_str_in)
_decl("proxy_l4_session_summary", _ffi._R, _L4S, POINTER(proxy_l4_summary))


def _view_str(fn: Callable[..., int], *args: Any) -> Optional[bytes]:
    out = _ffi.proxy_str()
    rc = fn(*args, byref(out))
    if rc == _ffi.PROXY_NOT_FOUND:
        return None
    if rc:
        raise _err(rc, fn.__name__)
    return string_at(out.ptr, out.len) if out.len else b""


def proxy_tlv(session: Any, kind: int) -> Optional[bytes]:
    """The value of TLV ``kind`` of the PROXY v2 header an HTTP :class:`Session`'s connection
    began with (HTTP/1), or None."""
    return _view_str(lib.proxy_session_proxy_tlv, session._p(), kind)


def set_proxy_protocol(service: Service, mode: Optional[str], trusted: Sequence[str] = (), timeout_ms: int = 0) -> None:
    """PROXY headers on every endpoint of ``service``: ``mode`` is ``"required"``,
    ``"optional"`` or None (off); ``trusted`` the source ranges allowed to send one (empty: any);
    a malformed or untrusted header closes the connection (logged at WARN)."""
    m = {None: PROXY_PP_OFF, "required": PROXY_PP_REQUIRED, "optional": PROXY_PP_OPTIONAL}.get(mode)
    if m is None:
        raise ValueError(f"PROXY protocol mode must be 'required', 'optional' or None, not {mode!r}")
    rc = lib.proxy_service_set_proxy_protocol(service.ptr(), m, ",".join(trusted).encode(), timeout_ms)
    if rc:
        raise _err(rc, "proxy_service_set_proxy_protocol")


@dataclass(frozen=True)
class L4Summary:
    """What an L4 connection did (complete in ``logging``)."""

    end: str
    bytes_up: int
    bytes_down: int
    connect_us: int
    duration_us: int


class L4Session:
    """One L4 connection, valid only while the hook that got it runs."""

    __slots__ = ("_ptr", "_chosen")

    def __init__(self, ptr: int) -> None:
        self._ptr: Optional[int] = ptr
        self._chosen = False

    def _p(self) -> int:
        if self._ptr is None:
            raise ClosedError("this L4Session is no longer valid (its hook returned)")
        return self._ptr

    def _text(self, name: str) -> Optional[str]:
        b = _view_str(getattr(lib, "proxy_l4_session_" + name), self._p())
        return None if b is None else b.decode("latin-1")

    @property
    def client_addr(self) -> Optional[str]:
        """The client's address (the one a PROXY header carried, if any)."""
        return self._text("client_addr")

    @property
    def local_addr(self) -> Optional[str]:
        """The address the client connected to."""
        return self._text("local_addr")

    @property
    def sni(self) -> Optional[str]:
        """The TLS server name (terminated on the endpoint, or peeked from the ClientHello)."""
        return self._text("sni")

    @property
    def tls(self) -> Optional["TlsFacts"]:
        """What the TLS handshake settled on a TLS-terminating endpoint (version, cipher, the
        client certificate of mutual TLS), as :attr:`Session.tls` gives it to HTTP hooks; None
        in plaintext or passthrough."""
        from ._tls_runtime import l4_session_tls

        return l4_session_tls(self._p())

    @property
    def alpn(self) -> List[str]:
        """ALPN: the protocol negotiated, or those the peeked ClientHello offered."""
        out: List[str] = []
        while (b := _view_str(lib.proxy_l4_session_alpn, self._p(), len(out))) is not None:
            out.append(b.decode("latin-1"))
        return out

    def proxy_tlv(self, kind: int) -> Optional[bytes]:
        """The value of TLV ``kind`` of the connection's PROXY v2 header, or None."""
        return _view_str(lib.proxy_l4_session_proxy_tlv, self._p(), kind)

    def set_peer(self, peer: Peer) -> None:
        """Chooses the peer (in ``upstream_peer``)."""
        rc = lib.proxy_l4_session_set_peer(self._p(), byref(peer._c))
        if rc:
            raise _err(rc, "proxy_l4_session_set_peer")
        self._chosen = True

    def pick(self, group: Any, key: Optional[bytes] = None) -> None:
        """Chooses a backend of ``group`` (in ``upstream_peer``); ``key`` for consistent hashing."""
        k = _ffi.proxy_str_in(key, len(key)) if key is not None else _ffi.proxy_str_in(None, 0)
        rc = lib.proxy_l4_session_pick(self._p(), group.id, k)
        if rc:
            raise _err(rc, "proxy_l4_session_pick")
        self._chosen = True

    def summary(self) -> L4Summary:
        s = proxy_l4_summary()
        s.struct_size = ctypes.sizeof(s)
        rc = lib.proxy_l4_session_summary(self._p(), byref(s))
        if rc:
            raise _err(rc, "proxy_l4_session_summary")
        end = L4_ENDS[s.end] if s.end < len(L4_ENDS) else str(s.end)
        return L4Summary(end, s.bytes_up, s.bytes_down, s.connect_us, s.duration_us)


class L4Service(Service):
    """A TCP (L4) proxy service: ``hooks.upstream_peer(session)`` returns the :class:`Peer` to
    relay the connection to (or calls :meth:`L4Session.pick` and returns None); None without a
    choice, or an exception (logged), closes the connection. ``hooks.logging(session)``, if
    defined, runs once the connection ended. Endpoints, threads and limits as for
    :class:`Service`; ``idle_timeout_ms``, ``max_duration_ms``, ``buffer_size`` and
    ``peek_client_hello`` (SNI/ALPN for TLS passthrough) and ``splice`` (splice(2) for TCP to
    TCP: less CPU per byte, somewhat lower peak throughput) are the L4 options."""

    def __init__(self, name: str = "l4", hooks: Any = None, *, listen: Any = None, threads: Optional[int] = None, **options: int) -> None:
        self._l4: Optional[_L4Binding] = None
        super().__init__(name, None, listen=listen, threads=threads)
        if hooks is not None:
            self.set_l4_hooks(hooks)
        for k, v in options.items():
            self.set_l4_option(k, v)

    def set_l4_hooks(self, hooks: Any) -> None:
        b = _L4Binding(hooks)
        rc = lib.proxy_service_set_l4_callbacks(self.ptr(), byref(b.cbs))
        if rc:
            raise _err(rc, "proxy_service_set_l4_callbacks")
        if THREAD_STATE_MODE == "hooks":
            rc = lib.proxy_service_set_thread_hooks(self.ptr(), _THREAD_START, _THREAD_STOP, None)
            if rc:
                raise _err(rc, "proxy_service_set_thread_hooks")
        self._binding = b  # kept alive by the server once added (see Service._consumed)

    def set_l4_option(self, name: str, value: int) -> None:
        which = {
            "idle_timeout_ms": PROXY_L4_IDLE_TIMEOUT_MS,
            "max_duration_ms": PROXY_L4_MAX_DURATION_MS,
            "buffer_size": PROXY_L4_BUFFER_SIZE,
            "peek_client_hello": PROXY_L4_PEEK_CLIENT_HELLO,
            "splice": PROXY_L4_SPLICE,
        }.get(name)
        if which is None:
            raise ValueError(f"unknown L4 option {name!r}")
        rc = lib.proxy_service_set_l4_option(self.ptr(), which, int(value))
        if rc:
            raise _err(rc, f"proxy_service_set_l4_option({name})")

    set_proxy_protocol = set_proxy_protocol


Service.set_proxy_protocol = set_proxy_protocol  # type: ignore[attr-defined]


class _L4Binding:
    """The trampolines of one L4 service, alive as long as its server (``release`` is what the
    server calls on shutdown; there is no slab entry to drop)."""

    __slots__ = ("hooks", "cbs", "server", "_peer", "_logging")

    def __init__(self, hooks: Any) -> None:
        self.hooks = hooks
        self.server = None
        self._peer = proxy_l4_fn(self._upstream_peer)
        self._logging = proxy_l4_fn(self._log) if callable(getattr(hooks, "logging", None)) else proxy_l4_fn()
        self.cbs = proxy_l4_callbacks(ctypes.sizeof(proxy_l4_callbacks), None, self._peer, self._logging)

    def release(self) -> None:
        pass

    def _upstream_peer(self, user: Any, ptr: int) -> int:
        s = L4Session(ptr)
        try:
            peer = self.hooks.upstream_peer(s)
            if peer is not None:
                s.set_peer(peer)
            return _ffi.PROXY_CONTINUE if s._chosen else _ffi.PROXY_ERROR
        except BaseException:
            log.exception("libproxy: L4 upstream_peer hook failed; connection closed")
            return _ffi.PROXY_ERROR
        finally:
            s._ptr = None

    def _log(self, user: Any, ptr: int) -> int:
        s = L4Session(ptr)
        try:
            self.hooks.logging(s)
        except BaseException:
            log.exception("libproxy: L4 logging hook failed")
        finally:
            s._ptr = None
        return _ffi.PROXY_CONTINUE
