"""``--profile``: two app rounds under cProfile, the app's own CPU time by package and its top functions."""

from __future__ import annotations

import cProfile
import io
import pstats
from collections import Counter
from pathlib import Path

from local.bench.instruments import CpuClock, Scenario, Side
from local.bench.rounds import Round, app_round
from local.bench.services import REPO_ROOT

__all__ = ["profile_app"]


async def profile_app(scenario: Scenario, job_ids: list[str], direct: str, clock: CpuClock) -> None:
    profile = cProfile.Profile()
    side = Side("app")
    for number in range(1, 3):
        await app_round(
            Round(scenario=scenario, job_ids=job_ids, direct=direct, number=number, clock=clock),
            side,
            profile=profile,
        )
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    print(f"CPU by package (own time, {len(job_ids) * 2} jobs):")
    for package, seconds in _by_package(stats).most_common(15):
        print(f"  {seconds * 1000 / (len(job_ids) * 2):7.3f} ms/job  {package}")
    stats.strip_dirs().sort_stats("tottime").print_stats(30)
    print(out.getvalue())


def _by_package(stats: pstats.Stats) -> Counter[str]:
    """Own time summed per top-level package (``azure.storage.blob``, ``shared``, ``json``, ...)."""
    totals: Counter[str] = Counter()
    for (filename, _, function), row in stats.stats.items():  # type: ignore[attr-defined]
        totals[_package(filename, function)] += row[2]
    return totals


def _package(filename: str, function: str) -> str:
    path = Path(filename)
    if filename.startswith("~") or not path.is_absolute():
        return f"builtins ({function})" if "method" in function or "built-in" in function else "builtins"
    parts = path.parts
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1 :]
        depth = 3 if rest[0] == "azure" else 1
        return ".".join(rest[:depth]).removesuffix(".py")
    if path.is_relative_to(REPO_ROOT):
        return ".".join(path.relative_to(REPO_ROOT).parts[:2]).removesuffix(".py")
    return f"stdlib {path.parent.name if path.parent.name != 'lib' else ''}/{path.stem}".strip()
