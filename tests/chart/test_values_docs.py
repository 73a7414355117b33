"""values.yaml, its schema and the README table say the same thing."""

from __future__ import annotations

import json
import re
import shutil

import yaml

from localinfra import chart_tools
from tests.chart.conftest import CHART, Chart

PARAM = re.compile(r"^\s*## @param (\S+)")


def documented_parameters() -> set[str]:
    return {match.group(1) for line in (CHART / "values.yaml").read_text().splitlines() if (match := PARAM.match(line))}


def schema_parameters(node: dict, definitions: dict, path: str = "") -> set[str]:
    """Dotted paths of the schema's leaves: nodes without declared properties, following $refs."""
    if "$ref" in node:
        node = definitions[node["$ref"].rsplit("/", 1)[1]]
    if not node.get("properties"):
        return {path}
    return set().union(*(schema_parameters(child, definitions, f"{path}.{name}" if path else name) for name, child in node["properties"].items()))


def value_leaves(node: object, path: str = "") -> set[str]:
    """Dotted paths of the values' leaves (empty maps, lists and scalars)."""
    if isinstance(node, dict) and node:
        return set().union(*(value_leaves(child, f"{path}.{name}" if path else name) for name, child in node.items()))
    return {path}


def test_every_param_has_a_schema_entry_and_every_schema_entry_a_param() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    in_schema = schema_parameters(schema, schema["definitions"])
    documented = documented_parameters()
    assert documented - in_schema == set(), "documented but not in the schema"
    assert in_schema - documented == set(), "in the schema but not documented"


def test_every_value_is_documented() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert value_leaves(values) == documented_parameters()


def test_the_schema_is_strict() -> None:
    """Every object of the chart's own making refuses unknown keys; only Kubernetes pass-through objects are open."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    open_objects = []

    def walk(node: dict, path: str) -> None:
        if node.get("properties") and node.get("additionalProperties") is not False:
            open_objects.append(path)
        for name, child in node.get("properties", {}).items():
            walk(child, f"{path}.{name}")

    walk(schema, "")
    for name, definition in schema["definitions"].items():
        walk(definition, f"#{name}")
    passthrough = {"#podSecurityContext", "#podSecurityContext.seccompProfile", "#containerSecurityContext", "#containerSecurityContext.capabilities",
                   "#resources.requests", "#resources.limits", ".global"}
    assert set(open_objects) == passthrough


def test_the_readme_table_is_current(chart: Chart, tmp_path) -> None:
    readme = tmp_path / "README.md"
    shutil.copy2(CHART / "README.md", readme)
    chart_tools.generate_readme(readme)
    assert readme.read_text() == (CHART / "README.md").read_text(), "run: python -m localinfra.chart_tools readme"


def test_the_readme_check_notices_a_stale_table(chart: Chart, tmp_path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text((CHART / "values.yaml").read_text().replace("Replicas when autoscaling is off", "Replicas without an autoscaler", 1))
    readme = tmp_path / "README.md"
    shutil.copy2(CHART / "README.md", readme)
    chart_tools.generate_readme(readme, values)
    assert readme.read_text() != (CHART / "README.md").read_text()
