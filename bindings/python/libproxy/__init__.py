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

from ._async import Deferred, loop
from ._cache import Cache
from ._conf import Conf
from ._enums import (
    Action,
    CacheDecision,
    CacheSetting,
    CacheStatus,
    Compression,
    Encoding,
    Limit,
    Option,
    Phase,
    Timeout,
    Underscore,
)
from ._errors import ClosedError, ProxyError
from ._ffi import HAVE_THREAD_HOOKS, LIBRARY_PATH
from ._group import Algorithm, BackendFigures, Group, HealthCheck, HealthEvent, Shutdown
from ._hooks import HookResult, Proxy
from ._observe import Metric, MetricKind, Observe, Series
from ._peer import Peer
from ._server import Server
from ._service import Service
from ._session import Headers, Session, Summary
from ._threads import THREAD_STATE_MODE
from ._tls import TlsSettings
from ._tls_runtime import ClientHello, HelloDeferred, TlsCert, TlsCerts, TlsFacts
from ._version import abi_version, features, version
from ._l4 import L4Service, L4Session, L4Summary, proxy_tlv  # noqa: E402  (after Service)

__version__ = "0.1.0"

__all__ = [
    "L4Service",
    "L4Session",
    "L4Summary",
    "proxy_tlv",
    "Action",
    "Algorithm",
    "BackendFigures",
    "Cache",
    "CacheDecision",
    "CacheSetting",
    "CacheStatus",
    "ClientHello",
    "ClosedError",
    "Conf",
    "Compression",
    "Deferred",
    "Encoding",
    "Group",
    "Metric",
    "MetricKind",
    "Observe",
    "Series",
    "HealthCheck",
    "HealthEvent",
    "HelloDeferred",
    "HAVE_THREAD_HOOKS",
    "Headers",
    "LIBRARY_PATH",
    "Limit",
    "Option",
    "Peer",
    "Phase",
    "HookResult",
    "Proxy",
    "ProxyError",
    "Server",
    "Service",
    "Session",
    "Shutdown",
    "Summary",
    "THREAD_STATE_MODE",
    "Timeout",
    "TlsCert",
    "TlsCerts",
    "TlsFacts",
    "TlsSettings",
    "Underscore",
    "abi_version",
    "features",
    "loop",
    "version",
]
