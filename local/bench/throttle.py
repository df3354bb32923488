"""``make bench-throttle``: many jobs, one Language quota squeezed under the app, shown on this machine.

The operator's scenario of issue 24: a burst of jobs (300) finishing at different times is put on
the queue at once; worker processes (3) run the real ``function_app`` under the local queue runner
(``local.host.worker``, queue leases of 10 s renewed while the function runs, the sweep timer in
the first) with ``LANGUAGE_MAX_REQUESTS_PER_MINUTE=480``, ``POLL_INITIAL_DELAY_SECONDS=1``,
``POLL_MAX_DELAY_SECONDS=16``, the sweep every 5 s with ``SWEEP_GRACE_SECONDS=10``. The Language
emulator allows 600 a minute (sliding window) and is squeezed to 300 for 30 s at the moment its
60-s window holds the app's full budget (so the service refuses everything until the window
drains: the worst moment, and what a fixed start time missed).

It prints the most requests the app sent in any 60-s window, the 429s and their share, the longest
invocation, the sweep's re-drives, lag p50/p95 (lastUpdatedDateTime to archivedAt, from the
manifests) against the fair-share interval (one poll of every job at the budget) and GETs per job,
and exits non-zero when a threshold fails: every job archived ``succeeded``, 429s at most 2 % of
the app's requests, at most 1.1 x the budget in any 60-s window, lag p95 at most twice the
fair-share interval (75 s here), no invocation longer than the budget's wait bound plus its own
work, and no re-drive (no message was lost: every one would be a job that only waited).

    python -m local.bench.throttle                     # what `make bench-throttle` runs
    python -m local.bench.throttle --jobs 60 --workers 2 --budget 240
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Final

import aiohttp
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient

from local.bench.throttle_report import ThrottlePlan, ThrottleReport, percentile
from local.emulator import EmulatorConfig, RateLimit, serve
from local.emulator.server import RunningEmulator
from local.host.azurite import Azurite
from local.host.process import WorkerProcess, run_folder
from local.upstream import enqueue_all, job_message, submit_job

__all__ = ["ThrottlePlan", "ThrottleReport", "percentile", "run_bench_throttle"]

_log = logging.getLogger("local.bench.throttle")

_KEY: Final = "throttle-key-0123456789abcdef"
_TEXT: Final = "Contoso Ltd. shipped to Seattle and the Pacific Northwest on March 15, 2025."
_TASKS: Final = (
    {"kind": "EntityRecognition", "taskName": "prebuilt", "parameters": {"modelVersion": "latest"}},
    {
        "kind": "CustomEntityRecognition",
        "taskName": "regions",
        "parameters": {"projectName": "MyProject", "deploymentName": "MyDeployment"},
    },
)
_CHECK_SECONDS: Final = 1.0
#: What a worker logs for each job the sweep re-drives (``shared.sweep``).
_REDRIVEN: Final = "archiver.redriven"


async def run_bench_throttle(plan: ThrottlePlan, *, workdir: Path) -> ThrottleReport:
    azurite = await asyncio.to_thread(Azurite.start_sync, location=workdir / "azurite")
    try:
        config = EmulatorConfig(
            api_key=_KEY,
            not_started_seconds=0,
            running_seconds=0,
            rate_limit=RateLimit(requests_per_minute=plan.service_limit),
        )
        async with serve(config) as emulator, aiohttp.ClientSession() as http:
            environ = {
                "LANGUAGE_ENDPOINT": emulator.base_url,
                "LANGUAGE_API_KEY": _KEY,
                "AzureWebJobsStorage": azurite.connection_string,
                "ARCHIVE_CONTAINER": "throttle-archive",
                "JOBS_QUEUE": "throttle-jobs",
                "LANGUAGE_MAX_REQUESTS_PER_MINUTE": str(plan.budget),
                "POLL_INITIAL_DELAY_SECONDS": str(plan.poll_initial_delay),
                "POLL_MAX_DELAY_SECONDS": str(plan.poll_max_delay),
                # A tight sweep: it must still not re-drive jobs that only wait for the budget.
                "SWEEP_SCHEDULE": f"*/{plan.sweep_every} * * * * *",
                "SWEEP_GRACE_SECONDS": str(plan.sweep_grace),
            }
            job_ids = await _submit(http, emulator, plan)
            await enqueue_all(
                azurite.connection_string, environ["JOBS_QUEUE"], map(job_message, job_ids), concurrency=32
            )
            workers = [
                WorkerProcess(
                    name=f"worker-{n}", workdir=workdir, environ=environ, timer=n == 0, lease=plan.lease
                )
                for n in range(plan.workers)
            ]
            report = ThrottleReport(plan=plan)
            started = time.monotonic()
            try:
                for worker in workers:
                    await worker.start()
                await _watch(
                    plan,
                    emulator=emulator,
                    workers=workers,
                    connection_string=azurite.connection_string,
                    archive=environ["ARCHIVE_CONTAINER"],
                    report=report,
                )
            finally:
                await asyncio.gather(*(worker.stop() for worker in workers))
                report.elapsed = time.monotonic() - started
            report.redriven = sum(worker.log_text().count(_REDRIVEN) for worker in workers)
            window = emulator.state.window.report()
            report.requests = window["accepted"] + window["refused"]
            report.throttled = window["refused"]
            report.max_in_window = window["maxRequestsInWindow"]
            gets = [emulator.state.by_job[job_id]["GET"] for job_id in job_ids]
            report.gets_per_job = sum(gets) / len(gets) if gets else 0.0
            await _read_manifests(azurite.connection_string, environ["ARCHIVE_CONTAINER"], report)
            if report.failures():
                for worker in workers:
                    _log.warning("last lines of %s:\n%s", worker.name, worker.log_tail())
            return report
    finally:
        await asyncio.to_thread(azurite.stop)


async def _watch(
    plan: ThrottlePlan,
    *,
    emulator: RunningEmulator,
    workers: Sequence[WorkerProcess],
    connection_string: str,
    archive: str,
    report: ThrottleReport,
) -> None:
    """Squeeze the service's limit when its window holds the budget, sample the window and the
    workers' longest invocation, stop when every job is archived."""
    state = emulator.state
    loop = asyncio.get_running_loop()
    started = loop.time()
    squeeze_at, release_at = started + plan.squeeze_after, math.inf
    async with BlobServiceClient.from_connection_string(connection_string, retry_total=0) as blobs:
        container = blobs.get_container_client(archive)
        while loop.time() - started < plan.timeout:
            now = loop.time()
            window = state.window.report()
            full = window["acceptedInWindow"] >= plan.squeeze_when_full * plan.budget
            if not report.squeezed and (full or now >= squeeze_at):
                state.rate_limit = RateLimit(requests_per_minute=plan.squeeze_limit)
                report.squeezed, report.squeezed_at, report.squeezed_full = True, now - started, full
                release_at = now + plan.squeeze_seconds
                _log.info(
                    "squeeze at %.0f s (%d in the window): the service allows %d a minute",
                    *(now - started, window["acceptedInWindow"], plan.squeeze_limit),
                )
            if (
                report.squeezed
                and now >= release_at
                and state.rate_limit.requests_per_minute != plan.service_limit
            ):
                state.rate_limit = RateLimit(requests_per_minute=plan.service_limit)
                _log.info("released: the service allows %d a minute again", plan.service_limit)
            for worker in workers:
                longest = worker.status().get("longestInvocationMs", 0) / 1000
                report.longest_invocation = max(report.longest_invocation, longest)
            report.totals.append((now - started, window["accepted"] + window["refused"], window["refused"]))
            report.timeline.append((now - started, window["acceptedInWindow"] + window["refusedInWindow"]))
            if report.squeezed and now >= release_at and await _manifests(container) >= plan.jobs:
                return
            await asyncio.sleep(_CHECK_SECONDS)


