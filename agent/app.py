"""Lifecycle: wire the components, own the event loop, start, run, drain and stop.

Start order: metrics server first (so ``/healthz`` answers while discovery warms up), then
the log pipeline. Stop order on SIGTERM/SIGINT: stop reading, send what was read within
``shutdown_timeout``, save positions, close the server. Whatever could not be sent in time
is not committed and is read again from disk at the next start.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
import signal
import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from agent import __version__
from agent.config import DEFAULT_DOCKER_ROOT, AgentConfig
from agent.jsonlog import setup_logging
from agent.logs import speedups
from agent.logs.discovery import (
    ContainerInventory,
    DockerApiDiscovery,
    DockerFilesDiscovery,
    SelectedContainers,
)
from agent.metrics.containers import ContainerCollector, build_container_collector
from agent.metrics.host import AgentProcessCollector, build_host_collector
from agent.metrics.self import AgentMetrics
from agent.metrics.server import MetricsServer
from agent.metrics.webconfig import WebConfigError

if TYPE_CHECKING:
    from agent.logs.pipeline import LogPipeline

log = logging.getLogger("agent.app")


class Agent:
    """One agent: explicit registry, metrics server, log pipeline."""

    def __init__(self, config: AgentConfig, dry_run: bool = False) -> None:
        self.config = config
        self.dry_run = dry_run
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(AgentProcessCollector())
        self.metrics = AgentMetrics(self.registry)
        if config.metrics.host.enabled:
            self.registry.register(build_host_collector(config.metrics.host))
        # One source of truth for which containers exist, for logs and container metrics.
        self.inventory = ContainerInventory()
        self.discovery: DockerApiDiscovery | DockerFilesDiscovery | None = None
        docker = config.docker
        ships_container_logs = config.logs.enabled and config.logs.docker.enabled
        wants_docker = ships_container_logs or config.metrics.containers.enabled
        if wants_docker and docker.discovery == "files":
            self.discovery = DockerFilesDiscovery(docker, self.inventory, self.metrics)
        elif wants_docker:
            self.discovery = DockerApiDiscovery(
                docker, self.inventory, self.metrics, preopen_logs=ships_container_logs
            )
        self.containers: ContainerCollector | None = None
        if config.metrics.containers.enabled:
            self.containers = build_container_collector(
                config.metrics.containers,
                SelectedContainers(self.inventory, docker),
                data_root=self._docker_data_root,
            )
            self.registry.register(self.containers)
        self.pipeline: LogPipeline | None = None
        if config.logs.enabled:
            # Imported here: a metrics-only agent never loads the log pipeline's modules.
            from agent.logs.pipeline import LogPipeline

            self.pipeline = LogPipeline(config, self.metrics, self.inventory, dry_run=dry_run)
            self.registry.register(self.pipeline.lag_collector())
        server = config.server
        web_config = None
        if server.web_config_file is not None:
            from agent.metrics.webconfig import WebConfigWatcher

            web_config = WebConfigWatcher(server.web_config_file)
        self.server = MetricsServer(
            self.registry,
            server.listen_address,
            ready=self._readiness,
            web_config=web_config,
            max_concurrent_scrapes=server.max_concurrent_scrapes,
            max_connections=server.max_connections,
            health_endpoints_open=server.health_endpoints_open,
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _docker_data_root(self) -> str:
        """Docker's data root as the agent sees it: configured, else what Docker says."""
        root = self.config.docker.data_root
        if root is None and isinstance(self.discovery, DockerApiDiscovery):
            root = self.discovery.docker_root
        return str(root or DEFAULT_DOCKER_ROOT)

    def _readiness(self) -> tuple[bool, str]:
        if isinstance(self.discovery, DockerApiDiscovery) and not self.discovery.synced:
            problem = self.metrics.dependencies.problem("docker")
            why = problem.reason if problem else "not synced yet"
            return False, f"docker discovery not ready: {why}"
        if self.pipeline is None:
            return True, "ready (logs disabled)"
        return self.pipeline.readiness()

    def request_stop(self) -> None:
        self._stop.set()

    async def startup(self) -> None:
        for note in self.config.deprecations:
            log.warning(note, extra={"deprecated": True})
        await self.server.start()
        log.info(
            "nexo-agent started",
            extra={
                "version": __version__,
                "listen": f"{self.server.scheme}://{self.server.host}:{self.server.port}",
                "dry_run": self.dry_run,
                "speedups": speedups.mode(),
            },
        )
        if self.discovery is not None:
            await self.discovery.initial_sync()
            self._tasks.append(
                asyncio.create_task(self.discovery.run(self._stop), name="discovery")
            )
        if self.pipeline is not None:
            await self.pipeline.start()

    async def main_loop(self) -> None:
        await self._stop.wait()

    async def shutdown(self) -> None:
        deadline = time.monotonic() + self.config.shutdown_timeout
        self._stop.set()
        if self.pipeline is not None:
            await self.pipeline.stop(deadline)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.containers is not None:
            self.containers.close()
        await self.server.stop()
        log.info("nexo-agent stopped")

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.startup()
            await self.main_loop()
        finally:
            await self.shutdown()


def raise_open_file_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit, as the Go runtime does for node_exporter
    and cAdvisor: tailed logs and held cgroup files need more than the usual 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open-file limit", extra={"error": str(exc)})


def run(config: AgentConfig, dry_run: bool = False) -> int:
    """Run until SIGTERM/SIGINT on uvloop; the exit code for the CLI."""
    import uvloop

    setup_logging(config.log_level)
    raise_open_file_limit()
    # The pipeline allocates millions of short-lived, acyclic tuples and strings; the
    # default gen-0 threshold (700) runs the cycle collector thousands of times a second
    # for nothing. Freeze what startup built and collect far less often.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        uvloop.run(Agent(config, dry_run=dry_run).serve())
    except (OSError, WebConfigError) as exc:  # the listen port is taken, the web config broke
        log.error("nexo-agent failed to start", extra={"error": str(exc)})
        return 1
    return 0
