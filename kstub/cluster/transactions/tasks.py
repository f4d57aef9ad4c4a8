"""The transaction coordinator's tasks (a base of `TransactionCoordinator`): writing a prepared
transaction's markers, and the timers of ongoing transactions and idle ids (coordinator.py describes both)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from kstub.protocol import ErrorCode
from kstub.protocol.records.control import Marker

from .state import (
    NO_PRODUCER_ID,
    OFFSETS_TOPIC,
    TRANSACTION_VERSION,
    Timing,
    TopicPartition,
    TransactionMetadata,
    TxnState,
)

if TYPE_CHECKING:
    from ..model import ClusterState

log = logging.getLogger("kstub.transactions")


class TxnTasks:
    """Marker writing and timers; `run` is the coordinator's one task (kstub/server.py starts it)."""

    cluster: ClusterState
    now: Callable[[], float]
    txns: dict[str, TransactionMetadata]
    _timing: dict[str, Timing]
    _completing: set[str]
    _nursery: trio.Nursery | None
    _wake: trio.Event | None

    # and the coordinator's _now_ms, _touch, _end, save, _serving (coordinator.py, placement.py)
    # --- markers --------------------------------------------------------------------------------

    def _start_completion(self, txn: TransactionMetadata) -> None:
        tid = txn.transactional_id
        if tid in self._completing:
            return
        self._completing.add(tid)
        if self._nursery is not None:
            self._nursery.start_soon(self._complete, txn)
        # else: `run` starts it

    async def _complete(self, txn: TransactionMetadata) -> None:
        """Write the markers of a prepared transaction (to its partitions at once), then complete it."""
        commit = txn.state is TxnState.PREPARE_COMMIT
        marker = Marker(txn.producer_id, txn.producer_epoch, commit, txn.coordinator_epoch)
        try:
            async with trio.open_nursery() as nursery:
                for tp in sorted(txn.partitions):
                    topic, index = tp
                    if topic == OFFSETS_TOPIC:
                        self.cluster.groups.commits.complete_transaction(txn.producer_id, index, commit)
                        txn.partitions.discard(tp)
                    else:
                        nursery.start_soon(self._mark, txn, tp, marker)
            now_ms = self._now_ms()
            if txn.client_version >= 2 and txn.next_producer_id != NO_PRODUCER_ID:
                txn.prev_producer_id = txn.producer_id
                txn.producer_id, txn.producer_epoch = txn.next_producer_id, 0
            txn.next_producer_id = NO_PRODUCER_ID
            txn.partitions.clear()
            txn.transition(TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT, now_ms)
            log.info("transactional id %s: %s", txn.transactional_id, txn.state.value)
        finally:
            self._completing.discard(txn.transactional_id)
        self._touch(txn)

    async def _mark(self, txn: TransactionMetadata, tp: TopicPartition, marker: Marker) -> None:
        """One partition's marker, written on its leader; retried (on the next leadership or high watermark
        change) until written or the partition is gone."""
        from kstub.cluster.model import ClusterError
        from kstub.cluster.txn_markers import write_marker

        topic, index = tp
        while (partition := self.cluster.partition(topic, index)) is not None:
            try:
                await write_marker(self.cluster, topic, index, marker)
                break
            except ClusterError as exc:
                if exc.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                    break
                log.info("marker for %s-%d: %s; retrying", topic, index, exc.code.name)
                await self._partition_changed(partition)
        txn.partitions.discard(tp)

    @staticmethod
    async def _partition_changed(partition: object) -> None:
        """Wait for the partition's leadership or high watermark to change (at most a second): the retry."""
        event = trio.Event()
        partition.add_waiter(event)  # type: ignore[attr-defined]
        try:
            with trio.move_on_after(1.0):
                await event.wait()
        finally:
            partition.remove_waiter(event)  # type: ignore[attr-defined]

    # --- the timer task -------------------------------------------------------------------------

    async def run(self) -> None:
        """Fire timers and host marker writing until cancelled; one task per cluster (kstub/server.py)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                for txn in list(self.txns.values()):
                    if txn.state.completing:
                        self._completing.discard(txn.transactional_id)
                        self._start_completion(txn)
                while True:
                    self.tick()
                    self._wake = trio.Event()
                    with trio.move_on_at(self._next_deadline()):
                        await self._wake.wait()
            finally:
                self._nursery = None
                self._wake = None
                nursery.cancel_scope.cancel()

    def poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _deadline(self, txn: TransactionMetadata) -> float | None:
        timing = self._timing.get(txn.transactional_id)
        if timing is None or txn.transactional_id in self._completing:
            return None
        if txn.state is TxnState.ONGOING:
            return timing.started + txn.timeout_ms / 1000
        if txn.state.finished:
            return timing.touched + self.cluster.config["transactional.id.expiration.ms"] / 1000
        return None

    def _next_deadline(self) -> float:
        deadlines = [
            d for tid, txn in self.txns.items() if self._serving(tid) and (d := self._deadline(txn)) is not None
        ]
        return min(deadlines, default=math.inf)

    def tick(self, now: float | None = None) -> None:
        now = self.now() if now is None else now
        for tid, txn in list(self.txns.items()):
            deadline = self._deadline(txn)
            if deadline is None or deadline > now or not self._serving(tid):
                continue
            if txn.state is TxnState.ONGOING:
                log.info("transactional id %s: transaction timed out after %d ms, aborting", tid, txn.timeout_ms)
                self._end(txn, commit=False, client_version=TRANSACTION_VERSION, no_partition_added=False)
            else:
                log.info("transactional id %s: expired (transactional.id.expiration.ms)", tid)
                txn.transition(TxnState.DEAD, self._now_ms())
                del self.txns[tid]
                self._timing.pop(tid, None)
                self.save()
