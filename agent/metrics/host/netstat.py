"""netstat: IP/TCP/UDP protocol counters from /proc/net/{netstat,snmp,snmp6}.

Every field becomes an untyped ``node_netstat_<Proto>_<Field>`` (node_exporter never typed
them) and only fields matching node_exporter 1.12's default field regex are exported.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import UntypedFamily
from agent.metrics.host.filters import NameFilter
from agent.metrics.host.registry import ScrapeContext, register

DEFAULT_FIELDS = (
    r"^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)"
    r"|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)"
    r"|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)"
    r"|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$"
)


def parse_snmp6(text: str) -> dict[str, str]:
    """snmp6: ``Ip6InOctets 128`` -> ``Ip6_InOctets``: the protocol ends at the first "6"."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        six = parts[0].find("6")
        if six == -1:
            continue
        out[f"{parts[0][: six + 1]}_{parts[0][six + 1 :]}"] = parts[1]
    return out


@register("netstat")
class NetstatCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        # Fields not matching the regex are the ones "ignored" by the include filter.
        self._fields = NameFilter(include=DEFAULT_FIELDS)
        # Header line -> [(column, metric name)] of the exported columns: the kernel's
        # header lines never change, so each is parsed and filtered once.
        self._columns: dict[str, list[tuple[int, str]]] = {}

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        families: list[Metric] = []
        for name in ("netstat", "snmp"):
            self._pairs(kernelfs.read_text(ctx.proc(f"net/{name}")), families)
        try:
            snmp6 = parse_snmp6(kernelfs.read_text(ctx.proc("net/snmp6")))
        except FileNotFoundError:
            snmp6 = {}  # IPv6 disabled
        for key, value in snmp6.items():
            if not self._fields.ignored(key):
                families.append(_untyped(key, value))
        return families

    def _pairs(self, text: str, families: list[Metric]) -> None:
        """netstat/snmp: a ``Proto: names...`` line followed by ``Proto: values...``."""
        headers: dict[str, str] = {}
        for line in text.splitlines():
            proto, _, _ = line.partition(" ")
            header = headers.pop(proto, None)
            if header is None:
                headers[proto] = line
                continue
            columns = self._columns.get(header)
            if columns is None:
                columns = self._columns[header] = self._select(header)
            values = line.split()
            if columns and len(values) == len(header.split()):
                for column, key in columns:
                    families.append(_untyped(key, values[column]))

    def _select(self, header: str) -> list[tuple[int, str]]:
        names = header.split()
        proto = names[0].rstrip(":")
        selected = []
        for column, name in enumerate(names[1:], 1):
            key = f"{proto}_{name}"
            if not self._fields.ignored(key):
                selected.append((column, key))
        return selected


def _untyped(key: str, value: str) -> Metric:
    return UntypedFamily(
        "node_netstat_" + key, f"Statistic {key.replace('_', '')}.", value=float(value)
    )
