"""Azurite, the storage emulator, as a child process on free loopback ports.

Synchronous use (a pytest session fixture)::

    with Azurite.start_sync() as azurite:
        ...  # azurite.connection_string

Asynchronous use (a demo script)::

    async with Azurite.start() as azurite:
        ...

With ``location=DIR`` the data lives on disk instead of in memory, so the process can be taken down
and brought back on the same ports with its blobs and queues intact (a storage outage)::

    azurite = Azurite.start_sync(location=tmp_dir)
    azurite.suspend()   # connections are refused from now on
    azurite.resume()    # same ports, same data
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import IO, Self

__all__ = [
    "AZURITE_BIN",
    "DEV_ACCOUNT_KEY",
    "DEV_ACCOUNT_NAME",
    "Azurite",
    "AzuriteError",
    "connection_string",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"
# The emulator's well-known development account: public, documented, and accepted by nothing else.
DEV_ACCOUNT_NAME = "devstoreaccount1"
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_HOST = "127.0.0.1"
_OUTPUT_TAIL_LINES = 10
# A port found free can be taken by someone else before Azurite binds it; a fresh set usually works.
_PORT_ATTEMPTS = 3


class AzuriteError(RuntimeError):
    """Azurite is missing or did not start."""


class Azurite:
    """A running Azurite process; start it with ``start_sync()`` or ``async with Azurite.start()``."""

    def __init__(
        self,
        *,
        process: subprocess.Popen[bytes],
        output: IO[bytes],
        blob_port: int,
        queue_port: int,
        table_port: int,
        stop_timeout: float,
        executable: Path = AZURITE_BIN,
        location: Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self._process = process
        self._output = output
        self._stop_timeout = stop_timeout
        self._stopped = False
        self._executable = executable
        self._location = location
        self._startup_timeout = startup_timeout
        self._ports = (blob_port, queue_port, table_port)
        self._ended = False  # this process was stopped and its group reaped
        self.blob_endpoint = f"http://{_HOST}:{blob_port}/{DEV_ACCOUNT_NAME}"
        self.queue_endpoint = f"http://{_HOST}:{queue_port}/{DEV_ACCOUNT_NAME}"
        self.table_endpoint = f"http://{_HOST}:{table_port}/{DEV_ACCOUNT_NAME}"
        self.connection_string = connection_string(blob_port, queue_port, table_port)

    @property
    def pid(self) -> int:
        """The Azurite process id; it leads its own process group."""
        return self._process.pid

    @property
    def blob_port(self) -> int:
        return self._ports[0]

    @property
    def queue_port(self) -> int:
        return self._ports[1]

    @property
    def running(self) -> bool:
        """Whether the process is up (False while suspended and after stop)."""
        return not self._stopped and self._process.poll() is None

    @classmethod
    def start_sync(
        cls,
        *,
        executable: Path = AZURITE_BIN,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        location: Path | None = None,
    ) -> Azurite:
        """Start Azurite and wait until its blob and queue ports accept connections.

        ``location``: a directory for its data on disk (kept across ``suspend``/``resume``);
        without it the data lives in memory and dies with the process.
        """
        if not os.access(executable, os.X_OK):
            raise AzuriteError(f"{executable} not found: run `npm ci` (or `make deps`) in {REPO_ROOT}")
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            blob_port, queue_port, table_port = _free_ports(3)
            # A file, not a pipe: nobody has to drain it. Closed by stop().
            output = tempfile.TemporaryFile()  # noqa: SIM115
            try:
                process = _spawn(executable, (blob_port, queue_port, table_port), output, location)
            except OSError as error:
                output.close()
                raise AzuriteError(
                    f"cannot run {executable} ({error}): run `npm ci` (or `make deps`)"
                ) from error
            azurite = cls(
                process=process,
                output=output,
                blob_port=blob_port,
                queue_port=queue_port,
                table_port=table_port,
                stop_timeout=stop_timeout,
                executable=executable,
                location=location,
                startup_timeout=startup_timeout,
            )
            atexit.register(azurite.stop)
            try:
                azurite._wait_ready([blob_port, queue_port], startup_timeout)
            except AzuriteError:
                in_use = "EADDRINUSE" in azurite._output_tail()
                azurite.stop()
                if in_use and attempt < _PORT_ATTEMPTS:
                    continue
                raise
            return azurite
        raise AssertionError("unreachable: the last attempt returns or raises")

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        *,
        executable: Path = AZURITE_BIN,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        location: Path | None = None,
    ) -> AsyncIterator[Azurite]:
        """``async with Azurite.start() as azurite:``; starting and stopping do not block the loop."""
        azurite = await asyncio.to_thread(
            cls.start_sync,
            executable=executable,
            startup_timeout=startup_timeout,
            stop_timeout=stop_timeout,
            location=location,
        )
        try:
            yield azurite
        finally:
            await asyncio.to_thread(azurite.stop)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after ``stop_timeout``; idempotent."""
        if self._stopped:
            return  # the group id may belong to someone else by now
        self._stopped = True
        atexit.unregister(self.stop)
        self._end_process()
        self._output.close()

    def suspend(self) -> None:
        """Take storage down (graceful stop, data flushed to ``location``); ``resume()`` brings it back."""
        if self._location is None:
            raise AzuriteError("suspend() needs Azurite started with location=DIR, or its data would be lost")
        if self._stopped:
            raise AzuriteError("suspend() after stop()")
        self._end_process()

    def resume(self) -> None:
        """Start the process again on the same ports and data directory; wait until it listens."""
        if self._stopped:
            raise AzuriteError("resume() after stop()")
        if not self._ended:
            return  # not suspended
        self._output.truncate(0)
        self._output.seek(0)
        self._process = _spawn(self._executable, self._ports, self._output, self._location)
        self._ended = False
        self._wait_ready(list(self._ports[:2]), self._startup_timeout)

    def _end_process(self) -> None:
        if self._ended:
            return  # suspended: its group id may belong to someone else by now
        self._ended = True
        if self._process.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self._process.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self._process.wait(self._stop_timeout)
        # Node may have forked helpers that outlive it in the group; they must not leak either.
        _signal_group(self.pid, signal.SIGKILL)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _wait_ready(self, ports: list[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(ports)
        while pending:
            if self._process.poll() is not None:
                raise AzuriteError(
                    f"Azurite exited with code {self._process.returncode} while starting "
                    f"(run `npm ci` if it is broken); last output: {self._output_tail()}"
                )
            if time.monotonic() > deadline:
                raise AzuriteError(
                    f"Azurite did not listen on {_HOST}:{pending} within {timeout:g} s "
                    f"(run `npm ci` if it is broken); last output: {self._output_tail()}"
                )
            if _accepts(pending[0]):
                pending.pop(0)
            else:
                time.sleep(0.05)

    def _output_tail(self) -> str:
        self._output.seek(0)
        lines = self._output.read().decode("utf-8", "replace").splitlines()
        return " | ".join(lines[-_OUTPUT_TAIL_LINES:]) or "(none)"


def connection_string(blob_port: int, queue_port: int, table_port: int | None = None) -> str:
    """The development account on these loopback ports (Azurite's, or a proxy's in front of them).

    Explicit endpoints rather than UseDevelopmentStorage=true, which implies the default ports.
    """
    endpoints = {"Blob": blob_port, "Queue": queue_port, "Table": table_port}
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};"
        + "".join(
            f"{kind}Endpoint=http://{_HOST}:{port}/{DEV_ACCOUNT_NAME};"
            for kind, port in endpoints.items()
            if port
        )
    )


def _spawn(
    executable: Path, ports: tuple[int, int, int], output: IO[bytes], location: Path | None
) -> subprocess.Popen[bytes]:
    blob_port, queue_port, table_port = ports
    persistence = ["--inMemoryPersistence"] if location is None else ["--location", str(location)]
    return subprocess.Popen(  # noqa: S603 - our own executable, fixed arguments
        [
            str(executable),
            *persistence,
            "--disableTelemetry",
            "--loose",
            "--skipApiVersionCheck",
            "--silent",
            *("--blobHost", _HOST, "--blobPort", str(blob_port)),
            *("--queueHost", _HOST, "--queuePort", str(queue_port)),
            *("--tableHost", _HOST, "--tablePort", str(table_port)),
        ],
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so stop() reaches node's children too
    )


def _free_ports(count: int) -> list[int]:
    """Ports the kernel picked as free; all sockets stay open until every port is chosen, so they differ."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((_HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((_HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
