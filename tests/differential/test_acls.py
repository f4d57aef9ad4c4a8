"""ACLs compared with real Kafka configured the same way: StandardAuthorizer, SASL users.

Real Kafka runs here with its own settings (the shared `real_kafka` has no
authorizer): a PLAINTEXT listener whose User:ANONYMOUS is the super user (the
admin, who creates topics and ACLs) and a SASL_PLAINTEXT one where alice
(PLAIN) is an ordinary user. kstub gets the same settings. The ACL APIs are
compared as the admin sends them; authorization errors as alice gets them,
each test naming its own resources (the clusters live for the module).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kstub import Cluster
from kstub.kafka_client import BrokerConnection, ClientSecurity
from kstub.protocol import ApiKey

from support.diff_requests import create, fetch_body, list_offsets_body, produce_body
from support.differential import Pair, Side
from support.groups_raw import heartbeat_join_body as _hb_join
from support.raw_requests import batch
from support.real_kafka import start_sasl_kafka
from support.served import free_ports

JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required"
    ' user_alice="alice-secret" user_bob="bob-secret" user_dave="dave-secret";'
)
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret", "dave": "dave-secret"}
TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID = 2, 3, 4, 5
LITERAL, PREFIXED, MATCH, ANY = 3, 4, 2, 1
ALLOW, DENY = 3, 2
READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE = 3, 4, 5, 6, 7, 8
IDEMPOTENT_WRITE, DESCRIBE_CONFIGS = 12, 10


def _settings(plain_port: int | str, sasl_port: int | str) -> dict[str, str]:
    return {
        "listeners": f"PLAINTEXT://127.0.0.1:{plain_port},SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{plain_port},SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "authorizer.class.name": AUTHORIZER,
        "super.users": "User:ANONYMOUS",
    }


class Secured:
    """The pair (admin connections) and alice's SASL addresses on each side."""

    def __init__(self, pair: Pair, kstub_sasl: str, kafka_sasl: str) -> None:
        self.pair = pair
        self.addresses = (kstub_sasl, kafka_sasl)

    def connect(self, user: str) -> tuple[BrokerConnection, BrokerConnection]:
        security = ClientSecurity(
            {
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "PLAIN",
                "sasl.username": user,
                "sasl.password": PASSWORDS[user],
            }
        )
        conns = []
        for address in self.addresses:
            host, _, port = address.rpartition(":")
            conns.append(BrokerConnection(host, int(port), "acl-differential", 30.0, security=security))
        return conns[0], conns[1]

    def as_alice(
        self,
        api_key: int,
        body: dict | Callable[[Side], dict],
        *,
        version: int | None = None,
        ignore: tuple[str, ...] = (),
        unordered: tuple[str, ...] = (),
        view: Any = None,
        user: str = "alice",
    ) -> tuple[Any, Any]:
        """Send `body` as alice (or `user`) to both, compare the normalised answers (highest common version)."""
        ours, theirs = self.connect(user)
        try:
            v = version if version is not None else min(ours.version(api_key), theirs.version(api_key))
            kstub_body, kafka_body = (body(side) if callable(body) else body for side in self.pair.sides)
            raw = (ours.request(api_key, kstub_body, version=v), theirs.request(api_key, kafka_body, version=v))
            return self.pair._compare_answers(api_key, v, raw, None, ignore, True, unordered, view)
        finally:
            ours.close()
            theirs.close()

    def grant(
        self,
        *bindings: tuple[int, str, int, int],
        principal: str = "User:alice",
        permission: int = ALLOW,
        host: str = "*",
    ) -> None:
        """Create bindings (type, name, pattern, operation) on both; wait until Kafka's broker applies them."""
        creations = [
            {
                "resource_type": rtype,
                "resource_name": name,
                "resource_pattern_type": pattern,
                "principal": principal,
                "host": host,
                "operation": op,
                "permission_type": permission,
            }
            for rtype, name, pattern, op in bindings
        ]
        create_acls(self.pair, creations)


def _exact(c: dict) -> dict:
    """A filter matching the one binding `c` describes."""
    return {
        "resource_type_filter": c["resource_type"],
        "resource_name_filter": c["resource_name"],
        "pattern_type_filter": c["resource_pattern_type"],
        "principal_filter": c["principal"],
        "host_filter": c["host"],
        "operation": c["operation"],
        "permission_type": c["permission_type"],
    }


def applied(pair: Pair, creations: list[dict], *, present: bool = True) -> None:
    """Wait until Kafka's broker shows (or no longer shows) each binding.

    Kafka's broker learns of ACL changes from the metadata log a moment after
    the controller answers; its DescribeAcls is answered from the broker's
    authorizer, so once that shows the change, requests are authorized by it.
    Polls: a JVM has no event to wait on. kstub applies changes before answering.
    """
    deadline = time.monotonic() + 30
    for c in creations:
        while bool(pair.kafka.conn.request(ApiKey.DESCRIBE_ACLS, _exact(c)).resources) != present:
            assert time.monotonic() < deadline, f"Kafka did not apply {c}"
            time.sleep(0.1)


