"""The Language client against the real emulator over HTTP, and against tiny local servers for the
shapes the emulator cannot produce (redirects, relative or looping nextLinks, NaN, HTTP-dates).

No test waits: the client gets a sleep that only records, and a fixed ``rand``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import timedelta
from email.utils import formatdate
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from shared.auth import ApiKeyAuth, EntraTokenAuth, LanguageAuth, LanguageAuthError
from shared.jobs import MAX_ANSWER_BYTES, merge_task_items
from shared.language import (
    AccessDenied,
    InPlaceRetry,
    JobNotFound,
    LanguageClient,
    LanguageError,
    RequestRejected,
    TransientFailure,
    UntrustedLink,
    UnusableResponse,
)
from shared.routecheck import SUSPECT_AFTER
from tests.conftest import EMULATOR_KEY
from tests.support import FakeCredential, LocalServers, Responder, StartServer

from .conftest import SetFaults, Stack, documents

pytestmark = pytest.mark.integration

API_VERSION = "2024-11-01"
JOB_ID = "5b0f0e0a-52f3-4a44-9c43-5e8b2a2f1c11"
OTHER_JOB_ID = "0d7c3d1e-8f36-4c8e-b1a4-2a7f0e9b6d22"
JOBS_PATH = "/language/analyze-text/jobs/"
BASE_DELAY = 1.0
RAND = 0.5  # backoff(attempt) = BASE_DELAY * 2**attempt * (0.5 + RAND / 2): 0.75, 1.5, 3.0, ...
BACKOFF = [0.75, 1.5]


# -- helpers ----------------------------------------------------------------------------------


class Sleeps:
    """The client's ``sleep``: records how long it was asked to wait, and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
async def local_server() -> AsyncIterator[StartServer]:
    async with LocalServers() as servers:
        yield servers.start


