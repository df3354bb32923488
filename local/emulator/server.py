"""The aiohttp application and a context manager that serves it on a real TCP port."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from local.emulator import admin, handlers
from local.emulator.config import EmulatorConfig
from local.emulator.keys import CANCEL_JOB, GET_JOB, JOBS_PATH, STATE_KEY, SUBMIT
from local.emulator.middleware import (
    authenticate,
    inject_faults,
    json_errors,
    limit_rate,
    observe,
    require_api_version,
)
from local.emulator.state import EmulatorState

# Slow-fault handlers wake on shutdown; this only bounds a stuck client connection.
_SHUTDOWN_TIMEOUT_SECONDS = 2.0


def create_app(config: EmulatorConfig) -> web.Application:
    # Order matters: the outermost middleware sees the final status of every other layer.
    app = web.Application(
        middlewares=[observe, json_errors, authenticate, require_api_version, limit_rate, inject_faults]
    )
    app[STATE_KEY] = EmulatorState(config)
    job_path = JOBS_PATH + "/{job_id:[^/:]+}"
    app.router.add_post(JOBS_PATH, handlers.submit_job, name=SUBMIT)
    app.router.add_get(job_path, handlers.get_job, name=GET_JOB, allow_head=False)
    app.router.add_post(job_path + ":cancel", handlers.cancel_job, name=CANCEL_JOB)
    app.router.add_put("/_emulator/faults", admin.put_faults)
    app.router.add_put("/_emulator/timing", admin.put_timing)
    app.router.add_post("/_emulator/clock", admin.advance_clock)
    app.router.add_post("/_emulator/jobs/{job_id}/overrides", admin.set_overrides)
    app.router.add_put("/_emulator/gateway", admin.put_gateway)
    app.router.add_get("/_emulator/stats", admin.get_stats)
    app.router.add_get("/_emulator/rate-limit", admin.get_rate_limit)
    app.router.add_put("/_emulator/rate-limit", admin.put_rate_limit)
    app.router.add_get("/_emulator/jobs", admin.list_jobs)
    app.on_response_prepare.append(_stamp_request_id)
    app.on_shutdown.append(_wake_delayed_handlers)
    return app


async def _stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("apim-request-id", str(uuid.uuid4()))


async def _wake_delayed_handlers(app: web.Application) -> None:
    app[STATE_KEY].closing.set()


@dataclass(frozen=True)
class RunningEmulator:
    base_url: str
    """e.g. http://127.0.0.1:54321 (no trailing slash)."""
    state: EmulatorState


@asynccontextmanager
async def serve(
    config: EmulatorConfig, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningEmulator]:
    """Serves a new emulator on the running loop; port 0 picks a free port. Stops it on exit."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_SECONDS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        url_host = f"[{host}]" if ":" in host else host
        yield RunningEmulator(base_url=f"http://{url_host}:{bound_port}", state=app[STATE_KEY])
    finally:
        await runner.cleanup()
