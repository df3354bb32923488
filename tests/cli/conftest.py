"""The command line against a per-test app stack on real Azurite (and the emulator where a test
needs the real poll function): archives are written with the app's own archive writer."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError

from cli import main
from shared.archive import ArchiveWriter, JobRecord, render_tasks
from tests.integration import conftest as integration
from tests.integration.conftest import Stack

# The per-test app stack of the integration tests, as fixtures of these tests too.
stack = integration.stack

NER = "EntityRecognitionLROResults"
CNER = "CustomEntityRecognitionLROResults"
ARCHIVED_AT = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def entity(text: str, category: str = "Location", **extra: Any) -> dict[str, Any]:
    return {
        "text": text,
        "category": category,
        "offset": 0,
        "length": len(text),
        "confidenceScore": 0.9,
        **extra,
    }


def ner_item(*texts: str) -> dict[str, Any]:
    """A prebuilt NER task item as the service serves it (subcategory on some entities)."""
    entities = [entity(t, "DateTime", subcategory="Date") if t[:1].isdigit() else entity(t) for t in texts]
    return {
        "kind": NER,
        "taskName": "people and places",
        "lastUpdateDateTime": "2026-11-30T11:59:00Z",
        "status": "succeeded",
        "results": {
            "documents": [{"id": "1", "entities": entities, "warnings": []}],
            "errors": [],
            "modelVersion": "2024-04-15",
        },
    }


def cner_item(*texts: str) -> dict[str, Any]:
    """A custom NER task item (no subcategory, as the service serves it)."""
    return {
        "kind": CNER,
        "taskName": "regions",
        "lastUpdateDateTime": "2026-11-30T11:59:00Z",
        "status": "succeeded",
        "results": {
            "documents": [{"id": "doc-1", "entities": [entity(t, "Region") for t in texts], "warnings": []}],
            "errors": [],
            "projectName": "MyProject",
            "deploymentName": "MyDeployment",
        },
    }


async def archive_job(
    stack: Stack,
    items: Sequence[Mapping[str, Any]] | None = None,
    *,
    status: str = "succeeded",
    correlation_id: str | None = None,
    archived_at: datetime = ARCHIVED_AT,
) -> str:
    """Archive one job with the app's own writer; returns its id."""
    job_id = str(uuid.uuid4())
    tasks = render_tasks(
        job_id, items if items is not None else [ner_item("Seattle"), cner_item("Pacific Northwest")]
    )
    record = JobRecord(
        job_id=job_id,
        status=status,
        display_name="cli test",
        created=None,
        last_updated=None,
        expires=None,
        api_version="2024-11-01",
        errors=[],
        correlation_id=correlation_id,
        metadata={},
    )
    writer = ArchiveWriter(container=stack.blobs.get_container_client(stack.settings.archive_container))
    await writer.commit(record, tasks, now=archived_at)
    return job_id


async def put_blob(stack: Stack, name: str, data: bytes, container: str | None = None) -> None:
    client = stack.blobs.get_blob_client(container or stack.settings.archive_container, name)
    await client.upload_blob(data, overwrite=True)


@dataclass(frozen=True)
class Ran:
    """One run of the command line: exit status and what it printed."""

    status: int
    out: str
    err: str

    def objects(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines()]


RunCli = Callable[..., Awaitable[Ran]]


async def provision(stack: Stack, environ: Mapping[str, str]) -> None:
    """The archive container and the queues that ``environ`` names, as the deployment creates them
    (the command line creates none)."""
    with contextlib.suppress(ResourceExistsError):
        await stack.blobs.create_container(environ.get("ARCHIVE_CONTAINER", "entity-archive"))
    for queue in (environ.get("JOBS_QUEUE", "language-jobs"), environ.get("EVENTS_QUEUE")):
        if queue:
            with contextlib.suppress(ResourceExistsError):
                await stack.queues.create_queue(queue)


@pytest.fixture
def run_cli(stack: Stack, capsys: pytest.CaptureFixture[str]) -> RunCli:
    """``await run_cli("status", "--json", job_id)``: the command line in-process, on the stack's
    settings, with the storage the deployment provisions (``provision``); ``provisioned=False`` runs
    it against whatever exists."""

    async def run(*argv: str, environ: Mapping[str, str] | None = None, provisioned: bool = True) -> Ran:
        environ = stack.environ if environ is None else environ
        if provisioned:
            await provision(stack, environ)
        capsys.readouterr()
        status = await main(list(argv), environ=environ)
        captured = capsys.readouterr()
        return Ran(status, captured.out, captured.err)

    return run
