"""aiokafka (asyncio). Each primitive runs its own event loop; a group member runs one on a thread."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..model import ClientError, ClusterMeta, Delivery, Msg, PartitionMeta, Record
from .base import Member, PythonLibraryClient, ThreadMember

T = TypeVar("T")


def _error(exc: Exception) -> ClientError:
    from aiokafka.errors import KafkaTimeoutError

    if isinstance(exc, KafkaTimeoutError | asyncio.TimeoutError):
        return ClientError("TIMEOUT", str(exc))
    kind = getattr(exc, "message", None)
    if isinstance(kind, str) and kind.isupper():
        return ClientError(kind, str(exc))
    return ClientError(type(exc).__name__, str(exc))


def _record(r: Any) -> Record:
    return Record(r.partition, r.offset, r.key, r.value, tuple((k, v) for k, v in r.headers), r.timestamp)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    from aiokafka.errors import KafkaError

    try:
        return asyncio.run(coro)
    except (TimeoutError, KafkaError) as exc:
        raise _error(exc) from exc


class AioKafka(PythonLibraryClient):
    name = "aiokafka"
    module = "aiokafka"
    package = "aiokafka"

    def metadata(self, topics: list[str]) -> ClusterMeta:
        from aiokafka.admin import AIOKafkaAdminClient

        async def run() -> ClusterMeta:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=self._ms())
            await admin.start()
            try:
                cluster = await admin.describe_cluster()
                out = ClusterMeta({b["node_id"]: (b["host"], b["port"]) for b in cluster["brokers"]})
                for t in await admin.describe_topics(topics):
                    if t["error_code"] == 0:
                        out.topics[t["topic"]] = {
                            p["partition"]: PartitionMeta(p["leader"], tuple(p["replicas"]), tuple(p["isr"]))
                            for p in t["partitions"]
                        }
                return out
            finally:
                await admin.close()

        return _run(run())

    def create_topic(self, topic: str, partitions: int, replication_factor: int = 1) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        from aiokafka.errors import for_code

        async def run() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=self._ms())
            await admin.start()
            try:
                response = await admin.create_topics([NewTopic(topic, partitions, replication_factor)])
            finally:
                await admin.close()
            for _name, code, *message in response.topic_errors:
                if code:
                    raise for_code(code)(*message)

        _run(run())

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
        from aiokafka import AIOKafkaProducer

        async def run() -> list[Delivery]:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks=acks if acks == "all" else int(acks),
                compression_type=compression,
                linger_ms=5,
                request_timeout_ms=self._ms(),
                **({} if idempotent is None else {"enable_idempotence": idempotent}),
            )
            await producer.start()
            try:
                futures = []
                for m in msgs:
                    fut = await asyncio.wait_for(
                        producer.send(
                            topic,
                            key=m.key,
                            value=m.value,
                            headers=list(m.headers),
                            partition=m.partition,
                            timestamp_ms=m.timestamp,
                        ),
                        self.timeout,
                    )
                    if flush_each:
                        await asyncio.wait_for(fut, self.timeout)
                    futures.append(fut)
                out = []
                for fut in futures:
                    meta = await asyncio.wait_for(fut, self.timeout)
                    out.append(Delivery(meta.partition, meta.offset))
                return out
            finally:
                await producer.stop()

        return _run(run())

    async def _poll(self, consumer: Any, count: int) -> list[Record]:
        got: list[Record] = []
        deadline = time.monotonic() + self.timeout
        while len(got) < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200, max_records=count - len(got))).values():
                got += [_record(r) for r in records]
        return got

    def consume(self, topic: str, starts: dict[int, int], count: int) -> list[Record]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        async def run() -> list[Record]:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
            await consumer.start()
            try:
                tps = [TopicPartition(topic, p) for p in starts]
                consumer.assign(tps)
                for tp in tps:
                    consumer.seek(tp, starts[tp.partition])
                return await self._poll(consumer, count)
            finally:
                await consumer.stop()

        return _run(run())

    def _group_consumer(self, group: str, topic: str, reset: str) -> Any:
        from aiokafka import AIOKafkaConsumer

        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.bootstrap,
            group_id=group,
            auto_offset_reset=reset,
            enable_auto_commit=False,
            session_timeout_ms=10000,
            heartbeat_interval_ms=500,
            request_timeout_ms=self._ms() + 15000,
        )

    @staticmethod
    async def _commit(consumer: Any, topic: str, records: list[Record]) -> None:
        from aiokafka import TopicPartition

        last: dict[int, int] = {}
        for r in records:
            last[r.partition] = max(last.get(r.partition, -1), r.offset)
        if last:
            await consumer.commit({TopicPartition(topic, p): o + 1 for p, o in last.items()})

    def group_consume(self, group: str, topic: str, count: int, *, reset: str = "earliest") -> list[Record]:
        async def run() -> list[Record]:
            consumer = self._group_consumer(group, topic, reset)
            await consumer.start()
            try:
                got = await self._poll(consumer, count)
                await self._commit(consumer, topic, got)
                return got
            finally:
                await consumer.stop()

        return _run(run())

    def group_member(self, group: str, topic: str) -> Member:
        async def run(member: ThreadMember) -> None:
            consumer = self._group_consumer(group, topic, "earliest")
            await consumer.start()
            try:
                while not member.stopping.is_set():
                    batch = [_record(r) for rs in (await consumer.getmany(timeout_ms=100)).values() for r in rs]
                    await self._commit(consumer, topic, batch)
                    member.add_records(batch)
                    member.set_assignment(frozenset(tp.partition for tp in consumer.assignment()))
            finally:
                await consumer.stop()

        return ThreadMember(f"{self.name}-{group}", lambda member: asyncio.run(run(member)))

    def consume_new(self, group: str, topic: str, then_produce: list[Msg]) -> list[Record]:
        async def run() -> list[Record]:
            consumer = self._group_consumer(group, topic, "latest")
            await consumer.start()
            try:
                got: list[Record] = []
                deadline = time.monotonic() + self.timeout
                while not consumer.assignment():
                    if time.monotonic() > deadline:
                        raise ClientError("TIMEOUT", "no partitions assigned")
                    for records in (await consumer.getmany(timeout_ms=100)).values():
                        got += [_record(r) for r in records]
                for tp in consumer.assignment():
                    await asyncio.wait_for(consumer.position(tp), self.timeout)  # set by the reset policy
                await asyncio.get_running_loop().run_in_executor(None, self.produce, topic, then_produce)
                return got + await self._poll(consumer, len(then_produce) - len(got))
            finally:
                await consumer.stop()

        return _run(run())

    def offsets_for_times(self, topic: str, times: dict[int, int]) -> dict[int, int | None]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        async def run() -> dict[int, int | None]:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, request_timeout_ms=self._ms())
            await consumer.start()
            try:
                found = await consumer.offsets_for_times({TopicPartition(topic, p): ts for p, ts in times.items()})
                return {tp.partition: (o.offset if o is not None else None) for tp, o in found.items()}
            finally:
                await consumer.stop()

        return _run(run())
