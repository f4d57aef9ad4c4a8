"""Length-prefixed framing: requests come out whole and in order however the bytes arrive."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from kstub.protocol import ApiKey, FrameTooLarge
from kstub.protocol.connection import NEED_DATA, ClientConnection, ServerConnection


def _wire() -> tuple[bytes, list[tuple[int, int]]]:
    """Three pipelined requests, one of them a ~300 KB Produce, and their (api key, correlation id)."""
    client = ClientConnection("framing")
    records = bytes(random.Random(7).randbytes(300_000))
    frames = [
        client.send_request(ApiKey.API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"}),
        client.send_request(
            ApiKey.PRODUCE,
            9,
            {
                "transactional_id": None,
                "acks": -1,
                "timeout_ms": 1000,
                "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": records}]}],
            },
        ),
        client.send_request(ApiKey.METADATA, 12, {"topics": None}),
    ]
    return b"".join(frames), [(ApiKey.API_VERSIONS, 0), (ApiKey.PRODUCE, 1), (ApiKey.METADATA, 2)]


def _drain(server: ServerConnection) -> list:
    out = []
    while (request := server.next_request()) is not NEED_DATA:
        out.append(request)
    return out


def _chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    out, i = [], 0
    for n in sizes:
        out.append(data[i : i + n])
        i += n
    return out


@pytest.mark.parametrize(
    "split",
    ["whole", "one byte at a time for the first 40", "header split across chunks", "random chunks", "64 KiB chunks"],
)
def test_requests_come_out_whole_however_the_bytes_are_split(split: str) -> None:
    wire, expected = _wire()
    rng = random.Random(split)
    if split == "whole":
        sizes = [len(wire)]
    elif split.startswith("one byte"):
        sizes = [1] * 40 + [len(wire) - 40]
    elif split.startswith("header split"):
        sizes = [2, 3, 1, 30_000, 6, 280_000, 2, len(wire)]
    elif split == "random chunks":
        sizes = [rng.randint(1, 70_000) for _ in range(200)]
    else:
        sizes = [65_536] * (len(wire) // 65_536 + 1)
    server = ServerConnection()
    got = []
    for chunk in _chunks(wire, sizes):
        if chunk:
            server.receive_data(chunk)
            got += _drain(server)
    assert [(r.api_key, r.correlation_id) for r in got] == expected
    produce = got[1].body
    assert bytes(produce.topic_data[0].partition_data[0].records) == bytes(random.Random(7).randbytes(300_000))
    assert server.buffered == 0


def test_a_truncated_frame_stays_pending_and_counted() -> None:
    wire, _ = _wire()
    server = ServerConnection()
    server.receive_data(wire[:-5])
    assert [r.api_key for r in _drain(server)] == [ApiKey.API_VERSIONS, ApiKey.PRODUCE]
    assert server.buffered == len(wire) - 5 - sum(len(f) for f in _frames(wire)[:2])
    server.receive_data(wire[-5:])
    assert [r.api_key for r in _drain(server)] == [ApiKey.METADATA]
    assert server.buffered == 0


def _frames(wire: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(wire):
        n = 4 + int.from_bytes(wire[i : i + 4], "big")
        out.append(wire[i : i + n])
        i += n
    return out


def test_a_size_prefix_above_the_maximum_is_refused_even_when_split() -> None:
    server = ServerConnection(max_frame=1000)
    server.receive_data(b"\x00\x00")
    assert server.next_request() is NEED_DATA
    server.receive_data(b"\x03\xe9")  # 1001
    with pytest.raises(FrameTooLarge):
        server.next_request()


def test_an_empty_frame_is_a_frame() -> None:
    """A size prefix of 0 is an empty frame (which the decoder then refuses), also as the buffer's last bytes."""
    from kstub.protocol.connection import _FrameBuffer

    frames = _FrameBuffer(100)
    frames.feed(b"\x00\x00\x00\x00")
    assert frames.next_frame() == b""
    assert frames.next_frame() is None and frames.pending == 0


def _typed(value: Any) -> Any:
    """`value` with the type of every leaf kept (record data as its bytes)."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, memoryview):
        return ("view", bytes(value))
    return (type(value).__name__, value)


_BODIES: dict[str, tuple[int, int, dict]] = {
    "join group (bytes metadata)": (
        ApiKey.JOIN_GROUP,
        9,
        {
            "group_id": "g",
            "session_timeout_ms": 10_000,
            "rebalance_timeout_ms": 30_000,
            "member_id": "",
            "group_instance_id": None,
            "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": b"\x00\x01metadata"}],
            "reason": None,
        },
    ),
    "sasl authenticate (bytes)": (ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": b"\x00user\x00secret"}),
    "fetch (uuid)": (
        ApiKey.FETCH,
        13,
        {
            "replica_id": -1,
            "max_wait_ms": 500,
            "min_bytes": 1,
            "max_bytes": 1 << 20,
            "isolation_level": 0,
            "session_id": 0,
            "session_epoch": -1,
            "topics": [
                {
                    "topic_id": uuid.UUID(int=12345),
                    "partitions": [
                        {
                            "partition": 0,
                            "current_leader_epoch": -1,
                            "fetch_offset": 0,
                            "last_fetched_epoch": -1,
                            "log_start_offset": -1,
                            "partition_max_bytes": 1 << 20,
                        }
                    ],
                }
            ],
            "forgotten_topics_data": [],
            "rack_id": "",
        },
    ),
    "produce (records)": (
        ApiKey.PRODUCE,
        9,
        {
            "transactional_id": None,
            "acks": -1,
            "timeout_ms": 1000,
            "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": b"r" * 100}]}],
        },
    ),
}


@pytest.mark.parametrize("name", list(_BODIES))
def test_a_frame_copied_out_of_the_buffer_decodes_as_the_same_request(name: str) -> None:
    """A frame the broker copied out of its receive buffer (not exactly one received chunk) is a
    bytearray, decoded where it lies: the same request, field for field and type for type (bytes
    fields stay bytes), only its record data a writable view."""
    key, version, body = _BODIES[name]
    frame = ClientConnection("framing").send_request(key, version, body)
    server = ServerConnection()
    whole = [server.decode_request(frame[4:]) for _ in range(3)][-1]  # from the second: the compiled decoder
    server.receive_data(frame[:10])
    server.receive_data(frame[10:] + b"\x00")  # the frame is not one received chunk: it is copied out
    [copied] = _drain(server)
    assert server.buffered == 1
    assert (copied.api_key, copied.api_version, copied.correlation_id, copied.client_id, copied.size) == (
        whole.api_key,
        whole.api_version,
        whole.correlation_id,
        whole.client_id,
        whole.size,
    )
    assert _typed(copied.body) == _typed(whole.body)
    if key == ApiKey.PRODUCE:
        records = copied.body.topic_data[0].partition_data[0].records
        assert isinstance(records, memoryview) and not records.readonly
