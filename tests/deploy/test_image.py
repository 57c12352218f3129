"""The container image: built here without pulling anything (base from Debian packages,
wheels from PyPI), it runs the agent as the sidecar compose file declares it (read-only
root, host paths read-only, the Docker socket, a positions volume), reports healthy,
ships a real container's logs and serves host, container and agent metrics."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.agent_process import free_port, wait_until
from tests.conftest import require, require_binary
from tests.deploy.expressions import DEPLOY, REPO
from tests.logs.journal_files import unit_entry, write_journal
from tests.loki_backend import LokiBackend, unique_host

pytestmark = pytest.mark.docker

IMAGE = "nexo-agent:test"
SIDECAR = yaml.safe_load((DEPLOY / "docker-compose.agent.yml").read_text())["services"][
    "nexo-agent"
]


@pytest.fixture(scope="module")
def agent_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The image, built by deploy/scripts/build-image.sh with the wheels pinned to the
    versions the test venv runs; removed afterwards (the base image is kept)."""
    require_binary("docker")
    require_binary("apt-get")
    require(os.geteuid() == 0, "root (the base image is assembled with chroot)")
    work = tmp_path_factory.mktemp("image")
    constraints = work / "constraints.txt"
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    constraints.write_text(frozen)
    env = {**os.environ, "PYTHON": sys.executable, "PIP_CONSTRAINT": str(constraints)}
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(DEPLOY / "scripts" / "build-image.sh"), IMAGE],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"image built in {time.monotonic() - started:.0f}s")
    yield IMAGE
    subprocess.run(["docker", "rmi", "--force", IMAGE], capture_output=True, check=False)


def sidecar_run_options(positions: Path, config: Path) -> dict[str, Any]:
    """docker-py keyword arguments for the service of deploy/docker-compose.agent.yml."""
    volumes: dict[str, dict[str, str]] = {}
    for spec in SIDECAR["volumes"]:
        source, target, *mode = spec.split(":")
        if source == "positions":
            volumes[str(positions)] = {"bind": target, "mode": "rw"}
            continue
        # rslave needs a shared "/" (systemd's default); this sandbox's is private.
        options = [m for m in ",".join(mode).split(",") if m and m != "rslave"]
        volumes[source] = {"bind": target, "mode": ",".join(options) or "rw"}
    volumes[str(config)] = {"bind": "/etc/nexo-agent/agent.yaml", "mode": "ro"}
    return {
        "network_mode": SIDECAR["network_mode"],
        "pid_mode": SIDECAR["pid"],
        "read_only": SIDECAR["read_only"],
        "security_opt": SIDECAR["security_opt"],
        "cap_drop": SIDECAR["cap_drop"],
        "cap_add": SIDECAR["cap_add"],
        "volumes": volumes,
        # The image's own healthcheck, probed every second instead of every 30.
        "healthcheck": {"interval": 1_000_000_000, "start_period": 1_000_000_000},
    }


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        try:
            async with session.get(url) as resp:
                return resp.status, await resp.text()
        except aiohttp.ClientError:
            return 0, ""


async def test_image_runs_the_agent_as_the_sidecar_ships_logs_and_serves_metrics(
    agent_image: str,
    docker_client: Any,
    run_container: Any,
    loki: LokiBackend,
    tmp_path: Path,
) -> None:
    app = f"nexo-deploy-app-{uuid.uuid4().hex[:8]}"
    host = unique_host("image")
    port = free_port()
    # The image's own config, only narrowed to this test's container.
    config = yaml.safe_load((DEPLOY / "docker" / "agent.yaml").read_text())
    config["logs"]["docker"]["include"] = {"names": [app]}
    config["logs"]["positions_sync_interval"] = "1s"
    config["logs"]["loki"]["batch_wait"] = "200ms"
    # The host's journal, mounted read-only, read by the image's own journalctl.
    journal = tmp_path / "journal"
    write_journal(journal / "system.journal", [unit_entry("api.service", "from the journal")])
    config["logs"]["journal"] = {
        "enabled": True,
        "path": "/host/journal",
        "initial_position": "beginning",
    }
    config_path = tmp_path / "agent.yaml"
    config_path.write_text(yaml.safe_dump(config))
    positions = tmp_path / "positions"
    positions.mkdir()

    sidecar_options = sidecar_run_options(positions, config_path)
    sidecar_options["volumes"][str(journal)] = {"bind": "/host/journal", "mode": "ro"}
    agent = docker_client.containers.run(
        agent_image,
        name=f"nexo-deploy-agent-{uuid.uuid4().hex[:8]}",
        detach=True,
        environment={
            "NEXO_LISTEN": f"127.0.0.1:{port}",
            "NEXO_HOSTNAME": host,
            "LOKI_URL": loki.push_url,
        },
        **sidecar_options,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while (await get(base + "/healthz"))[0] != 200:
            agent.reload()
            assert agent.status == "running", agent.logs().decode(errors="replace")[-3000:]
            assert time.monotonic() < deadline, agent.logs().decode(errors="replace")[-3000:]
            await asyncio.sleep(0.2)

        lines = [
            f'{{"level":"error","msg":"image test {i}","accountId":"acc-{i}"}}' for i in range(5)
        ]
        script = "; ".join(f"echo '{line}'" for line in lines) + "; sleep 600"
        run_container(script, name=app)
        shipped = await loki.wait_for({"host": host, "container": app}, len(lines), within=30)
        assert [entry.line for entry in shipped] == lines, agent.logs().decode()[-3000:]
        assert shipped[0].labels["level"] == "error"
        assert shipped[0].metadata.get("accountId") == "acc-0"
        from_journal = await loki.wait_for({"host": host, "unit": "api.service"}, 1, within=30)
        assert [e.line for e in from_journal] == ["from the journal"], agent.logs().decode()[-3000:]

        status, metrics = await get(base + "/metrics")
        assert status == 200
        families = {
            line.split(" ")[2] for line in metrics.splitlines() if line.startswith("# TYPE")
        }
        for family in (
            "node_cpu_seconds_total",
            "node_filesystem_avail_bytes",
            "node_memory_MemAvailable_bytes",
            "container_cpu_usage_seconds_total",
            "container_memory_working_set_bytes",
            "nexo_agent_sent_entries_total",
            "nexo_log_lines_total",
        ):
            assert family in families, family
        assert f'name="{app}"' in metrics  # container_* of the followed container
        assert 'mountpoint="/"' in metrics  # the host's root, seen through /host/root
        # the wheel was compiled on the build host: the image runs the C speedups
        assert 'speedups="c"' in metrics, [m for m in metrics.splitlines() if "build_info" in m]

        def healthy() -> bool:
            agent.reload()
            return str(agent.attrs["State"].get("Health", {}).get("Status")) == "healthy"

        await wait_until(healthy, 20, "docker reports the container healthy")
        await wait_until(lambda: (positions / "positions.json").exists(), 10, "positions saved")
        assert agent.attrs["HostConfig"]["ReadonlyRootfs"] is True
    finally:
        agent.remove(force=True)
