"""Hostile service answers through the real worker, on Azurite and the emulator (DESIGN.md, "Bad
input"): whatever the service answers, a message ends in one definite outcome, and no exception.

The emulator serves each example's answers verbatim (``cannedPages``): a valid job state (one of
the spec's examples, or a two-page job the emulator itself rendered) with one page mutated by
``tests.answers``. The message says the job had four unusable answers already, so an unusable
answer ends the job ``rejected`` at once; a usable one archives it, or reschedules it when it is
unfinished. Either way: no exception, no poison, and what was written is whole.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared.language import InPlaceRetry
from shared.messages import JobMessage
from shared.request_budget import Unlimited
from shared.runtime import Runtime, build_runtime
from shared.worker import MAX_UNUSABLE, Outcome, handle_message
from tests.answers import BUILTIN_PAGE, as_text, mutated, spec_pages, with_job
from tests.conftest import EMULATOR_KEY

from .conftest import Stack, documents

pytestmark = pytest.mark.integration

API_VERSION = "2024-11-01"


@pytest.fixture
async def runtime(stack: Stack) -> AsyncIterator[Runtime]:
    """The app's runtime without in-place retry sleeps or a request budget: one answer, one decision."""
    runtime = await build_runtime(
        stack.settings, retry=InPlaceRetry(attempts=1, base_delay=0.0), budget=Unlimited()
    )
    yield runtime
    await runtime.aclose()


@pytest.fixture
async def chains(stack: Stack) -> list[list[dict[str, Any]]]:
    """Valid answers, each a chain of pages: the spec's examples (one page each), a built-in page,
    and a 22-document job as the emulator rendered it (20 documents, then 2)."""
    job_id = await stack.submit(documents(22))
    pages: list[dict[str, Any]] = []
    url: str | None = f"{stack.emulator_url}/language/analyze-text/jobs/{job_id}?api-version={API_VERSION}"
    while url is not None and len(pages) < 5:
        async with stack.http.get(url, headers={"Ocp-Apim-Subscription-Key": EMULATOR_KEY}) as response:
            page = await response.json()
        assert page["status"] == "succeeded", page
        pages.append(page)
        url = page.get("nextLink")
    assert len(pages) == 2
    return [[page] for page in [BUILTIN_PAGE, *spec_pages()]] + [pages]


def canned(chain: list[dict[str, Any]], job_id: str, emulator_url: str) -> list[str]:
    """The chain's pages for ``job_id``, each page's nextLink naming the next canned page."""
    pages = [with_job(page, job_id) for page in chain]
    for index, page in enumerate(pages[:-1]):
        query = f"cannedPage={index + 1}&api-version={API_VERSION}"
        page["nextLink"] = f"{emulator_url}/language/analyze-text/jobs/{job_id}?{query}"
    return [json.dumps(page) for page in pages]


async def assert_archive_is_whole(stack: Stack, job_id: str) -> None:
    manifest_bytes = await stack.blob(f"{job_id}/manifest.json")
    assert manifest_bytes is not None
    manifest = json.loads(manifest_bytes.decode("utf-8"), parse_constant=pytest.fail)
    assert manifest["errors"] is not None
    for task in manifest["tasks"]:
        data = await stack.blob(task["blob"])
        assert data is not None, task["blob"]
        assert hashlib.sha256(data).hexdigest() == task["sha256"]
        json.loads(data.decode("utf-8"), parse_constant=pytest.fail)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_any_hostile_answer_ends_in_a_definite_outcome_through_the_worker(
    stack: Stack, runtime: Runtime, chains: list[list[dict[str, Any]]], data: st.DataObject
) -> None:
    chain = copy.deepcopy(data.draw(st.sampled_from(chains), label="chain"))
    job_id = await stack.submit(documents(1))
    texts = canned(chain, job_id, stack.emulator_url)
    which = data.draw(st.integers(min_value=0, max_value=len(texts) - 1), label="mutated page")
    hostile = data.draw(mutated(json.loads(texts[which])).flatmap(as_text), label="answer")
    texts[which] = hostile.decode("utf-8")
    await stack.admin("POST", f"jobs/{job_id}/overrides", {"cannedPages": texts})
    message = {"jobId": job_id, "_poll": {"attempt": 1, "unusable": MAX_UNUSABLE - 1}}

    result = await handle_message(json.dumps(message).encode(), dequeue_count=1, runtime=runtime)

    event(f"{result.outcome.value} {result.status}")
    assert result.outcome in (Outcome.ARCHIVED, Outcome.RESCHEDULED), result
    if result.outcome is Outcome.ARCHIVED:
        await assert_archive_is_whole(stack, job_id)
    else:
        assert await stack.manifest(job_id) is None
        assert f"{job_id}.json" in await stack.ledger_names()
    assert await stack.poison_messages() == []


async def test_results_null_on_one_page_and_documents_on_the_next_are_archived(
    stack: Stack, runtime: Runtime, chains: list[list[dict[str, Any]]]
) -> None:
    job_id = await stack.submit(documents(1))
    pages = [json.loads(text) for text in canned(chains[-1], job_id, stack.emulator_url)]
    pages[0]["tasks"]["items"][0]["results"] = None
    await stack.admin("POST", f"jobs/{job_id}/overrides", {"cannedPages": [json.dumps(p) for p in pages]})

    result = await handle_message(json.dumps({"jobId": job_id}).encode(), dequeue_count=1, runtime=runtime)

    assert result.outcome is Outcome.ARCHIVED
    blob = await stack.blob(f"{job_id}/tasks/00-{pages[0]['tasks']['items'][0]['kind']}.json")
    assert blob is not None
    assert len(json.loads(blob)["results"]["documents"]) == 2


async def test_an_answer_too_deep_to_parse_ends_the_job_rejected_with_the_reason(
    stack: Stack, runtime: Runtime
) -> None:
    job_id = await stack.submit(documents(1))
    nested = "[" * 100_000 + "]" * 100_000
    deep = f'{{"jobId": "{job_id}", "status": "succeeded", "x": {nested}}}'
    await stack.admin("POST", f"jobs/{job_id}/overrides", {"cannedPages": [deep]})
    before = JobMessage(job_id=job_id, attempt=4, unusable=MAX_UNUSABLE - 1, first_seen_at=datetime.now(UTC))
    message = await stack.rescheduled(before)  # the app's own count, backed by its ledger record

    result = await handle_message(message.encode(), dequeue_count=1, runtime=runtime)

    assert (result.outcome, result.status) == (Outcome.ARCHIVED, "rejected")
    manifest = await stack.manifest(job_id)
    assert manifest is not None
    assert manifest["errors"][0]["code"] == "UnusableResponse"
    assert "nests deeper" in manifest["errors"][0]["message"]


async def test_an_unusable_answer_before_the_last_retry_reschedules_the_job(
    stack: Stack, runtime: Runtime
) -> None:
    job_id = await stack.submit(documents(1))
    await stack.admin("POST", f"jobs/{job_id}/overrides", {"cannedPages": ['{"status": NaN}']})

    result = await handle_message(json.dumps({"jobId": job_id}).encode(), dequeue_count=1, runtime=runtime)

    assert result.outcome is Outcome.RESCHEDULED
    text, _ = await stack.next_job_message()
    assert json.loads(text)["_poll"]["unusable"] == 1
