"""Transactions in the logs against real Kafka: Fetch, ListOffsets and DescribeProducers around a transaction.

Both brokers get the same transactional data. On Kafka the transaction is a
real one: InitProducerId with a transactional id, AddPartitionsToTxn and EndTxn
sent raw (hand-encoded below: they are the transaction coordinator's APIs, not
this branch's), because Kafka refuses transactional data for a partition not
added to the transaction. On kstub the producer gets its id from
InitProducerId too, and the abort is written with `write_marker`, as kstub's
coordinator does. Fetch (read_uncommitted and read_committed), ListOffsets
(both isolation levels) and DescribeProducers are compared while the
transaction is open and after it was aborted.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

from kstub.cluster.txn_markers import write_marker
from kstub.embedded import EmbeddedCluster
from kstub.protocol import ErrorCode
from kstub.protocol.records.control import Marker

from support.batches import batch
from support.diff_requests import create, fetch_body, produce_body
from support.differential import Pair

INIT_PRODUCER_ID, ADD_PARTITIONS_TO_TXN, END_TXN, DESCRIBE_PRODUCERS = 22, 24, 26, 61
#: record timestamps: now, so that the markers (stamped now) do not make either broker roll a segment
#: (segment.ms), after which Kafka would answer a fetch from one segment only
T0 = int(time.time() * 1000)


# --- the coordinator's requests, raw, for the Kafka side only --------------------------------------------


def _compact_string(s: str) -> bytes:
    data = s.encode()
    return _uvarint(len(data) + 1) + data


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class RawKafka:
    """One plain socket to Kafka for the two flexible (v3) requests the codec does not declare here."""

    def __init__(self, bootstrap: str) -> None:
        host, _, port = bootstrap.split(",")[0].rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.correlation = 0

    def close(self) -> None:
        self.sock.close()

    def _recv(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "Kafka closed the connection"
            data += chunk
        return data

    def request(self, api_key: int, version: int, body: bytes) -> bytes:
        self.correlation += 1
        client_id = b"kstub-differential"
        header = struct.pack(">hhih", api_key, version, self.correlation, len(client_id)) + client_id + b"\x00"
        frame = header + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        (size,) = struct.unpack(">i", self._recv(4))
        answer = self._recv(size)
        assert struct.unpack_from(">i", answer)[0] == self.correlation
        return answer[5:]  # correlation id and the header's empty tagged fields

    def add_partition(self, txn_id: str, pid: int, epoch: int, topic: str, partition: int) -> int:
        """AddPartitionsToTxn v3; the partition's error code."""
        body = (
            _compact_string(txn_id)
            + struct.pack(">qh", pid, epoch)
            + _uvarint(2)  # one topic
            + _compact_string(topic)
            + _uvarint(2)  # one partition
            + struct.pack(">i", partition)
            + b"\x00"  # topic's tagged fields
            + b"\x00"  # request's tagged fields
        )
        answer = self.request(ADD_PARTITIONS_TO_TXN, 3, body)
        # throttle, results: one topic (name), one partition (index, error)
        pos = 4 + 1
        name_len = answer[pos] - 1
        pos += 1 + name_len + 1
        _index, error = struct.unpack_from(">ih", answer, pos)
        return error

    def end_txn(self, txn_id: str, pid: int, epoch: int, commit: bool) -> int:
        """EndTxn v3 (transactions v1: the markers carry the producer's epoch); its error code."""
        body = _compact_string(txn_id) + struct.pack(">qh?", pid, epoch, commit) + b"\x00"
        answer = self.request(END_TXN, 3, body)
        return struct.unpack_from(">h", answer, 4)[0]


# --- the test ---------------------------------------------------------------------------------------------


def _init(pair: Pair, txn_id: str) -> tuple[Any, Any]:
    """InitProducerId with `txn_id` on both (Kafka loads __transaction_state first: retried until ready)."""
    pair.wait_for_coordinator(txn_id, 1)
    body = {"transactional_id": txn_id, "transaction_timeout_ms": 60_000, "producer_id": -1, "producer_epoch": -1}
    deadline = time.monotonic() + 60
    loading = (ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.NOT_COORDINATOR, ErrorCode.CONCURRENT_TRANSACTIONS)
    while True:
        theirs = pair.kafka.conn.request(INIT_PRODUCER_ID, body)
        if theirs.error_code == ErrorCode.NONE:
            break
        assert theirs.error_code in loading, theirs
        assert time.monotonic() < deadline, theirs
        time.sleep(0.2)
    ours = pair.kstub.conn.request(INIT_PRODUCER_ID, body, version=pair.kafka.conn.version(INIT_PRODUCER_ID))
    assert (ours.error_code, ours.producer_epoch) == (ErrorCode.NONE, theirs.producer_epoch)
    pair.kstub.alias("producer", ours.producer_id)
    pair.kafka.alias("producer", theirs.producer_id)
    return ours, theirs


