"""Fault injection: clients see injected faults exactly as they would see real ones.

Injected error codes arrive in responses where Kafka puts them (per
partition, per topic, or at the top level), the request is not performed,
and real clients react as they do to a real broker (retry, refresh metadata).
Delays, lost requests, lost responses and dropped connections behave like
the network failures they imitate; stop and kill differ as a controlled
shutdown and a crash do.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from kstub.control import ControlError
from kstub.protocol import ErrorCode

from clients import ConfluentClient, KafkaPythonClient, Msg, unique_topic
from multibroker import bootstrap_of, create_topic, meta, partition_state, produce, wait_until
from support.raw import RawClient
from support.raw_requests import batch, fetch

PRODUCE, FETCH, METADATA, INIT_PRODUCER_ID = 0, 1, 3, 22


def _fired(kc) -> list[tuple[int, int, int | None]]:
    return kc.call(lambda: [(f.id, f.fired, f.remaining) for f in kc.cluster.control.faults])


# --- injected errors -------------------------------------------------------------------------


@pytest.mark.parametrize("client_class", [KafkaPythonClient, ConfluentClient], ids=lambda c: c.name)
def test_producers_retry_injected_not_leader_errors(kstub_cluster, client_class):
    kc = kstub_cluster
    topic = unique_topic("inj")
    create_topic(kc, topic, 1, 1)
    fault = kc.control.inject_error("produce", "NOT_LEADER_OR_FOLLOWER", count=3)
    client_class(kc.bootstrap_servers).produce(topic, [Msg(None, b"a"), Msg(None, b"b")], partition=0)
    assert kc.call(lambda: fault.fired) == 3 and _fired(kc) == []
    assert partition_state(kc, topic, 0)["high_watermark"] == 2, "stored once: the errored requests did nothing"
    assert [m.value for m in client_class(kc.bootstrap_servers).consume(topic, {0: 0}, 2)] == [b"a", b"b"]


def test_errors_can_target_one_topic_partition_and_are_counted_per_request(kstub_cluster):
    kc = kstub_cluster
    create_topic(kc, "t1", 2, 1)
    create_topic(kc, "t2", 1, 1)
    kc.control.inject_error(PRODUCE, ErrorCode.KAFKA_STORAGE_ERROR, count=2, topic="t1", partition=1)
    records = batch(1)
    body = {
        "acks": 1,
        "timeout_ms": 5000,
        "topic_data": [
            {"name": "t1", "partition_data": [{"index": 0, "records": records}, {"index": 1, "records": records}]},
            {"name": "t2", "partition_data": [{"index": 0, "records": records}]},
        ],
    }
    with RawClient(kc.bootstrap_servers) as c:
        first = c.request(0, 9, body)
        codes = [(t.name, p.index, p.error_code) for t in first.responses for p in t.partition_responses]
        assert codes == [("t1", 0, 0), ("t1", 1, ErrorCode.KAFKA_STORAGE_ERROR), ("t2", 0, 0)]
        assert produce(c, "t2", batch(1), acks=1).error_code == ErrorCode.NONE, "other topics do not use it up"
        assert produce(c, "t1", batch(1), acks=1, partition=1).error_code == ErrorCode.KAFKA_STORAGE_ERROR
        assert produce(c, "t1", batch(1), acks=1, partition=1).error_code == ErrorCode.NONE, "count 2: used up"
    assert partition_state(kc, "t1", 1)["high_watermark"] == 1


def test_fetch_and_metadata_errors_where_kafka_puts_them(kstub_cluster):
    kc = kstub_cluster
    create_topic(kc, "fm", 1, 1)
    with RawClient(kc.bootstrap_servers) as c:
        produce(c, "fm", batch(2), acks=1)
        kc.control.inject_error("Fetch", "NOT_LEADER_OR_FOLLOWER", topic="fm")
        assert fetch(c, "fm", 0, max_wait_ms=5000).error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        assert fetch(c, "fm", 0).error_code == ErrorCode.NONE
        kc.control.inject_error("metadata", "LEADER_NOT_AVAILABLE", topic="fm")
        topic = meta(c, "fm").topics[0]
        assert (topic.error_code, topic.partitions) == (ErrorCode.LEADER_NOT_AVAILABLE, [])
        assert meta(c, "fm").topics[0].error_code == ErrorCode.NONE
        kc.control.inject_error("create_topics", "POLICY_VIOLATION")
        created = c.request(
            19, 7, {"topics": [{"name": "never", "num_partitions": 1, "replication_factor": 1}], "timeout_ms": 1000}
        )
        assert created.topics[0].error_code == ErrorCode.POLICY_VIOLATION
        assert "never" not in kc.call(lambda: list(kc.cluster.topics))


def test_top_level_errors_and_client_retries(kstub_cluster):
    """InitProducerId has a top-level error code: kafka-python's idempotent producer retries it."""
    kc = kstub_cluster
    kc.control.inject_error(INIT_PRODUCER_ID, "COORDINATOR_LOAD_IN_PROGRESS", count=2)
    with RawClient(kc.bootstrap_servers) as c:
        body = c.request(22, 4, {"transactional_id": None, "transaction_timeout_ms": 1000})
        assert (body.error_code, body.producer_id) == (ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, -1)
    topic = unique_topic("pid")
    KafkaPythonClient(kc.bootstrap_servers).produce(topic, [Msg(None, b"x")], partition=0)
    assert _fired(kc) == []


