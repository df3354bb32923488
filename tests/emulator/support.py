"""Helpers for the emulator tests: request bodies and thin raw-HTTP calls (no app code involved)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from local.emulator.server import RunningEmulator

API_VERSION = "2024-11-01"
KEY = "emulator-key"
KEY_HEADERS = {"Ocp-Apim-Subscription-Key": KEY}
JOBS = "/language/analyze-text/jobs"
EXAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "language-api" / "examples"
EXAMPLES_ABSENT = f"spec examples folder {EXAMPLES} is absent (it lives beside the checkout, not in it)"

Json = dict[str, Any]
StartEmulator = Callable[..., Awaitable[RunningEmulator]]
"""Starts an emulator with EmulatorConfig keyword overrides (the `start_emulator` fixture)."""


def prebuilt_task(name: str = "ner", index_type: str = "UnicodeCodePoint") -> Json:
    return {"kind": "EntityRecognition", "taskName": name, "parameters": {"stringIndexType": index_type}}


def custom_task(
    name: str = "regions",
    project: str = "MyProject",
    deployment: str = "MyDeployment",
    index_type: str = "UnicodeCodePoint",
) -> Json:
    parameters = {"projectName": project, "deploymentName": deployment, "stringIndexType": index_type}
    return {"kind": "CustomEntityRecognition", "taskName": name, "parameters": parameters}


def job_body(texts: list[str], tasks: list[Json] | None = None, display_name: str | None = None) -> Json:
    body: Json = {
        "analysisInput": {
            "documents": [{"id": str(i), "text": text, "language": "en"} for i, text in enumerate(texts)]
        },
        "tasks": tasks if tasks is not None else [prebuilt_task(), custom_task()],
    }
    if display_name is not None:
        body["displayName"] = display_name
    return body


def example(name: str) -> Json:
    loaded: Json = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return loaded


async def submit(
    http: aiohttp.ClientSession, emulator: RunningEmulator, body: Json, api_version: str = API_VERSION
) -> str:
    """Submits a job and returns its operation-location."""
    async with http.post(
        f"{emulator.base_url}{JOBS}", params={"api-version": api_version}, json=body, headers=KEY_HEADERS
    ) as response:
        assert response.status == 202, await response.text()
        return response.headers["operation-location"]


async def get_json(http: aiohttp.ClientSession, url: str, **params: str) -> Json:
    """GETs a job URL (adding query parameters) and returns the 200 body."""
    async with http.get(url, params=params or None, headers=KEY_HEADERS) as response:
        assert response.status == 200, await response.text()
        body: Json = await response.json()
        return body


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Json]:
    """Any request; returns the status and the JSON body ({} when empty)."""
    async with http.request(method, url, json=json_body, headers=headers) as response:
        text = await response.text()
        return response.status, json.loads(text) if text else {}


def job_id_of(url: str) -> str:
    return url.split("/jobs/")[1].split("?", maxsplit=1)[0]


def advance(emulator: RunningEmulator, seconds: float) -> None:
    emulator.state.clock.advance(seconds)
