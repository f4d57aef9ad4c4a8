"""The suite's own view of the cluster, on kstub's codec: set-up and independent checks.

Scenarios use the client under test for what they test, and this probe for
everything else: creating the topics a scenario starts from, reading metadata
and end offsets to check a client's claims, looking at the compression codec
of stored batches, and finding out what the cluster can do (consumer groups,
topic auto-creation). It speaks plain Kafka protocol, so it works against any
broker, and picks for each API the highest version both sides implement.
"""

from __future__ import annotations

import time
from typing import Any

from kstub.kafka_client import Connection
from kstub.protocol import APIS, ErrorCode
from kstub.protocol.records import RecordBatch

from .model import ClusterMeta, PartitionMeta

API_VERSIONS, METADATA, CREATE_TOPICS, DELETE_TOPICS, FETCH, LIST_OFFSETS = 18, 3, 19, 20, 1, 2
DESCRIBE_CONFIGS = 32
# Versions the probe's request bodies are written for (upper bounds; the broker's ranges may lower them).
_CEILING = {METADATA: 12, CREATE_TOPICS: 5, DELETE_TOPICS: 5, FETCH: 12, LIST_OFFSETS: 7, DESCRIBE_CONFIGS: 4}
_FLOOR = {METADATA: 4, CREATE_TOPICS: 1, DELETE_TOPICS: 1, FETCH: 4, LIST_OFFSETS: 1}

# What each capability needs the cluster to advertise in ApiVersions.
GROUP_APIS = {
    10: "FindCoordinator",
    11: "JoinGroup",
    12: "Heartbeat",
    13: "LeaveGroup",
    14: "SyncGroup",
    8: "OffsetCommit",
    9: "OffsetFetch",
}


class ProbeError(Exception):
    pass


def error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"ERROR_{code}"


class _Conn(Connection):
    def __init__(self, host: str, port: int, timeout: float) -> None:
        super().__init__((host, port), client_id="kstub-compat-probe", timeout=timeout)

    def request(self, api_key: int, version: int, body: dict[str, Any]) -> Any:
        try:
            return super().request(api_key, version, body)
        except ConnectionError as exc:
            raise ProbeError(str(exc)) from None


