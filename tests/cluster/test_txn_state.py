"""Transactions in the logs, on the model: open transactions, the LSO, the aborted index, and their survival.

Transactional batches are validated as the produce path does (`read_produce_data`)
and markers built as the coordinator's (`marker_batch`); appends go through
`Partition.append` / `Partition.append_marker`, followers copy chunks as the
replica fetcher does, and --data-dir reloads go through `DiskStore.recover`.
"""

from __future__ import annotations

import os

from logtools import open_cluster

from kstub.cluster.config import TOPIC_CONFIGS, BrokerConfig
from kstub.cluster.disk_store import DiskStore
from kstub.cluster.log import Log
from kstub.cluster.model import ClusterState
from kstub.cluster.partition import Partition
from kstub.cluster.spill import MemoryBudget, SpillingLogStorage
from kstub.cluster.txn_markers import marker_batch
from kstub.protocol import ErrorCode
from kstub.protocol.records import ProducedBatch, read_produce_data
from kstub.protocol.records.control import Marker

from support.batches import batch

T0 = 1_700_000_000_000


def txn_batch(n: int, pid: int, epoch: int, seq: int, *, transactional: bool = True) -> ProducedBatch:
    data = batch(n, producer_id=pid, epoch=epoch, sequence=seq, transactional=transactional)
    return read_produce_data(data, 9)[0]


def append(p: Partition, b: ProducedBatch) -> int:
    result = p.append([b], T0)
    assert result.error == ErrorCode.NONE, result
    return result.base_offset


def end(p: Partition, pid: int, epoch: int, *, commit: bool, coordinator_epoch: int = 0) -> int:
    marker = Marker(pid, epoch, commit, coordinator_epoch)
    result = p.append_marker(marker_batch(marker, T0), marker, T0)
    assert result.error == ErrorCode.NONE, result
    return result.base_offset


def aborted(lg: Log, start: int = 0, upper: int = 2**62) -> list[tuple[int, int, int]]:
    return [tuple(t) for t in lg.producers.aborted_transactions(start, upper)]


def copy_to_followers(p: Partition) -> None:
    """What the replica fetchers would do: each follower copies what it lacks and reports its log end; a
    second round tells each the high watermark the first one made."""
    for _ in range(2):
        for r in p.replicas:
            if r == p.leader:
                continue
            flog = p.logs[r]
            for chunk in p.leader_log.read(flog.log_end_offset):
                flog.append_chunk(chunk)
            p.follower_fetched(r, flog.log_end_offset, flog.log_end_offset, T0)
            p.states[r].hw = p.high_watermark


def cluster(brokers: int = 1) -> ClusterState:
    c = ClusterState(BrokerConfig({}))
    for i in range(brokers):
        c.add_broker(i, "127.0.0.1", 9092 + i)
    return c


def test_lso_is_the_first_offset_of_the_earliest_open_transaction():
    c = cluster()
    c.create_topic("t", 1, 1)
    p = c.partition("t", 0)
    append(p, txn_batch(2, 0, 0, 0, transactional=False))  # 0-1, not a producer's
    assert p.last_stable_offset == p.high_watermark == 2
    first_a = append(p, txn_batch(3, 10, 0, 0))  # A opens at 2
    append(p, txn_batch(2, 11, 0, 0))  # B opens at 5
    append(p, txn_batch(1, 10, 0, 3))  # A goes on
    assert (p.high_watermark, p.last_stable_offset) == (8, first_a)
    assert p.leader_log.producers.open_transactions() == {10: 2, 11: 5}
    producers = p.leader_log.producers
    assert producers.has_ongoing_transaction(10, 0) and not producers.has_ongoing_transaction(10, 1)
    assert not producers.has_ongoing_transaction(0, 0)
    assert end(p, 10, 0, commit=True) == 8
    assert p.last_stable_offset == 5  # B is still open
    end(p, 11, 0, commit=False)
    assert p.last_stable_offset == p.high_watermark == 10
    assert aborted(p.leader_log) == [(11, 5, 9)]


def test_aborted_transactions_overlapping_a_read():
    c = cluster()
    c.create_topic("t", 1, 1)
    p = c.partition("t", 0)
    append(p, txn_batch(2, 10, 0, 0))  # 0-1
    end(p, 10, 0, commit=False)  # 2
    append(p, txn_batch(2, 11, 0, 0))  # 3-4
    append(p, txn_batch(2, 12, 0, 0))  # 5-6
    end(p, 11, 0, commit=False)  # 7
    end(p, 12, 0, commit=True)  # 8
    lg = p.leader_log
    assert aborted(lg) == [(10, 0, 2), (11, 3, 7)]
    assert aborted(lg, 3) == [(11, 3, 7)]  # the first ended before the read starts
    assert aborted(lg, 0, 2) == [(10, 0, 2)]  # the second starts past the bound
    assert aborted(lg, 8) == []


