"""Keyless: with no LANGUAGE_API_KEY the app authenticates with a managed identity token.

A local endpoint speaks the App Service managed identity protocol (what Azure Functions offers
the app), and the emulator accepts the token it issues, exactly as the Language service would.
"""

from __future__ import annotations

import dataclasses

import pytest

from local.emulator import EmulatorConfig, serve
from shared.runtime import close_process_runtime
from tests.conftest import EMULATOR_KEY
from tests.support import IdentityEndpoint

from .conftest import Stack

pytestmark = pytest.mark.integration


async def test_without_a_key_jobs_are_archived_with_one_cached_managed_identity_token(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, identity_endpoint: IdentityEndpoint
) -> None:
    # The service accepts the identity's token (and the upstream's key, for submitting).
    config = EmulatorConfig(
        api_key=EMULATOR_KEY,
        bearer_tokens=frozenset({identity_endpoint.token}),
        not_started_seconds=0,
        running_seconds=0,
    )
    async with serve(config) as service:
        monkeypatch.delenv("LANGUAGE_API_KEY")
        monkeypatch.setenv("LANGUAGE_ENDPOINT", service.base_url)
        await close_process_runtime()
        upstream = dataclasses.replace(stack, emulator_url=service.base_url)
        job_ids = [await upstream.submit() for _ in range(3)]

        for job_id in job_ids:
            await upstream.deliver({"jobId": job_id})
        await close_process_runtime()

    for job_id in job_ids:
        assert (await stack.manifest(job_id) or {}).get("status") == "succeeded"
    assert len(identity_endpoint.hits) == 1  # one token, cached across invocations
    assert identity_endpoint.hits[0]["resource"] == "https://cognitiveservices.azure.com"


@pytest.mark.usefixtures("identity_endpoint")
async def test_without_a_key_a_token_the_service_refuses_keeps_the_job(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LANGUAGE_API_KEY")
    await close_process_runtime()
    job_id = await stack.submit()  # on the shared emulator, which accepts no bearer token

    await stack.deliver({"jobId": job_id})
    await close_process_runtime()

    assert await stack.manifest(job_id) is None
    assert await stack.ledger_names() == [f"{job_id}.json"]
