"""Properties of the pure parts, for any input Hypothesis finds (bounded by the profile in tests/conftest.py).

- the message parser: any text is a valid message or poison with a reason, never an exception;
- the job-page parser and the page merge: any JSON is a page or ``MalformedJob``; the merge keeps
  the service's order and every document and error;
- the archive renderer: the bytes depend only on the content; the manifest entry's counts match;
- the polling policy: the delay stays within its bounds, never past the deadline, and
  ``Retry-After`` is a floor up to the cap.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.archive import render_tasks
from shared.jobs import JobPage, MalformedJob, merge_task_items, parse_job_page
from shared.messages import InvalidMessage, JobMessage, parse_message
from shared.policy import (
    MAX_VISIBILITY_SECONDS,
    GiveUp,
    PollAgain,
    PollPolicy,
    WaitReason,
    next_poll,
    queue_visibility,
)
from shared.settings import load_settings

SETTINGS = load_settings(
    {
        "LANGUAGE_ENDPOINT": "https://myres.cognitiveservices.azure.com",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    }
)
JOBS_URL = "https://myres.cognitiveservices.azure.com/language/analyze-text/jobs"
POISON_CODES = {
    "unparseable",
    "missing-job",
    "invalid-job-id",
    "foreign-operation-location",
    "invalid-operation-location",
    "mismatch",
    "invalid-field",
    "oversized",
    "too-deep",
}
JOB_ID = "c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18"

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
job_ids = st.uuids().map(str)
aware_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
job_ids_or_junk = job_ids | st.text(max_size=40) | json_scalars
locations = st.builds(
    lambda job_id, tail: f"{JOBS_URL}/{job_id}{tail}",
    job_ids_or_junk,
    st.sampled_from(["", "?api-version=2024-11-01", "/"]),
) | st.builds(
    lambda host, job_id: f"https://{host}/language/analyze-text/jobs/{job_id}",
    st.sampled_from(["evil.example", "myres.cognitiveservices.azure.com:8443"]),
    job_ids,
)
message_objects = st.fixed_dictionaries(
    {},
    optional={
        "jobId": job_ids_or_junk,
        "operationLocation": locations | json_scalars,
        "displayName": json_values,
        "correlationId": json_values,
        "metadata": json_values | st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
        "_poll": json_values
        | st.fixed_dictionaries(
            {}, optional={"attempt": json_scalars, "firstSeenAt": json_scalars, "ledgerEtag": json_scalars}
        ),
    },
)
message_texts = (
    st.text(max_size=200)
    | job_ids
    | locations
    | json_values.map(json.dumps)
    | message_objects.map(json.dumps)
    | st.builds(lambda head, n: head * n, st.sampled_from(["x", JOB_ID]), st.integers(0, 2000))
)


# -- the message parser --------------------------------------------------------------------------


@given(message_texts)
def test_any_text_is_a_valid_message_or_poison_with_a_reason_never_an_exception(text: str) -> None:
    try:
        message = parse_message(text, settings=SETTINGS)
    except InvalidMessage as poison:
        code, _, detail = poison.reason.partition(": ")
        assert code in POISON_CODES
        assert detail
    else:
        assert str(uuid.UUID(message.job_id)) == message.job_id  # canonical, lower-case


@given(
    st.builds(
        JobMessage,
        job_id=job_ids,
        # Upstream's text fields are kept stripped of surrounding white space.
        display_name=st.none() | st.text(max_size=50).map(str.strip),
        correlation_id=st.none() | st.text(max_size=50).map(str.strip),
        metadata=st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=5),
        attempt=st.integers(0, 10_000),
        first_seen_at=st.none() | aware_times,
        seen_at=st.none() | aware_times,
        expires_at=st.none() | aware_times,
        # An ETag as storage writes it: printable ASCII.
        ledger_etag=st.none() | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1),
        unusable=st.integers(0, 10),
    ).filter(lambda message: message.unusable <= message.attempt)  # one reschedule per unusable answer
)
def test_the_apps_own_rescheduled_message_parses_back_to_the_same_message(message: JobMessage) -> None:
    assert parse_message(message.to_json(), settings=SETTINGS) == message


# -- the job-page parser and the page merge ------------------------------------------------------


@given(
    json_values
    | st.fixed_dictionaries(
        {"status": json_values, "tasks": json_values},
        optional={
            "jobId": json_values,
            "nextLink": json_values,
            "errors": json_values,
            "createdDateTime": json_values,
        },
    )
)
def test_any_json_is_a_job_page_or_malformed_never_another_exception(body: Any) -> None:
    try:
        page = parse_job_page(body, job_id=JOB_ID)
    except MalformedJob:
        return
    assert page.status
    assert all(isinstance(item, dict) for item in page.items)
    try:
        merged = merge_task_items([page, page])
    except MalformedJob:
        return
    assert len(merged) == len(page.items)


tasks_strategy = st.lists(
    st.tuples(
        st.sampled_from(["EntityRecognition", "CustomEntityRecognition", "Other"]),
        st.sampled_from(["a", "b", "a"]),
    ),
    min_size=0,
    max_size=4,
)


@st.composite
def paged_jobs(
    draw: st.DrawFn,
) -> tuple[list[tuple[str, str]], list[list[list[dict[str, Any]]]], list[JobPage]]:
    """A job's tasks and, per task, documents split into pages as the service windows them."""
    tasks = draw(tasks_strategy)
    page_count = draw(st.integers(1, 4))
    documents = [
        [
            [{"id": f"{t}-{p}-{n}", "entities": []} for n in range(draw(st.integers(0, 3)))]
            for p in range(page_count)
        ]
        for t in range(len(tasks))
    ]
    pages = []
    for p in range(page_count):
        items = [
            {
                "kind": kind,
                "taskName": name,
                "status": "succeeded",
                "results": {"documents": documents[t][p], "errors": [{"id": f"e{t}-{p}"}]},
            }
            for t, (kind, name) in enumerate(tasks)
        ]
        body = {"jobId": JOB_ID, "status": "succeeded", "tasks": {"items": items}}
        pages.append(parse_job_page(body, job_id=JOB_ID))
    return tasks, documents, pages


