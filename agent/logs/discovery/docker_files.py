"""Socket-free container discovery: poll ``<data_root>/containers/*/config.v2.json``.

For hardened hosts that will not hand the agent the Docker socket (root-equivalent). dockerd
persists each container's state there (config.v2.json; log driver in hostconfig.json) on
every state change, in the same shape as inspect output, so the inventory sees the same
values as in API mode. Polling can miss a container that lives shorter than
``poll_interval``; the API mode cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from agent.config import DockerConfig
from agent.dependencies import DOCKER
from agent.logs.discovery.inventory import (
    ContainerInfo,
    ContainerInventory,
    container_from_inspect,
)
from agent.metrics.self import AgentMetrics

log = logging.getLogger("agent.logs.discovery")

_CONTAINER_DIR_RE = re.compile(r"^[0-9a-f]{64}$")
_SOURCE = "docker_files"

# (inode, size, mtime_ns) of config.v2.json and hostconfig.json: re-parse only on change.
_FileStamp = tuple[int, int, int]


def _stamp(path: Path) -> _FileStamp | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class DockerFilesDiscovery:
    """Keeps a :class:`ContainerInventory` in step with the container directories on disk."""

    def __init__(
        self, cfg: DockerConfig, inventory: ContainerInventory, metrics: AgentMetrics
    ) -> None:
        self._cfg = cfg
        self._inventory = inventory
        self._errors = metrics.discovery_errors.labels(source=_SOURCE)
        self._deps = metrics.dependencies
        self._cache: dict[str, tuple[_FileStamp, _FileStamp | None, ContainerInfo]] = {}
        self._reported_bad: set[str] = set()

    async def initial_sync(self) -> bool:
        """One poll; ``False`` when the containers directory cannot be listed."""
        ok = await asyncio.to_thread(self._read_all_into_cache)
        self._reconcile()
        return ok

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every ``cfg.poll_interval`` until ``stop`` is set."""
        while not stop.is_set():
            await asyncio.to_thread(self._read_all_into_cache)
            self._reconcile()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._cfg.poll_interval)

    def poll(self) -> bool:
        """Read what changed on disk and reconcile, blocking; call on the loop thread only."""
        ok = self._read_all_into_cache()
        self._reconcile()
        return ok

    def _reconcile(self) -> None:
        self._inventory.reconcile([entry[2] for entry in self._cache.values()])

    def _read_all_into_cache(self) -> bool:
        root = self._cfg.files_root / "containers"
        try:
            names = os.listdir(root)
        except OSError as exc:
            self._errors.inc()
            self._deps.down(
                DOCKER,
                f"cannot list {root}: {exc.strerror or exc}",
                "set docker.data_root to where Docker's data root is (mounted) as the agent "
                "sees it; the agent needs read and search access to <data_root>/containers",
            )
            return False
        self._deps.up(DOCKER)
        present = {n for n in names if _CONTAINER_DIR_RE.match(n)}
        for cid in list(self._cache):
            if cid not in present:
                del self._cache[cid]
        self._reported_bad &= present
        for cid in present:
            self._refresh(root / cid, cid)
        return True

    def _refresh(self, directory: Path, cid: str) -> None:
        config_path = directory / "config.v2.json"
        host_path = directory / "hostconfig.json"
        config_stamp = _stamp(config_path)
        host_stamp = _stamp(host_path)
        if config_stamp is None:
            # Being created (not written yet) or being removed: look again next poll; a
            # vanished container's directory is gone by then and it is removed.
            return
        cached = self._cache.get(cid)
        if cached is not None and cached[0] == config_stamp and cached[1] == host_stamp:
            return
        try:
            data: dict[str, Any] = json.loads(config_path.read_bytes())
            host: dict[str, Any] = json.loads(host_path.read_bytes()) if host_stamp else {}
            if not isinstance(data, dict) or not isinstance(host, dict):
                raise ValueError("not a JSON object")
            merged = {**data, "HostConfig": host or data.get("HostConfig") or {}}
            info = container_from_inspect(merged, self._cfg.files_root)
            if info.id != cid:
                raise ValueError(f"ID {info.id!r} does not match its directory")
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Half-written or corrupt: keep what we knew, retry next poll, say so once.
            self._errors.inc()
            if cid not in self._reported_bad:
                self._reported_bad.add(cid)
                log.warning("docker files: cannot read %s: %s", config_path, exc)
            return
        self._reported_bad.discard(cid)
        self._cache[cid] = (config_stamp, host_stamp, info)
