"""Output of the command line, apart from its logic: JSON Lines or text on stdout, progress on stderr.

stdout carries results only (with ``--json``, one JSON object per line and nothing else); anything
for the operator's eyes (progress bars, jobs left out of an export, errors) goes to stderr.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from tqdm import tqdm

from shared.export import EXPORT_FIELDS

__all__ = ["Out", "RowWriter", "progress"]


class Out:
    """Results on stdout (``json_lines`` objects, or a human line each) and notes on stderr.

    ``secrets`` (the settings' keys) are replaced in every line: an operator may paste one where a
    job id belongs, and the app's own reasons quote what they were given.
    """

    def __init__(self, *, json_lines: bool, secrets: Sequence[str] = ()) -> None:
        self._json = json_lines
        self._secrets = [secret for secret in secrets if secret]

    def result(self, obj: Mapping[str, Any], text: str | None) -> None:
        """One result: ``obj`` with ``--json``; ``text`` (if any) otherwise."""
        if self._json:
            sys.stdout.write(self.redact(json.dumps(obj, ensure_ascii=False)) + "\n")
        elif text is not None:
            sys.stdout.write(self.redact(text) + "\n")

    def summary(self, text: str) -> None:
        """A closing line for humans; nothing with ``--json`` (stdout holds the objects only)."""
        if not self._json:
            sys.stdout.write(self.redact(text) + "\n")

    def say(self, text: str) -> None:
        """A line for the operator on stderr."""
        sys.stderr.write(self.redact(text) + "\n")

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text


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
