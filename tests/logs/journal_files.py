"""Real journal files for the journald tests, written by systemd-journal-remote.

``systemd-journal-remote -o FILE.journal -`` turns journal export format on stdin into a
journal file (appending when it exists), the format journald itself writes; journalctl
then reads it with ``--directory``, as the agent does.
"""

from __future__ import annotations

import itertools
import struct
import subprocess
import time
from pathlib import Path

from tests.conftest import require

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT_ID = "5f1e4c2b9a8d47e6b3c1d0a9f8e7d6c5"

_monotonic = itertools.count(1_000_000, 1000)


def journal_remote() -> str:
    require(
        Path(JOURNAL_REMOTE).exists(), "systemd-journal-remote (Debian: systemd-journal-remote)"
    )
    return JOURNAL_REMOTE


def export_entry(fields: dict[str, str | bytes], ts_us: int | None = None) -> bytes:
    """One entry in journal export format; bytes values use the binary field form."""
    out = bytearray()
    ts = ts_us if ts_us is not None else time.time_ns() // 1000
    out += f"__REALTIME_TIMESTAMP={ts}\n__MONOTONIC_TIMESTAMP={next(_monotonic)}\n".encode()
    out += f"_BOOT_ID={BOOT_ID}\n".encode()
    for name, value in fields.items():
        if isinstance(value, bytes) or "\n" in value:
            data = value if isinstance(value, bytes) else value.encode()
            out += name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += f"{name}={value}\n".encode()
    return bytes(out) + b"\n"


def unit_entry(
    unit: str, message: str | bytes, priority: int = 6, transport: str = "stdout"
) -> dict[str, str | bytes]:
    return {
        "_SYSTEMD_UNIT": unit,
        "SYSLOG_IDENTIFIER": unit.removesuffix(".service"),
        "_TRANSPORT": transport,
        "PRIORITY": str(priority),
        "_HOSTNAME": "journal-host",
        "MESSAGE": message,
    }


def write_journal(path: Path, entries: list[dict[str, str | bytes]]) -> None:
    """Append ``entries`` to the journal file ``path`` (created if absent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(export_entry(fields) for fields in entries)
    subprocess.run(
        [journal_remote(), "-o", str(path), "-"],
        input=data,
        check=True,
        capture_output=True,
        timeout=30,
    )
