"""The transaction coordinator at the protocol level, in memory under Trio's autojump clock.

Each API and its error paths: InitProducerId with a transactional id,
AddPartitionsToTxn (client and verify-only forms), AddOffsetsToTxn, EndTxn,
TxnOffsetCommit with OffsetFetch require_stable, DescribeTransactions,
ListTransactions, Produce verification (KIP-890), NOT_COORDINATOR,
CONCURRENT_TRANSACTIONS while markers cannot be written, the transaction
timeout and transactional.id.expiration.ms, and coordinator moves.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio

from kstub.protocol import ErrorCode
from kstub.protocol.records import RecordBatch
from kstub.protocol.records.control import read_marker

from support.batches import batch
from support.memory import MemoryClient

INIT, ADD_PARTITIONS, ADD_OFFSETS, END, TXN_COMMIT, DESCRIBE, LIST = 22, 24, 25, 26, 28, 65, 66


def txn_batch(producer_id: int, epoch: int, sequence: int = 0, n: int = 2) -> bytes:
    return batch(n, producer_id=producer_id, epoch=epoch, sequence=sequence, transactional=True)


class Txn:
    """A transactional producer's requests, at its coordinator."""

    def __init__(self, client: MemoryClient, tid: str) -> None:
        self.c = client
        self.tid = tid
        self.pid = -1
        self.epoch = -1

    async def init(self, timeout_ms: int = 60000, version: int = 4, **extra: Any) -> Any:
        body = {
            "transactional_id": self.tid,
            "transaction_timeout_ms": timeout_ms,
            "producer_id": -1,
            "producer_epoch": -1,
        } | extra
        answer = await self.c.request(INIT, version, body)
        if answer.error_code == ErrorCode.NONE:
            self.pid, self.epoch = answer.producer_id, answer.producer_epoch
        return answer

    async def add(self, topic: str, partitions: list[int], *, epoch: int | None = None, version: int = 3) -> dict:
        body = {
            "v3_and_below_transactional_id": self.tid,
            "v3_and_below_producer_id": self.pid,
            "v3_and_below_producer_epoch": self.epoch if epoch is None else epoch,
            "v3_and_below_topics": [{"name": topic, "partitions": partitions}],
        }
        answer = await self.c.request(ADD_PARTITIONS, version, body)
        return {
            (t.name, p.partition_index): p.partition_error_code
            for t in answer.results_by_topic_v3_and_below
            for p in t.results_by_partition
        }

    async def end(self, commit: bool, *, version: int = 4, epoch: int | None = None) -> Any:
        body = {
            "transactional_id": self.tid,
            "producer_id": self.pid,
            "producer_epoch": self.epoch if epoch is None else epoch,
            "committed": commit,
        }
        return await self.c.request(END, version, body)

    async def describe(self) -> Any:
        (state,) = (await self.c.request(DESCRIBE, 0, {"transactional_ids": [self.tid]})).transaction_states
        return state

    async def produce(
        self, topic: str, partition: int, *, sequence: int = 0, version: int = 9, epoch: int | None = None
    ):
        data = [
            {
                "name": topic,
                "partition_data": [
                    {
                        "index": partition,
                        "records": txn_batch(self.pid, self.epoch if epoch is None else epoch, sequence),
                    }
                ],
            }
        ]
        body = {"transactional_id": self.tid, "acks": -1, "timeout_ms": 5000, "topic_data": data}
        answer = await self.c.request(0, version, body)
        return answer.responses[0].partition_responses[0]


async def create_topic(c: MemoryClient, name: str, partitions: int = 3, rf: int = 1, **extra: Any) -> None:
    topic = {"name": name, "num_partitions": partitions, "replication_factor": rf, **extra}
    answer = await c.request(19, 7, {"topics": [topic], "timeout_ms": 5000})
    assert answer.topics[0].error_code == ErrorCode.NONE, answer


