"""The chart's Grafana dashboards: Grafana's published TypeScript types accept them, and their queries parse."""

from __future__ import annotations

import promql_parser

from localinfra.grafana_schema import check
from tests.observability import DASHBOARD_FILES, dashboards, panels, queries, query_variables, substitute

EXPECTED = {"pipeline-overview", "triton", "service-detail"}


def test_the_three_dashboards_exist() -> None:
    assert {path.stem for path in DASHBOARD_FILES} == EXPECTED


def test_grafana_published_types_accept_every_dashboard() -> None:
    """tsc --strict with Grafana's Dashboard, panel-plugin and Prometheus query types: an unknown field or a wrong type fails."""
    assert check(DASHBOARD_FILES) == ""


def test_uids_and_panel_ids_are_unique_and_every_query_uses_the_datasource_variable() -> None:
    boards = dashboards()
    assert len({board["uid"] for board in boards.values()}) == len(boards)
    for name, board in boards.items():
        ids = [panel["id"] for panel in board["panels"]] + [inner["id"] for row in board["panels"] if row["type"] == "row" for inner in row["panels"]]
        assert len(ids) == len(set(ids)), name
        variables = {variable["name"] for variable in board["templating"]["list"]}
        assert "datasource" in variables, name
        for panel in panels(board):
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert all(target["datasource"] == panel["datasource"] for target in panel["targets"]), panel["title"]


def test_every_query_parses_once_its_variables_are_filled() -> None:
    for name, board in dashboards().items():
        values = dict.fromkeys(query_variables(board), "caption")
        for title, expression in queries(board):
            promql_parser.parse(substitute(expression, values))  # raises on a syntax error