def answer(status: int = 200, body: Any = None, *, headers: Mapping[str, str] | None = None) -> Responder:
    """Always the same response; ``body`` is JSON unless it is already bytes."""

    async def respond(request: web.Request) -> web.StreamResponse:
        if isinstance(body, bytes) or body is None:
            return web.Response(status=status, body=body, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    return respond


def job_page(job_id: str = JOB_ID, *, doc_ids: tuple[str, ...] = ("1",), next_link: str | None = None) -> Any:
    """A minimal finished job state, as the service shapes it."""
    page: dict[str, Any] = {
        "jobId": job_id,
        "createdDateTime": "2025-01-01T00:00:00Z",
        "lastUpdatedDateTime": "2025-01-01T00:00:05Z",
        "expirationDateTime": "2025-01-02T00:00:00Z",
        "status": "succeeded",
        "errors": [],
        "tasks": {
            "completed": 1,
            "failed": 0,
            "inProgress": 0,
            "total": 1,
            "items": [
                {
                    "kind": "EntityRecognitionLROResults",
                    "taskName": "ner",
                    "lastUpdateDateTime": "2025-01-01T00:00:05.0000000Z",
                    "status": "succeeded",
                    "results": {
                        "errors": [],
                        "modelVersion": "2024-04-15",
                        "documents": [{"id": i, "entities": [], "warnings": []} for i in doc_ids],
                    },
                }
            ],
        },
    }
    if next_link is not None:
        page["nextLink"] = next_link
    return page


def two_pages(next_link: str) -> Responder:
    """Documents 1-2 with ``next_link`` (``{origin}``: this server), then 3-4 when ``skip`` is asked."""

    async def respond(request: web.Request) -> web.StreamResponse:
        if "skip" in request.query:
            return web.json_response(job_page(doc_ids=("3", "4")))
        link = next_link.format(origin=f"{request.scheme}://{request.host}")
        return web.json_response(job_page(doc_ids=("1", "2"), next_link=link))

    return respond


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


MakeClient = Callable[..., LanguageClient]


@pytest.fixture
def make_client(http: aiohttp.ClientSession, sleeps: Sleeps) -> MakeClient:
    def make(
        endpoint: str,
        *,
        auth: LanguageAuth | None = None,
        attempts: int = 3,
        max_wait: float = 5.0,
        timeout: aiohttp.ClientTimeout | None = None,
        api_version: str = API_VERSION,
    ) -> LanguageClient:
        return LanguageClient(
            session=http,
            endpoint=endpoint,
            api_version=api_version,
            auth=auth or ApiKeyAuth(key=EMULATOR_KEY),
            timeout=timeout,
            retry=InPlaceRetry(attempts=attempts, base_delay=BASE_DELAY, max_wait=max_wait),
            sleep=sleeps,
            rand=lambda: RAND,
        )

    return make


def job_path(job_id: str = JOB_ID) -> str:
    return f"{JOBS_PATH}{job_id}"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FailingAuth:
    """An auth provider that cannot produce a credential (no identity, no role)."""

    async def headers(self) -> Mapping[str, str]:
        raise LanguageAuthError("Could not get a Microsoft Entra token: check the managed identity")

    async def close(self) -> None:
        return None


# -- reading a job -------------------------------------------------------------------------------


async def test_get_job_parses_the_first_page_of_a_finished_job(stack: Stack, make_client: MakeClient) -> None:
    job_id = await stack.submit(documents(2), display_name="two documents")

    page = await make_client(stack.emulator_url).get_job(job_id)

    assert page.job_id == job_id
    assert page.status == "succeeded"
    assert page.is_terminal
    assert page.display_name == "two documents"
    assert page.created is not None
    assert page.last_updated is not None
    assert page.expires is not None
    assert page.expires - page.created == timedelta(hours=24)
    assert [item["kind"] for item in page.items] == [
        "EntityRecognitionLROResults",
        "CustomEntityRecognitionLROResults",
    ]
    assert [doc["id"] for doc in page.items[0]["results"]["documents"]] == ["1", "2"]
    assert page.next_link is None
    assert page.raw["jobId"] == job_id


async def test_the_key_travels_only_in_the_ocp_apim_subscription_key_header(
    local_server: StartServer, make_client: MakeClient
) -> None:
    server = await local_server(answer(200, job_page()))

    await make_client(server.url).get_job(JOB_ID)

    [request] = server.seen
    assert request.headers["Ocp-Apim-Subscription-Key"] == EMULATOR_KEY
    assert "Authorization" not in request.headers
    assert [name for name, value in request.headers.items() if EMULATOR_KEY in value] == [
        "Ocp-Apim-Subscription-Key"
    ]
    assert all(EMULATOR_KEY not in value for _, value in request.query)
    assert (request.method, request.path, request.query) == (
        "GET",
        job_path(),
        [("api-version", API_VERSION)],
    )


# -- pages ---------------------------------------------------------------------------------------


async def test_remaining_pages_follow_the_absolute_next_link_and_merge_in_service_order(
    stack: Stack, make_client: MakeClient
) -> None:
    job_id = await stack.submit(documents(25))  # the service pages 20 documents at a time
    client = make_client(stack.emulator_url)

    first = await client.get_job(job_id)
    rest = await client.get_remaining_pages(first)

    assert first.next_link is not None
    assert first.next_link.startswith(f"{stack.emulator_url}{job_path(job_id)}?")
    assert len(rest) == 1
    assert rest[0].next_link is None
    expected = [str(n) for n in range(1, 26)]
    for item in merge_task_items([first, *rest]):
        assert [doc["id"] for doc in item["results"]["documents"]] == expected
    assert (await stack.requests_for(job_id))["GET"] == 2


async def test_a_job_on_one_page_has_no_remaining_pages(stack: Stack, make_client: MakeClient) -> None:
    job_id = await stack.submit(documents(3))
    client = make_client(stack.emulator_url)

    assert await client.get_remaining_pages(await client.get_job(job_id)) == []
    assert (await stack.requests_for(job_id))["GET"] == 1


@pytest.mark.parametrize(
    "base",
    [
        pytest.param("http://localhost:{port}", id="another-host"),
        pytest.param("https://127.0.0.1:{port}", id="another-scheme"),
        pytest.param("http://127.0.0.1:{port}", id="another-port"),
    ],
)
async def test_next_link_off_the_endpoint_is_untrusted_and_never_requested(
    base: str, stack: Stack, local_server: StartServer, make_client: MakeClient
) -> None:
    elsewhere = await local_server(answer(200, {}))
    job_id = await stack.submit(documents(25))
    next_link_base = base.format(port=elsewhere.port)
    await stack.admin("POST", f"jobs/{job_id}/overrides", {"nextLinkBase": next_link_base})
    client = make_client(stack.emulator_url)
    first = await client.get_job(job_id)
    assert first.next_link is not None
    assert first.next_link.startswith(next_link_base)

    with pytest.raises(UntrustedLink):
        await client.get_remaining_pages(first)

    assert elsewhere.seen == []
    assert (await stack.requests_for(job_id))["GET"] == 1


async def test_next_link_to_another_path_on_the_endpoint_is_untrusted(
    stack: Stack, make_client: MakeClient
) -> None:
    job_id = await stack.submit(documents(25))
    await stack.admin("POST", f"jobs/{job_id}/overrides", {"nextLinkBase": f"{stack.emulator_url}/proxy"})
    client = make_client(stack.emulator_url)
    first = await client.get_job(job_id)

    with pytest.raises(UntrustedLink):
        await client.get_remaining_pages(first)

    assert (await stack.requests_for(job_id))["GET"] == 1


async def test_next_link_to_another_job_is_untrusted_and_never_requested(
    local_server: StartServer, make_client: MakeClient
) -> None:
    server = await local_server(
        two_pages(f"{{origin}}{job_path(OTHER_JOB_ID)}?top=2&skip=2&api-version={API_VERSION}")
    )
    client = make_client(server.url)
    first = await client.get_job(JOB_ID)

    with pytest.raises(UntrustedLink):
        await client.get_remaining_pages(first)

    assert [request.path for request in server.seen] == [job_path()]


@pytest.mark.parametrize(
    "link",
    [
        pytest.param("//localhost:{port}" + job_path(), id="scheme-relative-to-another-host"),
        pytest.param("http://user:pass@{host}" + job_path(), id="credentials-in-the-link"),
        pytest.param("http://{host}:99999" + job_path(), id="malformed-port"),
        pytest.param("ftp://{host}" + job_path(), id="another-scheme"),
    ],
)
async def test_next_link_tricks_are_untrusted_and_never_requested(
    link: str, local_server: StartServer, make_client: MakeClient
) -> None:
    elsewhere = await local_server(answer(200, job_page()))

    async def first_page(request: web.Request) -> web.StreamResponse:
        next_link = link.format(port=elsewhere.port, host=request.host) + f"?api-version={API_VERSION}"
        return web.json_response(job_page(next_link=next_link))

    server = await local_server(first_page)
    client = make_client(server.url)
    first = await client.get_job(JOB_ID)

    with pytest.raises(UntrustedLink):
        await client.get_remaining_pages(first)

    assert len(server.seen) == 1
    assert elsewhere.seen == []


@pytest.mark.parametrize(
    "relative",
    [
        pytest.param(f"{job_path()}?top=2&skip=2&api-version={API_VERSION}", id="absolute-path"),
        pytest.param(f"?top=2&skip=2&api-version={API_VERSION}", id="query-only"),
    ],
)
async def test_relative_next_link_is_resolved_against_the_page_it_came_from(
    relative: str, local_server: StartServer, make_client: MakeClient
) -> None:
    server = await local_server(two_pages(relative))
    client = make_client(server.url)

    first = await client.get_job(JOB_ID)
    rest = await client.get_remaining_pages(first)

    assert [(r.path, r.query) for r in server.seen[1:]] == [
        (job_path(), [("top", "2"), ("skip", "2"), ("api-version", API_VERSION)])
    ]
    [item] = merge_task_items([first, *rest])
    assert [doc["id"] for doc in item["results"]["documents"]] == ["1", "2", "3", "4"]


async def test_path_relative_next_link_resolving_to_another_resource_is_not_followed(
    local_server: StartServer, make_client: MakeClient
) -> None:
    # RFC 3986: "language/..." without a leading slash resolves under the page's own directory.
    server = await local_server(two_pages(f"{job_path().lstrip('/')}?top=2&skip=2&api-version={API_VERSION}"))
    client = make_client(server.url)
    first = await client.get_job(JOB_ID)

    with pytest.raises(UntrustedLink):
        await client.get_remaining_pages(first)

    assert len(server.seen) == 1


async def test_api_version_is_appended_when_the_next_link_lacks_it(
    local_server: StartServer, make_client: MakeClient
) -> None:
    server = await local_server(two_pages(f"{{origin}}{job_path()}?top=2&skip=2"))
    client = make_client(server.url)

    await client.get_remaining_pages(await client.get_job(JOB_ID))

    assert server.seen[1].query == [("top", "2"), ("skip", "2"), ("api-version", API_VERSION)]


async def test_api_version_of_the_next_link_is_kept(
    local_server: StartServer, make_client: MakeClient
) -> None:
    server = await local_server(two_pages(f"{{origin}}{job_path()}?top=2&skip=2&api-version=2023-04-01"))
    client = make_client(server.url)

    await client.get_remaining_pages(await client.get_job(JOB_ID))

    assert server.seen[1].query == [("top", "2"), ("skip", "2"), ("api-version", "2023-04-01")]


async def test_next_link_loop_is_an_unusable_response(
    local_server: StartServer, make_client: MakeClient
) -> None:
    async def loop(request: web.Request) -> web.StreamResponse:
        origin = f"{request.scheme}://{request.host}"
        return web.json_response(job_page(next_link=f"{origin}{job_path()}?skip=2&api-version={API_VERSION}"))

    server = await local_server(loop)
    client = make_client(server.url)
    first = await client.get_job(JOB_ID)

    with pytest.raises(UnusableResponse):
        await client.get_remaining_pages(first)

    assert len(server.seen) == 2  # the first page, then the link once: never again


# -- HTTP statuses -------------------------------------------------------------------------------


async def test_unknown_job_is_job_not_found(stack: Stack, make_client: MakeClient, sleeps: Sleeps) -> None:
    with pytest.raises(JobNotFound):
        await make_client(stack.emulator_url).get_job("6f2c1a8e-4b61-4d0f-9e0a-7c1b3d5e9f00")

    assert sleeps.calls == []


async def test_the_services_own_404_is_about_the_job(stack: Stack, make_client: MakeClient) -> None:
    client = make_client(stack.emulator_url)

    for _ in range(SUSPECT_AFTER):
        with pytest.raises(JobNotFound) as caught:
            await client.get_job(str(uuid.uuid4()))
        assert not caught.value.unknown_route


async def test_gateway_404_for_an_unknown_api_version_is_the_routes_until_a_job_answers(
    stack: Stack, make_client: MakeClient
) -> None:
    job_id = await stack.submit()
    await stack.admin("PUT", "gateway", {"unknownApiVersionStatus": 404})
    try:
        with pytest.raises(JobNotFound) as caught:
            await make_client(stack.emulator_url, api_version="2099-01-01").get_job(job_id)
    finally:
        await stack.admin("PUT", "gateway", {"unknownApiVersionStatus": 400})

    assert caught.value.unknown_route
    assert "404: Resource not found" in str(caught.value)


async def test_gateway_404_once_the_route_answered_is_about_the_job(
    local_server: StartServer, make_client: MakeClient
) -> None:
    async def respond(request: web.Request) -> web.StreamResponse:
        if JOB_ID in request.path:
            return web.json_response(job_page())
        return web.json_response({"error": {"code": "404", "message": "Resource not found"}}, status=404)

    client = make_client((await local_server(respond)).url)
    await client.get_job(JOB_ID)

    with pytest.raises(JobNotFound) as caught:
        await client.get_job(OTHER_JOB_ID)

    assert not caught.value.unknown_route


async def test_ambiguous_404s_for_several_jobs_and_no_answer_are_the_routes(
    local_server: StartServer, make_client: MakeClient
) -> None:
    client = make_client((await local_server(answer(404, b"<html>Not Found</html>"))).url)
    verdicts = []
    for _ in range(SUSPECT_AFTER + 1):
        with pytest.raises(JobNotFound) as caught:
            await client.get_job(str(uuid.uuid4()))
        verdicts.append(caught.value.unknown_route)

    assert verdicts == [False] * (SUSPECT_AFTER - 1) + [True, True]


async def test_wrong_key_is_access_denied_401_without_retries(
    stack: Stack, make_client: MakeClient, sleeps: Sleeps
) -> None:
    job_id = await stack.submit()

    with pytest.raises(AccessDenied) as denied:
        await make_client(stack.emulator_url, auth=ApiKeyAuth(key="not-the-key")).get_job(job_id)

    assert denied.value.status == 401
    assert denied.value.retry_after is None
    assert sleeps.calls == []


@pytest.mark.parametrize("status", [401, 403])
async def test_access_denied_carries_status_and_retry_after_and_is_not_slept_on(
    status: int, local_server: StartServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    quota = {"error": {"code": str(status), "message": "Out of call volume quota. Retry after 15 days."}}
    server = await local_server(answer(status, quota, headers={"Retry-After": "1296000"}))

    with pytest.raises(AccessDenied) as denied:
        await make_client(server.url).get_job(JOB_ID)

    assert denied.value.status == status
    assert denied.value.retry_after == 1296000
    assert len(server.seen) == 1
    assert sleeps.calls == []


async def test_bad_request_is_request_rejected_without_retries(
    stack: Stack, make_client: MakeClient, sleeps: Sleeps
) -> None:
    job_id = await stack.submit()

    with pytest.raises(RequestRejected) as rejected:
        await make_client(stack.emulator_url, api_version="1999-01-01").get_job(job_id)

    assert rejected.value.status == 400
    assert sleeps.calls == []


async def test_redirect_is_not_followed_so_the_key_never_reaches_the_location(
    local_server: StartServer, make_client: MakeClient
) -> None:
    elsewhere = await local_server(answer(200, job_page()))
    location = f"{elsewhere.url}{job_path()}?api-version={API_VERSION}"
    server = await local_server(answer(302, b"", headers={"Location": location}))

    with pytest.raises(RequestRejected) as rejected:
        await make_client(server.url).get_job(JOB_ID)

    assert rejected.value.status == 302
    assert elsewhere.seen == []


# -- transient faults ----------------------------------------------------------------------------


async def test_throttling_is_retried_in_place_with_retry_after_as_the_floor(
    stack: Stack, faults: SetFaults, make_client: MakeClient, sleeps: Sleeps
) -> None:
    job_id = await stack.submit()
    await faults(rate_429=1.0, retry_after_seconds=2)

    with pytest.raises(TransientFailure) as failure:
        await make_client(stack.emulator_url, attempts=3).get_job(job_id)

    assert (await stack.requests_for(job_id))["GET"] == 3
    assert sleeps.calls == [2.0, 2.0]  # Retry-After wins over the backoff (0.75, 1.5)
    assert failure.value.retry_after == 2.0


async def test_server_errors_are_retried_in_place_with_exponential_backoff(
    stack: Stack, faults: SetFaults, make_client: MakeClient, sleeps: Sleeps
) -> None:
    job_id = await stack.submit()
    await faults(rate_5xx=1.0)

    with pytest.raises(TransientFailure) as failure:
        await make_client(stack.emulator_url, attempts=3).get_job(job_id)

    assert (await stack.requests_for(job_id))["GET"] == 3
    assert sleeps.calls == BACKOFF
    assert failure.value.retry_after is None


async def test_transient_fault_that_clears_returns_the_page(
    local_server: StartServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    statuses = [503, 500]

    async def recovering(request: web.Request) -> web.StreamResponse:
        if statuses:
            return web.json_response({"error": {"code": "x", "message": "y"}}, status=statuses.pop(0))
        return web.json_response(job_page())

    server = await local_server(recovering)

    page = await make_client(server.url, attempts=3).get_job(JOB_ID)

    assert page.status == "succeeded"
    assert len(server.seen) == 3
    assert sleeps.calls == BACKOFF


async def test_retry_after_beyond_max_wait_is_handed_back_without_sleeping(
    stack: Stack, faults: SetFaults, make_client: MakeClient, sleeps: Sleeps
) -> None:
    job_id = await stack.submit()
    await faults(rate_429=1.0, retry_after_seconds=3600)

    with pytest.raises(TransientFailure) as failure:
        await make_client(stack.emulator_url, attempts=3, max_wait=5.0).get_job(job_id)

    assert failure.value.retry_after == 3600
    assert sleeps.calls == []
    assert (await stack.requests_for(job_id))["GET"] == 1


async def test_retry_after_http_date_is_honoured(
    local_server: StartServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    async def busy(request: web.Request) -> web.StreamResponse:
        when = formatdate(time.time() + 4, usegmt=True)  # whole seconds: 3 to 4 s from now
        return web.json_response(
            {"error": {"code": "503", "message": "busy"}}, status=503, headers={"Retry-After": when}
        )

    server = await local_server(busy)

    with pytest.raises(TransientFailure) as failure:
        await make_client(server.url, attempts=3, max_wait=5.0).get_job(JOB_ID)

    assert len(sleeps.calls) == 2
    assert all(2.5 < seconds <= 4.0 for seconds in sleeps.calls), sleeps.calls
    assert failure.value.retry_after is not None
    assert 2.5 < failure.value.retry_after <= 4.0


async def test_retry_after_http_date_beyond_max_wait_is_not_slept_on(
    local_server: StartServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    in_an_hour = formatdate(time.time() + 3600, usegmt=True)
    server = await local_server(answer(503, {"error": {}}, headers={"Retry-After": in_an_hour}))

    with pytest.raises(TransientFailure) as failure:
        await make_client(server.url, attempts=3, max_wait=5.0).get_job(JOB_ID)

    assert sleeps.calls == []
    assert len(server.seen) == 1
    assert failure.value.retry_after is not None
    assert 3590 < failure.value.retry_after <= 3600


async def test_connection_resets_are_transient_after_every_attempt(
    stack: Stack, faults: SetFaults, make_client: MakeClient, sleeps: Sleeps
) -> None:
    job_id = await stack.submit()
    await faults(rate_reset=1.0)

    with pytest.raises(TransientFailure) as failure:
        await make_client(stack.emulator_url, attempts=3).get_job(job_id)

    assert sleeps.calls == BACKOFF  # three attempts, two waits
    assert failure.value.retry_after is None
    # aiohttp itself resends an idempotent GET once when the connection drops (RFC 9112 §9.3.1),
    # so each attempt reaches the service twice: the service sees (and bills) 2 x attempts.
    assert (await stack.requests_for(job_id))["GET"] == 6


async def test_client_timeout_is_transient_after_every_attempt(
    stack: Stack, faults: SetFaults, make_client: MakeClient, sleeps: Sleeps
) -> None:
    job_id = await stack.submit()
    await faults(rate_slow=1.0, slow_seconds=2.0)
    client = make_client(stack.emulator_url, attempts=3, timeout=aiohttp.ClientTimeout(total=0.2))

    with pytest.raises(TransientFailure) as failure:
        await client.get_job(job_id)

    assert "Timeout" in str(failure.value)
    assert sleeps.calls == BACKOFF  # three attempts, two waits


async def test_unreachable_endpoint_is_transient_after_every_attempt(
    make_client: MakeClient, sleeps: Sleeps
) -> None:
    with pytest.raises(TransientFailure):
        await make_client(f"http://127.0.0.1:{closed_port()}", attempts=3).get_job(JOB_ID)

    assert sleeps.calls == BACKOFF


# -- bodies that cannot be used ------------------------------------------------------------------


async def test_body_that_is_not_json_is_retried_then_unusable(
    stack: Stack, faults: SetFaults, make_client: MakeClient, sleeps: Sleeps
) -> None:
    job_id = await stack.submit()
    await faults(rate_malformed=1.0)

    with pytest.raises(UnusableResponse):
        await make_client(stack.emulator_url, attempts=3).get_job(job_id)

    assert (await stack.requests_for(job_id))["GET"] == 3
    assert sleeps.calls == BACKOFF


async def test_nan_in_the_body_is_unusable(local_server: StartServer, make_client: MakeClient) -> None:
    body = (
        b'{"jobId": "' + JOB_ID.encode() + b'", "status": "succeeded", "tasks": {"items": [{"kind": "K", '
        b'"results": {"documents": [{"id": "1", "entities": [{"confidenceScore": NaN}]}]}}]}}'
    )
    server = await local_server(answer(200, body, headers={"Content-Type": "application/json"}))

    with pytest.raises(UnusableResponse):
        await make_client(server.url, attempts=2).get_job(JOB_ID)

    assert len(server.seen) == 2


async def test_answer_larger_than_the_bound_is_unusable_without_being_read_whole(
    local_server: StartServer, make_client: MakeClient
) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        # No Content-Length: the client must stop reading at the bound by itself.
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b'{"jobId": "' + JOB_ID.encode() + b'", "x": "')
        with contextlib.suppress(ConnectionError):
            for _ in range(MAX_ANSWER_BYTES // 65536 + 2):
                await response.write(b"a" * 65536)
        return response

    server = await local_server(stream)

    with pytest.raises(UnusableResponse, match="larger than"):
        await make_client(server.url, attempts=1).get_job(JOB_ID)


async def test_answer_whose_length_header_is_over_the_bound_is_unusable(
    local_server: StartServer, make_client: MakeClient
) -> None:
    body = json.dumps(job_page()).encode()
    padded = body[:-1] + b', "pad": "' + b"x" * MAX_ANSWER_BYTES + b'"}'
    server = await local_server(answer(200, padded, headers={"Content-Type": "application/json"}))

    with pytest.raises(UnusableResponse, match="larger than"):
        await make_client(server.url, attempts=1).get_job(JOB_ID)


async def test_answer_nested_beyond_the_bound_is_unusable_not_a_recursion_error(
    local_server: StartServer, make_client: MakeClient
) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    body = b'{"jobId": "' + JOB_ID.encode() + b'", "status": "succeeded", "x": ' + deep + b"}"
    server = await local_server(answer(200, body, headers={"Content-Type": "application/json"}))

    with pytest.raises(UnusableResponse, match="nests deeper"):
        await make_client(server.url, attempts=1).get_job(JOB_ID)


async def test_lone_surrogates_in_an_answer_become_replacement_characters(
    local_server: StartServer, make_client: MakeClient
) -> None:
    page = job_page()
    page["displayName"] = "cut \\ud83d here"
    text = json.dumps(page).replace("cut \\\\ud83d", "cut \\ud83d")
    server = await local_server(answer(200, text.encode(), headers={"Content-Type": "application/json"}))

    job = await make_client(server.url, attempts=1).get_job(JOB_ID)

    assert job.display_name == "cut \ufffd here"


async def test_page_that_names_another_job_is_unusable(
    local_server: StartServer, make_client: MakeClient
) -> None:
    server = await local_server(answer(200, job_page(OTHER_JOB_ID)))

    with pytest.raises(UnusableResponse):
        await make_client(server.url, attempts=1).get_job(JOB_ID)


# -- cancel --------------------------------------------------------------------------------------


async def test_cancel_of_an_unfinished_job_is_accepted(stack: Stack, make_client: MakeClient) -> None:
    job_id = await stack.submit()
    await stack.admin("POST", f"jobs/{job_id}/overrides", {"status": "running"})

    assert await make_client(stack.emulator_url).cancel(job_id) is True
    assert (await stack.requests_for(job_id))["CANCEL"] == 1


async def test_cancel_of_a_finished_job_is_refused_without_raising(
    stack: Stack, make_client: MakeClient, sleeps: Sleeps
) -> None:
    job_id = await stack.submit()  # finished at once on the test emulator

    assert await make_client(stack.emulator_url).cancel(job_id) is False
    assert (await stack.requests_for(job_id))["CANCEL"] == 1
    assert sleeps.calls == []


@pytest.mark.parametrize("fault", ["unreachable", "access-denied", "unknown-job", "server-errors"])
async def test_cancel_never_raises(
    fault: str, stack: Stack, faults: SetFaults, make_client: MakeClient
) -> None:
    job_id = await stack.submit()
    await stack.admin("POST", f"jobs/{job_id}/overrides", {"status": "running"})
    endpoint, auth = stack.emulator_url, None
    if fault == "unreachable":
        endpoint = f"http://127.0.0.1:{closed_port()}"
    elif fault == "access-denied":
        auth = ApiKeyAuth(key="not-the-key")
    elif fault == "unknown-job":
        job_id = "6f2c1a8e-4b61-4d0f-9e0a-7c1b3d5e9f00"
    else:
        await faults(rate_5xx=1.0)

    assert await make_client(endpoint, auth=auth).cancel(job_id) is False


# -- credentials ---------------------------------------------------------------------------------


async def test_auth_provider_failure_is_access_denied_and_nothing_is_sent(
    local_server: StartServer, make_client: MakeClient
) -> None:
    server = await local_server(answer(200, job_page()))

    with pytest.raises(AccessDenied) as denied:
        await make_client(server.url, auth=FailingAuth()).get_job(JOB_ID)

    assert denied.value.status == 401
    assert denied.value.retry_after is None
    assert "managed identity" in str(denied.value)
    assert server.seen == []


def echo_headers(status: int) -> Responder:
    """A misbehaving gateway that reflects the request's headers in its answers."""

    async def respond(request: web.Request) -> web.StreamResponse:
        echoed = "; ".join(f"{name}: {value}" for name, value in request.headers.items())
        if status == 302:
            return web.Response(status=302, headers={"Location": f"/elsewhere?{echoed}"}, text=echoed)
        if status == 200:
            return web.Response(status=200, text=f'{{"jobId": "{JOB_ID}", "echo": "{echoed}"')  # cut off
        body = {"error": {"code": str(status), "message": f"request had {echoed}"}}
        return web.json_response(body, status=status, headers={"Retry-After": "1"})

    return respond


ECHOED_FAILURES = [
    pytest.param(200, UnusableResponse, id="200-unparseable"),
    pytest.param(302, RequestRejected, id="302"),
    pytest.param(400, RequestRejected, id="400"),
    pytest.param(401, AccessDenied, id="401"),
    pytest.param(403, AccessDenied, id="403"),
    pytest.param(404, JobNotFound, id="404"),
    pytest.param(429, TransientFailure, id="429"),
    pytest.param(500, TransientFailure, id="500"),
]


@pytest.mark.parametrize(("status", "error"), ECHOED_FAILURES)
async def test_error_messages_never_contain_the_key(
    status: int, error: type[LanguageError], local_server: StartServer, make_client: MakeClient
) -> None:
    server = await local_server(echo_headers(status))

    with pytest.raises(error) as raised:
        await make_client(server.url, attempts=2).get_job(JOB_ID)

    assert EMULATOR_KEY in str(server.seen[0].headers)  # the key was sent, and echoed back
    assert EMULATOR_KEY not in str(raised.value)
    assert EMULATOR_KEY not in repr(raised.value)


async def test_error_summary_cut_short_leaves_no_fragment_of_the_key(
    local_server: StartServer, make_client: MakeClient
) -> None:
    async def echo_late(request: web.Request) -> web.StreamResponse:
        # "400: " + 290 characters puts the key across the summary's 300-character limit.
        message = "x" * 290 + request.headers["Ocp-Apim-Subscription-Key"]
        return web.json_response({"error": {"code": "400", "message": message}}, status=400)

    server = await local_server(echo_late)

    with pytest.raises(RequestRejected) as rejected:
        await make_client(server.url).get_job(JOB_ID)

    assert EMULATOR_KEY[:5] not in str(rejected.value)


async def test_failed_cancel_is_logged_without_the_key(
    local_server: StartServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    server = await local_server(echo_headers(400))

    with caplog.at_level(logging.DEBUG):
        assert await make_client(server.url).cancel(JOB_ID) is False

    assert "cancel" in caplog.text
    assert EMULATOR_KEY not in caplog.text


@pytest.mark.parametrize(("status", "error"), ECHOED_FAILURES)
async def test_error_messages_never_contain_the_bearer_token(
    status: int, error: type[LanguageError], local_server: StartServer, make_client: MakeClient
) -> None:
    token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-token-payload"
    server = await local_server(echo_headers(status))
    auth = EntraTokenAuth(credential=FakeCredential(token=token))

    with pytest.raises(error) as raised:
        await make_client(server.url, auth=auth, attempts=2).get_job(JOB_ID)

    assert server.seen[0].headers["Authorization"] == f"Bearer {token}"
    assert token not in str(raised.value)
    assert token not in repr(raised.value)
