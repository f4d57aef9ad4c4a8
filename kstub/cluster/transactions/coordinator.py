"""The transaction coordinator: every transactional id of one cluster, its rules, markers and timers.

Placement. A transactional id lives on the leader of its ``__transaction_state``
partition (Java's String.hashCode of the id, modulo
``transaction.state.log.num.partitions``), elected as the offsets partitions of
the group coordinator are (kstub/cluster/placement.py: every broker is a
replica, the first live one leads); FindCoordinator key type 1 answers it and
the transaction APIs refuse other brokers with NOT_COORDINATOR. When a broker
stops or is killed, its partitions move and so do their transactional ids;
each move bumps that partition's coordinator epoch, which later markers carry.

State and recovery. As for groups (kstub/cluster/coordinator.py), the state
is kept in the cluster model across coordinator moves, the state the
replicated log would give back to the new leader; a transaction being
completed carries on writing its markers. With ``--data-dir`` every change is
written to the store (meta/transactions.json) before the answer, and a restart
brings each id back; a transaction found in PrepareCommit or PrepareAbort is
completed (its markers written again, as Kafka's loading coordinator does),
an Ongoing one gets its timeout afresh.

Rules. The API rules follow Kafka's TransactionCoordinator: InitProducerId
(epoch bumps, KIP-360's producer id and epoch in the request, fencing an
ongoing transaction with PrepareEpochFence then an abort and
CONCURRENT_TRANSACTIONS), AddPartitionsToTxn and its verify-only form,
AddOffsetsToTxn, EndTxn in both transaction versions (v2, KIP-890 part 2:
every EndTxn bumps the epoch and answers the new one), DescribeTransactions
and ListTransactions.

Ending a transaction. EndTxn moves the id to PrepareCommit/PrepareAbort and is
answered; a task in the coordinator's nursery then writes a marker to every
partition of the transaction (``kstub.cluster.txn_markers.write_marker``),
completes the offsets committed in it (``__consumer_offsets`` partitions: the
group coordinator's pending transactional offsets), and moves to
CompleteCommit/CompleteAbort. Meanwhile the id answers CONCURRENT_TRANSACTIONS.

Timers. `run` sleeps until the earliest deadline (an Ongoing transaction's
transaction.timeout.ms, an idle id's transactional.id.expiration.ms), woken
when a change may bring one forward. An expired transaction is fenced and
aborted as Kafka does (the epoch is bumped, so its producer is fenced); an
expired id is removed. Timers stand still while the id's coordinator is down
and not yet replaced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from kstub.protocol import ErrorCode

from ..placement import OffsetsPartitions
from .admin import TxnAdmin
from .placement import TxnPlacement
from .state import (
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    OFFSETS_TOPIC,
    TRANSACTION_VERSION,
    Timing,
    TopicPartition,
    TransactionMetadata,
    TxnState,
)
from .tasks import TxnTasks

if TYPE_CHECKING:
    from ..model import ClusterState

log = logging.getLogger("kstub.transactions")

INT16_MAX = 32767


class TxnError(Exception):
    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.name)
        self.code = code


@dataclass(slots=True)
class EndResult:
    error: ErrorCode
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH


class TransactionCoordinator(TxnPlacement, TxnTasks, TxnAdmin):
    """Every transactional id of one cluster."""

    def __init__(self, cluster: ClusterState, *, clock: Callable[[], float] = trio.current_time) -> None:
        self.cluster = cluster
        self.now = clock
        self.txns: dict[str, TransactionMetadata] = {}
        self._timing: dict[str, Timing] = {}
        #: who leads each __transaction_state partition
        self.state_partitions = OffsetsPartitions(cluster, "transaction.state.log.num.partitions")
        #: each __transaction_state partition's coordinator epoch (bumped when its leader moves)
        self.coordinator_epochs: dict[int, int] = {}
        self._wake: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        #: ids whose markers are being written (a task each)
        self._completing: set[str] = set()
        cluster.hooks.broker_stopped.append(self._broker_stopped)
        cluster.hooks.broker_started.append(self._broker_started)

    # --- ids and their state ---------------------------------------------------------------

    def _now_ms(self) -> int:
        return self.cluster.now_ms()

    def get(self, transactional_id: str) -> TransactionMetadata | None:
        txn = self.txns.get(transactional_id)
        return None if txn is None or txn.state is TxnState.DEAD else txn

    def _touch(self, txn: TransactionMetadata, *, started: bool = False) -> None:
        now = self.now()
        timing = self._timing.get(txn.transactional_id)
        if timing is None:
            timing = self._timing[txn.transactional_id] = Timing(now, now)
        timing.touched = now
        if started:
            timing.started = now
        txn.coordinator_epoch = self._coordinator_epoch(txn.transactional_id)
        self.save()
        self.poke()

    def save(self) -> None:
        """Write every id's state to the store (--data-dir; memory keeps nothing, so nothing is built for it)."""
        if self.cluster.store.data_dir is not None:
            self.cluster.store.save_transactions([t.to_json() for t in self.txns.values()])

    def restore(self, saved: Iterable[dict]) -> None:
        """Ids a previous run left (--data-dir); prepared transactions complete when `run` starts."""
        now = self.now()
        for data in saved:
            txn = TransactionMetadata.from_json(data)
            self.txns[txn.transactional_id] = txn
            self._timing[txn.transactional_id] = Timing(now, now)
        if self.txns:
            log.info("restored %d transactional id(s)", len(self.txns))
        self.poke()

    def reset(self) -> None:
        self.txns.clear()
        self._timing.clear()
        self.poke()

    # --- InitProducerId ----------------------------------------------------------------------

    def init_producer_id(
        self, transactional_id: str, timeout_ms: int, producer_id: int, producer_epoch: int
    ) -> tuple[ErrorCode, int, int]:
        """InitProducerId with a transactional id: (error, producer id, epoch)."""
        if not transactional_id:
            return ErrorCode.INVALID_REQUEST, NO_PRODUCER_ID, NO_PRODUCER_EPOCH
        if not 0 < timeout_ms <= self.cluster.config["transaction.max.timeout.ms"]:
            return ErrorCode.INVALID_TRANSACTION_TIMEOUT, NO_PRODUCER_ID, NO_PRODUCER_EPOCH
        expected = (producer_id, producer_epoch) if producer_id != NO_PRODUCER_ID else None
        txn = self.get(transactional_id)
        if txn is None:
            txn = TransactionMetadata(transactional_id, self.cluster.producer_ids.allocate(), timeout_ms)
            txn.last_update_ms = self._now_ms()
            self.txns[transactional_id] = txn
        try:
            if expected is not None and not (
                txn.producer_epoch == NO_PRODUCER_EPOCH
                or expected[0] == txn.producer_id
                or (expected[0] == txn.prev_producer_id and expected[1] >= INT16_MAX - 1)
            ):
                raise TxnError(ErrorCode.PRODUCER_FENCED)
            if txn.state.completing or transactional_id in self._completing:
                raise TxnError(ErrorCode.CONCURRENT_TRANSACTIONS)
            if txn.state is TxnState.ONGOING:
                # fence the producer: abort its transaction with a bumped epoch; the client retries
                self._end(txn, commit=False, client_version=TRANSACTION_VERSION, no_partition_added=False)
                raise TxnError(ErrorCode.CONCURRENT_TRANSACTIONS)
            now_ms = self._now_ms()
            if txn.epoch_exhausted and (expected is None or expected[1] == txn.producer_epoch):
                old_epoch = txn.producer_epoch
                txn.prev_producer_id = txn.producer_id
                txn.producer_id = self.cluster.producer_ids.allocate()
                txn.producer_epoch = 0
                txn.last_producer_epoch = old_epoch if expected is not None else NO_PRODUCER_EPOCH
            elif expected is None:
                txn.producer_epoch, txn.last_producer_epoch = txn.producer_epoch + 1, NO_PRODUCER_EPOCH
            elif txn.producer_epoch == NO_PRODUCER_EPOCH or expected[1] == txn.producer_epoch:
                txn.producer_epoch, txn.last_producer_epoch = txn.producer_epoch + 1, txn.producer_epoch
            elif expected[1] != txn.last_producer_epoch:
                raise TxnError(ErrorCode.PRODUCER_FENCED)
            # else: a retry of the last bump, answered the same
            txn.timeout_ms = timeout_ms
            txn.partitions.clear()
            txn.start_ms = -1
            txn.transition(TxnState.EMPTY, now_ms)
        except TxnError as exc:
            return exc.code, NO_PRODUCER_ID, NO_PRODUCER_EPOCH
        self._touch(txn)
        log.info("transactional id %s: producer id %d, epoch %d", transactional_id, txn.producer_id, txn.producer_epoch)
        return ErrorCode.NONE, txn.producer_id, txn.producer_epoch

    # --- AddPartitionsToTxn, AddOffsetsToTxn, verification -----------------------------------

    def _check_producer(self, transactional_id: str, producer_id: int, producer_epoch: int) -> TransactionMetadata:
        if not transactional_id:
            raise TxnError(ErrorCode.INVALID_REQUEST)
        txn = self.get(transactional_id)
        if txn is None:
            raise TxnError(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        if txn.producer_id != producer_id:
            raise TxnError(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        if txn.producer_epoch != producer_epoch:
            raise TxnError(ErrorCode.PRODUCER_FENCED)
        if txn.state.completing:
            raise TxnError(ErrorCode.CONCURRENT_TRANSACTIONS)
        return txn

    def add_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
        client_version: int = 0,
    ) -> ErrorCode:
        """Add partitions to the id's transaction (starting it): Kafka's handleAddPartitionsToTransaction."""
        wanted = set(partitions)
        try:
            txn = self._check_producer(transactional_id, producer_id, producer_epoch)
        except TxnError as exc:
            return exc.code
        if txn.state is TxnState.ONGOING and wanted <= txn.partitions:
            return ErrorCode.NONE
        started = txn.state is not TxnState.ONGOING
        if started:
            txn.start_ms = self._now_ms()
        txn.partitions |= wanted
        txn.client_version = client_version
        txn.transition(TxnState.ONGOING, self._now_ms())
        self._touch(txn, started=started)
        return ErrorCode.NONE

    def verify_partitions(
        self, transactional_id: str, producer_id: int, producer_epoch: int, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, ErrorCode]:
        """Whether each partition is in the id's transaction (KIP-890 part 1): NONE or TRANSACTION_ABORTABLE,
        or the id's error for every partition."""
        wanted = list(partitions)
        txn = self.get(transactional_id) if transactional_id else None
        if not transactional_id:
            error = ErrorCode.INVALID_REQUEST
        elif txn is None or txn.producer_id != producer_id:
            error = ErrorCode.INVALID_PRODUCER_ID_MAPPING
        elif txn.producer_epoch != producer_epoch:
            error = ErrorCode.PRODUCER_FENCED
        elif txn.state.completing:
            error = ErrorCode.CONCURRENT_TRANSACTIONS
        else:
            return {tp: ErrorCode.NONE if tp in txn.partitions else ErrorCode.TRANSACTION_ABORTABLE for tp in wanted}
        return dict.fromkeys(wanted, error)

    def offsets_partition(self, group_id: str) -> TopicPartition:
        """The __consumer_offsets partition a group's transactional offsets are marked in."""
        return (OFFSETS_TOPIC, self.cluster.groups.partition_for(group_id))

    def add_offsets(self, transactional_id: str, producer_id: int, producer_epoch: int, group_id: str) -> ErrorCode:
        """AddOffsetsToTxn: the group's offsets partition joins the transaction."""
        return self.add_partitions(transactional_id, producer_id, producer_epoch, [self.offsets_partition(group_id)])

    def transactional_write(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
        add: bool,
    ) -> dict[TopicPartition, ErrorCode]:
        """What a partition leader (Produce) or group coordinator (TxnOffsetCommit) hears about a transactional
        write: with `add` (transactions v2 clients) the partitions join the transaction, else they are verified.
        Errors are the coordinator's; the caller maps them as Kafka's AddPartitionsToTxnManager does."""
        wanted = list(partitions)
        if add:
            error = self.add_partitions(transactional_id, producer_id, producer_epoch, wanted, TRANSACTION_VERSION)
            return dict.fromkeys(wanted, error)
        return self.verify_partitions(transactional_id, producer_id, producer_epoch, wanted)

    def produce_verdict(
        self, transactional_id: str, producer_id: int, producer_epoch: int, tp: TopicPartition, produce_version: int
    ) -> ErrorCode:
        """A partition leader's check of a transactional Produce (KIP-890): Produce v12+ adds the partition to the
        transaction, older versions verify it was added. The error is the one the Produce answers (Kafka's
        ReplicaManager and AddPartitionsToTxnManager mappings)."""
        if not self.cluster.config["transaction.partition.verification.enable"] and produce_version < 12:
            return ErrorCode.NONE
        add = produce_version >= 12
        if self.coordinator_for(transactional_id) is None:
            return ErrorCode.NOT_ENOUGH_REPLICAS
        error = self.transactional_write(transactional_id, producer_id, producer_epoch, [tp], add)[tp]
        if error == ErrorCode.PRODUCER_FENCED:
            return ErrorCode.INVALID_PRODUCER_EPOCH
        if error == ErrorCode.TRANSACTION_ABORTABLE and produce_version <= 10:
            return ErrorCode.INVALID_TXN_STATE
        if error == ErrorCode.CONCURRENT_TRANSACTIONS and not add:
            return ErrorCode.NOT_ENOUGH_REPLICAS
        return error

    # --- EndTxn -------------------------------------------------------------------------------

    def end_txn(
        self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool, client_version: int
    ) -> EndResult:
        """EndTxn from a client: Kafka's endTransaction for transaction version 0/1 or 2."""
        if not transactional_id:
            return EndResult(ErrorCode.INVALID_REQUEST)
        txn = self.get(transactional_id)
        if txn is None:
            return EndResult(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        s = txn.state
        want = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
        done = TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT
        if client_version < 2:
            if txn.producer_id != producer_id:
                return EndResult(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
            if producer_epoch != txn.producer_epoch:
                return EndResult(ErrorCode.PRODUCER_FENCED)
            if s is TxnState.ONGOING:
                self._end(txn, commit, client_version, no_partition_added=False)
                return EndResult(ErrorCode.NONE)
            if s is done:
                return EndResult(ErrorCode.NONE)
            if s is want:
                return EndResult(ErrorCode.CONCURRENT_TRANSACTIONS)
            return EndResult(ErrorCode.INVALID_TXN_STATE)
        retry_on_overflow = (
            txn.prev_producer_id == producer_id and producer_epoch == INT16_MAX - 1 and txn.producer_epoch == 0
        )
        retry_on_bump = txn.producer_epoch == producer_epoch + 1
        if s in (TxnState.ONGOING, TxnState.EMPTY):
            valid = producer_epoch == txn.producer_epoch
        elif s.completing:
            valid = retry_on_bump
        else:
            valid = retry_on_bump or retry_on_overflow or producer_epoch == txn.producer_epoch
        retry = retry_on_bump or retry_on_overflow
        if txn.producer_id != producer_id and not retry_on_overflow:
            return EndResult(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        if not valid:
            return EndResult(ErrorCode.PRODUCER_FENCED)
        if s is TxnState.ONGOING:
            self._end(txn, commit, client_version, no_partition_added=False)
        elif s is TxnState.COMPLETE_COMMIT:
            if commit and retry:
                return EndResult(ErrorCode.NONE, txn.producer_id, txn.producer_epoch)
            if commit or retry:
                return EndResult(ErrorCode.INVALID_TXN_STATE)
            self._end(txn, False, client_version, no_partition_added=True)
        elif s is TxnState.COMPLETE_ABORT:
            if commit:
                return EndResult(ErrorCode.INVALID_TXN_STATE)
            if retry:
                return EndResult(ErrorCode.NONE, txn.producer_id, txn.producer_epoch)
            self._end(txn, False, client_version, no_partition_added=True)
        elif s.completing:
            return EndResult(ErrorCode.CONCURRENT_TRANSACTIONS if s is want else ErrorCode.INVALID_TXN_STATE)
        elif s is TxnState.EMPTY:
            if commit:
                return EndResult(ErrorCode.INVALID_TXN_STATE)
            self._end(txn, False, client_version, no_partition_added=True)
        # the answer names the id and epoch the producer goes on with (the next id once the epoch is exhausted)
        if txn.next_producer_id != NO_PRODUCER_ID:
            return EndResult(ErrorCode.NONE, txn.next_producer_id, 0)
        return EndResult(ErrorCode.NONE, txn.producer_id, txn.producer_epoch)

    def _end(self, txn: TransactionMetadata, commit: bool, client_version: int, *, no_partition_added: bool) -> None:
        """Move to PrepareCommit/PrepareAbort and start writing the markers."""
        now_ms = self._now_ms()
        if client_version >= 2:
            if txn.epoch_exhausted:
                txn.next_producer_id = self.cluster.producer_ids.allocate()
                self.cluster.store.save_producer_ids(self.cluster)
            txn.last_producer_epoch = txn.producer_epoch
            txn.producer_epoch += 1
        if no_partition_added:
            txn.start_ms = now_ms
        txn.client_version = client_version
        txn.transition(TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT, now_ms)
        self._touch(txn)
        log.info(
            "transactional id %s: %s (producer %d, epoch %d, %d partitions)",
            txn.transactional_id,
            txn.state.value,
            txn.producer_id,
            txn.producer_epoch,
            len(txn.partitions),
        )
        self._start_completion(txn)
