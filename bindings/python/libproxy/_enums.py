"""The C enums as ``IntEnum``: Action (hook results), Phase, Timeout, Limit, Option and Underscore."""

from __future__ import annotations

import enum

from . import _ffi


class Action(enum.IntEnum):
    """What a hook tells the proxy to do next (``PROXY_CONTINUE`` ... ``PROXY_ERROR``).
    Returning ``None`` from a hook means CONTINUE, or RESPONDED after :meth:`Session.respond`."""

    CONTINUE = _ffi.PROXY_CONTINUE
    RESPONDED = _ffi.PROXY_RESPONDED
    PENDING = _ffi.PROXY_PENDING
    ERROR = _ffi.PROXY_ERROR


class Phase(enum.IntEnum):
    """``PROXY_PHASE_*``: the phase a callback runs in."""

    NONE = 0
    EARLY_REQUEST_FILTER = 1
    REQUEST_FILTER = 2
    UPSTREAM_PEER = 3
    CONNECTED_TO_UPSTREAM = 4
    UPSTREAM_REQUEST_FILTER = 5
    REQUEST_BODY_FILTER = 6
    UPSTREAM_RESPONSE_FILTER = 7
    RESPONSE_FILTER = 8
    UPSTREAM_RESPONSE_BODY_FILTER = 9
    RESPONSE_BODY_FILTER = 10
    LOGGING = 11
    FAIL_TO_CONNECT = 12
    ERROR_WHILE_PROXY = 13
    FAIL_TO_PROXY = 14
    REQUEST_END = 15
    REQUEST_CACHE_FILTER = 16
    CACHE_KEY_CALLBACK = 17
    CACHE_HIT_FILTER = 18
    RESPONSE_CACHE_FILTER = 19


class Timeout(enum.IntEnum):
    """``PROXY_TIMEOUT_*`` for :meth:`Service.set_timeout`."""

    HEADER = _ffi.PROXY_TIMEOUT_HEADER
    KEEPALIVE = _ffi.PROXY_TIMEOUT_KEEPALIVE
    BODY_IDLE = _ffi.PROXY_TIMEOUT_BODY_IDLE
    WRITE = _ffi.PROXY_TIMEOUT_WRITE
    PENDING = _ffi.PROXY_TIMEOUT_PENDING
    #: Whole request body, from the start of the request (408 past it).
    BODY_TOTAL = _ffi.PROXY_TIMEOUT_BODY_TOTAL
    #: How long a body may run before ``Limit.BODY_MIN_RATE`` applies.
    BODY_RATE_GRACE = _ffi.PROXY_TIMEOUT_BODY_RATE_GRACE


class Limit(enum.IntEnum):
    """``PROXY_LIMIT_*`` for :meth:`Service.set_limit`."""

    MAX_HEADER_BYTES = _ffi.PROXY_LIMIT_MAX_HEADER_BYTES
    MAX_HEADERS = _ffi.PROXY_LIMIT_MAX_HEADERS
    MAX_URI_LEN = _ffi.PROXY_LIMIT_MAX_URI_LEN
    MAX_RETRIES = _ffi.PROXY_LIMIT_MAX_RETRIES
    RETRY_BUFFER = _ffi.PROXY_LIMIT_RETRY_BUFFER
    DRAIN = _ffi.PROXY_LIMIT_DRAIN
    #: Slowest request body accepted, bytes/s after the grace period (408 below; 0: off).
    BODY_MIN_RATE = _ffi.PROXY_LIMIT_BODY_MIN_RATE
    #: Buffer whole request bodies up to this size before choosing a peer (413 past it; 0: stream).
    REQUEST_BUFFER = _ffi.PROXY_LIMIT_REQUEST_BUFFER
    #: Connections open at once across the service's endpoints (0: no cap); past it a connection
    #: is accepted and closed unanswered.
    MAX_CONNECTIONS = _ffi.PROXY_LIMIT_MAX_CONNECTIONS
    #: Connections open at once on each endpoint (0: no cap).
    MAX_CONNECTIONS_PER_LISTENER = _ffi.PROXY_LIMIT_MAX_CONNECTIONS_PER_LISTENER


class Option(enum.IntEnum):
    """``PROXY_OPTION_*`` for :meth:`Service.set_option`."""

    #: What becomes of request fields whose names contain ``_`` (an ``Underscore`` value).
    UNDERSCORE_FIELDS = _ffi.PROXY_OPTION_UNDERSCORE_FIELDS


