"""Storage clients from both forms of ``AzureWebJobsStorage``, on the process's one aiohttp session.

The connection-string form is exercised on real Azurite. The identity-based form sends bearer
tokens, which azure-storage refuses to build over plain http ("Token credential is only supported
with HTTPS") and Azurite only takes over https with its own certificate; so its requests go to tiny
local HTTPS servers (a throwaway self-signed certificate that only the test's session trusts),
which record what arrives and answer 404. That covers the wiring, the token's scope and the
Authorization header on real requests, not a real token exchange with Microsoft Entra.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from azure.core.exceptions import ResourceNotFoundError, ServiceResponseError
from azure.core.pipeline.transport import AioHttpTransport
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueClient, QueueServiceClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

from local.bench.latency import LatencyProxy
from local.host.azurite import Azurite, connection_string
from shared.settings import StorageSettings
from shared.storage import StorageClients, open_storage
from tests.support import FakeCredential, LocalServers, RecordingServer

pytestmark = pytest.mark.integration

STORAGE_SCOPE = "https://storage.azure.com/.default"
TOKEN = "storage-token-0123456789abcdef"


# -- helpers ----------------------------------------------------------------------------------


@dataclass
class RequestLog:
    """Every request sent through one aiohttp session, as (method, host:port, path)."""

    requests: list[tuple[str, str, str]] = field(default_factory=list)

    def trace_config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()

        async def on_start(
            session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestStartParams
        ) -> None:
            self.requests.append((params.method, f"{params.url.host}:{params.url.port}", params.url.path))

        config.on_request_start.append(on_start)
        return config

    def hosts(self) -> set[str]:
        return {host for _, host, _ in self.requests}


def host_of(endpoint: str) -> str:
    url = URL(endpoint)
    return f"{url.host}:{url.port}"


def transport_of(client: BlobServiceClient | QueueServiceClient) -> AioHttpTransport:
    # The SDK has no public accessor for a client's transport; timeouts cannot be observed from the
    # outside without waiting for them (30 s), so this one test looks inside.
    transport: object = getattr(client._config, "transport", None)
    assert isinstance(transport, AioHttpTransport)
    return transport


@pytest.fixture
def log() -> RequestLog:
    return RequestLog()


@pytest.fixture
async def session(log: RequestLog) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(trace_configs=[log.trace_config()]) as http:
        yield http


@pytest.fixture
async def azurite_clients(azurite: Azurite, session: aiohttp.ClientSession) -> AsyncIterator[StorageClients]:
    clients = open_storage(
        StorageSettings(connection_string=azurite.connection_string), session=session, credential=None
    )
    yield clients
    await clients.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def port_of(endpoint: str) -> int:
    port = URL(endpoint).port
    assert port is not None
    return port


# -- dropped connections ------------------------------------------------------------------------

#: Far below the SDK's first backoff (15 s and more): the retry after no answer did not wait for it.
AT_ONCE_SECONDS = 5.0


async def test_a_blob_write_whose_connection_drops_unanswered_is_sent_again_at_once(
    azurite: Azurite, session: aiohttp.ClientSession
) -> None:
    name = unique("dropped")
    async with BlobServiceClient.from_connection_string(azurite.connection_string) as direct:
        await direct.create_container(name)
    # aiohttp itself sends an idempotent request (PUT) once more on a new connection; the second
    # drop is the retry policy's.
    async with LatencyProxy.start(
        upstream_port=port_of(azurite.blob_endpoint), delay=0, drop_first=2
    ) as proxy:
        clients = open_storage(
            StorageSettings(connection_string=connection_string(proxy.port, port_of(azurite.queue_endpoint))),
            session=session,
            credential=None,
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await clients.container(name).upload_blob("a.json", b"{}")
        finally:
            await clients.close()

        assert loop.time() - started < AT_ONCE_SECONDS
        assert proxy.connections == 3


async def test_a_queue_send_whose_connection_drops_unanswered_is_sent_again_at_once(
    azurite: Azurite, session: aiohttp.ClientSession
) -> None:
    name = unique("dropped")
    async with QueueClient.from_connection_string(azurite.connection_string, name) as direct:
        await direct.create_queue()
    async with LatencyProxy.start(
        upstream_port=port_of(azurite.queue_endpoint), delay=0, drop_first=1
    ) as proxy:
        clients = open_storage(
            StorageSettings(connection_string=connection_string(port_of(azurite.blob_endpoint), proxy.port)),
            session=session,
            credential=None,
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await clients.queue(name).send_message("{}")
        finally:
            await clients.close()

        assert loop.time() - started < AT_ONCE_SECONDS
        assert proxy.connections == 2


async def test_a_second_drop_and_a_busy_answer_still_get_the_sdks_backoff(
    azurite_clients: StorageClients,
) -> None:
    # Only the first retry of no answer goes at once; storage that answers (503) or keeps dropping
    # is given the SDK's room (15 s and more), as before.
    for client in (azurite_clients.blobs, azurite_clients.queues):
        policy: Any = client._config.retry_policy  # the policy the clients were built with
        dropped = SimpleNamespace(error=ServiceResponseError("dropped"))
        answered = SimpleNamespace(error=None)

        assert policy.get_backoff_time({"count": 1, "history": [dropped]}) == 0
        assert policy.get_backoff_time({"count": 2, "history": [dropped, dropped]}) >= 12
        assert policy.get_backoff_time({"count": 1, "history": [answered]}) >= 12


# -- a local HTTPS stand-in for the storage services ------------------------------------------


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A throwaway self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    paths = Certificate(cert=folder / "cert.pem", key=folder / "key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


StartStandIn = Callable[[], Awaitable[RecordingServer]]


async def not_found(request: web.Request) -> web.StreamResponse:
    return web.Response(status=404, headers={"x-ms-error-code": "ResourceNotFound"})


@pytest.fixture
async def stand_in(certificate: Certificate) -> AsyncIterator[StartStandIn]:
    """Starts HTTPS servers on free loopback ports that record requests and answer 404 (not found)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert, certificate.key)
    async with LocalServers(ssl_context=context) as servers:

        async def start() -> RecordingServer:
            return await servers.start(not_found, path="/devstoreaccount1")

        yield start


