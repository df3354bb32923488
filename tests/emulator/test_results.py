"""Task results: failures, document errors, version-dependent entity shapes and statistics."""

from __future__ import annotations

import aiohttp
import pytest

from local.emulator.server import RunningEmulator
from tests.emulator.support import Json, custom_task, get_json, job_body, prebuilt_task, submit

CURRENCY_TEXT = "The Seattle office paid $1,250.50 on 2025-03-15."


def _item(job: Json, name: str) -> Json:
    item: Json = next(item for item in job["tasks"]["items"] if item["taskName"] == name)
    return item


async def test_unknown_custom_project_fails_its_task_and_the_job_partially_completes(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    body = job_body(["Seattle"], [prebuilt_task("ner"), custom_task("custom", project="NoSuchProject")])
    job = await get_json(http, await submit(http, instant, body))

    assert job["status"] == "partiallyCompleted"
    assert (job["tasks"]["completed"], job["tasks"]["failed"]) == (1, 1)
    failed = _item(job, "custom")
    assert failed["status"] == "failed"
    assert "results" not in failed
    [error] = job["errors"]
    assert error["code"] == "ProjectNotFound"
    assert "custom" in error["message"]


async def test_job_fails_when_every_task_fails(http: aiohttp.ClientSession, instant: RunningEmulator) -> None:
    body = job_body(["Seattle"], [custom_task("a", deployment="nope"), custom_task("b", project="nope")])
    job = await get_json(http, await submit(http, instant, body))

    assert job["status"] == "failed"
    assert [error["target"] for error in job["errors"]] == ["a", "b"]


@pytest.mark.parametrize("text", ["", "   \n\t"])
async def test_empty_document_is_a_task_document_error(
    http: aiohttp.ClientSession, instant: RunningEmulator, text: str
) -> None:
    job = await get_json(http, await submit(http, instant, job_body(["Seattle", text])))

    for item in job["tasks"]["items"]:
        assert [document["id"] for document in item["results"]["documents"]] == ["0"]
        assert item["results"]["errors"] == [
            {
                "id": "1",
                "error": {
                    "code": "InvalidArgument",
                    "message": "Invalid Document in request.",
                    "innererror": {"code": "InvalidDocument", "message": "Document text is empty."},
                },
            }
        ]
    assert job["status"] == "succeeded"


async def test_custom_results_name_the_project_and_have_no_model_version(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    job = await get_json(http, await submit(http, instant, job_body(["Back on the East Coast."])))

    results = _item(job, "regions")["results"]
    assert set(results) == {"documents", "errors", "projectName", "deploymentName"}
    assert (results["projectName"], results["deploymentName"]) == ("MyProject", "MyDeployment")
    assert results["documents"][0]["entities"] == [
        {"text": "East Coast", "category": "USRegion", "offset": 12, "length": 10, "confidenceScore": 0.87}
    ]


async def test_demo_contracts_project_finds_its_labels(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    text = (
        "Contoso Ltd. pays Fabrikam Inc. $250,000 on March 15, 2025 under the laws of the State of Delaware."
    )
    task = custom_task("contract", project="ContractsNER", deployment="production")
    job = await get_json(http, await submit(http, instant, job_body([text], [task])))

    entities = _item(job, "contract")["results"]["documents"][0]["entities"]
    assert [(e["category"], e["text"]) for e in entities] == [
        ("party_name", "Contoso Ltd."),
        ("party_name", "Fabrikam Inc."),
        ("amount", "$250,000"),
        ("contract_date", "March 15, 2025"),
        ("jurisdiction", "State of Delaware"),
    ]


@pytest.mark.parametrize(
    ("api_version", "expected"),
    [
        ("2023-04-01", {"category": "Quantity", "subcategory": "Currency"}),
        (
            "2023-04-15-preview",
            {"category": "Quantity", "type": "Currency", "tags": ["Numeric", "Quantity", "Currency"]},
        ),
        (
            "2024-11-01",
            {
                "category": "Quantity",
                "type": "Currency",
                "tags": ["Numeric", "Quantity", "Currency"],
                "metadata": {
                    "metadataKind": "CurrencyMetadata",
                    "value": 1250.5,
                    "unit": "Dollar",
                    "iso4217": "USD",
                },
            },
        ),
    ],
)
async def test_prebuilt_entity_shape_follows_the_api_version(
    http: aiohttp.ClientSession, instant: RunningEmulator, api_version: str, expected: Json
) -> None:
    url = await submit(http, instant, job_body([CURRENCY_TEXT], [prebuilt_task()]), api_version)
    job = await get_json(http, url)

    [entity] = [
        e for e in _item(job, "ner")["results"]["documents"][0]["entities"] if e["text"] == "$1,250.50"
    ]
    shape = {
        key: value
        for key, value in entity.items()
        if key not in {"text", "offset", "length", "confidenceScore"}
    }
    if "tags" in shape:
        shape["tags"] = [tag["name"] for tag in shape["tags"]]
    assert shape == expected


@pytest.mark.parametrize(("api_version", "present"), [("2024-11-01", False), ("2025-05-15-preview", True)])
async def test_custom_documents_carry_detected_language_from_2025_05_15_preview(
    http: aiohttp.ClientSession, instant: RunningEmulator, api_version: str, present: bool
) -> None:
    url = await submit(http, instant, job_body(["Midwest"], [custom_task()]), api_version)
    document = _item(await get_json(http, url), "regions")["results"]["documents"][0]

    assert ("detectedLanguage" in document) is present
    if present:
        assert document["detectedLanguage"] == {
            "name": "English",
            "iso6391Name": "en",
            "confidenceScore": 1.0,
        }


async def test_show_stats_adds_job_task_and_document_statistics(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    url = await submit(http, instant, job_body(["Seattle" * 200, ""], [prebuilt_task()]))
    job = await get_json(http, url, showStats="true")

    expected = {
        "documentsCount": 2,
        "validDocumentsCount": 1,
        "erroneousDocumentsCount": 1,
        "transactionsCount": 2,
    }
    results = _item(job, "ner")["results"]
    assert job["statistics"] == expected
    assert results["statistics"] == expected
    assert results["documents"][0]["statistics"] == {"charactersCount": 1400, "transactionsCount": 2}


async def test_statistics_are_absent_without_show_stats(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    job = await get_json(http, await submit(http, instant, job_body(["Seattle"], [prebuilt_task()])))

    results = _item(job, "ner")["results"]
    assert "statistics" not in job
    assert "statistics" not in results
    assert "statistics" not in results["documents"][0]


async def test_model_version_latest_resolves_to_a_dated_version(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    job = await get_json(http, await submit(http, instant, job_body(["x"], [prebuilt_task()])))

    assert _item(job, "ner")["results"]["modelVersion"] == "2021-06-01"
