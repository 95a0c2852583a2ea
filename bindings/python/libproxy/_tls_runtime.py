"""TLS at runtime: the facts of a client's TLS connection (``proxy_session_tls``), certificates
replaced while a service runs (``proxy_tls_certs``), and the certificate callback
(``proxy_tls_settings_set_cert_callback``) with the :class:`ClientHello` it sees.

The certificate callback runs on libproxy's worker threads. It returns its decision at once, or
an awaitable (``async def``), which runs on the binding's asyncio loop (see :func:`libproxy.loop`)
while the handshake waits (PENDING), or ``hello.defer()`` to decide from any thread later.
"""

from __future__ import annotations

import inspect
import os
import threading
from ctypes import byref, c_int64, c_uint16, c_uint64, c_void_p
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, List, Optional, Set, Tuple, Union

from . import _ffi
from ._errors import ProxyError, _err
from ._ffi import lib
from ._log import log
from ._managed import _Managed

if TYPE_CHECKING:
    import asyncio

    from ._session import Session
    from ._tls import TlsSettings


@dataclass(frozen=True)
class TlsFacts:
    """What the TLS handshake of a request's connection settled (the same for every request on
    it, HTTP/1.1 or HTTP/2). Client fields are None / empty without a client certificate."""

    sni: Optional[str]
    alpn: Optional[str]
    #: ``TLSv1.2`` or ``TLSv1.3``.
    version: Optional[str]
    #: IANA name, e.g. ``TLS13_AES_128_GCM_SHA256``.
    cipher: Optional[str]
    client_subject: Optional[str] = None
    client_issuer: Optional[str] = None
    #: Upper-case hex.
    client_serial: Optional[str] = None
    #: ``DNS:a.example``, ``IP:127.0.0.1``, ``URI:spiffe://x/y``, ``email:a@example``.
    client_sans: Tuple[str, ...] = ()
    #: Seconds since the Unix epoch.
    client_not_after: Optional[int] = None
    #: The chain the client presented, DER, its own certificate first.
    client_chain: Tuple[bytes, ...] = field(default=(), repr=False)


class _Facts:
    """Reads facts through ``proxy_session_tls`` (HTTP) or ``proxy_l4_session_tls`` (L4)."""

    def __init__(self, p: Any, fn: Callable[..., int], name: str) -> None:
        self.p, self.fn, self.name = p, fn, name

    def raw(self, fact: int, index: int = 0) -> Optional[bytes]:
        out = _ffi.proxy_bytes()
        rc = self.fn(self.p, fact, index, byref(out))
        if rc == _ffi.PROXY_NOT_FOUND:
            return None
        if rc:
            raise _err(rc, self.name)
        return _ffi.to_bytes(out)

    def text(self, fact: int, index: int = 0) -> Optional[str]:
        b = self.raw(fact, index)
        return None if b is None else b.decode("utf-8", "replace")

    def all(self, fact: int, conv: Callable[[bytes], Any]) -> Tuple[Any, ...]:
        items: List[Any] = []
        while True:
            b = self.raw(fact, len(items))
            if b is None:
                return tuple(items)
            items.append(conv(b))

    def facts(self, not_after: Optional[int]) -> Optional[TlsFacts]:
        version = self.text(_ffi.PROXY_TLS_FACT_VERSION)
        if version is None:
            return None
        return TlsFacts(
            sni=self.text(_ffi.PROXY_TLS_FACT_SNI),
            alpn=self.text(_ffi.PROXY_TLS_FACT_ALPN),
            version=version,
            cipher=self.text(_ffi.PROXY_TLS_FACT_CIPHER),
            client_subject=self.text(_ffi.PROXY_TLS_FACT_CLIENT_SUBJECT),
            client_issuer=self.text(_ffi.PROXY_TLS_FACT_CLIENT_ISSUER),
            client_serial=self.text(_ffi.PROXY_TLS_FACT_CLIENT_SERIAL),
            client_sans=self.all(_ffi.PROXY_TLS_FACT_CLIENT_SAN, lambda b: b.decode("utf-8", "replace")),
            client_not_after=not_after,
            client_chain=self.all(_ffi.PROXY_TLS_FACT_CLIENT_CERT, bytes),
        )


def session_tls(s: "Session") -> Optional[TlsFacts]:
    """The facts of ``s``'s connection, or None on a plaintext one (see :attr:`Session.tls`)."""
    not_after = c_int64(0)
    rc = lib.proxy_session_tls_client_not_after(s._p(), byref(not_after))
    if rc and rc != _ffi.PROXY_NOT_FOUND:
        raise _err(rc, "proxy_session_tls_client_not_after")
    return _Facts(s._p(), lib.proxy_session_tls, "proxy_session_tls").facts(None if rc else not_after.value)


