"""Compression bombs: batches that inflate a thousandfold are walked in bounded memory, off the event loop.

Each test runs `kstub serve` in its own process and reads the peak resident set
(VmHWM) from /proc when done: a server that inflated a batch whole would show
it (1 GB and more), one that streams stays far under 300 MB. The bombs:

* a 30 KB zstd batch that inflates to 1 GiB, sent to a compacted topic (where
  every record's key is checked): one declared record, then a gigabyte of
  zeros -> INVALID_RECORD ("records still remaining", Kafka's
  DefaultRecordBatch iterator), found after the first record;
* the same size as one legal record (a key and a 1 GiB value): refused with
  INVALID_RECORD above the topic's max.decompressed.message.bytes, as Kafka
  4.4; accepted under the default (no cap, as Kafka), walked in a worker thread
  while another connection's Metadata is answered, and then found again by
  ListOffsets by timestamp, walked the same way (INVALID_RECORD once the cap
  is lowered below it, as Kafka 4.4);
* a 1 MB gzip legacy message set (magic 1, Produce v2) inflating to 1000 MiB of
  zeros -> CORRUPT_MESSAGE (an inner message size of 0, below the minimum).
"""

from __future__ import annotations

import os
import re
import select
import struct
import subprocess
import sys
import uuid
import zlib
from collections.abc import Iterator

import crc32c
import pytest
import zstandard

from kstub.protocol import ErrorCode
from kstub.protocol.primitives import write_varint as _varint

from support.raw import RawClient

MIB = 1 << 20
GIB = 1 << 30
PEAK_RSS_LIMIT = 300 * MIB
T0 = 1_700_000_000_000  # record timestamps


def _record_head(key: bytes, value_len: int, offset_delta: int = 0) -> bytes:
    """A v2 record up to its value: the value (value_len bytes) and a headers count of 0 must follow."""
    fields = b"\x00" + _varint(0) + _varint(offset_delta) + _varint(len(key)) + key + _varint(value_len)
    return _varint(len(fields) + value_len + 1) + fields


def _v2_batch(payload: bytes, count: int, codec: int) -> bytes:
    after_crc = struct.pack(">hiqqqhii", codec, count - 1, T0, T0, -1, -1, -1, count) + payload
    head = struct.pack(">qiib", 0, 4 + 1 + 4 + len(after_crc), -1, 2)
    return head + struct.pack(">I", crc32c.crc32c(after_crc)) + after_crc


def _zeros(total: int) -> Iterator[bytes]:
    chunk = bytes(MIB)
    for _ in range(total // MIB):
        yield chunk


def _zstd(parts: Iterator[bytes]) -> bytes:
    c = zstandard.ZstdCompressor(level=3).compressobj()
    out = [c.compress(p) for p in parts]
    out.append(c.flush())
    return b"".join(out)


def zstd_garbage_tail_bomb() -> bytes:
    """One declared record, followed by 1 GiB of zeros."""

    def parts() -> Iterator[bytes]:
        yield _record_head(b"k", 1) + b"v" + _varint(0)
        yield from _zeros(GIB)

    return _v2_batch(_zstd(parts()), 1, 4)


def zstd_huge_record_bomb() -> bytes:
    """One legal record with a key and a 1 GiB value of zeros."""

    def parts() -> Iterator[bytes]:
        yield _record_head(b"k", GIB)
        yield from _zeros(GIB)
        yield _varint(0)

    return _v2_batch(_zstd(parts()), 1, 4)


def gzip_legacy_bomb() -> bytes:
    """A magic-1 message set: one gzip wrapper whose value inflates to 1000 MiB of zeros."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    value = b"".join([*(c.compress(z) for z in _zeros(1000 * MIB)), c.flush()])
    body = struct.pack(">bbq", 1, 1, T0) + struct.pack(">i", -1) + struct.pack(">i", len(value)) + value
    return struct.pack(">qiI", 0, len(body) + 4, zlib.crc32(body)) + body


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    made = {"tail": zstd_garbage_tail_bomb(), "huge": zstd_huge_record_bomb(), "legacy": gzip_legacy_bomb()}
    assert len(made["tail"]) < 64 * 1024 and len(made["huge"]) < 64 * 1024  # tens of KB
    assert 1_000_000 < len(made["legacy"]) < 1_048_588  # about 1 MB: under message.max.bytes
    return made


class Server:
    """`kstub serve` in a process of its own, so that its peak RSS is its own."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kstub", "serve", "--port", "0", "--log-level", "INFO"],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            m = re.search(r"kstub ready: bootstrap servers (\S+)", line)
            if m:
                self.bootstrap = m.group(1)
                break
        else:
            raise RuntimeError(f"kstub serve exited with {self.proc.wait()}")

    def peak_rss(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


@pytest.fixture
def server() -> Iterator[Server]:
    if not os.path.exists("/proc/self/status"):
        pytest.skip("reads the peak RSS from /proc")
    s = Server()
    try:
        yield s
    finally:
        s.close()


def create(c: RawClient, name: str, **configs: str) -> None:
    body = c.request(
        19,
        7,
        {
            "topics": [
                {
                    "name": name,
                    "num_partitions": 1,
                    "replication_factor": 1,
                    "assignments": [],
                    "configs": [{"name": k, "value": v} for k, v in configs.items()],
                }
            ],
            "timeout_ms": 5000,
        },
    )
    assert body.topics[0].error_code == ErrorCode.NONE


def produce_request(topic: str, records: bytes, version: int = 9) -> dict:
    return {
        "transactional_id": None,
        "acks": -1,
        "timeout_ms": 60000,
        "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": records}]}],
    }


