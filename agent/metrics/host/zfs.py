"""zfs: OpenZFS kstats from /proc/spl/kstat/zfs, like node_exporter's ``zfs_linux.go``.

Every row of a named kstat file (``arcstats``, ``zil``...) becomes an untyped
``node_zfs_<subsystem>_<row>`` whose help is the kstat path
(``kstat.zfs.misc.arcstats.hits``); each pool adds ``node_zfs_zpool_<field>{zpool}``
from ``<pool>/io``, ``node_zfs_zpool_dataset_<row>{zpool,dataset}`` from
``<pool>/objset-*`` and the gauge ``node_zfs_zpool_state{zpool,state}`` from
``<pool>/state``. Only uint64 and int64 rows are exported (objsets: uint64 only),
as upstream; strings and other kstat types are skipped. A value node_exporter cannot
parse fails the scrape, as it does there.

Known differences from node_exporter, on purpose: a pool whose files vanish between
listing and reading (``zpool export``) is skipped, where node_exporter means to ("ok to
ignore") but returns an error that fails the scrape; a truncated ``io`` values line fails
the scrape instead of panicking; the dataset label is the text after the type column,
where node_exporter searches the line for it and mislabels a dataset whose name also
occurs earlier in the line (pool ``data`` is found in ``dataset_name``); and ``zpool``
comes from the path even before the ``dataset_name`` row.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily, UntypedFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

# node_exporter subsystem -> kstat file (linuxPathMap). A file missing from this ZFS
# version is skipped: kstats arrive and leave with ZFS features.
_KSTATS = (
    ("zfs_abd", "abdstats"),
    ("zfs_arc", "arcstats"),
    ("zfs_dbuf", "dbufstats"),
    ("zfs_dmu_tx", "dmu_tx"),
    ("zfs_dnode", "dnodestats"),
    ("zfs_fm", "fm"),
    ("zfs_vdev_cache", "vdev_cache_stats"),
    ("zfs_vdev_mirror", "vdev_mirror_stats"),
    ("zfs_xuio", "xuio_stats"),
    ("zfs_zfetch", "zfetchstats"),
    ("zfs_zil", "zil"),
)
_POOL_STATES = ("online", "degraded", "faulted", "offline", "removed", "unavail", "suspended")

# KSTAT_DATA_* from OpenZFS lib/libspl/include/sys/kstat.h, as the type column prints them.
_KSTAT_INT64 = "3"
_KSTAT_UINT64 = "4"
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _uint64(text: str, key: str) -> int:
    try:
        return kernelfs.parse_uint(text, 10)
    except ValueError:
        raise ValueError(
            f"zfs: could not parse expected unsigned integer value for {key!r}: {text!r}"
        ) from None


def _int64(text: str, key: str) -> int:
    """Go's ``strconv.ParseInt(text, 10, 64)``: one optional sign, then ASCII digits."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if digits.isascii() and digits.isdigit():
        value = int(text)
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
    raise ValueError(f"zfs: could not parse expected signed integer value for {key!r}: {text!r}")


def _metric_name(row: str) -> str:
    return row.replace("-", "_")


def _named_rows(text: str, kstat: str) -> Iterable[tuple[str, list[str]]]:
    """``(line, fields)`` of a named kstat's rows after its ``name type data`` header.

    The line before the header is the kstat header (kid, type, flags, ndata...). A file
    without the header is an error, as in node_exporter.
    """
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.split() == ["name", "type", "data"]:
            for row in lines[i + 1 :]:
                fields = row.split()
                if len(fields) >= 3:
                    yield row, fields
            return
    raise ValueError(f"zfs: did not parse a single {kstat!r} metric")


def _kstat_families(subsystem: str, kstat: str, text: str) -> list[Metric]:
    families: list[Metric] = []
    for _, (row, kind, data, *_rest) in _named_rows(text, kstat):
        key = f"kstat.zfs.misc.{kstat}.{row}"
        if kind == _KSTAT_UINT64:
            value = _uint64(data, key)
        elif kind == _KSTAT_INT64:
            value = _int64(data, key)
        else:
            continue
        families.append(UntypedFamily(f"node_{subsystem}_{_metric_name(row)}", key, value=value))
    return families


