"""Idempotent producers: ids, epochs and per-partition sequence numbers.

Follows Kafka's ProducerStateManager for non-transactional idempotent
producers: each (producer id, partition) remembers the last five appended
batches. A batch equal to one of them is a retry and is acknowledged with its
original offset without being stored again; a batch that does not follow the
last one's sequence is OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is
INVALID_PRODUCER_EPOCH, and a newer epoch must restart at sequence 0. A
producer the partition has no state for may start at any sequence (Kafka
since KIP-360: its state may have been removed with old segments).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from kstub.protocol import ErrorCode

MAX_REMEMBERED_BATCHES = 5
INT32_MAX = 2**31 - 1


@dataclass(slots=True)
class _Entry:
    first_seq: int
    last_seq: int
    base_offset: int


@dataclass(slots=True)
class _ProducerPartitionState:
    epoch: int
    batches: deque[_Entry] = field(default_factory=lambda: deque(maxlen=MAX_REMEMBERED_BATCHES))


@dataclass(slots=True)
class SequenceCheck:
    """The verdict on a batch: an error, a duplicate (with its offset), or fine."""

    error: ErrorCode = ErrorCode.NONE
    duplicate_of: int | None = None


def _next_seq(seq: int) -> int:
    return 0 if seq == INT32_MAX else seq + 1


class PartitionProducers:
    """The producer state of one partition."""

    def __init__(self) -> None:
        self._states: dict[int, _ProducerPartitionState] = {}

    def check(self, producer_id: int, epoch: int, first_seq: int, count: int) -> SequenceCheck:
        state = self._states.get(producer_id)
        last_seq = (first_seq + count - 1) % (INT32_MAX + 1)
        if state is None:
            return SequenceCheck()
        if epoch < state.epoch:
            return SequenceCheck(ErrorCode.INVALID_PRODUCER_EPOCH)
        if epoch > state.epoch:
            if first_seq != 0:
                return SequenceCheck(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
            return SequenceCheck()
        for entry in state.batches:
            if entry.first_seq == first_seq and entry.last_seq == last_seq:
                return SequenceCheck(duplicate_of=entry.base_offset)
        if state.batches and first_seq != _next_seq(state.batches[-1].last_seq):
            return SequenceCheck(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
        return SequenceCheck()

    def record(self, producer_id: int, epoch: int, first_seq: int, count: int, base_offset: int) -> None:
        state = self._states.get(producer_id)
        if state is None or state.epoch != epoch:
            state = self._states[producer_id] = _ProducerPartitionState(epoch)
        state.batches.append(_Entry(first_seq, (first_seq + count - 1) % (INT32_MAX + 1), base_offset))

    def snapshot(self) -> dict[str, dict]:
        """The state as plain data (a producer-state snapshot file, as Kafka's .snapshot)."""
        return {
            str(pid): {"epoch": st.epoch, "batches": [[e.first_seq, e.last_seq, e.base_offset] for e in st.batches]}
            for pid, st in self._states.items()
        }

    def restore(self, data: dict[str, dict]) -> None:
        """Replace the state with a `snapshot()`."""
        self._states = {}
        for pid, st in data.items():
            state = self._states[int(pid)] = _ProducerPartitionState(int(st["epoch"]))
            for first, last, base in st["batches"]:
                state.batches.append(_Entry(int(first), int(last), int(base)))


class ProducerIds:
    """Hands out producer ids and bumps epochs (InitProducerId)."""

    def __init__(self, first_id: int = 1000) -> None:
        self._next_id = first_id
        self._epochs: dict[int, int] = {}
        self._transactional: dict[str, int] = {}

    def init(self, transactional_id: str | None, producer_id: int, producer_epoch: int) -> tuple[ErrorCode, int, int]:
        if transactional_id is not None:
            known = self._transactional.get(transactional_id)
            if known is not None:
                return self._bump(known)
            pid = self._allocate()
            self._transactional[transactional_id] = pid
            return ErrorCode.NONE, pid, 0
        if producer_id >= 0:
            current = self._epochs.get(producer_id)
            if current is None:
                return ErrorCode.INVALID_PRODUCER_ID_MAPPING, -1, -1
            if producer_epoch != current:
                return ErrorCode.PRODUCER_FENCED, -1, -1
            return self._bump(producer_id)
        return ErrorCode.NONE, self._allocate(), 0

    def snapshot(self) -> dict:
        """Ids handed out and their epochs, as plain data (persisted by --data-dir)."""
        return {"next_id": self._next_id, "epochs": self._epochs, "transactional": self._transactional}

    def restore(self, data: dict) -> None:
        self._next_id = int(data["next_id"])
        self._epochs = {int(k): int(v) for k, v in data["epochs"].items()}
        self._transactional = {str(k): int(v) for k, v in data["transactional"].items()}

    def allocate(self) -> int:
        """A new producer id at epoch 0 (the transaction coordinator's ids come from here too)."""
        return self._allocate()

    def _allocate(self) -> int:
        pid = self._next_id
        self._next_id += 1
        self._epochs[pid] = 0
        return pid

    def _bump(self, pid: int) -> tuple[ErrorCode, int, int]:
        epoch = self._epochs[pid] + 1
        if epoch > 32767:
            # Epoch exhausted: Kafka hands out a fresh producer id.
            pid = self._allocate()
            return ErrorCode.NONE, pid, 0
        self._epochs[pid] = epoch
        return ErrorCode.NONE, pid, epoch
