"""Configuration file and command line (``proxy_conf``): Pingora's ``-c -d -t -u`` flags, read by
the library from ``sys.argv``; the rest is handed back for ``argparse``."""

from __future__ import annotations

import ctypes
from ctypes import byref, c_char_p, c_uint32, c_uint64, c_void_p
from typing import List, Sequence, Tuple

from . import _ffi
from ._errors import ProxyError, _err
from ._ffi import lib
from ._group import Group
from ._managed import _Managed


def _need_conf() -> None:
    if not _ffi.HAVE_CONF:
        raise ProxyError(_ffi.PROXY_UNSUPPORTED, "proxy_conf_from_args")


class Conf(_Managed):
    """A loaded configuration (``proxy_conf``). Make it with :meth:`from_args`; give it to
    :meth:`Server.set_conf` and :meth:`Service.apply_conf`; then it may be closed."""

    _what = "conf"

    def __init__(self, ptr: int) -> None:
        self._ptr = ptr

    @classmethod
    def from_args(cls, argv: Sequence[str]) -> Tuple["Conf", List[str]]:
        """``proxy_conf_from_args``: takes ``-c FILE -d -t -u`` out of ``argv`` (``sys.argv``,
        program first) and does what they ask -- loads the file, and for ``-t`` checks it and
        exits the process, for ``-d`` goes to the background (the foreground process exits once
        the daemon serves), for ``-u`` takes the running proxy's listening sockets. Returns the
        configuration and the rest of ``argv`` in order. Raises ``ProxyError(CONFIG_INVALID)``
        with ``file:line:col: key: ...`` for a bad file."""
        _need_conf()
        encoded = [a.encode() for a in argv]
        arr = (c_char_p * (len(encoded) + 1))(*encoded, None)
        argc = ctypes.c_int(len(encoded))
        out = c_void_p()
        rc = lib.proxy_conf_from_args(byref(argc), arr, byref(out))
        if rc:
            raise _err(rc, "proxy_conf_from_args")
        rest = [(arr[i] or b"").decode() for i in range(argc.value)]
        if out.value is None:
            raise _err(_ffi.PROXY_PANIC, "proxy_conf_from_args returned no configuration")
        return cls(out.value), rest

    def get(self, key: str) -> str:
        """The effective value of ``key`` (``threads``, ``limits.header_timeout_ms``,
        ``services.proxy.listeners.0.address``); ``ProxyError(NOT_FOUND)`` for an unknown key."""
        out = _ffi.proxy_str()
        rc = lib.proxy_conf_get(self.ptr(), key.encode(), byref(out))
        if rc:
            raise _err(rc, "proxy_conf_get")
        return _ffi.to_str(out).decode()

    @property
    def flags(self) -> int:
        """``PROXY_CONF_*`` bits in effect (daemon, test, upgrade)."""
        out = c_uint32()
        rc = lib.proxy_conf_flags(self.ptr(), byref(out))
        if rc:
            raise _err(rc, "proxy_conf_flags")
        return out.value

    def group(self, name: str) -> Group:
        """The upstream group ``upstreams.<name>`` of the file; a reload changes its backends."""
        out = c_uint64()
        rc = lib.proxy_conf_group(self.ptr(), name.encode(), byref(out))
        if rc:
            raise _err(rc, "proxy_conf_group")
        return Group._adopt(out.value)

    def close(self) -> None:
        """Frees the configuration (a server given it keeps its own reference). Idempotent."""
        p, self._ptr = self._ptr, None
        if p is not None:
            lib.proxy_conf_free(p)