def create_acls(pair: Pair, creations: list[dict]) -> None:
    for answer in pair.send(ApiKey.CREATE_ACLS, {"creations": creations}):
        assert [r.error_code for r in answer.results] == [0] * len(creations)
    applied(pair, creations)


def describe_filter(
    *, rtype: int = ANY, name: str | None = None, pattern: int = ANY, principal: str | None = None, op: int = ANY
) -> dict:
    return {
        "resource_type_filter": rtype,
        "resource_name_filter": name,
        "pattern_type_filter": pattern,
        "principal_filter": principal,
        "host_filter": None,
        "operation": op,
        "permission_type": ANY,
    }


def creation(rtype: int, name: str, pattern: int = LITERAL, **kw: Any) -> dict:
    return {
        "resource_type": rtype,
        "resource_name": name,
        "resource_pattern_type": pattern,
        "principal": kw.get("principal", "User:bob"),
        "host": kw.get("host", "*"),
        "operation": kw.get("operation", READ),
        "permission_type": kw.get("permission", ALLOW),
    }


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[str, str, str, str]]:
    kafka, kafka_sasl = start_sasl_kafka(_settings)
    try:
        base = free_ports(2)
        ours = _settings(base, base + 1)
        ours["kstub.sasl.users"] = ",".join(f"{user}:{password}" for user, password in PASSWORDS.items())
        with Cluster(config=ours) as cluster:
            yield (
                cluster.bootstrap("PLAINTEXT"),
                kafka.bootstrap_servers,
                cluster.bootstrap("SASL_PLAINTEXT"),
                kafka_sasl,
            )
    finally:
        kafka.stop()


@pytest.fixture
def secured(clusters: tuple[str, str, str, str]) -> Iterator[Secured]:
    kstub_plain, kafka_plain, kstub_sasl, kafka_sasl = clusters
    pair = Pair(kstub_plain, kafka_plain)
    try:
        yield Secured(pair, kstub_sasl, kafka_sasl)
    finally:
        pair.close()


# --- the ACL APIs, as the admin sends them ------------------------------------------------------


def test_create_acls_valid_and_refused(secured: Secured) -> None:
    pair = secured.pair
    name = pair.name("acl")
    creations = [
        creation(TOPIC, name),
        creation(TOPIC, name),  # the same binding twice
        creation(GROUP, f"{name}-", PREFIXED, permission=DENY, operation=ALTER),
        creation(CLUSTER, "kafka-cluster", operation=IDEMPOTENT_WRITE),
        creation(CLUSTER, "other"),
        creation(TOPIC, ""),
        creation(TOPIC, name, principal="bob"),
        creation(42, name),  # codes Kafka does not know: UNKNOWN
        creation(TOPIC, name, 42),
        creation(TOPIC, name, operation=42),
        creation(TOPIC, name, permission=42),
        creation(TRANSACTIONAL_ID, name, host="10.1.2.3", operation=WRITE),
    ]
    ours, theirs = pair.send(ApiKey.CREATE_ACLS, {"creations": creations})
    applied(pair, [c for c, r in zip(creations, theirs.results, strict=True) if r.error_code == 0])
    # the error messages too (the comparison drops them): Kafka's exact words
    pair.judge(
        "CreateAcls messages",
        [(r.error_code, r.error_message) for r in ours.results],
        [(r.error_code, r.error_message) for r in theirs.results],
    )
    described = pair.compare(
        ApiKey.DESCRIBE_ACLS, describe_filter(name=name, pattern=MATCH), unordered=("resources", "acls")
    )
    assert described[0]["resources"]


@pytest.mark.parametrize(
    "bad",
    [
        creation(ANY, "x"),
        creation(TOPIC, "x", MATCH),
        creation(TOPIC, "x", ANY),
        creation(TOPIC, "x", operation=ANY),
        creation(TOPIC, "x", permission=ANY),
    ],
)
def test_create_acls_that_are_no_bindings(secured: Secured, bad: dict) -> None:
    """ANY or MATCH where a binding is made: Kafka cannot build it, and fails the whole request."""
    secured.pair.compare(ApiKey.CREATE_ACLS, {"creations": [creation(TOPIC, secured.pair.name()), bad]})


