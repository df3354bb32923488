"""Every resource body in infra/ holds up against the Azure resource type definitions the Bicep compiler
uses (../shared/azure-types/schemas.json), and the checker catches each kind of mistake planted into a
copy of the real Bicep."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.infra.arm_types import (
    SCHEMAS_PATH,
    Declaration,
    Finding,
    Schemas,
    check_declaration,
    check_role_guids,
    declarations,
)
from tests.infra.bicep_model import INFRA_DIR

pytestmark = [
    pytest.mark.infra,
    pytest.mark.skipif(
        not SCHEMAS_PATH.is_file(),
        reason=f"{SCHEMAS_PATH} is absent (the read-only ../shared reference data): ARM types not checked",
    ),
]

DECLARATIONS = declarations(INFRA_DIR)
LANGUAGE_JOBS_CANCEL = "Microsoft.CognitiveServices/accounts/Language/analyze-text/jobscancel/action"


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return Schemas.load()


def _id(declaration: Declaration) -> str:
    return f"{declaration.template.path.relative_to(INFRA_DIR).as_posix()}:{declaration.symbol}"


def _errors(findings: list[Finding]) -> list[str]:
    return [str(finding) for finding in findings if finding.kind == "error"]


def test_every_bicep_file_is_covered() -> None:
    """New files (another module, a workbook) are picked up without listing them here."""
    covered = {declaration.template.path for declaration in DECLARATIONS}
    declaring = {path for path in INFRA_DIR.rglob("*.bicep") if "\nresource " in path.read_text("utf-8")}
    assert declaring <= covered


@pytest.mark.parametrize("declaration", DECLARATIONS, ids=_id)
def test_resource_matches_its_arm_type(declaration: Declaration, schemas: Schemas) -> None:
    findings = check_declaration(declaration, schemas)
    errors = _errors(findings)
    assert not errors, "\n".join(errors)
    unchecked = [str(finding) for finding in findings if finding.kind == "unchecked"]
    if unchecked:
        pytest.skip("; ".join(unchecked))


def test_every_guid_in_infra_is_a_confirmed_built_in_role(schemas: Schemas) -> None:
    errors = _errors(check_role_guids(INFRA_DIR, schemas))
    assert not errors, "\n".join(errors)


def test_default_language_role_is_reader_and_it_can_cancel_jobs(schemas: Schemas) -> None:
    """Reader, not Writer: the built-in roles page lists the cancel data action among Reader's."""
    (app_role,) = [d for d in DECLARATIONS if d.symbol == "appLanguageRole"]
    role_id = app_role.scope["languageRoleIds"]
    assert isinstance(role_id, dict)
    default = role_id[str(app_role.scope["languageRole"])]
    reader = schemas.built_in_roles[default]
    assert reader["name"] == "Cognitive Services Language Reader"
    assert LANGUAGE_JOBS_CANCEL in reader["dataActions"]
    assert "Microsoft.CognitiveServices/accounts/Language/*/read" in reader["dataActions"]


# --- the checker catches planted mistakes ------------------------------------------------------------

Plant = Callable[[str, str, str], list[str]]


@pytest.fixture
def plant(tmp_path: Path, schemas: Schemas) -> Plant:
    """Copy infra/ to tmp_path, make one edit, return the checker's errors on the copy."""
    infra = tmp_path / "infra"
    shutil.copytree(INFRA_DIR, infra)

    def run(relative: str, old: str, new: str) -> list[str]:
        path = infra / relative
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {relative}: update the planted case"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        findings = [f for d in declarations(infra) for f in check_declaration(d, schemas)]
        return _errors([*findings, *check_role_guids(infra, schemas)])

    return run


def _caught(errors: list[str], expected: str) -> None:
    assert any(expected in error for error in errors), "\n".join(errors) or "no error reported"


def test_catches_a_misspelled_property(plant: Plant) -> None:
    errors = plant("modules/storage.bicep", "allowBlobPublicAccess: false", "allowBlobPublicAcess: false")
    _caught(errors, "properties.allowBlobPublicAcess: is not a property of StorageAccountPropertiesCreate")


