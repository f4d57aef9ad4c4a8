"""A replica log split into segments, in memory and on disk alike (each test runs with both).

Rolling follows Kafka's LogSegment.shouldRoll: a batch that would take the
active segment past segment.bytes, or whose timestamp is more than segment.ms
after the segment's first batch, goes to a new segment; an empty segment
never rolls. Reads cross segment boundaries; truncation, advancing the log
start and deleting old segments keep offsets, sizes and leader epochs right.
"""

from __future__ import annotations

from logtools import build_batch

from kstub.cluster import timestamps
from kstub.protocol.records import iter_records


def fill(lg, n: int, *, count: int = 1, timestamp: int = 1_700_000_000_000, epoch: int = 0, step: int = 0) -> list[int]:
    return [lg.append(build_batch(count, timestamp=timestamp + i * step), epoch) for i in range(n)]


def offsets_read(lg, offset: int = 0, max_bytes: int = 1 << 30) -> list[int]:
    return [r.offset for c in lg.read(offset, max_bytes, lg.log_end_offset) for r in iter_records(c.data)]


def test_a_new_log_has_one_empty_segment(make_log):
    lg = make_log()
    assert len(lg.segments) == 1 and lg.active_segment.base_offset == 0
    assert (lg.log_start_offset, lg.log_end_offset, lg.size_bytes, len(lg)) == (0, 0, 0, 0)


def test_rolls_when_a_batch_would_pass_segment_bytes(make_log):
    size = len(build_batch().data)
    lg = make_log(segment_bytes=size * 3)
    fill(lg, 7)
    # three batches fit exactly; the fourth would pass the limit
    assert [s.base_offset for s in lg.segments] == [0, 3, 6]
    assert [len(s) for s in lg.segments] == [3, 3, 1]
    assert lg.size_bytes == 7 * size
    assert offsets_read(lg) == list(range(7))


def test_a_batch_larger_than_segment_bytes_still_goes_in(make_log):
    lg = make_log(segment_bytes=100)
    fill(lg, 3, count=5)
    assert [s.base_offset for s in lg.segments] == [0, 5, 10]  # one oversized batch per segment
    assert lg.log_end_offset == 15


def test_rolls_by_segment_ms_using_batch_timestamps(make_log):
    lg = make_log(segment_ms=1000)
    fill(lg, 4, step=400)  # timestamps 0, 400, 800, 1200 after the first
    # 1200 - 0 > 1000: the fourth batch starts a new segment; its own clock starts at 1200
    assert [s.base_offset for s in lg.segments] == [0, 3]
    fill(lg, 1, timestamp=1_700_000_000_000 + 2200)
    assert [s.base_offset for s in lg.segments] == [0, 3]  # 2200 - 1200 is not more than 1000
    fill(lg, 1, timestamp=1_700_000_000_000 + 2201)
    assert [s.base_offset for s in lg.segments] == [0, 3, 5]


def test_reads_cross_segments_and_respect_max_bytes_and_upper(make_log):
    size = len(build_batch().data)
    lg = make_log(segment_bytes=size * 2)
    fill(lg, 6)
    assert offsets_read(lg, 1) == [1, 2, 3, 4, 5]
    assert offsets_read(lg, 1, max_bytes=size * 3) == [1, 2, 3]
    assert offsets_read(lg, 1, max_bytes=1) == [1]  # at least one batch
    assert lg.read(1, 1, lg.log_end_offset, min_one=False) == []
    assert [c.base_offset for c in lg.read(0, 1 << 20, 4)] == [0, 1, 2, 3]  # below the high watermark only
    assert [c.base_offset for c in lg.read(3)] == [3, 4, 5]


def test_chunks_are_the_stored_bytes(make_log):
    lg = make_log(segment_bytes=500)
    batches = [build_batch(3, timestamp=1_700_000_000_000 + i) for i in range(5)]
    for b in batches:
        lg.append(b, 7)
    chunks = lg.read(0, 1 << 20, lg.log_end_offset)
    assert [bytes(c.data) for c in chunks] == [bytes(b.data) for b in batches]
    assert [(c.base_offset, c.last_offset, c.leader_epoch) for c in chunks] == [(3 * i, 3 * i + 2, 7) for i in range(5)]


