"""Stand-ins shared by the test suites: loopback HTTP servers and an azure-core credential.

``serve_local`` serves one aiohttp app (or one handler for every path) on a free 127.0.0.1 port
for the length of an ``async with``; ``LocalServers`` starts servers that record every request,
as many as a test asks for, and stops them all together. ``FakeCredential`` implements azure-core's
``AsyncTokenCredential`` and records how it is used.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web
from azure.core.credentials import AccessToken
from hypothesis import settings
from multidict import CIMultiDict
from yarl import URL

Responder = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- loopback servers ---------------------------------------------------------------------------


@asynccontextmanager
async def serve_local(
    app_or_handler: web.Application | Responder, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[str]:
    """Serve on a free 127.0.0.1 port until the block ends; yields the base URL (``http://127.0.0.1:<port>``).

    A handler answers every method and path. With ``ssl_context`` the server speaks https only.
    """
    if isinstance(app_or_handler, web.Application):
        app = app_or_handler
    else:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", app_or_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        scheme = "http" if ssl_context is None else "https"
        yield f"{scheme}://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@dataclass(frozen=True)
class Seen:
    """One request as a local server received it."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: CIMultiDict[str]


@dataclass
class RecordingServer:
    """A local server's URL and every request it has received, in order."""

    url: str
    seen: list[Seen] = field(default_factory=list)

    @property
    def port(self) -> int:
        port = URL(self.url).port
        assert port is not None
        return port


StartServer = Callable[[Responder], Awaitable[RecordingServer]]


class LocalServers:
    """Starts recording servers on demand (``start``); leaving the ``async with`` stops them all."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._running = AsyncExitStack()

    async def start(self, respond: Responder, *, path: str = "") -> RecordingServer:
        """A new server: it records each request, then answers with ``respond``; its URL ends in ``path``."""
        server = RecordingServer(url="")

        async def handle(request: web.Request) -> web.StreamResponse:
            server.seen.append(
                Seen(request.method, request.path, list(request.query.items()), CIMultiDict(request.headers))
            )
            return await respond(request)

        base = await self._running.enter_async_context(serve_local(handle, ssl_context=self._ssl_context))
        server.url = f"{base}{path}"
        return server

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._running.aclose()


# -- credentials ----------------------------------------------------------------------------------


class FakeCredential:
    """An azure-core ``AsyncTokenCredential`` that records how it is used.

    Every ``get_token`` is counted (``calls``) and its scopes kept (``scopes``); it issues ``token``
    (by default ``token-<n>``, n being the call's number) valid for ``lifetime`` seconds from
    ``clock()``. ``gate``, when set, holds every call until the event is set; ``fail``, when set,
    makes calls raise it. ``closed`` counts the calls to ``close`` (leaving ``async with`` is one).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        lifetime: float = 3600.0,
        token: str | None = None,
    ) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.token = token
        self.calls = 0
        self.scopes: list[tuple[str, ...]] = []
        self.fail: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.closed = 0

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self.calls += 1
        self.scopes.append(scopes)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        token = self.token if self.token is not None else f"token-{self.calls}"
        return AccessToken(token, int(self.clock() + self.lifetime))

    async def close(self) -> None:
        self.closed += 1

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


# -- a managed identity token endpoint ---------------------------------------------------------


@dataclass
class IdentityEndpoint:
    """The App Service managed identity protocol (api-version 2019-08-01), on 127.0.0.1."""

    secret: str = "local-identity-header"
    token: str = "eyJ0eXAiOiJKV1QiLCJ-local-access-token"
    hits: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("X-IDENTITY-HEADER") != self.secret:
            return web.json_response({"error": "missing or wrong X-IDENTITY-HEADER"}, status=401)
        if request.query.get("api-version") != "2019-08-01" or "resource" not in request.query:
            return web.json_response({"error": "bad request"}, status=400)
        self.hits.append(dict(request.query))
        return web.json_response(
            {
                "access_token": self.token,
                "expires_on": str(int(time.time() + 3600)),
                "resource": request.query["resource"],
                "token_type": "Bearer",
            }
        )


# -- property tests -------------------------------------------------------------------------------

#: The bounded Hypothesis profile of the suite: enough examples to find edge cases, few enough that
#: ``make test`` stays fast; no deadline (the machine is shared, timings vary).
BOUNDED = settings(max_examples=100, deadline=None)
