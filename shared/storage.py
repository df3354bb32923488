"""Storage clients (blob containers and queues) on the process's shared aiohttp session.

Both forms of ``AzureWebJobsStorage`` go through the same code: a connection string (Azurite,
or an account key where one is allowed), or identity-based service URIs with a managed identity.
"""

from __future__ import annotations

import contextlib
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from azure.core import MatchConditions
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.core.pipeline.transport import AioHttpTransport
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobServiceClient, ContainerClient
from azure.storage.blob.aio import ExponentialRetry as BlobExponentialRetry
from azure.storage.queue import TextBase64EncodePolicy

# The queue package exports its async retry policy only from its vendored module (the public
# ``azure.storage.queue.ExponentialRetry`` sleeps synchronously).
from azure.storage.queue._shared.policies_async import ExponentialRetry as QueueExponentialRetry
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from .settings import StorageSettings

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "JSON_CONTENT",
    "JSON_TYPE",
    "READ_TIMEOUT_SECONDS",
    "Base64EncodePolicy",
    "StorageClients",
    "connection_string_parts",
    "create_container_if_missing",
    "open_storage",
    "swap_blob",
    "swap_blob_written",
]

#: The content type of every blob the app writes.
JSON_TYPE: Final = "application/json; charset=utf-8"
#: Small JSON state blobs (ledger records, the request budget).
JSON_CONTENT: Final = ContentSettings(content_type=JSON_TYPE)

# Explicit timeouts (seconds): a blob or queue call that hangs must fail and be retried by the
# SDK's own retry policy rather than hold an invocation until the function timeout. They belong to
# the transport: with a transport of our own, client-level timeout options would be ignored.
CONNECT_TIMEOUT_SECONDS: Final = 10
READ_TIMEOUT_SECONDS: Final = 30
_CLIENT_OPTIONS: Final[dict[str, Any]] = {"retry_total": 3}


def _first_retry_of_no_answer(settings: Mapping[str, Any]) -> bool:
    """Whether the retry about to be slept for is the first, after a request that got no answer."""
    history: list[Any] = settings.get("history") or []
    return settings.get("count") == 1 and bool(history) and getattr(history[-1], "error", None) is not None


class _ReconnectAtOnce:
    """The storage SDK's exponential retry (15 s, then 3**n more, jittered), except for the first
    retry of a request that got no answer at all, which goes again at once on a new connection.

    That is nearly always a pooled keep-alive connection that the far end closed as the request
    went out (its idle timeout and ours differ): routine, nothing to back off from. Waiting the
    SDK's 15 s for it held an invocation (and, for the request budget's swap, every request of
    the instance). An answer such as 503 still gets the SDK's backoff: storage asks for room."""

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        if _first_retry_of_no_answer(settings):
            return 0.0
        backoff: float = super().get_backoff_time(settings)  # type: ignore[misc]
        return backoff


class _BlobRetry(_ReconnectAtOnce, BlobExponentialRetry):
    pass


class _QueueRetry(_ReconnectAtOnce, QueueExponentialRetry):
    pass


class Base64EncodePolicy(TextBase64EncodePolicy):
    """Base64 of UTF-8 text, as the Functions host reads it; bytes go as they are (base64 of them):
    the poison queue keeps an original that the app could not wrap exactly as it came."""

    def encode(self, content: str | bytes) -> str:
        if isinstance(content, bytes):
            return b64encode(content).decode("ascii")
        return super().encode(content)


@dataclass(frozen=True, slots=True)
class StorageClients:
    """The blob and queue service clients of the process."""

    blobs: BlobServiceClient
    queues: QueueServiceClient

    def container(self, name: str) -> ContainerClient:
        return self.blobs.get_container_client(name)

    def queue(self, name: str) -> QueueClient:
        # Base64 of UTF-8 text: what the Functions host's queue trigger reads by default.
        return self.queues.get_queue_client(name, message_encode_policy=Base64EncodePolicy())

    async def close(self) -> None:
        await self.blobs.close()
        await self.queues.close()