async def until_state(txn: Txn, *states: str) -> Any:
    for _ in range(1000):
        state = await txn.describe()
        if state.transaction_state in states:
            return state
        await trio.sleep(0.01)
    raise AssertionError(f"{txn.tid} never reached {states}: {state}")


def markers(model: Any, topic: str, partition: int) -> list:
    p = model.topics[topic].partitions[partition]
    return [m for c in p.leader_log.read(0) if (m := read_marker(RecordBatch(c.data))) is not None]


# --- InitProducerId --------------------------------------------------------------------------------


async def test_init_producer_id_bumps_the_epoch_and_keeps_the_id(raw, autojump_clock):
    t = Txn(raw, "tid-1")
    first = await t.init()
    assert (first.error_code, first.producer_epoch) == (ErrorCode.NONE, 0)
    second = await t.init()
    assert (second.producer_id, second.producer_epoch) == (first.producer_id, 1)
    state = await t.describe()
    assert (state.transaction_state, state.producer_epoch, state.transaction_timeout_ms) == ("Empty", 1, 60000)


@pytest.mark.parametrize("timeout_ms", [0, -5, 900001])
async def test_init_refuses_a_timeout_beyond_the_brokers_maximum(raw, timeout_ms, autojump_clock):
    answer = await Txn(raw, "tid-t").init(timeout_ms)
    assert (answer.error_code, answer.producer_id) == (ErrorCode.INVALID_TRANSACTION_TIMEOUT, -1)


async def test_kip_360_epochs_in_the_request(raw, autojump_clock):
    t = Txn(raw, "tid-kip360")
    await t.init()
    pid = t.pid
    bumped = await t.init(producer_id=pid, producer_epoch=0)
    assert (bumped.error_code, bumped.producer_epoch) == (ErrorCode.NONE, 1)
    retry = await raw.request(
        INIT, 4, {"transactional_id": t.tid, "transaction_timeout_ms": 60000, "producer_id": pid, "producer_epoch": 0}
    )
    assert (retry.error_code, retry.producer_epoch) == (ErrorCode.NONE, 1)  # a retry of that bump
    stale = await raw.request(
        INIT, 4, {"transactional_id": t.tid, "transaction_timeout_ms": 60000, "producer_id": pid, "producer_epoch": 7}
    )
    assert stale.error_code == ErrorCode.PRODUCER_FENCED
    old = await raw.request(
        INIT,
        3,
        {"transactional_id": t.tid, "transaction_timeout_ms": 60000, "producer_id": pid + 50, "producer_epoch": 0},
    )
    assert old.error_code == ErrorCode.INVALID_PRODUCER_EPOCH  # PRODUCER_FENCED, as v0-3 clients know it


# --- a whole transaction ----------------------------------------------------------------------------


async def test_commit_writes_a_marker_to_every_partition(cluster, raw, autojump_clock):
    await create_topic(raw, "t", 3)
    t = Txn(raw, "tid-c")
    await t.init()
    assert await t.add("t", [0, 1, 2]) == {("t", 0): 0, ("t", 1): 0, ("t", 2): 0}
    for k in range(3):
        assert (await t.produce("t", k)).error_code == ErrorCode.NONE
    state = await t.describe()
    assert state.transaction_state == "Ongoing" and [(x.topic, list(x.partitions)) for x in state.topics] == [
        ("t", [0, 1, 2])
    ]
    assert state.transaction_start_time_ms > 0
    assert (await t.end(True)).error_code == ErrorCode.NONE
    done = await until_state(t, "CompleteCommit")
    assert list(done.topics) == []
    for k in range(3):
        assert [(m.producer_id, m.producer_epoch, m.commit) for m in markers(cluster.model, "t", k)] == [
            (t.pid, 0, True)
        ]
    assert (await t.end(True)).error_code == ErrorCode.NONE  # a retry of the commit
    assert (await t.end(False)).error_code == ErrorCode.INVALID_TXN_STATE


