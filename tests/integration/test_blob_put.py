"""The archive's lean Put Blob: Shared Key that Azurite accepts, a storage token for the keyless
form, and the service's answers as azure-core's exceptions, transient ones retried in place.

Azurite checks Shared Key signatures; the faults it cannot produce on demand (503, a token-only
endpoint, a dead port) come from a loopback server that answers as Blob storage would.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.storage.blob.aio import BlobServiceClient

from local.host.azurite import Azurite
from shared.blob_put import STORAGE_SCOPE, BearerSigner, BlobPut, SharedKeySigner, account_key_of

pytestmark = pytest.mark.integration

JSON_UTF8 = "application/json; charset=utf-8"


async def no_sleep(_: float) -> None:
    return None


def shared_key(connection_string: str) -> SharedKeySigner:
    account = account_key_of(connection_string)
    assert account is not None
    return SharedKeySigner(account_name=account[0], account_key=account[1])


@asynccontextmanager
async def azurite_put(
    azurite: Azurite, signer: SharedKeySigner | None = None
) -> AsyncIterator[tuple[BlobPut, Any]]:
    name = f"put-{uuid.uuid4().hex[:12]}"
    async with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        container = service.get_container_client(name)
        await container.create_container()
        async with aiohttp.ClientSession() as session:
            put = BlobPut(
                session=session,
                container_url=container.url,
                signer=signer or shared_key(azurite.connection_string),
                api_version=container.api_version,
                sleep=no_sleep,
            )
            yield put, container


async def test_a_put_signed_with_the_account_key_writes_json_that_azurite_serves(azurite: Azurite) -> None:
    async with azurite_put(azurite) as (put, container):
        await put.put("job/tasks/00-Kind.json", b'{"a":"\xc3\xa9"}', create_only=True)

        blob = container.get_blob_client("job/tasks/00-Kind.json")
        assert await (await blob.download_blob()).readall() == b'{"a":"\xc3\xa9"}'
        properties = await blob.get_blob_properties()
        assert properties.content_settings.content_type == JSON_UTF8
        assert properties.content_settings.content_md5  # the service's own, as for the SDK's upload


async def test_a_create_of_an_existing_blob_is_resource_exists_and_leaves_it(azurite: Azurite) -> None:
    async with azurite_put(azurite) as (put, container):
        await put.put("b.json", b"first", create_only=True)

        with pytest.raises(ResourceExistsError):
            await put.put("b.json", b"second", create_only=True)
        await put.put("c.json", b"x", create_only=False)
        await put.put("c.json", b"y", create_only=False)  # an overwrite replaces

        assert await (await container.download_blob("b.json")).readall() == b"first"
        assert await (await container.download_blob("c.json")).readall() == b"y"


async def test_a_missing_container_is_resource_not_found(azurite: Azurite) -> None:
    async with azurite_put(azurite) as (put, container):
        await container.delete_container()

        with pytest.raises(ResourceNotFoundError):
            await put.put("b.json", b"{}", create_only=True)


async def test_a_wrong_account_key_is_refused_once_and_the_key_is_in_no_error(azurite: Azurite) -> None:
    account = account_key_of(azurite.connection_string)
    assert account is not None
    wrong = base64.b64encode(b"not the key of this account").decode()
    async with azurite_put(azurite, SharedKeySigner(account_name=account[0], account_key=wrong)) as (put, _):
        with pytest.raises(HttpResponseError) as refused:
            await put.put("b.json", b"{}", create_only=True)

    assert refused.value.status_code == 403
    assert wrong not in str(refused.value)
    assert account[1] not in str(refused.value)


# -- what Azurite cannot answer: a loopback stand-in for Blob storage ------------------------------


@asynccontextmanager
async def blob_endpoint(answers: list[int]) -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A server that answers each PUT with the next status of ``answers`` (then 201)."""
    seen: list[web.Request] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        seen.append(request)
        status = answers.pop(0) if answers else 201
        return web.Response(status=status, headers={"x-ms-error-code": "ServerBusy"} if status >= 500 else {})

    app = web.Application()
    app.router.add_put("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/account/archive", seen
    finally:
        await runner.cleanup()


class StaticCredential:
    """An azure-core async credential that hands out one token and counts the asks."""

    def __init__(self, *, fails: bool = False) -> None:
        self.scopes: list[str] = []
        self.fails = fails

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.extend(scopes)
        if self.fails:
            raise ClientAuthenticationError("no identity here")
        return AccessToken("storage-token", 2_000_000_000)

    async def close(self) -> None:
        return None


def bearer(credential: StaticCredential) -> BearerSigner:
    return BearerSigner(credential=credential)  # type: ignore[arg-type]


async def put_to(url: str, signer: Any, sleeps: list[float] | None = None) -> Callable[..., Any]:
    session = aiohttp.ClientSession()

    async def sleep(seconds: float) -> None:
        (sleeps if sleeps is not None else []).append(seconds)

    put = BlobPut(session=session, container_url=url, signer=signer, api_version="2025-01-05", sleep=sleep)

    async def call(name: str, data: bytes = b"{}", *, create_only: bool = True) -> None:
        try:
            await put.put(name, data, create_only=create_only)
        finally:
            await session.close()

    return call


async def test_keyless_puts_carry_the_storage_token_asked_for_once() -> None:
    credential = StaticCredential()
    async with blob_endpoint([]) as (url, seen):
        session = aiohttp.ClientSession()
        put = BlobPut(session=session, container_url=url, signer=bearer(credential), api_version="2025-01-05")
        for n in range(3):
            await put.put(f"job/{n}.json", b"{}", create_only=True)
        await session.close()

    assert [request.headers["Authorization"] for request in seen] == ["Bearer storage-token"] * 3
    assert credential.scopes == [STORAGE_SCOPE]
    assert all(request.headers["If-None-Match"] == "*" for request in seen)
    assert all(request.headers["x-ms-blob-type"] == "BlockBlob" for request in seen)
    assert all(request.headers["x-ms-blob-content-type"] == JSON_UTF8 for request in seen)


async def test_no_storage_token_is_an_authentication_error_that_says_what_to_check() -> None:
    async with blob_endpoint([]) as (url, seen):
        call = await put_to(url, bearer(StaticCredential(fails=True)))
        with pytest.raises(ClientAuthenticationError, match="Storage Blob Data Contributor") as refused:
            await call("b.json")

    assert seen == []
    assert "Language" not in str(refused.value)  # the storage identity's hint, not the Language one


async def test_a_busy_service_is_asked_again_in_place() -> None:
    sleeps: list[float] = []
    async with blob_endpoint([503, 500]) as (url, seen):
        call = await put_to(url, shared_key_for_tests(), sleeps)
        await call("b.json")

    assert len(seen) == 3
    assert len(sleeps) == 2
    assert sleeps[1] > sleeps[0] * 1.0 / 3  # backing off, jittered


async def test_a_service_busy_at_every_attempt_is_an_http_error_with_its_code() -> None:
    async with blob_endpoint([503] * 10) as (url, seen):
        call = await put_to(url, shared_key_for_tests())
        with pytest.raises(HttpResponseError, match="503 ServerBusy") as busy:
            await call("b.json")

    assert busy.value.status_code == 503
    assert len(seen) == 4


async def test_no_answer_at_all_is_a_service_request_error_after_the_retries() -> None:
    async with blob_endpoint([]) as (url, _):
        pass  # closed again: nothing listens there now
    call = await put_to(url, shared_key_for_tests())

    with pytest.raises(ServiceRequestError, match="no answer"):
        await call("b.json")


def shared_key_for_tests() -> SharedKeySigner:
    return SharedKeySigner(account_name="account", account_key=base64.b64encode(b"k" * 32).decode())


# -- which connection strings the lean path serves -------------------------------------------------


@pytest.mark.parametrize(
    ("connection_string", "expected"),
    [
        (
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net",
            ("acct", "a2V5"),
        ),
        ("accountname=acct; accountkey=not base64!", None),
        ("BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=sv=2024&sig=abc", None),
        ("UseDevelopmentStorage=true", None),
        ("AccountName=acct;AccountKey=", None),
    ],
    ids=["key", "bad-key", "sas", "development", "empty-key"],
)
def test_the_lean_put_takes_the_connection_strings_that_carry_an_account_key(
    connection_string: str, expected: tuple[str, str] | None
) -> None:
    assert account_key_of(connection_string) == expected
