"""The transaction APIs against real Kafka: InitProducerId with a transactional id, AddPartitionsToTxn,
AddOffsetsToTxn, EndTxn, DescribeTransactions and ListTransactions, and their error paths.

Each test drives the same sequence of requests at both brokers and compares
every answer (producer ids are aliased by the harness, start times dropped).
"""

from __future__ import annotations

from typing import Any

import pytest

from kstub.protocol import ErrorCode

from support.batches import batch
from support.diff_requests import create
from support.differential import Pair, Side

INIT, ADD_PARTITIONS, ADD_OFFSETS, END, DESCRIBE, LIST = 22, 24, 25, 26, 65, 66
TIMES = ("transaction_start_time_ms",)


def _ready(pair: Pair, tid: str) -> None:
    """FindCoordinator answers, and the coordinator has loaded its __transaction_state partition (Kafka answers
    NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS meanwhile; kstub at once). Polls: a JVM has no event."""
    import time

    pair.wait_for_coordinator(tid, 1)
    deadline = time.monotonic() + 60
    for side in pair.sides:
        while True:  # Kafka's producer id manager gets its first block of ids from the controller
            answer = side.conn.request(INIT, {"transactional_id": None, "transaction_timeout_ms": 60000})
            if answer.error_code == ErrorCode.NONE:
                break
            assert time.monotonic() < deadline, f"{side.name}: no producer ids: {answer.error_code}"
            time.sleep(0.2)
        while True:
            (state,) = side.conn.request(DESCRIBE, {"transactional_ids": [tid]}).transaction_states
            if state.error_code in (ErrorCode.NONE, ErrorCode.TRANSACTIONAL_ID_NOT_FOUND):
                break
            assert time.monotonic() < deadline, f"{side.name}: {tid}: {state.error_code}"
            time.sleep(0.2)


def _init(pair: Pair, tid: str, *, timeout_ms: int = 60000, version: int | None = None) -> tuple[Any, Any]:
    _ready(pair, tid)
    return pair.compare(
        INIT,
        {"transactional_id": tid, "transaction_timeout_ms": timeout_ms, "producer_id": -1, "producer_epoch": -1},
        version=version,
    )


def _ids(side: Side, answer: Any) -> tuple[int, int]:
    return side.raw("producer", answer["producer_id"]), answer["producer_epoch"]


def _add(tid: str, topic: str, partitions: list[int], epoch_delta: int = 0, version: int = 3):
    """An AddPartitionsToTxn body of the client form (v0-3), for the side's producer id of `tid`."""

    def body(side: Side) -> dict:
        pid, epoch = side.state[tid]
        return {
            "v3_and_below_transactional_id": tid,
            "v3_and_below_producer_id": pid,
            "v3_and_below_producer_epoch": epoch + epoch_delta,
            "v3_and_below_topics": [{"name": topic, "partitions": partitions}],
        }

    return body


def _end(tid: str, commit: bool, epoch_delta: int = 0):
    def body(side: Side) -> dict:
        pid, epoch = side.state[tid]
        return {"transactional_id": tid, "producer_id": pid, "producer_epoch": epoch + epoch_delta, "committed": commit}

    return body


def _start(pair: Pair, tid: str) -> None:
    """InitProducerId, remembering each side's producer id and epoch in side.state[tid]."""
    for side in pair.sides:
        if not hasattr(side, "state"):
            side.state = {}  # type: ignore[attr-defined]
    answers = _init(pair, tid)
    for side, answer in zip(pair.sides, answers, strict=True):
        side.state[tid] = _ids(side, answer)  # type: ignore[attr-defined]


def _describe(pair: Pair, tid: str, known: str | None = None) -> tuple[Any, Any]:
    # Kafka lists the partitions of a hash set: their order is chance
    return pair.compare(
        DESCRIBE, {"transactional_ids": [tid]}, ignore=TIMES, known=known, unordered=("partitions", "topics")
    )


