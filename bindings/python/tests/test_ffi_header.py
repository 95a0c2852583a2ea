"""The ctypes layer (libproxy/_ffi.py) copies constants, struct layouts and function signatures from
include/proxy.h by hand; this checks every one of them against the header as a C compiler sees it
(a generated C program prints each value, ``sizeof`` and ``offsetof``), so a changed header that the
binding did not follow fails here instead of corrupting memory at run time."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from libproxy import _ffi
from libproxy._enums import Phase

HEADER = Path(__file__).resolve().parents[3] / "include" / "proxy.h"

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")

# Numeric macros the binding mirrors elsewhere: the ABI version (tests/abi_version.rs checks
# ABI_MAJOR / ABI_MINOR) and PROXY_PHASE_* (the Phase enum, checked below).
NOT_IN_FFI = re.compile(r"PROXY_ABI_VERSION_\w+|PROXY_PHASE_\w+")


def _header() -> str:
    return HEADER.read_text()


def _macros() -> List[str]:
    return re.findall(r"^#define (PROXY_\w+) [(\d-]", _header(), re.M)


# ctypes-side twins of one C struct (an input view typed for ctypes' conversions).
C_NAME = {"proxy_str_in": "proxy_str", "proxy_header_in": "proxy_header"}


def _structs() -> Dict[str, Tuple[str, type]]:
    """Python name -> (C name, class) of every ctypes struct in _ffi."""
    return {
        n: (C_NAME.get(n, n), v)
        for n, v in vars(_ffi).items()
        if isinstance(v, type) and issubclass(v, ctypes.Structure) and n.startswith("proxy_")
    }


def _prototypes() -> Dict[str, Tuple[str, List[str]]]:
    """name -> (return type, [parameter types]) of every function the header declares."""
    out: Dict[str, Tuple[str, List[str]]] = {}
    body = re.sub(r"/\*.*?\*/", "", _header(), flags=re.S)
    for m in re.finditer(r"^([A-Za-z_][\w \*]*?)\s*\b(proxy_\w+)\(([^;{]*?)\);", body, re.M | re.S):
        ret, name, params = m.group(1).strip(), m.group(2), " ".join(m.group(3).split())
        types = [] if params in ("", "void") else [re.sub(r"\s*\b\w+$", "", p.strip()) for p in params.split(",")]
        out[name] = (ret, types)
    return out


def _declared() -> Dict[str, ctypes._CFuncPtr]:  # type: ignore[name-defined]
    return {n: f for n, f in vars(_ffi.lib).items() if n.startswith("proxy_") and f.argtypes is not None}


def _c_values(tmp_path: Path, lines: List[str]) -> Dict[str, int]:
    """Compiles and runs a program printing `key value` for each `(key, C expression)` line."""
    prog = ["#include <stddef.h>", "#include <stdio.h>", "#include <proxy.h>", "int main(void) {"]
    prog += lines + ["  return 0;", "}"]
    src, exe = tmp_path / "layout.c", tmp_path / "layout"
    src.write_text("\n".join(prog) + "\n")
    subprocess.run(
        ["cc", "-std=c99", "-Wall", "-Werror", "-I", str(HEADER.parent), str(src), "-o", str(exe)], check=True
    )
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


def _print(key: str, expr: str) -> str:
    return f'  printf("%s %llu\\n", "{key}", (unsigned long long)({expr}));'


def test_every_ffi_constant_has_the_headers_value(tmp_path: Path) -> None:
    names = [n for n in vars(_ffi) if n.startswith("PROXY_")]
    assert len(names) > 100
    values = _c_values(tmp_path, [_print(n, n) for n in names])
    wrong = {n: (getattr(_ffi, n), values[n]) for n in names if getattr(_ffi, n) != values[n]}
    assert not wrong, f"_ffi.py value != proxy.h value: {wrong}"


def test_every_header_constant_is_in_ffi() -> None:
    missing = [n for n in _macros() if not NOT_IN_FFI.fullmatch(n) and not hasattr(_ffi, n)]
    assert not missing, f"proxy.h constants _ffi.py lacks: {missing}"


def test_phase_enum_matches_the_header(tmp_path: Path) -> None:
    phases = [n for n in _macros() if n.startswith("PROXY_PHASE_")]
    values = _c_values(tmp_path, [_print(n, n) for n in phases])
    assert {"PROXY_PHASE_" + p.name: int(p) for p in Phase} == values
    # _ffi.PHASES is in proxy_http_callbacks field order, index + 1 = the phase number.
    assert [f"PROXY_PHASE_{n.upper()}" for n in _ffi.PHASES] == sorted(
        (n for n in phases if n != "PROXY_PHASE_NONE"), key=values.__getitem__
    )


def test_every_struct_layout_matches_the_header(tmp_path: Path) -> None:
    structs = _structs()
    lines = []
    for name, (cname, cls) in structs.items():
        lines.append(_print(f"{name}.sizeof", f"sizeof({cname})"))
        lines += [_print(f"{name}.{f[0]}", f"offsetof({cname}, {f[0]})") for f in cls._fields_]
    c = _c_values(tmp_path, lines)
    py: Dict[str, int] = {}
    for name, (_, cls) in structs.items():
        py[f"{name}.sizeof"] = ctypes.sizeof(cls)
        py.update({f"{name}.{f[0]}": getattr(cls, f[0]).offset for f in cls._fields_})
    wrong = {k: (py[k], c[k]) for k in py if py[k] != c[k]}
    assert not wrong, f"(ctypes, C) layouts differ: {wrong}"


def test_every_declared_function_matches_its_prototype(tmp_path: Path) -> None:
    """Each ``argtypes`` / ``restype`` has the header's arity and the sizes of its types (ctypes
    cannot tell a uint32_t from an int32_t, but a missing or mis-sized argument it can)."""
    protos, declared = _prototypes(), _declared()
    assert len(declared) > 90
    unknown = sorted(set(declared) - set(protos))
    assert not unknown, f"_ffi.py declares functions proxy.h lacks: {unknown}"
    lines = []
    for name, f in declared.items():
        ret, params = protos[name]
        assert len(f.argtypes) == len(params), f"{name}: {len(f.argtypes)} argtypes, proxy.h has {params}"
        if ret != "void":
            lines.append(_print(f"{name}.ret", f"sizeof({ret})"))
        lines += [_print(f"{name}.{i}", f"sizeof({t})") for i, t in enumerate(params)]
    c = _c_values(tmp_path, lines)
    wrong = {}
    for name, f in declared.items():
        if f.restype is not None and f"{name}.ret" in c and ctypes.sizeof(f.restype) != c[f"{name}.ret"]:
            wrong[f"{name} -> "] = (ctypes.sizeof(f.restype), c[f"{name}.ret"])
        for i, t in enumerate(f.argtypes):
            if ctypes.sizeof(t) != c[f"{name}.{i}"]:
                wrong[f"{name} arg {i}"] = (ctypes.sizeof(t), c[f"{name}.{i}"])
    assert not wrong, f"(ctypes, C) argument sizes differ: {wrong}"


def test_phase_table_comes_from_the_library() -> None:
    assert _ffi.lib.proxy_phase_name(len(_ffi.PHASES) + 1) is None
    assert _ffi.SYNC_PHASES == {
        "logging",
        "fail_to_connect",
        "error_while_proxy",
        "request_end",
        "request_cache_filter",
        "cache_key_callback",
        "cache_hit_filter",
        "response_cache_filter",
    }
