"""The GitHub workflows' contract with the rest of the repository (make workflow-check runs zizmor and
the workflow schema on them): actions pinned by commit, CI runs the README's test command, and the
deployment workflow logs in with a federated credential and passes every variable
infra/main.parameters.json reads. No YAML library is installed: the few lines checked are matched."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.infra.bicep_model import INFRA_DIR, REPO_ROOT

pytestmark = pytest.mark.infra

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
DEPLOY = WORKFLOWS / "azure-dev.yml"
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", re.MULTILINE)
PINNED = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+)@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"^\s+# v\d+(\.\d+)*$")
#: A workflow of this repository (self-repository or workspace-relative form): runs at the caller's commit.
LOCAL = ("$/", "./")
#: What `azd pipeline config` stores as repository variables, and azd's login needs.
AZD_VARIABLES = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_ENV_NAME",
    "AZURE_LOCATION",
)
#: Set by azd itself from the logged-in principal.
SET_BY_AZD = frozenset({"AZURE_PRINCIPAL_ID"})
#: Set by the deployment workflow itself, whatever the repository's variables say.
SET_BY_THE_PIPELINE = {"GRANT_DEPLOYER_ACCESS": '"false"'}


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", [CI, DEPLOY], ids=lambda path: path.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(path: Path) -> None:
    uses = [(ref, comment) for ref, comment in USES.findall(_text(path)) if not ref.startswith(LOCAL)]
    assert uses, f"{path.name} uses no action"
    for reference, comment in uses:
        assert PINNED.match(reference), f"{path.name}: {reference} is not pinned to a 40-hex commit"
        assert VERSION_COMMENT.match(comment), f"{path.name}: {reference} lacks its '# vX.Y.Z' comment"


def test_an_action_is_pinned_to_the_same_commit_everywhere() -> None:
    pins: dict[str, set[str]] = {}
    for path in (CI, DEPLOY):
        for reference, _ in USES.findall(_text(path)):
            if reference.startswith(LOCAL):
                continue
            match = PINNED.match(reference)
            assert match is not None
            pins.setdefault(match["action"], set()).add(match["sha"])
    assert {action: shas for action, shas in pins.items() if len(shas) > 1} == {}


def test_ci_runs_make_test_read_only_without_persisted_credentials() -> None:
    text = _text(CI)
    assert re.search(r"^\s+run: make test$", text, re.MULTILINE)
    assert re.search(r"^permissions:\n  contents: read\n", text, re.MULTILINE)
    assert text.count("persist-credentials: false") == text.count("actions/checkout@")
    assert re.search(r"^  push:", text, re.MULTILINE)
    assert re.search(r"^  pull_request:", text, re.MULTILINE)


def test_deploy_logs_in_with_a_federated_credential_and_no_secret() -> None:
    text = _text(DEPLOY)
    assert re.search(r"^permissions: \{\}$", text, re.MULTILINE), "no workflow-wide permission"
    assert re.search(r"^\s+id-token: write\b", text, re.MULTILINE)
    assert re.search(r"^\s+contents: read$", text, re.MULTILINE)
    assert "--federated-credential-provider github" in text
    assert "secrets." not in text
    assert "persist-credentials: false" in text
    for name in AZD_VARIABLES:
        assert f"{name}: ${{{{ vars.{name} }}}}" in text, name
    assert re.search(r"^\s+run: azd provision --no-prompt$", text, re.MULTILINE)
    assert re.search(r"^\s+run: azd deploy --no-prompt$", text, re.MULTILINE)


def test_deploy_passes_every_variable_the_parameters_file_reads() -> None:
    """A parameter fed from an azd variable gets it in the pipeline too, from the repository's
    variables (azure.yaml lists the optional ones for azd pipeline config)."""
    parameters = _text(INFRA_DIR / "main.parameters.json")
    json.loads(parameters)  # the file stays valid JSON
    read = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)(?:=[^}]*)?\}", parameters)) - SET_BY_AZD
    text = _text(DEPLOY)
    missing = sorted(
        name
        for name in read
        if f"{name}: ${{{{ vars.{name} }}}}" not in text
        and f"{name}: {SET_BY_THE_PIPELINE.get(name)}" not in text
    )
    assert missing == []
    azure_yaml = _text(REPO_ROOT / "azure.yaml")
    optional = sorted(read - set(AZD_VARIABLES) - set(SET_BY_THE_PIPELINE))
    assert [name for name in optional if not re.search(rf"^\s+- {name}$", azure_yaml, re.MULTILINE)] == []


def test_deploy_runs_only_after_ci_passed_on_the_same_commit() -> None:
    """The deployment calls CI itself (a local reusable workflow runs from the caller's commit) and
    needs it: a commit that fails CI is never deployed, whatever else happened on main."""
    text = _text(DEPLOY)
    assert re.search(
        r"^  ci:\n(?:    .*\n)*?    uses: (?:\$|\.)/\.github/workflows/ci\.yml$", text, re.MULTILINE
    )
    assert re.search(r"^  deploy:\n(?:    .*\n)*?    needs: ci$", text, re.MULTILINE)
    assert "workflow_run" not in text  # would deploy from a run of another commit's context
    assert re.search(r"^  workflow_call:$", _text(CI), re.MULTILINE)


def test_the_called_ci_and_the_push_ci_do_not_cancel_each_other() -> None:
    """Called, CI's github.workflow is the caller's name: the two runs on one push get two groups."""
    assert re.search(
        r"^  group: ci-\$\{\{ github\.workflow \}\}-\$\{\{ github\.ref \}\}$", _text(CI), re.MULTILINE
    )


def test_deploy_runs_in_a_github_environment_that_can_require_approval() -> None:
    assert re.search(r"^  deploy:\n(?:    .*\n)*?    environment: production$", _text(DEPLOY), re.MULTILINE)


def test_the_pipeline_identity_gets_no_data_plane_access() -> None:
    """azd's deployer grants are for a person's own azd up; the pipeline turns them off."""
    parameters = json.loads(_text(INFRA_DIR / "main.parameters.json"))["parameters"]
    assert parameters["grantDeployerAccess"]["value"] == "${GRANT_DEPLOYER_ACCESS=true}"
    assert 'GRANT_DEPLOYER_ACCESS: "false"' in _text(DEPLOY)
