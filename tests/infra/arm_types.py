"""Check every resource body in infra/ against the Azure resource type definitions that the Bicep
compiler itself uses (``../shared/azure-types/schemas.json``, extracted from Azure/bicep-types-az):
there is no Bicep compiler here, and checkov and pycep see only syntax and policy.

For each resource declaration in each ``.bicep`` file (resources other engineers add included):

- ``type@apiVersion`` is a version the type has, not a preview where a later GA version exists,
  and its body schema is known;
- the file's target scope (or ``scope:``, for an extension resource) is one the type deploys at;
- every property name exists on its object type (or the object takes additional properties);
- literal values have the right kind (string, int, bool, object, array), closed enums hold one of
  their values, strings and ints stay within their bounds;
- no read-only property is set; every required property of an object literal is there;
- each ``roleDefinitionId`` is ``subscriptionResourceId('Microsoft.Authorization/roleDefinitions',
  <GUID>)`` with a GUID confirmed on Microsoft's built-in roles page (schemas.json ``roles``);
- the platform rules that no schema encodes (schemas.json ``platformRules``): the ``siteConfig``
  properties ARM rejects on Flex Consumption sites, and the lowest ``maximumInstanceCount`` that
  every region accepts.

Values are what ``bicep_model.evaluate`` makes of them: parameter defaults (or the arguments
main.bicep passes to a module) and variables are resolved, loops over known arrays are expanded.
NOT checked: whatever is known only at deployment (module outputs, resource properties, function
calls such as ``uniqueString``/``resourceId``, conditionals on such values, loops over them), a
parameter's other ``@allowed`` values than its default, bodies of ``existing`` resources (only their
type@apiVersion), and a string literal that spells the name of a symbol in scope (pycep returns
identifiers and string literals alike, so it is taken for the reference).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from tests.infra.bicep_model import (
    INFRA_DIR,
    REPO_ROOT,
    Runtime,
    Template,
    Tree,
    bicep_files,
    evaluate,
    load_deployment,
    resource_body,
)

__all__ = [
    "SCHEMAS_PATH",
    "Declaration",
    "Finding",
    "Schemas",
    "check_declaration",
    "check_role_guids",
    "check_value",
    "declarations",
]

SCHEMAS_PATH: Final = REPO_ROOT.parent / "shared" / "azure-types" / "schemas.json"

ROLE_DEFINITIONS: Final = "Microsoft.Authorization/roleDefinitions"
SITES: Final = "Microsoft.Web/sites"
#: bicep-types ScopeType flags (the ``writable`` mask of a resource in schemas.json).
SCOPE_FLAGS: Final = {"tenant": 1, "managementGroup": 2, "subscription": 4, "resourceGroup": 8}
EXTENSION_FLAG: Final = 16
#: Bicep keywords of a resource body that are not part of the ARM resource.
BICEP_KEYWORDS: Final = frozenset({"parent", "scope", "dependsOn"})
GUID: Final = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Finding:
    """One result: ``error`` (ARM or the compiler would refuse it) or ``unchecked`` (no schema)."""

    kind: Literal["error", "unchecked"]
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Schemas:
    """schemas.json, read-only."""

    data: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path = SCHEMAS_PATH) -> Schemas:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def versions(self, resource_type: str) -> list[str] | None:
        versions = self.data["versions"].get(resource_type)
        return list(versions) if versions is not None else None

    def resource(self, resource_type: str, api_version: str) -> Mapping[str, Any] | None:
        resource: Mapping[str, Any] | None = self.data["resources"].get(f"{resource_type}@{api_version}")
        return resource

    def type(self, index: int) -> Mapping[str, Any]:
        entry: Mapping[str, Any] = self.data["types"][index]
        return entry

    @property
    def built_in_roles(self) -> Mapping[str, Mapping[str, Any]]:
        roles: Mapping[str, Mapping[str, Any]] = self.data["roles"]["builtIn"]
        return roles

    @property
    def platform_rules(self) -> Mapping[str, Any]:
        rules: Mapping[str, Any] = self.data["platformRules"]
        return rules


@dataclass(frozen=True, slots=True)
class Declaration:
    """One resource declaration of one template, with the scope its values are evaluated in."""

    template: Template
    symbol: str
    scope: Mapping[str, object]

    @property
    def raw(self) -> Tree:
        declaration: Tree = self.template.resources[self.symbol]
        return declaration

    @property
    def where(self) -> str:
        return f"{self.template.path.name}:{self.symbol}"

    def bodies(self) -> Iterator[object]:
        """The evaluated body; for a loop, once with the loop variables unknown (so that an empty or
        deploy-time loop is still checked), then once per item when the array is known."""
        body, loop = resource_body(self.raw)
        if loop is None:
            yield evaluate(body, self.scope)
            return
        detail = loop["detail"]
        unknown = {
            name: Runtime(f"loop variable {name}")
            for name in (detail.get("item_name"), detail.get("index_name"))
            if isinstance(name, str)
        }
        yield evaluate(body, {**self.scope, **unknown})
        items = evaluate({"loop_type": loop, "config": body}, self.scope)
        if isinstance(items, list):
            yield from items


def _symbols(template: Template) -> dict[str, object]:
    """Resource and module symbols: references to them are deploy-time values."""
    return {name: Runtime(name) for name in (*template.resources, *template.modules)}


def declarations(
    infra_dir: Path = INFRA_DIR, main_arguments: Mapping[str, object] | None = None
) -> list[Declaration]:
    """Every resource declaration under ``infra_dir``. A module that main.bicep calls is evaluated
    with the arguments main passes (once per call), main with its defaults or ``main_arguments``;
    any other file with its own parameter defaults."""
    called: dict[Path, list[tuple[Template, dict[str, object]]]] = {}
    if (infra_dir / "main.bicep").is_file():
        for instance in load_deployment(infra_dir, main_arguments).instances:
            called.setdefault(instance.template.path.resolve(), []).append(
                (instance.template, instance.scope)
            )
    found: list[Declaration] = []
    for path in bicep_files(infra_dir):
        if path.resolve() not in called:
            template = Template.load(path)
            called[path.resolve()] = [(template, template.scope())]
        for template, scope in called[path.resolve()]:
            full_scope = {**_symbols(template), **scope}
            found.extend(Declaration(template, symbol, full_scope) for symbol in template.resources)
    return found


# --- checks ------------------------------------------------------------------------------------------


def check_declaration(declaration: Declaration, schemas: Schemas) -> list[Finding]:
    """Everything the module docstring lists, for one resource declaration."""
    raw = declaration.raw
    resource_type, api_version = str(raw["type"]), str(raw["api_version"])
    where = declaration.where
    versions = schemas.versions(resource_type)
    if versions is None:
        return [
            Finding(
                "unchecked",
                where,
                f"schemas.json has no type {resource_type}: its body is not checked "
                "(extend ../shared/azure-types to check it)",
            )
        ]
    if api_version not in versions:
        return [
            Finding(
                "error",
                where,
                f"{resource_type}@{api_version} does not exist; known apiVersions: {', '.join(versions)}",
            )
        ]
    if api_version.endswith("-preview"):
        later_ga = [v for v in versions if "-preview" not in v and v > api_version]
        if later_ga:
            return [
                Finding(
                    "error",
                    where,
                    f"{resource_type}@{api_version} is a preview apiVersion; GA versions exist: "
                    f"{', '.join(later_ga)}",
                )
            ]
    resource = schemas.resource(resource_type, api_version)
    if resource is None:
        return [
            Finding(
                "unchecked",
                where,
                f"schemas.json has no body schema for {resource_type}@{api_version}: not checked",
            )
        ]
    if raw.get("existing"):
        return []
    findings = _check_scope(declaration, resource)
    checker = _BodyChecker(schemas, where)
    for body in declaration.bodies():
        resource_part = (
            {key: value for key, value in body.items() if key not in BICEP_KEYWORDS}
            if isinstance(body, dict)
            else body
        )
        checker.check(resource_part, int(resource["body"]), "")
    findings.extend(checker.findings)
    if resource_type == "Microsoft.Authorization/roleAssignments":
        findings.extend(_check_role_definition(declaration, schemas))
    if resource_type == SITES:
        for body in declaration.bodies():
            findings.extend(_check_flex_rules(body, schemas, where))
    return _unique(findings)


def _check_scope(declaration: Declaration, resource: Mapping[str, Any]) -> list[Finding]:
    body, _ = resource_body(declaration.raw)
    writable = int(resource.get("writable", 0))
    if "scope" in body:
        target, flag = "an extension resource (scope:)", EXTENSION_FLAG
    else:
        globals_ = declaration.template.tree.get("globals") or {}
        target = str((globals_.get("scope") or {}).get("value") or "resourceGroup")
        flag = SCOPE_FLAGS.get(target, 0)
    if writable & flag:
        return []
    return [Finding("error", declaration.where, f"{declaration.raw['type']} cannot be deployed at {target}")]


def check_value(value: object, type_index: int, schemas: Schemas, where: str = "<value>") -> list[Finding]:
    """Findings for one evaluated value against one schema type (the walk behind every body check)."""
    checker = _BodyChecker(schemas, where)
    checker.check(value, type_index, "")
    return checker.findings


class _BodyChecker:
    """Walks an evaluated body against a schema type, collecting findings."""

    def __init__(self, schemas: Schemas, where: str) -> None:
        self.schemas = schemas
        self.where = where
        self.findings: list[Finding] = []

    def error(self, path: str, message: str) -> None:
        self.findings.append(Finding("error", self.where, f"{path or '<body>'}: {message}"))

    def check(self, value: object, type_index: int, path: str) -> None:
        if isinstance(value, Runtime) or value is None:
            return  # known only at deployment; null means not set
        schema = self.schemas.type(type_index)
        kind = schema["k"]
        if kind == "any":
            return
        if kind == "string":
            self._check_string(value, schema, path)
        elif kind == "int":
            self._check_int(value, schema, path)
        elif kind == "bool":
            if not isinstance(value, bool):
                self.error(path, f"expects a bool, got {value!r}")
        elif kind == "enum":
            self._check_enum(value, schema, path)
        elif kind == "array":
            if not isinstance(value, list):
                self.error(path, f"expects an array, got {value!r}")
                return
            for index, item in enumerate(value):
                self.check(item, int(schema["item"]), f"{path}[{index}]")
        elif kind == "object":
            self._check_object(value, schema, path)
        elif kind == "dobj":
            self._check_discriminated(value, schema, path)
        else:
            self.error(path, f"schema kind {kind!r} is not understood by this checker")

    def _check_string(self, value: object, schema: Mapping[str, Any], path: str) -> None:
        if not isinstance(value, str):
            self.error(path, f"expects a string, got {value!r}")
            return
        if "minLen" in schema and len(value) < schema["minLen"]:
            self.error(path, f"{value!r} is shorter than {schema['minLen']} characters")
        if "maxLen" in schema and len(value) > schema["maxLen"]:
            self.error(path, f"{value!r} is longer than {schema['maxLen']} characters")

    def _check_int(self, value: object, schema: Mapping[str, Any], path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"expects an int, got {value!r}")
            return
        if "min" in schema and value < schema["min"]:
            self.error(path, f"{value} is below the minimum {schema['min']}")
        if "max" in schema and value > schema["max"]:
            self.error(path, f"{value} is above the maximum {schema['max']}")

    def _check_enum(self, value: object, schema: Mapping[str, Any], path: str) -> None:
        allowed = list(schema["v"])
        if not isinstance(value, str):
            self.error(path, f"expects one of {allowed}, got {value!r}")
        elif not schema.get("open") and value not in allowed:
            self.error(path, f"{value!r} is not one of {allowed}")

    def _check_object(self, value: object, schema: Mapping[str, Any], path: str) -> None:
        if not isinstance(value, dict):
            self.error(path, f"expects an object ({schema.get('name', 'object')}), got {value!r}")
            return
        properties: Mapping[str, list[Any]] = schema.get("p", {})
        for name, item in value.items():
            child = f"{path}.{name}" if path else name
            if name in properties:
                type_index, flags = properties[name]
                if "O" in flags:
                    self.error(child, "is read-only: ARM sets it, a template must not")
                else:
                    self.check(item, int(type_index), child)
            elif "ap" in schema:
                self.check(item, int(schema["ap"]), child)
            else:
                self.error(child, f"is not a property of {schema.get('name', 'this object')}")
        for name, (_, flags) in properties.items():
            if "R" in flags and "O" not in flags and name not in value:
                self.error(f"{path}.{name}" if path else name, "is required")

    def _check_discriminated(self, value: object, schema: Mapping[str, Any], path: str) -> None:
        if not isinstance(value, dict):
            self.error(path, f"expects an object ({schema['name']}), got {value!r}")
            return
        discriminator = str(schema["d"])
        variants: Mapping[str, int] = schema["el"]
        tag = value.get(discriminator)
        if isinstance(tag, Runtime):
            return  # a deploy-time discriminator leaves the variant, and so the body, unknown
        if isinstance(tag, str) and tag in variants:
            self.check(value, int(variants[tag]), path)
        else:
            where = f"{path}.{discriminator}" if path else discriminator
            self.error(where, f"{tag!r} is not one of {list(variants)}")


def _check_role_definition(declaration: Declaration, schemas: Schemas) -> list[Finding]:
    """roleDefinitionId names a confirmed built-in role (resolved through variables/parameters)."""
    body, _ = resource_body(declaration.raw)
    properties = body.get("properties")
    raw = properties.get("roleDefinitionId") if isinstance(properties, dict) else None
    variables = declaration.template.section("variables")
    if isinstance(raw, str) and raw in variables:
        raw = variables[raw]["value"]
    function = raw.get("function") if isinstance(raw, dict) else None
    arguments = function.get("parameters") if isinstance(function, dict) else None
    expected = f"subscriptionResourceId('{ROLE_DEFINITIONS}', '<built-in role GUID>')"
    if not (
        isinstance(function, dict)
        and function.get("type") == "subscription_resource_id"
        and isinstance(arguments, dict)
        and arguments.get("resource_type") == ROLE_DEFINITIONS
    ):
        return [Finding("error", declaration.where, f"roleDefinitionId must be {expected}")]
    guid = evaluate(arguments.get("resource_name_1"), declaration.scope)
    if not isinstance(guid, str):
        return [
            Finding("error", declaration.where, f"the role GUID is unknown before deployment: {expected}")
        ]
    if guid.lower() not in schemas.built_in_roles:
        return [
            Finding(
                "error",
                declaration.where,
                f"role {guid} is not a built-in role confirmed on Microsoft's built-in roles page",
            )
        ]
    return []


def _check_flex_rules(body: object, schemas: Schemas, where: str) -> list[Finding]:
    """The Flex Consumption rules of schemas.json, on sites that have a functionAppConfig."""
    properties = body.get("properties") if isinstance(body, dict) else None
    if not (isinstance(properties, dict) and "functionAppConfig" in properties):
        return []
    findings = []
    rules = schemas.platform_rules
    rejected = rules["flexRejectedSiteConfig"]
    site_config = properties.get("siteConfig")
    if isinstance(site_config, dict):
        for name in rejected["properties"]:
            if name in site_config:  # even null: ARM rejects the property being present
                findings.append(
                    Finding("error", where, f"properties.siteConfig.{name}: {rejected['message']}")
                )
    floor = rules["flexMaximumInstanceCountFloor"]
    config = properties["functionAppConfig"]
    scale = config.get("scaleAndConcurrency") if isinstance(config, dict) else None
    count = scale.get("maximumInstanceCount") if isinstance(scale, dict) else None
    if isinstance(count, int) and not isinstance(count, bool) and count < floor["min"]:
        findings.append(
            Finding(
                "error",
                where,
                f"properties.functionAppConfig.scaleAndConcurrency.maximumInstanceCount = {count} "
                f"({floor['severity']}): {floor['message']}",
            )
        )
    return findings


def check_role_guids(infra_dir: Path, schemas: Schemas) -> list[Finding]:
    """Every GUID written anywhere in the Bicep (each alternative of a role map included, not only
    the one the defaults select) is a confirmed built-in role: the template mints no other GUID."""
    findings = []
    for path in bicep_files(infra_dir):
        for match in GUID.finditer(path.read_text(encoding="utf-8")):
            if match.group(0).lower() not in schemas.built_in_roles:
                findings.append(
                    Finding(
                        "error",
                        path.relative_to(infra_dir).as_posix(),
                        f"{match.group(0)} is not a built-in role confirmed on the built-in roles page",
                    )
                )
    return findings


def _unique(findings: list[Finding]) -> list[Finding]:
    return list(dict.fromkeys(findings))
