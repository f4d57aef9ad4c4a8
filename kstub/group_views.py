"""Every group of a cluster as one plain shape, classic and consumer (KIP-848) alike: for the console and metrics.

A classic group (JoinGroup/SyncGroup) has a generation and members whose
assignments are the consumer protocol's bytes (decoded when they are, else
shown without partitions). A consumer group (ConsumerGroupHeartbeat) has a
group epoch, a target assignment epoch and members each at its own epoch,
holding partitions (by topic id) and maybe revoking some; its committed
offsets are kept by a classic group of the same id with no members
(kstub/cluster/coordinator.py), which is not shown as a group of its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kstub.protocol.consumer_protocol import PROTOCOL_TYPE, decode_assignment

if TYPE_CHECKING:
    from kstub.cluster.consumer_group.model import Assignment
    from kstub.cluster.groups import CommittedOffset
    from kstub.cluster.model import ClusterState

TopicPartition = tuple[str, int]


@dataclass
class MemberView:
    member_id: str
    client_id: str
    host: str
    #: the partitions it holds (a consumer group's: assigned and still revoking)
    partitions: list[TopicPartition]
    leader: bool = False
    instance_id: str | None = None
    #: consumer groups: the member's epoch, its reconciliation state, what it must give up, where it is heading
    epoch: int | None = None
    state: str | None = None
    revoking: list[TopicPartition] = field(default_factory=list)
    target: list[TopicPartition] | None = None


@dataclass
class GroupView:
    group_id: str
    #: "classic" or "consumer" (KIP-848), as ListGroups' GroupType
    type: str
    state: str
    protocol_type: str | None
    #: the classic group's chosen protocol (assignor), or the consumer group's server-side assignor
    protocol: str | None
    #: the classic generation id, or the consumer group's group epoch
    generation: int
    members: list[MemberView]
    offsets: dict[TopicPartition, CommittedOffset]
    #: consumer groups: the epoch of the target assignment (behind the group epoch while assigning)
    assignment_epoch: int | None = None


def _decoded(protocol_type: str | None, assignment: bytes) -> list[TopicPartition]:
    if protocol_type != PROTOCOL_TYPE or not assignment:
        return []
    try:
        decoded = decode_assignment(assignment)
    except Exception:  # a client's own protocol: shown without partitions
        return []
    return sorted((a.topic, p) for a in decoded.assigned_partitions for p in a.partitions)


def _named(assignment: Assignment, names: dict[uuid.UUID, str]) -> list[TopicPartition]:
    return sorted((names.get(tid, str(tid)), p) for tid, parts in assignment.items() for p in parts)


def group_views(cluster: ClusterState) -> list[GroupView]:
    """Every group, by id: classic groups and consumer groups (with their committed offsets)."""
    coordinator = cluster.groups
    consumer_groups = coordinator.consumer.groups
    views: list[GroupView] = []
    for group_id, group in coordinator.groups.items():
        if group_id in consumer_groups:
            continue  # the keeper of a consumer group's offsets
        views.append(
            GroupView(
                group_id=group_id,
                type="classic",
                state=group.state.value,
                protocol_type=group.protocol_type,
                protocol=group.protocol_name,
                generation=group.generation_id,
                members=[
                    MemberView(
                        m.member_id,
                        m.client_id,
                        m.client_host,
                        _decoded(group.protocol_type, m.assignment),
                        leader=m.member_id == group.leader_id,
                        instance_id=m.instance_id,
                    )
                    for m in group.members.values()
                ],
                offsets=group.offsets,
            )
        )
    if consumer_groups:
        names = {t.topic_id: name for name, t in cluster.topics.items()}
        for group_id, cgroup in consumer_groups.items():
            keeper = coordinator.groups.get(group_id)
            members = []
            for m in cgroup.members.values():
                target = cgroup.target.get(m.member_id)
                members.append(
                    MemberView(
                        m.member_id,
                        m.client_id,
                        m.client_host,
                        _named(m.owned(), names),
                        instance_id=m.instance_id,
                        epoch=m.member_epoch,
                        state=m.state.value,
                        revoking=_named(m.pending_revocation, names),
                        target=None if target is None else _named(target, names),
                    )
                )
            views.append(
                GroupView(
                    group_id=group_id,
                    type="consumer",
                    state=cgroup.state.value,
                    protocol_type=PROTOCOL_TYPE,
                    protocol=coordinator.consumer.preferred_assignor(cgroup) if cgroup.members else None,
                    generation=cgroup.group_epoch,
                    members=members,
                    offsets={} if keeper is None else keeper.offsets,
                    assignment_epoch=cgroup.assignment_epoch,
                )
            )
    views.sort(key=lambda v: v.group_id)
    return views
