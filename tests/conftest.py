"""Session-wide services for the tests: a real Azurite and a real Language emulator.

Both are started once per test run (on free loopback ports) and stopped by the session; every
test gets its own containers and queues, so tests never see each other's data.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import HealthCheck, settings

from local.emulator import EmulatorConfig, serve
from local.host.azurite import Azurite
from tests.support import IdentityEndpoint, serve_local

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SPEC = REPO_ROOT.parent / "shared" / "language-api"
EMULATOR_KEY = "emulator-key-0123456789abcdef"  # distinctive, so tests can search logs for it

# Property tests: a fixed number of examples drawn from a fixed seed, so CI time is bounded and a
# failure repeats; no example database written into the checkout. HYPOTHESIS_PROFILE=thorough
# searches harder (and at random) on a developer's machine.
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=timedelta(milliseconds=500),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=5000, deadline=None, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    # On a directory, not in memory: in memory, Azurite's queue garbage collection (every 60 s)
    # stalls it for seconds once thousands of messages have come and gone (docs/development.md).
    with Azurite.start_sync(location=tmp_path_factory.mktemp("azurite")) as running:
        yield running


@pytest.fixture(scope="session")
async def emulator() -> AsyncIterator[object]:
    config = EmulatorConfig(api_key=EMULATOR_KEY, not_started_seconds=0.0, running_seconds=0.0)
    async with serve(config) as server:
        yield server


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment would carry loopback requests elsewhere."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def identity_endpoint(
    monkeypatch: pytest.MonkeyPatch, no_proxy: None
) -> AsyncIterator[IdentityEndpoint]:
    """A managed identity endpoint on loopback, announced as Azure Functions does
    (IDENTITY_ENDPOINT, IDENTITY_HEADER)."""
    endpoint = IdentityEndpoint()
    app = web.Application()
    app.router.add_get("/msi/token", endpoint.handle)
    async with serve_local(app) as url:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{url}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", endpoint.secret)
        yield endpoint
