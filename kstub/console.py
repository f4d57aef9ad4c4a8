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

from kstub.cluster.transactions.state import TxnState
from kstub.group_views import GroupView, group_views

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


def _group(cluster: ClusterState, view: GroupView, coordinator: int | None) -> dict[str, Any]:
    offsets = []
    for (topic, index), committed in sorted(view.offsets.items()):
        p = cluster.partition(topic, index)
        hw = p.high_watermark if p is not None else None
        lag = None if hw is None else max(0, hw - committed.offset)
        offsets.append(
            {"topic": topic, "partition": index, "committed": committed.offset, "high_watermark": hw, "lag": lag}
        )
    return {
        "id": view.group_id,
        "type": view.type,
        "state": view.state,
        "protocol_type": view.protocol_type,
        "protocol": view.protocol,
        "generation": view.generation,
        "assignment_epoch": view.assignment_epoch,
        "coordinator": coordinator,
        "members": [
            {
                "id": m.member_id,
                "client_id": m.client_id,
                "host": m.host,
                "instance_id": m.instance_id,
                "leader": m.leader,
                "partitions": [list(tp) for tp in m.partitions],
                "epoch": m.epoch,
                "state": m.state,
                "revoking": [list(tp) for tp in m.revoking],
                "target": None if m.target is None else [list(tp) for tp in m.target],
            }
            for m in view.members
        ],
        "offsets": offsets,
        "lag": sum(o["lag"] or 0 for o in offsets),
    }


def _transactions(cluster: ClusterState) -> list[dict[str, Any]]:
    """Transactions under way (begun and not yet complete), oldest first."""
    txns = cluster.transactions
    out = []
    for tid, txn in txns.txns.items():
        if txn.state.finished or txn.state is TxnState.DEAD:
            continue
        coordinator = txns.coordinator_for(tid)
        out.append(
            {
                "id": tid,
                "state": txn.state.value,
                "producer_id": txn.producer_id,
                "producer_epoch": txn.producer_epoch,
                "partitions": sorted([t, p] for t, p in txn.partitions),
                "start_ms": txn.start_ms,
                "timeout_ms": txn.timeout_ms,
                "coordinator": None if coordinator is None else coordinator.node_id,
            }
        )
    out.sort(key=lambda t: (t["start_ms"], t["id"]))
    return out


def snapshot(cluster: ClusterState) -> dict[str, Any]:
    """The whole picture: brokers, partitions, groups (members, offsets, lag), transactions, faults, actions."""
    control = cluster.control
    described = control.describe_cluster()
    coordinated: dict[int, list[str]] = {}
    groups = []
    for view in group_views(cluster):
        coordinator = cluster.groups.coordinator_for(view.group_id)
        if coordinator is not None:
            coordinated.setdefault(coordinator.node_id, []).append(view.group_id)
        groups.append(_group(cluster, view, None if coordinator is None else coordinator.node_id))
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
        "transactions": _transactions(cluster),
        "faults": control.describe_faults(),
        "actions": list(control.actions)[-20:],
    }
