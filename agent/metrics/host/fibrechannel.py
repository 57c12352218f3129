"""fibrechannel: FC host bus adapters from /sys/class/fc_host (node_exporter 1.12).

Read like prometheus/procfs ``FibreChannelClass``: every attribute a driver may leave out
(lpfc hosts without ``port_type``, a host without ``statistics/``) becomes an empty label
or a missing counter, but any other read error, or a counter that is not a number, fails
the collector. Counters are hex (``0x1f``) and a counter the HBA firmware does not
implement reads all ones (``0xffffffffffffffff``); node_exporter leaves those out. A host
whose ``port_state`` is absent or ``Unknown`` (a disabled port) reports every counter as 0.

Where node_exporter would crash (a known statistic missing on a host whose port state is
known: it dereferences a nil counter) this collector leaves that one counter out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily, GaugeFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

_UINT64_MAX = (1 << 64) - 1


# Info attributes in node_exporter's label order, after fc_host.
_INFO_LABELS = (
    "speed",
    "port_state",
    "port_type",
    "port_id",
    "port_name",
    "fabric_name",
    "symbolic_name",
    "supported_classes",
    "supported_speeds",
    "dev_loss_tmo",
)
# WWNs and port IDs lose their "0x" like procfs's, so port_id="000002".
_HEX_ATTRIBUTES = frozenset({"port_id", "port_name", "fabric_name"})

# statistics/<file> -> (metric name without node_fibrechannel_, help).
_COUNTERS: dict[str, tuple[str, str]] = {
    "dumped_frames": ("dumped_frames_total", "Number of dumped frames"),
    "error_frames": ("error_frames_total", "Number of errors in frames"),
    "invalid_crc_count": ("invalid_crc_total", "Invalid Cyclic Redundancy Check count"),
    "rx_frames": ("rx_frames_total", "Number of frames received"),
    "rx_words": ("rx_words_total", "Number of words received by host port"),
    "tx_frames": ("tx_frames_total", "Number of frames transmitted by host port"),
    "tx_words": ("tx_words_total", "Number of words transmitted by host port"),
    "seconds_since_last_reset": (
        "seconds_since_last_reset_total",
        "Number of seconds since last host port reset",
    ),
    "invalid_tx_word_count": (
        "invalid_tx_words_total",
        "Number of invalid words transmitted by host port",
    ),
    "link_failure_count": (
        "link_failure_total",
        "Number of times the host port link has failed",
    ),
    "loss_of_sync_count": (
        "loss_of_sync_total",
        "Number of failures on either bit or transmission word boundaries",
    ),
    "loss_of_signal_count": ("loss_of_signal_total", "Number of times signal has been lost"),
    "nos_count": (
        "nos_total",
        "Number Not_Operational Primitive Sequence received by host port",
    ),
    "fcp_packet_aborts": ("fcp_packet_aborts_total", "Number of aborted packets"),
}


def _read_statistic(path: str) -> int | None:
    """One statistics counter, or None when the driver does not provide it."""
    try:
        text = kernelfs.read_sysfs_attribute(path)
    except OSError as exc:
        if exc.errno in kernelfs.SKIPPED_READ_ERRNOS:
            return None
        raise
    return kernelfs.parse_uint(text)


@register("fibrechannel")
class FibreChannelCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("class/fc_host")
        try:
            hosts = sorted(os.listdir(base))
        except FileNotFoundError:
            raise NoDataError("no Fibre Channel hosts") from None
        info = GaugeFamily(
            "node_fibrechannel_info",
            "Non-numeric data from /sys/class/fc_host/<host>, value is always 1.",
            labels=["fc_host", *_INFO_LABELS],
        )
        counters = {
            file: CounterFamily(f"node_fibrechannel_{name}", help_text, labels=["fc_host"])
            for file, (name, help_text) in _COUNTERS.items()
        }
        for host in hosts:
            path = f"{base}/{host}"
            attributes: dict[str, str] = {}
            for attribute in _INFO_LABELS:
                try:
                    value = kernelfs.read_sysfs_attribute(f"{path}/{attribute}")
                except FileNotFoundError:
                    # Drivers may leave attributes out (node_exporter issue #2919).
                    continue
                if attribute in _HEX_ATTRIBUTES and len(value) > 2:
                    value = value[2:]
                attributes[attribute] = value
            info.add_metric([host, *(attributes.get(a, "") for a in _INFO_LABELS)], 1)

            # A disabled host has no statistics worth reading: node_exporter reports zeros.
            port_state = attributes.get("port_state")
            disabled = port_state is None or port_state == "Unknown"
            for file, family in counters.items():
                count = 0 if disabled else _read_statistic(f"{path}/statistics/{file}")
                # All ones: a counter the HBA firmware does not implement.
                if count is not None and count != _UINT64_MAX:
                    family.add_metric([host], count)
        return [family for family in (info, *counters.values()) if family.rows]
