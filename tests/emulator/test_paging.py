"""Pagination over documents: page size, top/skip, absolute nextLink, paged document errors."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest

from local.emulator.server import RunningEmulator
from tests.emulator.support import (
    KEY_HEADERS,
    Json,
    StartEmulator,
    call,
    custom_task,
    get_json,
    job_body,
    job_id_of,
    prebuilt_task,
    submit,
)

# 25 documents (the async maximum); every fifth one is empty and so a document error.
TEXTS = ["" if i % 5 == 4 else f"Document {i} mentions Seattle and the Midwest." for i in range(25)]


def _page_ids(job: Json) -> list[list[str]]:
    """Per task: ids of the documents and of the errors on this page, in submitted order."""
    return [
        sorted(
            [d["id"] for d in item["results"]["documents"]] + [e["id"] for e in item["results"]["errors"]],
            key=int,
        )
        for item in job["tasks"]["items"]
    ]


async def _job(http: aiohttp.ClientSession, emulator: RunningEmulator) -> str:
    return await submit(http, emulator, job_body(TEXTS, [prebuilt_task(), custom_task()]))


async def test_first_page_has_twenty_documents_per_task_and_an_absolute_next_link(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    url = await _job(http, instant)
    job = await get_json(http, url)

    assert _page_ids(job) == [[str(i) for i in range(20)]] * 2
    link = urlsplit(job["nextLink"])
    assert f"{link.scheme}://{link.netloc}" == instant.base_url
    assert link.path == f"/language/analyze-text/jobs/{job_id_of(url)}"
    assert parse_qsl(link.query) == [("top", "5"), ("skip", "20"), ("api-version", "2024-11-01")]


async def test_following_next_link_returns_the_rest_and_no_further_link(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    first = await get_json(http, await _job(http, instant))
    second = await get_json(http, first["nextLink"])

    assert _page_ids(second) == [[str(i) for i in range(20, 25)]] * 2
    assert "nextLink" not in second


async def test_document_errors_are_paged_with_the_same_window(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    first = await get_json(http, await _job(http, instant))
    second = await get_json(http, first["nextLink"])

    errors = [[e["id"] for e in job["tasks"]["items"][0]["results"]["errors"]] for job in (first, second)]
    assert errors == [["4", "9", "14", "19"], ["24"]]


async def test_next_link_keeps_show_stats_as_given(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    job = await get_json(http, await _job(http, instant), showStats="True")

    assert parse_qsl(urlsplit(job["nextLink"]).query) == [
        ("showStats", "True"),
        ("top", "5"),
        ("skip", "20"),
        ("api-version", "2024-11-01"),
    ]


@pytest.mark.parametrize(
    ("top", "skip", "expected", "next_query"),
    [
        ("3", "2", ["2", "3", "4"], None),
        (None, "22", ["22", "23", "24"], None),
        ("24", "0", [str(i) for i in range(20)], [("top", "4"), ("skip", "20")]),
    ],
)
async def test_top_and_skip_select_the_window(
    http: aiohttp.ClientSession,
    instant: RunningEmulator,
    top: str | None,
    skip: str,
    expected: list[str],
    next_query: list[tuple[str, str]] | None,
) -> None:
    params = {"skip": skip} | ({"top": top} if top else {})
    job = await get_json(http, await _job(http, instant), **params)

    assert _page_ids(job) == [expected] * 2
    if next_query is None:
        assert "nextLink" not in job
    else:
        assert parse_qsl(urlsplit(job["nextLink"]).query)[:2] == next_query


async def test_page_size_is_configurable(http: aiohttp.ClientSession, start_emulator: StartEmulator) -> None:
    emulator = await start_emulator(not_started_seconds=0.0, running_seconds=0.0, page_size=10)
    job = await get_json(http, await _job(http, emulator))

    assert _page_ids(job)[0] == [str(i) for i in range(10)]
    assert parse_qsl(urlsplit(job["nextLink"]).query)[:2] == [("top", "15"), ("skip", "10")]


async def test_no_next_link_before_any_task_has_results(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    job = await get_json(http, await _job(http, emulator))

    assert job["status"] == "notStarted"
    assert "nextLink" not in job


@pytest.mark.parametrize("query", ["top=0", "top=-1", "skip=x", "top=1.5", "showStats=maybe"])
async def test_invalid_paging_parameters_are_rejected(
    http: aiohttp.ClientSession, instant: RunningEmulator, query: str
) -> None:
    url = await _job(http, instant)
    status, body = await call(http, "GET", f"{url}&{query}", headers=KEY_HEADERS)

    assert status == 400
    assert body["error"]["code"] == "InvalidRequest"
    assert body["error"]["innererror"]["code"] == "InvalidParameterValue"
