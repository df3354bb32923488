"""The /_emulator admin API: clock, per-job overrides, stats and the job listing."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import aiohttp
import pytest

from local.emulator.server import RunningEmulator
from tests.emulator.support import (
    KEY_HEADERS,
    Json,
    call,
    get_json,
    job_body,
    job_id_of,
    submit,
)


async def _override(http: aiohttp.ClientSession, emulator: RunningEmulator, url: str, payload: Json) -> Json:
    status, body = await call(
        http, "POST", f"{emulator.base_url}/_emulator/jobs/{job_id_of(url)}/overrides", json_body=payload
    )
    assert status == 200, body
    return body


async def test_clock_endpoint_moves_the_lifecycle_forward(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    url = await submit(http, emulator, job_body(["x"]))
    status, body = await call(
        http, "POST", f"{emulator.base_url}/_emulator/clock", json_body={"advanceSeconds": 5}
    )

    assert status == 200
    assert body["now"].endswith("Z")
    assert (await get_json(http, url))["status"] == "succeeded"


@pytest.mark.parametrize("payload", [{"advanceSeconds": -1}, {"advanceSeconds": "5"}, {}])
async def test_clock_rejects_bad_advances(
    http: aiohttp.ClientSession, emulator: RunningEmulator, payload: Json
) -> None:
    status, _ = await call(http, "POST", f"{emulator.base_url}/_emulator/clock", json_body=payload)

    assert status == 400


async def test_next_link_base_override_points_next_link_elsewhere(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    url = await submit(http, instant, job_body(["x"] * 25))
    await _override(http, instant, url, {"nextLinkBase": "https://elsewhere.example/"})

    link = urlsplit((await get_json(http, url))["nextLink"])

    assert (link.scheme, link.netloc) == ("https", "elsewhere.example")
    assert link.path == f"/language/analyze-text/jobs/{job_id_of(url)}"


async def test_malformed_pages_override_breaks_every_get_of_that_job(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    broken = await submit(http, instant, job_body(["x"]))
    healthy = await submit(http, instant, job_body(["x"]))
    await _override(http, instant, broken, {"malformedPages": True})

    for _ in range(2):
        async with http.get(broken, headers=KEY_HEADERS) as response:
            assert response.status == 200
            with pytest.raises(json.JSONDecodeError):
                json.loads(await response.text())
    await get_json(http, healthy)


@pytest.mark.parametrize("status", ["failed", "cancelled", "partiallySucceeded"])
async def test_status_override_forces_the_job_status(
    http: aiohttp.ClientSession, emulator: RunningEmulator, status: str
) -> None:
    url = await submit(http, emulator, job_body(["x"]))
    await _override(http, emulator, url, {"status": status})
    emulator.state.clock.advance(10)

    job = await get_json(http, url)

    assert job["status"] == status
    expected_items = {"failed": ["failed"] * 2, "cancelled": ["cancelled"] * 2, "partiallySucceeded": []}
    assert [item["status"] for item in job["tasks"]["items"]] == expected_items[status]
    assert bool(job["errors"]) is (status == "failed")


async def test_purge_override_makes_the_job_404(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    url = await submit(http, instant, job_body(["x"]))

    body = await _override(http, instant, url, {"purge": True})
    status, _ = await call(http, "GET", url, headers=KEY_HEADERS)

    assert body == {"jobId": job_id_of(url), "purged": True}
    assert status == 404


@pytest.mark.parametrize(
    "payload", [{"nextLinkBase": "ftp://x"}, {"malformedPages": "yes"}, {"status": ""}, {"colour": "red"}]
)
async def test_invalid_overrides_change_nothing(
    http: aiohttp.ClientSession, instant: RunningEmulator, payload: Json
) -> None:
    url = await submit(http, instant, job_body(["x"]))
    status, _ = await call(
        http,
        "POST",
        f"{instant.base_url}/_emulator/jobs/{job_id_of(url)}/overrides",
        json_body={"malformedPages": True, **payload},
    )

    assert status == 400
    await get_json(http, url)


async def test_overrides_of_an_unknown_job_are_404(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    status, _ = await call(
        http, "POST", f"{instant.base_url}/_emulator/jobs/nope/overrides", json_body={"purge": True}
    )

    assert status == 404


async def test_stats_count_language_calls_per_route_and_per_job(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    url = await submit(http, instant, job_body(["x"]))
    for _ in range(3):
        await get_json(http, url)
    await call(http, "GET", url)  # unauthenticated: counted too
    await call(http, "GET", f"{instant.base_url}/_emulator/jobs")  # admin: never counted

    status, stats = await call(http, "GET", f"{instant.base_url}/_emulator/stats")

    assert status == 200
    assert stats == instant.state.stats()
    assert stats["requests"] == [
        {"method": "POST", "route": "/language/analyze-text/jobs", "status": 202, "count": 1},
        {"method": "GET", "route": "/language/analyze-text/jobs/{job_id}", "status": 200, "count": 3},
        {"method": "GET", "route": "/language/analyze-text/jobs/{job_id}", "status": 401, "count": 1},
    ]
    assert stats["byJob"] == {job_id_of(url): {"POST": 1, "GET": 4, "CANCEL": 0}}


async def test_jobs_listing_shows_ids_and_statuses(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    first = await submit(http, emulator, job_body(["x"]))
    emulator.state.clock.advance(5)
    second = await submit(http, emulator, job_body(["x"]))

    status, body = await call(http, "GET", f"{emulator.base_url}/_emulator/jobs")

    assert status == 200
    assert [(job["jobId"], job["status"]) for job in body["jobs"]] == [
        (job_id_of(first), "succeeded"),
        (job_id_of(second), "notStarted"),
    ]
    assert [job["jobId"] for job in emulator.state.job_summaries()] == [job_id_of(first), job_id_of(second)]
