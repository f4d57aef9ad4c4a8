"""Several brokers over the wire: Metadata, leaders, acks=all, the high watermark, epochs, the controller.

Exact requests go through RawClient (kstub's codec over a socket); the client
behaviour Kafka applications rely on (following a moved leader, finding a new
controller) is checked with kafka-python and confluent-kafka.
"""

from __future__ import annotations

import threading
import time

import pytest

from kstub.protocol import ErrorCode

from clients import ConfluentClient, KafkaPythonClient, Msg, unique_topic
from multibroker import bootstrap_of, create_topic, meta, partition_state, produce, wait_until
from support.raw import RawClient
from support.raw_requests import batch, fetch, list_offset

FAST = {"replica.lag.time.max.ms": "500", "broker.session.timeout.ms": "500"}


# --- Metadata ----------------------------------------------------------------------------


@pytest.mark.kstub(brokers=3, config=FAST)
def test_metadata_lists_live_brokers_controller_and_a_stable_cluster_id(kstub_cluster):
    kc = kstub_cluster
    assert len({b.port for b in kc.brokers}) == 3, "port 0: an ephemeral port each"
    with RawClient(kc.bootstrap_servers) as c:
        first = meta(c)
        assert {(b.node_id, b.host, b.port) for b in first.brokers} == {
            (b.node_id, b.advertised_host, b.port) for b in kc.brokers
        }
        assert first.controller_id == 0 and first.cluster_id == "kstub-cluster-0000000000"
    kc.control.stop_broker(0)
    with RawClient(bootstrap_of(kc, 2)) as c:
        after = meta(c)
    assert sorted(b.node_id for b in after.brokers) == [1, 2], "a stopped broker is not listed"
    assert after.controller_id == 1 and after.cluster_id == first.cluster_id


@pytest.mark.kstub(brokers=3, config={"default.replication.factor": "3", "num.partitions": "6"})
def test_auto_created_topics_use_kafkas_defaults_and_spread_leaders(kstub_cluster):
    with RawClient(kstub_cluster.bootstrap_servers) as c:
        meta(c, "auto")  # creates it (UNKNOWN_TOPIC_OR_PARTITION, as Kafka 4)
        topic = meta(c, "auto").topics[0]
    assert len(topic.partitions) == 6
    assert all(len(p.replica_nodes) == 3 and sorted(p.isr_nodes) == [0, 1, 2] for p in topic.partitions)
    assert [p.leader_id for p in topic.partitions].count(0) == 2, "leaders round-robin"
    followers = {tuple(p.replica_nodes[1:]) for p in topic.partitions}
    assert len(followers) > 1, "the follower order shifts too"
    assert all(p.leader_epoch == 0 for p in topic.partitions)


@pytest.mark.kstub(brokers=2)
def test_replication_factor_beyond_live_brokers_is_refused(kstub_cluster):
    kc = kstub_cluster
    kc.control.stop_broker(1)
    with RawClient(kc.bootstrap_servers) as c:
        body = c.request(
            19, 7, {"topics": [{"name": "rf2", "num_partitions": 1, "replication_factor": 2}], "timeout_ms": 5000}
        )
    assert body.topics[0].error_code == ErrorCode.INVALID_REPLICATION_FACTOR


@pytest.mark.kstub(brokers=3)
def test_every_partition_api_refuses_on_a_non_leader(kstub_cluster):
    kc = kstub_cluster
    create_topic(kc, "nl", 1, 3)
    leader = partition_state(kc, "nl")["leader"]
    other = next(b for b in (0, 1, 2) if b != leader)
    with RawClient(bootstrap_of(kc, other)) as c:
        assert produce(c, "nl", batch(1)).error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        assert fetch(c, "nl", 0).error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        assert list_offset(c, "nl", -1).error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        epoch = c.request(
            23,
            4,
            {
                "replica_id": -1,
                "topics": [
                    {"topic": "nl", "partitions": [{"partition": 0, "current_leader_epoch": 0, "leader_epoch": 0}]}
                ],
            },
        )
        assert epoch.topics[0].partitions[0].error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER


