"""What every scenario needs around the agent: the real agent process, Docker, a scraper.

The agent always runs as ``python -m agent --config FILE`` (:class:`AgentProcess` of
``benchmarks/agent_process.py``, shared with the tests), with the production defaults of
``configs/agent.yaml`` except what a benchmark has to change (loopback addresses, a
private positions file, only the benchmark's own containers), so the figures are those of
a deployed agent.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.agent_process import AgentProcess, free_port
from benchmarks.host_scrape import Scraper

BUSYBOX_IMAGE = "nexo-test/busybox:latest"
# Every container a benchmark starts is named so; the agent is told to ship only these, so
# containers of whatever else runs on the host do not change the figures.
CONTAINER_PREFIX = "nexo-bench-"


class MissingDependency(RuntimeError):
    """The host lacks something a scenario needs (dockerd, the image, a binary)."""


def pinned(cmd: list[str], core: int) -> list[str]:
    """``cmd`` run on one CPU core (``taskset``) when the host has it."""
    return ["taskset", "-c", str(core), *cmd] if shutil.which("taskset") else cmd


def docker_client() -> Any:
    """A client of the local dockerd that has the busybox benchmark image."""
    try:
        import docker

        client = docker.from_env(timeout=120)
        client.ping()
        client.images.get(BUSYBOX_IMAGE)
    except Exception as exc:
        raise MissingDependency(
            f"a running dockerd with image {BUSYBOX_IMAGE} (tests/setup/prepare.sh): {exc}"
        ) from exc
    return client


def remove_containers_named(client: Any, prefix: str) -> int:
    """Remove every container whose name starts with ``prefix``, running or not; how many.

    By name rather than by the list a scenario kept: a run interrupted while it was still
    starting its containers never got the handles of those already created.
    """
    listed = client.containers.list(all=True, filters={"name": prefix})
    ours = [c for c in listed if c.name.startswith(prefix)]
    for container in ours:
        container.remove(force=True)
    return len(ours)


def remove_leftover_containers() -> int:
    """Remove ``nexo-bench-*`` containers an interrupted run left behind; how many.

    The agent under test ships every container by that name: one still logging from an
    earlier run would be counted in this run's CPU, memory and lines. Without dockerd
    there is nothing to remove (the scenarios that need it say so themselves).
    """
    try:
        client = docker_client()
    except MissingDependency:
        return 0
    try:
        return remove_containers_named(client, CONTAINER_PREFIX)
    finally:
        client.close()


def agent_config(
    workdir: Path,
    push_url: str,
    *,
    metrics: bool = True,
    **logs: Any,
) -> dict[str, Any]:
    """A production-default config that ships only the benchmark's containers.

    ``metrics`` turns host and container metrics on (the reference host) or off (the
    log pipeline alone); ``logs`` entries override ``logs.*`` sections key by key.
    """
    config: dict[str, Any] = {
        "hostname": "bench",
        "server": {"listen_address": f"127.0.0.1:{free_port()}"},
        "docker": {"include": {"names": [f"{CONTAINER_PREFIX}*"]}},
        "logs": {
            "positions_file": str(workdir / "positions.json"),
            "loki": {"url": push_url},
        },
        "metrics": {"host": {"enabled": metrics}, "containers": {"enabled": metrics}},
    }
    for section, values in logs.items():
        config["logs"].setdefault(section, {}).update(values)
    return config


def start_agent(workdir: Path, config: dict[str, Any], name: str = "agent") -> AgentProcess:
    """Start the agent and return once ``/healthz`` answers (start-up is not measured)."""
    agent = AgentProcess(workdir, config, name=name)
    agent.start()
    try:
        asyncio.run(agent.wait_healthy(timeout=60))
    except BaseException:
        agent.kill()
        raise
    return agent


def agent_pid(agent: AgentProcess) -> int:
    assert agent.proc is not None
    return agent.proc.pid


def stop_agent(agent: AgentProcess) -> None:
    """SIGTERM (drain, save positions); ``kill -9`` if it does not exit in time."""
    try:
        agent.terminate(timeout=30)
    except Exception:
        agent.kill()


def agent_port(agent: AgentProcess) -> int:
    return int(agent.config["server"]["listen_address"].rsplit(":", 1)[1])


class PeriodicScraper:
    """Scrapes the agent's ``/metrics`` every ``interval`` seconds, as Prometheus would.

    Keep-alive with ``Accept-Encoding: gzip`` like Prometheus; records each scrape's
    latency. Runs in a thread of the benchmark process, so its CPU is not the agent's.
    """

    def __init__(self, port: int, interval: float) -> None:
        self.port = port
        self.interval = interval
        self.latencies_ms: list[float] = []
        self.bytes = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scraper", daemon=True)

    def __enter__(self) -> PeriodicScraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        scraper: Scraper | None = None
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                scraper = scraper or Scraper(self.port, gzip=True)
                start = time.perf_counter()
                self.bytes = scraper.scrape()
                self.latencies_ms.append((time.perf_counter() - start) * 1000)
            except (OSError, ValueError, AssertionError):
                self.errors += 1
                if scraper is not None:
                    scraper.close()
                scraper = None
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        if scraper is not None:
            scraper.close()