@pytest.fixture
async def tls_session(certificate: Certificate, log: RequestLog) -> AsyncIterator[aiohttp.ClientSession]:
    """The process session, trusting the stand-ins' certificate (and nothing else changed)."""
    trust = ssl.create_default_context(cafile=str(certificate.cert))
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=trust), trace_configs=[log.trace_config()]
    ) as http:
        yield http


def identity_settings(blob: str, queue: str) -> StorageSettings:
    return StorageSettings(blob_service_uri=blob, queue_service_uri=queue, credential="managedidentity")


# -- connection string (Azurite) ---------------------------------------------------------------


async def test_connection_string_blob_client_works_on_azurite(azurite_clients: StorageClients) -> None:
    container = azurite_clients.container(unique("blobs"))
    await container.create_container()
    try:
        await container.upload_blob("a.json", b'{"ok": true}')

        assert await (await container.download_blob("a.json")).readall() == b'{"ok": true}'
    finally:
        await container.delete_container()


async def test_connection_string_queue_client_works_on_azurite(azurite_clients: StorageClients) -> None:
    queue = azurite_clients.queue(unique("jobs"))
    await queue.create_queue()
    try:
        await queue.send_message('{"jobId": "1"}', visibility_timeout=0)

        assert (await queue.get_queue_properties()).approximate_message_count == 1
    finally:
        await queue.delete_queue()


async def test_queue_messages_are_base64_of_utf8_as_the_functions_host_reads_them(
    azurite: Azurite, azurite_clients: StorageClients
) -> None:
    name = unique("jobs")
    await azurite_clients.queue(name).create_queue()
    raw = QueueClient.from_connection_string(azurite.connection_string, name)  # no decoding
    try:
        await azurite_clients.queue(name).send_message('{"displayName": "Zürich"}')

        [received] = [m async for m in raw.receive_messages(max_messages=1)]
        assert base64.b64decode(received.content).decode("utf-8") == '{"displayName": "Zürich"}'
    finally:
        await raw.delete_queue()
        await raw.close()


async def test_blob_and_queue_requests_all_go_through_the_given_session(
    azurite: Azurite, azurite_clients: StorageClients, log: RequestLog
) -> None:
    container = azurite_clients.container(unique("blobs"))
    queue = azurite_clients.queue(unique("jobs"))

    await container.create_container()
    await queue.create_queue()
    await container.delete_container()
    await queue.delete_queue()

    assert log.hosts() == {host_of(azurite.blob_endpoint), host_of(azurite.queue_endpoint)}
    assert len(log.requests) == 4


async def test_closing_the_clients_leaves_the_shared_session_open(
    azurite: Azurite, session: aiohttp.ClientSession
) -> None:
    settings = StorageSettings(connection_string=azurite.connection_string)
    first = open_storage(settings, session=session, credential=None)
    await first.container(unique("blobs")).exists()

    await first.close()

    assert not session.closed
    second = open_storage(settings, session=session, credential=None)  # the next runtime, same session
    try:
        assert await second.container(unique("blobs")).exists() is False
    finally:
        await second.close()