@pytest.mark.kstub(brokers=2)
def test_faults_can_target_one_broker(kstub_cluster):
    kc = kstub_cluster
    kc.control.inject_error("metadata", "LEADER_NOT_AVAILABLE", count=None, broker_id=1, topic="x")
    with RawClient(bootstrap_of(kc, 0)) as c:
        assert meta(c, "x").topics[0].error_code != ErrorCode.LEADER_NOT_AVAILABLE
    with RawClient(bootstrap_of(kc, 1)) as c:
        for _ in range(3):
            assert meta(c, "x").topics[0].error_code == ErrorCode.LEADER_NOT_AVAILABLE
    (fault,) = kc.call(kc.cluster.control.describe_faults)
    assert (fault["fired"], fault["remaining"], fault["broker"]) == (3, None, 1)
    kc.control.remove_fault(fault["id"])
    with RawClient(bootstrap_of(kc, 1)) as c:
        assert meta(c, "x").topics[0].error_code == ErrorCode.NONE


def test_bad_fault_requests_are_refused():
    from kstub.cluster.model import ClusterState

    control = ClusterState().control
    with pytest.raises(ControlError, match="unknown API"):
        control.inject_error("nope", 6)
    with pytest.raises(ControlError, match="unknown error code"):
        control.inject_error("produce", "NOT_AN_ERROR")
    with pytest.raises(ControlError, match="cannot be limited to a topic"):
        control.inject_error("init_producer_id", 6, topic="t")
    with pytest.raises(ControlError, match="partition needs a topic"):
        control.inject_error("produce", 6, partition=0)
    with pytest.raises(ControlError, match="partition needs a topic"):
        control.inject_error("metadata", 6, topic="t", partition=0)
    with pytest.raises(ControlError, match="count"):
        control.drop_response("produce", count=0)
    with pytest.raises(ControlError, match="no broker"):
        control.pause_replication(5)
    control.cluster.add_broker(0, "h", 1)
    with pytest.raises(ControlError, match="not being served"):
        control.drop_connections(0)
    assert control.faults == []


# --- delays, lost requests and responses, dropped connections ----------------------------------------


def test_delayed_responses_arrive_late_and_intact(kstub_cluster):
    kc = kstub_cluster
    create_topic(kc, "slow", 1, 1)
    kc.control.delay_response("produce", 300, count=1)
    with RawClient(kc.bootstrap_servers) as c:
        started = time.monotonic()
        assert produce(c, "slow", batch(1), acks=1).base_offset == 0
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        assert produce(c, "slow", batch(1), acks=1).base_offset == 1
        assert time.monotonic() - started < 0.3, "count 1: the next is not delayed"


def test_a_dropped_request_is_not_performed(kstub_cluster):
    kc = kstub_cluster
    create_topic(kc, "lost", 1, 1)
    kc.control.drop_request("produce")
    with RawClient(kc.bootstrap_servers) as c:
        c.send(0, 9, {"acks": 1, "timeout_ms": 1000, "topic_data": [{"name": "lost", "partition_data": [
            {"index": 0, "records": batch(1)}]}]})  # fmt: skip
        with pytest.raises(ConnectionError):
            c.receive()
    assert partition_state(kc, "lost")["leo"] == {0: 0}


