"""Credentials for the Language service, and the process's Microsoft Entra credentials.

The Language client asks a ``LanguageAuth`` for the headers of each request and knows nothing else
about authentication. ``language_auth`` picks the kind from the settings (DESIGN.md, "App settings"):
``LANGUAGE_API_KEY`` set means a key header; unset means a Microsoft Entra token for the
Cognitive Services scope, from the app's managed identity in Azure or the developer's sign-in locally.

The Language client speaks raw aiohttp, not an azure-core pipeline, so azure-core's bearer token
policy does not apply and ``EntraTokenAuth`` does its job: cache the token, refresh it before it
expires, one refresh at a time, and keep a still-valid token when a refresh fails.

azure-identity is imported only when a credential is built: it is heavy, and the key path must not
pay for it on a cold start. Neither a key nor a token ever appears in a repr, a log or an error.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Protocol, final

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from shared.settings import Settings

__all__ = [
    "LANGUAGE_SCOPE",
    "ApiKeyAuth",
    "EntraTokenAuth",
    "LanguageAuth",
    "LanguageAuthError",
    "close_credentials",
    "default_credential",
    "language_auth",
    "storage_credential",
]

_log = logging.getLogger(__name__)

#: The OAuth scope of every Azure AI services data plane, the Language service's included.
LANGUAGE_SCOPE: Final = "https://cognitiveservices.azure.com/.default"

# A token with less than this left is not sent: the request's own time and clock skew between this
# machine and the service would let it expire in flight, and a 401 reads as a configuration fault.
_MIN_VALIDITY: Final = 30.0
# After a refresh attempt, the next one waits this long while the cached token stays usable, so a
# failing identity endpoint is not hammered by every request (and the log gets one line per attempt).
_REFRESH_RETRY_INTERVAL: Final = 30.0

_FIX_HINT: Final = (
    "Check that the function app's managed identity is enabled and assigned to the app, that "
    "AZURE_CLIENT_ID is the client id of that user-assigned identity, and that the identity has a role "
    "assignment on the Language resource that allows its data actions (assignments take a few minutes "
    "to apply); locally, sign in with 'az login' or 'azd auth login'. Or set LANGUAGE_API_KEY to use a key."
)


class LanguageAuthError(Exception):
    """No credential for the Language service: the message says what to check, never a secret."""


class LanguageAuth(Protocol):
    """What the Language client needs: the headers that authenticate one request."""

    async def headers(self) -> Mapping[str, str]: ...

    async def close(self) -> None: ...


@final
class ApiKeyAuth:
    """``Ocp-Apim-Subscription-Key``: the resource key from ``LANGUAGE_API_KEY``."""

    __slots__ = ("_headers",)

    def __init__(self, *, key: str) -> None:
        # A line break would split the header (aiohttp refuses it, but only at request time).
        if not key.strip() or "\r" in key or "\n" in key:
            raise ValueError("the Language API key is empty or not a single line: check LANGUAGE_API_KEY")
        self._headers: Mapping[str, str] = MappingProxyType({"Ocp-Apim-Subscription-Key": key})

    def __repr__(self) -> str:
        return "ApiKeyAuth(key=<redacted>)"

    async def headers(self) -> Mapping[str, str]:
        return self._headers

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _Token:
    value: str = field(repr=False)
    expires_on: float  # Unix time
    refresh_on: float | None  # Unix time the issuer suggests refreshing at, when it says


@final
class EntraTokenAuth:
    """``Authorization: Bearer <token>`` from an azure-core async credential, cached until due.

    The token is refreshed ``refresh_margin`` seconds before it expires, or from its ``refresh_on``
    when the credential reports one (``get_token_info``), whichever comes first. Concurrent callers
    share one refresh; callers that hold a usable token meanwhile do not wait for it. A failed
    refresh keeps the cached token while it is usable (one warning per attempt, attempts at most
    every 30 s) and raises ``LanguageAuthError`` when there is none.

    ``clock`` returns Unix time (tokens carry Unix expiry times, so a monotonic clock cannot be
    compared with them); tests pass a controllable one. ``close`` forgets the token; the credential
    belongs to whoever created it (``close_credentials`` for the process-wide ones).
    """

    __slots__ = (
        "_clock",
        "_credential",
        "_hint",
        "_lock",
        "_next_attempt",
        "_refresh_margin",
        "_scope",
        "_token",
    )

    def __init__(
        self,
        *,
        credential: AsyncTokenCredential,
        scope: str = LANGUAGE_SCOPE,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.time,
        hint: str = _FIX_HINT,
    ) -> None:
        """``hint``: what an operator should check when no token comes (the Language resource's by
        default; another scope's user passes its own)."""
        if not (0 <= refresh_margin < math.inf):
            raise ValueError(f"refresh_margin must be a finite number >= 0, got {refresh_margin!r}")
        self._credential = credential
        self._scope = scope
        self._hint = hint
        self._refresh_margin = refresh_margin
        self._clock = clock
        # Created unbound: since Python 3.10 a lock attaches to the running loop on first use.
        self._lock = asyncio.Lock()
        self._token: _Token | None = None
        self._next_attempt = -math.inf

    def __repr__(self) -> str:
        return f"EntraTokenAuth(scope={self._scope!r}, credential={type(self._credential).__name__})"

    async def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {await self._get()}"}

    async def close(self) -> None:
        self._token = None

    async def _get(self) -> str:
        token = self._token
        now = self._clock()
        if token is not None and self._current(token, now):
            return token.value
        if token is not None and self._lock.locked() and self._usable(token, now):
            return token.value  # a refresh is under way; this token still works meanwhile
        async with self._lock:
            # Double-checked: the caller that held the lock may have refreshed it already.
            token = self._token
            if token is not None and self._current(token, self._clock()):
                return token.value
            return await self._refresh(token)

    def _usable(self, token: _Token, now: float) -> bool:
        return token.expires_on - now > _MIN_VALIDITY

    def _current(self, token: _Token, now: float) -> bool:
        """Usable, and either not due for a refresh or too soon after the last attempt."""
        if not self._usable(token, now):
            return False
        due = token.expires_on - now <= self._refresh_margin or (
            token.refresh_on is not None and now >= token.refresh_on
        )
        return not due or now < self._next_attempt

    async def _refresh(self, cached: _Token | None) -> str:
        try:
            fresh = await self._fetch()
        except Exception as exc:
            now = self._clock()
            self._next_attempt = now + _REFRESH_RETRY_INTERVAL
            if cached is not None and self._usable(cached, now):
                _log.warning(
                    "Refreshing the Microsoft Entra token for %s failed (%s); the cached token stays in "
                    "use for up to %d s more. %s",
                    self._scope,
                    type(exc).__name__,
                    int(cached.expires_on - now),
                    self._hint,
                )
                return cached.value
            raise LanguageAuthError(self._error_message(exc, cached)) from exc
        now = self._clock()
        self._next_attempt = now + _REFRESH_RETRY_INTERVAL
        if not self._usable(fresh, now):
            raise LanguageAuthError(
                f"The credential returned a Microsoft Entra token for {self._scope} that expires in "
                f"{fresh.expires_on - now:.0f} s: check this machine's clock. {self._hint}"
            )
        self._token = fresh
        return fresh.value

    async def _fetch(self) -> _Token:
        # azure.core is loaded by now: the credential is an azure-core one.
        from azure.core.credentials_async import AsyncSupportsTokenInfo  # noqa: PLC0415

        credential = self._credential
        if isinstance(credential, AsyncSupportsTokenInfo):
            info = await credential.get_token_info(self._scope)
            return _Token(info.token, float(info.expires_on), _float_or_none(info.refresh_on))
        access = await credential.get_token(self._scope)
        return _Token(access.token, float(access.expires_on), None)

    def _error_message(self, exc: Exception, cached: _Token | None) -> str:
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        if cached is not None:
            detail = detail.replace(cached.value, "<redacted>")
        cause = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        return f"Could not get a Microsoft Entra token for {self._scope} ({cause}). {self._hint}"


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


def language_auth(settings: Settings, *, credential: AsyncTokenCredential | None = None) -> LanguageAuth:
    """The Language service's auth: the key when ``LANGUAGE_API_KEY`` is set, else an Entra token.

    ``credential`` defaults to ``default_credential()``, the process's shared one.
    """
    if settings.language_api_key is not None:
        return ApiKeyAuth(key=settings.language_api_key)
    return EntraTokenAuth(credential=credential if credential is not None else default_credential())


# The process's credentials, one per kind and client id: each holds an HTTP session and a token
# cache, so building one per request (or per invocation) would cost a token round trip each time.
_credentials: dict[tuple[str, str | None], AsyncTokenCredential] = {}


def default_credential() -> AsyncTokenCredential:
    """The process's Microsoft Entra credential, created on first use and then reused.

    In Azure (the platform sets ``IDENTITY_ENDPOINT`` or ``MSI_ENDPOINT``): the managed identity,
    user-assigned when ``AZURE_CLIENT_ID`` names it. Elsewhere: ``DefaultAzureCredential`` for local
    development (environment, workload identity, Azure CLI, azd, ...), never an interactive browser.
    """
    # These variables belong to the platform and to azure-identity's own conventions, not to the
    # app's settings (shared.settings): azure-identity reads the same ones.
    client_id = os.environ.get("AZURE_CLIENT_ID") or None
    if os.environ.get("IDENTITY_ENDPOINT") or os.environ.get("MSI_ENDPOINT"):
        return _managed_identity(client_id)
    key = ("default", client_id)
    credential = _credentials.get(key)
    if credential is None:
        from azure.identity.aio import DefaultAzureCredential  # noqa: PLC0415 - heavy, see module doc

        credential = _credentials[key] = DefaultAzureCredential(
            managed_identity_client_id=client_id,
            exclude_interactive_browser_credential=True,
        )
    return credential


def storage_credential(settings: Settings) -> AsyncTokenCredential:
    """The credential of the identity-based storage settings (``AzureWebJobsStorage__*``).

    ``__credential=managedidentity`` means that managed identity (``__clientId``, or the system-assigned
    one), as the Functions host reads it; otherwise ``default_credential()``. For the same client id it
    is the very instance the Language service uses. Meaningless for a connection string.
    """
    storage = settings.storage
    if storage.credential is not None and storage.credential.lower() == "managedidentity":
        return _managed_identity(storage.client_id)
    return default_credential()


def _managed_identity(client_id: str | None) -> AsyncTokenCredential:
    key = ("managedidentity", client_id)
    credential = _credentials.get(key)
    if credential is None:
        from azure.identity.aio import ManagedIdentityCredential  # noqa: PLC0415 - heavy, see module doc

        credential = _credentials[key] = ManagedIdentityCredential(client_id=client_id)
    return credential


async def close_credentials() -> None:
    """Close every credential built here and forget them (worker shutdown; between tests).

    The next ``default_credential()`` or ``storage_credential()`` builds a new one.
    """
    credentials = list(_credentials.values())
    _credentials.clear()
    for credential in credentials:
        await credential.close()