@pytest.mark.parametrize(
    "flt",
    [
        {"pattern": ANY},
        {"pattern": MATCH},
        {"pattern": LITERAL},
        {"pattern": PREFIXED, "prefix": True},
        {"pattern": MATCH, "rtype": TOPIC, "op": WRITE},
        {"pattern": ANY, "principal": "User:carol"},
    ],
)
def test_describe_and_delete_filters(secured: Secured, flt: dict) -> None:
    pair = secured.pair
    name = pair.name("acl")
    creations = [
        creation(TOPIC, name),
        creation(TOPIC, name, operation=WRITE, principal="User:carol"),
        creation(TOPIC, name[:-1], PREFIXED, permission=DENY),
        creation(TOPIC, f"{name}x", PREFIXED),
        creation(GROUP, name),
    ]
    create_acls(pair, creations)
    body = describe_filter(
        rtype=flt.get("rtype", ANY),
        name=name[:-1] if flt.get("prefix") else name,
        pattern=flt["pattern"],
        principal=flt.get("principal"),
        op=flt.get("op", ANY),
    )
    pair.compare(ApiKey.DESCRIBE_ACLS, body, unordered=("resources", "acls"))
    pair.compare(ApiKey.DELETE_ACLS, {"filters": [body]}, unordered=("matching_acls",))
    # what kstub deleted (at once) must be gone from Kafka's broker too before comparing again
    applied(
        pair,
        [c for c in creations if not pair.kstub.conn.request(ApiKey.DESCRIBE_ACLS, _exact(c)).resources],
        present=False,
    )
    pair.compare(ApiKey.DESCRIBE_ACLS, describe_filter(name=name, pattern=MATCH), unordered=("resources", "acls"))


@pytest.mark.parametrize(
    ("api", "body"),
    [
        (ApiKey.DESCRIBE_ACLS, describe_filter() | {"operation": 0}),
        (ApiKey.CREATE_ACLS, {"creations": [creation(0, "x")]}),
        (ApiKey.DELETE_ACLS, {"filters": [describe_filter(pattern=0)]}),
    ],
)
def test_unknown_element_closes_the_connection(secured: Secured, api: int, body: dict) -> None:
    """The UNKNOWN code itself (0) is refused as Kafka parses the request: the connection is closed."""
    closed = []
    for side in secured.pair.sides:
        conn = side.connect()
        conn.link.send(api, 3, body)
        closed.append(conn.link.is_closed_by_peer())
    assert closed == [True, True]


def test_codes_kafka_does_not_know(secured: Secured) -> None:
    """Other codes become UNKNOWN after parsing: no binding matches them, and a deletion filter is refused."""
    pair = secured.pair
    for field in ("resource_type_filter", "pattern_type_filter", "operation", "permission_type"):
        flt = describe_filter() | {field: 42}
        pair.compare(ApiKey.DESCRIBE_ACLS, flt)
        ours, theirs = pair.send(ApiKey.DELETE_ACLS, {"filters": [flt]})
        pair.judge(
            "DeleteAcls with an unknown code",
            [(r.error_code, r.error_message, len(r.matching_acls)) for r in ours.filter_results],
            [(r.error_code, r.error_message, len(r.matching_acls)) for r in theirs.filter_results],
        )


def test_acl_apis_need_cluster_permissions(secured: Secured) -> None:
    secured.as_alice(ApiKey.DESCRIBE_ACLS, describe_filter())
    secured.as_alice(ApiKey.CREATE_ACLS, {"creations": [creation(TOPIC, "x")]})
    secured.as_alice(ApiKey.DELETE_ACLS, {"filters": [describe_filter(name="x")]})


# --- authorization errors, as alice gets them ---------------------------------------------------


def test_topic_apis(secured: Secured) -> None:
    pair = secured.pair
    hidden, readable, writable = (create(pair) for _ in range(3))
    missing = pair.name("missing")
    secured.grant((TOPIC, readable, LITERAL, READ), (TOPIC, writable, LITERAL, WRITE))
    names = [hidden, readable, writable, missing]
    metadata = {
        "topics": [{"name": n} for n in names],
        "allow_auto_topic_creation": False,
        "include_topic_authorized_operations": True,
    }
    secured.as_alice(ApiKey.METADATA, metadata, unordered=("topics",))
    every = {"topics": None, "allow_auto_topic_creation": False, "include_topic_authorized_operations": True}
    mine = set(names)
    secured.as_alice(
        ApiKey.METADATA,
        every,
        view=lambda a: sorted((t["name"], t["error_code"]) for t in a["topics"] if t["name"] in mine),
    )
    for name in names:
        secured.as_alice(
            ApiKey.PRODUCE, produce_body(name, batch(1), acks=1), ignore=("log_start_offset", "base_offset")
        )
        secured.as_alice(
            ApiKey.FETCH,
            fetch_body(name),
            ignore=("records", "high_watermark", "last_stable_offset", "log_start_offset"),
        )
        secured.as_alice(ApiKey.LIST_OFFSETS, list_offsets_body(name, -1), ignore=("offset",))


