"""Container discovery through the Docker Engine API: list, events, periodic resync.

Polling alone misses short-lived containers (Promtail/Alloy list every 60 s), and an
events stream alone silently stops after a dockerd restart (grafana/loki#5259,
vectordotdev/vector#19681). So: list everything (``all=True``: stopped containers can
still hold unread lines), follow ``start``/``die``/``destroy``/``rename`` events, and on
every (re)connection replay the missed events with ``since=<last event time>`` (the daemon
keeps ~1000 in memory) and reconcile with a fresh listing; a slow resync repairs anything
else. The ``docker`` SDK is blocking: the events stream has its own thread, listings run
in worker threads, and the inventory is only touched on the event loop. The SDK is imported
on first use: an agent without Docker (``discovery: files``) never pays for it.

Docker being away is one state (:mod:`agent.dependencies`), logged when it begins and ends,
not once per retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from agent.config import DockerConfig
from agent.dependencies import DOCKER
from agent.logs.discovery.inventory import (
    ContainerInfo,
    ContainerInventory,
    agent_log_path,
    container_from_inspect,
)
from agent.logs.tail import PREOPENED
from agent.metrics.self import AgentMetrics

log = logging.getLogger("agent.logs.discovery")

LifecycleAction = Literal["start", "die", "destroy", "rename"]
LIFECYCLE_ACTIONS: frozenset[str] = frozenset({"start", "die", "destroy", "rename"})
_EVENT_FILTERS = {"type": ["container"], "event": sorted(LIFECYCLE_ACTIONS)}
# Actor.Attributes of a container event mix the container's labels with these keys.
_EVENT_ONLY_ATTRIBUTES = frozenset({"name", "image", "exitCode", "execDuration", "signal"})
_API_TIMEOUT = 10.0
_RECENT_EVENTS = 4096  # the daemon replays at most ~1000 buffered events
_SOURCE = "docker_api"


def container_event_action(event: Mapping[str, Any]) -> LifecycleAction | None:
    """The lifecycle action of an events-stream record, or ``None`` for anything else.

    Compared exactly: ``exec_start: sh -c …`` and ``health_status: healthy`` contain
    lifecycle words but say nothing about the container's main process.
    """
    if event.get("Type") != "container":
        return None
    action = event.get("Action")
    if action == "start":
        return "start"
    if action == "die":
        return "die"
    if action == "destroy":
        return "destroy"
    if action == "rename":
        return "rename"
    return None


def _since_param(ns: int) -> str:
    """The daemon parses ``since`` as ``<seconds>.<nanoseconds>``."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


