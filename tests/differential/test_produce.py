"""Produce: validation of what is sent (CRC, counts, sizes, compression vs version), errors, idempotence."""

from __future__ import annotations

import time

import pytest

from support import batches
from support.batches import batch
from support.diff_requests import create, fetch_body, produce_body
from support.differential import Pair, Side


@pytest.mark.parametrize("version", [3, 5, 7, 8, 9])
@pytest.mark.parametrize("acks", [1, -1])
def test_produce_then_fetch(pair: Pair, version: int, acks: int) -> None:
    name = create(pair, partitions=2)
    pair.compare(0, produce_body(name, batch(3), acks=acks), version=version)
    pair.compare(0, produce_body(name, batch(2), acks=acks, partition=1), version=version)
    pair.compare(0, produce_body(name, batch(1), acks=acks), version=version)
    pair.compare(1, fetch_body(name, 0))


@pytest.mark.parametrize("acks", [-1, 1])
def test_min_insync_replicas_above_the_replicas(pair: Pair, acks: int) -> None:
    name = create(pair, configs={"min.insync.replicas": "2"})
    pair.compare(0, produce_body(name, batch(2), acks=acks))
    pair.compare(1, fetch_body(name, 0))


@pytest.mark.parametrize("acks", [2, -2, 5])
def test_invalid_acks(pair: Pair, acks: int) -> None:
    name = create(pair)
    pair.compare(0, produce_body(name, batch(1), acks=acks))


def test_unknown_topic_and_partition(pair: Pair) -> None:
    name = create(pair)
    pair.compare(0, produce_body(pair.name(), batch(1)))
    pair.compare(0, produce_body(name, batch(1), partition=1))
    pair.compare(0, produce_body(name, batch(1), partition=-1))
    pair.compare(0, produce_body("bad name", batch(1)))


def test_one_good_one_bad_partition(pair: Pair) -> None:
    name = create(pair)
    body = produce_body(name, batch(2))
    body["topic_data"][0]["partition_data"].append({"index": 7, "records": batch(1)})
    pair.compare(0, body, unordered=("partition_responses",))  # Kafka answers in hash order
    pair.compare(1, fetch_body(name, 0))


@pytest.mark.parametrize(
    "records",
    [
        pytest.param(batches.bad_crc(batch(2)), id="bad-crc"),
        pytest.param(batches.with_record_count(batch(3), 4), id="count-too-high"),
        pytest.param(batches.with_record_count(batch(3), 2), id="count-too-low"),
        pytest.param(batches.with_record_count(batch(3), 0), id="count-zero"),
        pytest.param(batches.with_record_count(batch(3), -1), id="count-negative"),
        pytest.param(batch(2)[:-3], id="truncated"),
        pytest.param(batch(2) + b"\x00\x00", id="trailing-bytes"),
        pytest.param(batches.legacy_message(magic=1), id="magic-1"),
        pytest.param(batches.legacy_message(magic=0), id="magic-0"),
        pytest.param(b"", id="empty"),
        # (null records: Kafka 4.4 never answers such a request)
    ],
)
def test_invalid_records(pair: Pair, records: bytes | None) -> None:
    name = create(pair)
    pair.compare(0, produce_body(name, records))
    pair.compare(1, fetch_body(name, 0))


@pytest.mark.parametrize("codec", [5, 6, 7])
def test_unknown_compression_codec(pair: Pair, codec: int) -> None:
    name = create(pair)
    pair.compare(0, produce_body(name, batches.with_compression(batch(2), codec)), known="produce-unknown-codec")


def test_two_batches_in_one_partition(pair: Pair) -> None:
    name = create(pair)
    pair.compare(0, produce_body(name, batch(2) + batch(3)))
    pair.compare(1, fetch_body(name, 0))


@pytest.mark.parametrize("size", [900, 1100, 5000])
def test_max_message_bytes(pair: Pair, size: int) -> None:
    name = create(pair, configs={"max.message.bytes": "1000"})
    pair.compare(0, produce_body(name, batch(1, value_size=size)))


def test_batch_bigger_than_the_broker_default_is_refused(pair: Pair) -> None:
    name = create(pair)
    pair.compare(0, produce_body(name, batch(2, value_size=600_000)))


@pytest.mark.parametrize("codec", [batches.GZIP, batches.LZ4, batches.ZSTD])
@pytest.mark.parametrize("version", [3, 6, 7, 9])
def test_compression_vs_version(pair: Pair, codec: int, version: int) -> None:
    name = create(pair)
    pair.compare(0, produce_body(name, batch(3, compression=codec)), version=version)
    pair.compare(1, fetch_body(name, 0))


@pytest.mark.parametrize("codec", ["gzip", "zstd", "uncompressed"])
def test_topic_compression_type(pair: Pair, codec: str) -> None:
    name = create(pair, configs={"compression.type": codec})
    pair.compare(0, produce_body(name, batch(3, compression=batches.LZ4)))
    pair.compare(1, fetch_body(name, 0))


@pytest.mark.parametrize("offset_ms", [-10 * 86_400_000, 30 * 60_000, 2 * 3_600_000])
def test_timestamps_against_the_bounds(pair: Pair, offset_ms: int) -> None:
    name = create(pair)
    now = int(time.time() * 1000)
    pair.compare(0, produce_body(name, batch(2, ts=now + offset_ms)))


