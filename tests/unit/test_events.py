"""The archive event renderer (DESIGN.md, "Archive events"): a pure function of the manifest and the
archive container's URL; the bound of 48 KiB proven for every message the app accepts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.archive import JobRecord, render_manifest, render_tasks
from shared.events import EVENT_TYPE, MAX_EVENT_BYTES, EventUnrenderable, archive_event, render_event
from shared.messages import MAX_MESSAGE_BYTES, InvalidMessage, JobMessage, parse_message
from shared.settings import load_settings

JOB_ID = "c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18"
CONTAINER = "https://stabc.blob.core.windows.net/entity-archive"
ARCHIVED_AT = datetime(2026, 12, 6, 21, 30, 5, tzinfo=UTC)
SETTINGS = load_settings(
    {"LANGUAGE_ENDPOINT": "https://myres.cognitiveservices.azure.com", "AzureWebJobsStorage": "x=y"}
)
#: A container URL longer than any real one: a 253-character host and a 63-character container name.
LONGEST_CONTAINER = f"https://{'a' * 63}.{'b' * 63}.{'c' * 63}.{'d' * 57}.net/{'e' * 63}"


def item(
    entities: int, *, documents: int = 1, errors: int = 0, kind: str = "EntityRecognitionLROResults"
) -> dict[str, Any]:
    return {
        "kind": kind,
        "taskName": "t",
        "status": "succeeded",
        "results": {
            "documents": [{"id": str(d), "entities": [{"text": "x"}] * entities} for d in range(documents)],
            "errors": [{"id": "e", "error": {}}] * errors,
        },
    }


def manifest(
    items: Sequence[Mapping[str, Any]] = (),
    *,
    job_id: str = JOB_ID,
    status: str = "succeeded",
    display_name: str | None = "nightly run",
    correlation_id: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A manifest as the app writes it, read back as JSON."""
    record = JobRecord(
        job_id=job_id,
        status=status,
        display_name=display_name,
        created=None,
        last_updated=None,
        expires=None,
        api_version="2024-11-01",
        errors=[],
        correlation_id=correlation_id,
        metadata=metadata or {},
    )
    data = render_manifest(record, render_tasks(job_id, items), now=ARCHIVED_AT)
    body: dict[str, Any] = json.loads(data)
    return body


def test_event_is_a_cloudevent_in_structured_mode_as_design_shows() -> None:
    body = manifest([item(3, documents=2), item(1, errors=1)], correlation_id="case-7", metadata={"k": "v"})

    event = archive_event(body, container_url=CONTAINER)

    assert event == {
        "specversion": "1.0",
        "type": EVENT_TYPE,
        "source": CONTAINER,
        "subject": f"{JOB_ID}/manifest.json",
        "id": JOB_ID,
        "time": "2026-12-06T21:30:05Z",
        "datacontenttype": "application/json",
        "data": {
            "jobId": JOB_ID,
            "status": "succeeded",
            "archivedAt": "2026-12-06T21:30:05Z",
            "manifestUrl": f"{CONTAINER}/{JOB_ID}/manifest.json",
            "correlationId": "case-7",
            "metadata": {"k": "v"},
            "displayName": "nightly run",
            "taskCount": 2,
            "documentCount": 3,
            "entityCount": 7,
            "errorCount": 1,
        },
    }
    assert EVENT_TYPE == "LanguageJobArchiver.JobArchived"


def test_unknown_values_are_null_never_omitted() -> None:
    event = archive_event(manifest(display_name=None, status="notFound"), container_url=CONTAINER)

    assert event["data"]["correlationId"] is None
    assert event["data"]["displayName"] is None
    sent = json.loads(render_event(manifest(display_name=None), container_url=CONTAINER))["data"]
    assert sent["correlationId"] is None
    assert sent["displayName"] is None
    assert (event["data"]["taskCount"], event["data"]["entityCount"]) == (0, 0)


def test_the_same_manifest_renders_the_same_text_so_a_resend_is_identical() -> None:
    body = manifest([item(2)], metadata={"b": "2", "a": "1"})

    first = render_event(body, container_url=CONTAINER)
    again = render_event(json.loads(json.dumps(body)), container_url=CONTAINER)

    assert first == again
    assert json.loads(first) == archive_event(body, container_url=CONTAINER)


def test_source_drops_a_sas_token_and_a_trailing_slash() -> None:
    event = archive_event(manifest(), container_url=f"{CONTAINER}/?sv=2024&sig=secret")

    assert event["source"] == CONTAINER
    assert "secret" not in json.dumps(event)
    assert event["data"]["manifestUrl"] == f"{CONTAINER}/{JOB_ID}/manifest.json"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("jobId", None),
        ("status", 7),
        ("archivedAt", None),
        ("tasks", {}),
        ("tasks", ["not an object"]),
        ("tasks", [{"documentCount": -1, "entityCount": 0, "errorCount": 0}]),
        ("tasks", [{"documentCount": True, "entityCount": 0, "errorCount": 0}]),
        ("metadata", []),
        ("displayName", 3),
        ("correlationId", ["x"]),
    ],
)
def test_a_manifest_the_app_did_not_write_cannot_be_announced(field: str, value: Any) -> None:
    with pytest.raises(EventUnrenderable):
        archive_event({**manifest([item(1)]), field: value}, container_url=CONTAINER)


