"""FileFollower against real files rotated exactly like Docker's json-file driver."""

from __future__ import annotations

import gzip
import os
import threading
import time
from pathlib import Path

import pytest

from agent.logs.tail import (
    PREOPENED,
    Chunk,
    FileFollower,
    FileIdentity,
    Fingerprint,
    FollowOptions,
    Lost,
    ReadFailed,
    Rotated,
    SavedPosition,
    Truncated,
)
from tests.logs.rotation_sim import DockerJsonLog, docker_record


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Reader:
    """Drains a follower, checking every chunk's offsets, and remembers what it got."""

    def __init__(self, follower: FileFollower, contiguous: bool = True) -> None:
        self.follower = follower
        self.contiguous = contiguous
        self.lines: list[bytes] = []
        self.events: list[object] = []
        self.chunks: list[Chunk] = []
        self._ends: dict[FileIdentity, int] = {}

    def step(self) -> list[bytes]:
        """One read_chunk call (the reader then lags behind the writer)."""
        got = self.drain(max_calls=1)
        assert got, "expected data"
        return got

    def drain(self, max_calls: int = 100_000) -> list[bytes]:
        got: list[bytes] = []
        for _ in range(max_calls):
            chunk = self.follower.read_chunk()
            if chunk is None:
                break
            assert chunk.data.endswith(b"\n")
            assert chunk.end_offset - chunk.start_offset == len(chunk.data)
            previous_end = self._ends.get(chunk.file_id)
            if previous_end is not None and self.contiguous:
                assert chunk.start_offset == previous_end, "gap or overlap inside one file"
            self._ends[chunk.file_id] = chunk.end_offset
            self.chunks.append(chunk)
            got.extend(chunk.data.splitlines(keepends=True))
        self.lines.extend(got)
        self.events.extend(self.follower.pop_events())
        return got

    def lost(self) -> list[Lost]:
        return [e for e in self.events if isinstance(e, Lost)]


def follow(
    path: Path,
    position: SavedPosition | None = None,
    clock: FakeClock | None = None,
    contiguous: bool = True,
    **options: int | float,
) -> Reader:
    follower = FileFollower.open(
        path,
        position,
        options=FollowOptions(**options),  # type: ignore[arg-type]
        clock=clock or FakeClock(),
    )
    return Reader(follower, contiguous)


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "abc-json.log"


def last_position(reader: Reader) -> SavedPosition:
    chunk = reader.chunks[-1]
    return FileFollower.position_for(chunk.end_offset, chunk.file_id)


# ------------------------------------------------------------------ plain following


def test_follows_appended_lines_in_order(log_path: Path) -> None:
    log = DockerJsonLog(log_path)
    log.write_lines(10)
    reader = follow(log_path)
    assert reader.drain() == log.written
    log.write_lines(5)
    assert reader.drain() == log.written[10:]
    assert reader.drain() == []
    assert reader.follower.open_files == 1
    assert reader.follower.unread_bytes() == 0


def test_partial_trailing_bytes_are_held_back_until_their_newline(log_path: Path) -> None:
    log = DockerJsonLog(log_path)
    log.write_lines(2)
    record = docker_record(99)
    log.write_raw(record[:20])
    reader = follow(log_path)
    assert reader.drain() == log.written
    log.write_raw(record[20:-1])
    assert reader.drain() == []
    log.write_raw(b"\n")
    assert reader.drain() == [record]
    assert reader.chunks[-1].end_offset == log.size()


def test_chunk_offsets_locate_each_line(log_path: Path) -> None:
    log = DockerJsonLog(log_path)
    log.write_lines(50, pad=100)
    reader = follow(log_path, read_size=1000)
    reader.drain()
    content = log_path.read_bytes()
    for chunk in reader.chunks:
        assert content[chunk.start_offset : chunk.end_offset] == chunk.data


def test_one_mebibyte_line_is_emitted_whole(log_path: Path) -> None:
    log = DockerJsonLog(log_path)
    big = b"y" * (1024 * 1024) + b"\n"
    log.write_lines(1)
    log.write_raw(big)
    log.write_lines(1)
    reader = follow(log_path)
    assert reader.drain() == [log.written[0], big, log.written[1]]


