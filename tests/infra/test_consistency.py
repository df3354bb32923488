"""Code and infrastructure agree: the settings the code reads are set (keyless), the names of the
containers and queues match, nothing carries a key, the runtime versions line up. Each check also
runs on a drifted copy of the repository to show that it catches what it claims to."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.infra import consistency
from tests.infra.bicep_model import INFRA_DIR, REPO_ROOT, Deployment, Template, load_deployment

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return load_deployment(INFRA_DIR)


@pytest.fixture(scope="module")
def settings(deployment: Deployment) -> dict[str, object]:
    return consistency.app_settings(deployment)


def _fail(problems: list[str]) -> str:
    return "\n".join(problems)


def test_settings_the_code_requires_are_set(settings: dict[str, object]) -> None:
    problems = consistency.check_required_settings(settings)
    assert not problems, _fail(problems)


def test_every_infra_setting_is_declared_by_the_code(settings: dict[str, object]) -> None:
    problems = consistency.check_app_settings_declared(settings)
    assert not problems, _fail(problems)


def test_infra_settings_pass_the_apps_validation(settings: dict[str, object]) -> None:
    problems = consistency.check_app_settings_validate(settings)
    assert not problems, _fail(problems)


def test_design_settings_are_set_explicitly(settings: dict[str, object]) -> None:
    """DESIGN.md's settings are all in the Bicep (defaults made explicit), except the key."""
    for name in (
        "LANGUAGE_ENDPOINT",
        "LANGUAGE_API_VERSION",
        "ARCHIVE_CONTAINER",
        "JOBS_QUEUE",
        "EVENTS_QUEUE",
        "POLL_INITIAL_DELAY_SECONDS",
        "POLL_MAX_DELAY_SECONDS",
        "SWEEP_SCHEDULE",
        "SWEEP_GRACE_SECONDS",
        "AzureWebJobsStorage__blobServiceUri",
        "AzureWebJobsStorage__queueServiceUri",
        "AzureWebJobsStorage__tableServiceUri",
        "AzureWebJobsStorage__credential",
        "AzureWebJobsStorage__clientId",
        "AZURE_CLIENT_ID",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        "PYTHON_ENABLE_OPENTELEMETRY",
    ):
        assert name in settings, name
    assert "LANGUAGE_API_KEY" not in settings


def test_container_and_queue_names_agree(deployment: Deployment) -> None:
    problems = consistency.check_names(deployment)
    assert not problems, _fail(problems)


def test_no_key_anywhere(deployment: Deployment) -> None:
    problems = consistency.check_keyless(deployment, INFRA_DIR)
    assert not problems, _fail(problems)


def test_role_assignments_are_scoped_and_never_broad(deployment: Deployment) -> None:
    problems = consistency.check_role_assignments(deployment, INFRA_DIR)
    assert not problems, _fail(problems)


def test_runtime_versions_agree(deployment: Deployment) -> None:
    problems = consistency.check_runtime(deployment, REPO_ROOT)
    assert not problems, _fail(problems)


def test_azd_wiring(deployment: Deployment) -> None:
    problems = consistency.check_azd_wiring(deployment, REPO_ROOT)
    assert not problems, _fail(problems)


def test_documented_defaults_are_the_bicep_defaults(deployment: Deployment) -> None:
    problems = consistency.check_documented_defaults(deployment, REPO_ROOT / "docs" / "reference.md")
    assert not problems, _fail(problems)


def test_telemetry_is_on_and_streamed_by_the_worker(deployment: Deployment) -> None:
    problems = consistency.check_telemetry(deployment, REPO_ROOT)
    assert not problems, _fail(problems)


def test_alerts_and_workbook_query_only_what_the_code_emits() -> None:
    problems = consistency.check_telemetry_names(INFRA_DIR)
    assert not problems, _fail(problems)


