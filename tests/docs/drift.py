"""Checks that hold the docs to the code: each takes what the code declares and the docs' text, and
returns one line per disagreement (empty: the docs are true).

Each check names the file and what to add or remove, so drift is fixed by adding a row or a section:

- settings: ``shared/settings.py``'s ``SETTINGS`` against the table ``| setting | default | bounds |
  meaning |`` of docs/reference.md (same names, defaults and bounds, no other row);
- CLI: the argparse parser of ``python -m cli`` against the ``### `python -m cli COMMAND` `` sections
  of docs/reference.md (every command and option, none that does not exist), and every
  ``python -m cli COMMAND --flag`` written anywhere in the docs;
- alerts: the rules of ``infra/modules/alerts.bicep`` against docs/operations.md's table of alerts
  (severity, window, frequency) and its runbook (one ``### `rule` `` section each, with what it means,
  what to check first and how to fix it), and any "N alert rules" in the docs;
- Bicep: every parameter and output of ``infra/main.bicep`` in docs/reference.md's tables;
- make targets, relative links and their anchors, named repository paths, fenced Python examples
  (they compile), and the README's length.
"""

from __future__ import annotations

import argparse
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shared.settings import SettingSpec

__all__ = [
    "DOCS",
    "README_MAX_LINES",
    "REPO_ROOT",
    "AlertRule",
    "CliCommand",
    "PythonExample",
    "check_alerts",
    "check_azure_app_settings",
    "check_bicep",
    "check_cli",
    "check_links",
    "check_make_targets",
    "check_metrics",
    "check_named_paths",
    "check_python_examples",
    "check_readme_length",
    "check_settings",
    "cli_commands",
    "markdown_table",
    "python_examples",
    "read_docs",
    "section",
    "slugs",
]

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
#: Every Markdown page that ships with the repository and is held to the code.
DOCS: Final = (
    "README.md",
    "docs/reference.md",
    "docs/deploy.md",
    "docs/operations.md",
    "docs/development.md",
)
README_MAX_LINES: Final = 250
REFERENCE: Final = "docs/reference.md"
OPERATIONS: Final = "docs/operations.md"

_FENCE: Final = re.compile(r"^(```+|~~~+)(.*)$")


def read_docs(root: Path = REPO_ROOT) -> dict[str, str]:
    """The text of every page in ``DOCS``; a missing page reads as empty (the checks say what it lacks)."""
    return {
        name: (root / name).read_text(encoding="utf-8") if (root / name).is_file() else "" for name in DOCS
    }


