"""InitProducerId: ids for idempotent producers; transactional ids (kstub has no transaction coordinator yet)."""

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


def test_transactional_id(ready: Pair) -> None:
    """Without transactions (issue 12) kstub still hands a transactional id an id, bumping its epoch on each
    call, as Kafka does; so far the same answers."""
    tx = ready.name("tx")
    ready.wait_for_coordinator(tx, 1)
    first, _ = ready.compare(INIT_PRODUCER_ID, _body(tx))
    second, _ = ready.compare(INIT_PRODUCER_ID, _body(tx))
    assert (second["producer_id"], second["producer_epoch"]) == (first["producer_id"], 1)


@pytest.mark.parametrize(
    ("name", "timeout_ms", "known"),
    [
        ("tx", 0, "init-producer-id-transaction-timeout-zero"),
        ("tx", 900_001, "init-producer-id-transaction-timeout-above-max"),
        ("", 60_000, "init-producer-id-empty-transactional-id"),
    ],
    ids=["timeout-zero", "timeout-above-max", "empty-id"],
)
def test_transactional_id_validation(ready: Pair, name: str, timeout_ms: int, known: str) -> None:
    """Kafka's transaction coordinator checks the timeout and the id; kstub has none yet (listed)."""
    tx = ready.name(name) if name else ""
    ready.wait_for_coordinator(tx, 1)
    ready.compare(INIT_PRODUCER_ID, _body(tx, timeout_ms=timeout_ms), known=known)
