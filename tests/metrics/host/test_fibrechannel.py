"""fibrechannel against node_exporter's own fixture: its sys.ttar fc_host hosts and e2e output."""

from __future__ import annotations

from pathlib import Path

import pytest

import agent.metrics.host.fibrechannel  # noqa: F401
from agent.metrics.host.registry import NoDataError, registrations
from agent.metrics.kernelfs import parse_uint
from tests.metrics.host.hosttree import FakeHost, assert_same_as_node_exporter, sysfs_files

FIXTURE = Path(__file__).parent / "fixtures" / "fibrechannel"
HOST0 = "class/fc_host/host0"


# host0: an Emulex HBA with every attribute, dumped_frames unimplemented (all ones);
# host1: only port_state and speed, fcp_packet_aborts unimplemented.
SYSFS = sysfs_files(FIXTURE)


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path)
    host.write(host.sysfs, SYSFS)
    return host


def test_output_equals_node_exporter_for_its_fixture(host: FakeHost) -> None:
    assert_same_as_node_exporter(host.collect("fibrechannel"), FIXTURE)


def test_collector_is_enabled_by_default() -> None:
    assert registrations()["fibrechannel"].default_enabled


def test_counter_reading_all_ones_is_unimplemented_and_left_out(host: FakeHost) -> None:
    families = host.collect("fibrechannel")
    assert families.label_values("node_fibrechannel_dumped_frames_total", "fc_host") == {"host1"}
    assert families.label_values("node_fibrechannel_fcp_packet_aborts_total", "fc_host") == {
        "host0"
    }
    # Counters are hex in sysfs.
    assert families.value("node_fibrechannel_fcp_packet_aborts_total", fc_host="host0") == 0x13


def test_missing_attributes_are_empty_labels_and_ids_lose_their_0x(host: FakeHost) -> None:
    (sample,) = [
        labels
        for labels, _ in host.collect("fibrechannel").samples("node_fibrechannel_info")
        if labels["fc_host"] == "host0"
    ]
    assert sample["port_id"] == "000002"
    assert sample["port_name"] == "1000e0071bce95f2"
    assert sample["fabric_name"] == "0"
    (host1,) = [
        labels
        for labels, _ in host.collect("fibrechannel").samples("node_fibrechannel_info")
        if labels["fc_host"] == "host1"
    ]
    assert host1["port_type"] == host1["symbolic_name"] == host1["dev_loss_tmo"] == ""


@pytest.mark.parametrize("port_state", ["Unknown", None])
def test_host_with_unknown_port_state_reports_every_counter_as_zero(
    host: FakeHost, port_state: str | None
) -> None:
    if port_state is None:
        host.remove(host.sysfs, f"{HOST0}/port_state")
    else:
        host.write(host.sysfs, {f"{HOST0}/port_state": port_state})
    families = host.collect("fibrechannel")
    counters = [name for name in families.by_name if families.type(name) == "counter"]
    assert len(counters) == 14
    for name in counters:
        # Even dumped_frames, which reads all ones on this host.
        assert families.value(name, fc_host="host0") == 0, name


def test_host_without_statistics_reports_only_info(host: FakeHost) -> None:
    host.remove(host.sysfs, f"{HOST0}/statistics")
    families = host.collect("fibrechannel")
    assert families.label_values("node_fibrechannel_info", "fc_host") == {"host0", "host1"}
    assert families.label_values("node_fibrechannel_rx_frames_total", "fc_host") == {"host1"}


def test_missing_statistic_leaves_out_only_that_counter(host: FakeHost) -> None:
    # node_exporter dereferences a nil counter here and crashes; one counter less instead.
    host.remove(host.sysfs, f"{HOST0}/statistics/rx_frames")
    families = host.collect("fibrechannel")
    assert families.label_values("node_fibrechannel_rx_frames_total", "fc_host") == {"host1"}
    assert families.value("node_fibrechannel_tx_frames_total", fc_host="host0") == 5


def test_non_numeric_statistic_fails_the_collector_like_procfs(host: FakeHost) -> None:
    host.write(host.sysfs, {f"{HOST0}/statistics/tx_words": "0xzz"})
    with pytest.raises(ValueError):
        host.collect("fibrechannel")


def test_statistics_procfs_does_not_know_are_not_read(host: FakeHost) -> None:
    host.write(host.sysfs, {f"{HOST0}/statistics/fc_no_free_exch": "garbage"})
    assert (
        host.collect("fibrechannel").value("node_fibrechannel_rx_words_total", fc_host="host0") == 4
    )


def test_long_symbolic_name_is_cut_at_128_bytes_like_procfs(host: FakeHost) -> None:
    host.write(host.sysfs, {f"{HOST0}/symbolic_name": "x" * 200})
    labels = [
        labels
        for labels, _ in host.collect("fibrechannel").samples("node_fibrechannel_info")
        if labels["fc_host"] == "host0"
    ]
    assert labels[0]["symbolic_name"] == "x" * 128


def test_without_fc_host_class_is_no_data(tmp_path: Path) -> None:
    with pytest.raises(NoDataError):
        FakeHost(tmp_path).collect("fibrechannel")


def test_empty_fc_host_class_reports_nothing(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    (host.sysfs / "class/fc_host").mkdir(parents=True)
    assert host.collect("fibrechannel").by_name == {}


@pytest.mark.parametrize(
    ("text", "value"),
    [("0x1f", 31), ("0", 0), ("42", 42), ("010", 8), ("0xffffffffffffffff", (1 << 64) - 1)],
)
def test_parse_uint64_reads_like_go_parseuint_base_0(text: str, value: int) -> None:
    assert parse_uint(text) == value


@pytest.mark.parametrize("text", ["", "-1", "+1", "0x", "0x10000000000000000", " 1", "N/A"])
def test_parse_uint64_rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_uint(text)