# --- acks, the high watermark -------------------------------------------------------------


@pytest.mark.kstub(brokers=3, config={"replica.lag.time.max.ms": "60000"})
def test_acks_all_waits_for_the_followers_and_times_out(kstub_cluster):
    kc = kstub_cluster
    create_topic(kc, "wait", 1, 3)
    for follower in (1, 2):
        kc.control.pause_replication(follower)
    with RawClient(bootstrap_of(kc, 0)) as c:
        started = time.monotonic()
        timed_out = produce(c, "wait", batch(2), timeout_ms=300)
        assert time.monotonic() - started >= 0.3
        assert timed_out.error_code == ErrorCode.REQUEST_TIMED_OUT
        # acks=1 answers on the leader's append; acks=0 answers nothing (the next request is answered).
        assert produce(c, "wait", batch(1), acks=1).base_offset == 2
        c.send(0, 9, _produce_body("wait", batch(1), acks=0), expect_response=False)
        wait_until(kc, lambda: kc.cluster.partition("wait", 0).log_end_offset == 4, what="the acks=0 append")
        assert partition_state(kc, "wait")["leo"] == {0: 4, 1: 0, 2: 0}
        # Consumers see nothing beyond the high watermark.
        assert list_offset(c, "wait", -1).offset == 0
        got = fetch(c, "wait", 0)
        assert (got.error_code, got.high_watermark, got.records) == (ErrorCode.NONE, 0, b"")

        # A long-poll is woken by the high watermark, not by the leader's append.
        result = {}

        def long_poll():
            with RawClient(bootstrap_of(kc, 0)) as c2:
                result["fetch"] = fetch(c2, "wait", 0, max_wait_ms=30_000)

        poller = threading.Thread(target=long_poll)
        poller.start()
        result_ack = {}

        def acks_all():
            with RawClient(bootstrap_of(kc, 0)) as c3:
                result_ack["produce"] = produce(c3, "wait", batch(1), timeout_ms=30_000)

        waiter = threading.Thread(target=acks_all)
        waiter.start()
        wait_until(kc, lambda: kc.cluster.partition("wait", 0).log_end_offset == 5, what="the acks=all append")
        poller.join(0.3)
        waiter.join(0.01)
        assert poller.is_alive() and waiter.is_alive(), "both wait for the followers"
        for follower in (1, 2):
            kc.control.resume_replication(follower)
        poller.join(10)
        waiter.join(10)
        assert result_ack["produce"].error_code == ErrorCode.NONE and result_ack["produce"].base_offset == 4
        assert result["fetch"].high_watermark == 5 and result["fetch"].records
        assert list_offset(c, "wait", -1).offset == 5


def _produce_body(topic: str, records: bytes, *, acks: int) -> dict:
    return {
        "acks": acks,
        "timeout_ms": 5000,
        "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": records}]}],
    }


@pytest.mark.kstub(brokers=3, config={"replica.lag.time.max.ms": "300"})
def test_acks_all_answers_not_enough_replicas_after_append_when_the_isr_shrinks(kstub_cluster):
    kc = kstub_cluster
    create_topic(kc, "shrink", 1, 3, min_insync_replicas="3")
    kc.control.pause_replication(2)
    with RawClient(bootstrap_of(kc, 0)) as c:
        answer = produce(c, "shrink", batch(1), timeout_ms=20_000)
        assert answer.error_code == ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        state = partition_state(kc, "shrink")
        assert state["isr"] == [0, 1] and state["high_watermark"] == 1, "written and committed by the smaller ISR"
        assert produce(c, "shrink", batch(1)).error_code == ErrorCode.NOT_ENOUGH_REPLICAS, "refused before append"
        assert partition_state(kc, "shrink")["leo"][0] == 1