def test_alert_rules_are_documented() -> None:
    """Every alert rule the Bicep creates has its row in docs/operations.md's table of alerts."""
    rules = Template.load(INFRA_DIR / "modules" / "alerts.bicep").scope({"jobsQueueName": "q"})["rules"]
    assert isinstance(rules, list)
    docs = (REPO_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([a-z0-9-]+)` \|", docs, re.MULTILINE))
    assert {rule["name"] for rule in rules} <= rows


# --- the checks catch drift --------------------------------------------------------------------------

Edit = Callable[[str, str, str], None]


@pytest.fixture
def drifted(tmp_path: Path) -> tuple[Path, Edit]:
    """A copy of everything the checks read, and a way to edit it."""
    shutil.copytree(INFRA_DIR, tmp_path / "infra")
    for name in ("host.json", "pyproject.toml", "azure.yaml", "docs/reference.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    assert consistency.run_all(tmp_path / "infra", tmp_path) == [], "the undrifted copy must be consistent"

    def edit(relative: str, old: str, new: str) -> None:
        path = tmp_path / relative
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {relative}: update the drift case"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return tmp_path, edit


DRIFTS = [
    pytest.param(
        "infra/main.bicep",
        "  LANGUAGE_ENDPOINT: languageAccess.outputs.endpoint\n",
        "",
        "the code requires LANGUAGE_ENDPOINT",
        id="required-setting-removed",
    ),
    pytest.param(
        "infra/modules/functionapp.bicep",
        "  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint\n",
        "",
        "the code requires AzureWebJobsStorage",
        id="identity-storage-incomplete",
    ),
    pytest.param(
        "infra/modules/functionapp.bicep",
        "  AZURE_CLIENT_ID: identityClientId\n",
        "",
        "AZURE_CLIENT_ID",
        id="client-id-removed",
    ),
    pytest.param(
        "infra/main.bicep",
        "param jobsQueueName string = 'language-jobs'",
        "param jobsQueueName string = 'jobs'",
        "JOBS_QUEUE: the code's default is 'language-jobs'",
        id="queue-default-renamed",
    ),
    pytest.param(
        "infra/main.bicep",
        "param archiveContainerName string = 'entity-archive'",
        "param archiveContainerName string = 'archive'",
        "ARCHIVE_CONTAINER: the code's default is 'entity-archive'",
        id="container-default-renamed",
    ),
    pytest.param(
        "infra/main.bicep",
        "var ledgerContainerName = '${archiveContainerName}-ledger'",
        "var ledgerContainerName = '${archiveContainerName}-journal'",
        "ledger container 'entity-archive-ledger'",
        id="ledger-name-drift",
    ),
    pytest.param(
        "infra/modules/storage.bicep",
        "  jobsQueueName\n  poisonQueueName\n]",
        "  jobsQueueName\n]",
        "poison queue 'language-jobs-poison'",
        id="poison-queue-not-created",
    ),
    pytest.param(
        "infra/modules/storage.bicep",
        "eventsEnabled ? [eventsQueueName] : []",
        "[]",
        "events queue 'archive-events'",
        id="events-queue-not-created",
    ),
    pytest.param(
        "infra/main.bicep",
        "  EVENTS_QUEUE: eventsQueueName\n",
        "",
        "EVENTS_QUEUE is not set",
        id="events-setting-missing",
    ),
    pytest.param(
        "infra/main.bicep",
        "  JOBS_QUEUE: jobsQueueName\n",
        "  JOBS_QUEUE: jobsQueueName\n  EXTRA_SETTING: 'x'\n",
        "EXTRA_SETTING, which shared.settings.SETTINGS does not declare",
        id="undeclared-setting",
    ),
    pytest.param(
        "infra/main.bicep",
        "  JOBS_QUEUE: jobsQueueName\n",
        "  JOBS_QUEUE: jobsQueueName\n  LANGUAGE_API_KEY: 'x'\n",
        "LANGUAGE_API_KEY",
        id="language-key-set",
    ),
    pytest.param(
        "infra/modules/functionapp.bicep",
        "  AZURE_CLIENT_ID: identityClientId\n",
        "  AZURE_CLIENT_ID: identityClientId\n  FUNCTIONS_WORKER_RUNTIME: 'python'\n",
        "Flex Consumption rejects it",
        id="flex-rejected-setting",
    ),
    pytest.param(
        "infra/main.bicep",
        "param pollMaxDelaySeconds string = '300'",
        "param pollMaxDelaySeconds string = 'soon'",
        "the app would refuse the infra's settings: POLL_MAX_DELAY_SECONDS",
        id="malformed-setting",
    ),
    pytest.param(
        "infra/main.bicep",
        "  POLL_INITIAL_DELAY_SECONDS: pollInitialDelaySeconds\n",
        "  POLL_INITIAL_DELAY_SECONDS: 5\n",
        "POLL_INITIAL_DELAY_SECONDS = 5: app setting values are strings",
        id="non-string-setting",
    ),
    pytest.param(
        "infra/modules/storage.bicep",
        "allowSharedKeyAccess: false",
        "allowSharedKeyAccess: true",
        "allowSharedKeyAccess must be False",
        id="shared-key-enabled",
    ),
    pytest.param(
        "infra/modules/monitoring.bicep",
        "    DisableLocalAuth: true\n",
        "",
        "DisableLocalAuth must be True",
        id="telemetry-local-auth",
    ),
    pytest.param(
        "infra/modules/roles.bicep",
        "  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'\n",
        "  monitoringMetricsPublisher: 'a97b65f3-24c7-4388-baec-2e87135dc908'\n",
        "Cognitive Services User",
        id="forbidden-role",
    ),
    pytest.param(
        "infra/modules/roles.bicep",
        "  scope: applicationInsights\n",
        "",
        "appTelemetry has no scope",
        id="unscoped-role-assignment",
    ),
    pytest.param(
        "infra/modules/functionapp.bicep",
        "var pythonVersion = '3.11'",
        "var pythonVersion = '3.12'",
        "Bicep deploys Python 3.12, pyproject.toml type-checks for 3.11",
        id="python-version-drift",
    ),
    pytest.param(
        "host.json",
        '"version": "[4.*, 5.0.0)"',
        '"version": "[2.*, 3.0.0)"',
        "extensionBundle.version",
        id="extension-bundle-drift",
    ),
    pytest.param(
        "azure.yaml",
        "  api:\n",
        "  web:\n",
        "azure.yaml services ['web']",
        id="azd-service-renamed",
    ),
    pytest.param(
        "infra/main.bicep",
        "param languageRole string = 'Reader'",
        "param languageRole string = 'Writer'",
        "reference.md documents languageRole = 'Reader', the Bicep default is 'Writer'",
        id="documented-default-drift",
    ),
    pytest.param(
        "infra/main.bicep",
        "param alertEmail string = ''",
        "param alertEmail string = ''\n\nparam undocumented bool = true",
        "reference.md does not document main.bicep parameter 'undocumented'",
        id="undocumented-parameter",
    ),
    pytest.param(
        "infra/main.bicep",
        "    alertEmail: alertEmail\n",
        "    alertMail: alertEmail\n",
        "module alerts passes 'alertMail'",
        id="module-parameter-typo",
    ),
    pytest.param(
        "host.json",
        '"telemetryMode": "OpenTelemetry",',
        "",
        "host.json telemetryMode is None",
        id="telemetry-mode-removed",
    ),
    pytest.param(
        "infra/modules/functionapp.bicep",
        "  PYTHON_ENABLE_OPENTELEMETRY: 'true'\n",
        "",
        "PYTHON_ENABLE_OPENTELEMETRY is None",
        id="worker-telemetry-removed",
    ),
    pytest.param(
        "infra/modules/alerts.bicep",
        "ledgerOverdue: 'archiver.ledger.overdue'",
        "ledgerOverdue: 'archiver.ledger.late'",
        "alerts.bicep names 'archiver.ledger.late'",
        id="metric-renamed-in-alerts",
    ),
    pytest.param(
        "infra/modules/workbook.bicep",
        "  polls: 'archiver.polls'\n",
        "",
        "workbook.bicep does not name the metric 'archiver.polls'",
        id="metric-missing-from-workbook",
    ),
    pytest.param(
        "infra/modules/alerts.bicep",
        "lagSeconds: 'lagSeconds'",
        "lagSeconds: 'lag'",
        "dimensions.lagSeconds = 'lag' is not a name the code emits",
        id="dimension-renamed",
    ),
    pytest.param(
        "infra/modules/workbook.bicep",
        "${metrics.jobsArchived}",
        "${metrics.jobArchived}",
        "uses ${metrics.jobArchived}, which its metrics does not declare",
        id="metric-reference-typo",
    ),
    pytest.param(
        "infra/modules/workbook.bicep",
        "customDimensions.${dimensions.status}",
        "customDimensions.jobStatus",
        "queries customDimensions.jobStatus, which the code never writes",
        id="dimension-literal-typo",
    ),
]


@pytest.mark.parametrize(("relative", "old", "new", "expected"), DRIFTS)
def test_checks_catch_drift(
    drifted: tuple[Path, Edit], relative: str, old: str, new: str, expected: str
) -> None:
    root, edit = drifted
    edit(relative, old, new)
    problems = consistency.run_all(root / "infra", root)
    assert any(expected in problem for problem in problems), _fail(problems) or "no problem reported"
