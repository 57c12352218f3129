"""End-to-end test helpers around the real agent process.

:class:`AgentProcess` itself lives in ``benchmarks/agent_process.py`` (the benchmarks use
it too and must not import pytest); this adds test configs, waits and exactly-once checks.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.agent_process import AgentProcess, free_port
from tests.loki_backend import LokiBackend

__all__ = ["AgentProcess", "free_port"]


def agent_config(tmp_path: Path, push_url: str, host: str, **overrides: Any) -> dict[str, Any]:
    """A config for tests: loopback server, positions in tmp_path, fast batches."""
    config: dict[str, Any] = {
        "hostname": host,
        "log_level": "info",
        "shutdown_timeout": "10s",
        "server": {"listen_address": f"127.0.0.1:{free_port()}"},
        "docker": {"resync_interval": "10s"},
        "logs": {
            "positions_file": str(tmp_path / "positions.json"),
            "positions_sync_interval": "1s",
            "loki": {
                "url": push_url,
                "batch_wait": "200ms",
                "backoff": {"min_period": "100ms", "max_period": "1s"},
            },
        },
        "metrics": {"host": {"enabled": False}, "containers": {"enabled": False}},
    }
    _merge(config, overrides)
    return config


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


async def wait_until(condition: Callable[[], bool], within: float, what: str = "") -> None:
    """Poll ``condition`` every 50 ms; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what or condition}")
        await asyncio.sleep(0.05)


def saved_position(positions_file: Path, key: str) -> dict[str, Any]:
    """One target's entry in the agent's positions file (``docker:<id>``, ``file:<path>``)."""
    entry: dict[str, Any] = json.loads(positions_file.read_text())["positions"][key]
    return entry


def log_path_of(container: Any) -> Path:
    """A started container's json-file log (``LogPath`` is empty until it has started)."""
    container.reload()
    return Path(container.attrs["LogPath"])


def lines_before(path: Path, offset: int) -> int:
    """Complete lines (json-file records) in the first ``offset`` bytes of ``path``."""
    with path.open("rb") as file:
        return file.read(offset).count(b"\n")


def inode_of(path: Path) -> int | None:
    """The inode at ``path`` now, ``None`` while nothing is there (mid-rotation)."""
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


# -- sequence-numbered lines: "every line arrives exactly once", checked exactly ----------


def numbered_lines(tag: str, count: int, start: int = 0, pad: int = 30) -> list[str]:
    """The lines :func:`numbered_writer` prints, in order (``<tag> seq=<i> xxx...``)."""
    filler = "x" * pad
    return [f"{tag} seq={i} {filler}" for i in range(start, start + count)]


def numbered_writer(
    tag: str,
    count: int,
    *,
    start: int = 0,
    pad: int = 30,
    per_pause: int = 10,
    pause_us: int = 20_000,
    then: str = "",
) -> str:
    """A busybox ``sh`` script printing :func:`numbered_lines` at a steady rate.

    ``per_pause`` lines (shell builtins only), then a ``pause_us`` sleep, so the rate is
    about ``per_pause`` lines per ``pause_us`` plus one fork; ``then`` runs afterwards
    (e.g. ``sleep 3600`` to keep the container alive).
    """
    filler = "x" * pad
    return (
        f"i={start}; while [ $i -lt {start + count} ]; do"
        f' echo "{tag} seq=$i {filler}"; i=$((i+1));'
        f" if [ $((i % {per_pause})) -eq 0 ]; then busybox usleep {pause_us}; fi;"
        f" done; {then or 'true'}"
    )


async def delivery_of(
    loki: LokiBackend, selector: dict[str, str], expected: list[str], within: float = 60.0
) -> Delivery:
    """Wait until every line of ``expected`` arrived (or ``within`` s), then a second longer
    for any duplicate, and compare what arrived with ``expected``.

    Distinct lines, not a count: duplicates (a kill -9 re-sends up to a second of lines)
    would otherwise make up the count while the last lines are still on their way.
    """
    deadline = time.monotonic() + within
    await loki.wait_for(selector, len(expected), within=within)
    want = set(expected)
    while time.monotonic() < deadline:
        if want <= {e.line for e in await loki.fetch(selector)}:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)
    return Delivery.check((e.line for e in await loki.fetch(selector)), expected)


@dataclass(frozen=True)
class Delivery:
    """What arrived compared with what was written; losses and duplicates kept apart."""

    missing: collections.Counter[str]
    duplicated: collections.Counter[str]  # line -> copies beyond the first
    unexpected: collections.Counter[str]

    @staticmethod
    def check(received: Iterable[str], expected: Iterable[str]) -> Delivery:
        got = collections.Counter(received)
        want = collections.Counter(expected)
        return Delivery(
            missing=want - got,
            duplicated=collections.Counter(
                {line: n - want[line] for line, n in got.items() if line in want and n > want[line]}
            ),
            unexpected=collections.Counter({k: v for k, v in got.items() if k not in want}),
        )

    @property
    def lost(self) -> int:
        return sum(self.missing.values())

    @property
    def duplicates(self) -> int:
        return sum(self.duplicated.values())

    @property
    def exactly_once(self) -> bool:
        return not (self.missing or self.duplicated or self.unexpected)

    def __str__(self) -> str:
        def sample(counter: collections.Counter[str]) -> str:
            return ", ".join(repr(line[:60]) for line in sorted(counter)[:5])

        return (
            f"{self.lost} lost [{sample(self.missing)}], "
            f"{self.duplicates} duplicated [{sample(self.duplicated)}], "
            f"{sum(self.unexpected.values())} unexpected [{sample(self.unexpected)}]"
        )