def partition_error(resp) -> ErrorCode:
    return resp.responses[0].partition_responses[0].error_code


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_zstd_bomb_to_a_compacted_topic_is_refused_in_bounded_memory(server, bombs):
    with RawClient(server.bootstrap, timeout=120) as c:
        topic = unique("compacted")
        create(c, topic, **{"cleanup.policy": "compact"})
        resp = c.request(0, 9, produce_request(topic, bombs["tail"]))
        assert partition_error(resp) == ErrorCode.INVALID_RECORD
        assert "records still remaining" in resp.responses[0].partition_responses[0].error_message

        capped = unique("capped")
        create(c, capped, **{"cleanup.policy": "compact", "max.decompressed.message.bytes": str(MIB)})
        resp = c.request(0, 9, produce_request(capped, bombs["huge"]))
        assert partition_error(resp) == ErrorCode.INVALID_RECORD
        assert "exceeds the configured maximum record size of 1048576" in (
            resp.responses[0].partition_responses[0].error_message
        )
        # Kafka enforces the cap wherever it decompresses: on every compressed batch, compacted topic or not
        capped_delete = unique("capped-delete")
        create(c, capped_delete, **{"max.decompressed.message.bytes": str(MIB)})
        resp = c.request(0, 9, produce_request(capped_delete, bombs["huge"]))
        assert partition_error(resp) == ErrorCode.INVALID_RECORD
        # nothing was appended; the server still takes ordinary data
        resp = c.request(0, 9, produce_request(topic, _v2_batch(_record_head(b"a", 1) + b"b" + _varint(0), 1, 0)))
        assert partition_error(resp) == ErrorCode.NONE
        assert resp.responses[0].partition_responses[0].base_offset == 0
    assert server.peak_rss() < PEAK_RSS_LIMIT


def test_legacy_gzip_bomb_is_refused_in_bounded_memory(server, bombs):
    with RawClient(server.bootstrap, timeout=120) as c:
        topic = unique("legacy")
        create(c, topic)
        resp = c.request(0, 2, produce_request(topic, bombs["legacy"]))
        assert partition_error(resp) == ErrorCode.CORRUPT_MESSAGE
    assert server.peak_rss() < PEAK_RSS_LIMIT


def _readable(c: RawClient) -> bool:
    return bool(select.select([c.sock], [], [], 0)[0])


def assert_served_meanwhile(a: RawClient, b: RawClient, topic: str, api_key: int, version: int, body: dict):
    """Send the same heavy request twice on connection a (pipelined, so served one after the other);
    once the first answer is in, the server is busy with the second: connection b's Metadata must be
    answered before it. (A server walking on its event loop answers b only after a's second request.)
    Returns a's two responses."""
    a.send(api_key, version, body)
    a.send(api_key, version, body)
    first = a.receive()
    meta = b.request(3, 12, {"topics": [{"name": topic}], "allow_auto_topic_creation": False})
    assert meta.topics[0].error_code == ErrorCode.NONE
    assert not _readable(a), "Metadata on another connection waited for the heavy request"
    return first, a.receive()


def test_legal_bomb_is_walked_off_the_event_loop_and_found_by_timestamp(server, bombs):
    topic = unique("huge")
    with RawClient(server.bootstrap, timeout=120) as a, RawClient(server.bootstrap, timeout=120) as b:
        create(a, topic, **{"cleanup.policy": "compact"})
        # Every key of a compacted topic is checked: 1 GiB to walk per produce. Legal under Kafka's default
        # max.decompressed.message.bytes, so accepted.
        first, second = assert_served_meanwhile(a, b, topic, 0, 9, produce_request(topic, bombs["huge"]))
        assert [partition_error(r) for r in (first, second)] == [ErrorCode.NONE, ErrorCode.NONE]

        # ListOffsets by timestamp walks the same gigabyte to find the record, the same way
        lo = {"replica_id": -1, "topics": [{"name": topic, "partitions": [{"partition_index": 0, "timestamp": T0}]}]}
        for resp in assert_served_meanwhile(a, b, topic, 2, 7, lo):
            found = resp.topics[0].partitions[0]
            assert (found.error_code, found.offset, found.timestamp) == (ErrorCode.NONE, 0, T0)

        # With the cap lowered below the stored record, lookups that walk it fail as in Kafka 4.4
        alter = {
            "validate_only": False,
            "resources": [
                {
                    "resource_type": 2,
                    "resource_name": topic,
                    "configs": [{"name": "max.decompressed.message.bytes", "config_operation": 0, "value": str(MIB)}],
                }
            ],
        }
        assert a.request(44, 1, alter).responses[0].error_code == ErrorCode.NONE
        for ts in (T0, -3):  # by timestamp, by max timestamp
            lo["topics"][0]["partitions"][0]["timestamp"] = ts
            assert a.request(2, 7, lo).topics[0].partitions[0].error_code == ErrorCode.INVALID_RECORD
    assert server.peak_rss() < PEAK_RSS_LIMIT
