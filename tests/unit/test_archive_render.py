"""Archive rendering (DESIGN.md, "Archive layout" and "Precise definitions"): task blobs and the manifest."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.archive import (
    MAX_KIND_CHARS,
    SCHEMA_VERSION,
    JobRecord,
    TaskBlob,
    manifest_name,
    render_manifest,
    render_tasks,
    task_blob_name,
)

JOB_ID = "c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18"
NER = "EntityRecognitionLROResults"
CNER = "CustomEntityRecognitionLROResults"
ARCHIVED_AT = datetime(2024, 11, 1, 12, 30, 0, tzinfo=UTC)


def entity(text: str) -> dict[str, Any]:
    return {"text": text, "category": "Location", "offset": 0, "length": len(text), "confidenceScore": 0.9}


def ner_item() -> dict[str, Any]:
    return {
        "kind": NER,
        "taskName": "Recognize Entities",
        "lastUpdateDateTime": "2024-11-01T12:00:00Z",
        "status": "succeeded",
        "results": {
            "documents": [
                {
                    "id": "1",
                    "entities": [entity("Seattle"), entity("last week"), entity("trip")],
                    "warnings": [],
                },
                {"id": "2", "entities": [entity("NYC"), entity("tomorrow")], "warnings": []},
                {"id": "3", "entities": [], "warnings": []},
            ],
            "errors": [
                {"id": "4", "error": {"code": "InvalidArgument", "message": "Document text is empty."}}
            ],
            "modelVersion": "2024-04-15",
        },
    }


def cner_item() -> dict[str, Any]:
    return {
        "kind": CNER,
        "taskName": "Recognize US Regions",
        "lastUpdateDateTime": "2024-11-01T12:00:00Z",
        "status": "succeeded",
        "results": {
            "documents": [{"id": "1", "entities": [entity("Pacific Northwest")], "warnings": []}],
            "errors": [],
            "projectName": "MyProject",
            "deploymentName": "MyDeployment",
        },
    }


def failed_item() -> dict[str, Any]:
    return {
        "kind": CNER,
        "taskName": "Broken deployment",
        "lastUpdateDateTime": "2024-11-01T12:00:00Z",
        "status": "failed",
    }


def reordered(value: Any) -> Any:
    """The same JSON value with every object's keys in reverse insertion order."""
    if isinstance(value, dict):
        return {key: reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(element) for element in value]
    return value


# --- blob names ----------------------------------------------------------------------------------


def test_task_blobs_are_named_by_job_two_digit_index_and_kind() -> None:
    blobs = render_tasks(JOB_ID, [ner_item(), cner_item(), failed_item()])

    assert [blob.name for blob in blobs] == [
        f"{JOB_ID}/tasks/00-EntityRecognitionLROResults.json",
        f"{JOB_ID}/tasks/01-CustomEntityRecognitionLROResults.json",
        f"{JOB_ID}/tasks/02-CustomEntityRecognitionLROResults.json",
    ]


def test_index_stays_zero_padded_to_two_digits_up_to_99() -> None:
    names = [blob.name for blob in render_tasks(JOB_ID, [cner_item()] * 12)]

    assert names[9] == f"{JOB_ID}/tasks/09-{CNER}.json"
    assert names[10] == f"{JOB_ID}/tasks/10-{CNER}.json"
    assert names[11] == f"{JOB_ID}/tasks/11-{CNER}.json"


@pytest.mark.parametrize("kind", ["../../other-job/manifest", "a/b", "a\\b", "kind with spaces"])
def test_kind_cannot_move_the_blob_out_of_the_job_tasks_folder(kind: str) -> None:
    item = {**cner_item(), "kind": kind}

    (blob,) = render_tasks(JOB_ID, [item])

    job_folder, tasks_folder, file_name = blob.name.split("/")
    assert (job_folder, tasks_folder) == (JOB_ID, "tasks")
    assert file_name.startswith("00-")
    assert file_name.endswith(".json")
    assert blob.entry["kind"] == kind


@pytest.mark.parametrize(
    ("kind", "part"),
    [
        ("CustomEntityRecognitionLROResults", "CustomEntityRecognitionLROResults"),
        ("Entity Recognition/v2", "Entity_Recognition_v2"),
        ("..", "_"),
        ("a..b", "a_b"),
        ("kind.", "kind"),
        (".hidden", "hidden"),
        ("Ünïcode", "_n_code"),
        ("", "Unknown"),
        (None, "Unknown"),
        (7, "Unknown"),
        ("K" * 5000, "K" * MAX_KIND_CHARS),
    ],
    ids=[
        "served",
        "slash-space",
        "dots",
        "inner-dots",
        "trailing-dot",
        "leading-dot",
        "unicode",
        "empty",
        "null",
        "number",
        "long",
    ],
)
def test_a_task_blob_name_keeps_a_bounded_safe_form_of_the_kind(kind: Any, part: str) -> None:
    assert task_blob_name(JOB_ID, 3, kind) == f"{JOB_ID}/tasks/03-{part}.json"