def txn_batch(pid: int, epoch: int) -> bytes:
    return batch(3, producer_id=pid, epoch=epoch, sequence=0, ts=T0, transactional=True)


def _list_offsets(topic: str, isolation: int, timestamp: int = -1) -> dict[str, Any]:
    return {
        "replica_id": -1,
        "isolation_level": isolation,
        "topics": [
            {
                "name": topic,
                "partitions": [
                    {"partition_index": 0, "current_leader_epoch": -1, "timestamp": timestamp, "max_num_offsets": 1}
                ],
            }
        ],
    }


def _mask_marker_times(answer: Any) -> Any:
    """The answer with the timestamps of control records masked: each broker stamps its marker with its clock."""
    if isinstance(answer, dict):
        return {k: _mask_marker_times(v) for k, v in answer.items()}
    if isinstance(answer, list):
        return [_mask_marker_times(v) for v in answer]
    if isinstance(answer, tuple) and len(answer) == 5 and answer[2] in (b"\x00\x00\x00\x00", b"\x00\x00\x00\x01"):
        return (answer[0], "marker time", *answer[2:])
    return answer


def _compare_reads(pair: Pair, topic: str) -> dict[str, Any]:
    """Fetch at both isolation levels from 0 and from 2, ListOffsets latest at both; the read_committed fetch."""
    for offset in (0, 2):
        pair.compare(1, fetch_body(topic, offset, isolation_level=0), view=_mask_marker_times)
    committed, _ = pair.compare(1, fetch_body(topic, 0, isolation_level=1), view=_mask_marker_times)
    pair.compare(1, fetch_body(topic, 2, isolation_level=1), view=_mask_marker_times)
    for isolation in (0, 1):
        pair.compare(2, _list_offsets(topic, isolation))
    return committed["responses"][0]["partitions"][0]