def test_auto_creation_needs_create(secured: Secured) -> None:
    pair = secured.pair
    allowed, refused = pair.name("auto"), pair.name("auto")
    secured.grant(
        (TOPIC, allowed, LITERAL, DESCRIBE), (TOPIC, allowed, LITERAL, CREATE), (TOPIC, refused, LITERAL, DESCRIBE)
    )
    body = {"topics": [{"name": allowed}, {"name": refused}], "allow_auto_topic_creation": True}
    secured.as_alice(ApiKey.METADATA, body, unordered=("topics",))


def test_admin_topic_apis(secured: Secured) -> None:
    pair = secured.pair
    existing = create(pair)
    new, denied = pair.name("new"), pair.name("new")
    secured.grant((TOPIC, new, LITERAL, CREATE))
    topics = [
        {"name": n, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}
        for n in (new, denied)
    ]
    secured.as_alice(
        ApiKey.CREATE_TOPICS,
        {"topics": topics, "timeout_ms": 10000, "validate_only": True},
        unordered=("topics",),
        ignore=("topic_id",),
    )
    grow = {"topics": [{"name": existing, "count": 2, "assignments": None}], "timeout_ms": 10000, "validate_only": True}
    secured.as_alice(ApiKey.CREATE_PARTITIONS, grow)
    delete = {
        "topics": [{"name": existing}, {"name": pair.name("gone")}],
        "topic_names": [existing],
        "timeout_ms": 10000,
    }
    secured.as_alice(ApiKey.DELETE_TOPICS, delete, unordered=("responses",))

    def configs(side: Side) -> dict:
        broker = str(min(side.nodes))  # the side's own broker id
        return {
            "resources": [
                {"resource_type": 2, "resource_name": existing, "configuration_keys": ["retention.ms"]},
                {"resource_type": 4, "resource_name": broker, "configuration_keys": ["log.retention.ms"]},
            ]
        }

    secured.as_alice(ApiKey.DESCRIBE_CONFIGS, configs)
    alter = {
        "resources": [
            {
                "resource_type": 2,
                "resource_name": existing,
                "configs": [{"name": "retention.ms", "config_operation": 0, "value": "1000"}],
            }
        ],
        "validate_only": True,
    }
    secured.as_alice(ApiKey.INCREMENTAL_ALTER_CONFIGS, alter)


def test_group_apis(secured: Secured) -> None:
    pair = secured.pair
    topic = create(pair)
    allowed, denied = pair.name("g"), pair.name("g")
    pair.wait_for_coordinator(allowed)
    secured.grant((GROUP, allowed, LITERAL, READ))
    secured.as_alice(
        ApiKey.FIND_COORDINATOR,
        {"key_type": 0, "coordinator_keys": [allowed, denied]},
        ignore=("node_id", "host", "port"),
    )
    for group in (allowed, denied):
        commit = {
            "group_id": group,
            "generation_id_or_member_epoch": -1,
            "member_id": "",
            "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 0}]}],
        }
        secured.as_alice(ApiKey.OFFSET_COMMIT, commit)
        fetch = {
            "groups": [{"group_id": group, "topics": [{"name": topic, "partition_indexes": [0]}]}],
            "require_stable": False,
        }
        secured.as_alice(ApiKey.OFFSET_FETCH, fetch)
        heartbeat = {"group_id": group, "generation_id": 1, "member_id": "nobody"}
        secured.as_alice(ApiKey.HEARTBEAT, heartbeat)
        secured.as_alice(ApiKey.LEAVE_GROUP, {"group_id": group, "members": [{"member_id": "nobody"}]})
    secured.as_alice(ApiKey.DESCRIBE_GROUPS, {"groups": [denied, allowed], "include_authorized_operations": True})
    secured.as_alice(ApiKey.DELETE_GROUPS, {"groups_names": [denied, allowed]}, unordered=("results",))


def test_producer_ids_and_cluster(secured: Secured) -> None:
    pair = secured.pair
    tx = pair.name("tx")
    idempotent = {"transactional_id": None, "transaction_timeout_ms": 60000, "producer_id": -1, "producer_epoch": -1}
    # dave has no ACLs at all (alice may WRITE some topics by now, which lets her be idempotent)
    secured.as_alice(ApiKey.INIT_PRODUCER_ID, idempotent, user="dave")
    secured.as_alice(ApiKey.INIT_PRODUCER_ID, idempotent | {"transactional_id": tx}, user="dave")
    secured.as_alice(ApiKey.FIND_COORDINATOR, {"key_type": 1, "coordinator_keys": [tx]}, user="dave")
    secured.as_alice(
        ApiKey.DESCRIBE_CLUSTER,
        {"include_cluster_authorized_operations": True},
        ignore=("brokers", "cluster_id", "controller_id"),
    )
    cluster_ops = {"topics": [], "include_cluster_authorized_operations": True}
    secured.as_alice(ApiKey.METADATA, cluster_ops, version=10, ignore=("brokers", "cluster_id", "controller_id"))


