"""Differential testing: the same Kafka requests sent to real Kafka and to kstub, the answers compared.

A `Pair` holds one protocol connection to each broker (kstub's own codec as
the client, versions negotiated with ApiVersions). ``pair.compare(api_key,
body)`` sends the request to both at the highest version both speak (or the
one given), normalises both responses and asserts that they are equal field by
field. What legitimately differs between two clusters is normalised away:

- broker identity: node ids become the broker's rank in its cluster
  (``node#0``; broker config resources' names too), hosts and ports are dropped, cluster ids and topic ids
  become aliases in order of first appearance (``topic_id#1``);
- generated names: member ids and producer ids become aliases the same way, so
  the same member answers as the same alias on both brokers;
- order: config lists are compared sorted by name (Kafka lists them in hash order);
- times and texts: throttle times, log-append times and error messages
  (per-record ones too).

Everything else must be equal. A difference kstub keeps on purpose is listed
in ``tests/differential/differences.toml`` with its reason, and the comparison
that names it (``known="..."``) asserts exactly that difference: the listed
paths must differ with exactly the listed values, everything else must match.
"""

from __future__ import annotations

import itertools
import time
import tomllib
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kstub.kafka_client import AdminClient, BrokerConnection
from kstub.protocol import APIS, ErrorCode
from kstub.protocol.records import iter_records
from kstub.protocol.schema import Field

DIFFERENCES_FILE = Path(__file__).resolve().parent.parent / "differential" / "differences.toml"

#: fields dropped before comparing (values that differ between any two clusters)
DROPPED = frozenset(
    {"throttle_time_ms", "host", "port", "error_message", "log_append_time_ms", "rack", "batch_index_error_message"}
)
#: config resource types whose name is a broker's node id (BROKER, BROKER_LOGGER)
BROKER_RESOURCES = frozenset({4, 8})
#: lists whose order carries no meaning, compared sorted by the field given (Kafka lists configs in hash order)
SORTED_BY = {"configs": "name"}
#: fields holding broker node ids (or lists of them)
NODE_FIELDS = frozenset(
    {
        "node_id", "leader_id", "controller_id", "replica_nodes", "isr_nodes", "offline_replicas",
        "eligible_leader_replicas", "last_known_elr", "broker_id", "coordinator_id",
    }
)  # fmt: skip
#: fields holding generated identities, replaced by aliases in order of first appearance
ALIASED = {
    "cluster_id": "cluster",
    "topic_id": "topic_id",
    "member_id": "member",
    "leader": "member",
    "producer_id": "producer",
    "session_id": "session",
    "client_instance_id": "client_instance",
    "subscription_id": "subscription",
}

#: the client id both sides send (it shows in answers: DescribeGroups members, generated member ids)
CLIENT_ID = "kstub-differential"

#: the number of request/response comparisons made in this process (reported at the end of the run)
_compared = 0


def comparisons_made() -> int:
    return _compared


