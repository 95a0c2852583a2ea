"""Peer: where and how to connect upstream (``proxy_peer``), built and validated once."""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from . import _ffi
from ._types import _enc


_ALPN = {
    "h1": _ffi.PROXY_ALPN_H1,
    "http/1.1": _ffi.PROXY_ALPN_H1,
    "h2": _ffi.PROXY_ALPN_H2,
    "h2-then-h1": _ffi.PROXY_ALPN_H2THENH1,
}


# proxy_peer.flags bits PROXY_PEER_SEND_PROXY_V1 / _V2 (include/proxy.h).
_SEND_PROXY_V1, _SEND_PROXY_V2 = 8, 16


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
    #: 1 or 2: send a PROXY protocol header of that version first on each new connection,
    #: carrying the client's address (0: none).
    send_proxy: int = 0
    _c: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.address, (str, bytes)):
            raise TypeError(f"Peer.address must be a str, not {type(self.address).__name__}")
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
        if self.send_proxy not in (0, 1, 2):
            raise ValueError(f"Peer.send_proxy must be 0, 1 or 2, not {self.send_proxy!r}")
        flags |= (0, _SEND_PROXY_V1, _SEND_PROXY_V2)[self.send_proxy]
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
        # The library's own check, the one proxy_session_set_peer makes: a bad address fails
        # here, where the Peer is written, not as a 500 on each request.
        rc = _ffi.lib.proxy_peer_check(ctypes.byref(c))
        if rc:
            why = _ffi.last_error_cause(rc) or _ffi.result_message(rc)
            raise ValueError(f"Peer({self.address!r}): {why}")
        object.__setattr__(self, "_c", c)
