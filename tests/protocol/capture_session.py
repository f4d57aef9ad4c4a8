"""Capture real clients' requests during a whole session with kstub, as golden files.

Run by hand from the repository root (the tests never run it)::

    python tests/protocol/capture_session.py              # every step
    python tests/protocol/capture_session.py kcat aiokafka  # steps whose name starts so

(a consumer step reads what its family's producer step wrote: select
families, e.g. ``kafka-python``, not a consumer alone).

`capture_golden.py` can only see a client's first frame (ApiVersions), since
nothing answers it. This script serves a real kstub in-process
(`kstub.embedded.EmbeddedCluster`, one broker on an ephemeral loopback port),
wraps `ServerConnection.decode_request` (in this process only) to see every
request frame the broker receives (and `ServerConnection.receive_data`, to
tell which step opened the connection), and drives the real clients through a
session, one step after another (each step's client is closed before the
next starts):

===========================  ===============================================
step (client name)           what it does
===========================  ===============================================
kafka-python-admin           KafkaAdminClient.create_topics
kafka-python-producer        KafkaProducer, default idempotence: 3 records
kafka-python-consumer        KafkaConsumer assign + seek(0), poll, then
                             offsets_for_times
confluent-kafka-admin        AdminClient create_topics (two), delete_topics
confluent-kafka-producer     Producer, gzip, 3 compressible records
confluent-kafka-consumer     Consumer assign at OFFSET_BEGINNING, consume
aiokafka-producer            AIOKafkaProducer send_and_wait x2
aiokafka-consumer            AIOKafkaConsumer assign + seek_to_beginning
kcat                         ``kcat -P``, ``kcat -C -e``, ``kcat -L``
===========================  ===============================================

The first frame of each (client, api key, version) is written, without its
4-byte size prefix, to ``tests/protocol/golden/<client>_<api>_v<N>.bin``
(the naming of `capture_golden.py`). The client name is the step's; the
``client_id`` of every frame is checked against it (kafka-python and aiokafka
put their role in it, librdkafka always says ``rdkafka``) so that a straggler
from an earlier step is never saved under the wrong name. A connection
belongs to the step running when its first bytes arrive (the broker may decode
a pipelined frame after the client has exited). Metadata requests come in
three kinds, naming no topic (a bootstrap or brokers-only refresh), some
topics, or all topics (null): besides the client's first Metadata, the first
of each other kind is saved with that kind as a label, e.g.
``kcat_metadata_v4.all.bin`` (``kcat -L``).

Only APIs that kstub declares (`kstub.protocol.messages.ALL`) are saved.
ApiVersions is saved only when it is not the first frame on its connection
(a retry after UNSUPPORTED_VERSION); first frames are `capture_golden.py`'s.
Record contents and timestamps are fixed, so a re-run changes only what the
clients themselves vary (e.g. the CRC of a batch stamped with the wall clock).
"""

from __future__ import annotations

import asyncio
import io
import re
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kstub.embedded import EmbeddedCluster
from kstub.protocol import connection as protocol_connection
from kstub.protocol.headers import read_request_header
from kstub.protocol.messages import ALL

GOLDEN = Path(__file__).resolve().parent / "golden"
TIMEOUT = 30.0
BASE_TS = 1_700_000_000_000  # CreateTime of every record produced with an explicit timestamp
RECORDS = [(b"k%d" % i, b"v%d" % i, BASE_TS + i) for i in range(3)]
API_VERSIONS = 18
METADATA = 3


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _client_id_role(client_id: str | None) -> str | None:
    """The client name a client_id implies, when it implies one (kafka-python, aiokafka put roles in it)."""
    m = re.fullmatch(r"(kafka-python|aiokafka)-(producer|consumer|admin)-\d+", client_id or "")
    return f"{m[1]}-{m[2]}" if m else None


@dataclass
class Captured:
    client: str
    label: str | None  # the Metadata kind, when not the client's first Metadata
    frame: bytes
    client_id: str | None

    @property
    def path(self) -> Path:
        key, version = struct.unpack_from(">hh", self.frame)
        label = f".{self.label}" if self.label else ""
        return GOLDEN / f"{self.client}_{snake(ALL[key].name)}_v{version}{label}.bin"