def open_storage(
    settings: StorageSettings,
    *,
    session: aiohttp.ClientSession,
    credential: AsyncTokenCredential | None,
    retry: Mapping[str, float] | None = None,
) -> StorageClients:
    """Clients for ``settings``; ``credential`` is required for the identity-based form.

    ``retry`` overrides the storage SDK's retry options (``retry_total``, ``initial_backoff``, ...):
    an operator at a terminal wants an unreachable account reported in seconds, not minutes.
    """
    options = {**_CLIENT_OPTIONS, **(retry or {})}
    blob_retry, queue_retry = _BlobRetry(**options), _QueueRetry(**options)

    def transport() -> AioHttpTransport:
        # session_owner=False: the process owns the session; closing a client must not close it.
        return AioHttpTransport(
            session=session,
            session_owner=False,
            connection_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
        )

    if settings.connection_string is not None:
        return StorageClients(
            blobs=BlobServiceClient.from_connection_string(
                settings.connection_string, transport=transport(), retry_policy=blob_retry
            ),
            queues=QueueServiceClient.from_connection_string(
                settings.connection_string, transport=transport(), retry_policy=queue_retry
            ),
        )
    if credential is None:
        raise ValueError("identity-based storage needs a credential")
    assert settings.blob_service_uri is not None
    assert settings.queue_service_uri is not None
    return StorageClients(
        blobs=BlobServiceClient(
            settings.blob_service_uri, credential=credential, transport=transport(), retry_policy=blob_retry
        ),
        queues=QueueServiceClient(
            settings.queue_service_uri, credential=credential, transport=transport(), retry_policy=queue_retry
        ),
    )


def connection_string_parts(value: str) -> dict[str, str] | None:
    """The ``Name=value`` parts of a storage connection string, names lower-cased, values stripped
    (a value may hold ``=``: base64, a SAS); ``None`` when a part is not ``Name=value``."""
    pairs = [part.split("=", 1) for part in value.rstrip(";").split(";")]
    if any(len(pair) != 2 or not pair[0].strip() for pair in pairs):
        return None
    return {name.strip().lower(): item.strip() for name, item in pairs}


async def create_container_if_missing(container: ContainerClient, **options: Any) -> None:
    """Create ``container`` after a write answered 404; losing that race to another writer is fine.

    Containers are created on first use rather than probed before every call (a billed request).
    ``options``: per-call options of the SDK, as for the write that met the 404.
    """
    with contextlib.suppress(ResourceExistsError):
        await container.create_container(**options)


async def swap_blob(
    container: ContainerClient,
    name: str,
    data: bytes,
    *,
    etag: str | None,
    metadata: Mapping[str, str] | None = None,
) -> str | None:
    """Compare-and-swap a small JSON blob: written only while it is still at ``etag`` (If-Match), or,
    with ``etag`` None, only if it does not exist yet (If-None-Match: *).

    The new ETag, or ``None`` when another writer got there first (or, with ``etag``, the blob is
    gone meanwhile). The container is created on the first write that meets a 404.
    """
    written = await swap_blob_written(container, name, data, etag=etag, metadata=metadata)
    return None if written is None else str(written["etag"])


async def swap_blob_written(
    container: ContainerClient,
    name: str,
    data: bytes,
    *,
    etag: str | None,
    metadata: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """``swap_blob``, answering the write's properties (``etag``, ``last_modified``: the storage
    service's clock) instead of the ETag alone; ``options`` are per-call options of the SDK for
    its calls (retry counts, ``read_timeout``, ...)."""
    call: dict[str, Any] = dict(options or {})
    blob = container.get_blob_client(name)
    condition: dict[str, Any] = (
        {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        if etag is not None
        else {"match_condition": MatchConditions.IfMissing}
    )

    async def put() -> dict[str, Any]:
        return await blob.upload_blob(
            data,
            overwrite=True,
            metadata=dict(metadata or {}),
            content_settings=JSON_CONTENT,
            **condition,
            **call,
        )

    try:
        try:
            result = await put()
        except ResourceNotFoundError:
            if etag is not None:
                return None
            await create_container_if_missing(container, **call)
            result = await put()
    except (ResourceModifiedError, ResourceExistsError):
        return None
    return result
