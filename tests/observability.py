"""The chart's Prometheus rules and Grafana dashboards as the tests read them: every PromQL expression they hold."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import promql_parser
import yaml

from tests.conftest import REPO_ROOT

FILES = REPO_ROOT / "helm" / "captioning" / "files"
RULE_FILES = sorted((FILES / "prometheus").glob("*.rules.yml"))
DASHBOARD_FILES = sorted((FILES / "dashboards").glob("*.json"))
RULE_TESTS = sorted((REPO_ROOT / "tests" / "prometheus").glob("*.test.yml"))
RUNBOOKS = REPO_ROOT / "docs" / "runbooks.md"
COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}
SET_OPERATORS = {"and", "or", "unless"}
# What Grafana puts in place of its built-in variables when it queries.
GRAFANA_BUILTINS = {"$__rate_interval": "1m", "$__interval": "10s", "$__range": "5m"}


def rules() -> list[dict]:
    """Every rule of every rule file, each with its group's name under ``group``."""
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [rule | {"group": group["name"]} for rule in group["rules"]]
    return found


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


def recording_rules() -> list[dict]:
    return [rule for rule in rules() if "record" in rule]


def dashboards() -> dict[str, dict]:
    """File stem -> dashboard JSON."""
    return {path.stem: json.loads(path.read_text()) for path in DASHBOARD_FILES}


def panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, those inside rows included (rows themselves excluded)."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel["panels"]
        else:
            yield panel


def queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of every panel."""
    return [(panel["title"], target["expr"]) for panel in panels(dashboard) for target in panel["targets"]]


def query_variables(dashboard: dict) -> dict[str, str]:
    """Name -> ``label_values(selector, label)`` of each template variable filled by a query."""
    return {variable["name"]: variable["query"] for variable in dashboard["templating"]["list"] if variable["type"] == "query"}


def label_values(query: str) -> tuple[str, str]:
    """(selector, label) of a ``label_values(selector, label)`` variable query."""
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
    assert match, f"unsupported variable query {query!r}"
    return match.group(1), match.group(2)


def substitute(expression: str, values: dict[str, str]) -> str:
    """``expression`` with Grafana's built-in variables and the template variables ``values`` replaced."""
    for name, value in {**GRAFANA_BUILTINS, **{f"${key}": value for key, value in values.items()}}.items():
        expression = expression.replace(name, value)
    assert "$" not in expression, f"a variable is left in {expression!r}"
    return expression


def _children(node) -> list:
    children = []
    for attribute in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(node, attribute, None)
        if child is not None and hasattr(child, "prettify"):
            children.append(child)
    return children + [arg for arg in getattr(node, "args", None) or [] if hasattr(arg, "prettify")]


def selectors(expression: str) -> list:
    """Every vector selector in ``expression`` (those inside range selectors included)."""
    found, pending = [], [promql_parser.parse(expression)]
    while pending:
        node = pending.pop()
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        pending += _children(node)
    return found


def matchers(selector) -> dict[str, str]:
    """Label -> value of the selector's equality matchers."""
    return {m.name: m.value for m in selector.matchers.matchers if str(m.op) == "MatchOp.Equal"}


def probes(expression: str) -> list[str]:
    """Expressions that return series exactly when every condition of ``expression`` can be evaluated.

    An alert's expression returns nothing while the alert is quiet, so it cannot show
    by itself that its inputs exist. Its conditions are found in the syntax tree:
    ``and``/``or``/``unless`` split it into their operands, and a filtering comparison
    (``a > b``) becomes its ``bool`` form (``a > bool b``), which returns 0 or 1 for
    every pair of series the comparison sees, and nothing when either side has none.
    """
    node = promql_parser.parse(expression)
    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    if isinstance(node, promql_parser.BinaryExpr):
        operator = str(node.op)
        if operator in SET_OPERATORS:
            return probes(node.lhs.prettify()) + probes(node.rhs.prettify())
        modifier = node.modifier
        if operator in COMPARISONS and not (modifier is not None and modifier.return_bool):
            matching = str(modifier) if modifier is not None else ""
            return [f"({node.lhs.prettify()}) {operator} bool {matching} ({node.rhs.prettify()})"]
    return [expression]
