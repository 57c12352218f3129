"""bcache against node_exporter's sys.ttar bcache fixtures and its e2e-output.txt lines."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import agent.metrics.host.bcache  # noqa: F401  (registers "bcache")
from agent.metrics.host.bcache import dehumanize
from agent.metrics.host.registry import registrations
from tests.metrics.host.hosttree import FakeHost

FIXTURES = Path(__file__).parent / "fixtures" / "bcache"
UUID = "deaddd54-c735-46d5-868e-f331c5fd7c74"
CACHE_SET = f"fs/bcache/{UUID}"
# node_exporter's e2e test scrapes with --collector.bcache.priorityStats; its default is off.
PRIORITY_STATS = {
    "node_bcache_priority_stats_metadata_percent",
    "node_bcache_priority_stats_unused_percent",
}
# node_exporter collector/fixtures/e2e-output.txt, its node_bcache_* families, by exposed name.
EXPECTED = {
    m.name + "_total" if m.type == "counter" else m.name: m
    for m in text_string_to_metric_families((FIXTURES / "node_exporter.prom").read_text())
}


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path)
    # bdev0 and cache0 are symlinks into sys/devices/.../block/sd{b,c}/bcache, as on a kernel.
    shutil.copytree(FIXTURES / "sys", host.sysfs, symlinks=True, dirs_exist_ok=True)
    return host


def labelled(samples: list[tuple[dict[str, str], float]]) -> set[tuple[tuple[str, str], ...]]:
    return {(*sorted(labels.items()), ("value", repr(value))) for labels, value in samples}


def test_bcache_is_registered_and_enabled_by_default() -> None:
    assert registrations()["bcache"].default_enabled


def test_output_equals_node_exporter_e2e_without_priority_stats(host: FakeHost) -> None:
    assert (host.sysfs / CACHE_SET / "bdev0").is_symlink()
    families = host.collect("bcache")
    assert set(families.by_name) == set(EXPECTED) - PRIORITY_STATS
    for name in families.by_name:
        got, want = families.by_name[name], EXPECTED[name]
        assert (got.type, got.documentation) == (want.type, want.documentation), name
        want_samples = [(s.labels, float(s.value)) for s in want.samples]
        assert labelled(families.samples(name)) == labelled(want_samples), name


def test_hprint_figures_and_upstream_units(host: FakeHost) -> None:
    families = host.collect("bcache")
    bdev = {"uuid": UUID, "backing_device": "bdev0"}
    # writeback_rate_debug: "rate: 1.1M/sec", "target: 20.4G", "proportional: 427.5k", ...
    assert families.value("node_bcache_writeback_rate", **bdev) == 1150976
    assert families.value("node_bcache_dirty_target_bytes", **bdev) == 21894266880
    assert families.value("node_bcache_writeback_rate_proportional_term", **bdev) == 437748
    assert families.value("node_bcache_writeback_rate_integral_term", **bdev) == 808960
    assert families.value("node_bcache_writeback_change", **bdev) == 329204
    # btree_read_average_duration_us 1305, scaled by 1e-9 like node_exporter.
    assert families.value("node_bcache_btree_read_average_duration_seconds", uuid=UUID) == 1.305e-06
    assert families.type("node_bcache_cache_hits_total") == "counter"
    assert families.value("node_bcache_cache_hits_total", **bdev) == 546
    cache = {"uuid": UUID, "cache_device": "cache0"}
    assert families.value("node_bcache_metadata_written_bytes_total", **cache) == 512


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("546", 546),
        ("0.0k", 0),
        ("512", 512),
        ("2.0M", 2 << 20),
        # The digits after the point are divided by 10.24, then the product truncated.
        ("1.5k", 1524),
        ("20.4G", 21894266880),
        ("1.10k", 2024),
        ("3x", 0),  # procfs multiplies by 0 for a suffix bch_hprint never prints
    ],
)
def test_dehumanize_reads_like_procfs(text: str, value: int) -> None:
    assert dehumanize(text) == value


def test_negative_controller_terms_keep_their_sign(host: FakeHost) -> None:
    host.write(
        host.sysfs,
        {
            f"{CACHE_SET}/bdev0/writeback_rate_debug": (
                "rate:\t\t4.0k/sec\ndirty:\t\t0.0k\ntarget:\t\t1.0G\nproportional:\t-427.5k\n"
                "integral:\t-12\nchange:\t\t-1.0k/sec\nnext io:\t-1519ms\n"
            )
        },
    )
    families = host.collect("bcache")
    bdev = {"uuid": UUID, "backing_device": "bdev0"}
    assert families.value("node_bcache_writeback_rate", **bdev) == 4096
    assert families.value("node_bcache_writeback_rate_proportional_term", **bdev) == -437748
    assert families.value("node_bcache_writeback_rate_integral_term", **bdev) == -12
    assert families.value("node_bcache_writeback_change", **bdev) == -1024


def test_priority_stats_are_never_read(host: FakeHost) -> None:
    host.write(host.sysfs, {f"{CACHE_SET}/cache0/priority_stats": "Unused:\t\tgarbage%\n"})
    families = host.collect("bcache")
    assert not PRIORITY_STATS & set(families.by_name)
    assert "node_bcache_io_errors" in families


def test_readaheads_are_left_out_when_the_kernel_has_none(host: FakeHost) -> None:
    # Linux 5.13 removed stats_*/cache_readaheads; an absent attribute reads 0.
    host.remove(host.sysfs, f"{CACHE_SET}/bdev0/stats_total/cache_readaheads")
    families = host.collect("bcache")
    assert "node_bcache_cache_readaheads_total" not in families
    assert families.value("node_bcache_cache_hits_total", uuid=UUID, backing_device="bdev0") == 546


def test_absent_attribute_reads_zero(host: FakeHost) -> None:
    host.write(host.sysfs, {f"{CACHE_SET}/congested": "3"})
    assert host.collect("bcache").value("node_bcache_congested", uuid=UUID) == 3
    host.remove(host.sysfs, f"{CACHE_SET}/congested", f"{CACHE_SET}/internal")
    families = host.collect("bcache")
    assert families.value("node_bcache_congested", uuid=UUID) == 0
    assert families.value("node_bcache_btree_nodes", uuid=UUID) == 0


@pytest.mark.parametrize(
    ("relative", "content"),
    [
        ("bdev0/dirty_data", "lots"),
        ("cache0/written", ""),  # an empty reply
        ("bdev0/writeback_rate_debug", "rate:\t\tfast/sec\n"),
    ],
)
def test_unparsable_value_fails_the_collector_like_procfs(
    host: FakeHost, relative: str, content: str
) -> None:
    (host.sysfs / CACHE_SET / relative).write_text(content)
    with pytest.raises(ValueError, match=relative.split("/")[-1]):
        host.collect("bcache")


def test_missing_writeback_rate_debug_fails_the_collector(host: FakeHost) -> None:
    host.remove(host.sysfs, f"{CACHE_SET}/bdev0/writeback_rate_debug")
    with pytest.raises(FileNotFoundError):
        host.collect("bcache")


def test_every_cache_set_and_device_is_labelled(host: FakeHost) -> None:
    other = "0f0e7d3c-1b2a-4c5d-8e9f-a0b1c2d3e4f5"
    shutil.copytree(host.sysfs / CACHE_SET, host.sysfs / "fs/bcache" / other, symlinks=True)
    host.write(host.sysfs, {f"fs/bcache/{other}/tree_depth": "2"})
    (host.sysfs / "fs/bcache" / other / "cache1").symlink_to("cache0")
    families = host.collect("bcache")
    assert families.value("node_bcache_tree_depth", uuid=other) == 2
    assert families.value("node_bcache_tree_depth", uuid=UUID) == 0
    assert {
        (s["uuid"], s["cache_device"]) for s, _ in families.samples("node_bcache_io_errors")
    } == {
        (UUID, "cache0"),
        (other, "cache0"),
        (other, "cache1"),
    }
    assert families.label_values("node_bcache_dirty_data_bytes", "backing_device") == {"bdev0"}


def test_no_cache_set_is_success_with_no_series_like_node_exporter(host: FakeHost) -> None:
    host.remove(host.sysfs, "fs/bcache")
    assert not host.collect("bcache").by_name
    # The module loaded, nothing registered: only its control files.
    host.write(host.sysfs, {"fs/bcache/register": "", "fs/bcache/pendings_cleanup": ""})
    assert not host.collect("bcache").by_name