def test_init_producer_id_for_a_transactional_id_and_its_epoch_bumps(pair: Pair) -> None:
    tid = pair.name("tid")
    first, _ = _init(pair, tid)
    assert first["error_code"] == ErrorCode.NONE and first["producer_epoch"] == 0
    again, _ = _init(pair, tid)
    assert again["producer_epoch"] == 1
    _describe(pair, tid)


@pytest.mark.parametrize("timeout_ms", [0, -1, 900001])
def test_invalid_transaction_timeout(pair: Pair, timeout_ms: int) -> None:
    tid = pair.name("tid")
    ours, _ = _init(pair, tid, timeout_ms=timeout_ms)
    assert ours["error_code"] == ErrorCode.INVALID_TRANSACTION_TIMEOUT


def test_empty_transactional_id_is_invalid_request(pair: Pair) -> None:
    pair.compare(
        INIT, {"transactional_id": "", "transaction_timeout_ms": 60000, "producer_id": -1, "producer_epoch": -1}
    )


def test_unknown_transactional_id(pair: Pair) -> None:
    tid = pair.name("never")
    _ready(pair, tid)
    _describe(pair, tid)
    topic = create(pair)
    body = {
        "v3_and_below_transactional_id": tid,
        "v3_and_below_producer_id": 4242,
        "v3_and_below_producer_epoch": 0,
        "v3_and_below_topics": [{"name": topic, "partitions": [0]}],
    }
    pair.compare(ADD_PARTITIONS, body, version=3)
    pair.compare(END, {"transactional_id": tid, "producer_id": 4242, "producer_epoch": 0, "committed": True})
    pair.compare(
        ADD_OFFSETS, {"transactional_id": tid, "producer_id": 4242, "producer_epoch": 0, "group_id": pair.name("g")}
    )


def test_add_partitions_then_commit(pair: Pair) -> None:
    tid = pair.name("tid")
    topic = create(pair, partitions=3)
    _start(pair, tid)
    pair.compare(ADD_PARTITIONS, _add(tid, topic, [0, 1, 2]), version=3)
    ours, _ = _describe(pair, tid)
    assert ours["transaction_states"][0]["transaction_state"] == "Ongoing"
    # the same partitions again: nothing to add
    pair.compare(ADD_PARTITIONS, _add(tid, topic, [1]), version=3)
    pair.compare(END, _end(tid, True), version=4)
    # a retry of the commit once complete is fine; an abort now is not
    _wait_complete(pair, tid)
    pair.compare(END, _end(tid, True), version=4)
    pair.compare(END, _end(tid, False), version=4)
    _describe(pair, tid)


def test_add_partitions_errors(pair: Pair) -> None:
    tid = pair.name("tid")
    topic = create(pair)
    _start(pair, tid)
    # an unknown partition fails the request: the known ones are not attempted
    # (Kafka answers from a hash map of the partitions: their order is chance)
    pair.compare(ADD_PARTITIONS, _add(tid, topic, [7, 0]), version=3, unordered=("results_by_partition",))
    # a wrong epoch is fenced (INVALID_PRODUCER_EPOCH before v2)
    pair.compare(ADD_PARTITIONS, _add(tid, topic, [0], epoch_delta=1), version=3)
    pair.compare(ADD_PARTITIONS, _add(tid, topic, [0], epoch_delta=-1), version=1)

    def wrong_pid(side: Side) -> dict:
        return _add(tid, topic, [0])(side) | {"v3_and_below_producer_id": side.state[tid][0] + 1}

    pair.compare(ADD_PARTITIONS, wrong_pid, version=3)


def test_end_txn_without_partitions(pair: Pair) -> None:
    tid = pair.name("tid")
    _start(pair, tid)
    pair.compare(END, _end(tid, True), version=4)
    pair.compare(END, _end(tid, False), version=4)
    # transactions v2: an abort with nothing added bumps the epoch and completes
    ours, _ = pair.compare(END, _end(tid, False), version=5)
    assert ours["error_code"] == ErrorCode.NONE
    _wait_complete(pair, tid)
    _describe(pair, tid)


