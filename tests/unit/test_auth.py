"""Language service credentials: selection, token caching and refresh, the process's credentials.

Token behaviour is driven through stand-ins that implement azure-core's credential protocols and a
controllable clock; one end-to-end test runs a real ``ManagedIdentityCredential`` against a local
endpoint that speaks the App Service managed identity protocol.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from azure.core.credentials import AccessTokenInfo, TokenRequestOptions

from shared.auth import (
    LANGUAGE_SCOPE,
    ApiKeyAuth,
    EntraTokenAuth,
    LanguageAuthError,
    close_credentials,
    default_credential,
    language_auth,
    storage_credential,
)
from shared.settings import Settings, load_settings
from tests.support import FakeCredential, IdentityEndpoint

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_730_462_400.0  # 2024-11-01T12:00:00Z
HOUR = 3600.0
SECRET_KEY = "0123456789abcdef-super-secret-key"


class Clock:
    """Unix time that only moves when a test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeInfoCredential(FakeCredential):
    """Also ``AsyncSupportsTokenInfo``: its tokens say to refresh at half their lifetime."""

    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        token = await self.get_token(*scopes)
        return AccessTokenInfo(
            token.token, token.expires_on, refresh_on=int(self.clock() + self.lifetime / 2)
        )


def make_settings(**environ: str) -> Settings:
    base = {
        "LANGUAGE_ENDPOINT": "https://example.cognitiveservices.azure.com",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    }
    return load_settings(base | environ)


def identity_storage(**extra: str) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": "",
        "AzureWebJobsStorage__blobServiceUri": "https://acct.blob.core.windows.net",
        "AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net",
        **extra,
    }


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def credential(clock: Clock) -> FakeCredential:
    return FakeCredential(clock)


@pytest.fixture
def auth(credential: FakeCredential, clock: Clock) -> EntraTokenAuth:
    return EntraTokenAuth(credential=credential, clock=clock)


