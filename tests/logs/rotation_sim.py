"""A json-file writer that rotates exactly like Docker (moby ``loggerutils/logfile.go``).

Rotation: close; delete ``<log>.<max_file-1>[.gz]``; rename ``.i-1`` -> ``.i`` for
i = max_file-1 ... 2 (``.gz`` names when compressing); rename ``<log>`` -> ``<log>.1``, or
unlink it when max_file = 1; create ``<log>`` with O_TRUNC; with ``compress`` write
``<log>.1.gz`` in full, then unlink ``<log>.1`` (tests may defer that step).
"""

from __future__ import annotations

import contextlib
import gzip
import os
from pathlib import Path


def docker_record(seq: int, pad: int = 0) -> bytes:
    """One json-file line; the ns in ``time`` makes every record (and fingerprint) unique."""
    message = f"line {seq:07d}" + "x" * pad
    return (
        f'{{"log":"{message}\\n","stream":"stdout","time":"2024-05-01T10:00:00.{seq:09d}Z"}}\n'
    ).encode()


class DockerJsonLog:
    """Appends numbered records to ``path`` and rotates on request, keeping what it wrote."""

    def __init__(self, path: Path, *, max_file: int = 1, compress: bool = False) -> None:
        assert not compress or max_file >= 2, "docker rejects compress without max-file >= 2"
        self.path = path
        self.max_file = max_file
        self.compress = compress
        self.seq = 0
        self.written: list[bytes] = []
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def write_lines(self, count: int, pad: int = 0) -> list[bytes]:
        lines = []
        for _ in range(count):
            self.seq += 1
            lines.append(docker_record(self.seq, pad))
        os.write(self._fd, b"".join(lines))
        self.written.extend(lines)
        return lines

    def write_raw(self, data: bytes) -> None:
        """Bytes outside the record bookkeeping (partial lines, odd content)."""
        os.write(self._fd, data)

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def reopen(self) -> None:
        """Create ``<log>`` afresh (the second half of a rotation done by hand)."""
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o640)

    def rotate(self, *, compress_now: bool = True) -> None:
        os.close(self._fd)
        log = str(self.path)
        ext = ".gz" if self.compress else ""
        if self.max_file >= 2:
            _unlink_if_exists(f"{log}.{self.max_file - 1}{ext}")
            for i in range(self.max_file - 1, 1, -1):
                _rename_if_exists(f"{log}.{i - 1}{ext}", f"{log}.{i}{ext}")
            os.rename(log, f"{log}.1")
        else:
            os.unlink(log)
        self._fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o640)
        if self.compress and compress_now:
            self.compress_rotated()

    def compress_rotated(self) -> None:
        """Docker's background step: ``.1`` -> ``.1.gz`` written completely, then unlink."""
        plain = f"{self.path}.1"
        with open(plain, "rb") as src, gzip.open(plain + ".gz", "wb") as dst:
            dst.write(src.read())
        os.unlink(plain)

    def close(self) -> None:
        os.close(self._fd)


def _unlink_if_exists(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _rename_if_exists(src: str, dst: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.rename(src, dst)
