"""infiniband against node_exporter's own fixture (its sys.ttar devices and e2e output),
plus procfs's mlx5_0 fixture for the hw_counters node_exporter's fixture lacks."""

from __future__ import annotations

from pathlib import Path

import pytest

import agent.metrics.host.infiniband  # noqa: F401
from agent.metrics.host.infiniband import InfiniBandCollector, parse_rate, parse_state
from agent.metrics.host.registry import NoDataError, registrations
from tests.metrics.host.hosttree import (
    FakeHost,
    Families,
    assert_same_as_node_exporter,
    sysfs_files,
)

FIXTURE = Path(__file__).parent / "fixtures" / "infiniband"
# i40iw0: an iWARP device whose counters all read "N/A (no PMA)"; mlx4_0: two ports with
# 32-bit counters/ and the pre-4.5 64-bit counters_ext/, port 2 with few counters.
SYSFS = sysfs_files(FIXTURE)
MLX4_PORT1 = "class/infiniband/mlx4_0/ports/1"

# procfs's testdata/fixtures.ttar mlx5_0 (sysfs/class_infiniband_test.go), a RoCE-capable
# ConnectX-4 with hw_counters; counters that read 0 there are trimmed.
MLX5 = "class/infiniband/mlx5_0"
MLX5_SYSFS = {
    f"{MLX5}/board_id": "SM_2001000001034",
    f"{MLX5}/fw_ver": "14.28.2006",
    f"{MLX5}/hca_type": "MT4118",
    f"{MLX5}/node_guid": "0a7f:bc12:45ef:d23b",
    f"{MLX5}/ports/1/link_layer": "InfiniBand",
    f"{MLX5}/ports/1/phys_state": "4: ACTIVE",
    f"{MLX5}/ports/1/rate": "25 Gb/sec (1X EDR)",
    f"{MLX5}/ports/1/state": "4: ACTIVE",
    f"{MLX5}/ports/1/counters/VL15_dropped": "0",
    f"{MLX5}/ports/1/counters/port_rcv_data": "18126345378",
    f"{MLX5}/ports/1/counters/port_rcv_packets": "541889824",
    f"{MLX5}/ports/1/counters/port_xmit_data": "2880761508848",
    f"{MLX5}/ports/1/counters/port_xmit_packets": "10907922116",
    f"{MLX5}/ports/1/counters/unicast_rcv_packets": "541889824",
    f"{MLX5}/ports/1/counters/unicast_xmit_packets": "10907922116",
    f"{MLX5}/ports/1/hw_counters/duplicate_request": "41",
    f"{MLX5}/ports/1/hw_counters/implied_nak_seq_err": "0",
    f"{MLX5}/ports/1/hw_counters/lifespan": "10",
    f"{MLX5}/ports/1/hw_counters/local_ack_timeout_err": "131",
    f"{MLX5}/ports/1/hw_counters/out_of_sequence": "1",
    f"{MLX5}/ports/1/hw_counters/packet_seq_err": "1",
    f"{MLX5}/ports/1/hw_counters/req_cqe_error": "3481",
    f"{MLX5}/ports/1/hw_counters/req_cqe_flush_error": "80",
    f"{MLX5}/ports/1/hw_counters/resp_cqe_error": "8109",
    f"{MLX5}/ports/1/hw_counters/resp_cqe_flush_error": "4708",
    f"{MLX5}/ports/1/hw_counters/roce_adp_retrans": "99",
    f"{MLX5}/ports/1/hw_counters/roce_adp_retrans_to": "4",
    f"{MLX5}/ports/1/hw_counters/roce_slow_restart_cnps": "131",
    f"{MLX5}/ports/1/hw_counters/rx_read_requests": "175528982",
    f"{MLX5}/ports/1/hw_counters/rx_write_requests": "742114",
}


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path)
    host.write(host.sysfs, SYSFS)
    return host


def test_output_equals_node_exporter_for_its_fixture(host: FakeHost) -> None:
    assert_same_as_node_exporter(host.collect("infiniband"), FIXTURE)


