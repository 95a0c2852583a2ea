"""Worker thread states: how libproxy's worker threads keep one Python thread state for their
whole life (``proxy_service_set_thread_hooks`` when the library has it, else pinned lazily on the
first callback), so a callback does not pay for creating and destroying a thread state each time."""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Optional

from . import _ffi
from ._log import log


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
# "lazy": the trampoline pins the thread on its first callback. A thread-local survives only as long
# as the thread state: when it is missing, that callback runs on a state ctypes made for it alone,
# and one more Ensure (never released) keeps it. (Thread ids are not used: a new worker may reuse a
# dead one's id.)
_lazy_pin = THREAD_STATE_MODE == "lazy"
#: Worker threads whose start hook ran / whose stop hook ran (diagnostics and tests).
thread_hook_counts = [0, 0]


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
