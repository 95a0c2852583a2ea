"""Build hook: compile the native library with cargo and bundle it into the package.

``pip install ./bindings/python`` runs ``cargo build --release --lib`` at the repository root and
copies ``target/release/libproxy.so`` (debug info stripped) into ``libproxy/_lib/``; the binding
loads it by path, so its SONAME needs no second copy. An sdist carries the crate's sources under
``native/`` and builds from those. The wheel is tagged ``py3-none-<platform>``: it holds no Python
extension, only a library loaded with ctypes, so any Python 3 on that platform can use it
(``auditwheel repair`` then turns ``linux_x86_64`` into the manylinux tag it qualifies for).
Environment:

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
from setuptools.command.sdist import sdist as _sdist
from setuptools.dist import Distribution

try:  # setuptools >= 70.1 ships bdist_wheel itself
    from setuptools.command.bdist_wheel import bdist_wheel as _bdist_wheel
except ImportError:  # pragma: no cover
    from wheel.bdist_wheel import bdist_wheel as _bdist_wheel

HERE = Path(__file__).resolve().parent
# The crate: bundled under native/ in an sdist, else the repository root of a checkout.
ROOT = HERE / "native" if (HERE / "native" / "Cargo.toml").is_file() else HERE.parent.parent
# What of the crate an sdist needs to build the library (no tests, benches or bindings).
# The manifest names the two [[example]] files, so cargo refuses to load it without them.
CRATE_FILES = (
    "Cargo.toml", "Cargo.lock", "build.rs", "cbindgen.toml", "src", "include", "examples/rust/proxy.rs", "bench/select.rs"
)


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
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    return target / "release" / "libproxy.so"


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
        os.chmod(dest / "libproxy.so", 0o755)


class sdist(_sdist):
    """Adds the crate's sources under ``native/`` so that the sdist builds without a checkout."""

    def make_release_tree(self, base_dir: str, files: list) -> None:
        super().make_release_tree(base_dir, files)
        if ROOT == HERE / "native":  # an sdist built from an sdist already has them
            return
        for name in CRATE_FILES:
            src, dst = ROOT / name, Path(base_dir) / "native" / name
            if src.is_dir():
                shutil.copytree(src, dst)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)


class bdist_wheel(_bdist_wheel):
    def get_tag(self) -> tuple:
        _, _, plat = super().get_tag()
        return "py3", "none", plat


class BinaryDistribution(Distribution):
    """The wheel carries a native library: tag it for this platform, not ``py3-none-any``."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": build_py, "sdist": sdist, "bdist_wheel": bdist_wheel}, distclass=BinaryDistribution)