async def test_transactions_v2_bump_the_epoch_on_every_end(cluster, raw, autojump_clock):
    await create_topic(raw, "t2", 1)
    t = Txn(raw, "tid-v2")
    await t.init()
    await t.add("t2", [0])
    answer = await t.end(True, version=5)
    assert (answer.error_code, answer.producer_id, answer.producer_epoch) == (ErrorCode.NONE, t.pid, 1)
    await until_state(t, "CompleteCommit")
    assert [(m.producer_epoch, m.commit) for m in markers(cluster.model, "t2", 0)] == [(1, True)]
    # Produce v12 would add the partition itself; v9 verifies: not added in this new transaction
    t.epoch = 1
    assert (await t.produce("t2", 0)).error_code == ErrorCode.INVALID_TXN_STATE
    # an abort of no transaction at all (v2): bumps the epoch, no marker
    answer = await t.end(False, version=5)
    assert (answer.error_code, answer.producer_epoch) == (ErrorCode.NONE, 2)
    await until_state(t, "CompleteAbort")
    assert len(markers(cluster.model, "t2", 0)) == 1


async def test_end_txn_errors(raw, autojump_clock):
    await create_topic(raw, "te", 1)
    t = Txn(raw, "tid-e")
    assert (await t.end(True)).error_code == ErrorCode.INVALID_PRODUCER_ID_MAPPING  # unknown id
    await t.init()
    assert (await t.end(True)).error_code == ErrorCode.INVALID_TXN_STATE  # nothing to commit
    await t.add("te", [0])
    assert (await t.end(True, epoch=t.epoch - 1)).error_code == ErrorCode.PRODUCER_FENCED
    assert (await t.end(True, epoch=t.epoch - 1, version=1)).error_code == ErrorCode.INVALID_PRODUCER_EPOCH
    body = {"transactional_id": "", "producer_id": t.pid, "producer_epoch": t.epoch, "committed": True}
    assert (await raw.request(END, 4, body)).error_code == ErrorCode.INVALID_REQUEST


async def test_add_partitions_errors_and_verification(raw, autojump_clock):
    await create_topic(raw, "ta", 2)
    t = Txn(raw, "tid-a")
    await t.init()
    assert await t.add("ta", [0, 9]) == {
        ("ta", 9): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ("ta", 0): ErrorCode.OPERATION_NOT_ATTEMPTED,
    }
    assert await t.add("ta", [0], epoch=t.epoch + 1) == {("ta", 0): ErrorCode.PRODUCER_FENCED}
    assert await t.add("ta", [0], epoch=t.epoch + 1, version=1) == {("ta", 0): ErrorCode.INVALID_PRODUCER_EPOCH}
    assert await t.add("ta", [0]) == {("ta", 0): ErrorCode.NONE}
    verify = {
        "transactions": [
            {
                "transactional_id": t.tid,
                "producer_id": t.pid,
                "producer_epoch": t.epoch,
                "verify_only": True,
                "topics": [{"name": "ta", "partitions": [0, 1]}],
            },
            {
                "transactional_id": "nobody",
                "producer_id": 1,
                "producer_epoch": 0,
                "verify_only": True,
                "topics": [{"name": "ta", "partitions": [0]}],
            },
        ]
    }
    answer = await raw.request(ADD_PARTITIONS, 5, verify)
    got = {
        (r.transactional_id, p.partition_index): p.partition_error_code
        for r in answer.results_by_transaction
        for topic in r.topic_results
        for p in topic.results_by_partition
    }
    assert got == {
        (t.tid, 0): ErrorCode.NONE,
        (t.tid, 1): ErrorCode.TRANSACTION_ABORTABLE,
        ("nobody", 0): ErrorCode.INVALID_PRODUCER_ID_MAPPING,
    }


