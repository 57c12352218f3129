"""``nexo-agent doctor``: one line per check against the real Docker, Loki and files."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.agent_process import free_port
from tests.conftest import require_binary
from tests.logs.journal_files import unit_entry, write_journal
from tests.loki_backend import LokiBackend, unique_host

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.docker


def doctor(tmp_path: Path, config: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [sys.executable, "-m", "agent", "doctor", "--config", str(path), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def base_config(tmp_path: Path, push_url: str, host: str) -> dict[str, Any]:
    return {
        "hostname": host,
        "server": {"listen_address": f"127.0.0.1:{free_port()}"},
        "logs": {
            "positions_file": str(tmp_path / "state" / "positions.json"),
            "loki": {"url": push_url},
        },
    }


def lines_of(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """check name -> its 'ok'/'FAIL' line plus the fix or note lines under it."""
    checks: dict[str, str] = {}
    name = ""
    for line in result.stdout.splitlines():
        if line.startswith(("ok ", "FAIL ")):
            name = line.split()[1]
            checks[name] = line
        elif line.startswith(" ") and name:
            checks[name] += "\n" + line.strip()
    return checks


async def test_doctor_passes_on_a_working_host_and_its_test_push_arrives(
    tmp_path: Path, loki: LokiBackend, docker_client: Any, run_container: Any
) -> None:
    run_container("echo hello; sleep 60")
    host = unique_host("doctor")
    result = await asyncio.to_thread(
        doctor, tmp_path, base_config(tmp_path, loki.push_url, host), "--push-test"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    checks = lines_of(result)
    version = docker_client.version()
    assert checks["docker"].startswith("ok")
    assert f"API {version['ApiVersion']}" in checks["docker"]
    assert checks["data_root"].startswith("ok")
    assert checks["log_file"].startswith("ok") and "-json.log readable" in checks["log_file"]
    assert checks["loki"].startswith("ok") and "/ready: 200" in checks["loki"]
    assert checks["loki_push"].startswith("ok")
    assert checks["positions"].startswith("ok")
    for key in ("procfs", "sysfs", "rootfs", "cgroupfs"):
        assert checks[key].startswith("ok"), checks[key]
    (entry,) = await loki.wait_for({"host": host, "job": "nexo-agent-doctor"}, 1, within=10)
    assert entry.line == "nexo-agent doctor: test push"


async def test_doctor_names_each_failure_with_its_fix_and_exits_1(
    tmp_path: Path, loki: LokiBackend, docker_client: Any
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    config = base_config(tmp_path, loki.receiver.base_url + "/loki/api/v1/pushh", "h")
    config["docker"] = {"data_root": str(tmp_path / "missing-mount")}
    config["logs"]["positions_file"] = str(blocker / "positions.json")
    config["metrics"] = {"host": {"procfs": str(tmp_path / "proc")}}
    result = await asyncio.to_thread(doctor, tmp_path, config, "--push-test")
    assert result.returncode == 1, result.stdout
    checks = lines_of(result)
    assert checks["docker"].startswith("ok")
    assert checks["data_root"].startswith("FAIL")
    assert f"{tmp_path}/missing-mount/containers does not exist" in checks["data_root"]
    assert "fix: mount Docker's data root" in checks["data_root"]
    assert checks["loki_push"].startswith("FAIL") and "HTTP 404" in checks["loki_push"]
    assert "fix: the push path is /loki/api/v1/push" in checks["loki_push"]
    assert checks["positions"].startswith("FAIL") and "fix:" in checks["positions"]
    assert checks["procfs"].startswith("FAIL") and "metrics.host.procfs" in checks["procfs"]
    assert result.stdout.rstrip().endswith("FAIL")


def test_doctor_without_docker_says_how_to_start_it_or_turn_it_off(tmp_path: Path) -> None:
    config = base_config(tmp_path, f"http://127.0.0.1:{free_port()}/loki/api/v1/push", "h")
    config["docker"] = {"host": f"unix://{tmp_path}/absent.sock"}
    result = doctor(tmp_path, config)
    assert result.returncode == 1
    checks = lines_of(result)
    assert checks["docker"].startswith(f"FAIL  docker         no Docker socket at {tmp_path}")
    assert "logs.docker.enabled: false" in checks["docker"]
    assert checks["loki"].startswith("FAIL") and "Connection refused" in checks["loki"]


def test_doctor_reports_a_broken_config_and_stops(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("logs:\n  lokki: {}\n")
    result = subprocess.run(
        [sys.executable, "-m", "agent", "doctor", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL  config")
    assert "logs.lokki: unknown key; did you mean 'loki'?" in result.stdout


def test_doctor_checks_the_journal_it_would_follow(tmp_path: Path) -> None:
    require_binary("journalctl")
    config = base_config(tmp_path, f"http://127.0.0.1:{free_port()}/loki/api/v1/push", "h")
    config["docker"] = {"host": f"unix://{tmp_path}/absent.sock"}
    config["logs"]["journal"] = {"enabled": True, "path": str(tmp_path / "journal")}
    checks = lines_of(doctor(tmp_path, config))
    assert checks["journal"].startswith("FAIL  journal") and "cannot read" in checks["journal"]
    assert "logs.journal.path" in checks["journal"]
    write_journal(tmp_path / "journal" / "system.journal", [unit_entry("api.service", "hi")])
    checks = lines_of(doctor(tmp_path, config))
    assert checks["journal"].startswith("ok    journal") and "has entries" in checks["journal"]
