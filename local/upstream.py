"""What an upstream system does: submit an analyze-text job and tell the archiver about it.

Used by the demo, the benchmark and the tests, against the emulator or a real Language resource. As a
command, the submit helper of the local playground (``make up``)::

    python -m local.upstream --env-file .playground/env --jobs 5

submits N jobs made of the sample documents (``local/samples/demo_jobs.json``) with the key in
``LANGUAGE_API_KEY``, enqueues one message per job on ``JOBS_QUEUE``, and prints each job id.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue.aio import QueueClient

__all__ = ["SAMPLES", "SubmittedJob", "enqueue", "enqueue_all", "job_message", "main", "submit_job"]

SAMPLES: Final = Path(__file__).with_name("samples") / "demo_jobs.json"
_MAX_JOBS: Final = 1000


@dataclass(frozen=True, slots=True)
class SubmittedJob:
    job_id: str
    operation_location: str


async def submit_job(
    http: aiohttp.ClientSession,
    endpoint: str,
    *,
    key: str,
    documents: Sequence[Mapping[str, Any]],
    tasks: Sequence[Mapping[str, Any]],
    display_name: str | None = None,
    api_version: str = "2024-11-01",
) -> SubmittedJob:
    """``POST {endpoint}/language/analyze-text/jobs``; the job id is the operation-location's last segment."""
    body: dict[str, Any] = {"analysisInput": {"documents": list(documents)}, "tasks": list(tasks)}
    if display_name is not None:
        body["displayName"] = display_name
    async with http.post(
        f"{endpoint}/language/analyze-text/jobs",
        params={"api-version": api_version},
        json=body,
        headers={"Ocp-Apim-Subscription-Key": key},
    ) as response:
        if response.status != 202:
            raise RuntimeError(f"submit failed: HTTP {response.status} {await response.text()}")
        location = response.headers["operation-location"]
    return SubmittedJob(job_id=location.split("/jobs/")[1].split("?")[0], operation_location=location)


async def enqueue(queue: QueueClient, text: str) -> None:
    """Put one message on the jobs queue, base64-encoded as the Functions host reads it."""
    await queue.send_message(base64.b64encode(text.encode("utf-8")).decode("ascii"))


async def enqueue_all(
    connection_string: str, queue_name: str, texts: Iterable[str], *, concurrency: int = 16
) -> None:
    """Put every text on the queue (created if missing), ``concurrency`` sends at a time."""
    gate = asyncio.Semaphore(concurrency)
    async with QueueClient.from_connection_string(connection_string, queue_name) as queue:
        with contextlib.suppress(ResourceExistsError):
            await queue.create_queue()

        async def send(text: str) -> None:
            async with gate:
                await enqueue(queue, text)

        await asyncio.gather(*(send(text) for text in texts))


def job_message(job_id: str, **fields: Any) -> str:
    """The public message schema: ``{"jobId", ...optional fields}``."""
    return json.dumps({"jobId": job_id, **{k: v for k, v in fields.items() if v is not None}})


async def submit_samples(environ: Mapping[str, str], *, jobs: int) -> list[str]:
    """Submit ``jobs`` jobs of the sample documents (cycling through them) and enqueue each; their ids."""
    from shared.settings import load_settings  # noqa: PLC0415 - only the command needs the app's settings

    settings = load_settings(environ)
    if settings.language_api_key is None or settings.storage.connection_string is None:
        raise SystemExit(
            "error: the submit helper needs LANGUAGE_API_KEY and a storage connection string "
            "(AzureWebJobsStorage): use the env file that make up printed"
        )
    samples = json.loads(SAMPLES.read_text(encoding="utf-8"))["jobs"]
    submitted = []
    async with aiohttp.ClientSession() as http:
        for index in range(jobs):
            sample = samples[index % len(samples)]
            done = await submit_job(
                http,
                settings.language_endpoint,
                key=settings.language_api_key,
                documents=sample["documents"],
                tasks=sample["tasks"],
                display_name=f"{sample['displayName']} #{index + 1}",
                api_version=settings.language_api_version,
            )
            submitted.append(
                job_message(
                    done.job_id, displayName=sample["displayName"], correlationId=f"playground-{index + 1}"
                )
            )
            print(done.job_id, flush=True)
    await enqueue_all(settings.storage.connection_string, settings.jobs_queue, submitted)
    print(f"submitted {jobs} jobs and enqueued them on {settings.jobs_queue!r}", file=sys.stderr)
    return [json.loads(text)["jobId"] for text in submitted]


def main(argv: Sequence[str] | None = None) -> int:
    from cli.envfile import EnvFileError, read_env_file  # noqa: PLC0415 - the command's own needs
    from shared.settings import SettingsError  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="python -m local.upstream",
        description="Submit N sample analyze-text jobs and enqueue them, as an upstream system does.",
    )
    parser.add_argument(
        "--env-file", type=Path, metavar="FILE", help="settings (make up writes .playground/env)"
    )
    parser.add_argument(
        "--jobs", type=int, default=3, metavar="N", help=f"how many jobs (1-{_MAX_JOBS}, default 3)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.jobs <= _MAX_JOBS:
        parser.error(f"--jobs must be between 1 and {_MAX_JOBS}")
    environ = dict(os.environ)
    try:
        if args.env_file is not None:
            environ.update(read_env_file(args.env_file))
        asyncio.run(submit_samples(environ, jobs=args.jobs))
    except (EnvFileError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except aiohttp.ClientError as exc:
        print(f"error: the Language endpoint cannot be reached ({exc}): is make up running?", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