class Recorder:
    """Wraps ServerConnection.receive_data and decode_request; keeps the frames worth saving."""

    def __init__(self) -> None:
        self.step: str | None = None
        self.saved: dict[tuple[str, str | None, int, int], Captured] = {}
        self.first_metadata_kind: dict[tuple[str, int], str] = {}
        self.mismatched: list[str] = []
        self._originals: dict[str, Callable[..., Any]] = {}

    def install(self) -> None:
        cls = protocol_connection.ServerConnection
        self._originals = {"receive_data": cls.receive_data, "decode_request": cls.decode_request}
        receive_data, decode_request = cls.receive_data, cls.decode_request
        recorder = self

        # marks set on the connection objects, in this process only
        def receive_wrapper(conn: Any, data: bytes) -> None:
            if not hasattr(conn, "_golden_step"):
                conn._golden_step = recorder.step
            receive_data(conn, data)

        def decode_wrapper(conn: Any, frame: bytes) -> Any:
            first = not getattr(conn, "_golden_seen", False)
            conn._golden_seen = True
            recorder.record(getattr(conn, "_golden_step", None), frame, first_on_connection=first)
            return decode_request(conn, frame)

        cls.receive_data = receive_wrapper  # type: ignore[method-assign]
        cls.decode_request = decode_wrapper  # type: ignore[method-assign]

    def uninstall(self) -> None:
        for name, fn in self._originals.items():
            setattr(protocol_connection.ServerConnection, name, fn)

    def record(self, step: str | None, frame: bytes, *, first_on_connection: bool) -> None:
        if len(frame) < 10 or step is None:
            return
        key, version, _corr, id_len = struct.unpack_from(">hhih", frame)
        client_id = None if id_len < 0 else frame[10 : 10 + id_len].decode("utf-8", "replace")
        api = ALL.get(key)
        if api is None or not api.supports(version):
            return
        if key == API_VERSIONS and first_on_connection:
            return
        implied = _client_id_role(client_id)
        if implied is not None and implied != step:
            self.mismatched.append(f"{api.name} v{version} from {client_id!r} on a connection of step {step}")
            return
        label = self._metadata_label(step, version, frame) if key == METADATA else None
        self.saved.setdefault((step, label, key, version), Captured(step, label, frame, client_id))

    def _metadata_label(self, client: str, version: int, frame: bytes) -> str | None:
        """None for the client's first Metadata; then "none", "topics" or "all" for the first of another kind."""
        api = ALL[METADATA]
        stream = io.BytesIO(frame)
        read_request_header(stream, api.request_header_version(version))
        topics = api.request_codec(version).read(stream).topics
        kind = "all" if topics is None else "topics" if topics else "none"
        first = self.first_metadata_kind.setdefault((client, version), kind)
        return None if kind == first else kind


# -- the steps ----------------------------------------------------------------------------------------------------


