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

import errno
import os
from collections.abc import Iterable

from prometheus_client import Metric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

_UINT64_MAX = (1 << 64) - 1

# procfs's util.SysReadFile: one read() of this many bytes, so a longer attribute (an FC
# symbolic_name may be 255 characters) is cut where node_exporter cuts it.
_SYSFS_READ_SIZE = 128

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

# Read errors procfs skips a statistic for: the file is gone, or the driver refuses the
# read. procfs means to skip EINVAL too (``errors.Is(err, os.ErrInvalid)``), but an errno
# never matches that sentinel in Go; this follows the intent rather than failing.
SKIPPED_READ_ERRNOS = frozenset({errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL})


def read_sysfs_attribute(path: str) -> str:
    """procfs's ``util.SysReadFile``: at most 128 bytes, surrounding whitespace removed."""
    return kernelfs.read_bytes(path)[:_SYSFS_READ_SIZE].strip().decode("utf-8", "replace")


def parse_uint64(text: str) -> int:
    """Go's ``strconv.ParseUint(text, 0, 64)``, which procfs applies to sysfs counters.

    The base comes from the prefix (``0x``, ``0o``, ``0b``, and a bare leading ``0`` for
    octal, which Python's ``int(text, 0)`` rejects); signs, spaces and values past 2^64-1
    are errors. Raises ValueError.
    """
    if not text.isascii() or text[:1] in ("+", "-") or text != text.strip():
        raise ValueError(f"invalid unsigned integer {text!r}")
    if len(text) > 1 and text[0] == "0" and (text[1].isdigit() or text[1] == "_"):
        value = int("0o" + text[1:], 0)
    else:
        value = int(text, 0)
    if value > _UINT64_MAX:
        raise ValueError(f"{text!r} is out of range for uint64")
    return value


def _read_statistic(path: str) -> int | None:
    """One statistics counter, or None when the driver does not provide it."""
    try:
        text = read_sysfs_attribute(path)
    except OSError as exc:
        if exc.errno in SKIPPED_READ_ERRNOS:
            return None
        raise
    return parse_uint64(text)


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
        info = GaugeMetricFamily(
            "node_fibrechannel_info",
            "Non-numeric data from /sys/class/fc_host/<host>, value is always 1.",
            labels=["fc_host", *_INFO_LABELS],
        )
        counters = {
            file: CounterMetricFamily(f"node_fibrechannel_{name}", help_text, labels=["fc_host"])
            for file, (name, help_text) in _COUNTERS.items()
        }
        for host in hosts:
            path = f"{base}/{host}"
            attributes: dict[str, str] = {}
            for attribute in _INFO_LABELS:
                try:
                    value = read_sysfs_attribute(f"{path}/{attribute}")
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
        return [family for family in (info, *counters.values()) if family.samples]
