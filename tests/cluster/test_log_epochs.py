"""A replica's log: the leader epoch cache, truncation, producer state, and reconciliation by epochs.

`end_offset_for_epoch` answers as Kafka's LeaderEpochFileCache.endOffsetFor;
`reconcile` truncates a follower as Kafka's fetcher does after KIP-279. The
scenarios are the ones from KIP-101 and KIP-279.
"""

from __future__ import annotations

from kstub.cluster.log import Log
from kstub.cluster.replication import reconcile
from kstub.protocol import ErrorCode

from replication_harness import batch


def log_with(*segments: tuple[int, int]) -> Log:
    """A log written by leader epochs: (epoch, records) segments, one batch per record."""
    log = Log()
    for epoch, records in segments:
        log.start_epoch(epoch)
        for _ in range(records):
            log.append(batch(), epoch)
    return log


def copy_into(follower: Log, leader: Log) -> None:
    for chunk in leader.read(follower.log_end_offset):
        follower.append_chunk(chunk)


# --- the epoch cache ----------------------------------------------------------------


def test_end_offset_for_epoch_as_kafka():
    log = log_with((0, 3), (2, 2), (5, 4))  # epochs 0@0, 2@3, 5@5, LEO 9
    assert log.epochs == [(0, 0), (2, 3), (5, 5)]
    assert log.end_offset_for_epoch(5) == (5, 9), "the latest epoch ends at the log end"
    assert log.end_offset_for_epoch(0) == (0, 3)
    assert log.end_offset_for_epoch(2) == (2, 5)
    assert log.end_offset_for_epoch(1) == (0, 3), "an unknown epoch: the largest below it, ended where the next began"
    assert log.end_offset_for_epoch(4) == (2, 5)
    assert log.end_offset_for_epoch(6) == (-1, -1), "newer than any known"
    assert log.end_offset_for_epoch(-1) == (-1, -1)
    older = log_with((3, 2))
    assert older.end_offset_for_epoch(1) == (1, 0), "older than any known: the requested epoch, at the first start"
    assert Log().end_offset_for_epoch(0) == (-1, -1)


def test_a_new_leader_records_its_epoch_before_writing():
    log = log_with((0, 2))
    log.start_epoch(1)
    assert log.epochs == [(0, 0), (1, 2)]
    assert log.end_offset_for_epoch(0) == (0, 2) and log.end_offset_for_epoch(1) == (1, 2)
    log.start_epoch(1)
    assert log.epochs == [(0, 0), (1, 2)], "idempotent"


def test_batches_carry_their_leader_epoch():
    log = Log()
    log.append(batch(), 7)
    chunk = log.read(0)[0]
    assert chunk.leader_epoch == 7
    assert int.from_bytes(chunk.data[12:16], "big") == 7, "partitionLeaderEpoch is stamped into the batch"


# --- truncation -------------------------------------------------------------------------


def test_truncate_drops_whole_batches_and_forgets_epochs():
    log = log_with((0, 3), (1, 3))
    log.truncate_to(4)
    assert log.log_end_offset == 4 and log.epochs == [(0, 0), (1, 3)]
    log.truncate_to(3)
    assert log.log_end_offset == 3 and log.epochs == [(0, 0)]
    log.truncate_to(10)
    assert log.log_end_offset == 3, "truncating beyond the end changes nothing"
    multi = Log()
    multi.append(batch(5), 0)  # offsets 0-4 in one batch
    multi.truncate_to(2)
    assert multi.log_end_offset == 0, "a batch is never split: the log ends at a batch boundary"


def test_producer_state_is_rebuilt_from_what_remains():
    log = Log()
    log.append(batch(2, pid=7, epoch=0, seq=0), 0)  # offsets 0-1, seq 0-1
    log.append(batch(2, pid=7, epoch=0, seq=2), 0)  # offsets 2-3, seq 2-3
    assert log.producers.check(7, 0, 2, 2).duplicate_of == 2
    log.truncate_to(2)
    # the second batch is gone: its retry is new data, appended again, not a duplicate
    verdict = log.producers.check(7, 0, 2, 2)
    assert verdict.duplicate_of is None and verdict.error == ErrorCode.NONE
    assert log.producers.check(7, 0, 4, 1).error == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_a_follower_learns_producer_state_from_copied_batches():
    leader = Log()
    leader.append(batch(1, pid=9, epoch=0, seq=0), 0)
    follower = Log()
    copy_into(follower, leader)
    assert follower.producers.check(9, 0, 0, 1).duplicate_of == 0


# --- reconciliation by leader epochs (KIP-101, KIP-279) ------------------------------------


def test_follower_behind_truncates_nothing():
    leader = log_with((0, 5))
    follower = Log()
    follower.start_epoch(0)
    for chunk in leader.read(0)[:3]:
        follower.append_chunk(chunk)
    reconcile(follower, leader, follower_hw=3)
    assert follower.log_end_offset == 3


