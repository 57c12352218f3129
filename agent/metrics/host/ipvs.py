"""ipvs: IP Virtual Server totals and per-backend state from /proc/net/ip_vs_stats and ip_vs.

Parsed like prometheus/procfs ``IPVSStats`` and ``IPVSBackendStatus``; both files exist
only while the ``ip_vs`` module is loaded, so a missing ``ip_vs_stats`` is "no data".
Backends with identical label values are summed, as upstream: that happens when
:data:`BACKEND_LABELS` drops labels (``--collector.ipvs.backend-labels``) and with the
SCTP quirk below.

Malformed input fails the scrape where procfs returns an error (an unparsable address,
port or counter, a short ``ip_vs_stats``) and is skipped where procfs skips it (short or
unknown lines). procfs knows TCP, UDP and FWM services only: real servers listed under
an SCTP service are reported under the service before it, as node_exporter does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily, GaugeFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

FULL_BACKEND_LABELS = (
    "local_address",
    "local_port",
    "remote_address",
    "remote_port",
    "proto",
    "local_mark",
)
# node_exporter's --collector.ipvs.backend-labels (comma separated, "" for none); read
# when the collector is built. Labels come out in FULL_BACKEND_LABELS order whatever the
# order given, as upstream.
BACKEND_LABELS = ",".join(FULL_BACKEND_LABELS)


_TOTALS = (
    ("node_ipvs_connections", "The total number of connections made."),
    ("node_ipvs_incoming_packets", "The total number of incoming packets."),
    ("node_ipvs_outgoing_packets", "The total number of outgoing packets."),
    ("node_ipvs_incoming_bytes", "The total amount of incoming data."),
    ("node_ipvs_outgoing_bytes", "The total amount of outgoing data."),
)


def parse_backend_labels(setting: str) -> list[str]:
    """The label names to keep, in upstream order; ValueError names the unknown ones."""
    wanted = {label for label in setting.split(",") if label}
    unknown = wanted.difference(FULL_BACKEND_LABELS)
    if unknown:
        raise ValueError(f'unknown IPVS backend labels: "{", ".join(sorted(unknown))}"')
    return [label for label in FULL_BACKEND_LABELS if label in wanted]


def parse_ipvs_stats(text: str) -> list[int]:
    """Connections, packets in/out, bytes in/out: the third line, hex columns."""
    lines = text.split("\n", 3)
    if len(lines) != 4:
        raise ValueError("ip_vs_stats corrupt: too short")
    fields = lines[2].split()
    if len(fields) != 5:
        raise ValueError("ip_vs_stats corrupt: unexpected number of fields")
    return [kernelfs.parse_uint(field, 16) for field in fields]


def _address_port(text: str) -> tuple[str, int]:
    """``C0A80016:0CEA`` or ``[2620:0000:...:0001]:0050`` as the kernel prints them.

    The address is formatted like Go's ``net.IP.String`` (an IPv4-mapped IPv6 address
    prints as IPv4), so label values equal node_exporter's.
    """
    if len(text) == 13:
        address = str(ipaddress.IPv4Address(kernelfs.parse_uint(text[:8], 16)))
    elif len(text) == 46:
        v6 = ipaddress.IPv6Address(text[1:40])
        address = str(v6.ipv4_mapped or v6)
    else:
        raise ValueError(f"unexpected IP:Port {text!r}")
    port = kernelfs.parse_uint(text[-4:], 16)
    return address, port


# (local_address, local_port, remote_address, remote_port, proto, local_mark) and
# (active, inactive, weight)
Backend = tuple[tuple[str, str, str, str, str, str], tuple[int, int, int]]


def parse_ipvs_backends(text: str) -> list[Backend]:
    """One entry per real server, with the virtual service it is listed under."""
    backends: list[Backend] = []
    proto = local_mark = local_address = ""
    local_port = 0
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        kind = fields[0]
        if kind in ("IP", "Prot") or (len(fields) > 1 and fields[1] == "RemoteAddress:Port"):
            continue
        if kind in ("TCP", "UDP"):
            if len(fields) < 2:
                continue
            proto, local_mark = kind, ""
            local_address, local_port = _address_port(fields[1])
        elif kind == "FWM":
            if len(fields) < 2:
                continue
            proto, local_mark = kind, fields[1]
            local_address, local_port = "", 0
        elif kind == "->":
            if len(fields) < 6:
                continue
            remote_address, remote_port = _address_port(fields[1])
            weight, active, inactive = (kernelfs.parse_uint(field, 10) for field in fields[3:6])
            backends.append(
                (
                    (
                        local_address,
                        str(local_port),
                        remote_address,
                        str(remote_port),
                        proto,
                        local_mark,
                    ),
                    (active, inactive, weight),
                )
            )
    return backends


@register("ipvs")
class IPVSCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        self._labels = parse_backend_labels(BACKEND_LABELS)
        self._label_columns = [FULL_BACKEND_LABELS.index(label) for label in self._labels]

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        try:
            stats_text = kernelfs.read_text(ctx.proc("net/ip_vs_stats"))
        except FileNotFoundError as exc:
            raise NoDataError("ip_vs module not loaded") from exc
        totals = [
            CounterFamily(name, help_text, value=value)
            for (name, help_text), value in zip(_TOTALS, parse_ipvs_stats(stats_text), strict=True)
        ]
        backends = parse_ipvs_backends(kernelfs.read_text(ctx.proc("net/ip_vs")))

        sums: dict[tuple[str, ...], list[int]] = {}
        for labels, counts in backends:
            key = tuple(labels[column] for column in self._label_columns)
            total = sums.setdefault(key, [0, 0, 0])
            for i, count in enumerate(counts):
                total[i] += count
        active = GaugeFamily(
            "node_ipvs_backend_connections_active",
            "The current active connections by local and remote address.",
            labels=self._labels,
        )
        inactive = GaugeFamily(
            "node_ipvs_backend_connections_inactive",
            "The current inactive connections by local and remote address.",
            labels=self._labels,
        )
        weight = GaugeFamily(
            "node_ipvs_backend_weight",
            "The current backend weight by local and remote address.",
            labels=self._labels,
        )
        for key, (n_active, n_inactive, n_weight) in sums.items():
            values = list(key)
            active.add_metric(values, n_active)
            inactive.add_metric(values, n_inactive)
            weight.add_metric(values, n_weight)
        return [*totals, active, inactive, weight]
