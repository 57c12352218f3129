"""A real Prometheus (Debian's binary) on 127.0.0.1 for the deployment tests."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.agent_process import free_port
from tests.conftest import require_binary


class PrometheusServer:
    """Scrapes itself, ``targets`` (job name -> addresses) and any full ``scrape_configs``
    (TLS, basic auth...) every second, evaluates
    ``rule_files`` every second, and sends alerts to an address where nothing listens (so
    the notification families exist)."""

    def __init__(
        self,
        tmp_path: Path,
        targets: dict[str, list[str]] | None = None,
        rule_files: Sequence[Path] = (),
        extra_args: Sequence[str] = (),
        scrape_configs: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.url = f"http://{self.address}"
        jobs = {"prometheus": [self.address], **(targets or {})}
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in rule_files],
            "alerting": {
                "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{free_port()}"]}]}]
            },
            "scrape_configs": [
                *(
                    {"job_name": job, "static_configs": [{"targets": addresses}]}
                    for job, addresses in jobs.items()
                ),
                *scrape_configs,
            ],
        }
        self.config_path = tmp_path / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.data = tmp_path / "prometheus-data"
        self.log_path = tmp_path / "prometheus.log"
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = require_binary("prometheus")
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.data}",
                    f"--web.listen-address={self.address}",
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def wait_for_scrapes_blocking(self, job: str, count: int) -> None:
        """:meth:`wait_for_scrapes` for synchronous fixtures."""
        deadline = time.monotonic() + 30
        url = (
            self.url
            + "/api/v1/query?"
            + urllib.parse.urlencode({"query": f'sum_over_time(up{{job="{job}"}}[1m])'})
        )
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log_path.read_text()
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    result = json.load(resp)["data"]["result"]
                if result and float(result[0]["value"][1]) >= count:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"prometheus scraped {job} fewer than {count} times")

    async def query(self, session: aiohttp.ClientSession, expr: str) -> dict[str, Any]:
        async with session.post(self.url + "/api/v1/query", data={"query": expr}) as resp:
            doc: dict[str, Any] = await resp.json()
            return doc

    async def wait_for_scrapes(self, session: aiohttp.ClientSession, job: str, count: int) -> None:
        """Until ``count`` successful scrapes of ``job`` are stored (rate() needs two)."""
        deadline = time.monotonic() + 30
        expr = f'sum_over_time(up{{job="{job}"}}[1m])'
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log_path.read_text()
            try:
                doc = await self.query(session, expr)
                result = doc.get("data", {}).get("result", [])
                if result and float(result[0]["value"][1]) >= count:
                    return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.25)
        raise AssertionError(f"prometheus scraped {job} fewer than {count} times")
