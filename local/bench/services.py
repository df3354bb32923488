"""The services a benchmark measures against, each in a process of its own: the Language emulator and
the latency proxies; and the jobs submitted to the emulator before the rounds."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from local.bench.instruments import Scenario
from local.emulator.cli import READY_PREFIX
from local.upstream import submit_job

__all__ = ["KEY", "REPO_ROOT", "emulator_process", "latency_proxies", "submit_jobs"]

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = "bench-key"
_STARTUP_TIMEOUT = 30.0


@contextlib.asynccontextmanager
async def _child(*args: str, ready: str) -> AsyncIterator[tuple[str, int]]:
    """``python -m <args>`` as a child process; yields the first word after ``ready`` on its stdout
    and the child's pid."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), _STARTUP_TIMEOUT)).decode()
        if not line.startswith(ready):
            raise RuntimeError(f"python -m {args[0]} did not start: {line!r}")
        yield line.removeprefix(ready).split()[0], process.pid
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


def emulator_process() -> contextlib.AbstractAsyncContextManager[tuple[str, int]]:
    """The Language emulator in a process of its own; yields its base URL and pid."""
    return _child(
        "local.emulator",
        *("--api-key", KEY, "--not-started-seconds", "0", "--running-seconds", "0"),
        ready=READY_PREFIX + " ",
    )


@contextlib.asynccontextmanager
async def latency_proxies(
    direct: Scenario, *, language_delay: float, storage_delay: float
) -> AsyncIterator[Scenario]:
    """The same services behind ``local.bench.latency`` proxies, each in a process of its own: the delay
    they add costs the measured process nothing, as a real network would."""

    def proxy(url: str, delay: float) -> contextlib.AbstractAsyncContextManager[tuple[str, int]]:
        upstream = str(urlsplit(url).port)
        return _child(
            "local.bench.latency",
            "--upstream-port",
            upstream,
            "--delay-ms",
            f"{delay * 1000:g}",
            ready="latency proxy: ",
        )

    def via(url: str, child: tuple[str, int]) -> str:
        return urlsplit(url)._replace(netloc=child[0]).geturl()

    async with (
        proxy(direct.language_url, language_delay) as language,
        proxy(direct.blob_url, storage_delay) as blob,
        proxy(direct.queue_url, storage_delay) as queue,
    ):
        yield Scenario(
            name="latency",
            language_url=via(direct.language_url, language),
            blob_url=via(direct.blob_url, blob),
            queue_url=via(direct.queue_url, queue),
        )


async def submit_jobs(base_url: str, jobs: int, documents: int) -> list[str]:
    text = "Contoso Ltd. shipped to Seattle and the Pacific Northwest on March 15, 2025."
    tasks: list[dict[str, Any]] = [
        {"kind": "EntityRecognition", "taskName": "prebuilt"},
        {
            "kind": "CustomEntityRecognition",
            "taskName": "regions",
            "parameters": {"projectName": "MyProject", "deploymentName": "MyDeployment"},
        },
    ]
    docs = [{"id": str(n), "text": text} for n in range(documents)]
    gate = asyncio.Semaphore(16)

    async def one(http: aiohttp.ClientSession) -> str:
        async with gate:
            return (await submit_job(http, base_url, key=KEY, documents=docs, tasks=tasks)).job_id

    async with aiohttp.ClientSession() as http:
        return list(await asyncio.gather(*(one(http) for _ in range(jobs))))
