"""Follow one log file across Docker json-file rotation and truncation.

A :class:`FileFollower` hands out :class:`Chunk` values: runs of complete ``\\n``-terminated
lines with their byte offsets and the identity of the file they came from, so the pipeline
can commit "everything up to offset N of file F" once Loki acknowledged it, and resume there
after a restart (:class:`SavedPosition`). Reads are plain ``pread`` calls on regular files,
bounded by ``read_size``; the follower never sleeps, the pipeline polls it.

Docker's rotation (moby ``daemon/logger/loggerutils/logfile.go``), checked before each
write once the file reached ``max-size``: close the file; delete ``<log>.<max-file - 1>[.gz]``;
rename ``.i-1`` -> ``.i`` (i = max-file - 1 ... 2); rename ``<log>`` -> ``<log>.1`` (or
*unlink* ``<log>`` when max-file = 1); create a fresh ``<log>``; with ``compress`` a goroutine
then writes ``<log>.1.gz`` in full and only afterwards unlinks ``<log>.1`` (the next rotation
waits for it). Nothing is ever written to a rotated inode again.

Cases handled:

- **Partial line**: trailing bytes without ``\\n`` stay buffered and are never emitted.
  A rotated-away file that ends without ``\\n`` reports its tail as :class:`Lost`
  (``unterminated``); a line over ``max_line_bytes`` is skipped to its ``\\n`` and reported
  (``line_too_long``) so one runaway writer cannot exhaust memory.
- **Rotation, any max-file**: the open fd keeps the old inode readable even when it was
  renamed, unlinked or replaced by ``.1.gz``. When ``<log>`` names another inode, the old
  fd is drained to EOF again (Docker may have written between our EOF and the ``stat``),
  then the files newer than it are read oldest first: if the old file now sits at
  ``<log>.k`` (plain: same dev/inode; ``.k.gz``: same fingerprint) then ``.k-1`` ... ``.1``
  and finally ``<log>``, each from offset 0, ``.gz`` ones through gzip with offsets counted
  in decompressed bytes. For an index with both ``.k`` and ``.k.gz`` the plain file wins
  (the ``.gz`` may still be being written). An index missing in between (deleted by
  someone else) is reported as :class:`Lost` (``rotated_away``, one file per index).
- **Falling behind**: while data flows the path is re-checked every ``rotation_check_s``
  (and :meth:`FileFollower.check_rotation` can be called while the pipeline is not
  reading); each newer file found is opened at once and kept open (at most
  ``max_held_files``; beyond that, newer files are looked up in the chain once the
  reader gets there) so Docker deleting it later cannot lose it.
- **Truncation** (``truncate -s0``, ``>file``): same inode and ``size`` below our read
  position, or same inode whose first line changed (truncated and refilled past our
  offset between two polls) -> restart at 0, counted in ``stats.truncations``.
- **Restart**: :meth:`FileFollower.open` with a :class:`SavedPosition` resumes in
  ``<log>`` when dev/inode/fingerprint match; otherwise it looks for the saved file in
  ``.1``, ``.2``, ... (plain by dev/inode + fingerprint, ``.N.gz`` by fingerprint, the
  decompressed prefix skipped) and continues from there through the newer files. Same
  inode at ``<log>`` with another fingerprint is inode reuse: a new file.
- **Saved file gone** (rotated away while the agent was down): :class:`Lost` with an
  unknown byte count; every file still in the chain is newer than the lost one (Docker
  deletes oldest first) and is read, oldest first, then ``<log>``.
- **Path missing**: normal for the instant between rename and create. Missing for longer
  than ``missing_grace_s`` once every held file is drained -> :attr:`FileFollower.finished`
  (container destroyed); the pipeline drains and forgets the target.
- **Errors** (EACCES, EIO, not a regular file): never raised; :attr:`FileFollower.error`
  holds the state, a :class:`ReadFailed` event is queued once per new error, and the
  operation is retried after ``retry_interval_s``. A corrupt ``.gz`` cannot get better: it
  is reported as :class:`Lost` (``unreadable``) and skipped.

Not handled (cannot be, from the files alone):

- **max-file = 1 with two or more rotations between two looks at the path**: the
  intermediate inode was unlinked before we could open it and nothing on disk names it.
  Keeping the pipeline polling (it re-checks the path at least every ``rotation_check_s``
  while reading, and should call :meth:`FileFollower.check_rotation` while stalled)
  narrows the window; what slips through is silent.
- Likewise with max-file >= 2 when the file we were reading was deleted from the end of the
  chain: files between it and the oldest one still present may have gone too; that can't be
  told apart from "nothing missing", so it is counted in ``stats.possible_gaps`` only.
- ``copytruncate`` rotation by other tools: lines written between copy and truncate are
  lost by design of that scheme.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import stat
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

_T = TypeVar("_T")

# The fingerprint covers the first line up to this many bytes. Docker puts "time" at the
# end of each record, so hashing the whole first line (not only its first few hundred
# bytes) tells apart two rotated files that start with the same long message.
FINGERPRINT_MAX = 16 * 1024
# Siblings <log>.1 ... are scanned until two consecutive indices are missing (during
# Docker's rename cascade one index can be briefly absent).
_MAX_SIBLINGS = 1000
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """Hash of a file's first line (at most :data:`FINGERPRINT_MAX` bytes).

    ``length`` is how many leading bytes were hashed, so a file can be matched by hashing
    its own first ``length`` bytes. ``length == 0`` (empty file) identifies nothing.
    """

    length: int
    digest: str

    @staticmethod
    def of(prefix: bytes) -> Fingerprint:
        return Fingerprint(len(prefix), _digest(prefix))


EMPTY_FINGERPRINT = Fingerprint(0, "")


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """Which file a chunk came from: inode, first-line fingerprint, gzip or not.

    ``path`` is where the file was when it was opened (diagnostics only, not compared).
    """

    dev: int
    inode: int
    fingerprint: Fingerprint
    compressed: bool
    path: str = field(compare=False)


@dataclass(frozen=True, slots=True)
class SavedPosition:
    """What the positions file stores per target: a file identity and an offset in it.

    ``offset`` counts decompressed bytes when ``compressed``; it always sits at a line
    boundary (the end of an acknowledged line).
    """

    dev: int
    inode: int
    fingerprint: Fingerprint
    offset: int
    compressed: bool = False


@dataclass(frozen=True, slots=True)
class Chunk:
    """One or more complete lines (each ending in ``\\n``) and where they sit in the file.

    Line ``i`` ends at ``start_offset + len(line_0) + ... + len(line_i)``; ``end_offset``
    is ``start_offset + len(data)``.
    """

    data: bytes
    start_offset: int
    end_offset: int
    file_id: FileIdentity


LossReason = Literal["rotated_away", "unterminated", "line_too_long", "unreadable"]


@dataclass(frozen=True, slots=True)
class Lost:
    """Data that will never be read. ``bytes`` is ``None`` when the amount is unknown.

    ``files`` counts files lost wholly or in part (0 when only bytes of a file we did read
    were skipped, as for ``line_too_long`` and ``unterminated``).
    """

    reason: LossReason
    path: str
    files: int
    bytes: int | None
    # When ``bytes`` is unknown: what is known lost at least (whole files rotated away
    # held at least Docker's max-size each; 0 = nothing known).
    min_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Truncated:
    """The file shrank under us (or was refilled with other content); reading restarts at 0."""

    file_id: FileIdentity
    at_offset: int


@dataclass(frozen=True, slots=True)
class Rotated:
    """Reading moved from a drained file to the next newer one."""

    previous: FileIdentity
    next_path: str


@dataclass(frozen=True, slots=True)
class ReadFailed:
    """An error state was entered (queued once, not once per retry)."""

    path: str
    errno: int | None
    message: str


FollowEvent = Lost | Truncated | Rotated | ReadFailed


@dataclass(slots=True)
class FollowerStats:
    """Running totals since the follower was opened."""

    rotations: int = 0
    truncations: int = 0
    lost_files: int = 0
    lost_bytes: int = 0
    read_errors: int = 0
    possible_gaps: int = 0


@dataclass(frozen=True, slots=True)
class FollowOptions:
    """Tunables; the defaults suit Docker json-file logs polled every 50 ms to 1 s."""

    read_size: int = 256 * 1024
    # Memory guard for one unterminated line; Docker records are at most ~100 KiB.
    max_line_bytes: int = 8 * 1024 * 1024
    missing_grace_s: float = 2.0
    retry_interval_s: float = 1.0
    rotation_check_s: float = 0.5
    # Newer files opened ahead of the reader. Each pins a rotated file's disk space once
    # Docker deletes it, so this bounds the extra disk use to max_held_files * max-size.
    max_held_files: int = 4
    # Docker's max-size for this log (0: unknown): a file rotates away only once it holds
    # that much, which bounds from below what a rotation gap lost.
    rotated_file_bytes: int = 0


class _CorruptGzip(Exception):
    """A ``.gz`` that cannot be decompressed (further); retrying will not help."""


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class _Sibling:
    index: int
    path: str
    dev: int
    inode: int
    compressed: bool


class _Source:
    """One open file: fd (+ gzip stream), identity, consumed offset and partial-line buffer."""

    __slots__ = (
        "compressed",
        "dev",
        "discarded",
        "discarding",
        "fd",
        "fp",
        "fp_complete",
        "gz",
        "identity",
        "idle",
        "inode",
        "last_mtime_ns",
        "last_size",
        "offset",
        "path",
        "pending",
        "raw",
        "skip",
        "unreadable",
    )

    def __init__(self, path: str, compressed: bool, keep_path: str | None = None) -> None:
        fd = os.open(path, _OPEN_FLAGS)
        path = keep_path or path
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                code = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
                raise OSError(code, "not a regular file", path)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.raw: io.FileIO | None = None
        self.gz: gzip.GzipFile | None = None
        if compressed:
            self.raw = io.FileIO(fd, "rb", closefd=True)  # owns fd from here on
            self.gz = gzip.GzipFile(fileobj=self.raw, mode="rb")
        self.path = path
        self.dev = st.st_dev
        self.inode = st.st_ino
        self.compressed = compressed
        self.last_mtime_ns = st.st_mtime_ns
        self.last_size = st.st_size
        # Bytes of the file consumed: emitted in chunks or skipped. pending follows it.
        self.offset = 0
        self.pending = bytearray()
        self.discarding = False
        self.discarded = 0
        self.skip = 0
        # Set at EOF of the file at the path; the next read re-checks for truncation.
        self.idle = False
        self.fp = EMPTY_FINGERPRINT
        self.fp_complete = False
        self.identity = FileIdentity(self.dev, self.inode, self.fp, compressed, path)
        # A corrupt .gz is reported when it is read, in order, not when it is opened.
        self.unreadable = ""
        try:
            self.refresh_fingerprint()
        except BaseException:
            self.close()
            raise

    @property
    def read_pos(self) -> int:
        return self.offset + len(self.pending)

    def refresh_fingerprint(self) -> None:
        """Hash the first line once it is complete (plain files grow; ``.gz`` ones don't)."""
        if self.fp_complete:
            return
        if self.gz is not None:
            # Only called right after opening, before the stream is read.
            self.fp_complete = True
            try:
                prefix = _gz_prefix(self.gz)
                self.gz.rewind()
            except _CorruptGzip as exc:
                self.unreadable = str(exc)
                return
        else:
            prefix = plain_prefix(self.fd)
            self.fp_complete = prefix.endswith(b"\n") or len(prefix) >= FINGERPRINT_MAX
        if len(prefix) != self.fp.length:
            self.fp = Fingerprint.of(prefix)
            self.identity = FileIdentity(self.dev, self.inode, self.fp, self.compressed, self.path)

    def first_bytes_match(self, fp: Fingerprint) -> bool:
        """Whether this (plain) file still starts with the bytes ``fp`` was taken from."""
        return _plain_matches(self.fd, fp)

    def read(self, size: int) -> bytes:
        if self.gz is None:
            return os.pread(self.fd, size, self.read_pos)
        if self.unreadable:
            raise _CorruptGzip(self.unreadable)
        try:
            return self.gz.read(size)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise _CorruptGzip(str(exc)) from exc

    def reset(self) -> None:
        """Start over at 0 (plain files only: truncation)."""
        self.offset = 0
        self.pending.clear()
        self.discarding = False
        self.discarded = 0
        self.fp = EMPTY_FINGERPRINT
        self.fp_complete = False

    def close(self) -> None:
        if self.fd < 0:
            return
        if self.gz is not None and self.raw is not None:
            self.gz.close()
            self.raw.close()
        else:
            os.close(self.fd)
        self.fd = -1

    def same_inode(self, st: os.stat_result) -> bool:
        """Whether the path's ``stat`` names this (plain) file."""
        return not self.compressed and st.st_dev == self.dev and st.st_ino == self.inode

    def same_inode_as(self, other: _Source | _Sibling) -> bool:
        return (
            other.compressed == self.compressed
            and other.dev == self.dev
            and other.inode == self.inode
        )


def plain_prefix(fd: int) -> bytes:
    buf = bytearray()
    while len(buf) < FINGERPRINT_MAX:
        block = os.pread(fd, min(4096, FINGERPRINT_MAX - len(buf)), len(buf))
        if not block:
            break
        nl = block.find(b"\n")
        if nl >= 0:
            buf += block[: nl + 1]
            break
        buf += block
    return bytes(buf)


def _gz_prefix(gz: gzip.GzipFile) -> bytes:
    buf = bytearray()
    try:
        while len(buf) < FINGERPRINT_MAX:
            block = gz.read(min(4096, FINGERPRINT_MAX - len(buf)))
            if not block:
                break
            nl = block.find(b"\n")
            if nl >= 0:
                buf += block[: nl + 1]
                break
            buf += block
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise _CorruptGzip(str(exc)) from exc
    return bytes(buf)


def _plain_matches(fd: int, fp: Fingerprint) -> bool:
    if fp.length == 0:
        return True
    data = os.pread(fd, fp.length, 0)
    return len(data) == fp.length and _digest(data) == fp.digest


def _gz_matches(path: str, fp: Fingerprint) -> bool:
    """Whether the decompressed start of ``path`` hashes to ``fp``; unreadable = no match."""
    if fp.length == 0:
        return False
    try:
        with gzip.open(path, "rb") as gz:
            data = gz.read(fp.length)
    except (OSError, EOFError, zlib.error):
        return False
    return len(data) == fp.length and _digest(data) == fp.digest


def _path_matches(sib: _Sibling, fp: Fingerprint) -> bool:
    if sib.compressed:
        return _gz_matches(sib.path, fp)
    if fp.length == 0:
        return False
    try:
        fd = os.open(sib.path, _OPEN_FLAGS)
    except OSError:
        return False
    try:
        return _plain_matches(fd, fp)
    except OSError:
        return False
    finally:
        os.close(fd)


def _open_head(path: str, *, first: bool) -> _Source | None:
    """The file at the target path, or None while it does not exist.

    ``first``: the follower has opened nothing yet. Only then does a file already deleted
    (a ``--rm`` container gone within milliseconds of starting) get read through the
    descriptor discovery opened at the container's start (:data:`PREOPENED`). Later, a
    missing path is a rotation in progress (``max-file=1`` unlinks, then creates), and that
    descriptor would be the container's first file, read a second time.
    """
    try:
        src = _Source(path, compressed=False)
    except FileNotFoundError:
        if not first:
            return None
        fd = PREOPENED.take(path)
        if fd is None:
            return None
        try:
            return _Source(f"/proc/self/fd/{fd}", compressed=False, keep_path=path)
        except OSError:
            return None
        finally:
            os.close(fd)
    if first:
        PREOPENED.discard(path)  # the path was there: the stand-in is not needed
    return src


class PreopenedFiles:
    """Descriptors opened the moment a container starts, before its file can vanish.

    Docker removes a ``--rm`` container's directory, log included, as soon as it exits;
    by the time inspect and the pipeline have run, a short-lived container's log can be
    gone. Discovery opens the log on ``start`` and parks the descriptor here; a follower's
    first open takes it only if the path no longer exists, and closes it if the path is
    there. Unclaimed descriptors are closed by :meth:`sweep`. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fds: dict[str, tuple[int, float]] = {}

    def open(self, path: str) -> None:
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError:
            return  # not created (yet), or not json-file: nothing to keep
        with self._lock:
            old = self._fds.pop(path, None)
            self._fds[path] = (fd, time.monotonic())
        if old is not None:
            os.close(old[0])

    def has(self, path: str) -> bool:
        with self._lock:
            return path in self._fds

    def take(self, path: str) -> int | None:
        with self._lock:
            entry = self._fds.pop(path, None)
        return None if entry is None else entry[0]

    def discard(self, path: str) -> None:
        fd = self.take(path)
        if fd is not None:
            os.close(fd)

    def sweep(self, max_age: float = 60.0) -> None:
        cutoff = time.monotonic() - max_age
        with self._lock:
            stale = [p for p, (_, at) in self._fds.items() if at < cutoff]
            fds = [self._fds.pop(p)[0] for p in stale]
        for fd in fds:
            os.close(fd)


PREOPENED = PreopenedFiles()


def _stat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


class FileFollower:
    """Reads one target path and its rotated predecessors, line-exact, in write order.

    Single-threaded: call every method from the same task (or thread).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        options: FollowOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = os.fspath(path)
        self._opts = options or FollowOptions()
        self._clock = clock
        self._current: _Source | None = None
        self._successors: deque[_Source] = deque()
        self._events: list[FollowEvent] = []
        self._stats = FollowerStats()
        self._error: ReadFailed | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._missing_since: float | None = None
        self._next_rotation_check = 0.0
        self._resume: SavedPosition | None = None
        self._start_at_end = False
        self._read_rotated = False
        self._finished = False
        self._closed = False
        # Whether a file was ever opened: only the first open may use PREOPENED.
        self._opened_any = False

    # ----------------------------------------------------------------- public API

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        position: SavedPosition | None = None,
        *,
        start_at_end: bool = False,
        read_rotated: bool = False,
        options: FollowOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> FileFollower:
        """Start following ``path``: from ``position`` if given, else from 0 (or from the
        end of the last complete line with ``start_at_end``). With ``read_rotated`` and no
        position, a file seen for the first time is read from its true beginning: the
        oldest rotated sibling (``.N``, ``.N.gz``) still on disk, then the newer ones.
        Never raises for I/O: a failure becomes :attr:`error` and is retried by
        :meth:`read_chunk`."""
        follower = cls(path, options, clock)
        follower._resume = position
        follower._start_at_end = start_at_end and position is None
        follower._read_rotated = read_rotated and position is None and not start_at_end
        follower._guarded(follower._begin)
        return follower

    def read_chunk(self) -> Chunk | None:
        """Next run of complete lines, or ``None`` when there is nothing new right now
        (or an error is waiting for its retry time, or the target is finished)."""
        if self._closed or self._finished:
            return None
        now = self._clock()
        if self._error is not None and now < self._retry_at:
            return None
        failures = self._failures
        chunk = self._guarded(lambda: self._next_chunk(now))
        if self._failures == failures:
            self._error = None  # this attempt went through
        return chunk

    def check_rotation(self) -> None:
        """Open files that appeared at the path since the last look, without reading.

        Cheap (one ``stat`` when nothing changed). Call it periodically while the pipeline
        is not reading (Loki backpressure) so that rotated files are held open before
        Docker deletes them.
        """
        if self._closed or self._finished or self._current is None:
            return
        self._guarded(self._discover)

    def pop_events(self) -> list[FollowEvent]:
        """Events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    @staticmethod
    def position_for(offset_in_file: int, file_id: FileIdentity) -> SavedPosition:
        """The position to persist once everything before ``offset_in_file`` is acked."""
        return SavedPosition(
            file_id.dev, file_id.inode, file_id.fingerprint, offset_in_file, file_id.compressed
        )

    @property
    def path(self) -> str:
        return self._path

    @property
    def finished(self) -> bool:
        """All files drained and the path gone for longer than ``missing_grace_s``."""
        return self._finished

    @property
    def error(self) -> ReadFailed | None:
        """The current error state, cleared by the next :meth:`read_chunk` that fails
        nothing (with or without data)."""
        return self._error

    @property
    def stats(self) -> FollowerStats:
        return self._stats

    @property
    def open_files(self) -> int:
        """File descriptors held (the file being read plus newer ones opened ahead)."""
        return (self._current is not None) + len(self._successors)

    @property
    def current_file(self) -> FileIdentity | None:
        return None if self._current is None else self._current.identity

    def unread_bytes(self) -> int:
        """Bytes on disk not yet read (compressed size for ``.gz`` files; approximate)."""
        total = 0
        for src in (self._current, *self._successors):
            if src is None or src.fd < 0:
                continue
            try:
                size = os.fstat(src.fd).st_size
            except OSError:
                continue
            done = src.raw.tell() if src.raw is not None else src.read_pos
            total += max(0, size - done)
        return total

    def close(self) -> None:
        """Release every fd; the follower reads nothing afterwards. Idempotent."""
        self._closed = True
        if self._current is not None:
            self._current.close()
            self._current = None
        while self._successors:
            self._successors.popleft().close()

    # ------------------------------------------------------------ error handling

    def _guarded(self, operation: Callable[[], _T | None]) -> _T | None:
        try:
            return operation()
        except _ChainMoved:
            return None  # Docker kept rotating while we looked; the next poll looks again
        except OSError as exc:
            self._fail(exc)
            return None

    def _fail(self, exc: OSError) -> None:
        path = exc.filename if isinstance(exc.filename, str) else self._path
        failed = ReadFailed(path, exc.errno, exc.strerror or str(exc))
        self._failures += 1
        if failed != self._error:
            self._stats.read_errors += 1
            self._events.append(failed)
        self._error = failed
        self._retry_at = self._clock() + self._opts.retry_interval_s

    def _lose(
        self, reason: LossReason, path: str, files: int, nbytes: int | None, min_bytes: int = 0
    ) -> None:
        self._stats.lost_files += files
        self._stats.lost_bytes += nbytes or 0
        self._events.append(Lost(reason, path, files, nbytes, min_bytes))

    # ------------------------------------------------------------ opening / resume

    def _begin(self) -> None:
        """Open the first file (resume, start-at-end or fresh); retried until it succeeds."""
        if self._resume is not None:
            self._resume_from(self._resume)
            self._resume = None
            return
        if self._read_rotated:
            self._read_rotated = False
            chain = self._scan_chain()
            if chain:
                head = _open_head(self._path, first=not self._opened_any)
                try:
                    # The chain lists newest first; read oldest first, the path last.
                    opened = self._open_chain(list(reversed(chain)), head)
                except BaseException:
                    if head is not None:
                        head.close()
                    self._read_rotated = True  # retried with the next read
                    raise
                self._adopt(opened)
                return
        src = _open_head(self._path, first=not self._opened_any)
        if src is None:
            self._start_at_end = False  # a file created after we started is read whole
            return
        if self._start_at_end:
            src.offset = last_line_end(src.fd, os.fstat(src.fd).st_size)
            self._start_at_end = False
        self._current = src
        self._opened_any = True
        self._missing_since = None

    def _resume_from(self, pos: SavedPosition) -> None:
        head = _open_head(self._path, first=not self._opened_any)
        opened: list[_Source] = []
        lost = False
        missing = 0
        try:
            if (
                head is not None
                and not pos.compressed
                and (head.dev, head.inode) == (pos.dev, pos.inode)
                and head.first_bytes_match(pos.fingerprint)
            ):
                self._seek_saved(head, pos.offset)
                opened, head = [head], None
            else:
                # Not at the path (or inode reuse there): look among the rotated files.
                chain = self._scan_chain()
                found = self._locate_saved(pos, chain)
                if found is None:
                    lost = True
                    # Docker deletes oldest first: whatever is left is newer than the lost
                    # file. Without a fingerprint nothing can be placed: take the path only.
                    newer = list(reversed(chain)) if pos.fingerprint.length else []
                else:
                    i, sibling = found
                    saved = _Source(sibling.path, sibling.compressed)
                    opened.append(saved)
                    self._seek_saved(saved, pos.offset)
                    newer = list(reversed(chain[:i]))
                    missing = sibling.index - 1 - i
                opened += self._open_chain(newer, head)
                head = None
        except BaseException:
            for src in opened:
                src.close()
            if head is not None:
                head.close()
            raise
        whole = self._opts.rotated_file_bytes
        if lost:
            # The saved file was rotated away (and deleted) while the agent was down: all
            # after the saved offset of a file that had reached max-size is gone.
            self._lose("rotated_away", self._path, 1, None, max(0, whole - pos.offset))
        if missing:
            self._lose("rotated_away", self._path, missing, None, missing * whole)
        self._adopt(opened)

    def _adopt(self, opened: list[_Source]) -> None:
        """Make ``opened`` (oldest first) the files to read, holding at most a few open."""
        if not opened:
            return
        keep = 1 + self._opts.max_held_files
        for src in opened[keep:]:
            src.close()  # found again by _discover once the reader gets there
        self._current = opened[0]
        self._opened_any = True
        self._successors.extend(opened[1:keep])
        self._missing_since = None

    def _seek_saved(self, src: _Source, offset: int) -> None:
        if src.gz is not None:
            src.skip = offset  # decompressed and dropped by the first read
            return
        if os.fstat(src.fd).st_size < offset:
            self._stats.truncations += 1
            self._events.append(Truncated(src.identity, offset))
            offset = 0
        src.offset = offset

    def _locate_saved(
        self, pos: SavedPosition, chain: list[_Sibling]
    ) -> tuple[int, _Sibling] | None:
        fp = pos.fingerprint
        for i, sib in enumerate(chain):
            if (
                sib.compressed == pos.compressed
                and (sib.dev, sib.inode) == (pos.dev, pos.inode)
                and (fp.length == 0 or _path_matches(sib, fp))
            ):
                return i, sib
        if fp.length == 0:
            return None
        # Compression gives the content a new inode: match it by content.
        for i, sib in enumerate(chain):
            if _path_matches(sib, fp):
                return i, sib
        return None

    def _open_chain(self, siblings: list[_Sibling], head: _Source | None) -> list[_Source]:
        """Open ``siblings`` (oldest first), then append ``head`` (the file at the path).

        Stops early at the sibling that *is* ``head`` (rotated after it was opened). On
        failure closes what it opened, but never ``head``, which stays the caller's.
        """
        opened: list[_Source] = []
        try:
            for sib in siblings:
                if head is not None and head.same_inode_as(sib):
                    break
                src = _Source(sib.path, sib.compressed)
                opened.append(src)
                if (src.dev, src.inode) != (sib.dev, sib.inode):
                    raise _ChainMoved
        except BaseException:
            for src in opened:
                src.close()
            raise
        if head is not None:
            opened.append(head)
        return opened

    # ------------------------------------------------------------------- reading

    def _next_chunk(self, now: float) -> Chunk | None:
        if self._current is None:
            self._begin()
            if self._current is None:
                self._check_finished(now)
                return None
        # Each pass returns or changes state (next file, truncation, newer files queued);
        # the bound only keeps one call short when many small files are pending.
        for _ in range(64):
            src = self._current
            if src is None:
                return None
            if src.idle:
                # Woken from EOF: rule out truncate-and-refill before trusting our offset.
                src.idle = False
                self._truncated(src, os.fstat(src.fd))
            try:
                chunk = self._read_lines(src)
            except _CorruptGzip as exc:
                self._lose("unreadable", src.path, 1, None)
                self._stats.read_errors += 1
                self._events.append(ReadFailed(src.path, None, f"corrupt gzip: {exc}"))
                src.pending.clear()
                src.discarding = False
                if not self._successors:
                    self._discover()
                self._switch_to_next(src)
                continue
            if chunk is not None:
                if now >= self._next_rotation_check:
                    self._next_rotation_check = now + self._opts.rotation_check_s
                    # The chunk is already consumed: a failure here must not lose it.
                    self._guarded(self._discover)
                return chunk
            if self._successors:
                self._switch_to_next(src)
                continue
            if not self._at_eof_of_newest(src, now):
                return None
        return None

    def _read_lines(self, src: _Source) -> Chunk | None:
        """Read until at least one complete line is available (Chunk) or EOF (None)."""
        opts = self._opts
        while src.skip:
            data = src.read(min(src.skip, opts.read_size))
            if not data:
                src.skip = 0
                break
            src.skip -= len(data)
            src.offset += len(data)
        while True:
            data = src.read(opts.read_size)
            if not data:
                return None
            if src.gz is None and src.read_pos and not src.first_bytes_match(src.fp):
                # Truncated and refilled past our offset since we last looked (Docker's
                # max-file=1 rotation while this process waited for the CPU): ``data`` is
                # the new content's middle. Start the new content at 0 instead, or its
                # rest would be shipped now and again once the change was noticed.
                self._truncate(src)
                continue
            if src.discarding:
                nl = data.find(b"\n")
                if nl < 0:
                    src.offset += len(data)
                    src.discarded += len(data)
                    continue
                src.offset += nl + 1
                self._lose("line_too_long", src.path, 0, src.discarded + nl + 1)
                src.discarding = False
                src.discarded = 0
                data = data[nl + 1 :]
            nl = data.rfind(b"\n")
            if nl < 0:
                src.pending += data
                if len(src.pending) > opts.max_line_bytes:
                    src.discarding = True
                    src.discarded = len(src.pending)
                    src.offset += len(src.pending)
                    src.pending.clear()
                continue
            if src.pending:
                src.pending += data[: nl + 1]
                out = bytes(src.pending)
                src.pending.clear()
            else:
                out = data if nl == len(data) - 1 else data[: nl + 1]
            if nl + 1 < len(data):
                src.pending += data[nl + 1 :]
            start = src.offset
            src.offset = start + len(out)
            if not src.fp_complete:
                src.refresh_fingerprint()
            return Chunk(out, start, src.offset, src.identity)

    def _switch_to_next(self, src: _Source) -> None:
        """``src`` is drained and a newer file exists (or ``src`` is done for): move on."""
        if src.pending:
            self._lose("unterminated", src.path, 0, len(src.pending))
        if src.discarding:
            self._lose("line_too_long", src.path, 0, src.discarded)
        src.close()
        self._current = self._successors.popleft() if self._successors else None
        if self._current is not None:
            self._stats.rotations += 1
            self._events.append(Rotated(src.identity, self._current.path))

    def _at_eof_of_newest(self, src: _Source, now: float) -> bool:
        """EOF on the newest file we know: look at the path. True if state changed."""
        st = _stat_or_none(self._path)
        if st is None:
            if self._discover():
                return True
            self._check_finished(now)
            return False
        self._missing_since = None
        if src.same_inode(st):
            src.idle = True
            return self._truncated(src, st)
        # Another inode at the path: rotation. The loop drains src once more (Docker may
        # have written after our EOF and before the rename) before moving on.
        return self._discover()

    def _truncated(self, src: _Source, st: os.stat_result) -> bool:
        """Restart ``src`` at 0 if it shrank below our position or its first line changed
        (truncated and refilled past our offset between two looks)."""
        changed = st.st_mtime_ns != src.last_mtime_ns or st.st_size != src.last_size
        src.last_mtime_ns, src.last_size = st.st_mtime_ns, st.st_size
        if st.st_size < src.read_pos or (
            changed and src.read_pos > 0 and not src.first_bytes_match(src.fp)
        ):
            self._truncate(src)
            return True
        return False

    def _truncate(self, src: _Source) -> None:
        self._stats.truncations += 1
        self._events.append(Truncated(src.identity, src.read_pos))
        src.reset()
        src.refresh_fingerprint()

    def _check_finished(self, now: float) -> None:
        if self._missing_since is None:
            self._missing_since = now
        if now - self._missing_since < self._opts.missing_grace_s:
            return
        if self._current is not None:
            self._switch_to_next(self._current)
        if self._current is None and not self._successors:
            self._finished = True

    # ------------------------------------------------------------------ discovery

    def _discover(self) -> bool:
        """Open files newer than the newest one held. True if any were queued."""
        last = self._successors[-1] if self._successors else self._current
        if last is None:
            return False
        room = self._opts.max_held_files - len(self._successors)
        if room <= 0:
            return False
        st = _stat_or_none(self._path)
        if st is not None and last.same_inode(st):
            return False
        # Rotated files no longer grow: make sure the fingerprint covers the first line.
        last.refresh_fingerprint()
        for _ in range(3):
            try:
                opened, missing, gap = self._discover_once(last)
            except (_ChainMoved, FileNotFoundError):
                continue  # renamed between scan and open: look again
            if missing:
                self._lose(
                    "rotated_away",
                    self._path,
                    missing,
                    None,
                    missing * self._opts.rotated_file_bytes,
                )
            if gap:
                self._stats.possible_gaps += 1
            for src in opened[room:]:
                src.close()
            self._successors.extend(opened[:room])
            return bool(opened)
        return False

    def _discover_once(self, last: _Source) -> tuple[list[_Source], int, bool]:
        """(newer files opened oldest first, indices provably missing, possible gap)."""
        chain = self._scan_chain()
        head = _open_head(self._path, first=False)
        try:
            if head is not None and last.same_inode_as(head):
                head.close()
                head = None
            pos = self._locate_held(last, chain)
            missing = 0
            gap = False
            if pos is None:
                # ``last`` was deleted from the end of the chain (or unlinked, max-file=1):
                # everything still there is newer.
                gap = bool(chain) and last.fp.length > 0
                newer = list(reversed(chain)) if last.fp.length else []
            else:
                newer = list(reversed(chain[:pos]))
                missing = chain[pos].index - 1 - pos
            opened = self._open_chain(newer, head)
            head = None
        except BaseException:
            if head is not None:
                head.close()
            raise
        if [_key(s) for s in self._scan_once()] != [_key(s) for s in chain]:
            for src in opened:
                src.close()
            raise _ChainMoved
        return opened, missing, gap

    def _locate_held(self, last: _Source, chain: list[_Sibling]) -> int | None:
        for i, sib in enumerate(chain):
            if last.same_inode_as(sib):
                return i
        if last.compressed or last.fp.length == 0:
            return None
        for i, sib in enumerate(chain):
            if sib.compressed and _gz_matches(sib.path, last.fp):
                return i
        return None

    def _scan_chain(self) -> list[_Sibling]:
        """``<path>.1``, ``.2`` ... (plain preferred over ``.gz``), the same on two looks."""
        previous = self._scan_once()
        for _ in range(3):
            current = self._scan_once()
            if [_key(s) for s in current] == [_key(s) for s in previous]:
                return current
            previous = current
        return previous

    def _scan_once(self) -> list[_Sibling]:
        found: list[_Sibling] = []
        misses = 0
        index = 1
        while misses < 2 and index <= _MAX_SIBLINGS:
            sibling = None
            for compressed, name in (
                (False, f"{self._path}.{index}"),
                (True, f"{self._path}.{index}.gz"),
            ):
                st = _stat_or_none(name)
                if st is not None and stat.S_ISREG(st.st_mode):
                    sibling = _Sibling(index, name, st.st_dev, st.st_ino, compressed)
                    break
            if sibling is None:
                misses += 1
            else:
                misses = 0
                found.append(sibling)
            index += 1
        return found


class _ChainMoved(Exception):
    """Docker rotated again while we were opening the chain; look again."""


def _key(sib: _Sibling) -> tuple[int, int, int, bool]:
    return sib.index, sib.dev, sib.inode, sib.compressed


def last_line_end(fd: int, size: int) -> int:
    """Offset just after the last ``\\n`` at or before ``size`` (0 if none)."""
    pos = size
    while pos > 0:
        start = max(0, pos - 64 * 1024)
        block = os.pread(fd, pos - start, start)
        nl = block.rfind(b"\n")
        if nl >= 0:
            return start + nl + 1
        pos = start
    return 0