@given(paged_jobs())
def test_merging_pages_keeps_the_services_order_and_every_document_and_error(
    job: tuple[list[tuple[str, str]], list[list[list[dict[str, Any]]]], list[JobPage]],
) -> None:
    tasks, documents, pages = job
    before = json.dumps([page.raw for page in pages])

    merged = merge_task_items(pages)

    assert [(item["kind"], item["taskName"]) for item in merged] == tasks
    for t, item in enumerate(merged):
        assert item["results"]["documents"] == [doc for page in documents[t] for doc in page]
        assert item["results"]["errors"] == [{"id": f"e{t}-{p}"} for p in range(len(pages))]
    assert json.dumps([page.raw for page in pages]) == before  # the pages themselves are untouched


# -- the archive renderer ------------------------------------------------------------------------

documents_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.text(max_size=5),
            "entities": st.lists(st.fixed_dictionaries({"text": st.text(max_size=5)}), max_size=3),
        }
    ),
    max_size=4,
)
task_items = st.lists(
    st.fixed_dictionaries(
        {
            "kind": st.text(max_size=30),
            "taskName": st.text(max_size=10),
            "status": st.sampled_from(["succeeded", "failed"]),
        },
        optional={
            "results": st.fixed_dictionaries(
                {"documents": documents_strategy, "errors": st.lists(json_values, max_size=3)},
                optional={"modelVersion": st.text(max_size=5)},
            ),
            "extra": json_values,
        },
    ),
    max_size=4,
)


