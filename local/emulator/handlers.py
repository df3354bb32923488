"""The Language analyze-text job routes: submit, get status/results, cancel."""

from __future__ import annotations

import uuid

from aiohttp import web

from local.emulator.errors import invalid_request, job_not_found, json_response, service_error
from local.emulator.faults import canned, malformed
from local.emulator.jobs import Job
from local.emulator.keys import API_VERSION_KEY, JOB_ID_KEY, JOBS_PATH, STATE_KEY
from local.emulator.paging import parse_page_request
from local.emulator.render import RenderContext, render_job
from local.emulator.submission import InvalidSubmission, parse_submission


def _origin(request: web.Request) -> str:
    """scheme://Host as the client addressed us, so absolute URLs work through any port mapping."""
    return f"{request.scheme}://{request.host}"


def _job_url(request: web.Request, job_id: str) -> str:
    return f"{_origin(request)}{JOBS_PATH}/{job_id}?api-version={request[API_VERSION_KEY]}"


async def submit_job(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    try:
        submission = parse_submission(await request.read())
    except InvalidSubmission as exc:
        return invalid_request(exc.inner_code, exc.inner_message, message=exc.message)
    job = state.create_job(submission)
    request[JOB_ID_KEY] = job.job_id
    return web.Response(status=202, headers={"operation-location": _job_url(request, job.job_id)})


def _find_job(request: web.Request) -> Job | None:
    raw_id = request.match_info["job_id"]
    try:
        job_id = str(uuid.UUID(raw_id))
    except ValueError:
        return None
    return request.app[STATE_KEY].find_job(job_id)


async def get_job(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    job = _find_job(request)
    if job is None:
        return job_not_found(request.match_info["job_id"])
    if job.overrides.malformed_pages:
        return malformed(job.job_id)
    if job.overrides.canned_pages:
        return canned(job.overrides.canned_pages, request.query.get("cannedPage", "0"))
    try:
        page = parse_page_request(request.query)
    except ValueError as exc:
        return invalid_request("InvalidParameterValue", str(exc), message="Invalid parameter in request")
    origin = job.overrides.next_link_base or _origin(request)
    context = RenderContext(
        api_version=request[API_VERSION_KEY],
        page=page,
        page_size=state.config.page_size,
        timestamp_field=state.config.job_timestamp_field,
        origin=origin,
    )
    return json_response(render_job(job, job.progress(state.clock.now()), context))


async def cancel_job(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    job = _find_job(request)
    if job is None:
        return job_not_found(request.match_info["job_id"])
    if not job.request_cancel(state.clock.now()):
        message = f"Failed to cancel job with job identifier {job.job_id} as its already completed."
        return service_error(400, "InvalidRequest", message)
    return web.Response(status=202, headers={"operation-location": _job_url(request, job.job_id)})
