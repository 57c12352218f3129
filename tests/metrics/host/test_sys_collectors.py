"""Collectors reading /sys (and the optional /proc ones): hardware, RAID, NFS, filesystems."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.metrics.host.registry import NoDataError
from tests.metrics.host.hosttree import FakeHost

FIXTURES = Path(__file__).parent / "fixtures"
# Real files: a mix of md states (procfs's fixture), NFS client and server counters.
MDSTAT = (FIXTURES / "mdstat").read_text()
NFS_CLIENT = (FIXTURES / "rpc_nfs").read_text()
NFS_SERVER = (FIXTURES / "rpc_nfsd").read_text()


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


def test_netclass_properties_and_info(host: FakeHost) -> None:
    families = host.collect("netclass")
    assert families.label_values("node_network_up", "device") == {"lo", "eth0", "ifb0"}
    assert families.value("node_network_up", device="eth0") == 1
    assert families.value("node_network_up", device="lo") == 0  # operstate "unknown"
    assert families.value("node_network_flags", device="eth0") == 0x1003
    assert families.value("node_network_mtu_bytes", device="eth0") == 1500
    assert families.value("node_network_speed_bytes", device="eth0") == 1000 * 125000
    assert families.value("node_network_iface_id", device="ifb0") == 2
    assert families.value("node_network_protocol_type", device="lo") == 772
    assert families.type("node_network_carrier_changes_total") == "counter"
    assert families.value("node_network_carrier_up_changes_total", device="eth0") == 1
    # Attributes a down link refuses to report are left out, not zeroed.
    assert "ifb0" not in families.label_values("node_network_carrier", "device")
    assert "ifb0" not in families.label_values("node_network_speed_bytes", "device")
    assert (
        families.value(
            "node_network_info",
            device="eth0",
            address="02:fc:00:00:00:01",
            broadcast="ff:ff:ff:ff:ff:ff",
            duplex="full",
            operstate="up",
            adminstate="up",
            ifalias="uplink",
        )
        == 1
    )
    assert (
        families.value(
            "node_network_info",
            device="ifb0",
            address="b6:37:6c:a3:d4:ab",
            broadcast="ff:ff:ff:ff:ff:ff",
            duplex="",
            operstate="down",
            adminstate="down",
            ifalias="",
        )
        == 1
    )


def test_netclass_unknown_speed_and_ignored_devices(host: FakeHost) -> None:
    host.write(host.sysfs, {"devices/virtual/net/eth0/speed": "-1"})
    families = host.collect("netclass", netclass_ignored_devices="^lo$")
    assert families.value("node_network_speed_bytes", device="eth0") == -125000
    assert "lo" not in families.label_values("node_network_up", "device")


def test_netclass_skips_bonding_masters_file(host: FakeHost) -> None:
    host.write(host.sysfs, {"class/net/bonding_masters": "bond0"})
    families = host.collect("netclass")
    assert "bonding_masters" not in families.label_values("node_network_up", "device")


def test_cpufreq_hertz_and_governor(host: FakeHost) -> None:
    families = host.collect("cpufreq")
    assert families.value("node_cpu_frequency_hertz", cpu="0") == 1.8e9
    assert families.value("node_cpu_frequency_max_hertz", cpu="0") == 3.5e9
    assert families.value("node_cpu_scaling_frequency_hertz", cpu="0") == 1799998000
    assert families.value("node_cpu_scaling_frequency_min_hertz", cpu="0") == 8e8
    assert families.value("node_cpu_scaling_governor", cpu="0", governor="powersave") == 1
    assert families.value("node_cpu_scaling_governor", cpu="0", governor="performance") == 0
    assert families.label_values("node_cpu_scaling_frequency_hertz", "cpu") == {"0"}


def _make_hwmon(host: FakeHost) -> None:
    device = host.sysfs / "devices/platform/coretemp.0"
    hwmon = device / "hwmon/hwmon1"
    host.write(
        hwmon,
        {
            "name": "coretemp",
            "temp1_input": "55000",
            "temp1_max": "84000",
            "temp1_crit": "100000",
            "temp1_crit_alarm": "0",
            "temp1_label": "Package id 0",
            "temp1_alarm": "0",
            "fan1_input": "1200",
            "fan1_min": "600",
            "in0_input": "1104",
            "curr1_input": "500",
            "power1_input": "12500000",
            "energy1_input": "3000000",
            "pwm1": "128",
            "pwm1_enable": "2",
            "humidity1_input": "45000",
            "beep_enable": "1",
        },
    )
    (hwmon / "device").symlink_to(device)
    link = host.sysfs / "class/hwmon/hwmon1"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(hwmon)
    # A chip with no device link: named after its "name" file.
    host.write(host.sysfs / "class/hwmon/hwmon2", {"name": "ACPI Thermal", "temp1_input": "30000"})


def test_hwmon_node_exporter_names_and_chip_labels(host: FakeHost) -> None:
    _make_hwmon(host)
    families = host.collect("hwmon")
    chip = "platform_coretemp_0"
    assert families.value("node_hwmon_temp_celsius", chip=chip, sensor="temp1") == 55.0
    assert families.value("node_hwmon_temp_max_celsius", chip=chip, sensor="temp1") == 84.0
    assert families.value("node_hwmon_temp_crit_alarm_celsius", chip=chip, sensor="temp1") == 0
    assert families.value("node_hwmon_temp_alarm", chip=chip, sensor="temp1") == 0
    assert families.value("node_hwmon_fan_rpm", chip=chip, sensor="fan1") == 1200
    assert families.value("node_hwmon_fan_min_rpm", chip=chip, sensor="fan1") == 600
    assert families.value("node_hwmon_in_volts", chip=chip, sensor="in0") == pytest.approx(1.104)
    assert families.value("node_hwmon_curr_amps", chip=chip, sensor="curr1") == 0.5
    assert families.value("node_hwmon_power_watt", chip=chip, sensor="power1") == 12.5
    assert families.value("node_hwmon_energy_joule_total", chip=chip, sensor="energy1") == 3.0
    assert families.type("node_hwmon_energy_joule_total") == "counter"
    assert families.value("node_hwmon_pwm", chip=chip, sensor="pwm1") == 128
    assert families.value("node_hwmon_pwm_enable", chip=chip, sensor="pwm1") == 2
    assert families.value("node_hwmon_humidity", chip=chip, sensor="humidity1") == 45
    assert families.value("node_hwmon_beep_enabled", chip=chip, sensor="beep_enable") == 1
    assert (
        families.value("node_hwmon_sensor_label", chip=chip, sensor="temp1", label="Package id 0")
        == 1
    )
    assert families.value("node_hwmon_chip_names", chip=chip, chip_name="coretemp") == 1
    assert families.value("node_hwmon_temp_celsius", chip="acpi_thermal", sensor="temp1") == 30.0


def test_thermal_zones_and_cooling_devices(host: FakeHost) -> None:
    families = host.collect("thermal_zone")
    assert families.value("node_thermal_zone_temp", zone="0", type="x86_pkg_temp") == 41.0
    assert families.value("node_cooling_device_max_state", name="0", type="Processor") == 3
    assert families.value("node_cooling_device_cur_state", name="0", type="Processor") == 0


def test_power_supply_units_and_info(host: FakeHost) -> None:
    families = host.collect("powersupplyclass")
    assert families.value("node_power_supply_online", power_supply="AC") == 1
    assert families.value("node_power_supply_capacity", power_supply="BAT0") == 81
    assert families.value("node_power_supply_voltage_volt", power_supply="BAT0") == pytest.approx(
        11.77
    )
    assert families.value("node_power_supply_power_watt", power_supply="BAT0") == pytest.approx(
        5.002
    )
    assert families.value(
        "node_power_supply_energy_watthour", power_supply="BAT0"
    ) == pytest.approx(36.58)
    assert families.value("node_power_supply_temp_celsius", power_supply="BAT0") == pytest.approx(
        27.1
    )
    assert families.value("node_power_supply_cyclecount", power_supply="BAT0") == 0
    assert (
        families.value(
            "node_power_supply_info",
            power_supply="BAT0",
            manufacturer="LGC",
            model_name="LNV-45N1",
            status="Discharging",
            technology="Li-ion",
            type="Battery",
        )
        == 1
    )


def test_rapl_joules(host: FakeHost) -> None:
    families = host.collect("rapl")
    base = str(host.sysfs / "class/powercap")
    assert families.value(
        "node_rapl_package_joules_total", index="0", path=f"{base}/intel-rapl:0"
    ) == pytest.approx(240422.366267)
    assert families.value(
        "node_rapl_core_joules_total", index="0", path=f"{base}/intel-rapl:0:0"
    ) == pytest.approx(118821.284256)
    assert (
        families.value("node_rapl_dram_joules_total", index="0", path=f"{base}/intel-rapl:a") == 1.0
    )


def test_dmi_info_leaves_out_empty_values(host: FakeHost) -> None:
    families = host.collect("dmi")
    assert families.samples("node_dmi_info") == [
        (
            {
                "bios_vendor": "SeaBIOS",
                "product_name": "Standard PC (Q35 + ICH9, 2009)",
                "system_vendor": "QEMU",
            },
            1.0,
        )
    ]
    host.remove(host.sysfs, "class/dmi")
    with pytest.raises(NoDataError):
        host.collect("dmi")


def test_edac_controller_csrow_and_channel_counters(host: FakeHost) -> None:
    families = host.collect("edac")
    assert families.value("node_edac_correctable_errors_total", controller="0") == 1
    assert families.value("node_edac_uncorrectable_errors_total", controller="0") == 5
    assert (
        families.value("node_edac_csrow_correctable_errors_total", controller="0", csrow="unknown")
        == 2
    )
    assert (
        families.value("node_edac_csrow_uncorrectable_errors_total", controller="0", csrow="0") == 4
    )
    assert (
        families.value(
            "node_edac_channel_correctable_errors_total",
            controller="0",
            csrow="0",
            channel="0",
            dimm_label="CPU_SrcID#0_Ha#0_Chan#0_DIMM#0",
        )
        == 3
    )


def test_mdadm_states_disks_and_sync_progress(host: FakeHost) -> None:
    host.write(host.procfs, {"mdstat": MDSTAT})
    families = host.collect("mdadm")
    assert families.value("node_md_disks", device="md127", state="failed") == 1
    assert families.value("node_md_disks", device="md127", state="active") == 1
    assert families.value("node_md_disks_required", device="md127") == 2
    assert families.value("node_md_disks", device="md6", state="spare") == 1
    assert families.value("node_md_state", device="md6", state="recovering") == 1
    assert families.value("node_md_state", device="md6", state="active") == 0
    assert families.value("node_md_blocks_synced", device="md6") == 16775552
    assert families.value("node_md_state", device="md8", state="resync") == 1
    assert families.value("node_md_state", device="md201", state="check") == 1
    assert families.value("node_md_state", device="md0", state="inactive") == 1
    assert families.value("node_md_disks", device="md9", state="active") == 2
    assert families.value("node_md_blocks", device="md3") == 5853468288


def test_mdadm_without_md_driver_is_no_data(host: FakeHost) -> None:
    with pytest.raises(NoDataError):
        host.collect("mdadm")


def test_bonding_counts_active_slaves(host: FakeHost) -> None:
    host.write(
        host.sysfs,
        {
            "class/net/bonding_masters": "bond0",
            "class/net/bond0/bonding/slaves": "eth1 eth2",
            "class/net/bond0/lower_eth1/bonding_slave/mii_status": "up",
            "class/net/bond0/lower_eth2/bonding_slave/mii_status": "down",
        },
    )
    families = host.collect("bonding")
    assert families.value("node_bonding_slaves", master="bond0") == 2
    assert families.value("node_bonding_active", master="bond0") == 1


def test_bonding_without_driver_is_no_data(host: FakeHost) -> None:
    with pytest.raises(NoDataError):
        host.collect("bonding")


def test_watchdog_values_and_info(host: FakeHost) -> None:
    families = host.collect("watchdog")
    assert families.value("node_watchdog_timeout_seconds", name="watchdog0") == 60
    assert families.value("node_watchdog_bootstatus", name="watchdog0") == 1
    assert (
        families.value(
            "node_watchdog_info",
            name="watchdog0",
            options="",
            identity="iTCO_wdt",
            state="active",
            status="",
            pretimeout_governor="",
        )
        == 1
    )


def test_nvme_info(host: FakeHost) -> None:
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


def test_selinux_disabled_and_enforcing(host: FakeHost) -> None:
    assert host.collect("selinux").samples("node_selinux_enabled") == [({}, 0.0)]
    host.write(host.sysfs, {"fs/selinux/enforce": "1"})
    host.write(host.rootfs, {"etc/selinux/config": "SELINUX=permissive\nSELINUXTYPE=targeted\n"})
    families = host.collect("selinux")
    assert families.value("node_selinux_enabled") == 1
    assert families.value("node_selinux_current_mode") == 1
    assert families.value("node_selinux_config_mode") == 0


def test_xfs_per_device_counters(host: FakeHost) -> None:
    families = host.collect("xfs")
    assert families.value("node_xfs_extent_allocation_blocks_allocated_total", device="sda1") == 872
    assert families.value("node_xfs_directory_operation_getdents_total", device="sda1") == 52
    assert families.value("node_xfs_write_calls_total", device="sda1") == 2


def test_btrfs_allocation_and_devices(host: FakeHost) -> None:
    uuid = "0abb23a9-579b-43e6-ad30-227ef47fcb9d"
    families = host.collect("btrfs")
    assert families.value("node_btrfs_info", label="fixture", uuid=uuid) == 1
    assert families.value("node_btrfs_global_rsv_size_bytes", uuid=uuid) == 16777216
    assert (
        families.value("node_btrfs_used_bytes", block_group_type="data", mode="raid0", uuid=uuid)
        == 808189952
    )
    assert (
        families.value(
            "node_btrfs_allocation_ratio", block_group_type="data", mode="raid0", uuid=uuid
        )
        == 1
    )
    assert (
        families.value("node_btrfs_device_size_bytes", device="loop25", uuid=uuid) == 20971520 * 512
    )


def test_nfs_client_rpc_and_requests(host: FakeHost) -> None:
    host.write(host.procfs, {"net/rpc/nfs": NFS_CLIENT})
    families = host.collect("nfs")
    assert families.value("node_nfs_packets_total", protocol="tcp") == 18628
    assert families.value("node_nfs_connections_total") == 6
    assert families.value("node_nfs_rpcs_total") == 4329785
    assert families.value("node_nfs_rpc_authentication_refreshes_total") == 4338291
    assert families.value("node_nfs_requests_total", proto="3", method="GetAttr") == 4084749
    assert families.value("node_nfs_requests_total", proto="2", method="ReadDir") == 99
    assert families.value("node_nfs_requests_total", proto="4", method="Read") == 53
    assert families.value("node_nfs_requests_total", proto="4", method="Clone") == 0


def test_nfsd_server_stats(host: FakeHost) -> None:
    host.write(host.procfs, {"net/rpc/nfsd": NFS_SERVER})
    families = host.collect("nfsd")
    assert families.value("node_nfsd_reply_cache_nocache_total") == 18622
    assert families.value("node_nfsd_disk_bytes_read_total") == 157286400
    assert families.value("node_nfsd_server_threads") == 8
    assert families.value("node_nfsd_read_ahead_cache_size_blocks") == 32
    assert families.value("node_nfsd_rpc_errors_total", error="auth") == 2
    assert families.value("node_nfsd_server_rpcs_total") == 18628
    assert families.value("node_nfsd_requests_total", proto="3", method="ReadDirPlus") == 216
    assert families.value("node_nfsd_requests_total", proto="4", method="Access") == 1098
    assert families.value("node_nfsd_requests_total", proto="4", method="PutFH") == 9609


def test_nfs_and_nfsd_absent_are_no_data(host: FakeHost) -> None:
    for name in ("nfs", "nfsd"):
        with pytest.raises(NoDataError):
            host.collect(name)


def test_hwmon_without_class_directory_is_no_data(host: FakeHost) -> None:
    with pytest.raises(NoDataError):
        host.collect("hwmon")
