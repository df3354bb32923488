"""Output of the command line, apart from its logic: JSON Lines or text on stdout, progress on stderr.

stdout carries results only (with ``--json``, one JSON object per line and nothing else); anything
for the operator's eyes (progress bars, jobs left out of an export, errors) goes to stderr.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from tqdm import tqdm

from shared.export import EXPORT_FIELDS

__all__ = ["Out", "RowWriter", "progress", "say"]


class Out:
    """Results on stdout: ``json_lines`` objects, or the human line for each."""

    def __init__(self, *, json_lines: bool, stream: TextIO | None = None) -> None:
        self._json = json_lines
        self._stream = stream

    def result(self, obj: Mapping[str, Any], text: str | None) -> None:
        """One result: ``obj`` with ``--json``; ``text`` (if any) otherwise."""
        stream = self._stream or sys.stdout
        if self._json:
            stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
        elif text is not None:
            stream.write(text + "\n")

    def summary(self, text: str) -> None:
        """A closing line for humans; nothing with ``--json`` (stdout holds the objects only)."""
        if not self._json:
            (self._stream or sys.stdout).write(text + "\n")


def say(text: str) -> None:
    """A line for the operator on stderr."""
    sys.stderr.write(text + "\n")


def progress(description: str, *, unit: str) -> tqdm[Any]:
    """A progress bar on stderr, only when stderr is a terminal (never in a pipe or a log)."""
    return tqdm(desc=description, unit=unit, file=sys.stderr, disable=not sys.stderr.isatty(), leave=False)


class RowWriter:
    """Export rows as JSON Lines or CSV (header first, ``None`` as an empty cell)."""

    def __init__(self, stream: TextIO, *, fmt: str) -> None:
        self._stream = stream
        self._csv = csv.writer(stream) if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(EXPORT_FIELDS)

    def write(self, rows: Iterable[Mapping[str, Any]]) -> int:
        count = 0
        for row in rows:
            if self._csv is not None:
                self._csv.writerow(["" if row[name] is None else row[name] for name in EXPORT_FIELDS])
            else:
                self._stream.write(json.dumps({k: row[k] for k in EXPORT_FIELDS}, ensure_ascii=False) + "\n")
            count += 1
        return count