@pytest.mark.kstub(brokers=3, config={"replica.lag.time.max.ms": "60000"})
def test_acks_all_waiting_when_leadership_moves_gets_not_leader(kstub_cluster):
    kc = kstub_cluster
    create_topic(kc, "moved", 1, 3)
    kc.control.pause_replication(2)
    result = {}

    def acks_all():
        with RawClient(bootstrap_of(kc, 0)) as c:
            result["produce"] = produce(c, "moved", batch(1), timeout_ms=30_000)

    waiter = threading.Thread(target=acks_all)
    waiter.start()
    wait_until(kc, lambda: kc.cluster.partition("moved", 0).log_end_offset == 1)
    kc.control.move_leader("moved", 0, 1)
    waiter.join(10)
    assert result["produce"].error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER


# --- leader epochs over the wire ----------------------------------------------------------------


def _epoch_lookup(c: RawClient, topic: str, current: int, epoch: int):
    body = c.request(
        23,
        4,
        {
            "replica_id": -1,
            "topics": [
                {
                    "topic": topic,
                    "partitions": [{"partition": 0, "current_leader_epoch": current, "leader_epoch": epoch}],
                }
            ],
        },
    )
    return body.topics[0].partitions[0]


@pytest.mark.kstub(brokers=3, config=FAST)
def test_leader_epochs_through_failovers(kstub_cluster):
    kc = kstub_cluster
    create_topic(kc, "ep", 1, 3)
    with RawClient(bootstrap_of(kc, 0)) as c:
        for _ in range(3):
            assert produce(c, "ep", batch(1)).error_code == ErrorCode.NONE
    kc.control.stop_broker(0)  # epoch 1, leader 1
    with RawClient(bootstrap_of(kc, 1)) as c:
        assert produce(c, "ep", batch(2)).base_offset == 3
    kc.control.move_leader("ep", 0, 2)  # epoch 2, leader 2
    with RawClient(bootstrap_of(kc, 2)) as c:
        body = meta(c, "ep").topics[0].partitions[0]
        assert (body.leader_id, body.leader_epoch, sorted(body.isr_nodes)) == (2, 2, [1, 2])
        assert produce(c, "ep", batch(1)).base_offset == 5
        answers = [
            (_epoch_lookup(c, "ep", 2, e).leader_epoch, _epoch_lookup(c, "ep", 2, e).end_offset) for e in range(4)
        ]
        assert answers == [(0, 3), (1, 5), (2, 6), (-1, -1)]
        assert _epoch_lookup(c, "ep", 1, 0).error_code == ErrorCode.FENCED_LEADER_EPOCH
        assert _epoch_lookup(c, "ep", 3, 0).error_code == ErrorCode.UNKNOWN_LEADER_EPOCH
        assert fetch(c, "ep", 0, version=12).error_code == ErrorCode.NONE
        epochs = kc.call(lambda: [chunk.leader_epoch for chunk in kc.cluster.partition("ep", 0).leader_log.read(0)])
        assert epochs == [0, 0, 0, 1, 2]
    kc.control.start_broker(0)
    wait_until(kc, lambda: kc.cluster.partition("ep", 0).isr == [0, 1, 2], what="broker 0 back in the ISR")
    assert kc.call(lambda: kc.cluster.partition("ep", 0).logs[0].epochs) == [(0, 0), (1, 3), (2, 5)]


# --- real clients follow leaders and controllers ------------------------------------------------


@pytest.mark.kstub(brokers=3, config=FAST)
@pytest.mark.parametrize("client_class", [KafkaPythonClient, ConfluentClient], ids=lambda c: c.name)
def test_clients_follow_a_moved_leader(kstub_cluster, client_class):
    kc = kstub_cluster
    topic = unique_topic("move")
    create_topic(kc, topic, 1, 3)
    client = client_class(kc.bootstrap_servers)
    client.produce(topic, [Msg(None, b"before")], partition=0)
    kc.control.move_leader(topic, 0, 2)
    client.produce(topic, [Msg(None, b"after-1")], partition=0)
    kc.control.move_leader(topic, 0, 1)
    client.produce(topic, [Msg(None, b"after-2")], partition=0)
    assert [m.value for m in client.consume(topic, {0: 0}, 3)] == [b"before", b"after-1", b"after-2"]
    assert partition_state(kc, topic)["leader_epoch"] == 2