def _describe(pair: Pair, topic: str, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    body = {"topics": [{"name": topic, "partition_indexes": [0, 1]}]}
    ours, _ = pair.compare(DESCRIBE_PRODUCERS, body, ignore=ignore)
    return ours["topics"][0]["partitions"]


def test_an_open_then_aborted_transaction(pair: Pair, kstub_cluster: EmbeddedCluster) -> None:
    topic = create(pair)
    txn_id = pair.name("tx")
    ours, theirs = _init(pair, txn_id)
    pids = {"kstub": (ours.producer_id, ours.producer_epoch), "kafka": (theirs.producer_id, theirs.producer_epoch)}
    raw = RawKafka(pair.kafka.conn.address)
    try:
        assert raw.add_partition(txn_id, *pids["kafka"], topic, 0) == ErrorCode.NONE
        pair.compare(0, produce_body(topic, batch(2, ts=T0)))  # 0-1, plain
        produced, _ = pair.compare(
            0,
            lambda side: produce_body(
                topic,
                batch(
                    3, producer_id=pids[side.name][0], epoch=pids[side.name][1], sequence=0, ts=T0, transactional=True
                ),
                transactional_id=txn_id,
            ),
        )
        assert produced["responses"][0]["partition_responses"][0]["base_offset"] == 2
        # the producer's next batch without the transactional flag, inside its transaction
        refused, _ = pair.compare(
            0,
            lambda side: produce_body(
                topic, batch(1, producer_id=pids[side.name][0], epoch=pids[side.name][1], sequence=3, ts=T0)
            ),
        )
        assert refused["responses"][0]["partition_responses"][0]["error_code"] == ErrorCode.INVALID_TXN_STATE

        # open: read_committed stops at the transaction's first offset
        committed = _compare_reads(pair, topic)
        assert (committed["high_watermark"], committed["last_stable_offset"]) == (5, 2)
        described = _describe(pair, topic)
        assert described[0]["active_producers"][0]["current_txn_start_offset"] == 2
        assert described[1]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        pair.compare(DESCRIBE_PRODUCERS, {"topics": [{"name": pair.name("missing"), "partition_indexes": [0]}]})

        # aborted: the marker at 5, the transaction listed for read_committed fetches
        assert raw.end_txn(txn_id, *pids["kafka"], commit=False) == ErrorCode.NONE
        kstub_marker = Marker(pids["kstub"][0], pids["kstub"][1], False, _coordinator_epoch(pair, topic))
        assert kstub_cluster.call_async(write_marker, kstub_cluster.state, topic, 0, kstub_marker) == 5
        _wait_stable(pair, topic)
        committed = _compare_reads(pair, topic)
        assert (committed["high_watermark"], committed["last_stable_offset"]) == (6, 6)
        assert committed["aborted_transactions"] == [{"producer_id": "producer#1", "first_offset": 2}]
        # the marker's timestamp is each broker's clock
        described = _describe(pair, topic, ignore=("last_timestamp",))
        assert described[0]["active_producers"][0]["current_txn_start_offset"] == -1
    finally:
        raw.close()


def _wait_stable(pair: Pair, topic: str) -> None:
    """Until Kafka has written its marker (EndTxn answers before the markers are written)."""
    deadline = time.monotonic() + 30
    while True:
        answer = pair.kafka.conn.request(1, fetch_body(topic, 0, isolation_level=1), version=12)  # by topic name
        p = answer.responses[0].partitions[0]
        if p.last_stable_offset == p.high_watermark == 6:
            return
        assert time.monotonic() < deadline, p
        time.sleep(0.1)


def _coordinator_epoch(pair: Pair, topic: str) -> int:
    """The coordinator epoch Kafka's marker carries (its __transaction_state partition's leader epoch),
    learnt after the fact from DescribeProducers, so that kstub's marker says the same."""
    deadline = time.monotonic() + 30
    while True:
        answer = pair.kafka.conn.request(DESCRIBE_PRODUCERS, {"topics": [{"name": topic, "partition_indexes": [0]}]})
        producers = answer.topics[0].partitions[0].active_producers
        if producers and producers[0].current_txn_start_offset == -1:
            return producers[0].coordinator_epoch
        assert time.monotonic() < deadline, producers
        time.sleep(0.1)


def test_delete_records_may_pass_an_open_transaction(pair: Pair) -> None:
    """Kafka bounds DeleteRecords by the high watermark only: the log start may pass an open transaction's
    first offset, and the last stable offset then stays at the log start until the transaction ends."""
    topic = create(pair)
    txn_id = pair.name("tx")
    ours, theirs = _init(pair, txn_id)
    pids = {"kstub": (ours.producer_id, ours.producer_epoch), "kafka": (theirs.producer_id, theirs.producer_epoch)}
    raw = RawKafka(pair.kafka.conn.address)
    try:
        assert raw.add_partition(txn_id, *pids["kafka"], topic, 0) == ErrorCode.NONE
        pair.compare(0, lambda side: produce_body(topic, txn_batch(*pids[side.name]), transactional_id=txn_id))
        pair.compare(0, produce_body(topic, batch(2, ts=T0)))  # 3-4, plain
        deleted, _ = pair.compare(
            21, {"topics": [{"name": topic, "partitions": [{"partition_index": 0, "offset": 1}]}], "timeout_ms": 10000}
        )
        assert deleted["topics"][0]["partitions"][0]["low_watermark"] == 1
        committed, _ = pair.compare(1, fetch_body(topic, 1, isolation_level=1))
        # Kafka moves the LSO to the log start as found in the log: the first offset of its batch (0-2)
        assert committed["responses"][0]["partitions"][0]["last_stable_offset"] == 0
        pair.compare(1, fetch_body(topic, 1, isolation_level=0))
        for isolation in (0, 1):
            pair.compare(2, _list_offsets(topic, isolation))
            pair.compare(2, _list_offsets(topic, isolation, timestamp=-2))
        pair.compare(
            21, {"topics": [{"name": topic, "partitions": [{"partition_index": 0, "offset": 4}]}], "timeout_ms": 10000}
        )
        committed, _ = pair.compare(1, fetch_body(topic, 4, isolation_level=1))
        assert committed["responses"][0]["partitions"][0]["last_stable_offset"] == 3  # the plain batch 3-4
        pair.compare(2, _list_offsets(topic, 1))
        # the transaction is left open: Kafka aborts it after its timeout, on a topic no other test reads
    finally:
        raw.close()
