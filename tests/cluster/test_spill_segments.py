"""The in-memory store's memory budget: the oldest batches spill to temporary files, and come back on read.

Assertions go through the budget's own accounting (`resident`, `spilled`) and
the segments themselves (`resident_bytes`, the bytes they still hold), and
every read is compared with the bytes that were appended.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import os
from pathlib import Path

import pytest
from logtools import Clock, build_batch

from kstub.cluster.config import TOPIC_CONFIGS
from kstub.cluster.log import Log
from kstub.cluster.segments import Chunk
from kstub.cluster.spill import MemoryBudget, SpillingLogStorage, SpillingSegment
from kstub.protocol.records import iter_records

BATCH = len(build_batch().data)


def make(budget: MemoryBudget, name: str = "t-0", **configs: object) -> Log:
    settings = {k.replace("_", "."): str(v) for k, v in configs.items()}

    def config(key: str) -> str:
        return settings.get(key, TOPIC_CONFIGS[key].default_string or "")

    return Log(config=config, clock=Clock(), storage=SpillingLogStorage(budget, name))


def append(lg: Log, n: int, *, pid: int = -1) -> list[bytes]:
    """Append n one-record batches; returns their bytes as stored (offsets assigned)."""
    out = []
    for i in range(n):
        batch = build_batch(producer_id=pid, producer_epoch=0 if pid >= 0 else -1, base_sequence=i if pid >= 0 else -1)
        lg.append(batch, 0)
        out.append(bytes(batch.data))
    return out


def stored(lg: Log, offset: int = 0) -> list[bytes]:
    return [bytes(c.data) for c in lg.read(offset, 1 << 30, lg.log_end_offset)]


def resident(lg: Log) -> int:
    return sum(s.resident_bytes for s in lg.segments if isinstance(s, SpillingSegment))


def files(budget: MemoryBudget) -> list[Path]:
    """The spilled segments' files."""
    return sorted(budget.directory.glob("*.log")) if budget.directory else []


@pytest.fixture
def budget(tmp_path: Path):
    b = MemoryBudget(BATCH * 4, tmp_path / "spill")
    yield b
    b.close()


def test_closed_segments_leave_memory_and_read_back_byte_for_byte(budget):
    lg = make(budget, segment_bytes=BATCH * 3)
    sent = append(lg, 20)
    assert len(lg.segments) == 7
    assert budget.resident <= budget.limit
    assert budget.resident == resident(lg)
    assert budget.spilled + budget.resident == lg.size_bytes == 20 * BATCH
    for seg in lg.segments[:-2]:  # closed segments: nothing in memory, their bytes in a file
        assert seg.resident_bytes == 0 and seg._data == [] and seg.path is not None and seg.path.exists()
        assert seg.path.stat().st_size == seg.size
    assert lg.active_segment.resident_bytes > 0  # the newest data stays
    assert stored(lg) == sent
    assert [r.offset for c in lg.read(0, 1 << 30, 20) for r in iter_records(c.data)] == list(range(20))
    # a read starting in the middle of a spilled segment starts at the batch holding the offset
    assert stored(lg, 4) == sent[4:]
    # max bytes: whole batches, from the file as from memory
    assert [bytes(c.data) for c in lg.read(1, BATCH * 2, 20)] == sent[1:3]


def test_spilled_reads_are_one_pread_of_whole_batches(budget, monkeypatch):
    lg = make(budget)
    sent = append(lg, 12)
    seg = lg.active_segment
    assert 0 < seg.spilled_count < 12  # a file prefix, a memory tail
    reads: list[tuple[int, int]] = []
    real = os.pread

    def pread(fd: int, n: int, pos: int) -> bytes:
        reads.append((n, pos))
        return real(fd, n, pos)

    monkeypatch.setattr(os, "pread", pread)
    chunks = lg.read(2, 1 << 30, 12)
    assert [bytes(c.data) for c in chunks] == sent[2:]
    assert reads == [((seg.spilled_count - 2) * BATCH, 2 * BATCH)]
    # the chunks read from the file are views of that one read, not copies
    assert isinstance(chunks[0].data, memoryview)