def test_collector_is_enabled_by_default() -> None:
    assert registrations()["infiniband"].default_enabled


def test_counters_reading_no_pma_are_left_out_but_the_port_is_reported(host: FakeHost) -> None:
    families = host.collect("infiniband")
    assert families.value("node_infiniband_state_id", device="i40iw0", port="1") == 4
    assert families.value("node_infiniband_rate_bytes_per_second", device="i40iw0", port="1") == (
        10 * 125_000_000
    )
    for name, family in families.by_name.items():
        if family.type == "counter":
            assert "i40iw0" not in families.label_values(name, "device"), name


def test_data_counters_count_words_and_legacy_ones_come_from_counters_ext(
    host: FakeHost,
) -> None:
    host.write(
        host.sysfs,
        {
            f"{MLX4_PORT1}/counters/port_rcv_data": "100",
            f"{MLX4_PORT1}/counters_ext/port_rcv_data_64": "5000000000",
        },
    )
    families = host.collect("infiniband")
    port = {"device": "mlx4_0", "port": "1"}
    assert families.value("node_infiniband_port_data_received_bytes_total", **port) == 400
    assert families.value("node_infiniband_legacy_data_received_bytes_total", **port) == 2e10
    assert families.value("node_infiniband_legacy_unicast_packets_received_total", **port) == 61148


def test_word_counter_times_four_wraps_like_go_uint64(host: FakeHost) -> None:
    host.write(host.sysfs, {f"{MLX4_PORT1}/counters/port_xmit_data": str((1 << 62) + 1)})
    families = host.collect("infiniband")
    assert (
        families.value(
            "node_infiniband_port_data_transmitted_bytes_total", device="mlx4_0", port="1"
        )
        == 4
    )


def test_hw_counters_from_procfs_mlx5_fixture(host: FakeHost) -> None:
    host.write(host.sysfs, MLX5_SYSFS)
    families = host.collect("infiniband")
    port = {"device": "mlx5_0", "port": "1"}
    assert (
        families.value(
            "node_infiniband_info",
            device="mlx5_0",
            board_id="SM_2001000001034",
            firmware_version="14.28.2006",
            hca_type="MT4118",
        )
        == 1
    )
    assert families.value("node_infiniband_rate_bytes_per_second", **port) == 3_125_000_000
    # procfs's expected values: data words times 4.
    assert families.value("node_infiniband_port_data_received_bytes_total", **port) == 72505381512
    assert (
        families.value("node_infiniband_port_data_transmitted_bytes_total", **port)
        == 11523046035392
    )
    assert families.value("node_infiniband_duplicate_requests_packets_total", **port) == 41
    assert families.value("node_infiniband_local_ack_timeout_errors_total", **port) == 131
    assert families.value("node_infiniband_req_cqes_errors_total", **port) == 3481
    assert families.value("node_infiniband_resp_cqes_flush_errors_total", **port) == 4708
    assert families.value("node_infiniband_roce_adp_retransmits_timeout_total", **port) == 4
    assert families.value("node_infiniband_roce_slow_restart_cnps_total", **port) == 131
    assert families.value("node_infiniband_rx_read_requests_total", **port) == 175528982
    assert families.value("node_infiniband_rx_write_requests_total", **port) == 742114
    # lifespan is 10 ms; node_exporter divides by 1000 as integers.
    assert families.type("node_infiniband_lifespan_seconds") == "gauge"
    assert families.value("node_infiniband_lifespan_seconds", **port) == 0
    # No counters_ext on a 4.5+ kernel: no legacy families for this port.
    assert "mlx5_0" not in families.label_values(
        "node_infiniband_legacy_data_received_bytes_total", "device"
    )


def test_hw_counter_reading_no_pma_is_left_out(host: FakeHost) -> None:
    host.write(
        host.sysfs, {**MLX5_SYSFS, f"{MLX5}/ports/1/hw_counters/out_of_buffer": "N/A (no PMA)"}
    )
    assert "node_infiniband_out_of_buffer_drops_total" not in host.collect("infiniband")


