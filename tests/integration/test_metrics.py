"""GET /metrics on the admin HTTP API, scraped as Prometheus does and parsed with prometheus_client's parser.

A real client (kafka-python) produces and consumes in a group; the scrape
must show what the cluster holds: the high watermarks, the ISR, the group's
members, state and lag. Request, byte and connection counters are checked
exactly with hand-made requests on a single broker.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

import pytest
from kafka import KafkaConsumer, KafkaProducer
from modern_group import BROKER_CONFIG, settled_group
from prometheus_client.parser import text_string_to_metric_families

from multibroker import create_topic, produce
from support.raw import RawClient
from support.raw_requests import batch

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=")
        text = resp.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name, frozenset(labels.items())]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name` over the samples carrying `labels` (and any others)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def eventually(url: str, check: Callable[[Samples], bool], timeout: float = 20.0) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        if check(samples):
            return samples
        assert time.monotonic() < deadline, "the metrics never showed it"
        time.sleep(0.05)


@pytest.mark.kstub(brokers=3, admin_port=0)
def test_metrics_follow_a_real_client(kstub_cluster):
    kc = kstub_cluster
    url = kc.admin_url
    create_topic(kc, "orders", 2, 3)
    producer = KafkaProducer(bootstrap_servers=kc.bootstrap_servers, acks="all")
    for i in range(30):
        producer.send("orders", value=b"v%d" % i, partition=i % 2)
    producer.flush()

    samples = scrape(url)
    assert value(samples, "kafka_brokers") == 3
    assert value(samples, "kafka_topic_partitions", topic="orders") == 2
    for p in ("0", "1"):
        assert value(samples, "kafka_topic_partition_current_offset", topic="orders", partition=p) == 15
        assert value(samples, "kafka_topic_partition_oldest_offset", topic="orders", partition=p) == 0
        assert value(samples, "kafka_topic_partition_in_sync_replica", topic="orders", partition=p) == 3
        assert value(samples, "kafka_topic_partition_under_replicated_partition", topic="orders", partition=p) == 0
        leader = kc.cluster.partition("orders", int(p)).leader
        assert value(samples, "kafka_topic_partition_leader", topic="orders", partition=p) == leader
    assert total(samples, "kstub_broker_requests_total", api="Produce", outcome="ok") >= 1
    assert total(samples, "kstub_broker_bytes_in_total") > 30 * 2
    assert total(samples, "kstub_broker_connections") >= 1
    assert sum(value(samples, "kafka_controller_kafkacontroller_activecontrollercount", broker=b) for b in "012") == 1
    # Kafka's BrokerTopicMetrics: the 30 records in, and their batches' bytes as the leaders stored them
    assert total(samples, "kafka_server_brokertopicmetrics_messagesin_total", topic="orders") == 30
    stored = kc.call(lambda: sum(p.logs[p.leader].size_bytes for p in kc.cluster.topics["orders"].partitions))
    assert total(samples, "kafka_server_brokertopicmetrics_bytesin_total", topic="orders") == stored
    # requests and their times per API: as many timed as counted, every quantile of real times
    produced = total(samples, "kafka_network_requestmetrics_requests_total", request="Produce")
    assert produced == total(samples, "kstub_broker_requests_total", api="Produce") >= 1
    assert total(samples, "kafka_network_requestmetrics_totaltimems_count", request="Produce") == produced
    assert total(samples, "kafka_network_requestmetrics_totaltimems_sum", request="Produce") > 0
    for b in "012":
        times = {
            dict(ls)["quantile"]: v
            for (n, ls), v in samples.items()
            if n == "kafka_network_requestmetrics_totaltimems" and ("broker", b) in ls and ("request", "Metadata") in ls
        }
        if times:
            assert list(times) == ["0.5", "0.75", "0.95", "0.98", "0.99", "0.999"]
            assert 0 < times["0.5"] <= times["0.99"] <= times["0.999"] < 30_000
    # connections as Kafka's socket server counts them
    for b in "012":
        assert value(samples, "kafka_server_socket_server_metrics_connection_count", broker=b) == value(
            samples, "kstub_broker_connections", broker=b
        )
    # acks=all: every replica has the 15 records of each partition
    eventually(
        url,
        lambda s: all(
            value(s, "kstub_replica_log_end_offset", topic="orders", partition=p, broker=b) == 15
            for p in "01"
            for b in "012"
        ),
    )

    consumer = KafkaConsumer(
        "orders",
        bootstrap_servers=kc.bootstrap_servers,
        group_id="readers",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        got = 0
        deadline = time.monotonic() + 30
        while got < 30 and time.monotonic() < deadline:
            got += sum(len(records) for records in consumer.poll(timeout_ms=500).values())
        assert got == 30
        consumer.commit()
        samples = scrape(url)
        assert value(samples, "kafka_consumergroup_members", consumergroup="readers") == 1
        assert value(samples, "kstub_consumergroup_state", consumergroup="readers", state="Stable") == 1
        assert value(samples, "kafka_consumergroup_lag_sum", consumergroup="readers") == 0
        for p in "01":
            assert (
                value(
                    samples, "kafka_consumergroup_current_offset", consumergroup="readers", topic="orders", partition=p
                )
                == 15
            )
        # five more on partition 1, not consumed: the lag shows them
        for _ in range(5):
            producer.send("orders", value=b"late", partition=1)
        producer.flush()
        samples = scrape(url)
        assert value(samples, "kafka_consumergroup_lag", consumergroup="readers", topic="orders", partition="1") == 5
        assert value(samples, "kafka_consumergroup_lag", consumergroup="readers", topic="orders", partition="0") == 0
        assert value(samples, "kafka_consumergroup_lag_sum", consumergroup="readers") == 5
        assert total(samples, "kstub_broker_requests_total", api="JoinGroup", outcome="ok") >= 1
        assert total(samples, "kstub_broker_requests_total", api="Fetch", outcome="ok") >= 1
        # the consumer fetched the 30 records' batches (at least once each)
        assert total(samples, "kafka_server_brokertopicmetrics_bytesout_total", topic="orders") >= stored
        assert total(samples, "kafka_server_brokertopicmetrics_messagesin_total", topic="orders") == 35
        # one group, on its coordinator
        coordinator = kc.call(lambda: kc.cluster.groups.coordinator_for("readers").node_id)
        for b in "012":
            groups = value(samples, "kafka_coordinator_group_groupmetadatamanager_numgroups", broker=b)
            assert groups == (1 if b == str(coordinator) else 0)
        assert value(samples, "kstub_consumergroup_type", consumergroup="readers", type="classic") == 1
    finally:
        consumer.close()
        producer.close()
    eventually(url, lambda s: value(s, "kafka_consumergroup_members", consumergroup="readers") == 0)

    # A broker stops: its replicas leave the ISR, the partitions are under-replicated.
    kc.control.stop_broker(2)
    samples = scrape(url)
    assert value(samples, "kstub_broker_state", broker="2", state="stopped") == 1
    for p in "01":
        assert value(samples, "kafka_topic_partition_in_sync_replica", topic="orders", partition=p) == 2
        assert value(samples, "kafka_topic_partition_under_replicated_partition", topic="orders", partition=p) == 1
        assert value(samples, "kstub_replica_in_sync", topic="orders", partition=p, broker="2") == 0


@pytest.mark.kstub(admin_port=0)
def test_request_byte_and_connection_counters_are_exact(kstub_cluster):
    kc = kstub_cluster
    url = kc.admin_url
    create_topic(kc, "counted", 1, 1)
    before = scrape(url)
    records = batch(1, value_size=100)
    with RawClient(kc.bootstrap_servers) as first, RawClient(kc.bootstrap_servers) as second:
        during = eventually(url, lambda s: value(s, "kstub_broker_connections", broker="0") == 2)
        accepted = value(during, "kstub_broker_connections_accepted_total", broker="0")
        assert accepted - value(before, "kstub_broker_connections_accepted_total", broker="0") == 2
        for _ in range(3):
            assert produce(first, "counted", records).error_code == 0
        kc.control.inject_error(22, "COORDINATOR_NOT_AVAILABLE", 1, None)
        answer = second.request(22, 0, {"transactional_id": None, "transaction_timeout_ms": 1000})
        assert answer.error_code != 0
        acks0 = {"acks": 0, "timeout_ms": 5000, "topic_data": [{"name": "counted", "partition_data": []}]}
        acks0["topic_data"][0]["partition_data"].append({"index": 0, "records": records})
        second.send(0, 9, acks0)  # no answer comes: the metrics tell when it was handled
        first.request(3, 12, {"topics": None})
        eventually(url, lambda s: total(s, "kstub_broker_requests_total", api="Produce", outcome="no_response") == 1)
    after = eventually(url, lambda s: value(s, "kstub_broker_connections", broker="0") == 0)

    def delta(api: str, outcome: str) -> float:
        key = {"broker": "0", "api": api, "outcome": outcome}
        return total(after, "kstub_broker_requests_total", **key) - total(before, "kstub_broker_requests_total", **key)

    assert (delta("Produce", "ok"), delta("Produce", "no_response"), delta("InitProducerId", "error")) == (3, 1, 1)
    assert delta("Metadata", "ok") == 1
    sent = value(after, "kstub_broker_bytes_in_total", broker="0") - value(
        before, "kstub_broker_bytes_in_total", broker="0"
    )
    assert sent > 4 * len(records), "four produce requests carried the batch"
    assert value(after, "kstub_broker_bytes_out_total", broker="0") > value(
        before, "kstub_broker_bytes_out_total", broker="0"
    )


def _per_broker(kc, count) -> dict[str, int]:
    """`count(partition)` summed per broker over the cluster's partitions (the model, read on its thread)."""

    def tally() -> dict[str, int]:
        out = {str(b): 0 for b in kc.cluster.brokers}
        for p in kc.cluster.iter_partitions():
            for b, n in count(p).items():
                out[str(b)] += n
        return out

    return kc.call(tally)


