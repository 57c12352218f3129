"""netdev: per-interface traffic counters, node_exporter's legacy ``node_network_*`` names.

By default the counters come from one rtnetlink RTM_GETLINK dump (node_exporter 1.12's
default, ``--collector.netdev.netlink``); it sees the agent's network namespace, so the
agent needs host networking, exactly like node_exporter. ``netdev_netlink: false`` reads
``<procfs>/net/dev`` instead, which has no ``receive_nohandler``. Both give the same
numbers: the kernel's /proc/net/dev folds the detailed error counters the same way as
node_exporter's legacy mapping (drop = dropped + missed, frame = frame + length + over +
crc, carrier = carrier + aborted + heartbeat + window).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily
from agent.metrics.host.filters import NameFilter
from agent.metrics.host.registry import ScrapeContext, register

# /proc/net/dev column order, which is also the order families are emitted in.
_RECEIVE = ("bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast")
_TRANSMIT = ("bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed")
_PROC_KEYS = tuple(f"receive_{k}" for k in _RECEIVE) + tuple(f"transmit_{k}" for k in _TRANSMIT)

# linux/netlink.h, linux/rtnetlink.h, linux/if_link.h
_RTM_GETLINK = 18
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_NLM_F_REQUEST = 0x1
_NLM_F_DUMP = 0x300
_IFLA_IFNAME = 3
_IFLA_STATS = 7
_IFLA_STATS64 = 23
_NLMSG_HEADER = struct.Struct("=IHHII")
_RTA_HEADER = struct.Struct("=HH")
_IFINFOMSG_LEN = 16
_STATS_FIELDS = 24  # rtnl_link_stats64 up to rx_nohandler


def parse_proc_net_dev(text: str) -> dict[str, dict[str, int]]:
    devices: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        values = rest.split()
        if len(values) != 16:
            continue
        devices[name.strip()] = dict(zip(_PROC_KEYS, map(int, values), strict=True))
    return devices


def _legacy(s: tuple[int, ...]) -> dict[str, int]:
    """rtnl_link_stats64 -> node_exporter's legacy keys (netdev_common.go ``legacy``)."""
    return {
        "receive_bytes": s[2],
        "receive_packets": s[0],
        "receive_errs": s[4],
        "receive_drop": s[6] + s[15],
        "receive_fifo": s[14],
        "receive_frame": s[13] + s[10] + s[11] + s[12],
        "receive_compressed": s[21],
        "receive_multicast": s[8],
        "receive_nohandler": s[23],
        "transmit_bytes": s[3],
        "transmit_packets": s[1],
        "transmit_errs": s[5],
        "transmit_drop": s[7],
        "transmit_fifo": s[18],
        "transmit_colls": s[9],
        "transmit_carrier": s[17] + s[16] + s[19] + s[20],
        "transmit_compressed": s[22],
    }


def read_netlink_stats() -> dict[str, dict[str, int]]:
    """One RTM_GETLINK dump of every link in this network namespace."""
    with socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
    ) as sock:
        sock.bind((0, 0))
        ifinfomsg = bytes(_IFINFOMSG_LEN)  # AF_UNSPEC, every link
        sequence = 1
        request = (
            _NLMSG_HEADER.pack(
                _NLMSG_HEADER.size + len(ifinfomsg),
                _RTM_GETLINK,
                _NLM_F_REQUEST | _NLM_F_DUMP,
                sequence,
                0,
            )
            + ifinfomsg
        )
        sock.sendto(request, (0, 0))
        devices: dict[str, dict[str, int]] = {}
        while True:
            data = sock.recv(1 << 16)
            offset = 0
            while offset + _NLMSG_HEADER.size <= len(data):
                length, kind, _, seq, _ = _NLMSG_HEADER.unpack_from(data, offset)
                if length < _NLMSG_HEADER.size:
                    return devices
                if seq == sequence:
                    if kind == _NLMSG_DONE:
                        return devices
                    if kind == _NLMSG_ERROR:
                        (errno,) = struct.unpack_from("=i", data, offset + _NLMSG_HEADER.size)
                        raise OSError(-errno, "RTM_GETLINK failed")
                    if kind == 16:  # RTM_NEWLINK
                        _parse_link(data, offset, length, devices)
                offset += (length + 3) & ~3


def _parse_link(data: bytes, start: int, length: int, out: dict[str, dict[str, int]]) -> None:
    end = start + length
    offset = start + _NLMSG_HEADER.size + _IFINFOMSG_LEN
    name: str | None = None
    stats: tuple[int, ...] | None = None
    stats32: tuple[int, ...] | None = None
    while offset + 4 <= end:
        rta_len, rta_type = _RTA_HEADER.unpack_from(data, offset)
        if rta_len < 4:
            break
        payload = data[offset + 4 : offset + rta_len]
        if rta_type == _IFLA_IFNAME:
            name = payload.split(b"\0", 1)[0].decode("utf-8", "replace")
        elif rta_type == _IFLA_STATS64:
            count = min(len(payload) // 8, _STATS_FIELDS)
            stats = struct.unpack_from(f"={count}Q", payload)
        elif rta_type == _IFLA_STATS:
            count = min(len(payload) // 4, _STATS_FIELDS)
            stats32 = struct.unpack_from(f"={count}I", payload)
        offset += (rta_len + 3) & ~3
    chosen = stats if stats is not None else stats32
    if name is None or chosen is None:
        return  # node_exporter also skips links without statistics
    if len(chosen) < _STATS_FIELDS:
        chosen = chosen + (0,) * (_STATS_FIELDS - len(chosen))
    out[name] = _legacy(chosen)


@register("netdev")
class NetdevCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        self._filter = NameFilter(cfg.netdev_device_exclude)
        self._netlink = cfg.netdev_netlink

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        if self._netlink:
            try:
                devices = read_netlink_stats()
            except OSError:
                # No rtnetlink here (a seccomp profile may forbid AF_NETLINK): the same
                # counters from /proc, without receive_nohandler.
                devices = parse_proc_net_dev(kernelfs.read_text(ctx.proc("net/dev")))
        else:
            devices = parse_proc_net_dev(kernelfs.read_text(ctx.proc("net/dev")))
        families: dict[str, CounterFamily] = {}
        for device in sorted(devices):
            if self._filter.ignored(device):
                continue
            for key, value in devices[device].items():
                family = families.get(key)
                if family is None:
                    family = families[key] = CounterFamily(
                        f"node_network_{key}_total",
                        f"Network device statistic {key}.",
                        labels=["device"],
                    )
                family.add_metric([device], value)
        return list(families.values())
