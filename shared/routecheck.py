"""Is a 404 about the job, or about the route? One process-wide judge.

The gateway in front of the Language service answers 404 for a path or an ``api-version`` it
does not route, before the service sees the request: ``{"error": {"code": "404", "message":
"Resource not found"}}``, the numeric-string code of its own errors (CONTRACT.md, surprise 5). The
service's own 404 for a job it does not have is an ErrorResponse with a word for a code
(``NotFound``). Read as "the job is gone", the gateway's 404 would end every job the app touches
``notFound`` or ``expired`` for good; it is a configuration fault instead, and the jobs are kept.

The judge: until any job GET has answered 2xx in this process (then the route works), a 404 is
the route's when its body is the gateway's, or when its body is neither kind (a proxy's page, an
empty body) and at least ``SUSPECT_AFTER`` different jobs have answered 404. A body in the
service's own form is always about the job.
"""

from __future__ import annotations

import enum
from typing import Any, Final

from .jsontext import UnreadableJson, loads_bounded

__all__ = ["SUSPECT_AFTER", "NotFoundBody", "RouteCheck", "error_of", "not_found_body"]

#: Different jobs that must answer an ambiguous 404 (and none anything else) before the route is
#: suspected: one or two jobs that are really gone are no reason to keep them.
SUSPECT_AFTER: Final = 3
_MAX_ERROR_BYTES: Final = 64 * 1024
_MAX_ERROR_DEPTH: Final = 16


class NotFoundBody(enum.Enum):
    GATEWAY = "gateway"  # {"error": {"code": "404", ...}}: the route is unknown
    SERVICE = "service"  # an ErrorResponse with a word for a code: the job is unknown
    UNKNOWN = "unknown"  # anything else


def error_of(body: bytes) -> dict[str, Any] | None:
    """The ``error`` object of an ErrorResponse body (its first 64 KiB), ``None`` if it is not one;
    never raises."""
    try:
        value: Any = loads_bounded(
            body[:_MAX_ERROR_BYTES].decode("utf-8", "replace"), max_depth=_MAX_ERROR_DEPTH
        )
    except UnreadableJson:
        return None
    error = value.get("error") if isinstance(value, dict) else None
    return error if isinstance(error, dict) else None


def not_found_body(body: bytes) -> NotFoundBody:
    """Which kind of 404 ``body`` is; never raises."""
    error = error_of(body)
    code = None if error is None else error.get("code")
    if not isinstance(code, str) or not code.strip():
        return NotFoundBody.UNKNOWN
    return NotFoundBody.GATEWAY if code.strip() == "404" else NotFoundBody.SERVICE


class RouteCheck:
    """What this process has learnt of the jobs route; one per Language client (per process)."""

    def __init__(self) -> None:
        self._routed = False
        self._missing: set[str] = set()  # at most SUSPECT_AFTER job ids

    @property
    def routed(self) -> bool:
        """Whether a job GET has answered 2xx: the endpoint and api-version are right."""
        return self._routed

    def answered(self) -> None:
        """A job GET answered 2xx."""
        self._routed = True
        self._missing.clear()

    def unknown_route(self, job_id: str, body: NotFoundBody) -> bool:
        """Record a 404 for ``job_id``; ``True`` when it is the route's fault, not the job's."""
        if self._routed or body is NotFoundBody.SERVICE:
            return False
        if body is NotFoundBody.GATEWAY:
            return True
        if len(self._missing) < SUSPECT_AFTER:
            self._missing.add(job_id)
        return len(self._missing) >= SUSPECT_AFTER
