"""A transactional id's state as data: Kafka's transaction states and the metadata of one id.

The states and their allowed predecessors follow Kafka's TransactionState;
the names are those DescribeTransactions and ListTransactions show.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
#: Kafka never hands out an epoch at or above this: the coordinator keeps one to fence with
EPOCH_EXHAUSTED = 32767 - 1

#: the topic whose partitions place transactional ids, and the one offsets commits are marked in
TRANSACTION_STATE_TOPIC = "__transaction_state"
OFFSETS_TOPIC = "__consumer_offsets"

TopicPartition = tuple[str, int]


class TxnState(enum.Enum):
    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"
    PREPARE_EPOCH_FENCE = "PrepareEpochFence"
    DEAD = "Dead"

    @property
    def completing(self) -> bool:
        return self in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)

    @property
    def finished(self) -> bool:
        """No transaction under way: a new one may begin (Empty, CompleteCommit, CompleteAbort)."""
        return self in (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)


_S = TxnState
#: each state and the states it may be entered from (Kafka's validPreviousStates)
VALID_PREVIOUS: dict[TxnState, frozenset[TxnState]] = {
    _S.EMPTY: frozenset({_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.ONGOING: frozenset({_S.ONGOING, _S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.PREPARE_COMMIT: frozenset({_S.ONGOING}),
    _S.PREPARE_ABORT: frozenset({_S.ONGOING, _S.PREPARE_EPOCH_FENCE, _S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.COMPLETE_COMMIT: frozenset({_S.PREPARE_COMMIT}),
    _S.COMPLETE_ABORT: frozenset({_S.PREPARE_ABORT}),
    _S.PREPARE_EPOCH_FENCE: frozenset({_S.ONGOING}),
    _S.DEAD: frozenset({_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
}


class IllegalTransition(Exception):
    pass


@dataclass(eq=False)
class TransactionMetadata:
    """One transactional id (Kafka's TransactionMetadata)."""

    transactional_id: str
    producer_id: int
    timeout_ms: int
    state: TxnState = TxnState.EMPTY
    producer_epoch: int = NO_PRODUCER_EPOCH
    #: the epoch before the last bump (KIP-360 retries; transactions v2's EndTxn retries)
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    #: the producer id before the last rotation (epoch exhausted)
    prev_producer_id: int = NO_PRODUCER_ID
    #: transactions v2: the id the producer moves to when this transaction completes (epoch exhausted)
    next_producer_id: int = NO_PRODUCER_ID
    partitions: set[TopicPartition] = field(default_factory=set)
    #: wall-clock ms the transaction began (its first partition), -1 if none
    start_ms: int = -1
    last_update_ms: int = -1
    #: 2 when the client speaks transactions v2 (KIP-890 part 2: epoch bumped by every EndTxn), else 0
    client_version: int = 0
    #: the __transaction_state leader epoch this state was written under (markers carry it)
    coordinator_epoch: int = 0

    @property
    def epoch_exhausted(self) -> bool:
        return self.producer_epoch >= EPOCH_EXHAUSTED

    def transition(self, state: TxnState, now_ms: int) -> None:
        if self.state not in VALID_PREVIOUS[state]:
            raise IllegalTransition(f"{self.transactional_id}: {self.state.value} -> {state.value}")
        self.state = state
        self.last_update_ms = now_ms

    def topics(self) -> dict[str, list[int]]:
        """The partitions by topic, in order (DescribeTransactions)."""
        by_topic: dict[str, list[int]] = {}
        for topic, partition in sorted(self.partitions):
            by_topic.setdefault(topic, []).append(partition)
        return by_topic

    # --- persistence (--data-dir) -----------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.transactional_id,
            "pid": self.producer_id,
            "epoch": self.producer_epoch,
            "last_epoch": self.last_producer_epoch,
            "prev_pid": self.prev_producer_id,
            "next_pid": self.next_producer_id,
            "timeout_ms": self.timeout_ms,
            "state": self.state.value,
            "partitions": sorted([t, p] for t, p in self.partitions),
            "start_ms": self.start_ms,
            "last_update_ms": self.last_update_ms,
            "client_version": self.client_version,
            "coordinator_epoch": self.coordinator_epoch,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TransactionMetadata:
        return cls(
            transactional_id=data["id"],
            producer_id=int(data["pid"]),
            timeout_ms=int(data["timeout_ms"]),
            state=TxnState(data["state"]),
            producer_epoch=int(data["epoch"]),
            last_producer_epoch=int(data["last_epoch"]),
            prev_producer_id=int(data["prev_pid"]),
            next_producer_id=int(data["next_pid"]),
            partitions={(str(t), int(p)) for t, p in data["partitions"]},
            start_ms=int(data["start_ms"]),
            last_update_ms=int(data["last_update_ms"]),
            client_version=int(data["client_version"]),
            coordinator_epoch=int(data["coordinator_epoch"]),
        )


#: the transaction.version this coordinator finalizes (advertised in ApiVersions as Kafka 4.4 does)
TRANSACTION_VERSION = 2


@dataclass(slots=True)
class Timing:
    """When (trio time) an id's transaction began and when it last changed: the timers' clocks."""

    started: float
    touched: float