@pytest.mark.parametrize("version", [1, 2])
def test_older_versions(secured: Secured, version: int) -> None:
    pair = secured.pair
    name = pair.name("old")
    creations = [creation(TOPIC, name), creation(GROUP, f"{name}-", PREFIXED, permission=DENY)]
    pair.compare(ApiKey.CREATE_ACLS, {"creations": creations}, version=version)
    applied(pair, creations)
    pair.compare(ApiKey.DESCRIBE_ACLS, describe_filter(name=name, pattern=MATCH), version=version)
    pair.compare(ApiKey.DELETE_ACLS, {"filters": [describe_filter(name=name)]}, version=version)


def test_prefixed_allow_literal_deny(secured: Secured) -> None:
    """A prefixed ALLOW WRITE with a literal DENY WRITE: writes refused on the denied topic only; WRITE implies
    DESCRIBE, and the DENY of WRITE does not take DESCRIBE away."""
    pair = secured.pair
    prefix = pair.name("pre") + "-"
    open_topic, secret = create(pair, f"{prefix}open"), create(pair, f"{prefix}secret")
    secured.grant((TOPIC, prefix, PREFIXED, WRITE))
    secured.grant((TOPIC, secret, LITERAL, WRITE), permission=DENY)
    errors = []
    for topic in (open_topic, secret):
        ours, _ = secured.as_alice(
            ApiKey.PRODUCE, produce_body(topic, batch(1), acks=1), ignore=("log_start_offset", "base_offset")
        )
        errors.append(ours["responses"][0]["partition_responses"][0]["error_code"])
    assert errors == [0, 29]
    metadata = {"topics": [{"name": open_topic}, {"name": secret}], "include_topic_authorized_operations": True}
    secured.as_alice(ApiKey.METADATA, metadata, unordered=("topics",))


def test_hosts(secured: Secured) -> None:
    """A binding for another host does not apply; one for the client's address (127.0.0.1) does."""
    pair = secured.pair
    topic = create(pair)
    body = list_offsets_body(topic, -1)
    secured.grant((TOPIC, topic, LITERAL, DESCRIBE), host="10.9.9.9")
    assert _first_error(secured.as_alice(ApiKey.LIST_OFFSETS, body, ignore=("offset",))) == 29
    secured.grant((TOPIC, topic, LITERAL, DESCRIBE), host="127.0.0.1")
    assert _first_error(secured.as_alice(ApiKey.LIST_OFFSETS, body, ignore=("offset",))) == 0


def _first_error(answers: tuple[Any, Any]) -> int:
    """ListOffsets: the (agreed) error of the first partition."""
    return answers[0]["topics"][0]["partitions"][0]["error_code"]


def test_allow_everyone_does_not_cover_named_resources(secured: Secured) -> None:
    """A binding for someone else still names the resource: alice is refused (no allow.everyone here either)."""
    pair = secured.pair
    topic = create(pair)
    body = list_offsets_body(topic, -1)
    secured.grant((TOPIC, topic, LITERAL, READ), principal="User:bob")
    assert _first_error(secured.as_alice(ApiKey.LIST_OFFSETS, body, ignore=("offset",))) == 29
    secured.grant((TOPIC, topic, LITERAL, READ), principal="User:*")
    assert _first_error(secured.as_alice(ApiKey.LIST_OFFSETS, body, ignore=("offset",))) == 0


def test_more_apis(secured: Secured) -> None:
    """The other APIs' checks, for alice without any ACL on what she asks about."""
    pair = secured.pair
    topic = create(pair)
    group = pair.name("g")
    secured.as_alice(ApiKey.DESCRIBE_LOG_DIRS, {"topics": None})
    elect = {"election_type": 0, "topic_partitions": [{"topic": topic, "partitions": [0]}], "timeout_ms": 10000}
    secured.as_alice(ApiKey.ELECT_LEADERS, elect)
    secured.as_alice(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, {"users": [{"name": "alice"}]})
    upsert = {"name": "eve", "mechanism": 1, "iterations": 4096, "salt": b"salt", "salted_password": b"x" * 32}
    secured.as_alice(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, {"deletions": [], "upsertions": [upsert]})
    records = {"topics": [{"name": topic, "partitions": [{"partition_index": 0, "offset": 0}]}], "timeout_ms": 10000}
    secured.as_alice(ApiKey.DELETE_RECORDS, records)
    offsets = {"group_id": group, "topics": [{"name": topic, "partitions": [{"partition_index": 0}]}]}
    secured.as_alice(ApiKey.OFFSET_DELETE, offsets)
    # DELETE on the group is not enough: READ on each topic too
    pair.wait_for_coordinator(group)
    commit = {
        "group_id": group,
        "generation_id_or_member_epoch": -1,
        "member_id": "",
        "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 0}]}],
    }
    for answer in pair.send(ApiKey.OFFSET_COMMIT, commit):
        assert answer.topics[0].partitions[0].error_code == 0
    secured.grant((GROUP, group, LITERAL, DELETE))
    ours, _ = secured.as_alice(ApiKey.OFFSET_DELETE, offsets)
    assert ours["topics"][0]["partitions"][0]["error_code"] == 29
    epochs = {"topics": [{"topic": topic, "partitions": [{"partition": 0, "leader_epoch": 0}]}]}
    secured.as_alice(ApiKey.OFFSET_FOR_LEADER_EPOCH, epochs)
    partitions = {"topics": [{"name": topic}], "response_partition_limit": 100, "cursor": None}
    secured.as_alice(ApiKey.DESCRIBE_TOPIC_PARTITIONS, partitions)
    mine = {topic}
    secured.as_alice(
        ApiKey.DESCRIBE_TOPIC_PARTITIONS,
        partitions | {"topics": []},
        view=lambda a: [t for t in a["topics"] if t["name"] in mine],
    )
    secured.as_alice(ApiKey.LIST_GROUPS, {}, view=lambda a: a["error_code"])


