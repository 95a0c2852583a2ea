"""TlsSettings: how a TLS endpoint serves (``proxy_tls_settings``)."""

from __future__ import annotations

import os
from ctypes import byref, c_void_p
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple, Union

from . import _ffi
from ._errors import ProxyError, _err
from ._ffi import lib
from ._managed import _Managed


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

    def set_cert_callback(self, fn: Optional[Callable[..., Any]]) -> None:
        """Lets ``fn(hello: ClientHello)`` choose the certificate of each handshake on endpoints
        added with these settings: it returns a :class:`TlsCert`, None (the endpoint's own
        certificates, then optional) or False (refuse), at once, as an awaitable, or later through
        ``hello.defer()``. None removes the callback. See :mod:`libproxy._tls_runtime`."""
        from ._tls_runtime import set_cert_callback

        set_cert_callback(self, fn)

    def close(self) -> None:
        """Frees the settings (endpoints added with them keep their copy). Idempotent."""
        p, self._ptr = self._ptr, None
        if p is not None:
            lib.proxy_tls_settings_free(p)
