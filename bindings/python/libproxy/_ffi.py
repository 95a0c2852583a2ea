"""Low-level ctypes declarations for ``include/proxy.h``: constants, structs, and every function's
``argtypes`` / ``restype``, declared once here. Nothing else in the package calls ``ctypes.CDLL``.

Library lookup order:

1. ``LIBPROXY_PATH`` (a path to ``libproxy.so`` or a directory holding it);
2. the copy bundled into the installed package (``libproxy/_lib/libproxy.so``);
3. a source checkout's ``target/release`` or ``target/debug`` (when imported from the repository);
4. the system loader, by the library's own SONAME ``libproxy-rt.so.0`` (never Debian's unrelated
   ``libproxy.so.1``).
"""

from __future__ import annotations

import ctypes
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int32,
    c_int64,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
    create_string_buffer,
)
from pathlib import Path
from typing import Any, List, Optional

#: The ABI major version this binding was written against (``PROXY_ABI_VERSION_MAJOR``; checked
#: against src/ffi/result.rs by tests/abi_version.rs).
ABI_MAJOR = 0
#: The ABI minor version this binding was written against (``PROXY_ABI_VERSION_MINOR``).
ABI_MINOR = 8
#: The oldest minor version this binding accepts: 0.4 changed the ``_free`` signatures (they
#: return a result), added ``proxy_last_error``, ``proxy_service_set_option``,
#: ``proxy_service_allow_upgrade`` / ``_deny_upgrade`` and the longer ``proxy_summary``. (0.5 only
#: retyped ``proxy_session_body``'s view as ``proxy_bytes``, the same layout, so 0.4 still works;
#: 0.6 added the compression functions, which raise ``ProxyError(UNSUPPORTED)`` on older ones.)
ABI_MIN_MINOR = 4

# ---- result codes -------------------------------------------------------------------------------
PROXY_OK = 0
PROXY_NULL_PARAMETER = 7000
PROXY_INVALID_PARAMETER = 7001
PROXY_PANIC = 7002
PROXY_IO = 7003
PROXY_WRONG_PHASE = 7004
PROXY_GONE = 7005
PROXY_ALREADY = 7006
PROXY_HEADER_INVALID = 7007
PROXY_NOT_FOUND = 7008
PROXY_BUSY = 7009
PROXY_TOO_SMALL = 7010
PROXY_WRONG_STATE = 7011
PROXY_UNSUPPORTED = 7012
PROXY_TLS_INVALID = 7013
PROXY_UNAVAILABLE = 7014

# ---- actions ------------------------------------------------------------------------------------
PROXY_CONTINUE = 1
PROXY_RESPONDED = 2
PROXY_PENDING = 3
PROXY_ERROR = 4

# ---- features, log levels, flags ----------------------------------------------------------------
PROXY_FEATURE_UDS = 1
PROXY_FEATURE_PENDING = 2
PROXY_FEATURE_BODY_FILTERS = 4
PROXY_FEATURE_TLS = 8
PROXY_FEATURE_H2 = 16
PROXY_FEATURE_THREAD_HOOKS = 32
PROXY_FEATURE_COMPRESSION = 64
PROXY_FEATURE_UPSTREAM_GROUPS = 128
PROXY_FEATURE_CACHE = 256

PROXY_LOG_ERROR = 1
PROXY_LOG_WARN = 2
PROXY_LOG_INFO = 3
PROXY_LOG_DEBUG = 4

PROXY_RUN_SIGNALS = 1

PROXY_TIMEOUT_HEADER = 1
PROXY_TIMEOUT_KEEPALIVE = 2
PROXY_TIMEOUT_BODY_IDLE = 3
PROXY_TIMEOUT_WRITE = 4
PROXY_TIMEOUT_PENDING = 5
PROXY_TIMEOUT_BODY_TOTAL = 6
PROXY_TIMEOUT_BODY_RATE_GRACE = 7

PROXY_LIMIT_MAX_HEADER_BYTES = 1
PROXY_LIMIT_MAX_HEADERS = 2
PROXY_LIMIT_MAX_URI_LEN = 3
PROXY_LIMIT_MAX_RETRIES = 4
PROXY_LIMIT_RETRY_BUFFER = 5
PROXY_LIMIT_DRAIN = 6
PROXY_LIMIT_BODY_MIN_RATE = 7
PROXY_LIMIT_REQUEST_BUFFER = 8
PROXY_LIMIT_MAX_CONNECTIONS = 9
PROXY_LIMIT_MAX_CONNECTIONS_PER_LISTENER = 10

