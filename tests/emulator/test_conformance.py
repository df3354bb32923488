"""Responses have the structure of the saved spec examples (../shared/language-api/examples)."""

from __future__ import annotations

import copy
import re
from typing import Any

import aiohttp
import pytest

from local.emulator.server import RunningEmulator
from tests.emulator.support import (
    EXAMPLES,
    EXAMPLES_ABSENT,
    JOBS,
    KEY_HEADERS,
    Json,
    example,
    get_json,
    job_id_of,
    submit,
)

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason=EXAMPLES_ABSENT)

# Fields the contract marks optional (CONTRACT.md §2, §7): present or not, the structure is the same.
OPTIONAL_JOB_FIELDS = {"errors", "nextLink", "statistics"}
OPTIONAL_RESULTS_FIELDS = {"statistics", "warnings"}
OPTIONAL_DOCUMENT_FIELDS = {"statistics", "detectedLanguage"}
JOB_TIMESTAMPS = {"lastUpdatedDateTime", "lastUpdateDateTime"}
# The examples' custom NER entities ("Pacific Northwest" at offset 45, "East Coast" at 63) lie beyond
# the end of their own texts, so the texts get these phrases appended to make the entity check bite.
CUSTOM_PHRASES = " Greetings from the Pacific Northwest and the East Coast."


def _names(pattern: str) -> list[str]:
    return sorted(path.name for path in EXAMPLES.glob(pattern)) if EXAMPLES.is_dir() else ["<absent>"]


STATUS_EXAMPLES = _names("*_SuccessfulAnalyzeTextJobsMultipleTaskStatusRequest.json")
SUBMIT_EXAMPLES = _names("*_SuccessfulAnalyzeTextJobsMultipleTaskSubmitRequest.json")
CANCEL_EXAMPLES = _names("*_SuccessfulAnalyzeTextJobsCancelRequest.json")


def _version(file_name: str) -> str:
    return file_name.split("_", maxsplit=1)[0]


def _submit_body(version: str) -> Json:
    """The version's own submit example, else the 2024-11-01 one."""
    own = EXAMPLES / f"{version}_SuccessfulAnalyzeTextJobsMultipleTaskSubmitRequest.json"
    name = own.name if own.exists() else "2024-11-01_SuccessfulAnalyzeTextJobsMultipleTaskSubmitRequest.json"
    body: Json = copy.deepcopy(example(name)["parameters"]["body"])
    return body


def _status_body(file_name: str) -> Json:
    body: Json = example(file_name)["responses"]["200"]["body"]
    return body


async def _terminal_job(
    http: aiohttp.ClientSession, emulator: RunningEmulator, body: Json, version: str
) -> Json:
    url = await submit(http, emulator, body, version)
    emulator.state.clock.advance(10)
    return await get_json(http, url)


def _fields(items: list[Json]) -> tuple[set[str], set[str]]:
    """(union, intersection) of the field names of some JSON objects."""
    keys = [set(item) for item in items]
    return set().union(*keys), set.intersection(*keys) if keys else set()


def _normalised_job_fields(job: Json) -> set[str]:
    return {"lastUpdatedDateTime" if key in JOB_TIMESTAMPS else key for key in job}


@pytest.mark.parametrize("file_name", STATUS_EXAMPLES)
async def test_job_state_has_the_structure_of_the_status_example(
    http: aiohttp.ClientSession, emulator: RunningEmulator, file_name: str
) -> None:
    expected = _status_body(file_name)
    body = _submit_body(_version(file_name))
    for document in body["analysisInput"]["documents"]:
        document["text"] += CUSTOM_PHRASES
    job = await _terminal_job(http, emulator, body, _version(file_name))

    assert emulator.state.config.job_timestamp_field in job
    assert (
        _normalised_job_fields(job) - OPTIONAL_JOB_FIELDS
        == _normalised_job_fields(expected) - OPTIONAL_JOB_FIELDS
    )
    assert (job["status"], job["displayName"]) == (expected["status"], expected["displayName"])
    assert {k: v for k, v in job["tasks"].items() if k != "items"} == {
        k: v for k, v in expected["tasks"].items() if k != "items"
    }
    actual_items = {item["taskName"]: item for item in job["tasks"]["items"]}
    for expected_item in expected["tasks"]["items"]:
        item = actual_items[expected_item["taskName"]]
        _assert_item_structure(item, expected_item)