SAFE_NAME = re.compile(r"[0-9a-f-]{36}/tasks/[0-9]{2,}-[A-Za-z0-9_-](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?\.json")


@given(st.lists(st.one_of(st.text(), st.none(), st.integers()), max_size=120))
def test_task_blob_names_are_valid_safe_and_unique_whatever_the_kinds(kinds: list[Any]) -> None:
    items = [{"kind": kind, "taskName": "t"} for kind in kinds]

    blobs = render_tasks(JOB_ID, items)

    names = [blob.name for blob in blobs]
    assert len(set(names)) == len(names)
    for blob, kind in zip(blobs, kinds, strict=True):
        assert SAFE_NAME.fullmatch(blob.name), blob.name
        assert ".." not in blob.name
        assert len(blob.name) <= 1024
        assert blob.entry["kind"] == kind


def test_manifest_blob_name_is_under_the_job() -> None:
    assert manifest_name(JOB_ID) == f"{JOB_ID}/manifest.json"


def test_no_items_render_no_blobs() -> None:
    assert render_tasks(JOB_ID, []) == []


# --- blob content --------------------------------------------------------------------------------


def test_blob_holds_the_item_as_served() -> None:
    item = ner_item()

    (blob,) = render_tasks(JOB_ID, [item])

    assert json.loads(blob.data.decode("utf-8")) == item


def test_blob_bytes_do_not_depend_on_key_order() -> None:
    items = [ner_item(), cner_item()]
    shuffled = reordered(items)
    assert [list(item) for item in shuffled] != [list(item) for item in items]

    assert [blob.data for blob in render_tasks(JOB_ID, items)] == [
        blob.data for blob in render_tasks(JOB_ID, shuffled)
    ]


def test_rendering_twice_gives_identical_blobs() -> None:
    assert render_tasks(JOB_ID, [ner_item(), failed_item()]) == render_tasks(
        JOB_ID, [ner_item(), failed_item()]
    )


def test_blob_is_utf8_json_with_non_ascii_text_kept() -> None:
    item = cner_item()
    item["results"]["documents"][0]["entities"] = [entity("Zürich"), entity("東京")]

    (blob,) = render_tasks(JOB_ID, [item])

    assert "Zürich".encode() in blob.data
    assert "東京".encode() in blob.data


def test_rendering_does_not_mutate_the_items() -> None:
    items = [ner_item(), failed_item()]

    render_tasks(JOB_ID, items)

    assert items == [ner_item(), failed_item()]


# --- manifest entries ----------------------------------------------------------------------------


def test_entry_has_exact_sha256_bytes_and_counts() -> None:
    (blob,) = render_tasks(JOB_ID, [ner_item()])

    assert blob.entry == {
        "taskName": "Recognize Entities",
        "kind": NER,
        "status": "succeeded",
        "blob": blob.name,
        "sha256": hashlib.sha256(blob.data).hexdigest(),
        "bytes": len(blob.data),
        "documentCount": 3,
        "entityCount": 5,
        "errorCount": 1,
    }


def test_sha256_is_lowercase_hex_of_64_digits() -> None:
    (blob,) = render_tasks(JOB_ID, [cner_item()])

    assert len(blob.entry["sha256"]) == 64
    assert set(blob.entry["sha256"]) <= set("0123456789abcdef")


def test_custom_ner_entry_counts() -> None:
    (blob,) = render_tasks(JOB_ID, [cner_item()])

    assert (blob.entry["documentCount"], blob.entry["entityCount"], blob.entry["errorCount"]) == (1, 1, 0)


def test_failed_task_without_results_is_archived_as_served_with_zero_counts() -> None:
    (blob,) = render_tasks(JOB_ID, [failed_item()])

    assert json.loads(blob.data) == failed_item()
    assert blob.entry["status"] == "failed"
    assert blob.entry["taskName"] == "Broken deployment"
    assert (blob.entry["documentCount"], blob.entry["entityCount"], blob.entry["errorCount"]) == (0, 0, 0)
    assert blob.entry["bytes"] == len(blob.data)


def test_task_without_a_name_has_a_null_task_name() -> None:
    item = cner_item()
    del item["taskName"]

    (blob,) = render_tasks(JOB_ID, [item])

    assert blob.entry["taskName"] is None