async def test_storage_requests_have_explicit_connect_and_read_timeouts(
    azurite_clients: StorageClients,
) -> None:
    for client in (azurite_clients.blobs, azurite_clients.queues):
        config = transport_of(client).connection_config
        assert (config.timeout, config.read_timeout) == (10, 30)


async def test_both_clients_use_the_given_session_without_owning_it(
    azurite_clients: StorageClients, session: aiohttp.ClientSession
) -> None:
    for client in (azurite_clients.blobs, azurite_clients.queues):
        assert transport_of(client).session is session


# -- identity-based settings -------------------------------------------------------------------


async def test_identity_settings_point_the_clients_at_the_service_uris_with_the_given_credential(
    session: aiohttp.ClientSession,
) -> None:
    credential = FakeCredential(token=TOKEN)
    settings = identity_settings(
        "https://contoso.blob.core.windows.net", "https://contoso.queue.core.windows.net"
    )

    clients = open_storage(settings, session=session, credential=credential)
    try:
        assert clients.blobs.url == "https://contoso.blob.core.windows.net/"
        assert clients.queues.url == "https://contoso.queue.core.windows.net/"
        assert clients.blobs.account_name == clients.queues.account_name == "contoso"
        assert clients.blobs.credential is credential
        assert clients.queues.credential is credential
        assert clients.container("archive").url == "https://contoso.blob.core.windows.net/archive"
        assert clients.queue("jobs").url == "https://contoso.queue.core.windows.net/jobs"
    finally:
        await clients.close()
    assert credential.scopes == []  # building clients asks for no token


async def test_identity_blob_requests_carry_a_bearer_token_for_the_storage_scope(
    stand_in: StartStandIn, tls_session: aiohttp.ClientSession
) -> None:
    blobs, queues = await stand_in(), await stand_in()
    credential = FakeCredential(token=TOKEN)
    clients = open_storage(
        identity_settings(blobs.url, queues.url), session=tls_session, credential=credential
    )
    try:
        with pytest.raises(ResourceNotFoundError):
            await clients.container("archive").get_blob_client("job/manifest.json").get_blob_properties()
    finally:
        await clients.close()

    [request] = blobs.seen
    assert (request.method, request.path) == ("HEAD", "/devstoreaccount1/archive/job/manifest.json")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert credential.scopes == [(STORAGE_SCOPE,)]
    assert queues.seen == []


async def test_identity_queue_requests_carry_a_bearer_token_for_the_storage_scope(
    stand_in: StartStandIn, tls_session: aiohttp.ClientSession
) -> None:
    blobs, queues = await stand_in(), await stand_in()
    credential = FakeCredential(token=TOKEN)
    clients = open_storage(
        identity_settings(blobs.url, queues.url), session=tls_session, credential=credential
    )
    try:
        with pytest.raises(ResourceNotFoundError):
            await clients.queue("jobs").get_queue_properties()
    finally:
        await clients.close()

    [request] = queues.seen
    assert (request.method, request.path) == ("GET", "/devstoreaccount1/jobs")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert credential.scopes == [(STORAGE_SCOPE,)]
    assert blobs.seen == []


async def test_identity_clients_share_the_given_session_and_leave_session_and_credential_open(
    stand_in: StartStandIn, tls_session: aiohttp.ClientSession, log: RequestLog
) -> None:
    blobs, queues = await stand_in(), await stand_in()
    credential = FakeCredential(token=TOKEN)
    clients = open_storage(
        identity_settings(blobs.url, queues.url), session=tls_session, credential=credential
    )
    with pytest.raises(ResourceNotFoundError):
        await clients.container("archive").get_container_properties()
    with pytest.raises(ResourceNotFoundError):
        await clients.queue("jobs").get_queue_properties()

    await clients.close()

    assert log.hosts() == {host_of(blobs.url), host_of(queues.url)}
    assert not tls_session.closed
    assert credential.closed == 0  # the process owns its credentials (auth.close_credentials)


async def test_identity_storage_over_plain_http_is_refused_before_any_token_is_asked(
    session: aiohttp.ClientSession,
) -> None:
    credential = FakeCredential(token=TOKEN)
    settings = identity_settings(
        "http://127.0.0.1:10000/devstoreaccount1", "http://127.0.0.1:10001/devstoreaccount1"
    )

    with pytest.raises(ValueError, match="HTTPS"):
        open_storage(settings, session=session, credential=credential)

    assert credential.scopes == []


async def test_identity_settings_without_a_credential_are_an_error(session: aiohttp.ClientSession) -> None:
    settings = identity_settings(
        "https://contoso.blob.core.windows.net", "https://contoso.queue.core.windows.net"
    )

    with pytest.raises(ValueError, match="credential"):
        open_storage(settings, session=session, credential=None)
