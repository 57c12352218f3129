"""Prometheus: the stack's config and alert rules pass promtool, and every alert is
pinned by a ``promtool test rules`` case in which it fires."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.conftest import require_binary
from tests.deploy.expressions import (
    DEPLOY,
    PROMETHEUS_RULES,
    PROMETHEUS_TESTS,
    prometheus_rules,
    promql_queries,
)

PROMETHEUS_DIR = DEPLOY / "prometheus"

# The list of what the alerts must cover, by the alert that covers it.
REQUIRED_ALERTS = {
    "high error rate (log-derived)": "ServiceHighErrorRate",
    "service down": "ServiceDown",
    "high response time": "ServiceHighResponseTime",
    "high CPU": "HostHighCpuUsage",
    "memory": "HostHighMemoryUsage",
    "disk space": "HostDiskSpaceLow",
    "inodes": "HostInodesLow",
    "container restarts": "ContainerRestarting",
    "OOM kills": "ContainerOomKilled",
    "failed authentication bursts": "FailedAuthenticationBurst",
    "agent down": "NexoAgentDown",
    "Loki push failing": "LokiPushFailing",
    "log lag growing": "LogShippingLagGrowing",
    "dead man's switch": "Watchdog",
}


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool")
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_prometheus_config_passes_promtool_check_config() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    # The rule files are found through the config's relative glob, not silently skipped.
    for path in PROMETHEUS_RULES:
        assert f"rules/{path.name}" in result.stdout, result.stdout


def test_alert_rules_pass_promtool_check_rules() -> None:
    result = promtool("check", "rules", *(str(p) for p in PROMETHEUS_RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    result = promtool("test", "rules", *(str(p) for p in PROMETHEUS_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout


def test_there_are_at_least_15_alerts_covering_the_required_topics() -> None:
    alerts = [rule["alert"] for rule in prometheus_rules() if "alert" in rule]
    assert len(alerts) >= 15, alerts
    missing = {topic: name for topic, name in REQUIRED_ALERTS.items() if name not in alerts}
    assert not missing, missing


def test_every_alert_has_a_unit_test_in_which_it_fires() -> None:
    fired: set[str] = set()
    for path in PROMETHEUS_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    alerts = {rule["alert"] for rule in prometheus_rules() if "alert" in rule}
    assert alerts - fired == set(), f"alerts without a firing unit test: {alerts - fired}"


def test_every_alert_has_severity_summary_and_description() -> None:
    for rule in prometheus_rules():
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in {"critical", "warning", "none"}, rule["alert"]
        assert rule["labels"].get("component"), rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_every_dashboard_and_rule_expression_parses(tmp_path: Path) -> None:
    """Each expression becomes a recording rule of its own group, so promtool's error names
    the panel it came from."""
    queries = promql_queries()
    groups = [
        {
            "name": f"{i:03d} {query.where}",
            "rules": [{"record": f"parse_check_{i}", "expr": query.expr}],
        }
        for i, query in enumerate(queries)
    ]
    rules_file = tmp_path / "queries.yml"
    rules_file.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    result = promtool("check", "rules", str(rules_file), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout, result.stdout
