"""End to end: Docker itself misbehaving, plus the other ways log files reach the agent.

* dockerd restarted mid-stream: the events stream breaks and the agent must reconnect on
  its own. The test restarts a private dockerd it starts itself (own socket, data root,
  exec root and cgroup parent), never the machine's dockerd that other tests rely on.
* containers that live less than a second;
* socket-free discovery (``docker.discovery: files``);
* static file targets rotated by rename + create.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.agent_process import (
    AgentProcess,
    Delivery,
    agent_config,
    delivery_of,
    numbered_lines,
    numbered_writer,
)
from tests.conftest import BUSYBOX_IMAGE, require
from tests.logs.test_e2e_delivery import e2e_config
from tests.loki_backend import LokiBackend, unique_host


def docker_config(
    tmp_path: Path, loki: LokiBackend, host: str, prefix: str, source: dict[str, Any]
) -> dict[str, Any]:
    """:func:`e2e_config` with more ``docker`` settings (``source``)."""
    docker_source = {"include": {"names": [f"{prefix}*"]}, **source}
    config: dict[str, Any] = e2e_config(tmp_path, loki, host, prefix, docker=docker_source)
    return config


# -- a private dockerd, safe to restart ---------------------------------------------------


# Keeps the private daemon's containers out of /docker/... where container metrics look.
CGROUP_PARENT = "nexo-test-private-dockerd"


class PrivateDockerd:
    """A dockerd of our own, started like tests/setup/prepare.sh starts the shared one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.data_root = root / "data"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> Any:
        return docker.DockerClient(base_url=self.host, timeout=30)

    async def start(self) -> None:
        self._spawn()
        deadline = time.monotonic() + 30
        while True:
            assert self.proc is not None and self.proc.poll() is None, self.log_tail()
            try:
                client = self.client()
                client.info()
                client.close()
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"private dockerd did not start:\n{self.log_tail()}"
                    ) from exc
            await asyncio.sleep(0.2)

    def _spawn(self) -> None:
        (self.root / "daemon.json").write_text("{}")
        with (self.root / "dockerd.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    "dockerd",
                    "--config-file", str(self.root / "daemon.json"),
                    "--data-root", str(self.data_root),
                    "--exec-root", str(self.root / "exec"),
                    "--pidfile", str(self.root / "dockerd.pid"),
                    "--host", self.host,
                    "--storage-driver", "vfs",
                    "--iptables=false",
                    "--bridge=none",
                    "--cgroup-parent", f"/{CGROUP_PARENT}",
                ],
                stdout=log,
                stderr=log,
            )  # fmt: skip

    async def stop(self) -> None:
        """SIGTERM and wait: its containers die with it (they stop on SIGKILL at once)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            self._kill_containerd()

    def _kill_containerd(self) -> None:
        """The containerd dockerd supervises outlives a killed dockerd: end it by its pid."""
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.root / "exec" / "containerd" / "containerd.pid").read_text())
            os.kill(pid, signal.SIGKILL)

    @staticmethod
    def remove_cgroups() -> None:
        """Its (by then empty) cgroup parent, in every hierarchy (v1) or the one (v2)."""
        root = Path("/sys/fs/cgroup")
        for parent in [root / CGROUP_PARENT, *root.glob(f"*/{CGROUP_PARENT}")]:
            for directory in sorted(parent.glob("**/"), key=lambda d: len(d.parts), reverse=True):
                with contextlib.suppress(OSError):
                    directory.rmdir()

    def log_path(self, container_id: str) -> Path:
        return self.data_root / "containers" / container_id / f"{container_id}-json.log"

    def log_tail(self) -> str:
        try:
            return (self.root / "dockerd.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""


@pytest.fixture
async def private_dockerd(docker_client: Any) -> AsyncIterator[PrivateDockerd]:
    require(shutil.which("dockerd") is not None, "binary dockerd")
    # Short: the daemon's sockets live under it and unix socket paths are capped at 108.
    daemon = PrivateDockerd(Path(tempfile.mkdtemp(prefix="nxd-")))
    try:
        await daemon.start()
        image = docker_client.images.get(BUSYBOX_IMAGE)
        client = daemon.client()
        try:
            await asyncio.to_thread(lambda: client.images.load(b"".join(image.save(named=True))))
        finally:
            client.close()
        yield daemon
    finally:
        await daemon.stop()
        shutil.rmtree(daemon.root, ignore_errors=True)
        daemon.remove_cgroups()


def run_private(daemon: PrivateDockerd, command: str, name: str) -> Any:
    client = daemon.client()
    try:
        return client.containers.run(
            BUSYBOX_IMAGE,
            ["sh", "-c", command],
            name=name,
            network_mode="none",
            detach=True,
            stop_signal="SIGKILL",
        )
    finally:
        client.close()


def lines_in_json_log(path: Path, tag: str) -> list[str]:
    """The complete lines with ``tag`` that Docker wrote to a json-file log."""
    records = (json.loads(raw) for raw in path.read_bytes().splitlines())
    return [r["log"][:-1] for r in records if r["log"].startswith(tag) and r["log"][-1:] == "\n"]


# -- tests ---------------------------------------------------------------------------------


async def test_dockerd_restart_mid_stream_loses_nothing_and_discovery_reconnects(
    tmp_path: Path, loki: LokiBackend, private_dockerd: PrivateDockerd
) -> None:
    host = unique_host()
    prefix = f"e2e-dockerd-{uuid.uuid4().hex[:8]}-"
    cfg = docker_config(
        tmp_path,
        loki,
        host,
        prefix,
        {"host": private_dockerd.host, "data_root": str(private_dockerd.data_root)},
    )
    agent = AgentProcess(tmp_path, cfg)
    agent.start()
    try:
        await agent.wait_healthy()
        before = run_private(
            private_dockerd,
            numbered_writer("before", 100_000, per_pause=5, pause_us=20_000),
            prefix + "before",
        )
        await loki.wait_for({"host": host}, 200, within=30)
        await private_dockerd.stop()  # kills "before" mid-stream
        await asyncio.sleep(2.0)  # the agent's reconnect attempts fail meanwhile
        await private_dockerd.start()
        run_private(private_dockerd, numbered_writer("after", 300), prefix + "after")
        written = lines_in_json_log(private_dockerd.log_path(before.id), "before")
        written += numbered_lines("after", 300)
        delivery = await delivery_of(loki, {"host": host}, written)
        errors = await agent.metric("nexo_agent_discovery_errors_total", source="docker_api")
        assert agent.proc is not None and agent.proc.poll() is None, "the agent must not restart"
    finally:
        agent.terminate()
    assert 200 <= len(written) - 300 < 100_000, "the writer was not stopped mid-stream"
    assert delivery.exactly_once, str(delivery)
    assert errors > 0, "the agent never noticed dockerd was gone"


async def test_containers_living_less_than_a_second_are_shipped(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    host = unique_host()
    prefix = f"e2e-brief-{uuid.uuid4().hex[:8]}-"
    agent = AgentProcess(tmp_path, e2e_config(tmp_path, loki, host, prefix))
    agent.start()
    expected: list[str] = []
    try:
        await agent.wait_healthy()
        for k in range(3):
            # docker run --rm: destroyed, log file included, ~0.3 s after its start.
            tag = f"rm{k}"
            script = numbered_writer(tag, 20, per_pause=1000, then="busybox usleep 300000")
            run_container(script, name=prefix + tag, auto_remove=True)
            expected += numbered_lines(tag, 20)
            # create + start + remove, as fast as the API allows.
            tag = f"quick{k}"
            container = run_container(numbered_writer(tag, 20, per_pause=1000), name=prefix + tag)
            await asyncio.to_thread(container.wait, timeout=30)
            await asyncio.to_thread(container.remove, force=True)
            expected += numbered_lines(tag, 20)
        delivery = await delivery_of(loki, {"host": host}, expected)
    finally:
        agent.terminate()
    assert delivery.exactly_once, str(delivery)


async def test_rm_container_exiting_at_once_is_shipped(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    host = unique_host()
    prefix = f"e2e-brief-{uuid.uuid4().hex[:8]}-"
    agent = AgentProcess(tmp_path, e2e_config(tmp_path, loki, host, prefix))
    agent.start()
    try:
        await agent.wait_healthy()
        for k in range(3):
            run_container(numbered_writer(f"now{k}", 20), name=f"{prefix}{k}", auto_remove=True)
            await asyncio.sleep(0.3)
        expected = [line for k in range(3) for line in numbered_lines(f"now{k}", 20)]
        await loki.wait_for({"host": host}, len(expected), within=5)
        got = await loki.fetch({"host": host})
    finally:
        agent.terminate()
    delivery = Delivery.check((e.line for e in got), expected)
    assert delivery.exactly_once, str(delivery)


async def test_socket_free_discovery_ships_a_containers_lines(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    host = unique_host()
    prefix = f"e2e-files-{uuid.uuid4().hex[:8]}-"
    # A socket that does not exist: files mode must never need one.
    cfg = docker_config(
        tmp_path,
        loki,
        host,
        prefix,
        {
            "discovery": "files",
            "poll_interval": "500ms",
            "host": f"unix://{tmp_path}/no-such-docker.sock",
        },
    )
    agent = AgentProcess(tmp_path, cfg)
    agent.start()
    try:
        await agent.wait_healthy()
        run_container(numbered_writer("files", 500, then="sleep 3600"), name=prefix + "writer")
        delivery = await delivery_of(loki, {"host": host}, numbered_lines("files", 500))
        entry = (await loki.fetch({"host": host}))[0]
    finally:
        agent.terminate()
    assert delivery.exactly_once, str(delivery)
    assert entry.labels["container"] == prefix + "writer"
    assert entry.labels["stream"] == "stdout"


async def test_static_file_rotated_by_rename_and_create_ships_every_line_with_its_labels(
    tmp_path: Path, loki: LokiBackend
) -> None:
    host = unique_host()
    logs = tmp_path / "app-logs"
    logs.mkdir()
    app_log = logs / "app.log"
    cfg = agent_config(
        tmp_path,
        loki.push_url,
        host,
        logs={
            "docker": {"enabled": False},
            "files": [{"paths": [str(logs / "*.log")], "labels": {"job": "e2e-static"}}],
            "pipeline": {"static_labels": {"env": "e2e"}},
        },
    )
    lines = numbered_lines("static", 900)

    def append(chunk: list[str], path: Path = app_log) -> None:
        with path.open("a") as file:
            file.write("".join(line + "\n" for line in chunk))

    append(lines[:300])  # there before the agent: found by the first glob
    agent = AgentProcess(tmp_path, cfg)
    agent.start()
    try:
        await agent.wait_healthy()
        append(lines[300:500])
        # Rotation by rename + create, with lines the agent has not read yet (most
        # likely) in the renamed file; *.log does not match app.log.1.
        app_log.rename(logs / "app.log.1")
        append(lines[500:700])
        await asyncio.sleep(0.5)
        append(lines[700:])
        delivery = await delivery_of(loki, {"host": host}, lines)
        entry = (await loki.fetch({"host": host}))[0]
    finally:
        agent.terminate()
    assert delivery.exactly_once, str(delivery)
    assert entry.labels["job"] == "e2e-static"
    assert entry.labels["env"] == "e2e"
    assert entry.labels["filename"] == str(app_log)


async def test_data_root_elsewhere_is_found_through_docker_logpath_without_config(
    tmp_path: Path, loki: LokiBackend, private_dockerd: PrivateDockerd
) -> None:
    """Docker keeps its data under /srv/... (here: the private daemon's temp dir), the agent
    is told nothing about it: the LogPath Docker reports is where it reads."""
    host = unique_host()
    prefix = f"e2e-root-{uuid.uuid4().hex[:8]}-"
    cfg = docker_config(tmp_path, loki, host, prefix, {"host": private_dockerd.host})
    assert "data_root" not in cfg["docker"]
    agent = AgentProcess(tmp_path, cfg)
    agent.start()
    try:
        await agent.wait_healthy()
        run_private(
            private_dockerd, numbered_writer("elsewhere", 50, then="sleep 60"), prefix + "w"
        )
        delivery = await delivery_of(loki, {"host": host}, numbered_lines("elsewhere", 50))
        assert delivery.exactly_once, str(delivery)
        assert await agent.metric("nexo_agent_unreadable_targets") == 0
    finally:
        agent.close()
