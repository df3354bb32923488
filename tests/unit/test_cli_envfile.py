"""``--env-file``: azd's KEY="VALUE" lines and local.settings.json, read back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.envfile import EnvFileError, parse_env_lines, read_env_file
from tests.support import BOUNDED

KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}(__[A-Za-z]{1,12})?", fullmatch=True)


def azd_line(key: str, value: str) -> str:
    """As ``azd env get-values`` prints a value (godotenv's double-quote escaping)."""
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace('"', '\\"')
    for char in "$!`":
        escaped = escaped.replace(char, "\\" + char)
    return f'{key}="{escaped}"'


@BOUNDED
@given(st.dictionaries(KEYS, st.text(st.characters(exclude_categories=["Cs"])), max_size=8))
def test_every_value_azd_prints_reads_back_exactly(values: dict[str, str]) -> None:
    text = "\n".join(azd_line(key, value) for key, value in values.items())

    assert parse_env_lines(text) == values


def test_comments_blank_lines_export_and_single_quotes() -> None:
    text = "# azd env\n\nexport ARCHIVE_CONTAINER=entity-archive\nJOBS_QUEUE='lang $jobs'\nEMPTY=\n"

    assert parse_env_lines(text) == {
        "ARCHIVE_CONTAINER": "entity-archive",
        "JOBS_QUEUE": "lang $jobs",
        "EMPTY": "",
    }


@pytest.mark.parametrize("line", ["JUST_A_WORD", "=value", 'KEY="unterminated'])
def test_a_malformed_line_is_named_by_file_and_line_number(line: str) -> None:
    with pytest.raises(EnvFileError, match=r"^prod\.env:2: "):
        parse_env_lines(f"A=1\n{line}\n", source="prod.env")


def test_a_local_settings_json_gives_its_values(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {"JOBS_QUEUE": "jobs"}}), encoding="utf-8")

    assert read_env_file(path) == {"JOBS_QUEUE": "jobs"}


@pytest.mark.parametrize(
    "body", ['{"Values": {"A": 1}}', '{"Values": [1]}', "{not json", '{"IsEncrypted": false}']
)
def test_a_local_settings_json_without_string_values_is_an_error(tmp_path: Path, body: str) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(body, encoding="utf-8")

    with pytest.raises(EnvFileError, match=r"local\.settings\.json"):
        read_env_file(path)