class Probe:
    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self._conns: dict[int, _Conn] = {}
        self._brokers: dict[int, tuple[str, int]] = {}
        self._boot: _Conn | None = None
        self.api_ranges: dict[int, tuple[int, int]] = {}

    # --- connections ----------------------------------------------------------------

    def _bootstrap_conn(self) -> _Conn:
        if self._boot is None:
            errors = []
            for address in self.addresses():
                host, port = address.rsplit(":", 1)
                try:
                    self._boot = _Conn(host.strip("[]"), int(port), self.timeout)
                    break
                except OSError as exc:
                    errors.append(f"{address}: {exc}")
            else:
                raise ProbeError(f"cannot connect to {self.bootstrap}: {'; '.join(errors)}")
            if not self.api_ranges:
                answer = self._boot.request(API_VERSIONS, 0, {})
                if answer.error_code:
                    raise ProbeError(f"ApiVersions: {error_name(answer.error_code)}")
                self.api_ranges = {a.api_key: (a.min_version, a.max_version) for a in answer.api_keys}
        return self._boot

    def addresses(self) -> list[str]:
        """The bootstrap addresses, then those of every broker seen in Metadata."""
        out = [a.strip() for a in self.bootstrap.split(",") if a.strip()]
        out += [f"{h}:{p}" for h, p in self._brokers.values() if f"{h}:{p}" not in out]
        return out

    def _conn(self, node_id: int) -> _Conn:
        conn = self._conns.pop(node_id, None)
        if conn is not None and conn.is_closed_by_peer(wait=False):
            conn.close()
            conn = None
        if conn is None:
            if node_id not in self._brokers:
                self.metadata([])
            host, port = self._brokers[node_id]
            conn = _Conn(host, port, self.timeout)
        self._conns[node_id] = conn
        return conn

    def version(self, api_key: int) -> int:
        self._bootstrap_conn()
        ours = APIS[api_key]
        low, high = self.api_ranges.get(api_key, (0, -1))
        v = min(high, ours.max_version, _CEILING.get(api_key, ours.max_version))
        if v < max(low, _FLOOR.get(api_key, 0)):
            raise ProbeError(f"the cluster does not offer a usable version of {ours.name} (it has {low}-{high})")
        return v

    def close(self) -> None:
        for conn in [*self._conns.values(), self._boot]:
            if conn is not None:
                conn.close()
        self._conns.clear()
        self._boot = None

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- capabilities ---------------------------------------------------------------

    def missing_apis(self, wanted: dict[int, str]) -> list[str]:
        self._bootstrap_conn()
        return [f"{name}({key})" for key, name in wanted.items() if key not in self.api_ranges]

    def auto_creates_topics(self) -> bool:
        """Whether a Metadata request for a fresh name creates it: the brokers' auto.create.topics.enable.

        Asked with DescribeConfigs (answered at once by any broker), not by trying: Kafka 4 answers the
        request that creates a topic with UNKNOWN_TOPIC_OR_PARTITION too, so trying needs a wait.
        """
        self.metadata([])
        node = min(self._brokers)
        body = {
            "resources": [
                {"resource_type": 4, "resource_name": str(node), "configuration_keys": ["auto.create.topics.enable"]}
            ],
            "include_synonyms": False,
            "include_documentation": False,
        }
        answer = self._conn(node).request(DESCRIBE_CONFIGS, self.version(DESCRIBE_CONFIGS), body)
        result = answer.results[0]
        if result.error_code != ErrorCode.NONE:
            raise ProbeError(f"DescribeConfigs of broker {node}: {error_name(result.error_code)}")
        return any(c.name == "auto.create.topics.enable" and c.value == "true" for c in result.configs)

    # --- metadata and admin -----------------------------------------------------------

    def _metadata_raw(self, topics: list[str] | None, allow_auto_create: bool = False) -> Any:
        v = self.version(METADATA)
        body = {
            "topics": None if topics is None else [{"name": t} for t in topics],
            "allow_auto_topic_creation": allow_auto_create,
        }
        try:
            answer = self._bootstrap_conn().request(METADATA, v, body)
        except (OSError, ProbeError):
            # The broker asked may have just been stopped (failover): ask the next one that answers.
            if self._boot is not None:
                self._boot.close()
                self._boot = None
            answer = self._bootstrap_conn().request(METADATA, v, body)
        self._brokers = {b.node_id: (b.host, b.port) for b in answer.brokers}
        return answer

    def metadata(self, topics: list[str] | None = None) -> ClusterMeta:
        """Brokers and the given topics (all topics for None); unknown topics are left out."""
        answer = self._metadata_raw(topics)
        out = ClusterMeta(dict(self._brokers))
        for t in answer.topics:
            if t.error_code == ErrorCode.NONE:
                out.topics[t.name] = {
                    p.partition_index: PartitionMeta(p.leader_id, tuple(p.replica_nodes), tuple(p.isr_nodes))
                    for p in t.partitions
                }
        return out

    def wait_for_topic(self, topic: str, partitions: int, timeout: float = 10.0) -> dict[int, PartitionMeta]:
        """Until every partition of `topic` has a leader (Kafka propagates new topics asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            parts = self.metadata([topic]).topics.get(topic, {})
            if len(parts) == partitions and all(p.leader >= 0 for p in parts.values()):
                return parts
            if time.monotonic() > deadline:
                raise ProbeError(f"topic {topic} has no leader for every partition after {timeout}s: {parts}")
            time.sleep(0.05)

    def create_topic(
        self, topic: str, partitions: int, replication_factor: int = 1, configs: dict[str, str] | None = None
    ) -> None:
        v = self.version(CREATE_TOPICS)
        body = {
            "topics": [
                {
                    "name": topic,
                    "num_partitions": partitions,
                    "replication_factor": replication_factor,
                    "assignments": [],
                    "configs": [{"name": k, "value": val} for k, val in (configs or {}).items()],
                }
            ],
            "timeout_ms": int(self.timeout * 1000),
            "validate_only": False,
        }
        answer = self._conn_for_admin().request(CREATE_TOPICS, v, body)
        code = answer.topics[0].error_code
        if code != ErrorCode.NONE:
            raise ProbeError(f"CreateTopics {topic}: {error_name(code)} {answer.topics[0].error_message or ''}")
        self.wait_for_topic(topic, partitions)
        self._wait_on_every_broker(topic, partitions)

    def _wait_on_every_broker(self, topic: str, partitions: int, timeout: float = 10.0) -> None:
        """Until every broker's Metadata names a leader for each partition of `topic`: Kafka brokers learn of a
        new topic one by one, and a client asking another broker than the probe's must find it too."""
        v = self.version(METADATA)
        body = {"topics": [{"name": topic}], "allow_auto_topic_creation": False}
        deadline = time.monotonic() + timeout
        for node in sorted(self._brokers):
            while True:
                answer = self._conn(node).request(METADATA, v, body)
                t = answer.topics[0]
                complete = t.error_code == ErrorCode.NONE and len(t.partitions) == partitions
                if complete and all(p.leader_id >= 0 for p in t.partitions):
                    break
                if time.monotonic() > deadline:
                    raise ProbeError(f"broker {node} does not know topic {topic} with a leader for each partition")
                time.sleep(0.05)

    def delete_topic(self, topic: str) -> None:
        v = self.version(DELETE_TOPICS)
        answer = self._conn_for_admin().request(DELETE_TOPICS, v, {"topic_names": [topic], "timeout_ms": 10000})
        code = answer.responses[0].error_code
        if code not in (ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION):
            raise ProbeError(f"DeleteTopics {topic}: {error_name(code)}")

    def _conn_for_admin(self) -> _Conn:
        # Kafka wants admin requests at the controller; any broker forwards them in KRaft mode.
        answer = self._metadata_raw([])
        controller = getattr(answer, "controller_id", -1)
        return self._conn(controller) if controller in self._brokers else self._bootstrap_conn()

    # --- data ---------------------------------------------------------------------------

    def _leader(self, topic: str, partition: int) -> int:
        parts = self.metadata([topic]).topics.get(topic)
        if not parts or partition not in parts:
            raise ProbeError(f"no such partition {topic}[{partition}]")
        return parts[partition].leader

    def list_offset(self, topic: str, partition: int, timestamp: int) -> int:
        """ListOffsets at the leader: -1 latest (high watermark), -2 earliest, or a timestamp (-1 if none)."""
        v = self.version(LIST_OFFSETS)
        body = {
            "replica_id": -1,
            "isolation_level": 0,
            "topics": [{"name": topic, "partitions": [{"partition_index": partition, "timestamp": timestamp}]}],
        }
        answer = self._conn(self._leader(topic, partition)).request(LIST_OFFSETS, v, body)
        p = answer.topics[0].partitions[0]
        if p.error_code != ErrorCode.NONE:
            raise ProbeError(f"ListOffsets {topic}[{partition}]: {error_name(p.error_code)}")
        return p.offset

    def end_offset(self, topic: str, partition: int) -> int:
        return self.list_offset(topic, partition, -1)

    def stored_codecs(self, topic: str, partition: int) -> list[int]:
        """The compression codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd) of every stored batch, in order."""
        v = self.version(FETCH)
        end = self.end_offset(topic, partition)
        codecs: list[int] = []
        offset = 0
        conn = self._conn(self._leader(topic, partition))
        while offset < end:
            body = {
                "replica_id": -1,
                "max_wait_ms": 0,
                "min_bytes": 0,
                "max_bytes": 8 << 20,
                "isolation_level": 0,
                "session_id": 0,
                "session_epoch": -1,
                "topics": [
                    {
                        "topic": topic,
                        "partitions": [
                            {"partition": partition, "fetch_offset": offset, "partition_max_bytes": 8 << 20}
                        ],
                    }
                ],
                "forgotten_topics_data": [],
                "rack_id": "",
            }
            answer = conn.request(FETCH, v, body)
            p = answer.responses[0].partitions[0]
            if p.error_code != ErrorCode.NONE:
                raise ProbeError(f"Fetch {topic}[{partition}]@{offset}: {error_name(p.error_code)}")
            data = memoryview(bytes(p.records or b""))
            pos, advanced = 0, False
            while pos + RecordBatch.HEADER_SIZE <= len(data):
                if data[pos + 16] != 2:
                    raise ProbeError(f"{topic}[{partition}] holds a legacy message set at {pos}")
                batch = RecordBatch(data, pos)
                if pos + batch.size > len(data):
                    break
                if batch.last_offset >= offset:
                    codecs.append(batch.compression)
                    offset, advanced = batch.last_offset + 1, True
                pos += batch.size
            if not advanced:
                raise ProbeError(f"Fetch {topic}[{partition}]@{offset} returned no whole batch")
        return codecs
