"""What the command line prints is made safe first: secrets masked, control characters escaped, CSV
cells made inert. Pure functions of their inputs (DESIGN.md, "Operator command line", "Bad input").

Secrets are masked before anything is cut: an excerpt of a key (the first 60 characters of a job id
that is not one) is as much a leak as the key. So every secret the run knows of (the settings' keys,
and anything that looks like a key in what the operator typed or storage handed back) is masked
wherever any ``FRAGMENT`` characters of it appear, and whatever looks like a key on its own is masked
whole.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final

__all__ = [
    "FRAGMENT",
    "MASK",
    "Redactor",
    "escape_controls",
    "looks_secret",
    "neutralize_cell",
    "secret_spans",
    "secret_tokens",
]

MASK: Final = "<redacted>"
#: The shortest run of a known secret that is masked where it appears (shorter secrets: whole only).
FRAGMENT: Final = 8

# What looks like a secret; the named group ``s`` (or the whole match) is the secret itself.
_SECRET_PATTERNS: Final = (
    # The value of a connection string's key or password.
    re.compile(r"(?i)(?:accountkey|sharedaccesskey|password)=(?P<s>[^;\s'\"]+)"),
    # JWTs (Entra tokens) start with the base64url of '{"'.
    re.compile(r"eyJ[A-Za-z0-9_.-]{8,}"),
    # Cognitive Services keys: 32 hex digits, alone (a UUID's hex groups are at most 12 long).
    re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f]{32}(?![0-9A-Za-z])"),
)
# Storage account keys (base64 of 64 bytes) and other padded base64 (whole quads, not a word).
# Anchored at the start of a run and possessive: linear in the run's length (2 MiB of letters pasted
# as one line must not cost quadratic time).
_PADDED: Final = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{18,}+={1,2}")
# Long unpadded base64/base62 (the 84-character Cognitive Services keys, a key cut short): random
# text has digits, capitals and small letters; words and names (``CustomEntityRecognition``) do not.
_LONG_RUN: Final = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{32,}+")


def _mixed(run: str) -> bool:
    return any(c.isdigit() for c in run) and any(c.isupper() for c in run) and any(c.islower() for c in run)


# A SAS: the whole query string that holds a ``sig=`` (the signature and the permissions it grants),
# in a URL or a connection string's SharedAccessSignature=. Found as a run between delimiters that
# holds ``sig=`` at the start of a word: two linear scans, where one pattern for "parameters, then
# sig=, then parameters" backtracks quadratically on a long line of ``a=b`` pairs.
_QUERY_RUN: Final = re.compile(r"[^;\s'\"?]+")
_SIG: Final = re.compile(r"(?i)(?<![a-z])sig=")


def secret_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds something that looks like a key, a signature or a token (false positives
    are fine: they are only masked)."""
    spans = [run.span() for run in _QUERY_RUN.finditer(text) if _SIG.search(run.group())]
    for pattern in _SECRET_PATTERNS:
        for match in pattern.finditer(text):
            group = "s" if "s" in pattern.groupindex else 0
            spans.append(match.span(group))
    spans.extend(match.span() for match in _PADDED.finditer(text) if len(match.group()) % 4 == 0)
    spans.extend(match.span() for match in _LONG_RUN.finditer(text) if _mixed(match.group()))
    return spans


def secret_tokens(text: str) -> list[str]:
    """What looks like a secret in ``text``, each whole."""
    return [text[start:end] for start, end in secret_spans(text) if end > start]


def looks_secret(text: str) -> bool:
    return bool(secret_tokens(text))


def _mask(text: str, masked: list[bool]) -> str:
    """``text`` with each run of masked characters replaced by one ``MASK``."""
    out, i = [], 0
    while i < len(text):
        if masked[i]:
            while i < len(text) and masked[i]:
                i += 1
            out.append(MASK)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class Redactor:
    """Masks known secrets (whole, and any ``FRAGMENT`` characters of them) and key-like tokens."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._whole: set[str] = set()  # secrets too short for fragments: masked where whole
        self._grams: set[str] = set()  # every FRAGMENT-long slice of the longer ones
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        for secret in secrets:
            if len(secret) < FRAGMENT:
                if secret.strip():
                    self._whole.add(secret)
                continue
            self._grams.update(secret[i : i + FRAGMENT] for i in range(len(secret) - FRAGMENT + 1))

    def guard(self, raw: str) -> None:
        """Register what looks like a secret in ``raw`` before any part of it can be cut and printed."""
        self.add(*secret_tokens(raw))

    def redact(self, text: str) -> str:
        masked = [False] * len(text)
        if self._grams:
            for i in range(len(text) - FRAGMENT + 1):
                if text[i : i + FRAGMENT] in self._grams:
                    masked[i : i + FRAGMENT] = [True] * FRAGMENT
        for secret in self._whole:
            for match in re.finditer(re.escape(secret), text):
                masked[match.start() : match.end()] = [True] * (match.end() - match.start())
        for start, end in secret_spans(text):
            masked[start:end] = [True] * (end - start)
        return _mask(text, masked) if any(masked) else text


# Bidirectional overrides and isolates reorder what a terminal shows ("Trojan source").
_BIDI: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in _BIDI


def escape_controls(text: str, *, json: bool = False) -> str:
    """Control characters (C0, DEL, C1), lone surrogates, line separators and bidi controls as
    ``\\xNN`` / ``\\uNNNN`` escapes (``json``: always ``\\uNNNN``, valid inside a JSON string):
    nothing printed can move the cursor, recolour or reorder a terminal, or break a line."""
    if all(not _unsafe(char) for char in text):
        return text
    return "".join(_escape(char, json=json) if _unsafe(char) else char for char in text)


def _escape(char: str, *, json: bool) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 and not json else f"\\u{code:04x}"


#: OWASP "CSV injection": a cell starting with one of these is a formula to a spreadsheet.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def neutralize_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text: a leading formula character gets a ``'`` before it."""
    return "'" + value if value.startswith(_FORMULA_START) else value
