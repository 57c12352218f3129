"""Plain log files named by globs (``/var/log/*.log``, ``/srv/**/app.log``), re-globbed.

A file appears as a target when it first matches and is gone when it no longer exists;
rotated siblings (``app.log.1``) only match if the glob says so, which is the caller's
way to avoid reading a rotated file twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
from fnmatch import fnmatchcase
from pathlib import Path

from agent.config import PipelineConfig, StaticFileTarget
from agent.logs.discovery.targets import TargetEvent, TargetSink, bounded_labels
from agent.logs.model import LogTarget
from agent.metrics.self import AgentMetrics

log = logging.getLogger("agent.logs.discovery")

_SOURCE = "static_files"


class StaticFileDiscovery:
    """Emits ``file:<absolute path>`` targets for the configured globs.

    Labels: ``host`` (when in ``pipeline.labels``), ``filename`` (as Promtail sets it),
    the target's own labels, then ``pipeline.static_labels``, within Loki's limits. A path
    matched by several targets belongs to the first.
    """

    def __init__(
        self,
        files: list[StaticFileTarget],
        hostname: str,
        emit: TargetSink,
        *,
        pipeline: PipelineConfig | None = None,
        metrics: AgentMetrics | None = None,
        interval: float = 10.0,
    ) -> None:
        self._files = files
        self._hostname = hostname
        self._emit = emit
        self._pipeline = pipeline or PipelineConfig()
        self._errors = metrics.discovery_errors.labels(source=_SOURCE) if metrics else None
        self._interval = interval
        self._targets: dict[str, LogTarget] = {}

    @property
    def targets(self) -> dict[str, LogTarget]:
        """Current targets by key (a copy)."""
        return dict(self._targets)

    def match(self) -> dict[Path, StaticFileTarget]:
        """Regular files currently matched (blocking: globbing may walk big trees)."""
        found: dict[Path, StaticFileTarget] = {}
        for target in self._files:
            for pattern in target.paths:
                try:
                    paths = glob.glob(pattern, recursive=True)
                except OSError as exc:
                    self._count_error()
                    log.warning("files: cannot glob %s: %s", pattern, exc)
                    continue
                for raw in paths:
                    path = Path(os.path.abspath(raw))
                    if path in found or any(fnmatchcase(str(path), x) for x in target.exclude):
                        continue
                    if path.is_file():
                        found[path] = target
        return found

    def apply(self, found: dict[Path, StaticFileTarget]) -> None:
        """Emit the difference between ``found`` and the targets already announced."""
        current: dict[str, LogTarget] = {}
        for path, spec in found.items():
            target = self._target(path, spec)
            current[target.key] = target
            old = self._targets.get(target.key)
            if old is None:
                self._emit(TargetEvent("added", target))
            elif old != target:
                self._emit(TargetEvent("updated", target))
        for key, old in self._targets.items():
            if key not in current:
                self._emit(TargetEvent("removed", old))
        self._targets = current

    def scan(self) -> None:
        """One synchronous glob + diff."""
        self.apply(self.match())

    async def run(self, stop: asyncio.Event) -> None:
        """Re-glob every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.apply(await asyncio.to_thread(self.match))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)

    def _target(self, path: Path, spec: StaticFileTarget) -> LogTarget:
        candidates: list[tuple[str, str]] = []
        if "host" in self._pipeline.labels:
            candidates.append(("host", self._hostname))
        candidates.append(("filename", str(path)))
        candidates.extend(spec.labels.items())
        candidates.extend(self._pipeline.static_labels.items())
        return LogTarget(
            key=f"file:{path}",
            kind="file",
            path=path,
            name=str(path),
            labels=bounded_labels(candidates, self._pipeline),
            file_group=next(i for i, s in enumerate(self._files) if s is spec),
        )

    def _count_error(self) -> None:
        if self._errors is not None:
            self._errors.inc()
