"""End to end: a host that is not as the default config assumes is said once, clearly.

Each test reproduces what a new user met (measured in issue 10) against the real agent
process and a real dockerd: the sidecar without its data-root mount, the bare host without
a Docker socket, a Loki URL missing its push path or credentials. The agent must name the
problem and the fix once, export it as ``nexo_agent_dependency_up``, answer ``/ready``
with the reason, and pick up by itself once the problem is gone, losing nothing.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from tests.agent_process import (
    AgentProcess,
    delivery_of,
    numbered_lines,
    numbered_writer,
    wait_until,
)
from tests.logs.test_e2e_delivery import e2e_config
from tests.loki_backend import LokiBackend, unique_host


async def ready(agent: AgentProcess) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(agent.base_url + "/ready") as r:
        return r.status, await r.text()


async def ready_saying(agent: AgentProcess, text: str, within: float = 10) -> tuple[int, str]:
    """``/ready``'s answer once it contains ``text`` (other reasons may come first)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        status, body = await ready(agent)
        if text in body or asyncio.get_running_loop().time() > deadline:
            assert text in body, body
            return status, body
        await asyncio.sleep(0.1)


def agent_log(agent: AgentProcess) -> list[dict[str, Any]]:
    records = []
    for line in agent.log_path.read_text(errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def said(agent: AgentProcess, text: str) -> list[dict[str, Any]]:
    """The agent's own log records whose message contains ``text``."""
    return [r for r in agent_log(agent) if text in str(r.get("msg", ""))]


async def test_missing_data_root_mount_is_said_once_per_container_then_picked_up(
    tmp_path: Path, loki: LokiBackend, run_container: Any, docker_client: Any
) -> None:
    """A sidecar whose data-root mount is missing: nothing can be read, and it says so."""
    host = unique_host()
    prefix = f"e2e-mount-{uuid.uuid4().hex[:8]}-"
    mount = tmp_path / "host-docker"  # where the operator meant to mount Docker's root
    cfg = e2e_config(tmp_path, loki, host, prefix, docker={"data_root": str(mount)})
    writer = run_container(numbered_writer("mount", 40, then="sleep 600"), name=prefix + "w")
    agent = AgentProcess(tmp_path, cfg)
    agent.start()
    try:
        await agent.wait_healthy()
        assert await agent.wait_for_metric("nexo_agent_unreadable_targets", 1) == 1
        status, text = await ready_saying(agent, "no container log can be read")
        assert status == 503 and "docker.data_root" in text
        assert await agent.metric("nexo_agent_dependency_up", dependency="log_files") == 0
        await asyncio.sleep(5)  # two more looks by housekeeping: still one warning
        (warning,) = said(agent, f"cannot read the logs of container {prefix}w")
        docker_root = docker_client.info()["DockerRootDir"]
        assert warning["level"] == "warning"
        assert warning["path"].startswith(str(mount) + "/containers/" + writer.id)
        assert warning["docker_path"].startswith(docker_root + "/containers/" + writer.id)
        assert f"-v {docker_root}:{mount}:ro" in warning["fix"]
        assert len(said(agent, "log_files unavailable")) == 1

        mount.symlink_to(docker_root)  # the operator adds the mount
        delivery = await delivery_of(loki, {"host": host}, numbered_lines("mount", 40))
        assert delivery.exactly_once, str(delivery)
        assert (await ready(agent))[0] == 200
        assert await agent.metric("nexo_agent_unreadable_targets") == 0
        assert await agent.metric("nexo_agent_dependency_up", dependency="log_files") == 1
        assert said(agent, "log_files available again after")
    finally:
        agent.close()


async def test_no_docker_socket_is_one_state_not_a_warning_per_retry(
    tmp_path: Path, loki: LokiBackend
) -> None:
    host = unique_host()
    absent = tmp_path / "no-docker.sock"
    cfg = e2e_config(tmp_path, loki, host, "none-", docker={"host": f"unix://{absent}"})
    agent = AgentProcess(tmp_path, cfg)
    agent.start()
    try:
        await agent.wait_healthy()
        await asyncio.sleep(6)  # the events thread retries at 0.5, 1, 2, 4 s
        assert await agent.metric("nexo_agent_dependency_up", dependency="docker") == 0
        assert await agent.metric("nexo_agent_discovery_errors_total") >= 3  # it did retry
        warnings = [r for r in agent_log(agent) if r["level"] == "warning"]
        assert [w["msg"] for w in warnings] == [f"docker unavailable: no Docker socket at {absent}"]
        assert "logs.docker.enabled: false" in warnings[0]["fix"]
        status, _ = await ready_saying(agent, f"no Docker socket at {absent}")
        assert status == 503
    finally:
        agent.close()


async def test_loki_answering_404_or_401_holds_lines_says_so_once_and_delivers_once_fixed(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    host = unique_host()
    prefix = f"e2e-auth-{uuid.uuid4().hex[:8]}-"
    agent = AgentProcess(tmp_path, e2e_config(tmp_path, loki, host, prefix))
    try:
        for status, reason in (
            (404, "Loki answers 404 Not Found"),
            (401, "Loki refuses the agent's credentials (HTTP 401"),
        ):
            loki.receiver.respond_with(status, "no")
            if agent.proc is None:
                agent.start()
                await agent.wait_healthy()
            tag = f"held{status}"
            run_container(numbered_writer(tag, 30), name=f"{prefix}{status}")
            await wait_until(
                lambda reason=reason: bool(said(agent, reason)), 20, f"'{reason}' logged"
            )
            await asyncio.sleep(2)  # more retries: no more warnings
            assert len(said(agent, reason)) == 1
            assert await agent.metric("nexo_agent_dependency_up", dependency="loki") == 0
            if status == 404:
                (record,) = said(agent, reason)
                assert "/loki/api/v1/push" in record["fix"]
            loki.receiver.respond_with(None)
            delivery = await delivery_of(
                loki, {"host": host, "container": f"{prefix}{status}"}, numbered_lines(tag, 30)
            )
            assert delivery.exactly_once, str(delivery)
            assert await agent.metric("nexo_agent_dependency_up", dependency="loki") == 1
        assert len(said(agent, "loki available again after")) == 2
        assert await agent.metric("nexo_agent_dropped_entries_total") == 0
    finally:
        loki.receiver.respond_with(None)
        agent.close()
