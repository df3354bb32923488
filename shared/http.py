"""The one aiohttp session of the process, created lazily inside the running event loop.

The Functions worker runs one event loop per process; creating the session at import time would
bind it to no loop (or the wrong one), so it is made on first use and reused by the Language
client and, through azure-core's ``AioHttpTransport``, by the storage clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

import aiohttp

__all__ = ["SessionHolder"]

# Connection pooling bounds: a worker handles at most host.json's batchSize + newBatchThreshold
# messages at once; each may fetch pages and write blobs concurrently.
_CONNECTION_LIMIT: Final = 64
_CONNECTIONS_PER_HOST: Final = 32


class SessionHolder:
    """Owns a lazily created ``aiohttp.ClientSession`` bound to the loop that first asks for it."""

    __slots__ = ("_lock", "_session", "_trace_configs")

    def __init__(self, *, trace_configs: Sequence[aiohttp.TraceConfig] = ()) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._lock: asyncio.Lock | None = None
        # Request tracing (telemetry, or tests that count billed round trips).
        self._trace_configs = list(trace_configs)

    async def get(self) -> aiohttp.ClientSession:
        if self._session is not None and not self._session.closed:
            return self._session
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._session is None or self._session.closed:
                connector = aiohttp.TCPConnector(
                    limit=_CONNECTION_LIMIT, limit_per_host=_CONNECTIONS_PER_HOST, ttl_dns_cache=300
                )
                # No default headers: the session is shared with storage, and a Language key must
                # only ever be attached per request to the configured endpoint.
                self._session = aiohttp.ClientSession(
                    connector=connector, raise_for_status=False, trace_configs=self._trace_configs or None
                )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
        self._lock = None
