"""Every Bicep file under infra/ parses (pycep-parser), and module calls are wired correctly: there is
no Bicep CLI in CI, so these are the compile-time checks the repository can run."""

from __future__ import annotations

from pathlib import Path

import pytest
from lark.exceptions import LarkError

from tests.infra.bicep_model import INFRA_DIR, Template, bicep_files, parse_bicep
from tests.infra.consistency import check_module_wiring

pytestmark = pytest.mark.infra

BICEP_FILES = bicep_files(INFRA_DIR)


def _id(path: Path) -> str:
    return path.relative_to(INFRA_DIR).as_posix()


def test_infra_has_main_and_one_module_per_concern() -> None:
    assert {_id(path) for path in BICEP_FILES} == {
        "main.bicep",
        "modules/alerts.bicep",
        "modules/functionapp.bicep",
        "modules/identity.bicep",
        "modules/language-access.bicep",
        "modules/language.bicep",
        "modules/monitoring.bicep",
        "modules/network.bicep",
        "modules/roles.bicep",
        "modules/storage.bicep",
        "modules/workbook.bicep",
    }


@pytest.mark.parametrize("path", BICEP_FILES, ids=_id)
def test_bicep_file_parses(path: Path) -> None:
    tree = parse_bicep(path.read_text(encoding="utf-8"))
    assert tree.get("resources") or tree.get("modules"), f"{_id(path)} declares nothing"


@pytest.mark.parametrize("path", BICEP_FILES, ids=_id)
def test_module_calls_are_wired(path: Path) -> None:
    assert check_module_wiring(Template.load(path)) == []


def test_the_parser_rejects_invalid_bicep() -> None:
    """The syntax test means something only if a broken file fails it."""
    broken = (INFRA_DIR / "modules" / "identity.bicep").read_text(encoding="utf-8").replace("= {", "= {{", 1)
    with pytest.raises((ValueError, LarkError)):
        parse_bicep(broken)
