"""Deterministic entity recognisers: a small prebuilt NER and gazetteer-based custom NER.

Spans are code-point offsets into the submitted text; `offsets` converts them per stringIndexType.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from local.emulator.config import Gazetteer

CUSTOM_CONFIDENCE = 0.87


@dataclass(frozen=True)
class EntityLabel:
    """How one kind of entity is labelled, in both the legacy and the tagged entity shapes."""

    category: str
    """`category` of the plain Entity shape (2022-05-01 .. 2023-04-01, and custom NER)."""
    subcategory: str | None
    coarse_category: str
    """`category` of the tagged shape (2023-04-15-preview+), where the fine type moved to `type`."""
    type: str
    tags: tuple[str, ...]
    confidence: float


@dataclass(frozen=True)
class Match:
    start: int
    end: int
    label: EntityLabel
    metadata: Mapping[str, object] | None = None


LOCATION = EntityLabel("Location", "GPE", "Location", "GPE", ("Location", "GPE"), 0.82)
ORGANIZATION = EntityLabel("Organization", None, "Organization", "Organization", ("Organization",), 0.9)
EVENT = EntityLabel("Event", None, "Event", "Event", ("Event",), 0.61)
DATE = EntityLabel("DateTime", "Date", "Temporal", "Date", ("Date", "Temporal"), 0.8)
DATE_RANGE = EntityLabel("DateTime", "DateRange", "Temporal", "DateRange", ("DateRange", "Temporal"), 0.8)
CURRENCY = EntityLabel(
    "Quantity", "Currency", "Quantity", "Currency", ("Numeric", "Quantity", "Currency"), 0.8
)
EMAIL = EntityLabel("Email", None, "Email", "Email", ("Email",), 0.8)
URL = EntityLabel("URL", None, "URL", "URL", ("URL",), 0.8)

_LOCATIONS = (
    "Seattle", "Redmond", "NYC", "New York", "Boston", "Chicago", "San Francisco", "London", "Paris",
    "Berlin", "München", "Zürich", "Kraków", "São Paulo", "Montréal", "Reykjavík", "Tokyo",
    "France", "Germany", "Japan", "Canada",
)  # fmt: skip
_DAY_WORDS = (
    "today", "tomorrow", "yesterday",
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
)  # fmt: skip
_ORGANIZATIONS = ("Microsoft", "Contoso", "Fabrikam", "Northwind Traders", "Woodgrove Bank")
_ISO_CURRENCY = {"$": "USD", "€": "EUR", "£": "GBP"}
_CURRENCY_UNIT = {"USD": "Dollar", "EUR": "Euro", "GBP": "Pound"}
_AMOUNT = r"(?P<amount>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"

MetadataOf = Callable[[re.Match[str]], Mapping[str, object]]


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    label: EntityLabel
    metadata: MetadataOf | None = None


@lru_cache(maxsize=512)
def _words(phrases: tuple[str, ...], flags: int = 0) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(phrase) for phrase in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", flags)


def _date_metadata(match: re.Match[str]) -> Mapping[str, object]:
    return {"metadataKind": "DateMetadata", "dateValues": [{"timex": match[0], "value": match[0]}]}


def _currency_metadata(match: re.Match[str]) -> Mapping[str, object]:
    groups = match.groupdict()
    iso = groups.get("code") or _ISO_CURRENCY[groups["symbol"]]
    return {
        "metadataKind": "CurrencyMetadata",
        "value": float(groups["amount"].replace(",", "")),
        "unit": _CURRENCY_UNIT[iso],
        "iso4217": iso,
    }


_RULES = (
    _Rule(_words(_LOCATIONS), LOCATION),
    _Rule(_words(_ORGANIZATIONS), ORGANIZATION),
    _Rule(re.compile(r"(?<!\w)(?:trip|conference|meeting|wedding|festival|concert)s?(?!\w)", re.I), EVENT),
    _Rule(re.compile(r"(?<!\w)(?:last|next|this)\s+(?:week|weekend|month|year)(?!\w)", re.I), DATE_RANGE),
    _Rule(_words(_DAY_WORDS, re.I), DATE),
    _Rule(re.compile(r"(?<!\w)\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?!\w)"), DATE, _date_metadata),
    _Rule(re.compile(rf"(?P<symbol>[$€£])\s?{_AMOUNT}(?!\w)"), CURRENCY, _currency_metadata),
    _Rule(re.compile(rf"(?<!\w){_AMOUNT}\s?(?P<code>USD|EUR|GBP)(?!\w)"), CURRENCY, _currency_metadata),
    _Rule(re.compile(rf"(?<!\w)(?P<code>USD|EUR|GBP)\s?{_AMOUNT}(?!\w)"), CURRENCY, _currency_metadata),
    _Rule(re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), EMAIL),
    _Rule(re.compile(r"https?://[^\s<>\"]+?(?=[.,;:!?)]*(?:\s|$))"), URL),
)


def recognize_prebuilt(text: str) -> tuple[Match, ...]:
    """Prebuilt NER: known places and organisations, dates, currency amounts, e-mail addresses and URLs."""
    candidates = [
        Match(found.start(), found.end(), rule.label, rule.metadata(found) if rule.metadata else None)
        for rule in _RULES
        for found in rule.pattern.finditer(text)
    ]
    return _longest_first(candidates)


def recognize_custom(text: str, gazetteer: Gazetteer) -> tuple[Match, ...]:
    """Custom NER: case-insensitive whole-word matches of the deployment's gazetteer phrases."""
    candidates = [
        Match(found.start(), found.end(), _custom_label(category))
        for category, phrases in gazetteer.items()
        for found in _words(phrases, re.I).finditer(text)
    ]
    return _longest_first(candidates)


@lru_cache(maxsize=256)
def _custom_label(category: str) -> EntityLabel:
    return EntityLabel(category, None, category, category, (category,), CUSTOM_CONFIDENCE)


def _longest_first(candidates: list[Match]) -> tuple[Match, ...]:
    """Keep the longest of overlapping matches (the service's default matchLongest policy)."""
    kept: list[Match] = []
    for match in sorted(candidates, key=lambda m: (m.start - m.end, m.start)):
        if all(match.end <= other.start or match.start >= other.end for other in kept):
            kept.append(match)
    return tuple(sorted(kept, key=lambda m: m.start))