def test_line_over_max_line_bytes_is_skipped_and_reported(log_path: Path) -> None:
    log = DockerJsonLog(log_path)
    log.write_lines(1)
    log.write_raw(b"z" * 5000 + b"\n")
    log.write_lines(1)
    reader = follow(log_path, contiguous=False, read_size=1024, max_line_bytes=2048)
    assert reader.drain() == log.written
    assert reader.lost() == [Lost("line_too_long", str(log_path), 0, 5001)]


def test_start_at_end_skips_existing_lines_but_not_a_partial_one(log_path: Path) -> None:
    log = DockerJsonLog(log_path)
    log.write_lines(5)
    log.write_raw(b"half")
    follower = FileFollower.open(log_path, start_at_end=True)
    reader = Reader(follower)
    assert reader.drain() == []
    log.write_raw(b" done\n")
    assert reader.drain() == [b"half done\n"]


# ---------------------------------------------------------------------------- rotation


@pytest.mark.parametrize(
    ("max_file", "compress"), [(1, False), (2, False), (3, False), (2, True), (3, True)]
)
def test_rotation_loses_and_repeats_nothing(log_path: Path, max_file: int, compress: bool) -> None:
    log = DockerJsonLog(log_path, max_file=max_file, compress=compress)
    reader = follow(log_path)
    for _ in range(4):
        log.write_lines(20)
        reader.drain()
        # Written after the reader's EOF, before the rotation: must be drained from the old fd.
        log.write_lines(7)
        log.rotate()
        log.write_lines(3)
        reader.drain()
    assert reader.lines == log.written
    assert reader.lost() == []
    assert reader.follower.stats.rotations == 4
    assert reader.follower.open_files == 1


def test_compressed_file_appearing_while_reading_is_not_read_twice(log_path: Path) -> None:
    log = DockerJsonLog(log_path, max_file=3, compress=True)
    log.write_lines(100, pad=50)
    reader = follow(log_path, read_size=4096)
    reader.step()  # part of the file only
    log.rotate(compress_now=False)
    log.write_lines(10)
    reader.follower.check_rotation()  # the new file is held before the .gz appears
    log.compress_rotated()
    reader.drain()
    assert reader.lines == log.written


def test_several_rotations_while_behind_are_read_in_order(log_path: Path) -> None:
    log = DockerJsonLog(log_path, max_file=4)
    log.write_lines(30)
    reader = follow(log_path, read_size=512)
    reader.step()
    for _ in range(3):  # the file being read ends up at .3, with .2 and .1 newer than it
        log.rotate()
        log.write_lines(30)
    reader.drain()
    assert reader.lines == log.written
    assert [type(e) for e in reader.events] == [Rotated, Rotated, Rotated]


def test_several_compressed_rotations_while_behind_are_read_in_order(log_path: Path) -> None:
    log = DockerJsonLog(log_path, max_file=3, compress=True)
    log.write_lines(30)
    reader = follow(log_path, read_size=512)
    reader.step()
    log.rotate()
    log.write_lines(30)
    log.rotate()  # the file being read is now .2.gz (another inode), found by fingerprint
    log.write_lines(30)
    reader.drain()
    assert reader.lines == log.written
    assert reader.follower.stats.possible_gaps == 0
    gz_chunks = [c for c in reader.chunks if c.file_id.compressed]
    assert len({c.file_id for c in gz_chunks}) == 1  # .1.gz read through gzip


def test_file_rotated_out_of_the_chain_while_held_is_still_read(log_path: Path) -> None:
    log = DockerJsonLog(log_path, max_file=2)
    log.write_lines(40)
    reader = follow(log_path, read_size=512)
    reader.step()
    log.rotate()
    log.write_lines(40)
    log.rotate()  # the file being read is deleted; we still hold its fd
    log.write_lines(40)
    reader.drain()
    assert reader.lines == log.written
    assert reader.follower.stats.possible_gaps == 1  # can't tell if a file went in between


def test_max_file_1_rotations_noticed_while_behind_lose_nothing(log_path: Path) -> None:
    log = DockerJsonLog(log_path, max_file=1)
    log.write_lines(40)
    reader = follow(log_path, read_size=512)
    reader.step()
    log.rotate()
    log.write_lines(40)
    reader.follower.check_rotation()  # pins the second file before it is unlinked
    log.rotate()
    log.write_lines(40)
    reader.follower.check_rotation()
    assert reader.follower.open_files == 3
    reader.drain()
    assert reader.lines == log.written
    assert reader.follower.open_files == 1


