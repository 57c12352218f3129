"""A real node_exporter and the agent's real /metrics on 127.0.0.1, side by side."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from agent.config import HostMetricsConfig
from agent.metrics.host import AgentProcessCollector, build_host_collector
from agent.metrics.server import MetricsServer
from benchmarks.host_scrape import node_exporter_args
from tests.agent_process import free_port
from tests.conftest import require_binary

TEXTFILE = """# HELP nexo_conformance_info A textfile metric both exporters must serve.
# TYPE nexo_conformance_info gauge
nexo_conformance_info{source="textfile"} 1
"""


@dataclass(frozen=True)
class Exporter:
    url: str
    textfile_dir: Path


@pytest.fixture(scope="session")
def textfile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("textfile")
    (directory / "conformance.prom").write_text(TEXTFILE)
    return directory


@pytest.fixture(scope="session")
def node_exporter(textfile_dir: Path) -> Iterator[Exporter]:
    binary = require_binary("prometheus-node-exporter")
    port = free_port()
    process = subprocess.Popen(
        [binary, *node_exporter_args(HostMetricsConfig(), port, str(textfile_dir))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    response.read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    stderr = process.stderr.read().decode() if process.stderr else ""
                    pytest.fail(f"node_exporter did not start: {stderr[-2000:]}")
                time.sleep(0.05)
        yield Exporter(url, textfile_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
async def agent(textfile_dir: Path) -> AsyncIterator[Exporter]:
    """The agent's MetricsServer with the default host config, in this process."""
    registry = CollectorRegistry()
    registry.register(build_host_collector(HostMetricsConfig(textfile_directory=textfile_dir)))
    registry.register(AgentProcessCollector())
    server = MetricsServer(registry, "127.0.0.1:0")
    await server.start()
    try:
        yield Exporter(f"http://127.0.0.1:{server.port}/metrics", textfile_dir)
    finally:
        await server.stop()
