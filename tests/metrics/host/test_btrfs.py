"""btrfs device error counters from sysfs (devinfo/<devid>/error_stats)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.metrics.host.hosttree import BTRFS, FakeHost

UUID = BTRFS.rsplit("/", 1)[1]
# As fs/btrfs/sysfs.c prints it (kernel 5.14+).
ERROR_STATS = "write_errs 3\nread_errs 5\nflush_errs 1\ncorruption_errs 2\ngeneration_errs 0\n"


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path)
    host.write(
        host.sysfs,
        {
            f"{BTRFS}/devinfo/1/error_stats": ERROR_STATS,
            f"{BTRFS}/devices/loop25/dev": "7:25",
        },
    )
    host.write(host.udev, {"b7:25": "E:ID_FS_TYPE=btrfs\nE:ID_FS_UUID_SUB=5f2c0a1e-6b7d\n"})
    return host


def test_single_device_errors_carry_node_exporter_labels(host: FakeHost) -> None:
    families = host.collect("btrfs")
    assert families.type("node_btrfs_device_errors_total") == "counter"
    labels = {"uuid": UUID, "device": "loop25", "btrfs_dev_uuid": "5f2c0a1e-6b7d"}
    got = {s["type"]: v for s, v in families.samples("node_btrfs_device_errors_total")}
    assert got == {"write": 3, "read": 5, "flush": 1, "corruption": 2, "generation": 0}
    assert families.value("node_btrfs_device_errors_total", type="read", **labels) == 5


def test_device_uuid_is_empty_without_udev(host: FakeHost) -> None:
    host.remove(host.udev, "b7:25")
    families = host.collect("btrfs")
    assert families.label_values("node_btrfs_device_errors_total", "btrfs_dev_uuid") == {""}


def test_invalid_stats_and_multi_device_filesystems_have_no_error_series(
    host: FakeHost,
) -> None:
    host.write(host.sysfs, {f"{BTRFS}/devinfo/1/error_stats": "invalid"})
    assert "node_btrfs_device_errors_total" not in host.collect("btrfs")

    # Two members: sysfs cannot tell which devid is which block device.
    host.write(
        host.sysfs,
        {
            f"{BTRFS}/devinfo/1/error_stats": ERROR_STATS,
            f"{BTRFS}/devinfo/2/error_stats": ERROR_STATS,
            f"{BTRFS}/devices/loop26/size": "20971520",
        },
    )
    families = host.collect("btrfs")
    assert "node_btrfs_device_errors_total" not in families
    assert families.label_values("node_btrfs_device_size_bytes", "device") == {"loop25", "loop26"}


def test_kernel_without_error_stats_keeps_allocation_metrics(host: FakeHost) -> None:
    host.remove(host.sysfs, f"{BTRFS}/devinfo")
    families = host.collect("btrfs")
    assert "node_btrfs_device_errors_total" not in families
    assert families.value("node_btrfs_global_rsv_size_bytes", uuid=UUID) == 16777216
