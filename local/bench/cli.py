"""``make bench-cli``: the operator command line over a large archive, measured on this machine.

Archives N jobs in Azurite with the app's own archive writer (2 task blobs of 10 documents each
and a manifest per job, written with bounded concurrency), then runs ``python -m cli verify --all``
and ``python -m cli export`` as child processes, as an operator would, and reports jobs per second
and each child's peak RSS. Two archive sizes show that memory does not grow with the archive:
the command line streams listing pages through bounded concurrency.

Everything runs on loopback; the numbers are for comparison between changes, not for Azure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.storage.blob.aio import BlobServiceClient

from local.host.azurite import Azurite
from shared.archive import ArchiveWriter, JobRecord, render_tasks
from shared.streams import each, ordered_map

REPO_ROOT = Path(__file__).resolve().parents[2]
_WRITE_CONCURRENCY = 64


def task_items(documents: int) -> list[dict[str, Any]]:
    """Two task items as the service serves them: prebuilt NER (3 entities a document) and custom NER."""

    def entity(text: str, category: str, offset: int) -> dict[str, Any]:
        return {
            "text": text,
            "category": category,
            "offset": offset,
            "length": len(text),
            "confidenceScore": 0.97,
        }

    ner = [
        entity("Contoso Ltd.", "Organization", 0),
        entity("Seattle", "Location", 24),
        entity("Zürich", "Location", 36),
    ]
    return [
        {
            "kind": kind,
            "taskName": name,
            "status": "succeeded",
            "lastUpdateDateTime": "2026-11-30T12:00:00Z",
            "results": {
                "documents": [{"id": str(n), "entities": entities, "warnings": []} for n in range(documents)],
                "errors": [],
                **extra,
            },
        }
        for kind, name, entities, extra in (
            ("EntityRecognitionLROResults", "prebuilt", ner, {"modelVersion": "2024-04-15"}),
            (
                "CustomEntityRecognitionLROResults",
                "regions",
                [entity("Pacific Northwest", "Region", 50)],
                {"projectName": "MyProject", "deploymentName": "MyDeployment"},
            ),
        )
    ]


async def write_archive(blobs: BlobServiceClient, container: str, jobs: int, documents: int) -> float:
    """``jobs`` archived jobs in ``container`` through the app's writer; returns the seconds it took."""
    await blobs.create_container(container)
    writer = ArchiveWriter(container=blobs.get_container_client(container))
    items = task_items(documents)
    now = datetime.now(UTC)

    async def one(_: int) -> None:
        job_id = str(uuid.uuid4())
        record = JobRecord(
            job_id=job_id,
            status="succeeded",
            display_name=None,
            created=None,
            last_updated=None,
            expires=None,
            api_version="2024-11-01",
            errors=[],
            correlation_id=None,
            metadata={},
        )
        await writer.commit(record, render_tasks(job_id, items), now=now)

    started = time.perf_counter()
    async for _ in ordered_map(each(range(jobs)), one, concurrency=_WRITE_CONCURRENCY):
        pass
    return time.perf_counter() - started


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    status: int
    lines: int


def run_cli(argv: Sequence[str], environ: Mapping[str, str]) -> ChildRun:
    """``python -m cli ...`` as a child process: wall time, its own peak RSS (wait4), stdout lines."""
    started = time.perf_counter()
    with subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "cli", *argv],
        cwd=REPO_ROOT,
        env={**os.environ, **environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as child:
        assert child.stdout is not None
        lines = sum(1 for _ in child.stdout)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    return ChildRun(seconds, cpu, usage.ru_maxrss / 1024, child.returncode, lines)  # ru_maxrss: KiB on Linux


async def bench(sizes: Sequence[int], documents: int) -> None:
    async with (
        Azurite.start() as azurite,
        BlobServiceClient.from_connection_string(azurite.connection_string) as blobs,
    ):
        for jobs in sizes:
            container = f"bench-{jobs}-{uuid.uuid4().hex[:6]}"
            wrote = await write_archive(blobs, container, jobs, documents)
            print(
                f"archive: {jobs} jobs x 2 task blobs ({documents} documents each) written in {wrote:.1f} s"
            )
            environ = {
                "LANGUAGE_ENDPOINT": "https://bench.cognitiveservices.azure.com",
                "AzureWebJobsStorage": azurite.connection_string,
                "ARCHIVE_CONTAINER": container,
            }
            for name, argv in (("verify --all", ["verify", "--all", "--json"]), ("export", ["export"])):
                ran = await asyncio.to_thread(run_cli, argv, environ)
                if ran.status != 0:
                    raise RuntimeError(f"python -m cli {name} exited {ran.status}")
                print(
                    f"  {name:<13} {jobs} jobs in {ran.seconds:5.1f} s = {jobs / ran.seconds:6.0f} jobs/s, "
                    f"{ran.lines} lines out, CPU {ran.cpu_seconds:.1f} s, peak RSS {ran.peak_rss_mib:.0f} MiB"
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, nargs="+", default=[2000, 10000], help="archive sizes to measure")
    parser.add_argument("--documents", type=int, default=10, help="documents per task")
    args = parser.parse_args()
    asyncio.run(bench(args.jobs, args.documents))
    return 0


if __name__ == "__main__":
    sys.exit(main())
