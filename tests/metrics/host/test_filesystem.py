"""filesystem: mountinfo parsing, node_exporter's filters, errors, and hung mounts."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent.metrics.host.filesystem import FilesystemCollector, parse_mountinfo
from tests.metrics.host.hosttree import FakeHost, Families


class FakeStatfs:
    """statfs(2) stand-in: fixed numbers per path, optional errors and hangs."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.errors: dict[str, OSError] = {}
        self.hang: dict[str, threading.Event] = {}

    def __call__(self, path: str) -> Any:
        self.calls.append(path)
        if path in self.hang:
            self.hang[path].wait()
        if path in self.errors:
            raise self.errors[path]
        return SimpleNamespace(
            f_bsize=4096, f_blocks=1000, f_bfree=600, f_bavail=500, f_files=100, f_ffree=40
        )


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


def collect(host: FakeHost, collector: FilesystemCollector) -> Families:
    return Families(collector.collect(host.context()))


def test_mounts_filters_labels_and_sizes(host: FakeHost) -> None:
    statfs = FakeStatfs()
    collector = FilesystemCollector(host.config(), statfs=statfs)
    families = collect(host, collector)
    # /proc, /sys and overlay under /var/lib/docker are excluded; tmpfs and nfs are kept;
    # "/" mounted twice is reported once; \040 in mountinfo is a space.
    assert families.label_values("node_filesystem_size_bytes", "mountpoint") == {
        "/",
        "/run",
        "/mnt/my data",
        "/srv/nfs",
    }
    root = {"device": "/dev/vda", "mountpoint": "/", "fstype": "ext4", "device_error": ""}
    assert families.value("node_filesystem_size_bytes", **root) == 1000 * 4096
    assert families.value("node_filesystem_free_bytes", **root) == 600 * 4096
    assert families.value("node_filesystem_avail_bytes", **root) == 500 * 4096
    assert families.value("node_filesystem_files", **root) == 100
    assert families.value("node_filesystem_files_free", **root) == 40
    assert families.value("node_filesystem_device_error", **root) == 0
    assert families.value("node_filesystem_readonly", **root) == 0
    ro = {"device": "/dev/vdb", "mountpoint": "/mnt/my data", "fstype": "ext4", "device_error": ""}
    assert families.value("node_filesystem_readonly", **ro) == 1
    assert (
        families.value(
            "node_filesystem_mount_info",
            device="/dev/vdb",
            major="254",
            minor="1",
            mountpoint="/mnt/my data",
        )
        == 1
    )
    assert {families.type(name) for name in families.by_name} == {"gauge"}
    assert sorted(statfs.calls) == sorted(
        str(host.rootfs) + p for p in ("/", "/run", "/mnt/my data", "/srv/nfs")
    )


def test_configured_excludes_replace_the_defaults(host: FakeHost) -> None:
    collector = FilesystemCollector(
        host.config(
            filesystem_mount_points_exclude="^/(run|srv)($|/)",
            filesystem_fs_types_exclude="^(proc|sysfs|overlay)$",
        ),
        statfs=FakeStatfs(),
    )
    assert collect(host, collector).label_values("node_filesystem_size_bytes", "mountpoint") == {
        "/",
        "/mnt/my data",
    }


def test_statfs_error_reports_device_error_and_readonly_only(host: FakeHost) -> None:
    statfs = FakeStatfs()
    statfs.errors[str(host.rootfs) + "/srv/nfs"] = PermissionError(13, os.strerror(13))
    families = collect(host, FilesystemCollector(host.config(), statfs=statfs))
    labels = {
        "device": "server:/export",
        "mountpoint": "/srv/nfs",
        "fstype": "nfs4",
        "device_error": "permission denied",
    }
    assert families.value("node_filesystem_device_error", **labels) == 1
    assert families.value("node_filesystem_readonly", **labels) == 0
    assert "/srv/nfs" not in families.label_values("node_filesystem_size_bytes", "mountpoint")


