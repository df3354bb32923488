"""``make demo``: the whole pipeline on this machine, end to end, with nothing mocked.

Starts Azurite and the Language emulator, submits the sample documents as analyze-text jobs (as
an upstream system would), puts one message per job on the jobs queue (in each accepted form,
plus one malformed message), runs the real ``function_app`` through the local queue runner until
every job is archived, prints what was archived and where and the archive events it announced, and
stops what it started.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient
from azure.storage.queue.aio import QueueClient

import cli
import function_app
from local.emulator import EmulatorConfig, serve
from local.host.azurite import Azurite
from local.host.runner import QueueRunner
from local.upstream import enqueue, job_message, submit_job
from shared.runtime import close_process_runtime

SAMPLES = Path(__file__).with_name("samples") / "demo_jobs.json"
API_VERSION = "2024-11-01"
TIMEOUT_SECONDS = 180.0


async def main() -> int:
    # The app's own one-line outcomes show progress; the SDKs' request logs would drown them.
    logging.basicConfig(level=logging.INFO, format="  %(levelname)s %(name)s: %(message)s")
    for noisy in ("azure", "local.emulator"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    started = time.monotonic()
    jobs = json.loads(SAMPLES.read_text(encoding="utf-8"))["jobs"]
    print("Starting Azurite (storage) and the Language emulator ...", flush=True)
    async with Azurite.start() as azurite:
        key = secrets.token_hex(16)
        config = EmulatorConfig(api_key=key, not_started_seconds=2.0, running_seconds=4.0)
        async with serve(config) as emulator:
            environ = {
                "LANGUAGE_ENDPOINT": emulator.base_url,
                "LANGUAGE_API_KEY": key,
                "LANGUAGE_API_VERSION": API_VERSION,
                "AzureWebJobsStorage": azurite.connection_string,
                "ARCHIVE_CONTAINER": "entity-archive",
                "JOBS_QUEUE": "language-jobs",
                "EVENTS_QUEUE": "archive-events",
                "POLL_INITIAL_DELAY_SECONDS": "1",
                "POLL_MAX_DELAY_SECONDS": "4",
                "SWEEP_SCHEDULE": "*/15 * * * * *",
                "SWEEP_GRACE_SECONDS": "30",
            }
            os.environ.update(environ)  # the app reads its settings from the environment
            print(f"  Azurite blob endpoint: {azurite.blob_endpoint}")
            print(f"  Language endpoint:     {emulator.base_url}\n")

            submitted = await _submit_all(emulator.base_url, key, jobs)
            await _enqueue(azurite.connection_string, environ["JOBS_QUEUE"], submitted)

            archive = ContainerClient.from_connection_string(
                azurite.connection_string, environ["ARCHIVE_CONTAINER"]
            )
            async with (
                archive,
                QueueRunner(
                    app=function_app.app, connection_string=azurite.connection_string, environ=environ
                ) as runner,
            ):

                async def all_archived() -> bool:
                    return all([await _exists(archive, f"{job_id}/manifest.json") for job_id, _ in submitted])

                print(
                    "Running function_app through the local queue runner until all "
                    f"{len(submitted)} jobs are archived ..."
                )
                await runner.run_until(all_archived, timeout=TIMEOUT_SECONDS)
                await _report(archive, azurite.blob_endpoint, environ, submitted, runner)
            await _print_events(azurite.connection_string, environ["EVENTS_QUEUE"])
            await close_process_runtime()
            await _operate(environ, [job_id for job_id, _ in submitted])
    print(f"\nStopped Azurite and the emulator. Demo finished in {time.monotonic() - started:.1f} s.")
    return 0


async def _submit_all(
    base_url: str, key: str, jobs: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """Submit every sample job, as an upstream system would; returns (jobId, sample) pairs."""
    submitted = []
    async with aiohttp.ClientSession() as http:
        for job in jobs:
            done = await submit_job(
                http,
                base_url,
                key=key,
                documents=job["documents"],
                tasks=job["tasks"],
                display_name=job["displayName"],
                api_version=API_VERSION,
            )
            submitted.append((done.job_id, {**job, "operationLocation": done.operation_location}))
            print(f"Submitted job {done.job_id}: {job['displayName']} ({len(job['documents'])} documents)")
    return submitted


async def _enqueue(
    connection_string: str, queue_name: str, submitted: list[tuple[str, dict[str, Any]]]
) -> None:
    """One message per job, in each accepted form, plus one that can never succeed."""
    async with QueueClient.from_connection_string(connection_string, queue_name) as queue:
        with contextlib.suppress(ResourceExistsError):
            await queue.create_queue()
        for job_id, job in submitted:
            form = job["message"]
            if form == "operationLocation":
                text = json.dumps({"operationLocation": job["operationLocation"]})
            elif form == "bare":
                text = job_id
            else:
                text = job_message(
                    job_id,
                    displayName=job["displayName"],
                    correlationId=job.get("correlationId"),
                    metadata=job.get("metadata"),
                )
            await enqueue(queue, text)
        await enqueue(queue, json.dumps({"jobId": "not-a-job-id"}))
    print(f"Enqueued {len(submitted)} job messages and 1 malformed one on '{queue_name}'.\n")


async def _exists(container: ContainerClient, name: str) -> bool:
    try:
        await container.get_blob_client(name).get_blob_properties()
    except ResourceNotFoundError:
        return False
    return True


async def _report(
    archive: ContainerClient,
    blob_endpoint: str,
    environ: Mapping[str, str],
    submitted: list[tuple[str, dict[str, Any]]],
    runner: QueueRunner,
) -> None:
    container = environ["ARCHIVE_CONTAINER"]
    print(f"\nArchived {len(submitted)} jobs in container '{container}' ({blob_endpoint}/{container}):")
    totals = {"documents": 0, "entities": 0, "blobs": 0}
    for job_id, job in submitted:
        manifest = json.loads(await (await archive.download_blob(f"{job_id}/manifest.json")).readall())
        documents = len(job["documents"])
        entities = sum(task["entityCount"] for task in manifest["tasks"])
        totals["documents"] += documents
        totals["entities"] += entities
        totals["blobs"] += len(manifest["tasks"]) + 1
        print(f'\n  {job_id}  status={manifest["status"]}  "{manifest["displayName"]}"')
        # Documents are counted per task below (a task may have failed some of them).
        print(f"    {entities} entities, {len(manifest['errors'])} job errors")
        for task in manifest["tasks"]:
            print(
                f"    {task['blob']}  ({task['status']}, {task['documentCount']} documents, "
                f"{task['entityCount']} entities, {task['errorCount']} document errors, "
                f"{task['bytes']} bytes)"
            )
        print(f"    {job_id}/manifest.json")
    print(
        f"\nTotal: {len(submitted)} jobs, {totals['documents']} documents, {totals['entities']} entities, "
        f"{totals['blobs']} blobs."
    )
    poison = QueueClient.from_connection_string(
        environ["AzureWebJobsStorage"], f"{environ['JOBS_QUEUE']}-poison"
    )
    async with poison:
        try:
            parked = [
                json.loads(base64.b64decode(m.content)) for m in await poison.peek_messages(max_messages=32)
            ]
        except ResourceNotFoundError:
            parked = []
    for item in parked:
        print(
            f"Poison queue '{environ['JOBS_QUEUE']}-poison': {item['reason']}  (message: {item['message']})"
        )
    stats = runner.stats
    print(f"Queue runner: {stats}")


async def _print_events(connection_string: str, queue_name: str) -> None:
    """What downstream automation received: one CloudEvent per archived job (peeked, left in place)."""
    async with QueueClient.from_connection_string(connection_string, queue_name) as queue:
        try:
            peeked = await queue.peek_messages(max_messages=32)
        except ResourceNotFoundError:
            peeked = []
    print(f"\nArchive events on '{queue_name}' ({len(peeked)}; base64 of this JSON on the queue):")
    for message in peeked:
        event = json.loads(base64.b64decode(message.content))
        data = event["data"]
        print(
            f"  {event['type']} id={event['id']} time={event['time']} status={data['status']} "
            f"tasks={data['taskCount']} entities={data['entityCount']} correlationId={data['correlationId']}"
        )
    if peeked:
        first = json.loads(base64.b64decode(peeked[0].content))
        print("\n  The first one in full:")
        print(
            "\n".join(f"    {line}" for line in json.dumps(first, indent=2, ensure_ascii=False).splitlines())
        )


async def _operate(environ: Mapping[str, str], job_ids: list[str]) -> None:
    """The morning after: the operator's command line (its own code, in-process) on this archive."""
    export = Path(".demo") / "entities.csv"
    export.parent.mkdir(exist_ok=True)
    print("\nThe operator's command line on this archive:")
    for argv in (
        ["status", *job_ids],
        ["verify", "--all"],
        ["replay-poison", "--dry-run"],
        ["export", "--format", "csv", "-o", str(export)],
        ["announce", "--json", job_ids[0]],
    ):
        print(f"\n$ python -m cli {' '.join(argv)}", flush=True)
        status = await cli.main(argv, environ=environ)
        print(f"(exit status {status})")
    lines = export.read_text(encoding="utf-8").splitlines()
    print(f"\n$ head -n 6 {export}    # {len(lines) - 1} entity rows in all")
    print("\n".join(lines[:6]))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
