"""Every metric the dashboards and alert rules name is one a real agent serves (or one of
Prometheus's own, or one Loki's ruler records), and every query runs without error in a
real Prometheus scraping that agent with the deployment's rules loaded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.agent_process import AgentProcess, agent_config
from tests.deploy.expressions import (
    PROMETHEUS_RULES,
    loki_rules,
    metric_names,
    promql_queries,
)
from tests.deploy.prometheus_server import PrometheusServer
from tests.loki_backend import LokiBackend, unique_host

pytestmark = pytest.mark.docker

# Series Prometheus makes itself rather than scraping them.
PROMETHEUS_SYNTHETIC = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "ALERTS",
    "ALERTS_FOR_STATE",
}
# Families this test's agent cannot serve although real hosts have them, and why.
SERVED_ELSEWHERE = {
    "container_network_receive_bytes_total": "test containers run with --network none: only "
    "lo, which cAdvisor (and the agent) leave out",
    "container_network_transmit_bytes_total": "as container_network_receive_bytes_total",
}
# Dashboard panels that show nothing on a healthy test host, by the metric that is empty.
EMPTY_HERE = {
    "nexo_agent_read_errors_total": "no log file fails to read",
    "nexo:service_response_time_seconds:p95": "recorded by Loki's ruler, not running here",
    "nexo:auth_failures:count5m": "recorded by Loki's ruler, not running here",
    "ALERTS": "no service, container or log alert fires",
    **SERVED_ELSEWHERE,
}
# The container does its own block I/O, read and write, with O_DIRECT: cgroup v1 charges
# buffered writeback to the flusher, not to the container, so without it the Block IO
# families exist only on a machine where some container happened to do direct I/O before.
# Where the kernel still charges none to it (seen once on a freshly booted VM), cAdvisor
# and the agent rightly serve no such series: the test then checks that the agent serves
# none, and does not ask the dashboard for them.
BLOCK_IO_FAMILIES = {"container_fs_reads_bytes_total", "container_fs_writes_bytes_total"}


def kernel_charged_block_io(container_id: str) -> bool:
    """Whether the container's cgroup shows block I/O on some device (v1 or v2)."""
    root = Path("/sys/fs/cgroup")
    for pattern in (
        f"blkio/**/*{container_id}*/blkio.throttle.io_service_bytes_recursive",
        f"**/*{container_id}*/io.stat",
    ):
        for path in root.glob(pattern):
            lines = path.read_text().splitlines()
            if any(line.split()[0].count(":") == 1 for line in lines if line.split()):
                return True
    return False


LOG_SCRIPT = (
    "dd if=/dev/zero of=/tmp/io bs=64k count=16 oflag=direct 2>/dev/null; "
    "dd if=/tmp/io of=/dev/null bs=64k iflag=direct 2>/dev/null; "
    # then a sample of the log lines NEXO's services write: levels, ids, a request time
    'echo "{\\"level\\":\\"fatal\\",\\"msg\\":\\"config missing, using defaults\\"}"; '
    "i=0; while true; do i=$((i+1)); "
    'echo "{\\"level\\":\\"error\\",\\"msg\\":\\"payment failed $i\\",\\"accountId\\":\\"acc-1\\",'
    '\\"requestId\\":\\"req-$i\\",\\"responseTime\\":120}"; '
    'echo "{\\"level\\":\\"info\\",\\"msg\\":\\"request completed\\",\\"responseTime\\":15}"; '
    "sleep 0.5; done"
)


def served_families(exposition: str) -> set[str]:
    """Metric names a scrape can yield: every family announced by ``# TYPE`` (a labelled
    counter that has not counted yet still announces itself), with histogram suffixes."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if not line.startswith("# TYPE "):
            continue
        _, _, name, kind = line.split(" ", 3)
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif kind == "summary":
            names |= {f"{name}_sum", f"{name}_count"}
    return names


@dataclass(frozen=True)
class LiveAgent:
    process: AgentProcess
    block_io: bool  # the kernel charged block I/O to the followed container


@pytest.fixture
async def live_agent(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> AsyncIterator[LiveAgent]:
    """An agent with host and container metrics, following one busy, resource-limited
    container (so the CPU quota, memory limit and block IO families exist)."""
    name = f"nexo-deploy-{uuid.uuid4().hex[:10]}"
    container = run_container(LOG_SCRIPT, name=name, mem_limit="64m", nano_cpus=500_000_000)
    host = unique_host("deploy")
    config = agent_config(
        tmp_path,
        loki.push_url,
        host,
        docker={"include": {"names": [name]}},
        metrics={"host": {"enabled": True}, "containers": {"enabled": True}},
    )
    agent = AgentProcess(tmp_path, config)
    agent.start()
    try:
        await agent.wait_healthy()
        shipped = await loki.wait_for({"host": host, "container": name}, 4, within=20)
        assert len(shipped) >= 4, agent.stderr()
        yield LiveAgent(agent, kernel_charged_block_io(container.id))
    finally:
        agent.close()


async def test_dashboard_and_rule_queries_name_served_metrics_and_run_in_prometheus(
    live_agent: LiveAgent, tmp_path: Path
) -> None:
    listen = live_agent.process.config["server"]["listen_address"]
    prometheus = PrometheusServer(tmp_path, {"nexo-agent": [listen]}, PROMETHEUS_RULES)
    prometheus.start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await prometheus.wait_for_scrapes(session, "nexo-agent", 3)
            async with session.get(live_agent.process.base_url + "/metrics") as resp:
                agent_names = served_families(await resp.text())
            async with session.get(prometheus.url + "/metrics") as resp:
                prometheus_names = served_families(await resp.text()) | PROMETHEUS_SYNTHETIC
            recorded_by_loki = {rule["record"] for rule in loki_rules() if "record" in rule}

            known = agent_names | prometheus_names | recorded_by_loki | set(SERVED_ELSEWHERE)
            if not live_agent.block_io:
                assert not agent_names & BLOCK_IO_FAMILIES, "series the cgroup does not have"
                known |= BLOCK_IO_FAMILIES
            unknown = {
                (query.where, name)
                for query in promql_queries()
                for name in metric_names(query.expr)
                if name not in known
            }
            assert not unknown, "metrics no agent or Prometheus serves:\n" + "\n".join(
                f"  {name}  ({where})" for where, name in sorted(unknown)
            )

            # Every query runs; a dashboard panel also shows data (label names are right).
            failures = []
            for query in promql_queries():
                doc = await prometheus.query(session, query.expr)
                if doc.get("status") != "success":
                    failures.append(f"{query.where}: {doc.get('error')}")
                elif (
                    not query.where.startswith("rule ")
                    and not doc["data"]["result"]
                    and not metric_names(query.expr) & set(EMPTY_HERE)
                    and (live_agent.block_io or not metric_names(query.expr) & BLOCK_IO_FAMILIES)
                ):
                    failures.append(f"{query.where}: no data for {query.expr}")
            assert not failures, "\n".join(failures)

            async with session.get(prometheus.url + "/api/v1/rules") as resp:
                groups = (await resp.json())["data"]["groups"]
            unhealthy = [
                f"{rule['name']}: {rule.get('lastError')}"
                for group in groups
                for rule in group["rules"]
                if rule["health"] != "ok"
            ]
            assert groups and not unhealthy, unhealthy
    finally:
        prometheus.stop()
