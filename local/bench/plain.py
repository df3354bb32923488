"""The plain function: the same work as the app, written the way a typical queue-triggered function is.

What an Azure Functions developer writes first, with the card's packages and nothing of the app's:
one aiohttp session and one ``BlobServiceClient`` per process, a queue
trigger that reads ``jobId``, GETs every page of the job (following ``nextLink``), uploads one blob
per task at once and then the manifest. No checks of the answer, no ledger, no budget, no
telemetry, no events. The app is measured against it: what its features cost when they are idle.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import azure.functions as func
from azure.core.pipeline.transport import AioHttpTransport
from azure.storage.blob.aio import BlobServiceClient

__all__ = ["plain_app"]

_API_VERSION = "2024-11-01"


@asynccontextmanager
async def plain_app(
    *, http: aiohttp.ClientSession, language_url: str, key: str, connection_string: str, container: str
) -> AsyncIterator[func.FunctionApp]:
    """A function app with one queue-triggered function on ``%JOBS_QUEUE%``; its clients live for
    the block, as a worker process's would. ``http`` serves the Language GETs and the SDK's
    transport alike (so that the benchmark counts every request)."""
    transport = AioHttpTransport(session=http, session_owner=False)
    async with BlobServiceClient.from_connection_string(connection_string, transport=transport) as blobs:
        archive = blobs.get_container_client(container)
        app = func.FunctionApp()

        @app.function_name("plain_job")
        @app.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%", connection="AzureWebJobsStorage")
        async def plain_job(msg: func.QueueMessage) -> None:
            job_id = json.loads(msg.get_body())["jobId"]
            url: str | None = f"{language_url}/language/analyze-text/jobs/{job_id}?api-version={_API_VERSION}"
            tasks: list[dict[str, Any]] = []
            status = None
            while url is not None:
                async with http.get(url, headers={"Ocp-Apim-Subscription-Key": key}) as response:
                    response.raise_for_status()
                    page = await response.json()
                for index, item in enumerate(page["tasks"]["items"]):
                    if index == len(tasks):
                        tasks.append(item)
                    else:
                        tasks[index]["results"]["documents"] += item["results"]["documents"]
                        tasks[index]["results"]["errors"] += item["results"]["errors"]
                url, status = page.get("nextLink"), page["status"]
            blobs_ = {
                f"{job_id}/tasks/{index:02d}-{task['kind']}.json": json.dumps(task).encode()
                for index, task in enumerate(tasks)
            }
            await asyncio.gather(
                *(archive.upload_blob(name, data, overwrite=True) for name, data in blobs_.items())
            )
            manifest = {
                "jobId": job_id,
                "status": status,
                "tasks": [
                    {"blob": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                    for name, data in blobs_.items()
                ],
            }
            await archive.upload_blob(f"{job_id}/manifest.json", json.dumps(manifest).encode())

        yield app
