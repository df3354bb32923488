"""Authentication, api-version, request validation, unknown/expired jobs and common headers."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest

from local.emulator.server import RunningEmulator
from tests.emulator.support import (
    API_VERSION,
    JOBS,
    KEY_HEADERS,
    StartEmulator,
    call,
    custom_task,
    get_json,
    job_body,
    submit,
)

UNAUTHORIZED = {
    "error": {
        "code": "401",
        "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
        "provide a valid key for an active subscription and use a correct regional API endpoint for your "
        "resource.",
    }
}


def _jobs_url(emulator: RunningEmulator, suffix: str = "") -> str:
    return f"{emulator.base_url}{JOBS}{suffix}?api-version={API_VERSION}"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Ocp-Apim-Subscription-Key": "wrong"}, {"Authorization": "Bearer not-a-known-token"}],
    ids=["missing", "wrong-key", "unknown-token"],
)
async def test_bad_credentials_get_the_apim_401_body(
    http: aiohttp.ClientSession, emulator: RunningEmulator, headers: dict[str, str]
) -> None:
    status, body = await call(http, "POST", _jobs_url(emulator), json_body=job_body(["x"]), headers=headers)

    assert (status, body) == (401, UNAUTHORIZED)


async def test_unauthenticated_unknown_job_is_401_not_404(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    status, _ = await call(http, "GET", _jobs_url(emulator, f"/{uuid.uuid4()}"))

    assert status == 401


async def test_accepted_bearer_token_authenticates(
    http: aiohttp.ClientSession, start_emulator: StartEmulator
) -> None:
    emulator = await start_emulator(api_key=None, bearer_tokens=frozenset({"token-1"}))
    headers = {"Authorization": "Bearer token-1"}

    status, _ = await call(http, "POST", _jobs_url(emulator), json_body=job_body(["x"]), headers=headers)
    key_status, _ = await call(
        http,
        "POST",
        _jobs_url(emulator),
        json_body=job_body(["x"]),
        headers={"Ocp-Apim-Subscription-Key": "x"},
    )

    assert (status, key_status) == (202, 401)


@pytest.mark.parametrize("query", ["", "?api-version=2019-01-01"], ids=["missing", "unknown"])
async def test_missing_or_unknown_api_version_is_400(
    http: aiohttp.ClientSession, emulator: RunningEmulator, query: str
) -> None:
    status, body = await call(
        http, "POST", f"{emulator.base_url}{JOBS}{query}", json_body=job_body(["x"]), headers=KEY_HEADERS
    )

    assert status == 400
    assert body["error"]["code"] == "InvalidRequest"


def _documents(count: int, text: str = "x") -> list[dict[str, str]]:
    return [{"id": str(i), "text": text} for i in range(count)]


def _request(documents: Any = None, tasks: Any = None) -> dict[str, Any]:
    """A submit body that is valid except for what the caller passes."""
    return {
        "analysisInput": {"documents": _documents(1) if documents is None else documents},
        "tasks": [{"kind": "EntityRecognition"}] if tasks is None else tasks,
    }


def _task(kind: str, **parameters: str) -> list[dict[str, Any]]:
    return [{"kind": kind, "parameters": parameters}]


INVALID_BODIES: list[tuple[str, Any, str]] = [
    ("not-json", b"{", "InvalidRequestBodyFormat"),
    ("not-object", [], "InvalidRequestBodyFormat"),
    ("no-documents", _request(documents=[]), "MissingInputDocuments"),
    ("26-documents", _request(documents=_documents(26)), "InvalidDocumentBatch"),
    ("too-many-characters", _request(documents=_documents(2, "x" * 62_501)), "InvalidDocumentBatch"),
    (
        "duplicate-ids",
        _request(documents=[{"id": "1", "text": "a"}, {"id": "1", "text": "b"}]),
        "InvalidDocument",
    ),
    ("numeric-id", _request(documents=[{"id": 1, "text": "a"}]), "InvalidDocument"),
    ("missing-text", _request(documents=[{"id": "1"}]), "InvalidDocument"),
    ("no-tasks", _request(tasks=[]), "InvalidParameterValue"),
    ("unknown-kind", _request(tasks=[{"kind": "SentimentAnalysis"}]), "InvalidParameterValue"),
    (
        "custom-without-deployment",
        _request(tasks=_task("CustomEntityRecognition", projectName="MyProject")),
        "InvalidParameterValue",
    ),
    (
        "bad-index-type",
        _request(tasks=_task("EntityRecognition", stringIndexType="Bytes")),
        "InvalidParameterValue",
    ),
    (
        "bad-model-version",
        _request(tasks=_task("EntityRecognition", modelVersion="bad")),
        "InvalidParameterValue",
    ),
]


@pytest.mark.parametrize(
    ("body", "inner_code"), [(b, c) for _, b, c in INVALID_BODIES], ids=[n for n, _, _ in INVALID_BODIES]
)
async def test_invalid_submission_is_400_invalid_request(
    http: aiohttp.ClientSession, emulator: RunningEmulator, body: Any, inner_code: str
) -> None:
    payload = {"data": body} if isinstance(body, bytes) else {"json": body}
    async with http.post(_jobs_url(emulator), headers=KEY_HEADERS, **payload) as response:
        assert response.status == 400
        error = (await response.json())["error"]

    assert error["code"] == "InvalidRequest"
    assert error["innererror"]["code"] == inner_code
    assert emulator.state.jobs == {}


async def test_twenty_five_documents_are_accepted(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    await submit(http, emulator, job_body(["x"] * 25))


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid"], ids=["unknown", "not-a-uuid"])
async def test_unknown_job_is_404_not_found(
    http: aiohttp.ClientSession, emulator: RunningEmulator, job_id: str
) -> None:
    for method, suffix in (("GET", ""), ("POST", ":cancel")):
        status, body = await call(
            http, method, _jobs_url(emulator, f"/{job_id}{suffix}"), headers=KEY_HEADERS
        )
        assert status == 404
        assert body["error"]["code"] == "NotFound"


async def test_job_is_purged_after_its_expiration(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    url = await submit(http, emulator, job_body(["x"]))
    await call(http, "POST", f"{emulator.base_url}/_emulator/clock", json_body={"advanceSeconds": 86_399})
    await get_json(http, url)
    await call(http, "POST", f"{emulator.base_url}/_emulator/clock", json_body={"advanceSeconds": 2})

    status, body = await call(http, "GET", url, headers=KEY_HEADERS)

    assert (status, body["error"]["code"]) == (404, "NotFound")
    assert emulator.state.jobs == {}


async def test_expiry_follows_the_configured_retention(
    http: aiohttp.ClientSession, start_emulator: StartEmulator
) -> None:
    emulator = await start_emulator(expiry_seconds=60.0)
    url = await submit(http, emulator, job_body(["x"]))
    emulator.state.clock.advance(61)

    status, _ = await call(http, "GET", url, headers=KEY_HEADERS)

    assert status == 404


async def test_every_response_has_an_apim_request_id_and_json_errors(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    url = await submit(http, emulator, job_body(["x"], [custom_task()]))
    requests = [
        ("GET", url, KEY_HEADERS),
        ("GET", url, {}),
        ("DELETE", url, KEY_HEADERS),
        ("GET", f"{emulator.base_url}/language/unknown", KEY_HEADERS),
        ("GET", f"{emulator.base_url}/_emulator/stats", {}),
    ]
    request_ids = set()
    for method, target, headers in requests:
        async with http.request(method, target, headers=headers) as response:
            request_ids.add(response.headers["apim-request-id"])
            assert response.headers["Content-Type"] == "application/json; charset=utf-8"
            assert "error" in await response.json() or response.status == 200
    assert len(request_ids) == len(requests)
