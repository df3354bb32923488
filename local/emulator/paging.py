"""The document window of one GET (`top`/`skip`) and the job-level `nextLink` to the rest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass(frozen=True)
class PageRequest:
    top: int | None = None
    skip: int = 0
    show_stats: str | None = None
    """The raw showStats value: nextLink echoes it as given (the service sent "True")."""

    @property
    def wants_stats(self) -> bool:
        return self.show_stats is not None and self.show_stats.lower() == "true"


@dataclass(frozen=True)
class Window:
    """Documents [start, stop) are on this page; [stop, end) remain for the following pages."""

    start: int
    stop: int
    end: int

    @property
    def has_more(self) -> bool:
        return self.stop < self.end


def parse_page_request(query: Mapping[str, str]) -> PageRequest:
    """Reads top/skip/showStats (no `$` prefix in any Language version); ValueError names the bad one."""
    show_stats = query.get("showStats")
    if show_stats is not None and show_stats.lower() not in ("true", "false"):
        raise ValueError(f"showStats must be true or false, got {show_stats!r}.")
    top = _non_negative(query, "top")
    if top == 0:
        raise ValueError("top must be at least 1.")
    return PageRequest(top=top, skip=_non_negative(query, "skip") or 0, show_stats=show_stats)


def _non_negative(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit():
        raise ValueError(f"{name} must be a non-negative integer, got {raw!r}.")
    return int(raw)


def page_window(total: int, page: PageRequest, page_size: int) -> Window:
    """`skip` applies first, `top` caps what is requested, and one page holds at most `page_size`."""
    start = min(page.skip, total)
    end = total if page.top is None else min(total, start + page.top)
    return Window(start, min(end, start + page_size), end)


def next_link(origin: str, job_id: str, api_version: str, page: PageRequest, window: Window) -> str:
    """Absolute URL in the service's parameter order: showStats (if given), top, skip, api-version."""
    params: list[tuple[str, str]] = []
    if page.show_stats is not None:
        params.append(("showStats", page.show_stats))
    params += [
        ("top", str(window.end - window.stop)),
        ("skip", str(window.stop)),
        ("api-version", api_version),
    ]
    return f"{origin}/language/analyze-text/jobs/{job_id}?{urlencode(params)}"