# --- the APIs that came after the ACLs: transactions, KIP-848 groups, quotas, config listings ----


INTERNAL_OFFSETS = "__consumer_offsets"


def _add_v3(tid: str, ids: Callable[[Side], tuple[int, int]], topics: dict[str, list[int]]) -> Callable[[Side], dict]:
    def body(side: Side) -> dict:
        pid, epoch = ids(side)
        return {
            "v3_and_below_transactional_id": tid,
            "v3_and_below_producer_id": pid,
            "v3_and_below_producer_epoch": epoch,
            "v3_and_below_topics": [{"name": n, "partitions": ps} for n, ps in topics.items()],
        }

    return body


def _txn_offsets(tid: str, group: str, ids: Callable[[Side], tuple[int, int]], topics: list[str]) -> Any:
    def body(side: Side) -> dict:
        pid, epoch = ids(side)
        return {
            "transactional_id": tid,
            "group_id": group,
            "producer_id": pid,
            "producer_epoch": epoch,
            "generation_id": -1,
            "member_id": "",
            "group_instance_id": None,
            "topics": [{"name": n, "partitions": [{"partition_index": 0, "committed_offset": 1}]} for n in topics],
        }

    return body


def _txn_records(producer_id: int, epoch: int) -> bytes:
    """One transactional batch of one record, sequence 0."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=True, producer_id=producer_id,
                                        producer_epoch=epoch, base_sequence=0, batch_size=1 << 20)  # fmt: skip
    builder.append(0, timestamp=1_700_000_000_000, key=b"k", value=b"v", headers=[])
    return bytes(builder.build())


def _txn_ready(pair: Pair, tid: str) -> None:
    """The admin initialises `tid` on both until Kafka's coordinator has loaded its partition (it answers
    COORDINATOR_LOAD_IN_PROGRESS meanwhile). Polls: a JVM has no event to wait on."""
    pair.wait_for_coordinator(tid, 1)
    # an idempotent producer first: producer id 0 (a denied DescribeTransactions' default) is then taken
    idempotent = {"transactional_id": None, "transaction_timeout_ms": 60000, "producer_id": -1, "producer_epoch": -1}
    deadline = time.monotonic() + 30
    for body in (idempotent, idempotent | {"transactional_id": tid}):
        for side in pair.sides:
            while (error := side.conn.request(ApiKey.INIT_PRODUCER_ID, body).error_code) != 0:
                assert time.monotonic() < deadline, f"{side.name}: InitProducerId({body}) still {error}"
                time.sleep(0.2)


def test_transaction_apis(secured: Secured) -> None:
    """Each transaction API for dave (no ACLs), then alice step by step: the transactional id, the topics
    added (internal ones never), the group of the offsets, the topics shown by Describe/ListTransactions."""
    pair = secured.pair
    topic, denied, veiled = create(pair), create(pair), create(pair)
    missing = pair.name("missing")
    tid, hidden, group = pair.name("tx"), pair.name("tx"), pair.name("g")
    for key in (tid, hidden):
        _txn_ready(pair, key)
    pair.wait_for_coordinator(group)
    nobody: Callable[[Side], tuple[int, int]] = lambda side: (1000, 0)  # noqa: E731
    txn_body = {"transactional_id": tid, "producer_id": 1000, "producer_epoch": 0}
    unordered = ("results_by_topic_v3_and_below", "results_by_partition", "topics", "partitions")
    # dave may do nothing: the transactional id is refused first
    secured.as_alice(ApiKey.ADD_PARTITIONS_TO_TXN, _add_v3(tid, nobody, {topic: [0]}), version=3, user="dave")
    brokers_form = {
        "transactions": [
            {"transactional_id": tid, "producer_id": 1000, "producer_epoch": 0, "verify_only": True, "topics": []}
        ]
    }
    secured.as_alice(ApiKey.ADD_PARTITIONS_TO_TXN, brokers_form, version=4, user="dave")  # CLUSTER_ACTION
    secured.as_alice(ApiKey.ADD_OFFSETS_TO_TXN, txn_body | {"group_id": group}, user="dave")
    secured.as_alice(ApiKey.END_TXN, txn_body | {"committed": False}, version=4, user="dave")
    secured.as_alice(ApiKey.TXN_OFFSET_COMMIT, _txn_offsets(tid, group, nobody, [topic]), version=4, user="dave")
    secured.as_alice(ApiKey.DESCRIBE_TRANSACTIONS, {"transactional_ids": [tid]}, user="dave")

    # alice: her transactional ids, WRITE on topic and veiled (which she may not describe), READ on the group
    secured.grant(
        (TRANSACTIONAL_ID, tid, LITERAL, WRITE),
        (TRANSACTIONAL_ID, hidden, LITERAL, WRITE),
        (TOPIC, topic, LITERAL, WRITE),
        (TOPIC, veiled, LITERAL, WRITE),
        (TOPIC, missing, LITERAL, WRITE),
    )
    secured.grant((TOPIC, veiled, LITERAL, DESCRIBE), (TRANSACTIONAL_ID, hidden, LITERAL, DESCRIBE), permission=DENY)
    init = {"transactional_id": tid, "transaction_timeout_ms": 60000, "producer_id": -1, "producer_epoch": -1}
    ours, _ = secured.as_alice(ApiKey.INIT_PRODUCER_ID, init, version=4)
    secured.as_alice(ApiKey.INIT_PRODUCER_ID, init | {"transactional_id": hidden}, version=4)
    alias, epoch = ours["producer_id"], ours["producer_epoch"]

    def ids(side: Side) -> tuple[int, int]:
        return side.raw("producer", alias), epoch

    refused = {topic: [0], denied: [0], missing: [0], INTERNAL_OFFSETS: [0]}
    secured.as_alice(ApiKey.ADD_PARTITIONS_TO_TXN, _add_v3(tid, ids, refused), version=3, unordered=unordered)
    secured.as_alice(
        ApiKey.ADD_PARTITIONS_TO_TXN, _add_v3(tid, ids, {topic: [0], veiled: [0]}), version=3, unordered=unordered
    )

    # transactional records: WRITE on the transactional id (dave: none, every partition refused), then on each topic
    def produce(tid_: str, ids_: Callable[[Side], tuple[int, int]]) -> Callable[[Side], dict]:
        def body(side: Side) -> dict:
            records = _txn_records(*ids_(side))
            return produce_body(topic, records, acks=-1, transactional_id=tid_) | {
                "topic_data": [
                    {"name": n, "partition_data": [{"index": 0, "records": records}]} for n in (topic, denied)
                ]
            }

        return body

    dropped = ("base_offset", "log_start_offset", "log_append_time_ms")
    secured.as_alice(ApiKey.PRODUCE, produce(tid, nobody), user="dave", ignore=dropped, unordered=("responses",))
    secured.as_alice(ApiKey.PRODUCE, produce(tid, ids), ignore=dropped, unordered=("responses",))

    def offsets_txn(side: Side) -> dict:
        pid, e = ids(side)
        return {"transactional_id": tid, "producer_id": pid, "producer_epoch": e, "group_id": group}

    secured.as_alice(ApiKey.ADD_OFFSETS_TO_TXN, offsets_txn)  # no READ on the group yet
    secured.as_alice(ApiKey.TXN_OFFSET_COMMIT, _txn_offsets(tid, group, ids, [topic]), version=4)
    secured.grant((GROUP, group, LITERAL, READ), (TOPIC, topic, LITERAL, READ))
    secured.as_alice(ApiKey.ADD_OFFSETS_TO_TXN, offsets_txn)
    secured.as_alice(
        ApiKey.TXN_OFFSET_COMMIT,
        _txn_offsets(tid, group, ids, [topic, denied, missing]),
        version=4,
        unordered=("topics",),
    )
    # Describe: her transaction without veiled (nor __consumer_offsets); hidden refused; List: hers only
    secured.as_alice(
        ApiKey.DESCRIBE_TRANSACTIONS,
        {"transactional_ids": [tid, hidden]},
        ignore=("transaction_start_time_ms",),
        unordered=("topics", "partitions"),
    )
    mine = {tid, hidden}
    secured.as_alice(
        ApiKey.LIST_TRANSACTIONS,
        {"state_filters": [], "producer_id_filters": [], "duration_filter": -1, "transactional_id_pattern": None},
        view=lambda a: sorted(t["transactional_id"] for t in a["transaction_states"] if t["transactional_id"] in mine),
    )

    def end(side: Side) -> dict:
        pid, e = ids(side)
        return {"transactional_id": tid, "producer_id": pid, "producer_epoch": e, "committed": False}

    secured.as_alice(ApiKey.END_TXN, end, version=4)


def test_describe_producers(secured: Secured) -> None:
    pair = secured.pair
    readable, refused = create(pair), create(pair)
    secured.grant((TOPIC, readable, LITERAL, READ))
    body = {
        "topics": [
            {"name": readable, "partition_indexes": [0]},
            {"name": refused, "partition_indexes": [0, 1]},
            {"name": pair.name("missing"), "partition_indexes": [0]},
        ]
    }
    secured.as_alice(ApiKey.DESCRIBE_PRODUCERS, body)


def test_consumer_group_protocol(secured: Secured) -> None:
    """ConsumerGroupHeartbeat: READ on the group, DESCRIBE on each subscribed topic; ConsumerGroupDescribe:
    DESCRIBE on the group (refused ones first), its authorized operations, and a group showing a topic
    alice may not describe refused as a whole."""
    pair = secured.pair
    seen, unseen = create(pair), create(pair)
    allowed, denied = pair.name("g"), pair.name("g")
    for g in (allowed, denied):
        pair.wait_for_coordinator(g)
    secured.grant((GROUP, allowed, LITERAL, READ), (TOPIC, seen, LITERAL, DESCRIBE))
    member = uuid.uuid4().hex[:22]
    secured.as_alice(ApiKey.CONSUMER_GROUP_HEARTBEAT, _hb_join(denied, member, [seen]))
    secured.as_alice(ApiKey.CONSUMER_GROUP_HEARTBEAT, _hb_join(denied, member, [seen], rebalance_timeout_ms=-7))
    secured.as_alice(ApiKey.CONSUMER_GROUP_HEARTBEAT, _hb_join(allowed, member, [seen, unseen]))
    describe = {"group_ids": [allowed, denied], "include_authorized_operations": True}
    secured.as_alice(ApiKey.CONSUMER_GROUP_DESCRIBE, describe)  # no group yet: GROUP_ID_NOT_FOUND for allowed
    # joined: the assignment may come at once or at a later heartbeat, as each coordinator computes it
    secured.as_alice(
        ApiKey.CONSUMER_GROUP_HEARTBEAT,
        _hb_join(allowed, member, [seen]),
        view=lambda a: (a["error_code"], a["member_id"]),
    )
    secured.as_alice(
        ApiKey.CONSUMER_GROUP_DESCRIBE,
        describe,
        view=lambda a: [(g["group_id"], g["error_code"], g["authorized_operations"]) for g in a["groups"]],
    )
    secured.grant((TOPIC, seen, LITERAL, DESCRIBE), permission=DENY)
    secured.as_alice(
        ApiKey.CONSUMER_GROUP_DESCRIBE,
        describe,
        view=lambda a: [(g["group_id"], g["error_code"], g["members"]) for g in a["groups"]],
    )


def test_quotas_and_config_listings(secured: Secured) -> None:
    pair = secured.pair
    topic, group = create(pair), pair.name("g")
    client = pair.name("client")
    entry = {
        "entity": [{"entity_type": "client-id", "entity_name": client}],
        "ops": [{"key": "producer_byte_rate", "value": 1024.0, "remove": False}],
    }
    secured.as_alice(ApiKey.ALTER_CLIENT_QUOTAS, {"entries": [entry, entry], "validate_only": True})
    exact = {"components": [{"entity_type": "client-id", "match_type": 0, "match": client}], "strict": True}
    secured.as_alice(ApiKey.DESCRIBE_CLIENT_QUOTAS, exact)
    secured.as_alice(ApiKey.LIST_CONFIG_RESOURCES, {"resource_types": [2]})
    configs = {
        "resources": [
            {"resource_type": 32, "resource_name": group, "configuration_keys": None},
            {"resource_type": 16, "resource_name": pair.name("metrics"), "configuration_keys": None},
        ]
    }
    secured.as_alice(ApiKey.DESCRIBE_CONFIGS, configs)
    # bob may describe the cluster's configs: the quotas (none for this client) and the topics listed
    secured.grant((CLUSTER, "kafka-cluster", LITERAL, DESCRIBE_CONFIGS), principal="User:bob")
    secured.as_alice(ApiKey.DESCRIBE_CLIENT_QUOTAS, exact, user="bob")
    secured.as_alice(
        ApiKey.LIST_CONFIG_RESOURCES,
        {"resource_types": [2]},
        user="bob",
        view=lambda a: (
            a["error_code"],
            [r["resource_name"] for r in a["config_resources"] if r["resource_name"] == topic],
        ),
    )