def test_catches_a_wrong_enum_value(plant: Plant) -> None:
    errors = plant("modules/storage.bicep", "publicAccess: 'None'", "publicAccess: 'Private'")
    _caught(errors, "properties.publicAccess: 'Private' is not one of ['Container', 'Blob', 'None']")


def test_catches_a_string_where_an_int_goes(plant: Plant) -> None:
    errors = plant(
        "modules/functionapp.bicep", "instanceMemoryMB: instanceMemoryMB", "instanceMemoryMB: '2048'"
    )
    _caught(errors, "scaleAndConcurrency.instanceMemoryMB: expects an int, got '2048'")


def test_catches_a_read_only_property_set(plant: Plant) -> None:
    errors = plant(
        "modules/storage.bicep", "accessTier: 'Hot'\n", "accessTier: 'Hot'\n    creationTime: 'x'\n"
    )
    _caught(errors, "properties.creationTime: is read-only")


def test_catches_an_api_version_that_does_not_exist(plant: Plant) -> None:
    errors = plant(
        "modules/storage.bicep",
        "'Microsoft.Storage/storageAccounts@2023-05-01' = {",
        "'Microsoft.Storage/storageAccounts@2023-05-02' = {",
    )
    _caught(errors, "Microsoft.Storage/storageAccounts@2023-05-02 does not exist")


def test_catches_a_preview_api_version_with_a_later_ga(plant: Plant) -> None:
    errors = plant(
        "modules/identity.bicep",
        "userAssignedIdentities@2023-01-31",
        "userAssignedIdentities@2022-01-31-preview",
    )
    _caught(errors, "is a preview apiVersion; GA versions exist: 2023-01-31")


def test_catches_a_missing_required_property(plant: Plant) -> None:
    errors = plant("modules/roles.bicep", "    principalId: appPrincipalId\n", "")
    _caught(errors, "properties.principalId: is required")


def test_catches_a_resource_at_a_scope_it_cannot_deploy_to(plant: Plant) -> None:
    errors = plant(
        "modules/identity.bicep",
        "output id string",
        "resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {\n"
        "  name: 'rg-planted'\n  location: location\n}\n\noutput id string",
    )
    _caught(errors, "Microsoft.Resources/resourceGroups cannot be deployed at resourceGroup")


def test_catches_a_role_that_is_not_a_confirmed_built_in(plant: Plant) -> None:
    errors = plant(
        "modules/roles.bicep",
        "monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'",
        "monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055ec'",
    )
    planted = "3913510d-42f4-4e42-8a64-420c390055ec"
    _caught(errors, f"roles.bicep:appTelemetry: role {planted} is not a built-in role")
    _caught(errors, f"modules/roles.bicep: {planted} is not a built-in role")


def test_catches_a_site_config_property_flex_rejects(plant: Plant) -> None:
    errors = plant(
        "modules/functionapp.bicep",
        "http20Enabled: true\n",
        "http20Enabled: true\n      ftpsState: 'Disabled'\n",
    )
    _caught(errors, "properties.siteConfig.ftpsState: ARM rejects this siteConfig property on Flex")


def test_catches_a_maximum_instance_count_below_the_flex_floor(plant: Plant) -> None:
    errors = plant("main.bicep", "param maximumInstanceCount int = 40", "param maximumInstanceCount int = 4")
    _caught(errors, "maximumInstanceCount = 4 (warning): Flex Consumption documented the lowest")


def test_reports_a_type_it_has_no_schema_for_as_unchecked(tmp_path: Path, schemas: Schemas) -> None:
    """A resource type schemas.json does not know is reported (and skipped), never passed silently."""
    infra = tmp_path / "infra"
    infra.mkdir()
    (infra / "workbook.bicep").write_text(
        "param location string\n\n"
        "resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {\n"
        "  name: guid('workbook')\n  location: location\n  kind: 'shared'\n}\n",
        encoding="utf-8",
    )
    (declaration,) = declarations(infra)
    (finding,) = check_declaration(declaration, schemas)
    assert finding.kind == "unchecked"
    assert "schemas.json has no type Microsoft.Insights/workbooks" in finding.message
