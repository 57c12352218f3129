"""ipvs against node_exporter's proc/net/ip_vs* fixtures and its expected node_ipvs_* output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import agent.metrics.host.ipvs as ipvs
from agent.metrics.host.registry import NoDataError, registrations
from tests.metrics.host.hosttree import FakeHost, Families

FIXTURES = Path(__file__).parent / "fixtures" / "ipvs"
STATS_HEADER = (
    "   Total Incoming Outgoing         Incoming         Outgoing\n"
    "   Conns  Packets  Packets            Bytes            Bytes\n"
)
IP_VS_HEADER = (
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n"
)


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    host = FakeHost(tmp_path)
    (host.procfs / "net").mkdir(exist_ok=True)
    for name in ("ip_vs", "ip_vs_stats"):
        shutil.copyfile(FIXTURES / name, host.procfs / "net" / name)
    return host


Sample = tuple[tuple[str, str], ...]
Exposition = dict[str, tuple[str, str, set[Sample]]]


def sample(labels: dict[str, str], value: float) -> Sample:
    """Order-free and exact, like GatherAndCompare."""
    return (*sorted(labels.items()), ("value", repr(float(value))))


def exposed(prom_file: str) -> Exposition:
    """Exposed family name -> (type, help, samples) of an upstream output file."""
    out = {}
    for family in text_string_to_metric_families((FIXTURES / prom_file).read_text()):
        name = family.name + "_total" if family.type == "counter" else family.name
        samples = {sample(s.labels, s.value) for s in family.samples}
        out[name] = (family.type, family.documentation, samples)
    return out


def as_exposed(families: Families) -> Exposition:
    """The same view of our families; empty ones are dropped, as NodeCollector does."""
    return {
        name: (family.type, family.documentation, {sample(*s) for s in samples})
        for name, family in families.by_name.items()
        if (samples := families.samples(name))
    }


def test_ipvs_is_registered_and_enabled_by_default() -> None:
    assert registrations()["ipvs"].default_enabled


def test_output_equals_node_exporter_e2e_for_its_fixtures(host: FakeHost) -> None:
    assert as_exposed(host.collect("ipvs")) == exposed("node_exporter.prom")


def test_totals_are_hex_counters_from_the_third_line(host: FakeHost) -> None:
    families = host.collect("ipvs")
    assert families.type("node_ipvs_connections_total") == "counter"
    assert families.value("node_ipvs_connections_total") == 0x16AA370
    assert families.value("node_ipvs_incoming_bytes_total") == 0x51D8C8883AB3
    fwm = {"local_address": "", "local_port": "0", "proto": "FWM", "local_mark": "10001000"}
    assert families.type("node_ipvs_backend_weight") == "gauge"
    assert (
        families.value(
            "node_ipvs_backend_connections_active",
            remote_address="192.168.49.32",
            remote_port="3306",
            **fwm,
        )
        == 321
    )


@pytest.mark.parametrize(
    ("setting", "prom_file"),
    [
        ("", "node_exporter_lbs_none.prom"),
        ("local_port", "node_exporter_lbs_local_port.prom"),
        ("local_port,local_address", "node_exporter_lbs_local_address_local_port.prom"),
    ],
)
def test_fewer_backend_labels_sum_backends_like_upstream(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch, setting: str, prom_file: str
) -> None:
    monkeypatch.setattr(ipvs, "BACKEND_LABELS", setting)
    assert as_exposed(host.collect("ipvs")) == exposed(prom_file)


def test_unknown_backend_labels_are_refused_with_upstream_message(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ipvs, "BACKEND_LABELS", "invalid_label,local_port,bad_label")
    with pytest.raises(ValueError, match='unknown IPVS backend labels: "bad_label, invalid_label"'):
        registrations()["ipvs"].factory(host.config())


def test_backends_with_equal_default_labels_are_summed(host: FakeHost) -> None:
    # procfs knows no SCTP services: their real servers land under the service before,
    # and node_exporter sums them with that service's identical backend.
    host.write(
        host.procfs,
        {
            "net/ip_vs": IP_VS_HEADER
            + "TCP  C0A80016:0CEA wlc\n"
            + "  -> C0A85216:0CEA      Tunnel  100    248        2\n"
            + "SCTP  C0A80017:0CEA wlc\n"
            + "  -> C0A85216:0CEA      Tunnel  50     2          1\n"
        },
    )
    families = host.collect("ipvs")
    labels = {
        "local_address": "192.168.0.22",
        "local_port": "3306",
        "remote_address": "192.168.82.22",
        "remote_port": "3306",
        "proto": "TCP",
        "local_mark": "",
    }
    assert families.value("node_ipvs_backend_connections_active", **labels) == 250
    assert families.value("node_ipvs_backend_connections_inactive", **labels) == 3
    assert families.value("node_ipvs_backend_weight", **labels) == 150
    assert len(families.samples("node_ipvs_backend_weight")) == 1


def test_ipv6_addresses_print_like_go(host: FakeHost) -> None:
    host.write(
        host.procfs,
        {
            "net/ip_vs": IP_VS_HEADER
            + "UDP  [DEAD:BEEF:0000:0000:0000:0000:0000:0001]:1F90 rr\n"
            + "  -> [0000:0000:0000:0000:0000:FFFF:C0A8:0001]:0035  Masq  1  0  7\n"
        },
    )
    families = host.collect("ipvs")
    assert families.samples("node_ipvs_backend_connections_inactive") == [
        (
            {
                "local_address": "dead:beef::1",
                "local_port": "8080",
                "remote_address": "192.168.0.1",  # IPv4-mapped, as net.IP.String prints it
                "remote_port": "53",
                "proto": "UDP",
                "local_mark": "",
            },
            7.0,
        )
    ]


def test_short_and_unknown_lines_are_skipped_like_procfs(host: FakeHost) -> None:
    host.write(
        host.procfs,
        {
            "net/ip_vs": IP_VS_HEADER
            + "TCP\n"
            + "FWM  7 wlc\n"
            + "  -> C0A85216:0CEA      Tunnel  100\n"
            + "garbage line here\n"
            + "  -> C0A85216:0CEA      Route  3    4          5\n"
        },
    )
    families = host.collect("ipvs")
    assert families.samples("node_ipvs_backend_weight") == [
        (
            {
                "local_address": "",
                "local_port": "0",
                "remote_address": "192.168.82.22",
                "remote_port": "3306",
                "proto": "FWM",
                "local_mark": "7",
            },
            3.0,
        )
    ]


@pytest.mark.parametrize(
    "backend",
    [
        "  -> C0A85216:0CEA      Tunnel  -1     0          0",  # not a uint
        "  -> C0A85216:0CEA      Tunnel  0x10   0          0",  # ParseUint base 10 only
        "  -> C0A85216:0CEA      Tunnel  1      0          18446744073709551616",  # > uint64
        "  -> C0A8521:0CEA       Tunnel  1      0          0",  # neither IPv4 nor IPv6 width
        "  -> C0A8521G:0CEA      Tunnel  1      0          0",  # not hex
        "  -> C0A85216:0xEA      Tunnel  1      0          0",  # port not hex digits
    ],
)
def test_malformed_backend_fails_the_scrape_like_procfs(host: FakeHost, backend: str) -> None:
    host.write(host.procfs, {"net/ip_vs": IP_VS_HEADER + "TCP  C0A80016:0CEA wlc\n" + backend})
    with pytest.raises(ValueError):
        host.collect("ipvs")


@pytest.mark.parametrize(
    ("stats", "message"),
    [
        (STATS_HEADER, "too short"),
        (STATS_HEADER + " 16AA370 E33656E5 0 51D8C8883AB3\n\n", "number of fields"),
        (STATS_HEADER + " 16AA370 E33656E5 0 51D8C8883AB3 -1\n\n", "invalid"),
    ],
)
def test_corrupt_ip_vs_stats_fails_the_scrape(host: FakeHost, stats: str, message: str) -> None:
    host.write(host.procfs, {"net/ip_vs_stats": stats})
    with pytest.raises(ValueError, match=message):
        host.collect("ipvs")


def test_without_the_ip_vs_module_there_is_no_data(host: FakeHost) -> None:
    host.remove(host.procfs, "net/ip_vs_stats", "net/ip_vs")
    with pytest.raises(NoDataError):
        host.collect("ipvs")


def test_ip_vs_missing_beside_ip_vs_stats_is_a_failure(host: FakeHost) -> None:
    # Upstream maps only a missing ip_vs_stats to ErrNoData.
    host.remove(host.procfs, "net/ip_vs")
    with pytest.raises(FileNotFoundError):
        host.collect("ipvs")


def test_no_virtual_services_still_reports_totals(host: FakeHost) -> None:
    host.write(host.procfs, {"net/ip_vs": IP_VS_HEADER})
    families = host.collect("ipvs")
    assert families.value("node_ipvs_outgoing_packets_total") == 0
    assert families.samples("node_ipvs_backend_weight") == []
