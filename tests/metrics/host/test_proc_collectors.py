"""Collectors reading /proc: names, types, labels and units as node_exporter exposes them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agent.metrics.host.registry import NoDataError, registrations
from tests.metrics.host.hosttree import FakeHost, Families

USER_HZ = os.sysconf("SC_CLK_TCK")


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


def test_cpu_seconds_use_the_kernel_cpu_id_and_eight_modes(host: FakeHost) -> None:
    families = host.collect("cpu")
    assert families.type("node_cpu_seconds_total") == "counter"
    assert families.label_values("node_cpu_seconds_total", "cpu") == {"0", "1", "3"}
    assert families.label_values("node_cpu_seconds_total", "mode") == {
        "user",
        "nice",
        "system",
        "idle",
        "iowait",
        "irq",
        "softirq",
        "steal",
    }
    assert families.value("node_cpu_seconds_total", cpu="0", mode="idle") == 41380 / USER_HZ
    assert families.value("node_cpu_seconds_total", cpu="3", mode="steal") == 1 / USER_HZ
    assert families.value("node_cpu_guest_seconds_total", cpu="0", mode="user") == 3 / USER_HZ
    assert families.value("node_cpu_guest_seconds_total", cpu="0", mode="nice") == 4 / USER_HZ


def test_cpu_counters_never_go_backwards_but_reset_after_hotplug(host: FakeHost) -> None:
    collector = registrations()["cpu"].factory(host.config())
    Families(collector.collect(host.context()))
    # iowait steps back a little (a known kernel artefact), cpu1 went offline and came
    # back with its counters restarted (idle dropped by far more than 3 s).
    host.write(
        host.procfs,
        {
            "stat": (
                "cpu  1 1 1 1 1 1 1 1 0 0\n"
                "cpu0 2300 5 1400 41400 210 1 10 11 3 4\n"
                "cpu1 10 0 10 50 0 0 0 0 0 0\n"
                "ctxt 1\n"
            )
        },
    )
    after = Families(collector.collect(host.context()))
    assert after.value("node_cpu_seconds_total", cpu="0", mode="iowait") == 219 / USER_HZ
    assert after.value("node_cpu_seconds_total", cpu="0", mode="user") == 2300 / USER_HZ
    assert after.value("node_cpu_seconds_total", cpu="1", mode="idle") == 50 / USER_HZ
    assert after.label_values("node_cpu_seconds_total", "cpu") == {"0", "1"}


def test_cpu_reports_throttles_isolated_and_online_cpus(host: FakeHost) -> None:
    families = host.collect("cpu")
    # Two hyperthreads of one core share its counter: reported once.
    assert families.samples("node_cpu_core_throttles_total") == [
        ({"core": "0", "package": "0"}, 5.0)
    ]
    assert families.value("node_cpu_package_throttles_total", package="0") == 30
    assert families.label_values("node_cpu_isolated", "cpu") == {"1", "3"}
    assert families.value("node_cpu_online", cpu="0") == 1  # no online file: cannot go offline
    assert families.value("node_cpu_online", cpu="2") == 0


def test_stat_exports_kernel_counters_and_boot_time(host: FakeHost) -> None:
    families = host.collect("stat")
    assert families.value("node_intr_total") == 273236
    assert families.type("node_intr_total") == "counter"
    assert families.value("node_context_switches_total") == 551202
    assert families.value("node_forks_total") == 8146
    assert families.value("node_boot_time_seconds") == 1795712358
    assert families.type("node_boot_time_seconds") == "gauge"
    assert families.value("node_procs_running") == 4
    assert families.value("node_procs_blocked") == 1


def test_loadavg(host: FakeHost) -> None:
    families = host.collect("loadavg")
    assert (
        families.value("node_load1"),
        families.value("node_load5"),
        families.value("node_load15"),
    ) == (0.11, 0.13, 0.09)


def test_meminfo_names_units_and_unitless_hugepage_counts(host: FakeHost) -> None:
    families = host.collect("meminfo")
    assert families.value("node_memory_MemTotal_bytes") == 24684084 * 1024
    assert families.value("node_memory_Active_anon_bytes") == 1548 * 1024
    assert families.value("node_memory_Inactive_file_bytes") == 107728 * 1024
    assert families.value("node_memory_HugePages_Total") == 0
    assert families.value("node_memory_Hugepagesize_bytes") == 2048 * 1024
    assert all(families.type(name) == "gauge" for name in families.by_name)


def test_diskstats_default_filter_units_and_kernel_dependent_columns(host: FakeHost) -> None:
    families = host.collect("diskstats")
    # Partitions, loop and zram devices are excluded by node_exporter 1.12's default.
    assert families.label_values("node_disk_reads_completed_total", "device") == {
        "vda",
        "nvme0n1",
        "dm-0",
    }
    assert families.value("node_disk_read_bytes_total", device="vda") == 2349778 * 512
    assert families.value("node_disk_read_time_seconds_total", device="vda") == pytest.approx(
        15.626
    )
    assert families.value(
        "node_disk_io_time_weighted_seconds_total", device="vda"
    ) == pytest.approx(25.698)
    assert families.type("node_disk_io_now") == "gauge"
    assert families.value("node_disk_discarded_sectors_total", device="vda") == 90720
    assert families.value(
        "node_disk_flush_requests_time_seconds_total", device="vda"
    ) == pytest.approx(0.095)
    # nvme0n1's line has no discard/flush columns (older kernel layout): no such series.
    assert "nvme0n1" not in families.label_values("node_disk_discards_completed_total", "device")


def test_diskstats_info_from_udev_and_sysfs(host: FakeHost) -> None:
    families = host.collect("diskstats")
    info = {labels["device"]: labels for labels, _ in families.samples("node_disk_info")}
    assert info["nvme0n1"] == {
        "device": "nvme0n1",
        "major": "259",
        "minor": "0",
        "path": "pci-0000:01:00.0-nvme-1",
        "wwn": "eui.002538b581b1c7d1",
        "model": "Samsung SSD 970 PRO 512GB",
        "serial": "S680HF8N190894I",
        "revision": "1B2QEXP7",
        "rotational": "0",
    }
    assert info["dm-0"]["model"] == "" and info["dm-0"]["rotational"] == ""
    assert families.samples("node_disk_filesystem_info") == [
        (
            {
                "device": "vda",
                "type": "ext4",
                "usage": "filesystem",
                "uuid": "2e6c4a5a",
                "version": "1.0",
            },
            1.0,
        )
    ]
    assert (
        families.value(
            "node_disk_device_mapper_info",
            device="dm-0",
            name="vg0-root",
            uuid="LVM-abc",
            vg_name="vg0",
            lv_name="root",
            lv_layer="",
        )
        == 1
    )


def test_netdev_from_proc_uses_legacy_names_and_no_default_filter(host: FakeHost) -> None:
    families = host.collect("netdev")
    assert families.label_values("node_network_receive_bytes_total", "device") == {
        "lo",
        "eth0",
        "veth1a2b",
    }
    assert families.value("node_network_receive_bytes_total", device="eth0") == 247007889
    assert families.value("node_network_receive_frame_total", device="eth0") == 4
    assert families.value("node_network_transmit_colls_total", device="eth0") == 10
    assert families.value("node_network_transmit_carrier_total", device="eth0") == 11
    assert families.type("node_network_transmit_bytes_total") == "counter"
    # /proc/net/dev has no rx_nohandler; only the netlink source reports it.
    assert "node_network_receive_nohandler_total" not in families


def test_netdev_device_exclude(host: FakeHost) -> None:
    families = host.collect("netdev", netdev_device_exclude="^(veth.*|lo)$")
    assert families.label_values("node_network_receive_bytes_total", "device") == {"eth0"}


def test_netdev_netlink_reads_this_namespace_with_nohandler() -> None:
    from agent.metrics.host.netdev import read_netlink_stats

    devices = read_netlink_stats()
    assert "lo" in devices
    assert set(devices["lo"]) >= {"receive_bytes", "receive_nohandler", "transmit_carrier"}


def test_netstat_default_fields_untyped(host: FakeHost) -> None:
    families = host.collect("netstat")
    assert set(families.by_name) == {
        "node_netstat_TcpExt_SyncookiesSent",
        "node_netstat_TcpExt_SyncookiesRecv",
        "node_netstat_TcpExt_SyncookiesFailed",
        "node_netstat_TcpExt_ListenOverflows",
        "node_netstat_TcpExt_ListenDrops",
        "node_netstat_TcpExt_TCPTimeouts",
        "node_netstat_TcpExt_TCPSynRetrans",
        "node_netstat_TcpExt_TCPOFOQueue",
        "node_netstat_TcpExt_TCPRcvQDrop",
        "node_netstat_IpExt_InOctets",
        "node_netstat_IpExt_OutOctets",
        "node_netstat_Ip_Forwarding",
        "node_netstat_Icmp_InMsgs",
        "node_netstat_Icmp_InErrors",
        "node_netstat_Icmp_OutMsgs",
        "node_netstat_Tcp_ActiveOpens",
        "node_netstat_Tcp_PassiveOpens",
        "node_netstat_Tcp_CurrEstab",
        "node_netstat_Tcp_InSegs",
        "node_netstat_Tcp_OutSegs",
        "node_netstat_Tcp_RetransSegs",
        "node_netstat_Tcp_InErrs",
        "node_netstat_Tcp_OutRsts",
        "node_netstat_Udp_InDatagrams",
        "node_netstat_Udp_NoPorts",
        "node_netstat_Udp_InErrors",
        "node_netstat_Udp_OutDatagrams",
        "node_netstat_Udp_RcvbufErrors",
        "node_netstat_Udp_SndbufErrors",
        "node_netstat_UdpLite_InErrors",
        "node_netstat_Ip6_InOctets",
        "node_netstat_Ip6_OutOctets",
        "node_netstat_Icmp6_InMsgs",
        "node_netstat_Icmp6_InErrors",
        "node_netstat_Udp6_InDatagrams",
    }
    assert {families.type(name) for name in families.by_name} == {"unknown"}  # rendered "untyped"
    assert families.value("node_netstat_IpExt_InOctets") == 344577319
    assert families.value("node_netstat_Ip6_OutOctets") == 880


def test_netstat_without_ipv6(host: FakeHost) -> None:
    host.remove(host.procfs, "net/snmp6")
    families = host.collect("netstat")
    assert "node_netstat_Tcp_InSegs" in families and "node_netstat_Ip6_InOctets" not in families


def test_sockstat_counts_and_memory_in_bytes(host: FakeHost) -> None:
    families = host.collect("sockstat")
    assert families.value("node_sockstat_sockets_used") == 31
    assert families.value("node_sockstat_TCP_tw") == 400
    assert families.value("node_sockstat_TCP_mem") == 3
    assert families.value("node_sockstat_TCP_mem_bytes") == 3 * os.sysconf("SC_PAGE_SIZE")
    assert families.value("node_sockstat_FRAG_memory") == 0
    assert families.value("node_sockstat_TCP6_inuse") == 1
    assert "node_sockstat_FRAG_memory_bytes" not in families


def test_vmstat_default_fields_untyped(host: FakeHost) -> None:
    families = host.collect("vmstat")
    assert set(families.by_name) == {
        "node_vmstat_pgpgin",
        "node_vmstat_pgpgout",
        "node_vmstat_pswpin",
        "node_vmstat_pswpout",
        "node_vmstat_pgfault",
        "node_vmstat_pgmajfault",
        "node_vmstat_oom_kill",
    }
    assert families.type("node_vmstat_oom_kill") == "unknown"
    assert families.value("node_vmstat_oom_kill") == 7


def test_filefd_and_entropy(host: FakeHost) -> None:
    filefd = host.collect("filefd")
    assert (filefd.value("node_filefd_allocated"), filefd.value("node_filefd_maximum")) == (
        601,
        2466170,
    )
    entropy = host.collect("entropy")
    assert entropy.value("node_entropy_available_bits") == 256
    assert entropy.value("node_entropy_pool_size_bits") == 256


def test_pressure_totals_in_seconds(host: FakeHost) -> None:
    families = host.collect("pressure")
    assert families.value("node_pressure_cpu_waiting_seconds_total") == pytest.approx(10.575949)
    assert families.value("node_pressure_io_stalled_seconds_total") == pytest.approx(2.579217)
    assert families.value("node_pressure_memory_waiting_seconds_total") == pytest.approx(1.0)
    assert "node_pressure_irq_stalled_seconds_total" not in families  # kernel without PSI irq
    host.write(
        host.procfs, {"pressure/irq": "full avg10=0.00 avg60=0.00 avg300=0.00 total=1500000\n"}
    )
    assert host.collect("pressure").value("node_pressure_irq_stalled_seconds_total") == 1.5


def test_pressure_absent_is_no_data(host: FakeHost) -> None:
    host.remove(host.procfs, "pressure")
    with pytest.raises(NoDataError):
        host.collect("pressure")


def test_conntrack_entries_and_per_cpu_stats_summed(host: FakeHost) -> None:
    families = host.collect("conntrack")
    assert families.value("node_nf_conntrack_entries") == 123
    assert families.value("node_nf_conntrack_entries_limit") == 262144
    assert families.value("node_nf_conntrack_stat_found") == 0x1 + 0x10
    assert families.value("node_nf_conntrack_stat_search_restart") == 8
    host.remove(host.procfs, "sys/net/netfilter")
    with pytest.raises(NoDataError):
        host.collect("conntrack")


def test_schedstat_per_cpu_seconds(host: FakeHost) -> None:
    families = host.collect("schedstat")
    assert families.value("node_schedstat_running_seconds_total", cpu="0") == pytest.approx(
        2045936.778163039
    )
    assert families.value("node_schedstat_waiting_seconds_total", cpu="1") == pytest.approx(
        1.125050316
    )
    assert families.value("node_schedstat_timeslices_total", cpu="0") == 4767485306
    host.remove(host.procfs, "schedstat")
    with pytest.raises(NoDataError):
        host.collect("schedstat")


def test_softnet_uses_the_cpu_id_column(host: FakeHost) -> None:
    families = host.collect("softnet")
    assert families.value("node_softnet_processed_total", cpu="0") == 0x128C
    assert families.value("node_softnet_dropped_total", cpu="0") == 1
    assert families.value("node_softnet_times_squeezed_total", cpu="0") == 2
    assert families.value("node_softnet_received_rps_total", cpu="0") == 4
    assert families.value("node_softnet_flow_limit_count_total", cpu="0") == 5
    assert families.value("node_softnet_backlog_len", cpu="0") == 6
    assert families.value("node_softnet_processed_total", cpu="1") == 0x2D06


def test_udp_queues_sum_hex_queue_bytes(host: FakeHost) -> None:
    families = host.collect("udp_queues")
    assert families.value("node_udp_queues", ip="v4", queue="tx") == 0x10 + 0x1
    assert families.value("node_udp_queues", ip="v4", queue="rx") == 0x200
    assert families.value("node_udp_queues", ip="v6", queue="rx") == 0


def test_arp_entries_per_device(host: FakeHost) -> None:
    families = host.collect("arp")
    assert families.samples("node_arp_entries") == [
        ({"device": "docker0"}, 1.0),
        ({"device": "eth0"}, 2.0),
    ]


def test_uname_info_labels(host: FakeHost) -> None:
    families = host.collect("uname")
    ((labels, value),) = families.samples("node_uname_info")
    uname = os.uname()
    assert value == 1
    assert labels == {
        "sysname": uname.sysname,
        "release": uname.release,
        "version": uname.version,
        "machine": uname.machine,
        "nodename": uname.nodename,
        "domainname": "(none)",
    }


def test_os_release_info_version_and_support_end(host: FakeHost) -> None:
    families = host.collect("os")
    ((labels, _),) = families.samples("node_os_info")
    assert labels["pretty_name"] == "Debian GNU/Linux 12 (bookworm)"
    assert labels["version_codename"] == "bookworm" and labels["build_id"] == ""
    assert families.value("node_os_version", id="debian", id_like="", name="Debian GNU/Linux") == 12
    assert (
        families.value("node_os_support_end_timestamp_seconds") == 1845936000
    )  # 2028-06-30T00:00:00Z


def test_os_release_falls_back_to_usr_lib_and_rereads_on_change(host: FakeHost) -> None:
    host.remove(host.rootfs, "etc/os-release")
    host.write(
        host.rootfs, {"usr/lib/os-release": 'ID=alpine\nNAME="Alpine Linux"\nVERSION_ID=3.19.1\n'}
    )
    collector = registrations()["os"].factory(host.config())
    first = Families(collector.collect(host.context()))
    assert first.value("node_os_version", id="alpine", id_like="", name="Alpine Linux") == 3.19
    host.write(
        host.rootfs, {"usr/lib/os-release": 'ID=alpine\nNAME="Alpine Linux"\nVERSION_ID=3.20.0\n'}
    )
    os.utime(host.rootfs / "usr/lib/os-release", (time.time() + 5, time.time() + 5))
    second = Families(collector.collect(host.context()))
    assert second.value("node_os_version", id="alpine", id_like="", name="Alpine Linux") == 3.2


def test_time_and_clocksources(host: FakeHost) -> None:
    before = time.time()
    families = host.collect("time")
    assert before <= families.value("node_time_seconds") <= time.time()
    zone = time.localtime()
    assert families.value("node_time_zone_offset_seconds", time_zone=zone.tm_zone) == zone.tm_gmtoff
    assert families.label_values("node_time_clocksource_available_info", "clocksource") == {
        "tsc",
        "kvm-clock",
    }
    assert families.value("node_time_clocksource_current_info", device="0", clocksource="tsc") == 1


def test_timex_reads_the_kernel_clock_state(host: FakeHost) -> None:
    families = host.collect("timex")
    assert families.value("node_timex_sync_status") in (0, 1)
    assert families.value("node_timex_tick_seconds") == pytest.approx(
        1 / os.sysconf("SC_CLK_TCK"), rel=0.1
    )
    assert families.type("node_timex_pps_calibration_total") == "counter"
    assert families.value("node_timex_frequency_adjustment_ratio") == pytest.approx(1.0, abs=0.001)


def test_kernel_hung_tasks(host: FakeHost) -> None:
    assert host.collect("kernel_hung").value("node_kernel_hung_tasks_total") == 2
    host.remove(host.procfs, "sys/kernel/hung_task_detect_count")
    with pytest.raises(NoDataError):
        host.collect("kernel_hung")