async def _manifests(container: object) -> int:
    try:
        return len([b async for b in container.list_blobs() if b.name.endswith("/manifest.json")])  # type: ignore[attr-defined]
    except (ResourceNotFoundError, AzureError):
        return 0


async def _read_manifests(connection_string: str, archive: str, report: ThrottleReport) -> None:
    async with BlobServiceClient.from_connection_string(connection_string) as blobs:
        container = blobs.get_container_client(archive)
        with contextlib.suppress(ResourceNotFoundError):
            async for blob in container.list_blobs():
                if not blob.name.endswith("/manifest.json"):
                    continue
                manifest = json.loads(await (await container.download_blob(blob.name)).readall())
                report.statuses[manifest["status"]] += 1
                if manifest.get("lastUpdatedDateTime") and manifest.get("archivedAt"):
                    lag = _time(manifest["archivedAt"]) - _time(manifest["lastUpdatedDateTime"])
                    report.lags.append(max(0.0, lag))


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def _submit(http: aiohttp.ClientSession, emulator: RunningEmulator, plan: ThrottlePlan) -> list[str]:
    """Submit the jobs in equal groups, each group with its own running time."""
    groups = len(plan.running_seconds)
    documents = [{"id": str(n), "language": "en", "text": _TEXT} for n in range(3)]
    gate = asyncio.Semaphore(16)
    job_ids: list[str] = []
    for index, running in enumerate(plan.running_seconds):
        timing = {"notStartedSeconds": 0, "runningSeconds": running}
        async with http.put(f"{emulator.base_url}/_emulator/timing", json=timing) as response:
            response.raise_for_status()
        count = plan.jobs // groups + (1 if index < plan.jobs % groups else 0)

        async def one() -> str:
            async with gate:
                job = await submit_job(http, emulator.base_url, key=_KEY, documents=documents, tasks=_TASKS)
            return job.job_id

        job_ids += await asyncio.gather(*(one() for _ in range(count)))
    return job_ids


async def _main(plan: ThrottlePlan, keep: bool) -> int:
    with run_folder("bench-throttle-", keep=keep) as workdir:
        report = await run_bench_throttle(plan, workdir=workdir)
        if keep:
            print(f"kept: {workdir}")
    print(report.summary())
    return 0 if not report.failures() else 1


def main() -> int:
    defaults = ThrottlePlan()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=defaults.jobs)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument(
        "--budget", type=int, default=defaults.budget, help="LANGUAGE_MAX_REQUESTS_PER_MINUTE"
    )
    parser.add_argument("--service-limit", type=int, default=defaults.service_limit)
    parser.add_argument("--squeeze-limit", type=int, default=defaults.squeeze_limit)
    parser.add_argument(
        "--squeeze-after",
        type=float,
        default=defaults.squeeze_after,
        help="seconds: squeeze then if the window has not filled by then",
    )
    parser.add_argument("--squeeze-seconds", type=float, default=defaults.squeeze_seconds)
    parser.add_argument("--keep", action="store_true", help="keep Azurite's data and the workers' logs")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    _log.setLevel(logging.INFO if args.verbose else logging.WARNING)
    plan = ThrottlePlan(
        jobs=args.jobs,
        workers=args.workers,
        budget=args.budget,
        service_limit=args.service_limit,
        squeeze_limit=args.squeeze_limit,
        squeeze_after=args.squeeze_after,
        squeeze_seconds=args.squeeze_seconds,
    )
    return asyncio.run(_main(plan, args.keep))


if __name__ == "__main__":
    sys.exit(main())
