"""deploy/scripts: shellcheck-clean; start.sh prepares data and secrets; healthcheck.sh
tells answering components from silent ones; backup.sh snapshots a real Prometheus and
archives Loki, Grafana and Alertmanager data."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_process import free_port
from tests.conftest import require, require_binary
from tests.deploy.expressions import DEPLOY, REPO
from tests.deploy.prometheus_server import PrometheusServer

SCRIPTS = DEPLOY / "scripts"


def run_script(
    name: str, *args: str, env: dict[str, str] | None = None, script_dir: Path = SCRIPTS
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script_dir / name), *args],
        env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_scripts_pass_shellcheck() -> None:
    binary = require_binary("shellcheck")
    scripts = sorted(str(p.relative_to(REPO)) for p in SCRIPTS.glob("*.sh"))
    result = subprocess.run(
        [binary, "-x", *scripts], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_start_prepares_owned_data_dirs_and_secrets_from_the_environment(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "root (start.sh gives data directories to the images' users)")
    deploy = tmp_path / "deploy"
    shutil.copytree(SCRIPTS, deploy / "scripts")
    shutil.copy(DEPLOY / "docker-compose.observability.yml", deploy)
    env = {"SLACK_WEBHOOK_URL": "https://hooks.example/T/B/x", "PAGERDUTY_ROUTING_KEY": ""}
    result = run_script("start.sh", "--no-up", env=env, script_dir=deploy / "scripts")
    assert result.returncode == 0, result.stderr

    assert (deploy / "data/loki").stat().st_uid == 10001
    assert (deploy / "data/prometheus").stat().st_uid == 65534
    assert (deploy / "data/grafana").stat().st_uid == 472
    secrets = deploy / "secrets"
    assert (secrets.stat().st_mode & 0o777) == 0o700
    assert (secrets / "slack_webhook_url").read_text() == "https://hooks.example/T/B/x"
    assert (secrets / "pagerduty_routing_key").read_text() == ""
    assert "pagerduty_routing_key is empty" in result.stderr
    password = (secrets / "grafana_admin_password").read_text()
    assert len(password) >= 20 and password in result.stdout

    # A second start keeps what is there when the environment says nothing.
    again = run_script("start.sh", "--no-up", script_dir=deploy / "scripts")
    assert again.returncode == 0, again.stderr
    assert (secrets / "slack_webhook_url").read_text() == "https://hooks.example/T/B/x"
    assert (secrets / "grafana_admin_password").read_text() == password


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """One Prometheus for the module, with the admin API backup.sh snapshots through."""
    server = PrometheusServer(
        tmp_path_factory.mktemp("prometheus"), extra_args=["--web.enable-admin-api"]
    )
    server.start()
    try:
        server.wait_for_scrapes_blocking("prometheus", 2)
        yield server
    finally:
        server.stop()


def test_healthcheck_reports_each_component_and_fails_on_a_silent_one(
    prometheus: PrometheusServer,
) -> None:
    require_binary("curl")
    closed = f"http://127.0.0.1:{free_port()}"
    env = {"PROMETHEUS_ADDR": prometheus.url, "GRAFANA_ADDR": closed}
    healthy = run_script("healthcheck.sh", "prometheus", env=env)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert healthy.stdout.startswith("ok   prometheus")

    mixed = run_script("healthcheck.sh", "prometheus", "grafana", "agents", env=env)
    assert mixed.returncode == 1
    lines = mixed.stdout.splitlines()
    assert lines[0].startswith("ok   prometheus")
    assert lines[1].startswith("FAIL grafana")
    assert lines[2] == "FAIL agents       0/0 up"  # no nexo-agent job in this Prometheus


def test_backup_snapshots_prometheus_and_archives_the_other_data(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    require_binary("curl")
    loki = tmp_path / "loki"
    (loki / "chunks").mkdir(parents=True)
    (loki / "chunks" / "chunk-1").write_bytes(b"chunk")
    grafana = tmp_path / "grafana"
    grafana.mkdir()
    with sqlite3.connect(grafana / "grafana.db") as db:
        db.execute("create table dashboard (uid text)")
        db.execute("insert into dashboard values ('nexo-host-overview')")
    (grafana / "plugins").mkdir()
    alertmanager = tmp_path / "alertmanager"
    alertmanager.mkdir()
    (alertmanager / "silences").write_bytes(b"")
    backups = tmp_path / "backups"
    env = {
        "PROMETHEUS_ADDR": prometheus.url,
        "PROMETHEUS_DATA": str(prometheus.data),
        "LOKI_DATA": str(loki),
        "GRAFANA_DATA": str(grafana),
        "ALERTMANAGER_DATA": str(alertmanager),
        "BACKUP_DIR": str(backups),
    }
    result = run_script("backup.sh", env=env)
    assert result.returncode == 0, result.stdout + result.stderr

    (target,) = backups.iterdir()
    with tarfile.open(target / "prometheus.tar.gz") as archive:
        names = archive.getnames()
    assert any(name.endswith("/meta.json") for name in names), names  # a TSDB block
    assert not list((prometheus.data / "snapshots").iterdir())  # removed once archived
    with tarfile.open(target / "loki.tar.gz") as archive:
        assert "./chunks/chunk-1" in archive.getnames()
    with tarfile.open(target / "grafana.tar.gz") as archive:
        assert archive.getnames().count("./grafana.db") == 1
        archive.extract("./grafana.db", tmp_path / "restored")
    with sqlite3.connect(tmp_path / "restored" / "grafana.db") as db:
        assert db.execute("select uid from dashboard").fetchall() == [("nexo-host-overview",)]
    with tarfile.open(target / "alertmanager.tar.gz") as archive:
        assert "./silences" in archive.getnames()