def test_max_file_1_double_rotation_unseen_loses_the_middle_file(log_path: Path) -> None:
    """The documented limit: an unlinked file nobody opened is gone without trace."""
    log = DockerJsonLog(log_path, max_file=1)
    log.write_lines(40)
    reader = follow(log_path, read_size=512)
    reader.step()
    log.rotate()
    middle = log.write_lines(40)
    log.rotate()
    log.write_lines(40)
    reader.drain()
    assert reader.lines == [line for line in log.written if line not in middle]


def test_held_files_are_capped(log_path: Path) -> None:
    log = DockerJsonLog(log_path, max_file=6)
    log.write_lines(40)
    reader = follow(log_path, read_size=512, max_held_files=2)
    reader.step()
    for _ in range(5):
        log.rotate()
        log.write_lines(10)
        reader.follower.check_rotation()
    assert reader.follower.open_files <= 3
    reader.drain()
    assert reader.lines == log.written


def test_rotated_file_ending_without_newline_reports_its_tail(log_path: Path) -> None:
    log = DockerJsonLog(log_path, max_file=2)
    log.write_lines(3)
    log.write_raw(b"torn")
    reader = follow(log_path)
    reader.drain()
    log.rotate()
    log.write_lines(2)
    reader.drain()
    assert reader.lines == log.written
    assert reader.lost() == [Lost("unterminated", str(log_path), 0, 4)]


def test_rotation_under_concurrent_writes_keeps_exact_sequence(log_path: Path) -> None:
    log = DockerJsonLog(log_path, max_file=3, compress=True)
    done = threading.Event()

    def writer() -> None:
        for _ in range(150):
            log.write_lines(20, pad=30)
            if log.size() >= 16 * 1024:
                log.rotate()
            time.sleep(0.001)
        done.set()

    reader = follow(log_path, read_size=4096, rotation_check_s=0.0)
    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 20
    while not done.is_set() and time.monotonic() < deadline:
        reader.drain()
        time.sleep(0.0005)
    thread.join()
    reader.drain()
    assert len(reader.lines) == len(log.written)
    assert reader.lines == log.written
    assert reader.follower.stats.rotations > 10


# -------------------------------------------------------------------------- truncation


def test_truncation_restarts_at_zero(log_path: Path) -> None:
    log = DockerJsonLog(log_path)
    log.write_lines(10)
    reader = follow(log_path)
    reader.drain()
    os.truncate(log_path, 0)
    assert reader.drain() == []
    again = log.write_lines(3)
    assert reader.drain() == again
    assert reader.chunks[-1].start_offset == 0
    assert reader.follower.stats.truncations == 1
    assert any(isinstance(e, Truncated) for e in reader.events)


def test_truncated_and_refilled_past_offset_is_caught_by_fingerprint(log_path: Path) -> None:
    log = DockerJsonLog(log_path)
    log.write_lines(3)
    reader = follow(log_path)
    reader.drain()
    os.truncate(log_path, 0)
    refill = log.write_lines(10)  # bigger than before: size alone can't tell
    assert reader.drain() == refill
    assert reader.follower.stats.truncations == 1


def test_truncated_and_refilled_between_two_reads_is_read_from_zero_once(log_path: Path) -> None:
    # max-file=1 under CPU starvation: Docker truncates and refills past our offset while
    # we are mid-file, not at EOF. The next read must not ship the new content's middle
    # (it would be shipped again once the change is noticed).
    log = DockerJsonLog(log_path)
    first = log.write_lines(10)
    reader = follow(log_path, contiguous=False, read_size=len(first[0]) * 3)
    chunk = reader.follower.read_chunk()
    assert chunk is not None and chunk.data.splitlines(keepends=True) == first[:3]
    os.truncate(log_path, 0)
    refill = log.write_lines(30)
    assert reader.drain() == refill
    assert reader.follower.stats.truncations == 1


# ------------------------------------------------------------------------------ resume


