"""``-o FILE``: the output is written to a temporary file beside ``FILE`` and renamed onto it only
once the command has run to its end, so a failure (storage unreachable, a settings error, an
interrupt) leaves an existing ``FILE`` as it was and no partial file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import TextIO

__all__ = ["ReplacingFile"]


class ReplacingFile:
    """A text file that replaces ``path`` on ``commit``; closed without it, it is removed."""

    def __init__(self, path: Path) -> None:
        """Raises ``OSError`` when the temporary file cannot be created beside ``path``."""
        self._path = path
        descriptor, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".partial", text=True
        )
        self._temporary = Path(temporary)
        self.stream: TextIO = os.fdopen(descriptor, "w", encoding="utf-8", newline="")
        self._committed = False

    def commit(self) -> None:
        """Flush, sync and rename onto ``path`` (atomic on one file system), with the mode that
        ``path`` had, or the one a new file gets (mkstemp makes it private)."""
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        os.chmod(self._temporary, _mode_for(self._path))
        os.replace(self._temporary, self._path)
        self._committed = True

    def __enter__(self) -> ReplacingFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if not self._committed:
            self.stream.close()
            with contextlib.suppress(FileNotFoundError):
                self._temporary.unlink()


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
