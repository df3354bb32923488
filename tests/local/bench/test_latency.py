"""The latency proxy: every request turn waits the delay once, bytes pass intact both ways, an
upstream that is down looks like a reset connection, and the first connections can be dropped."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from local.bench.latency import LatencyProxy
from tests.support import serve_local


async def echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read(), headers={"X-Path": request.path})


async def test_each_request_on_a_keep_alive_connection_waits_the_delay_once(no_proxy: None) -> None:
    async with serve_local(echo) as url:
        upstream_port = int(url.rsplit(":", 1)[1])
        async with (
            LatencyProxy.start(upstream_port=upstream_port, delay=0.05) as proxy,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as http,
        ):
            for _ in range(3):
                started = time.perf_counter()
                async with http.get(f"http://127.0.0.1:{proxy.port}/ping") as response:
                    await response.read()
                assert time.perf_counter() - started >= 0.05

    assert proxy.requests == 3


async def test_request_and_response_bytes_pass_unchanged(no_proxy: None) -> None:
    body = bytes(range(256)) * 1024  # larger than one relayed chunk
    async with serve_local(echo) as url:
        upstream_port = int(url.rsplit(":", 1)[1])
        async with (
            LatencyProxy.start(upstream_port=upstream_port, delay=0.0) as proxy,
            aiohttp.ClientSession() as http,
            http.put(f"http://127.0.0.1:{proxy.port}/a/b?c=d", data=body) as response,
        ):
            assert await response.read() == body
            assert response.headers["X-Path"] == "/a/b"

    assert proxy.requests == 1


async def test_an_upstream_that_is_down_resets_the_client_connection(no_proxy: None) -> None:
    async with serve_local(echo) as url:
        upstream_port = int(url.rsplit(":", 1)[1])
    # The server is gone: its port refuses connections.
    async with (
        LatencyProxy.start(upstream_port=upstream_port, delay=0.0) as proxy,
        aiohttp.ClientSession() as http,
    ):
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(f"http://127.0.0.1:{proxy.port}/") as response:
                await response.read()


async def test_a_negative_delay_is_refused() -> None:
    with pytest.raises(ValueError, match="delay must be >= 0"):
        async with LatencyProxy.start(upstream_port=1, delay=-1):
            pass


async def test_closing_with_open_connections_logs_no_unhandled_error(
    no_proxy: None, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve_local(echo) as url:
        upstream_port = int(url.rsplit(":", 1)[1])
        async with aiohttp.ClientSession() as http:  # its keep-alive connection outlives the proxy
            async with (
                LatencyProxy.start(upstream_port=upstream_port, delay=0.0) as proxy,
                http.get(f"http://127.0.0.1:{proxy.port}/") as response,
            ):
                await response.read()
            await asyncio.sleep(0.05)  # the connection tasks' done callbacks run

    assert [record.getMessage() for record in caplog.records if record.name == "asyncio"] == []


async def test_the_first_connections_can_be_dropped_unanswered(no_proxy: None) -> None:
    async with serve_local(echo) as url:
        upstream_port = int(url.rsplit(":", 1)[1])
        async with (
            LatencyProxy.start(upstream_port=upstream_port, delay=0.0, drop_first=1) as proxy,
            aiohttp.ClientSession() as http,
        ):
            # POST: aiohttp itself would send a GET once more on a new connection.
            with pytest.raises(aiohttp.ClientConnectionError):
                async with http.post(f"http://127.0.0.1:{proxy.port}/", data=b"x") as response:
                    await response.read()
            async with http.post(f"http://127.0.0.1:{proxy.port}/", data=b"x") as response:
                assert await response.read() == b"x"

    assert proxy.connections == 2