def test_uncommitted_tail_of_a_dead_leader_is_truncated():
    """KIP-101 scenario: the old leader wrote 0-4 in epoch 0, the new one had 0-2 and went on in epoch 1."""
    old = log_with((0, 5))
    new = Log()
    for chunk in old.read(0)[:3]:
        new.append_chunk(chunk)
    new.start_epoch(1)
    for _ in range(4):
        new.append(batch(value=b"new"), 1)
    reconcile(old, new, follower_hw=3)
    assert old.log_end_offset == 3 and old.epochs == [(0, 0)]
    copy_into(old, new)
    assert [bytes(c.data) for c in old.read(0)] == [bytes(c.data) for c in new.read(0)]
    assert old.epochs == new.epochs == [(0, 0), (1, 3)]


def test_new_leader_that_had_nothing_empties_the_follower():
    old = log_with((0, 4))
    new = Log()
    new.start_epoch(0)
    new.start_epoch(1)
    reconcile(old, new, follower_hw=0)
    assert old.log_end_offset == 0


def test_divergent_epochs_on_both_sides_kip_279():
    """The follower led epoch 2 (never replicated); the leader has epochs 0 and 3.

    Asking for epoch 2, the leader answers epoch 0 ending at 4; the follower has epoch 0
    ending at 4 too, so it truncates to 4 and keeps nothing of epoch 2.
    """
    follower = log_with((0, 4), (2, 3))
    leader = Log()
    for chunk in follower.read(0)[:4]:
        leader.append_chunk(chunk)
    leader.start_epoch(3)
    leader.append(batch(), 3)
    reconcile(follower, leader, follower_hw=4)
    assert follower.log_end_offset == 4 and follower.epochs == [(0, 0)]


def test_follower_missing_the_leaders_epoch_asks_again():
    """Follower epochs 0@0, 1@2 (LEO 5); leader epochs 0@0, 2@3. The leader has no epoch 1:
    it answers (0, 3); the follower, whose epoch 0 ends at 2, truncates to 2."""
    follower = log_with((0, 2), (1, 3))
    leader = Log()
    for chunk in follower.read(0)[:2]:
        leader.append_chunk(chunk)
    leader.append(batch(), 0)  # offset 2, still epoch 0 on the leader
    leader.start_epoch(2)
    leader.append(batch(), 2)
    reconcile(follower, leader, follower_hw=0)
    assert follower.log_end_offset == 2 and follower.epochs == [(0, 0)]


def test_reconciliation_takes_several_rounds_when_neither_has_the_others_epoch():
    """Follower 0@0, 2@3 (LEO 6); leader 0@0, 1@2, 3@5. Round 1: asked about 2, the leader answers
    (1, 5); the follower has no epoch 1 (its floor is 0, ending at 3): truncate to 3. Round 2: asked
    about 0, the leader answers (0, 2): truncate to 2, where the logs agree."""
    follower = log_with((0, 3), (2, 3))
    leader = Log()
    for chunk in follower.read(0)[:2]:
        leader.append_chunk(chunk)
    leader.start_epoch(1)
    for _ in range(3):
        leader.append(batch(), 1)
    leader.start_epoch(3)
    leader.append(batch(), 3)
    assert leader.epochs == [(0, 0), (1, 2), (3, 5)]
    reconcile(follower, leader, follower_hw=0)
    assert follower.log_end_offset == 2 and follower.epochs == [(0, 0)]
    copy_into(follower, leader)
    assert follower.epochs == [(0, 0), (1, 2), (3, 5)] and follower.log_end_offset == leader.log_end_offset


def test_a_former_leaders_empty_epoch_gives_way():
    """A led epoch 2 from offset 5 and wrote nothing; B, leading epoch 3, has epoch 1 data at 5-7.

    Truncating to 5 removes no data but removes A's epoch 2 (Kafka truncates the epoch cache
    regardless); copying B's batches then gives A B's epoch history exactly.
    """
    shared = log_with((0, 5))
    a = Log()
    copy_into(a, shared)
    a.start_epoch(2)
    assert a.epochs == [(0, 0), (2, 5)]
    b = Log()
    copy_into(b, shared)
    for _ in range(3):
        b.append(batch(), 1)
    b.start_epoch(3)
    b.append(batch(), 3)
    reconcile(a, b, follower_hw=5)
    assert a.log_end_offset == 5 and a.epochs == [(0, 0)]
    copy_into(a, b)
    assert a.epochs == b.epochs == [(0, 0), (1, 5), (3, 8)]


def test_assigning_an_epoch_drops_later_or_overlapping_entries():
    log = log_with((0, 2))
    log.start_epoch(4)
    log.start_epoch(5)
    assert log.epochs == [(0, 0), (5, 2)], "epoch 4 wrote nothing: epoch 5 starts at the same offset"
    log.start_epoch(5)
    assert log.epochs == [(0, 0), (5, 2)]
