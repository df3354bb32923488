"""Every resource body in infra/ holds up against the Azure resource type definitions the Bicep compiler
uses (../shared/azure-types/schemas.json), and the checker catches each kind of mistake planted into a
copy of the real Bicep."""

from __future__ import annotations

import shutil
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

PLANTED = "3913510d-42f4-4e42-8a64-420c390055ec"  # Monitoring Metrics Publisher's GUID, last digit changed

#: (file under infra/, text, replacement, what the checker must say): one mistake per case.
MISTAKES = [
    pytest.param(
        "modules/storage.bicep",
        "allowBlobPublicAccess: false",
        "allowBlobPublicAcess: false",
        ["properties.allowBlobPublicAcess: is not a property of StorageAccountPropertiesCreate"],
        id="misspelled-property",
    ),
    pytest.param(
        "modules/storage.bicep",
        "publicAccess: 'None'",
        "publicAccess: 'Private'",
        ["properties.publicAccess: 'Private' is not one of ['Container', 'Blob', 'None']"],
        id="wrong-enum-value",
    ),
    pytest.param(
        "modules/functionapp.bicep",
        "instanceMemoryMB: instanceMemoryMB",
        "instanceMemoryMB: '2048'",
        ["scaleAndConcurrency.instanceMemoryMB: expects an int, got '2048'"],
        id="string-where-an-int-goes",
    ),
    pytest.param(
        "modules/storage.bicep",
        "accessTier: 'Hot'\n",
        "accessTier: 'Hot'\n    creationTime: 'x'\n",
        ["properties.creationTime: is read-only"],
        id="read-only-property-set",
    ),
    pytest.param(
        "modules/storage.bicep",
        "'Microsoft.Storage/storageAccounts@2023-05-01' = {",
        "'Microsoft.Storage/storageAccounts@2023-05-02' = {",
        ["Microsoft.Storage/storageAccounts@2023-05-02 does not exist"],
        id="api-version-that-does-not-exist",
    ),
    pytest.param(
        "modules/identity.bicep",
        "userAssignedIdentities@2023-01-31",
        "userAssignedIdentities@2022-01-31-preview",
        ["is a preview apiVersion; GA versions exist: 2023-01-31"],
        id="preview-api-version-with-a-later-ga",
    ),
    pytest.param(
        "modules/roles.bicep",
        "    principalId: appPrincipalId\n",
        "",
        ["properties.principalId: is required"],
        id="required-property-missing",
    ),
    pytest.param(
        "modules/identity.bicep",
        "output id string",
        "resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {\n"
        "  name: 'rg-planted'\n  location: location\n}\n\noutput id string",
        ["Microsoft.Resources/resourceGroups cannot be deployed at resourceGroup"],
        id="resource-at-a-scope-it-cannot-deploy-to",
    ),
    pytest.param(
        "modules/roles.bicep",
        "monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'",
        f"monitoringMetricsPublisher: '{PLANTED}'",
        [
            f"roles.bicep:appTelemetry: role {PLANTED} is not a built-in role",
            f"modules/roles.bicep: {PLANTED} is not a built-in role",
        ],
        id="role-not-a-confirmed-built-in",
    ),
    pytest.param(
        "modules/functionapp.bicep",
        "http20Enabled: true\n",
        "http20Enabled: true\n      ftpsState: 'Disabled'\n",
        ["properties.siteConfig.ftpsState: ARM rejects this siteConfig property on Flex"],
        id="site-config-property-flex-rejects",
    ),
    pytest.param(
        "main.bicep",
        "param maximumInstanceCount int = 40",
        "param maximumInstanceCount int = 4",
        ["maximumInstanceCount = 4 (warning): Flex Consumption documented the lowest"],
        id="maximum-instance-count-below-the-flex-floor",
    ),
]


@pytest.mark.parametrize(("relative", "old", "new", "expected"), MISTAKES)
def test_checker_catches_a_planted_mistake(
    tmp_path: Path, schemas: Schemas, relative: str, old: str, new: str, expected: list[str]
) -> None:
    infra = tmp_path / "infra"
    shutil.copytree(INFRA_DIR, infra)
    path = infra / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {relative}: update the planted case"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    findings = [finding for d in declarations(infra) for finding in check_declaration(d, schemas)]
    errors = _errors([*findings, *check_role_guids(infra, schemas)])
    for message in expected:
        assert any(message in error for error in errors), "\n".join(errors) or "no error reported"


def test_reports_a_type_it_has_no_schema_for_as_unchecked(tmp_path: Path, schemas: Schemas) -> None:
    """A resource type schemas.json does not know is reported (and skipped), never passed silently."""
    infra = tmp_path / "infra"
    infra.mkdir()
    # Key Vault is a type the reference data does not hold (its README lists what it holds).
    (infra / "vault.bicep").write_text(
        "param location string\n\n"
        "resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {\n"
        "  name: 'kv-archiver'\n  location: location\n}\n",
        encoding="utf-8",
    )
    (declaration,) = declarations(infra)
    (finding,) = check_declaration(declaration, schemas)
    assert finding.kind == "unchecked"
    assert "schemas.json has no type Microsoft.KeyVault/vaults" in finding.message
