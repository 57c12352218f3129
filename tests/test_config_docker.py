"""The top-level ``docker:`` section, shared by logs and container metrics, and the old keys
that still work with a deprecation warning naming the new one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import ConfigError, load_config

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def test_docker_section_defaults_to_what_docker_reports() -> None:
    config = load_config(None)
    assert config.docker.data_root is None  # Docker's own DockerRootDir
    assert config.docker.files_root == Path("/var/lib/docker")
    assert config.docker.host == "unix:///var/run/docker.sock"
    assert config.deprecations == []


def test_old_logs_docker_keys_move_to_docker_with_one_note_each(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "logs:\n  docker:\n    host: unix:///run/d.sock\n    data_root: /host/docker\n"
            "    include: {names: [web-*]}\n    initial_position: end\n"
            "metrics:\n  containers:\n    docker_data_root: /host/docker\n",
        )
    )
    assert config.docker.host == "unix:///run/d.sock"
    assert config.docker.data_root == Path("/host/docker")
    assert config.docker.include.names == ["web-*"]
    assert config.logs.docker.initial_position == "end"  # still a logs key
    assert config.deprecations == [
        "logs.docker.host is deprecated; use docker.host (same meaning)",
        "logs.docker.data_root is deprecated; use docker.data_root (same meaning)",
        "logs.docker.include is deprecated; use docker.include (same meaning)",
        "metrics.containers.docker_data_root is deprecated; use docker.data_root (same meaning)",
    ]


def test_old_and_new_key_with_different_values_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "docker:\n  host: unix:///a.sock\nlogs:\n  docker:\n    host: tcp://b\n")
    with pytest.raises(ConfigError, match=r"logs\.docker\.host and docker\.host are both set"):
        load_config(path)


def test_deprecated_key_is_said_on_stderr_by_check_config(tmp_path: Path) -> None:
    path = write(tmp_path, "logs:\n  docker:\n    data_root: /srv/docker\n")
    result = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(path), "--check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert "logs.docker.data_root is deprecated; use docker.data_root" in result.stderr
    assert "data_root: /srv/docker" in result.stdout


def test_shipped_configs_use_no_deprecated_key() -> None:
    for name in ("configs/agent.yaml", "deploy/docker/agent.yaml"):
        assert load_config(REPO / name).deprecations == [], name


@pytest.mark.parametrize("host", ["/var/run/docker.sock", "docker:2375", ""])
def test_docker_host_without_a_scheme_is_refused_with_the_forms_that_work(
    tmp_path: Path, host: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f"docker:\n  host: '{host}'\n"))
    assert "docker.host" in str(caught.value) and "unix:///var/run/docker.sock" in str(caught.value)


def test_docker_host_over_tcp_is_accepted(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "docker:\n  host: tcp://10.0.0.1:2375\n"))
    assert config.docker.host == "tcp://10.0.0.1:2375"
