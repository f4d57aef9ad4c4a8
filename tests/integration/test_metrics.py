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