@pytest.mark.kstub(brokers=2)
def test_drop_connections_closes_them_and_clients_reconnect(kstub_cluster):
    kc = kstub_cluster
    topic = unique_topic("drop")
    create_topic(kc, topic, 1, 2)
    client = ConfluentClient(kc.bootstrap_servers)
    client.produce(topic, [Msg(None, b"1")], partition=0)
    with RawClient(bootstrap_of(kc, 0)) as idle, RawClient(bootstrap_of(kc, 1)) as other:
        meta(idle)
        meta(other)
        assert kc.control.drop_connections(0) >= 1
        assert _closed(idle)
        assert meta(other).brokers, "other brokers' connections stay"
    client.produce(topic, [Msg(None, b"2")], partition=0)
    assert [m.value for m in client.consume(topic, {0: 0}, 2)] == [b"1", b"2"]


def _closed(c: RawClient, timeout: float = 5.0) -> bool:
    c.sock.settimeout(timeout)
    try:
        return c.is_closed_by_peer()
    except TimeoutError:
        return False


# --- stop and kill, as seen on the wire ------------------------------------------------------------


@pytest.mark.kstub(brokers=2)
def test_kill_drops_connections_mid_request(kstub_cluster):
    kc = kstub_cluster
    create_topic(kc, "crash", 1, 1)
    kc.control.delay_response("produce", 30_000, broker_id=0)
    with RawClient(bootstrap_of(kc, 0)) as c:
        c.send(0, 9, {"acks": 1, "timeout_ms": 1000, "topic_data": [{"name": "crash", "partition_data": [
            {"index": 0, "records": batch(1)}]}]})  # fmt: skip
        wait_until(kc, lambda: kc.cluster.partition("crash", 0).log_end_offset == 1, what="the append")
        kc.control.kill_broker(0)
        with pytest.raises(ConnectionError):
            c.receive()  # performed, but never answered
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", kc.brokers[0].port), timeout=2)
    kc.control.start_broker(0)
    with RawClient(bootstrap_of(kc, 0)) as c:
        assert meta(c).brokers, "back on the same port"


@pytest.mark.kstub(brokers=2)
def test_stop_answers_the_request_in_progress_then_closes(kstub_cluster):
    kc = kstub_cluster
    create_topic(kc, "graceful", 1, 2)
    assert partition_state(kc, "graceful")["leader"] == 0
    kc.control.delay_response("produce", 500, broker_id=0)
    with RawClient(bootstrap_of(kc, 0)) as busy, RawClient(bootstrap_of(kc, 0)) as idle:
        meta(idle)
        busy.send(0, 9, {"acks": 1, "timeout_ms": 1000, "topic_data": [{"name": "graceful", "partition_data": [
            {"index": 0, "records": batch(1)}]}]})  # fmt: skip
        wait_until(kc, lambda: kc.cluster.partition("graceful", 0).log_end_offset == 1, what="the append")
        stopper = threading.Thread(target=kc.control.stop_broker, args=(0,))
        stopper.start()
        assert _closed(idle), "idle connections close at once"
        answer = busy.receive()
        assert answer.responses[0].partition_responses[0].error_code == ErrorCode.NONE
        assert _closed(busy), "then the busy one closes"
        stopper.join(10)
    state = partition_state(kc, "graceful")
    assert (state["leader"], state["leader_epoch"], state["isr"]) == (1, 1, [1])


def test_every_action_is_recorded(kstub_cluster):
    kc = kstub_cluster
    before = kc.call(lambda: len(kc.cluster.control.actions))  # the fixture's reset may have cleared already
    kc.control.inject_error("produce", 6, topic="a")
    kc.control.pause_replication(0)
    kc.control.clear()
    actions = [a["action"] for a in kc.call(lambda: list(kc.cluster.control.actions))]
    assert actions[before:] == ["error", "pause-replication", "clear"]


@pytest.mark.kstub(brokers=2)
def test_a_broker_whose_port_was_taken_cannot_start(kstub_cluster):
    kc = kstub_cluster
    kc.control.stop_broker(1)
    squatter = socket.socket()
    try:
        squatter.bind(("127.0.0.1", kc.brokers[1].port))
        squatter.listen()
        with pytest.raises(ControlError, match="cannot listen again"):
            kc.control.start_broker(1)
    finally:
        squatter.close()
    kc.control.start_broker(1)
    with RawClient(bootstrap_of(kc, 1)) as c:
        assert sorted(b.node_id for b in meta(c).brokers) == [0, 1]
