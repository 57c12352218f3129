"""CPU per scrape of the container collector as the number of running containers grows.

Starts N real busybox containers (``sleep 3600``, ``--network none``) on the local dockerd,
builds the collector on them the way the agent does, and measures the scraping thread's
CPU time (``time.thread_time``) for

- ``collect``: reading every cgroup/proc file and building the metric families,
- ``refresh``: the same when the containers' limits are due to be re-read (once per
  ``SPEC_REFRESH_INTERVAL``, so every fourth scrape at a 15 s scrape interval), and
- ``render``: the whole text exposition as /metrics serves it (``render_text``), collect plus the
  prometheus_client text encoder, which is what a Prometheus scrape actually costs
  (also as elapsed time, ``render_wall``: the scrape's latency without HTTP);

per scrape and per container (medians), after one warm-up scrape (cgroup paths are
resolved and cached on first sight, reported separately as ``first``). Containers are
removed at the end, also on Ctrl-C.

    python -m benchmarks.container_scrape            # 1, 10, 50, 100 containers
    python -m benchmarks.container_scrape --quick    # 1 and 5 containers
    python -m benchmarks.container_scrape --open-per-read   # cgroup files not held open
                                                            # (as before issue 11)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from agent.config import ContainerMetricsConfig
from agent.metrics.containers import ContainerCollector
from agent.metrics.containers.collector import SPEC_REFRESH_INTERVAL
from agent.metrics.server import render_text

IMAGE = "nexo-test/busybox:latest"
TARGET_MS_AT_100 = 20.0


@dataclass(frozen=True)
class BenchContainer:
    """What the inventory would hold for one container (``ContainerLike``)."""

    id: str
    name: str
    image: str
    labels: dict[str, str]
    pid: int
    running: bool
    started_at: float
    cgroup_parent: str


class StaticSource:
    def __init__(self, containers: list[BenchContainer]) -> None:
        self._containers = {c.id: c for c in containers}

    @property
    def containers(self) -> dict[str, BenchContainer]:
        return self._containers


@contextmanager
def running_containers(client: Any, count: int, run_id: str) -> Iterator[list[BenchContainer]]:
    started: list[Any] = []

    def start(i: int) -> Any:
        return client.containers.run(
            IMAGE,
            ["sleep", "3600"],
            name=f"nexo-bench-{run_id}-{i}",
            detach=True,
            network_mode="none",
            labels={"com.docker.compose.project": "bench", "com.docker.compose.service": f"s{i}"},
        )

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for container in pool.map(start, range(count)):
                started.append(container)
        found = []
        for container in started:
            a = client.api.inspect_container(container.id)
            found.append(
                BenchContainer(
                    id=a["Id"],
                    name=a["Name"].lstrip("/"),
                    image=a["Config"]["Image"],
                    labels=a["Config"]["Labels"] or {},
                    pid=a["State"]["Pid"],
                    running=a["State"]["Running"],
                    started_at=time.time(),
                    cgroup_parent=a["HostConfig"].get("CgroupParent") or "",
                )
            )
        yield found
    finally:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda c: c.remove(force=True), started))


def cpu_ms(action: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.thread_time()
        action()
        samples.append((time.thread_time() - start) * 1000.0)
    return samples


def wall_ms(action: Callable[[], object], repeat: int) -> list[float]:
    """Elapsed time, i.e. the scrape latency a Prometheus would see, minus HTTP."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def measure(client: Any, count: int, repeat: int, open_per_read: bool = False) -> dict[str, float]:
    with running_containers(client, count, uuid.uuid4().hex[:8]) as containers:
        now = [time.time()]
        collector = ContainerCollector(
            ContainerMetricsConfig(), StaticSource(containers), clock=lambda: now[0]
        )
        if open_per_read:
            collector.held_files.limit = 0
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        first = cpu_ms(lambda: list(collector.collect()), 1)[0]
        collect = statistics.median(cpu_ms(lambda: list(collector.collect()), repeat))

        def scrape_with_spec_refresh() -> None:
            now[0] += SPEC_REFRESH_INTERVAL
            list(collector.collect())

        refresh = statistics.median(cpu_ms(scrape_with_spec_refresh, repeat))
        render_samples = cpu_ms(lambda: render_text(registry), repeat)
        render = statistics.median(render_samples)
        render_wall = statistics.median(wall_ms(lambda: render_text(registry), repeat))
        body = render_text(registry)
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return {
        "containers": count,
        "first_ms": round(first, 2),
        "collect_ms": round(collect, 2),
        "refresh_ms": round(refresh, 2),
        "render_ms": round(render, 2),
        "render_wall_ms": round(render_wall, 2),
        "collect_us_per_container": round(collect * 1000 / count, 1),
        "render_us_per_container": round(render * 1000 / count, 1),
        "series": series,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 5 containers only")
    parser.add_argument("--repeat", type=int, default=20, help="scrapes measured per size")
    parser.add_argument("--json", action="store_true", help="print results as JSON lines")
    parser.add_argument(
        "--open-per-read",
        action="store_true",
        help="open and close every cgroup file per read instead of holding it open",
    )
    args = parser.parse_args(argv)

    import docker

    client = docker.from_env(timeout=120)
    sizes = [1, 5] if args.quick else [1, 10, 50, 100]
    results = []
    if not args.json:
        print(
            f"{'containers':>10} {'series':>7} {'first ms':>9} {'collect ms':>11} "
            f"{'refresh ms':>11} {'render ms':>10} {'collect us/ctr':>15} {'render us/ctr':>14}"
        )
    for count in sizes:
        r = measure(client, count, args.repeat, args.open_per_read)
        results.append(r)
        if args.json:
            print(json.dumps(r))
        else:
            print(
                f"{r['containers']:>10} {r['series']:>7} {r['first_ms']:>9} "
                f"{r['collect_ms']:>11} {r['refresh_ms']:>11} {r['render_ms']:>10} "
                f"{r['collect_us_per_container']:>15} {r['render_us_per_container']:>14}"
            )
    biggest = results[-1]
    if biggest["containers"] == 100 and not args.json:
        verdict = "meets" if biggest["collect_ms"] < TARGET_MS_AT_100 else "misses"
        print(f"collect at 100 containers {verdict} the {TARGET_MS_AT_100} ms CPU target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
