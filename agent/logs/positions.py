"""Acknowledged read positions per target, persisted atomically.

Only offsets Loki acknowledged are stored (at-least-once: a crash re-sends at most what was
in flight). The file is JSON written like Promtail's positions file but safer: a temp file
in the same directory, fsync, rename over the old file, fsync the directory, mode 0600. A
crash at any point leaves either the old or the new file, never a mix; a leftover temp
file is ignored and overwritten by the next save. A file that cannot be parsed is moved
aside to ``<file>.corrupt-<unix ts>`` and the agent starts empty instead of refusing to run.

Format (``version`` 1)::

    {"version": 1, "positions": {"docker:<id>": {"dev": 2049, "inode": 1234,
      "fp_len": 83, "fp": "<blake2b-128 hex>", "offset": 4096, "compressed": false,
      "path": "/var/lib/docker/...-json.log", "updated_at": 1714557600.5,
      "last_ts_ns": 1714557600123456789},
      "journal:system": {"cursor": "s=...;i=1f2;...", "path": "", "updated_at": ...,
      "last_ts_ns": ...}}}

A journal record holds journald's cursor instead of a file position: the agent resumes
with ``journalctl --after-cursor``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from agent.logs.tail import Fingerprint, SavedPosition

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """A target's acknowledged position plus what helps operators and pruning.

    ``updated_at`` is wall-clock Unix seconds (it must survive restarts); ``last_ts_ns`` is
    the Docker timestamp of the last acknowledged line (0 if unknown). A journal target has
    no file position but a ``cursor``: the last acknowledged entry's.
    """

    position: SavedPosition | None
    path: str
    updated_at: float
    last_ts_ns: int = 0
    cursor: str = ""


class PositionsStore:
    """Target key -> :class:`PositionRecord`, kept in memory, saved when dirty.

    Keys are ``docker:<container id>`` or ``file:<absolute path>``. All methods are meant
    for the event loop thread; :meth:`run` does the file I/O in a worker thread on a
    snapshot, so ``set`` may be called while a save is in progress.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._records: dict[str, PositionRecord] = {}
        self._generation = 0  # bumped by every change
        self._saved_generation = 0
        self._first_start = True
        # One writer at a time: a save from run()'s worker thread may still be going when
        # the final save at shutdown starts, and both use the same temp file.
        self._write_lock = threading.Lock()
        # Why the last save failed ("" after a good one); the caller reports it once.
        self.last_error = ""

    # ----------------------------------------------------------------- loading

    @property
    def first_start(self) -> bool:
        """True when no positions file existed (or it was unusable): nothing was ever read."""
        return self._first_start

    def load(self) -> None:
        """Read the file; a missing file means first start, a corrupt one is moved aside."""
        self._records.clear()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._first_start = True
            return
        except OSError as exc:
            # Unreadable (EACCES, EIO): keep the file for the operator, start empty.
            log.error("positions file %s unreadable, starting empty: %s", self.path, exc)
            self._first_start = True
            return
        try:
            records = _decode(raw)
        except ValueError as exc:
            self._move_aside(exc)
            self._first_start = True
            return
        self._records = records
        self._first_start = False
        self._generation = self._saved_generation = 0

    def _move_aside(self, reason: Exception) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(self._clock())}")
        try:
            os.replace(self.path, aside)
        except OSError as exc:
            log.error(
                "positions file %s is corrupt (%s) and could not be moved: %s",
                self.path,
                reason,
                exc,
            )
            return
        log.error(
            "positions file %s is corrupt (%s); moved to %s, starting empty",
            self.path,
            reason,
            aside,
        )

    # -------------------------------------------------------------- accessors

    def get(self, key: str) -> PositionRecord | None:
        return self._records.get(key)

    def set(self, key: str, position: SavedPosition, *, path: str, last_ts_ns: int = 0) -> None:
        """Record the acknowledged position of ``key`` (call after Loki answered 2xx)."""
        self._records[key] = PositionRecord(position, path, self._clock(), last_ts_ns)
        self._generation += 1

    def set_cursor(self, key: str, cursor: str, *, path: str, last_ts_ns: int = 0) -> None:
        """Record the journal cursor of the last entry Loki acknowledged for ``key``."""
        self._records[key] = PositionRecord(None, path, self._clock(), last_ts_ns, cursor)
        self._generation += 1

    def remove(self, key: str) -> None:
        """Forget ``key`` (container destroyed and drained)."""
        if self._records.pop(key, None) is not None:
            self._generation += 1

    def __iter__(self) -> Iterator[str]:
        """The keys, as a snapshot (safe to ``remove`` while iterating)."""
        return iter(list(self._records))

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def prune(self, max_age_s: float, keep: Collection[str] = ()) -> list[str]:
        """Drop entries not updated for ``max_age_s``, except ``keep`` (targets still
        followed, whose position may simply be idle). Returns the removed keys."""
        cutoff = self._clock() - max_age_s
        stale = [k for k, r in self._records.items() if r.updated_at < cutoff and k not in keep]
        for key in stale:
            self.remove(key)
        return stale

    # ----------------------------------------------------------------- saving

    @property
    def dirty(self) -> bool:
        return self._generation != self._saved_generation

    def save(self) -> bool:
        """Write the file if anything changed. Returns False (and logs) on an I/O error,
        leaving the store dirty so the next call retries; never raises ``OSError``."""
        if not self.dirty:
            return True
        generation, payload = self._generation, self._encode()
        if not self._write(payload):
            return False
        self._saved_generation = generation
        return True

    async def run(self, sync_interval: float) -> None:
        """Save every ``sync_interval`` seconds until cancelled, then save once more."""
        try:
            while True:
                await asyncio.sleep(sync_interval)
                if not self.dirty:
                    continue
                generation, payload = self._generation, self._encode()
                if await asyncio.to_thread(self._write, payload):
                    self._saved_generation = generation
        finally:
            self.save()

    def _encode(self) -> bytes:
        return orjson.dumps(
            {
                "version": FORMAT_VERSION,
                "positions": {key: _record_to_json(r) for key, r in self._records.items()},
            },
            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
        )

    def _write(self, payload: bytes) -> bool:
        with self._write_lock:
            return self._write_locked(payload)

    def _write_locked(self, payload: bytes) -> bool:
        directory = self.path.parent
        tmp = directory / f".{self.path.name}.tmp"
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.fchmod(fd, 0o600)  # an old temp file may have other bits
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            self.last_error = exc.strerror or str(exc)
            log.debug("could not save positions to %s: %s", self.path, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()
            return False
        self.last_error = ""
        return True


def _record_to_json(record: PositionRecord) -> dict[str, Any]:
    pos = record.position
    if pos is None:
        return {
            "cursor": record.cursor,
            "path": record.path,
            "updated_at": record.updated_at,
            "last_ts_ns": record.last_ts_ns,
        }
    return {
        "dev": pos.dev,
        "inode": pos.inode,
        "fp_len": pos.fingerprint.length,
        "fp": pos.fingerprint.digest,
        "offset": pos.offset,
        "compressed": pos.compressed,
        "path": record.path,
        "updated_at": record.updated_at,
        "last_ts_ns": record.last_ts_ns,
    }


def _decode(raw: bytes) -> dict[str, PositionRecord]:
    """Parse the whole file or raise ``ValueError``; a bad entry is skipped with a warning."""
    doc = orjson.loads(raw)  # orjson.JSONDecodeError is a ValueError
    if not isinstance(doc, dict) or not isinstance(doc.get("positions"), dict):
        raise ValueError("no 'positions' object")
    if doc.get("version") != FORMAT_VERSION:
        raise ValueError(f"unsupported version {doc.get('version')!r}")
    records: dict[str, PositionRecord] = {}
    for key, entry in doc["positions"].items():
        try:
            records[key] = _record_from_json(entry)
        except (TypeError, KeyError, ValueError) as exc:
            log.warning("positions file: dropping malformed entry %r: %s", key, exc)
    return records


def _record_from_json(entry: Any) -> PositionRecord:
    if not isinstance(entry, dict):
        raise TypeError("entry is not an object")
    if "cursor" in entry:
        cursor, updated, last = (
            entry["cursor"],
            entry.get("updated_at", 0.0),
            entry.get("last_ts_ns", 0),
        )
        if not isinstance(cursor, str) or not cursor:
            raise ValueError("cursor must be a non-empty string")
        if type(last) is not int or not isinstance(updated, int | float):
            raise TypeError("last_ts_ns must be an integer, updated_at a number")
        return PositionRecord(None, str(entry.get("path", "")), float(updated), last, cursor)
    ints = {name: entry[name] for name in ("dev", "inode", "fp_len", "offset")}
    for name, value in ints.items():
        if type(value) is not int or value < 0:
            raise ValueError(f"{name} must be a non-negative integer")
    if not isinstance(entry["fp"], str) or not isinstance(entry["compressed"], bool):
        raise TypeError("fp must be a string, compressed a boolean")
    last_ts_ns = entry.get("last_ts_ns", 0)
    updated_at = entry.get("updated_at", 0.0)
    if type(last_ts_ns) is not int or not isinstance(updated_at, int | float):
        raise TypeError("last_ts_ns must be an integer, updated_at a number")
    position = SavedPosition(
        ints["dev"],
        ints["inode"],
        Fingerprint(ints["fp_len"], entry["fp"]),
        ints["offset"],
        entry["compressed"],
    )
    return PositionRecord(position, str(entry.get("path", "")), float(updated_at), last_ts_ns)