def _prose_lines(text: str) -> Iterator[tuple[int, str, bool]]:
    """(line number, line, inside a fenced block) for every line."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line.strip())
        if match and (fence is None or match.group(1).startswith(fence)):
            fence = match.group(1)[:3] if fence is None else None
            yield number, line, True
            continue
        yield number, line, fence is not None


def markdown_table(text: str, header: Sequence[str]) -> list[list[str]]:
    """The body rows (cells stripped) of the first table whose header row is exactly ``header``."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if _cells(line) == list(header) and index + 1 < len(lines) and set(lines[index + 1]) <= set("|-: "):
            rows = []
            for row in lines[index + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(_cells(row))
            return rows
    return []


def _cells(line: str) -> list[str]:
    line = line.strip()
    if not line.startswith("|"):
        return []
    # A pipe inside backticks (`jsonl|csv`) is escaped as \| in Markdown tables.
    parts = re.split(r"(?<!\\)\|", line.strip("|"))
    return [part.strip().replace("\\|", "|") for part in parts]


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def section(text: str, heading: str) -> str | None:
    """The text under the heading line ``heading`` (exact), up to the next heading of its level or higher."""
    lines = text.splitlines()
    level = len(heading) - len(heading.lstrip("#"))
    for index, line in enumerate(lines):
        if line.strip() == heading:
            body = []
            for rest in lines[index + 1 :]:
                hashes = len(rest) - len(rest.lstrip("#"))
                if 0 < hashes <= level and rest[hashes : hashes + 1] == " ":
                    break
                body.append(rest)
            return "\n".join(body)
    return None


# --- settings ---------------------------------------------------------------------------------------

SETTINGS_HEADER: Final = ("setting", "default", "bounds", "meaning")
_NUMBER: Final = r"-?\d[\d,]*(?:\.\d+)?"


def _expected_default(spec: SettingSpec) -> str:
    if spec.required:
        return "required"
    return "unset" if spec.default is None else f"`{spec.default}`"


def _parse_bounds(cell: str) -> tuple[float | None, float | None] | None:
    """``MIN to MAX``, ``≥ MIN``, ``≤ MAX`` or empty (``—``); numbers may be in backticks, with commas."""
    text = cell.replace("`", "").strip()
    if text in ("", "—", "-"):
        return None, None

    def number(value: str) -> float:
        return float(value.replace(",", ""))

    if match := re.fullmatch(rf"({_NUMBER}) to ({_NUMBER})", text):
        return number(match.group(1)), number(match.group(2))
    if match := re.fullmatch(rf"(?:≥|>=) ?({_NUMBER})", text):
        return number(match.group(1)), None
    if match := re.fullmatch(rf"(?:≤|<=) ?({_NUMBER})", text):
        return None, number(match.group(1))
    return None


def _show_bounds(minimum: float | None, maximum: float | None) -> str:
    def show(value: float) -> str:
        return f"`{value:g}`" if value != int(value) else f"`{int(value)}`"

    if minimum is not None and maximum is not None:
        return f"{show(minimum)} to {show(maximum)}"
    if minimum is not None:
        return f"≥ {show(minimum)}"
    return f"≤ {show(maximum)}" if maximum is not None else "— (none)"


def check_settings(specs: Iterable[SettingSpec], reference: str) -> list[str]:
    """Every declared setting has its row, with the code's default and bounds, and no other row exists."""
    header = " | ".join(SETTINGS_HEADER)
    rows = markdown_table(reference, SETTINGS_HEADER)
    if not rows:
        return [f"{REFERENCE}: no settings table '| {header} |'"]
    documented: dict[str, list[str]] = {}
    problems = []
    for row in rows:
        names = _ticked(row[0])
        if len(names) != 1 or len(row) != len(SETTINGS_HEADER):
            problems.append(
                f"{REFERENCE}: settings row {row[0]!r} is not '| `NAME` | default | bounds | meaning |'"
            )
            continue
        documented[names[0]] = row
    declared = {spec.name: spec for spec in specs}
    for name, spec in declared.items():
        found = documented.get(name)
        if found is None:
            problems.append(
                f"{REFERENCE}: setting {name} is missing from the settings table: add the row "
                f"| `{name}` | {_expected_default(spec)} | {_show_bounds(spec.minimum, spec.maximum)} | ... |"
            )
            continue
        row = found
        if row[1] != _expected_default(spec):
            problems.append(
                f"{REFERENCE}: setting {name} has default {row[1]!r}, "
                f"the code's is {_expected_default(spec)!r}"
            )
        bounds = _parse_bounds(row[2])
        if bounds is None:
            problems.append(
                f"{REFERENCE}: setting {name} has bounds {row[2]!r}: "
                "write 'MIN to MAX', '≥ MIN', '≤ MAX' or '—'"
            )
        elif bounds != (spec.minimum, spec.maximum):
            problems.append(
                f"{REFERENCE}: setting {name} has bounds {row[2]!r}, the code's are "
                f"{_show_bounds(spec.minimum, spec.maximum)!r}"
            )
        if not row[3]:
            problems.append(f"{REFERENCE}: setting {name} has no meaning")
    for name in sorted(set(documented) - set(declared)):
        problems.append(
            f"{REFERENCE}: setting {name} is documented, but shared/settings.py does not declare it"
        )
    return problems


# --- the command line -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CliCommand:
    """One command of ``python -m cli``: its options (every spelling) and positional metavars."""

    name: str
    options: frozenset[str]
    positionals: tuple[str, ...]


def cli_commands(parser: argparse.ArgumentParser) -> dict[str, CliCommand]:
    """The commands the parser really has, read from argparse itself (not from --help text)."""
    commands = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                options, positionals = set(), []
                for sub_action in sub._actions:
                    if isinstance(sub_action, argparse._HelpAction):
                        continue
                    if sub_action.option_strings:
                        options.update(sub_action.option_strings)
                    else:
                        positionals.append(str(sub_action.metavar or sub_action.dest))
                commands[name] = CliCommand(name, frozenset(options), tuple(positionals))
    return commands


_CLI_HEADING: Final = re.compile(r"^### `python -m cli ([a-z][a-z-]*)`$", re.MULTILINE)
_CLI_CALL: Final = re.compile(r"python -m cli ([a-z][a-z0-9-]*)([^`|;&\n]*)")
_OPTION: Final = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")


def check_cli(commands: Mapping[str, CliCommand], docs: Mapping[str, str]) -> list[str]:
    """Each command has its section in docs/reference.md naming every option and positional; no
    section or example anywhere names a command or an option that does not exist."""
    reference = docs.get(REFERENCE, "")
    problems = []
    documented = set(_CLI_HEADING.findall(reference))
    for name, command in sorted(commands.items()):
        if name not in documented:
            problems.append(f"{REFERENCE}: command {name!r} has no section '### `python -m cli {name}`'")
            continue
        body = section(reference, f"### `python -m cli {name}`") or ""
        ticks = [tick.replace("python -m cli", "") for tick in _ticked(body)]
        named = {option for tick in ticks for option in _OPTION.findall(tick)}
        for option in sorted(command.options - named):
            problems.append(f"{REFERENCE}: option {option} of {name!r} is not in its section")
        for option in sorted(named - command.options - {"--help", "-h"}):
            problems.append(f"{REFERENCE}: section of {name!r} names {option}, which {name!r} does not take")
        for positional in command.positionals:
            if positional not in body:
                problems.append(f"{REFERENCE}: argument {positional} of {name!r} is not in its section")
    for name in sorted(documented - set(commands)):
        problems.append(f"{REFERENCE}: section for command {name!r}, which python -m cli does not have")
    for page, text in docs.items():
        for number, line, fenced in _prose_lines(text):
            for span in [line] if fenced else _ticked(line):
                for match in _CLI_CALL.finditer(span):
                    name, rest = match.groups()
                    called = commands.get(name)
                    if called is None:
                        problems.append(f"{page}:{number}: 'python -m cli {name}': no such command")
                        continue
                    for option in _OPTION.findall(rest):
                        if option.startswith("--") and option not in called.options | {"--help"}:
                            problems.append(f"{page}:{number}: 'python -m cli {name}' has no option {option}")
    return problems


# --- alerts -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertRule:
    """An alert rule as infra/modules/alerts.bicep declares it (window and frequency in minutes)."""

    name: str
    severity: int
    window_minutes: int
    frequency_minutes: int


ALERTS_HEADER: Final = ("rule", "severity", "looks at", "every", "fires when")
RUNBOOK_PARTS: Final = ("**What it means.**", "**Check first.**", "**Fix.**")
_NUMBER_WORDS: Final = {
    word: index
    for index, word in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
        ]
    )
}