def _deadline_loop(what: str) -> Iterator[None]:
    """Iterate until the caller breaks out; TimeoutError after TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        yield
    raise TimeoutError(what)


def kafka_python_admin(bootstrap: str) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic("golden-kafka-python", 1, 1)])
    finally:
        admin.close()


def kafka_python_producer(bootstrap: str) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    try:
        futures = [
            producer.send("golden-kafka-python", key=k, value=v, timestamp_ms=ts, partition=0) for k, v, ts in RECORDS
        ]
        producer.flush(TIMEOUT)
        for f in futures:
            f.get(TIMEOUT)
    finally:
        producer.close(TIMEOUT)


def kafka_python_consumer(bootstrap: str) -> None:
    from kafka import KafkaConsumer, TopicPartition

    tp = TopicPartition("golden-kafka-python", 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        got: list[Any] = []
        for _ in _deadline_loop("kafka-python consumer: records"):
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(records)
            if len(got) >= len(RECORDS):
                break
        found = consumer.offsets_for_times({tp: BASE_TS + 1})
        assert found[tp] is not None and found[tp].offset == 1, found
    finally:
        consumer.close()


def confluent_admin(bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics(
        [NewTopic("golden-confluent", 1, 1), NewTopic("golden-confluent-tmp", 2, 1)], request_timeout=TIMEOUT
    ).values():
        f.result(TIMEOUT)
    for f in admin.delete_topics(["golden-confluent-tmp"], request_timeout=TIMEOUT).values():
        f.result(TIMEOUT)


def confluent_producer(bootstrap: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": "gzip", "linger.ms": 50})
    errors: list[Any] = []
    for k, v, ts in RECORDS:
        # compressible, so librdkafka keeps the gzip
        producer.produce(
            "golden-confluent",
            key=k,
            value=v * 40,
            timestamp=ts,
            partition=0,
            on_delivery=lambda e, m: errors.append(e),
        )
    assert producer.flush(TIMEOUT) == 0
    assert errors == [None] * len(RECORDS), errors


def confluent_consumer(bootstrap: str) -> None:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "golden", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition("golden-confluent", 0, OFFSET_BEGINNING)])
        got = []
        for _ in _deadline_loop("confluent-kafka consumer: records"):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg)
            if len(got) >= len(RECORDS):
                break
    finally:
        consumer.close()


def aiokafka_producer(bootstrap: str) -> None:
    from aiokafka import AIOKafkaProducer

    async def main() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for k, v, ts in RECORDS[:2]:
                await producer.send_and_wait("golden-aiokafka", key=k, value=v, timestamp_ms=ts, partition=0)
        finally:
            await producer.stop()

    asyncio.run(main())


def aiokafka_consumer(bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def main() -> None:
        tp = TopicPartition("golden-aiokafka", 0)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            got: list[Any] = []
            for _ in _deadline_loop("aiokafka consumer: records"):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend(records)
                if len(got) >= 2:
                    break
        finally:
            await consumer.stop()

    asyncio.run(main())


def kcat(bootstrap: str) -> None:
    def run(*argv: str, stdin: bytes = b"") -> None:
        subprocess.run(["kcat", *argv, "-b", bootstrap], input=stdin, capture_output=True, timeout=TIMEOUT, check=True)

    run("-P", "-t", "golden-kcat", "-p", "0", "-K", ":", stdin=b"k0:v0\nk1:v1\n")
    run("-C", "-t", "golden-kcat", "-p", "0", "-o", "beginning", "-e", "-q")
    run("-L")


STEPS: dict[str, Callable[..., None]] = {
    "kafka-python-admin": kafka_python_admin,
    "kafka-python-producer": kafka_python_producer,
    "kafka-python-consumer": kafka_python_consumer,
    "confluent-kafka-admin": confluent_admin,
    "confluent-kafka-producer": confluent_producer,
    "confluent-kafka-consumer": confluent_consumer,
    "aiokafka-producer": aiokafka_producer,
    "aiokafka-consumer": aiokafka_consumer,
    "kcat": kcat,
}


def main(argv: list[str]) -> int:
    steps = [s for s in STEPS if not argv or any(s.startswith(a) for a in argv)]
    if not steps:
        print(f"no step matches {argv}; steps: {list(STEPS)}", file=sys.stderr)
        return 2
    recorder = Recorder()
    recorder.install()
    failed = 0
    try:
        with EmbeddedCluster(brokers=1) as cluster:
            bootstrap = cluster.bootstrap_servers
            for step in steps:
                start = time.monotonic()
                recorder.step = step
                try:
                    STEPS[step](bootstrap)
                except Exception as exc:  # report and go on with the other clients
                    print(f"{step}: FAILED: {exc!r}", file=sys.stderr)
                    failed += 1
                finally:
                    recorder.step = None
                print(f"{step}: done in {time.monotonic() - start:.1f}s", file=sys.stderr)
    finally:
        recorder.uninstall()
    GOLDEN.mkdir(exist_ok=True)
    total = 0
    for captured in sorted(recorder.saved.values(), key=lambda c: c.path.name):
        captured.path.write_bytes(captured.frame)
        total += len(captured.frame)
        name = captured.path.relative_to(GOLDEN.parent)
        print(f"{name} ({len(captured.frame)} bytes, client_id {captured.client_id!r})")
    print(f"{len(recorder.saved)} files, {total} bytes", file=sys.stderr)
    for line in recorder.mismatched:
        print(f"not saved (client_id of another step): {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
