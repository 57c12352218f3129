"""Container discovery through the Docker Engine API: list, events, periodic resync.

Polling alone misses short-lived containers (Promtail/Alloy list every 60 s), and an
events stream alone silently stops after a dockerd restart (grafana/loki#5259,
vectordotdev/vector#19681). So: list everything (``all=True``: stopped containers can
still hold unread lines), follow ``start``/``die``/``destroy``/``rename`` events, and on
every (re)connection replay the missed events with ``since=<last event time>`` (the daemon
keeps ~1000 in memory) and reconcile with a fresh listing; a slow resync repairs anything
else. The client (:mod:`agent.logs.discovery.docker_client`) makes its few API calls over
the agent's own HTTP client: listings and the events stream are tasks on the event loop,
no thread, no SDK. It is imported on first use: an agent without Docker (``discovery:
files``) never pays for it.

Docker being away is one state (:mod:`agent.dependencies`), logged when it begins and ends,
not once per retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agent.config import DockerConfig
from agent.dependencies import DOCKER
from agent.logs.discovery.inventory import (
    ContainerInfo,
    ContainerInventory,
    agent_log_path,
    container_from_inspect,
)
from agent.metrics.self import AgentMetrics

if TYPE_CHECKING:
    from agent.logs.discovery.docker_client import DockerClient

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


def event_time_ns(event: Mapping[str, Any]) -> int:
    """When the daemon says an event happened, in ns.

    ``timeNano`` when present (Docker >= 1.24); else ``time``, in whole seconds.
    """
    nano = event.get("timeNano")
    if nano:
        return int(nano)
    return int(event.get("time") or 0) * 1_000_000_000


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
        preopen_logs: bool = True,
    ) -> None:
        self._cfg = cfg
        # Open a started container's log at once (short-lived containers): only when this
        # agent ships container logs; container metrics alone never read them.
        self._preopen_logs = preopen_logs
        self._inventory = inventory
        self._errors = metrics.discovery_errors.labels(source=_SOURCE)
        self._deps = metrics.dependencies
        self._max_backoff = max_backoff
        # Daemon facts refreshed on every connection (a restart may change them).
        self._docker_root: Path | None = None
        self._default_log_driver = "json-file"
        # The replay cursor, and recent events to drop when replayed again (``since`` is
        # inclusive and replays overlap; a set, not a time comparison, so a clock stepping
        # back cannot make live events look old).
        self._last_event_ns = 0
        self._recent: dict[tuple[int, str, str], None] = {}
        # Reconcile bookkeeping: which containers events touched, and when.
        self._event_seq = 0
        self._touched: dict[str, int] = {}
        self._resync_requested = asyncio.Event()
        # Set to make the events follower drop its stream and reconnect.
        self._reconnect = asyncio.Event()
        self._connected = False
        self._synced = False

    @property
    def docker_root(self) -> Path | None:
        """The daemon's ``DockerRootDir``, once it answered."""
        return self._docker_root

    @property
    def connected(self) -> bool:
        """Whether the events stream is currently open."""
        return self._connected

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
        return await self._resync()

    async def run(self, stop: asyncio.Event) -> None:
        """Follow events and resync every ``cfg.resync_interval`` until ``stop`` is set."""
        if not self._last_event_ns:
            self._last_event_ns = time.time_ns()
        events = asyncio.ensure_future(self._follow_events(stop))
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
            events.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await events

    # -- listing and reconcile ---------------------------------------------------------------

    async def _resync(self) -> bool:
        seq = self._event_seq
        started_ns = time.time_ns()
        try:
            listed = await self._list_all()
        except Exception as exc:
            self._errors.inc()
            self._report_unreachable(exc)
            # A daemon that cannot answer a listing may also have a silently stalled events
            # stream: reconnecting costs one replay.
            self._reconnect.set()
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

    async def _client(self) -> DockerClient:
        client = connect(self._cfg.host, _API_TIMEOUT)
        try:
            info = await client.info()
        except BaseException:
            await _close(client)
            raise
        root = info.get("DockerRootDir")
        self._docker_root = Path(root) if root else None
        self._default_log_driver = str(info.get("LoggingDriver") or "json-file")
        return client

    async def _list_all(self) -> list[ContainerInfo]:
        client = await self._client()
        try:
            listed: list[ContainerInfo] = []
            for summary in await client.containers():
                info = await self._inspect(client, str(summary.get("Id", "")))
                if info is not None:
                    listed.append(info)
            return listed
        finally:
            await _close(client)

    async def _inspect(self, client: DockerClient, container_id: str) -> ContainerInfo | None:
        """Current state, or ``None`` when the container is already gone (404)."""
        data = await client.inspect(container_id)
        if data is None:
            return None
        try:
            return container_from_inspect(data, self._cfg.data_root, self._docker_root)
        except (KeyError, TypeError, ValueError) as exc:
            self._errors.inc()
            log.warning("docker: unusable inspect data for %s: %s", container_id, exc)
            return None

    # -- events stream -------------------------------------------------------------------------

    async def _follow_events(self, stop: asyncio.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            client: DockerClient | None = None
            self._reconnect.clear()
            try:
                client = await self._client()
                backoff = 0.5
                await self._stream_events(client, stop)
                if stop.is_set():
                    break
                if not self._reconnect.is_set():
                    raise ConnectionError("events stream ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if stop.is_set():
                    break
                self._errors.inc()
                self._report_unreachable(exc)
                log.debug("docker: events interrupted (%s); retrying in %.1fs", exc, backoff)
            finally:
                self._connected = False
                if client is not None:
                    await _close(client)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
                break
            backoff = min(backoff * 2, self._max_backoff)

    async def _stream_events(self, client: DockerClient, stop: asyncio.Event) -> None:
        """Handle events until the stream ends, fails (raised) or a reconnect is asked for."""
        events = client.events(_EVENT_FILTERS, _since_param(self._last_event_ns))
        self._connected = True
        self._on_connected()
        log.info("docker: following events via %s", self._cfg.host)
        interrupt = asyncio.ensure_future(self._reconnect.wait())
        record: asyncio.Future[dict[str, Any]] | None = None
        try:
            while True:
                record = asyncio.ensure_future(anext(events))
                await asyncio.wait({record, interrupt}, return_when=asyncio.FIRST_COMPLETED)
                if not record.done():
                    return
                try:
                    event = record.result()
                except StopAsyncIteration:
                    return
                await self._handle_event(client, event)
        finally:
            interrupt.cancel()
            if record is not None and not record.done():
                record.cancel()  # the generator ends inside, closing its stream
                await asyncio.wait({record})
            await events.aclose()

    async def _handle_event(self, client: DockerClient, event: Mapping[str, Any]) -> None:
        action = container_event_action(event)
        actor = event.get("Actor") or {}
        cid = str(actor.get("ID") or "")
        if action is None or not cid:
            return
        at = event_time_ns(event)
        key = (at, cid, action)
        if key in self._recent:
            return
        self._recent[key] = None
        if len(self._recent) > _RECENT_EVENTS:
            del self._recent[next(iter(self._recent))]
        self._last_event_ns = max(self._last_event_ns, at)
        if action == "start" and self._preopen_logs:
            from agent.logs.tail import PREOPENED

            # Before anything slower: a --rm container may be gone in milliseconds.
            path = agent_log_path(cid, "", self._cfg.data_root, self._docker_root)
            PREOPENED.open(str(path))
        info = None
        if action != "destroy":
            from agent.http.client import HttpError
            from agent.logs.discovery.docker_client import DockerApiError

            try:
                info = await self._inspect(client, cid)
            except (DockerApiError, HttpError, OSError, TimeoutError) as exc:
                self._errors.inc()
                log.warning("docker: cannot inspect %s: %s", cid, exc)
        attributes = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
        self._apply_event(action, cid, at, info, attributes)

    # -- applying events ------------------------------------------------------

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


def connect(host: str, timeout: float) -> DockerClient:
    """A client for ``host`` whose every request is bounded by ``timeout``; the events
    stream is bounded only in connecting."""
    from agent.logs.discovery.docker_client import DockerClient

    return DockerClient(host, timeout)


async def _close(client: DockerClient) -> None:
    """Close a client whatever state its connections are in."""
    try:
        await client.close()
    except Exception as exc:
        log.debug("docker: closing client: %s", exc)


def docker_problem(host: str, exc: BaseException) -> tuple[str, str]:
    """(reason, fix) for an operator, from whatever talking to Docker raised."""
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
    if any(sign in text for sign in ("ConnectionRefused", "Connection refused", "Connect call")):
        return (
            f"Docker refuses connections at {host}",
            f"check that dockerd is running and listening there; {no_docker}",
        )
    return (
        f"cannot talk to Docker at {host}: {text[:300]}",
        f"check dockerd and docker.host; {no_docker}",
    )
