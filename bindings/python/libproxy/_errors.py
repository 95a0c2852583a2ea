"""ProxyError (a failed libproxy call, with its ``proxy_result`` code) and ClosedError."""

from __future__ import annotations

from typing import Optional

from . import _ffi


class ProxyError(Exception):
    """A libproxy call failed. ``code`` is the ``proxy_result`` (e.g. ``ProxyError.GONE``),
    ``message`` the library's description of it."""

    OK = _ffi.PROXY_OK
    NULL_PARAMETER = _ffi.PROXY_NULL_PARAMETER
    INVALID_PARAMETER = _ffi.PROXY_INVALID_PARAMETER
    PANIC = _ffi.PROXY_PANIC
    IO = _ffi.PROXY_IO
    WRONG_PHASE = _ffi.PROXY_WRONG_PHASE
    GONE = _ffi.PROXY_GONE
    ALREADY = _ffi.PROXY_ALREADY
    HEADER_INVALID = _ffi.PROXY_HEADER_INVALID
    NOT_FOUND = _ffi.PROXY_NOT_FOUND
    BUSY = _ffi.PROXY_BUSY
    TOO_SMALL = _ffi.PROXY_TOO_SMALL
    WRONG_STATE = _ffi.PROXY_WRONG_STATE
    UNSUPPORTED = _ffi.PROXY_UNSUPPORTED
    TLS_INVALID = _ffi.PROXY_TLS_INVALID
    UNAVAILABLE = _ffi.PROXY_UNAVAILABLE
    CONFIG_INVALID = _ffi.PROXY_CONFIG_INVALID
    UPGRADE_FAILED = _ffi.PROXY_UPGRADE_FAILED
    RELOAD_REFUSED = _ffi.PROXY_RELOAD_REFUSED
    DAEMON_FAILED = _ffi.PROXY_DAEMON_FAILED

    def __init__(
        self, code: int, where: str = "", message: Optional[str] = None, detail: Optional[str] = None
    ) -> None:
        self.code = int(code)
        self.message = message if message is not None else _ffi.result_message(code)
        #: The library's specific reason when it gives one (``proxy_last_error``, e.g.
        #: ``"bind 127.0.0.1:80: Permission denied (os error 13)"``), else None.
        self.detail = detail
        self.where = where
        text = self.message + (f": {detail}" if detail else "")
        super().__init__(f"{where + ': ' if where else ''}{text} ({self.code})")


class ClosedError(ProxyError):
    """The handle was closed (server/service freed, or a session used after its callback
    returned or after it was resumed)."""

    def __init__(self, what: str) -> None:
        super().__init__(_ffi.PROXY_WRONG_STATE, what, f"{what} is closed")


def _err(rc: int, where: str) -> ProxyError:
    """The error for ``rc`` just returned by a call on this thread, with its cause as detail."""
    return ProxyError(rc, where, detail=_ffi.last_error_cause(rc))
