"""kafka-transactions describe-producers against kstub, which serves DescribeProducers (61).

The tool asks the partition's leader (or the broker given with --broker-id)
and prints one line per producer: id, epoch, last sequence, last timestamp,
coordinator epoch, and the first offset of its open transaction (None: none).
"""

from __future__ import annotations

import pytest

from kstub.cluster.txn_markers import write_marker
from kstub.embedded import EmbeddedCluster
from kstub.kafka_client import BrokerConnection
from kstub.protocol.records.control import Marker

from support.batches import batch
from support.kafka_tools import tool, unique


def _producers(bootstrap: str, topic: str, *extra: str) -> dict[str, list[str]]:
    out = tool(
        "kafka-transactions", "--bootstrap-server", bootstrap, "describe-producers", "--topic", topic,
        "--partition", "0", *extra,
    ).stdout  # fmt: skip
    lines = [line.split() for line in out.splitlines() if line.strip()]
    assert lines[0][:2] == ["ProducerId", "ProducerEpoch"], out
    return {row[0]: row for row in lines[1:]}


def _produce(bootstrap: str, topic: str, records: bytes, transactional_id: str | None) -> None:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    conn = BrokerConnection(host, int(port), "test", 10.0)
    try:
        body = {
            "transactional_id": transactional_id,
            "acks": -1,
            "timeout_ms": 10000,
            "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": records}]}],
        }
        answer = conn.request(0, body, version=11)  # v12 would add the partition to a coordinator's transaction
        assert answer.responses[0].partition_responses[0].error_code == 0, answer
    finally:
        conn.close()


# the transactional batch is written by hand, without a coordinator: the leader must not verify it (KIP-890)
@pytest.mark.kafka_cluster(config={"transaction.partition.verification.enable": False})
def test_describe_producers(kstub_cluster: EmbeddedCluster) -> None:
    bootstrap = kstub_cluster.bootstrap_servers
    topic = unique("producers")
    tool("kafka-topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic, "--partitions", "1")
    _produce(bootstrap, topic, batch(3, producer_id=4242, epoch=1, sequence=0, transactional=True), "tx")
    _produce(bootstrap, topic, batch(2, producer_id=4343, epoch=0, sequence=0), None)
    rows = _producers(bootstrap, topic)
    # ProducerId ProducerEpoch LatestCoordinatorEpoch LastSequence LastTimestamp CurrentTransactionStartOffset
    assert set(rows) == {"4242", "4343"}
    assert (rows["4242"][1], rows["4242"][2], rows["4242"][3], rows["4242"][5]) == ("1", "-1", "2", "0")
    assert (rows["4343"][1], rows["4343"][3], rows["4343"][5]) == ("0", "1", "None")

    kstub_cluster.call_async(write_marker, kstub_cluster.state, topic, 0, Marker(4242, 1, True, 3))
    rows = _producers(bootstrap, topic, "--broker-id", "0")
    assert (rows["4242"][2], rows["4242"][5]) == ("3", "None")
