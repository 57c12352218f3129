"""dmi: ``node_dmi_info`` from /sys/class/dmi/id (firmware tables; read once, they cannot change).

Labels whose file is missing, unreadable (the serials are root-only) or empty are left
out, as in node_exporter.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

_FILES = (
    ("bios_date", "bios_date"),
    ("bios_release", "bios_release"),
    ("bios_vendor", "bios_vendor"),
    ("bios_version", "bios_version"),
    ("board_asset_tag", "board_asset_tag"),
    ("board_name", "board_name"),
    ("board_serial", "board_serial"),
    ("board_vendor", "board_vendor"),
    ("board_version", "board_version"),
    ("chassis_asset_tag", "chassis_asset_tag"),
    ("chassis_serial", "chassis_serial"),
    ("chassis_vendor", "chassis_vendor"),
    ("chassis_version", "chassis_version"),
    ("product_family", "product_family"),
    ("product_name", "product_name"),
    ("product_serial", "product_serial"),
    ("product_sku", "product_sku"),
    ("product_uuid", "product_uuid"),
    ("product_version", "product_version"),
    ("system_vendor", "sys_vendor"),
)


@register("dmi")
class DMICollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        self._info: GaugeFamily | None = None

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        if self._info is None:
            base = ctx.sys("class/dmi/id")
            if not os.path.isdir(base):
                raise NoDataError("platform has no DMI information")
            labels: list[str] = []
            values: list[str] = []
            for label, filename in _FILES:
                value = kernelfs.try_value(f"{base}/{filename}")
                if value:
                    labels.append(label)
                    values.append(value)
            info = GaugeFamily(
                "node_dmi_info",
                "A metric with a constant '1' value labeled by bios_date, bios_release, "
                "bios_vendor, bios_version, board_asset_tag, board_name, board_serial, "
                "board_vendor, board_version, chassis_asset_tag, chassis_serial, chassis_vendor, "
                "chassis_version, product_family, product_name, product_serial, product_sku, "
                "product_uuid, product_version, system_vendor if provided by DMI.",
                labels=labels,
            )
            info.add_metric(values, 1)
            self._info = info
        return [self._info]
