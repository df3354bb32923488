"""Cold start: wall time to import ``function_app`` in a fresh interpreter, without and with telemetry."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections.abc import Mapping
from typing import Final

from local.bench.services import REPO_ROOT

__all__ = ["cold_start", "telemetry_cold_start"]

_IMPORT_PROBE = (
    "import sys, time; t = time.perf_counter(); import function_app; "
    "print(time.perf_counter() - t, 'azure.identity' in sys.modules, len(sys.modules))"
)
#: The card's packages alone (azure-functions, aiohttp, azure-storage-blob), as a function with
#: these bindings and clients imports them; then with the queue client the design adds. The app's
#: cold start is measured against both.
_CARD: Final = ("azure.functions", "aiohttp", "azure.storage.blob.aio")
_CARD_AND_QUEUE: Final = (*_CARD, "azure.storage.queue.aio")


def _import_probe(modules: tuple[str, ...]) -> str:
    names = ", ".join(modules)
    return f"import time; t = time.perf_counter(); import {names}; print(time.perf_counter() - t)"


def _probe(source: str, env: Mapping[str, str]) -> list[str]:
    """Run ``source`` in a fresh interpreter at the project root; the words it printed."""
    return subprocess.run(  # noqa: S603 - our own interpreter and a fixed probe
        [sys.executable, "-c", source], cwd=REPO_ROOT, capture_output=True, text=True, check=True, env=env
    ).stdout.split()


def cold_start(runs: int) -> None:
    """Import ``function_app`` and the card's packages alone in alternating fresh interpreters (the
    app's bytecode as ``make`` compiles it, the packages' as pip did)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    samples, card, card_and_queue, identity_loaded, modules = [], [], [], set(), set()
    for _ in range(runs):
        out = _probe(_IMPORT_PROBE, env)
        samples.append(float(out[0]))
        identity_loaded.add(out[1])
        modules.add(int(out[2]))
        card.append(float(_probe(_import_probe(_CARD), env)[0]))
        card_and_queue.append(float(_probe(_import_probe(_CARD_AND_QUEUE), env)[0]))
    app = statistics.median(samples)
    print(
        f"cold start: import function_app  median {app * 1000:.0f} ms "
        f"(min {min(samples) * 1000:.0f}, max {max(samples) * 1000:.0f}, {runs} runs), "
        f"{max(modules)} modules, azure.identity imported: {', '.join(sorted(identity_loaded))}"
    )
    for modules_, times in ((_CARD, card), (_CARD_AND_QUEUE, card_and_queue)):
        alone = statistics.median(times)
        names = ", ".join(modules_)
        print(f"  import {names} alone: median {alone * 1000:.0f} ms (function_app {app / alone:.2f}x)")


_TELEMETRY_PROBE = (
    "import os, sys, time; t = time.perf_counter(); import function_app; i = time.perf_counter() - t; "
    "from shared.settings import load_settings; from shared.runtime import configure_telemetry; "
    "t = time.perf_counter(); configure_telemetry(load_settings(os.environ)); "
    "print(i, time.perf_counter() - t, any(m.startswith('opentelemetry') for m in sys.modules))"
)


def telemetry_cold_start(runs: int) -> None:
    """Import time without and with APPLICATIONINSIGHTS_CONNECTION_STRING, and what configuring the
    Azure Monitor distro adds to the first invocation (export to a closed loopback port)."""
    base = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANGUAGE_ENDPOINT": "https://example.cognitiveservices.azure.com",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    }
    base.pop("APPLICATIONINSIGHTS_CONNECTION_STRING", None)
    telemetry = {
        **base,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            "IngestionEndpoint=http://127.0.0.1:9/;LiveEndpoint=http://127.0.0.1:9/"
        ),
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
    }
    for label, env in (("without", base), ("with", telemetry)):
        imports, configures, loaded = [], [], set()
        for _ in range(runs):
            out = _probe(_TELEMETRY_PROBE, env)
            imports.append(float(out[0]))
            configures.append(float(out[1]))
            loaded.add(out[2])
        print(
            f"telemetry {label} APPLICATIONINSIGHTS_CONNECTION_STRING: import function_app median "
            f"{statistics.median(imports) * 1000:.0f} ms, first-invocation telemetry setup median "
            f"{statistics.median(configures) * 1000:.0f} ms ({runs} runs), "
            f"opentelemetry imported: {', '.join(sorted(loaded))}"
        )
