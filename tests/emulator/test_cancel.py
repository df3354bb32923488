"""POST jobs/{id}:cancel: acknowledgement, cancelling -> cancelled, and 400 on a terminal job."""

from __future__ import annotations

import aiohttp

from local.emulator.server import RunningEmulator
from tests.emulator.support import (
    KEY_HEADERS,
    Json,
    advance,
    call,
    custom_task,
    get_json,
    job_body,
    job_id_of,
    prebuilt_task,
    submit,
)


def _cancel_url(job_url: str) -> str:
    path, query = job_url.split("?")
    return f"{path}:cancel?{query}"


async def _cancel(http: aiohttp.ClientSession, job_url: str) -> tuple[int, Json, str | None]:
    async with http.post(_cancel_url(job_url), headers=KEY_HEADERS) as response:
        text = await response.text()
        return (
            response.status,
            ({} if not text else await response.json()),
            response.headers.get("operation-location"),
        )


async def test_cancel_is_acknowledged_with_the_job_url(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    url = await submit(http, emulator, job_body(["x"]))

    status, body, location = await _cancel(http, url)

    assert (status, body, location) == (202, {}, url)


async def test_cancelled_job_passes_through_cancelling(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    url = await submit(http, emulator, job_body(["x"]))
    await _cancel(http, url)

    cancelling = await get_json(http, url)
    advance(emulator, 0.5)
    cancelled = await get_json(http, url)
    advance(emulator, 10)
    later = await get_json(http, url)

    assert [cancelling["status"], cancelled["status"], later["status"]] == [
        "cancelling",
        "cancelled",
        "cancelled",
    ]


async def test_cancel_keeps_finished_tasks_and_cancels_the_rest(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    url = await submit(http, emulator, job_body(["Seattle"], [prebuilt_task("a"), custom_task("b")]))
    advance(emulator, 2.5)  # task a finished at 2 s, task b would finish at 3 s
    await _cancel(http, url)
    advance(emulator, 1)

    job = await get_json(http, url)

    assert {k: v for k, v in job["tasks"].items() if k != "items"} == {
        "completed": 1,
        "failed": 0,
        "inProgress": 0,
        "total": 2,
    }
    a, b = job["tasks"]["items"]
    assert (a["status"], len(a["results"]["documents"])) == ("succeeded", 1)
    assert b["status"] == "cancelled"
    assert b["results"] == {
        "documents": [],
        "errors": [],
        "projectName": "MyProject",
        "deploymentName": "MyDeployment",
    }


async def test_cancelling_a_terminal_job_is_400(
    http: aiohttp.ClientSession, instant: RunningEmulator
) -> None:
    url = await submit(http, instant, job_body(["x"]))

    status, body, _ = await _cancel(http, url)

    assert status == 400
    assert body == {
        "error": {
            "code": "InvalidRequest",
            "message": f"Failed to cancel job with job identifier {job_id_of(url)} as its already completed.",
        }
    }


async def test_cancelling_a_cancelled_job_is_400(
    http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    url = await submit(http, emulator, job_body(["x"]))
    await _cancel(http, url)
    advance(emulator, 1)

    status, _, _ = await _cancel(http, url)
    _, stats = await call(http, "GET", f"{emulator.base_url}/_emulator/stats")

    assert status == 400
    assert stats["byJob"][job_id_of(url)]["CANCEL"] == 2
