"""Decode request frames that real clients actually sent (``golden/*.bin``).

Every file in ``golden/`` is one request frame without its 4-byte size
prefix, named ``<client>_<api>_v<N>[.<label>].bin`` (see
``capture_golden.py``, which wrote each client's first frame, and
``capture_session.py``, which wrote the requests of whole client sessions
with kstub). Each file found is tested automatically:

* the name is well formed and agrees with the api key and version in the
  header;
* the header decodes with the header version kstub would pick for that
  request (v2 for flexible versions, v1 otherwise) and re-encodes to the same
  bytes;
* if kstub implements that version, the body decodes *exactly* (no trailing
  bytes) and the whole frame re-encodes byte for byte.

`EXPECTED` adds the concrete values seen in a capture. To add a golden:
drop the file in ``golden/``; add an `EXPECTED` entry with what the client
is known to have sent. A body key may be a dotted path into nested arrays
(``"topics.0.partitions.0.fetch_offset"``) and must name a field that the
version carries; a value may be a predicate (`at_least`, `batch`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from kstub.protocol.headers import read_request_header, request_header_codec
from kstub.protocol.messages import ALL
from kstub.protocol.records import RecordBatch
from kstub.protocol.schema import Field

GOLDEN = Path(__file__).resolve().parent / "golden"
NAME = re.compile(
    r"^(?P<client>[a-z0-9][a-z0-9-]*)_(?P<api>[a-z][a-z_]*?)_v(?P<version>\d+)(?:\.(?P<label>[A-Za-z0-9-]+))?\.bin$"
)
FILES = sorted(GOLDEN.glob("*.bin"))


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


API_BY_NAME = {snake(api.name): api for api in ALL.values()}


@dataclass(frozen=True)
class Expect:
    """What a capture is known to contain."""

    header: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    #: for a version kstub does not implement: decode the body as this
    #: (implemented) version, whose layout it shares
    body_as: int | None = None
    #: for API keys kstub does not declare: which request header version
    header_version: int | None = None


Check = Callable[[Any], bool]


def at_least(n: int) -> Check:
    return lambda value: value >= n


def batch(*, records: Sequence[tuple[Any, ...]] | Check | None = None, **header: Any) -> Check:
    """Check a produce ``records`` field: exactly one magic-2 batch with a valid CRC-32C.

    `header` names `RecordBatch` properties (values or predicates); `records`
    is the ``(key, value, timestamp)`` of every record, or a predicate on that
    list.
    """

    def check(data: bytes) -> bool:
        view = RecordBatch(bytes(data))
        view.validate()
        assert view.size == len(data), "one batch per partition (Kafka's rule for Produce v3+)"
        for name, want in header.items():
            got = getattr(view, name)
            assert want(got) if callable(want) else got == want, f"batch {name} is {got!r}"
        if records is not None:
            got_records = [(r.key, r.value, r.timestamp) for r in view.records()]
            assert records(got_records) if callable(records) else got_records == list(records), got_records
        return True

    return check


def _lookup(body: Any, path: str) -> Any:
    for part in path.split("."):
        body = body[int(part)] if part.isdigit() else body[part]
    return body


def _carried(fields: Sequence[Field], path: str, version: int) -> bool:
    """Whether every field along `path` exists in `version` (a default filled in by the decoder proves nothing)."""
    for part in (p for p in path.split(".") if not p.isdigit()):
        f = next((f for f in fields if f.name == part), None)
        if f is None or f.version_range is None or version not in f.version_range:
            return False
        fields = f.children or ()
    return True


#: CreateTime of the records capture_session.py produces with explicit timestamps
TS = 1_700_000_000_000

#: file stem -> expected values
EXPECTED: dict[str, Expect] = {
    # kafka-python 3.0.12 probes with ApiVersions v4 (the same fields as v3).
    "kafka-python-producer_api_versions_v4": Expect(
        header={"correlation_id": 1, "client_id": "kafka-python-producer-1"},
        body={"client_software_name": "kafka-python", "client_software_version": "3.0.12"},
    ),
    "kafka-python-admin_api_versions_v4": Expect(
        header={"correlation_id": 1, "client_id": "kafka-python-3.0.12"},
        body={"client_software_name": "kafka-python", "client_software_version": "3.0.12"},
    ),
    # librdkafka 2.16.0 inside confluent-kafka 2.16.1
    "confluent-kafka_api_versions_v3": Expect(
        header={"correlation_id": 1, "client_id": "rdkafka"},
        body={"client_software_name": "confluent-kafka-python", "client_software_version": "2.16.1-rdkafka-2.16.0"},
    ),
    # kcat 1.7.1 on librdkafka 2.0.2
    "kcat_api_versions_v3": Expect(
        header={"correlation_id": 1, "client_id": "rdkafka"},
        body={"client_software_name": "librdkafka", "client_software_version": "2.0.2"},
    ),
    # aiokafka 0.14.0 always starts with ApiVersions v0 (empty body)
    "aiokafka_api_versions_v0": Expect(header={"correlation_id": 1, "client_id": "aiokafka-producer-1"}),
    # ---- captured by capture_session.py, through kstub (records at TS, TS+1, ... with keys k0, k1, ...) ----
    # kafka-python: kstub answers the v4 probe with UNSUPPORTED_VERSION listing 0-3; the client retries at v3 on
    # the same connection (CLIENTS.md 1.2)
    **{
        f"{client}_api_versions_v3": Expect(
            header={"correlation_id": 2, "client_id": client_id},
            body={"client_software_name": "kafka-python", "client_software_version": "3.0.12"},
        )
        for client, client_id in (
            ("kafka-python-producer", "kafka-python-producer-1"),
            ("kafka-python-admin", "kafka-python-3.0.12"),
            ("kafka-python-consumer", "kafka-python-3.0.12"),
        )
    },
    "kafka-python-admin_metadata_v12": Expect(
        header={"client_id": "kafka-python-3.0.12"}, body={"topics": [], "allow_auto_topic_creation": True}
    ),
    "kafka-python-admin_create_topics_v7": Expect(
        header={"client_id": "kafka-python-3.0.12"},
        body={
            "topics.0.name": "golden-kafka-python",
            "topics.0.num_partitions": 1,
            "topics.0.replication_factor": 1,
            "topics.0.assignments": [],
            "topics.0.configs": [],
            "timeout_ms": 30000,  # request_timeout_ms
            "validate_only": False,
        },
    ),
    # bootstrap Metadata: no topics, allow_auto_topic_creation True (CLIENTS.md 1.1)
    "kafka-python-producer_metadata_v12": Expect(
        header={"client_id": "kafka-python-producer-1"}, body={"topics": [], "allow_auto_topic_creation": True}
    ),
    "kafka-python-producer_metadata_v12.topics": Expect(
        header={"client_id": "kafka-python-producer-1"},
        body={
            "topics.0.name": "golden-kafka-python",
            "topics.0.topic_id": UUID(int=0),
            "allow_auto_topic_creation": True,
            "include_topic_authorized_operations": False,
        },
    ),
    # idempotence is on by default: InitProducerId before the first Produce (CLIENTS.md 1.1)
    "kafka-python-producer_init_producer_id_v4": Expect(
        header={"client_id": "kafka-python-producer-1"},
        body={"transactional_id": None, "transaction_timeout_ms": 0, "producer_id": -1, "producer_epoch": -1},
    ),
    # acks -1; magic 2, the producer id kstub gave, epoch 0, sequence 0, leader epoch placeholder 0 (CLIENTS.md 1.4,
    # 6.3)
    "kafka-python-producer_produce_v9": Expect(
        header={"client_id": "kafka-python-producer-1"},
        body={
            "transactional_id": None,
            "acks": -1,
            "timeout_ms": 30000,
            "topic_data.0.name": "golden-kafka-python",
            "topic_data.0.partition_data.0.index": 0,
            "topic_data.0.partition_data.0.records": batch(
                magic=2,
                compression=0,
                producer_id=at_least(0),
                producer_epoch=0,
                base_sequence=0,
                partition_leader_epoch=0,
                records_count=3,
                last_offset_delta=2,
                base_timestamp=TS,
                max_timestamp=TS + 2,
                records=[(b"k0", b"v0", TS), (b"k1", b"v1", TS + 1), (b"k2", b"v2", TS + 2)],
            ),
        },
    ),
    "kafka-python-consumer_metadata_v12": Expect(body={"topics": [], "allow_auto_topic_creation": True}),
    "kafka-python-consumer_metadata_v12.topics": Expect(
        body={"topics.0.name": "golden-kafka-python", "allow_auto_topic_creation": True}
    ),
    # assign + seek(0): a fetch session requested (id 0, epoch 0), read_uncommitted (CLIENTS.md 0.3)
    "kafka-python-consumer_fetch_v12": Expect(
        header={"client_id": "kafka-python-3.0.12"},
        body={
            "replica_id": -1,
            "max_wait_ms": 500,
            "min_bytes": 1,
            "max_bytes": 52428800,
            "isolation_level": 0,
            "session_id": 0,
            "session_epoch": 0,
            "topics.0.topic": "golden-kafka-python",
            "topics.0.partitions.0.partition": 0,
            "topics.0.partitions.0.current_leader_epoch": 0,  # kstub's Metadata says 0
            "topics.0.partitions.0.fetch_offset": 0,
            "topics.0.partitions.0.last_fetched_epoch": -1,
            "topics.0.partitions.0.log_start_offset": -1,
            "topics.0.partitions.0.partition_max_bytes": 1048576,
            "forgotten_topics_data": [],
            "rack_id": "",
            "cluster_id": None,
        },
    ),
    # offsets_for_times({tp: TS + 1})
    "kafka-python-consumer_list_offsets_v7": Expect(
        body={
            "replica_id": -1,
            "isolation_level": 0,
            "topics.0.name": "golden-kafka-python",
            "topics.0.partitions.0.partition_index": 0,
            "topics.0.partitions.0.current_leader_epoch": -1,
            "topics.0.partitions.0.timestamp": TS + 1,
        }
    ),
    # librdkafka 2.16.0: the admin client's brokers-only Metadata; allow_auto_topic_creation False
    "confluent-kafka-admin_metadata_v12": Expect(
        header={"client_id": "rdkafka"}, body={"topics": [], "allow_auto_topic_creation": False}
    ),
    "confluent-kafka-admin_create_topics_v4": Expect(
        body={
            "topics.0.name": "golden-confluent",
            "topics.0.num_partitions": 1,
            "topics.0.replication_factor": 1,
            "topics.1.name": "golden-confluent-tmp",
            "topics.1.num_partitions": 2,
            "topics.1.replication_factor": 1,
            "timeout_ms": 60000,
            "validate_only": False,
        }
    ),
    "confluent-kafka-admin_delete_topics_v4": Expect(
        body={"topic_names": ["golden-confluent-tmp"], "timeout_ms": 60000}
    ),
    # the producer asks for its topic with auto-creation, the consumer without (CLIENTS.md 2.4, 2.6)
    "confluent-kafka-producer_metadata_v12": Expect(
        body={"topics.0.name": "golden-confluent", "topics.0.topic_id": UUID(int=0), "allow_auto_topic_creation": True}
    ),
    "confluent-kafka-consumer_metadata_v12": Expect(
        body={"topics.0.name": "golden-confluent", "allow_auto_topic_creation": False}
    ),
    # compression.type gzip; not idempotent: producer id -1, epoch -1, sequence -1 (CLIENTS.md 2.4)
    "confluent-kafka-producer_produce_v9": Expect(
        header={"client_id": "rdkafka"},
        body={
            "transactional_id": None,
            "acks": -1,
            "timeout_ms": 30000,
            "topic_data.0.name": "golden-confluent",
            "topic_data.0.partition_data.0.index": 0,
            "topic_data.0.partition_data.0.records": batch(
                magic=2,
                compression=1,
                producer_id=-1,
                producer_epoch=-1,
                base_sequence=-1,
                partition_leader_epoch=0,
                records_count=3,
                base_timestamp=TS,
                records=[(b"k0", b"v0" * 40, TS), (b"k1", b"v1" * 40, TS + 1), (b"k2", b"v2" * 40, TS + 2)],
            ),
        },
    ),
    # group.id set (with assign): the consumer still looks its coordinator up
    "confluent-kafka-consumer_find_coordinator_v2": Expect(body={"key": "golden", "key_type": 0}),
    # assign at OFFSET_BEGINNING: earliest (-2), read_committed (CLIENTS.md 0.3)
    "confluent-kafka-consumer_list_offsets_v7": Expect(
        body={
            "isolation_level": 1,
            "topics.0.name": "golden-confluent",
            "topics.0.partitions.0.current_leader_epoch": 0,
            "topics.0.partitions.0.timestamp": -2,
        }
    ),
    # sessionless (0, -1), read_committed (CLIENTS.md 2.4)
    "confluent-kafka-consumer_fetch_v12": Expect(
        body={
            "isolation_level": 1,
            "session_id": 0,
            "session_epoch": -1,
            "topics.0.topic": "golden-confluent",
            "topics.0.partitions.0.current_leader_epoch": 0,
            "topics.0.partitions.0.fetch_offset": 0,
            "topics.0.partitions.0.last_fetched_epoch": -1,
        }
    ),
    # aiokafka 0.14.0: Metadata v5, bootstrap without topics (CLIENTS.md 3)
    "aiokafka-producer_metadata_v5": Expect(
        header={"client_id": "aiokafka-producer-1"}, body={"topics": [], "allow_auto_topic_creation": True}
    ),
    "aiokafka-producer_metadata_v5.topics": Expect(
        body={"topics.0.name": "golden-aiokafka", "allow_auto_topic_creation": True}
    ),
    # acks 1, magic 2, producer id -1, epoch -1, sequence 0 (CLIENTS.md 3); leader epoch placeholder -1
    "aiokafka-producer_produce_v7": Expect(
        header={"client_id": "aiokafka-producer-1"},
        body={
            "transactional_id": None,
            "acks": 1,
            "timeout_ms": 40000,  # request_timeout_ms
            "topic_data.0.name": "golden-aiokafka",
            "topic_data.0.partition_data.0.records": batch(
                magic=2,
                compression=0,
                producer_id=-1,
                producer_epoch=-1,
                base_sequence=0,
                partition_leader_epoch=-1,
                records=[(b"k0", b"v0", TS)],
            ),
        },
    ),
    "aiokafka-consumer_metadata_v5": Expect(
        header={"client_id": "aiokafka-0.14.0"}, body={"topics": [], "allow_auto_topic_creation": True}
    ),
    # seek_to_beginning: earliest, read_uncommitted
    "aiokafka-consumer_list_offsets_v3": Expect(
        body={"replica_id": -1, "isolation_level": 0, "topics.0.partitions.0.timestamp": -2}
    ),
    # sessionless, current_leader_epoch -1 (CLIENTS.md 3)
    "aiokafka-consumer_fetch_v11": Expect(
        body={
            "isolation_level": 0,
            "session_id": 0,
            "session_epoch": -1,
            "topics.0.topic": "golden-aiokafka",
            "topics.0.partitions.0.current_leader_epoch": -1,
            "topics.0.partitions.0.fetch_offset": 0,
            "rack_id": "",
        }
    ),
    # kcat 1.7.1 / librdkafka 2.0.2: Metadata v4, Produce v7, ListOffsets v2, Fetch v11 (CLIENTS.md 2.1, 2.5)
    "kcat_metadata_v4": Expect(body={"topics.0.name": "golden-kcat", "allow_auto_topic_creation": True}),
    "kcat_metadata_v4.none": Expect(body={"topics": [], "allow_auto_topic_creation": False}),
    # kcat -L: every topic (null), auto-creation allowed
    "kcat_metadata_v4.all": Expect(body={"topics": None, "allow_auto_topic_creation": True}),
    # -P -K: "k0:v0" first, stamped with the wall clock; not idempotent
    "kcat_produce_v7": Expect(
        header={"client_id": "rdkafka"},
        body={
            "transactional_id": None,
            "acks": -1,
            "timeout_ms": 30000,
            "topic_data.0.name": "golden-kcat",
            "topic_data.0.partition_data.0.index": 0,
            "topic_data.0.partition_data.0.records": batch(
                magic=2,
                compression=0,
                producer_id=-1,
                producer_epoch=-1,
                base_sequence=-1,
                partition_leader_epoch=0,
                base_timestamp=at_least(TS),
                records=lambda rs: rs[0][:2] == (b"k0", b"v0"),
            ),
        },
    ),
    # -C -o beginning: earliest, read_committed
    "kcat_list_offsets_v2": Expect(
        body={
            "replica_id": -1,
            "isolation_level": 1,
            "topics.0.name": "golden-kcat",
            "topics.0.partitions.0.timestamp": -2,
        }
    ),
    "kcat_fetch_v11": Expect(
        body={
            "isolation_level": 1,
            "session_id": 0,
            "session_epoch": -1,
            "topics.0.topic": "golden-kcat",
            "topics.0.partitions.0.current_leader_epoch": -1,
            "topics.0.partitions.0.fetch_offset": 0,
            "topics.0.partitions.0.partition_max_bytes": 1048576,
        }
    ),
}


def test_golden_files_exist() -> None:
    assert GOLDEN.is_dir(), f"{GOLDEN} missing: run tests/protocol/capture_golden.py"
    stems = {p.stem for p in FILES}
    missing = set(EXPECTED) - stems
    assert not missing, f"EXPECTED names captures that are not in {GOLDEN}: {sorted(missing)}"
    # the first request of each client examined
    for client in ("kafka-python-producer", "confluent-kafka", "kcat", "aiokafka"):
        assert any(s.startswith(f"{client}_api_versions_v") for s in stems), client


def _name(path: Path) -> re.Match[str]:
    m = NAME.match(path.name)
    assert m, f"{path.name} is not <client>_<api>_v<N>[.<label>].bin"
    return m


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_golden_frame(path: Path) -> None:
    m = _name(path)
    raw = path.read_bytes()
    expect = EXPECTED.get(path.stem, Expect())
    key = int.from_bytes(raw[0:2], "big", signed=True)
    version = int.from_bytes(raw[2:4], "big", signed=True)
    assert version == int(m["version"]), "file name and header disagree on the version"
    api = ALL.get(key)
    if api is not None:
        assert m["api"] == snake(api.name), f"api key {key} is {api.name}, file says {m['api']}"
        header_version = api.request_header_version(version)
    else:
        assert m["api"] not in API_BY_NAME, f"{m['api']} is api key {API_BY_NAME[m['api']].key}, header says {key}"
        header_version = expect.header_version or 1

    # header
    stream = io.BytesIO(raw)
    header = read_request_header(stream, header_version)
    header_end = stream.tell()
    assert header.request_api_key == key
    assert header.request_api_version == version
    assert isinstance(header.correlation_id, int)
    assert header.client_id is None or isinstance(header.client_id, str)
    for name, value in expect.header.items():
        assert header[name] == value, f"header {name}"
    assert request_header_codec(header_version).encode(header) == raw[:header_end]

    # body
    if api is None:
        assert not expect.body, f"api key {key} is not declared: cannot check the body"
        return
    if api.supports(version):
        assert expect.body_as is None, f"v{version} is implemented: body_as is not needed"
        body_version = version
    else:
        assert version > api.max_version, f"v{version} below kstub's minimum v{api.min_version}"
        if expect.body_as is None:
            return  # a too-new request: the header is all a broker reads
        body_version = expect.body_as
    codec = api.request_codec(body_version)
    body = codec.decode(raw[header_end:], exact=True)
    for name, want in expect.body.items():
        assert _carried(api.request, name, body_version), f"v{body_version} has no field {name}"
        got = _lookup(body, name)
        assert want(got) if callable(want) else got == want, f"body {name} is {got!r}"
    assert request_header_codec(header_version).encode(header) + codec.encode(body) == raw


def test_too_new_api_versions_header_is_still_readable() -> None:
    """A v4 ApiVersions probe: its header is v2 with a classic client_id (as any ApiVersions version's)."""
    path = GOLDEN / "kafka-python-producer_api_versions_v4.bin"
    raw = path.read_bytes()
    api = ALL[18]
    assert api.request_header_version(4) == 2
    assert api.response_header_version(4) == 0
    header = read_request_header(io.BytesIO(raw), 2)
    assert (header.request_api_key, header.request_api_version) == (18, 4)
    # the client_id is an int16-length string even in header v2
    assert raw[8:10] == len("kafka-python-producer-1").to_bytes(2, "big")


def test_librdkafka_v3_body_bytes() -> None:
    """The compact strings and the empty tag sections, spelled out."""
    raw = (GOLDEN / "kcat_api_versions_v3.bin").read_bytes()
    assert raw == (
        bytes.fromhex("0012 0003 00000001")  # key 18, v3, correlation id 1
        + b"\x00\x07rdkafka"  # classic client_id
        + b"\x00"  # header tags
        + b"\x0blibrdkafka"  # compact string: length + 1
        + b"\x062.0.2"
        + b"\x00"  # body tags
    )
