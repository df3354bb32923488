"""A worker process (``local.host.worker``) as the chaos run, the soak and the throttle bench drive it:
started, SIGKILLed mid-invocation, stopped, its status and log read; and the folder of a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Final

__all__ = ["WorkerProcess", "run_folder"]

_STOP_SECONDS: Final = 20.0


class WorkerProcess:
    """A ``local.host.worker`` process that can be killed and started again."""

    def __init__(
        self, *, name: str, workdir: Path, environ: Mapping[str, str], timer: bool, lease: int
    ) -> None:
        self.name = name
        self._status = workdir / f"{name}.status.json"
        self._log_path = workdir / f"{name}.log"
        self._environ = dict(environ)
        self._timer = timer
        self._lease = lease
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running: a second process would be orphaned")
        self._status.unlink(missing_ok=True)
        self._log = self._log or self._log_path.open("ab")  # closed by stop()
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "local.host.worker", "--name", self.name, "--status", str(self._status)),
            *("--lease-seconds", str(self._lease), *(["--timer"] if self._timer else [])),
            env={**os.environ, **self._environ},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )

    def status(self) -> dict[str, int]:
        """What the running process last reported (see ``local.host.worker``); empty when unknown."""
        if self._process is None:
            return {}
        try:
            status: dict[str, int] = json.loads(self._status.read_text())
        except (OSError, ValueError):
            return {}
        return status if status.get("pid") == self._process.pid else {}

    def in_flight(self) -> int:
        """Invocations running now, as the worker last reported them (0 when unknown)."""
        return self.status().get("inFlight", 0)

    async def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGKILL)
            await self._process.wait()

    async def stop(self) -> None:
        """SIGTERM (graceful: in-flight work finishes), SIGKILL after a while; closes the log."""
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._process.wait(), _STOP_SECONDS)
            except TimeoutError:
                await self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        """Everything the process logged (WARNING and above), all its runs; empty when unreadable."""
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 5) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


@contextlib.contextmanager
def run_folder(prefix: str, *, keep: bool) -> Iterator[Path]:
    """A new folder for a run's data (Azurite's, the workers' logs): removed afterwards unless ``keep``."""
    if keep:
        yield Path(tempfile.mkdtemp(prefix=prefix))
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        yield Path(name)
