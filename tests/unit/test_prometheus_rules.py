"""The chart's Prometheus rules: promtool checks them and runs their unit tests; every alert is tested and documented."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from localinfra.prometheus import binary
from tests.observability import (
    DASHBOARD_FILES, RULE_FILES, RULE_TESTS, RUNBOOKS, alerts, dashboards, matchers, queries, query_variables, rules, selectors, substitute,
)

SEVERITIES = {"critical", "warning"}


@pytest.fixture(scope="module")
def promtool():
    return binary("promtool")


def test_the_rule_files_and_their_tests_exist() -> None:
    assert RULE_FILES and RULE_TESTS and DASHBOARD_FILES


def test_promtool_accepts_the_rule_files(promtool) -> None:
    result = subprocess.run([str(promtool), "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(promtool) -> None:
    result = subprocess.run([str(promtool), "test", "rules", *map(str, RULE_TESTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS), result.stdout


def test_every_alert_has_a_test_where_it_fires_and_one_where_it_stays_quiet() -> None:
    fires, quiet = set(), set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {alert["alert"] for alert in alerts()}
    assert names - fires == set(), "alerts without a test where they fire"
    assert names - quiet == set(), "alerts without a test where they stay quiet"
    assert (fires | quiet) - names == set(), "tests of alerts that do not exist"


def _anchors() -> set[str]:
    """GitHub's anchors of the runbook's headings."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", RUNBOOKS.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("alert", alerts(), ids=lambda alert: alert["alert"])
def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook_section(alert) -> None:
    assert alert["labels"]["severity"] in SEVERITIES
    annotations = alert["annotations"]
    assert annotations["summary"].strip() and annotations["description"].strip()
    path, _, anchor = annotations["runbook_url"].partition("#")
    assert path == "docs/runbooks.md" and anchor in _anchors(), f"{annotations['runbook_url']} is no section of docs/runbooks.md"


def test_names_are_unique() -> None:
    names = [rule.get("alert") or rule["record"] for rule in rules()]
    assert len(names) == len(set(names))


def test_every_metric_read_by_a_rule_or_a_dashboard_is_selected_by_the_pipeline_label() -> None:
    """Raw metrics (not recorded ones, whose names have colons) come only from targets labelled pipeline="captioning"."""
    expressions = [(rule.get("alert") or rule["record"], rule["expr"]) for rule in rules()]
    for name, board in dashboards().items():
        values = dict.fromkeys(query_variables(board), "any")
        expressions += [(f"{name}: {title}", substitute(expr, values)) for title, expr in queries(board)]
    unselected = [
        (where, selector.name)
        for where, expression in expressions
        for selector in selectors(expression)
        if ":" not in selector.name and matchers(selector).get("pipeline") != "captioning"
    ]
    assert unselected == []