def test_the_oldest_data_spills_first_whatever_its_log(budget):
    a = make(budget, "a-0")
    b = make(budget, "b-0")
    append(a, 2)
    append(b, 2)
    assert budget.spilled == 0
    append(b, 1)  # over the budget: a's batches are the oldest
    assert resident(a) == 0 and resident(b) == 3 * BATCH
    append(b, 2)
    assert resident(a) == 0 and budget.resident <= budget.limit


def test_no_budget_never_spills_and_a_zero_budget_spills_everything(tmp_path):
    unlimited = MemoryBudget(-1, tmp_path / "u")
    lg = make(unlimited, segment_bytes=BATCH * 2)
    sent = append(lg, 10)
    assert unlimited.resident == 10 * BATCH and unlimited.directory is None
    zero = MemoryBudget(0, tmp_path / "z")
    lg0 = make(zero, segment_bytes=BATCH * 2)
    assert append(lg0, 10) == sent
    assert zero.resident == 0 and resident(lg0) == 0 and zero.spilled == 10 * BATCH
    assert stored(lg0) == sent
    zero.close()
    assert not (tmp_path / "z").exists() or not any((tmp_path / "z").iterdir())


def test_retention_deleting_spilled_segments_removes_their_files(budget):
    lg = make(budget, segment_bytes=BATCH * 3)
    sent = append(lg, 12)
    doomed = [s.path for s in lg.segments[:2]]
    assert all(p is not None and p.exists() for p in doomed)
    before = budget.spilled
    assert lg.delete_oldest_segments(2, "retention") == 2
    assert not any(p.exists() for p in doomed)
    assert budget.spilled == before - 6 * BATCH
    assert lg.log_start_offset == 6 and stored(lg, 6) == sent[6:]


def test_delete_records_drops_whole_spilled_segments_and_their_files(budget):
    lg = make(budget, segment_bytes=BATCH * 3)
    sent = append(lg, 12)
    first = lg.segments[0].path
    lg.advance_start(4)  # segment 0 (offsets 0-2) goes, segment 1 (3-5) stays
    assert not first.exists() and lg.segments[0].base_offset == 3
    assert stored(lg, 4) == sent[4:]
    lg.advance_start(100)  # past the end: everything goes
    assert files(budget) == [] and budget.spilled == 0 and budget.resident == 0
    assert lg.log_end_offset == 100
    assert append(lg, 2) and len(stored(lg, 100)) == 2


def test_truncation_into_the_spilled_part_cuts_the_file(budget):
    lg = make(budget, segment_bytes=BATCH * 100)
    sent = append(lg, 10)
    seg = lg.active_segment
    assert seg.spilled_count >= 5
    lg.truncate_to(3)
    assert lg.log_end_offset == 3 and seg.spilled_count == 3 and seg.resident_bytes == 0
    assert seg.path.stat().st_size == 3 * BATCH == seg.size == budget.spilled
    assert budget.resident == 0
    more = append(lg, 6)  # appends after the cut land behind it, spill again, read back right
    assert stored(lg) == sent[:3] + more
    assert seg.path.stat().st_size == seg.spilled_count * BATCH


def test_truncation_in_the_memory_tail_and_a_full_truncation(budget):
    lg = make(budget, segment_bytes=BATCH * 100)
    sent = append(lg, 10)
    seg = lg.active_segment
    k = seg.spilled_count
    lg.truncate_to(k + 1)
    assert seg.spilled_count == k and seg.resident_bytes == BATCH == budget.resident
    assert stored(lg) == sent[: k + 1]
    lg.truncate_fully(50)
    assert files(budget) == [] and budget.resident == budget.spilled == 0


def test_producer_state_is_rebuilt_from_spilled_batch_headers(budget):
    lg = make(budget, segment_bytes=BATCH * 3)
    append(lg, 9, pid=7)
    lg.truncate_to(8)  # the rebuild reads every remaining header, most from files
    assert lg.log_end_offset == 8 and lg.segments[1].resident_bytes == 0 < lg.segments[1].spilled_count
    state = lg.producers.snapshot()["7"]
    assert (state["epoch"], state["batches"]) == (0, [[s, s, s] for s in range(3, 8)])
    assert lg.producers.check(7, 0, 5, 1).duplicate_of == 5