def iso_minutes(duration: str) -> int:
    """``PT15M`` / ``PT1H`` / ``P1D`` as minutes."""
    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?", duration)
    if match is None or duration in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 duration: {duration!r}")
    days, hours, minutes = (int(part or 0) for part in match.groups())
    return (days * 24 + hours) * 60 + minutes


def _doc_minutes(cell: str) -> int | None:
    match = re.fullmatch(r"(\d+) (min|h)", cell.replace("`", "").strip())
    if match is None:
        return None
    return int(match.group(1)) * (60 if match.group(2) == "h" else 1)


def check_alerts(rules: Sequence[AlertRule], docs: Mapping[str, str]) -> list[str]:
    """docs/operations.md has a row and a runbook section for every rule, none for another; any
    count of alert rules the docs state is the real one."""
    operations = docs.get(OPERATIONS, "")
    problems = []
    rows = {(_ticked(row[0]) or [row[0]])[0]: row for row in markdown_table(operations, ALERTS_HEADER)}
    if not rows:
        problems.append(f"{OPERATIONS}: no table of alerts '| {' | '.join(ALERTS_HEADER)} |'")
    runbooks = set(re.findall(r"^### `([a-z0-9-]+)`$", operations, re.MULTILINE))
    for rule in rules:
        row = rows.get(rule.name)
        if rows and row is None:
            problems.append(f"{OPERATIONS}: alert rule {rule.name!r} has no row in the table of alerts")
        elif row is not None and len(row) == len(ALERTS_HEADER):
            if row[1] != str(rule.severity):
                problems.append(
                    f"{OPERATIONS}: {rule.name} severity {row[1]!r}, the Bicep's is {rule.severity}"
                )
            if _doc_minutes(row[2]) != rule.window_minutes:
                problems.append(
                    f"{OPERATIONS}: {rule.name} looks at {row[2]!r}, "
                    f"the Bicep's window is {rule.window_minutes} min"
                )
            if _doc_minutes(row[3]) != rule.frequency_minutes:
                problems.append(
                    f"{OPERATIONS}: {rule.name} every {row[3]!r}, the Bicep evaluates every "
                    f"{rule.frequency_minutes} min"
                )
        body = section(operations, f"### `{rule.name}`")
        if body is None:
            problems.append(
                f"{OPERATIONS}: alert rule {rule.name!r} has no runbook section '### `{rule.name}`'"
            )
            continue
        for part in RUNBOOK_PARTS:
            if part not in body:
                problems.append(f"{OPERATIONS}: runbook of {rule.name!r} lacks {part}")
    names = {rule.name for rule in rules}
    for name in sorted(set(rows) - names):
        problems.append(f"{OPERATIONS}: the table of alerts lists {name!r}, which infra/ does not define")
    for name in sorted(runbooks - names):
        problems.append(f"{OPERATIONS}: runbook section for {name!r}, which infra/ does not define")
    for page, text in docs.items():
        for number, line, _ in _prose_lines(text):
            for count in re.findall(r"\b(\w+) (?:log (?:search )?)?alert rules\b", line, re.IGNORECASE):
                value = _NUMBER_WORDS.get(count.lower(), int(count) if count.isdigit() else None)
                if value is not None and value != len(rules):
                    problems.append(f"{page}:{number}: says {count} alert rules, infra/ defines {len(rules)}")
    return problems


