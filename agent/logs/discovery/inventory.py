"""Which containers exist: one inventory shared by the log pipeline and container metrics.

Discovery sources (Docker API events, config.v2.json polling) feed it; consumers subscribe
and see a per-container lifecycle that is always ordered ``added`` -> (``updated``)* ->
``died`` -> ... -> ``removed``, even when a source learns about a container late (a
container created and destroyed within a second still yields added -> died -> removed).
Container IDs are never reused, so a removal is final: later (replayed) news about a
removed container is ignored.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from agent.config import DEFAULT_DOCKER_ROOT
from agent.logs.dockerjson import parse_docker_time

InventoryEventKind = Literal["added", "updated", "died", "removed"]

_NEVER = "0001-01-01"  # Go's zero time, Docker's "never started / never finished"


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """What the agent needs to know about one container, as Docker reports it.

    Built identically from ``GET /containers/{id}/json`` (API mode) and from
    ``config.v2.json`` + ``hostconfig.json`` (files mode). Times are integer nanoseconds
    since the Unix epoch (0 = never). ``log_path`` is the json-file log as seen from the
    agent (under the configured data_root), ``None`` for any other log driver;
    ``docker_log_path`` is the path as Docker reports it (``LogPath``, "" when unknown), for
    telling an operator where the two differ. ``log_max_size`` is the ``max-size`` log
    option in bytes (0: unlimited or unknown), to bound what a rotation can have lost.
    """

    id: str
    name: str
    image: str
    image_id: str
    labels: dict[str, str] = field(hash=False)
    log_path: Path | None
    log_driver: str
    tty: bool
    pid: int
    running: bool
    started_at: int
    finished_at: int
    created: int
    cgroup_parent: str
    restart_count: int
    docker_log_path: str = ""
    log_max_size: int = 0


@dataclass(frozen=True, slots=True)
class InventoryEvent:
    kind: InventoryEventKind
    container: ContainerInfo


def docker_state_time(value: Any) -> int:
    """A State/Created time -> ns; Go's zero time (never started/finished) or junk -> 0."""
    if not isinstance(value, str) or not value or value.startswith(_NEVER):
        return 0
    try:
        return parse_docker_time(value)
    except ValueError:
        return 0


def json_log_path(data_root: Path, container_id: str) -> Path:
    """Where the json-file driver writes (moby ``daemon/logger/jsonfilelog``)."""
    return data_root / "containers" / container_id / f"{container_id}-json.log"


def container_from_inspect(
    data: Mapping[str, Any], data_root: Path | None, docker_root: Path | None = None
) -> ContainerInfo:
    """Build a :class:`ContainerInfo` from inspect JSON (or config.v2.json + HostConfig).

    ``LogPath`` (what Docker reports) is the truth when the agent sees the host's files
    where Docker does (``data_root`` unset). With ``data_root`` set (the host's data root
    mounted elsewhere), a LogPath under ``docker_root`` (the daemon's DockerRootDir, API
    mode) is re-rooted at ``data_root``. Without a LogPath (files mode, or a container that
    never started) the path is derived from the root. Raises ``KeyError``/``TypeError`` on
    data that is not a container description.
    """
    cid = str(data["ID"] if "ID" in data else data["Id"])
    config = data.get("Config") or {}
    state = data.get("State") or {}
    host_config = data.get("HostConfig") or {}
    log_config = host_config.get("LogConfig") or {}
    log_driver = str(log_config.get("Type") or "")
    raw = str(data.get("LogPath") or "")
    log_path: Path | None = None
    if log_driver == "json-file":
        log_path = agent_log_path(cid, raw, data_root, docker_root)
    running = bool(state.get("Running"))
    return ContainerInfo(
        id=cid,
        name=str(data.get("Name") or "").lstrip("/"),
        image=str(config.get("Image") or ""),
        image_id=str(data.get("Image") or ""),
        labels={str(k): str(v) for k, v in (config.get("Labels") or {}).items()},
        log_path=log_path,
        log_driver=log_driver,
        tty=bool(config.get("Tty")),
        pid=int(state.get("Pid") or 0) if running else 0,
        running=running,
        started_at=docker_state_time(state.get("StartedAt")),
        finished_at=docker_state_time(state.get("FinishedAt")),
        created=docker_state_time(data.get("Created")),
        cgroup_parent=str(host_config.get("CgroupParent") or ""),
        restart_count=int(data.get("RestartCount") or 0),
        docker_log_path=raw,
        log_max_size=_log_max_size(log_config.get("Config")),
    )


