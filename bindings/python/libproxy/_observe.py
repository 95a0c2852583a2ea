"""Observability: the metrics endpoint, host-defined metrics (counters, gauges, histograms with
labels) and a service's built-in metrics, access log, error log and request ids."""

from __future__ import annotations

import enum
import itertools
from ctypes import byref, c_double, c_uint16, c_void_p, string_at
from typing import TYPE_CHECKING, Callable, Dict, Optional, Sequence, Tuple

from . import _ffi
from ._errors import _err
from ._ffi import lib

if TYPE_CHECKING:
    from ._server import Server
    from ._service import Service


class Observe(enum.IntFlag):
    """``PROXY_OBSERVE_*`` flags of :meth:`Service.set_observe`."""

    METRICS = 1
    REQUEST_IDS = 2
    ERROR_LOG = 4


class MetricKind(enum.IntEnum):
    """``PROXY_METRIC_*``."""

    COUNTER = 0
    GAUGE = 1
    HISTOGRAM = 2


def _need() -> None:
    if not _ffi.HAVE_OBSERVE:
        raise _err(_ffi.PROXY_UNSUPPORTED, "proxy_metric_new")


def _strs(items: Sequence[str]):  # type: ignore[no-untyped-def]
    arr = (_ffi.proxy_str_in * max(len(items), 1))()
    for i, s in enumerate(items):
        b = s.encode()
        arr[i].ptr, arr[i].len = b, len(b)
    return arr


class Series:
    """One labelled series (``proxy_series``): owned by the server, valid until it is closed.
    Updates take no lock in the library."""

    def __init__(self, ptr: int) -> None:
        self._ptr = ptr

    def add(self, value: float = 1.0) -> None:
        """Adds ``value`` to a counter (not negative) or a gauge."""
        rc = lib.proxy_series_add(self._ptr, value)
        if rc:
            raise _err(rc, "proxy_series_add")

    def set(self, value: float) -> None:
        """Sets a gauge."""
        rc = lib.proxy_series_set(self._ptr, value)
        if rc:
            raise _err(rc, "proxy_series_set")

    def observe(self, value: float) -> None:
        """Records an observation in a histogram."""
        rc = lib.proxy_series_observe(self._ptr, value)
        if rc:
            raise _err(rc, "proxy_series_observe")


class Metric:
    """A metric family (``proxy_metric``) made by :meth:`Server.metric`. :meth:`labels` looks a
    series up once per label set and keeps it, so updates cost one C call."""

    def __init__(self, ptr: int) -> None:
        self._ptr = ptr
        self._series: Dict[Tuple[str, ...], Series] = {}

    def labels(self, *values: str) -> Series:
        """The series for ``values`` (one per label name, in order)."""
        s = self._series.get(values)
        if s is None:
            out = c_void_p()
            rc = lib.proxy_metric_series(self._ptr, _strs(values), len(values), byref(out))
            if rc:
                raise _err(rc, "proxy_metric_series")
            s = self._series.setdefault(values, Series(out.value or 0))
        return s


def new_metric(
    server: "Server",
    kind: MetricKind,
    name: str,
    help: str,
    labels: Sequence[str] = (),
    buckets: Sequence[float] = (),
) -> Metric:
    _need()
    out = c_void_p()
    b = (c_double * max(len(buckets), 1))(*buckets)
    rc = lib.proxy_metric_new(
        server.ptr(), int(kind), name.encode(), help.encode(), _strs(labels), len(labels), b, len(buckets), byref(out)
    )
    if rc:
        raise _err(rc, "proxy_metric_new")
    return Metric(out.value or 0)


def add_metrics(server: "Server", listen: str) -> int:
    _need()
    port = c_uint16()
    rc = lib.proxy_server_add_metrics(server.ptr(), listen.encode(), byref(port))
    if rc:
        raise _err(rc, "proxy_server_add_metrics")
    return port.value


def reopen_logs(server: "Server") -> None:
    _need()
    rc = lib.proxy_server_reopen_logs(server.ptr())
    if rc:
        raise _err(rc, "proxy_server_reopen_logs")


def set_log_file(server: "Server", path: Optional[str], max_level: int) -> None:
    _need()
    rc = lib.proxy_server_set_log_file(server.ptr(), path.encode() if path else None, max_level)
    if rc:
        raise _err(rc, "proxy_server_set_log_file")


def set_observe(service: "Service", flags: int) -> None:
    _need()
    rc = lib.proxy_service_set_observe(service.ptr(), int(flags))
    if rc:
        raise _err(rc, "proxy_service_set_observe")


def set_access_log(service: "Service", path: Optional[str], fmt: str) -> None:
    _need()
    rc = lib.proxy_service_set_access_log(service.ptr(), path.encode() if path else None, fmt.encode())
    if rc:
        raise _err(rc, "proxy_service_set_access_log")


#: What an error response function returns to replace a page: (status, headers, body).
ErrorPage = Tuple[int, Sequence[Tuple[str, str]], bytes]

# The host functions by key: the C side holds only the key (as its user pointer). One entry per
# service given a function, for the life of the process.
_ERROR_FNS: Dict[int, Callable[[int, str], Optional[ErrorPage]]] = {}
_ERROR_KEYS = itertools.count(1)


def _error_response(user: Optional[int], status: int, what: _ffi.proxy_str, page: Optional[int]) -> int:
    try:
        fn = _ERROR_FNS[user or 0]
        out = fn(status, string_at(what.ptr, what.len).decode("utf-8", "replace") if what.len else "")
        if out is None:
            return int(_ffi.PROXY_CONTINUE)
        st, headers, body = out
        hs = (_ffi.proxy_header_in * max(len(headers), 1))()
        for i, (k, v) in enumerate(headers):
            kb, vb = k.encode(), v.encode()
            hs[i].name.ptr, hs[i].name.len = kb, len(kb)
            hs[i].value.ptr, hs[i].value.len = vb, len(vb)
        if lib.proxy_error_page_set(page, st, hs, len(headers), body, len(body)):
            return int(_ffi.PROXY_CONTINUE)
        return int(_ffi.PROXY_RESPONDED)
    except BaseException:  # noqa: BLE001 - an exception keeps the default page, never escapes into C
        return int(_ffi.PROXY_CONTINUE)


_ERROR_RESPONSE = _ffi.proxy_error_response_fn(_error_response) if _ffi.HAVE_OBSERVE else None


def set_error_response(service: "Service", fn: Callable[[int, str], Optional[ErrorPage]]) -> None:
    _need()
    key = next(_ERROR_KEYS)
    _ERROR_FNS[key] = fn
    rc = lib.proxy_service_set_error_response(service.ptr(), _ERROR_RESPONSE, key)
    if rc:
        del _ERROR_FNS[key]
        raise _err(rc, "proxy_service_set_error_response")
