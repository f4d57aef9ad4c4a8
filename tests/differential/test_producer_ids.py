"""InitProducerId: ids for idempotent producers; transactional ids (the transaction coordinator's checks;
the rest of its behaviour is in test_transactions.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from kstub.protocol import ErrorCode

from support.differential import Pair

INIT_PRODUCER_ID = 22


def _body(transactional_id: str | None = None, pid: int = -1, epoch: int = -1, timeout_ms: int = 60_000) -> Any:
    return {
        "transactional_id": transactional_id,
        "transaction_timeout_ms": timeout_ms,
        "producer_id": pid,
        "producer_epoch": epoch,
    }


def _ready(pair: Pair) -> None:
    """Wait until Kafka hands out producer ids (its first block of ids comes from the controller:
    COORDINATOR_LOAD_IN_PROGRESS until then). The ids handed out here are not compared."""
    deadline = time.monotonic() + 60
    while pair.kafka.conn.request(INIT_PRODUCER_ID, _body()).error_code != ErrorCode.NONE:
        assert time.monotonic() < deadline, "Kafka hands out no producer ids"
        time.sleep(0.2)
    pair.kstub.conn.request(INIT_PRODUCER_ID, _body())


@pytest.fixture
def ready(pair: Pair) -> Pair:
    _ready(pair)
    return pair


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_idempotent_producer(ready: Pair, version: int) -> None:
    ours, _ = ready.compare(INIT_PRODUCER_ID, _body(), version=version)
    assert ours["error_code"] == 0 and ours["producer_epoch"] == 0


def test_idempotent_producer_gets_a_new_id_each_time(ready: Pair) -> None:
    first, _ = ready.compare(INIT_PRODUCER_ID, _body())
    again, _ = ready.compare(
        INIT_PRODUCER_ID, lambda side: _body(None, side.raw("producer", first["producer_id"]), first["producer_epoch"])
    )
    assert again["producer_id"] != first["producer_id"] and again["producer_epoch"] == 0
    # an id this broker never handed out: a new one as well
    ready.compare(INIT_PRODUCER_ID, _body(None, 123_456, 3))


@pytest.mark.parametrize(("pid", "epoch"), [(-1, 0), (77, -1)], ids=["epoch-only", "id-only"])
def test_id_and_epoch_go_together(ready: Pair, pid: int, epoch: int) -> None:
    ours, _ = ready.compare(INIT_PRODUCER_ID, _body(None, pid, epoch))
    assert ours["error_code"] == ErrorCode.INVALID_REQUEST


def _coordinator_ready(pair: Pair, tx: str) -> None:
    """FindCoordinator answers and the coordinator has loaded the id's __transaction_state partition (Kafka
    answers NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS meanwhile). Polls: a JVM has no event."""
    pair.wait_for_coordinator(tx, 1)
    deadline = time.monotonic() + 60
    for side in pair.sides:
        while True:
            (state,) = side.conn.request(65, {"transactional_ids": [tx or "-"]}).transaction_states
            if state.error_code in (ErrorCode.NONE, ErrorCode.TRANSACTIONAL_ID_NOT_FOUND):
                break
            assert time.monotonic() < deadline, f"{side.name}: {tx}: {state.error_code}"
            time.sleep(0.2)


def test_transactional_id(ready: Pair) -> None:
    """A transactional id keeps its producer id, its epoch bumped on each call."""
    tx = ready.name("tx")
    _coordinator_ready(ready, tx)
    first, _ = ready.compare(INIT_PRODUCER_ID, _body(tx))
    second, _ = ready.compare(INIT_PRODUCER_ID, _body(tx))
    assert (second["producer_id"], second["producer_epoch"]) == (first["producer_id"], 1)


@pytest.mark.parametrize(
    ("name", "timeout_ms", "error"),
    [
        ("tx", 0, ErrorCode.INVALID_TRANSACTION_TIMEOUT),
        ("tx", 900_001, ErrorCode.INVALID_TRANSACTION_TIMEOUT),
        ("", 60_000, ErrorCode.INVALID_REQUEST),
    ],
    ids=["timeout-zero", "timeout-above-max", "empty-id"],
)
def test_transactional_id_validation(ready: Pair, name: str, timeout_ms: int, error: ErrorCode) -> None:
    """The transaction coordinator checks the timeout (transaction.max.timeout.ms) and the id."""
    tx = ready.name(name) if name else ""
    _coordinator_ready(ready, tx)
    ours, _ = ready.compare(INIT_PRODUCER_ID, _body(tx, timeout_ms=timeout_ms))
    assert ours["error_code"] == error
