"""Transactions as the log cleaner sees them in the batches (Kafka's transaction index and CleanedTransactionMetadata).

`scan_transactions` walks a log's batch headers for its aborted transactions and each
producer's last batch; `TxnTracker` tells, batch by batch in a cleaning, whether a data
batch is of an aborted transaction and whether a marker may go.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field

from kstub.protocol.records import RecordBatch
from kstub.protocol.records.control import ABORT, COMMIT

from .cleaner_batches import Work, control_type, iter_windows, v2_header
from .log import Log
from .segments import Chunk


@dataclass
class AbortedTxn:
    producer_id: int
    first_offset: int


@dataclass
class LogTxnState:
    """What one scan of a log's batch headers says about producers and transactions."""

    #: aborted transactions (producer, first offset), by first offset (Kafka's transaction index)
    aborted: list[AbortedTxn] = field(default_factory=list)
    #: per producer: the last offset of its last data batch, or (if it wrote none) -1 and its last marker's epoch
    last_data: dict[int, int] = field(default_factory=dict)
    last_marker_epoch: dict[int, int] = field(default_factory=dict)


def scan_transactions(lg: Log, upto: int, state: LogTxnState) -> Iterator[Work]:
    """Walk the batches of `lg` below `upto` into `state`: aborted transactions, each producer's last batch."""
    open_txns: dict[int, int] = {}

    def scan(window: list[Chunk]) -> None:
        for chunk in window:
            if chunk.base_offset >= upto:
                return
            header = v2_header(chunk)
            if header is None or header.producer_id < 0:
                continue
            pid = header.producer_id
            if header.is_control:
                kind = control_type(chunk)
                first = open_txns.pop(pid, None)
                if kind == ABORT and first is not None:
                    state.aborted.append(AbortedTxn(pid, first))
                state.last_marker_epoch[pid] = header.producer_epoch
            else:
                if header.is_transactional and pid not in open_txns:
                    open_txns[pid] = chunk.base_offset
                state.last_data[pid] = chunk.last_offset

    for seg in lg.segments:
        if seg.base_offset >= upto:
            break
        for window in iter_windows(seg):
            work = Work(functools.partial(scan, window))
            yield work
            work.result()
    state.aborted.sort(key=lambda t: t.first_offset)


class TxnTracker:
    """Kafka's CleanedTransactionMetadata: whether a batch is of an aborted transaction, whether a marker may go."""

    def __init__(self, aborted: list[AbortedTxn]) -> None:
        self._pending = list(aborted)
        self._next = 0
        self._ongoing_aborted: dict[int, bool] = {}  # producer → data of the aborted txn seen in this cleaning
        self._ongoing_committed: set[int] = set()

    def _consume_up_to(self, offset: int) -> None:
        while self._next < len(self._pending) and self._pending[self._next].first_offset <= offset:
            txn = self._pending[self._next]
            self._next += 1
            self._ongoing_aborted.setdefault(txn.producer_id, False)

    def on_control(self, header: RecordBatch, kind: int | None) -> bool:
        """Whether the marker may be discarded."""
        self._consume_up_to(header.last_offset)
        pid = header.producer_id
        if kind == ABORT:
            seen = self._ongoing_aborted.pop(pid, None)
            return not seen
        if kind == COMMIT:
            if pid in self._ongoing_committed:
                self._ongoing_committed.discard(pid)
                return False
            return True
        return False

    def on_data(self, header: RecordBatch) -> bool:
        """Whether the data batch belongs to an aborted transaction."""
        self._consume_up_to(header.last_offset)
        if not header.is_transactional:
            return False
        pid = header.producer_id
        if pid in self._ongoing_aborted:
            self._ongoing_aborted[pid] = True
            return True
        self._ongoing_committed.add(pid)
        return False