def test_find_timestamp_and_max_timestamp_across_segments(make_log):
    lg = make_log(segment_bytes=300)
    fill(lg, 6, count=2, step=10)
    end = lg.log_end_offset
    assert len(lg.segments) > 2
    assert timestamps.find_timestamp(lg, 1_700_000_000_000 + 21, end) == (5, 1_700_000_000_000 + 21)
    assert timestamps.find_timestamp(lg, 1_700_000_000_000 + 999, end) is None
    assert timestamps.max_timestamp_offset(lg, end) == (11, 1_700_000_000_000 + 51)
    assert timestamps.max_timestamp_offset(lg, 6) == (5, 1_700_000_000_000 + 21)


def test_find_timestamp_skips_records_below_the_log_start_in_the_same_batch(make_log):
    lg = make_log()
    fill(lg, 1, count=10)  # one batch: offsets 0..9, timestamps T..T+9
    lg.advance_start(6)  # DeleteRecords into the middle of the batch
    assert timestamps.find_timestamp(lg, 1_700_000_000_000, 10) == (6, 1_700_000_000_000 + 6)
    assert timestamps.find_timestamp(lg, 1_700_000_000_000 + 8, 10) == (8, 1_700_000_000_000 + 8)
    assert timestamps.find_timestamp(lg, 1_700_000_000_000, 6) is None  # below the upper bound: none left


def test_truncate_to_drops_whole_segments_and_the_holding_batch(make_log):
    size = len(build_batch(2).data)
    lg = make_log(segment_bytes=size * 2)
    fill(lg, 3, count=2, epoch=1)
    fill(lg, 3, count=2, epoch=2)
    assert lg.epochs == [(1, 0), (2, 6)]
    lg.truncate_to(5)  # offset 5 is in the batch 4..5
    assert lg.log_end_offset == 4
    assert lg.epochs == [(1, 0)]
    assert offsets_read(lg) == [0, 1, 2, 3]
    assert lg.append(build_batch(), 3) == 4
    assert offsets_read(lg) == [0, 1, 2, 3, 4]


def test_advance_start_deletes_only_segments_wholly_below(make_log):
    size = len(build_batch().data)
    lg = make_log(segment_bytes=size * 2)
    fill(lg, 6)
    lg.advance_start(3)
    assert lg.log_start_offset == 3
    assert [s.base_offset for s in lg.segments] == [2, 4]  # segment 2..3 holds the new start
    assert lg.size_bytes == 4 * size
    lg.advance_start(2)  # never backwards
    assert lg.log_start_offset == 3


def test_advance_start_past_the_end_restarts_the_log(make_log):
    lg = make_log()
    fill(lg, 3, epoch=4)
    lg.advance_start(10)
    assert (lg.log_start_offset, lg.log_end_offset, lg.size_bytes) == (10, 10, 0)
    assert lg.append(build_batch(), 5) == 10
    # Kafka's LeaderEpochFileCache.assign: an entry starting at or after the new one gives way
    assert lg.epochs == [(5, 10)]


def test_advancing_the_start_truncates_the_epoch_cache_from_the_start(make_log):
    lg = make_log()
    fill(lg, 2, epoch=1)
    fill(lg, 2, epoch=3)
    lg.advance_start(3)
    assert lg.epochs == [(3, 3)]
    # Kafka's endOffsetFor: an epoch older than any known answers (that epoch, start of the first known one)
    assert lg.end_offset_for_epoch(1) == (1, 3)


def test_deleting_every_segment_rolls_first(make_log):
    lg = make_log()
    fill(lg, 3)
    assert lg.delete_oldest_segments(1, "test") == 1
    assert [s.base_offset for s in lg.segments] == [3]
    assert (lg.log_start_offset, lg.log_end_offset, lg.size_bytes) == (3, 3, 0)
    assert lg.append(build_batch(), 0) == 3


async def test_sync_moves_the_recovery_point(make_log):
    lg = make_log()
    fill(lg, 3)
    await lg.sync()
    assert lg.recovery_point == 3 and lg.unflushed_messages == 0