def test_non_numeric_counter_fails_the_collector_like_procfs(host: FakeHost) -> None:
    host.write(host.sysfs, {f"{MLX4_PORT1}/counters/link_downed": "garbage"})
    with pytest.raises(ValueError, match="link_downed"):
        host.collect("infiniband")


@pytest.mark.parametrize(
    "missing",
    [
        "class/infiniband/mlx4_0/fw_ver",  # a device going away between list and read
        "class/infiniband/mlx4_0/ports",
        f"{MLX4_PORT1}/link_layer",
        f"{MLX4_PORT1}/state",
        f"{MLX4_PORT1}/rate",
    ],
)
def test_device_or_port_attribute_missing_is_no_data_for_all_devices(
    host: FakeHost, missing: str
) -> None:
    # procfs fails the whole class and node_exporter's errors.Is(ErrNotExist) sees it.
    host.remove(host.sysfs, missing)
    with pytest.raises(NoDataError):
        host.collect("infiniband")


def test_optional_device_attributes_missing_are_empty_labels(host: FakeHost) -> None:
    host.remove(host.sysfs, "class/infiniband/mlx4_0/board_id", "class/infiniband/mlx4_0/hca_type")
    families = host.collect("infiniband")
    assert (
        families.value(
            "node_infiniband_info",
            device="mlx4_0",
            board_id="",
            firmware_version="2.31.5050",
            hca_type="",
        )
        == 1
    )


def test_port_without_counters_directories_reports_state_and_rate(host: FakeHost) -> None:
    host.remove(host.sysfs, f"{MLX4_PORT1}/counters", f"{MLX4_PORT1}/counters_ext")
    families = host.collect("infiniband")
    assert families.value("node_infiniband_physical_state_id", device="mlx4_0", port="1") == 5
    assert families.label_values("node_infiniband_link_downed_total", "port") == {"2"}
    # counters_ext is read only beside counters, as procfs does.
    assert families.label_values("node_infiniband_legacy_packets_received_total", "port") == {"2"}


def test_bad_state_fails_the_collector(host: FakeHost) -> None:
    host.write(host.sysfs, {f"{MLX4_PORT1}/state": "ACTIVE"})
    with pytest.raises(ValueError):
        host.collect("infiniband")


def test_device_exclude_drops_a_device(host: FakeHost) -> None:
    collector = InfiniBandCollector(host.config(), device_exclude="^mlx4")
    families = Families(collector.collect(host.context()))
    assert families.label_values("node_infiniband_info", "device") == {"i40iw0"}
    assert families.label_values("node_infiniband_state_id", "device") == {"i40iw0"}


def test_device_include_keeps_only_matching_devices(host: FakeHost) -> None:
    collector = InfiniBandCollector(host.config(), device_include="^mlx")
    families = Families(collector.collect(host.context()))
    assert families.label_values("node_infiniband_info", "device") == {"mlx4_0"}


def test_without_infiniband_class_is_no_data(tmp_path: Path) -> None:
    with pytest.raises(NoDataError):
        FakeHost(tmp_path).collect("infiniband")


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        # procfs's TestParseSlowRate
        ("0 GB/sec", 0),
        ("2.5 Gb/sec (1X SDR)", 312_500_000),
        ("500 Gb/sec (4X HDR)", 62_500_000_000),
        ("40 Gb/sec (4X QDR)\n", 5_000_000_000),
        # Go parses the number as a float32: 13.3 becomes 13.30000019...
        ("13.3 Gb/sec", 1_662_500_023),
    ],
)
def test_parse_rate_in_bytes_per_second(text: str, rate: int) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["100", "fast Gb/sec", "1e400 Gb/sec"])
def test_parse_rate_rejects_what_procfs_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


def test_parse_state_takes_the_id() -> None:
    assert parse_state("5: LinkUp\n") == 5
    with pytest.raises(ValueError):
        parse_state("5: Link: Up")
