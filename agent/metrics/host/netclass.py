"""netclass: link state and properties from /sys/class/net/<iface>/.

Attributes the driver refuses to report (``carrier`` of a down link reads EINVAL, virtual
devices have no ``speed``) are left out for that interface, as node_exporter does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily, GaugeFamily
from agent.metrics.host.filters import NameFilter
from agent.metrics.host.registry import ScrapeContext, register

_IFF_UP = 0x1

# (sysfs attribute, metric suffix, counter?) in node_exporter's emission order.
_NUMERIC: tuple[tuple[str, str, bool], ...] = (
    ("addr_assign_type", "address_assign_type", False),
    ("carrier", "carrier", False),
    ("carrier_changes", "carrier_changes_total", True),
    ("carrier_up_count", "carrier_up_changes_total", True),
    ("carrier_down_count", "carrier_down_changes_total", True),
    ("dev_id", "device_id", False),
    ("dormant", "dormant", False),
    ("flags", "flags", False),
    ("ifindex", "iface_id", False),
    ("iflink", "iface_link", False),
    ("link_mode", "iface_link_mode", False),
    ("mtu", "mtu_bytes", False),
    ("name_assign_type", "name_assign_type", False),
    ("netdev_group", "net_dev_group", False),
    ("tx_queue_len", "transmit_queue_length", False),
    ("type", "protocol_type", False),
)


def _parse_int(text: str) -> int | None:
    # Go's ParseInt(v, 0, 64): "0x1003" is hex (flags, dev_id), the rest decimal.
    try:
        return int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        return None


@register("netclass")
class NetclassCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        self._filter = NameFilter(cfg.netclass_ignored_devices)

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("class/net")
        up = GaugeFamily(
            "node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.", labels=["device"]
        )
        info = GaugeFamily(
            "node_network_info",
            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
            labels=[
                "device",
                "address",
                "broadcast",
                "duplex",
                "operstate",
                "adminstate",
                "ifalias",
            ],
        )
        numeric = {
            attribute: (CounterFamily if counter else GaugeFamily)(
                f"node_network_{suffix}",
                f"Network device property: {suffix}",
                labels=["device"],
            )
            for attribute, suffix, counter in _NUMERIC
        }
        speed = GaugeFamily(
            "node_network_speed_bytes", "Network device property: speed_bytes", labels=["device"]
        )
        for device in kernelfs.list_dir(base):
            if self._filter.ignored(device):
                continue
            try:
                directory = kernelfs.open_dir(f"{base}/{device}")
            except OSError:
                continue  # bonding_masters and other plain files
            try:
                self._device(device, directory, up, info, numeric, speed)
            finally:
                os.close(directory)
        return [up, info, *numeric.values(), speed]

    @staticmethod
    def _device(
        device: str,
        directory: int,
        up: GaugeFamily,
        info: GaugeFamily,
        numeric: dict[str, GaugeFamily | CounterFamily],
        speed: GaugeFamily,
    ) -> None:
        read = kernelfs.try_value_at
        operstate = read(directory, "operstate") or ""
        up.add_metric([device], 1 if operstate == "up" else 0)
        flags: int | None = None
        for attribute, _, _ in _NUMERIC:
            text = read(directory, attribute)
            if text is not None:
                value = _parse_int(text)
                if value is not None:
                    numeric[attribute].add_metric([device], value)
                    if attribute == "flags":
                        flags = value
        adminstate = "unknown" if flags is None else "up" if flags & _IFF_UP else "down"
        info.add_metric(
            [
                device,
                read(directory, "address") or "",
                read(directory, "broadcast") or "",
                read(directory, "duplex") or "",
                operstate,
                adminstate,
                read(directory, "ifalias") or "",
            ],
            1,
        )
        speed_text = read(directory, "speed")
        if speed_text is not None:
            mbits = _parse_int(speed_text)
            if mbits is not None:
                # -1 (unknown speed) stays -125000, like node_exporter's default.
                speed.add_metric([device], mbits * 125000)