PROXY_OPTION_UNDERSCORE_FIELDS = 1
PROXY_UNDERSCORE_DROP = 0
PROXY_UNDERSCORE_REFUSE = 1
PROXY_UNDERSCORE_FORWARD = 2

PROXY_ENCODING_GZIP = 1
PROXY_ENCODING_BROTLI = 2
PROXY_ENCODING_ZSTD = 4

# Upstream groups (ABI 0.7).
PROXY_GROUP_ROUND_ROBIN = 0
PROXY_GROUP_RANDOM = 1
PROXY_GROUP_LEAST_OUTSTANDING = 2
PROXY_GROUP_KETAMA = 3
PROXY_GROUP_MAGLEV = 4
PROXY_GROUP_MAX_IN_FLIGHT = 1
PROXY_GROUP_MAX_CONNECTIONS = 6
PROXY_GROUP_EJECT_FAILURES = 2
PROXY_GROUP_EJECT_BASE_MS = 3
PROXY_GROUP_EJECT_MAX_MS = 4
PROXY_GROUP_EJECT_MAX_PERCENT = 5
PROXY_BACKEND_REQUESTS = 1
PROXY_BACKEND_FAILURES = 2
PROXY_BACKEND_EJECTIONS = 3
PROXY_BACKEND_IN_FLIGHT = 4
PROXY_BACKEND_HEALTHY = 5
PROXY_BACKEND_EJECTED = 6
PROXY_BACKEND_WEIGHT = 7
PROXY_BACKEND_CONNECTIONS = 8
PROXY_HEALTH_UP = 1
PROXY_HEALTH_DOWN = 2
PROXY_HEALTH_EJECTED = 3
PROXY_HEALTH_READMITTED = 4
PROXY_PROBE_TCP = 0
PROXY_PROBE_TLS = 1
PROXY_PROBE_HTTP = 2

PROXY_COMPRESSION_ENABLED = 1
PROXY_COMPRESSION_ALGORITHMS = 2
PROXY_COMPRESSION_LEVEL_GZIP = 3
PROXY_COMPRESSION_LEVEL_BROTLI = 4
PROXY_COMPRESSION_LEVEL_ZSTD = 5
PROXY_COMPRESSION_MIN_LENGTH = 6
PROXY_COMPRESSION_DECOMPRESS_UPSTREAM = 7
PROXY_COMPRESSION_MAX_RATIO = 8
PROXY_COMPRESSION_MAX_DECODED = 9

PROXY_CACHE_MAX_OBJECT = 1
PROXY_CACHE_STATUS_HEADER = 2
PROXY_CACHE_ALLOW_SET_COOKIE = 3
PROXY_CACHE_HEURISTIC_FRESHNESS = 4
PROXY_CACHE_LOCK_TIMEOUT_MS = 5
PROXY_CACHE_BYPASS = 1
PROXY_CACHE_EXPIRE = 2
PROXY_CACHE_STORE = 3
PROXY_CACHE_TTL = 4
PROXY_CACHE_STATUS_NONE = 0
PROXY_CACHE_STATUS_HIT = 1
PROXY_CACHE_STATUS_MISS = 2
PROXY_CACHE_STATUS_STALE = 3
PROXY_CACHE_STATUS_REVALIDATED = 4
PROXY_CACHE_STATUS_EXPIRED = 5
PROXY_CACHE_STATUS_BYPASS = 6

PROXY_HTTP_10 = 10
PROXY_HTTP_11 = 11
PROXY_HTTP_20 = 20

PROXY_TLS_CLIENT_AUTH_NONE = 0
PROXY_TLS_CLIENT_AUTH_OPTIONAL = 1
PROXY_TLS_CLIENT_AUTH_REQUIRED = 2

PROXY_TLS_VERSION_1_2 = 1
PROXY_TLS_VERSION_1_3 = 2

PROXY_PEER_TLS = 1
PROXY_PEER_TLS_NO_VERIFY = 2
PROXY_PEER_TLS_NO_VERIFY_HOSTNAME = 4

PROXY_ALPN_H1 = 0
PROXY_ALPN_H2 = 1
PROXY_ALPN_H2THENH1 = 2

PROXY_HEADERS_REQUEST = 1
PROXY_HEADERS_UPSTREAM_REQUEST = 2
PROXY_HEADERS_RESPONSE = 3

# ---- POD structs --------------------------------------------------------------------------------
class proxy_str(Structure):
    """``proxy_str``: a borrowed byte string (ptr + len, not NUL-terminated)."""

    _fields_ = [("ptr", c_void_p), ("len", c_size_t)]


