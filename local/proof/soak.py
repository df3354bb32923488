"""``make soak``: 5,000 jobs through one worker process; its memory must level off.

One ``local.host.worker`` process (the real ``function_app`` through the local queue runner) takes
every job from the queue, on Azurite and the Language emulator (no faults: this measures memory,
not recovery). At every 1,000 jobs it prints the worker's resident memory now and its peak so far.
It passes when the peak grew by at most ``--max-growth`` (default 10 %) over the second half of the
run: a leak per job would keep it climbing.

    python -m local.proof.soak --jobs 5000 --every 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path

import aiohttp
from azure.storage.queue.aio import QueueClient

from local.emulator import EmulatorConfig, serve
from local.host.azurite import Azurite
from local.host.process import WorkerProcess, run_folder
from local.upstream import enqueue, submit_job

_KEY = "soak-key-0123456789abcdef"
_TEXT = "Contoso Ltd. shipped to Seattle and the Pacific Northwest on March 15, 2025."
_TASKS = (
    {"kind": "EntityRecognition", "taskName": "prebuilt"},
    {
        "kind": "CustomEntityRecognition",
        "taskName": "regions",
        "parameters": {"projectName": "MyProject", "deploymentName": "MyDeployment"},
    },
)
_POLL_SECONDS = 0.2


async def soak(
    *, jobs: int, every: int, documents: int, time_limit: float, workdir: Path
) -> list[tuple[int, int, int]]:
    """Run the soak; (jobs done, RSS KiB, peak RSS KiB) at every ``every`` jobs."""
    config = EmulatorConfig(api_key=_KEY, not_started_seconds=0, running_seconds=0)
    async with Azurite.start() as azurite, serve(config) as emulator, aiohttp.ClientSession() as http:
        environ = {
            "LANGUAGE_ENDPOINT": emulator.base_url,
            "LANGUAGE_API_KEY": _KEY,
            "AzureWebJobsStorage": azurite.connection_string,
            "ARCHIVE_CONTAINER": "soak-archive",
            "JOBS_QUEUE": "soak-jobs",
            "SWEEP_SCHEDULE": "0 0 0 1 1 *",
            "LANGUAGE_MAX_REQUESTS_PER_MINUTE": "100000",  # the most: throughput is measured
        }
        gate = asyncio.Semaphore(16)
        docs = [{"id": str(n), "text": _TEXT} for n in range(documents)]
        async with QueueClient.from_connection_string(
            azurite.connection_string, environ["JOBS_QUEUE"]
        ) as queue:
            await queue.create_queue()

            async def one() -> None:
                async with gate:
                    job = await submit_job(http, emulator.base_url, key=_KEY, documents=docs, tasks=_TASKS)
                    await enqueue(queue, json.dumps({"jobId": job.job_id}))

            await asyncio.gather(*(one() for _ in range(jobs)))
        worker = WorkerProcess(name="soak-worker", workdir=workdir, environ=environ, timer=False, lease=600)
        samples: list[tuple[int, int, int]] = []
        await worker.start()
        try:
            deadline = time.monotonic() + time_limit
            mark = every
            while mark <= jobs:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"soak: {samples[-1][0] if samples else 0} of {jobs} jobs in {time_limit:g} s"
                    )
                status = worker.status()
                if status.get("succeeded", 0) >= mark:
                    samples.append((status["succeeded"], status["rssKiB"], status["peakRssKiB"]))
                    print(
                        f"  {status['succeeded']:>6} jobs: RSS {status['rssKiB'] / 1024:6.1f} MiB, "
                        f"peak {status['peakRssKiB'] / 1024:6.1f} MiB",
                        flush=True,
                    )
                    mark += every
                await asyncio.sleep(_POLL_SECONDS)
        finally:
            await worker.stop()
    return samples


def levels_off(samples: list[tuple[int, int, int]], max_growth: float) -> bool:
    """Peak memory over the second half of the run grew by at most ``max_growth`` (a share)."""
    half = samples[(len(samples) - 1) // 2][2]
    return samples[-1][2] <= half * (1 + max_growth)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--every", type=int, default=1000, help="report memory every N jobs")
    parser.add_argument("--documents", type=int, default=5, help="documents per job")
    parser.add_argument("--max-growth", type=float, default=0.10, help="allowed peak growth, second half")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"soak: {args.jobs} jobs of {args.documents} documents x 2 tasks through one worker process")
    started = time.monotonic()
    with run_folder("soak-", keep=False) as workdir:
        samples = asyncio.run(
            soak(
                jobs=args.jobs,
                every=args.every,
                documents=args.documents,
                time_limit=args.timeout,
                workdir=workdir,
            )
        )
    ok = levels_off(samples, args.max_growth)
    print(
        f"soak: {samples[-1][0]} jobs in {time.monotonic() - started:.0f} s; peak memory "
        f"{'levels off' if ok else 'keeps growing'} (at most +{args.max_growth:.0%} over the second half)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