def _broker_metrics(samples: Samples, name: str) -> dict[str, int]:
    return {dict(ls)["broker"]: int(v) for (n, ls), v in samples.items() if n == name}


@pytest.mark.kstub(brokers=3, admin_port=0)
def test_partition_health_metrics_follow_a_broker_leaving_and_returning(kstub_cluster):
    """Under-replicated and offline partitions, ISR shrinks and expansions, leader and partition counts, the
    active controller: Kafka's broker metrics against the cluster's own state, before, during and after."""
    kc = kstub_cluster
    url = kc.admin_url
    create_topic(kc, "replicated", 3, 3)
    create_topic(kc, "lonely", 1, 1)
    lonely_leader = kc.call(lambda: kc.cluster.partition("lonely", 0).leader)
    producer = KafkaProducer(bootstrap_servers=kc.bootstrap_servers, acks="all")
    for i in range(9):
        producer.send("replicated", value=b"%d" % i, partition=i % 3)
    producer.flush()
    producer.close()

    def leaders(p) -> dict[int, int]:
        return {p.leader: 1} if p.leader >= 0 else {}

    def under(p) -> dict[int, int]:
        return {p.leader: 1} if p.leader >= 0 and len(p.isr) < len(p.replicas) else {}

    def check(samples: Samples) -> None:
        assert _broker_metrics(samples, "kafka_server_replicamanager_leadercount") == _per_broker(kc, leaders)
        assert _broker_metrics(samples, "kafka_server_replicamanager_underreplicatedpartitions") == _per_broker(
            kc, under
        )
        assert _broker_metrics(samples, "kafka_server_replicamanager_partitioncount") == _per_broker(
            kc, lambda p: dict.fromkeys(p.replicas, 1)
        )
        controller = str(kc.call(lambda: kc.cluster.controller_id))
        active = _broker_metrics(samples, "kafka_controller_kafkacontroller_activecontrollercount")
        assert active == {b: int(b == controller) for b in "012"}
        offline = kc.call(lambda: sum(1 for p in kc.cluster.iter_partitions() if p.leader < 0))
        assert _broker_metrics(samples, "kafka_controller_kafkacontroller_offlinepartitionscount") == {
            b: offline if b == controller else 0 for b in "012"
        }
        topics = kc.call(lambda: len(kc.cluster.topics))
        assert value(samples, "kafka_controller_kafkacontroller_globaltopiccount", broker=controller) == topics

    before = scrape(url)
    check(before)
    assert sum(_broker_metrics(before, "kafka_server_replicamanager_underreplicatedpartitions").values()) == 0
    assert sum(_broker_metrics(before, "kafka_controller_kafkacontroller_offlinepartitionscount").values()) == 0

    # The broker holding "lonely" stops: that partition is offline, the others lose a replica from their ISR.
    def shrinks_expected() -> int:  # partitions the victim follows in sync: their leaders shrink the ISR
        return sum(
            1
            for p in kc.cluster.iter_partitions()
            if p.leader >= 0 and p.leader != lonely_leader and lonely_leader in p.isr and len(p.isr) > 1
        )

    expected = kc.call(shrinks_expected)
    assert expected >= 1
    kc.control.stop_broker(lonely_leader)
    during = scrape(url)
    check(during)
    assert sum(_broker_metrics(during, "kafka_controller_kafkacontroller_offlinepartitionscount").values()) == 1
    assert value(during, "kafka_topic_partition_leader", topic="lonely", partition="0") == -1
    assert sum(_broker_metrics(during, "kafka_server_replicamanager_underreplicatedpartitions").values()) >= 3

    def delta(after: Samples, name: str) -> int:
        return sum(_broker_metrics(after, name).values()) - sum(_broker_metrics(before, name).values())

    assert delta(during, "kafka_server_replicamanager_isrshrinks_total") == expected
    assert delta(during, "kafka_server_replicamanager_isrexpands_total") == 0

    # It returns: back in every ISR (as many expansions as shrinks), nothing offline or under-replicated.
    kc.control.start_broker(lonely_leader)
    after = eventually(
        url,
        lambda s: (
            sum(_broker_metrics(s, "kafka_server_replicamanager_underreplicatedpartitions").values()) == 0
            and sum(_broker_metrics(s, "kafka_controller_kafkacontroller_offlinepartitionscount").values()) == 0
        ),
        timeout=60,
    )
    check(after)
    assert delta(after, "kafka_server_replicamanager_isrexpands_total") >= expected


