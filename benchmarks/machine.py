"""The machine a result was measured on, recorded beside every figure.

A number without its machine cannot be compared or rerun, so each result carries the CPU
model, core count, memory, kernel, OS, Python, Docker, the virtualisation (a VM's steal
time shows up as agent CPU) and the load average before and after the run (other work on
the host competes with both the agent and the workload).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any


def _first(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            name, sep, value = line.partition(":" if ":" in line else "=")
            if sep and name.strip() == key:
                return value.strip().strip('"')
    except OSError:
        pass
    return "unknown"


def _command(*cmd: str) -> str:
    if shutil.which(cmd[0]) is None:
        return "unknown"
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.stdout or out.stderr else ""


def _docker_version() -> str:
    try:
        import docker

        client = docker.from_env(timeout=5)
        version = str(client.version().get("Version", "unknown"))
        client.close()
        return version
    except Exception:
        return "unavailable"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def describe() -> dict[str, Any]:
    """The machine now; ``load_average_end`` is filled in when the scenario has run."""
    mem_kib = _first("/proc/meminfo", "MemTotal").split()[0]
    cgroup = "v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "v1"
    return {
        "cpu_model": _first("/proc/cpuinfo", "model name"),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_mib": int(mem_kib) // 1024 if mem_kib.isdigit() else None,
        "kernel": platform.release(),
        "os": _first("/etc/os-release", "PRETTY_NAME"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "docker": _docker_version(),
        "cgroup": cgroup,
        "virtualization": _command("systemd-detect-virt") or "none",
        "load_average_start": load_average(),
    }


def one_line(machine: dict[str, Any]) -> str:
    """``AMD EPYC, 2 CPUs, 3.8 GiB, kernel 6.1, Debian 12, CPython 3.11.2, load 1.0 -> 1.2``."""
    memory = machine.get("memory_mib")
    ram = f"{memory / 1024:.1f} GiB RAM" if memory else "RAM unknown"
    start = machine.get("load_average_start") or ["?"]
    end = machine.get("load_average_end") or ["?"]
    return (
        f"{machine.get('cpu_model')}, {machine.get('logical_cpus')} logical CPUs, {ram}, "
        f"kernel {machine.get('kernel')}, {machine.get('os')}, {machine.get('python')}, "
        f"Docker {machine.get('docker')}, cgroup {machine.get('cgroup')}, "
        f"virtualization {machine.get('virtualization')}, "
        f"load average (1 min) {start[0]} -> {end[0]}"
    )
