"""nvme: controllers and their namespaces from /sys/class/nvme (node_exporter 1.12).

Namespaces are read like prometheus/procfs ``NVMeClass``: only entries named like
``nvme0c0n1`` count, the per-controller paths the kernel creates under native NVMe
multipath (``CONFIG_NVME_MULTIPATH``, on in most distributions); a kernel without it has
``nvme0n1`` there instead, and node_exporter reports no namespace for it either.
``size`` and ``nuse`` are multiplied by ``queue/logical_block_size`` as node_exporter
does, although the kernel gives ``size`` in 512-byte sectors: on a 4 KiB-formatted
namespace ``node_nvme_namespace_size_bytes`` and ``capacity_bytes`` read 8x the real
size, and dashboards built on node_exporter expect exactly that.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

# Unanchored, like procfs: the namespace ID is the number after the controller's "c<n>n".
_NAMESPACE = re.compile(r"nvme\d+c\d+n(\d+)")


def _blocks(path: str) -> int:
    """A namespace size attribute; it must exist, but an unparsable value counts as 0."""
    value = kernelfs.read_value(path)
    return int(value) if value.isdigit() else 0


@register("nvme")
class NVMeCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("class/nvme")
        controllers = kernelfs.list_dir(base)
        if not controllers:
            raise NoDataError("no NVMe controllers")
        info = GaugeFamily(
            "node_nvme_info",
            "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
            labels=["device", "firmware_revision", "model", "serial", "state", "cntlid"],
        )
        ns_labels = ["device", "nsid"]
        ns_info = GaugeFamily(
            "node_nvme_namespace_info",
            "Information about NVMe namespaces. Value is always 1",
            labels=["device", "nsid", "ana_state"],
        )
        capacity = GaugeFamily(
            "node_nvme_namespace_capacity_bytes",
            "Capacity of the NVMe namespace in bytes. Computed as namespace_size * "
            "namespace_logical_block_size",
            labels=ns_labels,
        )
        size = GaugeFamily(
            "node_nvme_namespace_size_bytes",
            "Size of the NVMe namespace in bytes. Available in "
            "/sys/class/nvme/<device>/<namespace>/size",
            labels=ns_labels,
        )
        used = GaugeFamily(
            "node_nvme_namespace_used_bytes",
            "Used space of the NVMe namespace in bytes. Available in "
            "/sys/class/nvme/<device>/<namespace>/nuse",
            labels=ns_labels,
        )
        block_size = GaugeFamily(
            "node_nvme_namespace_logical_block_size_bytes",
            "Logical block size of the NVMe namespace in bytes. Usually 4Kb. Available in "
            "/sys/class/nvme/<device>/<namespace>/queue/logical_block_size",
            labels=ns_labels,
        )
        for device in controllers:
            path = f"{base}/{device}"
            info.add_metric(
                [
                    device,
                    kernelfs.try_value(f"{path}/firmware_rev") or "",
                    kernelfs.try_value(f"{path}/model") or "",
                    kernelfs.try_value(f"{path}/serial") or "",
                    kernelfs.try_value(f"{path}/state") or "",
                    kernelfs.try_value(f"{path}/cntlid") or "",
                ],
                1,
            )
            for entry in kernelfs.list_dir(path):
                match = _NAMESPACE.search(entry)
                if match is None:
                    continue
                nsid = match.group(1)
                ns_path = f"{path}/{entry}"
                # A namespace missing one of these fails the collector, as in procfs.
                nuse = _blocks(f"{ns_path}/nuse")
                blocks = _blocks(f"{ns_path}/size")
                lbs = _blocks(f"{ns_path}/queue/logical_block_size")
                ana_state = kernelfs.try_value(f"{ns_path}/ana_state")
                labels = [device, nsid]
                ns_info.add_metric([device, nsid, "unknown" if ana_state is None else ana_state], 1)
                capacity.add_metric(labels, blocks * lbs)
                size.add_metric(labels, blocks * lbs)
                used.add_metric(labels, nuse * lbs)
                block_size.add_metric(labels, lbs)
        return [info, ns_info, capacity, size, used, block_size]