def test_closing_the_budget_removes_the_spill_directory(budget):
    lg = make(budget)
    append(lg, 10)
    directory = budget.directory
    assert directory is not None and any(directory.iterdir())
    budget.close()
    assert not directory.exists()


def test_a_failed_spill_keeps_the_data_in_memory(budget, monkeypatch, caplog):
    lg = make(budget)

    def full(fd: int, buffers: list[bytes]) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "writev", full)
    with caplog.at_level(logging.WARNING, "kstub.spill"):
        sent = append(lg, 8)
    assert "cannot spill" in caplog.text
    assert budget.resident == 8 * BATCH and budget.spilled == 0
    assert all(p.stat().st_size == 0 for p in files(budget))  # nothing half-written
    monkeypatch.undo()
    more = append(lg, 2)  # retried an eighth of the budget later
    assert budget.resident <= budget.limit and budget.spilled > 0
    assert stored(lg) == sent + more


def test_a_spill_directory_left_by_a_killed_process_is_removed_by_the_next(tmp_path):
    import fcntl

    stale = tmp_path / "kstub-spill-stale"  # a killed process's: its lock file, nobody holding it
    stale.mkdir()
    (stale / ".lock").write_bytes(b"")
    (stale / "t-0-broker-0-00000000000000000000-0.log").write_bytes(b"x" * 100)
    live = tmp_path / "kstub-spill-live"  # a running process's: its lock is held
    live.mkdir()
    held = os.open(live / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)
    other = tmp_path / "kstub-spill-other"  # no lock file: not made by a spilling kstub, left alone
    other.mkdir()
    try:
        budget = MemoryBudget(0, tmp_path)
        lg = make(budget)
        append(lg, 2)
        assert not stale.exists() and live.exists() and other.exists()
        mine = budget.directory
        assert sorted(tmp_path.iterdir()) == sorted([live, other, mine])
        # while this budget lives, its own directory is locked: another sweep leaves it
        MemoryBudget(0, tmp_path).file_for("x", 0)
        assert mine.exists()
        budget.close()
        assert not mine.exists()
    finally:
        os.close(held)