class proxy_bytes(Structure):
    """``proxy_bytes`` (ABI 0.5): a borrowed run of ``uint8_t`` (a body chunk), ptr + len."""

    _fields_ = [("ptr", c_void_p), ("len", c_size_t)]


class proxy_header(Structure):
    """``proxy_header``: one header field as two views."""

    _fields_ = [("name", proxy_str), ("value", proxy_str)]


class proxy_str_in(Structure):
    """``proxy_str`` as passed *in*: same layout, ``ptr`` is a ``c_char_p`` so that assigning
    ``bytes`` keeps them alive with the struct (no NUL is needed: ``len`` counts)."""

    _fields_ = [("ptr", c_char_p), ("len", c_size_t)]


class proxy_header_in(Structure):
    """``proxy_header`` as passed in (``respond``)."""

    _fields_ = [("name", proxy_str_in), ("value", proxy_str_in)]


proxy_phase_fn = CFUNCTYPE(c_int32, c_void_p, c_void_p)
proxy_log_fn = CFUNCTYPE(None, c_void_p, c_uint32, proxy_str)
proxy_thread_fn = CFUNCTYPE(None, c_void_p)
proxy_health_fn = CFUNCTYPE(None, c_void_p, proxy_str, c_uint32)
proxy_background_fn = CFUNCTYPE(None, c_void_p, c_void_p)


class proxy_health_check(Structure):
    """``proxy_health_check`` (ABI 0.7): an active check for every backend of a group."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("probe", c_uint32),
        ("interval_ms", c_uint32),
        ("timeout_ms", c_uint32),
        ("jitter_ms", c_uint32),
        ("rise", c_uint32),
        ("fall", c_uint32),
        ("status_min", c_uint32),
        ("status_max", c_uint32),
        ("method", proxy_str_in),
        ("path", proxy_str_in),
        ("host", proxy_str_in),
        ("body", proxy_str_in),
    ]


class proxy_http_callbacks(Structure):
    """``proxy_http_callbacks``: ``struct_size``, ``user`` and one pointer per phase (its fields
    are set once the library has told the phases, below ``PHASES``)."""


class proxy_peer(Structure):
    """``proxy_peer``: where and how to connect upstream."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("flags", c_uint32),
        ("address", proxy_str_in),
        ("sni", proxy_str_in),
        ("connect_timeout_ms", c_uint32),
        ("total_connection_timeout_ms", c_uint32),
        ("read_timeout_ms", c_uint32),
        ("write_timeout_ms", c_uint32),
        ("idle_timeout_ms", c_uint32),
        ("pool_group", c_uint64),
        # ABI 0.3
        ("ca_file", proxy_str_in),
        ("client_cert", proxy_str_in),
        ("client_key", proxy_str_in),
        ("alpn", c_uint32),
        ("max_h2_streams", c_uint32),
    ]