def test_marker_checks_producer_and_coordinator_epochs():
    c = cluster()
    c.create_topic("t", 1, 1)
    p = c.partition("t", 0)
    append(p, txn_batch(1, 10, 3, 0))
    end(p, 10, 3, commit=True, coordinator_epoch=5)
    old_epoch = Marker(10, 2, False, 5)
    assert p.append_marker(marker_batch(old_epoch, T0), old_epoch, T0).error == ErrorCode.INVALID_PRODUCER_EPOCH
    zombie = Marker(10, 3, False, 4)
    assert p.append_marker(marker_batch(zombie, T0), zombie, T0).error == ErrorCode.TRANSACTION_COORDINATOR_FENCED
    assert p.log_end_offset == 2  # neither was written
    # a data batch of an older epoch is INVALID_PRODUCER_EPOCH (Kafka's answer since 2.7, not PRODUCER_FENCED)
    assert p.append([txn_batch(1, 10, 2, 1)], T0).error == ErrorCode.INVALID_PRODUCER_EPOCH
    # within one epoch the sequence goes on across transactions
    assert p.append([txn_batch(1, 10, 3, 2)], T0).error == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert p.append([txn_batch(1, 10, 3, 1)], T0).error == ErrorCode.NONE
    # a marker of a bumped epoch (transactions v2) leaves no sequence: the next batch starts at 0
    end(p, 10, 4, commit=True, coordinator_epoch=5)
    assert p.append([txn_batch(1, 10, 4, 2)], T0).error == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert p.append([txn_batch(1, 10, 4, 0)], T0).error == ErrorCode.NONE


def test_non_transactional_write_inside_a_transaction_is_invalid_txn_state():
    c = cluster()
    c.create_topic("t", 1, 1)
    p = c.partition("t", 0)
    append(p, txn_batch(1, 10, 0, 0))
    assert p.append([txn_batch(1, 10, 0, 1, transactional=False)], T0).error == ErrorCode.INVALID_TXN_STATE
    end(p, 10, 0, commit=True)
    # a new epoch (transactions v2 bumps it at each end) starts at sequence 0
    assert p.append([txn_batch(1, 10, 1, 0, transactional=False)], T0).error == ErrorCode.NONE


def test_a_marker_not_yet_replicated_keeps_the_lso():
    """Kafka's unreplicated transactions: decided, but stable only once the high watermark passes the marker."""
    c = cluster(3)
    c.create_topic("t", 1, 3)
    p = c.partition("t", 0)
    append(p, txn_batch(2, 10, 0, 0))  # 0-1
    copy_to_followers(p)
    assert (p.high_watermark, p.last_stable_offset) == (2, 0)
    end(p, 10, 0, commit=True)  # 2, not replicated yet
    assert (p.high_watermark, p.last_stable_offset) == (2, 0)
    copy_to_followers(p)
    assert (p.high_watermark, p.last_stable_offset) == (3, 3)


def test_followers_have_the_same_state_and_keep_it_as_leaders():
    c = cluster(3)
    c.create_topic("t", 1, 3)
    p = c.partition("t", 0)
    append(p, txn_batch(2, 10, 0, 0))  # 0-1
    end(p, 10, 0, commit=False)  # 2
    append(p, txn_batch(2, 11, 4, 0))  # 3-4, left open
    copy_to_followers(p)
    leader = p.leader
    for r in p.replicas:
        lg = p.logs[r]
        assert aborted(lg) == [(10, 0, 2)]
        assert lg.producers.open_transactions() == {11: 3}
        assert lg.producers.snapshot() == p.leader_log.producers.snapshot()
    new_leader = next(r for r in p.replicas if r != leader)
    p.become_leader(new_leader, [r for r in p.replicas if r != leader], T0)
    assert p.last_stable_offset == 3
    # the new leader checks sequences and epochs exactly as the old one would have
    assert p.append([txn_batch(2, 11, 4, 0)], T0).base_offset == 3  # a retry: answered with its offset
    assert p.append([txn_batch(1, 11, 3, 2)], T0).error == ErrorCode.INVALID_PRODUCER_EPOCH
    assert p.append([txn_batch(1, 11, 4, 5)], T0).error == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    end(p, 11, 4, commit=True)
    assert p.leader_log.producers.open_transactions() == {}


def test_truncation_rebuilds_the_transactions_of_what_is_left():
    c = cluster()
    c.create_topic("t", 1, 1)
    p = c.partition("t", 0)
    lg = p.leader_log
    append(p, txn_batch(2, 10, 0, 0))  # 0-1
    end(p, 10, 0, commit=False)  # 2
    append(p, txn_batch(2, 11, 0, 0))  # 3-4
    end(p, 11, 0, commit=False)  # 5
    lg.truncate_to(5)  # the second marker goes: its transaction is open again
    assert aborted(lg) == [(10, 0, 2)]
    assert lg.producers.open_transactions() == {11: 3}


