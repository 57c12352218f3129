"""Seed nexo-agent's positions from Promtail's, so the cut-over neither re-ships nor skips.

Promtail's positions file is YAML: ``positions: {<path>: "<byte offset>",
cursor-<container id>: "<unix seconds>"}``. A path is a file Promtail tailed (a static
target, or a Docker json-file log it was pointed at); a ``cursor-`` key is a container
it read through the Docker API (``docker_sd_configs``), remembered by the second of the
last line it shipped. nexo-agent remembers a file's identity (device, inode, hash of its
first line) with the offset (:mod:`agent.logs.positions`), so each path is looked at now:
it must still exist, hold at least the offset, and have a line ending just before it.
A cursor becomes the offset of the first line of that second in the container's json-file
log, which is where Promtail itself would have resumed (Docker's ``since`` is inclusive).

Run it right after stopping Promtail and before starting nexo-agent: a file rotated or
truncated in between no longer matches its offset and is reported, not seeded.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.convert.report import Report
from agent.convert.yaml_io import line_of, load_with_lines
from agent.logs.dockerjson import decode_record
from agent.logs.positions import PositionsStore
from agent.logs.tail import Fingerprint, SavedPosition, last_line_end, plain_prefix

_CURSOR = "cursor-"
_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")
_DOCKER_LOG = re.compile(r"/containers/([0-9a-f]{64})/\1-json\.log$")
_READ = 64 * 1024


class PositionsError(Exception):
    """The Promtail positions file cannot be read at all (exit 2)."""


@dataclass(frozen=True)
class SeedTargets:
    """What the converted config reads, to key each seeded position as nexo-agent will."""

    files: list[dict[str, Any]]  # logs.files entries: paths, exclude
    docker_enabled: bool
    docker_root: Path


@dataclass(frozen=True)
class Seed:
    key: str
    path: str
    position: SavedPosition


def load_promtail_positions(path: Path) -> dict[Any, Any]:
    """The ``positions`` mapping of Promtail's file (line-aware); raises PositionsError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PositionsError(f"cannot read {path}: {exc}") from exc
    try:
        doc = load_with_lines(text)
    except yaml.YAMLError as exc:
        raise PositionsError(f"{path}: invalid YAML: {exc}") from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict) or not isinstance(doc.get("positions", {}), dict):
        raise PositionsError(f"{path}: not a Promtail positions file (no 'positions' map)")
    positions: dict[Any, Any] = doc.get("positions") or {}
    return positions


def plan_seeds(
    positions: dict[Any, Any], targets: SeedTargets, report: Report, file: str
) -> list[Seed]:
    """One :class:`Seed` per position that can be carried over; the rest reported."""
    seeds: list[Seed] = []
    for raw_key, raw_value in positions.items():
        key = str(raw_key)
        line = line_of(positions, raw_key)
        try:
            if key.startswith(_CURSOR):
                seed = _cursor_seed(key[len(_CURSOR) :], str(raw_value), targets)
            else:
                seed = _path_seed(key, str(raw_value), targets)
        except _Skip as exc:
            report.omitted(file, line, key, str(exc))
            continue
        seeds.append(seed)
    return seeds


def write_seeds(seeds: list[Seed], out: Path) -> str | None:
    """Write the seeds as a fresh nexo positions file; an error message if it cannot."""
    try:
        if out.exists() and out.stat().st_size > 0:
            return f"{out} already exists and is not empty: not overwritten"
    except OSError as exc:
        return f"cannot check {out}: {exc}"
    store = PositionsStore(out)
    for seed in seeds:
        store.set(seed.key, seed.position, path=seed.path)
    if not store.save():
        return f"cannot write {out}: {store.last_error}"
    return None


class _Skip(Exception):
    pass


def _offset(value: str) -> int:
    if not value.isdigit():
        raise _Skip(f"offset {value!r} is not a byte count")
    return int(value)


