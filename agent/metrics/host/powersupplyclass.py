"""powersupplyclass: batteries, AC adapters and UPSes from /sys/class/power_supply.

Each supply's ``uevent`` carries every property in one read (``POWER_SUPPLY_<NAME>=v``);
units follow node_exporter: the kernel's micro-units (uA, uV, uWh, uW) become base units,
temperatures are tenths of a degree.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric
from prometheus_client.core import GaugeMetricFamily

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register

_PLAIN = {
    "authentic": "authentic",
    "calibrate": "calibrate",
    "capacity": "capacity",
    "capacity_alert_max": "capacity_alert_max",
    "capacity_alert_min": "capacity_alert_min",
    "cycle_count": "cyclecount",
    "online": "online",
    "present": "present",
    "time_to_empty_now": "time_to_empty_seconds",
    "time_to_full_now": "time_to_full_seconds",
}
_MICRO = {
    "current_boot": "current_boot",
    "current_max": "current_max",
    "current_now": "current_ampere",
    "energy_empty": "energy_empty",
    "energy_empty_design": "energy_empty_design",
    "energy_full": "energy_full",
    "energy_full_design": "energy_full_design",
    "energy_now": "energy_watthour",
    "voltage_boot": "voltage_boot",
    "voltage_max": "voltage_max",
    "voltage_max_design": "voltage_max_design",
    "voltage_min": "voltage_min",
    "voltage_min_design": "voltage_min_design",
    "voltage_now": "voltage_volt",
    "voltage_ocv": "voltage_ocv",
    "charge_control_limit": "charge_control_limit",
    "charge_control_limit_max": "charge_control_limit_max",
    "charge_counter": "charge_counter",
    "charge_empty": "charge_empty",
    "charge_empty_design": "charge_empty_design",
    "charge_full": "charge_full",
    "charge_full_design": "charge_full_design",
    "charge_now": "charge_ampere",
    "charge_term_current": "charge_term_current",
    "constant_charge_current": "constant_charge_current",
    "constant_charge_current_max": "constant_charge_current_max",
    "constant_charge_voltage": "constant_charge_voltage",
    "constant_charge_voltage_max": "constant_charge_voltage_max",
    "precharge_current": "precharge_current",
    "input_current_limit": "input_current_limit",
    "power_now": "power_watt",
}
_TENTHS = {
    "temp": "temp_celsius",
    "temp_alert_max": "temp_alert_max_celsius",
    "temp_alert_min": "temp_alert_min_celsius",
    "temp_ambient": "temp_ambient_celsius",
    "temp_ambient_max": "temp_ambient_max_celsius",
    "temp_ambient_min": "temp_ambient_min_celsius",
    "temp_max": "temp_max_celsius",
    "temp_min": "temp_min_celsius",
}
_INFO = (
    "capacity_level",
    "charge_type",
    "health",
    "manufacturer",
    "model_name",
    "serial_number",
    "status",
    "technology",
    "type",
    "usb_type",
    "scope",
)


def parse_uevent(text: str) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.startswith("POWER_SUPPLY_"):
            props[key[len("POWER_SUPPLY_") :].lower()] = value
    return props


@register("powersupplyclass")
class PowerSupplyClassCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("class/power_supply")
        families: dict[str, GaugeFamily] = {}
        infos: list[Metric] = []

        def add(suffix: str, supply: str, value: float) -> None:
            family = families.get(suffix)
            if family is None:
                family = families[suffix] = GaugeFamily(
                    f"node_power_supply_{suffix}",
                    f"{suffix} value of /sys/class/power_supply/<power_supply>.",
                    labels=["power_supply"],
                )
            family.add_metric([supply], value)

        for supply in kernelfs.list_dir(base):
            try:
                props = parse_uevent(kernelfs.read_text(f"{base}/{supply}/uevent"))
            except OSError:
                continue
            for table, scale in ((_PLAIN, 1.0), (_MICRO, 1e-6), (_TENTHS, 0.1)):
                for key, suffix in table.items():
                    raw = props.get(key)
                    if raw is None:
                        continue
                    try:
                        add(suffix, supply, int(raw) * scale)
                    except ValueError:
                        continue
            labels = ["power_supply"]
            values = [supply]
            for key in _INFO:
                if props.get(key):
                    labels.append(key)
                    values.append(props[key])
            # prometheus_client's family: the info series of each supply have their own
            # label sets, merged into one family below.
            info = GaugeMetricFamily(
                "node_power_supply_info",
                "info of /sys/class/power_supply/<power_supply>.",
                labels=labels,
            )
            info.add_metric(values, 1)
            infos.append(info)
        merged: list[Metric] = list(families.values())
        if infos:
            # One family, whatever label subset each supply has.
            first = infos[0]
            for other in infos[1:]:
                first.samples.extend(other.samples)
            merged.append(first)
        return merged
