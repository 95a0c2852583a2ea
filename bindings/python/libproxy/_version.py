"""What library is loaded: ``proxy_version``, ``proxy_abi_version``, ``proxy_features``."""

from __future__ import annotations

from typing import Tuple

from ._ffi import lib


def version() -> str:
    """``proxy_version()``, e.g. ``"libproxy/0.1.0"``."""
    return str(lib.proxy_version().decode())


def abi_version() -> Tuple[int, int]:
    """``proxy_abi_version()`` as ``(major, minor)``."""
    v = int(lib.proxy_abi_version())
    return v >> 16, v & 0xFFFF


def features() -> int:
    """``proxy_features()``: an OR of ``PROXY_FEATURE_*`` bits."""
    return int(lib.proxy_features())
