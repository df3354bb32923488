"""Read the project's Bicep the way the infra checks need it: parsed by pycep-parser, then the few
expressions that decide names and app settings evaluated from parameter defaults.

pycep turns a Bicep file into a JSON-like tree. Values come back as plain Python data, except that
expressions are dicts ``{"function": {...}}`` / ``{"operator": {...}}`` and loops/conditions wrap a
body in ``{"loop_type": ..., "config": ...}`` / ``{"condition": ..., "config": ...}``. Two pycep
quirks shape the evaluator below:

- an identifier and a string literal both come back as ``str`` (``name: foo`` and ``name: 'foo'``
  are the same ``"foo"``), so a string that names something in scope is read as a reference
  (while a quoted object key keeps its quotes, ``"'azd-service-name'"``);
- an interpolated string stays raw text (``'${a}-ledger'`` is ``"${a}-ledger"``), so its ``${...}``
  holes are filled with a regex: the tree has nothing finer to offer.

Whatever only exists at deployment time (a module output, a resource property, ``uniqueString``)
evaluates to a ``Runtime`` marker that records the expression it stands for.
"""

from __future__ import annotations

import operator as operator_module
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

from pycep import BicepParser

__all__ = [
    "INFRA_DIR",
    "REPO_ROOT",
    "Deployment",
    "ModuleInstance",
    "Runtime",
    "Template",
    "bicep_files",
    "condition",
    "evaluate",
    "load_deployment",
    "parse_bicep",
    "resource_body",
]

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
INFRA_DIR: Final = REPO_ROOT / "infra"

Tree = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Runtime:
    """A value known only when Azure deploys the template; ``source`` is what it stands for."""

    source: str


@cache
def _parser() -> Any:
    return BicepParser()


@cache
def parse_bicep(text: str) -> Tree:
    """Parse Bicep source; raises (lark/pycep errors) when the text is not valid Bicep."""
    tree = _parser().parse(text=text)
    if not isinstance(tree, dict):
        raise TypeError(f"pycep returned {type(tree).__name__}, not a tree")
    return tree


def bicep_files(infra_dir: Path = INFRA_DIR) -> list[Path]:
    return sorted(infra_dir.rglob("*.bicep"))


def resource_body(declaration: Tree) -> tuple[Tree, Tree | None]:
    """The object body of a resource/module declaration and its loop (if any), conditions unwrapped."""
    config = declaration["config"]
    loop = None
    if isinstance(config, dict) and "loop_type" in config:
        loop = config["loop_type"]
        config = config["config"]
    if isinstance(config, dict) and set(config) == {"condition", "config"}:
        config = config["config"]
    if not isinstance(config, dict):
        raise TypeError(f"unexpected declaration body {config!r}")
    return config, loop


def condition(declaration: Tree) -> object:
    """The raw ``if (...)`` condition of a resource/module declaration; ``True`` when it has none."""
    config = declaration["config"]
    if isinstance(config, dict) and "loop_type" in config:
        config = config["config"]
    if isinstance(config, dict) and set(config) == {"condition", "config"}:
        return config["condition"]
    return True


_HOLE = re.compile(r"\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")


def evaluate(value: object, scope: Mapping[str, object]) -> object:
    """Evaluate a pycep value in ``scope`` (identifier -> evaluated value)."""
    if isinstance(value, str):
        return _evaluate_string(value, scope)
    if isinstance(value, list):
        return [evaluate(item, scope) for item in value]
    if isinstance(value, dict):
        if "loop_type" in value:
            return _evaluate_loop(value, scope)
        if set(value) == {"function"}:
            return _evaluate_function(value["function"], scope)
        if set(value) == {"operator"}:
            return _evaluate_operator(value["operator"], scope)
        return {_key(key): evaluate(item, scope) for key, item in value.items()}
    return value  # bool, int, None


def _key(key: str) -> str:
    """pycep keeps the quotes of a quoted object key (``'azd-service-name': x``)."""
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def _evaluate_string(text: str, scope: Mapping[str, object]) -> object:
    if text in scope:
        return scope[text]
    if "${" not in text:
        return text
    runtime: list[str] = []

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        resolved = scope.get(name, Runtime(name))
        if isinstance(resolved, str):
            return resolved
        if isinstance(resolved, int) and not isinstance(resolved, bool):
            return str(resolved)  # Bicep interpolates an int as its decimal digits
        runtime.append(name)
        return "${" + (resolved.source if isinstance(resolved, Runtime) else name) + "}"

    filled = _HOLE.sub(fill, text)
    return Runtime(filled) if runtime else filled


def _evaluate_loop(loop: Tree, scope: Mapping[str, object]) -> object:
    detail = loop["loop_type"]["detail"]
    items = evaluate(detail["array_name"], scope)
    if not isinstance(items, list):
        return Runtime(f"loop over {detail['array_name']!r}")
    results = []
    for index, item in enumerate(items):
        inner = {**scope, detail["item_name"]: item}
        if "index_name" in detail:
            inner[detail["index_name"]] = index
        results.append(evaluate(loop["config"], inner))
    return results


