"""A fake host for collector tests: /proc, /sys, / and the udev database under tmp_path.

File contents are copied from real kernels (a 6.x x86_64 VM and node_exporter's own
fixture formats), trimmed to what the collectors read. ``FakeHost.write`` adds or
replaces files so each test states only what it changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client import Metric
from prometheus_client.parser import text_string_to_metric_families

from agent.config import HostMetricsConfig
from agent.metrics.host.registry import Collector, ScrapeContext, registrations

PROC_FILES: dict[str, str] = {
    "stat": (
        "cpu  7720 5 3101 80415 432 1 82 22 3 4\n"
        "cpu0 2252 5 1375 41380 219 1 10 11 3 4\n"
        "cpu1 5368 0 1625 38035 213 0 72 10 0 0\n"
        "cpu3 100 0 101 1000 0 0 0 1 0 0\n"
        "intr 273236 0 0 1 0\n"
        "ctxt 551202\n"
        "btime 1795712358\n"
        "processes 8146\n"
        "procs_running 4\n"
        "procs_blocked 1\n"
        "softirq 138914 0 15991 10 13573 45967 0 3 29063 0 34307\n"
    ),
    "loadavg": "0.11 0.13 0.09 2/125 8149\n",
    "meminfo": (
        "MemTotal:       24684084 kB\n"
        "MemFree:        23741944 kB\n"
        "MemAvailable:   24040404 kB\n"
        "Buffers:           32076 kB\n"
        "Cached:           432216 kB\n"
        "Active(anon):       1548 kB\n"
        "Inactive(file):   107728 kB\n"
        "SwapTotal:             0 kB\n"
        "SwapFree:              0 kB\n"
        "HugePages_Total:       0\n"
        "HugePages_Free:        0\n"
        "Hugepagesize:       2048 kB\n"
    ),
    "diskstats": (
        " 254       0 vda 35000 7195 2349778 15626 14326 20292 2643416 9655 0 6056 25698 4514 33 "
        "90720 321 2289 95\n"
        " 254       1 vda1 100 0 800 10 0 0 0 0 0 10 10 0 0 0 0 0 0\n"
        "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        " 253       0 zram0 4 0 32 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        " 259       0 nvme0n1 10 2 30 4 5 6 70 8 1 10 11\n"
        " 259       1 nvme0n1p1 1 0 8 0 0 0 0 0 0 0 0\n"
        " 252       0 dm-0 1 2 3 4 5 6 7 8 0 9 10 11 12 13 14 15 16\n"
    ),
    "net/dev": (
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
        "drop fifo colls carrier compressed\n"
        "    lo: 14329296   10261    0    0    0     0          0         0 14329296   10261    0 "
        "   0    0     0       0          0\n"
        "  eth0: 247007889    6013    1    2    3     4          5         6   311006    3076    "
        "7    8    9    10      11         12\n"
        "veth1a2b:     100       1    0    0    0     0          0         0      200       2    "
        "0    0    0     0       0          0\n"
    ),
    "net/netstat": (
        "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed ListenOverflows ListenDrops "
        "TCPTimeouts TCPSynRetrans TCPOFOQueue TCPRcvQDrop TW\n"
        "TcpExt: 1 2 3 4 5 6 7 8 9 1047\n"
        "IpExt: InNoRoutes InOctets OutOctets\n"
        "IpExt: 0 344577319 97920882\n"
    ),
    "net/snmp": (
        "Ip: Forwarding DefaultTTL InReceives InHdrErrors\n"
        "Ip: 1 64 42045 0\n"
        "Icmp: InMsgs InErrors OutMsgs\n"
        "Icmp: 1 0 2\n"
        "Tcp: RtoAlgorithm MaxConn ActiveOpens PassiveOpens CurrEstab InSegs OutSegs RetransSegs "
        "InErrs OutRsts\n"
        "Tcp: 1 -1 1205 1053 2 42009 39062 3 0 164\n"
        "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n"
        "Udp: 35 0 0 36 0 0\n"
        "UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n"
        "UdpLite: 0 0 0 0 0 0\n"
    ),
    "net/snmp6": (
        "Ip6InReceives                   \t1\n"
        "Ip6InOctets                     \t128\n"
        "Ip6OutOctets                    \t880\n"
        "Icmp6InMsgs                     \t1\n"
        "Icmp6InErrors                   \t1\n"
        "Udp6InDatagrams                 \t0\n"
    ),
    "net/sockstat": (
        "sockets: used 31\n"
        "TCP: inuse 2 orphan 0 tw 400 alloc 2 mem 3\n"
        "UDP: inuse 1 mem 2\n"
        "UDPLITE: inuse 0\n"
        "RAW: inuse 0\n"
        "FRAG: inuse 0 memory 0\n"
    ),
    "net/sockstat6": (
        "TCP6: inuse 1\nUDP6: inuse 0\nUDPLITE6: inuse 0\nRAW6: inuse 0\nFRAG6: inuse 0 memory 0\n"
    ),
    "vmstat": (
        "nr_free_pages 1163617\npgpgin 1648729\npgpgout 2018200\npswpin 0\npswpout 0\n"
        "pgfault 24088882\npgmajfault 2194\noom_kill 7\n"
    ),
    "sys/fs/file-nr": "601\t0\t2466170\n",
    "sys/kernel/random/entropy_avail": "256\n",
    "sys/kernel/random/poolsize": "256\n",
    "sys/kernel/domainname": "(none)\n",
    "sys/kernel/hung_task_detect_count": "2\n",
    "pressure/cpu": (
        "some avg10=0.45 avg60=0.79 avg300=0.99 total=10575949\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    ),
    "pressure/io": (
        "some avg10=0.14 avg60=0.05 avg300=0.19 total=2783499\n"
        "full avg10=0.14 avg60=0.05 avg300=0.17 total=2579217\n"
    ),
    "pressure/memory": (
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=500000\n"
    ),
    "sys/net/netfilter/nf_conntrack_count": "123\n",
    "sys/net/netfilter/nf_conntrack_max": "262144\n",
    "net/stat/nf_conntrack": (
        "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop "
        "early_drop icmp_error  expect_new expect_create expect_delete search_restart\n"
        "00000021  00000000 00000001 00000000 00000002 00000003 00000000 00000000 00000004 "
        "00000005 00000006 00000007 00000000  00000000 00000000 00000000 00000008\n"
        "00000021  00000000 00000010 00000000 00000000 00000000 00000000 00000000 00000000 "
        "00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000\n"
    ),
    "schedstat": (
        "version 15\ntimestamp 4294948006\n"
        "cpu0 0 0 0 0 0 0 2045936778163039 343796328169361 4767485306\n"
        "domain0 00000000,00000003 212499247 210112015 1861015 1860405436 536440 369\n"
        "cpu1 0 0 0 0 0 0 2017750213460 1125050316 52800\n"
    ),
    "net/softnet_stat": (
        "0000128c 00000001 00000002 00000000 00000000 00000000 00000000 00000000 00000003 "
        "00000004 00000005 00000006 00000000 00000000 00000000\n"
        "00002d06 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 "
        "00000000 00000000 00000000 00000001 00000000 00000000\n"
    ),
    "net/udp": (
        "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode ref pointer drops\n"
        "  110: 00000000:0044 00000000:0000 07 00000010:00000200 00:00000000 00000000     0       "
        " 0 21153 2 0000000000000000 0\n"
        "  111: 0100007F:0035 00000000:0000 07 00000001:00000000 00:00000000 00000000     0       "
        " 0 21154 2 0000000000000000 0\n"
    ),
    "net/udp6": (
        "  sl  local_address                         remote_address                        st "
        "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
    ),
    "net/arp": (
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "192.0.2.1        0x1         0x2         02:fc:00:00:00:05     *        eth0\n"
        "192.0.2.7        0x1         0x2         02:fc:00:00:00:07     *        eth0\n"
        "10.0.0.1         0x1         0x2         02:fc:00:00:00:08     *        docker0\n"
    ),
    "1/mountinfo": (
        "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
        "23 27 0:22 / /sys rw,relatime - sysfs sysfs rw\n"
        "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n"
        "28 27 0:25 / /run rw,nosuid,nodev - tmpfs tmpfs rw,size=4k,mode=755\n"
        "29 27 254:1 / /mnt/my\\040data ro,relatime - ext4 /dev/vdb ro\n"
        "30 27 0:40 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw\n"
        "31 27 0:41 / /srv/nfs rw master:3 - nfs4 server:/export rw,vers=4.2\n"
        "32 27 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n"
    ),
}

BTRFS = "fs/btrfs/0abb23a9-579b-43e6-ad30-227ef47fcb9d"
SYS_FILES: dict[str, str] = {
    "devices/system/cpu/cpu0/topology/physical_package_id": "0\n",
    "devices/system/cpu/cpu0/topology/core_id": "0\n",
    "devices/system/cpu/cpu0/thermal_throttle/core_throttle_count": "5\n",
    "devices/system/cpu/cpu0/thermal_throttle/package_throttle_count": "30\n",
    "devices/system/cpu/cpu1/topology/physical_package_id": "0\n",
    "devices/system/cpu/cpu1/topology/core_id": "0\n",
    "devices/system/cpu/cpu1/thermal_throttle/core_throttle_count": "5\n",
    "devices/system/cpu/cpu1/thermal_throttle/package_throttle_count": "30\n",
    "devices/system/cpu/cpu1/online": "1\n",
    "devices/system/cpu/cpu2/online": "0\n",
    "devices/system/cpu/cpu3/online": "1\n",
    "devices/system/cpu/isolated": "1,3\n",
    "devices/system/cpu/cpu0/cpufreq/cpuinfo_cur_freq": "1800000\n",
    "devices/system/cpu/cpu0/cpufreq/cpuinfo_min_freq": "800000\n",
    "devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq": "3500000\n",
    "devices/system/cpu/cpu0/cpufreq/scaling_cur_freq": "1799998\n",
    "devices/system/cpu/cpu0/cpufreq/scaling_min_freq": "800000\n",
    "devices/system/cpu/cpu0/cpufreq/scaling_max_freq": "3500000\n",
    "devices/system/cpu/cpu0/cpufreq/scaling_governor": "powersave\n",
    "devices/system/cpu/cpu0/cpufreq/scaling_available_governors": "performance powersave\n",
    "devices/system/clocksource/clocksource0/available_clocksource": "tsc kvm-clock \n",
    "devices/system/clocksource/clocksource0/current_clocksource": "tsc\n",
    "block/vda/queue/rotational": "1\n",
    "block/nvme0n1/queue/rotational": "0\n",
    "class/thermal/thermal_zone0/type": "x86_pkg_temp\n",
    "class/thermal/thermal_zone0/temp": "41000\n",
    "class/thermal/cooling_device0/type": "Processor\n",
    "class/thermal/cooling_device0/cur_state": "0\n",
    "class/thermal/cooling_device0/max_state": "3\n",
    "class/power_supply/AC/uevent": (
        "POWER_SUPPLY_NAME=AC\nPOWER_SUPPLY_TYPE=Mains\nPOWER_SUPPLY_ONLINE=1\n"
    ),
    "class/power_supply/BAT0/uevent": (
        "POWER_SUPPLY_NAME=BAT0\nPOWER_SUPPLY_TYPE=Battery\nPOWER_SUPPLY_STATUS=Discharging\n"
        "POWER_SUPPLY_PRESENT=1\nPOWER_SUPPLY_TECHNOLOGY=Li-ion\nPOWER_SUPPLY_CYCLE_COUNT=0\n"
        "POWER_SUPPLY_VOLTAGE_NOW=11770000\nPOWER_SUPPLY_POWER_NOW=5002000\n"
        "POWER_SUPPLY_ENERGY_NOW=36580000\nPOWER_SUPPLY_CAPACITY=81\nPOWER_SUPPLY_TEMP=271\n"
        "POWER_SUPPLY_MODEL_NAME=LNV-45N1\nPOWER_SUPPLY_MANUFACTURER=LGC\n"
    ),
    "class/powercap/intel-rapl/enabled": "1\n",
    "class/powercap/intel-rapl:0/name": "package-0\n",
    "class/powercap/intel-rapl:0/energy_uj": "240422366267\n",
    "class/powercap/intel-rapl:0:0/name": "core\n",
    "class/powercap/intel-rapl:0:0/energy_uj": "118821284256\n",
    "class/powercap/intel-rapl:a/name": "dram\n",
    "class/powercap/intel-rapl:a/energy_uj": "1000000\n",
    "class/dmi/id/bios_vendor": "SeaBIOS\n",
    "class/dmi/id/product_name": "Standard PC (Q35 + ICH9, 2009)\n",
    "class/dmi/id/sys_vendor": "QEMU\n",
    "class/dmi/id/board_serial": "\n",
    "class/watchdog/watchdog0/bootstatus": "1\n",
    "class/watchdog/watchdog0/timeout": "60\n",
    "class/watchdog/watchdog0/identity": "iTCO_wdt\n",
    "class/watchdog/watchdog0/state": "active\n",
    "class/nvme/nvme0/model": "Samsung SSD 970 PRO 512GB\n",
    "class/nvme/nvme0/serial": "S680HF8N190894I\n",
    "class/nvme/nvme0/firmware_rev": "1B2QEXP7\n",
    "class/nvme/nvme0/state": "live\n",
    "class/nvme/nvme0/cntlid": "1\n",
    "devices/system/edac/mc/mc0/ce_count": "1\n",
    "devices/system/edac/mc/mc0/ue_count": "5\n",
    "devices/system/edac/mc/mc0/ce_noinfo_count": "2\n",
    "devices/system/edac/mc/mc0/ue_noinfo_count": "6\n",
    "devices/system/edac/mc/mc0/csrow0/ce_count": "3\n",
    "devices/system/edac/mc/mc0/csrow0/ue_count": "4\n",
    "devices/system/edac/mc/mc0/csrow0/ch0_ce_count": "3\n",
    "devices/system/edac/mc/mc0/csrow0/ch0_dimm_label": "CPU_SrcID#0_Ha#0_Chan#0_DIMM#0\n",
    "fs/xfs/sda1/stats/stats": (
        "extent_alloc 1 872 0 0\nabt 0 0 0 0\nblk_map 61 29 3 1 1 91 0\nbmbt 0 0 0 0\n"
        "dir 3 2 1 52\nig 17 0 0 17 0 17 0\nrw 28 2\nvnodes 0 0 0 0 0 0 0 0\n"
    ),
    f"{BTRFS}/label": "fixture\n",
    f"{BTRFS}/allocation/global_rsv_size": "16777216\n",
    f"{BTRFS}/allocation/data/bytes_reserved": "0\n",
    f"{BTRFS}/allocation/data/raid0/total_bytes": "2147483648\n",
    f"{BTRFS}/allocation/data/raid0/used_bytes": "808189952\n",
    f"{BTRFS}/devices/loop25/size": "20971520\n",
    "fs/btrfs/features/raid1c34": "0\n",
}

NET_DEVICES: dict[str, dict[str, str]] = {
    "lo": {
        "addr_assign_type": "0",
        "address": "00:00:00:00:00:00",
        "broadcast": "00:00:00:00:00:00",
        "carrier": "1",
        "carrier_changes": "0",
        "carrier_up_count": "0",
        "carrier_down_count": "0",
        "dev_id": "0x0",
        "dormant": "0",
        "flags": "0x9",
        "ifalias": "",
        "ifindex": "1",
        "iflink": "1",
        "link_mode": "0",
        "mtu": "65536",
        "name_assign_type": "2",
        "netdev_group": "0",
        "operstate": "unknown",
        "tx_queue_len": "1000",
        "type": "772",
    },
    "eth0": {
        "addr_assign_type": "0",
        "address": "02:fc:00:00:00:01",
        "broadcast": "ff:ff:ff:ff:ff:ff",
        "carrier": "1",
        "carrier_changes": "2",
        "carrier_up_count": "1",
        "carrier_down_count": "1",
        "dev_id": "0x0",
        "dormant": "0",
        "duplex": "full",
        "flags": "0x1003",
        "ifalias": "uplink",
        "ifindex": "4",
        "iflink": "4",
        "link_mode": "0",
        "mtu": "1500",
        "name_assign_type": "1",
        "netdev_group": "0",
        "operstate": "up",
        "speed": "1000",
        "tx_queue_len": "1000",
        "type": "1",
    },
    # A down interface: carrier, dormant, speed and duplex refuse to be read (EINVAL on a
    # real kernel); here they are simply absent.
    "ifb0": {
        "addr_assign_type": "1",
        "address": "b6:37:6c:a3:d4:ab",
        "broadcast": "ff:ff:ff:ff:ff:ff",
        "carrier_changes": "0",
        "dev_id": "0x0",
        "flags": "0x82",
        "ifalias": "",
        "ifindex": "2",
        "iflink": "2",
        "link_mode": "0",
        "mtu": "1500",
        "netdev_group": "0",
        "operstate": "down",
        "tx_queue_len": "32",
        "type": "1",
    },
}

UDEV_FILES: dict[str, str] = {
    "b254:0": (
        "S:disk/by-path/virtio-pci-0000:00:05.0\nE:ID_PATH=virtio-pci-0000:00:05.0\n"
        "E:ID_FS_TYPE=ext4\nE:ID_FS_USAGE=filesystem\nE:ID_FS_UUID=2e6c4a5a\nE:ID_FS_VERSION=1.0\n"
    ),
    "b259:0": (
        "E:ID_MODEL=Samsung SSD 970 PRO 512GB\nE:ID_SERIAL_SHORT=S680HF8N190894I\n"
        "E:ID_WWN=eui.002538b581b1c7d1\nE:ID_REVISION=1B2QEXP7\nE:ID_PATH=pci-0000:01:00.0-nvme-1\n"
    ),
    "b252:0": "E:DM_NAME=vg0-root\nE:DM_UUID=LVM-abc\nE:DM_VG_NAME=vg0\nE:DM_LV_NAME=root\n",
}

ROOT_FILES: dict[str, str] = {
    "etc/os-release": (
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
        'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
        'HOME_URL="https://www.debian.org/"\nSUPPORT_END=2028-06-30\n'
    ),
}


class FakeHost:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.procfs = root / "proc"
        self.sysfs = root / "sys"
        self.rootfs = root / "rootfs"
        self.udev = root / "udev"
        for path in (self.procfs, self.sysfs, self.rootfs, self.udev):
            path.mkdir(parents=True, exist_ok=True)
        self.write(self.procfs, PROC_FILES)
        self.write(self.sysfs, SYS_FILES)
        self.write(self.udev, UDEV_FILES)
        self.write(self.rootfs, ROOT_FILES)
        for device, attributes in NET_DEVICES.items():
            # /sys/class/net/<dev> is a symlink into /sys/devices, as on a real kernel.
            target = self.sysfs / "devices/virtual/net" / device
            self.write(target, attributes)
            link = self.sysfs / "class/net" / device
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target)

    @staticmethod
    def write(base: Path, files: dict[str, str]) -> None:
        for relative, content in files.items():
            path = base / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content if content.endswith("\n") or not content else content + "\n")

    def remove(self, base: Path, *relatives: str) -> None:
        for relative in relatives:
            path = base / relative
            if path.is_dir() and not path.is_symlink():
                for child in sorted(path.rglob("*"), reverse=True):
                    child.unlink() if not child.is_dir() or child.is_symlink() else child.rmdir()
                path.rmdir()
            elif path.exists() or path.is_symlink():
                path.unlink()

    def config(self, **overrides: Any) -> HostMetricsConfig:
        settings: dict[str, Any] = {
            "procfs": self.procfs,
            "sysfs": self.sysfs,
            "rootfs": self.rootfs,
            "udev_data": self.udev,
            "netdev_netlink": False,
        }
        settings.update(overrides)
        return HostMetricsConfig(**settings)

    def context(self) -> ScrapeContext:
        return ScrapeContext.from_config(self.config())

    def collect(self, name: str, **overrides: Any) -> Families:
        collector: Collector = registrations()[name].factory(self.config(**overrides))
        return Families(collector.collect(ScrapeContext.from_config(self.config(**overrides))))


class Families:
    """Metric families by exposed name, with sample lookup by labels."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self.by_name: dict[str, Metric] = {}
        for metric in metrics:
            exposed = metric.name + "_total" if metric.type == "counter" else metric.name
            assert exposed not in self.by_name, f"family {exposed} emitted twice"
            self.by_name[exposed] = metric

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def type(self, name: str) -> str:
        return self.by_name[name].type

    def value(self, name: str, /, **labels: str) -> float:
        matches = [s.value for s in self.by_name[name].samples if s.labels == labels]
        assert len(matches) == 1, f"{name}{labels}: {len(matches)} samples in {self.samples(name)}"
        return float(matches[0])

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [(s.labels, float(s.value)) for s in self.by_name[name].samples]

    def label_values(self, name: str, label: str) -> set[str]:
        return {s.labels[label] for s in self.by_name[name].samples}


def sysfs_files(fixture: Path) -> dict[str, str]:
    """A fixture's ``sys/`` tree (extracted from node_exporter's sys.ttar) for FakeHost.write."""
    root = fixture / "sys"
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


Exposition = dict[str, tuple[str, str, set[tuple[tuple[tuple[str, str], ...], float]]]]


def exposition(metrics: Iterable[Metric]) -> Exposition:
    """Family -> (type, help, {(sorted labels, value)}): order-free, like GatherAndCompare."""
    out: Exposition = {}
    for family in metrics:
        samples = {(tuple(sorted(s.labels.items())), float(s.value)) for s in family.samples}
        out[family.name] = (family.type, family.documentation, samples)
    return out


def assert_same_as_node_exporter(families: Families, fixture: Path) -> None:
    """Every family, type, help text and sample of the fixture's ``node_exporter.prom``."""
    got = exposition(families.by_name.values())
    want = exposition(text_string_to_metric_families((fixture / "node_exporter.prom").read_text()))
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], name