def _cached_pages(path: Path) -> int:
    """How many of the file's pages the kernel holds in its page cache (mincore over a private mapping)."""
    libc = ctypes.CDLL(None, use_errno=True)
    size = path.stat().st_size
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) as mm:
        window = (ctypes.c_char * size).from_buffer(mm)
        try:
            vec = (ctypes.c_ubyte * ((size + mmap.PAGESIZE - 1) // mmap.PAGESIZE))()
            if libc.mincore(ctypes.c_void_p(ctypes.addressof(window)), ctypes.c_size_t(size), vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
            return sum(v & 1 for v in vec)
        finally:
            del window


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="posix_fadvise and mincore are Linux's")
def test_spilled_data_leaves_the_page_cache_too(tmp_path):
    """What a spill wrote does not stay in the kernel's page cache either: once written back (here the
    test fsyncs it), the segment's next spill drops it. Without the advice the whole file stays cached."""
    big = 64 * 1024
    budget = MemoryBudget(big * 8, tmp_path / "spill")
    try:
        lg = make(budget)
        sent = []

        def append_big(n: int) -> None:
            for _ in range(n):
                batch = build_batch(value_size=big - 200)
                lg.append(batch, 0)
                sent.append(bytes(batch.data))

        append_big(12)  # past the budget: the first spill
        seg = lg.active_segment
        assert seg.spilled_count > 0 and seg.path is not None
        first = seg.file_size
        fd = os.open(seg.path, os.O_RDONLY)
        try:
            os.fsync(fd)  # the first spill's pages written back: clean, so the advice may drop them
        finally:
            os.close(fd)
        append_big(6)  # the second spill, to the same file
        assert seg.file_size > first
        # at most the pages the second spill wrote to: from the one holding its first byte (shared with the
        # first spill's end, so not wholly clean) to the one holding its last
        page = mmap.PAGESIZE
        second_spill_pages = -(-seg.file_size // page) - first // page
        cached_pages = _cached_pages(seg.path)
        assert cached_pages <= second_spill_pages, (cached_pages, first, seg.file_size)
        assert stored(lg) == sent  # and read back from the disk, byte for byte
    finally:
        budget.close()


# --- replicas sharing their bytes ---------------------------------------------------


def make_replicas(budget: MemoryBudget, partition: object, count: int = 3, **configs: object) -> list[Log]:
    """A partition's replica logs in one process: their storages name the same partition."""

    def config(key: str) -> str:
        settings = {k.replace("_", "."): str(v) for k, v in configs.items()}
        return settings.get(key, TOPIC_CONFIGS[key].default_string or "")

    return [
        Log(config=config, clock=Clock(), storage=SpillingLogStorage(budget, f"t-0-broker-{b}", group=partition))
        for b in range(count)
    ]


def copy(leader: Log, follower: Log) -> None:
    """What a follower in this process does: append the leader's chunks, sharing their bytes."""
    for c in leader.read(follower.log_end_offset, 1 << 30, leader.log_end_offset):
        follower.append_chunk(Chunk(c.base_offset, c.last_offset, c.max_timestamp, c.leader_epoch, c.data))


def produce_replicated(logs: list[Log], n: int) -> list[bytes]:
    sent = []
    for _ in range(n):
        sent += append(logs[0], 1)
        for f in logs[1:]:
            copy(logs[0], f)
    return sent


def spill_files(budget: MemoryBudget) -> int:
    return sum(p.stat().st_size for p in files(budget))


def test_replicas_sharing_bytes_count_them_once_and_spill_them_once(budget):
    logs = make_replicas(budget, object(), segment_bytes=BATCH * 3)
    sent = produce_replicated(logs, 3)
    # three segments hold each batch: the budget counts the bytes once
    assert [resident(lg) for lg in logs] == [3 * BATCH] * 3 and budget.resident == 3 * BATCH
    sent += produce_replicated(logs, 17)
    assert budget.resident <= budget.limit
    # each byte written to a file once, whichever replica spilled it first
    assert spill_files(budget) == budget.spilled == 20 * BATCH - budget.resident
    for lg in logs:
        assert resident(lg) == budget.resident  # the replicas spill together: the same batches stay
        assert stored(lg) == sent
    # the followers wrote no file of their own: their spilled batches are read from the leader's
    assert all(seg.path is None for lg in logs[1:] for seg in lg.segments)
    assert {f.path for lg in logs for seg in lg.segments for f in seg.files} == set(files(budget))


def test_a_file_stays_while_another_replica_reads_from_it(budget):
    logs = make_replicas(budget, object(), segment_bytes=BATCH * 3)
    sent = produce_replicated(logs, 12)
    leader, follower = logs[0], logs[1]
    first = leader.segments[0].path
    assert first is not None and first.exists()
    leader.delete_oldest_segments(2, "retention")  # the leader's file goes from its log ...
    assert first.exists()  # ... but the followers still read from it
    assert stored(follower) == sent and stored(leader, 6) == sent[6:]
    for f in logs[1:]:
        f.delete_oldest_segments(2, "retention")
    assert not first.exists()  # the last reader gone: the file goes
    assert spill_files(budget) == budget.spilled
    for lg in logs:
        lg.truncate_fully(100)
    assert files(budget) == [] and budget.spilled == budget.resident == 0


def test_truncating_a_shared_file_keeps_what_others_read(budget):
    logs = make_replicas(budget, object(), segment_bytes=BATCH * 100)
    sent = produce_replicated(logs, 10)
    leader = logs[0]
    assert leader.active_segment.spilled_count >= 5
    size = leader.active_segment.file_size
    leader.truncate_to(3)  # a leader turned follower truncates: the others still read past the cut
    assert leader.active_segment.file_size == size
    assert stored(leader) == sent[:3] and stored(logs[1]) == stored(logs[2]) == sent
    for lg in logs[1:]:
        lg.truncate_to(3)
    assert stored(logs[2]) == sent[:3]
    assert spill_files(budget) == budget.spilled


def test_a_follower_copying_spilled_data_holds_its_own_bytes(budget):
    logs = make_replicas(budget, object(), count=2)
    sent = append(logs[0], 10)  # the follower lags: the batches it copies come from the leader's file
    copy(logs[0], logs[1])
    assert stored(logs[1]) == sent
    assert budget.resident <= budget.limit and spill_files(budget) == budget.spilled
    assert budget.resident == resident(logs[0]) + resident(logs[1])  # nothing shared: each counted