async def test_produce_is_verified_against_the_transaction(raw, autojump_clock):
    await create_topic(raw, "tp", 2)
    t = Txn(raw, "tid-p")
    await t.init()
    await t.add("tp", [0])
    assert (await t.produce("tp", 0)).error_code == ErrorCode.NONE
    assert (await t.produce("tp", 1)).error_code == ErrorCode.INVALID_TXN_STATE  # never added
    assert (await t.produce("tp", 0, sequence=2, epoch=t.epoch - 1)).error_code == ErrorCode.INVALID_PRODUCER_EPOCH


# --- offsets in a transaction ---------------------------------------------------------------------


async def _fetch_offset(c: MemoryClient, group: str, topic: str, require_stable: bool) -> tuple[int, int]:
    body = {"group_id": group, "topics": [{"name": topic, "partition_indexes": [0]}], "require_stable": require_stable}
    p = (await c.request(9, 7, body)).topics[0].partitions[0]
    return p.error_code, p.committed_offset


def _txn_commit(t: Txn, group: str, topic: str, offset: int, **extra: Any) -> dict:
    return {
        "transactional_id": t.tid,
        "group_id": group,
        "producer_id": t.pid,
        "producer_epoch": t.epoch,
        "topics": [
            {
                "name": topic,
                "partitions": [{"partition_index": 0, "committed_offset": offset, "committed_metadata": "m"}],
            }
        ],
    } | extra


@pytest.mark.parametrize("commit", [True, False])
async def test_transactional_offsets_are_pending_until_the_marker(raw, commit, autojump_clock):
    await create_topic(raw, "to", 1)
    t = Txn(raw, "tid-o")
    await t.init()
    # without AddOffsetsToTxn first, the group's offsets partition is not in the transaction
    answer = await raw.request(TXN_COMMIT, 3, _txn_commit(t, "g", "to", 5))
    assert answer.topics[0].partitions[0].error_code == ErrorCode.INVALID_TXN_STATE
    body = {"transactional_id": t.tid, "producer_id": t.pid, "producer_epoch": t.epoch, "group_id": "g"}
    assert (await raw.request(ADD_OFFSETS, 3, body)).error_code == ErrorCode.NONE
    answer = await raw.request(TXN_COMMIT, 3, _txn_commit(t, "g", "to", 5))
    assert answer.topics[0].partitions[0].error_code == ErrorCode.NONE
    assert await _fetch_offset(raw, "g", "to", True) == (ErrorCode.UNSTABLE_OFFSET_COMMIT, -1)
    assert await _fetch_offset(raw, "g", "to", False) == (ErrorCode.NONE, -1)
    await t.end(commit)
    await until_state(t, "CompleteCommit", "CompleteAbort")
    expected = 5 if commit else -1
    assert await _fetch_offset(raw, "g", "to", True) == (ErrorCode.NONE, expected)


