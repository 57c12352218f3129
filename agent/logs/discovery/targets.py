"""From discovered containers and files to log targets: labels, limits, one event stream.

The pipeline consumes a single stream of :class:`TargetEvent` values fed by
:class:`ContainerTargetFeed` (inventory + filters) and by the static-file discovery.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from agent.config import DockerConfig, PipelineConfig
from agent.logs.discovery.inventory import ContainerInfo, ContainerInventory, InventoryEvent
from agent.logs.discovery.selection import (
    DEFAULT_OPT_OUT_LABEL,
    detect_own_container_id,
    skip_reason,
)
from agent.logs.model import MAX_LABELS, LogTarget

log = logging.getLogger("agent.logs.discovery")

TargetEventKind = Literal["added", "updated", "removed"]

# Loki's defaults: max_label_names_per_series 15, max_label_name_length 1024,
# max_label_value_length 2048 (bytes); a push breaking one is refused with 400.
MAX_LABEL_NAME_BYTES = 1024
MAX_LABEL_VALUE_BYTES = 2048
# Labels the pipeline adds per line; room is kept for those named in pipeline.labels.
PER_LINE_LABELS = ("stream", "level")

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"

_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True, slots=True)
class TargetEvent:
    """A log target appeared, changed (labels, name) or is gone (drain it, then forget it)."""

    kind: TargetEventKind
    target: LogTarget


TargetSink = Callable[[TargetEvent], None]


def sanitize_label_name(name: str) -> str:
    """A Loki-valid label name: ``[a-zA-Z_][a-zA-Z0-9_]*``, never ``__``-prefixed.

    Invalid characters become ``_`` (``app.kubernetes.io/name`` -> ``app_kubernetes_io_name``),
    a leading digit gets a ``_`` in front, leading underscores collapse to one (``__``
    names are reserved for Loki/Prometheus internals). Returns ``""`` for an empty name.
    """
    if not name:
        return ""
    clean = _INVALID_LABEL_CHARS.sub("_", name)
    if clean[0].isdigit():
        clean = "_" + clean
    if clean.startswith("__"):
        clean = "_" + clean.lstrip("_")
    return clean[:MAX_LABEL_NAME_BYTES]


def _cap_value(value: str) -> str:
    raw = value.encode("utf-8")
    if len(raw) <= MAX_LABEL_VALUE_BYTES:
        return value
    return raw[:MAX_LABEL_VALUE_BYTES].decode("utf-8", errors="ignore")


def bounded_labels(
    candidates: Iterable[tuple[str, str]], pipeline: PipelineConfig
) -> tuple[tuple[str, str], ...]:
    """Sanitise, de-duplicate (first wins) and cap candidates given in priority order.

    Empty values are dropped (Loki drops them too, and they would waste a slot); the total
    never exceeds 15 minus the per-line labels (``stream``, ``level``) the pipeline adds.
    """
    reserved = sum(1 for name in PER_LINE_LABELS if name in pipeline.labels)
    limit = MAX_LABELS - reserved
    out: dict[str, str] = {}
    for raw_name, value in candidates:
        if len(out) >= limit:
            break
        name = sanitize_label_name(raw_name)
        if not name or not value or name in out or name in PER_LINE_LABELS:
            continue
        out[name] = _cap_value(value)
    return tuple(sorted(out.items()))


def log_target_for(
    container: ContainerInfo, pipeline: PipelineConfig, hostname: str
) -> LogTarget | None:
    """The target for a container's json-file log, or ``None`` when it has no log file.

    Built-in labels (host, container, compose_project, compose_service, service_name) are
    sent only when named in ``pipeline.labels`` and in that order of priority, then
    ``pipeline.static_labels``, then container labels promoted by ``pipeline.docker_labels``
    (or named, raw or sanitised, in ``pipeline.labels``). The container ID is structured
    metadata, never a label (unbounded).
    """
    if container.log_path is None:
        return None
    labels = container.labels
    service = (
        labels.get(COMPOSE_SERVICE) or labels.get("service") or labels.get("app") or container.name
    )
    builtin = {
        "host": hostname,
        "container": container.name,
        "compose_project": labels.get(COMPOSE_PROJECT, ""),
        "compose_service": labels.get(COMPOSE_SERVICE, ""),
        "service_name": service,
    }
    wanted = set(pipeline.labels) | set(pipeline.docker_labels)
    candidates: list[tuple[str, str]] = []
    for name in pipeline.labels:
        if name in builtin:
            candidates.append((name, builtin[name]))
        elif name in labels:
            candidates.append((name, labels[name]))
    candidates.extend(pipeline.static_labels.items())
    candidates.extend((k, labels[k]) for k in pipeline.docker_labels if k in labels)
    candidates.extend((k, v) for k, v in labels.items() if sanitize_label_name(k) in wanted)
    metadata = (
        (("container_id", container.id),) if "container_id" in pipeline.structured_metadata else ()
    )
    return LogTarget(
        key=f"docker:{container.id}",
        kind="docker",
        path=container.log_path,
        name=container.name,
        labels=bounded_labels(candidates, pipeline),
        metadata=metadata,
        container_id=container.id,
        image=container.image,
        docker_labels=tuple(sorted(labels.items())),
        docker_path=container.docker_log_path,
        max_size=container.log_max_size,
        started=bool(container.started_at or container.running),
    )


class ContainerTargetFeed:
    """Turns inventory events into target events for the containers whose logs ship.

    A container that dies keeps its target (its file may still hold unread lines and it
    may restart); a target is removed when the container is destroyed or stops passing
    the filters (e.g. renamed into an excluded name).
    """

    def __init__(
        self,
        inventory: ContainerInventory,
        docker: DockerConfig,
        pipeline: PipelineConfig,
        hostname: str,
        emit: TargetSink,
        own_container_id: str | None = None,
        opt_out_label: str = DEFAULT_OPT_OUT_LABEL,
    ) -> None:
        self._inventory = inventory
        self._docker = docker
        self._pipeline = pipeline
        self._hostname = hostname
        self._emit = emit
        self._own_id = own_container_id or detect_own_container_id()
        self._opt_out_label = opt_out_label
        self._targets: dict[str, LogTarget] = {}

    @property
    def own_container_id(self) -> str | None:
        return self._own_id

    def target_for(self, container: ContainerInfo) -> LogTarget | None:
        reason = skip_reason(container, self._docker, self._own_id, self._opt_out_label)
        if reason is not None:
            log.debug("not shipping logs of %s (%s): %s", container.name, container.id, reason)
            return None
        return log_target_for(container, self._pipeline, self._hostname)

    def apply(self, event: InventoryEvent) -> None:
        cid = event.container.id
        old = self._targets.get(cid)
        if event.kind == "removed":
            if old is not None:
                del self._targets[cid]
                self._emit(TargetEvent("removed", old))
            return
        new = self.target_for(event.container)
        if new is None:
            if old is not None:
                del self._targets[cid]
                self._emit(TargetEvent("removed", old))
        elif old is None:
            self._targets[cid] = new
            self._emit(TargetEvent("added", new))
        elif new != old:
            self._targets[cid] = new
            self._emit(TargetEvent("updated", new))

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the inventory until ``stop`` is set (starts with every live container)."""
        queue = self._inventory.subscribe()
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while True:
                getting = asyncio.ensure_future(queue.get())
                await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    return
                self.apply(getting.result())
        finally:
            stopping.cancel()
            self._inventory.unsubscribe(queue)
