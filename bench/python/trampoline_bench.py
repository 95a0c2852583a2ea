"""Micro benchmark of the binding's callback path, without the proxy: a C thread (not created by
Python, like a libproxy worker) calls a phase trampoline N times, with the binding's thread hooks
run first (persistent thread state) or not (ctypes' default: a thread state per call).

    python bench/python/trampoline_bench.py [N] [--profile]

Rows: the bare ctypes crossing (a CFUNCTYPE returning 1), the binding's request_filter trampoline
with a no-op hook, each with and without the thread hooks, and the pure-Python part of the
trampoline called from Python (no crossing). --profile adds a cProfile of the Python part.
"""

import ctypes
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libproxy
from libproxy import _ffi, _hooks, _threads

HERE = Path(__file__).resolve().parent


def build_helper() -> ctypes.CDLL:
    out = Path(tempfile.mkdtemp()) / "libtrampoline_bench.so"
    subprocess.run(
        ["cc", "-O2", "-shared", "-fPIC", "-pthread", "-o", str(out), str(HERE / "trampoline_bench.c")],
        check=True,
    )
    h = ctypes.CDLL(str(out))  # CDLL: the GIL is released while bench_phase runs
    h.bench_phase.argtypes = [
        _ffi.proxy_phase_fn, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long,
        _ffi.proxy_thread_fn, _ffi.proxy_thread_fn, ctypes.POINTER(ctypes.c_int32),
    ]
    h.bench_phase.restype = ctypes.c_double
    return h


class NoOp(libproxy.Proxy):
    """The no-op hook of bench/python/proxy.py: returns None (= CONTINUE)."""

    def request_filter(self, s: libproxy.Session) -> None:
        pass


class NoOpEnum(libproxy.Proxy):
    """Same, returning ``libproxy.Action.CONTINUE`` (an enum attribute lookup in the hook)."""

    def request_filter(self, s: libproxy.Session) -> libproxy.Action:
        return libproxy.Action.CONTINUE


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 200_000
    h = build_helper()
    binding = _hooks._Binding(NoOp())
    binding_enum = _hooks._Binding(NoOpEnum())
    fake_session = 0x1000  # never dereferenced by a no-op hook
    bare = _ffi.proxy_phase_fn(lambda u, s: 1)
    idx = _ffi.PHASES.index("request_filter")
    tramp = binding.cfuncs[idx]
    tramp_enum = binding_enum.cfuncs[idx]
    null = _ffi.proxy_thread_fn()
    last = ctypes.c_int32()
    rows = []
    for label, fn, hooks, b in [
        ("bare CFUNCTYPE (returns 1)", bare, True, binding),
        ("binding trampoline, no-op request_filter (returns None)", tramp, True, binding),
        ("binding trampoline, request_filter returning Action.CONTINUE", tramp_enum, True, binding_enum),
        ("bare CFUNCTYPE (returns 1)", bare, False, binding),
        ("binding trampoline, no-op request_filter (returns None)", tramp, False, binding),
    ]:
        best = min(
            h.bench_phase(fn, b.key, fake_session, n if hooks else n // 10,
                          _threads._THREAD_START if hooks else null,
                          _threads._THREAD_STOP if hooks else null, ctypes.byref(last))
            for _ in range(3)
        )
        assert last.value == 1, last.value
        rows.append((label, "persistent (thread hooks)" if hooks else "per call (no hooks)", best))
    py = binding.pyfuncs[idx]
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            py(binding.key, fake_session)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    rows.append(("trampoline's Python part, called from Python", "-", best))
    print(f"python {sys.version.split()[0]}, libproxy binding {libproxy.__version__}, N={n}, best of 3")
    print("| path | thread state | ns/call |")
    print("|---|---|---|")
    for label, ts, ns in rows:
        print(f"| {label} | {ts} | {ns:.0f} |")
    if "--profile" in sys.argv:
        import cProfile
        import pstats

        pr = cProfile.Profile()
        pr.enable()
        for _ in range(n):
            py(binding.key, fake_session)
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(8)
    binding.release()
    binding_enum.release()


if __name__ == "__main__":
    main()
