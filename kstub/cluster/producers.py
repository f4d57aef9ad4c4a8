"""Idempotent and transactional producers: ids, epochs, sequence numbers, open transactions.

Follows Kafka's ProducerStateManager. Each (producer id, partition) remembers
the last five appended batches. A batch equal to one of them is a retry and is
acknowledged with its original offset without being stored again; a batch that
does not follow the last one's sequence is OUT_OF_ORDER_SEQUENCE_NUMBER; an
older epoch is INVALID_PRODUCER_EPOCH, and a newer epoch must restart at
sequence 0. A producer the partition has no state for may start at any
sequence (Kafka since KIP-360: its state may have been removed with old
segments).

Transactions, per partition (a replica's log keeps its own copy, so a follower
that becomes leader knows them): a transactional data batch opens a
transaction for its producer at its first offset, unless one is open; a
control batch (a COMMIT or ABORT marker, protocol/records/control.py) closes
it, and an ABORT adds (producer id, first offset, last offset) to the aborted
transactions index that read_committed fetches report. A completed transaction
stays *unreplicated* until the high watermark passes its marker. The first
unstable offset is the first offset of the earliest open or unreplicated
transaction; the last stable offset (LSO) is that, or the high watermark
(`Partition.last_stable_offset`). Everything is kept incrementally: open
transactions in offset order (a dict in insertion order: appends come in offset
order), the aborted index in marker order.
"""

from __future__ import annotations

import bisect
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

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
    #: the epoch of the transaction coordinator that wrote this producer's last marker (-1: none)
    coordinator_epoch: int = -1
    #: the max timestamp of its last batch (or its last marker's timestamp)
    last_timestamp: int = -1
    #: the first offset of its open transaction (-1: none)
    txn_first_offset: int = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1


class ProducerInfo(NamedTuple):
    """One producer as DescribeProducers shows it."""

    producer_id: int
    epoch: int
    last_sequence: int
    last_timestamp: int
    coordinator_epoch: int
    txn_start_offset: int


class AbortedTxn(NamedTuple):
    producer_id: int
    first_offset: int
    last_offset: int


@dataclass(slots=True)
class SequenceCheck:
    """The verdict on a batch: an error, a duplicate (with its offset), or fine."""

    error: ErrorCode = ErrorCode.NONE
    duplicate_of: int | None = None


def _next_seq(seq: int) -> int:
    return 0 if seq == INT32_MAX else seq + 1


