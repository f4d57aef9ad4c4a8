"""What each bad input gets: the connection closed (as Kafka does), the server unharmed.

Each case is sent with a raw socket; afterwards the same broker still serves
a real client (kafka-python) and the data produced before is still there.
"""

from __future__ import annotations

import socket
import struct

import pytest

from kstub.protocol import ErrorCode

from clients import KafkaPythonClient, make_messages, unique_topic
from support.raw import RawClient


def _frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def _header(api_key: int, version: int, correlation: int = 7, client: bytes = b"bad") -> bytes:
    return struct.pack(">hhih", api_key, version, correlation, len(client)) + client


BAD_INPUTS = {
    # a size prefix above socket.request.max.bytes (100 MiB): closed before reading the body
    "oversized frame": struct.pack(">i", 200 * 1024 * 1024) + b"\x00" * 16,
    "negative frame size": struct.pack(">i", -5),
    # a frame whose body is shorter than its header
    "truncated header": _frame(b"\x00\x03\x00"),
    "unknown api key": _frame(_header(9999, 0)),
    "unsupported version of a known api": _frame(_header(3, 99)),
    # Metadata v1 whose topic array claims 1000 entries but has none
    "undecodable body": _frame(_header(3, 1) + struct.pack(">i", 1000)),
    # a string length running past the end of the frame
    "string past the end": _frame(_header(3, 1) + struct.pack(">ih", 1, 300) + b"abc"),
    # a flexible request (Metadata v9) whose unsigned varint is longer than 5 bytes
    "overlong varint": _frame(_header(3, 9) + b"\xff\xff\xff\xff\xff\xff\x01"),
}


@pytest.fixture
def seeded(bootstrap):
    """A topic with data in it, to show nothing is lost by the bad inputs."""
    client = KafkaPythonClient(bootstrap)
    topic = unique_topic("seed")
    client.create_topic(topic, 1)
    msgs = make_messages(20, 1_700_000_000_000)
    client.produce(topic, msgs)
    return client, topic, msgs


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_frame_closes_only_that_connection(bootstrap, seeded, name):
    client, topic, msgs = seeded
    host, port = bootstrap.rsplit(":", 1)
    with RawClient(bootstrap) as bystander:
        with socket.create_connection((host, int(port)), timeout=10) as bad:
            bad.sendall(BAD_INPUTS[name])
            bad.shutdown(socket.SHUT_WR) if name == "truncated header" else None
            assert bad.recv(1024) == b"", "the broker closes the connection without answering"
        # another connection, opened before, is unaffected
        body = bystander.request(3, 1, {"topics": []})
        assert [b.node_id for b in body.brokers] == [0]
    # and a real client still works, with the data intact
    got = client.consume(topic, {0: 0}, len(msgs))
    assert [m.value for m in got] == [m.value for m in msgs]


def test_connection_closed_mid_frame(bootstrap, seeded):
    client, topic, msgs = seeded
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", 100) + b"\x00\x03\x00\x01")  # 4 of 100 promised bytes
    got = client.consume(topic, {0: 0}, len(msgs))
    assert len(got) == len(msgs)


def test_too_new_api_versions_gets_v0_shaped_unsupported_version(bootstrap):
    """Kafka answers a too-new ApiVersions with error 35 and its own range, in v0 shape."""
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        # ApiVersions v9 with header v2 (flexible): client software name/version as compact strings
        s.sendall(_frame(_header(18, 9, correlation=42) + b"\x00" + b"\x02a\x021\x00"))
        data = s.recv(1024)
    size, correlation, error, count = struct.unpack_from(">iihi", data)
    assert size == len(data) - 4
    assert correlation == 42
    assert error == ErrorCode.UNSUPPORTED_VERSION
    assert count == 1
    key, lo, hi = struct.unpack_from(">hhh", data, 14)
    assert (key, lo, hi) == (18, 0, 5)
    assert len(data) == 4 + 4 + 2 + 4 + 6, "v0 body: no throttle time, no tagged fields"


def test_api_versions_v3_with_bad_software_name_is_invalid_request(bootstrap):
    with RawClient(bootstrap) as c:
        body = c.request(18, 3, {"client_software_name": "bad name!", "client_software_version": "1.0"})
        assert body.error_code == ErrorCode.INVALID_REQUEST
        body = c.request(18, 3, {"client_software_name": "kstub-test", "client_software_version": "1.0"})
        assert body.error_code == ErrorCode.NONE


def test_invalid_required_acks(bootstrap):
    with RawClient(bootstrap) as c:
        c.request(19, 4, {"topics": [{"name": "acks-t", "num_partitions": 1, "replication_factor": 1}]})
        body = c.request(
            0,
            7,
            {
                "acks": 2,
                "timeout_ms": 1000,
                "topic_data": [{"name": "acks-t", "partition_data": [{"index": 0, "records": b""}]}],
            },
        )
        assert body.responses[0].partition_responses[0].error_code == ErrorCode.INVALID_REQUIRED_ACKS


def test_produce_to_unknown_partition(bootstrap):
    with RawClient(bootstrap) as c:
        c.request(19, 4, {"topics": [{"name": "one-part", "num_partitions": 1, "replication_factor": 1}]})
        body = c.request(
            0,
            7,
            {
                "acks": 1,
                "timeout_ms": 1000,
                "topic_data": [
                    {"name": "one-part", "partition_data": [{"index": 5, "records": b"x"}]},
                    {"name": "no-such-topic", "partition_data": [{"index": 0, "records": b"x"}]},
                ],
            },
        )
        codes = [r.partition_responses[0].error_code for r in body.responses]
        assert codes == [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]