class Side:
    """One broker of the pair, with its normalisation state."""

    def __init__(self, name: str, bootstrap: str) -> None:
        self.name = name
        self.admin = AdminClient(bootstrap, client_id=CLIENT_ID, timeout=30.0)
        self.nodes = {node: rank for rank, node in enumerate(sorted(self.admin.brokers))}
        self.aliases: dict[str, dict[Any, str]] = {}
        self._extra: list[BrokerConnection] = []

    @property
    def conn(self) -> BrokerConnection:
        """The connection to the first broker (the one the bootstrap address named)."""
        return self.admin._bootstrap

    def alias(self, kind: str, value: Any) -> Any:
        if value in (None, "", -1, b""):
            return value
        if kind == "topic_id" and isinstance(value, uuid.UUID) and value.int == 0:
            return value
        if kind in ("session", "subscription") and value == 0:  # no fetch session, no subscription
            return value
        if kind == "client_instance" and isinstance(value, uuid.UUID) and value.int == 0:
            return value
        table = self.aliases.setdefault(kind, {})
        return table.setdefault(value, f"{kind}#{len(table) + 1}")

    def raw(self, kind: str, alias: Any) -> Any:
        """The value this side gave that became `alias` (``member#1`` → this side's member id).

        Anything that is not an alias of `kind` is returned as it is, so a
        request may carry either (an alias, or a literal such as "" or "unknown").
        """
        for value, name in self.aliases.get(kind, {}).items():
            if name == alias:
                return value
        return alias

    def connect(self) -> BrokerConnection:
        """One more connection to the first broker (closed with the side), e.g. for a request left waiting."""
        host, _, port = self.conn.address.rpartition(":")
        conn = BrokerConnection(host, int(port), CLIENT_ID, self.admin.timeout)
        self._extra.append(conn)
        return conn

    def topic_id(self, name: str) -> uuid.UUID:
        """This broker's id of topic `name` (the zero id if it has none)."""
        md = self.conn.request(3, {"topics": [{"name": name}], "allow_auto_topic_creation": False}, version=12)
        return md.topics[0].topic_id if md.topics and md.topics[0].error_code == 0 else uuid.UUID(int=0)

    def with_topic_ids(self, api_key: int, version: int, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """`body` with the topic ids a Fetch v13+ needs filled in from its topic names, as this broker knows them.

        A test writes Fetch bodies by topic name; each broker gets its own ids,
        so the same test compares every Fetch version. An entry that gives its
        own ``topic_id`` keeps it.
        """
        if api_key != 1 or version < 13:
            return body
        out = dict(body)
        for key in ("topics", "forgotten_topics_data"):
            entries = []
            for entry in body.get(key) or []:
                entry = dict(entry)
                if entry.get("topic_id") is None and entry.get("topic"):
                    entry["topic_id"] = self.topic_id(entry["topic"])
                entries.append(entry)
            out[key] = entries
        return out

    def node(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.node(v) for v in value]
        if value in self.nodes:
            return f"node#{self.nodes[value]}"
        return value

    def close(self) -> None:
        for conn in self._extra:
            conn.close()
        self.admin.close()


class Submitted:
    """A request sent to both brokers whose answers are read later (a JoinGroup that waits for others)."""

    def __init__(self, pair: Pair, api_key: int, version: int, conns: list[BrokerConnection]) -> None:
        self.pair = pair
        self.api_key = api_key
        self.version = version
        self._conns = conns
        self._raw: tuple[Any, Any] | None = None

    def raw(self) -> tuple[Any, Any]:
        """Both raw answers (kstub's, Kafka's), waiting for them (up to the connections' timeout)."""
        if self._raw is None:
            self._raw = (_receive(self._conns[0]), _receive(self._conns[1]))
        return self._raw

    def compare(
        self,
        *,
        known: str | None = None,
        ignore: Iterable[str] = (),
        records: bool = True,
        unordered: Iterable[str] = (),
    ) -> tuple[Any, Any]:
        """Wait for both answers and compare them as `Pair.compare` does (and count the comparison)."""
        return self.pair._compare_answers(self.api_key, self.version, self.raw(), known, ignore, records, unordered)


def _receive(conn: BrokerConnection) -> Any:
    return conn.link.receive()


def _records(value: Any) -> Any:
    """A record set as the records it holds (offset, timestamp, key, value, headers): batch framing may differ."""
    if not value:
        return value
    return [(r.offset, r.timestamp, r.key, r.value, [tuple(h) for h in r.headers]) for r in iter_records(bytes(value))]


def normalise(side: Side, value: Any, key: str | None = None, *, records: bool = True) -> Any:
    """`value` (a decoded response, or part of one) with what differs between clusters replaced."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if k.startswith("_") or k in DROPPED:
                continue
            out[k] = normalise(side, v, k, records=records)
        name = out.get("resource_name")
        if out.get("resource_type") in BROKER_RESOURCES and isinstance(name, str) and name.isdigit():
            out["resource_name"] = side.node(int(name))  # a config resource naming a broker by its node id
        return out
    if isinstance(value, list):
        items = [normalise(side, v, key, records=records) for v in value]
        if key in SORTED_BY and all(isinstance(v, Mapping) for v in items):
            items.sort(key=lambda v: str(v.get(SORTED_BY[key])))
        return items
    if key in NODE_FIELDS:
        return side.node(value)
    if key in ALIASED:
        return side.alias(ALIASED[key], value)
    if key == "records" and records and isinstance(value, (bytes, bytearray, memoryview)):
        return _records(value)
    return value


def differences(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Every leaf where `a` and `b` differ, as (path, a's value, b's value)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in dict.fromkeys([*a, *b]):
            out += differences(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}" if path else k)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [(path, a, b)]


@dataclass
class Known:
    """A deliberate difference: at each path, kstub's and Kafka's values."""

    name: str
    reason: str
    paths: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def load_known(path: Path = DIFFERENCES_FILE) -> dict[str, Known]:
    data = tomllib.loads(path.read_text()) if path.exists() else {}
    known = {}
    for name, entry in data.items():
        paths = {d["path"]: (d.get("kstub"), d.get("kafka")) for d in entry.get("diff", [])}
        known[name] = Known(name, entry["reason"], paths)
    return known


class Pair:
    """kstub and real Kafka side by side; every comparison counts toward the suite's total."""

    def __init__(self, kstub_bootstrap: str, kafka_bootstrap: str) -> None:
        self.kstub = Side("kstub", kstub_bootstrap)
        self.kafka = Side("kafka", kafka_bootstrap)
        self.known = load_known()
        self.prefix = f"d{uuid.uuid4().hex[:8]}"
        self._names = itertools.count()

    def close(self) -> None:
        self.kstub.close()
        self.kafka.close()

    def name(self, what: str = "t") -> str:
        """A name unique to this test (topics, groups, transactional ids), the same on both brokers."""
        return f"{self.prefix}-{what}{next(self._names)}"

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.kstub, self.kafka

    def version(self, api_key: int, version: int | None = None) -> int:
        if version is not None:
            return version
        return min(self.kstub.conn.version(api_key), self.kafka.conn.version(api_key))

    def send(self, api_key: int, body: Mapping[str, Any], *, version: int | None = None) -> tuple[Any, Any]:
        """The raw (decoded, unnormalised) responses of kstub and Kafka to the same request."""
        v = self.version(api_key, version)
        return tuple(
            side.conn.request(api_key, side.with_topic_ids(api_key, v, body), version=v) for side in self.sides
        )

    def each(self, fn: Callable[[Side], Any]) -> tuple[Any, Any]:
        """Run `fn` on both sides (for set-up steps whose answers are compared by the caller, or not at all)."""
        return fn(self.kstub), fn(self.kafka)

    def compare(
        self,
        api_key: int,
        body: Mapping[str, Any] | Callable[[Side], Mapping[str, Any]],
        *,
        version: int | None = None,
        known: str | None = None,
        ignore: Iterable[str] = (),
        records: bool = True,
        unordered: Iterable[str] = (),
        view: Callable[[Any], Any] | None = None,
    ) -> tuple[Any, Any]:
        """Send `body` to both, assert the normalised responses equal (but for a `known` difference).

        `body` may be a function of the side, for requests that carry
        side-specific values (a member id, a producer id). `ignore` drops more
        fields by name, for a comparison where they are beside the point.
        `unordered` names arrays whose order Kafka leaves to chance (groups
        answered per __consumer_offsets partition, in hash order): they are
        sorted before comparing. `view` maps each normalised answer to the part
        compared, for answers about the whole broker (ListGroups: keep this
        test's groups, as the real Kafka is shared by the run). Returns both
        normalised responses (after `view`).
        """
        v = self.version(api_key, version)
        raw = []
        for side in self.sides:
            request = body(side) if callable(body) else body
            raw.append(side.conn.request(api_key, side.with_topic_ids(api_key, v, request), version=v))
        return self._compare_answers(api_key, v, (raw[0], raw[1]), known, ignore, records, unordered, view)

    def submit(
        self,
        api_key: int,
        body: Mapping[str, Any] | Callable[[Side], Mapping[str, Any]],
        *,
        version: int | None = None,
    ) -> Submitted:
        """Send `body` to both on connections of its own, without waiting for the answers.

        For a request the broker holds until something else happens (a
        JoinGroup waiting for the rest of the group): send it, make the other
        requests, then `.compare()` the held answers.
        """
        v = self.version(api_key, version)
        conns = []
        for side in self.sides:
            request = side.with_topic_ids(api_key, v, body(side) if callable(body) else body)
            conn = side.connect()
            conn.link.send(api_key, v, request)
            conns.append(conn)
        return Submitted(self, api_key, v, conns)

    def wait_for_coordinator(self, key: str, key_type: int = 0, *, timeout: float = 60.0) -> None:
        """Wait until FindCoordinator for `key` succeeds on both brokers.

        Kafka creates __consumer_offsets (__transaction_state) when the first
        FindCoordinator asks, answering COORDINATOR_NOT_AVAILABLE until it is
        ready; kstub answers at once. Polls: a JVM has no event to wait on.
        """
        deadline = time.monotonic() + timeout
        for side in self.sides:
            while True:
                v = side.conn.version(10)
                if v >= 4:
                    answer = side.conn.request(10, {"key_type": key_type, "coordinator_keys": [key]}, version=v)
                    error = answer.coordinators[0].error_code
                else:
                    error = side.conn.request(10, {"key": key, "key_type": key_type}, version=v).error_code
                if error == ErrorCode.NONE and key_type == 0:
                    # the coordinator is known; it may still be loading its __consumer_offsets partition
                    # (Kafka answers NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS meanwhile)
                    error = side.conn.request(15, {"groups": [key]}).groups[0].error_code
                    if error == ErrorCode.GROUP_ID_NOT_FOUND:  # DescribeGroups v6: loaded, no such group yet
                        error = ErrorCode.NONE
                if error == ErrorCode.NONE:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"{side.name}: no coordinator for {key!r} after {timeout:.0f} s ({error})")
                time.sleep(0.2)

    def _compare_answers(
        self,
        api_key: int,
        v: int,
        raw: tuple[Any, Any],
        known: str | None,
        ignore: Iterable[str],
        records: bool,
        unordered: Iterable[str] = (),
        view: Callable[[Any], Any] | None = None,
    ) -> tuple[Any, Any]:
        fields = APIS[api_key].response
        ours, theirs = (
            _sort(
                _drop(normalise(side, _in_version(fields, v, answer), records=records), frozenset(ignore)),
                frozenset(unordered),
            )
            for side, answer in zip(self.sides, raw, strict=True)
        )
        if view is not None:
            ours, theirs = view(ours), view(theirs)
        self.judge(f"{APIS[api_key].name} v{v}", ours, theirs, known=known)
        return ours, theirs

    def judge(self, label: str, ours: Any, theirs: Any, *, known: str | None = None) -> None:
        """Assert kstub's `ours` equals Kafka's `theirs` (but for a `known` difference); counts as a comparison.

        For answers that need more than `compare` does before comparing (derived
        from several responses, or reshaped), already normalised by the caller.
        """
        global _compared
        found = differences(ours, theirs)
        if known is not None:
            entry = self.known[known]
            expected = {p: tuple(vals) for p, vals in entry.paths.items()}
            got = {p: (a, b) for p, a, b in found}
            assert got == expected, (
                f"{label}: the listed difference {known!r} ({entry.reason}) is not exactly what differs.\n"
                f"listed: {expected}\nfound:  {got}"
            )
        else:
            assert not found, f"{label}: kstub differs from Kafka:\n" + "\n".join(
                f"  {p}: kstub={a!r} kafka={b!r}" for p, a, b in found
            )
        _compared += 1


def _in_version(fields: Sequence[Field], version: int, value: Any) -> Any:
    """A decoded answer without the fields its version does not carry (the decoder fills them with defaults)."""
    if isinstance(value, list):
        return [_in_version(fields, version, v) for v in value]
    if not isinstance(value, Mapping):
        return value
    out = {}
    by_name = {f.name: f for f in fields}
    for k, v in value.items():
        f = by_name.get(k)
        if f is None:
            out[k] = v
        elif f.version_range is not None and version in f.version_range:
            out[k] = v if f.children is None else _in_version(f.children, version, v)
    return out


def _sort(value: Any, names: frozenset[str], key: str | None = None) -> Any:
    """`value` with the arrays under `names` sorted (by their elements' repr, after normalising)."""
    if not names:
        return value
    if isinstance(value, dict):
        return {k: _sort(v, names, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [_sort(v, names) for v in value]
        return sorted(items, key=repr) if key in names else items
    return value


def _drop(value: Any, names: frozenset[str]) -> Any:
    if not names:
        return value
    if isinstance(value, dict):
        return {k: _drop(v, names) for k, v in value.items() if k not in names}
    if isinstance(value, list):
        return [_drop(v, names) for v in value]
    return value
