"""The service's per-minute rate limit: a sliding 60-s window, 429 with Retry-After beyond it, and the
admin API that changes it while running and reports what it admitted."""

from __future__ import annotations

import aiohttp
import pytest

from local.emulator import RateLimit
from local.emulator.ratelimit import SlidingWindow
from local.emulator.server import RunningEmulator
from tests.emulator.support import KEY_HEADERS, StartEmulator, call, job_body, submit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _limited(start_emulator: StartEmulator, per_minute: int | None) -> RunningEmulator:
    return await start_emulator(
        not_started_seconds=0.0, running_seconds=0.0, rate_limit=RateLimit(requests_per_minute=per_minute)
    )


async def test_requests_beyond_the_limit_are_429_with_retry_after_and_the_services_body(
    http: aiohttp.ClientSession, start_emulator: StartEmulator
) -> None:
    emulator = await _limited(start_emulator, 3)
    url = await submit(http, emulator, job_body(["x"]))
    statuses = [(await call(http, "GET", url, headers=KEY_HEADERS))[0] for _ in range(3)]

    async with http.get(url, headers=KEY_HEADERS) as response:
        body = await response.json()

    assert statuses == [200, 200, 200]
    assert response.status == 429
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= 60
    assert body["error"]["code"] == "429"
    assert body["error"]["message"].startswith(
        "Requests to the Get analysis status and results Operation under Azure AI Language API have exceeded "
        f"rate limit of your current Language S pricing tier. Please retry after {seconds} second"
    )
    assert "apim-request-id" in response.headers


async def test_cancel_counts_and_submissions_do_not_by_default(
    http: aiohttp.ClientSession, start_emulator: StartEmulator
) -> None:
    emulator = await _limited(start_emulator, 1)
    url = await submit(http, emulator, job_body(["x"]))
    await submit(http, emulator, job_body(["y"]))
    cancel = url.replace("?", ":cancel?")

    first, _ = await call(http, "POST", cancel, headers=KEY_HEADERS)
    second, _ = await call(http, "POST", cancel, headers=KEY_HEADERS)

    assert first != 429
    assert second == 429


async def test_submissions_count_when_asked(
    http: aiohttp.ClientSession, start_emulator: StartEmulator
) -> None:
    emulator = await start_emulator(rate_limit=RateLimit(requests_per_minute=1, count_submissions=True))
    await submit(http, emulator, job_body(["x"]))

    status, body = await call(
        http,
        "POST",
        f"{emulator.base_url}/language/analyze-text/jobs?api-version=2024-11-01",
        json_body=job_body(["y"]),
        headers=KEY_HEADERS,
    )

    assert status == 429
    assert body["error"]["message"].startswith("Requests to the Submit analysis job Operation")


async def test_the_limit_changes_while_running_and_the_admin_api_reports_the_counts(
    http: aiohttp.ClientSession, start_emulator: StartEmulator
) -> None:
    emulator = await _limited(start_emulator, None)
    url = await submit(http, emulator, job_body(["x"]))
    for _ in range(3):
        await call(http, "GET", url, headers=KEY_HEADERS)

    status, report = await call(
        http, "PUT", f"{emulator.base_url}/_emulator/rate-limit", json_body={"requestsPerMinute": 2}
    )
    refused, _ = await call(http, "GET", url, headers=KEY_HEADERS)
    _, after = await call(http, "GET", f"{emulator.base_url}/_emulator/rate-limit")

    assert status == 200
    assert report["requestsPerMinute"] == 2
    assert refused == 429  # the window already holds 3
    assert after == {
        "requestsPerMinute": 2,
        "countSubmissions": False,
        "accepted": 3,
        "refused": 1,
        "acceptedInWindow": 3,
        "refusedInWindow": 1,
        "maxAcceptedInWindow": 3,
        "maxRequestsInWindow": 4,
    }


async def test_null_lifts_the_limit(http: aiohttp.ClientSession, start_emulator: StartEmulator) -> None:
    emulator = await _limited(start_emulator, 1)
    url = await submit(http, emulator, job_body(["x"]))
    await call(http, "GET", url, headers=KEY_HEADERS)

    lift = {"requestsPerMinute": None}
    await call(http, "PUT", f"{emulator.base_url}/_emulator/rate-limit", json_body=lift)

    assert (await call(http, "GET", url, headers=KEY_HEADERS))[0] == 200


@pytest.mark.parametrize("limit", [0, -5, 1.5, "600", True])
async def test_a_bad_limit_is_400_and_changes_nothing(
    http: aiohttp.ClientSession, start_emulator: StartEmulator, limit: object
) -> None:
    emulator = await _limited(start_emulator, 7)

    status, body = await call(
        http, "PUT", f"{emulator.base_url}/_emulator/rate-limit", json_body={"requestsPerMinute": limit}
    )

    assert status == 400
    assert body["error"]["code"] == "InvalidRequest"
    assert emulator.state.rate_limit.requests_per_minute == 7


async def test_admin_calls_are_never_counted(
    http: aiohttp.ClientSession, start_emulator: StartEmulator
) -> None:
    emulator = await _limited(start_emulator, 1)
    for _ in range(3):
        await call(http, "GET", f"{emulator.base_url}/_emulator/rate-limit")

    assert emulator.state.window.report()["accepted"] == 0


def test_the_window_slides_a_request_out_sixty_seconds_after_it_was_accepted() -> None:
    clock = Clock()
    window = SlidingWindow(clock)
    assert window.admit(2) is None
    clock.now += 30
    assert window.admit(2) is None
    clock.now += 10

    assert window.admit(2) == 20  # the first ages out 60 s after it came
    clock.now += 20
    assert window.admit(2) is None


def test_refused_requests_do_not_count_against_the_window() -> None:
    clock = Clock()
    window = SlidingWindow(clock)
    window.admit(1)
    for _ in range(100):
        clock.now += 0.5
        window.admit(1)

    clock.now = 1060.0
    assert window.admit(1) is None


def test_retry_after_is_whole_seconds_of_at_least_one() -> None:
    clock = Clock()
    window = SlidingWindow(clock)
    window.admit(1)
    clock.now += 59.99

    assert window.admit(1) == 1


def test_a_lowered_limit_refuses_until_enough_of_the_window_has_aged_out() -> None:
    clock = Clock()
    window = SlidingWindow(clock)
    for _ in range(4):
        window.admit(None)
        clock.now += 10  # accepted at 1000, 1010, 1020, 1030; now 1040

    # Limit 2: one more fits once only one is left, i.e. when 1020 ages out, at 1080.
    assert window.admit(2) == 40