def test_resume_in_the_current_file(log_path: Path) -> None:
    log = DockerJsonLog(log_path)
    log.write_lines(10)
    first = follow(log_path)
    first.drain()
    saved = last_position(first)
    first.follower.close()
    log.write_lines(5)
    second = follow(log_path, saved)
    assert second.drain() == log.written[10:]
    assert second.lost() == []


def test_resume_mid_file_from_an_acknowledged_line(log_path: Path) -> None:
    log = DockerJsonLog(log_path)
    log.write_lines(10)
    first = follow(log_path)
    first.drain()
    offset = sum(len(line) for line in log.written[:4])
    saved = FileFollower.position_for(offset, first.chunks[0].file_id)
    assert follow(log_path, saved).drain() == log.written[4:]


def test_resume_after_one_rotation_finds_the_file_in_dot_1(log_path: Path) -> None:
    log = DockerJsonLog(log_path, max_file=3)
    log.write_lines(10)
    first = follow(log_path)
    first.drain()
    saved = FileFollower.position_for(
        first.chunks[0].start_offset + len(log.written[0]), first.chunks[0].file_id
    )
    first.follower.close()
    log.write_lines(5)
    log.rotate()
    log.write_lines(5)
    second = follow(log_path, saved)
    assert second.drain() == log.written[1:]
    assert second.lost() == []


def test_resume_after_rotation_and_compression_finds_the_gz_by_fingerprint(
    log_path: Path,
) -> None:
    log = DockerJsonLog(log_path, max_file=4, compress=True)
    log.write_lines(10)
    first = follow(log_path)
    first.drain()
    saved = last_position(first)
    first.follower.close()
    log.write_lines(5)
    log.rotate()
    log.write_lines(5)
    log.rotate()
    log.write_lines(5)
    assert Path(f"{log_path}.2.gz").exists() and not Path(f"{log_path}.2").exists()
    second = follow(log_path, saved)
    assert second.drain() == log.written[10:]
    assert second.lost() == []
    assert second.chunks[0].file_id.compressed
    assert second.chunks[0].start_offset == saved.offset  # decompressed offset


def test_resume_inside_a_gz_from_a_gz_position(log_path: Path) -> None:
    log = DockerJsonLog(log_path, max_file=3, compress=True)
    log.write_lines(10)
    log.rotate()
    log.write_lines(5)
    # A position acknowledged inside .1.gz (decompressed offset of its fifth line).
    st = os.stat(f"{log_path}.1.gz")
    with gzip.open(f"{log_path}.1.gz", "rb") as gz:
        first_line = gz.read(len(log.written[0]))
    offset = sum(len(line) for line in log.written[:4])
    saved = SavedPosition(st.st_dev, st.st_ino, Fingerprint.of(first_line), offset, True)
    log.rotate()  # .1.gz -> .2.gz keeps the inode
    log.write_lines(5)
    resumed = follow(log_path, saved)
    assert resumed.drain() == log.written[4:]
    assert resumed.chunks[0].start_offset == offset


def test_resume_when_the_saved_file_is_gone_counts_it_lost(log_path: Path) -> None:
    log = DockerJsonLog(log_path, max_file=2)
    log.write_lines(10)
    first = follow(log_path)
    first.drain()
    saved = last_position(first)
    first.follower.close()
    log.write_lines(5)  # never read: lost with the file
    log.rotate()
    newer = log.write_lines(5)
    log.rotate()  # the saved file is deleted
    current = log.write_lines(5)
    second = follow(log_path, saved)
    assert second.drain() == newer + current
    assert second.lost() == [Lost("rotated_away", str(log_path), 1, None)]
    assert second.follower.stats.lost_files == 1


def test_resume_on_reused_inode_reads_the_new_file_from_zero(log_path: Path) -> None:
    log = DockerJsonLog(log_path)
    log.write_lines(10)
    st = os.stat(log_path)
    other = Fingerprint.of(docker_record(123456))
    saved = SavedPosition(st.st_dev, st.st_ino, other, offset=200)
    reader = follow(log_path, saved)
    assert reader.drain() == log.written
    assert [e.reason for e in reader.lost()] == ["rotated_away"]


