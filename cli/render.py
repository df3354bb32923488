"""Output of the command line, apart from its logic: JSON Lines or text on stdout, progress on stderr.

stdout carries results only (with ``--json``, one JSON object per line and nothing else); anything
for the operator's eyes (progress bars, jobs left out of an export, errors) goes to stderr.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Final, TextIO

from tqdm import tqdm

from shared.export import EXPORT_FIELDS

from .sanitize import Redactor, escape_controls, neutralize_cell

__all__ = ["Out", "RowWriter", "progress"]

_SURROGATE: Final = re.compile("[\ud800-\udfff]")  # lone: no UTF-8 for them


class Out:
    """Results on stdout (``json_lines`` objects, or a human line each) and notes on stderr.

    Every line is made safe on its way out (``cli.sanitize``): the secrets of ``redactor`` and
    anything that looks like a key are masked, control characters escaped. An operator may paste a
    key where a job id belongs, and the app's own reasons quote what they were given.
    """

    def __init__(self, *, json_lines: bool, redactor: Redactor | None = None) -> None:
        self._json = json_lines
        self.redactor = redactor or Redactor()

    def result(self, obj: Mapping[str, Any], text: str | None) -> None:
        """One result: ``obj`` with ``--json``; ``text`` (if any) otherwise."""
        if self._json:
            line = json.dumps(self._redacted(obj), ensure_ascii=False)
            sys.stdout.write(escape_controls(line, json=True) + "\n")
        elif text is not None:
            sys.stdout.write(self.safe(text) + "\n")

    def summary(self, text: str) -> None:
        """A closing line for humans; nothing with ``--json`` (stdout holds the objects only)."""
        if not self._json:
            sys.stdout.write(self.safe(text) + "\n")

    def say(self, text: str) -> None:
        """A line for the operator on stderr."""
        sys.stderr.write(self.safe(text) + "\n")

    def safe(self, text: str) -> str:
        """``text`` as it may be printed: secrets masked, then control characters escaped."""
        return escape_controls(self.redactor.redact(text))

    def _redacted(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redactor.redact(value)
        if isinstance(value, Mapping):
            return {key: self._redacted(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._redacted(item) for item in value]
        return value


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
                self._csv.writerow([_csv_cell(row[name]) for name in EXPORT_FIELDS])
            else:
                # Values exactly as archived; escaping only what JSON allows to be escaped (C1
                # controls, lone surrogates), so a terminal is safe and the text is still UTF-8.
                line = json.dumps({k: row[k] for k in EXPORT_FIELDS}, ensure_ascii=False)
                self._stream.write(escape_controls(line, json=True) + "\n")
            count += 1
        return count


def _csv_cell(value: Any) -> Any:
    """``None`` as an empty cell; text made inert for spreadsheets, lone surrogates as U+FFFD."""
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralize_cell(_SURROGATE.sub("\ufffd", value))
    return value
