"""The hook base class (Proxy), per-service registration (the slab) and the trampolines.

* Every phase has one ``CFUNCTYPE`` trampoline per binding; ``proxy_http_callbacks.user`` is a
  small integer indexing ``_SLAB`` (never a Python pointer). Only phases whose method a subclass
  overrides are registered; the others stay NULL and are never crossed.
* A trampoline wraps the borrowed ``proxy_session*`` in a :class:`Session`, calls the hook, and
  turns its result into an action. The Session is invalidated when the hook returns (unless it was
  deferred), so a stored Session raises :class:`ClosedError` instead of touching freed memory.
* Any exception is logged through :mod:`logging` (logger ``"libproxy"``) and fails the request
  (``PROXY_ERROR``: 500 before the response head) -- never a silent CONTINUE.
* A hook returning an awaitable is handed to the asyncio bridge (:mod:`._async`).
"""

from __future__ import annotations

import difflib
import inspect
import sys
import threading
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, List, Optional, Protocol, Set, Union

from . import _ffi
from ._async import _schedule
from ._enums import Action
from ._log import log
from ._session import Session
from ._threads import _api, _lazy_pin, _tls

if TYPE_CHECKING:
    from ._server import Server


#: What a hook of a phase that can wait returns: an :class:`Action` or ``None``, or an awaitable
#: of one (an ``async def`` hook, run on the server's loop, see :meth:`Server.serve`).
HookResult = Union[Optional[Action], Awaitable[Optional[Action]]]

_PENDABLE = frozenset(i for i, n in enumerate(_ffi.PHASES) if n not in _ffi.SYNC_PHASES)


class Proxy:
    """Base class of a service's hooks: one method per phase, in the order they run. Override
    the ones you need; only overridden methods are registered with libproxy (the others stay NULL
    and cost nothing). Each gets the :class:`Session` and returns an :class:`Action` or ``None``
    (CONTINUE, or RESPONDED after :meth:`Session.respond`). A method may be ``async def`` (except
    those that cannot wait: fail_to_connect, error_while_proxy, logging, request_end and the four
    cache phases).

    Hooks run concurrently on libproxy worker threads (never concurrently for one session) and
    must not block: defer (:meth:`Session.defer`) or use ``async def`` instead. An exception fails
    the request with 500 and is logged."""

    def early_request_filter(self, session: Session) -> HookResult:
        """Before anything else looks at the request; may respond."""

    def request_filter(self, session: Session) -> HookResult:
        """May answer by itself (:meth:`Session.respond`)."""

    def upstream_peer(self, session: Session) -> HookResult:
        """Must choose the upstream with :meth:`Session.set_peer`; called again per retry."""

    def connected_to_upstream(self, session: Session) -> HookResult:
        """An upstream connection is ready (:attr:`Session.upstream_reused`)."""

    def upstream_request_filter(self, session: Session) -> HookResult:
        """Edit :attr:`Session.upstream_request_headers` before they are sent."""

    def request_body_filter(self, session: Session) -> HookResult:
        """Each request body chunk (:attr:`Session.body`, :meth:`Session.set_body`)."""

    def upstream_response_filter(self, session: Session) -> HookResult:
        """The upstream response head as received."""

    def response_filter(self, session: Session) -> HookResult:
        """The response head about to go downstream."""

    def upstream_response_body_filter(self, session: Session) -> HookResult:
        """Each upstream response body chunk as received."""

    def response_body_filter(self, session: Session) -> HookResult:
        """Each response body chunk about to go downstream."""

    def logging(self, session: Session) -> None:
        """Once per request, last (:meth:`Session.summary`, :attr:`Session.error`)."""

    def fail_to_connect(self, session: Session) -> Optional[Action]:
        """Connecting failed (:attr:`Session.error`, :meth:`Session.set_retry`)."""

    def error_while_proxy(self, session: Session) -> Optional[Action]:
        """Proxying failed after connecting (:meth:`Session.set_retry`)."""

    def fail_to_proxy(self, session: Session) -> HookResult:
        """The request failed for good; may answer with :meth:`Session.respond`."""

    def request_end(self, session: Session) -> None:
        """After logging, also when the request was cut short (only :attr:`Session.phase`)."""

    def request_cache_filter(self, session: Session) -> Optional[Action]:
        """With a :class:`Cache` on the service, for a GET or HEAD:
        ``session.set_cache(CacheDecision.BYPASS, 1)`` keeps it away from the cache."""

    def cache_key_callback(self, session: Session) -> Optional[Action]:
        """:meth:`Session.set_cache_key` replaces the default key (scheme, host, path, query)."""

    def cache_hit_filter(self, session: Session) -> Optional[Action]:
        """A stored response was found: ``session.set_cache(CacheDecision.EXPIRE, 1)`` treats it as
        expired."""

    def response_cache_filter(self, session: Session) -> Optional[Action]:
        """After upstream_response_filter: ``CacheDecision.STORE`` / ``TTL`` decide whether the
        response is stored and for how long (preset to what RFC 9111 says)."""


# ---- per-service registration (slab) and the trampolines ----------------------------------------
_SLAB: Dict[int, "_Binding"] = {}
_slab_lock = threading.Lock()
_slab_next = 1


def _check_names(hooks: Any) -> None:
    """Refuses a hook object with a method named like a phase but not quite (``upstream_pear``,
    ``requestfilter``): that method would never be called, and the request would fail with a 500
    (or pass unfiltered) with nothing to say why. Other helper methods are left alone."""
    known = set(_ffi.PHASES)
    own: Set[str] = set()
    for klass in type(hooks).__mro__:
        if klass in (Proxy, object):
            continue
        own.update(n for n, v in vars(klass).items() if callable(v) and not n.startswith("_"))
    try:
        own.update(n for n, v in vars(hooks).items() if callable(v) and not n.startswith("_"))
    except TypeError:
        pass  # no instance __dict__ (__slots__)
    for name in sorted(own - known):
        close = difflib.get_close_matches(name.lower(), _ffi.PHASES, n=1, cutoff=0.85)
        if close:
            raise ValueError(
                f"{type(hooks).__name__}.{name} is not a libproxy hook and would never be called; "
                f"did you mean {close[0]!r}? (hooks: {', '.join(_ffi.PHASES)})"
            )



class _Held(Protocol):
    """What a server keeps alive for a service it was given: the binding of its hooks (HTTP's
    :class:`_Binding` or an L4 service's), released when the server is freed."""

    server: Any

    def release(self) -> None: ...

class _Binding:
    """What ``proxy_http_callbacks.user`` (a slab key) stands for: the hook object, its methods
    per phase, and the server that owns the service once it was added."""

    __slots__ = ("key", "hooks", "fns", "server", "pending_ms", "free", "pyfuncs", "cfuncs", "__weakref__")

    def __init__(self, hooks: Any) -> None:
        global _slab_next
        _check_names(hooks)
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
        if not isinstance(hooks, Proxy) and not any(fns):
            raise TypeError(
                f"hooks must be a libproxy.Proxy or have at least one phase method "
                f"({', '.join(_ffi.PHASES[:3])}, ...); {type(hooks).__name__} has none"
            )
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
                    r.close()
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
                api_ensure()  # see _threads ("lazy")
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