@pytest.mark.kstub(brokers=3, config=FAST)
def test_consumers_follow_the_leader_while_reading(kstub_cluster):
    """A kafka-python and a confluent consumer read across a leader move and a broker stop."""
    from confluent_kafka import Consumer, TopicPartition
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    kc = kstub_cluster
    topic = unique_topic("read")
    create_topic(kc, topic, 1, 3)
    KafkaPythonClient(kc.bootstrap_servers).produce(
        topic, [Msg(None, f"a{i}".encode()) for i in range(50)], partition=0
    )
    kp = KafkaConsumer(bootstrap_servers=kc.bootstrap_servers, group_id=None, metadata_max_age_ms=5000)
    kp.assign([KTP(topic, 0)])
    cf = Consumer({"bootstrap.servers": kc.bootstrap_servers, "group.id": "g", "enable.auto.commit": False})
    cf.assign([TopicPartition(topic, 0, 0)])
    kp.seek(KTP(topic, 0), 0)

    def read(n: int) -> tuple[list[bytes], list[bytes]]:
        a: list[bytes] = []
        b: list[bytes] = []
        deadline = time.monotonic() + 30
        while (len(a) < n or len(b) < n) and time.monotonic() < deadline:
            for records in kp.poll(timeout_ms=100).values():
                a += [r.value for r in records]
            for m in cf.consume(100, timeout=0.1):
                assert not m.error(), m.error()
                b.append(m.value())
        return a, b

    try:
        assert read(50) == ([f"a{i}".encode() for i in range(50)],) * 2
        kc.control.move_leader(topic, 0, 2)
        KafkaPythonClient(kc.bootstrap_servers).produce(topic, [Msg(None, b"b0")], partition=0)
        assert read(1) == ([b"b0"], [b"b0"])
        kc.control.stop_broker(2)
        KafkaPythonClient(kc.bootstrap_servers).produce(topic, [Msg(None, b"c0")], partition=0)
        assert read(1) == ([b"c0"], [b"c0"])
    finally:
        kp.close()
        cf.close()


@pytest.mark.kstub(brokers=3, config=FAST)
def test_admin_clients_find_the_new_controller(kstub_cluster):
    """kafka-python's and confluent's admin clients send CreateTopics to the controller Metadata names."""
    from confluent_kafka.admin import AdminClient, NewTopic
    from kafka.admin import KafkaAdminClient
    from kafka.admin import NewTopic as KNewTopic

    kc = kstub_cluster
    kc.control.stop_broker(0)  # the controller
    with RawClient(bootstrap_of(kc, 1)) as c:
        assert meta(c).controller_id == 1
    live = f"{bootstrap_of(kc, 1)},{bootstrap_of(kc, 2)}"
    admin = KafkaAdminClient(bootstrap_servers=live)
    try:
        admin.create_topics([KNewTopic("after-failover-kp", 2, 2)])
    finally:
        admin.close()
    cf_admin = AdminClient({"bootstrap.servers": live})
    futures = cf_admin.create_topics([NewTopic("after-failover-cf", 2, 2)])
    futures["after-failover-cf"].result(timeout=30)
    for name in ("after-failover-kp", "after-failover-cf"):
        assert kc.call(lambda n=name: sorted({r for p in kc.cluster.topics[n].partitions for r in p.replicas})) == [
            1,
            2,
        ]
    kc.control.stop_broker(1)  # the new controller
    with RawClient(bootstrap_of(kc, 2)) as c:
        assert meta(c).controller_id == 2
    cf_admin = AdminClient({"bootstrap.servers": bootstrap_of(kc, 2)})
    futures = cf_admin.create_topics([NewTopic("rf1", 1, 1), NewTopic("rf2", 1, 2)])
    futures["rf1"].result(timeout=30)
    with pytest.raises(Exception, match=r"INVALID_REPLICATION_FACTOR|Replication factor"):
        futures["rf2"].result(timeout=30)
    # Producers and consumers carry on with the one broker left.
    client = ConfluentClient(bootstrap_of(kc, 2))
    client.produce("rf1", [Msg(None, b"x")])
    assert [m.value for m in client.consume("rf1", {0: 0}, 1)] == [b"x"]


