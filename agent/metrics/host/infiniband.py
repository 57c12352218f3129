"""infiniband: HCA ports from /sys/class/infiniband (node_exporter 1.12).

Read like prometheus/procfs ``InfiniBandClass``, which is all or nothing: a device without
``fw_ver`` or ``ports/``, or a port without ``link_layer``, ``state``, ``phys_state`` or
``rate``, makes node_exporter report no data at all (its ``errors.Is(err, ErrNotExist)``
also sees the not-exist errors procfs wraps), and an unparsable state, rate or port number
fails the collector. A counter file is optional: one that is gone or that the driver
refuses to read is left out, and so is one that reads ``N/A (no PMA)`` (drivers without
a Performance Management Agent, node_exporter issue #966); any other non-number fails
the collector.

``counters/`` holds the IBA PortCounters; since kernel 4.5 it shows the 64-bit
PortCountersExtended values where the HCA has them, and older 32-bit ones saturate
(``port_xmit_wait`` stuck at 4294967295). Before 4.5, says procfs, the 64-bit counters
sat in a separate ``counters_ext/``, which node_exporter exports as ``legacy_*`` beside
the others (both when both exist). The data counters in either count 4-byte words, so
they are multiplied by 4 into bytes (wrapping at 2^64 like Go's uint64).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily, GaugeFamily
from agent.metrics.host.filters import NameFilter
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

_UINT64_MASK = (1 << 64) - 1
_NO_PMA = "N/A (no PMA)"

# counters/<file> -> metric name without node_infiniband_.
_COUNTERS = {
    "excessive_buffer_overrun_errors": "excessive_buffer_overrun_errors_total",
    "link_downed": "link_downed_total",
    "link_error_recovery": "link_error_recovery_total",
    "local_link_integrity_errors": "local_link_integrity_errors_total",
    "multicast_rcv_packets": "multicast_packets_received_total",
    "multicast_xmit_packets": "multicast_packets_transmitted_total",
    "port_rcv_constraint_errors": "port_constraint_errors_received_total",
    "port_rcv_data": "port_data_received_bytes_total",
    "port_rcv_discards": "port_discards_received_total",
    "port_rcv_errors": "port_errors_received_total",
    "port_rcv_packets": "port_packets_received_total",
    "port_rcv_remote_physical_errors": "port_receive_remote_physical_errors_total",
    "port_rcv_switch_relay_errors": "port_receive_switch_relay_errors_total",
    "port_xmit_constraint_errors": "port_constraint_errors_transmitted_total",
    "port_xmit_data": "port_data_transmitted_bytes_total",
    "port_xmit_discards": "port_discards_transmitted_total",
    "port_xmit_packets": "port_packets_transmitted_total",
    "port_xmit_wait": "port_transmit_wait_total",
    "symbol_error": "symbol_error_total",
    "unicast_rcv_packets": "unicast_packets_received_total",
    "unicast_xmit_packets": "unicast_packets_transmitted_total",
    "VL15_dropped": "vl15_dropped_total",
}
# counters_ext/<file> (kernels before 4.5) -> metric name.
_LEGACY_COUNTERS = {
    "port_multicast_rcv_packets": "legacy_multicast_packets_received_total",
    "port_multicast_xmit_packets": "legacy_multicast_packets_transmitted_total",
    "port_rcv_data_64": "legacy_data_received_bytes_total",
    "port_rcv_packets_64": "legacy_packets_received_total",
    "port_unicast_rcv_packets": "legacy_unicast_packets_received_total",
    "port_unicast_xmit_packets": "legacy_unicast_packets_transmitted_total",
    "port_xmit_data_64": "legacy_data_transmitted_bytes_total",
    "port_xmit_packets_64": "legacy_packets_transmitted_total",
}
# hw_counters/<file> (driver-specific, mlx5 and others) -> metric name.
_HW_COUNTERS = {
    "duplicate_request": "duplicate_requests_packets_total",
    "implied_nak_seq_err": "implied_nak_seq_errors_total",
    "lifespan": "lifespan_seconds",
    "local_ack_timeout_err": "local_ack_timeout_errors_total",
    "np_cnp_sent": "np_cnp_packets_sent_total",
    "np_ecn_marked_roce_packets": "np_ecn_marked_roce_packets_received_total",
    "out_of_buffer": "out_of_buffer_drops_total",
    "out_of_sequence": "out_of_sequence_packets_received_total",
    "packet_seq_err": "packet_sequence_errors_total",
    "req_cqe_error": "req_cqes_errors_total",
    "req_cqe_flush_error": "req_cqes_flush_errors_total",
    "req_remote_access_errors": "req_remote_access_errors_total",
    "req_remote_invalid_request": "req_remote_invalid_request_errors_total",
    "resp_cqe_error": "resp_cqes_errors_total",
    "resp_cqe_flush_error": "resp_cqes_flush_errors_total",
    "resp_local_length_error": "resp_local_length_errors_total",
    "resp_remote_access_errors": "resp_remote_access_errors_total",
    "rnr_nak_retry_err": "rnr_nak_retry_packets_received_total",
    "roce_adp_retrans": "roce_adp_retransmits_total",
    "roce_adp_retrans_to": "roce_adp_retransmits_timeout_total",
    "roce_slow_restart": "roce_slow_restart_used_total",
    "roce_slow_restart_cnps": "roce_slow_restart_cnps_total",
    "roce_slow_restart_trans": "roce_slow_restart_total",
    "rp_cnp_handled": "rp_cnp_packets_handled_total",
    "rp_cnp_ignored": "rp_cnp_ignored_packets_received_total",
    "rx_atomic_requests": "rx_atomic_requests_total",
    "rx_dct_connect": "rx_dct_connect_requests_total",
    "rx_icrc_encapsulated": "rx_icrc_encapsulated_errors_total",
    "rx_read_requests": "rx_read_requests_total",
    "rx_write_requests": "rx_write_requests_total",
}
# Counted in 4-byte words per lane (Mellanox: "divided by 4 unconditionally").
_WORD_COUNTERS = frozenset(
    {"port_rcv_data", "port_xmit_data", "port_rcv_data_64", "port_xmit_data_64"}
)
# Read errors procfs skips a counter for, beyond FibreChannel's: a permission refused.
_SKIPPED_COUNTER_ERRNOS = kernelfs.SKIPPED_READ_ERRNOS | {errno.EACCES, errno.EPERM}

_GAUGES = frozenset({"state_id", "physical_state_id", "rate_bytes_per_second", "lifespan_seconds"})
_HELP = {
    "legacy_multicast_packets_received_total": "Number of multicast packets received",
    "legacy_multicast_packets_transmitted_total": "Number of multicast packets transmitted",
    "legacy_data_received_bytes_total": "Number of data octets received on all links",
    "legacy_packets_received_total": "Number of data packets received on all links",
    "legacy_unicast_packets_received_total": "Number of unicast packets received",
    "legacy_unicast_packets_transmitted_total": "Number of unicast packets transmitted",
    "legacy_data_transmitted_bytes_total": "Number of data octets transmitted on all links",
    # sic: node_exporter's help says "received" for the transmitted packets too.
    "legacy_packets_transmitted_total": "Number of data packets received on all links",
    "excessive_buffer_overrun_errors_total": (
        "Number of times that OverrunErrors consecutive flow control update periods "
        "occurred, each having at least one overrun error."
    ),
    "link_downed_total": (
        "Number of times the link failed to recover from an error state and went down"
    ),
    "link_error_recovery_total": (
        "Number of times the link successfully recovered from an error state"
    ),
    "local_link_integrity_errors_total": (
        "Number of times that the count of local physical errors exceeded the threshold "
        "specified by LocalPhyErrors."
    ),
    "multicast_packets_received_total": "Number of multicast packets received (including errors)",
    "multicast_packets_transmitted_total": (
        "Number of multicast packets transmitted (including errors)"
    ),
    "physical_state_id": (
        "Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, "
        "3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)"
    ),
    "port_constraint_errors_received_total": (
        "Number of packets received on the switch physical port that are discarded"
    ),
    "port_constraint_errors_transmitted_total": (
        "Number of packets not transmitted from the switch physical port"
    ),
    "port_data_received_bytes_total": "Number of data octets received on all links",
    "port_data_transmitted_bytes_total": "Number of data octets transmitted on all links",
    "port_discards_received_total": (
        "Number of inbound packets discarded by the port because the port is down or congested"
    ),
    "port_discards_transmitted_total": (
        "Number of outbound packets discarded by the port because the port is down or congested"
    ),
    "port_errors_received_total": (
        "Number of packets containing an error that were received on this port"
    ),
    "port_packets_received_total": (
        "Number of packets received on all VLs by this port (including errors)"
    ),
    "port_packets_transmitted_total": (
        "Number of packets transmitted on all VLs from this port (including errors)"
    ),
    "port_transmit_wait_total": (
        "Number of ticks during which the port had data to transmit but no data was sent "
        "during the entire tick"
    ),
    "rate_bytes_per_second": "Maximum signal transfer rate",
    "state_id": (
        "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, "
        "5: act defer)"
    ),
    "unicast_packets_received_total": "Number of unicast packets received (including errors)",
    "unicast_packets_transmitted_total": (
        "Number of unicast packets transmitted (including errors)"
    ),
    "port_receive_remote_physical_errors_total": (
        "Number of packets marked with the EBP (End of Bad Packet) delimiter received on the port."
    ),
    "port_receive_switch_relay_errors_total": (
        "Number of packets that could not be forwarded by the switch."
    ),
    "symbol_error_total": "Number of minor link errors detected on one or more physical lanes.",
    "vl15_dropped_total": "Number of incoming VL15 packets dropped due to resource limitations.",
    # https://enterprise-support.nvidia.com/s/article/understanding-mlx5-linux-counters-and-status-parameters
    "duplicate_requests_packets_total": (
        "The number of received packets. A duplicate request is a request that had been "
        "previously executed."
    ),
    "implied_nak_seq_errors_total": (
        "The number of time the requested decided an ACK. with a PSN larger than the expected "
        "PSN for an RDMA read or response."
    ),
    "lifespan_seconds": (
        "The maximum period in ms which defines the aging of the counter reads. Two "
        "consecutive reads within this period might return the same values."
    ),
    "local_ack_timeout_errors_total": (
        "The number of times QP's ack timer expired for RC, XRC, DCT QPs at the sender side. "
        "The QP retry limit was not exceed, therefore it is still recoverable error."
    ),
    "np_cnp_packets_sent_total": (
        "The number of CNP packets sent by the Notification Point when it noticed congestion "
        "experienced in the RoCEv2 IP header (ECN bits). The counters was added in MLNX_OFED 4.1"
    ),
    "np_ecn_marked_roce_packets_received_total": (
        "The number of RoCEv2 packets received by the notification point which were marked for "
        "experiencing the congestion (ECN bits where '11' on the ingress RoCE traffic) . The "
        "counters was added in MLNX_OFED 4.1"
    ),
    "out_of_buffer_drops_total": (
        "The number of drops occurred due to lack of WQE for the associated QPs."
    ),
    "out_of_sequence_packets_received_total": "The number of out of sequence packets received.",
    "packet_sequence_errors_total": (
        "The number of received NAK sequence error packets. The QP retry limit was not exceeded."
    ),
    "req_cqes_errors_total": (
        "The number of times requester detected CQEs completed with errors. The counters was "
        "added in MLNX_OFED 4.1"
    ),
    "req_cqes_flush_errors_total": (
        "The number of times requester detected CQEs completed with flushed errors. The "
        "counters was added in MLNX_OFED 4.1"
    ),
    "req_remote_access_errors_total": (
        "The number of times requester detected remote access errors. The counters was added "
        "in MLNX_OFED 4.1"
    ),
    "req_remote_invalid_request_errors_total": (
        "The number of times requester detected remote invalid request errors. The counters "
        "was added in MLNX_OFED 4.1"
    ),
    "resp_cqes_errors_total": (
        "The number of times responder detected CQEs completed with errors. The counters was "
        "added in MLNX_OFED 4.1"
    ),
    "resp_cqes_flush_errors_total": (
        "The number of times responder detected CQEs completed with flushed errors. The "
        "counters was added in MLNX_OFED 4.1"
    ),
    "resp_local_length_errors_total": (
        "The number of times responder detected local length errors. The counters was added "
        "in MLNX_OFED 4.1"
    ),
    "resp_remote_access_errors_total": (
        "The number of times responder detected remote access errors. The counters was added "
        "in MLNX_OFED 4.1"
    ),
    "rnr_nak_retry_packets_received_total": (
        "The number of received RNR NAK packets. The QP retry limit was not exceeded."
    ),
    "roce_adp_retransmits_total": (
        "The number of adaptive retransmissions for RoCE traffic. The counter was added in "
        "MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0"
    ),
    "roce_adp_retransmits_timeout_total": (
        "The number of times RoCE traffic reached timeout due to adaptive retransmission. The "
        "counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0"
    ),
    "roce_slow_restart_used_total": (
        "The number of times RoCE slow restart was used. The counter was added in MLNX_OFED "
        "rev 5.0-1.0.0.0 and kernel v5.6.0"
    ),
    "roce_slow_restart_cnps_total": (
        "The number of times RoCE slow restart generated CNP packets. The counter was added in "
        "MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0"
    ),
    "roce_slow_restart_total": (
        "The number of times RoCE slow restart changed state to slow restart. The counter was "
        "added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0"
    ),
    "rp_cnp_packets_handled_total": (
        "The number of CNP packets handled by the Reaction Point HCA to throttle the "
        "transmission rate. The counters was added in MLNX_OFED 4.1"
    ),
    "rp_cnp_ignored_packets_received_total": (
        "The number of CNP packets received and ignored by the Reaction Point HCA. This counter "
        "should not raise if RoCE Congestion Control was enabled in the network. If this "
        "counter raise, verify that ECN was enabled on the adapter."
    ),
    "rx_atomic_requests_total": "The number of received ATOMIC request for the associated QPs.",
    "rx_dct_connect_requests_total": (
        "The number of received connection requests for the associated DCTs."
    ),
    "rx_read_requests_total": "The number of received READ requests for the associated QPs.",
    "rx_write_requests_total": "The number of received WRITE requests for the associated QPs.",
    "rx_icrc_encapsulated_errors_total": (
        "The number of RoCE packets with ICRC errors. This counter was added in MLNX_OFED 4.4 "
        "and kernel 4.19"
    ),
}
# Families in node_exporter's emission order for one port (the exposition sorts them anyway).
_PORT_METRICS = (
    "state_id",
    "physical_state_id",
    "rate_bytes_per_second",
    *_LEGACY_COUNTERS.values(),
    *_COUNTERS.values(),
    *_HW_COUNTERS.values(),
)

# Go's strconv.ParseFloat decimal syntax, for the number in "rate".
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass
class _Port:
    number: int
    state_id: int
    physical_state_id: int
    rate: int  # bytes per second
    values: dict[str, int] = field(default_factory=dict)  # metric name -> value


@dataclass
class _Device:
    name: str
    firmware_version: str
    board_id: str
    hca_type: str
    ports: list[_Port]


def parse_state(text: str) -> int:
    """The ID of a ``state``/``phys_state`` value such as ``4: ACTIVE``; ValueError otherwise."""
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"failed to split {text!r} into 'ID: NAME'")
    return _parse_uint32(parts[0].strip())


def parse_rate(text: str) -> int:
    """``rate`` (``100 Gb/sec (4X EDR)``) in bytes per second, computed as procfs does.

    procfs parses the number as a float32 and then multiplies it by 125000000, truncating.
    """
    number, space, _ = text.partition(" ")
    if not space or _DECIMAL.fullmatch(number.strip()) is None:
        raise ValueError(f"failed to parse rate {text!r}")
    try:
        gigabits: float = struct.unpack("f", struct.pack("f", float(number)))[0]
    except OverflowError:
        gigabits = math.inf
    if not math.isfinite(gigabits):
        raise ValueError(f"rate {text!r} is out of range")
    return int(gigabits * 125000000)


def _parse_uint32(text: str) -> int:
    """Go's ``strconv.ParseUint(text, 10, 32)``."""
    if not text.isascii() or not text.isdigit() or int(text) >= 1 << 32:
        raise ValueError(f"invalid unsigned 32-bit integer {text!r}")
    return int(text)


