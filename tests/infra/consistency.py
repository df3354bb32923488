"""Code/infra consistency checks. Each check takes what it reads (an infra directory, a parsed
deployment, file paths) and returns a list of problems, one readable line each; an empty list means
consistent. The real tests run them on the repository, the drift tests on a modified copy in a
temporary directory, so both exercise the same code.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from shared.settings import (
    SETTINGS,
    STORAGE_IDENTITY_SUFFIXES,
    STORAGE_SETTING,
    Settings,
    SettingsError,
    SettingSpec,
    load_settings,
)
from shared.telemetry import (
    ATTEMPT,
    CONNECTION_STRING_SETTING,
    CORRELATION_ID,
    DELAY_SECONDS,
    DEQUEUE_COUNT,
    JOB_ID,
    LAG_SECONDS,
    OUTCOME,
    QUEUE,
    REASON,
    RESULT,
    STATUS,
    Metric,
)
from tests.infra.bicep_model import (
    INFRA_DIR,
    REPO_ROOT,
    Deployment,
    Runtime,
    Template,
    load_deployment,
)

__all__ = [
    "app_settings",
    "check_app_settings_declared",
    "check_app_settings_validate",
    "check_azd_wiring",
    "check_documented_defaults",
    "check_keyless",
    "check_module_wiring",
    "check_names",
    "check_required_settings",
    "check_role_assignments",
    "check_runtime",
    "check_telemetry",
    "check_telemetry_names",
    "run_all",
]

SITES: Final = "Microsoft.Web/sites"
CONTAINERS: Final = "Microsoft.Storage/storageAccounts/blobServices/containers"
QUEUES: Final = "Microsoft.Storage/storageAccounts/queueServices/queues"
ROLE_ASSIGNMENTS: Final = "Microsoft.Authorization/roleAssignments"

#: Settings the code reads without a default that the cloud deployment must leave unset.
INTENTIONALLY_UNSET: Final = {
    "LANGUAGE_API_KEY": "unset means the app authenticates to Language with its managed identity (no key)",
}
#: Settings of the Functions host and the platform that the app's code does not read itself.
PLATFORM_SETTINGS: Final = frozenset(
    {
        "AZURE_CLIENT_ID",
        "PYTHON_ENABLE_OPENTELEMETRY",
        # The host writes its diagnostic events to tables; the app reads no table.
        f"{STORAGE_SETTING}__tableServiceUri",
    }
)
PLATFORM_PREFIXES: Final = ("APPLICATIONINSIGHTS_", "FUNCTIONS_")
#: Flex Consumption refuses these (runtime and content come from functionAppConfig instead).
FLEX_REJECTED_SETTINGS: Final = frozenset(
    {
        "FUNCTIONS_EXTENSION_VERSION",
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_WORKER_RUNTIME_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_CONTENTSHARE",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    }
)
#: Text that means a key or key-derived secret reaches (or could reach) the app.
KEY_MATERIAL: Final = (
    "LANGUAGE_API_KEY",
    "AccountKey",
    "listKeys",
    "listAccountSas",
    "listServiceSas",
    "SharedAccessKey",
    "SharedAccessSignature",
    "Ocp-Apim-Subscription-Key",
)
#: Built-in roles that are broader than this app may hold (control plane, key listing).
FORBIDDEN_ROLES: Final = {
    "a97b65f3-24c7-4388-baec-2e87135dc908": "Cognitive Services User (can list keys)",
    "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68": "Cognitive Services Contributor",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor (keys)",
    "81a9662b-bebf-436f-a333-f67b29880f12": "Storage Account Key Operator Service Role",
}
#: Python versions the Functions host 4.x runs (the only host on Flex Consumption), and the
#: extension bundle majors that host supports. Bundle 3.x is the first with the Storage extension 5.x,
#: which identity-based AzureWebJobsStorage__* connections for the queue trigger need.
SUPPORTED_PYTHON: Final = frozenset({"3.10", "3.11", "3.12", "3.13"})
SUPPORTED_BUNDLE_MAJORS: Final = frozenset({3, 4})
#: The attribute names the code gives its records and metrics (shared/telemetry.py).
TELEMETRY_DIMENSIONS: Final = frozenset(
    {
        JOB_ID,
        CORRELATION_ID,
        OUTCOME,
        STATUS,
        ATTEMPT,
        DEQUEUE_COUNT,
        LAG_SECONDS,
        DELAY_SECONDS,
        REASON,
        RESULT,
        QUEUE,
    }
)
#: Where the infra names the app's telemetry: a module, and the metrics it must name (all: the workbook).
TELEMETRY_MODULES: Final = {
    "alerts.bicep": {
        Metric.MESSAGES_POISONED,
        Metric.LEDGER_OVERDUE,
        Metric.JOBS_ARCHIVED,
        Metric.LANGUAGE_REQUESTS,
        Metric.SWEEP_RUNS,
        Metric.QUEUE_LENGTH,
        Metric.QUEUE_AGE,
    },
    "workbook.bicep": set(Metric),
}
#: A stand-in for deploy-time values when the infra's settings go through the app's validation.
RUNTIME_PLACEHOLDER: Final = "https://deploy-time-value.invalid"
#: ... and for the settings whose value has a form of its own.
RUNTIME_PLACEHOLDERS: Final = {
    CONNECTION_STRING_SETTING: (
        f"InstrumentationKey=deploy-time-value;IngestionEndpoint={RUNTIME_PLACEHOLDER}/"
    ),
}


# --- reading ---------------------------------------------------------------------------------------


def function_apps(deployment: Deployment) -> list[dict[str, object]]:
    """Evaluated bodies of the Flex Consumption sites (those with a functionAppConfig)."""
    apps = []
    for _, _, body in deployment.created(SITES):
        properties = body.get("properties")
        if isinstance(properties, dict) and "functionAppConfig" in properties:
            apps.append(properties)
    return apps


def app_settings(deployment: Deployment) -> dict[str, object]:
    """Name -> value of every app setting the function app gets (Runtime for deploy-time values)."""
    settings: dict[str, object] = {}
    for properties in function_apps(deployment):
        site_config = properties.get("siteConfig")
        entries = site_config.get("appSettings") if isinstance(site_config, dict) else None
        if isinstance(entries, Runtime):
            raise AssertionError(f"app settings are not evaluable from the Bicep: {entries.source}")
        for entry in entries or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                settings[str(entry["name"])] = entry.get("value")
    return settings


def _declared(specs: Iterable[SettingSpec]) -> set[str]:
    return {spec.name for spec in specs}


def _is_identity_storage_setting(name: str) -> bool:
    prefix = f"{STORAGE_SETTING}__"
    return name.startswith(prefix) and name.removeprefix(prefix) in STORAGE_IDENTITY_SUFFIXES


def _environ(settings: Mapping[str, object]) -> dict[str, str]:
    """The settings as the app's process would see them, deploy-time values stubbed."""
    return {
        name: value if isinstance(value, str) else RUNTIME_PLACEHOLDERS.get(name, RUNTIME_PLACEHOLDER)
        for name, value in settings.items()
        if value is not None
    }


