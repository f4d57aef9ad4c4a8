"""A nullable single struct (DescribeTopicPartitions' cursor) is encoded as Kafka does: an int8 marker first."""

from __future__ import annotations

from kstub.protocol import APIS


def test_null_and_present_cursor() -> None:
    codec = APIS[75].request_codec(0)
    null = codec.encode({"topics": [{"name": "t"}], "response_partition_limit": 10, "cursor": None})
    assert bytes(null) == bytes.fromhex("02 02 74 00 00 00 00 0a ff 00".replace(" ", ""))
    present = codec.encode(
        {"topics": [{"name": "t"}], "response_partition_limit": 10, "cursor": {"topic_name": "t", "partition_index": 3}}
    )
    assert bytes(present) == bytes.fromhex("02 02 74 00 00 00 00 0a 01 02 74 00 00 00 03 00 00".replace(" ", ""))
    assert codec.decode(null).cursor is None
    cursor = codec.decode(present).cursor
    assert (cursor.topic_name, cursor.partition_index) == ("t", 3)
