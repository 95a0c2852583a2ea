"""Cache: an HTTP cache (``proxy_cache``) that services share by attaching it."""

from __future__ import annotations

from ctypes import byref, c_uint64, c_void_p
from typing import Optional, Tuple, Union

from . import _ffi
from ._enums import CacheSetting
from ._errors import _err
from ._ffi import lib
from ._managed import _Managed


class Cache(_Managed):
    """An in-memory HTTP cache (RFC 9111, shared) of at most ``max_bytes``: pass it to
    :meth:`Service.set_cache` (one cache in several services is shared by them). Settings are
    given here, before it is attached::

        Cache(64 << 20, max_object=1 << 20, status_header=True)

    ``ProxyError(UNSUPPORTED)`` on a library without the cache."""

    _what = "cache"

    def __init__(
        self,
        max_bytes: int,
        *,
        max_object: Optional[int] = None,
        status_header: Optional[bool] = None,
        allow_set_cookie: Optional[bool] = None,
        heuristic_freshness: Optional[bool] = None,
        lock_timeout_ms: Optional[int] = None,
    ) -> None:
        if not _ffi.HAVE_CACHE:
            raise _err(_ffi.PROXY_UNSUPPORTED, "proxy_cache_new")
        out = c_void_p()
        rc = lib.proxy_cache_new(max_bytes, byref(out))
        if rc:
            raise _err(rc, "proxy_cache_new")
        self._ptr = out.value
        settings = (
            (CacheSetting.MAX_OBJECT, max_object),
            (CacheSetting.STATUS_HEADER, status_header),
            (CacheSetting.ALLOW_SET_COOKIE, allow_set_cookie),
            (CacheSetting.HEURISTIC_FRESHNESS, heuristic_freshness),
            (CacheSetting.LOCK_TIMEOUT_MS, lock_timeout_ms),
        )
        try:
            for which, value in settings:
                if value is not None:
                    self.set(which, int(value))
        except BaseException:
            self.close()
            raise

    def set(self, which: Union[CacheSetting, int], value: int) -> None:
        """``proxy_cache_set``: a ``CacheSetting``; ``ProxyError(WRONG_PHASE)`` once attached."""
        rc = lib.proxy_cache_set(self.ptr(), int(which), int(value))
        if rc:
            raise _err(rc, "proxy_cache_set")

    def purge(self, key: Union[str, bytes]) -> bool:
        """Removes what is stored under ``key`` (by default ``scheme://host/path?query``); whether
        there was anything."""
        k = key.encode() if isinstance(key, str) else bytes(key)
        rc = lib.proxy_cache_purge(self.ptr(), k, len(k))
        if rc == _ffi.PROXY_NOT_FOUND:
            return False
        if rc:
            raise _err(rc, "proxy_cache_purge")
        return True

    def usage(self) -> Tuple[int, int]:
        """``(bytes, objects)`` stored now."""
        b, o = c_uint64(), c_uint64()
        rc = lib.proxy_cache_usage(self.ptr(), byref(b), byref(o))
        if rc:
            raise _err(rc, "proxy_cache_usage")
        return b.value, o.value

    def close(self) -> None:
        """Frees this handle; services it was attached to keep the cache. Idempotent."""
        p, self._ptr = self._ptr, None
        if p is not None:
            lib.proxy_cache_free(p)