def test_resume_past_the_end_of_a_shrunk_file_restarts_at_zero(log_path: Path) -> None:
    log = DockerJsonLog(log_path)
    log.write_lines(3)
    first = follow(log_path)
    first.drain()
    saved = FileFollower.position_for(10_000, first.chunks[0].file_id)
    second = follow(log_path, saved)
    assert second.drain() == log.written
    assert second.follower.stats.truncations == 1


def test_position_for_copies_the_identity() -> None:
    fid = FileIdentity(1, 2, Fingerprint(3, "abc"), True, "/x")
    assert FileFollower.position_for(42, fid) == SavedPosition(
        1, 2, Fingerprint(3, "abc"), 42, True
    )


# --------------------------------------------------------------- missing and unreadable


def test_path_missing_briefly_during_rotation_is_not_the_end(log_path: Path) -> None:
    clock = FakeClock()
    log = DockerJsonLog(log_path, max_file=1)
    log.write_lines(5)
    reader = follow(log_path, clock=clock, missing_grace_s=2.0)
    reader.drain()
    log.close()
    os.unlink(log_path)  # rotation step 3 done, step 4 (create) not yet
    clock.now += 1.0
    assert reader.drain() == []
    assert not reader.follower.finished
    log = DockerJsonLog(log_path, max_file=1)
    log.written = []
    log.write_lines(3)
    clock.now += 5.0
    assert reader.drain() == log.written
    assert not reader.follower.finished


def test_vanished_file_is_drained_then_finished(log_path: Path) -> None:
    clock = FakeClock()
    log = DockerJsonLog(log_path)
    log.write_lines(5)
    reader = follow(log_path, clock=clock, missing_grace_s=2.0)
    reader.step()
    log.write_lines(5)
    log.close()
    os.unlink(log_path)  # container destroyed
    reader.drain()
    assert reader.lines == log.written
    assert not reader.follower.finished
    clock.now += 3.0
    reader.drain()
    assert reader.follower.finished
    assert reader.follower.open_files == 0
    assert reader.follower.read_chunk() is None


def test_path_missing_at_open_is_not_an_error(log_path: Path) -> None:
    clock = FakeClock()
    reader = follow(log_path, clock=clock, missing_grace_s=2.0)
    assert reader.drain() == []
    assert reader.follower.error is None
    log = DockerJsonLog(log_path)
    log.write_lines(2)
    assert reader.drain() == log.written


def test_directory_at_the_path_is_an_error_state_retried_later(log_path: Path) -> None:
    clock = FakeClock()
    log_path.mkdir()
    reader = follow(log_path, clock=clock, retry_interval_s=1.0)
    assert reader.drain() == []
    error = reader.follower.error
    assert error is not None and error.errno == 21  # EISDIR
    assert [type(e) for e in reader.events] == [ReadFailed]
    clock.now += 2
    reader.drain()
    assert reader.follower.stats.read_errors == 1  # same error: counted once
    log_path.rmdir()
    log = DockerJsonLog(log_path)
    log.write_lines(2)
    assert reader.drain() == []  # still inside the retry interval
    clock.now += 2
    assert reader.drain() == log.written
    assert reader.follower.error is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_an_error_state(log_path: Path) -> None:
    DockerJsonLog(log_path).write_lines(1)
    log_path.chmod(0)
    reader = follow(log_path)
    assert reader.drain() == []
    assert reader.follower.error is not None and reader.follower.error.errno == 13