# --- manifest ------------------------------------------------------------------------------------

MANIFEST_FIELDS = {
    "schemaVersion",
    "jobId",
    "status",
    "displayName",
    "createdDateTime",
    "lastUpdatedDateTime",
    "expirationDateTime",
    "archivedAt",
    "apiVersion",
    "errors",
    "correlationId",
    "metadata",
    "tasks",
}
TASK_FIELDS = {
    "taskName",
    "kind",
    "status",
    "blob",
    "sha256",
    "bytes",
    "documentCount",
    "entityCount",
    "errorCount",
}


def record(**changes: Any) -> JobRecord:
    fields: dict[str, Any] = {
        "job_id": JOB_ID,
        "status": "succeeded",
        "display_name": "Extracting Location & US Region",
        "created": datetime(2024, 11, 1, 12, 0, 0, tzinfo=UTC),
        "last_updated": datetime(2024, 11, 1, 12, 0, 5, 250_000, tzinfo=UTC),
        "expires": datetime(2024, 11, 2, 12, 0, 0, tzinfo=UTC),
        "api_version": "2024-11-01",
        "errors": [],
        "correlation_id": "order-4711",
        "metadata": {"tenant": "contoso"},
        **changes,
    }
    return JobRecord(**fields)


def manifest(job: JobRecord, tasks: list[TaskBlob]) -> dict[str, Any]:
    body = json.loads(render_manifest(job, tasks, now=ARCHIVED_AT).decode("utf-8"))
    assert isinstance(body, dict)
    return body


def test_manifest_has_every_design_field_and_nothing_else() -> None:
    body = manifest(record(), render_tasks(JOB_ID, [ner_item()]))

    assert set(body) == MANIFEST_FIELDS
    assert [set(task) for task in body["tasks"]] == [TASK_FIELDS]


def test_manifest_schema_version_is_1() -> None:
    assert SCHEMA_VERSION == 1
    assert manifest(record(), [])["schemaVersion"] == 1


def test_manifest_values_of_a_succeeded_job() -> None:
    tasks = render_tasks(JOB_ID, [ner_item(), cner_item()])

    body = manifest(record(), tasks)

    assert body == {
        "schemaVersion": 1,
        "jobId": JOB_ID,
        "status": "succeeded",
        "displayName": "Extracting Location & US Region",
        "createdDateTime": "2024-11-01T12:00:00Z",
        "lastUpdatedDateTime": "2024-11-01T12:00:05.250000Z",
        "expirationDateTime": "2024-11-02T12:00:00Z",
        "archivedAt": "2024-11-01T12:30:00Z",
        "apiVersion": "2024-11-01",
        "errors": [],
        "correlationId": "order-4711",
        "metadata": {"tenant": "contoso"},
        "tasks": [task.entry for task in tasks],
    }


def test_manifest_unknown_values_are_null_never_omitted() -> None:
    errors = [{"code": "NotFound", "message": "The job was not found."}]
    job = record(
        status="notFound",
        display_name=None,
        created=None,
        last_updated=None,
        expires=None,
        errors=errors,
        correlation_id=None,
        metadata={},
    )

    body = manifest(job, [])

    assert set(body) == MANIFEST_FIELDS
    for name in (
        "displayName",
        "createdDateTime",
        "lastUpdatedDateTime",
        "expirationDateTime",
        "correlationId",
    ):
        assert body[name] is None
    assert body["status"] == "notFound"
    assert body["errors"] == errors
    assert body["metadata"] == {}
    assert body["tasks"] == []
    assert body["archivedAt"] == "2024-11-01T12:30:00Z"


def test_manifest_lists_a_failed_task_with_zero_counts() -> None:
    tasks = render_tasks(JOB_ID, [ner_item(), failed_item()])

    body = manifest(record(status="partiallyCompleted"), tasks)

    assert body["tasks"] == [tasks[0].entry, tasks[1].entry]
    assert body["tasks"][1]["blob"] == f"{JOB_ID}/tasks/01-{CNER}.json"
    assert body["tasks"][1]["status"] == "failed"
    assert body["tasks"][1]["sha256"] == hashlib.sha256(tasks[1].data).hexdigest()
    assert body["tasks"][1]["bytes"] == len(tasks[1].data)
    assert [body["tasks"][1][name] for name in ("documentCount", "entityCount", "errorCount")] == [0, 0, 0]


def test_manifest_is_utf8_json() -> None:
    data = render_manifest(record(display_name="Zürich run", metadata={"city": "東京"}), [], now=ARCHIVED_AT)

    body = json.loads(data.decode("utf-8"))

    assert body["displayName"] == "Zürich run"
    assert body["metadata"] == {"city": "東京"}
