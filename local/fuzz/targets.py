"""The fuzz targets: each takes any bytes and raises nothing but an ``AssertionError`` for a
broken invariant (an exception other than the parser's own declared error is one).

- ``answers``: a page body is a ``JobPage`` or ``MalformedJob``; a page merges with itself (or
  ``MalformedJob``); its task blobs and manifest render as strict UTF-8 JSON (no NaN, no lone
  surrogate) under safe blob names.
- ``messages``: a message body is a ``JobMessage`` or ``InvalidMessage``, and a message the app
  accepted parses back to itself from what the app would write for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from shared.archive import JobRecord, render_manifest, render_tasks
from shared.jobs import MalformedJob, merge_task_items, parse_answer
from shared.messages import InvalidMessage, parse_body, parse_message
from shared.settings import load_settings

__all__ = ["TARGETS", "check_answer", "check_message", "seeds"]

JOB_ID: Final = "5b0f0e0a-52f3-4a44-9c43-5e8b2a2f1c11"
ENDPOINT: Final = "https://myres.cognitiveservices.azure.com"
_SETTINGS: Final = load_settings(
    {"LANGUAGE_ENDPOINT": ENDPOINT, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
)
_SAFE_BLOB: Final = re.compile(rf"{JOB_ID}/tasks/[0-9]{{2,}}-[A-Za-z0-9._-]{{1,100}}\.json")
_NOW: Final = datetime(2025, 1, 1, tzinfo=UTC)


def _strict(data: bytes) -> None:
    """``data`` is UTF-8 JSON a strict reader takes (no NaN or Infinity literal)."""
    json.loads(data.decode("utf-8"), parse_constant=_no_constant)


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} written into the archive")


def check_answer(data: bytes) -> None:
    try:
        page = parse_answer(data, job_id=JOB_ID)
        items = merge_task_items([page, page])
    except MalformedJob:
        return
    tasks = render_tasks(JOB_ID, items)
    record = JobRecord(
        job_id=JOB_ID,
        status=page.status,
        display_name=page.display_name,
        created=page.created,
        last_updated=page.last_updated,
        expires=page.expires,
        api_version="2024-11-01",
        errors=page.errors,
        correlation_id=None,
        metadata={},
    )
    for task in tasks:
        assert _SAFE_BLOB.fullmatch(task.name), task.name
        _strict(task.data)
    _strict(render_manifest(record, tasks, now=_NOW))


def check_message(data: bytes) -> None:
    try:
        message = parse_body(data, settings=_SETTINGS)
    except InvalidMessage:
        return
    assert parse_message(message.to_json(), settings=_SETTINGS) == message


TARGETS: Final[dict[str, Callable[[bytes], None]]] = {"answers": check_answer, "messages": check_message}


def seeds(target: str, examples: Path | None = None) -> list[bytes]:
    """A starting corpus: real answers (the spec's examples when ``examples`` holds them) or the
    message forms the app accepts."""
    if target == "messages":
        url = f"{ENDPOINT}/language/analyze-text/jobs/{JOB_ID}?api-version=2024-11-01"
        bodies: list[object] = [
            {"jobId": JOB_ID},
            {"operationLocation": url, "displayName": "d", "correlationId": "c", "metadata": {"k": "v"}},
            {"jobId": JOB_ID, "_poll": {"attempt": 2, "firstSeenAt": "2025-01-01T00:00:00Z", "unusable": 1}},
        ]
        return [JOB_ID.encode(), url.encode(), *(json.dumps(body).encode() for body in bodies)]
    found = sorted(examples.glob("*StatusRequest.json")) if examples is not None and examples.is_dir() else []
    pages = [json.loads(path.read_text("utf-8"))["responses"]["200"]["body"] for path in found]
    item = {
        "kind": "EntityRecognitionLROResults",
        "taskName": "t",
        "status": "succeeded",
        "results": {"documents": [{"id": "1", "entities": [{"text": "x"}]}], "errors": []},
    }
    minimal = {
        "jobId": JOB_ID,
        "status": "succeeded",
        "createdDateTime": "2025-01-01T00:00:00Z",
        "expirationDateTime": "2025-01-02T00:00:00Z",
        "tasks": {"items": [item]},
        "errors": [],
    }
    return [json.dumps({**page, "jobId": JOB_ID}).encode() for page in [minimal, *pages]]