def test_corrupt_gz_is_reported_lost_and_skipped(log_path: Path) -> None:
    log = DockerJsonLog(log_path, max_file=3, compress=True)
    log.write_lines(10)
    reader = follow(log_path, read_size=300)
    reader.step()
    log.rotate()
    middle = log.write_lines(10)
    log.rotate()
    Path(f"{log_path}.1.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    log.write_lines(10)
    reader.drain()
    assert reader.lines == [line for line in log.written if line not in middle]
    assert [(e.reason, e.files) for e in reader.lost()] == [("unreadable", 1)]


def test_close_releases_every_file(log_path: Path) -> None:
    log = DockerJsonLog(log_path, max_file=3)
    log.write_lines(40)
    reader = follow(log_path, read_size=512)
    reader.step()
    log.rotate()
    reader.follower.check_rotation()
    assert reader.follower.open_files == 2
    reader.follower.close()
    assert reader.follower.open_files == 0
    assert reader.follower.read_chunk() is None


def test_start_at_end_reads_a_file_created_later_from_its_start(log_path: Path) -> None:
    reader = Reader(FileFollower.open(log_path, start_at_end=True, clock=FakeClock()))
    assert reader.drain() == []
    log = DockerJsonLog(log_path)
    log.write_lines(3)
    assert reader.drain() == log.written


def test_gap_in_the_rotated_chain_is_reported_lost(log_path: Path) -> None:
    log = DockerJsonLog(log_path, max_file=4)
    log.write_lines(30)
    reader = follow(log_path, read_size=512)
    reader.step()
    log.rotate()
    log.write_lines(10)
    log.rotate()
    removed = log.write_lines(10)
    log.rotate()  # file being read at .3, then .2, .1
    log.write_lines(10)
    os.unlink(f"{log_path}.1")  # holds `removed`
    reader.drain()
    assert reader.lines == [line for line in log.written if line not in removed]
    assert reader.lost() == [Lost("rotated_away", str(log_path), 1, None)]


def test_a_log_deleted_before_the_follower_opens_it_is_read_through_the_preopened_fd(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c-json.log"
    path.write_bytes(b"first\nsecond\n")
    PREOPENED.open(str(path))  # discovery, on the container's start event
    path.unlink()  # --rm: Docker removed the container before the pipeline got to it
    follower = FileFollower.open(path)
    try:
        assert Reader(follower).drain() == [b"first\n", b"second\n"]
    finally:
        follower.close()
    assert PREOPENED.take(str(path)) is None  # taken once, not leaked


def test_a_max_file_1_rotation_caught_mid_way_does_not_reread_the_preopened_first_file(
    log_path: Path,
) -> None:
    """Docker's max-file=1 rotation unlinks the log, then creates it: a follower that looks
    in between finds no file, and must wait for the new one, not read the container's
    first file again through the descriptor discovery opened at its start (it did: the
    e2e rotation test saw the first ~180 lines twice about once in ten runs under load)."""
    log = DockerJsonLog(log_path, max_file=1)
    log.write_lines(20)
    PREOPENED.open(str(log_path))  # discovery, on the container's start event
    reader = follow(log_path, read_size=512)
    try:
        reader.drain()
        assert PREOPENED.take(str(log_path)) is None  # the path was there: stand-in closed
        PREOPENED.open(str(log_path))  # a start event handled after the follower opened
        log.write_lines(20)
        log.rotate()
        log.write_lines(20)
        reader.drain()  # now on the second file; the first one is parked in PREOPENED
        log.close()
        os.unlink(log_path)  # the next rotation, first half
        reader.drain()  # looks while the path is missing
        log.reopen()  # second half
        log.write_lines(20)
        reader.drain()
        assert reader.lines == log.written
    finally:
        reader.follower.close()
        PREOPENED.discard(str(log_path))


def test_unclaimed_preopened_fds_are_closed_by_sweep(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    path.write_bytes(b"x\n")
    PREOPENED.open(str(path))
    PREOPENED.sweep(max_age=0.0)
    assert PREOPENED.take(str(path)) is None


@pytest.mark.parametrize("compress", [False, True])
def test_a_container_seen_for_the_first_time_is_read_from_its_oldest_rotated_file(
    tmp_path: Path, compress: bool
) -> None:
    log_path = tmp_path / "c-json.log"
    log = DockerJsonLog(log_path, max_file=3, compress=compress)
    written = log.write_lines(5)
    log.rotate()
    written += log.write_lines(5)
    log.rotate()
    written += log.write_lines(5)
    follower = FileFollower.open(log_path, read_rotated=True)
    try:
        reader = Reader(follower, contiguous=False)
        assert reader.drain() == written
        assert not reader.lost()
    finally:
        follower.close()


def test_without_read_rotated_only_the_current_file_is_read(tmp_path: Path) -> None:
    log_path = tmp_path / "c-json.log"
    log = DockerJsonLog(log_path, max_file=2)
    log.write_lines(3)
    log.rotate()
    current = log.write_lines(2)
    follower = FileFollower.open(log_path)
    try:
        assert Reader(follower).drain() == current
    finally:
        follower.close()