def reordered(value: Any) -> Any:
    """The same JSON content with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {key: reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(item) for item in value]
    return value


@given(job_ids, task_items)
def test_rendered_bytes_depend_only_on_the_content(job_id: str, items: list[dict[str, Any]]) -> None:
    first = render_tasks(job_id, items)
    again = render_tasks(job_id, reordered(json.loads(json.dumps(items))))

    assert [(blob.name, blob.data) for blob in first] == [(blob.name, blob.data) for blob in again]
    assert [json.loads(blob.data) for blob in first] == items


@given(job_ids, task_items)
def test_each_manifest_entry_names_hashes_and_counts_its_blob(
    job_id: str, items: list[dict[str, Any]]
) -> None:
    for index, (blob, item) in enumerate(zip(render_tasks(job_id, items), items, strict=True)):
        documents = item.get("results", {}).get("documents", [])
        assert blob.name.startswith(f"{job_id}/tasks/{index:02d}-")
        assert blob.entry["blob"] == blob.name
        assert blob.entry["sha256"] == hashlib.sha256(blob.data).hexdigest()
        assert blob.entry["bytes"] == len(blob.data)
        assert blob.entry["documentCount"] == len(documents)
        assert blob.entry["entityCount"] == sum(len(doc["entities"]) for doc in documents)
        assert blob.entry["errorCount"] == len(item.get("results", {}).get("errors", []))


# -- the polling policy --------------------------------------------------------------------------

policies = st.builds(
    lambda initial, extra, margin: PollPolicy(
        initial_delay=initial, max_delay=min(initial + extra, MAX_VISIBILITY_SECONDS), expiry_margin=margin
    ),
    st.floats(0.001, 3600),
    st.floats(0, 86_400),
    st.floats(0, 3600),
)
retry_afters = st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.floats(0, 10 * 86_400)


@given(
    policies,
    st.sampled_from(WaitReason),
    st.integers(-5, 5000),
    retry_afters,
    aware_times,
    st.none() | st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=2)),
    st.floats(0, 1, exclude_max=True),
)
def test_the_next_poll_stays_within_its_bounds_and_never_past_the_deadline(
    policy: PollPolicy,
    reason: WaitReason,
    attempt: int,
    retry_after: float | None,
    now: datetime,
    until_deadline: timedelta | None,
    draw: float,
) -> None:
    deadline = None if until_deadline is None else now + until_deadline
    limit = None if deadline is None else deadline - timedelta(seconds=policy.expiry_margin)

    decision = next_poll(
        policy,
        reason=reason,
        attempt=attempt,
        retry_after=retry_after,
        now=now,
        deadline=deadline,
        rand=lambda: draw,
    )

    if limit is not None and now >= limit:
        assert isinstance(decision, GiveUp)
        return
    assert isinstance(decision, PollAgain)
    room = math.inf if limit is None else (limit - now).total_seconds()
    assert 0 < decision.delay <= policy.max_delay
    assert decision.delay <= room
    assert decision.not_before == now + timedelta(seconds=decision.delay)
    if limit is not None:
        assert decision.not_before <= limit + timedelta(microseconds=1)  # timedelta rounds to the microsecond
    assert decision.delay >= min(policy.initial_delay, room) * (1 - 1e-12)
    if retry_after is not None and retry_after >= 0:  # NaN and negatives are ignored
        assert decision.delay >= min(retry_after, policy.max_delay, room) * (1 - 1e-12)


@given(st.floats(allow_nan=False, allow_infinity=True))
def test_the_queue_visibility_never_wakes_a_message_before_it_is_due(delay: float) -> None:
    visibility = queue_visibility(delay)

    assert 0 <= visibility <= MAX_VISIBILITY_SECONDS
    assert visibility >= min(delay, MAX_VISIBILITY_SECONDS)
    assert (visibility == 0) == (delay <= 0)


def test_the_profile_is_bounded_and_repeatable() -> None:
    assert settings().derandomize
    assert settings().max_examples <= 200
    assert settings().deadline is not None
