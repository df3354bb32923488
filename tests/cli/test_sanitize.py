"""What the command line prints is made safe (``cli.sanitize``): secrets masked before anything is
cut, control characters escaped, CSV cells inert. Pure functions: properties over any input."""

from __future__ import annotations

import base64
import json
import string
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from cli.sanitize import FRAGMENT, MASK, Redactor, escape_controls, neutralize_cell, secret_tokens

STORAGE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SAS = (
    "sv=2022-11-02&ss=bq&srt=sco&sp=rwdlacup&se=2026-12-31T00:00:00Z&spr=https"
    "&sig=Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5%2BsdW5r%3D"
)
HEX_KEY = "8f14e45fceea167a5a36dedd4bea2543"
JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2NvZ25pdGl2ZSJ9.c2lnbmF0dXJlLXBhcnQ"
COGNITIVE_KEY = "7Qx2mK9pL4vN8rT1yW6zB3cF5hJ0dG2sA4eR7tY9uI1oP3aS5dF7gH9jK2lZ4xC6vB8nM0qW2eR4tY6uI8oP0aSd"
UUID = "c0f2a446-05d9-48fc-ba8f-3ef4af8d0b18"


def fragments(secret: str) -> set[str]:
    return {secret[i : i + FRAGMENT] for i in range(len(secret) - FRAGMENT + 1)}


def leaks(text: str, secret: str) -> set[str]:
    return {fragment for fragment in fragments(secret) if fragment in text}


random_keys = st.one_of(
    st.binary(min_size=64, max_size=64).map(lambda b: base64.b64encode(b).decode()),  # account keys
    st.binary(min_size=16, max_size=16).map(bytes.hex),  # Cognitive Services keys
    st.text(string.ascii_letters + string.digits, min_size=61, max_size=100),  # any long API key
)
key_shaped = st.one_of(
    st.binary(min_size=64, max_size=64).map(lambda b: base64.b64encode(b).decode()),
    st.binary(min_size=16, max_size=16).map(bytes.hex),
    st.text(string.ascii_letters + string.digits, min_size=84, max_size=84).filter(
        lambda t: any(c.isdigit() for c in t) and any(c.isupper() for c in t) and any(c.islower() for c in t)
    ),
)
surroundings = st.text(st.characters(codec="utf-8"), max_size=40)


@given(random_keys, st.integers(min_value=FRAGMENT, max_value=100), surroundings, surroundings)
def test_no_fragment_of_a_known_secret_survives_however_it_was_cut(
    secret: str, cut: int, before: str, after: str
) -> None:
    redactor = Redactor([secret])

    shown = redactor.redact(f"{before}'{secret[:cut]}...'{after}")

    assert not leaks(shown, secret)


@given(key_shaped, st.integers(min_value=FRAGMENT, max_value=100))
def test_a_key_registered_from_what_the_operator_typed_is_masked_where_it_comes_back_cut(
    secret: str, cut: int
) -> None:
    redactor = Redactor()
    redactor.guard(f'{{"jobId": "{secret}"}}')

    shown = redactor.redact(f"invalid-job-id: job id {secret[:cut]!r} is not a UUID")

    assert not leaks(shown, secret)


@given(key_shaped)
def test_a_key_never_seen_before_is_masked_whole_by_its_look(secret: str) -> None:
    shown = Redactor().redact(f"error: {secret!r} is not a job")

    assert not leaks(shown, secret)


def test_each_kind_of_secret_looks_like_one() -> None:
    connection = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={STORAGE_KEY};EndpointSuffix=x"
    for text, secret in [
        (STORAGE_KEY, STORAGE_KEY),
        (f"https://acct.blob.core.windows.net/c?{SAS}", SAS),
        (connection, STORAGE_KEY),
        (f"SharedAccessSignature={SAS}", SAS),
        (HEX_KEY, HEX_KEY),
        (JWT, JWT),
        (COGNITIVE_KEY, COGNITIVE_KEY),
    ]:
        assert any(secret in token for token in secret_tokens(text)), text
        assert not leaks(Redactor().redact(text), secret), text


def test_job_ids_blob_names_urls_and_words_are_shown_as_they_are() -> None:
    texts = [
        UUID,
        f"{UUID}/tasks/01-CustomEntityRecognitionLROResults.json",
        f"http://127.0.0.1:10000/devstoreaccount1/entity-archive/{UUID}/manifest.json",
        f"https://x.cognitiveservices.azure.com/language/analyze-text/jobs/{UUID}?api-version=2024-11-01",
        "DefaultEndpointsProtocol=https;AccountName=acct",
        "invalid-job-id: job id 'nope' is not a UUID",
        "verified 12 jobs: 12 ok, 0 failed",
    ]
    for text in texts:
        assert Redactor(["emulator-key-0123456789abcdef"]).redact(text) == text


def test_a_short_known_secret_is_masked_where_it_appears_whole() -> None:
    assert Redactor(["k3y"]).redact("key k3y here") == f"key {MASK} here"


UNSAFE = {"Cc", "Cs", "Zl", "Zp"}
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@given(st.text())
def test_escaped_text_holds_no_control_character_surrogate_line_separator_or_bidi_control(text: str) -> None:
    shown = escape_controls(text)

    assert not [c for c in shown if unicodedata.category(c) in UNSAFE or c in BIDI]
    shown.encode("utf-8")  # printable whatever the text held


@given(st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters="".join(BIDI))))
def test_text_without_control_characters_is_shown_as_it_is(text: str) -> None:
    assert escape_controls(text) == text


def test_a_terminal_escape_sequence_is_shown_as_text() -> None:
    assert escape_controls("reason \x1b[2J\x9b31m\u202eevil\n") == "reason \\x1b[2J\\x9b31m\\u202eevil\\x0a"


@given(st.text())
def test_json_escaping_keeps_the_json_meaning_and_shows_no_control_character(text: str) -> None:
    line = escape_controls(json.dumps({"v": text}, ensure_ascii=False), json=True)

    assert json.loads(line) == {"v": text}
    assert not [c for c in line if unicodedata.category(c) in UNSAFE or c in BIDI]


@given(st.text())
def test_a_csv_cell_never_starts_a_formula_and_keeps_its_text(value: str) -> None:
    cell = neutralize_cell(value)

    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell in (value, "'" + value)


@given(st.text().filter(lambda t: not t.startswith(("=", "+", "-", "@", "\t", "\r"))))
def test_a_csv_cell_that_is_no_formula_is_left_as_it_is(value: str) -> None:
    assert neutralize_cell(value) == value


def test_each_formula_start_gets_a_single_quote() -> None:
    starts = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"]
    assert [neutralize_cell(value) for value in starts] == ["'" + value for value in starts]