class _PoolFamilies:
    """Per-pool families, one per name, filled pool by pool and returned in that order."""

    def __init__(self) -> None:
        self.io: dict[str, UntypedFamily] = {}
        self.dataset: dict[str, UntypedFamily] = {}
        self.state: GaugeFamily | None = None

    def add_io(self, pool: str, text: str) -> None:
        lines = text.split("\n")
        for i, line in enumerate(lines):
            fields = line.split()
            if len(fields) >= 12 and fields[0] == "nread":
                values = lines[i + 1].split() if i + 1 < len(lines) else []
                self._add_io_values(pool, fields, values)
                return

    def _add_io_values(self, pool: str, fields: list[str], values: list[str]) -> None:
        if not values:
            return  # header only: nothing to report, as upstream
        if len(values) < len(fields):
            raise ValueError(f"zfs: truncated io kstat for pool {pool!r}")
        for field, data in zip(fields, values, strict=False):
            key = f"kstat.zfs.misc.io.{field}"
            name = f"node_zfs_zpool_{_metric_name(field)}"
            family = self.io.get(name)
            if family is None:
                family = self.io[name] = UntypedFamily(name, key, labels=["zpool"])
            family.add_metric([pool], _uint64(data, key))

    def add_objset(self, pool: str, objset: str, text: str) -> None:
        dataset = ""
        for line, (row, kind, data, *_rest) in _named_rows(text, f"{pool}/{objset}"):
            if row == "dataset_name":
                # The name may hold spaces; keep it whole, trailing blanks included.
                dataset = line.split(None, 2)[2]
                continue
            if kind != _KSTAT_UINT64:
                continue
            key = f"kstat.zfs.misc.objset.{row}"
            name = f"node_zfs_zpool_dataset_{_metric_name(row)}"
            family = self.dataset.get(name)
            if family is None:
                family = self.dataset[name] = UntypedFamily(name, key, labels=["zpool", "dataset"])
            family.add_metric([pool, dataset], _uint64(data, key))

    def add_state(self, pool: str, text: str) -> None:
        actual = text.split("\n", 1)[0].rstrip("\r").lower()  # "ONLINE", "DEGRADED"...
        if self.state is None:
            self.state = GaugeFamily(
                "node_zfs_zpool_state", "kstat.zfs.misc.state", labels=["zpool", "state"]
            )
        for state in _POOL_STATES:
            self.state.add_metric([pool, state], 1 if actual == state else 0)

    def families(self) -> list[Metric]:
        out: list[Metric] = [*self.io.values(), *self.dataset.values()]
        if self.state is not None:
            out.append(self.state)
        return out


def _pools(base: str) -> list[str]:
    """Pool directories under the kstat root, sorted like node_exporter's globs."""
    try:
        with os.scandir(base) as entries:
            return sorted(entry.name for entry in entries if entry.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _try_read(path: str) -> str | None:
    """The file, or None when it cannot be opened: a kstat this ZFS lacks, a pool just exported."""
    try:
        return kernelfs.read_text(path)
    except OSError:
        return None


@register("zfs")
class ZFSCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.proc("spl/kstat/zfs")
        if not os.path.isdir(base):
            raise NoDataError(f"no {base} (zfs module not loaded)")
        out: list[Metric] = []
        for subsystem, kstat in _KSTATS:
            text = _try_read(f"{base}/{kstat}")
            if text is not None:
                out.extend(_kstat_families(subsystem, kstat, text))
        pools = _PoolFamilies()
        for pool in _pools(base):
            directory = f"{base}/{pool}"
            text = _try_read(f"{directory}/io")
            if text is not None:
                pools.add_io(pool, text)
            for name in kernelfs.list_dir(directory):
                if name.startswith("objset-"):
                    text = _try_read(f"{directory}/{name}")
                    if text is not None:
                        pools.add_objset(pool, name, text)
            text = _try_read(f"{directory}/state")
            if text is not None:
                pools.add_state(pool, text)
        out.extend(pools.families())
        return out
