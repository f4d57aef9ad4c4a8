"""Where a transactional id lives: its ``__transaction_state`` partition's leader, and the coordinator epochs
bumped when those leaders move (a base of `TransactionCoordinator`; coordinator.py describes the rules)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kstub.protocol import ErrorCode

from ..placement import OffsetsPartitions, java_string_hash, kafka_abs

if TYPE_CHECKING:
    from ..model import Broker, ClusterState

log = logging.getLogger("kstub.transactions")


class TxnPlacement:
    """The placement half of the transaction coordinator."""

    cluster: ClusterState
    state_partitions: OffsetsPartitions
    coordinator_epochs: dict[int, int]
    # and TxnTasks' poke

    def partition_for(self, transactional_id: str) -> int:
        count = self.cluster.config["transaction.state.log.num.partitions"]
        return kafka_abs(java_string_hash(transactional_id)) % count

    def coordinator_for(self, transactional_id: str) -> Broker | None:
        leader = self.state_partitions.leader(self.partition_for(transactional_id))
        return self.cluster.brokers[leader] if leader >= 0 else None

    def check_coordinator(self, transactional_id: str, node_id: int) -> ErrorCode | None:
        """NOT_COORDINATOR unless `node_id` coordinates the id (COORDINATOR_NOT_AVAILABLE: nobody does)."""
        broker = self.coordinator_for(transactional_id)
        if broker is None:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        return None if broker.node_id == node_id else ErrorCode.NOT_COORDINATOR

    def _coordinator_epoch(self, transactional_id: str) -> int:
        return self.coordinator_epochs.get(self.partition_for(transactional_id), 0)

    def _serving(self, transactional_id: str) -> bool:
        broker = self.coordinator_for(transactional_id)
        return broker is not None and broker.running

    def _broker_stopped(self, broker_id: int) -> None:
        self._moved(self.state_partitions.broker_left(broker_id), f"broker {broker_id} left")

    def _broker_started(self, broker_id: int) -> None:
        self._moved(self.state_partitions.broker_returned(broker_id), f"broker {broker_id} returned")

    def elect_preferred(self) -> int:
        moved = self.state_partitions.elect_preferred()
        self._moved(moved, "preferred leader election")
        return len(moved)

    def rebalance_if_imbalanced(self, threshold: float) -> int:
        """The __transaction_state partitions' share of the controller's auto leader rebalance."""
        moved = self.state_partitions.rebalance_if_imbalanced(threshold)
        self._moved(moved, "auto leader rebalance")
        return len(moved)

    def _moved(self, moved: dict[int, int], why: str) -> None:
        if not moved:
            return
        for k in moved:
            self.coordinator_epochs[k] = self.coordinator_epochs.get(k, 0) + 1
        log.info("transaction coordinator: %d partition(s) of __transaction_state moved (%s)", len(moved), why)
        self.poke()
