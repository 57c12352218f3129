"""A real Prometheus scrapes node_exporter and the agent; dashboards and alerts get data from both.

Debian's prometheus scrapes both targets on loopback every second. Then the PromQL of
the awesome-prometheus-alerts host rules and of the main Node Exporter Full panels
(``promql.yml``) is evaluated once per job through the HTTP API: every expression that
returns data for node_exporter must return data for the agent.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.agent_process import free_port
from tests.conftest import require_binary
from tests.metrics.host.conftest import Exporter

# The expressions, with their sources, in promql.yml; JOB is the scrape job.
PROMQL = yaml.safe_load((Path(__file__).parent / "promql.yml").read_text())

CONFIG = """global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: node
    static_configs: [{{targets: ["{node}"]}}]
  - job_name: agent
    static_configs: [{{targets: ["{agent}"]}}]
"""


@pytest.fixture
def prometheus_binary() -> str:
    return require_binary("prometheus")


def start_prometheus(
    binary: str, directory: Path, node: str, agent: str, port: int
) -> subprocess.Popen[bytes]:
    config = directory / "prometheus.yml"
    config.write_text(CONFIG.format(node=node, agent=agent))
    return subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def query(
    session: aiohttp.ClientSession, api: str, expression: str
) -> list[dict[str, object]]:
    async with session.get(f"{api}/api/v1/query", params={"query": expression}) as response:
        body = await response.json()
    assert body["status"] == "success", (expression, body)
    result = body["data"]["result"]
    return result if isinstance(result, list) else [result]


async def test_alert_rules_and_dashboard_panels_get_data_from_the_agent(
    prometheus_binary: str, tmp_path: Path, node_exporter: Exporter, agent: Exporter
) -> None:
    port = free_port()
    process = start_prometheus(
        prometheus_binary,
        tmp_path,
        node_exporter.url.split("/")[2],
        agent.url.split("/")[2],
        port,
    )
    api = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            # Both targets up with a few samples each (rate() needs two, the 15s
            # windows of the panels a few more).
            deadline = time.monotonic() + 40
            while True:
                try:
                    ready = await query(session, api, "count_over_time(up[1m]) >= 5 and up == 1")
                except aiohttp.ClientError:
                    ready = []
                jobs = {sample["metric"]["job"] for sample in ready}  # type: ignore[index]
                if jobs == {"node", "agent"}:
                    break
                assert process.poll() is None, "prometheus exited"
                assert time.monotonic() < deadline, f"targets not scraped in time: {jobs}"
                await asyncio.sleep(0.5)

            missing: list[str] = []
            checked = 0
            for title, template in {**PROMQL["alerts"], **PROMQL["panels"]}.items():
                node = await query(session, api, template.replace("JOB", "node"))
                if not node:
                    continue  # no data for node_exporter either (no hwmon, RAID, bonding...)
                checked += 1
                if not await query(session, api, template.replace("JOB", "agent")):
                    missing.append(f"{title}: {template}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    assert not missing, "no data for the agent:\n" + "\n".join(missing)
    assert checked >= 60  # the expressions really had data to compare (72 on a plain VM)
