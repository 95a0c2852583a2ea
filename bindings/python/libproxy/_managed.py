"""The Managed base of the C handles: ``ptr()``, idempotent ``close()``, ``with``, ``__del__``."""

from __future__ import annotations

from typing import Any, Optional

from ._errors import ClosedError


class _Managed:
    """A C handle: ``_ptr`` is the pointer or None once closed; :meth:`ptr` raises on a closed
    handle; :meth:`close` is idempotent; context manager; ``__del__`` closes as a safety net."""

    _ptr: Optional[int] = None
    _what = "handle"

    def ptr(self) -> int:
        """The raw pointer; raises :class:`ClosedError` when closed."""
        p = self._ptr
        if p is None:
            raise ClosedError(self._what)
        return p

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._ptr is None

    def close(self) -> None:  # pragma: no cover - overridden
        self._ptr = None

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
