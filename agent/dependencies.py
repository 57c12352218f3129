"""One clear state per outside dependency: Docker, Loki, the log files, the positions file.

A component that retries forever must not log once per retry (a bare host without Docker
would print a warning every 30 s, for ever) nor stay silent. Each dependency is either up
or down with one reason and one fix: a problem is logged once when it begins (and again
only if its reason changes), its end once with how long it lasted, and
``nexo_agent_dependency_up{dependency}`` always says where things stand. ``/ready`` and
``nexo-agent doctor`` read the same states.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge

log = logging.getLogger("agent.dependencies")

DOCKER = "docker"
LOKI = "loki"
LOG_FILES = "log_files"
POSITIONS = "positions_file"
DEPENDENCIES = (DOCKER, LOKI, LOG_FILES, POSITIONS)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a dependency is down and what the operator can do about it."""

    reason: str
    fix: str
    since: float  # time.monotonic() when the problem began


class DependencyStates:
    """Up/down per dependency; logs transitions only. Thread-safe (the Docker events thread
    reports here too)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._lock = threading.Lock()
        self._problems: dict[str, Problem] = {}
        self._gauge: Gauge | None = None
        if registry is not None:
            self._gauge = Gauge(
                "nexo_agent_dependency_up",
                "Whether an outside dependency works as the agent needs it (1) or not (0); "
                "the agent's log says why, once, when it changes.",
                ["dependency"],
                registry=registry,
            )
            for name in DEPENDENCIES:
                self._gauge.labels(name).set(1)

    def down(self, dependency: str, reason: str, fix: str = "") -> None:
        """``dependency`` fails for ``reason``; logged when this reason is new."""
        with self._lock:
            old = self._problems.get(dependency)
            if old is not None and old.reason == reason:
                return
            since = old.since if old is not None else time.monotonic()
            self._problems[dependency] = Problem(reason, fix, since)
        if self._gauge is not None:
            self._gauge.labels(dependency).set(0)
        extra = {"dependency": dependency, "reason": reason}
        if fix:
            extra["fix"] = fix
        log.warning(f"{dependency} unavailable: {reason}", extra=extra)

    def declare(self, dependency: str) -> None:
        """Show an optional dependency (the journal) at 1 from the start, like the others."""
        if self._gauge is not None and self.problem(dependency) is None:
            self._gauge.labels(dependency).set(1)

    def up(self, dependency: str) -> None:
        """``dependency`` works (again); the end of a problem is logged with its duration."""
        with self._lock:
            old = self._problems.pop(dependency, None)
        if old is None:
            return
        if self._gauge is not None:
            self._gauge.labels(dependency).set(1)
        lasted = time.monotonic() - old.since
        log.info(
            f"{dependency} available again after {lasted:.1f}s",
            extra={"dependency": dependency, "was": old.reason, "lasted_s": round(lasted, 3)},
        )

    def problem(self, dependency: str) -> Problem | None:
        with self._lock:
            return self._problems.get(dependency)

    def problems(self) -> dict[str, Problem]:
        """Every dependency that is down now."""
        with self._lock:
            return dict(self._problems)