def test_end_txn_fenced_and_wrong_producer(pair: Pair) -> None:
    tid = pair.name("tid")
    topic = create(pair)
    _start(pair, tid)
    pair.compare(ADD_PARTITIONS, _add(tid, topic, [0]), version=3)
    pair.compare(END, _end(tid, True, epoch_delta=-1), version=4)
    pair.compare(END, _end(tid, True, epoch_delta=-1), version=1)
    pair.compare(END, _end(tid, True, epoch_delta=1), version=5)
    pair.compare(END, _end(tid, False), version=4)
    _wait_complete(pair, tid)


def test_transactions_v2_end_txn_bumps_the_epoch(pair: Pair) -> None:
    tid = pair.name("tid")
    topic = create(pair)
    _start(pair, tid)
    pair.compare(ADD_PARTITIONS, _add(tid, topic, [0]), version=3)
    ours, _ = pair.compare(END, _end(tid, True), version=5)
    assert ours["producer_epoch"] == 1
    _wait_complete(pair, tid)
    # a retry with the old epoch is answered as done; the new epoch carries on
    pair.compare(END, _end(tid, True), version=5)
    pair.compare(ADD_PARTITIONS, _add(tid, topic, [0], epoch_delta=1), version=3)
    pair.compare(END, _end(tid, False, epoch_delta=1), version=5)
    _wait_complete(pair, tid)
    _describe(pair, tid)


def test_init_while_ongoing_fences_with_concurrent_transactions(pair: Pair) -> None:
    tid = pair.name("tid")
    topic = create(pair)
    _start(pair, tid)
    pair.compare(ADD_PARTITIONS, _add(tid, topic, [0]), version=3)
    ours, _ = _init(pair, tid)
    assert ours["error_code"] == ErrorCode.CONCURRENT_TRANSACTIONS
    _wait_complete(pair, tid)
    ours, _ = _init(pair, tid)
    assert ours["error_code"] == ErrorCode.NONE and ours["producer_epoch"] == 2
    # the old epoch is fenced
    pair.compare(ADD_PARTITIONS, _add(tid, topic, [0]), version=3)
    _describe(pair, tid)


def test_kip_360_init_with_producer_id_and_epoch(pair: Pair) -> None:
    tid = pair.name("tid")
    _start(pair, tid)

    def init(delta: int):
        def body(side: Side) -> dict:
            pid, epoch = side.state[tid]
            return {"transactional_id": tid, "transaction_timeout_ms": 60000, "producer_id": pid,
                    "producer_epoch": epoch + delta}  # fmt: skip

        return body

    ours, _ = pair.compare(INIT, init(0))
    assert ours["producer_epoch"] == 1
    pair.compare(INIT, init(0))  # a retry of that bump (the last epoch): the same answer
    pair.compare(INIT, init(5))  # neither the current nor the last epoch: fenced

    def other_pid(side: Side) -> dict:
        return init(0)(side) | {"producer_id": side.state[tid][0] + 100}

    pair.compare(INIT, other_pid)


def test_add_offsets_to_txn(pair: Pair) -> None:
    tid = pair.name("tid")
    group = pair.name("g")
    _start(pair, tid)

    def body(side: Side) -> dict:
        pid, epoch = side.state[tid]
        return {"transactional_id": tid, "producer_id": pid, "producer_epoch": epoch, "group_id": group}

    pair.compare(ADD_OFFSETS, body)
    # a group whose id hashes negative: Kafka places it by the hash's absolute value
    pair.compare(ADD_OFFSETS, lambda side: body(side) | {"group_id": "d081522d2-g1"})
    ours, _ = _describe(pair, tid)
    assert ours["transaction_states"][0]["topics"][0]["topic"] == "__consumer_offsets"
    assert 39 in ours["transaction_states"][0]["topics"][0]["partitions"]  # -286202439: abs, not masked
    pair.compare(ADD_OFFSETS, lambda side: body(side) | {"producer_epoch": side.state[tid][1] + 1})
    pair.compare(END, _end(tid, False), version=4)
    _wait_complete(pair, tid)


