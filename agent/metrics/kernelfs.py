"""Read /proc and /sys files the cheap way: one ``open``, a read loop, one ``close``.

Every scrape reads a few hundred of these files; going through ``open()`` and a
``TextIOWrapper`` costs several times the syscalls themselves, so the helpers here talk to
``os`` directly. Errors are the caller's business: a collector decides whether a missing
file means "no data on this kernel" or a failure.
"""

from __future__ import annotations

import errno
import os
import re

_O_FLAGS = os.O_RDONLY | os.O_CLOEXEC
_CHUNK = 65536
# procfs's util.SysReadFile: one read() of this many bytes.
_SYSFS_READ_SIZE = 128
# Read errors procfs skips a sysfs statistic for (Fibre Channel, InfiniBand): the file is
# gone, or the driver refuses the read. procfs means to skip EINVAL too
# (``errors.Is(err, os.ErrInvalid)``), but an errno never matches that sentinel in Go;
# this follows the intent rather than failing.
SKIPPED_READ_ERRNOS = frozenset({errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL})
_UINT64_LIMIT = 1 << 64
# strconv.ParseUint digits for an explicit base: no sign, no prefix, no underscores.
_DIGITS = {10: re.compile(r"[0-9]+"), 16: re.compile(r"[0-9A-Fa-f]+")}


def read_bytes(path: str) -> bytes:
    """The whole file.

    A short read means end of file here: sysfs attributes come back in one read, and
    seq_file (most of /proc) fills the caller's buffer until it is full or the records
    run out, so only a full buffer needs another read.
    """
    fd = os.open(path, _O_FLAGS)
    try:
        data = os.read(fd, _CHUNK)
        if len(data) < _CHUNK:
            return data
        chunks = [data]
        while data:
            data = os.read(fd, _CHUNK)
            chunks.append(data)
        return b"".join(chunks)
    finally:
        os.close(fd)


def pread_whole(fd: int) -> bytes:
    """The whole file behind an fd held open across scrapes, read again from offset 0.

    seq_file and kernfs regenerate their content for a read at offset 0, so one ``pread``
    per scrape replaces ``open``/``read``/``close``: a quarter of the cost in cgroupfs,
    where the path walk is most of it.
    """
    data = os.pread(fd, _CHUNK, 0)
    if len(data) < _CHUNK:
        return data
    chunks = [data]
    offset = len(data)
    while data:
        data = os.pread(fd, _CHUNK, offset)
        offset += len(data)
        chunks.append(data)
    return b"".join(chunks)


def open_for_pread(path: str) -> int:
    return os.open(path, _O_FLAGS)


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8", "replace")


def read_value(path: str) -> str:
    """A sysfs attribute: one value, surrounding whitespace (the trailing newline) removed."""
    return read_bytes(path).decode("utf-8", "replace").strip()


def read_int(path: str) -> int:
    return int(read_bytes(path))


def try_value(path: str) -> str | None:
    """The attribute, or None when it is absent or the driver refuses the read (EINVAL...)."""
    try:
        return read_bytes(path).decode("utf-8", "replace").strip()
    except OSError:
        return None


def try_int(path: str, base: int = 10) -> int | None:
    value = try_value(path)
    if value is None:
        return None
    try:
        return int(value, base)
    except ValueError:
        return None


def open_dir(path: str) -> int:
    """A directory fd for :func:`try_value_at`; raises NotADirectoryError for plain files."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def try_value_at(dir_fd: int, name: str) -> str | None:
    """:func:`try_value` relative to an open directory.

    Reading many attributes of one device this way skips the path walk (through the
    /sys/class symlink) for each of them, which is a third of the cost in sysfs.
    """
    try:
        fd = os.open(name, _O_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        return os.read(fd, _CHUNK).decode("utf-8", "replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)


def list_dir(path: str) -> list[str]:
    """Entry names, sorted (stable output order); empty when the directory is absent."""
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def read_sysfs_attribute(path: str) -> str:
    """procfs's ``util.SysReadFile``: one read of at most 128 bytes, whitespace stripped, so a
    longer attribute (an FC ``symbolic_name``) is cut where node_exporter cuts it."""
    return read_bytes(path)[:_SYSFS_READ_SIZE].strip().decode("utf-8", "replace")


def parse_uint(text: str, base: int = 0) -> int:
    """Go's ``strconv.ParseUint(text, base, 64)``, which node_exporter and procfs apply to
    kernel counters; raises ValueError for what Go rejects.

    ``base`` 0 takes the base from the prefix (``0x``, ``0o``, ``0b``, and a bare leading
    ``0`` for octal, which Python's ``int(text, 0)`` refuses); 10 and 16 take digits only.
    Signs, whitespace and values past 2^64-1 are errors.
    """
    if base:
        if _DIGITS[base].fullmatch(text) is None:
            raise ValueError(f"invalid base-{base} unsigned integer {text!r}")
        value = int(text, base)
    else:
        if not text.isascii() or not text[:1].isdigit() or text != text.strip():
            raise ValueError(f"invalid unsigned integer {text!r}")
        if len(text) > 1 and text[0] == "0" and (text[1].isdigit() or text[1] == "_"):
            value = int("0o" + text[1:], 0)
        else:
            value = int(text, 0)
    if value >= _UINT64_LIMIT:
        raise ValueError(f"{text!r} is out of range for uint64")
    return value
