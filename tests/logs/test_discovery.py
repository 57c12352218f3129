"""Discovery against the real dockerd: inventory fields, lifecycle order, filters, labels.

dockerd restarts are simulated with a unix-socket proxy in front of /var/run/docker.sock
that the test cuts and restores (restarting the shared dockerd would disturb other tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agent.config import ContainerFilter, DockerConfig, PipelineConfig, StaticFileTarget
from agent.dependencies import DOCKER
from agent.logs.discovery import (
    ContainerInfo,
    ContainerInventory,
    ContainerTargetFeed,
    DockerApiDiscovery,
    DockerFilesDiscovery,
    InventoryEvent,
    StaticFileDiscovery,
    TargetEvent,
    container_event_action,
    container_from_inspect,
    detect_own_container_id,
    event_time_ns,
    log_target_for,
    sanitize_label_name,
    skip_reason,
)
from agent.logs.tail import PREOPENED
from agent.metrics.self import AgentMetrics

DOCKER_SOCK = "/var/run/docker.sock"
DATA_ROOT = Path("/var/lib/docker")
HEX64 = "0123456789abcdef" * 4
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def metrics() -> AgentMetrics:
    return AgentMetrics(CollectorRegistry())


def discovery_errors(metrics: AgentMetrics, source: str) -> float:
    value = metrics.registry.get_sample_value(
        "nexo_agent_discovery_errors_total", {"source": source}
    )
    return value or 0.0


def make_info(**overrides: Any) -> ContainerInfo:
    base = ContainerInfo(
        id=HEX64,
        name="web-1",
        image="registry.example/shop/web:1.4",
        image_id="sha256:" + "ab" * 32,
        labels={},
        log_path=DATA_ROOT / "containers" / HEX64 / f"{HEX64}-json.log",
        log_driver="json-file",
        tty=False,
        pid=42,
        running=True,
        started_at=1,
        finished_at=0,
        created=1,
        cgroup_parent="",
        restart_count=0,
    )
    return replace(base, **overrides)


class Lifecycles:
    """Inventory events sorted per container: waiting for one never discards another's."""

    def __init__(self, inventory: ContainerInventory) -> None:
        self._queue = inventory.subscribe()
        self._pending: dict[str, deque[InventoryEvent]] = defaultdict(deque)

    async def next(self, container_id: str, within: float = 10.0) -> InventoryEvent:
        pending = self._pending[container_id]
        async with asyncio.timeout(within):
            while not pending:
                event = await self._queue.get()
                self._pending[event.container.id].append(event)
        return pending.popleft()

    async def kinds(self, container_id: str, count: int, within: float = 10.0) -> list[str]:
        return [(await self.next(container_id, within)).kind for _ in range(count)]

    async def assert_quiet(self, container_id: str, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            event = await self.next(container_id, within=seconds)
            pytest.fail(f"unexpected {event.kind}: {event.container}")


async def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    pytest.fail("condition not reached in time")


async def start(run_container: Callable[..., Any], command: str, **kwargs: Any) -> Any:
    return await asyncio.to_thread(run_container, command, **kwargs)


class ApiDiscoveryRunning:
    def __init__(self, discovery: DockerApiDiscovery, inventory: ContainerInventory) -> None:
        self.discovery = discovery
        self.inventory = inventory

    async def wait_synced(self) -> None:
        """Connected and listed: containers started from now on are news from events."""
        await eventually(lambda: self.discovery.synced)


@contextlib.asynccontextmanager
async def api_discovery(
    metrics: AgentMetrics, host: str = f"unix://{DOCKER_SOCK}", preopen_logs: bool = True
) -> AsyncIterator[ApiDiscoveryRunning]:
    inventory = ContainerInventory()
    cfg = DockerConfig(host=host, resync_interval=300)
    discovery = DockerApiDiscovery(
        cfg, inventory, metrics, max_backoff=0.3, preopen_logs=preopen_logs
    )
    assert await discovery.initial_sync()
    stop = asyncio.Event()
    task = asyncio.create_task(discovery.run(stop))
    running = ApiDiscoveryRunning(discovery, inventory)
    try:
        await running.wait_synced()
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


# -- the inventory, listed at start ---------------------------------------------------------


async def test_existing_running_and_stopped_containers_are_listed_with_their_fields(
    run_container: Callable[..., Any], metrics: AgentMetrics
) -> None:
    labels = {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "web",
        "team": "payments",
    }
    running = await start(run_container, "echo hello; sleep 30", labels=labels)
    stopped = await start(run_container, "echo bye")
    await asyncio.to_thread(stopped.wait)

    inventory = ContainerInventory()
    discovery = DockerApiDiscovery(DockerConfig(), inventory, metrics)
    assert await discovery.initial_sync()

    info = inventory.containers[running.id]
    assert info.name == running.name and not info.name.startswith("/")
    assert info.image == "nexo-test/busybox:latest"
    assert info.image_id.startswith("sha256:")
    assert info.labels == labels
    assert info.log_driver == "json-file"
    assert info.log_path == DATA_ROOT / "containers" / running.id / f"{running.id}-json.log"
    assert info.log_path is not None and info.log_path.exists()
    assert info.running and info.pid > 0 and info.started_at > info.created > 0
    assert info.finished_at == 0 and not info.tty and info.restart_count == 0

    gone = inventory.containers[stopped.id]
    assert not gone.running and gone.pid == 0 and gone.finished_at > 0 and gone.started_at > 0
    assert gone.log_path is not None and gone.log_path.exists()


async def test_files_mode_reads_the_same_values_as_the_api(
    run_container: Callable[..., Any], metrics: AgentMetrics
) -> None:
    running = await start(run_container, "sleep 30", labels={"a.b/c": "d"}, tty=True)
    stopped = await start(run_container, "true")
    await asyncio.to_thread(stopped.wait)

    from_api = ContainerInventory()
    assert await DockerApiDiscovery(DockerConfig(), from_api, metrics).initial_sync()
    from_files = ContainerInventory()
    files = DockerFilesDiscovery(DockerConfig(discovery="files"), from_files, metrics)
    assert await files.initial_sync()

    for container in (running, stopped):
        assert from_files.containers[container.id] == from_api.containers[container.id]
    assert from_files.containers[running.id].tty


# -- lifecycle through the events stream -----------------------------------------------------


async def test_start_rename_die_destroy_arrive_in_order(
    run_container: Callable[..., Any], metrics: AgentMetrics
) -> None:
    async with api_discovery(metrics) as d:
        events = Lifecycles(d.inventory)
        container = await start(run_container, "sleep 30")
        added = await events.next(container.id)
        assert added.kind == "added" and added.container.running

        new_name = f"nexo-test-renamed-{uuid.uuid4().hex[:6]}"
        await asyncio.to_thread(container.rename, new_name)
        renamed = await events.next(container.id)
        assert (renamed.kind, renamed.container.name) == ("updated", new_name)

        await asyncio.to_thread(container.kill)
        died = await events.next(container.id)
        assert died.kind == "died" and not died.container.running and died.container.pid == 0

        await asyncio.to_thread(container.remove)
        removed = await events.next(container.id)
        assert removed.kind == "removed"
        assert container.id not in d.inventory.containers
        assert d.inventory.get(container.id) is not None  # still reachable while draining


async def test_container_living_under_a_second_still_yields_added_died_removed(
    run_container: Callable[..., Any], metrics: AgentMetrics
) -> None:
    async with api_discovery(metrics) as d:
        events = Lifecycles(d.inventory)
        container = await start(run_container, "echo short", auto_remove=True)
        kinds = []
        for _ in range(3):
            event = await events.next(container.id)
            kinds.append(event.kind)
            expected = DATA_ROOT / "containers" / container.id / f"{container.id}-json.log"
            assert event.container.log_path == expected
        assert kinds == ["added", "died", "removed"]


@pytest.mark.parametrize("ships_logs", [True, False])
async def test_a_started_containers_log_is_preopened_only_when_logs_are_shipped(
    run_container: Callable[..., Any], metrics: AgentMetrics, ships_logs: bool
) -> None:
    async with api_discovery(metrics, preopen_logs=ships_logs) as d:
        events = Lifecycles(d.inventory)
        container = await start(run_container, "sleep 30")
        assert (await events.next(container.id)).kind == "added"
        path = str(DATA_ROOT / "containers" / container.id / f"{container.id}-json.log")
        parked = PREOPENED.take(path)
        if parked is not None:
            os.close(parked)
        assert (parked is not None) == ships_logs


async def test_exec_start_is_not_mistaken_for_a_start(
    run_container: Callable[..., Any], metrics: AgentMetrics
) -> None:
    assert container_event_action({"Type": "container", "Action": "exec_start: sh -c x"}) is None
    assert container_event_action({"Type": "container", "Action": "health_status: ok"}) is None
    assert container_event_action({"Type": "network", "Action": "start"}) is None
    assert container_event_action({"Type": "container", "Action": "start"}) == "start"

    async with api_discovery(metrics) as d:
        events = Lifecycles(d.inventory)
        container = await start(run_container, "sleep 30")
        assert (await events.next(container.id)).kind == "added"
        await asyncio.to_thread(container.exec_run, ["sh", "-c", "echo in-exec"])
        await events.assert_quiet(container.id, 1.0)


class CuttableDockerProxy:
    """A unix-socket proxy to dockerd that can drop every connection and stop listening."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    restore = start

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        self.path.unlink(missing_ok=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            daemon_r, daemon_w = await asyncio.open_unix_connection(DOCKER_SOCK)
        except OSError:
            client_w.transport.abort()
            return
        self._writers |= {client_w, daemon_w}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pump(client_r, daemon_w), pump(daemon_r, client_w))
        self._writers -= {client_w, daemon_w}


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory for unix sockets (sun_path is limited to 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="nexo-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_events_missed_while_dockerd_was_away_are_replayed_and_reconciled(
    run_container: Callable[..., Any], metrics: AgentMetrics, short_tmp: Path
) -> None:
    proxy = CuttableDockerProxy(short_tmp / "docker.sock")
    await proxy.start()
    async with api_discovery(metrics, host=f"unix://{proxy.path}") as d:
        events = Lifecycles(d.inventory)
        before = await start(run_container, "sleep 30")
        assert (await events.next(before.id)).kind == "added"

        await proxy.cut()
        await eventually(lambda: not d.discovery.connected)
        survivor = await start(run_container, "sleep 30")
        brief = await start(run_container, "echo brief", auto_remove=True)
        await asyncio.to_thread(before.remove, force=True)
        await asyncio.sleep(1.0)  # a few failed reconnects
        await proxy.restore()

        assert (await events.next(survivor.id)).kind == "added"
        assert await events.kinds(brief.id, 3) == ["added", "died", "removed"]
        assert await events.kinds(before.id, 2) == ["died", "removed"]
        await d.wait_synced()
    assert discovery_errors(metrics, "docker_api") >= 2  # the broken stream + refused connects
    await proxy.cut()


async def test_initial_sync_without_dockerd_reports_failure_instead_of_raising(
    metrics: AgentMetrics, short_tmp: Path
) -> None:
    cfg = DockerConfig(host=f"unix://{short_tmp / 'absent.sock'}")
    discovery = DockerApiDiscovery(cfg, ContainerInventory(), metrics)
    assert not await discovery.initial_sync()
    assert discovery_errors(metrics, "docker_api") == 1
    assert not discovery.synced


async def test_a_refused_tcp_endpoint_is_reported_as_refused(metrics: AgentMetrics) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        host = f"tcp://127.0.0.1:{port}"
        discovery = DockerApiDiscovery(DockerConfig(host=host), ContainerInventory(), metrics)
        assert not await discovery.initial_sync()
    problem = metrics.dependencies.problem(DOCKER)
    assert problem is not None and problem.reason == f"Docker refuses connections at {host}"


def test_event_time_prefers_nanoseconds_over_whole_seconds() -> None:
    """``timeNano`` is the cursor; ``time`` (whole seconds) serves a daemon without it."""
    at = 1_765_000_000
    assert event_time_ns({"time": at, "timeNano": at * 10**9 + 7}) == at * 10**9 + 7
    assert event_time_ns({"time": at}) == at * 10**9
    assert event_time_ns({}) == 0


def test_api_discovery_runs_without_the_blocking_docker_sdk(short_tmp: Path) -> None:
    """Discovery talks to dockerd through the agent's HTTP client: no SDK, no thread.

    In a fresh interpreter, as the agent runs (the tests themselves use the docker SDK).
    """
    script = """
import asyncio, sys, threading
from prometheus_client import CollectorRegistry
from agent.config import DockerConfig
from agent.logs.discovery import ContainerInventory, DockerApiDiscovery
from agent.metrics.self import AgentMetrics

async def main():
    inventory = ContainerInventory()
    d = DockerApiDiscovery(DockerConfig(), inventory, AgentMetrics(CollectorRegistry()))
    assert await d.initial_sync()
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop))
    for _ in range(200):
        if d.synced:
            break
        await asyncio.sleep(0.05)
    assert d.synced
    assert threading.active_count() == 1, threading.enumerate()
    stop.set()
    await task

