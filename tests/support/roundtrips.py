"""A real client writes values to a topic and reads them back (group ``g-<topic>``, from the earliest offset):
confluent-kafka (librdkafka), kafka-python and aiokafka, each with the settings the test gives (security etc.).

Each returns the values read, sorted: the test compares them with those written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence


def confluent_roundtrip(config: dict[str, str], topic: str, values: Sequence[bytes]) -> list[bytes]:
    import confluent_kafka as ck

    producer = ck.Producer(config)
    for value in values:
        producer.produce(topic, value)
    assert producer.flush(30) == 0
    consumer = ck.Consumer({**config, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[bytes] = []
    try:
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            got.append(message.value())
            if len(got) >= len(values):
                break
    finally:
        consumer.close()
    return sorted(got)


def kafka_python_roundtrip(settings: dict, topic: str, values: Sequence[bytes]) -> list[bytes]:
    import kafka

    producer = kafka.KafkaProducer(**settings)
    for value in values:
        producer.send(topic, value)
    producer.flush(30)
    producer.close()
    consumer = kafka.KafkaConsumer(
        topic, auto_offset_reset="earliest", group_id=f"g-{topic}", consumer_timeout_ms=15000, **settings
    )
    got: list[bytes] = []
    try:
        for message in consumer:
            got.append(message.value)
            if len(got) >= len(values):
                break
    finally:
        consumer.close()
    return sorted(got)


def aiokafka_roundtrip(settings: dict, topic: str, values: Sequence[bytes]) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def run() -> list[bytes]:
        producer = AIOKafkaProducer(acks="all", **settings)
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(topic, value)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", group_id=f"g-{topic}", **settings)
        await consumer.start()
        try:
            got: list[bytes] = []
            while len(got) < len(values):
                batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
                got += [r.value for records in batches.values() for r in records]
            return sorted(got)
        finally:
            await consumer.stop()

    return asyncio.run(run())
