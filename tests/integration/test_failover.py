"""A leader dies while real producers send: what Kafka promises, and what it does not.

With three brokers and replication factor 3, a partition leader is killed
while kafka-python and confluent-kafka producers send with acks=all and
idempotence. Every message they were told was acknowledged is read back
afterwards, once, at the offset it was acknowledged with: the clients found
the new leader by themselves. Then the same with acks=1 and a paused
follower: messages acknowledged by the old leader alone are truncated away
when it returns as a follower, which is Kafka's documented trade-off.
Metadata, ISR and leader epochs are checked over the wire at each step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from kstub.protocol import ErrorCode

from clients import ConfluentClient, KafkaPythonClient, unique_topic
from multibroker import bootstrap_of, create_topic, partition_state, wait_until
from support.raw import RawClient

N = 600
CONFIG = {"broker.session.timeout.ms": "1000", "replica.lag.time.max.ms": "10000"}


def metadata(kc, topic: str):
    """Metadata v12 over the wire, from any live broker."""
    live = kc.call(lambda: [(b.advertised_host, b.port) for b in kc.cluster.live_brokers()])
    host, port = live[0]
    with RawClient(f"{host}:{port}") as c:
        return c.request(3, 12, {"topics": [{"name": topic}], "allow_auto_topic_creation": False})


def wire_partition(kc, topic: str, index: int = 0):
    body = metadata(kc, topic)
    (p,) = [p for p in body.topics[0].partitions if p.partition_index == index]
    return body, p


# --- producers in a thread, recording what was acknowledged --------------------------


class Sent:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: dict[bytes, tuple[int, int, float]] = {}  # value -> (partition, offset, when)
        self.failed: list[object] = []
        self.done = threading.Event()

    def ack(self, value: bytes, partition: int, offset: int) -> None:
        with self.lock:
            assert value not in self.acked, f"{value!r} acknowledged twice"
            self.acked[value] = (partition, offset, time.monotonic())

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


def kafka_python_sender(bootstrap: str, topic: str, sent: Sent, acks: int | str, idempotent: bool) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks=acks,
        enable_idempotence=idempotent,
        linger_ms=2,
        retry_backoff_ms=50,
        request_timeout_ms=5000,
        metadata_max_age_ms=5000,
    )
    try:
        for i in range(N):
            value = f"m-{i}".encode()
            fut = producer.send(topic, value=value, partition=0)
            fut.add_callback(lambda md, v=value: sent.ack(v, md.partition, md.offset))
            fut.add_errback(lambda exc, v=value: sent.failed.append((v, exc)))
            time.sleep(0.002)
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=5)
        sent.done.set()


def confluent_sender(bootstrap: str, topic: str, sent: Sent, acks: int | str, idempotent: bool) -> None:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": str(acks),
            "enable.idempotence": idempotent,
            "linger.ms": 2,
            "retry.backoff.ms": 50,
            "topic.metadata.refresh.interval.ms": 5000,
        }
    )

    def delivered(err, msg) -> None:
        if err is not None:
            sent.failed.append((msg.value(), err))
        else:
            sent.ack(msg.value(), msg.partition(), msg.offset())

    try:
        for i in range(N):
            producer.produce(topic, value=f"m-{i}".encode(), partition=0, on_delivery=delivered)
            producer.poll(0)
            time.sleep(0.002)
        assert producer.flush(60) == 0
    finally:
        sent.done.set()


SENDERS: dict[str, Callable[..., None]] = {"kafka-python": kafka_python_sender, "confluent-kafka": confluent_sender}
READERS = {"kafka-python": KafkaPythonClient, "confluent-kafka": ConfluentClient}


def start_sender(name: str, kc, topic: str, acks, idempotent: bool) -> tuple[Sent, threading.Thread]:
    sent = Sent()
    thread = threading.Thread(
        target=SENDERS[name], args=(kc.bootstrap_servers, topic, sent, acks, idempotent), daemon=True
    )
    thread.start()
    return sent, thread


def read_back(name: str, kc, topic: str, expected: int) -> list[tuple[bytes, int]]:
    got = READERS[name](kc.bootstrap_servers).consume(topic, {0: 0}, expected)
    return [(m.value, m.offset) for m in got]


# --- acks=all and idempotence: nothing acknowledged is lost ----------------------------


@pytest.mark.kstub(brokers=3, config=CONFIG)
@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_killing_the_leader_loses_no_acknowledged_message(kstub_cluster, client):
    kc = kstub_cluster
    topic = unique_topic("failover")
    create_topic(kc, topic, 1, 3, min_insync_replicas="2")
    before = partition_state(kc, topic)
    assert (before["leader_epoch"], sorted(before["isr"])) == (0, [0, 1, 2])
    old_leader = before["leader"]
    _, wire = wire_partition(kc, topic)
    assert (wire.leader_id, wire.leader_epoch, sorted(wire.isr_nodes)) == (old_leader, 0, [0, 1, 2])

    followers = [r for r in before["replicas"] if r != old_leader]
    sent, thread = start_sender(client, kc, topic, "all", idempotent=True)
    wait_until(kc, lambda: sent.count() >= N // 4, what="a quarter of the messages acknowledged")
    # Make the kill hurt: the followers stop copying, so the leader holds appended batches
    # that are not committed, with acks=all requests waiting for them.
    for f in followers:
        kc.control.pause_replication(f)
    p = kc.call(lambda: kc.cluster.partition(topic, 0))
    wait_until(kc, lambda: p.log_end_offset > p.high_watermark, what="uncommitted data on the leader")
    killed_at = time.monotonic()
    kc.control.kill_broker(old_leader)
    uncommitted = kc.call(lambda: (p.high_watermark, p.logs[old_leader].log_end_offset))
    for f in followers:
        kc.control.resume_replication(f)
    assert sent.done.wait(90), "the producer did not finish"
    thread.join(5)
    assert not sent.failed, sent.failed[:3]
    assert sent.count() == N

    # The controller elected a new leader from the ISR, in epoch 1, without the dead broker.
    after = partition_state(kc, topic)
    assert after["leader"] not in (-1, old_leader)
    assert after["leader_epoch"] == 1
    assert sorted(after["isr"]) == sorted(set(before["isr"]) - {old_leader})
    body, wire = wire_partition(kc, topic)
    assert (wire.leader_id, wire.leader_epoch) == (after["leader"], 1)
    assert sorted(wire.isr_nodes) == sorted(after["isr"])
    assert wire.offline_replicas == [old_leader]
    assert old_leader not in [b.node_id for b in body.brokers]

    # Messages kept being acknowledged after the kill: the client found the new leader itself.
    with sent.lock:
        late = [v for v, (_, _, when) in sent.acked.items() if when > killed_at]
    assert late, "nothing acknowledged after the kill"

    # Every acknowledged message is there once, at the offset it was acknowledged with.
    got = read_back(client, kc, topic, N)
    values = [v for v, _ in got]
    assert len(values) == len(set(values)), "duplicates"
    assert {v: o for v, o in got} == {v: o for v, (_, o, _) in sent.acked.items()}
    assert after["high_watermark"] == N

    # The old leader comes back as a follower: it truncates the batches only it had (the producer
    # sent them again to the new leader), catches up and rejoins the ISR; epochs unchanged.
    kc.control.start_broker(old_leader)
    wait_until(kc, lambda: old_leader in kc.cluster.partition(topic, 0).isr, what="the old leader back in the ISR")
    back = partition_state(kc, topic)
    assert (back["leader"], back["leader_epoch"]) == (after["leader"], 1)
    assert back["leo"][old_leader] == N

    def replica_logs(broker: int):
        log = p.logs[broker]
        return [bytes(c.data) for c in log.read(0)], log.epochs

    new_data, new_epochs = kc.call(replica_logs, after["leader"])
    old_data, old_epochs = kc.call(replica_logs, old_leader)
    assert old_data == new_data, "the returning replica holds exactly the leader's batches"
    hw_at_kill, leo_at_kill = uncommitted
    assert leo_at_kill > hw_at_kill, "the old leader had uncommitted batches when it died"
    assert old_epochs == new_epochs == [(0, 0), (1, hw_at_kill)]
    _, wire = wire_partition(kc, topic)
    assert sorted(wire.isr_nodes) == [0, 1, 2] and wire.offline_replicas == []

    # Preferred leader election gives it its leadership back, in epoch 2.
    assert kc.control.elect_preferred_leaders() == [f"{topic}-0"]
    _, wire = wire_partition(kc, topic)
    assert (wire.leader_id, wire.leader_epoch) == (old_leader, 2)


# --- acks=1: what the old leader alone had is lost -------------------------------------


@pytest.mark.kstub(brokers=3, config=CONFIG)
@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_acks_1_messages_the_followers_lacked_are_truncated_on_failover(kstub_cluster, client):
    kc = kstub_cluster
    topic = unique_topic("acks1")
    create_topic(kc, topic, 1, 3)
    state = partition_state(kc, topic)
    leader, next_in_line, last = state["replicas"]

    # The follower next in line for leadership stops replicating; it stays in the ISR
    # (replica.lag.time.max.ms is 10 s), so the high watermark stops.
    kc.control.pause_replication(next_in_line)
    sent, thread = start_sender(client, kc, topic, 1, idempotent=False)
    assert sent.done.wait(60)
    thread.join(5)
    assert not sent.failed and sent.count() == N, "acks=1: the leader alone acknowledged everything"
    # the other follower replicates on its own time: wait until it has all (acks=1 did not wait for it)
    wait_until(kc, lambda: kc.cluster.partition(topic, 0).logs[last].log_end_offset == N, what="the follower's copy")
    state = partition_state(kc, topic)
    assert state["leo"] == {leader: N, next_in_line: 0, last: N}
    assert state["high_watermark"] == 0 and sorted(state["isr"]) == [0, 1, 2]

    # The leader dies; the controller elects the next ISR member, which has nothing.
    kc.control.kill_broker(leader)
    wait_until(kc, lambda: kc.cluster.partition(topic, 0).leader == next_in_line, what="new leader")
    kc.control.resume_replication(next_in_line)
    # The other follower truncates what the new leader does not have, and so does the old leader on return.
    wait_until(kc, lambda: kc.cluster.partition(topic, 0).logs[last].log_end_offset == 0, what="truncation")
    kc.control.start_broker(leader)
    wait_until(kc, lambda: len(kc.cluster.partition(topic, 0).isr) == 3, what="full ISR")
    state = partition_state(kc, topic)
    assert state["leo"] == {leader: 0, next_in_line: 0, last: 0}
    assert (state["leader"], state["leader_epoch"], state["high_watermark"]) == (next_in_line, 1, 0)

    # New data goes on at offset 0: the acknowledged messages are gone for good.
    KafkaPythonClient(kc.bootstrap_servers).produce(topic, [_msg(b"after")], acks=1, partition=0)
    got = read_back(client, kc, topic, 1)
    assert got == [(b"after", 0)]


def _msg(value: bytes):
    from clients import Msg

    return Msg(None, value)


# --- min.insync.replicas ---------------------------------------------------------------


@pytest.mark.kstub(brokers=3, config=CONFIG)
def test_min_insync_with_two_brokers_stopped(kstub_cluster):
    kc = kstub_cluster
    topic = unique_topic("minisr")
    create_topic(kc, topic, 1, 3, min_insync_replicas="2")
    leader = partition_state(kc, topic)["leader"]
    others = [b for b in (0, 1, 2) if b != leader]
    for b in others:
        kc.control.stop_broker(b)
    state = partition_state(kc, topic)
    assert (state["leader"], state["isr"], state["leader_epoch"]) == (leader, [leader], 0)
    _, wire = wire_partition(kc, topic)
    assert wire.isr_nodes == [leader] and sorted(wire.offline_replicas) == others

    from kafka import KafkaProducer
    from kafka.errors import NotEnoughReplicasError

    # Clients bootstrap from the live broker: what is under test is min.insync, not bootstrapping
    # past stopped brokers (kafka-python 3.0 can give up on those under load).
    live = bootstrap_of(kc, leader)
    # kafka-python: acks=all is refused (retried until it gives up), acks=1 succeeds.
    producer = KafkaProducer(
        bootstrap_servers=live, acks="all", retries=1, retry_backoff_ms=10, enable_idempotence=False
    )
    with pytest.raises(NotEnoughReplicasError):
        producer.send(topic, b"all", partition=0).get(timeout=30)
    producer.close()
    producer = KafkaProducer(bootstrap_servers=live, acks=1)
    assert producer.send(topic, b"one", partition=0).get(timeout=30).offset == 0
    producer.close()

    # confluent-kafka: the same.
    from confluent_kafka import KafkaError, Producer

    results = []
    for acks in ("all", "1"):
        # no retries: librdkafka would retry this retriable error until its message timeout
        p = Producer({"bootstrap.servers": live, "acks": acks, "retries": 0})
        p.produce(topic, b"c-" + acks.encode(), partition=0, on_delivery=lambda err, msg: results.append(err))
        p.flush(30)
    assert results[0] is not None and results[0].code() == KafkaError.NOT_ENOUGH_REPLICAS
    assert results[1] is None

    # Over the wire, exactly.
    from support.raw_requests import batch, produce

    with RawClient(bootstrap_of(kc, leader)) as c:
        assert produce(c, topic, batch(1), acks=-1).error_code == ErrorCode.NOT_ENOUGH_REPLICAS
        assert produce(c, topic, batch(1), acks=1).error_code == ErrorCode.NONE
    assert partition_state(kc, topic)["high_watermark"] == 3, "acks=1 data committed by the one-member ISR"