def _evaluate_function(function: Tree, scope: Mapping[str, object]) -> object:
    kind = function["type"]
    args = [evaluate(arg, scope) for arg in (function.get("parameters") or {}).values() if arg is not None]
    if kind == "concat" and all(isinstance(arg, list) for arg in args):
        return [item for arg in args if isinstance(arg, list) for item in arg]
    if kind == "concat" and all(isinstance(arg, str) for arg in args):
        return "".join(str(arg) for arg in args)
    if kind == "union" and all(isinstance(arg, dict) for arg in args):
        merged: dict[str, object] = {}
        for arg in args:
            if isinstance(arg, dict):
                merged.update(arg)
        return merged
    if kind == "items" and len(args) == 1 and isinstance(args[0], dict):
        return [{"key": key, "value": item} for key, item in sorted(args[0].items())]
    if kind == "empty" and len(args) == 1 and isinstance(args[0], str | list | dict):
        return len(args[0]) == 0
    named_subscription = (function.get("parameters") or {}).get("subscription_id") is not None
    if (
        kind == "subscription_resource_id"
        and not named_subscription
        and all(isinstance(a, str) for a in args)
    ):
        # The subscription is a deploy-time value; the type and name are what the checks compare.
        return "/subscriptions/{subscription}/providers/" + "/".join(str(arg) for arg in args)
    return Runtime(f"{kind}(...)")


_COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "equals": operator_module.eq,
    "not_equals": operator_module.ne,
    "greater_than": operator_module.gt,
    "greater_than_or_equals": operator_module.ge,
    "less_than": operator_module.lt,
    "less_than_or_equals": operator_module.le,
}


def _evaluate_operator(operator: Tree, scope: Mapping[str, object]) -> object:
    kind = operator["type"]
    operands = operator["operands"]
    if kind == "property_accessor":
        target = evaluate(operands["operand_1"], scope)
        return _access(target, operands["operand_2"], scope, str(operands["operand_1"]))
    if kind == "conditional":
        condition = evaluate(operands["condition"], scope)
        if isinstance(condition, bool):
            return evaluate(operands["true_value" if condition else "false_value"], scope)
        return Runtime("conditional")
    if kind == "not":
        inner = evaluate(operands["bool_value"], scope)
        return (not inner) if isinstance(inner, bool) else Runtime("not")
    if kind in _COMPARISONS:
        left, right = (evaluate(operands[name], scope) for name in ("operand_1", "operand_2"))
        if isinstance(left, Runtime) or isinstance(right, Runtime):
            return Runtime(kind)
        if kind in ("equals", "not_equals"):
            return _COMPARISONS[kind](left, right)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
        return _COMPARISONS[kind](left, right) if numbers else Runtime(kind)
    if kind in ("and", "or"):
        left, right = (evaluate(operands[name], scope) for name in ("operand_1", "operand_2"))
        if isinstance(left, bool) and isinstance(right, bool):
            return (left and right) if kind == "and" else (left or right)
        return Runtime(kind)
    if kind == "index_accessor":
        target = evaluate(operands["operand_1"], scope)
        index = evaluate(operands["operand_2"], scope)
        if isinstance(target, dict) and isinstance(index, str) and index in target:
            return target[index]
        if isinstance(target, list) and isinstance(index, int) and 0 <= index < len(target):
            return target[index]
        return Runtime(f"{operands['operand_1']}[...]")
    return Runtime(kind)


def _access(target: object, accessor: object, scope: Mapping[str, object], path: str) -> object:
    """``target.a.b``: pycep nests ``a.b`` as a property_accessor whose operand_1 is the key ``a``."""
    if isinstance(accessor, dict) and set(accessor) == {"operator"}:
        inner = accessor["operator"]
        if inner["type"] == "property_accessor":
            key = inner["operands"]["operand_1"]
            if isinstance(key, dict):  # a.b[i].c: the step is b[i]
                step, key = _index_step(target, key, scope), "<index>"
            else:
                step = target.get(key, Runtime(f"{path}.{key}")) if isinstance(target, dict) else None
            if step is None or isinstance(target, Runtime):
                step = Runtime(f"{path}.{key}")
            return _access(step, inner["operands"]["operand_2"], scope, f"{path}.{key}")
        return Runtime(f"{path}.<{inner['type']}>")
    if isinstance(accessor, str):
        if isinstance(target, dict) and accessor in target:
            return target[accessor]
        return Runtime(f"{path}.{accessor}")
    return Runtime(path)


