"""The benchmark's measuring instruments: where requests go, what a side measured, CPU time per process."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import aiohttp

from local.host.azurite import connection_string as dev_connection_string

__all__ = ["CpuClock", "Scenario", "Side", "cpu_ratio", "port_names", "ratio", "tracer"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """Where the requests go: straight to the services, or through latency proxies."""

    name: str
    language_url: str
    blob_url: str
    queue_url: str

    @property
    def connection_string(self) -> str:
        blob_port, queue_port = urlsplit(self.blob_url).port, urlsplit(self.queue_url).port
        assert blob_port is not None, "loopback endpoints name their ports"
        assert queue_port is not None, "loopback endpoints name their ports"
        return dev_connection_string(blob_port, queue_port)


@dataclass(slots=True)
class Side:
    """Rounds of one side in one scenario: jobs per second, CPU and billed requests per job."""

    name: str
    rates: list[float] = field(default_factory=list)
    cpu: dict[str, list[float]] = field(default_factory=dict)  # CPU seconds per job, per process
    calls: Counter[str] = field(default_factory=Counter)
    jobs: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def record(self, *, jobs: int, elapsed: float, cpu: Mapping[str, float], calls: Counter[str]) -> None:
        self.rates.append(jobs / elapsed)
        for process, seconds in cpu.items():
            self.cpu.setdefault(process, []).append(seconds / jobs)
        self.calls.update(calls)
        self.jobs += jobs

    def summary(self) -> str:
        rates = " ".join(f"{rate:.0f}" for rate in self.rates)
        per_job = ", ".join(f"{name} {count / self.jobs:.2f}" for name, count in sorted(self.calls.items()))
        cpu = " + ".join(f"{name} {statistics.median(v) * 1000:.1f}" for name, v in self.cpu.items())
        return f"{self.name:<13} {self.median:5.0f} jobs/s [{rates}]  CPU ms/job: {cpu}  reqs/job: {per_job}"


class CpuClock:
    """CPU seconds used by this process and by the services' processes (Linux ``/proc``), so that a
    side's cost shows even when the machine is busy and its wall time says little."""

    def __init__(self, services: Mapping[str, int]) -> None:
        self._services = dict(services)
        self._tick = os.sysconf("SC_CLK_TCK")

    def read(self) -> dict[str, float]:
        now = {"bench": time.process_time()}
        for name, pid in self._services.items():
            with contextlib.suppress(OSError):  # no /proc here: that column is left out
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                now[name] = (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime
        return now

    def since(self, start: Mapping[str, float]) -> dict[str, float]:
        return {name: seconds - start[name] for name, seconds in self.read().items() if name in start}


def tracer(calls: Counter[str], ports: dict[int | None, str]) -> aiohttp.TraceConfig:
    async def count(_s: object, _c: SimpleNamespace, params: aiohttp.TraceRequestStartParams) -> None:
        calls[f"{ports.get(params.url.port, 'other')} {params.method}"] += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(count)
    return trace


def port_names(scenario: Scenario) -> dict[int | None, str]:
    return {
        urlsplit(scenario.language_url).port: "language",
        urlsplit(scenario.blob_url).port: "blob",
        urlsplit(scenario.queue_url).port: "queue",
    }


def ratio(side: Side, other: Side) -> float:
    """The median of round-by-round ratios: the rounds of one number ran back to back, under the same
    load from the rest of the machine, so each ratio compares like with like."""
    return statistics.median(mine / theirs for mine, theirs in zip(side.rates, other.rates, strict=True))


def cpu_ratio(side: Side, other: Side, process: str = "bench") -> float:
    """The median of round-by-round ratios of one process's CPU per job (the measured process's own)."""
    return statistics.median(
        mine / theirs for mine, theirs in zip(side.cpu[process], other.cpu[process], strict=True)
    )
