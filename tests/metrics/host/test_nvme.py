"""nvme namespaces: node_exporter's namespace families from /sys/class/nvme/<ctrl>/<ns>/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.metrics.host.hosttree import FakeHost

CTRL = "class/nvme/nvme0"


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path)
    host.write(
        host.sysfs,
        {
            # As procfs's fixture: multipath namespace path, 4 KiB blocks, ANA state set.
            f"{CTRL}/nvme0c0n1/nuse": "488281250",
            f"{CTRL}/nvme0c0n1/size": "3906250000",
            f"{CTRL}/nvme0c0n1/queue/logical_block_size": "4096",
            f"{CTRL}/nvme0c0n1/ana_state": "optimized",
            # A second namespace without ANA (a plain PCIe drive).
            f"{CTRL}/nvme0c0n2/nuse": "100",
            f"{CTRL}/nvme0c0n2/size": "1000",
            f"{CTRL}/nvme0c0n2/queue/logical_block_size": "512",
        },
    )
    return host


def test_namespace_families_multiply_blocks_by_logical_block_size(host: FakeHost) -> None:
    families = host.collect("nvme")
    ns1 = {"device": "nvme0", "nsid": "1"}
    assert families.value("node_nvme_namespace_info", ana_state="optimized", **ns1) == 1
    # node_exporter multiplies the sector-count `size` by the block size too.
    assert families.value("node_nvme_namespace_size_bytes", **ns1) == 3906250000 * 4096
    assert families.value("node_nvme_namespace_capacity_bytes", **ns1) == 3906250000 * 4096
    assert families.value("node_nvme_namespace_used_bytes", **ns1) == 488281250 * 4096
    assert families.value("node_nvme_namespace_logical_block_size_bytes", **ns1) == 4096
    for name in families.by_name:
        assert families.type(name) == "gauge"


def test_namespace_without_ana_state_reports_unknown(host: FakeHost) -> None:
    families = host.collect("nvme")
    assert (
        families.value("node_nvme_namespace_info", device="nvme0", nsid="2", ana_state="unknown")
        == 1
    )
    assert families.value("node_nvme_namespace_used_bytes", device="nvme0", nsid="2") == 51200


def test_only_multipath_style_namespace_entries_count(host: FakeHost) -> None:
    # nvme0n1 (no "c<n>") is what a kernel without NVMe multipath shows; node_exporter skips it.
    host.write(
        host.sysfs,
        {
            f"{CTRL}/nvme0n3/nuse": "1",
            f"{CTRL}/nvme0n3/size": "1",
            f"{CTRL}/nvme0n3/queue/logical_block_size": "512",
        },
    )
    families = host.collect("nvme")
    assert families.label_values("node_nvme_namespace_size_bytes", "nsid") == {"1", "2"}


def test_controller_without_namespaces_still_reports_info(host: FakeHost) -> None:
    host.remove(host.sysfs, f"{CTRL}/nvme0c0n1", f"{CTRL}/nvme0c0n2")
    families = host.collect("nvme")
    assert (
        families.value(
            "node_nvme_info",
            device="nvme0",
            firmware_revision="1B2QEXP7",
            model="Samsung SSD 970 PRO 512GB",
            serial="S680HF8N190894I",
            state="live",
            cntlid="1",
        )
        == 1
    )
    assert families.samples("node_nvme_namespace_info") == []


def test_namespace_missing_size_fails_the_collector(host: FakeHost) -> None:
    host.remove(host.sysfs, f"{CTRL}/nvme0c0n2/size")
    with pytest.raises(FileNotFoundError):
        host.collect("nvme")