async def test_txn_offset_commit_v5_adds_the_offsets_partition_itself(raw, autojump_clock):
    await create_topic(raw, "t5", 1)
    t = Txn(raw, "tid-5")
    await t.init()
    answer = await raw.request(TXN_COMMIT, 5, _txn_commit(t, "g5", "t5", 3))
    assert answer.topics[0].partitions[0].error_code == ErrorCode.NONE
    state = await t.describe()
    assert state.transaction_state == "Ongoing" and state.topics[0].topic == "__consumer_offsets"
    stale = await raw.request(TXN_COMMIT, 5, _txn_commit(t, "g5", "t5", 4, producer_epoch=t.epoch - 1))
    assert stale.topics[0].partitions[0].error_code == ErrorCode.INVALID_PRODUCER_EPOCH
    unknown = await raw.request(TXN_COMMIT, 5, _txn_commit(t, "g5", "nope", 4))
    assert unknown.topics[0].partitions[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    generation = await raw.request(TXN_COMMIT, 5, _txn_commit(t, "g-none", "t5", 4, generation_id_or_member_epoch=3))
    assert generation.topics[0].partitions[0].error_code == ErrorCode.ILLEGAL_GENERATION


# --- list and describe ------------------------------------------------------------------------------


async def test_list_transactions_filters(raw, autojump_clock):
    await create_topic(raw, "tl", 1)
    a, b = Txn(raw, "list-a"), Txn(raw, "list-b")
    await a.init()
    await b.init()
    await a.add("tl", [0])

    async def listed(version: int = 2, **filters: Any) -> tuple[list[str], list[tuple[str, str]]]:
        body = {"state_filters": [], "producer_id_filters": []} | filters
        answer = await raw.request(LIST, version, body)
        return list(answer.unknown_state_filters), sorted(
            (s.transactional_id, s.transaction_state) for s in answer.transaction_states
        )

    assert await listed() == ([], [("list-a", "Ongoing"), ("list-b", "Empty")])
    assert await listed(state_filters=["Ongoing", "Nope"]) == (["Nope"], [("list-a", "Ongoing")])
    assert await listed(producer_id_filters=[b.pid]) == ([], [("list-b", "Empty")])
    assert await listed(transactional_id_pattern="list-.") == ([], [("list-a", "Ongoing"), ("list-b", "Empty")])
    assert await listed(transactional_id_pattern="list") == ([], [])  # the whole id must match
    await trio.sleep(5)
    # running longer than the duration; as in Kafka, an id with no transaction (start time -1) always is
    assert await listed(duration_filter=4000) == ([], [("list-a", "Ongoing"), ("list-b", "Empty")])
    assert await listed(duration_filter=60000) == ([], [("list-b", "Empty")])
    empty = await raw.request(DESCRIBE, 0, {"transactional_ids": ["", "never-seen"]})
    assert [s.error_code for s in empty.transaction_states] == [
        ErrorCode.INVALID_REQUEST,
        ErrorCode.TRANSACTIONAL_ID_NOT_FOUND,
    ]


# --- timers -----------------------------------------------------------------------------------------


async def test_an_expired_transaction_is_aborted_and_its_producer_fenced(cluster, raw, autojump_clock):
    await create_topic(raw, "tt", 1)
    t = Txn(raw, "tid-timeout")
    await t.init(timeout_ms=2000)
    await t.add("tt", [0])
    await t.produce("tt", 0)
    await trio.sleep(1.5)
    assert (await t.describe()).transaction_state == "Ongoing"
    await trio.sleep(1)
    state = await until_state(t, "CompleteAbort")
    assert state.producer_epoch == t.epoch + 1
    assert [(m.producer_epoch, m.commit) for m in markers(cluster.model, "tt", 0)] == [(t.epoch + 1, False)]
    assert await t.add("tt", [0]) == {("tt", 0): ErrorCode.PRODUCER_FENCED}
    assert (await t.end(True)).error_code == ErrorCode.PRODUCER_FENCED


@pytest.mark.kstub(config={"transactional.id.expiration.ms": 10000})
async def test_an_idle_transactional_id_expires(raw, autojump_clock):
    t = Txn(raw, "tid-idle")
    await t.init()
    await trio.sleep(9)
    assert (await t.describe()).error_code == ErrorCode.NONE
    await trio.sleep(2)
    assert (await t.describe()).error_code == ErrorCode.TRANSACTIONAL_ID_NOT_FOUND
    again = await t.init()
    assert (again.error_code, again.producer_epoch) == (ErrorCode.NONE, 0)


# --- several brokers: where an id lives, moves, markers that cannot be written yet -----------------------


async def _coordinator(c: MemoryClient, tid: str) -> int:
    answer = await c.request(10, 4, {"key_type": 1, "coordinator_keys": [tid]})
    (found,) = answer.coordinators
    assert found.error_code == ErrorCode.NONE
    return found.node_id


@pytest.mark.kstub(brokers=3)
async def test_the_coordinator_is_the_leader_of_the_ids_partition_and_moves_with_it(cluster, autojump_clock):
    tid = "tid-move"
    async with cluster.connect(0) as c0:
        node = await _coordinator(c0, tid)
        assert node == cluster.model.transactions.coordinator_for(tid).node_id
        partition = cluster.model.transactions.partition_for(tid)
        assert node == cluster.model.transactions.state_partitions.replicas(partition)[0]
        v3 = await c0.request(10, 3, {"key": tid, "key_type": 1})
        assert (v3.error_code, v3.node_id) == (ErrorCode.NONE, node)
        other = next(n for n in cluster.model.brokers if n != node)
    async with cluster.connect(other) as wrong:
        assert (await Txn(wrong, tid).init()).error_code == ErrorCode.NOT_COORDINATOR
    async with cluster.connect(node) as c:
        await create_topic(c, "tm", 1, rf=3)
        t = Txn(c, tid)
        await t.init()
        await t.add("tm", [0])
    await cluster.server.stop_broker(node)
    async with cluster.connect(other) as c:
        moved = await _coordinator(c, tid)
        assert moved != node
    async with cluster.connect(moved) as c:
        t.c = c
        state = await t.describe()
        assert (state.transaction_state, state.producer_id, state.producer_epoch) == ("Ongoing", t.pid, t.epoch)
        assert (await t.end(True)).error_code == ErrorCode.NONE
        await until_state(t, "CompleteCommit")


@pytest.mark.kstub(brokers=3)
async def test_concurrent_transactions_while_markers_cannot_be_written(cluster, autojump_clock):
    tid = "tid-concurrent"
    model = cluster.model
    coordinator = model.transactions.coordinator_for(tid).node_id
    elsewhere = next(n for n in sorted(model.brokers) if n != coordinator)
    async with cluster.connect(coordinator) as c:
        answer = await c.request(
            19,
            7,
            {
                "topics": [
                    {
                        "name": "tc",
                        "num_partitions": -1,
                        "replication_factor": -1,
                        "assignments": [{"partition_index": 0, "broker_ids": [elsewhere]}],
                    }
                ],
                "timeout_ms": 5000,
            },
        )
        assert answer.topics[0].error_code == ErrorCode.NONE
        t = Txn(c, tid)
        await t.init()
        await t.add("tc", [0])
        await cluster.server.stop_broker(elsewhere)  # the partition's only replica: no leader for the marker
        assert (await t.end(True)).error_code == ErrorCode.NONE
        await trio.sleep(5)
        assert (await t.describe()).transaction_state == "PrepareCommit"
        assert (await t.init()).error_code == ErrorCode.CONCURRENT_TRANSACTIONS
        assert (await t.end(True)).error_code == ErrorCode.CONCURRENT_TRANSACTIONS
        assert (await t.end(False)).error_code == ErrorCode.INVALID_TXN_STATE
        assert await t.add("tc", [0]) == {("tc", 0): ErrorCode.CONCURRENT_TRANSACTIONS}
        await cluster.server.start_broker(elsewhere)
        await until_state(t, "CompleteCommit")
        assert [m.commit for m in markers(model, "tc", 0)] == [True]
        assert (await t.init()).error_code == ErrorCode.NONE


async def test_init_while_ongoing_fences_the_open_transaction(cluster, raw, autojump_clock):
    await create_topic(raw, "tf", 1)
    t = Txn(raw, "tid-fence")
    await t.init()
    await t.add("tf", [0])
    await t.produce("tf", 0)
    old_epoch = t.epoch
    assert (await t.init()).error_code == ErrorCode.CONCURRENT_TRANSACTIONS
    await until_state(t, "CompleteAbort")
    answer = await t.init()
    assert (answer.error_code, answer.producer_epoch) == (ErrorCode.NONE, old_epoch + 2)
    assert [(m.producer_epoch, m.commit) for m in markers(cluster.model, "tf", 0)] == [(old_epoch + 1, False)]


async def test_an_exhausted_epoch_moves_to_a_new_producer_id(cluster, raw, autojump_clock):
    """Kafka keeps Short.MAX_VALUE for fencing: from epoch 32766, InitProducerId (and transactions v2's EndTxn)
    hand out a new producer id at epoch 0."""
    await create_topic(raw, "tx", 1)
    t = Txn(raw, "tid-exhausted")
    await t.init()
    first_pid = t.pid
    cluster.model.transactions.get(t.tid).producer_epoch = 32766
    answer = await t.init()
    assert (answer.error_code, answer.producer_epoch) == (ErrorCode.NONE, 0) and answer.producer_id != first_pid
    second_pid = t.pid
    await t.add("tx", [0])
    cluster.model.transactions.get(t.tid).producer_epoch = t.epoch = 32766
    ended = await t.end(True, version=5)
    assert (ended.error_code, ended.producer_epoch) == (ErrorCode.NONE, 0) and ended.producer_id not in (
        first_pid,
        second_pid,
    )
    state = await until_state(t, "CompleteCommit")
    assert (state.producer_id, state.producer_epoch) == (ended.producer_id, 0)
    # the marker carries the old id at the fencing epoch
    assert [(m.producer_id, m.producer_epoch) for m in markers(cluster.model, "tx", 0)] == [(second_pid, 32767)]


async def test_txn_offset_commit_v6_names_topics_by_id(cluster, raw, autojump_clock):
    await create_topic(raw, "t6", 1)
    topic_id = cluster.model.topics["t6"].topic_id
    t = Txn(raw, "tid-6")
    await t.init()
    body = _txn_commit(t, "g6", "t6", 7)
    body["topics"] = [
        {"topic_id": topic_id, "partitions": [{"partition_index": 0, "committed_offset": 7, "committed_metadata": ""}]},
        {
            "topic_id": uuid.uuid4(),
            "partitions": [{"partition_index": 0, "committed_offset": 1, "committed_metadata": ""}],
        },
    ]
    answer = await raw.request(TXN_COMMIT, 6, body)
    assert [(x.topic_id, [p.error_code for p in x.partitions]) for x in answer.topics] == [
        (topic_id, [ErrorCode.NONE]),
        (body["topics"][1]["topic_id"], [ErrorCode.UNKNOWN_TOPIC_ID]),
    ]
    await t.end(True)
    await until_state(t, "CompleteCommit")
    assert await _fetch_offset(raw, "g6", "t6", True) == (ErrorCode.NONE, 7)


@pytest.mark.kstub(brokers=3)
async def test_a_commit_under_way_completes_after_its_coordinator_fails(cluster, autojump_clock):
    """The coordinator's broker stops while the commit's marker cannot be written yet: the id moves to the new
    coordinator still in PrepareCommit, and the commit completes there once the partition has a leader again."""
    tid = "tid-commit-failover"
    model = cluster.model
    coordinator = model.transactions.coordinator_for(tid).node_id
    elsewhere = next(n for n in sorted(model.brokers) if n != coordinator)
    async with cluster.connect(coordinator) as c:
        topic = {
            "name": "tcf",
            "num_partitions": -1,
            "replication_factor": -1,
            "assignments": [{"partition_index": 0, "broker_ids": [elsewhere]}],
        }
        assert (await c.request(19, 7, {"topics": [topic], "timeout_ms": 5000})).topics[0].error_code == 0
        t = Txn(c, tid)
        await t.init()
        await t.add("tcf", [0])
        await cluster.server.stop_broker(elsewhere)
        assert (await t.end(True)).error_code == ErrorCode.NONE
    await cluster.server.stop_broker(coordinator)
    moved = model.transactions.coordinator_for(tid).node_id
    assert moved != coordinator
    await cluster.server.start_broker(elsewhere)
    async with cluster.connect(model.transactions.coordinator_for(tid).node_id) as c:
        t.c = c
        state = await until_state(t, "CompleteCommit")
        assert state.producer_epoch == t.epoch
    assert [m.commit for m in markers(model, "tcf", 0)] == [True]
