"""Put Blob on the process's aiohttp session: the archive's three writes a job, without the SDK's
per-call client.

Why not ``ContainerClient.upload_blob``: it builds a new blob client for every name (a generated
client, its configuration and a dozen policies), then runs the request through that pipeline.
Counted with callgrind (``make bench``, a job of two 25-document tasks): the three uploads took
9.3 of the app's 19.2 million instructions a job; as single PUTs they take under 1. Everything else
in storage (reads, the ledger's and the budget's conditional swaps, queues, containers) stays on
the SDK; so does this write when the connection string carries no account key (a SAS).

What the SDK gave and this keeps: the same service version (the SDK's ``api_version``), the same
headers (``application/json; charset=utf-8`` as the blob's type, ``If-None-Match: *`` for a
create), authentication by Shared Key (account key: the signature the service documents, never
sent itself) or a Microsoft Entra token for storage (managed identity, keyless), the service's
answers as azure-core's exceptions (``ResourceExistsError`` for 409, ``ResourceNotFoundError`` for
404, ``HttpResponseError`` otherwise, with the service's error code), in-place retries of transient
faults, explicit timeouts, and a client span per attempt. No secret is ever in a URL, a log or an
error.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
from collections.abc import Awaitable, Callable, Mapping
from email.utils import formatdate
from typing import TYPE_CHECKING, Final, Protocol
from urllib.parse import quote, urlsplit

import aiohttp
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from .auth import EntraTokenAuth, LanguageAuthError
from .storage import CONNECT_TIMEOUT_SECONDS, JSON_TYPE, READ_TIMEOUT_SECONDS, connection_string_parts
from .telemetry import Telemetry

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

__all__ = ["STORAGE_SCOPE", "BearerSigner", "BlobPut", "BlobSigner", "SharedKeySigner", "account_key_of"]

#: The OAuth scope of Azure Storage's data plane.
STORAGE_SCOPE: Final = "https://storage.azure.com/.default"
#: Statuses worth the same request again (the SDK's retry policy retries these too).
_TRANSIENT: Final = frozenset({408, 429, 500, 502, 503, 504})
_ATTEMPTS: Final = 4
_BASE_DELAY: Final = 0.5
# As the storage transport of the SDK clients.
_TIMEOUT: Final = aiohttp.ClientTimeout(
    total=None, sock_connect=CONNECT_TIMEOUT_SECONDS, sock_read=READ_TIMEOUT_SECONDS
)


class BlobSigner(Protocol):
    """Adds the ``Authorization`` of one request to its headers."""

    async def sign(self, method: str, path: str, headers: dict[str, str]) -> None: ...


class SharedKeySigner:
    """Shared Key: an HMAC-SHA256 of the request's canonical form with the account key
    (learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key). The key never leaves."""

    __slots__ = ("_account", "_key")

    def __init__(self, *, account_name: str, account_key: str) -> None:
        self._account = account_name
        self._key = base64.b64decode(account_key, validate=True)

    def __repr__(self) -> str:
        return f"SharedKeySigner(account_name={self._account!r}, account_key=<redacted>)"

    async def sign(self, method: str, path: str, headers: dict[str, str]) -> None:
        lowered = {name.lower(): value for name, value in headers.items()}
        length = lowered.get("content-length", "")
        standard = [
            lowered.get("content-encoding", ""),
            lowered.get("content-language", ""),
            "" if length == "0" else length,
            lowered.get("content-md5", ""),
            lowered.get("content-type", ""),
            "",  # Date: x-ms-date is sent instead
            lowered.get("if-modified-since", ""),
            lowered.get("if-match", ""),
            lowered.get("if-none-match", ""),
            lowered.get("if-unmodified-since", ""),
            lowered.get("range", ""),
        ]
        canonical_headers = "".join(
            f"{name}:{value}\n" for name, value in sorted(lowered.items()) if name.startswith("x-ms-")
        )
        to_sign = f"{method}\n" + "\n".join(standard) + "\n" + canonical_headers + f"/{self._account}{path}"
        digest = hmac.new(self._key, to_sign.encode("utf-8"), hashlib.sha256).digest()
        headers["Authorization"] = f"SharedKey {self._account}:{base64.b64encode(digest).decode()}"


#: What to check when the storage identity gets no token.
STORAGE_IDENTITY_HINT: Final = (
    "Check that the function app's managed identity is enabled, that AzureWebJobsStorage__clientId "
    "names it, and that it has Storage Blob Data Contributor (or Owner) on the archive container; "
    "locally, sign in with 'az login' or 'azd auth login', or use a connection string."
)


class BearerSigner:
    """A Microsoft Entra token for storage (the managed identity): cached and refreshed by
    ``shared.auth.EntraTokenAuth``."""

    __slots__ = ("_auth",)

    def __init__(self, *, credential: AsyncTokenCredential) -> None:
        self._auth = EntraTokenAuth(credential=credential, scope=STORAGE_SCOPE, hint=STORAGE_IDENTITY_HINT)

    async def sign(self, method: str, path: str, headers: dict[str, str]) -> None:
        try:
            headers.update(await self._auth.headers())
        except LanguageAuthError as exc:  # EntraTokenAuth's error, whatever its scope: here a storage fault
            raise ClientAuthenticationError(str(exc)) from exc


def account_key_of(connection_string: str) -> tuple[str, str] | None:
    """``(AccountName, AccountKey)`` of a storage connection string, ``None`` without both (a SAS,
    ``UseDevelopmentStorage``) or with a key that is not base64: those stay on the SDK."""
    fields = connection_string_parts(connection_string) or {}
    account, key = fields.get("accountname"), fields.get("accountkey")
    if not account or not key:
        return None
    try:
        base64.b64decode(key, validate=True)
    except ValueError:
        return None
    return account, key


class BlobPut:
    """Single-shot Put Blob (a block blob) into one container."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        container_url: str,
        signer: BlobSigner,
        api_version: str,
        telemetry: Telemetry = Telemetry(),  # noqa: B008 - stateless, records nothing
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        parts = urlsplit(container_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("the container URL must be an absolute http(s) URL")
        self._session = session
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._path = parts.path.rstrip("/")  # the query (a SAS) is never used here
        self._signer = signer
        self._api_version = api_version
        self._telemetry = telemetry
        self._sleep = sleep
        self._rand = rand

    async def put(self, name: str, data: bytes, *, create_only: bool) -> None:
        """Write ``data`` as blob ``name``; ``create_only``: only if it does not exist yet
        (``ResourceExistsError`` when it does). ``ResourceNotFoundError`` when the container is missing."""
        path = f"{self._path}/{quote(name, safe='/')}"
        url = self._origin + path
        for attempt in range(_ATTEMPTS):
            headers = {
                "Content-Length": str(len(data)),
                "Content-Type": JSON_TYPE,
                "x-ms-blob-content-type": JSON_TYPE,
                "x-ms-blob-type": "BlockBlob",
                "x-ms-date": formatdate(usegmt=True),
                "x-ms-version": self._api_version,
            }
            if create_only:
                headers["If-None-Match"] = "*"
            await self._signer.sign("PUT", path, headers)
            status, code, detail = await self._attempt(url, data, headers)
            if status is not None and 200 <= status < 300:
                return
            if status is not None and status not in _TRANSIENT:
                raise _error(status, code, name)
            if attempt + 1 < _ATTEMPTS:
                await self._sleep(_BASE_DELAY * 2**attempt * (0.5 + self._rand()))
        if status is None:
            raise ServiceRequestError(f"Put Blob {name}: no answer from storage ({detail})")
        raise _error(status, code, name)

    async def _attempt(
        self, url: str, data: bytes, headers: Mapping[str, str]
    ) -> tuple[int | None, str, str]:
        """One request: (status, the service's error code, what went wrong); status ``None``: no answer."""
        with self._telemetry.span(
            "Blob PUT", kind="client", attributes={"http.request.method": "PUT", "url.full": url}
        ) as span:
            try:
                async with self._session.put(
                    url, data=data, headers=headers, timeout=_TIMEOUT, allow_redirects=False
                ) as response:
                    await response.read()
                    status, code = response.status, response.headers.get("x-ms-error-code", "")
            except (aiohttp.ClientError, TimeoutError) as exc:
                # The exception's text may name the URL; the URL carries no secret, but keep it short.
                span.set_error(type(exc).__name__)
                return None, "", type(exc).__name__
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_error(f"HTTP {status} {code}".strip())
            return status, code, ""


def _error(status: int, code: str, name: str) -> HttpResponseError:
    message = f"Put Blob {name}: HTTP {status}{' ' + code if code else ''}"
    if status == 409:
        return ResourceExistsError(message)
    if status == 404:
        return ResourceNotFoundError(message)
    error = HttpResponseError(message)
    error.status_code = status
    return error