class ContainerInventory:
    """The current containers (running and stopped) and a lifecycle stream per subscriber.

    Mutated only from the event loop thread by discovery sources, through the
    ``container_*`` and :meth:`reconcile` methods; each turns whatever the source learned
    into the ordered events described in the module docstring. Removed containers stay
    reachable through :meth:`get` for ``removed_retention`` seconds so a consumer draining
    a file can still look up its metadata.
    """

    def __init__(self, removed_retention: float = 300.0) -> None:
        self._live: dict[str, ContainerInfo] = {}
        # Whether the last lifecycle event sent for a container said it runs; keeps 'died'
        # exactly once per run even when the same die is learned twice (replay + resync).
        self._reported_running: dict[str, bool] = {}
        self._removed: dict[str, tuple[ContainerInfo, float]] = {}
        self._retention = removed_retention
        self._subscribers: list[asyncio.Queue[InventoryEvent]] = []

    @property
    def containers(self) -> Mapping[str, ContainerInfo]:
        """Live containers (running or stopped, not yet destroyed) by full ID; read-only."""
        return MappingProxyType(self._live)

    def get(self, container_id: str) -> ContainerInfo | None:
        """A live container, or one removed less than ``removed_retention`` seconds ago."""
        info = self._live.get(container_id)
        if info is not None:
            return info
        self._forget_expired()
        gone = self._removed.get(container_id)
        return gone[0] if gone else None

    def is_removed(self, container_id: str) -> bool:
        self._forget_expired()
        return container_id in self._removed

    def subscribe(self) -> asyncio.Queue[InventoryEvent]:
        """A new unbounded queue of events, starting with ``added`` for every live container."""
        queue: asyncio.Queue[InventoryEvent] = asyncio.Queue()
        for info in self._live.values():
            queue.put_nowait(InventoryEvent("added", info))
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[InventoryEvent]) -> None:
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    # -- mutations, called by discovery sources ------------------------------------------

    def container_started(self, info: ContainerInfo) -> None:
        """A start (or restart) happened; ``info`` may already show it stopped again."""
        if self.is_removed(info.id):
            return
        old = self._live.get(info.id)
        self._live[info.id] = info
        if old is None:
            self._reported_running[info.id] = True
            self._emit("added", info)
        elif not self._reported_running.get(info.id) or _changed(old, info):
            self._reported_running[info.id] = True
            self._emit("updated", info)

    def container_died(self, info: ContainerInfo) -> None:
        """The main process exited; emits ``died`` once per run (``added`` first if new)."""
        if self.is_removed(info.id):
            return
        old = self._live.get(info.id)
        self._live[info.id] = info
        if old is None:
            self._emit("added", info)
        elif not self._reported_running.get(info.id):
            if _changed(old, info):
                self._emit("updated", info)
            return
        self._reported_running[info.id] = False
        self._emit("died", info)

    def container_renamed(self, info: ContainerInfo) -> None:
        if self.is_removed(info.id):
            return
        old = self._live.get(info.id)
        self._live[info.id] = info
        if old is None:
            self._reported_running[info.id] = info.running
            self._emit("added", info)
        elif _changed(old, info):
            self._emit("updated", info)

    def container_destroyed(self, container_id: str, last_known: ContainerInfo | None) -> None:
        """Removal; a container never seen before is first announced from ``last_known``."""
        if self.is_removed(container_id):
            return
        info = self._live.get(container_id)
        if info is None:
            if last_known is None:
                return
            info = last_known
            self._live[container_id] = info
            self._reported_running[container_id] = True
            self._emit("added", info)
        if self._reported_running.get(container_id):
            info = replace(info, running=False, pid=0)
            self._emit("died", info)
        del self._live[container_id]
        self._reported_running.pop(container_id, None)
        self._removed[container_id] = (info, time.monotonic())
        self._emit("removed", info)

    def reconcile(self, listed: Iterable[ContainerInfo], fresher: Collection[str] = ()) -> None:
        """Make the inventory match a full listing taken at one moment.

        ``fresher`` holds IDs a source learned about (through events) after the listing
        began: for those the listing is stale, so they are neither updated nor removed.
        """
        seen: set[str] = set()
        for info in listed:
            seen.add(info.id)
            if info.id in fresher or self.is_removed(info.id):
                continue
            old = self._live.get(info.id)
            if old is None:
                self._live[info.id] = info
                self._reported_running[info.id] = info.running
                self._emit("added", info)
                continue
            self._live[info.id] = info
            was_running = self._reported_running.get(info.id, False)
            if was_running and not info.running:
                self._reported_running[info.id] = False
                self._emit("died", info)
            elif info.running and (not was_running or info.started_at != old.started_at):
                self._reported_running[info.id] = True
                self._emit("updated", info)
            elif _changed(old, info):
                self._emit("updated", info)
        for cid in [c for c in self._live if c not in seen and c not in fresher]:
            self.container_destroyed(cid, None)

    # -- internals -----------------------------------------------------------------------

    def _emit(self, kind: InventoryEventKind, info: ContainerInfo) -> None:
        event = InventoryEvent(kind, info)
        for queue in self._subscribers:
            queue.put_nowait(event)

    def _forget_expired(self) -> None:
        if not self._removed:
            return
        horizon = time.monotonic() - self._retention
        for cid in [c for c, (_, at) in self._removed.items() if at < horizon]:
            del self._removed[cid]


def _changed(old: ContainerInfo, new: ContainerInfo) -> bool:
    """A change consumers must hear about: identity, labels, file, or a restart."""
    return (
        old.name != new.name
        or old.labels != new.labels
        or old.log_path != new.log_path
        or old.log_driver != new.log_driver
        or old.started_at != new.started_at
        or old.image != new.image
    )


def agent_log_path(cid: str, raw: str, data_root: Path | None, docker_root: Path | None) -> Path:
    """Where the agent reads a container's json-file log (see :func:`container_from_inspect`)."""
    root = docker_root or DEFAULT_DOCKER_ROOT
    if data_root is None:
        return Path(raw) if raw else json_log_path(root, cid)
    if not raw:
        return json_log_path(data_root, cid)
    path = Path(raw)
    if docker_root is not None and path.is_relative_to(docker_root):
        return data_root / path.relative_to(docker_root)
    if docker_root is None:
        return json_log_path(data_root, cid)
    return path


_RAM_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$")


def _log_max_size(options: Any) -> int:
    """Docker's ``max-size`` log option in bytes (0: unlimited or unparsable).

    Parsed like moby's ``units.RAMInBytes``: ``512k``, ``10m``, ``1g``, ``10MiB``, binary units.
    """
    if not isinstance(options, Mapping):
        return 0
    match = _RAM_SIZE_RE.match(str(options.get("max-size") or "").strip().lower())
    if match is None:
        return 0
    power = " kmgtp".index(match.group(2) or " ")
    return int(float(match.group(1)) * 1024**power)
