"""Day-2 operations in the Bicep, evaluated both ways: events on and off, immutability on and off,
the neighbours' identities, least privilege for the app and the deployer, the archive's lifecycle,
the liveness and backlog alerts; the resources of every variant hold up against the ARM types and
checkov finds nothing in the flipped defaults."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest

from shared.request_budget import HOST_CONTAINER
from shared.settings import SETTINGS
from shared.telemetry import QueueRole
from tests.infra.arm_types import SCHEMAS_PATH, Schemas, check_declaration, declarations
from tests.infra.bicep_model import INFRA_DIR, REPO_ROOT, Deployment, Template, load_deployment
from tests.infra.consistency import app_settings, check_app_settings_validate, check_names
from tests.infra.day2 import grants, module_resources

pytestmark = pytest.mark.infra

APP: Final = "identity.outputs.principalId"
QUEUES: Final = "Microsoft.Storage/storageAccounts/queueServices/queues"
CONTAINERS: Final = "Microsoft.Storage/storageAccounts/blobServices/containers"
POLICIES: Final = "Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies"
NEIGHBOURS: Final = {"upstreamPrincipalIds": ["upstream-1"], "consumerPrincipalIds": ["consumer-1"]}
EVENTS_OFF: Final = {"eventsEnabled": False}
IMMUTABLE: Final = {"archiveImmutableDays": 365}
CHECKOV: Final = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"


def held_by(principal: str, deployment: Deployment) -> set[tuple[str, tuple[str, str]]]:
    return {(g.role, g.scope) for g in grants(deployment) if g.principal == principal}


def storage(deployment: Deployment) -> dict[str, Any]:
    return module_resources(deployment.modules["storage"])


# --- events on and off ---------------------------------------------------------------------------------


def test_events_are_on_by_default_with_their_time_to_live() -> None:
    deployment = load_deployment(INFRA_DIR)
    settings = app_settings(deployment)

    assert settings["EVENTS_QUEUE"] == "archive-events"
    assert settings["EVENTS_TIME_TO_LIVE_SECONDS"] == next(
        spec.default for spec in SETTINGS if spec.name == "EVENTS_TIME_TO_LIVE_SECONDS"
    )
    assert "archive-events" in deployment.created_names(QUEUES)
    assert held_by(APP, deployment) >= {
        ("Storage Queue Data Message Sender", ("queue", "archive-events")),
        ("Storage Queue Data Reader", ("queue", "archive-events")),
    }


def test_events_off_leave_events_queue_unset_and_neither_the_queue_nor_a_role_on_it_created() -> None:
    deployment = load_deployment(INFRA_DIR, {**EVENTS_OFF, **NEIGHBOURS, "principalId": "me"})
    settings = app_settings(deployment)

    assert "EVENTS_QUEUE" not in settings
    assert "EVENTS_TIME_TO_LIVE_SECONDS" not in settings
    assert deployment.created_names(QUEUES) == {"language-jobs", "language-jobs-poison"}
    assert [g for g in grants(deployment) if g.scope == ("queue", "archive-events")] == []
    assert check_names(deployment) == []
    assert check_app_settings_validate(settings) == []


def test_the_events_backlog_alert_exists_only_with_events() -> None:
    def rule_names(events: bool) -> set[str]:
        return set(alert_rules(eventsEnabled=events))

    assert "events-queue-backlog" in rule_names(True)
    assert "events-queue-backlog" not in rule_names(False)


# --- least privilege -------------------------------------------------------------------------------------


def test_the_app_owns_blobs_only_in_the_host_s_containers_and_the_deployment_container() -> None:
    held = held_by(APP, load_deployment(INFRA_DIR))
    owner = {scope for role, scope in held if role == "Storage Blob Data Owner"}

    assert owner == {
        ("container", HOST_CONTAINER),  # the host's locks and the app's request budget
        ("container", "azure-webjobs-secrets"),
        ("container", "app-package"),
    }
    assert {scope for role, scope in held if role == "Storage Blob Data Contributor"} == {
        ("container", "entity-archive"),
        ("container", "entity-archive-ledger"),
    }
    assert not [scope for _, scope in held if scope[0] == "account" and "Blob" in _]


def test_the_account_wide_blob_owner_is_an_explicit_opt_in() -> None:
    held = held_by(APP, load_deployment(INFRA_DIR, {"hostBlobOwnerOnAccount": True}))
    assert [scope[0] for role, scope in held if role == "Storage Blob Data Owner"].count("account") == 1


def test_every_queue_grant_of_the_app_is_scoped_to_one_queue() -> None:
    held = held_by(APP, load_deployment(INFRA_DIR))
    queue_roles = {(role, scope) for role, scope in held if "Queue" in role}
    assert {scope[0] for _, scope in queue_roles} == {"queue"}


def test_the_deployer_gets_data_access_only_when_granted_and_never_the_deployment_package() -> None:
    granted = held_by("me", load_deployment(INFRA_DIR, {"principalId": "me"}))
    withheld = held_by("me", load_deployment(INFRA_DIR, {"principalId": "me", "grantDeployerAccess": False}))

    assert granted
    assert ("Storage Blob Data Contributor", ("container", "app-package")) not in granted
    assert ("Storage Queue Data Message Sender", ("queue", "archive-events")) in granted
    assert withheld == set()


# --- the neighbours ----------------------------------------------------------------------------------


def test_no_neighbour_is_granted_anything_by_default() -> None:
    principals = {g.principal for g in grants(load_deployment(INFRA_DIR))}
    assert principals == {APP}


def test_upstream_may_only_send_to_the_jobs_queue_and_submit_language_jobs() -> None:
    held = held_by("upstream-1", load_deployment(INFRA_DIR, NEIGHBOURS))
    assert {role for role, _ in held} == {
        "Storage Queue Data Message Sender",
        "Cognitive Services Language Reader",
    }
    assert ("Storage Queue Data Message Sender", ("queue", "language-jobs")) in held
    assert {scope[0] for _, scope in held} == {"queue", "language"}


def test_consumers_receive_events_and_read_the_archive_only() -> None:
    held = held_by("consumer-1", load_deployment(INFRA_DIR, NEIGHBOURS))
    assert held == {
        ("Storage Queue Data Message Processor", ("queue", "archive-events")),
        ("Storage Blob Data Reader", ("container", "entity-archive")),
    }


def test_without_events_consumers_only_read_the_archive() -> None:
    held = held_by("consumer-1", load_deployment(INFRA_DIR, {**NEIGHBOURS, **EVENTS_OFF}))
    assert held == {("Storage Blob Data Reader", ("container", "entity-archive"))}


def test_the_upstream_language_role_can_submit_analyze_text_jobs_and_list_no_keys() -> None:
    if not SCHEMAS_PATH.is_file():
        pytest.skip(f"{SCHEMAS_PATH} is absent: the role's data actions are not checked")
    roles = Schemas.load().built_in_roles
    reader = roles["7628b7b8-a8b2-4cdc-b46f-e9b35248918e"]
    assert reader["name"] == "Cognitive Services Language Reader"
    assert "Microsoft.CognitiveServices/accounts/Language/analyze-text/jobs/action" in reader["dataActions"]
    assert not any("listkeys" in action.lower() for action in reader.get("actions", []))


# --- retention and immutability -------------------------------------------------------------------------


def archive_rule(deployment: Deployment) -> dict[str, Any]:
    policy = storage(deployment)["lifecycle"]["body"]["properties"]["policy"]
    [rule] = [rule for rule in policy["rules"] if rule["name"] == "tier-archive"]
    definition: dict[str, Any] = rule["definition"]
    return definition


def test_the_archive_tiers_to_cool_then_cold_and_is_never_deleted_by_default() -> None:
    rule = archive_rule(load_deployment(INFRA_DIR))
    assert rule["filters"]["prefixMatch"] == ["entity-archive/"]
    assert rule["actions"]["baseBlob"] == {
        "tierToCool": {"daysAfterModificationGreaterThan": 30},
        "tierToCold": {"daysAfterModificationGreaterThan": 90},
    }


def test_a_deletion_age_adds_the_delete_action() -> None:
    rule = archive_rule(load_deployment(INFRA_DIR, {"archiveDeleteAfterDays": 2555}))
    assert rule["actions"]["baseBlob"]["delete"] == {"daysAfterModificationGreaterThan": 2555}


def test_immutability_is_off_by_default() -> None:
    resources = storage(load_deployment(INFRA_DIR))
    assert resources["archiveContainer"]["body"]["properties"]["immutableStorageWithVersioning"] == {
        "enabled": False
    }
    assert resources["archiveImmutability"] is None
    assert not load_deployment(INFRA_DIR).created(POLICIES)


def test_immutability_protects_every_archive_version_for_the_given_days_and_nothing_else() -> None:
    deployment = load_deployment(INFRA_DIR, IMMUTABLE)
    resources = storage(deployment)

    assert resources["archiveContainer"]["body"]["properties"]["immutableStorageWithVersioning"] == {
        "enabled": True
    }
    [(_, _, policy)] = deployment.created(POLICIES)
    assert policy["properties"]["immutabilityPeriodSinceCreationInDays"] == 365
    # Version-level immutability needs blob versioning on the account.
    assert resources["blobService"]["body"]["properties"]["isVersioningEnabled"] is True
    # The ledger and the host's containers (rewritten constantly) are never write-once.
    others = [body for _, symbol, body in deployment.created(CONTAINERS) if symbol == "containers"]
    assert others
    assert all("immutableStorageWithVersioning" not in body["properties"] for body in others)


# --- alerts ------------------------------------------------------------------------------------------


def alert_rules(**arguments: object) -> dict[str, dict[str, Any]]:
    rules = Template.load(INFRA_DIR / "modules" / "alerts.bicep").scope({"jobsQueueName": "q", **arguments})[
        "rules"
    ]
    assert isinstance(rules, list)
    return {rule["name"]: rule for rule in rules}


def test_the_heartbeat_alert_fires_on_absence_over_three_sweep_periods() -> None:
    rule = alert_rules()["heartbeat-missing"]
    # count() over no rows is one row holding 0: the log search alert sees the absence.
    assert rule["query"].endswith("| summarize runs = count()")
    assert (rule["operator"], rule["threshold"], rule["measure"]) == ("LessThan", 1, "runs")
    assert rule["window"] == "PT15M"  # three periods of the default SWEEP_SCHEDULE (every 5 minutes)
    assert alert_rules(heartbeatMissingMinutes=60)["heartbeat-missing"]["window"] == "PT60M"


def test_the_backlog_alerts_watch_the_queue_roles_the_code_emits() -> None:
    roles = {role.value for role in QueueRole}
    for path in (INFRA_DIR / "modules" / "alerts.bicep", INFRA_DIR / "modules" / "workbook.bicep"):
        named = set(
            re.findall(r'customDimensions\.\$\{dimensions\.queue\}\) == "([a-z]+)"', path.read_text("utf-8"))
        )
        assert named <= roles, path.name
    rules = alert_rules()
    assert rules["jobs-queue-oldest-message"]["threshold"] == 1800
    assert rules["poison-queue-not-empty"]["threshold"] == 0


# --- every variant against the ARM types and checkov -----------------------------------------------------

VARIANTS: Final = [
    pytest.param(EVENTS_OFF, id="events-off"),
    pytest.param({**IMMUTABLE, "archiveDeleteAfterDays": 2555}, id="immutable-with-deletion"),
    pytest.param({**NEIGHBOURS, "principalId": "me"}, id="neighbours-and-deployer"),
    pytest.param(
        {"vnetEnabled": True, **EVENTS_OFF, **IMMUTABLE, **NEIGHBOURS}, id="vnet-events-off-immutable"
    ),
    pytest.param({"hostBlobOwnerOnAccount": True}, id="account-wide-host-owner"),
]


@pytest.mark.skipif(not SCHEMAS_PATH.is_file(), reason=f"{SCHEMAS_PATH} is absent: ARM types not checked")
@pytest.mark.parametrize("arguments", VARIANTS)
def test_every_variant_matches_the_arm_types(arguments: dict[str, object]) -> None:
    schemas = Schemas.load()
    found = [finding for d in declarations(INFRA_DIR, arguments) for finding in check_declaration(d, schemas)]
    errors = [str(finding) for finding in found if finding.kind == "error"]
    assert not errors, "\n".join(errors)


#: (parameter, flipped default): checkov renders only the defaults, so a copy with these flipped
#: covers the other way of each switch (make infra-check covers the defaults).
FLIPPED: Final = [
    ("param vnetEnabled bool = false", "param vnetEnabled bool = true"),
    ("param privateAccessOnly bool = false", "param privateAccessOnly bool = true"),
    ("param eventsEnabled bool = true", "param eventsEnabled bool = false"),
    ("param archiveImmutableDays int = 0", "param archiveImmutableDays int = 365"),
    ("param archiveDeleteAfterDays int = 0", "param archiveDeleteAfterDays int = 2555"),
]


@pytest.mark.skipif(not CHECKOV.is_file(), reason=f"{CHECKOV} is absent (make deps installs it)")
def test_checkov_finds_nothing_with_the_switches_flipped(tmp_path: Path) -> None:
    infra = tmp_path / "infra"
    shutil.copytree(INFRA_DIR, infra)
    flipped: set[str] = set()
    for path in infra.rglob("*.bicep"):  # a module's parameter of the same name too
        text = path.read_text(encoding="utf-8")
        for old, new in FLIPPED:
            if old in text:
                flipped.add(old)
                text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    assert flipped == {old for old, _ in FLIPPED}

    ran = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(infra),
            "--framework",
            "bicep",
            "--skip-download",
            "--compact",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Failed checks: 0" in ran.stdout, ran.stdout
    assert "Parsing errors" not in ran.stdout, ran.stdout


def test_grants_read_the_principals_as_given() -> None:
    """The reader itself: a principal id given as an argument comes back as that text."""
    assert {g.principal for g in grants(load_deployment(INFRA_DIR, NEIGHBOURS))} == {
        APP,
        "upstream-1",
        "consumer-1",
    }
