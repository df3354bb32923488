"""Injected faults on GET job and cancel: each kind is observable by a client, and reproducible."""

from __future__ import annotations

import json
import random
from typing import Any

import aiohttp
import pytest

from local.emulator import Faults
from local.emulator.faults import draw_fault
from local.emulator.server import RunningEmulator
from tests.emulator.support import KEY_HEADERS, StartEmulator, call, job_body, submit


async def _faulty(start_emulator: StartEmulator, **faults: Any) -> RunningEmulator:
    return await start_emulator(faults=Faults(**faults))


async def _job_url(http: aiohttp.ClientSession, emulator: RunningEmulator) -> str:
    return await submit(http, emulator, job_body(["x"]))


async def test_throttling_is_429_with_retry_after(
    http: aiohttp.ClientSession, start_emulator: StartEmulator
) -> None:
    emulator = await start_emulator(faults=Faults(rate_429=1.0, retry_after_seconds=3))
    async with http.get(await _job_url(http, emulator), headers=KEY_HEADERS) as response:
        body = await response.json()

    assert response.status == 429
    assert response.headers["Retry-After"] == "3"
    assert body["error"]["code"] == "429"
    assert body["error"]["message"].startswith(
        "Requests to the Get analysis status and results Operation under Azure AI Language API have exceeded "
        "rate limit of your current Language S pricing tier. Please retry after 3 seconds."
    )


async def test_server_errors_are_5xx_error_responses(
    http: aiohttp.ClientSession, start_emulator: StartEmulator
) -> None:
    emulator = await _faulty(start_emulator, rate_5xx=1.0)
    url = await _job_url(http, emulator)
    statuses = set()
    for _ in range(20):
        status, body = await call(http, "GET", url, headers=KEY_HEADERS)
        statuses.add(status)
        assert set(body["error"]) == {"code", "message"}

    assert statuses <= {500, 502, 503, 504}
    assert len(statuses) > 1


async def test_reset_drops_the_connection_without_a_response(
    http: aiohttp.ClientSession, start_emulator: StartEmulator
) -> None:
    emulator = await _faulty(start_emulator, rate_reset=1.0)
    url = await _job_url(http, emulator)

    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(url, headers=KEY_HEADERS) as response:
            await response.read()
    # aiohttp retries an idempotent request once when a pooled keep-alive connection dies, so >= 1.
    assert emulator.state.requests[("GET", "/language/analyze-text/jobs/{job_id}", None)] >= 1


async def test_malformed_body_fails_json_parsing(
    http: aiohttp.ClientSession, start_emulator: StartEmulator
) -> None:
    emulator = await _faulty(start_emulator, rate_malformed=1.0)
    async with http.get(await _job_url(http, emulator), headers=KEY_HEADERS) as response:
        text = await response.text()

    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


async def test_slow_answer_exceeds_a_short_client_timeout(
    http: aiohttp.ClientSession, start_emulator: StartEmulator
) -> None:
    emulator = await start_emulator(faults=Faults(rate_slow=1.0, slow_seconds=5.0))
    url = await _job_url(http, emulator)

    with pytest.raises(TimeoutError):
        async with http.get(url, headers=KEY_HEADERS, timeout=aiohttp.ClientTimeout(total=0.2)) as response:
            await response.read()


async def test_cancel_is_subject_to_faults(
    http: aiohttp.ClientSession, start_emulator: StartEmulator
) -> None:
    emulator = await _faulty(start_emulator, rate_429=1.0)
    path, query = (await _job_url(http, emulator)).split("?")

    status, body = await call(http, "POST", f"{path}:cancel?{query}", headers=KEY_HEADERS)

    assert status == 429
    assert "Cancel analysis job" in body["error"]["message"]


async def test_submit_and_admin_calls_never_fault(
    http: aiohttp.ClientSession, start_emulator: StartEmulator
) -> None:
    emulator = await _faulty(start_emulator, rate_5xx=1.0)

    for _ in range(5):
        await submit(http, emulator, job_body(["x"]))
        status, _ = await call(http, "GET", f"{emulator.base_url}/_emulator/jobs")
        assert status == 200


def test_fault_draws_are_reproducible_for_a_seed() -> None:
    faults = Faults(rate_429=0.2, rate_5xx=0.2, rate_reset=0.1, rate_slow=0.1, rate_malformed=0.1)

    def sequence(seed: int) -> list[str | None]:
        rng = random.Random(seed)
        return [draw_fault(faults, rng) for _ in range(200)]

    assert sequence(7) == sequence(7)
    assert sequence(7) != sequence(8)
    assert set(sequence(7)) == {None, "429", "5xx", "reset", "slow", "malformed"}


async def test_faults_are_set_through_the_admin_api(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    status, body = await call(
        http,
        "PUT",
        f"{emulator.base_url}/_emulator/faults",
        json_body={"rate429": 1, "retry_after_seconds": 2},
    )
    url = await _job_url(http, emulator)
    throttled, _ = await call(http, "GET", url, headers=KEY_HEADERS)
    await call(http, "PUT", f"{emulator.base_url}/_emulator/faults", json_body={})
    healthy, _ = await call(http, "GET", url, headers=KEY_HEADERS)

    assert status == 200
    assert (body["rate429"], body["retryAfterSeconds"], body["rate5xx"]) == (1, 2, 0.0)
    assert (throttled, healthy) == (429, 200)


@pytest.mark.parametrize(
    "payload", [{"rate429": 2}, {"rate429": "0.5"}, {"rate429": 0.6, "rate5xx": 0.6}, {"bogus": 1}]
)
async def test_invalid_fault_settings_are_rejected(
    http: aiohttp.ClientSession, emulator: RunningEmulator, payload: dict[str, object]
) -> None:
    status, _ = await call(http, "PUT", f"{emulator.base_url}/_emulator/faults", json_body=payload)

    assert status == 400
    assert emulator.state.faults == Faults()