def test_log_append_time_topic(pair: Pair) -> None:
    name = create(pair, configs={"message.timestamp.type": "LogAppendTime"})
    kstub, kafka = pair.send(0, produce_body(name, batch(2)))
    for answer in (kstub, kafka):
        assert answer.responses[0].partition_responses[0].log_append_time_ms > 0
    pair.compare(0, produce_body(name, batch(2)))


# --- idempotence -------------------------------------------------------------------------


def init_pid(pair: Pair) -> dict[str, tuple[int, int]]:
    """A new idempotent producer on each broker: side name → (producer id, epoch)."""
    body = {"transactional_id": None, "transaction_timeout_ms": 60000, "producer_id": -1, "producer_epoch": -1}
    pids = {}
    for side in pair.sides:
        deadline = time.monotonic() + 30
        while True:  # Kafka's first producer id block comes from the controller: retriable errors until then
            answer = side.conn.request(22, body)
            if answer.error_code == 0:
                break
            assert answer.error_code in (14, 15, 7) and time.monotonic() < deadline, (side.name, answer)
            time.sleep(0.1)
        pids[side.name] = (answer.producer_id, answer.producer_epoch)
    return pids


def idem(name: str, pids: dict, seq: int, n: int = 2, *, epoch_delta: int = 0, pid: int | None = None):
    def build(side: Side) -> dict:
        producer_id, epoch = pids[side.name]
        records = batch(n, producer_id=producer_id if pid is None else pid, epoch=epoch + epoch_delta, sequence=seq)
        return produce_body(name, records)

    return build


def test_idempotent_sequences(pair: Pair) -> None:
    name = create(pair)
    pids = init_pid(pair)
    pair.compare(0, idem(name, pids, 0))  # offsets 0-1
    pair.compare(0, idem(name, pids, 2))  # 2-3
    pair.compare(0, idem(name, pids, 2))  # duplicate of the last batch: its offsets again
    pair.compare(0, idem(name, pids, 0))  # duplicate of an earlier batch
    pair.compare(0, idem(name, pids, 5))  # a gap: OUT_OF_ORDER_SEQUENCE_NUMBER
    pair.compare(0, idem(name, pids, 3))  # overlapping: out of order too
    pair.compare(0, idem(name, pids, 4))  # the next one still works
    pair.compare(1, fetch_body(name, 0))


def test_idempotent_first_sequence_not_zero(pair: Pair) -> None:
    name = create(pair)
    pair.compare(0, idem(name, init_pid(pair), 3))


def test_idempotent_epochs(pair: Pair) -> None:
    name = create(pair)
    pids = init_pid(pair)
    pair.compare(0, idem(name, pids, 0))
    pair.compare(0, idem(name, pids, 2, epoch_delta=1))  # a new epoch must start at 0
    pair.compare(0, idem(name, pids, 0, epoch_delta=1))  # it does
    pair.compare(0, idem(name, pids, 2))  # the old epoch is fenced


def test_unknown_producer_id(pair: Pair) -> None:
    name = create(pair)
    pids = init_pid(pair)
    pair.compare(0, idem(name, pids, 0, pid=987_654_321))
    pair.compare(0, idem(name, pids, 7, pid=987_654_322))


def test_transactional_batch_without_transaction(pair: Pair) -> None:
    name = create(pair)
    pids = init_pid(pair)

    def build(side: Side) -> dict:
        producer_id, epoch = pids[side.name]
        return produce_body(name, batch(2, producer_id=producer_id, epoch=epoch, sequence=0, transactional=True))

    pair.compare(0, build)


@pytest.mark.parametrize("compression", [batches.NONE, 1, 4], ids=["none", "gzip", "zstd"])
def test_a_record_above_max_decompressed_message_bytes(pair: Pair, compression: int) -> None:
    """Kafka 4.4's per-record cap on what a compressed batch inflates to (uncompressed batches are not capped)."""
    name = create(pair, configs={"max.decompressed.message.bytes": "1000"})
    pair.compare(0, produce_body(name, batch(2, value_size=5000, compression=compression)))
    pair.compare(0, produce_body(name, batch(2, value_size=100, compression=compression)))
    pair.compare(1, fetch_body(name, 0))


def _garbled(data: bytes) -> bytes:
    """`data` with its first record's length varint shrunk to 1 byte, which the record's fields overrun; CRC fixed."""
    out = bytearray(data)
    out[61] = 0x02
    return batches.fix_crc(bytes(out))


def test_records_that_do_not_parse_behind_a_good_crc(pair: Pair) -> None:
    # Kafka decodes every record of a produced batch; kstub does not on the produce path (zero copy), so it
    # stores this batch where Kafka refuses it: a deliberate difference. A compacted topic, which must read
    # the keys, refuses it as Kafka does.
    name = create(pair)
    pair.compare(0, produce_body(name, _garbled(batch(2))), known="produce-garbled-records")
    compacted = create(pair, configs={"cleanup.policy": "compact"})
    pair.compare(0, produce_body(compacted, _garbled(batch(2))), ignore=("record_errors",))
