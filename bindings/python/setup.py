"""Build hook: compile the native library with cargo and bundle it into the package.

``pip install ./bindings/python`` runs ``cargo build --release --lib`` at the repository root and
copies ``target/release/libproxy.so`` into ``libproxy/_lib/`` (plus ``libproxy-rt.so.0``, the
SONAME, as a copy: wheels hold no symlinks). Environment:

* ``LIBPROXY_PATH=/path/libproxy.so``: bundle that library instead of building one;
* ``LIBPROXY_SKIP_BUILD=1``: bundle nothing (then set ``LIBPROXY_PATH`` at run time);
* ``CARGO``: the cargo to run (default: ``cargo`` on PATH, then ``~/.cargo/bin/cargo``).
"""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py as _build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent  # the repository root in a checkout


def _cargo() -> str:
    c = os.environ.get("CARGO") or shutil.which("cargo")
    if c:
        return c
    home = Path.home() / ".cargo" / "bin" / "cargo"
    if home.exists():
        return str(home)
    raise SystemExit(
        "libproxy: building the native library needs Rust's cargo (https://rustup.rs), which was "
        "not found. Either install Rust, or build libproxy.so elsewhere and run "
        "`LIBPROXY_PATH=/path/to/libproxy.so pip install ./bindings/python` to bundle it, or "
        "install with LIBPROXY_SKIP_BUILD=1 and set LIBPROXY_PATH at run time."
    )


def _native_library() -> Path:
    env = os.environ.get("LIBPROXY_PATH")
    if env:
        p = Path(env)
        p = p / "libproxy.so" if p.is_dir() else p
        if not p.is_file():
            raise SystemExit(f"libproxy: LIBPROXY_PATH={env} is not a file")
        return p
    if not (ROOT / "Cargo.toml").is_file():
        raise SystemExit(
            f"libproxy: no Cargo.toml at {ROOT}; install from a source checkout "
            "(pip install ./bindings/python) or set LIBPROXY_PATH to a built libproxy.so."
        )
    cmd = [_cargo(), "build", "--release", "--lib", "--manifest-path", str(ROOT / "Cargo.toml")]
    print("libproxy: running", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return ROOT / "target" / "release" / "libproxy.so"


def _copy(src: Path, dst: Path) -> None:
    strip = shutil.which("strip")
    if strip:  # drop debug info: the release profile keeps line tables (debug = 1)
        if subprocess.run([strip, "--strip-debug", "-o", str(dst), str(src)]).returncode == 0:
            return
    shutil.copyfile(src, dst)


class build_py(_build_py):
    def run(self) -> None:
        super().run()
        if os.environ.get("LIBPROXY_SKIP_BUILD") == "1":
            return
        so = _native_library()
        dest = Path(self.build_lib) / "libproxy" / "_lib"
        dest.mkdir(parents=True, exist_ok=True)
        _copy(so, dest / "libproxy.so")
        shutil.copyfile(dest / "libproxy.so", dest / "libproxy-rt.so.0")
        os.chmod(dest / "libproxy.so", 0o755)
        os.chmod(dest / "libproxy-rt.so.0", 0o755)


class BinaryDistribution(Distribution):
    """The wheel carries a native library: tag it for this platform, not ``py3-none-any``."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": build_py}, distclass=BinaryDistribution)
