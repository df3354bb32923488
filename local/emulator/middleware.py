"""Cross-cutting request handling: counting/logging, JSON errors, auth, api-version and faults."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
import uuid
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.typedefs import Handler

from local.emulator.config import EmulatorConfig
from local.emulator.errors import (
    UNAUTHORIZED_MESSAGE,
    gateway_error,
    invalid_request,
    service_error,
    unknown_route,
)
from local.emulator.faults import (
    MALFORMED,
    RESET,
    SERVER_ERROR,
    SLOW,
    THROTTLE,
    draw_fault,
    malformed,
    rate_limited,
    reset_connection,
    server_error,
    throttled,
)
from local.emulator.keys import (
    API_VERSION_KEY,
    CANCEL_JOB,
    GET_JOB,
    JOB_ID_KEY,
    LANGUAGE_ROUTES,
    OPERATIONS,
    RESET_KEY,
    STATE_KEY,
    SUBMIT,
)
from local.emulator.versions import SUPPORTED_API_VERSIONS

logger = logging.getLogger("local.emulator")

_OPERATION_TITLES = {GET_JOB: "Get analysis status and results", CANCEL_JOB: "Cancel analysis job"}
_SUBMIT_TITLE = "Submit analysis job"
_ERROR_CODES = {413: "InvalidRequest"}
_LOGGED_PARAMETERS = frozenset({"api-version", "top", "skip", "showStats"})


def _is_language(request: web.Request) -> bool:
    return request.path.startswith("/language/")


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Counts Language requests (what the service would bill) and logs every request, never its headers."""
    started = time.perf_counter()
    status: int | None = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        if request.get(RESET_KEY):
            status = None
        if _is_language(request):
            _record(request, status)
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.info(
            "%s %s -> %s (%.1f ms)", request.method, _loggable(request), status or "reset", elapsed_ms
        )


def _loggable(request: web.Request) -> str:
    """Path plus the known query parameters only: a client might put a key in the query (APIM allows it)."""
    query = [(name, value) for name, value in request.query.items() if name in _LOGGED_PARAMETERS]
    return f"{request.path}?{urlencode(query)}" if query else request.path


def _record(request: web.Request, status: int | None) -> None:
    route = request.match_info.route
    resource = route.resource
    job_id = request.get(JOB_ID_KEY) or _uuid_or_none(request.match_info.get("job_id"))
    request.app[STATE_KEY].record(
        request.method,
        resource.canonical if resource is not None else "(unmatched)",
        status,
        job_id=job_id,
        operation=OPERATIONS.get(route.name or ""),
    )


def _uuid_or_none(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value)) if value is not None else None
    except ValueError:
        return None


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Router and body-size errors as ErrorResponse JSON, like every other error of the service."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            return unknown_route()  # the router knows no such path: the gateway's 404
        code = _ERROR_CODES.get(exc.status, "InternalServerError" if exc.status >= 500 else "InvalidRequest")
        response = service_error(exc.status, code, exc.reason)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every Language path, known or not, needs a valid key or bearer token first (as at APIM)."""
    if _is_language(request) and not _authorized(request, request.app[STATE_KEY].config):
        return gateway_error(401, UNAUTHORIZED_MESSAGE)
    return await handler(request)


def _authorized(request: web.Request, config: EmulatorConfig) -> bool:
    key = request.headers.get("Ocp-Apim-Subscription-Key")
    if (
        config.api_key is not None
        and key is not None
        and hmac.compare_digest(key.encode(), config.api_key.encode())
    ):
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and any(
        hmac.compare_digest(token.strip().encode(), accepted.encode()) for accepted in config.bearer_tokens
    )


@web.middleware
async def require_api_version(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.route.name in LANGUAGE_ROUTES:
        version = request.query.get("api-version")
        if version is None:
            return invalid_request("InvalidParameterValue", "The api-version query parameter is required.")
        if version not in SUPPORTED_API_VERSIONS:
            if request.app[STATE_KEY].unknown_api_version_status == 404:
                return unknown_route()
            supported = ", ".join(sorted(SUPPORTED_API_VERSIONS))
            return invalid_request(
                "InvalidParameterValue",
                f"Unsupported api-version {version!r}. Supported versions: {supported}.",
            )
        request[API_VERSION_KEY] = version
    return await handler(request)


@web.middleware
async def limit_rate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The per-minute rate limit (see ``local.emulator.ratelimit``); admin calls are never counted."""
    name = request.match_info.route.name
    state = request.app[STATE_KEY]
    limit = state.rate_limit
    counted = name in _OPERATION_TITLES or (name == SUBMIT and limit.count_submissions)
    if counted:
        retry_after = state.window.admit(limit.requests_per_minute)
        if retry_after is not None:
            return rate_limited(_OPERATION_TITLES.get(name or "", _SUBMIT_TITLE), retry_after)
    return await handler(request)


@web.middleware
async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """GET job (every page) and cancel may fail as configured; submit and the admin API never do."""
    name = request.match_info.route.name
    if name not in _OPERATION_TITLES:
        return await handler(request)
    state = request.app[STATE_KEY]
    faults = state.faults
    fault = draw_fault(faults, state.rng)
    if fault == RESET:
        request[RESET_KEY] = True
        reset_connection(request)
        return web.Response()  # never sent: the connection is gone
    if fault == THROTTLE:
        return throttled(faults, _OPERATION_TITLES[name])
    if fault == SERVER_ERROR:
        return server_error(state.rng)
    if fault == MALFORMED:
        return malformed(request.match_info["job_id"])
    if fault == SLOW:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.closing.wait(), timeout=faults.slow_seconds)
    return await handler(request)
