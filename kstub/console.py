"""The live console: one self-contained page (kstub/console.html) and the snapshot it draws.

``GET /`` on the admin HTTP API serves the page; the page reads
``GET /v1/events`` (Server-Sent Events, kstub/console_live.py: this snapshot,
the events log and the rates, pushed on every change) and draws brokers, their
partition replicas, topics, groups and lag; its buttons call the admin API's
routes; its record browser ``GET /v1/topics/T/partitions/P/records``
(kstub/console_records.py). docs/console.md describes it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from kstub.protocol.consumer_protocol import PROTOCOL_TYPE, decode_assignment

if TYPE_CHECKING:
    from kstub.cluster.model import ClusterState

#: what the page is allowed to do: nothing from elsewhere, never inside another site's frame
PAGE_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
]


@cache
def page() -> bytes:
    return resources.files("kstub").joinpath("console.html").read_bytes()


def _assigned(protocol_type: str | None, assignment: bytes) -> list[list[Any]]:
    if protocol_type != PROTOCOL_TYPE or not assignment:
        return []
    try:
        decoded = decode_assignment(assignment)
    except Exception:  # a client's own protocol: shown without partitions
        return []
    return sorted([a.topic, p] for a in decoded.assigned_partitions for p in a.partitions)


def snapshot(cluster: ClusterState) -> dict[str, Any]:
    """The whole picture: brokers, partitions, groups (members, offsets, lag), faults, recent actions."""
    control = cluster.control
    described = control.describe_cluster()
    coordinated: dict[int, list[str]] = {}
    groups = []
    for group_id, group in sorted(cluster.groups.groups.items()):
        coordinator = cluster.groups.coordinator_for(group_id)
        if coordinator is not None:
            coordinated.setdefault(coordinator.node_id, []).append(group_id)
        offsets = []
        for (topic, index), committed in sorted(group.offsets.items()):
            p = cluster.partition(topic, index)
            hw = p.high_watermark if p is not None else None
            lag = None if hw is None else max(0, hw - committed.offset)
            offsets.append(
                {"topic": topic, "partition": index, "committed": committed.offset, "high_watermark": hw, "lag": lag}
            )
        groups.append(
            {
                "id": group_id,
                "state": group.state.value,
                "protocol_type": group.protocol_type,
                "protocol": group.protocol_name,
                "generation": group.generation_id,
                "coordinator": None if coordinator is None else coordinator.node_id,
                "members": [
                    {
                        "id": m.member_id,
                        "client_id": m.client_id,
                        "host": m.client_host,
                        "leader": m.member_id == group.leader_id,
                        "partitions": _assigned(group.protocol_type, m.assignment),
                    }
                    for m in group.members.values()
                ],
                "offsets": offsets,
                "lag": sum(o["lag"] or 0 for o in offsets),
            }
        )
    for broker in described["brokers"]:
        broker["coordinates"] = coordinated.get(broker["id"], [])
    topics = [
        {
            "name": name,
            "partitions": len(t.partitions),
            "replication_factor": t.replication_factor,
            "internal": name.startswith("__"),
            # the topic's own settings (CreateTopics / AlterConfigs): what differs from the broker's defaults
            "configs": dict(sorted(t.configs.items())),
            "log_start_offsets": [
                p.logs[p.leader].log_start_offset if p.leader in p.logs else None for p in t.partitions
            ],
            "high_watermarks": [p.high_watermark for p in t.partitions],
        }
        for name, t in sorted(cluster.topics.items())
    ]
    return {
        **described,
        "topics": topics,
        "partitions": control.describe_partitions(),
        "groups": groups,
        "faults": control.describe_faults(),
        "actions": list(control.actions)[-20:],
    }