@pytest.mark.kstub(brokers=3, config=FAST)
def test_a_partition_without_leader_over_the_wire(kstub_cluster):
    kc = kstub_cluster
    kc.call(lambda: kc.cluster.create_topic("orphan", assignments={0: [0, 1]}))
    kc.control.pause_replication(1)
    with RawClient(bootstrap_of(kc, 0)) as c:
        assert produce(c, "orphan", batch(1), acks=1).error_code == ErrorCode.NONE
    wait_until(kc, lambda: kc.cluster.partition("orphan", 0).isr == [0], what="broker 1 out of the ISR")
    kc.control.stop_broker(0)
    with RawClient(bootstrap_of(kc, 1)) as c:
        p = meta(c, "orphan").topics[0].partitions[0]
        assert (p.error_code, p.leader_id, p.leader_epoch) == (ErrorCode.LEADER_NOT_AVAILABLE, -1, 1)
        assert (p.isr_nodes, p.offline_replicas) == ([0], [0])
        # Like Kafka's brokers, the remaining replica answers NOT_LEADER_OR_FOLLOWER.
        assert produce(c, "orphan", batch(1), acks=1).error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        assert fetch(c, "orphan", 0).error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    kc.control.resume_replication(1)
    kc.control.start_broker(0)
    with RawClient(bootstrap_of(kc, 1)) as c:
        p = meta(c, "orphan").topics[0].partitions[0]
        assert (p.error_code, p.leader_id, p.leader_epoch) == (ErrorCode.NONE, 0, 2)
    wait_until(kc, lambda: kc.cluster.partition("orphan", 0).isr == [0, 1], what="broker 1 caught up")
    assert partition_state(kc, "orphan")["leo"] == {0: 1, 1: 1}


@pytest.mark.kstub(brokers=3, config=FAST)
def test_a_killed_controller_is_replaced_when_its_session_expires(kstub_cluster):
    from kafka.admin import KafkaAdminClient, NewTopic

    kc = kstub_cluster
    topic = unique_topic("ctl-kill")
    create_topic(kc, topic, 3, 3)
    kc.control.kill_broker(0)
    with RawClient(bootstrap_of(kc, 1)) as c:
        assert meta(c).controller_id == 0, "a crash is not noticed before the session expires"
    wait_until(kc, lambda: kc.cluster.controller_id == 1, what="a new controller")
    with RawClient(bootstrap_of(kc, 2)) as c:
        body = meta(c, topic)
    assert body.controller_id == 1 and sorted(b.node_id for b in body.brokers) == [1, 2]
    assert all(p.leader_id in (1, 2) and 0 not in p.isr_nodes for p in body.topics[0].partitions)
    live = f"{bootstrap_of(kc, 1)},{bootstrap_of(kc, 2)}"
    admin = KafkaAdminClient(bootstrap_servers=live)
    try:
        admin.create_topics([NewTopic(topic + "-new", 1, 2)])
    finally:
        admin.close()
    client = ConfluentClient(live)
    client.produce(topic, [Msg(None, f"v{i}".encode()) for i in range(30)])
    got = client.consume(topic, {0: 0, 1: 0, 2: 0}, 30)
    assert sorted(m.value for m in got) == sorted(f"v{i}".encode() for i in range(30))
