"""Service answers as the world sends them (DESIGN.md, "Bad input"): bounded JSON reading, the
Unicode rule, the 404 judge, and the page parser and archive renderer under hostile answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.archive import JobRecord, render_manifest, render_tasks
from shared.jobs import MAX_ANSWER_DEPTH, JobPage, MalformedJob, merge_task_items, parse_answer
from shared.jsontext import JsonRejected, clean_text, loads, nesting_depth
from shared.routecheck import SUSPECT_AFTER, NotFoundBody, RouteCheck, not_found_body
from tests.answers import BUILTIN_PAGE, hostile_answers, spec_pages, with_job

JOB_ID = "5b0f0e0a-52f3-4a44-9c43-5e8b2a2f1c11"
PAGES = [with_job(page, JOB_ID) for page in [BUILTIN_PAGE, *spec_pages()]]


def bounded(data: bytes | str, *, max_bytes: int = 1 << 20, max_depth: int = 8) -> Any:
    return loads(data, max_bytes=max_bytes, max_depth=max_depth)


# -- bounded JSON -------------------------------------------------------------------------------


def test_nesting_at_the_bound_parses_and_one_more_level_is_rejected() -> None:
    assert bounded("[" * 8 + "]" * 8) == [[[[[[[[]]]]]]]]
    with pytest.raises(JsonRejected, match="nests deeper"):
        bounded("[" * 9 + "]" * 9)


def test_nesting_far_beyond_the_recursion_limit_is_rejected_not_a_recursion_error() -> None:
    with pytest.raises(JsonRejected, match="nests deeper"):
        bounded('{"a": ' * 100_000 + "1" + "}" * 100_000)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '[[[[[[[[[[{{{{{{{{{{ \\" ]]'
    assert bounded(json.dumps({"text": text})) == {"text": text}


def test_a_body_over_the_size_bound_is_rejected_before_parsing() -> None:
    assert bounded(b'"01234567"', max_bytes=10) == "01234567"
    with pytest.raises(JsonRejected, match="11 bytes"):
        bounded(b'"012345678"', max_bytes=10)


@pytest.mark.parametrize(
    "text", ["NaN", "[Infinity]", '{"x": -Infinity}', "1e999", "[-1e400]", "1" * 5000], ids=str.__len__
)
def test_numbers_json_cannot_hold_are_rejected(text: str) -> None:
    with pytest.raises(JsonRejected, match="not valid JSON"):
        bounded(text)


def test_lone_surrogates_in_values_and_keys_become_replacement_characters() -> None:
    value = bounded('{"a\\ud83d": ["x\\udfffy", {"k": "\\ud800"}], "pair": "\\ud83d\\ude00"}')

    assert value == {"a\ufffd": ["x\ufffdy", {"k": "\ufffd"}], "pair": "\U0001f600"}


def test_bytes_that_are_not_utf8_become_replacement_characters() -> None:
    assert bounded(b'"caf\xe9 \xed\xa0\xbd"') == "caf\ufffd \ufffd\ufffd\ufffd"


def test_a_byte_order_mark_is_ignored() -> None:
    assert bounded("\ufeff[1]".encode()) == [1]


def test_clean_text_replaces_only_lone_surrogates() -> None:
    assert clean_text("a\ud83db\U0001f600") == "a\ufffdb\U0001f600"


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(item) for item in value.values()), default=0)
    return 0


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=30,
)


@given(JSON_VALUES)
def test_nesting_depth_is_the_depth_of_the_value(value: Any) -> None:
    assert nesting_depth(json.dumps(value)) == depth_of(value)


@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_any_text_is_json_without_lone_surrogates_or_rejected(text: str) -> None:
    try:
        value = bounded(text, max_depth=4)
    except JsonRejected:
        return
    written = json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    assert json.loads(written) == value


# -- the 404 judge --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b'{"error": {"code": "404", "message": "Resource not found"}}', NotFoundBody.GATEWAY),
        (b'{"error": {"code": "NotFound", "message": "The job was not found."}}', NotFoundBody.SERVICE),
        (b'{"error": {"code": "OperationNotFound", "message": "..."}}', NotFoundBody.SERVICE),
        (b"<html>404</html>", NotFoundBody.UNKNOWN),
        (b"", NotFoundBody.UNKNOWN),
        (b'{"error": "404"}', NotFoundBody.UNKNOWN),
        (b'{"error": {"code": 404}}', NotFoundBody.UNKNOWN),
        (b"[" * 100_000, NotFoundBody.UNKNOWN),
    ],
    ids=["gateway", "service", "operation", "html", "empty", "flat", "numeric", "deep"],
)
def test_a_404_body_is_the_gateways_the_services_or_unknown(body: bytes, kind: NotFoundBody) -> None:
    assert not_found_body(body) is kind


def test_the_gateways_404_is_the_routes_until_a_job_answers() -> None:
    check = RouteCheck()
    assert check.unknown_route("a", NotFoundBody.GATEWAY)
    check.answered()
    assert not check.unknown_route("a", NotFoundBody.GATEWAY)


def test_the_services_404_is_always_the_jobs() -> None:
    check = RouteCheck()
    assert not any(check.unknown_route(str(n), NotFoundBody.SERVICE) for n in range(10))


def test_ambiguous_404s_are_the_routes_once_enough_different_jobs_answered_them() -> None:
    check = RouteCheck()
    verdicts = [check.unknown_route(job, NotFoundBody.UNKNOWN) for job in ["a", "a", "b", "c", "d"]]

    assert SUSPECT_AFTER == 3
    assert verdicts == [False, False, False, True, True]


# -- hostile answers: parser and renderer ---------------------------------------------------------


def archive_bytes(page: JobPage) -> list[bytes]:
    """Everything the app would write for the job: task blobs and the manifest."""
    tasks = render_tasks(JOB_ID, merge_task_items([page, page]))
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
    return [*(task.data for task in tasks), render_manifest(record, tasks, now=datetime.now(UTC))]


@given(hostile_answers(PAGES))
def test_a_hostile_answer_is_a_page_that_archives_as_strict_utf8_json_or_malformed(body: bytes) -> None:
    try:
        page = parse_answer(body, job_id=JOB_ID)
        written = archive_bytes(page)
    except MalformedJob:
        return
    for data in written:
        json.loads(data.decode("utf-8"), parse_constant=pytest.fail)


def test_the_answer_depth_bound_leaves_room_for_every_real_answer() -> None:
    assert max(nesting_depth(json.dumps(page)) for page in PAGES) * 4 <= MAX_ANSWER_DEPTH
