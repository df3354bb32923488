"""The deterministic recognisers and the string index conversions, called directly."""

from __future__ import annotations

import pytest

from local.emulator.config import DEFAULT_CUSTOM_PROJECTS
from local.emulator.offsets import to_index_units
from local.emulator.recognizer import recognize_custom, recognize_prebuilt


def _found(text: str) -> list[tuple[str, str, str | None]]:
    return [(text[m.start : m.end], m.label.category, m.label.subcategory) for m in recognize_prebuilt(text)]


def test_prebuilt_finds_places_events_and_relative_dates() -> None:
    assert _found("I had a wonderful trip to Seattle last week.") == [
        ("trip", "Event", None),
        ("Seattle", "Location", "GPE"),
        ("last week", "DateTime", "DateRange"),
    ]


def test_prebuilt_finds_weekdays_iso_dates_currency_and_email() -> None:
    text = "On Monday (2025-03-15) send 120 EUR and $99 to ana@example.org"

    assert _found(text) == [
        ("Monday", "DateTime", "Date"),
        ("2025-03-15", "DateTime", "Date"),
        ("120 EUR", "Quantity", "Currency"),
        ("$99", "Quantity", "Currency"),
        ("ana@example.org", "Email", None),
    ]


def test_prebuilt_only_matches_whole_capitalised_place_names() -> None:
    assert _found("seattle Seattleite") == []


def test_overlapping_matches_keep_the_longest() -> None:
    assert _found("New York") == [("New York", "Location", "GPE")]


def test_custom_matches_gazetteer_phrases_case_insensitively() -> None:
    gazetteer = DEFAULT_CUSTOM_PROJECTS["MyProject"]["MyDeployment"]
    text = "the pacific northwest and the Midwest"

    found = [(text[m.start : m.end], m.label.category) for m in recognize_custom(text, gazetteer)]
    assert found == [("pacific northwest", "USRegion"), ("Midwest", "USRegion")]


@pytest.mark.parametrize(
    ("index_type", "expected"),
    [("UnicodeCodePoint", (2, 6)), ("Utf16CodeUnit", (3, 6)), ("TextElements_v8", (2, 6))],
)
def test_index_units_after_an_astral_emoji(index_type: str, expected: tuple[int, int]) -> None:
    text = "😀 Zürich"

    assert to_index_units(text, 2, 8, index_type) == expected


def test_text_elements_merge_combining_marks_and_flags() -> None:
    text = "Cafe\u0301 🇫🇷 Paris"  # "é" as e + combining acute; the flag is two regional indicators
    start = text.index("Paris")

    assert to_index_units(text, start, start + 5, "TextElements_v8") == (7, 5)
    assert to_index_units(text, start, start + 5, "UnicodeCodePoint") == (9, 5)