def test_hung_statfs_times_out_is_not_retried_and_recovers(host: FakeHost) -> None:
    statfs = FakeStatfs()
    nfs = str(host.rootfs) + "/srv/nfs"
    statfs.hang[nfs] = threading.Event()
    collector = FilesystemCollector(host.config(filesystem_stat_timeout=0.3), statfs=statfs)
    try:
        start = time.monotonic()
        first = collect(host, collector)
        assert time.monotonic() - start < 5  # bounded by the timeout, not by the dead server
        stuck = {
            "device": "server:/export",
            "mountpoint": "/srv/nfs",
            "fstype": "nfs4",
            "device_error": "mountpoint timeout",
        }
        assert first.value("node_filesystem_device_error", **stuck) == 1
        # The healthy mounts were stat'ed by other workers meanwhile.
        assert first.label_values("node_filesystem_size_bytes", "mountpoint") == {
            "/",
            "/run",
            "/mnt/my data",
        }

        second = collect(host, collector)
        assert statfs.calls.count(nfs) == 1  # stuck: no second statfs while the first hangs
        assert second.value("node_filesystem_device_error", **stuck) == 1
    finally:
        statfs.hang[nfs].set()  # the server came back: the hung call returns
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        third = collect(host, collector)
        if "/srv/nfs" in third.label_values("node_filesystem_size_bytes", "mountpoint"):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the mount stayed stuck after its statfs returned")
    assert (
        third.value(
            "node_filesystem_device_error",
            device="server:/export",
            mountpoint="/srv/nfs",
            fstype="nfs4",
            device_error="",
        )
        == 0
    )


def test_many_hung_mounts_do_not_starve_the_rest(host: FakeHost) -> None:
    lines = [f"{40 + i} 27 0:{60 + i} / /dead{i} rw - nfs4 dead{i}:/x rw" for i in range(6)]
    host.write(
        host.procfs, {"1/mountinfo": "27 1 254:0 / / rw - ext4 /dev/vda rw\n" + "\n".join(lines)}
    )
    statfs = FakeStatfs()
    release = threading.Event()
    for i in range(6):
        statfs.hang[f"{host.rootfs}/dead{i}"] = release
    collector = FilesystemCollector(host.config(filesystem_stat_timeout=0.3), statfs=statfs)
    try:
        for _ in range(3):  # every scrape still answers, and "/" is always measured
            families = collect(host, collector)
            assert families.label_values("node_filesystem_size_bytes", "mountpoint") == {"/"}
            assert families.label_values("node_filesystem_device_error", "mountpoint") == {"/"} | {
                f"/dead{i}" for i in range(6)
            }
    finally:
        release.set()


def test_rootfs_prefix_is_stripped_and_used_for_statfs(host: FakeHost) -> None:
    # The agent's own mount namespace in a container: the host's / bind-mounted at rootfs.
    rootfs = str(host.rootfs)
    host.remove(host.procfs, "1/mountinfo")
    host.write(
        host.procfs,
        {
            "self/mountinfo": (
                "500 400 0:50 / / rw - overlay overlay rw\n"
                f"501 500 254:0 / {rootfs} ro,relatime - ext4 /dev/vda ro\n"
                f"502 501 254:2 / {rootfs}/home rw,relatime - ext4 /dev/vdc rw\n"
            )
        },
    )
    statfs = FakeStatfs()
    families = collect(host, FilesystemCollector(host.config(), statfs=statfs))
    assert families.label_values("node_filesystem_size_bytes", "mountpoint") == {"/", "/home"}
    assert sorted(statfs.calls) == [rootfs + "/", rootfs + "/home"]


def test_parse_mountinfo_handles_optional_fields_and_escapes() -> None:
    mounts = parse_mountinfo(
        "36 35 98:0 /mnt1 /mnt\\040two\\011tab rw,noatime master:1 shared:2 "
        "- ext3 /dev/root rw,errors=continue\n"
        "garbage line\n"
    )
    assert len(mounts) == 1
    mount = mounts[0]
    assert (mount.mount_point, mount.fs_type, mount.device) == (
        "/mnt two\ttab",
        "ext3",
        "/dev/root",
    )
    assert (mount.major, mount.minor, mount.super_options) == ("98", "0", "rw,errors=continue")
