"""An idempotent producer's retried batch is stored once.

The broker appends the first produce and then loses its answer (the
connection closes, as when a reply is lost on the network). The real client
retries the same batch with the same producer id and sequence; kstub
recognises it, acknowledges it with the original offset and does not store it
again.
"""

from __future__ import annotations

import time

from kstub.protocol.records import iter_stored

from clients import ConfluentClient, KafkaPythonClient, make_messages, unique_topic

PRODUCE = 0


def _produce_with_lost_reply(kstub_cluster, send) -> tuple[str, int, int]:
    topic = unique_topic("idem")
    kstub_cluster.call(lambda: kstub_cluster.cluster.create_topic(topic, 1))
    kstub_cluster.call(lambda: kstub_cluster.cluster.control.drop_response(PRODUCE, 1))
    sent = send(topic)
    end = kstub_cluster.call(lambda: kstub_cluster.cluster.topics[topic].partitions[0].log_end_offset)
    return topic, sent, end


def test_kafka_python_retry_is_stored_once(kstub_cluster):
    from kafka import KafkaProducer

    def send(topic: str) -> int:
        producer = KafkaProducer(
            bootstrap_servers=kstub_cluster.bootstrap_servers,
            enable_idempotence=True,
            retries=5,
            request_timeout_ms=5000,
            retry_backoff_ms=50,
        )
        futures = [producer.send(topic, value=f"m{i}".encode(), partition=0) for i in range(20)]
        producer.flush(timeout=30)
        offsets = [f.get(timeout=30).offset for f in futures]
        producer.close()
        assert offsets == list(range(20)), "acknowledged once each, in order"
        return len(futures)

    topic, sent, end = _produce_with_lost_reply(kstub_cluster, send)
    assert end == sent, "the retried batch was not appended twice"
    got = KafkaPythonClient(kstub_cluster.bootstrap_servers).consume(topic, {0: 0}, sent)
    assert [m.value for m in got] == [f"m{i}".encode() for i in range(20)]


def test_confluent_retry_is_stored_once(kstub_cluster):
    from confluent_kafka import Producer

    def send(topic: str) -> int:
        producer = Producer(
            {
                "bootstrap.servers": kstub_cluster.bootstrap_servers,
                "enable.idempotence": True,
                "linger.ms": 20,
                "retry.backoff.ms": 50,
            }
        )
        delivered = []
        for i in range(20):
            producer.produce(
                topic,
                value=f"m{i}".encode(),
                partition=0,
                on_delivery=lambda err, msg: delivered.append((err, msg.offset())),
            )
        assert producer.flush(30) == 0
        assert all(err is None for err, _ in delivered), delivered
        assert sorted(o for _, o in delivered) == list(range(20))
        return len(delivered)

    topic, sent, end = _produce_with_lost_reply(kstub_cluster, send)
    assert end == sent
    got = ConfluentClient(kstub_cluster.bootstrap_servers).consume(topic, {0: 0}, sent)
    assert [m.value for m in got] == [f"m{i}".encode() for i in range(20)]


def test_without_idempotence_a_lost_reply_duplicates(kstub_cluster):
    """The other side of the trade-off, as on Kafka: a plain producer's retry is stored twice.

    This also shows the fault really fires: the dedup above is the broker's doing.
    """
    topic = unique_topic("dup")
    kstub_cluster.call(lambda: kstub_cluster.cluster.create_topic(topic, 1))
    kstub_cluster.call(lambda: kstub_cluster.cluster.control.drop_response(PRODUCE, 1))
    msgs = make_messages(5, int(time.time() * 1000))
    ConfluentClient(kstub_cluster.bootstrap_servers).produce(topic, msgs, partition=0)  # enable.idempotence=false

    def stored_batches() -> list[tuple[int, int, int]]:
        log = kstub_cluster.cluster.topics[topic].partitions[0].leader_log
        return [entry for chunk in log.read(0) for entry in iter_stored(chunk.data)]

    batches = kstub_cluster.call(stored_batches)
    assert [(first, last) for first, last, _ in batches] == [(0, 4), (5, 9)], "the same batch, twice"
    got = ConfluentClient(kstub_cluster.bootstrap_servers).consume(topic, {0: 0}, 10)
    assert [m.value for m in got] == [m.value for m in msgs] * 2