class PartitionProducers:
    """The producer state of one partition (one replica's log)."""

    def __init__(self) -> None:
        self._states: dict[int, _ProducerPartitionState] = {}
        #: producer id -> first offset of its open transaction, in offset order
        self._ongoing: dict[int, int] = {}
        #: (first offset, marker offset) of completed transactions the high watermark has not passed yet
        self._unreplicated: deque[tuple[int, int]] = deque()
        #: the aborted transactions index, in marker (last offset) order
        self._aborted: list[AbortedTxn] = []
        self._aborted_lasts = array("q")

    # --- checks (the leader, before appending) -------------------------------------

    def check(
        self, producer_id: int, epoch: int, first_seq: int, count: int, transactional: bool = False
    ) -> SequenceCheck:
        """Kafka's checks of a client's data batch: retry, epoch, sequence, then the transaction state."""
        state = self._states.get(producer_id)
        if state is None:
            return SequenceCheck()
        if epoch < state.epoch:
            return SequenceCheck(ErrorCode.INVALID_PRODUCER_EPOCH)
        if epoch > state.epoch:
            if first_seq != 0:
                return SequenceCheck(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
        else:
            last_seq = (first_seq + count - 1) % (INT32_MAX + 1)
            for entry in state.batches:
                if entry.first_seq == first_seq and entry.last_seq == last_seq:
                    return SequenceCheck(duplicate_of=entry.base_offset)
            # a known epoch with no batch left (its last write was a marker) expects sequence 0
            if first_seq != _next_seq(state.last_seq):
                return SequenceCheck(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
        if state.txn_first_offset >= 0 and not transactional:
            return SequenceCheck(ErrorCode.INVALID_TXN_STATE)
        return SequenceCheck()

    def check_marker(self, producer_id: int, epoch: int, coordinator_epoch: int) -> ErrorCode:
        """Kafka's checks of a marker the coordinator writes: an older producer epoch, an older coordinator."""
        state = self._states.get(producer_id)
        if state is None:
            return ErrorCode.NONE
        if epoch < state.epoch:
            return ErrorCode.INVALID_PRODUCER_EPOCH
        if coordinator_epoch < state.coordinator_epoch:
            return ErrorCode.TRANSACTION_COORDINATOR_FENCED
        return ErrorCode.NONE

    # --- appends (every replica) ------------------------------------------------

    def _state_for(self, producer_id: int, epoch: int) -> _ProducerPartitionState:
        state = self._states.get(producer_id)
        if state is None:
            state = self._states[producer_id] = _ProducerPartitionState(epoch)
        elif state.epoch != epoch:
            state.epoch = epoch
            state.batches.clear()
        return state

    def record(
        self,
        producer_id: int,
        epoch: int,
        first_seq: int,
        count: int,
        base_offset: int,
        *,
        timestamp: int = -1,
        transactional: bool = False,
    ) -> None:
        """A data batch was appended at `base_offset`."""
        state = self._state_for(producer_id, epoch)
        state.batches.append(_Entry(first_seq, (first_seq + count - 1) % (INT32_MAX + 1), base_offset))
        state.last_timestamp = timestamp
        if transactional and state.txn_first_offset < 0:
            state.txn_first_offset = base_offset
            self._ongoing[producer_id] = base_offset

    def record_marker(
        self, producer_id: int, epoch: int, commit: bool, coordinator_epoch: int, offset: int, timestamp: int
    ) -> None:
        """A COMMIT or ABORT marker was appended at `offset`: the producer's transaction (if any) ends there."""
        state = self._state_for(producer_id, epoch)
        first = state.txn_first_offset
        if first >= 0:
            self._ongoing.pop(producer_id, None)
            self._unreplicated.append((first, offset))
            if not commit:
                self._aborted.append(AbortedTxn(producer_id, first, offset))
                self._aborted_lasts.append(offset)
        state.txn_first_offset = -1
        state.coordinator_epoch = coordinator_epoch
        state.last_timestamp = timestamp

    # --- reading ----------------------------------------------------------------

    def first_unstable_offset(self, high_watermark: int) -> int | None:
        """The first offset of the earliest open transaction, or of a completed one whose marker is not below
        `high_watermark` yet (None: everything below the high watermark is stable)."""
        unreplicated = self._unreplicated
        while unreplicated and unreplicated[0][1] < high_watermark:
            unreplicated.popleft()
        first = next(iter(self._ongoing.values()), None)
        for start, last in unreplicated:
            if last >= high_watermark and (first is None or start < first):
                first = start
        return first

    def aborted_transactions(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        """Aborted transactions overlapping [fetch_offset, upper_bound), as Kafka's transaction index
        answers a read_committed fetch: marker at or after the fetch offset, first offset below the bound."""
        out: list[AbortedTxn] = []
        aborted = self._aborted
        for i in range(bisect.bisect_left(self._aborted_lasts, fetch_offset), len(aborted)):
            txn = aborted[i]
            if txn.first_offset < upper_bound:
                out.append(txn)
            if txn.last_offset >= upper_bound:
                break
        return out

    def forget_aborted_before(self, offset: int) -> None:
        """Drop aborted transactions whose marker is below `offset` (their segment left the log)."""
        n = bisect.bisect_left(self._aborted_lasts, offset)
        if n:
            del self._aborted[:n]
            del self._aborted_lasts[:n]

    def has_ongoing_transaction(self, producer_id: int, epoch: int) -> bool:
        """Whether the producer, at this epoch, has a transaction open here (Kafka's hasOngoingTransaction:
        such a producer's next transactional batch needs no verification with the coordinator, KIP-890)."""
        state = self._states.get(producer_id)
        return state is not None and state.txn_first_offset >= 0 and state.epoch == epoch

    def open_transactions(self) -> dict[int, int]:
        """Producer id -> first offset of each open transaction, in offset order."""
        return dict(self._ongoing)

    def describe(self) -> list[ProducerInfo]:
        """Every producer the partition knows, as DescribeProducers reports them."""
        return [
            ProducerInfo(pid, st.epoch, st.last_seq, st.last_timestamp, st.coordinator_epoch, st.txn_first_offset)
            for pid, st in self._states.items()
        ]

    # --- persistence ------------------------------------------------------------

    def snapshot(self) -> dict[str, dict]:
        """The producers as plain data (a producer-state snapshot file, as Kafka's .snapshot)."""
        return {
            str(pid): {
                "epoch": st.epoch,
                "batches": [[e.first_seq, e.last_seq, e.base_offset] for e in st.batches],
                "last_timestamp": st.last_timestamp,
                "coordinator_epoch": st.coordinator_epoch,
                "txn_first_offset": st.txn_first_offset,
            }
            for pid, st in self._states.items()
        }

    def txn_snapshot(self) -> dict[str, list]:
        """The aborted transactions index and the completed transactions not yet stable, as plain data."""
        return {"aborted": [list(t) for t in self._aborted], "unreplicated": [list(t) for t in self._unreplicated]}

    def restore(self, data: dict[str, dict], txns: dict[str, list] | None = None) -> None:
        """Replace the state with a `snapshot()` (and a `txn_snapshot()`)."""
        self.__init__()  # type: ignore[misc]
        ongoing = []
        for pid, st in data.items():
            state = self._states[int(pid)] = _ProducerPartitionState(
                int(st["epoch"]),
                coordinator_epoch=int(st.get("coordinator_epoch", -1)),
                last_timestamp=int(st.get("last_timestamp", -1)),
                txn_first_offset=int(st.get("txn_first_offset", -1)),
            )
            for first, last, base in st["batches"]:
                state.batches.append(_Entry(int(first), int(last), int(base)))
            if state.txn_first_offset >= 0:
                ongoing.append((state.txn_first_offset, int(pid)))
        self._ongoing = {pid: first for first, pid in sorted(ongoing)}
        if txns:
            for pid, first, last in txns.get("aborted", []):
                self._aborted.append(AbortedTxn(int(pid), int(first), int(last)))
                self._aborted_lasts.append(int(last))
            self._unreplicated.extend((int(a), int(b)) for a, b in txns.get("unreplicated", []))


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
