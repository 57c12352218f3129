"""Grafana: provisioned datasources and the five dashboards are well-formed, refer only
to provisioned datasources, and query Loki by the labels and structured metadata the
agent actually sends."""

from __future__ import annotations

import json
import re

import yaml

from agent.config import PipelineConfig
from tests.deploy.expressions import DASHBOARDS, DEPLOY, logql_queries

PROVISIONING = DEPLOY / "grafana" / "provisioning"
REQUIRED_DASHBOARDS = {
    "nexo-host-overview",
    "nexo-containers",
    "nexo-logs-explorer",
    "nexo-errors",
    "nexo-agent-health",
}
# Loki adds service_name itself when a stream has none; the agent sends it anyway.
LOKI_LABELS = set(PipelineConfig().labels) | {"service_name"}
STRUCTURED_METADATA = set(PipelineConfig().structured_metadata)


def provisioned_datasource_uids() -> set[str]:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text())
    return {source["uid"] for source in doc["datasources"]}


def load(path_name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((DEPLOY / "grafana" / "dashboards" / path_name).read_text())


def test_the_five_dashboards_are_provisioned_from_the_mounted_directory() -> None:
    uids = [json.loads(path.read_text())["uid"] for path in DASHBOARDS]
    assert len(uids) == len(set(uids))
    assert set(uids) >= REQUIRED_DASHBOARDS
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())
    compose = yaml.safe_load((DEPLOY / "docker-compose.observability.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in mounts


def test_panels_have_unique_ids_fit_the_grid_and_use_provisioned_datasources() -> None:
    uids = provisioned_datasource_uids()
    assert {"prometheus", "loki", "alertmanager"} <= uids
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, (path.name, panel["title"])
            if panel["type"] == "row":
                continue
            assert panel["targets"], (path.name, panel["title"])
            for target in panel["targets"]:
                source = target.get("datasource") or panel["datasource"]
                assert source["uid"] in uids, (path.name, panel["title"])
                assert target["expr"].strip(), (path.name, panel["title"])
        for variable in dashboard["templating"]["list"]:
            if "datasource" in variable:
                assert variable["datasource"]["uid"] in uids, (path.name, variable["name"])


def test_logs_explorer_filters_by_service_level_account_and_request() -> None:
    dashboard = load("logs-explorer.json")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"service", "level", "account", "request"} <= set(variables)
    assert variables["service"]["query"]["label"] == "service_name"
    logs_panel = next(p for p in dashboard["panels"] if p["type"] == "logs")
    expr = logs_panel["targets"][0]["expr"]
    for fragment in ('service_name=~"$service"', 'level=~"$level"', 'accountId=~"$account"'):
        assert fragment in expr
    assert 'requestId=~"$request"' in expr


_SELECTOR = re.compile(r"\{([^{}]*)\}")
_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
_LABEL_FILTER = re.compile(r"\|\s*(\w+)\s*(?:=~|!~|!=|=|>|<)")
_PARSED_FIELDS = re.compile(r"\|\s*json\s+(\w+)=")


def test_logql_selects_streams_by_the_labels_the_agent_sends() -> None:
    for query in logql_queries():
        selectors = _SELECTOR.findall(query.expr)
        assert selectors, query
        for selector in selectors:
            labels = set(_MATCHER.findall(selector))
            assert labels and labels <= LOKI_LABELS, (query.where, labels - LOKI_LABELS)


def test_logql_filters_only_on_structured_metadata_labels_or_parsed_fields() -> None:
    for query in logql_queries():
        parsed = set(_PARSED_FIELDS.findall(query.expr)) | {"__error__"}
        filtered = set(_LABEL_FILTER.findall(query.expr)) - {"json", "unwrap", "logfmt"}
        unknown = filtered - STRUCTURED_METADATA - LOKI_LABELS - parsed
        assert not unknown, (query.where, unknown)


_SELECTOR_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def test_stream_selectors_keep_a_non_empty_matcher_when_every_variable_is_all() -> None:
    """Loki refuses ``{a=~".*", b=~".*"}``: each selector needs one matcher that cannot
    match the empty string, with every variable at its All (or default) value."""
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        all_values = {
            v["name"]: v.get("allValue") or "" if v.get("includeAll") else v.get("query", "")
            for v in dashboard["templating"]["list"]
        }
        for query in logql_queries():
            if not query.where.startswith(path.name + ":"):
                continue
            for selector in _SELECTOR.findall(query.raw):
                for name, value in all_values.items():
                    selector = selector.replace(f"${name}", str(value))
                non_empty = [
                    label
                    for label, op, value in _SELECTOR_MATCHER.findall(selector)
                    if (op == "=" and value) or (op == "=~" and not re.fullmatch(value, ""))
                ]
                assert non_empty, (query.where, selector)