@pytest.mark.kstub(brokers=3, admin_port=0, config=BROKER_CONFIG)
def test_consumer_groups_of_the_new_protocol_are_measured_as_classic_ones(kstub_cluster):
    """A KIP-848 group (confluent-kafka, group.protocol=consumer): its members, state, group epoch, each
    member's epoch, its committed offsets and lag, under the names a classic group's carry."""
    kc = kstub_cluster
    with settled_group(kc) as producer:
        for _ in range(3):
            producer.produce("flows", b"late", partition=3)
        producer.flush(30)
        samples = scrape(kc.admin_url)
        epoch, member_epochs = kc.call(
            lambda: (
                kc.cluster.groups.consumer.groups["modern"].group_epoch,
                {
                    (m.member_id, m.client_id): m.member_epoch
                    for m in kc.cluster.groups.consumer.groups["modern"].members.values()
                },
            )
        )
    assert value(samples, "kstub_consumergroup_type", consumergroup="modern", type="consumer") == 1
    assert total(samples, "kstub_consumergroup_type", consumergroup="modern") == 1, "one group, not two"
    assert value(samples, "kafka_consumergroup_members", consumergroup="modern") == 2
    assert value(samples, "kstub_consumergroup_state", consumergroup="modern", state="Stable") == 1
    assert value(samples, "kstub_consumergroup_generation", consumergroup="modern") == epoch
    for (member, client), member_epoch in member_epochs.items():
        labels = {"consumergroup": "modern", "member": member, "client_id": client}
        assert value(samples, "kstub_consumergroup_member_epoch", **labels) == member_epoch
    for p in "0123":
        labels = {"consumergroup": "modern", "topic": "flows", "partition": p}
        assert value(samples, "kafka_consumergroup_current_offset", **labels) == 2
        assert value(samples, "kafka_consumergroup_lag", **labels) == (3 if p == "3" else 0)
    assert value(samples, "kafka_consumergroup_lag_sum", consumergroup="modern") == 3
    assert total(samples, "kafka_coordinator_group_groupmetadatamanager_numgroups") == 1
    assert total(samples, "kafka_network_requestmetrics_requests_total", request="ConsumerGroupHeartbeat") >= 2