def _assert_item_structure(item: Json, expected_item: Json) -> None:
    where = f"{expected_item['kind']} ({expected_item['taskName']})"
    assert set(item) == set(expected_item), where
    assert item["kind"] == expected_item["kind"]
    results, expected_results = item["results"], expected_item["results"]
    assert set(results) - OPTIONAL_RESULTS_FIELDS == set(expected_results) - OPTIONAL_RESULTS_FIELDS, where
    document_fields, _ = _fields(expected_results["documents"])
    for document in results["documents"]:
        assert set(document) - OPTIONAL_DOCUMENT_FIELDS == document_fields - OPTIONAL_DOCUMENT_FIELDS, where
    expected_entities = [e for d in expected_results["documents"] for e in d["entities"]]
    actual_entities = [e for d in results["documents"] for e in d["entities"]]
    allowed, required = _fields(expected_entities)
    assert actual_entities, f"{where}: no entities to compare"
    for entity in actual_entities:
        assert required <= set(entity) <= allowed, f"{where}: {sorted(entity)} vs {sorted(allowed)}"


@pytest.mark.parametrize("file_name", STATUS_EXAMPLES)
async def test_prebuilt_entities_match_the_status_example(
    http: aiohttp.ClientSession, emulator: RunningEmulator, file_name: str
) -> None:
    job = await _terminal_job(http, emulator, _submit_body(_version(file_name)), _version(file_name))

    def prebuilt(state: Json) -> list[list[tuple[Any, ...]]]:
        item = next(i for i in state["tasks"]["items"] if i["kind"] == "EntityRecognitionLROResults")
        return [
            [
                (e["text"], e["offset"], e["length"], e["category"], e.get("subcategory"), e.get("type"))
                for e in document["entities"]
            ]
            for document in item["results"]["documents"]
        ]

    assert prebuilt(job) == prebuilt(_status_body(file_name))


@pytest.mark.parametrize("file_name", SUBMIT_EXAMPLES)
async def test_submit_answers_like_the_submit_example(
    http: aiohttp.ClientSession, emulator: RunningEmulator, file_name: str
) -> None:
    version = _version(file_name)
    spec = example(file_name)
    async with http.post(
        f"{emulator.base_url}{JOBS}",
        params={"api-version": version},
        json=spec["parameters"]["body"],
        headers=KEY_HEADERS,
    ) as response:
        assert response.status == int(next(iter(spec["responses"])))
        assert await response.read() == b""
        location = response.headers["operation-location"]
    template = spec["responses"]["202"]["headers"]["Operation-Location"].split("?")[0]
    # Real traffic always carries api-version, even where the example omits it (CONTRACT.md §4).
    assert location == (
        template.replace("{endpoint}", emulator.base_url).replace("{jobId}", job_id_of(location))
        + f"?api-version={version}"
    )


@pytest.mark.parametrize("file_name", CANCEL_EXAMPLES)
async def test_cancel_answers_like_the_cancel_example(
    http: aiohttp.ClientSession, emulator: RunningEmulator, file_name: str
) -> None:
    version = _version(file_name)
    spec = example(file_name)
    job_url = await submit(http, emulator, _submit_body(version), version)
    job_id = job_id_of(job_url)
    async with http.post(
        f"{emulator.base_url}{JOBS}/{job_id}:cancel", params={"api-version": version}, headers=KEY_HEADERS
    ) as response:
        assert response.status == 202
        assert await response.read() == b""
        location = response.headers["operation-location"]
    template = spec["responses"]["202"]["headers"]["Operation-Location"]
    # Some cancel examples name another api-version (a copy-paste, CONTRACT.md surprise 4); the
    # service answers with the version of the request.
    expected = re.sub(r"api-version=[^&]+", f"api-version={version}", template)
    assert location == expected.replace("{Endpoint}", emulator.base_url).replace("{jobId}", job_id)
    assert location == job_url
