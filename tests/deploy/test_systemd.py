"""The bare-host unit passes ``systemd-analyze verify`` and is hardened.

systemd-analyze checks that ExecStart exists, so it runs against a scratch root holding
the unit, a stand-in /opt/nexo-agent/bin/nexo-agent and a copy of the host's system units
(for the targets the unit orders itself against); PID 1 need not be systemd."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require, require_binary
from tests.deploy.expressions import DEPLOY

UNIT = DEPLOY / "systemd" / "nexo-agent.service"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")


@pytest.fixture
def scratch_root(tmp_path: Path) -> Path:
    require(SYSTEM_UNITS.is_dir(), "systemd's units in /usr/lib/systemd/system")
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system" / UNIT.name)
    exec_start = re.search(r"^ExecStart=(\S+)", UNIT.read_text(), re.M)
    assert exec_start
    binary = root / exec_start.group(1).lstrip("/")
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    return root


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary("systemd-analyze")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


def test_unit_passes_systemd_analyze_verify_without_warnings(scratch_root: Path) -> None:
    result = analyze("verify", "--man=no", f"--root={scratch_root}", UNIT.name)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # unknown keys are only warnings


def test_unit_exposure_is_rated_ok_by_systemd_analyze_security(scratch_root: Path) -> None:
    result = analyze(
        "security", "--offline=yes", "--threshold=30", f"--root={scratch_root}", UNIT.name
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert re.search(r"Overall exposure level for nexo-agent.service: [0-2]\.\d OK", result.stdout)


def test_unit_is_read_only_except_positions_and_cannot_gain_privileges() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    service = parser["Service"]
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["StateDirectory"] == "nexo-agent"  # /var/lib/nexo-agent, writable
    assert service["CapabilityBoundingSet"] == "CAP_DAC_READ_SEARCH"
    assert "--config /etc/nexo-agent/agent.yaml" in service["ExecStart"]
