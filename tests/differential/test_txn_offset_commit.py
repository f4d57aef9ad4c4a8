"""TxnOffsetCommit against real Kafka: offsets committed in a transaction, pending until its end, and the
group coordinator's checks (KIP-447 group metadata, the producer's epoch, the offsets partition's place in the
transaction), with OffsetFetch's require_stable answering UNSTABLE_OFFSET_COMMIT while they are pending.

Each test drives the same requests at both brokers and compares every answer.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_transactions import ADD_OFFSETS, END, _end, _start, _wait_complete

from kstub.protocol import ErrorCode

from support.differential import Pair, Side
from support.differential_groups import committed_topics, create_topic, member, new_group, stable_group

TXN_COMMIT, OFFSET_FETCH = 28, 9


def _txn_commit(
    tid: str,
    group: str,
    offsets: dict[str, dict[int, int]],
    *,
    generation: int = -1,
    member_alias: str = "",
    instance: str | None = None,
    epoch_delta: int = 0,
):
    def body(side: Side) -> dict:
        pid, epoch = side.state[tid]
        return {
            "transactional_id": tid,
            "group_id": group,
            "producer_id": pid,
            "producer_epoch": epoch + epoch_delta,
            "generation_id_or_member_epoch": generation,
            "member_id": member(side, member_alias),
            "group_instance_id": instance,
            "topics": committed_topics(offsets, "m"),
        }

    return body


def _errors(answer: Any) -> dict[tuple[str, int], int]:
    return {(t["name"], p["partition_index"]): p["error_code"] for t in answer["topics"] for p in t["partitions"]}


def _add_offsets(pair: Pair, tid: str, group: str) -> None:
    def body(side: Side) -> dict:
        pid, epoch = side.state[tid]
        return {"transactional_id": tid, "producer_id": pid, "producer_epoch": epoch, "group_id": group}

    ours, _ = pair.compare(ADD_OFFSETS, body)
    assert ours["error_code"] == ErrorCode.NONE


def _fetch(pair: Pair, group: str, topic: str, *, stable: bool) -> Any:
    body = {"group_id": group, "topics": [{"name": topic, "partition_indexes": [0, 1]}], "require_stable": stable}
    return pair.compare(OFFSET_FETCH, body, version=7)[0]


@pytest.fixture
def topic(pair: Pair) -> str:
    name = pair.name("t")
    create_topic(pair, name, partitions=2)
    return name


@pytest.mark.parametrize("commit", [True, False], ids=["commit", "abort"])
def test_offsets_are_pending_until_the_transaction_ends(pair: Pair, topic: str, commit: bool) -> None:
    tid, group = pair.name("tid"), new_group(pair)
    _start(pair, tid)
    _add_offsets(pair, tid, group)
    ours, _ = pair.compare(TXN_COMMIT, _txn_commit(tid, group, {topic: {0: 5, 1: 7}}), version=3)
    assert set(_errors(ours).values()) == {ErrorCode.NONE}
    # pending: require_stable refuses to answer, a plain fetch does not see them
    assert {p["error_code"] for t in _fetch(pair, group, topic, stable=True)["topics"] for p in t["partitions"]} == {
        ErrorCode.UNSTABLE_OFFSET_COMMIT
    }
    _fetch(pair, group, topic, stable=False)
    pair.compare(END, _end(tid, commit), version=4)
    _wait_complete(pair, tid)
    after = _fetch(pair, group, topic, stable=True)
    offsets = [p["committed_offset"] for t in after["topics"] for p in t["partitions"]]
    assert offsets == ([5, 7] if commit else [-1, -1])


def test_commit_without_add_offsets_to_txn(pair: Pair, topic: str) -> None:
    """TxnOffsetCommit before v5 for a group whose offsets partition was never added to the transaction: the
    coordinator's verification (KIP-890 part 1) refuses it."""
    tid, group = pair.name("tid"), new_group(pair)
    _start(pair, tid)
    pair.compare(TXN_COMMIT, _txn_commit(tid, group, {topic: {0: 1}}), version=3)
    _fetch(pair, group, topic, stable=True)


def test_producer_checks(pair: Pair, topic: str) -> None:
    tid, group = pair.name("tid"), new_group(pair)
    _start(pair, tid)
    _add_offsets(pair, tid, group)
    pair.compare(TXN_COMMIT, _txn_commit(tid, group, {topic: {0: 1}}, epoch_delta=1), version=3)
    pair.compare(TXN_COMMIT, _txn_commit(tid, group, {topic: {0: 1}}, epoch_delta=-1), version=3)
    pair.compare(TXN_COMMIT, _txn_commit(tid, group, {topic: {0: 1}}, epoch_delta=-1), version=0)

    def wrong_pid(side: Side) -> dict:
        return _txn_commit(tid, group, {topic: {0: 1}})(side) | {"producer_id": side.state[tid][0] + 1}

    pair.compare(TXN_COMMIT, wrong_pid, version=3)
    # an unknown partition and an unknown topic (Kafka answers from hash maps: the order is chance)
    mixed = _txn_commit(tid, group, {topic: {0: 2, 9: 2}, pair.name("nope"): {0: 2}})
    pair.compare(TXN_COMMIT, mixed, version=3, unordered=("topics", "partitions"))
    pair.compare(END, _end(tid, True), version=4)
    _wait_complete(pair, tid)
    _fetch(pair, group, topic, stable=True)


def test_group_metadata_checks(pair: Pair, topic: str) -> None:
    """KIP-447: the consumer's group metadata (generation, member id) is checked against the group."""
    tid, group = pair.name("tid"), new_group(pair)
    joined = stable_group(pair, group, topic)
    _start(pair, tid)
    _add_offsets(pair, tid, group)
    one = {topic: {0: 3}}
    pair.compare(TXN_COMMIT, _txn_commit(tid, group, one, generation=joined.generation + 1,
                                         member_alias=joined.member), version=3)  # fmt: skip
    pair.compare(TXN_COMMIT, _txn_commit(tid, group, one, generation=joined.generation,
                                         member_alias="not-a-member"), version=3)  # fmt: skip
    pair.compare(TXN_COMMIT, _txn_commit(tid, group, one, generation=joined.generation, member_alias=joined.member,
                                         instance="not-an-instance"), version=3)  # fmt: skip
    ours, _ = pair.compare(
        TXN_COMMIT, _txn_commit(tid, group, one, generation=joined.generation, member_alias=joined.member), version=3
    )
    assert _errors(ours) == {(topic, 0): ErrorCode.NONE}
    pair.compare(END, _end(tid, True), version=4)
    _wait_complete(pair, tid)
    _fetch(pair, group, topic, stable=True)


def test_v5_adds_the_offsets_partition_itself(pair: Pair, topic: str) -> None:
    """Transactions v2 (KIP-890 part 2): TxnOffsetCommit v5 needs no AddOffsetsToTxn, EndTxn v5 bumps the epoch."""
    from test_transactions import _describe

    tid, group = pair.name("tid"), new_group(pair)
    _start(pair, tid)
    ours, _ = pair.compare(TXN_COMMIT, _txn_commit(tid, group, {topic: {0: 4, 1: 6}}), version=5)
    assert set(_errors(ours).values()) == {ErrorCode.NONE}
    _describe(pair, tid)
    _fetch(pair, group, topic, stable=True)
    pair.compare(END, _end(tid, True), version=5)
    _wait_complete(pair, tid)
    after = _fetch(pair, group, topic, stable=True)
    assert [p["committed_offset"] for t in after["topics"] for p in t["partitions"]] == [4, 6]
