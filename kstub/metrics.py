"""Prometheus metrics of a running cluster: ``GET /metrics`` on the admin HTTP API.

Everything is computed when scraped, from the cluster model and the brokers'
traffic counters (kstub/cluster/stats.py), by a prometheus_client collector
in a registry of its own (no process metrics, one cluster per registry), and
written in Prometheus' text exposition format by prometheus_client. The
names follow what Kafka dashboards read: kafka_exporter's for partitions and
consumer groups (``kafka_topic_partition_*``, ``kafka_consumergroup_*``),
``kstub_*`` for what only kstub knows (per-replica offsets, request
outcomes). docs/metrics.md lists them.

prometheus_client is imported only when metrics are first asked for, so
``kstub serve`` starts as fast as without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kstub.cluster.model import Cluster


def _families(cluster: Cluster) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    control = cluster.control
    runtime_state = {b["id"]: b["state"] for b in control.describe_cluster()["brokers"]}

    # --- brokers ---------------------------------------------------------------------
    brokers = GaugeMetricFamily("kafka_brokers", "Number of brokers in the cluster")
    brokers.add_metric([], len(cluster.brokers))
    yield brokers
    state = GaugeMetricFamily("kstub_broker_state", "1 for the broker's state", labels=["broker", "state"])
    alive = GaugeMetricFamily("kstub_broker_alive", "1 if the controller counts the broker alive", labels=["broker"])
    controller = GaugeMetricFamily(
        "kafka_controller_kafkacontroller_activecontrollercount",
        "1 on the broker that is the active controller",
        labels=["broker"],
    )
    requests = CounterMetricFamily(
        "kstub_broker_requests", "Requests by API and outcome", labels=["broker", "api", "outcome"]
    )
    bytes_in = CounterMetricFamily("kstub_broker_bytes_in", "Bytes received from clients", labels=["broker"])
    bytes_out = CounterMetricFamily("kstub_broker_bytes_out", "Bytes sent to clients", labels=["broker"])
    connections = GaugeMetricFamily("kstub_broker_connections", "Client connections open", labels=["broker"])
    accepted = CounterMetricFamily(
        "kstub_broker_connections_accepted", "Client connections accepted since start", labels=["broker"]
    )
    for node_id, broker in sorted(cluster.brokers.items()):
        b = str(node_id)
        state.add_metric([b, runtime_state.get(node_id, "running" if broker.running else "stopped")], 1)
        alive.add_metric([b], 1 if broker.alive else 0)
        controller.add_metric([b], 1 if node_id == cluster.controller_id else 0)
        stats = broker.stats
        for (api, outcome), count in sorted(stats.requests.items()):
            requests.add_metric([b, api, outcome], count)
        bytes_in.add_metric([b], stats.bytes_in)
        bytes_out.add_metric([b], stats.bytes_out)
        connections.add_metric([b], stats.connections)
        accepted.add_metric([b], stats.connections_total)
    yield from (state, alive, controller, requests, bytes_in, bytes_out, connections, accepted)

    # --- partitions ----------------------------------------------------------------
    tp = ["topic", "partition"]
    partitions = GaugeMetricFamily("kafka_topic_partitions", "Number of partitions of the topic", labels=["topic"])
    current = GaugeMetricFamily(
        "kafka_topic_partition_current_offset", "High watermark: the offset consumers read up to", labels=tp
    )
    oldest = GaugeMetricFamily("kafka_topic_partition_oldest_offset", "The leader's log start offset", labels=tp)
    leader = GaugeMetricFamily("kafka_topic_partition_leader", "The leader's broker id (-1: none)", labels=tp)
    epoch = GaugeMetricFamily("kstub_partition_leader_epoch", "The partition's leader epoch", labels=tp)
    replicas = GaugeMetricFamily("kafka_topic_partition_replicas", "Number of replicas", labels=tp)
    isr = GaugeMetricFamily("kafka_topic_partition_in_sync_replica", "Number of in-sync replicas", labels=tp)
    under = GaugeMetricFamily(
        "kafka_topic_partition_under_replicated_partition", "1 if the ISR is smaller than the replicas", labels=tp
    )
    preferred = GaugeMetricFamily(
        "kafka_topic_partition_leader_is_preferred", "1 if the leader is the first replica", labels=tp
    )
    hw = GaugeMetricFamily("kstub_partition_high_watermark", "The partition's high watermark", labels=tp)
    trp = [*tp, "broker"]
    log_start = GaugeMetricFamily("kstub_replica_log_start_offset", "Each replica's log start offset", labels=trp)
    log_end = GaugeMetricFamily("kstub_replica_log_end_offset", "Each replica's log end offset", labels=trp)
    in_sync = GaugeMetricFamily("kstub_replica_in_sync", "1 if the replica is in the ISR", labels=trp)
    for name, topic in sorted(cluster.topics.items()):
        partitions.add_metric([name], len(topic.partitions))
    for p in cluster.iter_partitions():
        labels = [p.topic.name, str(p.index)]
        leader_log = p.logs.get(p.leader)
        current.add_metric(labels, p.high_watermark)
        hw.add_metric(labels, p.high_watermark)
        oldest.add_metric(labels, leader_log.log_start_offset if leader_log is not None else 0)
        leader.add_metric(labels, p.leader)
        epoch.add_metric(labels, p.leader_epoch)
        replicas.add_metric(labels, len(p.replicas))
        isr.add_metric(labels, len(p.isr))
        under.add_metric(labels, 1 if len(p.isr) < len(p.replicas) else 0)
        preferred.add_metric(labels, 1 if p.replicas and p.leader == p.replicas[0] else 0)
        for r in p.replicas:
            log = p.logs.get(r)
            if log is None:
                continue
            log_start.add_metric([*labels, str(r)], log.log_start_offset)
            log_end.add_metric([*labels, str(r)], log.log_end_offset)
            in_sync.add_metric([*labels, str(r)], 1 if r in p.isr else 0)
    yield from (partitions, current, oldest, leader, epoch, replicas, isr, under, preferred, hw)
    yield from (log_start, log_end, in_sync)

    # --- consumer groups ---------------------------------------------------------------
    g = ["consumergroup"]
    members = GaugeMetricFamily("kafka_consumergroup_members", "Members of the group", labels=g)
    group_state = GaugeMetricFamily("kstub_consumergroup_state", "1 for the group's state", labels=[*g, "state"])
    generation = GaugeMetricFamily("kstub_consumergroup_generation", "The group's generation", labels=g)
    gtp = [*g, "topic", "partition"]
    committed = GaugeMetricFamily("kafka_consumergroup_current_offset", "Committed offset", labels=gtp)
    lag = GaugeMetricFamily(
        "kafka_consumergroup_lag", "High watermark minus committed offset (never negative)", labels=gtp
    )
    total_lag = GaugeMetricFamily("kafka_consumergroup_lag_sum", "Lag over all partitions", labels=g)
    for group_id, group in sorted(cluster.groups.groups.items()):
        members.add_metric([group_id], len(group.members))
        group_state.add_metric([group_id, group.state.value], 1)
        generation.add_metric([group_id], group.generation_id)
        lag_sum = 0
        for (topic, index), offset in sorted(group.offsets.items()):
            p = cluster.partition(topic, index)
            committed.add_metric([group_id, topic, str(index)], offset.offset)
            if p is not None:
                behind = max(0, p.high_watermark - offset.offset)
                lag_sum += behind
                lag.add_metric([group_id, topic, str(index)], behind)
        total_lag.add_metric([group_id], lag_sum)
    yield from (members, group_state, generation, committed, lag, total_lag)


class ClusterCollector:
    """A prometheus_client collector reading `cluster` at every scrape."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def collect(self) -> Iterator[Any]:
        return _families(self.cluster)


def exposition(cluster: Cluster) -> tuple[bytes, str]:
    """The cluster's metrics in Prometheus' text format, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)  # a fresh one costs nothing; the collector does the work
    registry.register(ClusterCollector(cluster))  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST
