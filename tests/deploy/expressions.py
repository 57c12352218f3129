"""Every query the deployment ships, collected from the files that hold them.

PromQL comes from the Prometheus rule files and from the Grafana dashboards (targets of
the Prometheus datasource, and ``label_values(<selector>, label)`` variables); LogQL from
Loki's rule files and the dashboards' Loki targets. Grafana's variables are replaced with
values that keep the expression valid so that Prometheus itself can parse and run it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS_RULES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
PROMETHEUS_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
LOKI_RULES = sorted((DEPLOY / "loki" / "rules").glob("*/*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))

# Grafana's interval variables -> a duration; any other $var sits in a label matcher.
_GRAFANA_DURATIONS = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "__auto": "1m",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@dataclass(frozen=True)
class Query:
    """One expression and where it was found (``file: panel title`` or rule name);
    ``raw`` is the dashboard's text before Grafana's variables were substituted."""

    where: str
    expr: str
    raw: str = ""


def substitute_grafana_variables(expr: str) -> str:
    """``$__rate_interval`` -> ``5m``; ``$instance`` (inside a matcher) -> ``.*``."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return _GRAFANA_DURATIONS.get(name, ".*")

    return _VARIABLE.sub(value, expr)


def _rules(path: Path) -> Iterator[dict[str, Any]]:
    for group in yaml.safe_load(path.read_text())["groups"]:
        yield from group["rules"]


def prometheus_rules() -> list[dict[str, Any]]:
    return [rule for path in PROMETHEUS_RULES for rule in _rules(path)]


def loki_rules() -> list[dict[str, Any]]:
    return [rule for path in LOKI_RULES for rule in _rules(path)]


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def _datasource_uid(target: dict[str, Any], panel: dict[str, Any]) -> str:
    source = target.get("datasource") or panel.get("datasource") or {}
    return str(source.get("uid", ""))


def dashboard_queries(uid: str) -> list[Query]:
    """Expressions of the datasource ``uid`` in every dashboard (variables substituted)."""
    found: list[Query] = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                if _datasource_uid(target, panel) == uid and target.get("expr"):
                    where = f"{path.name}: {panel['title']}"
                    expr = target["expr"]
                    found.append(Query(where, substitute_grafana_variables(expr), expr))
        if uid == "prometheus":
            for variable in dashboard.get("templating", {}).get("list", []):
                if (variable.get("datasource") or {}).get("uid") != uid:
                    continue
                match = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["definition"])
                if match:
                    where = f"{path.name}: variable {variable['name']}"
                    found.append(Query(where, substitute_grafana_variables(match.group(1))))
    return found


def promql_queries() -> list[Query]:
    """Every PromQL expression the deployment ships: alert rules and dashboards."""
    rules = [
        Query(f"rule {rule.get('alert') or rule.get('record')}", rule["expr"])
        for rule in prometheus_rules()
    ]
    return rules + dashboard_queries("prometheus")


def logql_queries() -> list[Query]:
    rules = [
        Query(f"loki rule {rule.get('alert') or rule.get('record')}", rule["expr"])
        for rule in loki_rules()
    ]
    return rules + dashboard_queries("loki")


# -- metric names in a PromQL expression --------------------------------------------------

_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan", "atan2",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers that are not functions, keywords,
    label names (in matchers or grouping clauses) or durations."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("{}", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names