def _read_optional(path: str) -> str:
    """An info attribute not every driver exposes: empty when absent."""
    try:
        return kernelfs.read_sysfs_attribute(path)
    except FileNotFoundError:
        return ""


def _read_counters(directory: str, names: dict[str, str], into: dict[str, int]) -> None:
    """Parse the known counter files of one ``counters``-like directory into ``into``."""
    with os.scandir(directory) as entries:
        # Regular files only, as procfs (a symlink or subdirectory is not a counter).
        files = [e.name for e in entries if e.name in names and e.is_file(follow_symlinks=False)]
    for file in files:
        try:
            text = kernelfs.read_sysfs_attribute(f"{directory}/{file}")
        except OSError as exc:
            if exc.errno in _SKIPPED_COUNTER_ERRNOS:
                continue
            raise
        try:
            value = kernelfs.parse_uint(text)
        except ValueError:
            if _NO_PMA in text:
                continue
            raise ValueError(f"{directory}/{file}: not a counter: {text!r}") from None
        if file in _WORD_COUNTERS:
            value = (value * 4) & _UINT64_MASK
        into[names[file]] = value


def _read_port(path: str, port: str) -> _Port:
    number = _parse_uint32(port)
    # procfs requires link_layer although node_exporter does not export it.
    kernelfs.read_bytes(f"{path}/link_layer")
    state = kernelfs.read_text(f"{path}/state")
    phys_state = kernelfs.read_text(f"{path}/phys_state")
    rate = kernelfs.read_text(f"{path}/rate")
    result = _Port(number, parse_state(state), parse_state(phys_state), parse_rate(rate))
    # Which directories exist depends on the driver, not the (possibly renamed) HCA name.
    if os.path.exists(f"{path}/counters"):
        _read_counters(f"{path}/counters", _COUNTERS, result.values)
        with contextlib.suppress(FileNotFoundError):  # only kernels before 4.5 have it
            _read_counters(f"{path}/counters_ext", _LEGACY_COUNTERS, result.values)
    if os.path.exists(f"{path}/hw_counters"):
        _read_counters(f"{path}/hw_counters", _HW_COUNTERS, result.values)
    lifespan = result.values.get("lifespan_seconds")
    if lifespan is not None:
        # hw_counters/lifespan is in milliseconds; node_exporter divides as integers.
        result.values["lifespan_seconds"] = lifespan // 1000
    return result


