"""Prometheus metrics of a running cluster: ``GET /metrics`` on the admin HTTP API.

Everything is computed when scraped, from the cluster model and the brokers'
traffic counters (kstub/cluster/stats.py), in two steps:

- `gather`, on the brokers' Trio thread (the model is touched only there):
  plain tuples of labels and values, one list per metric of `METRICS`;
- `render`, in a worker thread (``trio.to_thread``) so that the brokers keep
  serving meanwhile: prometheus_client's metric families from those tuples,
  in a registry of their own (no process metrics), written in Prometheus'
  text exposition format by prometheus_client.

The names follow what Kafka dashboards read: Kafka's own JMX metrics as the
Prometheus JMX exporter's Kafka rules name them (``kafka_server_*``,
``kafka_network_requestmetrics_*``, ``kafka_controller_*``,
``kafka_coordinator_*``; one process serves every broker, so each carries a
``broker`` label), kafka_exporter's for partitions and consumer groups
(``kafka_topic_partition_*``, ``kafka_consumergroup_*``), ``kstub_*`` for
what only kstub knows (per-replica offsets, request outcomes).
docs/metrics.md lists them.

prometheus_client is imported only when metrics are first asked for, so
``kstub serve`` starts as fast as without it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import trio

from kstub.group_views import group_views

if TYPE_CHECKING:
    from kstub.cluster.model import ClusterState

_B, _TP, _TPB, _G, _GTP = (
    ("broker",),
    ("topic", "partition"),
    ("topic", "partition", "broker"),
    ("consumergroup",),
    (
        "consumergroup",
        "topic",
        "partition",
    ),
)

#: name → (counter, gauge or summary, help, label names); counters are exposed with the suffix _total, summaries
#: as quantiles (0.5, 0.75, 0.95, 0.98, 0.99, 0.999 as the JMX exporter shows Kafka's histograms), _count and _sum
METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "kafka_brokers": ("gauge", "Number of brokers in the cluster", ()),
    "kstub_broker_state": ("gauge", "1 for the broker's state", ("broker", "state")),
    "kstub_broker_alive": ("gauge", "1 while the controller counts the broker alive", _B),
    "kafka_controller_kafkacontroller_activecontrollercount": ("gauge", "1 on the active controller", _B),
    "kstub_broker_requests": ("counter", "Requests by API and outcome", ("broker", "api", "outcome")),
    "kstub_broker_bytes_in": ("counter", "Bytes received from clients", _B),
    "kstub_broker_bytes_out": ("counter", "Bytes sent to clients", _B),
    "kstub_broker_connections": ("gauge", "Client connections open", _B),
    "kstub_broker_connections_accepted": ("counter", "Client connections accepted since start", _B),
    "kstub_broker_fetch_sessions": ("gauge", "Incremental fetch sessions the broker holds (KIP-227)", _B),
    "kstub_broker_fetch_sessions_evicted": ("counter", "Fetch sessions evicted to make room for new ones", _B),
    "kstub_broker_incremental_fetches": ("counter", "Incremental fetches served", _B),
    # Kafka's own JMX metrics, named as the Prometheus JMX exporter's Kafka rules (and Strimzi's) write them
    "kafka_server_brokertopicmetrics_messagesin": ("counter", "Records appended for producers", ("broker", "topic")),
    "kafka_server_brokertopicmetrics_bytesin": ("counter", "Bytes of record batches produced", ("broker", "topic")),
    "kafka_server_brokertopicmetrics_bytesout": ("counter", "Record bytes fetched by consumers", ("broker", "topic")),
    "kafka_network_requestmetrics_requests": ("counter", "Requests by API", ("broker", "request")),
    "kafka_network_requestmetrics_totaltimems": (
        "summary",
        "Request time in ms, received to answered (quantiles of the latest 1024)",
        ("broker", "request"),
    ),
    "kafka_server_replicamanager_partitioncount": ("gauge", "Partition replicas on the broker", _B),
    "kafka_server_replicamanager_leadercount": ("gauge", "Partitions the broker leads", _B),
    "kafka_server_replicamanager_underreplicatedpartitions": (
        "gauge",
        "Partitions the broker leads whose ISR is smaller than their replicas",
        _B,
    ),
    "kafka_server_replicamanager_isrshrinks": ("counter", "ISR shrinks of partitions the broker led", _B),
    "kafka_server_replicamanager_isrexpands": ("counter", "ISR expansions of partitions the broker led", _B),
    "kafka_controller_kafkacontroller_offlinepartitionscount": (
        "gauge",
        "Partitions without a leader (on the active controller)",
        _B,
    ),
    "kafka_controller_kafkacontroller_globalpartitioncount": ("gauge", "Partitions (on the active controller)", _B),
    "kafka_controller_kafkacontroller_globaltopiccount": ("gauge", "Topics (on the active controller)", _B),
    "kafka_coordinator_group_groupmetadatamanager_numgroups": ("gauge", "Groups the broker coordinates", _B),
    "kafka_server_socket_server_metrics_connection_count": ("gauge", "Client connections open", _B),
    "kafka_topic_partitions": ("gauge", "Number of partitions of the topic", ("topic",)),
    "kafka_topic_partition_current_offset": ("gauge", "High watermark: the offset consumers read up to", _TP),
    "kafka_topic_partition_oldest_offset": ("gauge", "The leader's log start offset", _TP),
    "kafka_topic_partition_leader": ("gauge", "The leader's broker id (-1: none)", _TP),
    "kafka_topic_partition_replicas": ("gauge", "Number of replicas", _TP),
    "kafka_topic_partition_in_sync_replica": ("gauge", "Number of in-sync replicas", _TP),
    "kafka_topic_partition_under_replicated_partition": ("gauge", "1 if the ISR is smaller than the replicas", _TP),
    "kafka_topic_partition_leader_is_preferred": ("gauge", "1 if the leader is the first replica", _TP),
    "kstub_partition_high_watermark": ("gauge", "The partition's high watermark", _TP),
    "kstub_partition_leader_epoch": ("gauge", "The partition's leader epoch", _TP),
    "kstub_replica_log_start_offset": ("gauge", "Each replica's log start offset", _TPB),
    "kstub_replica_log_end_offset": ("gauge", "Each replica's log end offset", _TPB),
    "kstub_replica_in_sync": ("gauge", "1 if the replica is in the ISR", _TPB),
    "kafka_consumergroup_members": ("gauge", "Members of the group", _G),
    "kstub_consumergroup_state": ("gauge", "1 for the group's state", ("consumergroup", "state")),
    "kstub_consumergroup_generation": ("gauge", "The group's generation (a consumer group's group epoch)", _G),
    "kstub_consumergroup_type": (
        "gauge",
        "1 for the group's type: classic or consumer (KIP-848)",
        ("consumergroup", "type"),
    ),
    "kstub_consumergroup_member_epoch": (
        "gauge",
        "A consumer group member's epoch (KIP-848)",
        ("consumergroup", "member", "client_id"),
    ),
    "kstub_transactions": ("gauge", "Transactional ids by state", ("state",)),
    "kafka_consumergroup_current_offset": ("gauge", "Committed offset", _GTP),
    "kafka_consumergroup_lag": ("gauge", "High watermark minus committed offset (never negative)", _GTP),
    "kafka_consumergroup_lag_sum": ("gauge", "Lag over all partitions", _G),
}

#: a summary's sample: (count, sum, the latest observations), in seconds (written in ms: Kafka's TotalTimeMs)
Summary = tuple[int, float, list[float]]
Samples = dict[str, list[tuple[tuple[str, ...], Any]]]
QUANTILES = (0.5, 0.75, 0.95, 0.98, 0.99, 0.999)


def gather(cluster: ClusterState) -> Samples:
    """Every metric's samples as plain tuples, read from the model (on its Trio thread)."""
    out: Samples = {name: [] for name in METRICS}
    runtime_state = {b["id"]: b["state"] for b in cluster.control.describe_cluster()["brokers"]}

    out["kafka_brokers"].append(((), len(cluster.brokers)))
    for node_id, broker in sorted(cluster.brokers.items()):
        b = (str(node_id),)
        state = runtime_state.get(node_id, "running" if broker.running else "stopped")
        out["kstub_broker_state"].append(((*b, state), 1))
        out["kstub_broker_alive"].append((b, 1 if broker.alive else 0))
        out["kafka_controller_kafkacontroller_activecontrollercount"].append(
            (b, 1 if node_id == cluster.controller_id else 0)
        )
        stats = broker.stats
        for (api, outcome), count in sorted(stats.requests.items()):
            out["kstub_broker_requests"].append(((*b, api, outcome), count))
        out["kstub_broker_bytes_in"].append((b, stats.bytes_in))
        out["kstub_broker_bytes_out"].append((b, stats.bytes_out))
        out["kstub_broker_connections"].append((b, stats.connections))
        out["kstub_broker_connections_accepted"].append((b, stats.connections_total))
        out["kafka_server_socket_server_metrics_connection_count"].append((b, stats.connections))
        for api, times in sorted(stats.times.items()):
            out["kafka_network_requestmetrics_requests"].append(((*b, api), times.count))
            out["kafka_network_requestmetrics_totaltimems"].append(
                ((*b, api), (times.count, times.total, list(times.recent)))  # seconds; ms when written
            )
        for topic_name, (messages_in, bytes_in, bytes_out) in sorted(stats.topics.items()):
            bt = (*b, topic_name)
            out["kafka_server_brokertopicmetrics_messagesin"].append((bt, messages_in))
            out["kafka_server_brokertopicmetrics_bytesin"].append((bt, bytes_in))
            out["kafka_server_brokertopicmetrics_bytesout"].append((bt, bytes_out))
        out["kafka_server_replicamanager_isrshrinks"].append((b, stats.isr_shrinks))
        out["kafka_server_replicamanager_isrexpands"].append((b, stats.isr_expands))
        sessions = broker.fetch_sessions
        out["kstub_broker_fetch_sessions"].append((b, len(sessions)))
        out["kstub_broker_fetch_sessions_evicted"].append((b, sessions.evictions))
        out["kstub_broker_incremental_fetches"].append((b, sessions.incremental_fetches))

    for name, topic in sorted(cluster.topics.items()):
        out["kafka_topic_partitions"].append(((name,), len(topic.partitions)))
    current, oldest = out["kafka_topic_partition_current_offset"], out["kafka_topic_partition_oldest_offset"]
    leader, epoch = out["kafka_topic_partition_leader"], out["kstub_partition_leader_epoch"]
    replicas, isr = out["kafka_topic_partition_replicas"], out["kafka_topic_partition_in_sync_replica"]
    under, preferred = (
        out["kafka_topic_partition_under_replicated_partition"],
        out["kafka_topic_partition_leader_is_preferred"],
    )
    hw, log_start, log_end = (
        out["kstub_partition_high_watermark"],
        out["kstub_replica_log_start_offset"],
        out["kstub_replica_log_end_offset"],
    )
    in_sync = out["kstub_replica_in_sync"]
    replica_count = dict.fromkeys(cluster.brokers, 0)
    leader_count = dict.fromkeys(cluster.brokers, 0)
    under_count = dict.fromkeys(cluster.brokers, 0)
    partition_count = offline = 0
    for p in cluster.iter_partitions():
        partition_count += 1
        if p.leader < 0:
            offline += 1
        elif p.leader in leader_count:
            leader_count[p.leader] += 1
            if len(p.isr) < len(p.replicas):
                under_count[p.leader] += 1
        for r in p.replicas:
            if r in replica_count:
                replica_count[r] += 1
        tp = (p.topic.name, str(p.index))
        leader_log = p.logs.get(p.leader)
        current.append((tp, p.high_watermark))
        hw.append((tp, p.high_watermark))
        oldest.append((tp, leader_log.log_start_offset if leader_log is not None else 0))
        leader.append((tp, p.leader))
        epoch.append((tp, p.leader_epoch))
        replicas.append((tp, len(p.replicas)))
        isr.append((tp, len(p.isr)))
        under.append((tp, 1 if len(p.isr) < len(p.replicas) else 0))
        preferred.append((tp, 1 if p.replicas and p.leader == p.replicas[0] else 0))
        for r in p.replicas:
            log = p.logs.get(r)
            if log is not None:
                tpb = (*tp, str(r))
                log_start.append((tpb, log.log_start_offset))
                log_end.append((tpb, log.log_end_offset))
                in_sync.append((tpb, 1 if r in p.isr else 0))

    for node_id in sorted(cluster.brokers):
        b = (str(node_id),)
        out["kafka_server_replicamanager_partitioncount"].append((b, replica_count[node_id]))
        out["kafka_server_replicamanager_leadercount"].append((b, leader_count[node_id]))
        out["kafka_server_replicamanager_underreplicatedpartitions"].append((b, under_count[node_id]))
        active = node_id == cluster.controller_id
        out["kafka_controller_kafkacontroller_offlinepartitionscount"].append((b, offline if active else 0))
        out["kafka_controller_kafkacontroller_globalpartitioncount"].append((b, partition_count if active else 0))
        out["kafka_controller_kafkacontroller_globaltopiccount"].append((b, len(cluster.topics) if active else 0))

    views = group_views(cluster)
    coordinated = dict.fromkeys(cluster.brokers, 0)
    for view in views:
        coordinator = cluster.groups.coordinator_for(view.group_id)
        if coordinator is not None and coordinator.node_id in coordinated:
            coordinated[coordinator.node_id] += 1
    for node_id, count in sorted(coordinated.items()):
        out["kafka_coordinator_group_groupmetadatamanager_numgroups"].append(((str(node_id),), count))
    txn_states: dict[str, int] = {}
    for txn in cluster.transactions.txns.values():
        txn_states[txn.state.value] = txn_states.get(txn.state.value, 0) + 1
    for state_name, count in sorted(txn_states.items()):
        out["kstub_transactions"].append(((state_name,), count))

    committed, lag = out["kafka_consumergroup_current_offset"], out["kafka_consumergroup_lag"]
    for view in views:
        group_id = view.group_id
        g = (group_id,)
        out["kafka_consumergroup_members"].append((g, len(view.members)))
        out["kstub_consumergroup_state"].append(((group_id, view.state), 1))
        out["kstub_consumergroup_generation"].append((g, view.generation))
        out["kstub_consumergroup_type"].append(((group_id, view.type), 1))
        for m in view.members:
            if m.epoch is not None:
                out["kstub_consumergroup_member_epoch"].append(((group_id, m.member_id, m.client_id), m.epoch))
        lag_sum = 0
        for (topic, index), offset in sorted(view.offsets.items()):
            labels = (group_id, topic, str(index))
            committed.append((labels, offset.offset))
            p = cluster.partition(topic, index)
            if p is not None:
                behind = max(0, p.high_watermark - offset.offset)
                lag_sum += behind
                lag.append((labels, behind))
        out["kafka_consumergroup_lag_sum"].append((g, lag_sum))
    return out