def _path_seed(path: str, value: str, targets: SeedTargets) -> Seed:
    if not path.startswith("/"):
        raise _Skip("neither an absolute file path nor a Docker container cursor")
    offset = _offset(value)
    abspath = os.path.abspath(path)
    try:
        fd = os.open(abspath, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _Skip("the file no longer exists: nothing to resume") from None
    except OSError as exc:
        raise _Skip(f"cannot open it: {exc.strerror or exc}") from None
    try:
        return Seed(_key_for(abspath, targets), abspath, _position(fd, abspath, offset))
    finally:
        os.close(fd)


def _key_for(abspath: str, targets: SeedTargets) -> str:
    for entry in targets.files:
        for pattern in entry.get("paths", []):
            if abspath in {os.path.abspath(p) for p in glob.glob(pattern, recursive=True)}:
                return f"file:{abspath}"
    match = _DOCKER_LOG.search(abspath)
    if match and targets.docker_enabled:
        return f"docker:{match.group(1)}"
    raise _Skip("no target of the converted config reads this file (not in logs.files)")


def _position(fd: int, path: str, offset: int) -> SavedPosition:
    """The identity nexo-agent's follower compares (tail.py), at ``offset``."""
    st = os.fstat(fd)
    if offset > st.st_size:
        raise _Skip(
            f"offset {offset} is beyond the file's {st.st_size} bytes (rotated or truncated "
            "since Promtail wrote it?)"
        )
    if offset > 0 and os.pread(fd, 1, offset - 1) != b"\n":
        raise _Skip(
            f"offset {offset} is not at a line end (rotated or rewritten since Promtail wrote it?)"
        )
    prefix = plain_prefix(fd)
    return SavedPosition(st.st_dev, st.st_ino, Fingerprint.of(prefix), offset, False)


def _cursor_seed(container_id: str, value: str, targets: SeedTargets) -> Seed:
    if not _CONTAINER_ID.fullmatch(container_id):
        raise _Skip("not a Docker container cursor (journal and other cursors don't carry over)")
    if not targets.docker_enabled:
        raise _Skip("the converted config does not read containers (logs.docker.enabled off)")
    since = _offset(value)
    path = targets.docker_root / "containers" / container_id / f"{container_id}-json.log"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _Skip(
            f"{path} does not exist (container removed, or see --docker-data-root)"
        ) from None
    except OSError as exc:
        raise _Skip(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        size = os.fstat(fd).st_size
        end = last_line_end(fd, size)
        first = _record_time(fd, 0, end)[0]
        if first is not None and first >= since > 0 and not _older_files_done(path, since):
            raise _Skip(
                f"the position (second {since}) lies in a rotated file ({path.name}.1...); "
                "nexo-agent will read this container from the oldest file still there"
            )
        offset = _first_line_at_or_after(fd, since, end)
        return Seed(f"docker:{container_id}", str(path), _position(fd, str(path), offset))
    finally:
        os.close(fd)


def _older_files_done(path: Path, since: int) -> bool:
    """Whether no rotated file (``<log>.1``...) can hold lines from second ``since`` on:
    true when there is none, or the newest one ends before that second."""
    older = Path(f"{path}.1")
    try:
        fd = os.open(older, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return not Path(f"{older}.gz").exists()
    except OSError:
        return False
    try:
        end = last_line_end(fd, os.fstat(fd).st_size)
        take = min(end, 4 * _READ)
        block = os.pread(fd, take, end - take)
        nl = block.rfind(b"\n", 0, len(block) - 1)
        if nl < 0 and take < end:
            return False  # a last line longer than we look at: cannot tell
        second = _record_time(fd, end - take + nl + 1, end)[0]
        return second is not None and second < since
    finally:
        os.close(fd)


def _line_start_at_or_after(fd: int, pos: int, end: int) -> int:
    if pos == 0:
        return 0
    at = pos - 1
    while at < end:
        block = os.pread(fd, min(_READ, end - at), at)
        nl = block.find(b"\n")
        if nl >= 0:
            return at + nl + 1
        at += len(block)
    return end


def _record_time(fd: int, start: int, end: int) -> tuple[int | None, int]:
    """(second of the record starting at ``start`` or None if unreadable, its end)."""
    parts: list[bytes] = []
    at = start
    while at < end:
        block = os.pread(fd, min(_READ, end - at), at)
        nl = block.find(b"\n")
        if nl >= 0:
            parts.append(block[:nl])
            at += nl + 1
            break
        parts.append(block)
        at += len(block)
    record = decode_record(b"".join(parts)) if parts else None
    return (record.ts_ns // 1_000_000_000 if record else None), at


def _first_line_at_or_after(fd: int, since: int, end: int) -> int:
    """Binary search: the start of the first record whose second is >= ``since`` (records
    are in time order: Docker appends them as they are written); ``end`` if none."""
    lo, hi = 0, end
    while lo < hi:
        mid = (lo + hi) // 2
        start = _line_start_at_or_after(fd, mid, end)
        second, stop = _record_time(fd, start, end) if start < hi else (None, start)
        while second is None and stop < hi:  # an unreadable record: look at the next one
            start = stop
            second, stop = _record_time(fd, start, end)
        if start >= hi or second is None:
            hi = mid
        elif second >= since:
            hi = start
        else:
            lo = stop
    return lo
