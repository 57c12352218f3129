"""The collector registry, like node_exporter's ``registerCollector``.

Each module in this package defines one collector class and registers it under its
node_exporter name with node_exporter's on/off default; adding a collector is one new
module plus its import in ``__init__``. A collector is built once from the config (to
compile filters and keep state such as stuck mounts) and then asked for fresh metric
families on every scrape: nothing read from the OS is stored in global metric objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily, GaugeFamily


class NoDataError(Exception):
    """node_exporter's ``ErrNoData``: the host has nothing for this collector.

    The scrape reports ``node_scrape_collector_success 0`` like node_exporter, but it is
    not logged as a failure (no PSI on this kernel, no bonding driver, no NFS mounts...).
    """


@dataclass
class ScrapeContext:
    """Where the host's /proc, /sys and / are, plus files shared by collectors in one scrape."""

    procfs: str
    sysfs: str
    rootfs: str
    udev_data: str
    _shared: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: HostMetricsConfig) -> ScrapeContext:
        return cls(
            procfs=str(cfg.procfs).rstrip("/") or "/",
            sysfs=str(cfg.sysfs).rstrip("/") or "/",
            rootfs=str(cfg.rootfs).rstrip("/") or "/",
            udev_data=str(cfg.udev_data).rstrip("/"),
        )

    def proc(self, relative: str) -> str:
        return f"{self.procfs}/{relative}"

    def sys(self, relative: str) -> str:
        return f"{self.sysfs}/{relative}"

    def root(self, absolute: str) -> str:
        """A host path (``/etc/os-release``, a mount point) as seen through ``rootfs``."""
        return absolute if self.rootfs == "/" else self.rootfs + absolute

    def read_shared(self, path: str) -> str:
        """Read a file once per scrape for every collector that needs it (/proc/stat)."""
        text = self._shared.get(path)
        if text is None:
            text = self._shared[path] = kernelfs.read_text(path)
        return text


class LazyFamilies:
    """Gauge and counter families named ``<prefix><suffix>``, each built on its first
    sample: a family with no series is never emitted (bcache, btrfs)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.by_name: dict[str, GaugeFamily | CounterFamily] = {}

    def add(
        self,
        suffix: str,
        help_text: str,
        labels: dict[str, str],
        value: float,
        counter: bool = False,
    ) -> None:
        name = self.prefix + suffix
        family = self.by_name.get(name)
        if family is None:
            kind = CounterFamily if counter else GaugeFamily
            family = self.by_name[name] = kind(name, help_text, labels=list(labels))
        family.add_metric(list(labels.values()), value)


class Collector(Protocol):
    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        """Read the host and return this scrape's metric families.

        Raise :class:`NoDataError` when the host has nothing for this collector; any other
        exception marks the collector failed for this scrape only.
        """
        ...


CollectorFactory = Callable[[HostMetricsConfig], Collector]


@dataclass(frozen=True)
class Registration:
    name: str
    default_enabled: bool
    factory: CollectorFactory


_REGISTRY: dict[str, Registration] = {}

_C = TypeVar("_C", bound=type)


def register(name: str, *, default_enabled: bool = True) -> Callable[[_C], _C]:
    """Class decorator: make a collector known under its node_exporter name."""

    def decorate(cls: _C) -> _C:
        if name in _REGISTRY:
            raise ValueError(f"host collector {name!r} registered twice")
        _REGISTRY[name] = Registration(name, default_enabled, cls)
        return cls

    return decorate


def registrations() -> dict[str, Registration]:
    return dict(sorted(_REGISTRY.items()))


def enabled_names(cfg: HostMetricsConfig) -> list[str]:
    """node_exporter's defaults, overridden per collector by ``cfg.collectors``."""
    return [
        name
        for name, reg in registrations().items()
        if cfg.collectors.get(name, reg.default_enabled)
    ]