def _quantile(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted observations (nearest rank), NaN without any (as Prometheus' summaries)."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _summary(name: str, text: str, labels: tuple[str, ...], samples: list[tuple[tuple[str, ...], Any]]) -> Any:
    from prometheus_client.core import Metric

    family = Metric(name, text, "summary")
    for values, (count, total, recent) in samples:
        named = dict(zip(labels, values, strict=True))
        ordered = sorted(recent)
        for q in QUANTILES:
            family.add_sample(name, {**named, "quantile": str(q)}, _quantile(ordered, q) * 1000)
        family.add_sample(name + "_count", named, count)
        family.add_sample(name + "_sum", named, total * 1000)
    return family


def _families(samples: Samples) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    for name, (kind, text, labels) in METRICS.items():
        if kind == "summary":
            yield _summary(name, text, labels, samples[name])
            continue
        family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(name, text, labels=labels)
        for values, value in samples[name]:
            family.add_metric(values, value)
        yield family


def render(samples: Samples) -> tuple[bytes, str]:
    """`samples` in Prometheus' text format, and its content type (thread-safe: touches no model)."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    class Collector:
        def collect(self) -> Iterator[Any]:
            return _families(samples)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST


async def exposition(cluster: ClusterState) -> tuple[bytes, str]:
    """The cluster's metrics: gathered here, on the model's thread; written in a worker thread."""
    samples = gather(cluster)
    return await trio.to_thread.run_sync(render, samples)
