"""Fault injection: one seeded draw per faultable request, and the responses each fault produces."""

from __future__ import annotations

import random
import socket
import struct

from aiohttp import web

from local.emulator.config import Faults
from local.emulator.errors import JSON_CONTENT_TYPE, gateway_error, service_error

RESET, THROTTLE, SERVER_ERROR, SLOW, MALFORMED = "reset", "429", "5xx", "slow", "malformed"
_FAULT_OF_RATE = {
    "rate_reset": RESET,
    "rate_429": THROTTLE,
    "rate_5xx": SERVER_ERROR,
    "rate_slow": SLOW,
    "rate_malformed": MALFORMED,
}
_SERVER_ERRORS = {
    500: ("InternalServerError", "Internal server error."),
    502: ("InternalServerError", "Bad gateway."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please retry later."),
    504: ("Timeout", "The request timed out."),
}


def draw_fault(faults: Faults, rng: random.Random) -> str | None:
    """At most one fault: the rates partition [0, 1) and the remainder means no fault."""
    draw = rng.random()
    for name, rate in faults.rates().items():
        if draw < rate:
            return _FAULT_OF_RATE[name]
        draw -= rate
    return None


def throttled(faults: Faults, operation: str) -> web.Response:
    return rate_limited(operation, faults.retry_after_seconds)


def rate_limited(operation: str, seconds: int) -> web.Response:
    """429 as the APIM front end answers it (CONTRACT.md section 4)."""
    message = (
        f"Requests to the {operation} Operation under Azure AI Language API have exceeded rate limit of your "
        f"current Language S pricing tier. Please retry after {seconds} second{'' if seconds == 1 else 's'}. "
        "To increase your default rate limit, go to the Azure portal."
    )
    return gateway_error(429, message, headers={"Retry-After": str(seconds)})


def server_error(rng: random.Random) -> web.Response:
    status = rng.choice(sorted(_SERVER_ERRORS))
    code, message = _SERVER_ERRORS[status]
    return service_error(status, code, message)


def malformed(job_id: str) -> web.Response:
    """200 with JSON cut off mid-document, as a truncated upstream response would look."""
    body = f'{{"jobId": "{job_id}", "status": "running", "tasks": {{"completed": 0, "items": [{{"kin'
    return web.Response(body=body.encode(), status=200, headers={"Content-Type": JSON_CONTENT_TYPE})


def canned(pages: tuple[str, ...], index: str) -> web.Response:
    """One of a job's canned bodies, verbatim with status 200: whatever a misbehaving service sends."""
    position = min(int(index), len(pages) - 1) if index.isdigit() else 0
    return web.Response(
        body=pages[position].encode("utf-8", "surrogatepass"),
        status=200,
        headers={"Content-Type": JSON_CONTENT_TYPE},
    )


def reset_connection(request: web.Request) -> None:
    """Abort with a TCP RST (SO_LINGER 0), so the client sees a reset rather than a clean close."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
