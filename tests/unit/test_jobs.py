"""Job pages (CONTRACT.md §2-3): parsing the service's job state, and merging the pages of a job."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.jobs import (
    TERMINAL_STATUSES,
    UNFINISHED_STATUSES,
    JobPage,
    MalformedJob,
    merge_task_items,
    parse_job_page,
)

# The spec's own examples live beside the checkout: <root>/shared/language-api/examples.
EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "language-api" / "examples"
STATUS_EXAMPLES = sorted(EXAMPLES.glob("*StatusRequest.json")) if EXAMPLES.is_dir() else []
EXAMPLE_JOB_ID = "c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18"
JOB_ID = "7b0a9a4e-1f3c-4f0e-9d2b-5a6c7d8e9f01"
T0 = "2024-11-01T12:00:00Z"


def example_body(path: Path) -> dict[str, Any]:
    body = json.loads(path.read_text(encoding="utf-8"))["responses"]["200"]["body"]
    assert isinstance(body, dict)
    return body


def job(status: str = "succeeded", **fields: Any) -> dict[str, Any]:
    return {
        "jobId": JOB_ID,
        "createdDateTime": T0,
        "lastUpdatedDateTime": T0,
        "expirationDateTime": "2024-11-02T12:00:00Z",
        "status": status,
        "errors": [],
        "tasks": {"completed": 0, "failed": 0, "inProgress": 0, "total": 0, "items": []},
        **fields,
    }


def parse(body: Any) -> JobPage:
    return parse_job_page(body, job_id=JOB_ID)


# --- the spec's examples -------------------------------------------------------------------------

needs_examples = pytest.mark.skipif(
    not STATUS_EXAMPLES, reason=f"spec examples not found at {EXAMPLES} (the folder beside the checkout)"
)


@needs_examples
@pytest.mark.parametrize("path", STATUS_EXAMPLES, ids=lambda path: path.name.split("_")[0])
def test_spec_status_example_parses_status_timestamps_and_items(path: Path) -> None:
    body = example_body(path)

    page = parse_job_page(body, job_id=EXAMPLE_JOB_ID)

    assert page.job_id == EXAMPLE_JOB_ID
    assert page.status == "succeeded"
    assert page.is_terminal
    assert page.created == datetime(2020, 10, 1, 15, 0, 45, tzinfo=UTC)
    assert page.last_updated == datetime(2020, 10, 1, 15, 1, 3, tzinfo=UTC)
    assert page.expires == datetime(2020, 10, 3, 15, 1, 3, tzinfo=UTC)
    assert page.display_name == "Extracting Location & US Region"
    assert page.errors == []
    assert page.next_link is None
    assert [(item["kind"], item["taskName"]) for item in page.items] == [
        ("EntityRecognitionLROResults", "Recognize Entities"),
        ("CustomEntityRecognitionLROResults", "Recognize US Regions"),
    ]
    assert [len(item["results"]["documents"]) for item in page.items] == [2, 2]
    assert page.items == body["tasks"]["items"]
    assert page.raw is body


@needs_examples
@pytest.mark.parametrize("path", STATUS_EXAMPLES, ids=lambda path: path.name.split("_")[0])
def test_spec_status_example_merges_as_a_single_page_unchanged(path: Path) -> None:
    body = example_body(path)
    page = parse_job_page(body, job_id=EXAMPLE_JOB_ID)

    assert merge_task_items([page]) == body["tasks"]["items"]


# --- status --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_terminal_status_is_terminal(status: str) -> None:
    page = parse(job(status))

    assert page.is_terminal
    assert not page.is_known_unfinished


@pytest.mark.parametrize("status", sorted(UNFINISHED_STATUSES))
def test_unfinished_status_is_known_unfinished(status: str) -> None:
    page = parse(job(status))

    assert page.is_known_unfinished
    assert not page.is_terminal


def test_terminal_and_unfinished_statuses_are_those_of_the_contract() -> None:
    assert {"succeeded", "partiallyCompleted", "failed", "cancelled"} == TERMINAL_STATUSES
    assert {"notStarted", "running", "cancelling"} == UNFINISHED_STATUSES


@pytest.mark.parametrize("status", ["partiallySucceeded", "rejected", "paused"])
def test_unknown_status_is_kept_and_neither_terminal_nor_unfinished(status: str) -> None:
    page = parse(job(status))

    assert page.status == status
    assert not page.is_terminal
    assert not page.is_known_unfinished


# --- timestamps ----------------------------------------------------------------------------------


def test_job_level_last_update_spelling_is_accepted() -> None:
    body = job()
    del body["lastUpdatedDateTime"]
    body["lastUpdateDateTime"] = "2024-11-01T12:05:00Z"

    assert parse(body).last_updated == datetime(2024, 11, 1, 12, 5, tzinfo=UTC)


def test_spec_spelling_last_updated_wins_when_both_are_present() -> None:
    body = job(lastUpdatedDateTime="2024-11-01T12:05:00Z", lastUpdateDateTime="2024-11-01T12:09:00Z")

    assert parse(body).last_updated == datetime(2024, 11, 1, 12, 5, tzinfo=UTC)


def test_seven_fractional_digits_are_parsed() -> None:
    body = job(
        createdDateTime="2024-11-01T12:00:00.1234567Z", lastUpdatedDateTime="2024-11-01T12:00:01.9999999Z"
    )

    page = parse(body)

    assert page.created == datetime(2024, 11, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert page.last_updated == datetime(2024, 11, 1, 12, 0, 1, 999999, tzinfo=UTC)


def test_absent_timestamps_are_none() -> None:
    body = job()
    for name in ("createdDateTime", "lastUpdatedDateTime", "expirationDateTime"):
        del body[name]

    page = parse(body)

    assert (page.created, page.last_updated, page.expires) == (None, None, None)


# --- tolerance -----------------------------------------------------------------------------------


def test_unknown_fields_are_ignored_but_kept_in_raw() -> None:
    body = job(futureField={"x": 1}, statistics={"documentsCount": 2})

    page = parse(body)

    assert page.raw["futureField"] == {"x": 1}
    assert page.raw["statistics"] == {"documentsCount": 2}


def test_served_job_id_is_compared_case_insensitively() -> None:
    assert parse(job(jobId=JOB_ID.upper())).job_id == JOB_ID


def test_missing_served_job_id_is_tolerated() -> None:
    body = job()
    del body["jobId"]

    assert parse(body).job_id == JOB_ID


@pytest.mark.parametrize("tasks", [None, {}, {"items": None}], ids=["no-tasks", "no-items", "null-items"])
def test_job_without_task_items_has_no_items(tasks: dict[str, Any] | None) -> None:
    body = job()
    if tasks is None:
        del body["tasks"]
    else:
        body["tasks"] = tasks

    assert parse(body).items == []


def test_display_name_errors_and_next_link_are_read() -> None:
    error = {"code": "InvalidRequest", "message": "Job failed"}
    next_link = f"https://myres.cognitiveservices.azure.com/language/analyze-text/jobs/{JOB_ID}?top=5&skip=20"

    page = parse(job("failed", displayName="batch 7", errors=[error], nextLink=next_link))

    assert page.display_name == "batch 7"
    assert page.errors == [error]
    assert page.next_link == next_link


@pytest.mark.parametrize("value", [None, ""])
def test_absent_or_empty_next_link_is_none(value: str | None) -> None:
    assert parse(job(nextLink=value)).next_link is None


def test_non_string_display_name_is_ignored() -> None:
    assert parse(job(displayName=42)).display_name is None


def test_null_errors_read_as_an_empty_list() -> None:
    assert parse(job(errors=None)).errors == []


# --- malformed -----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, "succeeded", 42, [job()]], ids=["null", "string", "number", "list"])
def test_body_that_is_not_an_object_is_malformed(body: Any) -> None:
    with pytest.raises(MalformedJob):
        parse(body)


@pytest.mark.parametrize("status", [None, "", 3, ["succeeded"]], ids=["absent", "empty", "number", "list"])
def test_missing_or_non_string_status_is_malformed(status: Any) -> None:
    body = job()
    if status is None:
        del body["status"]
    else:
        body["status"] = status

    with pytest.raises(MalformedJob, match="status"):
        parse(body)


@pytest.mark.parametrize(
    "tasks",
    [
        {"items": {"kind": "EntityRecognitionLROResults"}},
        {"items": "none"},
        {"items": ["EntityRecognitionLROResults"]},
        {"items": [{"kind": "EntityRecognitionLROResults"}, None]},
    ],
    ids=["object", "string", "list-of-strings", "list-with-null"],
)
def test_task_items_that_are_not_a_list_of_objects_are_malformed(tasks: Any) -> None:
    with pytest.raises(MalformedJob, match="items"):
        parse(job(tasks=tasks))


@pytest.mark.parametrize("tasks", [[], "done", 2], ids=["list", "string", "number"])
def test_tasks_that_is_not_an_object_is_malformed(tasks: Any) -> None:
    with pytest.raises(MalformedJob, match="tasks"):
        parse(job(tasks=tasks))


def test_job_state_naming_another_job_is_malformed() -> None:
    with pytest.raises(MalformedJob, match="another job"):
        parse(job(jobId="8f1d4b4e-2c3a-4d5e-9f60-718293a4b5c6"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("createdDateTime", "yesterday"),
        ("lastUpdatedDateTime", "2024-11-31T00:00:00Z"),
        ("lastUpdateDateTime", "12:00"),
        ("expirationDateTime", 1730462400),
    ],
)
def test_bad_timestamp_is_malformed(field: str, value: Any) -> None:
    body = job()
    if field == "lastUpdateDateTime":
        del body["lastUpdatedDateTime"]
    body[field] = value

    with pytest.raises(MalformedJob, match="timestamp"):
        parse(body)


@pytest.mark.parametrize("errors", ["boom", {"code": "x"}], ids=["string", "object"])
def test_errors_that_are_not_a_list_are_malformed(errors: Any) -> None:
    with pytest.raises(MalformedJob, match="errors"):
        parse(job(errors=errors))


def test_next_link_that_is_not_a_string_is_malformed() -> None:
    with pytest.raises(MalformedJob, match="nextLink"):
        parse(job(nextLink={"href": "x"}))


# --- merging pages -------------------------------------------------------------------------------


def document(task: str, n: int) -> dict[str, Any]:
    return {"id": f"{n}", "entities": [{"text": f"{task}-{n}", "category": "Location"}], "warnings": []}


def doc_error(n: int) -> dict[str, Any]:
    return {"id": f"e{n}", "error": {"code": "InvalidArgument", "message": "Document text is empty."}}


def task_item(
    kind: str, name: str | None, documents: list[Any], errors: list[Any], **results: Any
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": kind,
        "lastUpdateDateTime": T0,
        "status": "succeeded",
        "results": {"documents": documents, "errors": errors, **results},
    }
    if name is not None:
        item["taskName"] = name
    return item


def page_of(items: list[dict[str, Any]], next_link: str | None = None) -> JobPage:
    return parse(
        job(tasks={"completed": len(items), "total": len(items), "items": items}, nextLink=next_link)
    )


NER = "EntityRecognitionLROResults"
CNER = "CustomEntityRecognitionLROResults"


def two_pages() -> list[JobPage]:
    """25 documents per task (plus errors), served 20 + 5 as the service does [R-page]."""
    first = page_of(
        [
            task_item(
                NER,
                "people",
                [document("ner", n) for n in range(20)],
                [doc_error(0)],
                modelVersion="2024-04-15",
            ),
            task_item(
                CNER,
                "regions",
                [document("cner", n) for n in range(20)],
                [],
                projectName="MyProject",
                deploymentName="MyDeployment",
            ),
        ],
        next_link="https://myres.cognitiveservices.azure.com/language/analyze-text/jobs/x?top=5&skip=20",
    )
    second = page_of(
        [
            task_item(NER, "people", [document("ner", n) for n in range(20, 25)], [doc_error(1)]),
            task_item(CNER, "regions", [document("cner", n) for n in range(20, 25)], [doc_error(2)]),
        ]
    )
    return [first, second]


def test_merge_of_no_pages_is_empty() -> None:
    assert merge_task_items([]) == []


def test_merge_concatenates_documents_in_service_order_per_task() -> None:
    merged = merge_task_items(two_pages())

    assert [doc["id"] for doc in merged[0]["results"]["documents"]] == [str(n) for n in range(25)]
    assert [doc["entities"][0]["text"] for doc in merged[1]["results"]["documents"]] == [
        f"cner-{n}" for n in range(25)
    ]


def test_merge_concatenates_errors_in_service_order_per_task() -> None:
    merged = merge_task_items(two_pages())

    assert [error["id"] for error in merged[0]["results"]["errors"]] == ["e0", "e1"]
    assert [error["id"] for error in merged[1]["results"]["errors"]] == ["e2"]


def test_merge_keeps_the_first_page_task_fields_and_order() -> None:
    merged = merge_task_items(two_pages())

    assert [(item["kind"], item["taskName"]) for item in merged] == [(NER, "people"), (CNER, "regions")]
    assert merged[0]["results"]["modelVersion"] == "2024-04-15"
    assert merged[1]["results"]["projectName"] == "MyProject"
    assert merged[1]["results"]["deploymentName"] == "MyDeployment"
    assert merged[0]["lastUpdateDateTime"] == T0


def test_merge_does_not_mutate_the_pages() -> None:
    pages = two_pages()
    before = [copy.deepcopy(page.items) for page in pages]

    merge_task_items(pages)

    assert [page.items for page in pages] == before
    assert len(pages[0].raw["tasks"]["items"][0]["results"]["documents"]) == 20


def test_merging_twice_gives_the_same_result() -> None:
    pages = two_pages()

    assert merge_task_items(pages) == merge_task_items(pages)


def test_merge_matches_tasks_by_kind_and_name_not_by_position() -> None:
    first = page_of(
        [
            task_item(NER, "alpha", [document("a", 0)], []),
            task_item(NER, "beta", [document("b", 0)], []),
        ]
    )
    # The later page lists the same two tasks of the same kind, in the other order.
    second = page_of(
        [
            task_item(NER, "beta", [document("b", 1)], []),
            task_item(NER, "alpha", [document("a", 1)], []),
        ]
    )

    merged = merge_task_items([first, second])

    assert [doc["entities"][0]["text"] for doc in merged[0]["results"]["documents"]] == ["a-0", "a-1"]
    assert [doc["entities"][0]["text"] for doc in merged[1]["results"]["documents"]] == ["b-0", "b-1"]


def test_merge_matches_tasks_of_different_kinds_with_the_same_name() -> None:
    first = page_of(
        [task_item(NER, "t", [document("ner", 0)], []), task_item(CNER, "t", [document("c", 0)], [])]
    )
    second = page_of(
        [task_item(CNER, "t", [document("c", 1)], []), task_item(NER, "t", [document("ner", 1)], [])]
    )

    merged = merge_task_items([first, second])

    assert [doc["entities"][0]["text"] for doc in merged[0]["results"]["documents"]] == ["ner-0", "ner-1"]
    assert [doc["entities"][0]["text"] for doc in merged[1]["results"]["documents"]] == ["c-0", "c-1"]


@pytest.mark.parametrize("name", ["dup", None], ids=["same-name", "no-name"])
def test_merge_matches_duplicate_task_keys_by_their_order(name: str | None) -> None:
    first = page_of(
        [task_item(NER, name, [document("x", 0)], []), task_item(NER, name, [document("y", 0)], [])]
    )
    second = page_of(
        [task_item(NER, name, [document("x", 1)], []), task_item(NER, name, [document("y", 1)], [])]
    )

    merged = merge_task_items([first, second])

    assert [doc["entities"][0]["text"] for doc in merged[0]["results"]["documents"]] == ["x-0", "x-1"]
    assert [doc["entities"][0]["text"] for doc in merged[1]["results"]["documents"]] == ["y-0", "y-1"]


def test_later_page_with_a_task_the_first_page_lacks_is_malformed() -> None:
    first = page_of([task_item(NER, "people", [document("p", 0)], [])])
    second = page_of([task_item(CNER, "regions", [document("r", 0)], [])])

    with pytest.raises(MalformedJob, match="task"):
        merge_task_items([first, second])


def test_later_page_with_more_duplicates_than_the_first_is_malformed() -> None:
    first = page_of([task_item(NER, "dup", [document("x", 0)], [])])
    second = page_of(
        [task_item(NER, "dup", [document("x", 1)], []), task_item(NER, "dup", [document("y", 1)], [])]
    )

    with pytest.raises(MalformedJob):
        merge_task_items([first, second])


def test_later_page_may_list_fewer_tasks() -> None:
    first = page_of(
        [task_item(NER, "a", [document("a", 0)], []), task_item(NER, "b", [document("b", 0)], [])]
    )
    second = page_of([task_item(NER, "b", [document("b", 1)], [])])

    merged = merge_task_items([first, second])

    assert [len(item["results"]["documents"]) for item in merged] == [1, 2]


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda item: item["results"].update(documents={"id": "1"}), "documents"),
        (lambda item: item["results"].update(documents=["1"]), "documents"),
        (lambda item: item["results"].update(errors="none"), "errors"),
        (lambda item: item.update(results=[]), "results"),
        (lambda item: item["results"]["documents"][0].update(entities={"text": "x"}), "entities"),
        (lambda item: item.update(kind=7), "kind"),
        (lambda item: item.update(taskName=["a"]), "taskName"),
    ],
    ids=["documents-object", "document-text", "errors-text", "results-list", "entities", "kind", "name"],
)
def test_task_fields_the_app_counts_or_matches_must_have_their_type(mutate: Any, match: str) -> None:
    item = task_item(NER, "a", [document("a", 0)], [])
    mutate(item)

    with pytest.raises(MalformedJob, match=match):
        page_of([item])


def test_results_null_on_the_first_page_are_filled_from_a_later_page() -> None:
    first = page_of([{**failed_task("regions"), "results": None}])
    second = page_of([task_item(CNER, "regions", [document("r", 1)], [doc_error(1)])])

    merged = merge_task_items([first, second])

    assert merged[0]["results"] == {"documents": [document("r", 1)], "errors": [doc_error(1)]}
    assert first.items[0]["results"] is None


def test_results_missing_on_every_page_merge_as_served() -> None:
    item = {**task_item(NER, "a", [], []), "results": None}

    assert merge_task_items([page_of([item]), page_of([item])]) == [item]


@pytest.mark.parametrize(
    "stamp", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00", "1970-01-01T00:00:00Z"]
)
def test_timestamps_outside_the_years_the_app_computes_with_are_malformed(stamp: str) -> None:
    with pytest.raises(MalformedJob, match="timestamp"):
        parse(job(createdDateTime=stamp))


def test_a_status_too_long_to_be_one_is_malformed() -> None:
    with pytest.raises(MalformedJob, match="status"):
        parse(job(status="running" * 100))


def failed_task(name: str) -> dict[str, Any]:
    return {"kind": CNER, "taskName": name, "lastUpdateDateTime": T0, "status": "failed"}


def test_failed_task_without_results_passes_through_a_single_page() -> None:
    item = failed_task("regions")

    assert merge_task_items([page_of([item])]) == [item]


def test_failed_task_without_results_passes_through_a_merge_unchanged() -> None:
    first = page_of([task_item(NER, "people", [document("p", 0)], []), failed_task("regions")])
    second = page_of([task_item(NER, "people", [document("p", 1)], []), failed_task("regions")])

    merged = merge_task_items([first, second])

    assert merged[1] == failed_task("regions")
    assert len(merged[0]["results"]["documents"]) == 2


def test_merge_fills_results_of_a_task_whose_first_page_had_none() -> None:
    first = page_of([failed_task("regions")])
    second = page_of([task_item(CNER, "regions", [document("r", 1)], [doc_error(1)])])

    merged = merge_task_items([first, second])

    assert merged[0]["results"] == {"documents": [document("r", 1)], "errors": [doc_error(1)]}
    assert "results" not in first.items[0]
