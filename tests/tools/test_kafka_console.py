"""kafka-console-producer and kafka-console-consumer against kstub, with keys and headers.

What the console producer sends is read back by another client (librdkafka)
record by record, and the console consumer prints it back as it was typed.
"""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from support.kafka_tools import create_topic, tool, unique

LINES = [
    "color:red,n:1\tk1\tfirst value",
    "color:blue\tk2\tsecond value",
    "seq:3\tk1\tthird value",
    "empty:\tk3\ttabs\\tare not split",
]


def _read(bootstrap: str, topic: str, count: int) -> list[tuple]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("read"), "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    out: list[tuple] = []
    try:
        for _ in range(200):
            if len(out) == count:
                break
            msg = consumer.poll(0.5)
            if msg is not None:
                assert msg.error() is None, msg.error()
                out.append((msg.key(), msg.value(), msg.headers() or []))
    finally:
        consumer.close()
    return out


def test_console_producer_and_consumer_with_keys_and_headers(bootstrap: str) -> None:
    topic = unique("console")
    create_topic(bootstrap, topic, 1)
    tool(
        "kafka-console-producer", "--bootstrap-server", bootstrap, "--topic", topic,
        "--reader-property", "parse.key=true", "--reader-property", "parse.headers=true",
        "--command-property", "acks=all",
        input="".join(line + "\n" for line in LINES),
    )  # fmt: skip
    assert _read(bootstrap, topic, 4) == [
        (b"k1", b"first value", [("color", b"red"), ("n", b"1")]),
        (b"k2", b"second value", [("color", b"blue")]),
        (b"k1", b"third value", [("seq", b"3")]),
        (b"k3", b"tabs\\tare not split", [("empty", b"")]),
    ]

    printed = tool(
        "kafka-console-consumer", "--bootstrap-server", bootstrap, "--topic", topic, "--from-beginning",
        "--max-messages", "4", "--timeout-ms", "30000",
        "--formatter-property", "print.key=true", "--formatter-property", "print.headers=true",
        "--formatter-property", "print.partition=true", "--formatter-property", "print.offset=true",
    ).stdout  # fmt: skip
    assert printed.splitlines() == [
        "Partition:0\tOffset:0\tcolor:red,n:1\tk1\tfirst value",
        "Partition:0\tOffset:1\tcolor:blue\tk2\tsecond value",
        "Partition:0\tOffset:2\tseq:3\tk1\tthird value",
        "Partition:0\tOffset:3\tempty:\tk3\ttabs\\tare not split",
    ]