class DockerApiDiscovery:
    """Keeps a :class:`ContainerInventory` in step with dockerd, across dockerd restarts."""

    def __init__(
        self,
        cfg: DockerConfig,
        inventory: ContainerInventory,
        metrics: AgentMetrics,
        *,
        max_backoff: float = 30.0,
    ) -> None:
        self._cfg = cfg
        self._inventory = inventory
        self._errors = metrics.discovery_errors.labels(source=_SOURCE)
        self._deps = metrics.dependencies
        self._max_backoff = max_backoff
        self._loop: asyncio.AbstractEventLoop | None = None
        # Daemon facts refreshed on every connection (a restart may change them).
        self._docker_root: Path | None = None
        self._default_log_driver = "json-file"
        # Events thread: the replay cursor, and recent events to drop when replayed again
        # (``since`` is inclusive and replays overlap; a set, not a time comparison, so a
        # clock stepping back cannot make live events look old).
        self._last_event_ns = 0
        self._recent: dict[tuple[int, str, str], None] = {}
        # Reconcile bookkeeping (loop thread): which containers events touched, and when.
        self._event_seq = 0
        self._touched: dict[str, int] = {}
        self._resync_requested = asyncio.Event()
        self._stopping = threading.Event()
        self._stream_lock = threading.Lock()
        self._stream: Any = None
        self._connected = threading.Event()
        self._synced = False

    @property
    def docker_root(self) -> Path | None:
        """The daemon's ``DockerRootDir``, once it answered."""
        return self._docker_root

    @property
    def connected(self) -> bool:
        """Whether the events stream is currently open."""
        return self._connected.is_set()

    @property
    def synced(self) -> bool:
        """Events are flowing and a full listing was reconciled since they (re)started.

        Only then does the inventory reflect dockerd; a readiness check can use it.
        """
        return self._synced and self.connected

    async def initial_sync(self) -> bool:
        """List and inspect every container once; ``False`` (counted, logged) if dockerd is away.

        Failure is not fatal: :meth:`run` keeps retrying and reconciles once it connects.
        """
        self._loop = asyncio.get_running_loop()
        return await self._resync()

    async def run(self, stop: asyncio.Event) -> None:
        """Follow events and resync every ``cfg.resync_interval`` until ``stop`` is set."""
        self._loop = asyncio.get_running_loop()
        if not self._last_event_ns:
            self._last_event_ns = time.time_ns()
        thread = threading.Thread(target=self._follow_events, name="docker-events", daemon=True)
        thread.start()
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                requested = asyncio.ensure_future(self._resync_requested.wait())
                await asyncio.wait(
                    {stopping, requested},
                    timeout=self._cfg.resync_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                requested.cancel()
                if stop.is_set():
                    break
                self._resync_requested.clear()
                await self._resync()
        finally:
            stopping.cancel()
            self._stopping.set()
            self._close_stream()
            await asyncio.to_thread(thread.join, _API_TIMEOUT)

    # -- listing and reconcile (worker thread, then loop) --------------------------------

    async def _resync(self) -> bool:
        seq = self._event_seq
        started_ns = time.time_ns()
        try:
            listed = await asyncio.to_thread(self._list_all)
        except Exception as exc:
            self._errors.inc()
            self._report_unreachable(exc)
            # A daemon that cannot answer a listing may also have a silently stalled events
            # stream: reconnecting costs one replay.
            self._close_stream()
            return False
        self._deps.up(DOCKER)
        fresher = {cid for cid, at in self._touched.items() if at > seq}
        self._inventory.reconcile(listed, fresher)
        self._synced = not self._resync_requested.is_set()
        self._touched = {cid: at for cid, at in self._touched.items() if at > seq}
        if not self._last_event_ns:
            self._last_event_ns = started_ns
        return True

    def _report_unreachable(self, exc: Exception) -> None:
        reason, fix = docker_problem(self._cfg.host, exc)
        self._deps.down(DOCKER, reason, fix)

    def _client(self) -> Any:
        import docker

        client = docker.APIClient(base_url=self._cfg.host, version="auto", timeout=_API_TIMEOUT)
        try:
            info = client.info()
        except Exception:
            client.close()
            raise
        root = info.get("DockerRootDir")
        self._docker_root = Path(root) if root else None
        self._default_log_driver = str(info.get("LoggingDriver") or "json-file")
        return client

    def _list_all(self) -> list[ContainerInfo]:
        client = self._client()
        try:
            listed: list[ContainerInfo] = []
            for summary in client.containers(all=True):
                info = self._inspect(client, str(summary["Id"]))
                if info is not None:
                    listed.append(info)
            return listed
        finally:
            client.close()

    def _inspect(self, client: Any, container_id: str) -> ContainerInfo | None:
        """Current state, or ``None`` when the container is already gone (404)."""
        import docker.errors

        try:
            data = client.inspect_container(container_id)
        except docker.errors.NotFound:
            return None
        try:
            return container_from_inspect(data, self._cfg.data_root, self._docker_root)
        except (KeyError, TypeError, ValueError) as exc:
            self._errors.inc()
            log.warning("docker: unusable inspect data for %s: %s", container_id, exc)
            return None

    # -- events stream (dedicated thread) -------------------------------------------------

    def _follow_events(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            client: Any = None
            try:
                client = self._client()
                stream = client.events(
                    decode=True,
                    filters=_EVENT_FILTERS,
                    since=_since_param(self._last_event_ns),
                )
                with self._stream_lock:
                    self._stream = stream
                if self._stopping.is_set():
                    break
                self._connected.set()
                self._post(self._on_connected)
                log.info("docker: following events via %s", self._cfg.host)
                backoff = 0.5
                for event in stream:
                    self._handle_event(client, event)
                if not self._stopping.is_set():
                    raise ConnectionError("events stream ended")
            except Exception as exc:
                if self._stopping.is_set():
                    break
                self._errors.inc()
                self._report_unreachable(exc)
                log.debug("docker: events interrupted (%s); retrying in %.1fs", exc, backoff)
            finally:
                self._connected.clear()
                self._close_stream()
                if client is not None:
                    client.close()
            if self._stopping.wait(backoff):
                break
            backoff = min(backoff * 2, self._max_backoff)

    def _handle_event(self, client: Any, event: Mapping[str, Any]) -> None:
        action = container_event_action(event)
        actor = event.get("Actor") or {}
        cid = str(actor.get("ID") or "")
        if action is None or not cid:
            return
        at = int(event.get("timeNano") or int(event.get("time") or 0) * 1_000_000_000)
        key = (at, cid, action)
        if key in self._recent:
            return
        self._recent[key] = None
        if len(self._recent) > _RECENT_EVENTS:
            del self._recent[next(iter(self._recent))]
        self._last_event_ns = max(self._last_event_ns, at)
        if action == "start":
            # Before anything slower: a --rm container may be gone in milliseconds.
            path = agent_log_path(cid, "", self._cfg.data_root, self._docker_root)
            PREOPENED.open(str(path))
        info = None
        if action != "destroy":
            import docker.errors

            try:
                info = self._inspect(client, cid)
            except docker.errors.APIError as exc:
                self._errors.inc()
                log.warning("docker: cannot inspect %s: %s", cid, exc)
        attributes = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
        self._post(self._apply_event, action, cid, at, info, attributes)

    def _post(self, callback: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed since the check
            loop.call_soon_threadsafe(callback, *args)

    def _close_stream(self) -> None:
        with self._stream_lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except Exception as exc:  # a half-dead socket may refuse a clean shutdown
                log.debug("docker: closing events stream: %s", exc)

    # -- applying events (loop thread) ------------------------------------------------------

    def _on_connected(self) -> None:
        self._synced = False
        self._resync_requested.set()

    def _apply_event(
        self,
        action: LifecycleAction,
        cid: str,
        at: int,
        info: ContainerInfo | None,
        attributes: dict[str, str],
    ) -> None:
        self._event_seq += 1
        self._touched[cid] = self._event_seq
        known = self._inventory.get(cid)
        if action == "start":
            if info is None:  # gone before we could inspect it: build it from the event
                info = self._from_event(cid, attributes, known, running=True, at=at)
            self._inventory.container_started(info)
        elif action == "die":
            if info is not None and info.running and info.started_at > at:
                return  # a replayed die from before the current run
            if info is None:
                info = self._from_event(cid, attributes, known, running=False, at=at)
            self._inventory.container_died(replace(info, running=False, pid=0))
        elif action == "destroy":
            last = known or self._from_event(cid, attributes, None, running=False, at=at)
            self._inventory.container_destroyed(cid, last)
        elif action == "rename":
            if info is None:
                info = self._from_event(cid, attributes, known, running=False, at=at)
            self._inventory.container_renamed(info)

    def _from_event(
        self,
        cid: str,
        attributes: dict[str, str],
        known: ContainerInfo | None,
        *,
        running: bool,
        at: int,
    ) -> ContainerInfo:
        """Best knowledge of a container that can no longer be inspected.

        Its log driver is assumed to be the daemon default: ``--log-driver`` overrides are
        not in the event, and a file that is not there is the pipeline's to tolerate.
        """
        name = attributes.get("name", "")
        if known is not None:
            return replace(
                known,
                name=name or known.name,
                running=running,
                pid=known.pid if running else 0,
                finished_at=known.finished_at if running else at,
            )
        driver = self._default_log_driver
        labels = {k: v for k, v in attributes.items() if k not in _EVENT_ONLY_ATTRIBUTES}
        return ContainerInfo(
            id=cid,
            name=name,
            image=attributes.get("image", ""),
            image_id="",
            labels=labels,
            log_path=(
                agent_log_path(cid, "", self._cfg.data_root, self._docker_root)
                if driver == "json-file"
                else None
            ),
            log_driver=driver,
            tty=False,
            pid=0,
            running=running,
            started_at=at if running else 0,
            finished_at=0 if running else at,
            created=0,
            cgroup_parent="",
            restart_count=0,
        )


def docker_problem(host: str, exc: BaseException) -> tuple[str, str]:
    """(reason, fix) for an operator, from whatever the Docker SDK raised."""
    text = f"{type(exc).__name__}: {exc}"
    socket = host.removeprefix("unix://") if host.startswith("unix://") else ""
    no_docker = (
        "or, on a host without Docker, turn it off: logs.docker.enabled: false and "
        "metrics.containers.enabled: false"
    )
    if "PermissionError" in text or "Permission denied" in text:
        return (
            f"permission denied on the Docker socket {socket or host}",
            "run the agent as root or as a member of the docker group, or use "
            "docker.discovery: files (no socket needed)",
        )
    if socket and ("FileNotFoundError" in text or "No such file" in text):
        return (
            f"no Docker socket at {socket}",
            "start Docker, set docker.host, or mount the socket into the agent's container "
            f"(-v /var/run/docker.sock:/var/run/docker.sock:ro); {no_docker}",
        )
    if "ConnectionRefused" in text or "Connection refused" in text:
        return (
            f"Docker refuses connections at {host}",
            f"check that dockerd is running and listening there; {no_docker}",
        )
    return (
        f"cannot talk to Docker at {host}: {text[:300]}",
        f"check dockerd and docker.host; {no_docker}",
    )