class Underscore(enum.IntEnum):
    """``PROXY_UNDERSCORE_*``: values of ``Option.UNDERSCORE_FIELDS``. A ``Content_Length`` field
    reads as ``Content-Length`` to CGI/WSGI-style origins, which map ``_`` and ``-`` alike."""

    #: Removed before any hook sees the request (default, like nginx).
    DROP = _ffi.PROXY_UNDERSCORE_DROP
    #: The request is answered 400.
    REFUSE = _ffi.PROXY_UNDERSCORE_REFUSE
    #: Forwarded like any other field.
    FORWARD = _ffi.PROXY_UNDERSCORE_FORWARD


class Compression(enum.IntEnum):
    """``PROXY_COMPRESSION_*`` for :meth:`Service.set_compression` and (the first five)
    :meth:`Session.set_compression`."""

    #: 1 compresses responses (service default 0).
    ENABLED = _ffi.PROXY_COMPRESSION_ENABLED
    #: The codings offered, an ``Encoding`` set (default all three).
    ALGORITHMS = _ffi.PROXY_COMPRESSION_ALGORITHMS
    #: gzip level 1..9 (default 6).
    LEVEL_GZIP = _ffi.PROXY_COMPRESSION_LEVEL_GZIP
    #: brotli level 0..11 (default 4).
    LEVEL_BROTLI = _ffi.PROXY_COMPRESSION_LEVEL_BROTLI
    #: zstd level 1..22 (default 3).
    LEVEL_ZSTD = _ffi.PROXY_COMPRESSION_LEVEL_ZSTD
    #: Responses with a shorter Content-Length are left alone (default 256). Service only.
    MIN_LENGTH = _ffi.PROXY_COMPRESSION_MIN_LENGTH
    #: 1 decodes gzip/br/zstd upstream bodies before the response hooks see them. Service only.
    DECOMPRESS_UPSTREAM = _ffi.PROXY_COMPRESSION_DECOMPRESS_UPSTREAM
    #: Decoding fails (502) past this output/input ratio, beyond the first MiB. Service only.
    MAX_RATIO = _ffi.PROXY_COMPRESSION_MAX_RATIO
    #: Decoding fails (502) past this many output bytes. Service only.
    MAX_DECODED = _ffi.PROXY_COMPRESSION_MAX_DECODED


class Encoding(enum.IntFlag):
    """``PROXY_ENCODING_*``: values of ``Compression.ALGORITHMS``, combined with ``|``."""

    GZIP = _ffi.PROXY_ENCODING_GZIP
    BROTLI = _ffi.PROXY_ENCODING_BROTLI
    ZSTD = _ffi.PROXY_ENCODING_ZSTD


class CacheSetting(enum.IntEnum):
    """``PROXY_CACHE_*`` settings of a :class:`Cache` (before it is attached to a service)."""

    #: Longer responses are passed on but not stored (default 8 MiB).
    MAX_OBJECT = _ffi.PROXY_CACHE_MAX_OBJECT
    #: 1 adds ``x-cache-status`` to responses (default 0).
    STATUS_HEADER = _ffi.PROXY_CACHE_STATUS_HEADER
    #: 1 stores responses that set cookies (default 0).
    ALLOW_SET_COOKIE = _ffi.PROXY_CACHE_ALLOW_SET_COOKIE
    #: 1 gives responses without explicit freshness a heuristic lifetime (default 0).
    HEURISTIC_FRESHNESS = _ffi.PROXY_CACHE_HEURISTIC_FRESHNESS
    #: How long a request waits for another fetching the same key, in ms (default 5000).
    LOCK_TIMEOUT_MS = _ffi.PROXY_CACHE_LOCK_TIMEOUT_MS


class CacheDecision(enum.IntEnum):
    """``PROXY_CACHE_*`` decisions of the cache hooks (:meth:`Session.set_cache`)."""

    #: request_cache_filter: 1 keeps the request away from the cache.
    BYPASS = _ffi.PROXY_CACHE_BYPASS
    #: cache_hit_filter: 1 treats the stored response as expired.
    EXPIRE = _ffi.PROXY_CACHE_EXPIRE
    #: response_cache_filter: 1 stores the response, 0 does not.
    STORE = _ffi.PROXY_CACHE_STORE
    #: response_cache_filter: its freshness lifetime in seconds.
    TTL = _ffi.PROXY_CACHE_TTL


class CacheStatus(enum.IntEnum):
    """``PROXY_CACHE_STATUS_*``: what the cache did (:attr:`Session.cache_status`)."""

    NONE = _ffi.PROXY_CACHE_STATUS_NONE
    HIT = _ffi.PROXY_CACHE_STATUS_HIT
    MISS = _ffi.PROXY_CACHE_STATUS_MISS
    STALE = _ffi.PROXY_CACHE_STATUS_STALE
    REVALIDATED = _ffi.PROXY_CACHE_STATUS_REVALIDATED
    EXPIRED = _ffi.PROXY_CACHE_STATUS_EXPIRED
    BYPASS = _ffi.PROXY_CACHE_STATUS_BYPASS