asyncio.run(main())
loaded = sorted(m for m in ("docker", "requests", "urllib3", "aiohttp") if m in sys.modules)
assert not loaded, loaded
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-2000:]


# -- files mode --------------------------------------------------------------------------------


async def test_files_mode_sees_new_and_removed_containers_without_the_socket(
    run_container: Callable[..., Any], metrics: AgentMetrics
) -> None:
    inventory = ContainerInventory()
    files = DockerFilesDiscovery(DockerConfig(discovery="files"), inventory, metrics)
    files.poll()
    events = Lifecycles(inventory)

    container = await start(run_container, "sleep 30")
    files.poll()
    added = await events.next(container.id, within=1)
    assert added.kind == "added" and added.container.name == container.name
    assert added.container.running and added.container.log_path is not None

    await asyncio.to_thread(container.remove, force=True)
    files.poll()
    assert await events.kinds(container.id, 2, within=1) == ["died", "removed"]


def write_container_dir(root: Path, cid: str, config: str, hostconfig: str) -> Path:
    directory = root / "containers" / cid
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.v2.json").write_text(config)
    (directory / "hostconfig.json").write_text(hostconfig)
    return directory


def test_files_mode_tolerates_corrupt_and_half_written_config(
    tmp_path: Path, metrics: AgentMetrics
) -> None:
    config = {
        "ID": HEX64,
        "Name": "/odd name ünïcode",
        "Created": "2024-05-01T10:00:00.5Z",
        "Config": {"Image": "busybox", "Labels": None, "Tty": False},
        "Image": "sha256:" + "cd" * 32,
        "State": {"Running": True, "Pid": 7, "StartedAt": "2024-05-01T10:00:01Z"},
        "LogPath": f"/elsewhere/containers/{HEX64}/{HEX64}-json.log",
    }
    hostconfig = {"LogConfig": {"Type": "json-file", "Config": {}}}
    good, good_host = json.dumps(config), json.dumps(hostconfig)
    (tmp_path / "containers" / "lost+found").mkdir(parents=True)
    (tmp_path / "containers" / ("e" * 64)).mkdir()  # being created: no config yet
    inventory = ContainerInventory()
    files = DockerFilesDiscovery(DockerConfig(data_root=tmp_path), inventory, metrics)

    write_container_dir(tmp_path, HEX64, good[: len(good) // 2], good_host)
    assert files.poll()
    assert HEX64 not in inventory.containers
    assert discovery_errors(metrics, "docker_files") == 1

    write_container_dir(tmp_path, HEX64, good, good_host)
    files.poll()
    info = inventory.containers[HEX64]
    assert info.name == "odd name ünïcode" and info.labels == {}
    assert info.log_path == tmp_path / "containers" / HEX64 / f"{HEX64}-json.log"
    assert info.created == 1714557600_500_000_000 and info.started_at == 1714557601_000_000_000

    (tmp_path / "containers" / HEX64 / "config.v2.json").write_text("{not json")
    files.poll()
    assert inventory.containers[HEX64] == info  # what was known is kept
    assert discovery_errors(metrics, "docker_files") == 2

    shutil.rmtree(tmp_path / "containers" / HEX64)
    files.poll()
    assert HEX64 not in inventory.containers
    assert discovery_errors(metrics, "docker_files") == 2


# -- filters -----------------------------------------------------------------------------------


def test_include_and_exclude_by_name_image_and_label() -> None:
    info = make_info(labels={"tier": "front", "team": "shop"})
    assert skip_reason(info, DockerConfig()) is None

    def cfg(**kw: Any) -> DockerConfig:
        return DockerConfig(**kw)

    inc, exc = ContainerFilter, ContainerFilter
    assert skip_reason(info, cfg(include=inc(names=["web-*"]))) is None
    assert skip_reason(info, cfg(include=inc(names=["db-*"]))) == "not_included"
    assert skip_reason(info, cfg(include=inc(images=["registry.example/shop/web"]))) is None
    assert skip_reason(info, cfg(include=inc(images=["*/web:1.*"]))) is None
    assert skip_reason(info, cfg(include=inc(images=["sha256:abab*"]))) is None
    assert skip_reason(info, cfg(include=inc(images=["nginx*"]))) == "not_included"
    assert skip_reason(info, cfg(include=inc(labels=["tier=front"]))) is None
    assert skip_reason(info, cfg(include=inc(labels=["tier=back"]))) == "not_included"
    # every non-empty include category must match
    both = inc(names=["web-*"], labels=["tier=back"])
    assert skip_reason(info, cfg(include=both)) == "not_included"
    assert skip_reason(info, cfg(exclude=exc(names=["web-?"]))) == "excluded"
    assert skip_reason(info, cfg(exclude=exc(labels=["team"]))) == "excluded"
    assert skip_reason(info, cfg(exclude=exc(images=["registry.example/*"]))) == "excluded"
    assert skip_reason(info, cfg(exclude=exc(labels=["team=other"]))) is None


def test_opt_out_label_no_log_file_and_own_container_are_skipped() -> None:
    cfg = DockerConfig()
    assert skip_reason(make_info(labels={"nexo.logs": "false"}), cfg) == "opt_out"
    assert skip_reason(make_info(labels={"nexo.logs": "true"}), cfg) is None
    assert skip_reason(make_info(labels={"nexo.logs": "false"}), cfg, opt_out_label="") is None
    no_file = make_info(log_driver="journald", log_path=None)
    assert skip_reason(no_file, cfg) == "log_driver"
    assert skip_reason(make_info(), cfg, own_container_id=HEX64) == "own_container"
    assert skip_reason(make_info(), cfg, own_container_id=HEX64[:12]) == "own_container"


async def test_containers_without_a_log_file_stay_in_the_inventory_but_get_no_target(
    run_container: Callable[..., Any], metrics: AgentMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_log = await start(run_container, "sleep 30", log_config={"type": "none"})
    opted_out = await start(run_container, "sleep 30", labels={"nexo.logs": "false"})
    me = await start(run_container, "sleep 30")
    shipped = await start(run_container, "sleep 30")
    monkeypatch.setenv("NEXO_AGENT_CONTAINER_ID", me.id)

    inventory = ContainerInventory()
    assert await DockerApiDiscovery(DockerConfig(), inventory, metrics).initial_sync()
    info = inventory.containers[no_log.id]
    assert info.log_driver == "none" and info.log_path is None

    targets: list[TargetEvent] = []
    feed = ContainerTargetFeed(
        inventory, DockerConfig(), PipelineConfig(), "node-1", targets.append
    )
    assert feed.own_container_id == me.id
    queue = inventory.subscribe()
    while not queue.empty():
        feed.apply(queue.get_nowait())
    keys = {t.target.key for t in targets}
    assert f"docker:{shipped.id}" in keys
    assert not keys & {f"docker:{c.id}" for c in (no_log, opted_out, me)}


def test_own_container_is_found_in_mountinfo_or_cgroup(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    host_like = (
        f"500 30 0:50 / /var/lib/docker/containers/{'a' * 64}/mounts/shm rw - tmpfs shm rw\n"
        "25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw\n"
    )
    (proc / "self" / "mountinfo").write_text(host_like)
    (proc / "self" / "cgroup").write_text("0::/\n")
    assert detect_own_container_id({}, proc) is None  # other containers' shm mounts on a host

    in_container = host_like + (
        f"612 600 8:1 /var/lib/docker/containers/{HEX64}/hostname /etc/hostname rw - ext4 "
        "/dev/sda1 rw\n"
    )
    (proc / "self" / "mountinfo").write_text(in_container)
    assert detect_own_container_id({}, proc) == HEX64

    (proc / "self" / "mountinfo").write_text("")
    (proc / "self" / "cgroup").write_text(f"4:memory:/docker/{HEX64}\n")
    assert detect_own_container_id({}, proc) == HEX64
    (proc / "self" / "cgroup").write_text(f"0::/system.slice/docker-{HEX64}.scope\n")
    assert detect_own_container_id({}, proc) == HEX64
    assert detect_own_container_id({"NEXO_AGENT_CONTAINER_ID": "ABC123"}, proc) == "abc123"


# -- targets and labels ------------------------------------------------------------------------


def test_label_names_are_sanitised_to_lokis_charset() -> None:
    assert sanitize_label_name("app.kubernetes.io/name") == "app_kubernetes_io_name"
    assert sanitize_label_name("9lives") == "_9lives"
    assert sanitize_label_name("__x") == "_x"
    assert sanitize_label_name("___") == "_"
    assert sanitize_label_name("équipe") == "_quipe"
    assert sanitize_label_name("ok_name1") == "ok_name1"
    assert sanitize_label_name("") == ""


def test_container_target_carries_compose_labels_and_id_as_metadata() -> None:
    labels = {"com.docker.compose.project": "shop", "com.docker.compose.service": "api"}
    target = log_target_for(make_info(labels=labels), PipelineConfig(), "node-1")
    assert target is not None
    assert target.key == f"docker:{HEX64}" and target.kind == "docker"
    assert target.path == DATA_ROOT / "containers" / HEX64 / f"{HEX64}-json.log"
    assert dict(target.labels) == {
        "host": "node-1",
        "container": "web-1",
        "compose_project": "shop",
        "compose_service": "api",
        "service_name": "api",
    }
    assert target.metadata == (("container_id", HEX64),)
    assert (
        log_target_for(make_info(log_path=None, log_driver="none"), PipelineConfig(), "h") is None
    )


def test_service_name_falls_back_to_service_then_app_label_then_container_name() -> None:
    def service(labels: dict[str, str]) -> str:
        target = log_target_for(make_info(labels=labels), PipelineConfig(), "h")
        assert target is not None
        return dict(target.labels)["service_name"]

    assert service({"service": "billing", "app": "x"}) == "billing"
    assert service({"app": "x"}) == "x"
    assert service({}) == "web-1"


def test_promoted_labels_are_sanitised_capped_and_never_exceed_fifteen() -> None:
    labels = {f"com.example.label-{i}": f"v{i}" for i in range(300)}
    labels |= {"app.kubernetes.io/name": "shop", "9lives": "cat", "__x": "y", "ünï": "u"}
    labels["huge"] = "é" * 3000
    pipeline = PipelineConfig(
        docker_labels=["app.kubernetes.io/name", "9lives", "__x", "ünï", "huge", *labels],
        static_labels={"env": "prod"},
    )
    target = log_target_for(make_info(labels=labels), pipeline, "node-1")
    assert target is not None
    names = dict(target.labels)
    assert len(names) == 13  # 15 minus room for the per-line stream and level
    assert names["env"] == "prod" and names["host"] == "node-1"
    assert names["app_kubernetes_io_name"] == "shop" and names["_9lives"] == "cat"
    assert names["_x"] == "y" and names["_n_"] == "u"
    assert len(names["huge"].encode()) <= 2048
    for name in names:
        assert sanitize_label_name(name) == name

    no_per_line = PipelineConfig(labels=["host"], docker_labels=list(labels))
    target = log_target_for(make_info(labels=labels), no_per_line, "node-1")
    assert target is not None and len(target.labels) == 15


def test_unlisted_container_labels_are_not_promoted() -> None:
    target = log_target_for(make_info(labels={"team": "a", "tier": "b"}), PipelineConfig(), "h")
    assert target is not None
    assert "team" not in dict(target.labels)
    assert dict(target.docker_labels) == {"team": "a", "tier": "b"}
    listed = PipelineConfig(labels=["host", "team"])
    target = log_target_for(make_info(labels={"team": "a"}), listed, "h")
    assert target is not None and dict(target.labels) == {"host": "h", "team": "a"}


def test_renaming_into_an_excluded_name_removes_the_target() -> None:
    inventory = ContainerInventory()
    targets: list[TargetEvent] = []
    feed = ContainerTargetFeed(
        inventory,
        DockerConfig(exclude=ContainerFilter(names=["tmp-*"])),
        PipelineConfig(),
        "h",
        targets.append,
        own_container_id="f" * 64,
    )
    queue = inventory.subscribe()
    inventory.container_started(make_info())
    inventory.container_renamed(make_info(name="web-2"))
    inventory.container_died(make_info(name="web-2", running=False, pid=0))
    inventory.container_renamed(make_info(name="tmp-1", running=False, pid=0))
    while not queue.empty():
        feed.apply(queue.get_nowait())
    assert [(t.kind, t.target.name) for t in targets] == [
        ("added", "web-1"),
        ("updated", "web-2"),
        ("removed", "web-2"),
    ]


# -- inventory ordering rules ------------------------------------------------------------------


def test_inventory_orders_late_news_and_ignores_replays_after_removal() -> None:
    inventory = ContainerInventory()
    queue = inventory.subscribe()
    inventory.container_destroyed(HEX64, make_info())  # first and last news at once
    inventory.container_started(make_info())  # a replayed start after the removal
    inventory.container_died(make_info(running=False))
    kinds = [queue.get_nowait().kind for _ in range(queue.qsize())]
    assert kinds == ["added", "died", "removed"]
    assert inventory.get(HEX64) is not None and inventory.is_removed(HEX64)

    other = make_info(id="b" * 64)
    inventory.container_died(replace(other, running=False))
    inventory.container_died(replace(other, running=False))  # learned twice
    inventory.reconcile([replace(other, running=False)])  # and once more from a listing
    kinds = [queue.get_nowait().kind for _ in range(queue.qsize())]
    assert kinds == ["added", "died"]


def test_reconcile_leaves_containers_that_events_touched_meanwhile_alone() -> None:
    inventory = ContainerInventory()
    a, b = make_info(id="a" * 64), make_info(id="b" * 64)
    inventory.reconcile([a, b])
    queue = inventory.subscribe()
    assert [queue.get_nowait().kind for _ in range(queue.qsize())] == ["added", "added"]
    # b is missing from this listing, but an event about b was applied after it began
    inventory.reconcile([replace(a, running=False)], fresher={"b" * 64})
    assert [(e.kind, e.container.id) for e in [queue.get_nowait()]] == [("died", "a" * 64)]
    assert queue.empty() and "b" * 64 in inventory.containers
    inventory.reconcile([])
    kinds = [queue.get_nowait().kind for _ in range(queue.qsize())]
    assert kinds.count("removed") == 2


# -- static files and the shared target stream -------------------------------------------------


async def test_static_files_and_containers_feed_one_target_stream(tmp_path: Path) -> None:
    (tmp_path / "deep" / "er").mkdir(parents=True)
    for name in ("a.log", "deep/er/b.log", "c.txt", "skip.log"):
        (tmp_path / name).write_text("x\n")
    stream: asyncio.Queue[TargetEvent] = asyncio.Queue()
    spec = StaticFileTarget(
        paths=[str(tmp_path / "**" / "*.log")],
        exclude=["*/skip.log"],
        labels={"job": "varlogs"},
    )
    files = StaticFileDiscovery([spec], "node-1", stream.put_nowait)
    inventory = ContainerInventory()
    feed = ContainerTargetFeed(
        inventory, DockerConfig(), PipelineConfig(), "node-1", stream.put_nowait, "f" * 64
    )
    stop = asyncio.Event()
    feed_task = asyncio.create_task(feed.run(stop))

    files.scan()
    inventory.container_started(make_info())
    seen = [await asyncio.wait_for(stream.get(), 2) for _ in range(3)]
    assert {e.target.key for e in seen} == {
        f"file:{tmp_path / 'a.log'}",
        f"file:{tmp_path / 'deep/er/b.log'}",
        f"docker:{HEX64}",
    }
    a = next(e.target for e in seen if e.target.key.endswith("a.log"))
    assert a.kind == "file" and a.path == tmp_path / "a.log"
    assert dict(a.labels) == {
        "host": "node-1",
        "filename": str(tmp_path / "a.log"),
        "job": "varlogs",
    }

    (tmp_path / "a.log").unlink()
    (tmp_path / "new.log").write_text("y\n")
    files.scan()
    changes = {(e.kind, Path(e.target.path).name) for e in [stream.get_nowait() for _ in range(2)]}
    assert changes == {("removed", "a.log"), ("added", "new.log")}

    stop.set()
    await asyncio.wait_for(feed_task, 2)


# -- where the log file is ----------------------------------------------------------------


def inspect_doc(log_path: str, max_size: str = "") -> dict[str, Any]:
    options = {"max-size": max_size} if max_size else {}
    return {
        "Id": HEX64,
        "Name": "/web",
        "LogPath": log_path,
        "Config": {"Image": "busybox", "Labels": {}},
        "State": {"Running": True, "Pid": 42, "StartedAt": "2026-01-01T00:00:00Z"},
        "HostConfig": {"LogConfig": {"Type": "json-file", "Config": options}},
    }


def test_log_path_is_what_docker_reports_when_data_root_is_unset() -> None:
    reported = f"/data/docker/containers/{HEX64}/{HEX64}-json.log"
    info = container_from_inspect(inspect_doc(reported), None, Path("/data/docker"))
    assert info.log_path == Path(reported)
    assert info.docker_log_path == reported


def test_log_path_is_re_rooted_under_a_configured_data_root() -> None:
    reported = f"/data/docker/containers/{HEX64}/{HEX64}-json.log"
    info = container_from_inspect(
        inspect_doc(reported), Path("/host/data/docker"), Path("/data/docker")
    )
    assert info.log_path == Path(f"/host/data/docker/containers/{HEX64}/{HEX64}-json.log")
    assert info.docker_log_path == reported


def test_never_started_container_gets_the_path_docker_will_use() -> None:
    doc = inspect_doc("")
    doc["State"] = {"Running": False, "StartedAt": "0001-01-01T00:00:00Z"}
    info = container_from_inspect(doc, None, Path("/data/docker"))
    assert info.log_path == Path(f"/data/docker/containers/{HEX64}/{HEX64}-json.log")
    assert info.started_at == 0


@pytest.mark.parametrize(
    ("option", "size"),
    [
        ("10m", 10 * 1024**2),
        ("512k", 512 * 1024),
        ("1g", 1024**3),
        ("10MiB", 10 * 1024**2),
        ("40kb", 40 * 1024),
        ("", 0),
        ("lots", 0),
    ],
)
def test_max_size_log_option_is_read_in_binary_units_like_docker(option: str, size: int) -> None:
    info = container_from_inspect(inspect_doc("/x", option), None, Path("/var/lib/docker"))
    assert info.log_max_size == size