def l4_session_tls(p: Any) -> Optional[TlsFacts]:
    """The facts of an L4 connection terminated on a TLS endpoint (see :attr:`L4Session.tls`)."""
    return _Facts(p, lib.proxy_l4_session_tls, "proxy_l4_session_tls").facts(None)


def session_sni(s: "Session") -> Optional[str]:
    """Only the SNI (one crossing), for routing."""
    return _Facts(s._p(), lib.proxy_session_tls, "proxy_session_tls").text(_ffi.PROXY_TLS_FACT_SNI)


class TlsCert(_Managed):
    """One certificate chain and its private key (``proxy_tls_cert``), what a certificate
    callback serves: ``TlsCert(cert="a.pem", key="a.key")`` or ``TlsCert(cert_pem=..., key_pem=...)``.
    A bad pair raises ``ProxyError(TLS_INVALID)`` with the reason as detail."""

    _what = "TLS certificate"

    def __init__(
        self,
        cert: Union[str, "os.PathLike[str]", None] = None,
        key: Union[str, "os.PathLike[str]", None] = None,
        *,
        cert_pem: Union[str, bytes, None] = None,
        key_pem: Union[str, bytes, None] = None,
    ) -> None:
        out = c_void_p()
        if cert_pem is not None and key_pem is not None:
            c = cert_pem.encode() if isinstance(cert_pem, str) else bytes(cert_pem)
            k = key_pem.encode() if isinstance(key_pem, str) else bytes(key_pem)
            rc = lib.proxy_tls_cert_new_pem(c, len(c), k, len(k), byref(out))
        elif cert is not None and key is not None:
            rc = lib.proxy_tls_cert_new_files(os.fsencode(cert), os.fsencode(key), byref(out))
        else:
            raise ValueError("TlsCert: give cert and key, or cert_pem and key_pem")
        if rc:
            raise _err(rc, "proxy_tls_cert_new")
        self._ptr = out.value

    def close(self) -> None:
        """Frees it (handshakes that chose it keep their copy). Idempotent."""
        p, self._ptr = self._ptr, None
        if p is not None:
            lib.proxy_tls_cert_free(p)


class TlsCerts(_Managed):
    """The live certificate sets of TLS endpoints of a service (:meth:`Service.tls_certs`):
    :meth:`replace` swaps them while the server runs, from any thread, without dropping a
    connection."""

    _what = "TLS certificate handle"

    def __init__(self, ptr: int) -> None:
        self._ptr = ptr

    def replace(self, tls: "TlsSettings") -> None:
        """Serves the default and SNI certificates of ``tls`` from the next handshake on (its
        other settings do not apply). ``ProxyError(TLS_INVALID)`` when it has no certificate."""
        rc = lib.proxy_tls_certs_replace(self.ptr(), tls.ptr())
        if rc:
            tls._check(rc, "proxy_tls_certs_replace")

    def close(self) -> None:
        """Frees the handle (the endpoints keep their certificates). Idempotent."""
        p, self._ptr = self._ptr, None
        if p is not None:
            lib.proxy_tls_certs_free(p)


def service_tls_certs(service_ptr: int, port: int) -> TlsCerts:
    out = c_void_p()
    rc = lib.proxy_service_tls_certs(service_ptr, port, byref(out))
    if rc:
        raise _err(rc, "proxy_service_tls_certs")
    return TlsCerts(out.value)  # type: ignore[arg-type]


#: What a certificate callback decides: a certificate to serve, None (the endpoint's own
#: certificates), or False (refuse the handshake).
Choice = Union[TlsCert, None, bool]


class ClientHello:
    """What the client offered (copied when the callback starts): ``server_name``, ``alpn`` (in
    its order) and ``signature_schemes`` (IANA numbers, 0x0403 ecdsa_secp256r1_sha256, ...)."""

    __slots__ = ("server_name", "alpn", "signature_schemes", "_ptr", "_deferred")

    def __init__(self, ptr: int) -> None:
        self._ptr: Optional[int] = ptr
        self._deferred: Optional[HelloDeferred] = None
        out = _ffi.proxy_str()
        rc = lib.proxy_client_hello_server_name(ptr, byref(out))
        self.server_name: Optional[str] = None if rc else _ffi.to_str(out).decode("utf-8", "replace")
        self.alpn: List[str] = []
        while lib.proxy_client_hello_alpn(ptr, len(self.alpn), byref(out)) == _ffi.PROXY_OK:
            self.alpn.append(_ffi.to_str(out).decode("latin-1"))
        self.signature_schemes: List[int] = []
        scheme = c_uint16(0)
        while lib.proxy_client_hello_signature_scheme(ptr, len(self.signature_schemes), byref(scheme)) == 0:
            self.signature_schemes.append(scheme.value)

    def defer(self) -> "HelloDeferred":
        """Decide later, from any thread: return the result from the callback and call its
        :meth:`HelloDeferred.resume` once (within the endpoint's handshake timeout)."""
        if self._ptr is None:
            raise ProxyError(_ffi.PROXY_WRONG_STATE, "ClientHello.defer")
        if self._deferred is None:
            hid = c_uint64(0)
            rc = lib.proxy_client_hello_id(self._ptr, byref(hid))
            if rc:
                raise _err(rc, "proxy_client_hello_id")
            self._deferred = HelloDeferred(self._ptr, hid.value)
        return self._deferred


