"""Service answers as the world sends them (DESIGN.md, "Bad input"): bounded JSON reading, the
Unicode rule, the 404 judge, and the page parser and archive renderer under hostile answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local.fuzz.targets import JOB_ID, check_answer
from shared.jobs import MAX_ANSWER_BYTES, MAX_ANSWER_DEPTH, MalformedJob, parse_answer
from shared.jsontext import nesting_depth
from shared.routecheck import SUSPECT_AFTER, NotFoundBody, RouteCheck, not_found_body
from tests.answers import BUILTIN_PAGE, hostile_answers, spec_pages, with_job

PAGES = [with_job(page, JOB_ID) for page in [BUILTIN_PAGE, *spec_pages()]]


def answer(text: str | bytes) -> Any:
    """The parsed answer of a page whose body is ``{"jobId": ..., "status": "running", "x": text}``."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    body = b'{"jobId": "' + JOB_ID.encode() + b'", "status": "running", "x": ' + raw + b"}"
    return parse_answer(body, job_id=JOB_ID).raw["x"]


# -- bounded answers ------------------------------------------------------------------------------


def test_nesting_at_the_bound_parses_and_one_more_level_is_rejected() -> None:
    inner = MAX_ANSWER_DEPTH - 1  # the page itself is one level
    assert answer("[" * inner + "]" * inner) is not None
    with pytest.raises(MalformedJob, match="nests deeper"):
        answer("[" * (inner + 1) + "]" * (inner + 1))


def test_nesting_far_beyond_the_recursion_limit_is_malformed_not_a_recursion_error() -> None:
    with pytest.raises(MalformedJob, match="nests deeper"):
        answer('{"a": ' * 100_000 + "1" + "}" * 100_000)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '[[[[[[[[[[{{{{{{{{{{ \\" ]]' * 10
    assert answer(json.dumps(text)) == text


def test_an_answer_over_the_size_bound_is_malformed_before_parsing() -> None:
    with pytest.raises(MalformedJob, match="bytes, more than"):
        answer(json.dumps("x" * MAX_ANSWER_BYTES))


@pytest.mark.parametrize(
    "text", ["NaN", "[Infinity]", '{"x": -Infinity}', "1e999", "[-1e400]", "1" * 5000], ids=str.__len__
)
def test_numbers_json_cannot_hold_are_malformed(text: str) -> None:
    with pytest.raises(MalformedJob, match="not valid JSON"):
        answer(text)


def test_lone_surrogates_in_values_and_keys_become_replacement_characters() -> None:
    value = answer('{"a\\ud83d": ["x\\udfffy", {"k": "\\ud800"}], "pair": "\\ud83d\\ude00"}')

    assert value == {"a\ufffd": ["x\ufffdy", {"k": "\ufffd"}], "pair": "\U0001f600"}


def test_bytes_that_are_not_utf8_become_replacement_characters() -> None:
    assert answer(b'"caf\xe9"') == "caf\ufffd"


def test_a_byte_order_mark_is_ignored() -> None:
    body = b'\xef\xbb\xbf{"jobId": "' + JOB_ID.encode() + b'", "status": "running"}'
    assert parse_answer(body, job_id=JOB_ID).status == "running"


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


@given(JSON_VALUES)
def test_nesting_depth_of_utf8_bytes_is_that_of_their_text(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)  # brackets, quotes and backslashes inside strings

    assert nesting_depth(text.encode("utf-8", "surrogatepass")) == nesting_depth(text) == depth_of(value)


@given(st.text(alphabet='[]{}"\\ a\u00e9', max_size=60))
def test_nesting_depth_of_malformed_text_is_that_of_its_bytes(text: str) -> None:
    assert nesting_depth(text.encode("utf-8")) == nesting_depth(text) >= 0


@pytest.mark.parametrize("depth", [31, 32, 33, 500_000])
def test_nesting_depth_of_balanced_text_deeper_than_any_document_is_exact(depth: int) -> None:
    # Past the levels a real document has, brackets are counted one by one: linear, however deep.
    assert nesting_depth(b"[" * depth + b"]" * depth) == depth


@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_any_text_in_an_answer_is_json_without_lone_surrogates_or_malformed(text: str) -> None:
    try:
        value = answer(text)
    except MalformedJob:
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


@given(hostile_answers(PAGES))
def test_a_hostile_answer_is_a_page_that_archives_as_strict_utf8_json_or_malformed(body: bytes) -> None:
    check_answer(body)  # the invariant `make fuzz` checks too (local/fuzz/targets.py)


def test_the_answer_depth_bound_leaves_room_for_every_real_answer() -> None:
    assert max(nesting_depth(json.dumps(page)) for page in PAGES) * 4 <= MAX_ANSWER_DEPTH
