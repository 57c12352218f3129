"""The compose files, the Kubernetes DaemonSet and the configs they mount: valid for
docker-compose, limited as the issue asks, and mounting the host the same way."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_binary
from tests.deploy.expressions import DEPLOY

AGENT_COMPOSE = DEPLOY / "docker-compose.agent.yml"
STACK_COMPOSE = DEPLOY / "docker-compose.observability.yml"
DAEMONSET = DEPLOY / "kubernetes" / "nexo-agent.yaml"
# The host as the agent reads it, wherever it runs in a container.
HOST_MOUNTS = {
    "/var/lib/docker/containers": "/var/lib/docker/containers",
    "/var/run/docker.sock": "/var/run/docker.sock",
    "/proc": "/host/proc",
    "/sys": "/host/sys",
    "/": "/host/root",
}


def compose_config(compose_file: Path, project_dir: Path) -> dict[str, Any]:
    """``docker-compose config``: the file as Compose resolves it (validation included)."""
    binary = require_binary("docker-compose")
    result = subprocess.run(
        [binary, "--project-directory", str(project_dir), "-f", str(compose_file), "config"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The stack resolved from a copy of deploy/ with its secrets present, as start.sh
    leaves it (the secret files are never committed)."""
    copy = tmp_path_factory.mktemp("stack") / "deploy"
    shutil.copytree(DEPLOY, copy, ignore=shutil.ignore_patterns("data", "secrets", "backups"))
    secrets = copy / "secrets"
    secrets.mkdir()
    for name in yaml.safe_load(STACK_COMPOSE.read_text())["secrets"]:
        (secrets / name).write_text("x")
    return compose_config(copy / STACK_COMPOSE.name, copy)


def mounts(volumes: list[Any]) -> dict[str, tuple[str, bool]]:
    """target -> (source, read-only) from compose's short (v1) or long (v2) syntax."""
    out = {}
    for volume in volumes:
        if isinstance(volume, str):
            source, target, *options = volume.split(":")
            read_only = "ro" in ",".join(options).split(",")
        else:
            source, target = volume.get("source", ""), volume["target"]
            read_only = bool(volume.get("read_only"))
        out[target] = (source, read_only)
    return out


def test_sidecar_compose_is_valid_and_limited_to_a_quarter_cpu_and_128mb() -> None:
    service = compose_config(AGENT_COMPOSE, DEPLOY)["services"]["nexo-agent"]
    limits = service["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) == 0.25
    assert limits["memory"] in ("128M", "128m", 134217728)
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]


def test_sidecar_mounts_the_host_read_only_and_only_positions_writable() -> None:
    service = compose_config(AGENT_COMPOSE, DEPLOY)["services"]["nexo-agent"]
    by_target = mounts(service["volumes"])
    for source, target in HOST_MOUNTS.items():
        assert by_target[target] == (source, True), target
    assert by_target["/var/lib/nexo-agent"] == ("positions", False)
    assert not [t for t, (_, ro) in by_target.items() if not ro and t != "/var/lib/nexo-agent"]


def test_stack_has_every_component_on_the_isolated_network_with_limits(
    stack: dict[str, Any],
) -> None:
    services = stack["services"]
    assert set(services) == {"loki", "prometheus", "alertmanager", "grafana", "nexo-agent"}
    assert stack["networks"]["observability-network"]["name"] == "observability-network"
    for name, service in services.items():
        assert list(service["networks"]) == ["observability-network"], name
        limits = service["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0 and limits["memory"], name
    agent_limits = services["nexo-agent"]["deploy"]["resources"]["limits"]
    assert float(agent_limits["cpus"]) == 0.25
    assert agent_limits["memory"] in ("128M", "128m", 134217728)


def test_stack_keeps_data_in_bind_mounted_directories(stack: dict[str, Any]) -> None:
    data_dirs = {
        "loki": "/loki",
        "prometheus": "/prometheus",
        "alertmanager": "/alertmanager",
        "grafana": "/var/lib/grafana",
        "nexo-agent": "/var/lib/nexo-agent",
    }
    for name, target in data_dirs.items():
        source, read_only = mounts(stack["services"][name]["volumes"])[target]
        assert source.endswith(f"/data/{name}") and not read_only, (name, source)


def test_prometheus_keeps_30_days_or_50gb_and_loki_30_days(stack: dict[str, Any]) -> None:
    command = stack["services"]["prometheus"]["command"]
    assert "--storage.tsdb.retention.time=30d" in command
    assert "--storage.tsdb.retention.size=50GB" in command
    loki = yaml.safe_load((DEPLOY / "loki" / "loki.yml").read_text())
    assert loki["limits_config"]["retention_period"] == "720h"
    assert loki["limits_config"]["allow_structured_metadata"] is True
    assert loki["compactor"]["retention_enabled"] is True
    assert loki["schema_config"]["configs"][-1]["schema"] == "v13"


def test_daemonset_mounts_the_host_like_the_sidecar_and_has_its_limits() -> None:
    documents = list(yaml.safe_load_all(DAEMONSET.read_text()))
    daemonset = next(d for d in documents if d["kind"] == "DaemonSet")
    pod = daemonset["spec"]["template"]["spec"]
    container = pod["containers"][0]
    host_paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    mounted = {m["mountPath"]: host_paths.get(m["name"]) for m in container["volumeMounts"]}
    for source, target in HOST_MOUNTS.items():
        assert mounted[target] == source, target
    read_only = {m["mountPath"] for m in container["volumeMounts"] if m.get("readOnly")}
    assert set(HOST_MOUNTS.values()) <= read_only
    assert "/var/lib/nexo-agent" not in read_only
    assert container["resources"]["limits"] == {"cpu": "250m", "memory": "128Mi"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["hostPID"] and pod["hostNetwork"]


@pytest.mark.parametrize(
    "config_text",
    [
        pytest.param((DEPLOY / "docker" / "agent.yaml").read_text(), id="image"),
        pytest.param(
            next(d for d in yaml.safe_load_all(DAEMONSET.read_text()) if d["kind"] == "ConfigMap")[
                "data"
            ]["agent.yaml"],
            id="kubernetes",
        ),
    ],
)
def test_shipped_agent_configs_pass_the_agents_own_check(config_text: str, tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(config_text)
    result = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(path), "--check-config"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "/host/proc" in result.stdout
