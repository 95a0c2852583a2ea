"""The ``"libproxy"`` logger and the log sink that forwards the library's diagnostics to it."""

from __future__ import annotations

import logging
from typing import Optional

from . import _ffi


log = logging.getLogger("libproxy")


_LOG_LEVELS = {
    _ffi.PROXY_LOG_ERROR: logging.ERROR,
    _ffi.PROXY_LOG_WARN: logging.WARNING,
    _ffi.PROXY_LOG_INFO: logging.INFO,
    _ffi.PROXY_LOG_DEBUG: logging.DEBUG,
}


def _log_sink(user: Optional[int], level: int, msg: _ffi.proxy_str) -> None:
    try:
        log.log(_LOG_LEVELS.get(level, logging.INFO), "%s", _ffi.to_str(msg).decode("utf-8", "replace"))
    except BaseException:
        pass


_LOG_SINK = _ffi.proxy_log_fn(_log_sink)


def _max_level_for(logger: logging.Logger) -> int:
    lvl = logger.getEffectiveLevel()
    if lvl <= logging.DEBUG:
        return _ffi.PROXY_LOG_DEBUG
    if lvl <= logging.INFO:
        return _ffi.PROXY_LOG_INFO
    if lvl <= logging.WARNING:
        return _ffi.PROXY_LOG_WARN
    return _ffi.PROXY_LOG_ERROR
