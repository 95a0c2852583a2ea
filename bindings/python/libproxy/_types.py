"""Type aliases shared by the handles, and the Latin-1 encoding of header-ish values."""

from __future__ import annotations

from typing import Iterable, Mapping, Tuple, Union


StrOrBytes = Union[str, bytes]
HeaderList = Union[Mapping[str, StrOrBytes], Iterable[Tuple[StrOrBytes, StrOrBytes]], None]


def _enc(v: StrOrBytes) -> bytes:
    return v if isinstance(v, bytes) else v.encode("latin-1")
