"""The operations of the compatibility suite's out-of-process drivers, in their JSON form.

kafkajs (compat/js/driver.js, one process per operation) and the long-running
drivers of the Java client and franz-go (compat/clients/driven.py) take the same
operations with the same arguments: record bytes in base64, partitions as
numbers. `JsonOps` is their client side; a client supplies `_call(op, **args)`.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

from ..model import ClusterMeta, Delivery, Msg, PartitionMeta, Record


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def _record(r: dict[str, Any]) -> Record:
    headers = tuple((k, _unb64(v) or b"") for k, v in r["headers"])
    return Record(r["partition"], r["offset"], _unb64(r["key"]), _unb64(r["value"]), headers, r["timestamp"])


def _msg(m: Msg) -> dict[str, Any]:
    return {
        "key": _b64(m.key),
        "value": _b64(m.value),
        "headers": [[k, _b64(v)] for k, v in m.headers],
        "partition": m.partition,
        "timestamp": m.timestamp,
    }


class JsonOps:
    """Client operations over a driver's JSON protocol; the class using it defines `_call`."""

    #: what the driver is told when the scenario leaves idempotence to the client (None: the client's default)
    idempotent_default: ClassVar[bool | None] = None

    def _call(self, op: str, **args: Any) -> Any:
        raise NotImplementedError

    def metadata(self, topics: list[str]) -> ClusterMeta:
        answer = self._call("metadata", topics=topics)
        out = ClusterMeta({b[0]: (b[1], b[2]) for b in answer["brokers"]})
        for name, parts in answer["topics"].items():
            out.topics[name] = {
                p["partition"]: PartitionMeta(p["leader"], tuple(p["replicas"]), tuple(p["isr"])) for p in parts
            }
        return out

    def create_topic(self, topic: str, partitions: int, replication_factor: int = 1) -> None:
        self._call("create_topic", topic=topic, partitions=partitions, replicationFactor=replication_factor)

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
        answer = self._call(
            "produce",
            topic=topic,
            messages=[_msg(m) for m in msgs],
            acks=acks,
            compression=compression,
            idempotent=self.idempotent_default if idempotent is None else idempotent,
            flushEach=flush_each,
        )
        return [Delivery(d["partition"], d["offset"]) for d in answer]

    def group_consume(self, group: str, topic: str, count: int, *, reset: str = "earliest") -> list[Record]:
        answer = self._call("group_consume", group=group, topic=topic, count=count, reset=reset)
        return [_record(r) for r in answer]

    def consume_new(self, group: str, topic: str, then_produce: list[Msg]) -> list[Record]:
        answer = self._call("consume_new", group=group, topic=topic, messages=[_msg(m) for m in then_produce])
        return [_record(r) for r in answer]

    def offsets_for_times(self, topic: str, times: dict[int, int]) -> dict[int, int | None]:
        answer = self._call("offsets_for_times", topic=topic, times={str(p): ts for p, ts in times.items()})
        return {int(p): o for p, o in answer.items()}
