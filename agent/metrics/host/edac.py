"""edac: memory controller error counters from /sys/devices/system/edac/mc."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily
from agent.metrics.host.registry import ScrapeContext, register


@register("edac")
class EDACCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("devices/system/edac/mc")
        ce = CounterFamily(
            "node_edac_correctable_errors_total",
            "Total correctable memory errors.",
            labels=["controller"],
        )
        ue = CounterFamily(
            "node_edac_uncorrectable_errors_total",
            "Total uncorrectable memory errors.",
            labels=["controller"],
        )
        csrow_ce = CounterFamily(
            "node_edac_csrow_correctable_errors_total",
            "Total correctable memory errors for this csrow.",
            labels=["controller", "csrow"],
        )
        csrow_ue = CounterFamily(
            "node_edac_csrow_uncorrectable_errors_total",
            "Total uncorrectable memory errors for this csrow.",
            labels=["controller", "csrow"],
        )
        channel_ce = CounterFamily(
            "node_edac_channel_correctable_errors_total",
            "Total correctable memory errors for this channel.",
            labels=["controller", "csrow", "channel", "dimm_label"],
        )
        for mc in kernelfs.list_dir(base):
            if not mc.startswith("mc") or not mc[2:].isdigit():
                continue
            controller = mc[2:]
            path = f"{base}/{mc}"
            ce.add_metric([controller], kernelfs.read_int(f"{path}/ce_count"))
            ue.add_metric([controller], kernelfs.read_int(f"{path}/ue_count"))
            # Errors the driver could not attribute to a csrow.
            csrow_ce.add_metric(
                [controller, "unknown"], kernelfs.read_int(f"{path}/ce_noinfo_count")
            )
            csrow_ue.add_metric(
                [controller, "unknown"], kernelfs.read_int(f"{path}/ue_noinfo_count")
            )
            for row in kernelfs.list_dir(path):
                if not row.startswith("csrow") or not row[5:].isdigit():
                    continue
                csrow = row[5:]
                row_path = f"{path}/{row}"
                csrow_ce.add_metric([controller, csrow], kernelfs.read_int(f"{row_path}/ce_count"))
                csrow_ue.add_metric([controller, csrow], kernelfs.read_int(f"{row_path}/ue_count"))
                for entry in kernelfs.list_dir(row_path):
                    # ch<N>_ce_count with its ch<N>_dimm_label
                    if entry.startswith("ch") and entry.endswith("_ce_count"):
                        channel = entry[2 : -len("_ce_count")]
                        count = kernelfs.try_int(f"{row_path}/{entry}")
                        if count is None:
                            continue
                        label = kernelfs.try_value(f"{row_path}/ch{channel}_dimm_label") or ""
                        channel_ce.add_metric([controller, csrow, channel, label], count)
        return [ce, ue, csrow_ce, csrow_ue, channel_ce]
