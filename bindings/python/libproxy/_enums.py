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
