"""The dev-only admin API under /_emulator (no auth, no faults, not counted); JSON in and out."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from typing import Any

from aiohttp import web

from local.emulator.clock import format_task_time
from local.emulator.config import Faults, RateLimit, Timing, require_unknown_api_version_status
from local.emulator.errors import error_body, json_response
from local.emulator.keys import STATE_KEY

# Faults fields by camelCase name; the snake_case field names are accepted too.
FAULT_FIELDS = {
    "rate429": "rate_429",
    "retryAfterSeconds": "retry_after_seconds",
    "rate5xx": "rate_5xx",
    "rateReset": "rate_reset",
    "rateSlow": "rate_slow",
    "slowSeconds": "slow_seconds",
    "rateMalformed": "rate_malformed",
}
RATE_LIMIT_FIELDS = {"requestsPerMinute": "requests_per_minute", "countSubmissions": "count_submissions"}
TIMING_FIELDS = {"notStartedSeconds": "not_started_seconds", "runningSeconds": "running_seconds"}


class _BadRequest(Exception):
    pass


def _bad_request(message: str) -> web.Response:
    return json_response(error_body("InvalidRequest", message), status=400)


async def _object_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _BadRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _BadRequest("body must be a JSON object")
    return body


def _rename(body: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """camelCase or snake_case keys -> field names; unknown keys are an error, not silently ignored."""
    snake = set(names.values())
    renamed: dict[str, Any] = {}
    for key, value in body.items():
        if key in names:
            renamed[names[key]] = value
        elif key in snake:
            renamed[key] = value
        else:
            raise _BadRequest(f"unknown field {key!r}; expected one of {sorted(names)}")
    return renamed


def faults_json(faults: Faults) -> dict[str, object]:
    by_field = {field_name: camel for camel, field_name in FAULT_FIELDS.items()}
    return {by_field[f.name]: getattr(faults, f.name) for f in fields(faults)}


async def put_faults(request: web.Request) -> web.Response:
    """Replaces the fault settings; fields left out take their defaults (no faults)."""
    state = request.app[STATE_KEY]
    try:
        state.faults = Faults(**_rename(await _object_body(request), FAULT_FIELDS))
    except (_BadRequest, ValueError) as exc:
        return _bad_request(str(exc))
    return json_response(faults_json(state.faults))


async def put_timing(request: web.Request) -> web.Response:
    """Changes lifecycle durations for jobs submitted from now on; fields left out keep their value."""
    state = request.app[STATE_KEY]
    try:
        changes = _rename(await _object_body(request), TIMING_FIELDS)
        state.timing = Timing(
            changes.get("not_started_seconds", state.timing.not_started_seconds),
            changes.get("running_seconds", state.timing.running_seconds),
        )
    except (_BadRequest, ValueError) as exc:
        return _bad_request(str(exc))
    return json_response(
        {
            "notStartedSeconds": state.timing.not_started_seconds,
            "runningSeconds": state.timing.running_seconds,
        }
    )


async def advance_clock(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    try:
        body = await _object_body(request)
        seconds = body.get("advanceSeconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not math.isfinite(seconds):
            raise _BadRequest("advanceSeconds must be a number >= 0")
        state.clock.advance(seconds)
    except (_BadRequest, ValueError) as exc:
        return _bad_request(str(exc))
    return json_response({"now": format_task_time(state.clock.now())})


async def set_overrides(request: web.Request) -> web.Response:
    """Per-job hooks: nextLinkBase, malformedPages, status (forced from now on) and purge."""
    state = request.app[STATE_KEY]
    job = state.find_job(request.match_info["job_id"])
    if job is None:
        return json_response(error_body("NotFound", "no such job"), status=404)
    try:
        body = _validated_overrides(await _object_body(request))
    except _BadRequest as exc:
        return _bad_request(str(exc))
    if body.get("purge"):
        state.purge(job.job_id)
        return json_response({"jobId": job.job_id, "purged": True})
    overrides = job.overrides
    if "nextLinkBase" in body:
        overrides.next_link_base = body["nextLinkBase"].rstrip("/") if body["nextLinkBase"] else None
    if "malformedPages" in body:
        overrides.malformed_pages = body["malformedPages"]
    if "cannedPages" in body:
        overrides.canned_pages = tuple(body["cannedPages"]) if body["cannedPages"] else None
    if "status" in body:
        overrides.status = body["status"]
        overrides.status_at = state.clock.now() if body["status"] else None
    return json_response(
        {
            "jobId": job.job_id,
            "nextLinkBase": overrides.next_link_base,
            "malformedPages": overrides.malformed_pages,
            "cannedPages": list(overrides.canned_pages or ()),
            "status": overrides.status,
        }
    )


def _validated_overrides(body: dict[str, Any]) -> dict[str, Any]:
    """Checks every field before any is applied, so a bad request changes nothing."""
    unknown = set(body) - {"nextLinkBase", "malformedPages", "cannedPages", "status", "purge"}
    if unknown:
        raise _BadRequest(f"unknown fields {sorted(unknown)}")
    base = body.get("nextLinkBase")
    if base is not None and (not isinstance(base, str) or not base.startswith(("http://", "https://"))):
        raise _BadRequest("nextLinkBase must be an http(s) URL or null")
    for flag in ("malformedPages", "purge"):
        if flag in body and not isinstance(body[flag], bool):
            raise _BadRequest(f"{flag} must be a boolean")
    pages = body.get("cannedPages")
    if pages is not None and (not isinstance(pages, list) or not all(isinstance(p, str) for p in pages)):
        raise _BadRequest("cannedPages must be a list of strings (the bodies, verbatim) or null")
    status = body.get("status")
    if status is not None and (not isinstance(status, str) or not status):
        raise _BadRequest("status must be a non-empty string or null")
    return body


async def put_rate_limit(request: web.Request) -> web.Response:
    """Replaces the rate limit at once (``{"requestsPerMinute": n | null, "countSubmissions": bool}``);
    the window keeps the requests it already holds."""
    state = request.app[STATE_KEY]
    try:
        state.rate_limit = RateLimit(**_rename(await _object_body(request), RATE_LIMIT_FIELDS))
    except (_BadRequest, ValueError) as exc:
        return _bad_request(str(exc))
    return json_response(state.rate_limit_report())


async def get_rate_limit(request: web.Request) -> web.Response:
    return json_response(request.app[STATE_KEY].rate_limit_report())


async def put_gateway(request: web.Request) -> web.Response:
    """How the gateway answers an unsupported api-version: ``{"unknownApiVersionStatus": 400 | 404}``."""
    state = request.app[STATE_KEY]
    try:
        body = _rename(await _object_body(request), {"unknownApiVersionStatus": "unknown_api_version_status"})
        status = body.get("unknown_api_version_status", state.unknown_api_version_status)
        require_unknown_api_version_status(status)
    except (_BadRequest, ValueError) as exc:
        return _bad_request(str(exc))
    state.unknown_api_version_status = status
    return json_response({"unknownApiVersionStatus": status})


async def get_stats(request: web.Request) -> web.Response:
    return json_response(request.app[STATE_KEY].stats())


async def list_jobs(request: web.Request) -> web.Response:
    return json_response({"jobs": request.app[STATE_KEY].job_summaries()})