def _read_device(base: str, name: str) -> _Device:
    path = f"{base}/{name}"
    # fw_ver is exposed by all InfiniBand drivers since kernel 4.10.
    firmware_version = kernelfs.read_sysfs_attribute(f"{path}/fw_ver")
    board_id = _read_optional(f"{path}/board_id")
    hca_type = _read_optional(f"{path}/hca_type")
    ports: dict[int, _Port] = {}
    for port in os.listdir(f"{path}/ports"):
        parsed = _read_port(f"{path}/ports/{port}", port)
        ports[parsed.number] = parsed
    return _Device(name, firmware_version, board_id, hca_type, [ports[n] for n in sorted(ports)])


@register("infiniband")
class InfiniBandCollector:
    """node_exporter's ``--collector.infiniband.device-include``/``-exclude`` are the
    ``device_include``/``device_exclude`` regexes (unset by default, as upstream)."""

    def __init__(
        self, cfg: HostMetricsConfig, *, device_include: str = "", device_exclude: str = ""
    ) -> None:
        self._devices = NameFilter(exclude=device_exclude, include=device_include)

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("class/infiniband")
        try:
            devices = [_read_device(base, name) for name in sorted(os.listdir(base))]
        except FileNotFoundError as exc:
            # Anything missing short of a counter file: node_exporter reports no data at all.
            raise NoDataError(f"InfiniBand class incomplete: {exc}") from None
        info = GaugeFamily(
            "node_infiniband_info",
            "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
            labels=["device", "board_id", "firmware_version", "hca_type"],
        )
        families: dict[str, GaugeFamily | CounterFamily] = {
            name: (GaugeFamily if name in _GAUGES else CounterFamily)(
                f"node_infiniband_{name}", _HELP[name], labels=["device", "port"]
            )
            for name in _PORT_METRICS
        }
        for device in devices:
            if self._devices.ignored(device.name):
                continue
            info.add_metric(
                [device.name, device.board_id, device.firmware_version, device.hca_type], 1
            )
            for port in device.ports:
                labels = [device.name, str(port.number)]
                families["state_id"].add_metric(labels, port.state_id)
                families["physical_state_id"].add_metric(labels, port.physical_state_id)
                families["rate_bytes_per_second"].add_metric(labels, port.rate)
                for name, value in port.values.items():
                    families[name].add_metric(labels, value)
        return [family for family in (info, *families.values()) if family.rows]
