"""libproxy: Python binding (ctypes) of the libproxy C ABI, a programmable HTTP reverse proxy.

Quick start::

    import libproxy

    class Hello(libproxy.Proxy):
        def upstream_peer(self, session):
            session.set_peer(libproxy.Peer("127.0.0.1:8000"))

    with libproxy.Server() as server:
        server.add_service(libproxy.Service("proxy", Hello(), listen="127.0.0.1:8080"))
        server.run(signals=True)

One class per C handle (:class:`Server`, :class:`Service`, :class:`Session`), hooks as methods of a
:class:`Proxy` subclass (only overridden ones are registered), errors as :class:`ProxyError`.
"""

from ._core import (
    Action,
    ClosedError,
    Deferred,
    Headers,
    Limit,
    Peer,
    Phase,
    Proxy,
    ProxyError,
    Server,
    Service,
    Session,
    Summary,
    THREAD_STATE_MODE,
    Timeout,
    TlsSettings,
    abi_version,
    features,
    loop,
    version,
)
from ._ffi import HAVE_THREAD_HOOKS, LIBRARY_PATH

__version__ = "0.1.0"

__all__ = [
    "Action",
    "ClosedError",
    "Deferred",
    "HAVE_THREAD_HOOKS",
    "Headers",
    "LIBRARY_PATH",
    "Limit",
    "Peer",
    "Phase",
    "Proxy",
    "ProxyError",
    "Server",
    "Service",
    "Session",
    "Summary",
    "THREAD_STATE_MODE",
    "Timeout",
    "TlsSettings",
    "abi_version",
    "features",
    "loop",
    "version",
]
