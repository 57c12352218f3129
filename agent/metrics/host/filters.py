"""node_exporter's device/mount/fstype exclude filters, with the decision remembered.

The names a filter sees (disks, interfaces, mount points, netstat fields) barely change
between scrapes, so each regex runs once per distinct name instead of once per scrape.
"""

from __future__ import annotations

import re

# Docker hosts churn veth names; forget old decisions rather than grow without bound.
_MAX_REMEMBERED = 4096


class NameFilter:
    """``ignored(name)`` is True when ``exclude`` matches (search semantics, like Go's
    ``MatchString``) or when ``include`` is set and does not match. Empty patterns are unset."""

    def __init__(self, exclude: str = "", include: str = "") -> None:
        self._exclude = re.compile(exclude) if exclude else None
        self._include = re.compile(include) if include else None
        self._decisions: dict[str, bool] = {}

    def ignored(self, name: str) -> bool:
        decision = self._decisions.get(name)
        if decision is None:
            decision = (self._exclude is not None and self._exclude.search(name) is not None) or (
                self._include is not None and self._include.search(name) is None
            )
            if len(self._decisions) >= _MAX_REMEMBERED:
                self._decisions.clear()
            self._decisions[name] = decision
        return decision
