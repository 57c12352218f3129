"""Run the real agent as a child process (``python -m agent --config FILE``).

Shared by the end-to-end tests and the benchmarks (which must not import ``tests/`` and
so pytest): a real process, so a caller can SIGTERM it, ``kill -9`` it, restart it on the
same positions file, and scrape its real ``/metrics`` over a real socket.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
