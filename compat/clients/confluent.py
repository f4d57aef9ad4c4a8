"""confluent-kafka (librdkafka through its Python binding)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from ..model import ClientError, ClusterMeta, Delivery, Msg, PartitionMeta, Record
from .base import Member, PythonLibraryClient, ThreadMember


def _error(err: Any) -> ClientError:
    """A librdkafka KafkaError (or a KafkaException carrying one) as a ClientError named like Kafka's codes."""
    from confluent_kafka import KafkaError, KafkaException

    if isinstance(err, KafkaException) and err.args and isinstance(err.args[0], KafkaError):
        err = err.args[0]
    if isinstance(err, KafkaError):
        name = err.name()
        kinds = {
            "_TIMED_OUT": "TIMEOUT",
            "_MSG_TIMED_OUT": "TIMEOUT",
            "UNKNOWN_TOPIC_OR_PART": "UNKNOWN_TOPIC_OR_PARTITION",
            "_UNKNOWN_TOPIC": "UNKNOWN_TOPIC_OR_PARTITION",
        }
        return ClientError(kinds.get(name, name), err.str())
    return ClientError(type(err).__name__, str(err))


def _record(m: Any) -> Record:
    headers = tuple((k, v) for k, v in (m.headers() or []))
    return Record(m.partition(), m.offset(), m.key(), m.value(), headers, m.timestamp()[1])


