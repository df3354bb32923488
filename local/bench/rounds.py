"""One round of each side: the app under the queue runner, the floor, and the floor under the runner."""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueClient

import function_app
from local.bench.floor import Floor
from local.bench.instruments import CpuClock, Scenario, Side, port_names, tracer
from local.bench.plain import plain_app
from local.bench.services import KEY
from local.host.runner import QueueRunner
from local.upstream import enqueue, job_message
from shared.runtime import build_runtime, close_process_runtime, install_process_runtime
from shared.settings import load_settings

__all__ = ["Round", "app_round", "floor_round", "plain_round", "queued_floor_round"]

_ROUND_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Round:
    """What one round needs: where to send requests, which jobs, and the direct connection string
    (setup and checks go straight to Azurite, outside the measurement)."""

    scenario: Scenario
    job_ids: list[str]
    direct: str
    number: int
    clock: CpuClock

    def container(self, side: str) -> str:
        return f"{side}-{self.scenario.name}-{self.number}"

    @property
    def environ(self) -> dict[str, str]:
        return {
            "LANGUAGE_ENDPOINT": self.scenario.language_url,
            "LANGUAGE_API_KEY": KEY,
            "AzureWebJobsStorage": self.scenario.connection_string,
            "JOBS_QUEUE": f"bench-{self.scenario.name}",
            "ARCHIVE_CONTAINER": self.container("app"),
            "SWEEP_SCHEDULE": "0 0 0 1 1 *",  # never due during a round (the runner's timer is off too)
            "LANGUAGE_MAX_REQUESTS_PER_MINUTE": "60000",  # coordinates, never makes a request wait
        }


async def app_round(round_: Round, side: Side, *, profile: cProfile.Profile | None = None) -> None:
    """The app as deployed: function_app.poll_job under the queue runner, one message per job."""
    settings = load_settings(round_.environ)
    await _create_container(round_.direct, settings.archive_container)
    calls: Counter[str] = Counter()
    runtime = await build_runtime(settings, trace_configs=[tracer(calls, port_names(round_.scenario))])
    await install_process_runtime(runtime)
    try:
        elapsed, cpu = await _run_queued(round_, function_app.app, profile=profile)
    finally:
        await close_process_runtime()
    await _expect_archived(round_.direct, settings.archive_container, round_.job_ids)
    if profile is None:
        side.record(jobs=len(round_.job_ids), elapsed=elapsed, cpu=cpu, calls=calls)


async def floor_round(round_: Round, side: Side, *, concurrency: int) -> None:
    """The floor: ``concurrency`` jobs at once on one session, no queue."""
    container = round_.container("floor")
    await _create_container(round_.direct, container)
    calls: Counter[str] = Counter()
    gate = asyncio.Semaphore(concurrency)
    async with _session(round_.scenario, calls) as http:
        floor = _floor(http, round_.scenario, container)

        async def one(job_id: str) -> None:
            async with gate:
                await floor.archive(job_id)

        started, cpu = time.perf_counter(), round_.clock.read()
        await asyncio.gather(*(one(job_id) for job_id in round_.job_ids))
        elapsed, used = time.perf_counter() - started, round_.clock.since(cpu)
    await _expect_archived(round_.direct, container, round_.job_ids)
    side.record(jobs=len(round_.job_ids), elapsed=elapsed, cpu=used, calls=calls)


async def queued_floor_round(round_: Round, side: Side) -> None:
    """The floor's work as the function under the same queue runner: what the host's own receive
    and delete leave of the floor, i.e. the most the app can reach under that loop."""
    container = round_.container("qfloor")
    await _create_container(round_.direct, container)
    calls: Counter[str] = Counter()
    async with _session(round_.scenario, calls) as http:
        floor = _floor(http, round_.scenario, container)
        app = func.FunctionApp()

        @app.function_name("floor_job")
        @app.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%", connection="AzureWebJobsStorage")
        async def floor_job(msg: func.QueueMessage) -> None:
            await floor.archive(json.loads(msg.get_body())["jobId"])

        elapsed, cpu = await _run_queued(round_, app)
    await _expect_archived(round_.direct, container, round_.job_ids)
    side.record(jobs=len(round_.job_ids), elapsed=elapsed, cpu=cpu, calls=calls)


