"""The log cleaner (kstub/cluster/cleaner.py) on one log, in memory, on disk and spilled: Kafka's rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from logtools import kv

from kstub.cluster.cleaner_plan import cleanable, should_clean
from kstub.cluster.cleaner_rewrite import clean_once
from kstub.cluster.config import TOPIC_CONFIGS
from kstub.cluster.log import Log
from kstub.cluster.log_files import DiskLogStorage, FileSegment, recover_log
from kstub.cluster.segments import Chunk
from kstub.protocol.records import ProducedBatch, RecordBatch, iter_records
from kstub.protocol.records.control import control_batch

T0 = 1_700_000_000_000
DAY = 86_400_000


def settings(**configs: object):
    values = {k.replace("_", "."): str(v) for k, v in configs.items()}
    return lambda name: values.get(name, TOPIC_CONFIGS[name].default_string or "")


def contents(lg: Log) -> list[tuple[int, str, str | None]]:
    """(offset, key, value) of every record in the log, in order."""
    out = []
    for chunk in lg.read(0):
        for r in iter_records(chunk.data):
            out.append((r.offset, r.key.decode(), None if r.value is None else r.value.decode()))
    return out


def latest(lg: Log) -> dict[str, str]:
    """What a consumer reading the whole log ends with: the last value of each key, tombstones deleting."""
    state: dict[str, str] = {}
    for _, k, v in contents(lg):
        if v is None:
            state.pop(k, None)
        else:
            state[k] = v
    return state


def segmented(make_log, batches: list[ProducedBatch], **configs: object) -> Log:
    """A compacted log with one batch per segment (segment.bytes just fits the largest batch)."""
    size = max(len(b.data) for b in batches)
    lg = make_log(segment_bytes=size, cleanup_policy="compact", **{k: str(v) for k, v in configs.items()})
    for b in batches:
        lg.append(b, 0)
    return lg


def clean(lg: Log, config, *, now: int = T0 + 1000, checkpoint: int | None = None, force: bool = True):
    return clean_once(lg, config, checkpoint=checkpoint, stable=lg.log_end_offset, now_ms=now, force=force)


def test_the_latest_record_of_each_key_stays_at_its_offset_and_the_active_segment_is_untouched(make_log):
    batches = [
        kv([("a", "1"), ("b", "1")]),
        kv([("a", "2"), ("c", "1")]),
        kv([("b", "2"), ("a", "3")]),
        kv([("c", "2"), ("d", "1")]),  # the active segment
    ]
    lg = segmented(make_log, batches)
    config = settings(cleanup_policy="compact", segment_bytes=lg.segments[0].size)
    assert len(lg.segments) == 4
    before = contents(lg)
    result = clean(lg, config)
    assert result is not None and result.end_offset == 6  # the active segment's base
    after = contents(lg)
    # c=1 (offset 3) stays: its newer value is in the active segment, which the map does not cover
    assert after == [(3, "c", "1"), (4, "b", "2"), (5, "a", "3"), (6, "c", "2"), (7, "d", "1")]
    assert latest(lg) == {"a": "3", "b": "2", "c": "2", "d": "1"}
    # offsets are preserved: every kept record is where it was
    assert set(after) <= set(before)
    assert lg.log_end_offset == 8 and lg.log_start_offset == 0
    # the active segment is the same, the closed ones were grouped (each group fits segment.bytes)
    assert lg.segments[-1].base_offset == 6
    # a second cleaning with nothing dirty changes nothing
    again = clean(lg, config, checkpoint=result.end_offset)
    assert again is None
    assert contents(lg) == after


def test_a_batch_with_no_record_left_goes_but_offsets_keep_their_gaps(make_log):
    batches = [kv([("a", "1")]), kv([("a", "2")]), kv([("a", "3")]), kv([("z", "0")])]
    lg = segmented(make_log, batches)
    config = settings(cleanup_policy="compact", segment_bytes=lg.segments[0].size)
    clean(lg, config)
    assert contents(lg) == [(2, "a", "3"), (3, "z", "0")]
    # a read from offset 0 (or from inside the gap) starts at the next batch
    assert lg.read(0)[0].base_offset == 2
    assert lg.read(1)[0].base_offset == 2


def test_a_partly_kept_batch_keeps_its_base_and_last_offset_producer_fields_and_codec(make_log):
    batches = [
        kv([("a", "1" * 300), ("b", "1" * 300), ("c", "1" * 300)], pid=7, epoch=2, seq=0, compression=1),
        kv([("a", "2")], pid=7, epoch=2, seq=3),
        kv([("z", "0")]),
    ]
    lg = segmented(make_log, batches)
    config = settings(cleanup_policy="compact", segment_bytes=max(len(b.data) for b in batches))
    assert RecordBatch(bytes(lg.read(0)[0].data)).compression == 1
    clean(lg, config)
    first = lg.read(0)[0]
    header = RecordBatch(bytes(first.data))
    header.validate()
    assert (header.base_offset, header.last_offset, header.records_count) == (0, 2, 2)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (7, 2, 0)
    assert header.compression == 1
    assert [(r.offset, r.key) for r in header.records()] == [(1, b"b"), (2, b"c")]


def test_tombstones_stay_until_their_delete_horizon_then_go(make_log):
    batches = [kv([("a", "1"), ("b", "1")]), kv([("a", None)]), kv([("b", "2")]), kv([("z", "0")])]
    lg = segmented(make_log, batches)
    config = settings(
        cleanup_policy="compact", segment_bytes=max(len(b.data) for b in batches), delete_retention_ms=DAY
    )
    now = T0 + 1000
    first = clean(lg, config, now=now)
    assert first is not None
    assert [(o, k, v) for o, k, v in contents(lg) if k == "a"] == [(2, "a", None)]
    tomb = RecordBatch(bytes(lg.read(2)[0].data))
    assert tomb.attributes & 0x40 and tomb.base_timestamp == now + DAY  # the delete horizon (KIP-534)
    # before the horizon a cleaning (there is new dirty data: "y" closes "z"'s segment) keeps it
    lg.append(kv([("y", "0")]), 0)
    second = clean(lg, config, now=now + DAY - 1, checkpoint=first.end_offset)
    assert second is not None and second.end_offset == 5
    assert (2, "a", None) in contents(lg)
    # after it, the next cleaning removes it (its batch too: nothing left, not the last of the round)
    lg.append(kv([("x", "0")]), 0)
    third = clean(lg, config, now=now + DAY, checkpoint=second.end_offset)
    assert third is not None
    assert [k for _, k, _ in contents(lg)] == ["b", "z", "y", "x"]
    assert latest(lg) == {"b": "2", "z": "0", "y": "0", "x": "0"}


def test_the_dirty_ratio_decides_unless_forced(make_log):
    batches = [kv([("a", str(i))]) for i in range(4)] + [kv([("z", "0")])]
    lg = segmented(make_log, batches)
    config = settings(cleanup_policy="compact", segment_bytes=lg.segments[0].size, min_cleanable_dirty_ratio=0.5)
    plan = cleanable(lg, config, None, lg.log_end_offset, T0)
    assert plan.ratio == 1.0 and should_clean(plan, config)
    result = clean(lg, config, force=False)
    assert result is not None
    # one more closed segment after the clean part: dirty ratio = that segment / everything closed
    lg.append(kv([("y", "0")]), 0)
    plan = cleanable(lg, config, result.end_offset, lg.log_end_offset, T0)
    assert 0 < plan.ratio <= 0.5
    assert not should_clean(plan, config)
    assert clean(lg, config, checkpoint=result.end_offset, force=False) is None


def test_min_compaction_lag_keeps_young_segments_dirty(make_log):
    hour = 3_600_000
    batches = [kv([("a", "1")], ts=T0), kv([("a", "2")], ts=T0 + 2 * hour), kv([("z", "0")], ts=T0 + 2 * hour)]
    lg = segmented(make_log, batches)
    config = settings(cleanup_policy="compact", segment_bytes=lg.segments[0].size, min_compaction_lag_ms=hour)
    now = T0 + 2 * hour + 10
    plan = cleanable(lg, config, None, lg.log_end_offset, now)
    assert plan.first_uncleanable == 1  # segment 1 is younger than the lag
    clean(lg, config, now=now)
    assert [o for o, _, _ in contents(lg)] == [0, 1, 2]  # a=1 stays: a=2 is not in the cleaned range
    plan = cleanable(lg, config, None, lg.log_end_offset, now + hour)
    assert plan.first_uncleanable == 2
    clean(lg, config, now=now + hour)
    assert [o for o, _, _ in contents(lg)] == [1, 2]


def test_max_compaction_lag_forces_cleaning_below_the_dirty_ratio(make_log):
    batches = [kv([("a", "1")], ts=T0), kv([("z", "0")], ts=T0)]
    lg = segmented(make_log, batches)
    config = settings(
        cleanup_policy="compact",
        segment_bytes=lg.segments[0].size,
        min_cleanable_dirty_ratio=0.99,
        max_compaction_lag_ms=60_000,
    )
    result = clean(lg, config, force=False, now=T0 + 1000)
    assert result is not None  # ratio 1.0 > 0.99
    lg.append(kv([("a", "2")], ts=T0 + 2000), 0)
    lg.append(kv([("y", "0")], ts=T0 + 2000), 0)
    # the newly closed segments are under the dirty ratio ...
    assert not should_clean(cleanable(lg, config, result.end_offset, lg.log_end_offset, T0 + 3000), config)
    # ... until their first batch is older than max.compaction.lag.ms
    plan = cleanable(lg, config, result.end_offset, lg.log_end_offset, T0 + 2000 + 60_001)
    assert plan.need_now and should_clean(plan, config)


def test_a_producers_last_batch_stays_empty_so_its_state_survives(make_log):
    batches = [
        kv([("a", "1")], pid=5, epoch=0, seq=0),
        kv([("a", "2")], pid=6, epoch=0, seq=0),
        kv([("a", "3")]),
        kv([("z", "0")]),
    ]
    lg = segmented(make_log, batches)
    config = settings(cleanup_policy="compact", segment_bytes=max(len(b.data) for b in batches))
    clean(lg, config)
    heads = [RecordBatch(bytes(c.data)) for c in lg.read(0)]
    # both producers' batches stay, empty, with their offsets and sequences
    assert [(h.base_offset, h.producer_id, h.records_count, h.base_sequence) for h in heads[:2]] == [
        (0, 5, 0, 0),
        (1, 6, 0, 0),
    ]
    assert latest(lg) == {"a": "3", "z": "0"}


def _append_marker(lg: Log, pid: int, epoch: int, *, commit: bool, ts: int = T0) -> None:
    base = lg.log_end_offset
    data = control_batch(pid, epoch, commit=commit, coordinator_epoch=0, timestamp_ms=ts, base_offset=base)
    lg.append_chunk(Chunk(base, base, ts, 0, data))


def test_aborted_transactions_go_and_committed_ones_stay(make_log):
    size = 2 * len(kv([("a", "1")], pid=9, epoch=0, seq=0, transactional=True).data)
    lg = make_log(segment_bytes=size, cleanup_policy="compact")
    lg.append(kv([("a", "committed")], pid=9, epoch=0, seq=0, transactional=True), 0)
    _append_marker(lg, 9, 0, commit=True)
    lg.append(kv([("a", "aborted")], pid=9, epoch=0, seq=1, transactional=True), 0)
    _append_marker(lg, 9, 0, commit=False)
    lg.append(kv([("z", "0")]), 0)
    lg.append(kv([("y", "0")]), 0)
    lg.roll()
    config = settings(cleanup_policy="compact", segment_bytes=size)
    clean(lg, config)
    values = [(o, k, v) for o, k, v in contents(lg) if k == "a"]
    assert values == [(0, "a", "committed")]
    # the markers stay (their transactions had data in this cleaning)
    controls = [RecordBatch(bytes(c.data)) for c in lg.read(0) if RecordBatch(bytes(c.data)).is_control]
    assert [c.base_offset for c in controls] == [1, 3]


@pytest.mark.parametrize("crash_at", ["writing", "swapping"])
def test_a_crash_during_cleaning_recovers_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_at: str):
    directory = tmp_path / "t-0"
    directory.mkdir()
    batches = [kv([("a", str(i)), (f"k{i}", "x")]) for i in range(6)] + [kv([("z", "0")])]
    size = max(len(b.data) for b in batches)
    config = settings(cleanup_policy="compact", segment_bytes=size)
    clock = lambda: T0  # noqa: E731
    lg = Log(config=config, clock=clock, storage=DiskLogStorage(directory, fsync_checkpoints=False))
    for b in batches:
        lg.append(b, 0)
    before = latest(lg)

    class Crash(Exception):
        pass

    if crash_at == "writing":
        real_append = FileSegment.append

        def append(self, chunk, now_ms):
            if self.path.name.endswith(".cleaned") and self.base_offset >= 2:  # groups before were swapped
                raise Crash
            return real_append(self, chunk, now_ms)

        monkeypatch.setattr(FileSegment, "append", append)
    else:
        real_rename = FileSegment.rename

        def rename(self, suffix):
            if suffix == "":  # the old segments are gone, the swap file not renamed yet
                raise Crash
            return real_rename(self, suffix)

        monkeypatch.setattr(FileSegment, "rename", rename)
    with pytest.raises(Crash):
        clean(lg, config)
    monkeypatch.undo()
    names = sorted(os.listdir(directory))
    if crash_at == "swapping":
        assert any(n.endswith(".log.swap") for n in names) and any(n.endswith(".replaces") for n in names)
    for seg in lg.segments:  # the process dies: descriptors closed, nothing else done
        if seg.fd >= 0:
            os.close(seg.fd)
            seg.fd = -1
    recovered = recover_log(directory, config=config, clock=clock, fsync_checkpoints=False, name="t-0")
    try:
        leftovers = [n for n in os.listdir(directory) if n.endswith((".cleaned", ".swap", ".replaces"))]
        assert leftovers == []
        assert latest(recovered) == before
        assert recovered.log_end_offset == lg.log_end_offset
        if crash_at == "swapping":  # the first group's cleaning was complete: its result is kept
            assert (0, "a", "0") not in contents(recovered) and (1, "k0", "x") in contents(recovered)
        # and it cleans again from there
        result = clean(recovered, config)
        assert result is not None and latest(recovered) == before
        assert [k for _, k, _ in contents(recovered)].count("a") == 1
        cleaned = contents(recovered)
        shape = [(s.base_offset, list(s.lasts)) for s in recovered.segments]
    finally:
        recovered.close()
    # the compacted log, with its gaps, reopens as it is
    again = recover_log(directory, config=config, clock=clock, fsync_checkpoints=False, name="t-0")
    try:
        assert contents(again) == cleaned
        assert [(s.base_offset, list(s.lasts)) for s in again.segments] == shape
    finally:
        again.close()