def code_defaults() -> Settings:
    """The app's settings when only the required ones are given: its default names."""
    return load_settings(
        {
            "LANGUAGE_ENDPOINT": "https://example.cognitiveservices.azure.com",
            STORAGE_SETTING: "UseDevelopmentStorage=true",
        }
    )


# --- checks ----------------------------------------------------------------------------------------


def check_required_settings(
    settings: Mapping[str, object], specs: Iterable[SettingSpec] = SETTINGS
) -> list[str]:
    """Every setting the code reads without a default is set by the infra (unless leaving it unset
    is the point, see ``INTENTIONALLY_UNSET``), storage in its identity-based form."""
    problems = []
    for spec in specs:
        if spec.default is not None or spec.name in INTENTIONALLY_UNSET:
            continue
        if spec.name == STORAGE_SETTING:
            identity = {
                n.removeprefix(f"{STORAGE_SETTING}__") for n in settings if _is_identity_storage_setting(n)
            }
            if STORAGE_SETTING in settings:
                problems.append(
                    f"{STORAGE_SETTING} is set as a connection string: use the identity-based "
                    f"{STORAGE_SETTING}__* form (no keys)"
                )
            elif not ({"blobServiceUri", "queueServiceUri"} <= identity or "accountName" in identity):
                problems.append(
                    f"the code requires {STORAGE_SETTING}: the Bicep sets neither "
                    f"{STORAGE_SETTING}__blobServiceUri + __queueServiceUri nor __accountName"
                )
            continue
        if spec.name not in settings:
            problems.append(
                f"the code requires {spec.name} (no default) but the Bicep app settings do not set it"
            )
    for name, reason in INTENTIONALLY_UNSET.items():
        if name in settings:
            problems.append(f"{name} is set by the Bicep: {reason}")
    credential = settings.get(f"{STORAGE_SETTING}__credential")
    client_id = settings.get(f"{STORAGE_SETTING}__clientId")
    if credential != "managedidentity":
        problems.append(f"{STORAGE_SETTING}__credential must be 'managedidentity', got {credential!r}")
    if client_id is None:
        problems.append(
            f"{STORAGE_SETTING}__clientId is not set: the app runs as a user-assigned identity, "
            "the host must be told which one"
        )
    if settings.get("AZURE_CLIENT_ID") != client_id:
        problems.append(
            f"AZURE_CLIENT_ID ({settings.get('AZURE_CLIENT_ID')!r}) is not the identity of "
            f"{STORAGE_SETTING}__clientId ({client_id!r})"
        )
    # Application Insights has local auth disabled: telemetry must carry the same identity's token.
    if "APPLICATIONINSIGHTS_CONNECTION_STRING" in settings:
        expected = f"Authorization=AAD;ClientId={_text(client_id)}"
        actual = _text(settings.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING"))
        if actual != expected:
            problems.append(f"APPLICATIONINSIGHTS_AUTHENTICATION_STRING is {actual!r}, expected {expected!r}")
    return problems


def _text(value: object) -> str:
    """A setting's value as text, deploy-time values as ``${<expression>}``."""
    if isinstance(value, Runtime):
        return value.source if "${" in value.source else f"${{{value.source}}}"
    return str(value)


def check_app_settings_declared(
    settings: Mapping[str, object], specs: Iterable[SettingSpec] = SETTINGS
) -> list[str]:
    """The infra sets nothing the code does not declare (host/platform settings aside)."""
    declared = _declared(specs)
    problems = []
    for name in sorted(settings):
        if name in FLEX_REJECTED_SETTINGS:
            problems.append(f"{name} is set, but Flex Consumption rejects it (use functionAppConfig)")
        elif name in INTENTIONALLY_UNSET:
            problems.append(f"{name} is set: {INTENTIONALLY_UNSET[name]}")
        elif not (
            name in declared
            or name in PLATFORM_SETTINGS
            or name.startswith(PLATFORM_PREFIXES)
            or _is_identity_storage_setting(name)
        ):
            problems.append(f"the Bicep sets {name}, which shared.settings.SETTINGS does not declare")
        value = settings[name]
        if not isinstance(value, str | Runtime):
            problems.append(f"{name} = {value!r}: app setting values are strings")
    return problems


def check_app_settings_validate(settings: Mapping[str, object]) -> list[str]:
    """The infra's settings (deploy-time values stubbed) pass the app's own validation."""
    try:
        load_settings(_environ(settings))
    except SettingsError as error:
        return [f"the app would refuse the infra's settings: {error}"]
    return []


def check_names(deployment: Deployment, defaults: Settings | None = None) -> list[str]:
    """Container and queue names agree between the code's defaults, the app settings the infra
    sets and the containers/queues the infra creates (including the derived ledger and poison)."""
    defaults = defaults or code_defaults()
    settings = app_settings(deployment)
    problems = []
    for name, code_value in (
        ("ARCHIVE_CONTAINER", defaults.archive_container),
        ("JOBS_QUEUE", defaults.jobs_queue),
    ):
        infra_value = settings.get(name)
        if infra_value is not None and infra_value != code_value:
            problems.append(
                f"{name}: the code's default is {code_value!r}, the infra's default is {infra_value!r}"
            )
    try:
        cloud = load_settings(_environ(settings))
    except SettingsError as error:
        return [*problems, f"cannot derive the cloud names: {error}"]
    containers = deployment.created_names(CONTAINERS)
    queues = deployment.created_names(QUEUES)
    events_enabled = deployment.main_scope.get("eventsEnabled")
    if events_enabled is True and cloud.events_queue is None:
        problems.append("EVENTS_QUEUE is not set: the cloud app would announce no archived job")
    if events_enabled is False and cloud.events_queue is not None:
        problems.append(f"eventsEnabled is false, yet EVENTS_QUEUE is set to {cloud.events_queue!r}")
    for what, used, created in (
        ("archive container", cloud.archive_container, containers),
        ("ledger container", cloud.ledger_container, containers),
        ("jobs queue", cloud.jobs_queue, queues),
        ("poison queue", cloud.poison_queue, queues),
        ("events queue", cloud.events_queue, queues),
    ):
        if used is not None and used not in created:
            problems.append(
                f"the app uses the {what} {used!r}, which the infra does not create ({sorted(created)})"
            )
    # Role assignments and other modules name containers/queues by parameter: they must exist.
    for instance in deployment.modules.values():
        for parameter, value in instance.scope.items():
            if parameter == "eventsQueueName" and instance.scope.get("eventsEnabled") is False:
                continue  # named, never created nor used: events are off
            if parameter.endswith("ContainerName") and isinstance(value, str) and value not in containers:
                problems.append(f"{instance.symbol}.{parameter} = {value!r} is not a created container")
            if parameter.endswith("QueueName") and isinstance(value, str) and value not in queues:
                problems.append(f"{instance.symbol}.{parameter} = {value!r} is not a created queue")
    return problems


def check_keyless(deployment: Deployment, infra_dir: Path = INFRA_DIR) -> list[str]:
    """No key material anywhere in infra/, and every data service refuses keys."""
    problems = []
    for path in sorted(p for p in infra_dir.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        for token in KEY_MATERIAL:
            if token.lower() in text.lower():
                problems.append(f"{path.relative_to(infra_dir)} mentions {token}")
    expectations = (
        ("Microsoft.Storage/storageAccounts", "allowSharedKeyAccess", False),
        ("Microsoft.CognitiveServices/accounts", "disableLocalAuth", True),
        ("Microsoft.Insights/components", "DisableLocalAuth", True),
    )
    for resource_type, key, expected in expectations:
        for instance, symbol, body in deployment.created(resource_type):
            properties = body.get("properties")
            actual = properties.get(key) if isinstance(properties, dict) else None
            if actual is not expected:
                problems.append(f"{instance.symbol}/{symbol}: {key} must be {expected}, is {actual!r}")
    return problems


def check_role_assignments(deployment: Deployment, infra_dir: Path = INFRA_DIR) -> list[str]:
    """Every assignment has an explicit scope narrower than its resource group, a guid() name, and no
    forbidden (key-listing or control-plane) role appears anywhere."""
    problems = []
    for instance in deployment.instances:
        for symbol, body in instance.declarations(ROLE_ASSIGNMENTS):
            where = f"{instance.template.path.name}:{symbol}"
            if "scope" not in body:
                problems.append(f"{where} has no scope: it would apply to the whole resource group")
            name = body.get("name")
            if not (isinstance(name, dict) and name.get("function", {}).get("type") == "guid"):
                problems.append(f"{where}: the name must be guid(scope, principal, role)")
    for path in sorted(infra_dir.rglob("*.bicep")):
        text = path.read_text(encoding="utf-8").lower()
        for role_id, role in FORBIDDEN_ROLES.items():
            if role_id in text:
                problems.append(f"{path.relative_to(infra_dir)} uses the role {role} ({role_id})")
    return problems


def check_runtime(deployment: Deployment, repo_root: Path = REPO_ROOT) -> list[str]:
    """The Python version and the Functions host that Bicep, host.json and pyproject.toml assume agree."""
    problems = []
    apps = function_apps(deployment)
    if len(apps) != 1:
        return [f"expected one Flex Consumption function app, found {len(apps)}"]
    config = apps[0]["functionAppConfig"]
    runtime = config.get("runtime") if isinstance(config, dict) else None
    name = runtime.get("name") if isinstance(runtime, dict) else None
    version = runtime.get("version") if isinstance(runtime, dict) else None
    if name != "python":
        problems.append(f"functionAppConfig.runtime.name is {name!r}, not 'python'")
    if version not in SUPPORTED_PYTHON:
        problems.append(
            f"functionAppConfig.runtime.version {version!r} is not a Python the Functions host 4.x runs"
        )

    pyproject = tomllib.loads((repo_root / "pyproject.toml").read_text(encoding="utf-8"))
    tools = pyproject.get("tool", {})
    mypy_version = str(tools.get("mypy", {}).get("python_version"))
    ruff_target = str(tools.get("ruff", {}).get("target-version"))
    if version != mypy_version:
        problems.append(f"Bicep deploys Python {version}, pyproject.toml type-checks for {mypy_version}")
    if ruff_target != f"py{str(version).replace('.', '')}":
        problems.append(f"Bicep deploys Python {version}, ruff targets {ruff_target}")

    host = json.loads((repo_root / "host.json").read_text(encoding="utf-8"))
    if host.get("version") != "2.0":
        problems.append(f"host.json version is {host.get('version')!r}: the Functions host 4.x needs '2.0'")
    bundle = host.get("extensionBundle") or {}
    if bundle.get("id") != "Microsoft.Azure.Functions.ExtensionBundle":
        problems.append(f"host.json extensionBundle.id is {bundle.get('id')!r}")
    # A NuGet version range such as "[4.*, 5.0.0)": plain text, not Bicep, so a regex reads it.
    match = re.match(r"^\s*[\[(]\s*(\d+)", str(bundle.get("version", "")))
    major = int(match.group(1)) if match else None
    if major not in SUPPORTED_BUNDLE_MAJORS:
        problems.append(
            f"host.json extensionBundle.version {bundle.get('version')!r} is not a bundle the Functions "
            f"host 4.x (Python {version}, Flex Consumption) supports with identity-based queue "
            f"connections: use a major in {sorted(SUPPORTED_BUNDLE_MAJORS)}"
        )
    return problems


def check_telemetry(deployment: Deployment, repo_root: Path = REPO_ROOT) -> list[str]:
    """With a connection string, the host exports OpenTelemetry and lets the worker stream the
    app's logs (no duplicates); the app configures the distro itself (shared/otel.py)."""
    settings = app_settings(deployment)
    if CONNECTION_STRING_SETTING not in settings:
        return [f"{CONNECTION_STRING_SETTING} is not set: the app would send no telemetry"]
    problems = []
    host = json.loads((repo_root / "host.json").read_text(encoding="utf-8"))
    if host.get("telemetryMode") != "OpenTelemetry":
        problems.append(f"host.json telemetryMode is {host.get('telemetryMode')!r}, expected 'OpenTelemetry'")
    if settings.get("PYTHON_ENABLE_OPENTELEMETRY") != "true":
        worker = settings.get("PYTHON_ENABLE_OPENTELEMETRY")
        problems.append(
            f"PYTHON_ENABLE_OPENTELEMETRY is {worker!r}: set it to 'true' so that the worker streams "
            "the app's OpenTelemetry logs and trace context"
        )
    return problems


_NAME_REFERENCE: Final = re.compile(r"\$\{(metrics|dimensions)\.([A-Za-z0-9_]+)\}")
_ARCHIVER_NAME: Final = re.compile(r"\barchiver\.[a-z][a-z.]*[a-z]")
_DIMENSION: Final = re.compile(r"customDimensions\.([A-Za-z_][A-Za-z0-9_]*)")


def check_telemetry_names(infra_dir: Path = INFRA_DIR) -> list[str]:
    """Every metric and dimension the alerts and the workbook query is one the code emits, under
    the code's name: their ``metrics``/``dimensions`` variables hold the code's values, every
    ``${metrics.x}``/``${dimensions.x}`` names one of them, and no other ``archiver.*`` name or
    ``customDimensions.x`` appears in infra/."""
    problems = []
    metric_names = {m.value for m in Metric}
    for path in sorted(infra_dir.rglob("*.bicep")):
        where = path.relative_to(infra_dir).as_posix()
        text = path.read_text(encoding="utf-8")
        for name in sorted(set(_ARCHIVER_NAME.findall(text)) - metric_names):
            problems.append(f"{where} names {name!r}, which is not a metric of shared.telemetry.Metric")
        for name in sorted(set(_DIMENSION.findall(text)) - TELEMETRY_DIMENSIONS - {"metrics", "dimensions"}):
            problems.append(f"{where} queries customDimensions.{name}, which the code never writes")
        expected = TELEMETRY_MODULES.get(path.name)
        if expected is None:
            continue
        scope = Template.load(path).scope({})
        declared = {"metrics": scope.get("metrics"), "dimensions": scope.get("dimensions")}
        for variable, names in declared.items():
            if not isinstance(names, dict):
                problems.append(f"{where} has no {variable} variable")
                continue
            known = metric_names if variable == "metrics" else TELEMETRY_DIMENSIONS
            for key, value in names.items():
                if value not in known:
                    problems.append(f"{where}: {variable}.{key} = {value!r} is not a name the code emits")
        for variable, key in _NAME_REFERENCE.findall(text):
            names = declared.get(variable)
            if isinstance(names, dict) and key not in names:
                problems.append(f"{where} uses ${{{variable}.{key}}}, which its {variable} does not declare")
        metrics = declared["metrics"]
        named = set(metrics.values()) if isinstance(metrics, dict) else set()
        for metric in sorted(expected - named):
            problems.append(f"{where} does not name the metric {metric.value!r}")
    return problems


def check_azd_wiring(deployment: Deployment, repo_root: Path = REPO_ROOT) -> list[str]:
    """azure.yaml's service is the app Bicep tags for azd; main.parameters.json feeds main.bicep."""
    problems = []
    # No YAML library in the environment and azure.yaml is a handful of flat keys: a regex suffices.
    text = (repo_root / "azure.yaml").read_text(encoding="utf-8")
    services = re.search(r"^services:\s*\n((?:[ \t]+.*\n?|\s*\n)*)", text, re.MULTILINE)
    block = services.group(1) if services else ""
    names = re.findall(r"^  ([A-Za-z0-9_-]+):\s*$", block, re.MULTILINE)
    for key, expected in (("host", "function"), ("language", "python"), ("project", ".")):
        found = re.search(rf"^\s+{key}:\s*(\S+)\s*$", block, re.MULTILINE)
        value = found.group(1).strip("'\"") if found else None
        if value != expected:
            problems.append(f"azure.yaml: the service's {key} is {value!r}, expected {expected!r}")
    tags = set()
    for _, _, body in deployment.created(SITES):
        site_tags = body.get("tags")
        tags.add(str(site_tags.get("azd-service-name")) if isinstance(site_tags, dict) else repr(site_tags))
    if names != sorted(tags):
        problems.append(f"azure.yaml services {names} != the app's azd-service-name tags {sorted(tags)}")

    parameters = json.loads(
        (deployment.main.path.parent / "main.parameters.json").read_text(encoding="utf-8")
    )
    given = set(parameters.get("parameters", {}))
    declared = deployment.main.parameters
    for name in sorted(given - set(declared)):
        problems.append(f"main.parameters.json sets {name!r}, which main.bicep does not declare")
    for name, parameter in declared.items():
        if parameter.get("default") is None and name not in given:
            problems.append(f"main.bicep parameter {name!r} has no default and main.parameters.json omits it")
    for name, env in (("environmentName", "AZURE_ENV_NAME"), ("location", "AZURE_LOCATION")):
        value = parameters.get("parameters", {}).get(name, {}).get("value")
        if value != f"${{{env}}}":
            problems.append(f"main.parameters.json: {name} should come from ${{{env}}}, is {value!r}")
    return problems


def _documented_defaults(docs: str) -> dict[str, str]:
    """name -> default of the parameter table (``| `a`, `b` | `1`, `2` | ... |``; ``empty`` is '')."""
    table = re.search(r"^\| parameter \| default \|.*\n\|[-| ]+\|\n((?:\|.*\n)+)", docs, re.MULTILINE)
    documented: dict[str, str] = {}
    for row in table.group(1).splitlines() if table else []:
        cells = row.split("|")
        names = re.findall(r"`([^`]+)`", cells[1])
        values = [""] * len(names) if cells[2].strip() == "empty" else re.findall(r"`([^`]*)`", cells[2])
        documented.update(zip(names, values, strict=False))
    return documented


def _bicep_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == []:
        return ""  # documented as "empty", like an empty string
    return str(value)


def check_documented_defaults(deployment: Deployment, docs_path: Path) -> list[str]:
    """docs/reference.md's parameter table lists each main.bicep default that azd does not set, as is."""
    documented = _documented_defaults(docs_path.read_text(encoding="utf-8"))
    if not documented:
        return [f"{docs_path.name}: no '| parameter | default |' table found"]
    parameters = json.loads(
        (deployment.main.path.parent / "main.parameters.json").read_text(encoding="utf-8")
    ).get("parameters", {})
    problems = []
    for name, parameter in deployment.main.parameters.items():
        if parameter.get("default") is None:
            continue
        actual = _bicep_text(deployment.main_scope[name])
        if name not in documented:
            if name not in parameters:
                problems.append(f"{docs_path.name} does not document main.bicep parameter {name!r}")
        elif documented[name] != actual:
            problems.append(
                f"{docs_path.name} documents {name} = {documented[name]!r}, the Bicep default is {actual!r}"
            )
    for name in sorted(set(documented) - set(deployment.main.parameters)):
        problems.append(f"{docs_path.name} documents {name!r}, which main.bicep does not declare")
    return problems


def check_module_wiring(template: Template) -> list[str]:
    """Each module call names an existing file, passes only declared parameters, every required one,
    and reads only outputs the module declares."""
    problems = []
    outputs_used: dict[str, set[str]] = {}
    _collect_output_reads(template.tree, set(template.modules), outputs_used)
    for symbol in template.modules:
        path = template.module_path(symbol)
        if not path.is_file():
            problems.append(f"{template.path.name}: module {symbol} -> {path} does not exist")
            continue
        module = Template.load(path)
        given = set(template.module_arguments(symbol))
        declared = set(module.parameters)
        for name in sorted(given - declared):
            problems.append(
                f"{template.path.name}: module {symbol} passes {name!r}, not a parameter of {path.name}"
            )
        for name, parameter in module.parameters.items():
            if parameter.get("default") is None and name not in given:
                problems.append(f"{template.path.name}: module {symbol} omits required parameter {name!r}")
        for name in sorted(outputs_used.get(symbol, set()) - set(module.section("outputs"))):
            problems.append(f"{template.path.name}: {symbol}.outputs.{name} is not an output of {path.name}")
    return problems


def _collect_output_reads(node: object, modules: set[str], found: dict[str, set[str]]) -> None:
    """Find ``<module>.outputs.<name>`` in the tree (nested property accessors)."""
    if isinstance(node, list):
        for item in node:
            _collect_output_reads(item, modules, found)
        return
    if not isinstance(node, dict):
        return
    operator = node.get("operator")
    if isinstance(operator, dict) and operator.get("type") == "property_accessor":
        operands = operator["operands"]
        head, rest = operands.get("operand_1"), operands.get("operand_2")
        inner = rest.get("operator") if isinstance(rest, dict) else None
        if (
            isinstance(head, str)
            and head in modules
            and isinstance(inner, dict)
            and inner.get("type") == "property_accessor"
            and inner["operands"].get("operand_1") == "outputs"
        ):
            name = inner["operands"].get("operand_2")
            if isinstance(name, dict):  # outputs.x.y: the output is x
                name = name.get("operator", {}).get("operands", {}).get("operand_1")
            found.setdefault(str(head), set()).add(str(name))
    for value in node.values():
        _collect_output_reads(value, modules, found)


def run_all(infra_dir: Path = INFRA_DIR, repo_root: Path = REPO_ROOT) -> list[str]:
    """Every check on one infra directory (the repository's, or a drifted copy)."""
    deployment = load_deployment(infra_dir)
    settings = app_settings(deployment)
    return [
        *check_required_settings(settings),
        *check_app_settings_declared(settings),
        *check_app_settings_validate(settings),
        *check_names(deployment),
        *check_keyless(deployment, infra_dir),
        *check_role_assignments(deployment, infra_dir),
        *check_runtime(deployment, repo_root),
        *check_telemetry(deployment, repo_root),
        *check_telemetry_names(infra_dir),
        *check_azd_wiring(deployment, repo_root),
        *check_documented_defaults(deployment, repo_root / "docs" / "reference.md"),
        *(problem for instance in deployment.instances for problem in check_module_wiring(instance.template)),
    ]