def _index_step(target: object, key: Tree, scope: Mapping[str, object]) -> object:
    """``b[i]`` of ``target`` (``target.b[i]``); Runtime when either part is unknown."""
    operator = key.get("operator")
    if not (isinstance(operator, dict) and operator.get("type") == "index_accessor"):
        return Runtime("<accessor>")
    name = operator["operands"]["operand_1"]
    items = target.get(name) if isinstance(target, dict) and isinstance(name, str) else None
    index = evaluate(operator["operands"]["operand_2"], scope)
    if isinstance(items, list) and isinstance(index, int) and 0 <= index < len(items):
        return items[index]
    return Runtime(f"{name}[...]")


@dataclass(frozen=True)
class Template:
    """One parsed Bicep file."""

    path: Path
    tree: Tree

    @classmethod
    def load(cls, path: Path) -> Template:
        return cls(path, parse_bicep(path.read_text(encoding="utf-8")))

    def section(self, name: str) -> dict[str, Tree]:
        section = self.tree.get(name) or {}
        assert isinstance(section, dict)
        return section

    @property
    def parameters(self) -> dict[str, Tree]:
        return self.section("parameters")

    @property
    def resources(self) -> dict[str, Tree]:
        return self.section("resources")

    @property
    def modules(self) -> dict[str, Tree]:
        return self.section("modules")

    def scope(self, arguments: Mapping[str, object] | None = None) -> dict[str, object]:
        """Parameters (arguments over defaults) and variables, evaluated."""
        scope: dict[str, object] = {}
        for name, parameter in self.parameters.items():
            if arguments is not None and name in arguments:
                scope[name] = arguments[name]
            elif parameter.get("default") is not None:
                scope[name] = evaluate(parameter["default"], scope)
            else:
                scope[name] = Runtime(f"param {name}")
        variables = self.section("variables")
        for _ in range(2):  # a variable may use one declared after it
            for name, variable in variables.items():
                scope[name] = evaluate(variable["value"], scope)
        return scope

    def module_path(self, symbol: str) -> Path:
        relative = str(self.modules[symbol]["detail"]["path"])
        return (self.path.parent / relative).resolve()

    def module_arguments(self, symbol: str) -> Tree:
        body, _ = resource_body(self.modules[symbol])
        params = body.get("params") or {}
        assert isinstance(params, dict)
        return params


@dataclass(frozen=True)
class ModuleInstance:
    """A template evaluated with the arguments one caller gives it."""

    symbol: str
    template: Template
    scope: dict[str, object]

    def created(self, resource_type: str) -> Iterator[tuple[str, Tree, dict[str, object]]]:
        """(symbol, evaluated body, item scope) of every resource of that type this module creates
        (a resource whose ``if`` condition is false is not created)."""
        for symbol, declaration in self.template.resources.items():
            if declaration["type"] != resource_type or declaration.get("existing"):
                continue
            if evaluate(condition(declaration), self.scope) is False:
                continue
            body, loop = resource_body(declaration)
            if loop is None:
                yield symbol, _as_tree(evaluate(body, self.scope)), self.scope
                continue
            for item in _as_list(evaluate({"loop_type": loop, "config": body}, self.scope)):
                yield symbol, _as_tree(item), self.scope

    def declarations(self, resource_type: str) -> Iterator[tuple[str, Tree]]:
        """Raw bodies (not evaluated) of every declaration of that type, created or existing."""
        for symbol, declaration in self.template.resources.items():
            if declaration["type"] == resource_type:
                yield symbol, resource_body(declaration)[0]


def _as_tree(value: object) -> Tree:
    return value if isinstance(value, dict) else {}


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


@dataclass
class Deployment:
    """main.bicep and every module it calls, each evaluated with main's parameter defaults."""

    main: Template
    main_scope: dict[str, object]
    modules: dict[str, ModuleInstance] = field(default_factory=dict)

    @property
    def instances(self) -> list[ModuleInstance]:
        return [ModuleInstance("main", self.main, self.main_scope), *self.modules.values()]

    def deployed(self, module_symbol: str) -> bool:
        """Whether main.bicep deploys that module: its condition holds (or is known only at deployment)."""
        holds = evaluate(condition(self.main.modules[module_symbol]), self.main_scope)
        return holds is not False

    def created(self, resource_type: str) -> list[tuple[ModuleInstance, str, Tree]]:
        return [
            (instance, symbol, body)
            for instance in self.instances
            for symbol, body, _ in instance.created(resource_type)
        ]

    def created_names(self, resource_type: str) -> set[str]:
        return {str(body.get("name")) for _, _, body in self.created(resource_type)}


def load_deployment(infra_dir: Path = INFRA_DIR, arguments: Mapping[str, object] | None = None) -> Deployment:
    """main.bicep with its defaults, or with ``arguments`` (parameter -> value) over them."""
    main = Template.load(infra_dir / "main.bicep")
    deployment = Deployment(main, main.scope(arguments))
    for symbol in main.modules:
        passed = evaluate(main.module_arguments(symbol), deployment.main_scope)
        assert isinstance(passed, dict)
        template = Template.load(main.module_path(symbol))
        deployment.modules[symbol] = ModuleInstance(symbol, template, template.scope(passed))
    return deployment