async def plain_round(round_: Round, side: Side) -> None:
    """The plain function (``local.bench.plain``) under the same queue runner: the same work, none
    of the app's features."""
    container = round_.container("plain")
    await _create_container(round_.direct, container)
    calls: Counter[str] = Counter()
    async with (
        _session(round_.scenario, calls) as http,
        plain_app(
            http=http,
            language_url=round_.scenario.language_url,
            key=KEY,
            connection_string=round_.scenario.connection_string,
            container=container,
        ) as app,
    ):
        elapsed, cpu = await _run_queued(round_, app)
    await _expect_archived(round_.direct, container, round_.job_ids)
    side.record(jobs=len(round_.job_ids), elapsed=elapsed, cpu=cpu, calls=calls)


async def _run_queued(
    round_: Round, app: func.FunctionApp, *, profile: cProfile.Profile | None = None
) -> tuple[float, dict[str, float]]:
    """Enqueue one message per job (untimed), then time the runner until every one succeeded."""
    environ = round_.environ
    async with QueueClient.from_connection_string(round_.direct, environ["JOBS_QUEUE"]) as queue:
        with contextlib.suppress(ResourceExistsError):
            await queue.create_queue()
        for job_id in round_.job_ids:
            await enqueue(queue, job_message(job_id))
    async with QueueRunner(
        app=app, connection_string=round_.scenario.connection_string, environ=environ, timer=False
    ) as runner:
        stats, target = runner.stats, len(round_.job_ids)

        def all_done() -> bool:
            return stats.succeeded + stats.failed >= target

        if profile is not None:
            profile.enable()
        started, cpu = time.perf_counter(), round_.clock.read()
        await runner.run_until(all_done, timeout=_ROUND_TIMEOUT)
        elapsed, used = time.perf_counter() - started, round_.clock.since(cpu)
        if profile is not None:
            profile.disable()
    if stats.failed:
        raise RuntimeError(f"{stats.failed} invocations failed in a benchmark round")
    return elapsed, used


def _floor(http: aiohttp.ClientSession, scenario: Scenario, container: str) -> Floor:
    return Floor(
        http=http,
        language_url=scenario.language_url,
        key=KEY,
        blob_url=scenario.blob_url,
        container=container,
    )


@contextlib.asynccontextmanager
async def _session(scenario: Scenario, calls: Counter[str]) -> AsyncIterator[aiohttp.ClientSession]:
    # The app's own connection limits (shared.http), so that pooling is not what differs.
    connector = aiohttp.TCPConnector(limit=64, limit_per_host=32)
    async with aiohttp.ClientSession(
        connector=connector, trace_configs=[tracer(calls, port_names(scenario))]
    ) as http:
        yield http


async def _create_container(connection_string: str, name: str) -> None:
    async with BlobServiceClient.from_connection_string(connection_string) as blobs:
        await blobs.create_container(name)


async def _expect_archived(connection_string: str, container: str, job_ids: list[str]) -> None:
    """Every job has its manifest and two task blobs: a round that skipped work does not count."""
    async with BlobServiceClient.from_connection_string(connection_string) as blobs:
        names = [blob.name async for blob in blobs.get_container_client(container).list_blobs()]
    manifests = {name.split("/")[0] for name in names if name.endswith("/manifest.json")}
    if manifests != set(job_ids) or len(names) != 3 * len(job_ids):
        raise RuntimeError(
            f"{container}: {len(manifests)} of {len(job_ids)} jobs archived, {len(names)} blobs"
        )
