"""Per-interface network counters from a container's own network namespace.

Interfaces are not cgroup resources: ``/proc/<pid>/net/dev`` shows the namespace of that
process, so reading it through the container's main PID gives the container's view (all
host NICs for ``--network host``, as with cAdvisor). Interfaces whose name starts with
``lo``, ``veth``, ``docker`` or ``nerdctl`` are skipped, exactly like cAdvisor's
``isIgnoredDevice``: dashboards sum over ``interface`` and must not count loopback or the
host side of bridge links.
"""

from __future__ import annotations

from typing import NamedTuple

from agent.metrics.kernelfs import read_bytes

IGNORED_PREFIXES = (b"lo", b"veth", b"docker", b"nerdctl")


class InterfaceCounters(NamedTuple):
    interface: str
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int


def parse_net_dev(data: bytes) -> list[InterfaceCounters]:
    """``/proc/net/dev``: two header lines, then ``name: rx(8 fields) tx(8 fields)``."""
    found = []
    for line in data.splitlines()[2:]:
        name, sep, rest = line.partition(b":")
        if not sep:
            continue
        name = name.strip()
        if name.lower().startswith(IGNORED_PREFIXES):
            continue
        f = rest.split()
        if len(f) < 16:
            continue
        found.append(
            InterfaceCounters(
                name.decode("utf-8", "replace"),
                int(f[0]),
                int(f[1]),
                int(f[2]),
                int(f[3]),
                int(f[8]),
                int(f[9]),
                int(f[10]),
                int(f[11]),
            )
        )
    return found


def read_interfaces(procfs: str, pid: int) -> list[InterfaceCounters]:
    """Raises ``OSError`` when the process is gone."""
    return parse_net_dev(read_bytes(f"{procfs}/{pid}/net/dev"))
