"""The docs say what the code does: settings, commands, alerts, Bicep parameters and outputs, make
targets, links, named paths and examples (tests/docs/drift.py), and each check fails on drift.

The drift tests below mutate a copy (of the declarations, or of the docs' text) and assert that the
check names the drift: a check that passes on anything would fail them.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from azure.storage.queue import QueueClient

from cli.main import build_parser
from local.host.azurite import Azurite
from shared import telemetry
from shared.messages import parse_message
from shared.settings import SETTINGS, SettingSpec, load_settings
from tests.docs import drift
from tests.docs.drift import REPO_ROOT, AlertRule
from tests.infra.bicep_model import INFRA_DIR, Template, load_deployment
from tests.infra.consistency import app_settings

ALERTS_BICEP = INFRA_DIR / "modules" / "alerts.bicep"
MAIN_BICEP = INFRA_DIR / "main.bicep"


def alert_rules(path: Path = ALERTS_BICEP) -> list[AlertRule]:
    rules = Template.load(path).scope({"jobsQueueName": "language-jobs"})["rules"]
    assert isinstance(rules, list)
    return [
        AlertRule(
            name=str(rule["name"]),
            severity=int(rule["severity"]),
            window_minutes=drift.iso_minutes(str(rule["window"])),
            frequency_minutes=drift.iso_minutes(str(rule["frequency"])),
        )
        for rule in rules
    ]


def bicep_names(path: Path = MAIN_BICEP) -> tuple[list[str], list[str]]:
    template = Template.load(path)
    return list(template.parameters), list(template.section("outputs"))


@pytest.fixture(scope="module")
def docs() -> dict[str, str]:
    return drift.read_docs()


def _fail(problems: list[str]) -> str:
    return "docs drifted from the code:\n  " + "\n  ".join(problems)


# --- the docs are true ------------------------------------------------------------------------------


def test_every_page_exists() -> None:
    missing = [name for name in drift.DOCS if not (REPO_ROOT / name).is_file()]
    assert not missing


def test_settings_table_is_the_code(docs: dict[str, str]) -> None:
    problems = drift.check_settings(SETTINGS, docs[drift.REFERENCE])
    assert not problems, _fail(problems)


def test_every_cli_command_and_option_is_documented(docs: dict[str, str]) -> None:
    problems = drift.check_cli(drift.cli_commands(build_parser()), docs)
    assert not problems, _fail(problems)


def test_every_alert_rule_has_its_runbook(docs: dict[str, str]) -> None:
    problems = drift.check_alerts(alert_rules(), docs)
    assert not problems, _fail(problems)


def test_every_bicep_parameter_and_output_is_documented(docs: dict[str, str]) -> None:
    parameters, outputs = bicep_names()
    problems = drift.check_bicep(parameters, outputs, docs[drift.REFERENCE])
    assert not problems, _fail(problems)


def test_app_settings_in_azure_are_the_bicep_s(docs: dict[str, str]) -> None:
    problems = drift.check_azure_app_settings(app_settings(load_deployment()), docs[drift.DEPLOY])
    assert not problems, _fail(problems)


def _metric_attribute_values() -> dict[str, list[str]]:
    return {
        telemetry.Metric.POLLS: [result.value for result in telemetry.PollResult],
        telemetry.Metric.LANGUAGE_REQUESTS: [result.value for result in telemetry.LanguageResult],
    }


def test_every_metric_is_documented(docs: dict[str, str]) -> None:
    metrics = [metric.value for metric in telemetry.Metric]
    problems = drift.check_metrics(metrics, _metric_attribute_values(), docs[drift.REFERENCE])
    assert not problems, _fail(problems)


def test_every_make_target_named_exists(docs: dict[str, str]) -> None:
    targets = drift.makefile_targets((REPO_ROOT / "Makefile").read_text(encoding="utf-8"))
    problems = drift.check_make_targets(targets, docs)
    assert not problems, _fail(problems)


def test_every_relative_link_and_anchor_resolves() -> None:
    problems = drift.check_links(REPO_ROOT, drift.DOCS)
    assert not problems, _fail(problems)


def test_every_named_path_ships(docs: dict[str, str]) -> None:
    problems = drift.check_named_paths(REPO_ROOT, docs)
    assert not problems, _fail(problems)


def test_every_python_example_compiles(docs: dict[str, str]) -> None:
    examples = drift.python_examples(docs)
    assert examples, "the docs have Python examples (the enqueue snippet, the consumer)"
    problems = drift.check_python_examples(examples)
    assert not problems, _fail(problems)


def test_readme_is_short(docs: dict[str, str]) -> None:
    problems = drift.check_readme_length(docs["README.md"])
    assert not problems, _fail(problems)


def test_runnable_examples_run_against_azurite(azurite: Azurite, docs: dict[str, str]) -> None:
    """Each example marked ``python runnable`` runs as a user would paste it, in a fresh interpreter,
    with the settings of the demo's services; the enqueue example's message is one the app accepts."""
    runnable = [example for example in drift.python_examples(docs) if example.runnable]
    assert runnable, "the enqueue snippet is marked runnable"
    queue_name = f"docs-{uuid.uuid4().hex[:12]}"
    environ = {
        **os.environ,
        "AzureWebJobsStorage": azurite.connection_string,
        "JOBS_QUEUE": queue_name,
        "LANGUAGE_ENDPOINT": "http://127.0.0.1:9",
    }
    with QueueClient.from_connection_string(azurite.connection_string, queue_name) as queue:
        queue.create_queue()
        for example in runnable:
            run = subprocess.run(
                [sys.executable, "-c", example.source],
                env=environ,
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert run.returncode == 0, f"{example.page}:{example.line} failed:\n{run.stderr}"
        messages = queue.peek_messages(max_messages=32)
    settings = load_settings({k: v for k, v in environ.items() if isinstance(v, str)})
    assert messages, "the enqueue example put a message on JOBS_QUEUE"
    for message in messages:
        parse_message(base64.b64decode(message.content).decode("utf-8"), settings=settings)


# --- each check catches drift -----------------------------------------------------------------------


def _with_row(text: str, after: str, row: str) -> str:
    assert after in text, f"the docs have {after!r}"
    return text.replace(after, f"{after}\n{row}", 1)


def _with_cell(text: str, name: str, index: int, value: str) -> str:
    """The settings row of ``name`` with cell ``index`` (0: the name) replaced."""
    pattern = re.compile(rf"^\| `{name}` \|.*$", re.MULTILINE)
    row = pattern.search(text)
    assert row is not None, f"the settings table has {name}"
    cells = [cell.strip() for cell in row.group(0).strip().strip("|").split(" | ")]
    cells[index] = value
    return text.replace(row.group(0), "| " + " | ".join(cells) + " |")


def test_a_new_setting_without_its_row_is_caught(docs: dict[str, str]) -> None:
    specs = (*SETTINGS, SettingSpec("SHINY_NEW_SECONDS", "10", minimum=1, maximum=60))
    problems = drift.check_settings(specs, docs[drift.REFERENCE])
    assert any("SHINY_NEW_SECONDS is missing" in p and "`1` to `60`" in p for p in problems), problems


def test_a_changed_default_is_caught(docs: dict[str, str]) -> None:
    specs = tuple(
        dataclasses.replace(spec, default="7") if spec.name == "POLL_INITIAL_DELAY_SECONDS" else spec
        for spec in SETTINGS
    )
    problems = drift.check_settings(specs, docs[drift.REFERENCE])
    assert any("POLL_INITIAL_DELAY_SECONDS has default" in p and "'`7`'" in p for p in problems), problems


def test_changed_bounds_are_caught(docs: dict[str, str]) -> None:
    specs = tuple(
        dataclasses.replace(spec, minimum=2.0, maximum=99.0) if spec.name == "SWEEP_GRACE_SECONDS" else spec
        for spec in SETTINGS
    )
    problems = drift.check_settings(specs, docs[drift.REFERENCE])
    assert any("SWEEP_GRACE_SECONDS has bounds" in p and "`2` to `99`" in p for p in problems), problems


def test_a_documented_setting_the_code_lacks_is_caught(docs: dict[str, str]) -> None:
    reference = _with_row(
        docs[drift.REFERENCE], "| --- | --- | --- | --- |", "| `RETIRED_SETTING` | `1` | — | gone |"
    )
    problems = drift.check_settings(SETTINGS, reference)
    assert any("RETIRED_SETTING is documented" in p for p in problems), problems


def test_unreadable_bounds_are_caught(docs: dict[str, str]) -> None:
    reference = _with_cell(docs[drift.REFERENCE], "SWEEP_GRACE_SECONDS", 2, "some")
    problems = drift.check_settings(SETTINGS, reference)
    assert any("SWEEP_GRACE_SECONDS has bounds 'some'" in p for p in problems), problems


def test_a_new_cli_command_without_its_section_is_caught(docs: dict[str, str]) -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    subparsers.add_parser("requeue").add_argument("--everything", action="store_true")
    problems = drift.check_cli(drift.cli_commands(parser), docs)
    assert any("command 'requeue' has no section" in p for p in problems), problems


def test_a_new_cli_option_without_its_mention_is_caught(docs: dict[str, str]) -> None:
    commands = drift.cli_commands(build_parser())
    verify = commands["verify"]
    commands["verify"] = dataclasses.replace(verify, options=verify.options | {"--deep"})
    problems = drift.check_cli(commands, docs)
    assert problems == ["docs/reference.md: option --deep of 'verify' is not in its section"]


def test_a_documented_command_or_option_that_does_not_exist_is_caught(docs: dict[str, str]) -> None:
    mutated = {
        **docs,
        "docs/deploy.md": docs["docs/deploy.md"]
        + "\nThen run `python -m cli requeue --all` and `python -m cli verify --deep`.\n",
    }
    problems = drift.check_cli(drift.cli_commands(build_parser()), mutated)
    assert any("'python -m cli requeue': no such command" in p for p in problems), problems
    assert any("'python -m cli verify' has no option --deep" in p for p in problems), problems


def test_a_new_alert_rule_without_its_runbook_is_caught(docs: dict[str, str]) -> None:
    rules = [*alert_rules(), AlertRule("events-backlog", severity=3, window_minutes=15, frequency_minutes=5)]
    problems = drift.check_alerts(rules, docs)
    assert any("'events-backlog' has no row" in p for p in problems), problems
    assert any("'events-backlog' has no runbook section" in p for p in problems), problems
    assert any(f"infra/ defines {len(rules)}" in p for p in problems), "a stated count of rules is now wrong"


def test_an_alert_rule_added_to_the_bicep_is_caught(tmp_path: Path, docs: dict[str, str]) -> None:
    """The same, end to end: a rule planted into a copy of alerts.bicep."""
    copy = tmp_path / "alerts.bicep"
    text = ALERTS_BICEP.read_text(encoding="utf-8")
    planted = text.replace(
        "var livenessRules = [\n",
        "var livenessRules = [\n  {\n    name: 'app-silent'\n    severity: 1\n    window: 'PT30M'\n"
        "    frequency: 'PT10M'\n  }\n",
        1,
    )
    assert planted != text
    copy.write_text(planted, encoding="utf-8")
    problems = drift.check_alerts(alert_rules(copy), docs)
    assert any("'app-silent' has no runbook section" in p for p in problems), problems


def test_a_wrong_alert_window_is_caught(docs: dict[str, str]) -> None:
    rules = [
        dataclasses.replace(rule, window_minutes=45) if rule.name == "poisoned-message" else rule
        for rule in alert_rules()
    ]
    problems = drift.check_alerts(rules, docs)
    assert any("poisoned-message looks at" in p and "45 min" in p for p in problems), problems


def test_a_runbook_without_its_parts_is_caught(docs: dict[str, str]) -> None:
    operations = docs[drift.OPERATIONS]
    body = drift.section(operations, "### `ledger-overdue`")
    assert body is not None
    assert "**Check first.**" in body
    mutated = {**docs, drift.OPERATIONS: operations.replace(body, body.replace("**Check first.**", "First,"))}
    problems = drift.check_alerts(alert_rules(), mutated)
    assert problems == ["docs/operations.md: runbook of 'ledger-overdue' lacks **Check first.**"]


def test_a_wrong_count_of_alert_rules_is_caught(docs: dict[str, str]) -> None:
    mutated = {**docs, "README.md": docs["README.md"] + "\nThe template creates six alert rules.\n"}
    problems = drift.check_alerts(alert_rules(), mutated)
    assert any("says six alert rules" in p for p in problems), problems


def test_a_new_bicep_parameter_or_output_is_caught(tmp_path: Path, docs: dict[str, str]) -> None:
    copy = tmp_path / "main.bicep"
    text = MAIN_BICEP.read_text(encoding="utf-8")
    copy.write_text(
        text + "\nparam eventsRetentionDays int = 7\n\noutput EVENTS_DEAD_LETTER string = 'x'\n",
        encoding="utf-8",
    )
    parameters, outputs = bicep_names(copy)
    problems = drift.check_bicep(parameters, outputs, docs[drift.REFERENCE])
    assert problems == [
        "docs/reference.md: main.bicep parameter 'eventsRetentionDays' is missing from the parameters table",
        "docs/reference.md: main.bicep output 'EVENTS_DEAD_LETTER' is missing from the outputs table",
    ]


def test_a_documented_parameter_the_bicep_lacks_is_caught(docs: dict[str, str]) -> None:
    parameters, outputs = bicep_names()
    problems = drift.check_bicep([p for p in parameters if p != "alertEmail"], outputs, docs[drift.REFERENCE])
    assert problems == [
        "docs/reference.md: the parameters table lists 'alertEmail', which main.bicep does not declare"
    ]


def test_an_app_setting_added_to_the_bicep_is_caught(docs: dict[str, str]) -> None:
    names = [*app_settings(load_deployment()), "EVENTS_DEAD_LETTER_QUEUE"]
    problems = drift.check_azure_app_settings(names, docs[drift.DEPLOY])
    assert problems == [
        "docs/deploy.md: the Bicep sets app setting EVENTS_DEAD_LETTER_QUEUE; add it to the table"
    ]


def test_a_new_metric_or_attribute_value_is_caught(docs: dict[str, str]) -> None:
    metrics = [*(metric.value for metric in telemetry.Metric), "archiver.events.sent"]
    values = {**_metric_attribute_values(), telemetry.Metric.POLLS: ["unfinished", "ended", "failed", "gone"]}
    problems = drift.check_metrics(metrics, values, docs[drift.REFERENCE])
    assert problems == [
        "docs/reference.md: metric archiver.events.sent is missing from the metrics table",
        "docs/reference.md: metric archiver.polls: attribute value 'gone' is not in its row",
    ]


def test_a_make_target_that_does_not_exist_is_caught(docs: dict[str, str]) -> None:
    mutated = {**docs, "README.md": docs["README.md"] + "\nRun `make deploy` first.\n"}
    targets = drift.makefile_targets((REPO_ROOT / "Makefile").read_text(encoding="utf-8"))
    problems = drift.check_make_targets(targets, mutated)
    assert [p.split(": ", 1)[1] for p in problems] == ["'make deploy': the Makefile has no such target"]


def test_broken_links_and_anchors_are_caught(tmp_path: Path) -> None:
    for name in drift.DOCS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    shutil.copytree(REPO_ROOT / "infra", tmp_path / "infra")
    readme = tmp_path / "README.md"
    readme.write_text(
        readme.read_text(encoding="utf-8")
        + "\n[gone](docs/nowhere.md), [moved](docs/operations.md#no-such-heading), [out](../../etc/passwd)\n",
        encoding="utf-8",
    )
    problems = drift.check_links(tmp_path, drift.DOCS)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "link 'docs/nowhere.md': no such file in the repository",
        "link 'docs/operations.md#no-such-heading': no heading with anchor #no-such-heading",
        "link '../../etc/passwd': no such file in the repository",
    ]


def test_github_anchors() -> None:
    text = "# Deploy\n## Private networking (`vnetEnabled`)\n## Deploy\n```\n# not a heading\n```\n"
    assert drift.slugs(text) == {"deploy", "private-networking-vnetenabled", "deploy-1"}


def test_paths_and_files_that_do_not_ship_are_caught(docs: dict[str, str]) -> None:
    mutated = {**docs, "README.md": docs["README.md"] + "\nSee `shared/nonesuch.py` and DESIGN.md.\n"}
    problems = drift.check_named_paths(REPO_ROOT, mutated)
    assert len(problems) == 2, problems
    assert "`shared/nonesuch.py` does not exist" in problems[0]
    assert "cites DESIGN.md, which does not ship" in problems[1]


def test_a_python_example_that_does_not_compile_is_caught(docs: dict[str, str]) -> None:
    mutated = {**docs, "docs/development.md": docs["docs/development.md"] + "\n```python\nqueue.send(\n```\n"}
    problems = drift.check_python_examples(drift.python_examples(mutated))
    assert len(problems) == 1, problems
    assert "does not compile" in problems[0]


def test_a_long_readme_is_caught() -> None:
    assert drift.check_readme_length("line\n" * 250) == []
    assert drift.check_readme_length("line\n" * 251) == [
        "README.md has 251 lines, more than 250: move detail to docs/"
    ]


def test_the_settings_table_is_found_only_under_its_exact_header() -> None:
    assert drift.check_settings(SETTINGS, "| name | default |\n|---|---|\n") == [
        "docs/reference.md: no settings table '| setting | default | bounds | meaning |'"
    ]


def test_env_files_never_ship() -> None:
    """`azd env get-values > .env` (as the docs suggest) writes a file git and the deployment skip."""
    for name in (".gitignore", ".funcignore"):
        lines = (REPO_ROOT / name).read_text(encoding="utf-8").splitlines()
        assert ".env" in lines, name
        assert ".azure/" in lines, name