class HelloDeferred:
    """A handshake waiting for its certificate (see :meth:`ClientHello.defer`)."""

    __slots__ = ("_ptr", "id", "_lock", "_done")

    def __init__(self, ptr: int, hello_id: int) -> None:
        self._ptr = ptr
        #: ``proxy_client_hello_id``.
        self.id = hello_id
        self._lock = threading.Lock()
        self._done = False

    def resume(self, choice: Choice) -> None:
        """Decides the handshake: a :class:`TlsCert`, None (the endpoint's certificates) or False
        (refuse). Raises ``ProxyError`` with ``GONE`` when the handshake gave up (timeout, client
        gone) and ``ALREADY`` on a second call."""
        with self._lock:
            if self._done:
                raise ProxyError(_ffi.PROXY_ALREADY, "HelloDeferred.resume")
            self._done = True
        action = _ffi.PROXY_CONTINUE
        if choice is False:
            action = _ffi.PROXY_ERROR
        elif isinstance(choice, TlsCert):
            rc = lib.proxy_client_hello_set_cert(self._ptr, choice.ptr())
            if rc == _ffi.PROXY_GONE:
                action = _ffi.PROXY_ERROR  # resume anyway: it releases the handle
            elif rc:
                raise _err(rc, "proxy_client_hello_set_cert")
        rc = lib.proxy_client_hello_resume(self.id, action)
        if rc:
            raise _err(rc, "proxy_client_hello_resume")


def _decide_now(ptr: int, choice: Any) -> int:
    if choice is None:
        return _ffi.PROXY_CONTINUE
    if isinstance(choice, TlsCert):
        return _ffi.PROXY_CONTINUE if lib.proxy_client_hello_set_cert(ptr, choice.ptr()) == 0 else _ffi.PROXY_ERROR
    if choice is not False:
        log.error("libproxy: certificate callback returned %r, not a TlsCert, None or False; refusing", choice)
    return _ffi.PROXY_ERROR


async def _drive(aw: Awaitable[Choice], d: HelloDeferred) -> None:
    try:
        choice: Choice = await aw
    except BaseException:
        log.exception("libproxy: exception in async certificate callback; refusing the handshake")
        choice = False
    if not isinstance(choice, (TlsCert, bool)) and choice is not None:
        log.error("libproxy: certificate callback gave %r, not a TlsCert, None or False; refusing", choice)
        choice = False
    try:
        d.resume(choice)
    except ProxyError as e:
        if e.code != _ffi.PROXY_GONE:  # GONE: the handshake gave up meanwhile
            log.warning("libproxy: certificate resume failed: %s", e)


#: The tasks of pending async callbacks (the loop keeps only weak references to tasks).
_TASKS: Set["asyncio.Task[None]"] = set()


def _start(lp: "asyncio.AbstractEventLoop", aw: Awaitable[Choice], d: HelloDeferred) -> None:
    task = lp.create_task(_drive(aw, d))
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


#: Trampolines stay alive for the process: endpoints copy the settings and may call the function
#: after the TlsSettings object is gone.
_KEEP: List[Any] = []


def make_cert_callback(fn: Callable[[ClientHello], Any]) -> Any:
    """The C trampoline for a Python certificate callback (see the module docs)."""

    def trampoline(user: Optional[int], hp: Optional[int]) -> int:
        if hp is None:
            return _ffi.PROXY_ERROR
        hello = ClientHello(hp)
        try:
            r = fn(hello)
            if inspect.isawaitable(r):
                d = hello.defer()
                from ._async import loop

                lp = loop()
                lp.call_soon_threadsafe(_start, lp, r, d)
                return _ffi.PROXY_PENDING
            if isinstance(r, HelloDeferred):
                return _ffi.PROXY_PENDING
            return _decide_now(hp, r)
        except BaseException:
            log.exception("libproxy: exception in certificate callback; refusing the handshake")
            return _ffi.PROXY_ERROR
        finally:
            hello._ptr = None

    cb = _ffi.proxy_cert_fn(trampoline)
    _KEEP.append(cb)
    return cb


def set_cert_callback(tls: "TlsSettings", fn: Optional[Callable[[ClientHello], Any]]) -> None:
    cb = make_cert_callback(fn) if fn is not None else _ffi.proxy_cert_fn()
    rc = lib.proxy_tls_settings_set_cert_callback(tls.ptr(), cb, None)
    if rc:
        tls._check(rc, "proxy_tls_settings_set_cert_callback")
