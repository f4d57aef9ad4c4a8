"""kafka-python (pure Python; KafkaProducer, KafkaConsumer, KafkaAdminClient)."""

from __future__ import annotations

import time
from typing import Any

from ..model import ClientError, ClusterMeta, Delivery, Msg, PartitionMeta, Record
from .base import Member, PythonLibraryClient, ThreadMember


def _error(exc: Exception) -> ClientError:
    from kafka.errors import KafkaTimeoutError

    if isinstance(exc, KafkaTimeoutError):
        return ClientError("TIMEOUT", str(exc))
    kind = getattr(exc, "message", None)
    if isinstance(kind, str) and kind.isupper():
        return ClientError(kind, str(exc))
    return ClientError(type(exc).__name__, str(exc))


def _record(r: Any) -> Record:
    return Record(r.partition, r.offset, r.key, r.value, tuple((k, v) for k, v in r.headers), r.timestamp)


class KafkaPython(PythonLibraryClient):
    name = "kafka-python"
    module = "kafka"
    package = "kafka-python"
    limitations = {
        "metadata": "KafkaAdminClient.describe_cluster fails on brokers before 3.7, which answer DescribeCluster "
        "v0 only: its answer has no endpoint_type, which kafka-python 3.0 pops (KeyError)",
    }

    def _admin(self) -> Any:
        from kafka.admin import KafkaAdminClient

        return KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=self._ms())

    def metadata(self, topics: list[str]) -> ClusterMeta:
        admin = self._admin()
        try:
            cluster = admin.describe_cluster()
            out = ClusterMeta({b["broker_id"]: (b["host"], b["port"]) for b in cluster["brokers"]})
            for t in admin.describe_topics(topics):
                if t["error_code"] == 0:
                    out.topics[t["name"]] = {
                        p["partition_index"]: PartitionMeta(
                            p["leader_id"], tuple(p["replica_nodes"]), tuple(p["isr_nodes"])
                        )
                        for p in t["partitions"]
                    }
            return out
        finally:
            admin.close()

    def create_topic(self, topic: str, partitions: int, replication_factor: int = 1) -> None:
        from kafka.admin import NewTopic
        from kafka.errors import KafkaError

        admin = self._admin()
        try:
            admin.create_topics([NewTopic(topic, partitions, replication_factor)], timeout_ms=self._ms())
        except KafkaError as exc:
            raise _error(exc) from exc
        finally:
            admin.close()

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
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks=-1 if acks == "all" else int(acks),
            compression_type=compression,
            linger_ms=5,
            max_block_ms=self._ms(),
            request_timeout_ms=self._ms(),
            **({} if idempotent is None else {"enable_idempotence": idempotent}),
        )
        try:
            futures = []
            for m in msgs:
                fut = producer.send(
                    topic,
                    key=m.key,
                    value=m.value,
                    headers=list(m.headers),
                    partition=m.partition,
                    timestamp_ms=m.timestamp,
                )
                if flush_each:
                    fut.get(timeout=self.timeout)
                futures.append(fut)
            producer.flush(timeout=self.timeout)
            out = []
            for fut in futures:
                meta = fut.get(timeout=self.timeout)
                out.append(Delivery(meta.partition, meta.offset))
            return out
        except KafkaError as exc:
            raise _error(exc) from exc
        finally:
            producer.close(timeout=5)

    def consume(self, topic: str, starts: dict[int, int], count: int) -> list[Record]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None)
        try:
            tps = [TopicPartition(topic, p) for p in starts]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, starts[tp.partition])
            return self._poll(consumer, count)
        finally:
            consumer.close()

    def _poll(self, consumer: Any, count: int) -> list[Record]:
        got: list[Record] = []
        deadline = time.monotonic() + self.timeout
        while len(got) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200, max_records=count - len(got)).values():
                got += [_record(r) for r in records]
        return got

    def _group_consumer(self, group: str, topic: str, reset: str) -> Any:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=group,
            auto_offset_reset=reset,
            enable_auto_commit=False,
            session_timeout_ms=10000,
            heartbeat_interval_ms=500,
            request_timeout_ms=self._ms() + 15000,
        )
        # Know the topic's partitions before joining: otherwise the leader assigns nothing, refreshes
        # metadata and rejoins at once, and kafka-python 3.0.12 sometimes never completes that second
        # SyncGroup when other consumers run in the process (the broker's answer is sent; see README).
        # After subscribe(): the coordinator's snapshot of the subscribed topics' partitions, which the
        # leader compares after each assignment, is taken at a metadata update once subscribed; taken
        # before, it stays {} until the next update, and the leader rejoins when that comes.
        consumer.subscribe([topic])
        consumer.partitions_for_topic(topic)
        return consumer

    @staticmethod
    def _commit(consumer: Any, topic: str, records: list[Record]) -> None:
        from kafka import OffsetAndMetadata, TopicPartition

        last: dict[int, int] = {}
        for r in records:
            last[r.partition] = max(last.get(r.partition, -1), r.offset)
        if last:
            consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(o + 1, "", -1) for p, o in last.items()})

    def group_consume(self, group: str, topic: str, count: int, *, reset: str = "earliest") -> list[Record]:
        from kafka.errors import KafkaError, RebalanceInProgressError

        consumer = self._group_consumer(group, topic, reset)
        try:
            got = self._poll(consumer, count)
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    self._commit(consumer, topic, got)
                    break
                except RebalanceInProgressError:
                    # kafka-python rejoins when its metadata changes (other topics come and go on a shared
                    # cluster); as the error says, poll to complete the rebalance, then commit again
                    if time.monotonic() > deadline:
                        # kafka-python 3.0.12 sometimes never completes a rejoin's SyncGroup when other consumers
                        # run in the process (see _group_consumer): leave, and commit as a fresh member
                        consumer.close()
                        consumer = self._rejoined(group, topic, reset)
                        self._commit(consumer, topic, got)
                        break
                    consumer.poll(timeout_ms=100)
            return got
        except KafkaError as exc:
            raise _error(exc) from exc
        finally:
            consumer.close()

    def _rejoined(self, group: str, topic: str, reset: str) -> Any:
        """A new member of `group`, once it has its assignment (it may then commit)."""
        consumer = self._group_consumer(group, topic, reset)
        deadline = time.monotonic() + self.timeout
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(timeout_ms=100, max_records=1)
            consumer.pause(*consumer.assignment())  # read nothing more: only the commit is wanted
        return consumer

    def group_member(self, group: str, topic: str) -> Member:
        def body(member: ThreadMember) -> None:
            from kafka.errors import RebalanceInProgressError

            consumer = self._group_consumer(group, topic, "earliest")
            pending: list[Record] = []  # read, not yet committed
            try:
                while not member.stopping.is_set():
                    batch = [_record(r) for rs in consumer.poll(timeout_ms=100).values() for r in rs]
                    member.add_records(batch)
                    pending += batch
                    owned = frozenset(tp.partition for tp in consumer.assignment())
                    try:
                        self._commit(consumer, topic, [r for r in pending if r.partition in owned])
                        pending = []
                    except RebalanceInProgressError:
                        # kafka-python rejoins when its metadata changes (topics come and go on a shared
                        # cluster): as the error says, the next poll completes the rebalance; commit then
                        pass
                    member.set_assignment(owned)
                # leaving: what was read is committed first (kafka-python does not on close without
                # auto-commit), or the next owner reads it again
                self._commit_before_leaving(consumer, topic, pending)
            finally:
                consumer.close()

        return ThreadMember(f"{self.name}-{group}", body)

    def _commit_before_leaving(self, consumer: Any, topic: str, pending: list[Record]) -> None:
        """Commit `pending` (read, not yet committed) for the partitions still owned, completing a rebalance
        kafka-python has begun (its commit refuses until then); partitions are paused meanwhile, and what
        a newly assigned one gives is left uncommitted, for the next owner."""
        from kafka.errors import RebalanceInProgressError

        deadline = time.monotonic() + self.timeout
        while pending:
            owned = frozenset(tp.partition for tp in consumer.assignment())
            try:
                self._commit(consumer, topic, [r for r in pending if r.partition in owned])
                return
            except RebalanceInProgressError as exc:
                if time.monotonic() > deadline:
                    raise ClientError("REBALANCE_IN_PROGRESS", f"left without committing what it read: {exc}") from exc
                consumer.pause(*consumer.assignment())  # kept through the rebalance for partitions kept
                consumer.poll(timeout_ms=100)

    def consume_new(self, group: str, topic: str, then_produce: list[Msg]) -> list[Record]:
        consumer = self._group_consumer(group, topic, "latest")
        try:
            got: list[Record] = []
            deadline = time.monotonic() + self.timeout
            while not consumer.assignment():
                if time.monotonic() > deadline:
                    raise ClientError("TIMEOUT", "no partitions assigned")
                for records in consumer.poll(timeout_ms=100).values():
                    got += [_record(r) for r in records]
            for tp in consumer.assignment():
                consumer.position(tp)  # blocks until the reset policy has set it
            self.produce(topic, then_produce)
            return got + self._poll(consumer, len(then_produce) - len(got))
        finally:
            consumer.close()

    def offsets_for_times(self, topic: str, times: dict[int, int]) -> dict[int, int | None]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        try:
            found = consumer.offsets_for_times({TopicPartition(topic, p): ts for p, ts in times.items()})
            return {tp.partition: (o.offset if o is not None else None) for tp, o in found.items()}
        finally:
            consumer.close()