@pytest.fixture
def outside_azure(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "AZURE_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def process_credentials() -> AsyncIterator[None]:
    """Start and end with no process-wide credential, closing whatever the test built."""
    await close_credentials()
    yield
    await close_credentials()


# --- selection -----------------------------------------------------------------------------------


async def test_key_setting_selects_the_key_header() -> None:
    auth = language_auth(make_settings(LANGUAGE_API_KEY=SECRET_KEY))
    assert isinstance(auth, ApiKeyAuth)
    assert dict(await auth.headers()) == {"Ocp-Apim-Subscription-Key": SECRET_KEY}
    await auth.close()


async def test_key_wins_over_a_given_credential(credential: FakeCredential) -> None:
    auth = language_auth(make_settings(LANGUAGE_API_KEY=SECRET_KEY), credential=credential)
    assert isinstance(auth, ApiKeyAuth)
    assert credential.calls == 0


async def test_no_key_selects_an_entra_token_from_the_given_credential() -> None:
    credential = FakeCredential(Clock(time.time()))  # language_auth's token cache reads the real clock
    auth = language_auth(make_settings(), credential=credential)
    assert isinstance(auth, EntraTokenAuth)
    assert dict(await auth.headers()) == {"Authorization": "Bearer token-1"}
    assert credential.scopes == [(LANGUAGE_SCOPE,)]


@pytest.mark.usefixtures("outside_azure", "process_credentials")
async def test_no_key_and_no_credential_uses_the_process_credential() -> None:
    auth = language_auth(make_settings())
    assert isinstance(auth, EntraTokenAuth)
    assert type(default_credential()).__name__ == "DefaultAzureCredential"


def test_key_path_does_not_import_azure_identity() -> None:
    code = (
        "import sys, asyncio\n"
        "from shared.settings import load_settings\n"
        "from shared.auth import language_auth\n"
        "s = load_settings({'LANGUAGE_ENDPOINT': 'https://x.cognitiveservices.azure.com',"
        " 'AzureWebJobsStorage': 'UseDevelopmentStorage=true', 'LANGUAGE_API_KEY': 'k'})\n"
        "print(dict(asyncio.run(language_auth(s).headers())))\n"
        "assert not [m for m in sys.modules if m.startswith('azure.identity')], 'azure.identity imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "Ocp-Apim-Subscription-Key" in result.stdout


# --- the key -------------------------------------------------------------------------------------


def test_api_key_repr_hides_the_key() -> None:
    auth = ApiKeyAuth(key=SECRET_KEY)
    assert SECRET_KEY not in repr(auth)
    assert SECRET_KEY not in str(auth)


@pytest.mark.parametrize("key", ["", "   ", "abc\r\nX-Injected: 1"])
def test_api_key_must_be_one_nonempty_line(key: str) -> None:
    with pytest.raises(ValueError, match="LANGUAGE_API_KEY") as raised:
        ApiKeyAuth(key=key)
    assert "Injected" not in str(raised.value)


async def test_api_key_headers_are_read_only() -> None:
    headers = await ApiKeyAuth(key=SECRET_KEY).headers()
    with pytest.raises(TypeError):
        headers["Ocp-Apim-Subscription-Key"] = "other"  # type: ignore[index]


# --- token caching -------------------------------------------------------------------------------


async def test_one_token_serves_many_requests(
    auth: EntraTokenAuth, credential: FakeCredential, clock: Clock
) -> None:
    for _ in range(20):
        assert dict(await auth.headers()) == {"Authorization": "Bearer token-1"}
        clock.advance(60)
    assert credential.calls == 1


async def test_token_is_kept_until_the_refresh_margin(
    auth: EntraTokenAuth, credential: FakeCredential, clock: Clock
) -> None:
    await auth.headers()
    clock.advance(HOUR - 301)
    assert dict(await auth.headers()) == {"Authorization": "Bearer token-1"}
    assert credential.calls == 1


async def test_token_is_refreshed_inside_the_refresh_margin(
    auth: EntraTokenAuth, credential: FakeCredential, clock: Clock
) -> None:
    await auth.headers()
    clock.advance(HOUR - 299)
    assert dict(await auth.headers()) == {"Authorization": "Bearer token-2"}
    assert credential.calls == 2


async def test_refresh_margin_is_configurable(credential: FakeCredential, clock: Clock) -> None:
    auth = EntraTokenAuth(credential=credential, clock=clock, refresh_margin=1800)
    await auth.headers()
    clock.advance(HOUR - 1799)
    assert dict(await auth.headers()) == {"Authorization": "Bearer token-2"}


async def test_refresh_on_from_the_token_info_triggers_an_earlier_refresh(clock: Clock) -> None:
    credential = FakeInfoCredential(clock, lifetime=24 * HOUR)
    auth = EntraTokenAuth(credential=credential, clock=clock)
    await auth.headers()
    clock.advance(12 * HOUR - 1)
    assert dict(await auth.headers()) == {"Authorization": "Bearer token-1"}
    clock.advance(1)
    assert dict(await auth.headers()) == {"Authorization": "Bearer token-2"}
    assert credential.calls == 2


async def test_concurrent_callers_share_one_token_request(
    auth: EntraTokenAuth, credential: FakeCredential
) -> None:
    credential.gate = asyncio.Event()
    callers = [asyncio.create_task(auth.headers()) for _ in range(10)]
    await asyncio.sleep(0)  # let every caller reach the lock (no time passes)
    credential.gate.set()
    results = await asyncio.gather(*callers)
    assert credential.calls == 1
    assert all(dict(headers) == {"Authorization": "Bearer token-1"} for headers in results)


async def test_callers_with_a_usable_token_do_not_wait_for_a_refresh(
    auth: EntraTokenAuth, credential: FakeCredential, clock: Clock
) -> None:
    await auth.headers()
    clock.advance(HOUR - 200)  # due for a refresh, still valid
    credential.gate = asyncio.Event()
    refreshing = asyncio.create_task(auth.headers())
    await asyncio.sleep(0)
    assert credential.calls == 2  # the refresh is under way, held by the gate
    assert dict(await asyncio.wait_for(auth.headers(), timeout=5)) == {"Authorization": "Bearer token-1"}
    credential.gate.set()
    assert dict(await refreshing) == {"Authorization": "Bearer token-2"}
    assert credential.calls == 2


async def test_failed_refresh_keeps_the_valid_cached_token(
    auth: EntraTokenAuth, credential: FakeCredential, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    await auth.headers()
    clock.advance(HOUR - 200)
    credential.fail = RuntimeError("identity endpoint unreachable")
    with caplog.at_level(logging.WARNING, logger="shared.auth"):
        assert dict(await auth.headers()) == {"Authorization": "Bearer token-1"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "token-1" not in caplog.text
    assert "RuntimeError" in warnings[0].getMessage()


async def test_failed_refresh_is_retried_after_an_interval_not_on_every_call(
    auth: EntraTokenAuth, credential: FakeCredential, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    await auth.headers()
    clock.advance(HOUR - 200)
    credential.fail = RuntimeError("identity endpoint unreachable")
    with caplog.at_level(logging.WARNING, logger="shared.auth"):
        for _ in range(5):
            await auth.headers()
        assert credential.calls == 2
        clock.advance(30)
        credential.fail = None
        assert dict(await auth.headers()) == {"Authorization": "Bearer token-3"}
    assert len(caplog.records) == 1


async def test_failed_refresh_without_a_valid_token_raises_a_helpful_error(
    auth: EntraTokenAuth, credential: FakeCredential, clock: Clock
) -> None:
    await auth.headers()
    clock.advance(HOUR + 1)  # the cached token has expired
    credential.fail = RuntimeError("rejected token-1 for this resource")
    with pytest.raises(LanguageAuthError) as raised:
        await auth.headers()
    message = str(raised.value)
    assert "token-1" not in message
    assert "managed identity" in message
    assert "AZURE_CLIENT_ID" in message
    assert "role assignment" in message
    assert "RuntimeError" in message
    assert raised.value.__cause__ is credential.fail


async def test_first_token_failure_raises_language_auth_error(
    auth: EntraTokenAuth, credential: FakeCredential
) -> None:
    credential.fail = RuntimeError("ManagedIdentityCredential authentication unavailable")
    with pytest.raises(LanguageAuthError, match="authentication unavailable"):
        await auth.headers()


async def test_a_token_that_is_already_expired_is_not_used(clock: Clock) -> None:
    auth = EntraTokenAuth(credential=FakeCredential(clock, lifetime=-10), clock=clock)
    with pytest.raises(LanguageAuthError, match="clock") as raised:
        await auth.headers()
    assert "token-1" not in str(raised.value)


async def test_cancelled_refresh_does_not_block_later_callers(
    auth: EntraTokenAuth, credential: FakeCredential
) -> None:
    credential.gate = asyncio.Event()
    first = asyncio.create_task(auth.headers())
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    credential.gate.set()
    assert dict(await auth.headers()) == {"Authorization": "Bearer token-2"}


async def test_close_forgets_the_token_but_not_the_credential(
    auth: EntraTokenAuth, credential: FakeCredential
) -> None:
    await auth.headers()
    await auth.close()
    assert not credential.closed
    assert dict(await auth.headers()) == {"Authorization": "Bearer token-2"}


async def test_entra_repr_hides_the_token(auth: EntraTokenAuth) -> None:
    await auth.headers()
    assert "token-1" not in repr(auth)
    assert "FakeCredential" in repr(auth)


def test_negative_refresh_margin_is_rejected(credential: FakeCredential) -> None:
    with pytest.raises(ValueError, match="refresh_margin"):
        EntraTokenAuth(credential=credential, refresh_margin=-1)


# --- the process's credentials -------------------------------------------------------------------


@pytest.mark.usefixtures("outside_azure", "process_credentials")
async def test_default_credential_is_one_per_process() -> None:
    assert default_credential() is default_credential()


@pytest.mark.usefixtures("outside_azure", "process_credentials")
async def test_default_credential_in_azure_is_the_managed_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "header")
    assert type(default_credential()).__name__ == "ManagedIdentityCredential"


@pytest.mark.usefixtures("outside_azure", "process_credentials")
async def test_storage_managed_identity_is_cached_per_client_id_and_shared_with_language(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "header")
    monkeypatch.setenv("AZURE_CLIENT_ID", "client-a")
    same = make_settings(
        **identity_storage(
            AzureWebJobsStorage__credential="ManagedIdentity", AzureWebJobsStorage__clientId="client-a"
        )
    )
    other = make_settings(
        **identity_storage(
            AzureWebJobsStorage__credential="managedidentity", AzureWebJobsStorage__clientId="client-b"
        )
    )
    assert storage_credential(same) is default_credential()
    assert storage_credential(other) is storage_credential(other)
    assert storage_credential(other) is not default_credential()
    assert type(storage_credential(other)).__name__ == "ManagedIdentityCredential"


@pytest.mark.usefixtures("outside_azure", "process_credentials")
async def test_storage_without_credential_setting_uses_the_default_credential() -> None:
    assert storage_credential(make_settings(**identity_storage())) is default_credential()


@pytest.mark.usefixtures("outside_azure")
async def test_close_credentials_closes_and_forgets_them() -> None:
    await close_credentials()
    first = default_credential()
    await close_credentials()
    assert default_credential() is not first
    await close_credentials()


# --- end to end: a real ManagedIdentityCredential against a local token endpoint ------------------


@pytest.mark.usefixtures("outside_azure", "no_proxy", "process_credentials")
async def test_managed_identity_token_from_a_local_endpoint_is_served_and_cached(
    identity_endpoint: IdentityEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-0000-0000-0000000000aa")
    auth = language_auth(make_settings())
    assert isinstance(auth, EntraTokenAuth)

    for _ in range(5):
        assert dict(await auth.headers()) == {"Authorization": f"Bearer {identity_endpoint.token}"}

    assert len(identity_endpoint.hits) == 1
    hit = identity_endpoint.hits[0]
    assert hit["resource"] == "https://cognitiveservices.azure.com"
    assert hit["client_id"] == "00000000-0000-0000-0000-0000000000aa"
    assert identity_endpoint.token not in repr(auth)
    await auth.close()
