"""Alertmanager: the config passes amtool, routes each kind of alert to the right
receivers, and carries no secret of its own."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.conftest import require_binary
from tests.deploy.expressions import DEPLOY, prometheus_rules

CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary("amtool")
    return subprocess.run(
        [binary, *args], cwd=CONFIG.parent, capture_output=True, text=True, timeout=60, check=False
    )


def test_config_passes_amtool_check_config() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["alertname=Watchdog", "severity=none"], "heartbeat"),
        (
            ["alertname=ServiceDown", "severity=critical", "component=service"],
            "pagerduty-critical,slack-critical,email-ops",
        ),
        (
            ["alertname=FailedAuthenticationBurst", "severity=critical", "component=security"],
            "pagerduty-critical,slack-critical,email-security,email-ops",
        ),
        (["alertname=HostDiskSpaceLow", "severity=warning"], "slack-warnings,email-ops"),
        (["alertname=SomethingNew"], "slack-warnings"),
    ],
)
def test_alerts_are_routed_by_severity_and_component(labels: list[str], receivers: str) -> None:
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def test_every_severity_the_rules_use_reaches_a_receiver() -> None:
    for severity in sorted({r["labels"]["severity"] for r in prometheus_rules() if "alert" in r}):
        result = amtool(
            "config", "routes", "test", f"--config.file={CONFIG}", f"severity={severity}"
        )
        assert result.returncode == 0 and result.stdout.strip(), severity


def test_receivers_cover_slack_email_and_pagerduty_with_secrets_from_files() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    kinds = {
        key for receiver in config["receivers"] for key in receiver if key.endswith("_configs")
    }
    assert {"slack_configs", "email_configs", "pagerduty_configs"} <= kinds
    assert config["global"]["slack_api_url_file"].startswith("/run/secrets/")
    assert config["global"]["smtp_auth_password_file"].startswith("/run/secrets/")
    text = CONFIG.read_text()
    for inline_secret in (
        "api_url:",
        "routing_key:",
        "service_key:",
        "auth_password:",
        "hooks.slack.com",
    ):
        assert inline_secret not in text, inline_secret
    for receiver in config["receivers"]:
        for pagerduty in receiver.get("pagerduty_configs", []):
            assert pagerduty["routing_key_file"].startswith("/run/secrets/")


def test_inhibition_silences_warnings_under_a_page_and_alerts_of_a_down_agent() -> None:
    rules = yaml.safe_load(CONFIG.read_text())["inhibit_rules"]
    sources = [rule["source_matchers"] for rule in rules]
    assert ['severity="critical"'] in sources
    assert ['alertname="NexoAgentDown"'] in sources
    for rule in rules:
        assert rule["equal"], rule
