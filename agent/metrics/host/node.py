"""The scrape-time driver, like node_exporter's ``NodeCollector``.

Runs every enabled collector in turn, times it, and reports
``node_scrape_collector_duration_seconds`` and ``node_scrape_collector_success`` for each;
a collector that fails or has no data costs only its own families, never the scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics.host.families import GaugeFamily, has_samples
from agent.metrics.host.registry import Collector, NoDataError, ScrapeContext

log = logging.getLogger("agent.metrics.host")


class NodeCollector:
    """A prometheus_client collector serving every enabled host collector."""

    def __init__(self, cfg: HostMetricsConfig, collectors: Sequence[tuple[str, Collector]]) -> None:
        self._cfg = cfg
        self._collectors = list(collectors)
        self._last_error: dict[str, str] = {}
        # Collectors keep state between scrapes (CPU counter clamps, stuck mounts); two
        # renders at once must not interleave.
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._collectors]

    def describe(self) -> Iterable[Metric]:
        # Nothing to pre-declare: keeps CollectorRegistry(auto_describe=True) from running
        # a whole scrape at registration time.
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = self._scrape()
        yield from families

    def _scrape(self) -> list[Metric]:
        ctx = ScrapeContext.from_config(self._cfg)
        duration = GaugeFamily(
            "node_scrape_collector_duration_seconds",
            "node_exporter: Duration of a collector scrape.",
            labels=["collector"],
        )
        success = GaugeFamily(
            "node_scrape_collector_success",
            "node_exporter: Whether a collector succeeded.",
            labels=["collector"],
        )
        out: list[Metric] = []
        perf_counter = time.perf_counter
        for name, collector in self._collectors:
            start = perf_counter()
            ok = 0.0
            try:
                families = list(collector.collect(ctx))
            except NoDataError as exc:
                log.debug(
                    "collector returned no data", extra={"collector": name, "reason": str(exc)}
                )
            except Exception as exc:
                self._log_failure(name, exc)
            else:
                ok = 1.0
                # node_exporter never prints a family without samples.
                out.extend(family for family in families if has_samples(family))
                self._last_error.pop(name, None)
            duration.add_metric([name], perf_counter() - start)
            success.add_metric([name], ok)
        out.append(duration)
        out.append(success)
        return out

    def _log_failure(self, name: str, exc: Exception) -> None:
        # node_exporter logs every failed scrape; once per distinct error is enough to
        # diagnose and keeps a broken sensor from flooding the agent's own log stream.
        message = f"{type(exc).__name__}: {exc}"
        if self._last_error.get(name) != message:
            self._last_error[name] = message
            log.error("collector %s failed: %s", name, message)