class proxy_summary(Structure):
    """``proxy_summary``: what the proxy knows about a request (logging phase)."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("status", c_uint32),
        ("bytes_in", c_uint64),
        ("bytes_out", c_uint64),
        ("upstream_connect_us", c_uint64),
        ("time_to_first_byte_us", c_uint64),
        ("total_us", c_uint64),
        ("retries", c_uint32),
        ("reused", c_uint32),
        ("error_status", c_uint32),
        ("truncated", c_uint32),
    ]


# ---- loading ------------------------------------------------------------------------------------
_HERE = Path(__file__).resolve().parent

NOT_FOUND_HELP = """libproxy: cannot find the native library libproxy.so.
Do one of:
  * install the package from a source checkout so that it builds and bundles the library
    (needs Rust's cargo on PATH):   pip install ./bindings/python
  * or build it yourself and point the binding at it:
        cargo build --release
        export LIBPROXY_PATH=$PWD/target/release/libproxy.so
Tried: {tried}"""


def _candidates() -> List[str]:
    out: List[str] = []
    env = os.environ.get("LIBPROXY_PATH")
    if env:
        p = Path(env)
        out.append(str(p / "libproxy.so") if p.is_dir() else str(p))
        return out  # an explicit choice is never second-guessed
    out.append(str(_HERE / "_lib" / "libproxy.so"))
    for parent in _HERE.parents:
        if (parent / "Cargo.toml").is_file() and (parent / "include" / "proxy.h").is_file():
            out.append(str(parent / "target" / "release" / "libproxy.so"))
            out.append(str(parent / "target" / "debug" / "libproxy.so"))
            break
    out.append("libproxy-rt.so.0")  # system loader, by SONAME
    return out


def _load() -> ctypes.CDLL:
    tried: List[str] = []
    for cand in _candidates():
        if os.sep in cand and not os.path.exists(cand):
            tried.append(cand + " (missing)")
            continue
        try:
            lib = ctypes.CDLL(cand)
        except OSError as e:
            tried.append(f"{cand} ({e})")
            continue
        if not hasattr(lib, "proxy_abi_version"):
            raise ImportError(
                f"libproxy: {cand} is not this project's libproxy (no proxy_abi_version; Debian's "
                "libproxy.so is an unrelated PAC library). Set LIBPROXY_PATH to target/release/libproxy.so."
            )
        lib.proxy_abi_version.argtypes = []
        lib.proxy_abi_version.restype = c_uint32
        abi = lib.proxy_abi_version()
        if abi >> 16 != ABI_MAJOR or (abi & 0xFFFF) < ABI_MIN_MINOR:
            raise ImportError(
                f"libproxy: {cand} has ABI {abi >> 16}.{abi & 0xFFFF}, this binding needs ABI "
                f"{ABI_MAJOR}.x with x >= {ABI_MIN_MINOR}. Rebuild the library from the same checkout "
                "as the binding (pip install ./bindings/python) or point LIBPROXY_PATH at a matching "
                "libproxy.so."
            )
        if not hasattr(lib, "proxy_phase_name"):
            raise ImportError(
                f"libproxy: {cand} is too old for this binding (no proxy_phase_name, which tells "
                "the binding the phases). Rebuild the library from the same checkout as the binding."
            )
        global LIBRARY_PATH
        LIBRARY_PATH = cand
        return lib
    raise ImportError(NOT_FOUND_HELP.format(tried="; ".join(tried)))


LIBRARY_PATH: Optional[str] = None
lib = _load()

lib.proxy_phase_name.argtypes = [c_uint32]
lib.proxy_phase_name.restype = c_char_p
lib.proxy_phase_may_pend.argtypes = [c_uint32]
lib.proxy_phase_may_pend.restype = c_uint32


def _phase_names() -> List[str]:
    out: List[str] = []
    while True:
        name = lib.proxy_phase_name(len(out) + 1)
        if name is None:
            return out
        out.append(name.decode())


#: Phase names in ``proxy_http_callbacks`` field order, as the library names them
#: (``proxy_phase_name``); index + 1 is the ``PROXY_PHASE_*`` number.
PHASES = tuple(_phase_names())
#: The phases that cannot wait: PENDING is an ERROR there (``proxy_phase_may_pend``).
SYNC_PHASES = frozenset(n for i, n in enumerate(PHASES) if not lib.proxy_phase_may_pend(i + 1))
_callback_fields: List[Any] = [("struct_size", c_uint32), ("user", c_void_p)]
proxy_http_callbacks._fields_ = _callback_fields + [(name, proxy_phase_fn) for name in PHASES]

_R = c_uint32  # proxy_result
_S = c_void_p  # proxy_session*


def _decl(name: str, restype: Any, *argtypes: Any) -> None:
    f = getattr(lib, name)
    f.argtypes = list(argtypes)
    f.restype = restype


_decl("proxy_version", c_char_p)
_decl("proxy_features", c_uint64)
_decl("proxy_result_message", c_char_p, c_uint32)
_decl("proxy_last_error", c_size_t, c_char_p, c_size_t)
_decl("proxy_last_error_code", _R)
_decl("proxy_server_new", _R, POINTER(c_void_p))
_decl("proxy_server_set_log", _R, c_void_p, proxy_log_fn, c_void_p, c_uint32)
_decl("proxy_server_add_service", _R, c_void_p, c_void_p)
_decl("proxy_server_start", _R, c_void_p)
_decl("proxy_server_run", _R, c_void_p, c_uint32)
_decl("proxy_server_shutdown", _R, c_void_p, c_uint32)
_decl("proxy_server_free", _R, c_void_p)
_decl("proxy_session_resume", _R, c_void_p, c_uint64, c_int32)
_decl("proxy_service_new", _R, c_char_p, POINTER(c_void_p))
_decl("proxy_service_free", _R, c_void_p)
_decl("proxy_service_add_tcp", _R, c_void_p, c_char_p, POINTER(c_uint16))
_decl("proxy_service_add_uds", _R, c_void_p, c_char_p)
_decl("proxy_service_set_threads", _R, c_void_p, c_uint32)
_decl("proxy_service_set_work_stealing", _R, c_void_p, c_uint32)
_decl("proxy_service_set_timeout", _R, c_void_p, c_uint32, c_uint32)
_decl("proxy_service_set_limit", _R, c_void_p, c_uint32, c_uint64)
_decl("proxy_service_set_option", _R, c_void_p, c_uint32, c_uint32)
_decl("proxy_service_allow_upgrade", _R, c_void_p, c_char_p)
_decl("proxy_service_deny_upgrade", _R, c_void_p, c_char_p)
_decl("proxy_service_set_callbacks", _R, c_void_p, POINTER(proxy_http_callbacks))
_decl("proxy_service_set_thread_hooks", _R, c_void_p, proxy_thread_fn, proxy_thread_fn, c_void_p)
_decl("proxy_service_set_h2_only", _R, c_void_p, c_uint32)
_decl("proxy_service_add_tls", _R, c_void_p, c_char_p, c_void_p, POINTER(c_uint16))
_decl("proxy_service_add_tls_uds", _R, c_void_p, c_char_p, c_void_p)
_decl("proxy_session_id", _R, _S, POINTER(c_uint64))
_decl("proxy_session_phase", _R, _S, POINTER(c_uint32))
for _n in ("method", "uri", "path", "query", "client_addr", "server_addr", "error"):
    _decl("proxy_session_" + _n, _R, _S, POINTER(proxy_str))
_decl("proxy_session_version", _R, _S, POINTER(c_uint32))
_decl("proxy_session_set_uri", _R, _S, proxy_str_in)
_decl("proxy_session_header_count", _R, _S, c_uint32, POINTER(c_size_t))
_decl(
    "proxy_session_header_get",
    _R,
    _S,
    c_uint32,
    proxy_str_in,
    c_size_t,
    POINTER(proxy_str),
    POINTER(c_size_t),
)
_decl("proxy_session_header_nth", _R, _S, c_uint32, c_size_t, POINTER(proxy_header))
_decl("proxy_session_headers", _R, _S, c_uint32, POINTER(proxy_header), c_size_t, POINTER(c_size_t))
_decl("proxy_session_header_set", _R, _S, c_uint32, proxy_str_in, proxy_str_in)
_decl("proxy_session_header_add", _R, _S, c_uint32, proxy_str_in, proxy_str_in)
_decl("proxy_session_header_remove", _R, _S, c_uint32, proxy_str_in)
_decl("proxy_session_set_peer", _R, _S, POINTER(proxy_peer))
_decl("proxy_peer_check", _R, POINTER(proxy_peer))
_decl("proxy_session_response_status", _R, _S, POINTER(c_uint32))
_decl("proxy_session_set_response_status", _R, _S, c_uint32)
_decl(
    "proxy_session_respond", _R, _S, c_uint32, POINTER(proxy_header_in), c_size_t, c_char_p, c_size_t
)
_decl("proxy_session_body", _R, _S, POINTER(proxy_bytes), POINTER(c_uint32))
# const uint8_t *data: bytes go in as c_char_p (the same pointer; the length is explicit).
_decl("proxy_session_set_body", _R, _S, c_char_p, c_size_t)
_decl("proxy_session_upstream_reused", _R, _S, POINTER(c_uint32))
_decl("proxy_session_set_retry", _R, _S, c_uint32)
_decl("proxy_session_retries", _R, _S, POINTER(c_uint32))
_decl("proxy_session_summary", _R, _S, POINTER(proxy_summary))

# TLS settings (ABI 0.3). Byte buffers go in as c_char_p (bytes, with an explicit length).
_T = c_void_p  # proxy_tls_settings*
_decl("proxy_tls_settings_new", _R, POINTER(c_void_p))
_decl("proxy_tls_settings_free", _R, _T)
_decl("proxy_tls_settings_set_cert_files", _R, _T, c_char_p, c_char_p)
_decl("proxy_tls_settings_set_cert_pem", _R, _T, c_char_p, c_size_t, c_char_p, c_size_t)
_decl("proxy_tls_settings_add_sni_cert_files", _R, _T, c_char_p, c_char_p, c_char_p)
_decl("proxy_tls_settings_add_sni_cert_pem", _R, _T, c_char_p, c_char_p, c_size_t, c_char_p, c_size_t)
_decl("proxy_tls_settings_set_client_auth_file", _R, _T, c_char_p, c_uint32)
_decl("proxy_tls_settings_set_client_auth_pem", _R, _T, c_char_p, c_size_t, c_uint32)
_decl("proxy_tls_settings_set_alpn", _R, _T, c_char_p)
_decl("proxy_tls_settings_set_versions", _R, _T, c_uint32)
_decl("proxy_tls_settings_set_handshake_timeout", _R, _T, c_uint32)
_decl("proxy_tls_settings_last_error", _R, _T, POINTER(proxy_str))

#: True when the library has the compression functions (ABI 0.6).
HAVE_COMPRESSION = hasattr(lib, "proxy_service_set_compression")
if HAVE_COMPRESSION:
    _decl("proxy_service_set_compression", _R, c_void_p, c_uint32, c_uint64)
    _decl("proxy_service_set_compression_types", _R, c_void_p, c_char_p)
    _decl("proxy_session_set_compression", _R, _S, c_uint32, c_uint64)

#: True when the library has upstream groups (ABI 0.7): ``proxy_group_*``, ``proxy_session_pick``,
#: ``proxy_server_add_health_check`` / ``_add_dns_discovery`` / ``_add_background``.
HAVE_GROUPS = hasattr(lib, "proxy_group_new")
if HAVE_GROUPS:
    _decl("proxy_group_new", _R, c_char_p, c_uint32, POINTER(c_uint64))
    _decl("proxy_group_free", _R, c_uint64)
    _decl("proxy_group_add_backend", _R, c_uint64, c_char_p, POINTER(proxy_peer), c_uint32)
    _decl("proxy_group_remove_backend", _R, c_uint64, c_char_p)
    _decl("proxy_group_set_backends", _R, c_uint64, POINTER(c_char_p), POINTER(c_uint32), c_size_t)
    _decl("proxy_group_set", _R, c_uint64, c_uint32, c_uint64)
    _decl("proxy_group_backend_count", _R, c_uint64, POINTER(c_size_t))
    _decl("proxy_group_backend_figure", _R, c_uint64, c_size_t, c_uint32, POINTER(c_uint64))
    _decl("proxy_group_backend_name", _R, c_uint64, c_size_t, c_char_p, c_size_t, POINTER(c_size_t))
    _decl("proxy_group_set_health_callback", _R, c_uint64, proxy_health_fn, c_void_p)
    _decl("proxy_session_pick", _R, _S, c_uint64, proxy_str_in)
    _decl("proxy_session_backend", _R, _S, POINTER(proxy_str))
    _decl("proxy_server_add_health_check", _R, c_void_p, c_uint64, POINTER(proxy_health_check))
    _decl("proxy_server_add_dns_discovery", _R, c_void_p, c_uint64, c_char_p, c_uint32, c_uint32, c_uint32)
    _decl("proxy_server_add_background", _R, c_void_p, c_char_p, proxy_background_fn, c_void_p)
    _decl("proxy_shutdown_wait", c_uint32, c_void_p, c_uint32)
#: True when the library has the cache functions (PROXY_FEATURE_CACHE).
HAVE_CACHE = hasattr(lib, "proxy_cache_new")
_C = c_void_p  # proxy_cache*
if HAVE_CACHE:
    _decl("proxy_cache_new", _R, c_uint64, POINTER(c_void_p))
    _decl("proxy_cache_free", _R, _C)
    _decl("proxy_cache_set", _R, _C, c_uint32, c_uint64)
    _decl("proxy_cache_purge", _R, _C, c_char_p, c_size_t)
    _decl("proxy_cache_usage", _R, _C, POINTER(c_uint64), POINTER(c_uint64))
    _decl("proxy_service_set_cache", _R, c_void_p, _C)
    _decl("proxy_session_set_cache", _R, _S, c_uint32, c_uint64)
    _decl("proxy_session_set_cache_key", _R, _S, c_char_p, c_size_t)
    _decl("proxy_session_cache_status", _R, _S, POINTER(c_uint32))

#: TLS facts in hooks and certificates at runtime (PROXY_FEATURE_TLS_FACTS, _CERT_RELOAD).
PROXY_FEATURE_TLS_FACTS = 32768
PROXY_FEATURE_CERT_RELOAD = 65536
PROXY_TLS_FACT_SNI = 1
PROXY_TLS_FACT_ALPN = 2
PROXY_TLS_FACT_VERSION = 3
PROXY_TLS_FACT_CIPHER = 4
PROXY_TLS_FACT_CLIENT_CERT = 5
PROXY_TLS_FACT_CLIENT_SUBJECT = 6
PROXY_TLS_FACT_CLIENT_ISSUER = 7
PROXY_TLS_FACT_CLIENT_SERIAL = 8
PROXY_TLS_FACT_CLIENT_SAN = 9
proxy_cert_fn = CFUNCTYPE(c_int32, c_void_p, c_void_p)
HAVE_TLS_RUNTIME = hasattr(lib, "proxy_session_tls")
_H = c_void_p  # proxy_client_hello*
if HAVE_TLS_RUNTIME:
    _decl("proxy_session_tls", _R, _S, c_uint32, c_size_t, POINTER(proxy_bytes))
    _decl("proxy_session_tls_client_not_after", _R, _S, POINTER(c_int64))
    _decl("proxy_service_tls_certs", _R, c_void_p, c_uint16, POINTER(c_void_p))
    _decl("proxy_tls_certs_replace", _R, c_void_p, c_void_p)
    _decl("proxy_tls_certs_free", _R, c_void_p)
    _decl("proxy_tls_cert_new_pem", _R, c_char_p, c_size_t, c_char_p, c_size_t, POINTER(c_void_p))
    _decl("proxy_tls_cert_new_files", _R, c_char_p, c_char_p, POINTER(c_void_p))
    _decl("proxy_tls_cert_free", _R, c_void_p)
    _decl("proxy_tls_settings_set_cert_callback", _R, c_void_p, proxy_cert_fn, c_void_p)
    _decl("proxy_client_hello_server_name", _R, _H, POINTER(proxy_str))
    _decl("proxy_client_hello_alpn", _R, _H, c_size_t, POINTER(proxy_str))
    _decl("proxy_client_hello_signature_scheme", _R, _H, c_size_t, POINTER(c_uint16))
    _decl("proxy_client_hello_set_cert", _R, _H, c_void_p)
    _decl("proxy_client_hello_id", _R, _H, POINTER(c_uint64))
    _decl("proxy_client_hello_resume", _R, c_uint64, c_int32)
# ---- operations: configuration file, command line, reload, upgrade (PROXY_FEATURE_CONFIG) ------
PROXY_CONFIG_INVALID = 7015
PROXY_UPGRADE_FAILED = 7016
PROXY_RELOAD_REFUSED = 7017
PROXY_DAEMON_FAILED = 7018
PROXY_FEATURE_CONFIG = 512
PROXY_FEATURE_UPGRADE = 1024
PROXY_CONF_DAEMON = 1
PROXY_CONF_TEST = 2
PROXY_CONF_UPGRADE = 4
#: True when the library reads configuration files and command lines (``proxy_conf_*``).
HAVE_CONF = hasattr(lib, "proxy_conf_from_args")
if HAVE_CONF:
    _decl("proxy_conf_from_args", _R, POINTER(ctypes.c_int), POINTER(c_char_p), POINTER(c_void_p))
    _decl("proxy_conf_free", _R, c_void_p)
    _decl("proxy_conf_get", _R, c_void_p, c_char_p, POINTER(proxy_str))
    _decl("proxy_conf_flags", _R, c_void_p, POINTER(c_uint32))
    _decl("proxy_conf_group", _R, c_void_p, c_char_p, POINTER(c_uint64))
    _decl("proxy_server_set_conf", _R, c_void_p, c_void_p)
    _decl("proxy_service_apply_conf", _R, c_void_p, c_void_p)
    _decl("proxy_server_reload", _R, c_void_p)
    _decl("proxy_server_upgrade", _R, c_void_p)

#: True when the library has ``proxy_service_set_thread_hooks`` (always, from ABI 0.3 on: the
#: binding refuses older libraries). Kept for callers of earlier versions of the binding.
HAVE_THREAD_HOOKS = True


def result_message(code: int) -> str:
    """``proxy_result_message``: the static description of a result code."""
    return str(lib.proxy_result_message(code).decode())


def last_error_cause(code: int) -> Optional[str]:
    """The cause ``proxy_last_error`` gives for the failure with ``code`` that this thread just
    saw (a ctypes call runs on the calling Python thread, whose last error it is), without the
    ``proxy_result_message`` prefix; None when the library gave no cause or its last error is
    another code."""
    if lib.proxy_last_error_code() != code:
        return None
    n = lib.proxy_last_error(None, 0)
    buf = create_string_buffer(n + 1)
    lib.proxy_last_error(buf, n + 1)
    text = buf.value.decode(errors="replace")
    prefix = result_message(code)
    if text == prefix:
        return None
    return text[len(prefix) + 2 :] if text.startswith(prefix + ": ") else text


def to_bytes(pb: proxy_bytes) -> bytes:
    """Copies a ``proxy_bytes`` view into ``bytes`` (views die when the callback returns)."""
    return ctypes.string_at(pb.ptr, pb.len) if pb.len else b""


def to_str(ps: proxy_str) -> bytes:
    """Copies a view into ``bytes`` (views die when the callback returns)."""
    return ctypes.string_at(ps.ptr, ps.len) if ps.len else b""

#: True when the library has the metrics, access log and request id functions
#: (PROXY_FEATURE_METRICS / PROXY_FEATURE_ACCESS_LOG).
HAVE_OBSERVE = hasattr(lib, "proxy_metric_new")
if HAVE_OBSERVE:
    from ctypes import c_double

    _decl("proxy_server_add_metrics", _R, c_void_p, c_char_p, POINTER(c_uint16))
    _decl("proxy_server_reopen_logs", _R, c_void_p)
    _decl("proxy_server_set_log_file", _R, c_void_p, c_char_p, c_uint32)
    _decl("proxy_service_set_observe", _R, c_void_p, c_uint32)
    _decl("proxy_service_set_access_log", _R, c_void_p, c_char_p, c_char_p)
    _decl(
        "proxy_metric_new",
        _R,
        c_void_p,
        c_uint32,
        c_char_p,
        c_char_p,
        POINTER(proxy_str_in),
        c_size_t,
        POINTER(c_double),
        c_size_t,
        POINTER(c_void_p),
    )
    _decl("proxy_metric_series", _R, c_void_p, POINTER(proxy_str_in), c_size_t, POINTER(c_void_p))
    _decl("proxy_series_add", _R, c_void_p, c_double)
    _decl("proxy_series_set", _R, c_void_p, c_double)
    _decl("proxy_series_observe", _R, c_void_p, c_double)
    _decl("proxy_session_request_id", _R, _S, POINTER(proxy_str))
    #: ``proxy_error_response_fn``.
    proxy_error_response_fn = CFUNCTYPE(c_int32, c_void_p, c_uint32, proxy_str, c_void_p)
    _decl("proxy_service_set_error_response", _R, c_void_p, proxy_error_response_fn, c_void_p)
    _decl("proxy_error_page_set", _R, c_void_p, c_uint32, POINTER(proxy_header_in), c_size_t, c_char_p, c_size_t)

# ---- ABI 0.8 constants of the metrics/log, L4 and PROXY protocol modules (_observe.py, _l4.py
# use them from here; tests/test_ffi_header.py checks each against include/proxy.h) ----
PROXY_FEATURE_L4 = 8192
PROXY_FEATURE_PROXY_PROTOCOL = 16384
PROXY_FEATURE_METRICS = 2048
PROXY_FEATURE_ACCESS_LOG = 4096
PROXY_METRIC_INVALID = 7020
PROXY_METRIC_CONFLICT = 7021
PROXY_LOG_FORMAT_INVALID = 7022
PROXY_OBSERVE_METRICS = 1
PROXY_OBSERVE_REQUEST_IDS = 2
PROXY_OBSERVE_ERROR_LOG = 4
PROXY_METRIC_COUNTER = 0
PROXY_METRIC_GAUGE = 1
PROXY_METRIC_HISTOGRAM = 2
PROXY_PEER_SEND_PROXY_V1 = 8
PROXY_PEER_SEND_PROXY_V2 = 16
PROXY_PP_OFF = 0
PROXY_PP_REQUIRED = 1
PROXY_PP_OPTIONAL = 2
PROXY_PP2_TYPE_ALPN = 1
PROXY_PP2_TYPE_AUTHORITY = 2
PROXY_PP2_TYPE_UNIQUE_ID = 5
PROXY_PP2_TYPE_SSL = 32
PROXY_PP2_SUBTYPE_SSL_VERSION = 33
PROXY_PP2_SUBTYPE_SSL_CN = 34
PROXY_PP2_SUBTYPE_SSL_CIPHER = 35
PROXY_PP2_TYPE_NETNS = 48
PROXY_L4_IDLE_TIMEOUT_MS = 1
PROXY_L4_MAX_DURATION_MS = 2
PROXY_L4_BUFFER_SIZE = 3
PROXY_L4_PEEK_CLIENT_HELLO = 4
PROXY_L4_SPLICE = 5
PROXY_L4_OPEN = 0
PROXY_L4_CLOSED = 1
PROXY_L4_NO_PEER = 2
PROXY_L4_CONNECT_FAILED = 3
PROXY_L4_ERROR = 4
PROXY_L4_IDLE_TIMEOUT = 5
PROXY_L4_MAX_DURATION = 6
PROXY_L4_SHUTDOWN = 7
