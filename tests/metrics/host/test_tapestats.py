"""tapestats against node_exporter's sys.ttar class/scsi_tape and its node_tape_* output."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import agent.metrics.host.tapestats as tapestats
from agent.metrics.host.registry import NoDataError, registrations
from tests.metrics.host.hosttree import FakeHost

FIXTURES = Path(__file__).parent / "fixtures" / "tapestats"
DEVICES = "devices/pci0000:00/0000:00:00.0/host0/port-0:0/end_device-0:0/target0:0:0/0:0:0:0"
# node_exporter's sys.ttar: one drive under its eight names, every one with these stats.
DRIVE_NAMES = ("nst0", "nst0a", "nst0l", "nst0m", "st0", "st0a", "st0l", "st0m")
STATS = {
    "in_flight": "1",
    "io_ns": "9247011087720",
    "other_cnt": "1409",
    "read_byte_cnt": "979383912",
    "read_cnt": "3741",
    "read_ns": "33788355744",
    "resid_cnt": "19",
    "write_byte_cnt": "1496246784000",
    "write_cnt": "53772916",
    "write_ns": "5233597394395",
}


def add_drive(host: FakeHost, name: str, stats: dict[str, str]) -> None:
    """/sys/class/scsi_tape/<name> as a symlink into /sys/devices, as on a real kernel."""
    target = host.sysfs / DEVICES / "scsi_tape" / name
    target.mkdir(parents=True, exist_ok=True)
    host.write(target / "stats", stats)
    link = host.sysfs / "class/scsi_tape" / name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path)
    for name in DRIVE_NAMES:
        add_drive(host, name, STATS)
    return host


def test_tapestats_is_registered_and_enabled_by_default() -> None:
    assert registrations()["tapestats"].default_enabled


def test_output_equals_node_exporter_e2e_for_its_fixtures(host: FakeHost) -> None:
    families = host.collect("tapestats")
    expected = list(text_string_to_metric_families((FIXTURES / "node_exporter.prom").read_text()))
    assert len(expected) == len(families.by_name) == 10
    for want in expected:
        name = want.name + "_total" if want.type == "counter" else want.name
        got = families.by_name[name]
        assert (got.type, got.documentation) == (want.type, want.documentation), name
        # Only st<N> counts: the nst/mode aliases are the same drive.
        assert families.samples(name) == [(s.labels, float(s.value)) for s in want.samples]


def test_nanosecond_counters_become_seconds(host: FakeHost) -> None:
    families = host.collect("tapestats")
    assert families.value("node_tape_io_time_seconds_total", device="st0") == 9247.01108772
    assert families.value("node_tape_write_time_seconds_total", device="st0") == 5233.597394395
    assert families.type("node_tape_io_now") == "gauge"


def test_every_st_drive_is_reported(host: FakeHost) -> None:
    add_drive(host, "st12", {**STATS, "read_cnt": "7"})
    families = host.collect("tapestats")
    assert families.samples("node_tape_reads_completed_total") == [
        ({"device": "st0"}, 3741.0),
        ({"device": "st12"}, 7.0),
    ]


def test_ignored_devices_setting_drops_matching_drives(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_drive(host, "st1", STATS)
    monkeypatch.setattr(tapestats, "IGNORED_DEVICES", "0")  # unanchored, as Go's MatchString
    families = host.collect("tapestats")
    assert families.label_values("node_tape_io_now", "device") == {"st1"}


def test_missing_and_unknown_stats_files_like_procfs(host: FakeHost) -> None:
    # A counter the kernel lacks reads 0; a file procfs does not know is ignored; values
    # are parsed with base prefixes like procfs's ValueParser.
    host.remove(host.sysfs, f"{DEVICES}/scsi_tape/st0/stats/resid_cnt")
    host.write(
        host.sysfs / DEVICES / "scsi_tape/st0/stats",
        {"future_cnt": "not a number", "other_cnt": "0x10", "read_cnt": "010"},
    )
    families = host.collect("tapestats")
    assert families.value("node_tape_residual_total", device="st0") == 0
    assert families.value("node_tape_io_others_total", device="st0") == 16
    assert families.value("node_tape_reads_completed_total", device="st0") == 8


@pytest.mark.parametrize("value", ["", "12abc", "-1", "+1", "18446744073709551616", "09"])
def test_malformed_counter_fails_the_scrape_like_procfs(host: FakeHost, value: str) -> None:
    host.write(host.sysfs / DEVICES / "scsi_tape/st0/stats", {"write_cnt": value})
    with pytest.raises(ValueError):
        host.collect("tapestats")


def test_malformed_alias_is_not_read(host: FakeHost) -> None:
    host.write(host.sysfs / DEVICES / "scsi_tape/nst0/stats", {"write_cnt": "garbage"})
    assert host.collect("tapestats").value("node_tape_writes_completed_total", device="st0") > 0


def test_no_scsi_tape_class_means_no_data(host: FakeHost) -> None:
    host.remove(host.sysfs, "class/scsi_tape")
    with pytest.raises(NoDataError):
        host.collect("tapestats")


def test_empty_scsi_tape_class_reports_nothing(host: FakeHost) -> None:
    for name in DRIVE_NAMES:
        host.remove(host.sysfs, f"class/scsi_tape/{name}")
    families = host.collect("tapestats")
    assert all(not families.samples(name) for name in families.by_name)


def test_drive_without_stats_directory_means_no_data_like_upstream(host: FakeHost) -> None:
    # procfs hands the stats directory's ENOENT back unwrapped and node_exporter maps it
    # to ErrNoData, so a vanished drive (or a pre-4.2 kernel) silences the collector.
    host.remove(host.sysfs, f"{DEVICES}/scsi_tape/st0")
    with pytest.raises(NoDataError):
        host.collect("tapestats")


def test_unreadable_stats_file_fails_the_scrape(host: FakeHost) -> None:
    # procfs reads every entry of stats/; one it cannot read is an error, not "no data".
    (host.sysfs / DEVICES / "scsi_tape/st0/stats/broken").mkdir()
    with pytest.raises(IsADirectoryError):
        host.collect("tapestats")
