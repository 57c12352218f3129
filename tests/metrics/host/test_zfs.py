"""zfs against node_exporter's own kstat fixtures and its e2e-output.txt node_zfs_* lines."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import agent.metrics.host.zfs  # noqa: F401  (registers "zfs")
from agent.metrics.host.registry import NoDataError, registrations
from tests.metrics.host.hosttree import FakeHost

FIXTURES = Path(__file__).parent / "fixtures" / "zfs"
KSTAT = "spl/kstat/zfs"
# node_exporter collector/fixtures/e2e-output.txt, its node_zfs_* families only.
EXPECTED = {
    m.name: m for m in text_string_to_metric_families((FIXTURES / "node_exporter.prom").read_text())
}
HEADER = "6 1 0x01 3 144 5266997922 97951858082072\nname                            type data\n"


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path)
    shutil.copytree(FIXTURES / "kstat", host.procfs / KSTAT)
    return host


def labelled(samples: list[tuple[dict[str, str], float]]) -> set[tuple[tuple[str, str], ...]]:
    return {(*sorted(labels.items()), ("value", repr(value))) for labels, value in samples}


def test_zfs_is_registered_and_enabled_by_default() -> None:
    assert registrations()["zfs"].default_enabled


def test_output_equals_node_exporter_e2e_for_its_fixtures(host: FakeHost) -> None:
    families = host.collect("zfs")
    assert set(families.by_name) == set(EXPECTED)
    for name, want in EXPECTED.items():
        got = families.by_name[name]
        assert (got.type, got.documentation) == (want.type, want.documentation), name
        want_samples = [(s.labels, float(s.value)) for s in want.samples]
        assert labelled(families.samples(name)) == labelled(want_samples), name


def test_representative_kstats_keep_upstream_names_types_and_help(host: FakeHost) -> None:
    families = host.collect("zfs")
    assert families.type("node_zfs_arc_hits") == "unknown"  # exposed as untyped
    assert families.value("node_zfs_arc_hits") == 8772612
    assert families.by_name["node_zfs_arc_hits"].documentation == "kstat.zfs.misc.arcstats.hits"
    # KSTAT_DATA_INT64 (type 3) keeps its sign.
    assert families.value("node_zfs_arc_memory_available_bytes") == -9.223372036854776e17
    # Hyphens become underscores in the name only.
    assert families.value("node_zfs_fm_erpt_dropped") == 18
    assert families.by_name["node_zfs_fm_erpt_dropped"].documentation == (
        "kstat.zfs.misc.fm.erpt-dropped"
    )
    assert families.value("node_zfs_xuio_onloan_read_buf") == 32
    assert families.value("node_zfs_zpool_nread", zpool="pool1") == 1884160
    assert families.value("node_zfs_zpool_nread", zpool="poolz1") == 2826240
    assert families.by_name["node_zfs_zpool_nread"].documentation == "kstat.zfs.misc.io.nread"
    assert (
        families.value(
            "node_zfs_zpool_dataset_nread", zpool="pool3", dataset="pool3/dataset with  space"
        )
        == 28
    )
    assert families.by_name["node_zfs_zpool_dataset_nread"].documentation == (
        "kstat.zfs.misc.objset.nread"
    )
    assert families.type("node_zfs_zpool_state") == "gauge"
    assert families.value("node_zfs_zpool_state", zpool="poolz1", state="degraded") == 1
    assert families.value("node_zfs_zpool_state", zpool="pool2", state="suspended") == 1
    assert families.value("node_zfs_zpool_state", zpool="pool2", state="online") == 0
    # pool2 has only a state file: no io or dataset series.
    assert "pool2" not in families.label_values("node_zfs_zpool_nread", "zpool")


def test_host_without_zfs_module_has_no_data(tmp_path: Path) -> None:
    with pytest.raises(NoDataError):
        FakeHost(tmp_path).collect("zfs")


def test_kstat_missing_from_this_zfs_version_is_skipped(host: FakeHost) -> None:
    host.remove(host.procfs, f"{KSTAT}/dnodestats", f"{KSTAT}/xuio_stats")
    families = host.collect("zfs")
    assert not [name for name in families.by_name if name.startswith("node_zfs_dnode_")]
    assert families.value("node_zfs_arc_hits") == 8772612


def test_only_int64_and_uint64_rows_are_exported(host: FakeHost) -> None:
    host.write(
        host.procfs,
        {
            f"{KSTAT}/zil": HEADER + "zil_commit_count 4 13\n"
            "zil_int32 1 7\n"
            "zil_label 7 some text\n"
            "zil_delta 3 -5\n"
            "short 4\n"
        },
    )
    families = host.collect("zfs")
    got = {name for name in families.by_name if name.startswith("node_zfs_zil_")}
    assert got == {"node_zfs_zil_zil_commit_count", "node_zfs_zil_zil_delta"}
    assert families.value("node_zfs_zil_zil_delta") == -5


@pytest.mark.parametrize(
    "row",
    ["hits 4 12x", "hits 4 -1", "hits 4 18446744073709551616", "delta 3 9223372036854775808"],
)
def test_unparseable_value_fails_the_scrape_like_node_exporter(host: FakeHost, row: str) -> None:
    host.write(host.procfs, {f"{KSTAT}/arcstats": HEADER + row})
    with pytest.raises(ValueError, match="could not parse expected"):
        host.collect("zfs")


def test_kstat_without_header_fails_the_scrape_like_node_exporter(host: FakeHost) -> None:
    host.write(host.procfs, {f"{KSTAT}/zfetchstats": "hits 4 1\n"})
    with pytest.raises(ValueError, match="did not parse a single"):
        host.collect("zfs")


def test_pool_exported_between_listing_and_reading_is_skipped(host: FakeHost) -> None:
    # What a scrape sees when `zpool export` removes the files after the pool was listed.
    for name in ("io", "objset-1", "objset-2", "state"):
        host.remove(host.procfs, f"{KSTAT}/pool3/{name}")
    families = host.collect("zfs")
    assert families.label_values("node_zfs_zpool_nread", "zpool") == {"pool1", "poolz1"}
    assert "pool3" not in families.label_values("node_zfs_zpool_dataset_nread", "zpool")
    assert "pool3" not in families.label_values("node_zfs_zpool_state", "zpool")


def test_io_kstat_without_values_has_no_series_and_truncated_values_fail(
    host: FakeHost,
) -> None:
    io = (FIXTURES / "kstat/pool1/io").read_text().split("\n")
    host.write(host.procfs, {f"{KSTAT}/pool1/io": "\n".join(io[:2])})
    families = host.collect("zfs")
    assert families.label_values("node_zfs_zpool_nread", "zpool") == {"pool3", "poolz1"}

    host.write(host.procfs, {f"{KSTAT}/pool1/io": "\n".join([*io[:2], "1884160 3206144 22"])})
    with pytest.raises(ValueError, match="truncated io kstat"):
        host.collect("zfs")


def test_dataset_label_is_the_whole_name_even_when_it_occurs_earlier_in_the_line(
    host: FakeHost,
) -> None:
    # node_exporter finds "data" inside "dataset_name" and labels the dataset with the
    # whole line; the label here is the name the kstat prints.
    host.write(
        host.procfs,
        {
            f"{KSTAT}/data/objset-1": HEADER + "dataset_name 7 data\nnread 4 5\n",
            f"{KSTAT}/data/state": "ONLINE\n",
        },
    )
    families = host.collect("zfs")
    assert families.value("node_zfs_zpool_dataset_nread", zpool="data", dataset="data") == 5
    assert families.value("node_zfs_zpool_state", zpool="data", state="online") == 1


def test_empty_or_unknown_state_sets_every_state_to_zero(host: FakeHost) -> None:
    host.write(host.procfs, {f"{KSTAT}/pool1/state": "", f"{KSTAT}/pool3/state": "SPLIT\n"})
    families = host.collect("zfs")
    for pool in ("pool1", "pool3"):
        states = {
            labels["state"]: value
            for labels, value in families.samples("node_zfs_zpool_state")
            if labels["zpool"] == pool
        }
        assert states == dict.fromkeys(
            ("online", "degraded", "faulted", "offline", "removed", "unavail", "suspended"), 0
        )
