"""What the container collector needs to know about a container, and from whom.

The collector does not discover containers: the log pipeline's inventory does, so logs and
metrics agree on which containers exist. These protocols name the few attributes read, so
the inventory (``agent.logs.discovery.inventory``) is passed in as is and tests can build
containers from ``docker inspect`` without the discovery machinery.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

Timestamp = int | float | datetime | None


class ContainerLike(Protocol):
    """One Docker container; ``pid`` is in the host PID namespace (0 when not running)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def image(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def pid(self) -> int: ...
    @property
    def running(self) -> bool: ...
    @property
    def started_at(self) -> Timestamp: ...
    @property
    def cgroup_parent(self) -> str | None: ...


class ContainerSource(Protocol):
    """The current containers by ID, e.g. ``ContainerInventory``; read once per scrape."""

    @property
    def containers(self) -> Mapping[str, ContainerLike]: ...


def unix_seconds(value: object) -> float | None:
    """A start/creation time as Unix seconds; ``None`` for never/unknown.

    Accepts a ``datetime`` (naive = UTC), or a number in seconds, milliseconds,
    microseconds or nanoseconds (the inventory keeps Docker times as integer ns); the unit
    is told by magnitude, which is unambiguous for any date after 1973.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return (value - datetime(1970, 1, 1)).total_seconds()
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    seconds = float(value)
    while seconds > 1e11:  # ms, us or ns since the epoch
        seconds /= 1000.0
    return seconds