# --- Bicep ------------------------------------------------------------------------------------------

PARAMETERS_HEADER: Final = ("parameter", "default", "meaning")
OUTPUTS_HEADER: Final = ("output", "meaning")


def check_bicep(parameters: Iterable[str], outputs: Iterable[str], reference: str) -> list[str]:
    """Every parameter and output of main.bicep is in docs/reference.md's tables, and nothing else."""
    problems = []
    for kind, header, declared in (
        ("parameter", PARAMETERS_HEADER, set(parameters)),
        ("output", OUTPUTS_HEADER, set(outputs)),
    ):
        rows = markdown_table(reference, header)
        if not rows:
            problems.append(f"{REFERENCE}: no table '| {' | '.join(header)} |'")
            continue
        documented = {name for row in rows for name in _ticked(row[0])}
        for name in sorted(declared - documented):
            problems.append(f"{REFERENCE}: main.bicep {kind} {name!r} is missing from the {kind}s table")
        for name in sorted(documented - declared):
            problems.append(
                f"{REFERENCE}: the {kind}s table lists {name!r}, which main.bicep does not declare"
            )
    return problems


METRICS_HEADER: Final = ("metric", "kind", "attributes", "what")


def check_metrics(
    metrics: Iterable[str], attribute_values: Mapping[str, Iterable[str]], reference: str
) -> list[str]:
    """Every metric of shared/telemetry.py has its row in docs/reference.md, with every value its
    attribute takes (``attribute_values``: metric -> values), and no other metric is listed."""
    rows = {(_ticked(row[0]) or [row[0]])[0]: row for row in markdown_table(reference, METRICS_HEADER)}
    if not rows:
        return [f"{REFERENCE}: no metrics table '| {' | '.join(METRICS_HEADER)} |'"]
    declared = set(metrics)
    problems = [
        f"{REFERENCE}: metric {name} is missing from the metrics table"
        for name in sorted(declared - set(rows))
    ]
    problems += [
        f"{REFERENCE}: the metrics table lists {name}, which shared/telemetry.py does not define"
        for name in sorted(set(rows) - declared)
    ]
    for name, values in attribute_values.items():
        row = rows.get(name)
        named = set(_ticked(row[2])) if row is not None and len(row) > 2 else set()
        problems += [
            f"{REFERENCE}: metric {name}: attribute value {value!r} is not in its row"
            for value in sorted(set(values) - named)
            if row is not None
        ]
    return problems


AZURE_SETTINGS_HEADER: Final = ("app setting", "value")
DEPLOY: Final = "docs/deploy.md"


def check_azure_app_settings(names: Iterable[str], deploy: str) -> list[str]:
    """docs/deploy.md's table of app settings in Azure is exactly what the Bicep sets."""
    rows = markdown_table(deploy, AZURE_SETTINGS_HEADER)
    if not rows:
        return [f"{DEPLOY}: no table '| {' | '.join(AZURE_SETTINGS_HEADER)} |'"]
    documented = {name for row in rows for name in _ticked(row[0])}
    declared = set(names)
    return [
        *(
            f"{DEPLOY}: the Bicep sets app setting {name}; add it to the table"
            for name in sorted(declared - documented)
        ),
        *(
            f"{DEPLOY}: lists app setting {name}, which the Bicep does not set"
            for name in sorted(documented - declared)
        ),
    ]


# --- make targets, links, paths, examples, length ---------------------------------------------------

_MAKE_CALL: Final = re.compile(r"(?<![\w/.-])make ((?:[A-Z_]+=\S+ )*)([a-z][\w-]*)")


def makefile_targets(makefile: str) -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", makefile, re.MULTILINE))


