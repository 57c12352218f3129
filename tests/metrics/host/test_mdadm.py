"""mdadm against node_exporter's own fixture: its mdstat, its sysfs arrays, its expected output."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
from prometheus_client import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.metrics.host.hosttree import FakeHost

FIXTURES = Path(__file__).parent / "fixtures"
MDSTAT = (FIXTURES / "mdstat_node_exporter").read_text()
EXPECTED = (FIXTURES / "mdadm_node_exporter.prom").read_text()

# procfs's sysfs fixture (sysfs/mdraid_test.go): md0 has no redundancy, so no `degraded`.
MD_SYSFS: dict[str, str] = {}
for device, level, raid_disks, degraded in (
    ("md0", "raid0", 2, None),
    ("md1", "raid1", 2, 0),
    ("md10", "raid10", 4, 0),
    ("md4", "raid4", 3, 0),
    ("md5", "raid5", 3, 1),
    ("md6", "raid6", 4, 1),
):
    MD_SYSFS[f"block/{device}/md/level"] = level
    MD_SYSFS[f"block/{device}/md/raid_disks"] = str(raid_disks)
    if degraded is not None:
        MD_SYSFS[f"block/{device}/md/degraded"] = str(degraded)


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path)
    host.write(host.procfs, {"mdstat": MDSTAT})
    host.write(host.sysfs, MD_SYSFS)
    return host


Samples = dict[str, set[tuple[tuple[tuple[str, str], ...], float]]]


def samples_of(metrics: Iterable[Metric]) -> Samples:
    """Sample name -> {(sorted labels, value)}: order-free, like GatherAndCompare."""
    out: Samples = {}
    for family in metrics:
        assert family.type == "gauge", family.name
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            out.setdefault(sample.name, set()).add((key, float(sample.value)))
    return out


def test_mdadm_output_equals_node_exporter_for_its_fixture(host: FakeHost) -> None:
    families = host.collect("mdadm")
    got = samples_of(families.by_name.values())
    want = samples_of(text_string_to_metric_families(EXPECTED))
    assert got.keys() == want.keys()
    for name in want:
        assert got[name] == want[name], name


def test_md_state_reports_resync_for_pending_and_delayed_resyncs(host: FakeHost) -> None:
    families = host.collect("mdadm")
    # resync=PENDING on an auto-read-only array, resync=DELAYED behind another array.
    for device in ("md11", "md9"):
        assert families.value("node_md_state", device=device, state="resync") == 1
        assert families.value("node_md_blocks_synced", device=device) == 0


def test_reshaping_array_has_no_state_but_reports_synced_blocks(host: FakeHost) -> None:
    host.write(
        host.procfs,
        {
            "mdstat": (
                "Personalities : [raid5]\n"
                "md2 : active raid5 sdd[3] sdc[2] sdb[1] sda[0]\n"
                "      2093056 blocks super 1.2 level 5, 512k chunk, algorithm 2 [4/4] [UUUU]\n"
                "      [====>................]  reshape = 22.9% (240128/1046528) "
                "finish=0.8min speed=16008K/sec\n"
                "\n"
                "unused devices: <none>\n"
            )
        },
    )
    families = host.collect("mdadm")
    assert {v for _, v in families.samples("node_md_state")} == {0.0}
    assert families.value("node_md_blocks_synced", device="md2") == 240128


def test_raid_disks_and_degraded_follow_sysfs_not_mdstat(host: FakeHost) -> None:
    # md5 is in sysfs only; a failed member shows up as degraded=1 there.
    families = host.collect("mdadm")
    assert families.value("node_md_raid_disks", device="md5") == 3
    assert families.value("node_md_degraded", device="md5") == 1
    assert "md5" not in families.label_values("node_md_disks_required", "device")
    assert families.value("node_md_degraded", device="md0") == 0  # raid0: never degraded


def test_array_without_raid_disks_loses_only_its_sysfs_series(host: FakeHost) -> None:
    host.remove(host.sysfs, "block/md1/md/raid_disks")
    host.write(host.sysfs, {"block/sda/queue/rotational": "1"})  # not an md device
    families = host.collect("mdadm")
    assert families.label_values("node_md_raid_disks", "device") == {
        "md0",
        "md10",
        "md4",
        "md5",
        "md6",
    }
    assert families.value("node_md_blocks", device="md3") == 5853468288
