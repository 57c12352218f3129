"""Run the real agent as a child process (``python -m agent --config FILE``) for end-to-end tests.

A real process, so tests can SIGTERM it, ``kill -9`` it, restart it on the same positions
file, and scrape its real ``/metrics`` over a real socket.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.loki_backend import LokiBackend


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


class AgentProcess:
    """One agent child process with its own config file and stderr log."""

    def __init__(self, tmp_path: Path, config: dict[str, Any], name: str = "agent") -> None:
        self.tmp_path = tmp_path
        self.config = config
        self.config_path = tmp_path / f"{name}.yaml"
        self.log_path = tmp_path / f"{name}.stderr.log"
        self.config_path.write_text(yaml.safe_dump(config))
        listen = config["server"]["listen_address"]
        self.base_url = f"http://{listen}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra_args: str) -> None:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        with self.log_path.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "--config", str(self.config_path), *extra_args],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )

    async def wait_healthy(self, timeout: float = 20.0) -> None:
        """Until ``/healthz`` answers 200: the metrics server is up."""
        await self._wait_for_200("/healthz", timeout)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until ``/ready`` answers 200: Docker discovery has listed every container."""
        await self._wait_for_200("/ready", timeout)

    async def _wait_for_200(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"agent exited early:\n{self.stderr()}")
                try:
                    async with session.get(self.base_url + path) as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"agent: {path} not 200 after {timeout}s:\n{self.stderr()}")

    async def metrics(self) -> dict[str, float]:
        """Every sample as ``name{a="b"}`` -> value (labels sorted)."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.base_url + "/metrics") as resp,
        ):
            text = await resp.text()
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples

    async def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        total = 0.0
        for key, value in (await self.metrics()).items():
            sample_name, _, rest = key.partition("{")
            if sample_name != name:
                continue
            if all(f'{k}="{v}"' in rest for k, v in labels.items()):
                total += value
        return total

    async def wait_for_metric(
        self, name: str, at_least: float, within: float = 20.0, **labels: str
    ) -> float:
        """Poll :meth:`metric` until it reaches ``at_least`` or time runs out; the last value."""
        deadline = time.monotonic() + within
        while True:
            value = await self.metric(name, **labels)
            if value >= at_least or time.monotonic() > deadline:
                return value
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        """``kill -9``: no drain, no positions save."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def close(self) -> None:
        self.kill()


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
    """Wait for as many entries as ``expected`` (or ``within`` s), then a second longer for
    any duplicate, and compare what arrived with ``expected``."""
    await loki.wait_for(selector, len(expected), within=within)
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
