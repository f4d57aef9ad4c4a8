"""compression.type acted on: a topic whose codec is not the producer's stores its batches recompressed, as Kafka."""

from __future__ import annotations

import pytest

from support.batches import GZIP, LZ4, NONE, SNAPPY, ZSTD, batch
from support.diff_requests import create, fetch_body, produce, produce_body
from support.differential import Pair

CODECS = {"uncompressed": NONE, "gzip": GZIP, "snappy": SNAPPY, "lz4": LZ4, "zstd": ZSTD}


def stored_codecs(answer: object) -> list[int]:
    """The compression of each batch in a Fetch answer's first partition (bits 0-2 of the attributes)."""
    data = bytes(answer.responses[0].partitions[0].records or b"")  # type: ignore[attr-defined]
    codecs, pos = [], 0
    while pos + 61 <= len(data):
        codecs.append(data[pos + 22] & 0x07)
        pos += int.from_bytes(data[pos + 8 : pos + 12], "big") + 12
    return codecs


@pytest.mark.parametrize("topic_codec", ["producer", "uncompressed", "gzip", "lz4", "zstd"])
@pytest.mark.parametrize("producer_codec", [NONE, GZIP, SNAPPY])
def test_batches_are_stored_with_the_topics_codec(pair: Pair, topic_codec: str, producer_codec: int) -> None:
    name = create(pair, configs={"compression.type": topic_codec})
    produce(pair, name, batch(5, compression=producer_codec, value_size=100))
    produce(pair, name, batch(3, compression=producer_codec, ts=1_700_000_100_000, value_size=20))
    pair.compare(1, fetch_body(name, 0))  # the same records, offsets and timestamps
    pair.compare(1, fetch_body(name, 6))
    ours, theirs = pair.send(1, fetch_body(name, 0))
    expected = producer_codec if topic_codec == "producer" else CODECS[topic_codec]
    assert stored_codecs(ours) == stored_codecs(theirs) == [expected, expected]


@pytest.mark.parametrize("version", [3, 6, 7])
def test_zstd_topic_and_older_produce_versions(pair: Pair, version: int) -> None:
    name = create(pair, configs={"compression.type": "zstd"})
    pair.compare(0, produce_body(name, batch(3)), version=version)
    pair.compare(1, fetch_body(name, 0))


@pytest.mark.parametrize("topic_codec", ["uncompressed", "lz4"])
def test_too_large_once_recompressed(pair: Pair, topic_codec: str) -> None:
    """A gzip batch within max.message.bytes that is larger stored with the topic's codec is refused
    (uncompressed: 15 kB); lz4 compresses the same records well enough."""
    name = create(pair, configs={"compression.type": topic_codec, "max.message.bytes": "3000"})
    small = batch(3, compression=GZIP, value_size=5000)  # compresses to a few hundred bytes
    assert len(small) < 3000
    answer, _ = pair.compare(0, produce_body(name, small))
    refused = answer["responses"][0]["partition_responses"][0]["error_code"] != 0
    assert refused == (topic_codec == "uncompressed")
    pair.compare(0, produce_body(name, batch(3, compression=GZIP, value_size=100)))
    pair.compare(1, fetch_body(name, 0))
