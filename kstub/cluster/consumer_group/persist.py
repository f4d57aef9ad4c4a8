"""Consumer groups as saved in a data directory (``--data-dir``), and back.

Kafka writes a consumer group's state to ``__consumer_offsets`` as records
(the group's epoch, each member's subscription and epochs, the target and
current assignments) and rebuilds the group from them when it loads the
partition. kstub keeps the equivalent as one JSON document per group, in
``meta/consumer-groups.json`` (rewritten when a group's saved state changes:
a member joins, leaves, moves an epoch or an assignment; a heartbeat that
changes nothing writes nothing). What is not saved is what Kafka does not
write either: session and rebalance timers start afresh when the group is
loaded, as at a coordinator move.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from .model import Assignment, ClassicProtocol, ConsumerGroup, ConsumerMember, MemberState

VERSION = 1


def _assignment(a: Assignment) -> dict[str, list[int]]:
    return {str(topic_id): sorted(parts) for topic_id, parts in sorted(a.items(), key=lambda kv: str(kv[0]))}


def _parse_assignment(d: dict[str, list[int]]) -> Assignment:
    return {uuid.UUID(t): frozenset(ps) for t, ps in d.items()}


def member_doc(m: ConsumerMember) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "member_id": m.member_id,
        "instance_id": m.instance_id,
        "rack_id": m.rack_id,
        "client_id": m.client_id,
        "client_host": m.client_host,
        "rebalance_timeout_ms": m.rebalance_timeout_ms,
        "subscribed_topic_names": list(m.subscribed_topic_names),
        "subscribed_topic_regex": m.subscribed_topic_regex,
        "server_assignor": m.server_assignor,
        "state": m.state.value,
        "member_epoch": m.member_epoch,
        "previous_member_epoch": m.previous_member_epoch,
        "assigned": _assignment(m.assigned),
        "pending_revocation": _assignment(m.pending_revocation),
    }
    if m.classic is not None:
        doc["classic"] = {
            "session_timeout_ms": m.classic.session_timeout_ms,
            "protocols": [[name, base64.b64encode(metadata).decode()] for name, metadata in m.classic.protocols],
        }
    return doc


def group_doc(g: ConsumerGroup) -> dict[str, Any]:
    return {
        "group_id": g.group_id,
        "group_epoch": g.group_epoch,
        "assignment_epoch": g.assignment_epoch,
        "members": [member_doc(m) for m in g.members.values()],
        "target": {member_id: _assignment(a) for member_id, a in sorted(g.target.items())},
        "subscription_metadata": [[name, str(tid), n] for name, (tid, n) in sorted(g.subscription_metadata.items())],
    }


def from_doc(doc: dict[str, Any]) -> ConsumerGroup:
    group = ConsumerGroup(doc["group_id"], group_epoch=doc["group_epoch"], assignment_epoch=doc["assignment_epoch"])
    group.subscription_metadata = {name: (uuid.UUID(tid), n) for name, tid, n in doc["subscription_metadata"]}
    for m in doc["members"]:
        classic = None
        if m.get("classic") is not None:
            c = m["classic"]
            protocols = tuple((name, base64.b64decode(data)) for name, data in c["protocols"])
            classic = ClassicProtocol(c["session_timeout_ms"], protocols)
        member = ConsumerMember(
            m["member_id"],
            instance_id=m["instance_id"],
            rack_id=m["rack_id"],
            client_id=m["client_id"],
            client_host=m["client_host"],
            rebalance_timeout_ms=m["rebalance_timeout_ms"],
            subscribed_topic_names=tuple(m["subscribed_topic_names"]),
            subscribed_topic_regex=m["subscribed_topic_regex"],
            server_assignor=m["server_assignor"],
            state=MemberState(m["state"]),
            member_epoch=m["member_epoch"],
            previous_member_epoch=m["previous_member_epoch"],
            assigned=_parse_assignment(m["assigned"]),
            pending_revocation=_parse_assignment(m["pending_revocation"]),
            classic=classic,
        )
        group.put(member)
    group.target = {member_id: _parse_assignment(a) for member_id, a in doc["target"].items()}
    return group
