"""PositionsStore on real files: atomic saves, crash safety, corrupt files, pruning."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import orjson

from agent.logs.positions import PositionRecord, PositionsStore
from agent.logs.tail import FileFollower, Fingerprint, SavedPosition
from tests.logs.rotation_sim import DockerJsonLog

POS = SavedPosition(dev=2049, inode=1234, fingerprint=Fingerprint(83, "ab" * 16), offset=4096)
GZ_POS = SavedPosition(2049, 99, Fingerprint(10, "cd" * 16), 7, compressed=True)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_714_557_600.0

    def __call__(self) -> float:
        return self.now


def test_missing_file_is_a_first_start(tmp_path: Path) -> None:
    store = PositionsStore(tmp_path / "positions.json")
    store.load()
    assert store.first_start
    assert len(store) == 0


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "positions.json"
    store = PositionsStore(path, clock=clock)
    store.load()
    store.set("docker:abc", POS, path="/d/abc-json.log", last_ts_ns=1_714_557_600_123_456_789)
    store.set("file:/var/log/x.log", GZ_POS, path="/var/log/x.log.2.gz")
    assert store.save()
    again = PositionsStore(path)
    again.load()
    assert not again.first_start
    assert again.get("docker:abc") == PositionRecord(
        POS, "/d/abc-json.log", clock.now, 1_714_557_600_123_456_789
    )
    assert again.get("file:/var/log/x.log") == PositionRecord(
        GZ_POS, "/var/log/x.log.2.gz", clock.now
    )
    assert sorted(again) == ["docker:abc", "file:/var/log/x.log"]


def test_file_is_private_and_its_directory_created(tmp_path: Path) -> None:
    path = tmp_path / "state" / "nexo" / "positions.json"
    store = PositionsStore(path)
    store.set("docker:abc", POS, path="/x")
    old = os.umask(0)  # even a permissive umask must not widen the file's mode
    try:
        assert store.save()
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["positions.json"]


def test_save_writes_only_when_something_changed(tmp_path: Path) -> None:
    path = tmp_path / "positions.json"
    store = PositionsStore(path)
    store.set("docker:abc", POS, path="/x")
    assert store.dirty and store.save() and not store.dirty
    inode = path.stat().st_ino
    assert store.save()
    assert path.stat().st_ino == inode  # not rewritten (each write is a new inode)
    store.remove("docker:nope")
    assert not store.dirty
    store.remove("docker:abc")
    assert store.dirty


def test_leftover_temp_file_from_a_crash_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "positions.json"
    store = PositionsStore(path)
    store.set("docker:abc", POS, path="/x")
    store.save()
    (tmp_path / ".positions.json.tmp").write_bytes(b'{"version": 1, "positions": {"dock')
    again = PositionsStore(path)
    again.load()
    assert again.get("docker:abc") is not None
    again.set("docker:def", POS, path="/y")
    assert again.save()
    assert not (tmp_path / ".positions.json.tmp").exists()


_CRASHING_WRITER = """
import sys
from pathlib import Path
from agent.logs.positions import PositionsStore
from agent.logs.tail import Fingerprint, SavedPosition
store = PositionsStore(Path(sys.argv[1]))
store.load()
n = 0
while True:
    n += 1
    for i in range(200):
        store.set(f"docker:{i:04d}", SavedPosition(1, i, Fingerprint(5, "00" * 16), n), path="/x")
    store.save()
"""


def test_killed_writer_leaves_an_old_or_new_file_never_a_broken_one(tmp_path: Path) -> None:
    path = tmp_path / "positions.json"
    for round_ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", _CRASHING_WRITER, str(path)],
            cwd=Path(__file__).resolve().parents[2],
        )
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.02 + 0.013 * round_)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        store = PositionsStore(path)
        store.load()
        assert not store.first_start, "a crash must never leave an unusable file"
        assert len(store) == 200
        offsets = {store.get(k).position.offset for k in store}  # type: ignore[union-attr]
        assert len(offsets) == 1  # one consistent save, not a mix
    assert not list(tmp_path.glob("positions.json.corrupt-*"))


def test_corrupt_file_is_moved_aside_and_the_store_starts_empty(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "positions.json"
    path.write_bytes(b'{"version": 1, "positions": {"docker:abc": {"dev": 1')
    store = PositionsStore(path, clock=clock)
    store.load()
    assert store.first_start
    assert len(store) == 0
    assert not path.exists()
    aside = tmp_path / f"positions.json.corrupt-{int(clock.now)}"
    assert aside.read_bytes().startswith(b'{"version": 1')


def test_wrong_shape_counts_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "positions.json"
    path.write_bytes(b'["not", "an", "object"]')
    store = PositionsStore(path)
    store.load()
    assert store.first_start and len(store) == 0
    assert len(list(tmp_path.glob("positions.json.corrupt-*"))) == 1


def test_malformed_entry_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "positions.json"
    store = PositionsStore(path)
    store.set("docker:good", POS, path="/x")
    store.save()
    doc = orjson.loads(path.read_bytes())
    doc["positions"]["docker:bad"] = {"dev": "x", "inode": 1}
    path.write_bytes(orjson.dumps(doc))
    again = PositionsStore(path)
    again.load()
    assert list(again) == ["docker:good"]
    assert not again.first_start


def test_prune_drops_stale_entries_but_keeps_followed_ones(tmp_path: Path) -> None:
    clock = FakeClock()
    store = PositionsStore(tmp_path / "positions.json", clock=clock)
    store.set("docker:old", POS, path="/a")
    store.set("docker:idle-but-followed", POS, path="/b")
    clock.now += 8 * 86400
    store.set("docker:fresh", POS, path="/c")
    removed = store.prune(7 * 86400, keep={"docker:idle-but-followed"})
    assert removed == ["docker:old"]
    assert sorted(store) == ["docker:fresh", "docker:idle-but-followed"]


def test_save_failure_is_reported_and_retried_later(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    store = PositionsStore(blocker / "positions.json")
    store.set("docker:abc", POS, path="/x")
    assert store.save() is False
    assert store.dirty
    blocker.unlink()
    assert store.save() is True
    assert not store.dirty


async def test_run_saves_periodically_and_once_more_when_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "positions.json"
    store = PositionsStore(path)
    task = asyncio.create_task(store.run(0.02))
    store.set("docker:abc", POS, path="/x")
    for _ in range(200):
        await asyncio.sleep(0.01)
        if not store.dirty:
            break
    assert path.exists() and not store.dirty
    store.set("docker:def", POS, path="/y")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    again = PositionsStore(path)
    again.load()
    assert sorted(again) == ["docker:abc", "docker:def"]


def test_saved_position_resumes_a_follower_after_restart(tmp_path: Path) -> None:
    log_path = tmp_path / "abc-json.log"
    log = DockerJsonLog(log_path, max_file=3, compress=True)
    log.write_lines(10)
    follower = FileFollower.open(log_path)
    chunk = follower.read_chunk()
    assert chunk is not None
    store = PositionsStore(tmp_path / "positions.json")
    store.set(
        "docker:abc", follower.position_for(chunk.end_offset, chunk.file_id), path=str(log_path)
    )
    store.save()
    follower.close()
    log.rotate()  # the acknowledged file is now .1.gz
    log.write_lines(5)

    restarted = PositionsStore(tmp_path / "positions.json")
    restarted.load()
    record = restarted.get("docker:abc")
    assert record is not None
    resumed = FileFollower.open(log_path, record.position)
    got = []
    while (c := resumed.read_chunk()) is not None:
        got.extend(c.data.splitlines(keepends=True))
    assert got == log.written[10:]
