"""`python -m local.emulator` announces its URL, serves, logs without secrets and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp

from tests.emulator.support import JOBS, job_body

CHECKOUT = Path(__file__).resolve().parents[2]
SECRET = "cli-secret-key"


async def test_cli_prints_ready_line_serves_and_stops_on_sigterm(http: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "local.emulator",
        "--host", "127.0.0.1",
        "--port", "0",
        "--api-key", SECRET,
        "--not-started-seconds", "0",
        "--running-seconds", "0",
        cwd=CHECKOUT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready = (await asyncio.wait_for(process.stdout.readline(), timeout=15)).decode()
        prefix, base_url = ready.split()
        async with http.post(
            f"{base_url}{JOBS}?api-version=2024-11-01&subscription-key={SECRET}",
            json=job_body(["Seattle"]),
            headers={"Ocp-Apim-Subscription-Key": SECRET},
        ) as response:
            assert response.status == 202
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert prefix == "EMULATOR_READY"
    assert base_url.startswith("http://127.0.0.1:")
    assert process.returncode == 0
    assert stdout == b""  # the ready line is the only output on stdout
    assert b"POST /language/analyze-text/jobs" in stderr
    assert SECRET.encode() not in stderr