def test_list_transactions_filters(pair: Pair) -> None:
    tid = pair.name("tid")
    topic = create(pair)
    _start(pair, tid)
    pair.compare(ADD_PARTITIONS, _add(tid, topic, [0]), version=3)

    def mine(answer: Any) -> Any:
        return answer | {
            "transaction_states": [t for t in answer["transaction_states"] if t["transactional_id"] == tid]
        }

    pair.compare(LIST, {"state_filters": ["Ongoing"], "producer_id_filters": []}, view=mine)
    pair.compare(LIST, {"state_filters": ["Empty", "Bogus"], "producer_id_filters": []}, view=mine)
    pair.compare(LIST, lambda side: {"state_filters": [], "producer_id_filters": [side.state[tid][0]]}, view=mine)
    pair.compare(
        LIST, {"state_filters": [], "producer_id_filters": [], "duration_filter": 3_600_000}, version=1, view=mine
    )
    pair.compare(
        LIST,
        {
            "state_filters": [],
            "producer_id_filters": [],
            "duration_filter": -1,
            "transactional_id_pattern": tid[:-1] + ".*",
        },
        version=2,
        view=mine,
    )
    pair.compare(END, _end(tid, False), version=4)
    _wait_complete(pair, tid)


def _wait_complete(pair: Pair, tid: str) -> None:
    """Until neither side is writing the id's markers (PrepareCommit/PrepareAbort); polls: Kafka has no event."""
    import time

    deadline = time.monotonic() + 30
    for side in pair.sides:
        while True:
            (state,) = side.conn.request(DESCRIBE, {"transactional_ids": [tid]}).transaction_states
            if not state.transaction_state.startswith("Prepare"):
                break
            assert time.monotonic() < deadline, f"{side.name}: {tid} still {state.transaction_state}"
            time.sleep(0.05)


def _txn_records(producer_id: int, epoch: int, sequence: int = 0) -> bytes:
    return batch(1, producer_id=producer_id, epoch=epoch, sequence=sequence, transactional=True)


def test_transactional_produce_is_verified(pair: Pair) -> None:
    """KIP-890 part 1: a transactional Produce to a partition not added to the transaction, or with a fenced
    epoch, is refused by the partition leader after asking the coordinator."""
    tid = pair.name("tid")
    topic = create(pair, partitions=2)
    _start(pair, tid)
    pair.compare(ADD_PARTITIONS, _add(tid, topic, [0]), version=3)

    def produce(partition: int, epoch_delta: int = 0, sequence: int = 0):
        def body(side: Side) -> dict:
            pid, epoch = side.state[tid]
            records = _txn_records(pid, epoch + epoch_delta, sequence)
            data = [{"name": topic, "partition_data": [{"index": partition, "records": records}]}]
            return {"transactional_id": tid, "acks": -1, "timeout_ms": 10000, "topic_data": data}

        return body

    pair.compare(0, produce(1), version=9, ignore=("log_start_offset",))  # never added: INVALID_TXN_STATE
    pair.compare(0, produce(0), version=9)  # added: appended
    pair.compare(END, _end(tid, False), version=4)
    _wait_complete(pair, tid)
    _init(pair, tid)  # a new epoch: the old one is fenced
    pair.compare(0, produce(0, sequence=1), version=9, ignore=("log_start_offset",))


def test_list_transactions_with_an_invalid_pattern(pair: Pair) -> None:
    body = {"state_filters": [], "producer_id_filters": [], "duration_filter": -1, "transactional_id_pattern": "(["}
    ours, _ = pair.compare(LIST, body, version=2)
    assert ours["error_code"] == ErrorCode.INVALID_REGULAR_EXPRESSION
