"""A loopback TCP proxy that adds latency to every request, as a network between regions would.

Protocol-agnostic: it does not parse HTTP. On each connection, the first bytes the client sends
after the server last answered (that is, the start of each request on a keep-alive connection)
wait ``delay`` seconds before they are forwarded; everything else flows through at once. So each
request/response turn costs one extra ``delay``, whatever its size, and an idle pool costs nothing.
Tests also use it to drop the first connections unanswered (``drop_first``), as a far end that
closed an idle keep-alive connection as the request went out.

    async with LatencyProxy.start(upstream_port=azurite_blob_port, delay=0.015) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/devstoreaccount1"

``python -m local.bench.latency --upstream-port N --delay-ms 15`` runs one in the foreground.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = ["LatencyProxy"]

_HOST = "127.0.0.1"
_CHUNK = 64 * 1024


@dataclass
class _Turn:
    """Whose turn it is on one connection: the next client bytes start a new request."""

    request_starts: bool = True


class LatencyProxy:
    """A running proxy on ``127.0.0.1:port`` in front of ``127.0.0.1:upstream_port``."""

    def __init__(self, *, server: asyncio.Server, upstream_port: int, delay: float, drop_first: int) -> None:
        self._server = server
        self.upstream_port = upstream_port
        self.delay = delay
        self.drop_first = drop_first
        self.port: int = server.sockets[0].getsockname()[1]
        self.requests = 0  # request turns delayed so far
        self.connections = 0  # accepted so far, dropped ones included

    @property
    def account_endpoint(self) -> str:
        """The development storage account's endpoint through this proxy."""
        return f"http://{_HOST}:{self.port}/devstoreaccount1"

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls, *, upstream_port: int, delay: float, port: int = 0, drop_first: int = 0
    ) -> AsyncIterator[LatencyProxy]:
        """Listen on ``port`` (0: a free one) until the block ends; open connections are closed then.

        ``drop_first``: that many first connections are closed unanswered as their first request
        arrives, as a far end that shut an idle keep-alive connection as the request went out."""
        if delay < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {delay}")
        connections: set[asyncio.Task[None]] = set()
        proxy: LatencyProxy | None = None

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            assert proxy is not None
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            proxy.connections += 1
            try:
                if proxy.connections <= proxy.drop_first:
                    await reader.read(1)
                    writer.transport.abort()
                    return
                await proxy._relay(reader, writer)
            except asyncio.CancelledError:
                # The proxy is closing. Ending normally, not cancelled: Python 3.11's stream server
                # would log a cancelled connection task as an unhandled error.
                return
            finally:
                connections.discard(task)

        server = await asyncio.start_server(accept, _HOST, port)
        proxy = cls(server=server, upstream_port=upstream_port, delay=delay, drop_first=drop_first)
        try:
            yield proxy
        finally:
            server.close()
            for task in list(connections):
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)
            await server.wait_closed()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(_HOST, self.upstream_port)
        except OSError:
            # Upstream down (an outage being simulated): the client sees its connection reset, as it would.
            client_writer.close()
            return
        turn = _Turn()
        pumps = [
            asyncio.create_task(self._pump(client_reader, upstream_writer, turn, delayed=True)),
            asyncio.create_task(self._pump(upstream_reader, client_writer, turn, delayed=False)),
        ]
        try:
            # Either side closing ends the connection: half-open relays would hold sockets forever.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in (upstream_writer, client_writer):
                writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, turn: _Turn, *, delayed: bool
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(_CHUNK):
                if delayed and turn.request_starts:
                    turn.request_starts = False
                    self.requests += 1
                    await asyncio.sleep(self.delay)
                elif not delayed:
                    turn.request_starts = True
                writer.write(chunk)
                await writer.drain()


async def _serve_forever(upstream_port: int, delay: float, port: int) -> None:
    async with LatencyProxy.start(upstream_port=upstream_port, delay=delay, port=port) as proxy:
        # Flushed: whoever started this proxy reads the port from this line on a pipe.
        print(
            f"latency proxy: 127.0.0.1:{proxy.port} -> 127.0.0.1:{upstream_port}, +{delay * 1000:g} ms",
            flush=True,
        )
        await asyncio.Event().wait()


def main() -> int:
    parser = argparse.ArgumentParser(description="Add latency to every request to a loopback port.")
    parser.add_argument("--upstream-port", type=int, required=True, help="the port on 127.0.0.1 to relay to")
    parser.add_argument("--delay-ms", type=float, required=True, help="added to each request, e.g. 15")
    parser.add_argument("--port", type=int, default=0, help="where to listen (default: a free port)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args.upstream_port, args.delay_ms / 1000, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