def test_retention_drops_the_aborted_index_with_its_segments():
    c = ClusterState(BrokerConfig({}))
    c.add_broker(0, "127.0.0.1", 9092)
    c.create_topic("t", 1, 1, {"segment.bytes": "300"})
    p = c.partition("t", 0)
    lg = p.leader_log
    for i in range(6):
        append(p, txn_batch(2, 100 + i, 0, 0))
        end(p, 100 + i, 0, commit=False)
    assert len(aborted(lg)) == 6 and len(lg.segments) > 2
    lg.delete_oldest_segments(2, "test")
    start = lg.segments[0].base_offset
    assert [t[2] for t in aborted(lg)] == [3 * i + 2 for i in range(6) if 3 * i + 2 >= start]


def _fill(c: ClusterState) -> Partition:
    c.create_topic("t", 1, 3)
    p = c.partition("t", 0)
    append(p, txn_batch(2, 10, 0, 0))  # 0-1
    end(p, 10, 0, commit=False, coordinator_epoch=7)  # 2
    append(p, txn_batch(2, 11, 0, 0))  # 3-4
    end(p, 11, 0, commit=True)  # 5
    append(p, txn_batch(2, 12, 1, 0))  # 6-7, open
    copy_to_followers(p)
    return p


def _state(lg: Log) -> tuple:
    return aborted(lg), lg.producers.open_transactions(), sorted(lg.producers.describe())


def test_reload_from_the_data_dir_after_a_clean_stop(tmp_path):
    c = open_cluster(tmp_path, 3)
    p = _fill(c)
    before = {r: _state(p.logs[r]) for r in p.replicas}
    assert before[p.leader][0] == [(10, 0, 2)] and before[p.leader][1] == {12: 6}
    c.store.close(c)
    c2 = open_cluster(tmp_path, 3)
    p2 = c2.partition("t", 0)
    assert {r: _state(p2.logs[r]) for r in p2.replicas} == before
    assert p2.last_stable_offset == 6
    info = {i.producer_id: i for i in p2.leader_log.producers.describe()}
    assert (info[10].coordinator_epoch, info[10].txn_start_offset, info[12].txn_start_offset) == (7, -1, 6)
    c2.store.close(c2)


def test_reload_without_snapshot_replays_markers(tmp_path):
    """No snapshot (a crash before any roll or clean stop): the state comes from the batches, markers included."""
    c = open_cluster(tmp_path, 3)
    p = _fill(c)
    before = {r: _state(p.logs[r]) for r in p.replicas}
    for lg in p.logs.values():
        lg.close()  # no snapshot: DiskStore.close would take one
    store = c.store
    assert isinstance(store, DiskStore) and store._lock_fd is not None
    os.close(store._lock_fd)
    if store._offsets_fd is not None:
        os.close(store._offsets_fd)
    assert not list(tmp_path.rglob("*.snapshot"))
    c2 = open_cluster(tmp_path, 3)
    p2 = c2.partition("t", 0)
    assert {r: _state(p2.logs[r]) for r in p2.replicas} == before
    c2.store.close(c2)


def test_a_rebuild_reads_spilled_markers_back(tmp_path):
    """The in-memory store spills old batches to files; a truncation's rebuild reads the markers back from them."""
    budget = MemoryBudget(600, tmp_path / "spill")
    lg = Log(config=lambda key: "1000" if key == "segment.bytes" else TOPIC_CONFIGS[key].default_string or "",
             storage=SpillingLogStorage(budget, "t-0"))  # fmt: skip
    for i in range(6):
        b = txn_batch(2, 100 + i, 0, 0)
        lg.append(b, 0)
        marker = Marker(100 + i, 0, i % 2 == 0, 0)
        lg.append(marker_batch(marker, T0), 0)
    assert budget.spilled > 0
    before = aborted(lg)
    assert [t[0] for t in before] == [101, 103, 105]
    lg.truncate_to(lg.log_end_offset - 1)  # the last marker goes: its transaction is open again
    assert aborted(lg) == before[:-1]
    assert lg.producers.open_transactions() == {105: 15}
    budget.close()


def test_retention_may_pass_an_open_transaction():
    """Kafka's retention is bounded by the high watermark only: segments holding an open transaction's start
    may go; the LSO then is the first offset of the batch holding the new log start."""
    c = ClusterState(BrokerConfig({}))
    c.add_broker(0, "127.0.0.1", 9092)
    c.create_topic("t", 1, 1, {"segment.bytes": "300"})
    p = c.partition("t", 0)
    lg = p.leader_log
    first = append(p, txn_batch(2, 10, 0, 0))  # open from 0
    for i in range(6):
        append(p, txn_batch(2, 0, 0, 2 * i, transactional=False))
    assert p.last_stable_offset == first == 0 and len(lg.segments) > 2
    lg.delete_oldest_segments(2, "test")
    start = lg.log_start_offset
    assert start > first and lg.producers.open_transactions() == {10: 0}
    assert p.last_stable_offset == lg.batch_start(start) == start  # segments start with a batch
    end(p, 10, 0, commit=True)
    assert p.last_stable_offset == p.high_watermark