def test_a_manifest_with_text_that_is_not_utf8_cannot_be_announced() -> None:
    with pytest.raises(EventUnrenderable):
        render_event({**manifest(), "displayName": "\ud800"}, container_url=CONTAINER)


def test_a_service_display_name_too_long_for_the_queue_is_cut_to_fit() -> None:
    name = "Zürich 東京 " * 10_000  # the service echoes what the submitter sent: no limit of ours

    text = render_event(manifest(display_name=name), container_url=LONGEST_CONTAINER)

    assert len(text.encode("utf-8")) < MAX_EVENT_BYTES
    shown = json.loads(text)["data"]["displayName"]
    assert name.startswith(shown)
    assert len(shown) > 1000  # cut to what fits, not dropped


def test_message_fields_at_their_limits_fit_in_an_event() -> None:
    """The worst case: metadata that fills the message with characters escaped to six bytes each."""
    key_room = MAX_MESSAGE_BYTES // 64
    metadata = {f"k{n:02d}": "\x01" * (key_room // 6 - 10) for n in range(64)}
    body = {"jobId": JOB_ID, "displayName": "é" * 1024, "correlationId": "\x1f" * 1024, "metadata": metadata}
    text = json.dumps(body)
    while len(text.encode("utf-8")) > MAX_MESSAGE_BYTES:
        metadata.popitem()
        text = json.dumps(body)
    message = parse_message(text, settings=SETTINGS)

    event = render_event(from_message(message), container_url=LONGEST_CONTAINER)

    assert len(event.encode("utf-8")) < MAX_EVENT_BYTES
    assert json.loads(event)["data"]["metadata"] == message.metadata


def from_message(
    message: JobMessage, *, service_name: str | None = None, items: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    return manifest(
        items,
        job_id=message.job_id,
        display_name=service_name or message.display_name,
        correlation_id=message.correlation_id,
        metadata=message.metadata,
    )


# --- properties ------------------------------------------------------------------------------------

_text = st.text(max_size=1100)
_messages = st.fixed_dictionaries(
    {"jobId": st.uuids().map(str)},
    optional={
        "displayName": _text,
        "correlationId": _text,
        "metadata": st.dictionaries(st.text(max_size=40), st.text(max_size=3000), max_size=64),
    },
)


@given(
    body=_messages,
    ascii_only=st.booleans(),
    service_name=st.none() | st.text(max_size=60_000),
    status=st.sampled_from(
        [
            "succeeded",
            "partiallyCompleted",
            "failed",
            "cancelled",
            "notFound",
            "expired",
            "timedOut",
            "rejected",
        ]
    ),
    entities=st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_every_accepted_message_gives_an_event_under_48_kib_that_agrees_with_its_manifest(
    body: dict[str, Any], ascii_only: bool, service_name: str | None, status: str, entities: list[int]
) -> None:
    try:
        message = parse_message(json.dumps(body, ensure_ascii=ascii_only), settings=SETTINGS)
    except InvalidMessage:
        return  # poison: never archived, never announced
    stored = from_message(message, service_name=service_name, items=[item(n) for n in entities])
    stored["status"] = status

    text = render_event(stored, container_url=LONGEST_CONTAINER)

    assert len(text.encode("utf-8")) < MAX_EVENT_BYTES
    data = json.loads(text)["data"]
    for field in ("jobId", "status", "archivedAt", "correlationId", "metadata"):
        assert data[field] == stored[field]
    if stored["displayName"] == message.display_name:  # a message's displayName always fits whole
        assert data["displayName"] == stored["displayName"]
    else:  # the service's may be cut
        assert stored["displayName"].startswith(data["displayName"])
    assert data["taskCount"] == len(entities)
    assert data["entityCount"] == sum(entities)
    assert data["documentCount"] == len(entities)


@given(body=_messages, entities=st.lists(st.integers(min_value=0, max_value=5), max_size=4))
def test_rendering_is_deterministic_for_any_manifest(body: dict[str, Any], entities: list[int]) -> None:
    try:
        message = parse_message(json.dumps(body), settings=SETTINGS)
    except InvalidMessage:
        return
    stored = from_message(message, items=[item(n) for n in entities])
    reread = json.loads(json.dumps(stored, ensure_ascii=False))

    assert render_event(stored, container_url=CONTAINER) == render_event(reread, container_url=CONTAINER)
    assert uuid.UUID(json.loads(render_event(stored, container_url=CONTAINER))["id"])
