"""os: ``node_os_info`` / ``node_os_version`` from the host's os-release(5).

Read through ``rootfs`` (``/etc/os-release``, then ``/usr/lib/os-release``) and parsed
again only when the file's mtime or size changes: distribution upgrades rewrite it,
nothing else does.
"""

from __future__ import annotations

import calendar
import os
import re
import time
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

_PATHS = ("/etc/os-release", "/usr/lib/os-release")
_INFO_KEYS = (
    ("build_id", "BUILD_ID"),
    ("id", "ID"),
    ("id_like", "ID_LIKE"),
    ("image_id", "IMAGE_ID"),
    ("image_version", "IMAGE_VERSION"),
    ("name", "NAME"),
    ("pretty_name", "PRETTY_NAME"),
    ("variant", "VARIANT"),
    ("variant_id", "VARIANT_ID"),
    ("version", "VERSION"),
    ("version_codename", "VERSION_CODENAME"),
    ("version_id", "VERSION_ID"),
)
_VERSION = re.compile(r"^[0-9]+\.?[0-9]*")


def parse_os_release(text: str) -> dict[str, str]:
    """Shell-style ``KEY=value`` assignments; quotes removed, backslash escapes honoured."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = re.sub(r"\\(.)", r"\1", value)
        values[key.strip()] = value
    return values


@register("os")
class OSReleaseCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        self._cache_key: tuple[str, int, int] | None = None
        self._families: list[Metric] = []

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        for path in _PATHS:
            full = ctx.root(path)
            try:
                st = os.stat(full)
            except FileNotFoundError:
                continue
            key = (full, st.st_mtime_ns, st.st_size)
            if key != self._cache_key:
                self._families = self._build(parse_os_release(kernelfs.read_text(full)))
                self._cache_key = key
            return self._families
        raise NoDataError("no os-release file")

    @staticmethod
    def _build(release: dict[str, str]) -> list[Metric]:
        info = GaugeFamily(
            "node_os_info",
            "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, "
            "image_version, name, pretty_name, variant, variant_id, version, version_codename, "
            "version_id.",
            labels=[label for label, _ in _INFO_KEYS],
        )
        info.add_metric([release.get(key, "") for _, key in _INFO_KEYS], 1)
        families: list[Metric] = [info]
        match = _VERSION.match(release.get("VERSION_ID", ""))
        if match and float(match.group(0)) > 0:
            version = GaugeFamily(
                "node_os_version",
                "Metric containing the major.minor part of the OS version.",
                labels=["id", "id_like", "name"],
            )
            version.add_metric(
                [release.get("ID", ""), release.get("ID_LIKE", ""), release.get("NAME", "")],
                float(match.group(0)),
            )
            families.append(version)
        support_end = release.get("SUPPORT_END")
        if support_end:
            try:
                end = calendar.timegm(time.strptime(support_end, "%Y-%m-%d"))
            except ValueError:
                pass
            else:
                families.append(
                    GaugeFamily(
                        "node_os_support_end_timestamp_seconds",
                        "Metric containing the end-of-life date timestamp of the OS.",
                        value=end,
                    )
                )
        return families
