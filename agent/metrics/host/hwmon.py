"""hwmon: temperatures, fans, voltages, currents and power from /sys/class/hwmon.

Follows node_exporter's hwmon_linux.go naming quirks on purpose (dashboards depend on
them): the ``chip`` label is derived from the ``device`` symlink
(``platform_coretemp_0``), else the ``name`` file, else ``hwmonN``; ``temp1_input`` is
``node_hwmon_temp_celsius`` while ``temp1_crit_alarm`` is
``node_hwmon_temp_crit_alarm_celsius``; ``node_hwmon_chip_names`` maps chip to the
human name for ``group_left`` joins.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily, GaugeFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

_SENSOR_FILE = re.compile(r"^(?P<type>[^0-9]+)(?P<id>[0-9]*)?(_(?P<property>.+))?$")
_INVALID = re.compile(r"[^a-z0-9:_]")
_SENSOR_TYPES = frozenset(
    (
        "vrm",
        "beep_enable",
        "update_interval",
        "in",
        "cpu",
        "fan",
        "pwm",
        "temp",
        "curr",
        "power",
        "energy",
        "humidity",
        "intrusion",
    )
)
_LABELS = ["chip", "sensor"]


def clean_name(name: str) -> str:
    return _INVALID.sub("_", name.strip().lower()).strip("_")


def chip_name(directory: str) -> str:
    """node_exporter's ``hwmonName``: stable across module load order, unlike hwmonN."""
    device = os.path.join(directory, "device")
    if os.path.exists(device):
        real = os.path.realpath(device)
        parent, dev_name = os.path.split(real)
        dev_type = os.path.basename(parent)
        clean_dev, clean_type = clean_name(dev_name), clean_name(dev_type)
        if clean_type and clean_dev:
            return f"{clean_type}_{clean_dev}"
        if clean_dev:
            return clean_dev
    name = kernelfs.try_value(os.path.join(directory, "name"))
    if name and clean_name(name):
        return clean_name(name)
    return clean_name(os.path.basename(os.path.realpath(directory)))


def _collect_sensor_files(directory: str, data: dict[str, dict[str, str]]) -> None:
    for filename in kernelfs.list_dir(directory):
        match = _SENSOR_FILE.match(filename)
        if not match or match.group("type") not in _SENSOR_TYPES:
            continue
        value = kernelfs.try_value(os.path.join(directory, filename))
        if value is None:
            continue  # write-only or a sensor that refuses to read right now
        sensor = match.group("type") + (match.group("id") or "")
        data.setdefault(sensor, {})[match.group("property") or ""] = value


class _Families:
    def __init__(self) -> None:
        self.by_name: dict[str, GaugeFamily | CounterFamily] = {}

    def add(
        self, name: str, help_text: str, labels: list[str], value: float, counter: bool = False
    ) -> None:
        family = self.by_name.get(name)
        if family is None:
            family = self.by_name[name] = (CounterFamily if counter else GaugeFamily)(
                name, help_text, labels=_LABELS
            )
        family.add_metric(labels, value)


def _emit(
    chip: str, sensor: str, data: dict[str, str], out: _Families, labels_out: GaugeFamily
) -> None:
    match = _SENSOR_FILE.match(sensor)
    sensor_type = match.group("type") if match else sensor
    labels = [chip, sensor]
    if "label" in data:
        labels_out.add_metric([chip, sensor, data["label"]], 1)
    if sensor_type == "beep_enable":
        out.add(
            "node_hwmon_beep_enabled",
            "Hardware beep enabled",
            labels,
            1.0 if data.get("") == "1" else 0.0,
        )
        return
    if sensor_type == "vrm":
        with contextlib.suppress(ValueError):
            out.add(
                "node_hwmon_voltage_regulator_version",
                "Hardware voltage regulator",
                labels,
                float(data.get("", "")),
            )
        return
    for element, raw in sorted(data.items()):
        if element == "label":
            continue
        name = sensor_type
        if element == "input":
            if "" in data:
                name += "_input"
        elif element:
            name += "_" + clean_name(element)
        try:
            value = float(raw)
        except ValueError:
            continue
        metric = "node_hwmon_" + name
        if element in ("fault", "alarm"):
            out.add(metric, f"Hardware sensor {element} status ({sensor_type})", labels, value)
        elif element == "beep":
            out.add(
                metric + "_enabled", "Hardware monitor sensor has beeping enabled", labels, value
            )
        elif sensor_type in ("in", "cpu"):
            out.add(
                metric + "_volts",
                f"Hardware monitor for voltage ({element})",
                labels,
                value * 0.001,
            )
        elif sensor_type == "temp" and element != "type":
            out.add(
                metric + "_celsius",
                f"Hardware monitor for temperature ({element or 'input'})",
                labels,
                value * 0.001,
            )
        elif sensor_type == "curr":
            out.add(
                metric + "_amps", f"Hardware monitor for current ({element})", labels, value * 0.001
            )
        elif sensor_type == "energy":
            out.add(
                metric + "_joule_total",
                f"Hardware monitor for joules used so far ({element})",
                labels,
                value / 1e6,
                counter=True,
            )
        elif sensor_type == "power" and element == "accuracy":
            out.add(
                "node_hwmon_power_accuracy_ratio",
                "Hardware monitor power meter accuracy, as a ratio",
                labels,
                value / 1e6,
            )
        elif sensor_type == "power" and element in (
            "average_interval",
            "average_interval_min",
            "average_interval_max",
        ):
            out.add(
                f"node_hwmon_power_{element}_seconds",
                f"Hardware monitor power usage update interval ({element})",
                labels,
                value * 0.001,
            )
        elif sensor_type == "power":
            out.add(
                metric + "_watt",
                f"Hardware monitor for power usage in watts ({element})",
                labels,
                value / 1e6,
            )
        elif sensor_type == "humidity":
            out.add(metric, f"Hardware monitor for humidity ({element})", labels, value * 0.001)
        elif sensor_type == "fan" and element in ("input", "min", "max", "target"):
            out.add(
                metric + "_rpm",
                f"Hardware monitor for fan revolutions per minute ({element})",
                labels,
                value,
            )
        else:
            out.add(metric, f"Hardware monitor {sensor_type} element {element}", labels, value)


@register("hwmon")
class HwmonCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("class/hwmon")
        if not os.path.isdir(base):
            raise NoDataError("no /sys/class/hwmon on this system")
        out = _Families()
        sensor_labels = GaugeFamily(
            "node_hwmon_sensor_label",
            "Label for given chip and sensor",
            labels=["chip", "sensor", "label"],
        )
        chip_names = GaugeFamily(
            "node_hwmon_chip_names",
            "Annotation metric for human-readable chip names",
            labels=["chip", "chip_name"],
        )
        for entry in kernelfs.list_dir(base):
            directory = f"{base}/{entry}"
            chip = chip_name(directory)
            data: dict[str, dict[str, str]] = {}
            _collect_sensor_files(directory, data)
            device = f"{directory}/device"
            if os.path.isdir(device):
                _collect_sensor_files(device, data)  # pre-3.x drivers keep sensors there
            for sensor in sorted(data):
                _emit(chip, sensor, data[sensor], out, sensor_labels)
            name = kernelfs.try_value(f"{directory}/name")
            if name:
                chip_names.add_metric([chip, name], 1)
        return [*out.by_name.values(), sensor_labels, chip_names]
