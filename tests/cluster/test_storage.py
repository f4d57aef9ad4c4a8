"""--data-dir: what is written, and what recovery brings back after a clean stop, a crash or a torn write.

A "crash" here drops the process's state without the clean close: buffered
index entries are never written and no producer-state snapshot is taken, as
when the process is killed. (tests/integration/test_durability.py kills a
real `kstub serve` with SIGKILL.)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import trio
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from logtools import build_batch, crash, open_cluster

from kstub.cluster.disk_store import RecoveryError
from kstub.cluster.model import ClusterState
from kstub.protocol import ErrorCode
from kstub.protocol.records import iter_records, read_produce_data

T0 = 1_700_000_000_000


def produce(cluster: ClusterState, topic: str, partition: int, n: int, **kw) -> list[int]:
    p = cluster.partition(topic, partition)
    out = []
    for i in range(n):
        result = p.append([build_batch(2, timestamp=T0 + i, **kw)], T0)
        assert result.error == ErrorCode.NONE
        out.append(result.base_offset)
    return out


def values(cluster: ClusterState, topic: str, partition: int, offset: int = 0) -> list[tuple[int, int]]:
    p = cluster.partition(topic, partition)
    lg = p.leader_log
    return [(r.offset, r.timestamp) for c in lg.read(offset, 1 << 30, p.high_watermark) for r in iter_records(c.data)]


def expected(batches: int) -> list[tuple[int, int]]:
    """(offset, timestamp) of the records `produce` wrote: batch i holds T0 + i and T0 + i + 1."""
    return [(2 * i + j, T0 + i + j) for i in range(batches) for j in range(2)]


def log_dir(data_dir: Path, topic: str, partition: int, broker: int = 0) -> Path:
    return data_dir / f"broker-{broker}" / f"{topic}-{partition}"


def test_topics_configs_data_and_offsets_come_back_after_a_clean_stop(tmp_path):
    c = open_cluster(tmp_path)
    topic = c.create_topic("orders", 2, 1, configs={"retention.ms": "1000", "segment.bytes": "400"})
    c.config.dynamic_default = {**c.config.dynamic_default, "log.retention.bytes": "12345"}
    c.store.save_metadata(c)
    produce(c, "orders", 0, 10)
    produce(c, "orders", 1, 3)
    c.partition("orders", 0).leader_epoch = 4
    c.store.save_metadata(c)
    for lg in c.partition("orders", 0).logs.values():
        lg.advance_start(5)
    before = values(c, "orders", 0)
    segments = len(c.partition("orders", 0).leader_log.segments)
    c.store.close(c)

    c2 = open_cluster(tmp_path)
    t2 = c2.topics["orders"]
    assert t2.topic_id == topic.topic_id and t2.configs == {"retention.ms": "1000", "segment.bytes": "400"}
    assert c2.config.dynamic_default == {"log.retention.bytes": "12345"}
    assert [p.leader_epoch for p in t2.partitions] == [4, 0]
    p0 = c2.partition("orders", 0)
    assert (p0.log_start_offset, p0.log_end_offset, p0.high_watermark) == (5, 20, 20)
    assert len(p0.leader_log.segments) == segments
    assert values(c2, "orders", 0) == before
    assert values(c2, "orders", 1) == expected(3)
    assert p0.leader_log.epochs == [(0, 5)]
    # appends continue where the log ended
    assert produce(c2, "orders", 0, 1) == [20]
    c2.store.close(c2)


def test_a_crash_loses_nothing_written_and_rebuilds_the_index(tmp_path):
    c = open_cluster(tmp_path)
    c.create_topic("t", 1, 1)
    produce(c, "t", 0, 50)  # index entries are still buffered in memory
    crash(c)
    seg_index = log_dir(tmp_path, "t", 0) / "00000000000000000000.index"
    assert seg_index.stat().st_size == 0

    c2 = open_cluster(tmp_path)
    assert c2.partition("t", 0).log_end_offset == 100
    assert values(c2, "t", 0) == expected(50)
    assert seg_index.stat().st_size == 50 * 8
    c2.store.close(c2)


def test_a_torn_last_batch_is_cut_off_with_a_log_line(tmp_path, caplog):
    c = open_cluster(tmp_path)
    c.create_topic("t", 1, 1)
    produce(c, "t", 0, 5)
    c.store.close(c)
    segment = log_dir(tmp_path, "t", 0) / "00000000000000000000.log"
    size = segment.stat().st_size
    with open(segment, "r+b") as f:
        f.truncate(size - 7)  # the last batch loses its tail

    with caplog.at_level(logging.WARNING, logger="kstub.storage"):
        c2 = open_cluster(tmp_path)
    assert any("partial entry" in r.message and "truncating segment" in r.message for r in caplog.records)
    p = c2.partition("t", 0)
    assert p.log_end_offset == 8
    assert segment.stat().st_size == size - len(build_batch(2).data)
    assert values(c2, "t", 0) == expected(4)
    assert produce(c2, "t", 0, 1) == [8]
    c2.store.close(c2)


def test_a_corrupt_batch_in_the_last_segment_is_cut_off(tmp_path, caplog):
    c = open_cluster(tmp_path)
    c.create_topic("t", 1, 1)
    produce(c, "t", 0, 5)
    c.store.close(c)
    segment = log_dir(tmp_path, "t", 0) / "00000000000000000000.log"
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF  # a flipped bit in the last batch's records: its CRC no longer holds
    segment.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="kstub.storage"):
        c2 = open_cluster(tmp_path)
    assert any("CRC" in r.message for r in caplog.records)
    assert c2.partition("t", 0).log_end_offset == 8
    c2.store.close(c2)


def test_missing_and_corrupt_indexes_are_rebuilt(tmp_path):
    c = open_cluster(tmp_path, log_segment_bytes="600")
    c.create_topic("t", 1, 1)
    produce(c, "t", 0, 12)
    lg = c.partition("t", 0).leader_log
    bases = [s.base_offset for s in lg.segments]
    assert len(bases) >= 3
    before = values(c, "t", 0)
    c.store.close(c)
    d = log_dir(tmp_path, "t", 0)
    (d / f"{bases[0]:020d}.index").unlink()
    (d / f"{bases[1]:020d}.index").write_bytes(os.urandom(37))
    (d / f"{bases[1]:020d}.timeindex").write_bytes(b"")

    c2 = open_cluster(tmp_path)
    lg2 = c2.partition("t", 0).leader_log
    assert [s.base_offset for s in lg2.segments] == bases
    assert values(c2, "t", 0) == before
    for seg in lg2.segments[:2]:
        assert (d / f"{seg.base_offset:020d}.index").stat().st_size == len(seg) * 8
        assert (d / f"{seg.base_offset:020d}.timeindex").stat().st_size == len(seg) * 12
    c2.store.close(c2)


def test_a_torn_older_segment_drops_the_segments_after_it(tmp_path, caplog):
    c = open_cluster(tmp_path, log_segment_bytes="600")
    c.create_topic("t", 1, 1)
    produce(c, "t", 0, 12)
    lg = c.partition("t", 0).leader_log
    first = lg.segments[0]
    count = len(first)
    c.store.close(c)
    d = log_dir(tmp_path, "t", 0)
    with open(d / "00000000000000000000.log", "r+b") as f:
        f.truncate(first.size - 5)
    with caplog.at_level(logging.WARNING, logger="kstub.storage"):
        c2 = open_cluster(tmp_path)
    lg2 = c2.partition("t", 0).leader_log
    assert [s.base_offset for s in lg2.segments] == [0]
    assert lg2.log_end_offset == 2 * (count - 1)
    assert any("dropping segment" in r.message for r in caplog.records)
    assert sorted(p.name for p in d.glob("*.log")) == ["00000000000000000000.log"]
    c2.store.close(c2)


def test_producer_state_survives_a_crash(tmp_path):
    c = open_cluster(tmp_path)
    c.create_topic("t", 1, 1)
    p = c.partition("t", 0)
    for seq in range(0, 10, 2):
        assert p.append([build_batch(2, producer_id=1000, producer_epoch=0, base_sequence=seq)], T0).error == 0
    crash(c)

    c2 = open_cluster(tmp_path)
    p2 = c2.partition("t", 0)
    retry = p2.append([build_batch(2, producer_id=1000, producer_epoch=0, base_sequence=8)], T0)
    assert (retry.error, retry.base_offset, p2.log_end_offset) == (ErrorCode.NONE, 8, 10)  # a duplicate, not stored
    gap = p2.append([build_batch(2, producer_id=1000, producer_epoch=0, base_sequence=14)], T0)
    assert gap.error == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert p2.append([build_batch(2, producer_id=1000, producer_epoch=0, base_sequence=10)], T0).base_offset == 10
    c2.store.close(c2)


def test_a_followers_producer_state_is_recovered_too(tmp_path):
    """After a restart a follower knows the producers of the batches it holds, so as a new leader it dedups."""
    c = open_cluster(tmp_path, brokers=2)
    c.create_topic("t", 1, 2)
    p = c.partition("t", 0)
    follower = next(r for r in p.replicas if r != p.leader)
    for seq in range(0, 6, 2):
        assert p.append([build_batch(2, producer_id=42, producer_epoch=0, base_sequence=seq)], T0).error == 0
    for chunk in p.leader_log.read(0):  # what the replica fetcher would copy
        p.logs[follower].append_chunk(chunk)
    crash(c)

    c2 = open_cluster(tmp_path, brokers=2)
    producers = c2.partition("t", 0).logs[follower].producers
    assert producers.check(42, 0, 4, 2).duplicate_of == 4
    assert producers.check(42, 0, 6, 2).error == ErrorCode.NONE
    c2.store.close(c2)


def test_producer_state_comes_from_snapshots_taken_on_roll_and_close(tmp_path):
    c = open_cluster(tmp_path, log_segment_bytes="300")
    c.create_topic("t", 1, 1)
    p = c.partition("t", 0)
    for seq in range(0, 20, 2):
        p.append([build_batch(2, producer_id=7, producer_epoch=3, base_sequence=seq)], T0)
    d = log_dir(tmp_path, "t", 0)
    assert list(d.glob("*.snapshot")), "a roll takes a snapshot"
    c.store.close(c)
    assert (d / f"{20:020d}.snapshot").exists()
    c2 = open_cluster(tmp_path)
    retry = c2.partition("t", 0).append([build_batch(2, producer_id=7, producer_epoch=3, base_sequence=18)], T0)
    assert retry.base_offset == 18 and c2.partition("t", 0).log_end_offset == 20
    c2.store.close(c2)


def test_producer_ids_are_not_handed_out_twice(tmp_path):
    c = open_cluster(tmp_path)
    _, first, _ = c.producer_ids.init(None, -1, -1)
    c.store.save_producer_ids(c)
    crash(c)
    c2 = open_cluster(tmp_path)
    _, second, _ = c2.producer_ids.init(None, -1, -1)
    assert second > first
    assert c2.producer_ids.init(None, first, 0)[0] == ErrorCode.NONE  # the old id's epoch bump still works
    c2.store.close(c2)


def test_group_offsets_hook_round_trip(tmp_path):
    c = open_cluster(tmp_path)
    store = c.store
    store.save_offsets("g1", {("t", 0): (10, 2, "meta"), ("t", 1): (5, -1, None)})
    store.save_offsets("g1", {("t", 0): (12, 2, None), ("t", 1): None})
    store.save_offsets("g2", {("u", 3): (1, 0, "")})
    store.delete_group("g2")
    crash(c)
    c2 = open_cluster(tmp_path)
    assert c2.store.load_offsets() == {"g1": {("t", 0): (12, 2, None)}}
    c2.store.close(c2)


def test_group_offsets_file_is_compacted_and_survives_a_torn_line(tmp_path):
    c = open_cluster(tmp_path)
    for i in range(300):
        c.store.save_offsets("g", {("t", 0): (i, 0, None)})
    crash(c)
    path = tmp_path / "meta" / "group-offsets.log"
    with open(path, "a") as f:
        f.write('{"group":"g","offsets":[["t",0,99')  # the process died mid-line
    c2 = open_cluster(tmp_path)
    assert c2.store.load_offsets() == {"g": {("t", 0): (299, 0, None)}}
    assert len(path.read_text().splitlines()) == 1
    c2.store.close(c2)


def test_a_deleted_topic_leaves_nothing_and_its_name_can_be_reused(tmp_path):
    c = open_cluster(tmp_path)
    c.create_topic("t", 1, 1)
    produce(c, "t", 0, 3)
    c.delete_topic("t")
    assert not log_dir(tmp_path, "t", 0).exists()
    c.create_topic("t", 1, 1)
    produce(c, "t", 0, 1)
    c.store.close(c)
    c2 = open_cluster(tmp_path)
    assert c2.partition("t", 0).log_end_offset == 2
    c2.store.close(c2)


def test_stale_folders_are_removed(tmp_path):
    c = open_cluster(tmp_path)
    c.create_topic("t", 1, 1)
    c.store.close(c)
    stale = log_dir(tmp_path, "gone", 0)
    stale.mkdir()
    (stale / "00000000000000000000.log").write_bytes(b"x")
    c2 = open_cluster(tmp_path)
    assert not stale.exists() and log_dir(tmp_path, "t", 0).exists()
    c2.store.close(c2)


def test_one_data_dir_one_server(tmp_path):
    c = open_cluster(tmp_path)
    with pytest.raises(RecoveryError, match="in use by another kstub process"):
        open_cluster(tmp_path)
    c.store.close(c)


def test_restarting_with_fewer_brokers_is_refused_with_a_reason(tmp_path):
    c = open_cluster(tmp_path, brokers=3)
    c.create_topic("t", 3, 2)
    c.store.close(c)
    with pytest.raises(RecoveryError, match="start it with --brokers 3"):
        open_cluster(tmp_path, brokers=1)


async def test_fsync_on_ack_and_flush_messages_move_the_recovery_point(tmp_path):
    c = open_cluster(tmp_path)
    c.create_topic("plain", 1, 1)
    c.create_topic("every", 1, 1, configs={"flush.messages": "1"})
    plain, every = c.partition("plain", 0), c.partition("every", 0)
    produce(c, "plain", 0, 3)
    produce(c, "every", 0, 3)
    await c.store.after_produce([plain, every], acks=1)
    assert plain.leader_log.unflushed_messages == 6  # left to the page cache, as Kafka does by default
    assert every.leader_log.unflushed_messages == 0
    c.store.fsync_on_ack = True
    await c.store.after_produce([plain], acks=0)
    assert plain.leader_log.unflushed_messages == 6  # nothing is acknowledged with acks=0
    await c.store.after_produce([plain], acks=-1)
    assert plain.leader_log.unflushed_messages == 0
    c.store.close(c)


def test_fetches_read_only_the_byte_ranges_they_return(tmp_path, monkeypatch):
    c = open_cluster(tmp_path)
    c.create_topic("big", 1, 1)
    produce(c, "big", 0, 400)  # ~ 100 KB in one segment
    lg = c.partition("big", 0).leader_log
    assert len(lg.segments) == 1 and lg.size_bytes > 80_000
    reads: list[int] = []
    real_pread = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        reads.append(n)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(os, "pread", pread)
    chunks = lg.read(300, 4096, lg.log_end_offset)
    assert sum(c.size for c in chunks) <= 4096
    assert reads == [sum(c.size for c in chunks)]  # one read, of exactly the batches returned
    c.store.close(c)


def test_a_failed_write_leaves_no_partial_batch(tmp_path, monkeypatch):
    c = open_cluster(tmp_path)
    c.create_topic("t", 1, 1)
    produce(c, "t", 0, 2)
    p = c.partition("t", 0)
    seg = p.leader_log.active_segment
    size = seg.size
    real_write = os.write

    def disk_full(fd: int, data) -> int:
        real_write(fd, bytes(data)[:10])  # part of the batch reaches the file, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError):
        p.append([build_batch(2)], T0)
    monkeypatch.undo()
    assert os.path.getsize(seg.path) == size and p.log_end_offset == 4
    assert produce(c, "t", 0, 1) == [4]
    assert [offset for offset, _ in values(c, "t", 0)] == list(range(6))
    c.store.close(c)


async def test_the_flush_scheduler_fsyncs_logs_unflushed_for_flush_ms(tmp_path):
    c = open_cluster(tmp_path, log_flush_scheduler_interval_ms="20")
    # without an override, flush.ms follows log.flush.interval.ms, then log.flush.scheduler.interval.ms (Kafka)
    assert c.create_topic("any", 1, 1).config("flush.ms") == "20"
    c.create_topic("slow", 1, 1, configs={"flush.ms": "3600000"})
    c.create_topic("fast", 1, 1, configs={"flush.ms": "0"})
    produce(c, "slow", 0, 2)
    produce(c, "fast", 0, 2)
    slow, fast = c.partition("slow", 0).leader_log, c.partition("fast", 0).leader_log
    async with trio.open_nursery() as nursery:
        nursery.start_soon(c.store.background, c)
        with trio.fail_after(10):
            while fast.unflushed_messages:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert slow.unflushed_messages == 4
    c.store.close(c)


async def test_without_a_flush_scheduler_the_background_task_ends(tmp_path):
    c = open_cluster(tmp_path)
    with trio.fail_after(1):
        await c.store.background(c)  # Kafka's default log.flush.scheduler.interval.ms: never
    c.store.close(c)


@pytest.mark.parametrize(("magic", "codec"), [(0, 0), (1, 0), (1, 1), (0, 1)])
def test_legacy_message_sets_are_recovered(tmp_path, magic, codec):
    c = open_cluster(tmp_path)
    c.create_topic("old", 1, 1)
    p = c.partition("old", 0)
    for n in range(3):
        builder = LegacyRecordBatchBuilder(magic, codec, 1 << 20)
        for i in range(4):
            builder.append(i, T0 + i if magic else None, f"k{n}{i}".encode(), f"v{n}{i}".encode())
        p.leader_epoch = n  # legacy formats carry no epoch: it comes back from the leader-epoch-checkpoint
        assert p.append(read_produce_data(bytes(builder.build()), 2), T0).base_offset == 4 * n
    before = [(r.offset, r.key, r.value) for c_ in p.leader_log.read(0, 1 << 20, 12) for r in iter_records(c_.data)]
    crash(c)
    (log_dir(tmp_path, "old", 0) / "00000000000000000000.index").unlink()  # rebuilt from the segment file
    c2 = open_cluster(tmp_path)
    lg = c2.partition("old", 0).leader_log
    after = [(r.offset, r.key, r.value) for c_ in lg.read(0, 1 << 20, 12) for r in iter_records(c_.data)]
    assert after == before and [o for o, _, _ in after] == list(range(12))
    assert lg.epochs == [(0, 0), (1, 4), (2, 8)]
    assert [lg.epoch_at(o) for o in (0, 5, 11)] == [0, 1, 2]
    c2.store.close(c2)