def check_make_targets(targets: set[str], docs: Mapping[str, str]) -> list[str]:
    """Every ``make TARGET`` the docs name (in code, inline or fenced) is a target of the Makefile."""
    problems = []
    for page, text in docs.items():
        for number, line, fenced in _prose_lines(text):
            spans = [line] if fenced else _ticked(line)
            for span in spans:
                for _, target in _MAKE_CALL.findall(span):
                    if target not in targets:
                        problems.append(f"{page}:{number}: 'make {target}': the Makefile has no such target")
    return problems


_LINK: Final = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def slugs(markdown: str) -> set[str]:
    """The anchors GitHub gives the page's headings (lowercase, punctuation dropped, spaces to hyphens,
    repeats numbered)."""
    seen: dict[str, int] = {}
    found = set()
    for _, line, fenced in _prose_lines(markdown):
        match = re.match(r"^#{1,6} +(.*?)#*\s*$", line)
        if fenced or match is None:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1)).strip().lower()
        slug = "".join(
            char for char in text if char in " -_" or unicodedata.category(char)[0] in "LN"
        ).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def check_links(root: Path, pages: Iterable[str]) -> list[str]:
    """Every relative link resolves to a file of the repository, and its #anchor to a heading there."""
    problems = []
    for page in pages:
        path = root / page
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        for number, line, fenced in _prose_lines(text):
            if fenced:
                continue
            for target in _LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue  # https:, mailto: ...
                file_part, _, anchor = target.partition("#")
                linked = (path.parent / file_part).resolve() if file_part else path
                if not linked.is_relative_to(root.resolve()) or not linked.exists():
                    problems.append(f"{page}:{number}: link {target!r}: no such file in the repository")
                    continue
                if (
                    anchor
                    and linked.suffix == ".md"
                    and anchor not in slugs(linked.read_text(encoding="utf-8"))
                ):
                    problems.append(f"{page}:{number}: link {target!r}: no heading with anchor #{anchor}")
    return problems


_TOP_LEVEL: Final = ("shared", "cli", "local", "tests", "infra", "docs", ".github", ".ci")
_PATH: Final = re.compile(r"^\.?[\w-]+(?:/[\w.-]+)*/?$")


def check_named_paths(root: Path, docs: Mapping[str, str]) -> list[str]:
    """A repository path the docs name in backticks (``shared/budget.py``, ``local/host/``) exists, and
    no page cites a Markdown file that does not ship (``DESIGN.md``)."""
    problems = []
    for page, text in docs.items():
        for number, line, fenced in _prose_lines(text):
            if fenced:
                continue
            for tick in _ticked(line):
                named = _PATH.match(tick) and tick.split("/")[0] in _TOP_LEVEL and "/" in tick
                if named and not (root / tick).exists():
                    problems.append(f"{page}:{number}: `{tick}` does not exist in the repository")
            for cited in re.findall(r"(?<![\w/.-])([\w.-]+\.md)\b", line):
                if not any((root / where / cited).is_file() for where in ("", "docs")):
                    problems.append(
                        f"{page}:{number}: cites {cited}, which does not ship with the repository"
                    )
    return problems


@dataclass(frozen=True, slots=True)
class PythonExample:
    page: str
    line: int
    source: str
    runnable: bool


def python_examples(docs: Mapping[str, str]) -> list[PythonExample]:
    """Every fenced ``python`` block; ``python runnable`` marks the ones the tests run."""
    found = []
    for page, text in docs.items():
        block: list[str] | None = None
        start, runnable = 0, False
        for number, line, _ in _prose_lines(text):
            match = _FENCE.match(line.strip())
            if block is None and match and match.group(2).split()[:1] == ["python"]:
                block, start, runnable = [], number, "runnable" in match.group(2).split()[1:]
            elif block is not None and match and not match.group(2).strip():
                found.append(PythonExample(page, start, "\n".join(block) + "\n", runnable))
                block = None
            elif block is not None:
                block.append(line)
    return found


def check_python_examples(examples: Iterable[PythonExample]) -> list[str]:
    problems = []
    for example in examples:
        try:
            compile(example.source, f"{example.page}:{example.line}", "exec")
        except SyntaxError as exc:
            problems.append(f"{example.page}:{example.line}: the Python example does not compile: {exc.msg}")
    return problems


def check_readme_length(readme: str, limit: int = README_MAX_LINES) -> list[str]:
    lines = len(readme.splitlines())
    return [f"README.md has {lines} lines, more than {limit}: move detail to docs/"] if lines > limit else []