class Confluent(PythonLibraryClient):
    name = "confluent-kafka"
    module = "confluent_kafka"
    package = "confluent-kafka"

    @classmethod
    def version(cls) -> str:
        import confluent_kafka

        version = confluent_kafka.version()  # a str in 2.x, a (str, int) tuple in older releases
        if isinstance(version, tuple):
            version = version[0]
        return f"{version} (librdkafka {confluent_kafka.libversion()[0]})"

    def _conf(self, **extra: Any) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, "socket.timeout.ms": int(self.timeout * 1000), **extra}

    def metadata(self, topics: list[str]) -> ClusterMeta:
        from confluent_kafka.admin import AdminClient

        meta = AdminClient(self._conf()).list_topics(timeout=self.timeout)
        out = ClusterMeta({b.id: (b.host, b.port) for b in meta.brokers.values()})
        for name in topics:
            t = meta.topics.get(name)
            if t is not None and t.error is None:
                out.topics[name] = {
                    p.id: PartitionMeta(p.leader, tuple(p.replicas), tuple(p.isrs)) for p in t.partitions.values()
                }
        return out

    def create_topic(self, topic: str, partitions: int, replication_factor: int = 1) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient(self._conf())
        futures = admin.create_topics([NewTopic(topic, partitions, replication_factor)], operation_timeout=self.timeout)
        try:
            futures[topic].result(timeout=self.timeout)
        except KafkaException as exc:
            raise _error(exc) from exc

    def produce(
        self,
        topic: str,
        msgs: list[Msg],
        *,
        acks: str = "all",
        compression: str | None = None,
        idempotent: bool | None = None,
        flush_each: bool = False,
    ) -> list[Delivery]:
        from confluent_kafka import Producer

        conf = self._conf(
            **{
                "acks": acks,
                "linger.ms": 5,
                "compression.type": compression or "none",
                "message.timeout.ms": int(self.timeout * 1000),
                # A topic the cluster does not know fails its messages after this, not after 30 s.
                "topic.metadata.propagation.max.ms": 2000,
            }
        )
        if idempotent is not None:
            conf["enable.idempotence"] = idempotent
        if flush_each:
            conf["sticky.partitioning.linger.ms"] = 0  # null keys: a partition per message, not per time slice
        producer = Producer(conf)
        out: list[Delivery | None] = [None] * len(msgs)
        errors: list[Any] = []

        def on_delivery(i: int):
            def callback(err: Any, kmsg: Any) -> None:
                if err is not None:
                    errors.append(err)
                else:
                    out[i] = Delivery(kmsg.partition(), kmsg.offset())

            return callback

        for i, m in enumerate(msgs):
            kwargs: dict[str, Any] = {"key": m.key, "value": m.value, "on_delivery": on_delivery(i)}
            if m.headers:
                kwargs["headers"] = list(m.headers)
            if m.timestamp is not None:
                kwargs["timestamp"] = m.timestamp
            if m.partition is not None:
                kwargs["partition"] = m.partition
            producer.produce(topic, **kwargs)
            if flush_each:
                producer.flush(self.timeout)
        remaining = producer.flush(self.timeout)
        if errors:
            raise _error(errors[0])
        if remaining or any(d is None for d in out):
            raise ClientError("TIMEOUT", f"{remaining} message(s) not delivered within {self.timeout}s")
        return [d for d in out if d is not None]

    def _consumer(self, group: str | None = None, **extra: Any) -> Any:
        from confluent_kafka import Consumer

        return Consumer(
            self._conf(
                **{
                    "group.id": group or f"compat-assign-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False,
                    "enable.partition.eof": False,
                    "session.timeout.ms": 10000,
                    "heartbeat.interval.ms": 500,
                    "topic.metadata.refresh.interval.ms": 1000,
                    **extra,
                }
            )
        )

    def _poll(self, consumer: Any, count: int) -> list[Record]:
        got: list[Record] = []
        deadline = time.monotonic() + self.timeout
        while len(got) < count and time.monotonic() < deadline:
            for m in consumer.consume(count - len(got), timeout=0.2):
                if m.error():
                    raise _error(m.error())
                got.append(_record(m))
        return got

    def consume(self, topic: str, starts: dict[int, int], count: int) -> list[Record]:
        from confluent_kafka import TopicPartition

        consumer = self._consumer()
        try:
            consumer.assign([TopicPartition(topic, p, off) for p, off in starts.items()])
            return self._poll(consumer, count)
        finally:
            consumer.close()

    @staticmethod
    def _commit(consumer: Any, topic: str, records: list[Record]) -> None:
        from confluent_kafka import TopicPartition

        last: dict[int, int] = {}
        for r in records:
            last[r.partition] = max(last.get(r.partition, -1), r.offset)
        if last:
            consumer.commit(offsets=[TopicPartition(topic, p, o + 1) for p, o in last.items()], asynchronous=False)

    def group_consume(self, group: str, topic: str, count: int, *, reset: str = "earliest") -> list[Record]:
        from confluent_kafka import KafkaException

        consumer = self._consumer(group, **{"auto.offset.reset": reset})
        try:
            consumer.subscribe([topic])
            got = self._poll(consumer, count)
            self._commit(consumer, topic, got)
            return got
        except KafkaException as exc:
            raise _error(exc) from exc
        finally:
            consumer.close()

    def group_member(self, group: str, topic: str) -> Member:
        def body(member: ThreadMember) -> None:
            consumer = self._consumer(group, **{"auto.offset.reset": "earliest"})
            try:
                consumer.subscribe([topic])
                while not member.stopping.is_set():
                    batch = []
                    for m in consumer.consume(100, timeout=0.1):
                        if m.error():
                            raise _error(m.error())
                        batch.append(_record(m))
                    self._commit(consumer, topic, batch)
                    member.add_records(batch)
                    member.set_assignment(frozenset(tp.partition for tp in consumer.assignment()))
            finally:
                consumer.close()

        return ThreadMember(f"{self.name}-{group}", body)

    def consume_new(self, group: str, topic: str, then_produce: list[Msg]) -> list[Record]:
        # librdkafka's position() stays unset until a message is consumed; the partition-EOF event
        # says the fetcher has reached the end, so the reset to latest has happened.
        from confluent_kafka import KafkaError

        consumer = self._consumer(group, **{"auto.offset.reset": "latest", "enable.partition.eof": True})
        try:
            consumer.subscribe([topic])
            got: list[Record] = []
            at_end: set[int] = set()
            deadline = time.monotonic() + self.timeout

            def positioned() -> bool:
                assigned = {tp.partition for tp in consumer.assignment()}
                return bool(assigned) and assigned <= at_end

            while not positioned():
                if time.monotonic() > deadline:
                    raise ClientError("TIMEOUT", "the consumer did not reach the end of its partitions")
                for m in consumer.consume(10, timeout=0.05):
                    if m.error() and m.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition())
                    elif m.error():
                        raise _error(m.error())
                    else:
                        got.append(_record(m))
            self.produce(topic, then_produce)
            deadline = time.monotonic() + self.timeout
            while len(got) < len(then_produce) and time.monotonic() < deadline:
                for m in consumer.consume(len(then_produce) - len(got), timeout=0.2):
                    if m.error() and m.error().code() != KafkaError._PARTITION_EOF:
                        raise _error(m.error())
                    if not m.error():
                        got.append(_record(m))
            return got
        finally:
            consumer.close()

    def offsets_for_times(self, topic: str, times: dict[int, int]) -> dict[int, int | None]:
        from confluent_kafka import TopicPartition

        consumer = self._consumer()
        try:
            found = consumer.offsets_for_times(
                [TopicPartition(topic, p, ts) for p, ts in times.items()], timeout=self.timeout
            )
            return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in found}
        finally:
            consumer.close()
