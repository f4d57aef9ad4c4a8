"""A member's next step towards its target assignment (Kafka's CurrentAssignmentBuilder, as rules).

Each heartbeat moves a member as far as it may:

- partitions it holds and is no longer meant to hold must be revoked first:
  the member stays at its epoch in UNREVOKED_PARTITIONS, its answer lists only
  the partitions it keeps, and it moves on once its heartbeat no longer
  reports the revoked ones as owned;
- then it moves to the target epoch and is given the target partitions that
  are free; partitions another member still holds (it has not revoked them
  yet) are held back: UNRELEASED_PARTITIONS until they are released;
- else it is STABLE at the target epoch.

A partition is only ever given to a new owner once its previous owner has
revoked it, so no two members consume it at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace

from .model import Assignment, ConsumerMember, MemberState

Owned = list[tuple[uuid.UUID, list[int]]] | None


def owns_any(owned: Owned, partitions: Assignment) -> bool:
    """Whether the member's reported partitions include any of `partitions` (None: not reported)."""
    if owned is None:
        return True
    return any(p in partitions.get(topic_id, ()) for topic_id, parts in owned for p in parts)


def reconcile(
    member: ConsumerMember,
    target_epoch: int,
    target: Assignment,
    subscribed: set[uuid.UUID],
    partition_epoch: Callable[[uuid.UUID, int], int],
    owned: Owned,
) -> ConsumerMember:
    if member.state is MemberState.STABLE and member.member_epoch == target_epoch:
        return member
    if member.state is MemberState.UNREVOKED_PARTITIONS and owns_any(owned, member.pending_revocation):
        return member
    assigned: Assignment = {}
    revoke: Assignment = {}
    pending: Assignment = {}
    unreleased = False
    for topic_id in set(target) | set(member.assigned):
        want = target.get(topic_id, frozenset()) if topic_id in subscribed else frozenset()
        have = member.assigned.get(topic_id, frozenset())
        keep = have & want
        if keep:
            assigned[topic_id] = keep
        if have - keep:
            revoke[topic_id] = have - keep
        mine = member.pending_revocation.get(topic_id, frozenset())
        free = frozenset(p for p in want - keep if partition_epoch(topic_id, p) == -1 or p in mine)
        if len(free) < len(want - keep):
            unreleased = True
        if free:
            pending[topic_id] = free
    if revoke and owns_any(owned, revoke):
        return replace(member, state=MemberState.UNREVOKED_PARTITIONS, assigned=assigned, pending_revocation=revoke)
    for topic_id, parts in pending.items():
        assigned[topic_id] = assigned.get(topic_id, frozenset()) | parts
    state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
    epoch_moves = member.member_epoch != target_epoch
    return replace(
        member,
        state=state,
        member_epoch=target_epoch,
        previous_member_epoch=member.member_epoch if epoch_moves else member.previous_member_epoch,
        assigned=assigned,
        pending_revocation={},
    )
