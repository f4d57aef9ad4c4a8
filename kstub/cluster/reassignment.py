"""Partition reassignment: moving a partition's replicas to other brokers, as Kafka's KRaft controller does.

A reassignment to a target replica list goes in stages (KIP-455):

1. The partition's replica set becomes the target followed by the replicas
   being removed; the new replicas (`adding`) get an empty log and start
   fetching from the leader like any follower (kstub/cluster/replication.py).
2. Once the ISR, without the replicas being removed, holds every target
   replica (the new ones caught up and joined the ISR), the replica set
   becomes the target, the ISR loses the removed replicas, and the removed
   replicas stop: their logs are deleted. If the leader was removed, the first
   target replica in the ISR takes over. A change that drops replicas bumps
   the leader epoch, as Kafka's PartitionChangeBuilder does.

A reassignment that needs no catching up (a reordering, or only removals with
the rest in sync) completes at once. Cancelling (no target: Kafka's null
replicas) goes back to the original replicas and drops the new ones from the
ISR (INVALID_REPLICA_ASSIGNMENT if that needs an unclean election the topic
does not allow). One implementation serves AlterPartitionReassignments /
ListPartitionReassignments (kstub/handlers/reassignments.py) and the control
plane (`ControlPlane.reassign`, the admin HTTP API).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kstub.protocol import ErrorCode

from .partition import ReplicaState

if TYPE_CHECKING:
    from .model import ClusterState, Partition

log = logging.getLogger("kstub.controller")


class ReassignmentError(Exception):
    """A reassignment the controller refuses, with Kafka's error code and message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def in_progress(p: Partition) -> bool:
    return bool(p.adding_replicas or p.removing_replicas)


def _validate_target(cluster: ClusterState, target: list[int]) -> None:
    """Kafka's validateManualPartitionAssignment: not empty, registered brokers, no duplicates."""
    if not target:
        raise ReassignmentError(
            ErrorCode.INVALID_REPLICA_ASSIGNMENT, "The manual partition assignment includes an empty replica list."
        )
    previous = None
    for broker_id in sorted(target):
        if broker_id not in cluster.brokers:
            raise ReassignmentError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"The manual partition assignment includes broker {broker_id}, but no such broker is registered.",
            )
        if broker_id == previous:
            raise ReassignmentError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"The manual partition assignment includes the broker {broker_id} more than once.",
            )
        previous = broker_id


def _target_size(p: Partition) -> int:
    """The replication factor the partition is heading to (Kafka's check of KIP-860)."""
    if in_progress(p):
        return len((set(p.replicas) | set(p.adding_replicas)) - set(p.removing_replicas))
    return len(p.replicas)


def reassign(cluster: ClusterState, p: Partition, target: list[int] | None, allow_rf_change: bool = True) -> None:
    """Start (or cancel, `target` None) a reassignment of `p`; raises ReassignmentError as Kafka refuses."""
    if target is None:
        _cancel(cluster, p)
        return
    _validate_target(cluster, target)
    if not allow_rf_change and _target_size(p) != len(target):
        raise ReassignmentError(
            ErrorCode.INVALID_REPLICATION_FACTOR,
            f"The replication factor is changed from {_target_size(p)} to {len(target)}",
        )
    current = list(p.replicas)
    removing = sorted(set(current) - set(target))
    adding = sorted(set(target) - set(current))
    replicas = list(target) + removing
    # As Kafka's PartitionChangeBuilder: an empty list leaves the partition's current one in place.
    new_adding = adding or list(p.adding_replicas)
    new_removing = removing or list(p.removing_replicas)
    log.info("%s: reassignment to %s (replicas %s, adding %s, removing %s)", p.name, target, replicas, adding, removing)
    _change(cluster, p, replicas, list(p.isr), new_adding, new_removing, "reassignment")


def _cancel(cluster: ClusterState, p: Partition) -> None:
    """Kafka's PartitionReassignmentRevert: back to the original replicas, the new ones out of the ISR."""
    if not in_progress(p):
        raise ReassignmentError(ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, "No partition reassignment is in progress.")
    replicas = [r for r in p.replicas if r not in p.adding_replicas]
    isr = [r for r in p.isr if r not in p.adding_replicas]
    unclean = p.settings.get_bool("unclean.leader.election.enable")
    if not isr:
        if not unclean:
            raise ReassignmentError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"Unable to revert partition assignment for {p.topic.name}:{p.index} because it would require "
                "an unclean leader election.",
            )
        isr = [replicas[0]]
    log.info("%s: reassignment cancelled, back to replicas %s", p.name, replicas)
    _change(cluster, p, replicas, isr, [], [], "reassignment cancelled", unclean=unclean)


def progress(cluster: ClusterState, p: Partition) -> None:
    """The ISR changed: complete the reassignment of `p` if it now can."""
    if in_progress(p):
        _change(cluster, p, list(p.replicas), list(p.isr), p.adding_replicas, p.removing_replicas, "reassignment")


def _change(
    cluster: ClusterState,
    p: Partition,
    replicas: list[int],
    isr: list[int],
    adding: list[int],
    removing: list[int],
    why: str,
    *,
    unclean: bool = False,
) -> None:
    """Apply one partition change as Kafka's PartitionChangeBuilder builds it: complete the reassignment
    if the ISR allows, elect a leader if the current one cannot stay, bump the epoch where replicas left."""
    if adding or removing:
        new_isr = [r for r in isr if r not in removing]
        new_replicas = [r for r in replicas if r not in removing]
        if new_isr and new_replicas and set(new_replicas) <= set(new_isr):
            isr, replicas, adding, removing = new_isr, new_replicas, [], []
            why = f"{why} completed"
            log.info("%s: reassignment completed: replicas %s, ISR %s", p.name, replicas, isr)
    brokers = cluster.brokers

    def acceptable(r: int) -> bool:
        return r in brokers and brokers[r].alive

    leader = p.leader
    if not (leader in isr and acceptable(leader)):
        candidates = [r for r in replicas if r in isr and acceptable(r)]
        if candidates:
            leader = candidates[0]
        elif unclean and (live := [r for r in replicas if acceptable(r)]):
            leader, isr = live[0], [live[0]]
        else:
            leader = -1
    removed = [r for r in p.replicas if r not in replicas]
    for r in replicas:  # new replicas: an empty log, fetching from the leader
        if r not in p.logs:
            p.logs[r] = cluster.store.new_log(cluster, p, r)
            p.states[r] = ReplicaState()
    p.replicas = list(replicas)
    p.adding_replicas = list(adding)
    p.removing_replicas = list(removing)
    if leader != p.leader or removed:
        cluster.controller.set_leader(p, leader, isr, why)
    else:
        p.isr = [r for r in replicas if r in isr]
        p.topic.cluster.store.save_metadata(cluster)
        for r in replicas:
            brokers[r].replication.wake(p)
        p.notify()
    for r in removed:  # removed replicas stop, and their logs go (Kafka's StopReplica with deletion)
        p.states.pop(r, None)
        lg = p.logs.pop(r, None)
        brokers[r].replication.pending.pop(p, None)
        if lg is not None:
            lg.delete()


def ongoing(cluster: ClusterState) -> list[Partition]:
    """The partitions being reassigned."""
    return [p for p in cluster.iter_partitions() if in_progress(p)]
