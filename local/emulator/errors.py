"""JSON responses and the ErrorResponse bodies of the Language service and its APIM front end."""

from __future__ import annotations

import json
from collections.abc import Mapping

from aiohttp import web

JSON_CONTENT_TYPE = "application/json; charset=utf-8"

UNAUTHORIZED_MESSAGE = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
    "for an active subscription and use a correct regional API endpoint for your resource."
)


def json_response(
    body: object, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(body, ensure_ascii=False).encode(),
        status=status,
        headers={"Content-Type": JSON_CONTENT_TYPE, **(headers or {})},
    )


def error_body(
    code: str, message: str, *, inner_code: str | None = None, inner_message: str | None = None
) -> dict[str, object]:
    error: dict[str, object] = {"code": code, "message": message}
    if inner_code is not None:
        error["innererror"] = {"code": inner_code, "message": inner_message or message}
    return {"error": error}


def service_error(
    status: int,
    code: str,
    message: str,
    *,
    inner_code: str | None = None,
    inner_message: str | None = None,
) -> web.Response:
    """An ErrorResponse from the Language service itself, which also names the code in a header."""
    body = error_body(code, message, inner_code=inner_code, inner_message=inner_message)
    return json_response(body, status=status, headers={"x-ms-error-code": code})


def gateway_error(status: int, message: str, *, headers: Mapping[str, str] | None = None) -> web.Response:
    """An APIM front-end error: the code is the status as a string, and no x-ms-error-code header."""
    return json_response(error_body(str(status), message), status=status, headers=headers)


def invalid_request(
    inner_code: str, inner_message: str, *, message: str = "Invalid Request."
) -> web.Response:
    return service_error(400, "InvalidRequest", message, inner_code=inner_code, inner_message=inner_message)


#: The gateway's answer for a path or api-version it does not route, before the service sees the
#: request: its own numeric-string code (CONTRACT.md, surprise 5) and no x-ms-error-code header.
RESOURCE_NOT_FOUND_MESSAGE = "Resource not found"


def unknown_route() -> web.Response:
    return gateway_error(404, RESOURCE_NOT_FOUND_MESSAGE)


def job_not_found(job_id: str) -> web.Response:
    return service_error(404, "NotFound", f"The job with identifier {job_id} was not found or has expired.")
